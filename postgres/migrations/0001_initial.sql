-- 0001: versions, current-version pointers and the search index.
-- The same logical schema as sqlite/migrations/0001_initial.sql;
-- docs/database.md explains every table and index.
--
-- Text columns that are compared by range or sorted (type, id, the index
-- values) use the "C" collation: byte order, as in SQLite, whatever the
-- database's locale, so Find returns ids in the same order on both
-- engines and a string prefix is an index range.

-- Every version of every resource, in global write order (seq). Versions
-- are never updated or deleted. data is BYTEA: the exact bytes the FHIR
-- core wrote, stored and returned without parsing (JSONB would parse,
-- reorder keys and re-serialise on every read).
CREATE TABLE resource_version (
    seq          BIGSERIAL PRIMARY KEY,
    type         TEXT COLLATE "C" NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    version      BIGINT  NOT NULL CHECK (version > 0),
    last_updated BIGINT  NOT NULL, -- unix microseconds, UTC
    method       TEXT    NOT NULL,
    deleted      BOOLEAN NOT NULL,
    data         BYTEA,            -- FHIR JSON; NULL exactly when deleted
    CHECK (deleted = (data IS NULL)),
    UNIQUE (type, id, version)
);
-- Type history newest first, and the BeforeSeq cursor.
CREATE INDEX resource_version_type_seq ON resource_version (type, seq);
-- _since and _at on type and system history.
CREATE INDEX resource_version_type_time ON resource_version (type, last_updated);
CREATE INDEX resource_version_time ON resource_version (last_updated);

-- The current version of each resource: one row per (type, id), replaced
-- on every write, and the row Current locks FOR UPDATE. version, deleted
-- and last_updated are copies of the pointed-to version so Find and Count
-- never touch resource_version.
CREATE TABLE resource (
    type         TEXT COLLATE "C" NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    version      BIGINT  NOT NULL,
    seq          BIGINT  NOT NULL REFERENCES resource_version (seq),
    deleted      BOOLEAN NOT NULL,
    last_updated BIGINT  NOT NULL,
    PRIMARY KEY (type, id)
);

-- Search index of the current version of each resource. Each table has a
-- covering "find" index led by (type, param) for Find, and a (type, id)
-- index so Put can replace a resource's rows.
CREATE TABLE idx_token (
    type   TEXT COLLATE "C" NOT NULL,
    id     TEXT COLLATE "C" NOT NULL,
    param  TEXT COLLATE "C" NOT NULL,
    system TEXT COLLATE "C" NOT NULL,
    code   TEXT COLLATE "C" NOT NULL,
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
);
CREATE INDEX idx_token_find ON idx_token (type, param, code, system, id);
CREATE INDEX idx_token_resource ON idx_token (type, id);

CREATE TABLE idx_string (
    type  TEXT COLLATE "C" NOT NULL,
    id    TEXT COLLATE "C" NOT NULL,
    param TEXT COLLATE "C" NOT NULL,
    norm  TEXT COLLATE "C" NOT NULL,
    exact TEXT COLLATE "C" NOT NULL,
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
);
-- A B-tree entry cannot exceed about 2.7 KB, and a string value (an
-- Observation's value-string, a description) can, so the index holds the
-- first 200 characters of norm: the prefix range is searched on them and
-- rechecked on the whole value (see postgres/tx.go, prefixMatch).
CREATE INDEX idx_string_find ON idx_string (type, param, left(norm, 200), id);
CREATE INDEX idx_string_resource ON idx_string (type, id);

CREATE TABLE idx_reference (
    type        TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    param       TEXT COLLATE "C" NOT NULL,
    target_type TEXT COLLATE "C" NOT NULL,
    target_id   TEXT COLLATE "C" NOT NULL,
    url         TEXT COLLATE "C" NOT NULL,
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
);
CREATE INDEX idx_reference_find ON idx_reference (type, param, target_id, target_type, id);
CREATE INDEX idx_reference_url ON idx_reference (type, param, url, id);
CREATE INDEX idx_reference_resource ON idx_reference (type, id);
