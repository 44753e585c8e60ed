-- 0006: the audit store (hale.AuditStore, hale.AuditReader, audit.go);
-- docs/security.md "Audit trail" is the design, docs/database.md the
-- tables. The same logical schema as postgres/migrations/0006_audit.sql,
-- less audit_queue: the single writer chains each record in the
-- transaction that appends it, so nothing waits to be chained.
--
-- An audit record is stored once, append-only: its AuditEvent JSON and
-- the columns the audit search reads (not the general search index).
-- audit_entity holds one row per entity.what reference, with the
-- record's time, for "who looked at this patient, newest first".
--
-- No foreign keys: every row is written by AppendAudit together with its
-- record, and it is the chain (hale audit verify), not a constraint that
-- an attacker with database access can drop, that shows a row missing,
-- moved or added; a foreign-key check per row would cost more than the
-- row itself.

CREATE TABLE audit_event (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,   -- write order, never reused
    id        TEXT    NOT NULL UNIQUE,             -- AuditEvent.id
    recorded  INTEGER NOT NULL,                    -- AuditEvent.recorded, µs since the epoch, UTC
    type      TEXT    NOT NULL,                    -- system|code
    subtype   TEXT    NOT NULL,                    -- system|code, '' for none
    action    TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    agent     TEXT    NOT NULL,                    -- requestor's identifier value (user/42)
    agent_ref TEXT    NOT NULL,                    -- requestor's who.reference, '' for none
    data      BLOB    NOT NULL                     -- the AuditEvent JSON
);
CREATE INDEX audit_event_recorded ON audit_event (recorded, seq);
CREATE INDEX audit_event_agent ON audit_event (agent, recorded, seq);

CREATE TABLE audit_entity (
    seq      INTEGER NOT NULL,
    ref      TEXT    NOT NULL,                     -- Patient/1, Observation/9
    recorded INTEGER NOT NULL,                     -- the record's, for ordered ranges
    PRIMARY KEY (seq, ref)
) WITHOUT ROWID;
CREATE INDEX audit_entity_find ON audit_entity (ref, recorded, seq);

CREATE TABLE audit_chain (
    n    INTEGER PRIMARY KEY,                                    -- 1, 2, 3 … without gaps
    seq  INTEGER NOT NULL UNIQUE,
    hash BLOB    NOT NULL
);

CREATE TABLE audit_checkpoint (
    n         INTEGER PRIMARY KEY,                               -- the head link when signed
    hash      BLOB    NOT NULL,
    at        INTEGER NOT NULL,                                  -- µs since the epoch, UTC
    signature BLOB    NOT NULL
);

-- Hale never changes or removes a record, a link or a checkpoint; the
-- database refuses it too. (Someone with the rights to drop these
-- triggers can still edit the tables: hale audit verify detects that.)
CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
BEGIN SELECT RAISE(ABORT, 'audit records cannot be changed'); END;
CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
BEGIN SELECT RAISE(ABORT, 'audit records cannot be deleted'); END;
CREATE TRIGGER audit_entity_no_update BEFORE UPDATE ON audit_entity
BEGIN SELECT RAISE(ABORT, 'audit records cannot be changed'); END;
CREATE TRIGGER audit_entity_no_delete BEFORE DELETE ON audit_entity
BEGIN SELECT RAISE(ABORT, 'audit records cannot be deleted'); END;
CREATE TRIGGER audit_chain_no_update BEFORE UPDATE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'audit records cannot be changed'); END;
CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
BEGIN SELECT RAISE(ABORT, 'audit records cannot be deleted'); END;
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit checkpoints cannot be changed'); END;
CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit checkpoints cannot be deleted'); END;
