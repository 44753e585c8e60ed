package sqlsearch

import (
	"slices"
	"strconv"

	"github.com/hale-ehr/hale"
)

// Write order (hale.Query.WriteOrder): an unsorted search of one type
// whose conditions cannot narrow the matches through an index pages by
// resource.first_seq, the seq of each resource's first version
// (migration 0007). In id order, a page of a whole type is a range of
// resource's primary key, but its versions are as many random rows of
// resource_version as the page is long (ids are UUIDs); in write order
// they are neighbours, mostly in the same pages of the table. first_seq
// is unique and never changes once a resource exists, so the cursor is
// that one number: a resource written between pages, updated or
// deleted, never moves to the other side of it.

// writeOrdered reports whether a page of q is read in write order: q
// allows it, has one type and no sort, searches resources (not contained
// ones, mode ""), and every condition is a probe of a resource that
// comes (what sortDriven asks too), none on the resource row itself
// (_lastUpdated has its own index). It depends on q alone, so every
// page of a search takes the same order.
func writeOrdered(q *hale.Query, mode string) bool {
	if !q.WriteOrder || len(q.Sort) > 0 || len(q.Types) != 1 || mode != "" {
		return false
	}
	return !slices.ContainsFunc(q.Where, func(cl hale.Clause) bool {
		return rank(cl) < 7 || cl.Or != nil && orOfRows(cl.Or) || readsResource(cl)
	})
}

// writePage compiles one page in write order: at most limit resources
// after q.After, with first_seq as the one sort key k0 (an integer, so
// the page's Cursor is {Keys: ["@<first_seq>"], Type, ID}).
func (c *compiler) writePage(q *hale.Query, limit int) (Statement, error) {
	typ := q.Types[0]
	var after int64
	if cur := q.After; cur != nil {
		bad := len(cur.Keys) != 1 || len(cur.Keys[0]) < 2 || cur.Keys[0][:1] != writeKey || cur.Type != typ || cur.ID == ""
		if !bad {
			var err error
			after, err = strconv.ParseInt(cur.Keys[0][1:], 10, 64)
			bad = err != nil
		}
		if bad {
			return Statement{}, invalid("the paging cursor does not belong to this search")
		}
	}
	c.w = &Writer{d: c.d}
	// One flat join, read in index order: no subquery to materialize
	// and no sort, so rows stream from the first step on.
	c.w.SQL("SELECT ", VersionColumns, ", r.first_seq FROM resource r JOIN resource_version v ON v.seq = r.seq WHERE r.type = ")
	c.w.Arg(typ)
	if q.After != nil {
		c.w.SQL(" AND r.first_seq > ")
		c.w.Arg(after)
	}
	c.w.SQL(" AND NOT r.deleted")
	for _, cl := range byRank(q.Where) {
		c.w.SQL(" AND ")
		if err := c.clause("r", q.Types, cl, false); err != nil {
			return Statement{}, err
		}
	}
	c.w.SQL(" ORDER BY r.first_seq LIMIT ")
	c.w.Arg(limit)
	return c.w.statement(), nil
}
