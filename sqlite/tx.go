package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/internal/sqlsearch"
)

// reader implements hale.Reader on one transaction: a read transaction
// for View, the write transaction for Update (so reads see own writes).
type reader struct {
	q  *sql.Tx
	st statements // of the database q belongs to
	// beforeQuery, when set, runs before each search query: the write
	// transaction's flush of the index rows it holds.
	beforeQuery func(context.Context) error
}

// tx implements hale.Tx on the writer's transaction.
type tx struct {
	reader
	now  hale.Now
	held heldRows // index rows queued by Put, written by flush
}

var (
	_ hale.Reader   = (*reader)(nil)
	_ hale.Searcher = (*reader)(nil)
	_ hale.Tx       = (*tx)(nil)
	_ hale.Searcher = (*tx)(nil)
)

func scanVersion(row interface{ Scan(...any) error }) (hale.Version, error) {
	var v hale.Version
	var lastUpdated int64
	err := row.Scan(&v.Seq, &v.Type, &v.ID, &v.VersionID, &lastUpdated, &v.Method, &v.Deleted, &v.Data)
	v.LastUpdated = time.UnixMicro(lastUpdated).UTC()
	return v, err
}

// Current returns the version the resource row points at.
// Returns KindNotFound when the resource never existed.
func (r *reader) Current(ctx context.Context, typ, id string) (*hale.Version, error) {
	v, err := scanVersion(r.queryRow(ctx, sqlCurrent, typ, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &hale.Error{Kind: hale.KindNotFound, Op: "sqlite.Current",
			Message: fmt.Sprintf("%s/%s not found", typ, id)}
	}
	if err != nil {
		return nil, internal("sqlite.Current", err)
	}
	return &v, nil
}

// Version returns one version. Returns KindNotFound when it does not exist.
func (r *reader) Version(ctx context.Context, typ, id string, versionID int64) (*hale.Version, error) {
	v, err := scanVersion(r.queryRow(ctx, sqlVersion, typ, id, versionID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &hale.Error{Kind: hale.KindNotFound, Op: "sqlite.Version",
			Message: fmt.Sprintf("%s/%s version %d not found", typ, id, versionID)}
	}
	if err != nil {
		return nil, internal("sqlite.Version", err)
	}
	return &v, nil
}

// History returns the versions q selects, newest (highest seq) first.
func (r *reader) History(ctx context.Context, q hale.HistoryQuery) ([]hale.Version, error) {
	const op = "sqlite.History"
	var (
		where []string
		args  []any
	)
	if q.Type != "" {
		where, args = append(where, "v.type = ?"), append(args, q.Type)
	}
	if q.ID != "" {
		where, args = append(where, "v.id = ?"), append(args, q.ID)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "v.last_updated >= ?"), append(args, q.Since.UnixMicro())
	}
	if !q.AtEnd.IsZero() {
		// Written at or before the end of the period…
		where, args = append(where, "v.last_updated <= ?"), append(args, q.AtEnd.UnixMicro())
	}
	if !q.AtStart.IsZero() {
		// …and not already replaced when the period started.
		where = append(where, `NOT EXISTS (SELECT 1 FROM resource_version n
			WHERE n.type = v.type AND n.id = v.id AND n.version > v.version AND n.last_updated <= ?)`)
		args = append(args, q.AtStart.UnixMicro())
	}
	if q.BeforeSeq > 0 {
		where, args = append(where, "v.seq < ?"), append(args, q.BeforeSeq)
	}
	query := "SELECT " + versionColumns + " FROM resource_version v"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY v.seq DESC"
	if q.Limit > 0 {
		query, args = query+" LIMIT ?", append(args, q.Limit)
	}
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var vs []hale.Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, internal(op, err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
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
		return nil, internal("sqlite.Find", err)
	}
	return ids, nil
}

// Search runs a search (query.go), compiled by internal/sqlsearch.
// Returns KindInvalid for a query the store cannot run, such as a cursor
// from another search.
func (r *reader) Search(ctx context.Context, q *hale.Query) (*hale.SearchResult, error) {
	res, err := sqlsearch.Search(ctx, dialect{}, r.query, q)
	if err != nil {
		return nil, internal("sqlite.Search", err)
	}
	return res, nil
}

// query is the sqlsearch.Querier on r's transaction.
func (r *reader) query(ctx context.Context, st sqlsearch.Statement, row func(scan func(...any) error) error) error {
	if r.beforeQuery != nil {
		if err := r.beforeQuery(ctx); err != nil {
			return err
		}
	}
	rows, err := r.q.QueryContext(ctx, st.SQL, st.Args...)
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

// dialect is SQLite's sqlsearch.Dialect.
type dialect struct{}

func (dialect) Placeholder(int) string { return "?" }

// UnionAlternatives: with OR, SQLite without statistics falls back to
// scanning the parameter's rows; a UNION ALL of SELECTs is one index
// range each.
func (dialect) UnionAlternatives() bool { return true }

// NormPrefix is a range of the find index, which holds the whole norm.
func (dialect) NormPrefix(w *sqlsearch.Writer, col, p string) { sqlsearch.Range(w, col, p) }

// Contains uses instr, not LIKE: nothing to escape.
func (dialect) Contains(w *sqlsearch.Writer, col, s string) {
	w.SQL("instr(", col, ", ")
	w.Arg(s)
	w.SQL(") > 0")
}

// StartsWith compares characters: substr and length count characters
// of text in SQLite.
func (dialect) StartsWith(w *sqlsearch.Writer, s, col string) {
	w.SQL("substr(")
	w.Arg(s)
	w.SQL(", 1, length(", col, ")) = ", col)
}

// Count returns the number of current, not deleted resources of type typ,
// or of every type when typ is "".
func (r *reader) Count(ctx context.Context, typ string) (int64, error) {
	row := r.queryRow(ctx, sqlCountAll)
	if typ != "" {
		row = r.queryRow(ctx, sqlCount, typ)
	}
	var n int64
	if err := row.Scan(&n); err != nil {
		return 0, internal("sqlite.Count", err)
	}
	return n, nil
}

// Lock does nothing: every Update already holds the database's single
// write lock (BEGIN IMMEDIATE on the one writer connection) from its start
// to its end, which serialises all writers, so any named lock is already
// held exclusively.
func (t *tx) Lock(ctx context.Context, key string) error { return nil }

// Put stores v as the resource's newest version, points the resource row
// at it and replaces the resource's index rows with idx.
// Returns KindConflict when v.VersionID is not newer than the current
// version (in particular when it already exists).
func (t *tx) Put(ctx context.Context, v *hale.Version, idx *hale.Index) error {
	const op = "sqlite.Put"
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
	lastUpdated := v.LastUpdated.UnixMicro()

	var current int64
	err := t.queryRow(ctx, sqlCurrentVersion, v.Type, v.ID).Scan(&current)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return internal(op, err)
	}
	if exists && current >= v.VersionID {
		return conflict(op, v, current)
	}
	var seq int64
	err = t.queryRow(ctx, sqlInsertVersion, v.Type, v.ID, v.VersionID, lastUpdated, v.Method, v.Deleted, data).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return conflict(op, v, current)
	}
	if err != nil {
		return internal(op, err)
	}
	if err := t.exec(ctx, sqlPointResource, v.Type, v.ID, v.VersionID, seq, v.Deleted, lastUpdated); err != nil {
		return internal(op, err)
	}
	if err := t.replaceIndex(ctx, v.Type, v.ID, exists, idx); err != nil {
		return internal(op, err)
	}
	v.Seq = seq
	return nil
}

// replaceIndex deletes the resource's index and sort-key rows (if it had
// any) and queues idx's rows and the sort keys computed from them; flush
// writes the queue.
func (t *tx) replaceIndex(ctx context.Context, typ, id string, existed bool, idx *hale.Index) error {
	if existed {
		// The queue may hold this resource's rows of an earlier Put in
		// this transaction: write them first so the DELETEs see them.
		if err := t.flush(ctx); err != nil {
			return err
		}
		for _, query := range sqlDeleteIndex {
			if err := t.exec(ctx, query, typ, id); err != nil {
				return err
			}
		}
	}
	if idx == nil {
		return nil
	}
	h := &t.held
	for _, x := range idx.Tokens {
		h.add(tabToken, typ, id, x.Param, x.Group, x.System, x.Code)
	}
	for _, x := range idx.Strings {
		if sqlsearch.TextParam(x.Param) {
			h.add(tabText, typ, id, x.Param, x.Group, x.Norm)
			continue
		}
		h.add(tabString, typ, id, x.Param, x.Group, x.Norm, x.Exact)
	}
	for _, x := range idx.References {
		h.add(tabReference, typ, id, x.Param, x.Group, x.TargetType, x.TargetID, x.URL)
	}
	for _, x := range idx.Dates {
		h.add(tabDate, typ, id, x.Param, x.Group, x.Lo, x.Hi)
	}
	for _, x := range idx.Numbers {
		h.add(tabNumber, typ, id, x.Param, x.Group, x.Value, x.Lo, x.Hi)
	}
	for _, x := range idx.Quantities {
		var lo, hi, value any // NULL unless the unit converts
		if x.CanonCode != "" {
			lo, hi, value = x.CanonLo, x.CanonHi, x.CanonLo+(x.CanonHi-x.CanonLo)/2
		}
		h.add(tabQuantity, typ, id, x.Param, x.Group, x.System, x.Code, x.Unit,
			x.Value, x.Lo, x.Hi, x.CanonCode, lo, hi, value)
	}
	for _, x := range idx.URIs {
		h.add(tabURI, typ, id, x.Param, x.Group, x.URI)
	}
	keys := sqlsearch.Keys(idx)
	for _, x := range keys.Text {
		h.add(tabSortText, typ, id, x.Param, x.Lo, x.Hi)
	}
	for _, x := range keys.Int {
		h.add(tabSortInt, typ, id, x.Param, x.Lo, x.Hi)
	}
	for _, x := range keys.Real {
		h.add(tabSortReal, typ, id, x.Param, x.Lo, x.Hi)
	}
	if h.rows >= maxHeldRows {
		return t.flush(ctx)
	}
	return nil
}

// maxHeldRows bounds the queue of index rows a transaction holds.
const maxHeldRows = 20000

// heldRows are the index rows Puts queued and flush has not written yet:
// for each insert table, the rows' values one after another. Writing a
// transaction's rows table by table in multi-row INSERTs costs a few
// dozen statements for a 100-entry bundle instead of about 3,000.
type heldRows struct {
	args [len(insertTables)][]any
	rows int
}

func (h *heldRows) add(table int, values ...any) {
	h.args[table] = append(h.args[table], values...)
	h.rows++
}

// flush writes the held rows, in statements of up to maxRowsPerInsert
// rows, and empties the queue. Every read of the index tables in the
// transaction (Search, Find) and its commit flush first.
func (t *tx) flush(ctx context.Context) error {
	if t.held.rows == 0 {
		return nil
	}
	for table, args := range t.held.args {
		cols := insertTables[table].cols
		for len(args) > 0 {
			n := len(args) / cols
			k := maxRowsPerInsert
			for k > n {
				k /= 2
			}
			if err := t.exec(ctx, insertSQL(table, k), args[:k*cols]...); err != nil {
				return err
			}
			args = args[k*cols:]
		}
		t.held.args[table] = t.held.args[table][:0]
	}
	t.held.rows = 0
	return nil
}

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

func conflict(op string, v *hale.Version, current int64) error {
	return &hale.Error{Kind: hale.KindConflict, Op: op, Message: fmt.Sprintf(
		"%s/%s version %d conflicts with the current version %d", v.Type, v.ID, v.VersionID, current)}
}

// Reindex replaces the index rows of a current, not deleted resource
// without writing a version (hale.Reindexer). Returns KindNotFound when
// there is no such resource.
func (t *tx) Reindex(ctx context.Context, typ, id string, idx *hale.Index) error {
	v, err := t.Current(ctx, typ, id)
	if err != nil {
		return err
	}
	if v.Deleted {
		return &hale.Error{Kind: hale.KindNotFound, Op: "sqlite.Reindex", Message: typ + "/" + id + " is deleted"}
	}
	return t.replaceIndex(ctx, typ, id, true, idx)
}
