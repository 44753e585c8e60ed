-- 0005: keyed records (hale.Records, records.go) for what is not FHIR:
-- accounts, SMART clients, signing keys, sessions, token grants, used
-- assertion ids, lockout counters; the same logical schema as
-- postgres/migrations/0005_records.sql. The store never looks inside
-- data. Times are unix microseconds, UTC; expires is NULL for "never".
CREATE TABLE record (
    kind    TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    version INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    expires INTEGER,
    updated INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
-- DeleteExpiredRecords.
CREATE INDEX record_expires ON record (expires) WHERE expires IS NOT NULL;
