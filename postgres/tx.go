package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/internal/sqlsearch"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// reader implements hale.Reader on one transaction: View's snapshot, or
// Update's transaction.
type reader struct {
	tx pgx.Tx
}

// tx implements hale.Tx; its Current locks the resource row.
type tx struct {
	reader
	now    hale.Now
	locked map[string]bool // "Type/id" of the resource rows Current locked
	defer_ *deferringTx    // reader.tx: holds Put's index statements back
}

// deferringTx is the transaction with the index statements of each Put
// held back and sent, in one batch, in front of the transaction's next
// statement (the next Put's version insert, a read, or the commit). Put
// then costs one round trip instead of two: a 100-entry transaction
// bundle makes about 100 round trips, not 200. Every statement goes
// through this type, so nothing ever reads before the held-back writes
// are sent; an error in them surfaces at that next statement and fails
// the transaction as it would have.
type deferringTx struct {
	pgx.Tx
	held *pgx.Batch
}

// hold queues the statements of b to be sent before the next one.
func (d *deferringTx) hold(b *pgx.Batch) {
	if d.held == nil {
		d.held = &pgx.Batch{}
	}
	for _, q := range b.QueuedQueries {
		d.held.Queue(q.SQL, q.Arguments...)
	}
}

// flush sends the held-back statements.
func (d *deferringTx) flush(ctx context.Context) error {
	if d.held == nil {
		return nil
	}
	b := d.held
	d.held = nil
	return d.Tx.SendBatch(ctx, b).Close()
}

func (d *deferringTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := d.flush(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return d.Tx.Exec(ctx, sql, args...)
}

func (d *deferringTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := d.flush(ctx); err != nil {
		return nil, err
	}
	return d.Tx.Query(ctx, sql, args...)
}

// SendBatch sends the held-back statements in front of b's and consumes
// their results, so the caller reads b's results only.
func (d *deferringTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if d.held == nil {
		return d.Tx.SendBatch(ctx, b)
	}
	all := d.held
	d.held = nil
	n := all.Len()
	for _, q := range b.QueuedQueries {
		all.Queue(q.SQL, q.Arguments...)
	}
	br := d.Tx.SendBatch(ctx, all)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return errBatch{br, err}
		}
	}
	return br
}

// errBatch is the results of a batch whose held-back part failed.
type errBatch struct {
	pgx.BatchResults // closed
	err              error
}

func (e errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, e.err }
func (e errBatch) Query() (pgx.Rows, error)         { return nil, e.err }
func (e errBatch) QueryRow() pgx.Row                { return errRow{e.err} }
func (e errBatch) Close() error                     { return e.err }

// QueryRow sends the held-back statements and the query in one batch.
func (d *deferringTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if d.held == nil {
		return d.Tx.QueryRow(ctx, sql, args...)
	}
	b := d.held
	d.held = nil
	n := b.Len()
	b.Queue(sql, args...)
	br := d.Tx.SendBatch(ctx, b)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return errRow{err}
		}
	}
	return batchRow{br.QueryRow(), br}
}

// batchRow is the last row of a batch; scanning it closes the batch.
type batchRow struct {
	pgx.Row
	br pgx.BatchResults
}

func (r batchRow) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

var (
	_ hale.Reader   = (*reader)(nil)
	_ hale.Searcher = (*reader)(nil)
	_ hale.Tx       = (*tx)(nil)
	_ hale.Searcher = (*tx)(nil)
)

// versionColumns is the column list scanVersion reads, in order.
const versionColumns = "v.seq, v.type, v.id, v.version, v.last_updated, v.method, v.deleted, v.data"

func scanVersion(row pgx.Row) (hale.Version, error) {
	var v hale.Version
	var lastUpdated int64
	err := row.Scan(&v.Seq, &v.Type, &v.ID, &v.VersionID, &lastUpdated, &v.Method, &v.Deleted, &v.Data)
	v.LastUpdated = time.UnixMicro(lastUpdated).UTC()
	return v, err
}

// Current returns the version the resource row points at.
// Returns KindNotFound when the resource never existed.
func (r *reader) Current(ctx context.Context, typ, id string) (*hale.Version, error) {
	v, err := scanVersion(r.tx.QueryRow(ctx, readCurrent, typ, id))
	return currentResult(typ, id, v, err)
}

const readCurrent = "SELECT " + versionColumns +
	" FROM resource r JOIN resource_version v ON v.seq = r.seq WHERE r.type = $1 AND r.id = $2"

func currentResult(typ, id string, v hale.Version, err error) (*hale.Version, error) {
	const op = "postgres.Current"
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &hale.Error{Kind: hale.KindNotFound, Op: op, Message: fmt.Sprintf("%s/%s not found", typ, id)}
	}
	if err != nil {
		return nil, internal(op, err)
	}
	return &v, nil
}

// Current inside Update first locks the resource row (FOR UPDATE) until
// the transaction ends, then reads the version in a second statement:
// under READ COMMITTED that statement's snapshot includes a version
// committed while the first waited for the lock, which a join in the
// locking statement would not see. Both go in one round trip. If the
// row appeared between the two statements (a concurrent create
// committed), it does it again, to hold the lock on what it returns.
// Returns KindNotFound when the resource never existed.
func (t *tx) Current(ctx context.Context, typ, id string) (*hale.Version, error) {
	for attempt := 1; ; attempt++ {
		b := &pgx.Batch{}
		b.Queue("SELECT 1 FROM resource WHERE type = $1 AND id = $2 FOR UPDATE", typ, id)
		b.Queue(readCurrent, typ, id)
		br := t.tx.SendBatch(ctx, b)
		var one int
		lockErr := br.QueryRow().Scan(&one)
		v, err := scanVersion(br.QueryRow())
		if closeErr := br.Close(); err == nil {
			err = closeErr
		}
		if lockErr != nil && !errors.Is(lockErr, pgx.ErrNoRows) {
			return nil, internal("postgres.Current", lockErr)
		}
		if lockErr != nil && err == nil {
			if attempt < 3 {
				continue // created between the statements: lock it now
			}
			return nil, &hale.Error{Kind: hale.KindInternal, Op: "postgres.Current",
				Message: fmt.Sprintf("%s/%s: cannot lock the resource row", typ, id), Err: errRace}
		}
		if err == nil {
			t.locked[typ+"/"+id] = true
		}
		return currentResult(typ, id, v, err)
	}
}

// Version returns one version. Returns KindNotFound when it does not exist.
func (r *reader) Version(ctx context.Context, typ, id string, versionID int64) (*hale.Version, error) {
	const op = "postgres.Version"
	row := r.tx.QueryRow(ctx, "SELECT "+versionColumns+
		" FROM resource_version v WHERE v.type = $1 AND v.id = $2 AND v.version = $3", typ, id, versionID)
	v, err := scanVersion(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &hale.Error{Kind: hale.KindNotFound, Op: op,
			Message: fmt.Sprintf("%s/%s version %d not found", typ, id, versionID)}
	}
	if err != nil {
		return nil, internal(op, err)
	}
	return &v, nil
}

// args collects query arguments and hands out their $n placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// History returns the versions q selects, newest (highest seq) first.
func (r *reader) History(ctx context.Context, q hale.HistoryQuery) ([]hale.Version, error) {
	const op = "postgres.History"
	var (
		where []string
		a     args
	)
	if q.Type != "" {
		where = append(where, "v.type = "+a.add(q.Type))
	}
	if q.ID != "" {
		where = append(where, "v.id = "+a.add(q.ID))
	}
	if !q.Since.IsZero() {
		where = append(where, "v.last_updated >= "+a.add(q.Since.UnixMicro()))
	}
	if !q.AtEnd.IsZero() {
		// Written at or before the end of the period…
		where = append(where, "v.last_updated <= "+a.add(q.AtEnd.UnixMicro()))
	}
	if !q.AtStart.IsZero() {
		// …and not already replaced when the period started.
		where = append(where, `NOT EXISTS (SELECT 1 FROM resource_version n
			WHERE n.type = v.type AND n.id = v.id AND n.version > v.version AND n.last_updated <= `+
			a.add(q.AtStart.UnixMicro())+")")
	}
	if q.BeforeSeq > 0 {
		where = append(where, "v.seq < "+a.add(q.BeforeSeq))
	}
	query := "SELECT " + versionColumns + " FROM resource_version v"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY v.seq DESC"
	if q.Limit > 0 {
		query += " LIMIT " + a.add(q.Limit)
	}
	rows, err := r.tx.Query(ctx, query, a...)
	if err != nil {
		return nil, internal(op, err)
	}
	vs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (hale.Version, error) { return scanVersion(row) })
	if err != nil {
		return nil, internal(op, err)
	}
	return vs, nil
}

// Find returns the ids of current, not deleted resources of type typ that
// satisfy every match, in id order; it is a Search without sort keys or
// data (internal/sqlsearch). A Match without Values matches nothing (an
// empty OR is false).
func (r *reader) Find(ctx context.Context, typ string, matches []hale.Match, limit int) ([]string, error) {
	ids, err := sqlsearch.Find(ctx, dialect{}, r.query, typ, matches, limit)
	if err != nil {
		return nil, internal("postgres.Find", err)
	}
	return ids, nil
}

// Search runs a search (query.go), compiled by internal/sqlsearch.
// Returns KindInvalid for a query the store cannot run, such as a cursor
// from another search.
func (r *reader) Search(ctx context.Context, q *hale.Query) (*hale.SearchResult, error) {
	res, err := sqlsearch.Search(ctx, dialect{}, r.query, q)
	if err != nil {
		return nil, internal("postgres.Search", err)
	}
	return res, nil
}

// query is the sqlsearch.Querier on r's transaction.
func (r *reader) query(ctx context.Context, st sqlsearch.Statement, row func(scan func(...any) error) error) error {
	rows, err := r.tx.Query(ctx, st.SQL, st.Args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

// dialect is PostgreSQL's sqlsearch.Dialect.
type dialect struct{}

func (dialect) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

// UnionAlternatives: the planner answers an OR of index conditions with
// a bitmap OR of index scans.
func (dialect) UnionAlternatives() bool { return false }

// indexedChars is how many leading characters of idx_string.norm the
// find index holds (see migration 0001).
const indexedChars = 200

// NormPrefix is "norm starts with p" as index ranges: on the indexed
// left(norm, 200), which the find index serves, and, when p is longer
// than that, on the whole norm as well.
func (dialect) NormPrefix(w *sqlsearch.Writer, col, p string) {
	head := p
	if utf8.RuneCountInString(p) > indexedChars {
		head = string([]rune(p)[:indexedChars])
	}
	w.SQL("(")
	sqlsearch.Range(w, "left("+col+", 200)", head)
	if head != p {
		w.SQL(" AND ")
		sqlsearch.Range(w, col, p)
	}
	w.SQL(")")
}

// Contains uses strpos, not LIKE: nothing to escape.
func (dialect) Contains(w *sqlsearch.Writer, col, s string) {
	w.SQL("strpos(", col, ", ")
	w.Arg(s)
	w.SQL(") > 0")
}

func (dialect) StartsWith(w *sqlsearch.Writer, s, col string) {
	w.SQL("starts_with(")
	w.Arg(s)
	w.SQL("::text, ", col, ")")
}

// Count returns the number of current, not deleted resources of type typ,
// or of every type when typ is "".
func (r *reader) Count(ctx context.Context, typ string) (int64, error) {
	query, a := "SELECT count(*) FROM resource WHERE NOT deleted", args{}
	if typ != "" {
		query += " AND type = " + a.add(typ)
	}
	var n int64
	if err := r.tx.QueryRow(ctx, query, a...).Scan(&n); err != nil {
		return 0, internal("postgres.Count", err)
	}
	return n, nil
}

// Lock takes the transaction-scoped advisory lock named key: every node
// sharing the database waits for it until the holder's transaction ends.
func (t *tx) Lock(ctx context.Context, key string) error {
	if _, err := t.tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key); err != nil {
		return internal("postgres.Lock", err)
	}
	return nil
}

// putVersion inserts the version and points the resource row at it, in
// one statement: cur locks the resource row (if there is one) and reads
// its version; ins adds the version unless it is not newer or already
// exists; up inserts or updates the resource row. It returns cur's
// version, ins's seq and up's seq, each NULL when that step did nothing.
const putVersion = `WITH cur AS (
	SELECT version FROM resource WHERE type = $1 AND id = $2 FOR UPDATE
), ins AS (
	INSERT INTO resource_version (type, id, version, last_updated, method, deleted, data)
	SELECT $1, $2, $3, $4, $5, $6, $7
	WHERE NOT EXISTS (SELECT 1 FROM cur WHERE cur.version >= $3)
	ON CONFLICT (type, id, version) DO NOTHING
	RETURNING seq
), up AS (
	INSERT INTO resource (type, id, version, seq, deleted, last_updated, first_seq)
	SELECT $1, $2, $3, ins.seq, $6, $4, ins.seq FROM ins
	ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, seq = excluded.seq,
		deleted = excluded.deleted, last_updated = excluded.last_updated
	WHERE resource.version < excluded.version
	RETURNING seq
)
SELECT (SELECT version FROM cur), (SELECT seq FROM ins), (SELECT seq FROM up)`

// Put stores v as the resource's newest version, points the resource row
// at it and replaces the resource's index rows with idx.
// Returns KindConflict when v.VersionID is not newer than the current
// version (in particular when it already exists). A conflict fails the
// Put, not the transaction. Unless this transaction read the resource
// with Current first (and so held its row locked), the conflict may come
// from a concurrent writer, and Update runs fn again.
func (t *tx) Put(ctx context.Context, v *hale.Version, idx *hale.Index) error {
	const op = "postgres.Put"
	if err := checkVersion(v); err != nil {
		return &hale.Error{Kind: hale.KindInternal, Op: op, Message: err.Error()}
	}
	if v.LastUpdated.IsZero() {
		v.LastUpdated = t.now()
	}
	data := v.Data
	if v.Deleted {
		// A deleted version has no data and no index rows: index rows
		// exist only for live resources (internal/sqlsearch relies on it).
		data, idx = nil, nil
	}
	var current, inserted, pointed *int64
	err := t.tx.QueryRow(ctx, putVersion, v.Type, v.ID, v.VersionID, v.LastUpdated.UnixMicro(), v.Method,
		v.Deleted, data).Scan(&current, &inserted, &pointed)
	if err != nil {
		return internal(op, err)
	}
	switch {
	case inserted == nil && current != nil && t.locked[v.Type+"/"+v.ID]:
		// Not newer than the current version, which this transaction
		// has held locked since it read it: running fn again cannot help.
		return conflict(v, *current, nil)
	case inserted == nil && current != nil:
		// Not newer than the current version, read without the lock:
		// a concurrent transaction may have written it since fn looked.
		return conflict(v, *current, errRace)
	case inserted == nil:
		// No resource row when cur looked, yet the version exists: a
		// concurrent transaction created the resource.
		return conflict(v, 0, errRace)
	case pointed == nil:
		// A concurrent transaction made a newer version current after
		// cur looked: take the orphan version back out.
		if _, err := t.tx.Exec(ctx, "DELETE FROM resource_version WHERE seq = $1", *inserted); err != nil {
			return internal(op, err)
		}
		return conflict(v, 0, errRace)
	}
	t.locked[v.Type+"/"+v.ID] = true
	b := &pgx.Batch{}
	indexStatements(b, v.Type, v.ID, current != nil, idx)
	t.defer_.hold(b)
	v.Seq = *inserted
	return nil
}

// indexStatements queues the statements that delete the resource's index
// and sort-key rows and insert idx's and the sort keys computed from
// them, one statement per table. They run after putVersion, which holds
// the resource row locked, so their snapshot includes the rows of every
// earlier writer of the resource.
func indexStatements(b *pgx.Batch, typ, id string, existed bool, idx *hale.Index) {
	// A resource that had no row before this Put has no index rows:
	// a create skips the ten DELETEs.
	for _, table := range append(indexTables, sqlsearch.SortTables...) {
		if existed {
			b.Queue("DELETE FROM "+table+" WHERE type = $1 AND id = $2", typ, id)
		}
	}
	if idx == nil {
		idx = &hale.Index{}
	}
	if n := len(idx.Tokens); n > 0 {
		params, groups, systems, codes := make([]string, n), make([]int32, n), make([]string, n), make([]string, n)
		for i, x := range idx.Tokens {
			params[i], groups[i], systems[i], codes[i] = x.Param, int32(x.Group), x.System, x.Code
		}
		b.Queue(`INSERT INTO idx_token (type, id, param, grp, system, code)
			SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::text[], $6::text[])`,
			typ, id, params, groups, systems, codes)
	}
	if n := len(idx.Strings); n > 0 {
		params, groups, norms, exacts := make([]string, 0, n), make([]int32, 0, n), make([]string, 0, n), make([]string, 0, n)
		var tparams, tnorms []string
		var tgroups []int32
		for _, x := range idx.Strings {
			if sqlsearch.TextParam(x.Param) {
				tparams, tgroups, tnorms = append(tparams, x.Param), append(tgroups, int32(x.Group)), append(tnorms, x.Norm)
				continue
			}
			params, groups, norms, exacts = append(params, x.Param), append(groups, int32(x.Group)), append(norms, x.Norm), append(exacts, x.Exact)
		}
		if len(params) > 0 {
			b.Queue(`INSERT INTO idx_string (type, id, param, grp, norm, exact)
			SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::text[], $6::text[])`,
				typ, id, params, groups, norms, exacts)
		}
		if len(tparams) > 0 {
			b.Queue(`INSERT INTO idx_text (type, id, param, grp, norm)
			SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::text[])`,
				typ, id, tparams, tgroups, tnorms)
		}
	}
	if n := len(idx.References); n > 0 {
		params, groups := make([]string, n), make([]int32, n)
		types, ids, urls := make([]string, n), make([]string, n), make([]string, n)
		for i, x := range idx.References {
			params[i], groups[i], types[i], ids[i], urls[i] = x.Param, int32(x.Group), x.TargetType, x.TargetID, x.URL
		}
		b.Queue(`INSERT INTO idx_reference (type, id, param, grp, target_type, target_id, url)
			SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::text[], $6::text[], $7::text[])`,
			typ, id, params, groups, types, ids, urls)
	}
	if n := len(idx.Dates); n > 0 {
		params, groups, los, his := make([]string, n), make([]int32, n), make([]int64, n), make([]int64, n)
		for i, x := range idx.Dates {
			params[i], groups[i], los[i], his[i] = x.Param, int32(x.Group), x.Lo, x.Hi
		}
		b.Queue(`INSERT INTO idx_date (type, id, param, grp, lo, hi)
			SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::bigint[], $6::bigint[])`,
			typ, id, params, groups, los, his)
	}
	if n := len(idx.Numbers); n > 0 {
		params, groups := make([]string, n), make([]int32, n)
		values, los, his := make([]float64, n), make([]float64, n), make([]float64, n)
		for i, x := range idx.Numbers {
			params[i], groups[i], values[i], los[i], his[i] = x.Param, int32(x.Group), x.Value, x.Lo, x.Hi
		}
		b.Queue(`INSERT INTO idx_number (type, id, param, grp, value, lo, hi)
			SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::float8[], $6::float8[], $7::float8[])`,
			typ, id, params, groups, values, los, his)
	}
	if n := len(idx.Quantities); n > 0 {
		params, groups := make([]string, n), make([]int32, n)
		systems, codes, units := make([]string, n), make([]string, n), make([]string, n)
		values, los, his := make([]float64, n), make([]float64, n), make([]float64, n)
		canonCodes := make([]string, n)
		canonLos, canonHis, canonValues := make([]*float64, n), make([]*float64, n), make([]*float64, n)
		for i, x := range idx.Quantities {
			params[i], groups[i], systems[i], codes[i], units[i] = x.Param, int32(x.Group), x.System, x.Code, x.Unit
			values[i], los[i], his[i], canonCodes[i] = x.Value, x.Lo, x.Hi, x.CanonCode
			if x.CanonCode != "" { // NULL unless the unit converts
				lo, hi, mid := x.CanonLo, x.CanonHi, x.CanonLo+(x.CanonHi-x.CanonLo)/2
				canonLos[i], canonHis[i], canonValues[i] = &lo, &hi, &mid
			}
		}
		b.Queue(`INSERT INTO idx_quantity (type, id, param, grp, system, code, unit, value, lo, hi,
				canon_code, canon_lo, canon_hi, canon_value)
			SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::text[], $6::text[], $7::text[],
				$8::float8[], $9::float8[], $10::float8[], $11::text[], $12::float8[], $13::float8[], $14::float8[])`,
			typ, id, params, groups, systems, codes, units, values, los, his, canonCodes, canonLos, canonHis, canonValues)
	}
	if n := len(idx.URIs); n > 0 {
		params, groups, uris := make([]string, n), make([]int32, n), make([]string, n)
		for i, x := range idx.URIs {
			params[i], groups[i], uris[i] = x.Param, int32(x.Group), x.URI
		}
		b.Queue(`INSERT INTO idx_uri (type, id, param, grp, uri)
			SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::text[])`, typ, id, params, groups, uris)
	}
	keys := sqlsearch.Keys(idx)
	if n := len(keys.Text); n > 0 {
		params, los, his := make([]string, n), make([]string, n), make([]string, n)
		for i, x := range keys.Text {
			params[i], los[i], his[i] = x.Param, x.Lo, x.Hi
		}
		b.Queue(`INSERT INTO `+sqlsearch.SortTextTable+` (type, id, param, lo, hi)
			SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[])`, typ, id, params, los, his)
	}
	if n := len(keys.Int); n > 0 {
		params, los, his := make([]string, n), make([]int64, n), make([]int64, n)
		for i, x := range keys.Int {
			params[i], los[i], his[i] = x.Param, x.Lo, x.Hi
		}
		b.Queue(`INSERT INTO `+sqlsearch.SortIntTable+` (type, id, param, lo, hi)
			SELECT $1, $2, * FROM unnest($3::text[], $4::bigint[], $5::bigint[])`, typ, id, params, los, his)
	}
	if n := len(keys.Real); n > 0 {
		params, los, his := make([]string, n), make([]float64, n), make([]float64, n)
		for i, x := range keys.Real {
			params[i], los[i], his[i] = x.Param, x.Lo, x.Hi
		}
		b.Queue(`INSERT INTO `+sqlsearch.SortRealTable+` (type, id, param, lo, hi)
			SELECT $1, $2, * FROM unnest($3::text[], $4::float8[], $5::float8[])`, typ, id, params, los, his)
	}
}

// indexTables are the search index tables, each holding the rows of the
// current version of each live resource.
var indexTables = []string{"idx_token", "idx_string", "idx_reference", "idx_date", "idx_number", "idx_quantity", "idx_uri", sqlsearch.TextTable}

// checkVersion rejects a Version no caller should build.
func checkVersion(v *hale.Version) error {
	switch {
	case v.Type == "" || v.ID == "":
		return errors.New("version without type or id")
	case v.VersionID < 1:
		return fmt.Errorf("%s/%s: version id %d is not positive", v.Type, v.ID, v.VersionID)
	case !v.Deleted && v.Data == nil:
		return fmt.Errorf("%s/%s version %d: no data", v.Type, v.ID, v.VersionID)
	}
	return nil
}

// Reindex replaces the index rows of a current, not deleted resource
// without writing a version (hale.Reindexer). Returns KindNotFound when
// there is no such resource.
func (t *tx) Reindex(ctx context.Context, typ, id string, idx *hale.Index) error {
	v, err := t.Current(ctx, typ, id) // locks the resource row
	if err != nil {
		return err
	}
	if v.Deleted {
		return &hale.Error{Kind: hale.KindNotFound, Op: "postgres.Reindex", Message: typ + "/" + id + " is deleted"}
	}
	b := &pgx.Batch{}
	indexStatements(b, typ, id, true, idx)
	return t.tx.SendBatch(ctx, b).Close()
}
