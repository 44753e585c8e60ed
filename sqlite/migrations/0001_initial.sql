-- 0001: versions, current-version pointers and the search index.
-- docs/database.md explains every table and index.

-- Every version of every resource, in global write order (seq). Versions
-- are never updated or deleted; AUTOINCREMENT guarantees a seq is never
-- handed out twice, so a history paging cursor can never point at a
-- different version later.
CREATE TABLE resource_version (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL CHECK (version > 0),
    last_updated INTEGER NOT NULL, -- unix microseconds, UTC
    method       TEXT    NOT NULL,
    deleted      INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    data         BLOB,             -- FHIR JSON; NULL exactly when deleted
    CHECK ((deleted = 1) = (data IS NULL)),
    UNIQUE (type, id, version)
);
-- Type history newest first, and the BeforeSeq cursor.
CREATE INDEX resource_version_type_seq ON resource_version (type, seq);
-- _since and _at on type and system history.
CREATE INDEX resource_version_type_time ON resource_version (type, last_updated);
CREATE INDEX resource_version_time ON resource_version (last_updated);

-- The current version of each resource: one row per (type, id), replaced
-- on every write. version, deleted and last_updated are copies of the
-- pointed-to version so Find and Count never touch resource_version.
CREATE TABLE resource (
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    seq          INTEGER NOT NULL REFERENCES resource_version (seq),
    deleted      INTEGER NOT NULL CHECK (deleted IN (0, 1)),
    last_updated INTEGER NOT NULL,
    PRIMARY KEY (type, id)
) WITHOUT ROWID;

-- Search index of the current version of each resource. Each table has a
-- covering "find" index led by (type, param) for Find, and a (type, id)
-- index so Put can replace a resource's rows.
CREATE TABLE idx_token (
    type   TEXT NOT NULL,
    id     TEXT NOT NULL,
    param  TEXT NOT NULL,
    system TEXT NOT NULL,
    code   TEXT NOT NULL,
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
);
CREATE INDEX idx_token_find ON idx_token (type, param, code, system, id);
CREATE INDEX idx_token_resource ON idx_token (type, id);

CREATE TABLE idx_string (
    type  TEXT NOT NULL,
    id    TEXT NOT NULL,
    param TEXT NOT NULL,
    norm  TEXT NOT NULL,
    exact TEXT NOT NULL,
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
);
-- norm leads for the prefix range; exact and id ride along so :exact and
-- :contains are answered from the index without reading the table.
CREATE INDEX idx_string_find ON idx_string (type, param, norm, exact, id);
CREATE INDEX idx_string_resource ON idx_string (type, id);

CREATE TABLE idx_reference (
    type        TEXT NOT NULL,
    id          TEXT NOT NULL,
    param       TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    url         TEXT NOT NULL,
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
);
CREATE INDEX idx_reference_find ON idx_reference (type, param, target_id, target_type, id);
CREATE INDEX idx_reference_url ON idx_reference (type, param, url, id);
CREATE INDEX idx_reference_resource ON idx_reference (type, id);
