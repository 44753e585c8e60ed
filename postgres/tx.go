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
	"github.com/jackc/pgx/v5"
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
}

var (
	_ hale.Reader = (*reader)(nil)
	_ hale.Tx     = (*tx)(nil)
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
// satisfy every match. Each Match becomes one "r.id IN (…)" condition
// whose subquery is answered from that index table's find index; a Match
// without Values matches nothing (an empty OR is false).
func (r *reader) Find(ctx context.Context, typ string, matches []hale.Match, limit int) ([]string, error) {
	const op = "postgres.Find"
	var a args
	query := "SELECT r.id FROM resource r WHERE r.type = " + a.add(typ) + " AND NOT r.deleted"
	for _, m := range matches {
		if len(m.Values) == 0 {
			return nil, nil
		}
		cond, err := matchSQL(&a, typ, m)
		if err != nil {
			return nil, &hale.Error{Kind: hale.KindInternal, Op: op, Message: err.Error()}
		}
		query += " AND " + cond
	}
	query += " ORDER BY r.id"
	if limit > 0 {
		query += " LIMIT " + a.add(limit)
	}
	rows, err := r.tx.Query(ctx, query, a...)
	if err != nil {
		return nil, internal(op, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, internal(op, err)
	}
	return ids, nil
}

// indexedChars is how many leading characters of idx_string.norm the
// find index holds (see the migration).
const indexedChars = 200

// matchSQL returns the condition on r.id for one Match. Every value is a
// bound parameter.
func matchSQL(a *args, typ string, m hale.Match) (string, error) {
	var alts []string
	var table string
	switch m.Kind {
	case hale.MatchID:
		for _, v := range m.Values {
			alts = append(alts, a.add(v.Code))
		}
		return "r.id IN (" + strings.Join(alts, ", ") + ")", nil
	case hale.MatchToken:
		table = "idx_token"
		for _, v := range m.Values {
			switch {
			case v.AnyCode && v.NoSystem:
				alts = append(alts, "system = ''")
			case v.AnyCode:
				alts = append(alts, "system = "+a.add(v.System))
			case v.NoSystem:
				alts = append(alts, "(system = '' AND code = "+a.add(v.Code)+")")
			case v.System != "":
				alts = append(alts, "(code = "+a.add(v.Code)+" AND system = "+a.add(v.System)+")")
			default:
				alts = append(alts, "code = "+a.add(v.Code))
			}
		}
	case hale.MatchString:
		table = "idx_string"
		for _, v := range m.Values {
			alts = append(alts, prefixMatch(a, v.Code))
		}
	case hale.MatchStringExact:
		table = "idx_string"
		for _, v := range m.Values {
			alts = append(alts, "exact = "+a.add(v.Code))
		}
	case hale.MatchStringContains:
		table = "idx_string"
		for _, v := range m.Values {
			alts = append(alts, "strpos(norm, "+a.add(v.Code)+") > 0")
		}
	case hale.MatchReference:
		table = "idx_reference"
		for _, v := range m.Values {
			switch {
			case v.URL != "":
				alts = append(alts, "url = "+a.add(v.URL))
			case v.TargetType != "":
				alts = append(alts, "(target_id = "+a.add(v.TargetID)+" AND target_type = "+a.add(v.TargetType)+")")
			default:
				alts = append(alts, "target_id = "+a.add(v.TargetID))
			}
		}
	default:
		return "", fmt.Errorf("unknown match kind %d for parameter %q", m.Kind, m.Param)
	}
	return "r.id IN (SELECT id FROM " + table + " WHERE type = " + a.add(typ) + " AND param = " + a.add(m.Param) +
		" AND (" + strings.Join(alts, " OR ") + "))", nil
}

// prefixMatch is "norm starts with p" as index ranges: on the indexed
// left(norm, 200), which the find index serves, and, when p is longer
// than that, on the whole norm as well.
func prefixMatch(a *args, p string) string {
	head := p
	if utf8.RuneCountInString(p) > indexedChars {
		head = string([]rune(p)[:indexedChars])
	}
	cond := "left(norm, 200) >= " + a.add(head)
	if end, ok := prefixEnd(head); ok {
		cond += " AND left(norm, 200) < " + a.add(end)
	}
	if head != p {
		cond += " AND norm >= " + a.add(p)
		if end, ok := prefixEnd(p); ok {
			cond += " AND norm < " + a.add(end)
		}
	}
	return "(" + cond + ")"
}

// prefixEnd returns the smallest string greater than every string that
// starts with p, so that "starts with p" is the range [p, end) in the "C"
// collation. UTF-8 byte order is code point order, so it is p with its
// last code point incremented (dropping trailing U+10FFFF). ok is false
// when no such bound exists (p empty or all U+10FFFF).
func prefixEnd(p string) (end string, ok bool) {
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		if r == utf8.MaxRune || r == utf8.RuneError && size == 1 {
			continue
		}
		r++
		if r >= 0xD800 && r <= 0xDFFF { // surrogates are not encodable
			r = 0xE000
		}
		return p + string(r), true
	}
	return "", false
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
	INSERT INTO resource (type, id, version, seq, deleted, last_updated)
	SELECT $1, $2, $3, ins.seq, $6, $4 FROM ins
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
		data = nil
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
	if err := t.replaceIndex(ctx, v.Type, v.ID, idx); err != nil {
		return internal(op, err)
	}
	v.Seq = *inserted
	return nil
}

// replaceIndex deletes the resource's index rows and inserts idx's, one
// statement per table, all in one round trip. It runs after putVersion,
// which holds the resource row locked, so its snapshot includes the rows
// of every earlier writer of the resource.
func (t *tx) replaceIndex(ctx context.Context, typ, id string, idx *hale.Index) error {
	b := &pgx.Batch{}
	for _, table := range []string{"idx_token", "idx_string", "idx_reference"} {
		b.Queue("DELETE FROM "+table+" WHERE type = $1 AND id = $2", typ, id)
	}
	if idx != nil && len(idx.Tokens) > 0 {
		var params, systems, codes []string
		for _, tv := range idx.Tokens {
			params, systems, codes = append(params, tv.Param), append(systems, tv.System), append(codes, tv.Code)
		}
		b.Queue(`INSERT INTO idx_token (type, id, param, system, code)
			SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[])`, typ, id, params, systems, codes)
	}
	if idx != nil && len(idx.Strings) > 0 {
		var params, norms, exacts []string
		for _, sv := range idx.Strings {
			params, norms, exacts = append(params, sv.Param), append(norms, sv.Norm), append(exacts, sv.Exact)
		}
		b.Queue(`INSERT INTO idx_string (type, id, param, norm, exact)
			SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[])`, typ, id, params, norms, exacts)
	}
	if idx != nil && len(idx.References) > 0 {
		var params, types, ids, urls []string
		for _, rv := range idx.References {
			params, types = append(params, rv.Param), append(types, rv.TargetType)
			ids, urls = append(ids, rv.TargetID), append(urls, rv.URL)
		}
		b.Queue(`INSERT INTO idx_reference (type, id, param, target_type, target_id, url)
			SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[])`,
			typ, id, params, types, ids, urls)
	}
	return t.tx.SendBatch(ctx, b).Close()
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
