// Package sqlsearch compiles the search part of the storage contract
// (hale.Query, query.go) to SQL for the engines that share Hale's
// relational schema, sqlite and postgres, and runs it through a small
// interface each engine implements on its own transaction.
//
// Every value of a Query is a bound parameter; table and column names
// come from this package, never from the request. What differs between
// the two databases (placeholders, how alternatives are written, the
// string functions, PostgreSQL's truncated string index) is behind
// Dialect. docs/database.md shows the SQL for a worked example.
//
// The compiler relies on one invariant both engines keep: an index row
// (idx_*) exists only for the current, not deleted version of its
// resource. A Put replaces a resource's rows, and a delete stores none.
// So a set of index rows is a set of live resources, and a count can be
// answered from an index alone.
package sqlsearch

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// Dialect is what differs between the engines' SQL.
type Dialect interface {
	// Placeholder is the text of the n-th (1-based) bound parameter:
	// "?" for SQLite, "$n" for PostgreSQL.
	Placeholder(n int) string
	// UnionAlternatives reports whether the alternatives (OR) of a
	// condition that selects resource ids are written as one SELECT each,
	// joined by UNION ALL, so that each is an index range even without
	// planner statistics (SQLite), rather than one SELECT with OR.
	UnionAlternatives() bool
	// NormPrefix writes the condition "col starts with p" on a folded
	// string column (idx_string.norm).
	NormPrefix(w *Writer, col, p string)
	// Contains writes "col contains s".
	Contains(w *Writer, col, s string)
	// StartsWith writes "the bound value s starts with col".
	StartsWith(w *Writer, s, col string)
	// JSONText writes the text at path (object keys and array indexes,
	// from code) in the JSON document of column col, NULL when absent,
	// compared byte by byte.
	JSONText(w *Writer, col string, path ...string)
}

// Writer accumulates one SQL statement and its arguments, in text
// order. SQL fragments come from code; values only through Arg.
type Writer struct {
	d    Dialect
	sb   strings.Builder
	args []any
}

// SQL appends SQL text written in code.
func (w *Writer) SQL(parts ...string) {
	for _, p := range parts {
		w.sb.WriteString(p)
	}
}

// Arg binds v and appends its placeholder.
func (w *Writer) Arg(v any) {
	w.args = append(w.args, v)
	w.sb.WriteString(w.d.Placeholder(len(w.args)))
}

// Statement is compiled SQL with its arguments.
type Statement struct {
	SQL  string
	Args []any
}

func (w *Writer) statement() Statement { return Statement{SQL: w.sb.String(), Args: w.args} }

// Querier runs a query on the engine's transaction and calls row for each
// result row; row calls scan with pointers to receive the columns
// (database/sql and pgx semantics: int64, float64, string, []byte, bool,
// nil into *any).
type Querier func(ctx context.Context, st Statement, row func(scan func(dest ...any) error) error) error

// VersionColumns is the column list scanned into a hale.Version, in order
// (the alias v is resource_version).
const VersionColumns = "v.seq, v.type, v.id, v.version, v.last_updated, v.method, v.deleted, v.data"

// allTypesSQL lists the resource types in the store with a loose index
// scan of resource's primary key: one index probe per type, not a scan
// of every resource.
const allTypesSQL = `WITH RECURSIVE t(type) AS (
	SELECT min(type) FROM resource
	UNION ALL
	SELECT (SELECT min(type) FROM resource WHERE type > t.type) FROM t WHERE t.type IS NOT NULL
) SELECT type FROM t WHERE type IS NOT NULL`

// Search runs q. It is the whole of an engine's Reader.Search.
// Errors: KindInvalid for a query the store cannot run (an unknown
// parameter type or prefix, a cursor that does not fit the sort).
func Search(ctx context.Context, d Dialect, query Querier, q *hale.Query) (*hale.SearchResult, error) {
	res := &hale.SearchResult{Total: -1}
	c := &compiler{d: d}
	mode, where, err := splitContained(q)
	if err != nil {
		return nil, err
	}
	if mode != "" {
		qc := *q
		qc.Where, c.contMode = where, mode
		q = &qc
	}
	if needsAllTypes(q) || mode != "" {
		types, err := allTypes(ctx, query)
		if err != nil {
			return nil, err
		}
		c.allTypes = types
	}
	// Compile the page first, even when none is asked for, so that a bad
	// query or cursor is an error however it is run.
	var page Statement
	var kinds []keyKind
	if writeOrdered(q, mode) {
		page, err = c.writePage(q, q.Count+1)
		kinds = []keyKind{keyWrite}
	} else {
		page, kinds, err = c.page(q, q.Count+1, true)
	}
	if err != nil {
		return nil, err
	}
	scope := c.scope(q.Types)
	sorted := sortDriven(q, scope)
	var after []cursorKey
	if sorted && q.After != nil {
		if after, err = decodeCursor(q.Sort, q.After); err != nil {
			return nil, err
		}
	}
	if sorted && (after == nil || !after[0].null) {
		if page, err = c.sortedPage(q, scope, after, q.Count+1, false); err != nil {
			return nil, err
		}
	}
	if q.Total {
		st, err := c.count(q)
		if err != nil {
			return nil, err
		}
		err = query(ctx, st, func(scan func(...any) error) error { return scan(&res.Total) })
		if err != nil {
			return nil, err
		}
	}
	if q.Count <= 0 {
		return res, nil
	}
	var last []any
	n := 0 // rows read, the extra one included
	collect := func(scan func(...any) error) error {
		n++
		var v hale.Version
		var lastUpdated int64
		keys := make([]any, len(kinds))
		dest := []any{&v.Seq, &v.Type, &v.ID, &v.VersionID, &lastUpdated, &v.Method, &v.Deleted, &v.Data}
		for i := range keys {
			dest = append(dest, &keys[i])
		}
		if err := scan(dest...); err != nil {
			return err
		}
		v.LastUpdated = time.UnixMicro(lastUpdated).UTC()
		if len(res.Versions) == q.Count {
			// The extra row: there is a next page, after the last one kept.
			prev := res.Versions[len(res.Versions)-1]
			cur, err := encodeCursor(kinds, last, prev.Type, prev.ID)
			if err != nil {
				return err
			}
			res.Next = cur
			return nil
		}
		res.Versions = append(res.Versions, v)
		last = keys
		return nil
	}
	if !sorted || after == nil || !after[0].null {
		if err := query(ctx, page, collect); err != nil {
			return nil, err
		}
	}
	if sorted && n < q.Count+1 {
		// The resources without a key come last, in id order: from the
		// start of them, or after the cursor when it is among them.
		if after != nil && !after[0].null {
			after = nil
		}
		st, err := c.sortedPage(q, scope, after, q.Count+1-n, true)
		if err != nil {
			return nil, err
		}
		if err := query(ctx, st, collect); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Find is Reader.Find on top of the compiler: the ids of the current,
// not deleted resources of type typ that satisfy every Match, in id
// order, at most limit (limit <= 0: all).
func Find(ctx context.Context, d Dialect, query Querier, typ string, matches []hale.Match, limit int) ([]string, error) {
	q := &hale.Query{Types: []string{typ}}
	for _, m := range matches {
		cl, err := matchClause(m)
		if err != nil {
			return nil, err
		}
		q.Where = append(q.Where, cl)
	}
	c := &compiler{d: d}
	st, _, err := c.page(q, limit, false)
	if err != nil {
		return nil, err
	}
	var ids []string
	err = query(ctx, st, func(scan func(...any) error) error {
		var t, id string
		if err := scan(&t, &id); err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// matchClause translates the Find form of a condition into a Clause.
func matchClause(m hale.Match) (hale.Clause, error) {
	cl := hale.Clause{Param: m.Param}
	switch m.Kind {
	case hale.MatchID:
		cl.Type = hale.TypeID
	case hale.MatchToken:
		cl.Type = hale.TypeToken
	case hale.MatchString:
		cl.Type = hale.TypeString
	case hale.MatchStringExact:
		cl.Type, cl.Modifier = hale.TypeString, "exact"
	case hale.MatchStringContains:
		cl.Type, cl.Modifier = hale.TypeString, "contains"
	case hale.MatchReference:
		cl.Type = hale.TypeReference
	default:
		return cl, invalid("unknown match kind %d for parameter %q", m.Kind, m.Param)
	}
	for _, v := range m.Values {
		cl.Values = append(cl.Values, hale.Value{System: v.System, Code: v.Code, NoSystem: v.NoSystem,
			AnyCode: v.AnyCode, TargetType: v.TargetType, TargetID: v.TargetID, URL: v.URL})
	}
	return cl, nil
}

func allTypes(ctx context.Context, query Querier) ([]string, error) {
	var types []string
	err := query(ctx, Statement{SQL: allTypesSQL}, func(scan func(...any) error) error {
		var t string
		if err := scan(&t); err != nil {
			return err
		}
		types = append(types, t)
		return nil
	})
	return types, err
}

func invalid(format string, args ...any) error {
	return &hale.Error{Kind: hale.KindInvalid, Op: "search", Message: fmt.Sprintf(format, args...)}
}

// itoa is strconv.Itoa, short.
func itoa(n int) string { return strconv.Itoa(n) }

// Compile returns the two statements Search would run for q, the page
// and the count, for documentation and for looking at query plans.
// allTypes stands for the store's types when q needs them.
func Compile(d Dialect, q *hale.Query, allTypes []string) (page, count Statement, err error) {
	c := &compiler{d: d, allTypes: allTypes}
	mode, where, err := splitContained(q)
	if err != nil {
		return
	}
	if mode != "" {
		qc := *q
		qc.Where, c.contMode = where, mode
		q = &qc
	}
	if writeOrdered(q, mode) {
		page, err = c.writePage(q, q.Count+1)
	} else {
		page, _, err = c.page(q, q.Count+1, true)
	}
	if err != nil {
		return
	}
	count, err = c.count(q)
	return
}
