package sqlsearch

import (
	"slices"
	"strings"

	"github.com/hale-ehr/hale"
)

// The sort-key tables (migration 0003) hold, for each live resource and
// each sortable parameter it has values for, the key a search sorts by:
// Lo, the smallest value (the ascending key), and Hi, the largest (the
// descending key); for dates the smallest start and the largest end.
// They are what the correlated min()/max() over the index rows would
// compute, kept by Put, so that a page of a whole type sorted by a
// parameter is a range of one index (idx_sort_*_asc, _desc) instead of
// a sort of every match.
//
// Only string, date, number and quantity parameters have sort keys: they
// are what lists are sorted by (names, dates, values). Tokens, uris and
// references (status, code, patient) are rarely sorted on, and their
// keys were a third of every write's index rows (migration 0008 dropped
// them); a sort by one is computed from its index rows (sortKey).
const (
	SortTextTable = "idx_sort_text" // string (norm)
	SortIntTable  = "idx_sort_int"  // date
	SortRealTable = "idx_sort_real" // number, quantity (value)
)

// SortTables are the sort-key tables, for the engines' deletes.
var SortTables = []string{SortTextTable, SortIntTable, SortRealTable}

// MaxSortText is how many characters of a text value a sort key keeps:
// a PostgreSQL B-tree entry cannot hold a long string. Keys that agree
// on their first 200 characters tie and are ordered by type and id.
const MaxSortText = 200

// Sortable reports whether param has rows in the sort-key tables: every
// parameter except the derived rows ("code:text", "identifier:of-type",
// composite components "x#0", contained resources' "#T.x" rows) and the
// whole-text parameters _text and _content.
func Sortable(param string) bool {
	return !strings.ContainsAny(param, ":#") && param != "_text" && param != "_content"
}

// TextSortKey is one row of idx_sort_text.
type TextSortKey struct {
	Param  string
	Lo, Hi string
}

// IntSortKey is one row of idx_sort_int.
type IntSortKey struct {
	Param  string
	Lo, Hi int64
}

// RealSortKey is one row of idx_sort_real.
type RealSortKey struct {
	Param  string
	Lo, Hi float64
}

// SortKeys are the sort-key rows of one resource.
type SortKeys struct {
	Text []TextSortKey
	Int  []IntSortKey
	Real []RealSortKey
}

// Keys computes the sort-key rows of a resource from its index rows, in
// parameter order. A parameter has one type, but a custom parameter
// replacing another could in principle give rows of two; each table
// then gets its own row.
func Keys(idx *hale.Index) SortKeys {
	var k SortKeys
	if idx == nil {
		return k
	}
	text := map[string]*TextSortKey{}
	addText := func(param, v string) {
		if !Sortable(param) {
			return
		}
		v = truncateRunes(v, MaxSortText)
		if t, ok := text[param]; ok {
			t.Lo, t.Hi = min(t.Lo, v), max(t.Hi, v)
			return
		}
		text[param] = &TextSortKey{Param: param, Lo: v, Hi: v}
	}
	for _, x := range idx.Strings {
		addText(x.Param, x.Norm)
	}
	ints := map[string]*IntSortKey{}
	for _, x := range idx.Dates {
		if !Sortable(x.Param) {
			continue
		}
		if t, ok := ints[x.Param]; ok {
			t.Lo, t.Hi = min(t.Lo, x.Lo), max(t.Hi, x.Hi)
			continue
		}
		ints[x.Param] = &IntSortKey{Param: x.Param, Lo: x.Lo, Hi: x.Hi}
	}
	reals := map[string]*RealSortKey{}
	addReal := func(param string, v float64) {
		if !Sortable(param) {
			return
		}
		if t, ok := reals[param]; ok {
			t.Lo, t.Hi = min(t.Lo, v), max(t.Hi, v)
			return
		}
		reals[param] = &RealSortKey{Param: param, Lo: v, Hi: v}
	}
	for _, x := range idx.Numbers {
		addReal(x.Param, x.Value)
	}
	for _, x := range idx.Quantities {
		addReal(x.Param, x.Value)
	}
	for _, t := range text {
		k.Text = append(k.Text, *t)
	}
	for _, t := range ints {
		k.Int = append(k.Int, *t)
	}
	for _, t := range reals {
		k.Real = append(k.Real, *t)
	}
	slices.SortFunc(k.Text, func(a, b TextSortKey) int { return strings.Compare(a.Param, b.Param) })
	slices.SortFunc(k.Int, func(a, b IntSortKey) int { return strings.Compare(a.Param, b.Param) })
	slices.SortFunc(k.Real, func(a, b RealSortKey) int { return strings.Compare(a.Param, b.Param) })
	return k
}

// truncateRunes returns the first n characters of s, as SQLite's substr
// and PostgreSQL's left count them (code points).
func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

// sortTable is the sort-key table of a sort key and whether it has one
// (a sortable parameter of a type with values; not _id or _lastUpdated,
// which are on the resource row).
func sortTable(k hale.SortKey) (string, bool) {
	if !Sortable(k.Param) {
		return "", false
	}
	switch k.Type {
	case hale.TypeString:
		return SortTextTable, true
	case hale.TypeDate:
		return SortIntTable, true
	case hale.TypeNumber, hale.TypeQuantity:
		return SortRealTable, true
	}
	return "", false
}

// sortCol is the column of the sort-key table for the key's direction.
func sortCol(k hale.SortKey) string {
	if k.Desc {
		return "hi"
	}
	return "lo"
}

// sortDriven reports whether a page of q is best read in sort order from
// the sort-key index, checking the conditions on each resource as it
// comes, rather than by finding every match and sorting them: one type,
// one sort key that has a sort-key table, and no condition that could
// narrow the matches through an index (each ranks 7 or more: :not,
// :missing, :contains, system|, _lastUpdated; not an Or of index rows,
// such as a compartment, which the index drives). A page
// then reads about Count rows; the first plan reads every match.
func sortDriven(q *hale.Query, scope []string) bool {
	if len(scope) != 1 || len(q.Sort) != 1 {
		return false
	}
	if _, ok := sortTable(q.Sort[0]); !ok {
		return false
	}
	for _, cl := range q.Where {
		if rank(cl) < 7 || cl.Or != nil && orOfRows(cl.Or) {
			return false // an Or of index rows (a compartment) selects too
		}
	}
	return true
}

// sortedPage compiles one part of a sort-driven page (see sortDriven):
// with nulls false, the resources that have a key, read in key order
// from the sort-key index after the cursor; with nulls true, those that
// have none (they sort last in both directions), in id order. Search
// runs the first and, when the page is not full, the second.
func (c *compiler) sortedPage(q *hale.Query, scope []string, after []cursorKey, limit int, nulls bool) (Statement, error) {
	c.w = &Writer{d: c.d}
	k := q.Sort[0]
	table, _ := sortTable(k)
	col := sortCol(k)
	dir := ""
	if k.Desc {
		dir = " DESC"
	}
	if nulls {
		c.w.SQL("SELECT ", VersionColumns, ", NULL AS k0 FROM (SELECT r.type, r.id, r.seq FROM resource r WHERE ")
		c.scopeCond("r.type", scope)
		c.w.SQL(" AND NOT r.deleted AND NOT EXISTS (SELECT 1 FROM ", table, " s WHERE s.type = r.type AND s.id = r.id AND s.param = ")
		c.w.Arg(k.Param)
		c.w.SQL(")")
		if after != nil {
			c.w.SQL(" AND r.id > ")
			c.w.Arg(q.After.ID)
		}
	} else {
		c.w.SQL("SELECT ", VersionColumns, ", p.k0 FROM (SELECT r.type, r.id, r.seq, s.", col, " AS k0 FROM ", table,
			" s JOIN resource r ON r.type = s.type AND r.id = s.id WHERE ")
		c.scopeCond("s.type", scope)
		c.w.SQL(" AND s.param = ")
		c.w.Arg(k.Param)
		if after != nil {
			// The redundant bound lets the index seek to the cursor.
			ge, gt := " >= ", " > "
			if k.Desc {
				ge, gt = " <= ", " < "
			}
			c.w.SQL(" AND s.", col, ge)
			c.w.Arg(after[0].value)
			c.w.SQL(" AND (s.", col, gt)
			c.w.Arg(after[0].value)
			c.w.SQL(" OR s.id > ")
			c.w.Arg(q.After.ID)
			c.w.SQL(")")
		}
		c.w.SQL(" AND NOT r.deleted")
	}
	// Every condition is a probe of the resource (see sortDriven).
	for _, cl := range byRank(q.Where) {
		c.w.SQL(" AND ")
		if err := c.clause("r", scope, cl, false); err != nil {
			return Statement{}, err
		}
	}
	if nulls {
		c.w.SQL(" ORDER BY r.id LIMIT ")
		c.w.Arg(limit)
		c.w.SQL(") p JOIN resource_version v ON v.seq = p.seq ORDER BY p.id")
	} else {
		// No NULLS FIRST/LAST: keys are never NULL here, and SQLite
		// cannot read an index for a non-default NULLS order.
		c.w.SQL(" ORDER BY s.", col, dir, ", s.id LIMIT ")
		c.w.Arg(limit)
		c.w.SQL(") p JOIN resource_version v ON v.seq = p.seq ORDER BY p.k0", dir, ", p.id")
	}
	return c.w.statement(), nil
}
