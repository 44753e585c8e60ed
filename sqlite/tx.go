package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hale-ehr/hale"
)

// reader implements hale.Reader on one transaction: a read transaction
// for View, the write transaction for Update (so reads see own writes).
type reader struct {
	q  *sql.Tx
	st statements // of the database q belongs to
}

// tx implements hale.Tx on the writer's transaction.
type tx struct {
	reader
	now hale.Now
}

var (
	_ hale.Reader = (*reader)(nil)
	_ hale.Tx     = (*tx)(nil)
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
// satisfy every match. Each Match becomes one "r.id IN (…)" condition
// whose subquery is answered from that index table's find index; a Match
// without Values matches nothing (an empty OR is false).
func (r *reader) Find(ctx context.Context, typ string, matches []hale.Match, limit int) ([]string, error) {
	const op = "sqlite.Find"
	query := "SELECT r.id FROM resource r WHERE r.type = ? AND r.deleted = 0"
	args := []any{typ}
	for _, m := range matches {
		if len(m.Values) == 0 {
			return nil, nil
		}
		cond, condArgs, err := matchSQL(typ, m)
		if err != nil {
			return nil, &hale.Error{Kind: hale.KindInternal, Op: op, Message: err.Error()}
		}
		query += " AND " + cond
		args = append(args, condArgs...)
	}
	query += " ORDER BY r.id"
	if limit > 0 {
		query, args = query+" LIMIT ?", append(args, limit)
	}
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, internal(op, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return ids, nil
}

// matchSQL returns the condition on r.id for one Match, with its
// arguments. Every value is a bound parameter.
func matchSQL(typ string, m hale.Match) (string, []any, error) {
	type alternative struct {
		cond string
		args []any
	}
	var alts []alternative
	alt := func(cond string, a ...any) { alts = append(alts, alternative{cond, a}) }
	var table string
	switch m.Kind {
	case hale.MatchID:
		marks, args := make([]string, len(m.Values)), make([]any, len(m.Values))
		for i, v := range m.Values {
			marks[i], args[i] = "?", v.Code
		}
		return "r.id IN (" + strings.Join(marks, ", ") + ")", args, nil
	case hale.MatchToken:
		table = "idx_token"
		for _, v := range m.Values {
			switch {
			case v.AnyCode && v.NoSystem:
				alt("system = ''")
			case v.AnyCode:
				alt("system = ?", v.System)
			case v.NoSystem:
				alt("(system = '' AND code = ?)", v.Code)
			case v.System != "":
				alt("(code = ? AND system = ?)", v.Code, v.System)
			default:
				alt("code = ?", v.Code)
			}
		}
	case hale.MatchString:
		table = "idx_string"
		for _, v := range m.Values {
			if hi, ok := prefixEnd(v.Code); ok {
				alt("(norm >= ? AND norm < ?)", v.Code, hi)
			} else {
				alt("norm >= ?", v.Code)
			}
		}
	case hale.MatchStringExact:
		table = "idx_string"
		for _, v := range m.Values {
			alt("exact = ?", v.Code)
		}
	case hale.MatchStringContains:
		table = "idx_string"
		for _, v := range m.Values {
			alt("instr(norm, ?) > 0", v.Code)
		}
	case hale.MatchReference:
		table = "idx_reference"
		for _, v := range m.Values {
			switch {
			case v.URL != "":
				alt("url = ?", v.URL)
			case v.TargetType != "":
				alt("(target_id = ? AND target_type = ?)", v.TargetID, v.TargetType)
			default:
				alt("target_id = ?", v.TargetID)
			}
		}
	default:
		return "", nil, fmt.Errorf("unknown match kind %d for parameter %q", m.Kind, m.Param)
	}
	// One SELECT per alternative, joined by UNION ALL rather than OR, so
	// that each is a range of the find index whatever the planner knows.
	var (
		parts []string
		args  []any
	)
	for _, a := range alts {
		parts = append(parts, "SELECT id FROM "+table+" WHERE type = ? AND param = ? AND "+a.cond)
		args = append(append(args, typ, m.Param), a.args...)
	}
	return "r.id IN (" + strings.Join(parts, " UNION ALL ") + ")", args, nil
}

// prefixEnd returns the smallest string greater than every string that
// starts with p, so that "starts with p" is the index range [p, end).
// UTF-8 byte order is code point order, so it is p with its last code
// point incremented (dropping trailing U+10FFFF). ok is false when no
// such bound exists (p empty or all U+10FFFF): the range is open.
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
		data = nil
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

// replaceIndex deletes the resource's index rows (if it had any) and
// inserts idx's.
func (t *tx) replaceIndex(ctx context.Context, typ, id string, existed bool, idx *hale.Index) error {
	if existed {
		for _, query := range sqlDeleteIndex {
			if err := t.exec(ctx, query, typ, id); err != nil {
				return err
			}
		}
	}
	if idx == nil {
		return nil
	}
	for _, tv := range idx.Tokens {
		if err := t.exec(ctx, sqlInsertToken, typ, id, tv.Param, tv.System, tv.Code); err != nil {
			return err
		}
	}
	for _, sv := range idx.Strings {
		if err := t.exec(ctx, sqlInsertString, typ, id, sv.Param, sv.Norm, sv.Exact); err != nil {
			return err
		}
	}
	for _, rv := range idx.References {
		if err := t.exec(ctx, sqlInsertReference, typ, id, rv.Param, rv.TargetType, rv.TargetID, rv.URL); err != nil {
			return err
		}
	}
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
