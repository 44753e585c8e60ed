package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/internal/sqlsearch"
	"github.com/jackc/pgx/v5"
)

// The audit store (hale.AuditStore, hale.AuditTx, hale.AuditReader;
// audit.go) on the tables of migration 0006. Writers append records and
// queue them (audit_queue) in their own transactions: one statement for a
// whole batch, and no lock another writer waits for. A sealer holds the
// transaction-scoped advisory lock auditSealLock, so one sealer at a
// time, on any node, extends the chain. Its statements run READ
// COMMITTED after the lock is granted, so each sees the links the
// previous sealer committed.

var (
	_ hale.AuditStore  = (*Store)(nil)
	_ hale.AuditTx     = (*tx)(nil)
	_ hale.AuditReader = (*reader)(nil)
)

const auditSealLock = "hale:audit-seal"

// sqlAuditAppend inserts a batch of records, their entity rows and their
// queue entries in one statement (and one round trip), from arrays: the
// records' columns ($1-$9) and the entity refs as (record id, ref) pairs
// ($10, $11). It returns the records' seqs by id.
const sqlAuditAppend = `WITH e AS (
	INSERT INTO audit_event (id, recorded, type, subtype, action, outcome, agent, agent_ref, data)
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[])
	RETURNING seq, id, recorded
), q AS (
	INSERT INTO audit_queue (seq) SELECT seq FROM e
), x AS (
	INSERT INTO audit_entity (seq, ref, recorded)
	SELECT e.seq, u.ref, e.recorded FROM e JOIN unnest($10::text[], $11::text[]) AS u (id, ref) ON u.id = e.id
)
SELECT array_agg(id), array_agg(seq) FROM e`

// AppendAudit stores recs and queues them for the chain, in this
// transaction.
func (t *tx) AppendAudit(ctx context.Context, recs []*hale.AuditRecord) error {
	const op = "postgres.AppendAudit"
	if len(recs) == 0 {
		return nil
	}
	n := len(recs)
	var (
		ids, types, subtypes, actions, outcomes, agents, refs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		recorded                                              = make([]int64, n)
		data                                                  = make([][]byte, n)
		entIDs, entRefs                                       []string
	)
	byID := make(map[string]*hale.AuditRecord, n)
	for i, r := range recs {
		r.Entities = sqlsearch.AuditEntities(r)
		r.Recorded = r.Recorded.UTC().Truncate(time.Microsecond)
		ids[i], recorded[i], types[i], subtypes[i] = r.ID, r.Recorded.UnixMicro(), r.Type, r.Subtype
		actions[i], outcomes[i], agents[i], refs[i], data[i] = r.Action, r.Outcome, r.Agent, r.AgentRef, r.Data
		for _, ref := range r.Entities {
			entIDs, entRefs = append(entIDs, r.ID), append(entRefs, ref)
		}
		byID[r.ID] = r
	}
	if entIDs == nil {
		entIDs, entRefs = []string{}, []string{}
	}
	var gotIDs []string
	var gotSeqs []int64
	err := t.tx.QueryRow(ctx, sqlAuditAppend, ids, recorded, types, subtypes, actions, outcomes, agents, refs, data,
		entIDs, entRefs).Scan(&gotIDs, &gotSeqs)
	if err != nil {
		return internal(op, err)
	}
	for i, id := range gotIDs {
		if r := byID[id]; r != nil {
			r.Seq = gotSeqs[i]
		}
	}
	return nil
}

// AuditEvent returns the record with id.
func (r *reader) AuditEvent(ctx context.Context, id string) (*hale.AuditRecord, error) {
	rec, err := sqlsearch.ScanAuditRecord(r.tx.QueryRow(ctx, "SELECT "+sqlsearch.AuditColumns+" FROM audit_event e WHERE e.id = $1", id).Scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &hale.Error{Kind: hale.KindNotFound, Op: "postgres.AuditEvent", Message: "AuditEvent/" + id + " not found"}
	}
	if err != nil {
		return nil, internal("postgres.AuditEvent", err)
	}
	return rec, nil
}

// SearchAudit runs an audit search on r's transaction.
func (r *reader) SearchAudit(ctx context.Context, q *hale.AuditQuery) (*hale.AuditPage, error) {
	page, err := sqlsearch.SearchAudit(ctx, dialect{}, r.query, q)
	if err != nil {
		return nil, internal("postgres.SearchAudit", err)
	}
	return page, nil
}

// auditEntitiesJSON is the entity refs of the record e with its own time,
// as a JSON array (sqlsearch.AuditLinkColumns).
const auditEntitiesJSON = "(SELECT coalesce(json_agg(x.ref), '[]')::text FROM audit_entity x WHERE x.seq = e.seq AND x.recorded = e.recorded)"

// SealAudit chains up to limit queued records and signs the new head.
func (s *Store) SealAudit(ctx context.Context, limit int, at time.Time, sign func(hale.AuditCheckpoint) []byte) (int, error) {
	const op = "postgres.SealAudit"
	sealed := 0
	err := s.jobTx(ctx, op, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", auditSealLock); err != nil {
			return err
		}
		var n, signed int64
		var prev []byte
		err := tx.QueryRow(ctx, "SELECT n, hash FROM audit_chain ORDER BY n DESC LIMIT 1").Scan(&n, &prev)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT "+sqlsearch.AuditLinkColumns(auditEntitiesJSON)+
			" FROM (SELECT 0::bigint AS n, q.seq, ''::bytea AS hash FROM audit_queue q ORDER BY q.seq LIMIT $1) c"+
			" JOIN audit_event e ON e.seq = c.seq ORDER BY c.seq", limit)
		if err != nil {
			return err
		}
		var recs []*hale.AuditRecord
		for rows.Next() {
			l, err := sqlsearch.ScanAuditLink(rows.Scan)
			if err != nil {
				rows.Close()
				return err
			}
			recs = append(recs, l.Record)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(recs) > 0 {
			ns := make([]int64, len(recs))
			seqs := make([]int64, len(recs))
			hashes := make([][]byte, len(recs))
			for i, r := range recs {
				n++
				prev = hale.AuditHash(prev, n, r)
				ns[i], seqs[i], hashes[i] = n, r.Seq, prev
			}
			if _, err := tx.Exec(ctx, "INSERT INTO audit_chain (n, seq, hash) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])",
				ns, seqs, hashes); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "DELETE FROM audit_queue WHERE seq = ANY($1)", seqs); err != nil {
				return err
			}
			sealed = len(recs)
		}
		if sign == nil || n == 0 {
			return nil
		}
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(n), 0) FROM audit_checkpoint").Scan(&signed); err != nil {
			return err
		}
		if n <= signed {
			return nil
		}
		cp := hale.AuditCheckpoint{N: n, Hash: prev, Time: at.UTC().Truncate(time.Microsecond)}
		cp.Signature = sign(cp)
		_, err = tx.Exec(ctx, "INSERT INTO audit_checkpoint (n, hash, at, signature) VALUES ($1, $2, $3, $4)",
			cp.N, cp.Hash, cp.Time.UnixMicro(), cp.Signature)
		return err
	})
	if err != nil {
		return 0, err
	}
	return sealed, nil
}

// ScanAudit calls fn for every link, in order, on one snapshot.
func (s *Store) ScanAudit(ctx context.Context, fn func(*hale.AuditLink) error) error {
	const op = "postgres.ScanAudit"
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{BeginQuery: viewBegin})
	if err != nil {
		return internal(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, "SELECT "+sqlsearch.AuditLinkColumns(auditEntitiesJSON)+
		" FROM audit_chain c LEFT JOIN audit_event e ON e.seq = c.seq ORDER BY c.n")
	if err != nil {
		return internal(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		l, err := sqlsearch.ScanAuditLink(rows.Scan)
		if err != nil {
			return internal(op, err)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return internal(op, err)
	}
	return nil
}

// AuditCheckpoints returns every checkpoint, by n.
func (s *Store) AuditCheckpoints(ctx context.Context) ([]hale.AuditCheckpoint, error) {
	const op = "postgres.AuditCheckpoints"
	rows, err := s.pool.Query(ctx, "SELECT n, hash, at, signature FROM audit_checkpoint ORDER BY n")
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var cps []hale.AuditCheckpoint
	for rows.Next() {
		var cp hale.AuditCheckpoint
		var at int64
		if err := rows.Scan(&cp.N, &cp.Hash, &at, &cp.Signature); err != nil {
			return nil, internal(op, err)
		}
		cp.Time = micros(at)
		cps = append(cps, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return cps, nil
}

// AuditUnchained returns the seqs of records neither chained nor queued.
func (s *Store) AuditUnchained(ctx context.Context) ([]int64, error) {
	const op = "postgres.AuditUnchained"
	rows, err := s.pool.Query(ctx, `SELECT e.seq FROM audit_event e
		WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.seq = e.seq)
		AND NOT EXISTS (SELECT 1 FROM audit_queue q WHERE q.seq = e.seq) ORDER BY e.seq`)
	if err != nil {
		return nil, internal(op, err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, internal(op, err)
	}
	return seqs, nil
}

// AuditQueued returns how many records wait for SealAudit.
func (s *Store) AuditQueued(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM audit_queue").Scan(&n); err != nil {
		return 0, internal("postgres.AuditQueued", err)
	}
	return n, nil
}
