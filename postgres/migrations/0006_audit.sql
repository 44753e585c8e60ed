-- 0006: the audit store (hale.AuditStore, hale.AuditReader, audit.go);
-- docs/security.md "Audit trail" is the design, docs/database.md the
-- tables. The same logical schema as sqlite/migrations/0006_audit.sql,
-- plus audit_queue: writers on many connections (and nodes) append
-- records and queue them in their own transactions; a sealer (one at a
-- time across nodes, under an advisory lock) chains the queued records
-- in batches, so writers never wait for the chain's head.
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
    seq       BIGSERIAL PRIMARY KEY,                    -- write order
    id        TEXT COLLATE "C" NOT NULL UNIQUE,         -- AuditEvent.id
    recorded  BIGINT NOT NULL,                          -- AuditEvent.recorded, µs since the epoch, UTC
    type      TEXT COLLATE "C" NOT NULL,                -- system|code
    subtype   TEXT COLLATE "C" NOT NULL,                -- system|code, '' for none
    action    TEXT COLLATE "C" NOT NULL,
    outcome   TEXT COLLATE "C" NOT NULL,
    agent     TEXT COLLATE "C" NOT NULL,                -- requestor's identifier value (user/42)
    agent_ref TEXT COLLATE "C" NOT NULL,                -- requestor's who.reference, '' for none
    data      BYTEA NOT NULL                            -- the AuditEvent JSON
);
CREATE INDEX audit_event_recorded ON audit_event (recorded, seq);
CREATE INDEX audit_event_agent ON audit_event (agent, recorded, seq);

CREATE TABLE audit_entity (
    seq      BIGINT NOT NULL,
    ref      TEXT COLLATE "C" NOT NULL,                 -- Patient/1, Observation/9
    recorded BIGINT NOT NULL,                           -- the record's, for ordered ranges
    PRIMARY KEY (seq, ref)
);
CREATE INDEX audit_entity_find ON audit_entity (ref, recorded, seq);

CREATE TABLE audit_queue (
    seq BIGINT PRIMARY KEY
);

CREATE TABLE audit_chain (
    n    BIGINT PRIMARY KEY,                                     -- 1, 2, 3 … without gaps
    seq  BIGINT NOT NULL UNIQUE,
    hash BYTEA  NOT NULL
);

CREATE TABLE audit_checkpoint (
    n         BIGINT PRIMARY KEY,                                -- the head link when signed
    hash      BYTEA  NOT NULL,
    at        BIGINT NOT NULL,                                   -- µs since the epoch, UTC
    signature BYTEA  NOT NULL
);

-- Hale never changes or removes a record, a link or a checkpoint; the
-- database refuses it too. (Someone with the rights to drop these
-- triggers can still edit the tables: hale audit verify detects that.)
CREATE FUNCTION audit_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records cannot be changed or deleted';
END $$;
CREATE TRIGGER audit_event_immutable BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_immutable();
CREATE TRIGGER audit_entity_immutable BEFORE UPDATE OR DELETE ON audit_entity
    FOR EACH ROW EXECUTE FUNCTION audit_immutable();
CREATE TRIGGER audit_chain_immutable BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_immutable();
CREATE TRIGGER audit_checkpoint_immutable BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_immutable();
