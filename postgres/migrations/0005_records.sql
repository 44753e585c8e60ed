-- 0005: keyed records (hale.Records, records.go) for what is not FHIR:
-- accounts, SMART clients, signing keys, sessions, token grants, used
-- assertion ids, lockout counters, shared by every node on the database;
-- the same logical schema as sqlite/migrations/0005_records.sql. The
-- store never looks inside data. Times are unix microseconds, UTC;
-- expires is NULL for "never".
CREATE TABLE record (
    kind    TEXT COLLATE "C" NOT NULL,
    key     TEXT COLLATE "C" NOT NULL,
    version BIGINT  NOT NULL,
    data    BYTEA   NOT NULL,
    expires BIGINT,
    updated BIGINT  NOT NULL,
    PRIMARY KEY (kind, key)
);
-- DeleteExpiredRecords.
CREATE INDEX record_expires ON record (expires) WHERE expires IS NOT NULL;
