package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/internal/sqlsearch"
)

// The audit store (hale.AuditStore, hale.AuditTx, hale.AuditReader;
// audit.go) on the tables of migration 0006. Every write transaction runs
// on the single writer connection, one after another, in this process and
// in any other on the file: so AppendAudit chains each record in the
// transaction that appends it (reading the head, then adding link n+1),
// and no queue or separate sealing pass is needed. SealAudit only signs
// the head.

var (
	_ hale.AuditStore  = (*Store)(nil)
	_ hale.AuditTx     = (*tx)(nil)
	_ hale.AuditReader = (*reader)(nil)
)

const (
	sqlAuditHead = "SELECT n, hash FROM audit_chain ORDER BY n DESC LIMIT 1"
	// sqlAuditLastSeq is the highest seq audit_event ever had
	// (AUTOINCREMENT's high-water mark): AppendAudit numbers new records
	// after it, so that it can hash them before inserting them.
	sqlAuditLastSeq = "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'audit_event'), 0)"
	sqlAuditRead    = "SELECT " + sqlsearch.AuditColumns + " FROM audit_event e WHERE e.id = ?"
)

// The multi-row INSERTs AppendAudit runs, for 1, 8 and 32 rows, are
// prepared with the writer's other statements (stmt.go): parsing a long
// statement for every batch would cost more than its rows' B-tree work.
var (
	auditEventInsert = multiRow("INSERT INTO audit_event (seq, id, recorded, type, subtype, action, outcome, agent, agent_ref, data) VALUES ",
		"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	auditLinkInsert   = multiRow("INSERT INTO audit_chain (n, seq, hash) VALUES ", "(?, ?, ?)")
	auditEntityInsert = multiRow("INSERT INTO audit_entity (seq, ref, recorded) VALUES ", "(?, ?, ?)")
)

// auditRows are the row counts of the prepared multi-row INSERTs, largest
// first.
var auditRows = []int{32, 8, 1}

// multiRowInsert is one INSERT of several rows: its statements by row
// count, and the number of values per row.
type multiRowInsert struct {
	sql  map[int]string
	cols int
}

func multiRow(prefix, row string) multiRowInsert {
	m := multiRowInsert{sql: map[int]string{}, cols: strings.Count(row, "?")}
	for _, k := range auditRows {
		m.sql[k] = prefix + strings.TrimSuffix(strings.Repeat(row+", ", k), ", ")
	}
	return m
}

// auditWriteStatements are prepared on the writer (stmt.go).
var auditWriteStatements = func() []string {
	qs := []string{sqlAuditHead, sqlAuditLastSeq}
	for _, m := range []multiRowInsert{auditEventInsert, auditLinkInsert, auditEntityInsert} {
		for _, k := range auditRows {
			qs = append(qs, m.sql[k])
		}
	}
	return qs
}()

// insertRows inserts the rows of args (m.cols values each) with as few
// prepared statements as the row counts allow.
func (t *tx) insertRows(ctx context.Context, m multiRowInsert, args []any) error {
	for len(args) > 0 {
		rows := len(args) / m.cols
		for _, k := range auditRows {
			if k <= rows {
				if err := t.exec(ctx, m.sql[k], args[:k*m.cols]...); err != nil {
					return err
				}
				args = args[k*m.cols:]
				break
			}
		}
	}
	return nil
}

// AppendAudit stores recs and chains them, in this transaction: the
// records get the seqs after the last one, the links the positions after
// the head, and the rows go in with multi-row INSERTs, so a batch costs
// its B-tree inserts and a few statements, not one statement per row.
func (t *tx) AppendAudit(ctx context.Context, recs []*hale.AuditRecord) error {
	const op = "sqlite.AppendAudit"
	if len(recs) == 0 {
		return nil
	}
	var n, seq int64
	var prev []byte
	if err := t.queryRow(ctx, sqlAuditHead).Scan(&n, &prev); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return internal(op, err)
	}
	if err := t.queryRow(ctx, sqlAuditLastSeq).Scan(&seq); err != nil {
		return internal(op, err)
	}
	evArgs := make([]any, 0, len(recs)*auditEventInsert.cols)
	linkArgs := make([]any, 0, len(recs)*auditLinkInsert.cols)
	var entArgs []any
	for _, r := range recs {
		seq++
		n++
		r.Seq = seq
		r.Entities = sqlsearch.AuditEntities(r)
		r.Recorded = r.Recorded.UTC().Truncate(time.Microsecond)
		prev = hale.AuditHash(prev, n, r)
		at := r.Recorded.UnixMicro()
		evArgs = append(evArgs, r.Seq, r.ID, at, r.Type, r.Subtype, r.Action, r.Outcome, r.Agent, r.AgentRef, r.Data)
		linkArgs = append(linkArgs, n, r.Seq, prev)
		for _, ref := range r.Entities {
			entArgs = append(entArgs, r.Seq, ref, at)
		}
	}
	// Records before the rows that refer to them (foreign keys).
	for _, ins := range []struct {
		m    multiRowInsert
		args []any
	}{{auditEventInsert, evArgs}, {auditLinkInsert, linkArgs}, {auditEntityInsert, entArgs}} {
		if err := t.insertRows(ctx, ins.m, ins.args); err != nil {
			return internal(op, err)
		}
	}
	return nil
}

// AuditEvent returns the record with id.
func (r *reader) AuditEvent(ctx context.Context, id string) (*hale.AuditRecord, error) {
	rec, err := sqlsearch.ScanAuditRecord(r.queryRow(ctx, sqlAuditRead, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &hale.Error{Kind: hale.KindNotFound, Op: "sqlite.AuditEvent", Message: "AuditEvent/" + id + " not found"}
	}
	if err != nil {
		return nil, internal("sqlite.AuditEvent", err)
	}
	return rec, nil
}

// SearchAudit runs an audit search on r's transaction.
func (r *reader) SearchAudit(ctx context.Context, q *hale.AuditQuery) (*hale.AuditPage, error) {
	page, err := sqlsearch.SearchAudit(ctx, dialect{}, r.query, q)
	if err != nil {
		return nil, internal("sqlite.SearchAudit", err)
	}
	return page, nil
}

// SealAudit signs the head when it moved past the last checkpoint.
// Records are chained as they are appended: it chains nothing itself.
func (s *Store) SealAudit(ctx context.Context, limit int, at time.Time, sign func(hale.AuditCheckpoint) []byte) (int, error) {
	if sign == nil {
		return 0, nil
	}
	err := s.jobTx(ctx, "sqlite.SealAudit", func(tx *sql.Tx) error {
		var n, signed int64
		var head []byte
		err := tx.QueryRowContext(ctx, sqlAuditHead).Scan(&n, &head)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(n), 0) FROM audit_checkpoint").Scan(&signed); err != nil {
			return err
		}
		if n <= signed {
			return nil
		}
		cp := hale.AuditCheckpoint{N: n, Hash: head, Time: at.UTC().Truncate(time.Microsecond)}
		cp.Signature = sign(cp)
		_, err = tx.ExecContext(ctx, "INSERT INTO audit_checkpoint (n, hash, at, signature) VALUES (?, ?, ?, ?)",
			cp.N, cp.Hash, cp.Time.UnixMicro(), cp.Signature)
		return err
	})
	return 0, err
}

// auditEntitiesJSON is the entity refs of the record e with its own time,
// as a JSON array (sqlsearch.AuditLinkColumns).
const auditEntitiesJSON = "(SELECT json_group_array(x.ref) FROM audit_entity x WHERE x.seq = e.seq AND x.recorded = e.recorded)"

// ScanAudit calls fn for every link, in order, on one read snapshot.
func (s *Store) ScanAudit(ctx context.Context, fn func(*hale.AuditLink) error) error {
	const op = "sqlite.ScanAudit"
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return internal(op, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT "+sqlsearch.AuditLinkColumns(auditEntitiesJSON)+
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
	const op = "sqlite.AuditCheckpoints"
	rows, err := s.read.QueryContext(ctx, "SELECT n, hash, at, signature FROM audit_checkpoint ORDER BY n")
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

// AuditUnchained returns the seqs of records in no link (there is no
// queue: AppendAudit chains every record it stores).
func (s *Store) AuditUnchained(ctx context.Context) ([]int64, error) {
	const op = "sqlite.AuditUnchained"
	rows, err := s.read.QueryContext(ctx, `SELECT e.seq FROM audit_event e
		WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.seq = e.seq) ORDER BY e.seq`)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var seqs []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, internal(op, err)
		}
		seqs = append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return seqs, nil
}

// AuditQueued is always 0: records are chained as they are appended.
func (s *Store) AuditQueued(ctx context.Context) (int64, error) { return 0, nil }
