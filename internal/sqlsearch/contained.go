package sqlsearch

import (
	"strings"

	"github.com/hale-ehr/hale"
)

// Contained resources (search.html#contained). The FHIR core indexes the
// resources a resource contains as rows of the container (package search,
// contained.go): for the contained resource of type T at position k of
// the container's contained list, a token row "#T" whose code is its id
// and whose grp is k<<16, and each of its index rows under "#T.<param>"
// with grp k<<16 | its composite group. No search parameter's name starts
// with "#" (FHIR's mark of a local reference), so other searches never
// see these rows.
//
// A Query reaches them through a clause named "_contained", whose first
// Value's Code is "true" (contained resources only) or "both" (resources
// of the type as well):
//
//   - with Chain (the _containedType=container form): the resource
//     contains a resource of Chain.Type that satisfies Chain.Where (or,
//     with "both", is itself such a resource). The Query's Types are the
//     containers' (nil: any).
//   - without Chain, at the top level of Where (_containedType=contained):
//     the Query searches the contained resources of its one type
//     themselves, with the other clauses. Each result is a Version of the
//     container (Type, data) whose ID is "<container id>#<contained id>";
//     with "both" the resources of the type come too, with their own ID.
//     Such a Query cannot be sorted.
const (
	containedClause = "_contained"
	containedPrefix = "#"
	containedShift  = 16
)

// contained is the contained resource the clauses being compiled apply
// to: its "#T" row's alias, whose type, id and grp name it.
type contained struct {
	x   string
	typ string
}

// param is the indexed name of parameter p: p itself, or its contained
// form while compiling the clauses of a contained resource.
func (c *compiler) param(p string) string {
	if c.cont == nil {
		return p
	}
	return containedPrefix + c.cont.typ + "." + p
}

// splitContained returns the mode of q's top-level _contained clause
// without Chain ("true" or "both"; "" when there is none) and the other
// clauses.
func splitContained(q *hale.Query) (string, []hale.Clause, error) {
	for i, cl := range q.Where {
		if cl.Param != containedClause || cl.Chain != nil {
			continue
		}
		mode, err := containedMode(cl)
		if err != nil {
			return "", nil, err
		}
		if len(q.Types) != 1 {
			return "", nil, invalid("a search of contained resources needs one resource type")
		}
		if len(q.Sort) > 0 {
			return "", nil, invalid("a search of contained resources cannot be sorted")
		}
		rest := append(append([]hale.Clause(nil), q.Where[:i]...), q.Where[i+1:]...)
		return mode, rest, nil
	}
	return "", q.Where, nil
}

func containedMode(cl hale.Clause) (string, error) {
	if len(cl.Values) == 0 {
		return "true", nil
	}
	switch m := cl.Values[0].Code; m {
	case "true", "both":
		return m, nil
	}
	return "", invalid("_contained must be true or both here, not %q", cl.Values[0].Code)
}

// containedMatches writes the SELECT of the matches of a search of
// contained resources (mode "true" or "both") as type, id, seq.
func (c *compiler) containedMatches(q *hale.Query) error {
	typ := q.Types[0]
	if c.contMode == "both" {
		c.w.SQL("SELECT r.type AS type, r.id AS id, r.seq AS seq FROM resource r WHERE r.type = ")
		c.w.Arg(typ)
		c.w.SQL(" AND NOT r.deleted")
		if err := c.where("r", q.Types, byRank(q.Where)); err != nil {
			return err
		}
		c.w.SQL(" UNION ALL ")
	}
	x, r := c.alias("x"), c.alias("r")
	c.w.SQL("SELECT ", x, ".type AS type, ", x, ".id || '#' || ", x, ".code AS id, ", r, ".seq AS seq FROM idx_token ", x,
		" JOIN resource ", r, " ON ", r, ".type = ", x, ".type AND ", r, ".id = ", x, ".id WHERE ")
	c.scopeCond(x+".type", c.allTypes)
	c.w.SQL(" AND ", x, ".param = ")
	c.w.Arg(containedPrefix + typ)
	return c.containedWhere(x, typ, q.Where)
}

// containedWhere writes " AND condition" for each clause on the
// contained resource of type typ whose "#T" row is x.
func (c *compiler) containedWhere(x, typ string, where []hale.Clause) error {
	saved := c.cont
	c.cont = &contained{x: x, typ: typ}
	defer func() { c.cont = saved }()
	for _, cl := range byRank(where) {
		c.w.SQL(" AND ")
		if err := c.clause(x, nil, cl, false); err != nil {
			return err
		}
	}
	return nil
}

// containerClause writes the _containedType=container form: resource r
// contains a resource of Chain.Type satisfying Chain.Where (as a
// membership test of the "#T" rows when member), or, with "both", is
// such a resource itself.
func (c *compiler) containerClause(r string, scope []string, cl hale.Clause, member bool) error {
	mode, err := containedMode(cl)
	if err != nil {
		return err
	}
	typ := cl.Chain.Type
	if typ == "" {
		return invalid("_contained needs the contained resources' type")
	}
	if c.cont != nil {
		return invalid("_contained cannot apply inside a contained resource")
	}
	c.w.SQL("(")
	if mode == "both" {
		c.w.SQL("(", r, ".type = ")
		c.w.Arg(typ)
		if err := c.where(r, []string{typ}, byRank(cl.Chain.Where)); err != nil {
			return err
		}
		c.w.SQL(") OR ")
	}
	x := c.alias("x")
	if member {
		if len(scope) == 1 {
			c.w.SQL(r, ".id IN (SELECT ", x, ".id")
		} else {
			c.w.SQL("(", r, ".type, ", r, ".id) IN (SELECT ", x, ".type, ", x, ".id")
		}
		c.w.SQL(" FROM idx_token ", x, " WHERE ")
		c.scopeCond(x+".type", scope)
	} else {
		c.w.SQL("EXISTS (SELECT 1 FROM idx_token ", x, " WHERE ", x, ".type = ", r, ".type AND ", x, ".id = ", r, ".id")
	}
	c.w.SQL(" AND ", x, ".param = ")
	c.w.Arg(containedPrefix + typ)
	if err := c.containedWhere(x, typ, cl.Chain.Where); err != nil {
		return err
	}
	c.w.SQL("))")
	return nil
}

// grpOf is the grp column of an index-row alias's row, from its type
// column ("a4.type" → "a4.grp").
func grpOf(typeCol string) string { return strings.TrimSuffix(typeCol, ".type") + ".grp" }

// containedRange writes " AND the row's grp belongs to the contained
// resource being compiled" (its position's block of 1<<16 groups).
func (c *compiler) containedRange(grpCol string) {
	if c.cont == nil {
		return
	}
	x := c.cont.x
	c.w.SQL(" AND ", grpCol, " >= ", x, ".grp AND ", grpCol, " < ", x, ".grp + ", itoa(1<<containedShift))
}
