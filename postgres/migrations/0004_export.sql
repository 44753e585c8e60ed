-- 0004: background jobs (the Bulk Data $export) and their output files,
-- kept in the database so that a job survives a restart and any node can
-- run it or serve its files; the same logical schema as
-- sqlite/migrations/0004_export.sql. hale.JobStore (jobs.go) is the
-- contract, docs/export.md the design.

-- One row per job. params and checkpoint are the job kind's own bytes
-- (JSON); the store never looks inside. Times are unix microseconds,
-- UTC; expires is NULL for "not scheduled for deletion".
CREATE TABLE job (
    id          TEXT COLLATE "C" PRIMARY KEY,
    kind        TEXT    NOT NULL,
    owner       TEXT    NOT NULL DEFAULT '',
    request     TEXT    NOT NULL DEFAULT '',
    params      BYTEA   NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    created     BIGINT  NOT NULL,
    updated     BIGINT  NOT NULL,
    expires     BIGINT,
    progress    TEXT    NOT NULL DEFAULT '',
    checkpoint  BYTEA,
    error       TEXT    NOT NULL DEFAULT '',
    node        TEXT    NOT NULL DEFAULT '',
    lease_until BIGINT  NOT NULL DEFAULT 0,
    claims      INTEGER NOT NULL DEFAULT 0
);
-- ClaimJob: the oldest claimable job of a kind (FOR UPDATE SKIP LOCKED).
CREATE INDEX job_claim ON job (kind, status, created);
-- DeleteExpired.
CREATE INDEX job_expires ON job (expires) WHERE expires IS NOT NULL;

-- A finished output file: visible once a job update added it.
CREATE TABLE job_file (
    job_id    TEXT COLLATE "C" NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    name      TEXT COLLATE "C" NOT NULL,
    type      TEXT    NOT NULL,
    count     BIGINT  NOT NULL,
    size      BIGINT  NOT NULL,
    chunks    INTEGER NOT NULL,
    chunk_key TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
);

-- The content of files, in chunks of a few MiB, under the key of the
-- attempt that wrote them; chunks of an attempt that was never added to
-- job_file are deleted when the job is claimed again. Chunks are
-- compressed already by TOAST when that helps; STORAGE EXTERNAL would
-- skip it, but NDJSON compresses well.
CREATE TABLE job_chunk (
    job_id    TEXT COLLATE "C" NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    chunk_key TEXT COLLATE "C" NOT NULL,
    n         INTEGER NOT NULL,
    data      BYTEA   NOT NULL,
    PRIMARY KEY (job_id, chunk_key, n)
);
