package sqlsearch

import (
	"slices"
	"strings"

	"github.com/hale-ehr/hale"
)

// compiler writes one statement. Resource aliases are r, r2, r3, … and
// index-row aliases a4, c5, …, numbered so that nested subqueries never
// shadow each other.
type compiler struct {
	d        Dialect
	allTypes []string // every type in the store, for system searches and untyped chains
	w        *Writer
	n        int
	// contMode is "true" or "both" for a search of contained resources
	// themselves (contained.go), "" otherwise.
	contMode string
	// cont, while compiling the clauses of a contained resource, is it.
	cont *contained
}

func (c *compiler) alias(prefix string) string { c.n++; return prefix + itoa(c.n) }

// scope is the types a resource set may have: the given ones, or every
// type in the store when none are given.
func (c *compiler) scope(types []string) []string {
	if len(types) == 0 {
		return c.allTypes
	}
	return types
}

// needsAllTypes reports whether compiling q needs the store's list of
// types: a system search, or a chain or _has without a type.
func needsAllTypes(q *hale.Query) bool {
	return len(q.Types) == 0 || slices.ContainsFunc(q.Where, clauseNeedsAllTypes)
}

func clauseNeedsAllTypes(cl hale.Clause) bool {
	switch {
	case cl.Param == containedClause:
		return true // containers of any type
	case cl.Or != nil:
		return slices.ContainsFunc(cl.Or, clauseNeedsAllTypes)
	case cl.Chain != nil:
		return cl.Chain.Type == "" || slices.ContainsFunc(cl.Chain.Where, clauseNeedsAllTypes)
	case cl.Has != nil:
		return cl.Has.Type == "" || slices.ContainsFunc(cl.Has.Where, clauseNeedsAllTypes)
	}
	return false
}

// scopeCond writes "col is one of scope".
func (c *compiler) scopeCond(col string, scope []string) {
	switch len(scope) {
	case 0:
		c.w.SQL("(1 = 0)")
	case 1:
		c.w.SQL(col, " = ")
		c.w.Arg(scope[0])
	default:
		c.w.SQL(col, " IN (")
		for i, t := range scope {
			if i > 0 {
				c.w.SQL(", ")
			}
			c.w.Arg(t)
		}
		c.w.SQL(")")
	}
}

// rows is one alternative of a condition, as a set of index rows: the
// tables it reads (with aliases, no values), the columns that name the
// resource it selects, and a writer of its conditions.
type rows struct {
	from    string
	typeCol string
	idCol   string
	// types, when set, limits the rows to resources of these types
	// (hale.Clause.Types of the clause they came from).
	types []string
	cond  func() error
}

// count compiles the Total of q. When the most selective clause is
// answered by index rows alone, it counts the distinct resources of
// those rows (index rows exist only for live resources, see the package
// comment) and checks the other clauses on them; otherwise it counts
// resource rows.
func (c *compiler) count(q *hale.Query) (Statement, error) {
	c.w = &Writer{d: c.d}
	if c.contMode != "" {
		c.w.SQL("SELECT count(*) FROM (")
		if err := c.containedMatches(q); err != nil {
			return Statement{}, err
		}
		c.w.SQL(") m")
		return c.w.statement(), nil
	}
	scope := c.scope(q.Types)
	where := byRank(q.Where)
	if len(where) > 0 && drivesCount(where[0]) && !slices.ContainsFunc(where, readsResource) {
		alts, err := c.alternatives(where[0], c.d.UnionAlternatives())
		if err != nil {
			return Statement{}, err
		}
		if len(alts) == 0 {
			return Statement{SQL: "SELECT 0"}, nil
		}
		c.w.SQL("SELECT count(*) FROM (")
		for i, a := range alts {
			if i > 0 {
				c.w.SQL(" UNION ")
			}
			c.w.SQL("SELECT ")
			if len(alts) == 1 {
				c.w.SQL("DISTINCT ")
			}
			c.w.SQL(a.typeCol, " AS type, ", a.idCol, " AS id FROM ", a.from, " WHERE ")
			c.scopeCond(a.typeCol, scope)
			c.w.SQL(" AND ")
			if err := a.cond(); err != nil {
				return Statement{}, err
			}
		}
		c.w.SQL(") r WHERE 1 = 1")
		for _, cl := range where[1:] {
			c.w.SQL(" AND ")
			if err := c.clause("r", scope, cl, false); err != nil {
				return Statement{}, err
			}
		}
		return c.w.statement(), nil
	}
	c.w.SQL("SELECT count(*) FROM resource r WHERE ")
	c.resourceScope(scope, where)
	if err := c.where("r", scope, where); err != nil {
		return Statement{}, err
	}
	return c.w.statement(), nil
}

// page compiles one page of q: at most limit resources (limit <= 0: all)
// after q.After in sort order. With data it selects VersionColumns and
// the sort keys; without, type, id and the sort keys. It returns the
// kinds of the sort keys, for the cursor.
//
// The innermost SELECT finds the matches and computes their sort keys,
// the middle one applies the cursor, orders and limits, and only the
// page's rows are joined to resource_version for their data.
func (c *compiler) page(q *hale.Query, limit int, data bool) (Statement, []keyKind, error) {
	c.w = &Writer{d: c.d}
	scope := c.scope(q.Types)
	columns := VersionColumns
	if c.contMode != "" {
		// Contained resources: the id is "<container id>#<contained id>",
		// and the rows are of the containers' types.
		columns = strings.Replace(VersionColumns, "v.id", "p.id", 1)
		scope = c.allTypes
	}
	var after []cursorKey
	if q.After != nil {
		var err error
		if after, err = decodeCursor(q.Sort, q.After); err != nil {
			return Statement{}, nil, err
		}
	}
	var keyCols, order strings.Builder
	for i, k := range q.Sort {
		keyCols.WriteString(", p.k" + itoa(i))
		order.WriteString("p.k" + itoa(i))
		if k.Desc {
			order.WriteString(" DESC NULLS LAST, ")
		} else {
			order.WriteString(" ASC NULLS LAST, ")
		}
	}
	order.WriteString("p.type, p.id")

	// Sort keys computed by a subquery are computed once per match in a
	// materialized CTE; inlined, both databases would compute them again
	// for the cursor condition and the ORDER BY.
	computed := slices.ContainsFunc(q.Sort, func(k hale.SortKey) bool {
		return k.Type != hale.TypeID && k.Type != hale.TypeLastUpdated
	})
	if computed {
		c.w.SQL("WITH m AS MATERIALIZED (")
		if err := c.matches(q, scope); err != nil {
			return Statement{}, nil, err
		}
		c.w.SQL(") ")
	}
	if data {
		c.w.SQL("SELECT ", columns, keyCols.String(), " FROM (")
	} else {
		c.w.SQL("SELECT p.type, p.id", keyCols.String(), " FROM (")
	}
	c.w.SQL("SELECT p.type, p.id, p.seq", keyCols.String(), " FROM ")
	if computed {
		c.w.SQL("m p")
	} else {
		c.w.SQL("(")
		if err := c.matches(q, scope); err != nil {
			return Statement{}, nil, err
		}
		c.w.SQL(") p")
	}
	if after != nil {
		c.w.SQL(" WHERE ")
		c.keyset(q.Sort, after, scope, q.After)
	}
	c.w.SQL(" ORDER BY ", order.String())
	if limit > 0 {
		c.w.SQL(" LIMIT ")
		c.w.Arg(limit)
	}
	c.w.SQL(") p")
	if data {
		c.w.SQL(" JOIN resource_version v ON v.seq = p.seq")
	}
	c.w.SQL(" ORDER BY ", order.String())
	return c.w.statement(), kindsOf(q.Sort), nil
}

// matches writes the SELECT of the matches of q with their sort keys
// k0, k1, ….
func (c *compiler) matches(q *hale.Query, scope []string) error {
	if c.contMode != "" {
		return c.containedMatches(q)
	}
	c.w.SQL("SELECT r.type, r.id, r.seq")
	for i, k := range q.Sort {
		c.w.SQL(", ")
		if err := c.sortKey("r", k); err != nil {
			return err
		}
		c.w.SQL(" AS k" + itoa(i))
	}
	where := byRank(q.Where)
	c.w.SQL(" FROM resource r WHERE ")
	c.resourceScope(scope, where)
	return c.where("r", scope, where)
}

// resourceScope writes the conditions on resource r of a search of
// scope: live, and of one of its types, unless the first of where (in
// rank order) is a membership test whose alternatives name the types
// themselves (typedMember). Repeated on r, the list of types made
// PostgreSQL price each primary-key probe of a compartment's matches as
// one probe per type, and scan the whole resource table instead: 11 ms
// for a patient's $everything at 39,000 resources, 1.5 ms without it.
func (c *compiler) resourceScope(scope []string, where []hale.Clause) {
	if len(scope) > 1 && c.typedMember(where) {
		c.w.SQL("NOT r.deleted")
		return
	}
	c.scopeCond("r.type", scope)
	c.w.SQL(" AND NOT r.deleted")
}

// typedMember reports whether the first of where is written as one
// membership test over index rows (clause, with member set) whose every
// alternative keeps to the types of the scope (member, scopeCond): an Or
// of index-row clauses, such as a compartment, outside a contained
// search.
func (c *compiler) typedMember(where []hale.Clause) bool {
	if c.cont != nil || c.contMode != "" || len(where) == 0 {
		return false
	}
	cl := where[0]
	return cl.Types == nil && len(cl.Or) > 0 && orOfRows(cl.Or)
}

func kindsOf(sort []hale.SortKey) []keyKind {
	kinds := make([]keyKind, len(sort))
	for i, k := range sort {
		kinds[i] = kindOf(k)
	}
	return kinds
}

// keyset writes "the row p comes after the cursor" for sort keys i…:
// after on key i, or equal on it and after on the rest; type and id, in
// ascending order, break the last tie. Missing values (NULL) sort last
// in both directions.
//
// A key that is never NULL (_id, _lastUpdated) also gets the redundant
// bound "k >= c" (or "<=" descending), which an index in key order can
// seek to; the OR alone would make it scan from the start.
func (c *compiler) keyset(sort []hale.SortKey, after []cursorKey, scope []string, cur *hale.Cursor) {
	if len(sort) > 0 && !after[0].null && (sort[0].Type == hale.TypeID || sort[0].Type == hale.TypeLastUpdated) {
		op := " >= "
		if sort[0].Desc {
			op = " <= "
		}
		c.w.SQL("p.k0", op)
		c.w.Arg(after[0].value)
		c.w.SQL(" AND ")
	}
	c.keysetFrom(sort, after, 0, scope, cur)
}

func (c *compiler) keysetFrom(sort []hale.SortKey, after []cursorKey, i int, scope []string, cur *hale.Cursor) {
	if i == len(sort) {
		if len(scope) == 1 {
			// One type: the type is the same on every row, so the tie
			// is on the id alone, a range of the primary key.
			switch strings.Compare(cur.Type, scope[0]) {
			case -1:
				c.w.SQL("(1 = 1)")
			case 1:
				c.w.SQL("(1 = 0)")
			default:
				c.w.SQL("p.id > ")
				c.w.Arg(cur.ID)
			}
			return
		}
		c.w.SQL("(p.type, p.id) > (")
		c.w.Arg(cur.Type)
		c.w.SQL(", ")
		c.w.Arg(cur.ID)
		c.w.SQL(")")
		return
	}
	col := "p.k" + itoa(i)
	if after[i].null {
		c.w.SQL("(", col, " IS NULL AND ")
		c.keysetFrom(sort, after, i+1, scope, cur)
		c.w.SQL(")")
		return
	}
	op := " > "
	if sort[i].Desc {
		op = " < "
	}
	c.w.SQL("(", col, op)
	c.w.Arg(after[i].value)
	c.w.SQL(" OR ", col, " IS NULL OR (", col, " = ")
	c.w.Arg(after[i].value)
	c.w.SQL(" AND ")
	c.keysetFrom(sort, after, i+1, scope, cur)
	c.w.SQL("))")
}

// sortKey writes the sort key k of resource r: the smallest value (the
// largest for a descending key) of r's rows for the parameter, NULL
// when it has none. A sortable parameter's key is read from the
// sort-key tables (sort.go); a derived one is computed from its rows.
func (c *compiler) sortKey(r string, k hale.SortKey) error {
	switch k.Type {
	case hale.TypeID:
		c.w.SQL(r, ".id")
		return nil
	case hale.TypeLastUpdated:
		c.w.SQL(r, ".last_updated")
		return nil
	}
	if table, ok := sortTable(k); ok {
		// The key Put stored (sort.go): one primary-key probe.
		a := c.alias("s")
		c.w.SQL("(SELECT ", a, ".", sortCol(k), " FROM ", table, " ", a, " WHERE ", a, ".type = ", r, ".type AND ",
			a, ".id = ", r, ".id AND ", a, ".param = ")
		c.w.Arg(k.Param)
		c.w.SQL(")")
		return nil
	}
	var table, col string
	switch k.Type {
	case hale.TypeString:
		table, col = "idx_string", "norm"
	case hale.TypeToken:
		table, col = "idx_token", "code"
	case hale.TypeDate:
		table, col = "idx_date", "lo"
		if k.Desc {
			col = "hi"
		}
	case hale.TypeNumber:
		table, col = "idx_number", "value"
	case hale.TypeQuantity:
		table, col = "idx_quantity", "value"
	case hale.TypeURI:
		table, col = "idx_uri", "uri"
	case hale.TypeReference:
		table, col = "idx_reference", "url"
	default:
		return invalid("cannot sort by parameter %q of type %q", k.Param, k.Type)
	}
	fn := "min"
	if k.Desc {
		fn = "max"
	}
	a := c.alias("a")
	c.w.SQL("(SELECT ", fn, "(", a, ".", col, ") FROM ", table, " ", a, " WHERE ", a, ".type = ", r, ".type AND ",
		a, ".id = ", r, ".id AND ", a, ".param = ")
	c.w.Arg(k.Param)
	c.w.SQL(")")
	return nil
}

// where writes " AND condition" for each clause on resource r. The
// clause most likely to be selective comes first and selects the ids it
// matches from its index (r.id IN (…)), which the planner drives the
// query from; the others are checked per resource with EXISTS, a probe
// of the index led by (type, id).
func (c *compiler) where(r string, scope []string, clauses []hale.Clause) error {
	for i, cl := range clauses {
		c.w.SQL(" AND ")
		if err := c.clause(r, scope, cl, i == 0); err != nil {
			return err
		}
	}
	return nil
}

// set writes the SELECT of the ids (with their types, if withType) of
// the live resources of scope that satisfy where: the target of a chain
// or the source of a _has.
func (c *compiler) set(scope []string, where []hale.Clause, withType bool) error {
	r := c.alias("r")
	c.w.SQL("SELECT ")
	if withType {
		c.w.SQL(r, ".type, ")
	}
	c.w.SQL(r, ".id FROM resource ", r, " WHERE ")
	c.scopeCond(r+".type", scope)
	c.w.SQL(" AND NOT ", r, ".deleted")
	return c.where(r, scope, byRank(where))
}

// clause writes the condition of one clause on resource r, as a
// membership test (r.id IN (…)) when member, else as EXISTS.
func (c *compiler) clause(r string, scope []string, cl hale.Clause, member bool) error {
	if cl.Types != nil {
		// Only resources of cl.Types: the clause compiled for those.
		in := intersect(scope, cl.Types)
		sub := cl
		sub.Types = nil
		c.w.SQL("(")
		c.scopeCond(r+".type", in)
		c.w.SQL(" AND ")
		if err := c.clause(r, in, sub, member); err != nil {
			return err
		}
		c.w.SQL(")")
		return nil
	}
	if cl.Or != nil {
		// Any of the clauses (a compartment: subject or performer …).
		if len(cl.Or) == 0 {
			c.w.SQL("(1 = 0)")
			return nil
		}
		if member && orOfRows(cl.Or) {
			// One membership test over the union of the clauses' index
			// rows: the index drives, instead of an EXISTS per resource
			// of every type in scope.
			var alts []rows
			for _, sub := range cl.Or {
				a, err := c.alternatives(sub, c.d.UnionAlternatives())
				if err != nil {
					return err
				}
				if sub.Types != nil {
					for i := range a {
						a[i].types = sub.Types
					}
				}
				alts = append(alts, a...)
			}
			return c.member(r, scope, alts)
		}
		c.w.SQL("(")
		for i, sub := range cl.Or {
			if i > 0 {
				c.w.SQL(" OR ")
			}
			if err := c.clause(r, scope, sub, false); err != nil {
				return err
			}
		}
		c.w.SQL(")")
		return nil
	}
	if cl.Param == containedClause && cl.Chain != nil {
		return c.containerClause(r, scope, cl, member)
	}
	if c.cont != nil {
		member = false // a contained resource's rows are probed
	}
	switch cl.Type {
	case hale.TypeID:
		if c.cont != nil {
			return c.idClause(r+".code", cl) // the contained resource's id
		}
		return c.idClause(r+".id", cl)
	case hale.TypeResourceType:
		if c.cont != nil {
			return invalid("_type does not apply to contained resources")
		}
		return c.idClause(r+".type", cl)
	case hale.TypeLastUpdated:
		if c.cont != nil {
			return invalid("_lastUpdated does not apply to contained resources")
		}
		return c.lastUpdatedClause(r, cl)
	}
	var alts []rows
	if cl.Missing != nil {
		table, err := tableOf(cl.Type, cl.Param)
		if err != nil {
			return err
		}
		a := c.alias("a")
		param := c.param(cl.Param)
		alts = []rows{{from: table + " " + a, typeCol: a + ".type", idCol: a + ".id", cond: func() error {
			c.w.SQL(a, ".param = ")
			c.w.Arg(param)
			return nil
		}}}
		if *cl.Missing {
			c.w.SQL("NOT ")
			return c.exists(r, alts)
		}
	} else {
		var err error
		if alts, err = c.alternatives(cl, member && !cl.Not && c.d.UnionAlternatives()); err != nil {
			return err
		}
	}
	switch {
	case cl.Not:
		c.w.SQL("NOT ")
		return c.exists(r, alts)
	case member:
		return c.member(r, scope, alts)
	}
	return c.exists(r, alts)
}

// orOfRows reports whether every clause of an Or is a positive clause on
// index rows, so the Or can be one membership test.
func orOfRows(or []hale.Clause) bool {
	for _, cl := range or {
		if cl.Or != nil || cl.Not || cl.Missing != nil || cl.Type == hale.TypeID || cl.Type == hale.TypeLastUpdated || cl.Type == hale.TypeResourceType {
			return false
		}
	}
	return true
}

// member writes "resource r is selected by one of alts".
func (c *compiler) member(r string, scope []string, alts []rows) error {
	if len(alts) == 0 {
		c.w.SQL("(1 = 0)")
		return nil
	}
	single := len(scope) == 1
	if single {
		c.w.SQL(r, ".id IN (")
	} else {
		c.w.SQL("(", r, ".type, ", r, ".id) IN (")
	}
	for i, a := range alts {
		if i > 0 {
			c.w.SQL(" UNION ALL ")
		}
		c.w.SQL("SELECT ")
		if !single {
			c.w.SQL(a.typeCol, ", ")
		}
		c.w.SQL(a.idCol, " FROM ", a.from, " WHERE ")
		c.scopeCond(a.typeCol, a.in(scope))
		c.w.SQL(" AND ")
		if err := a.cond(); err != nil {
			return err
		}
	}
	c.w.SQL(")")
	return nil
}

// exists writes "one of alts has a row for resource r".
func (c *compiler) exists(r string, alts []rows) error {
	if len(alts) == 0 {
		c.w.SQL("(1 = 0)")
		return nil
	}
	c.w.SQL("(")
	for i, a := range alts {
		if i > 0 {
			c.w.SQL(" OR ")
		}
		c.w.SQL("EXISTS (SELECT 1 FROM ", a.from, " WHERE ", a.typeCol, " = ", r, ".type AND ",
			a.idCol, " = ", r, ".id")
		c.containedRange(grpOf(a.typeCol))
		c.w.SQL(" AND ")
		if err := a.cond(); err != nil {
			return err
		}
		c.w.SQL(")")
	}
	c.w.SQL(")")
	return nil
}

// alternatives returns the row sets of a positive clause (Missing unset).
// With split, each value is its own alternative; otherwise the values
// are ORed inside one.
func (c *compiler) alternatives(cl hale.Clause, split bool) ([]rows, error) {
	switch {
	case cl.Missing != nil:
		// Only Missing false reaches here (a count driver).
		table, err := tableOf(cl.Type, cl.Param)
		if err != nil {
			return nil, err
		}
		a := c.alias("a")
		param := c.param(cl.Param)
		return []rows{{from: table + " " + a, typeCol: a + ".type", idCol: a + ".id", cond: func() error {
			c.w.SQL(a, ".param = ")
			c.w.Arg(param)
			return nil
		}}}, nil
	case cl.Chain != nil:
		return c.chain(cl)
	case cl.Has != nil:
		if c.cont != nil {
			return nil, invalid("_has does not apply to contained resources")
		}
		return c.has(cl)
	case cl.Type == hale.TypeComposite || len(cl.Composite) > 0:
		return c.composite(cl)
	}
	table, err := tableOf(cl.Type, cl.Param)
	if err != nil {
		return nil, err
	}
	if err := checkModifier(cl); err != nil {
		return nil, err
	}
	a := c.alias("a")
	param := c.param(cl.Param)
	one := func(values []hale.Value) rows {
		return rows{from: table + " " + a, typeCol: a + ".type", idCol: a + ".id", cond: func() error {
			c.w.SQL(a, ".param = ")
			c.w.Arg(param)
			c.w.SQL(" AND ")
			return c.values(a, cl, values)
		}}
	}
	if len(cl.Values) == 0 {
		return nil, nil
	}
	if !split || len(cl.Values) == 1 {
		return []rows{one(cl.Values)}, nil
	}
	alts := make([]rows, len(cl.Values))
	for i := range cl.Values {
		alts[i] = one(cl.Values[i : i+1])
	}
	return alts, nil
}

// values writes the OR of the conditions of values on index row a.
func (c *compiler) values(a string, cl hale.Clause, values []hale.Value) error {
	if len(values) == 0 {
		c.w.SQL("(1 = 0)")
		return nil
	}
	c.w.SQL("(")
	for i, v := range values {
		if i > 0 {
			c.w.SQL(" OR ")
		}
		c.w.SQL("(")
		if err := c.value(a, cl, v); err != nil {
			return err
		}
		c.w.SQL(")")
	}
	c.w.SQL(")")
	return nil
}

// chain: reference rows of the parameter whose target is a live resource
// of Chain.Type satisfying Chain.Where.
func (c *compiler) chain(cl hale.Clause) ([]rows, error) {
	if cl.Type != hale.TypeReference {
		return nil, invalid("chained parameter %q is not a reference", cl.Param)
	}
	a := c.alias("a")
	param := c.param(cl.Param)
	return []rows{{from: "idx_reference " + a, typeCol: a + ".type", idCol: a + ".id", cond: func() error {
		c.w.SQL(a, ".param = ")
		c.w.Arg(param)
		// The chain's targets are resources, not contained ones.
		saved := c.cont
		c.cont = nil
		defer func() { c.cont = saved }()
		if t := cl.Chain.Type; t != "" {
			c.w.SQL(" AND ", a, ".target_type = ")
			c.w.Arg(t)
			c.w.SQL(" AND ", a, ".target_id IN (")
			if err := c.set([]string{t}, cl.Chain.Where, false); err != nil {
				return err
			}
		} else {
			c.w.SQL(" AND (", a, ".target_type, ", a, ".target_id) IN (")
			if err := c.set(c.allTypes, cl.Chain.Where, true); err != nil {
				return err
			}
		}
		c.w.SQL(")")
		return nil
	}}}, nil
}

// has: the targets of the Has.Param reference rows of live resources of
// Has.Type that satisfy Has.Where.
func (c *compiler) has(cl hale.Clause) ([]rows, error) {
	h := cl.Has
	a := c.alias("a")
	return []rows{{from: "idx_reference " + a, typeCol: a + ".target_type", idCol: a + ".target_id", cond: func() error {
		if h.Type != "" {
			c.w.SQL(a, ".type = ")
			c.w.Arg(h.Type)
			c.w.SQL(" AND ", a, ".param = ")
			c.w.Arg(h.Param)
			c.w.SQL(" AND ", a, ".id IN (")
			if err := c.set([]string{h.Type}, h.Where, false); err != nil {
				return err
			}
		} else {
			c.w.SQL(a, ".param = ")
			c.w.Arg(h.Param)
			c.w.SQL(" AND (", a, ".type, ", a, ".id) IN (")
			if err := c.set(c.allTypes, h.Where, true); err != nil {
				return err
			}
		}
		c.w.SQL(")")
		return nil
	}}}, nil
}

// composite: for each alternative, the component rows of one composite
// element, joined on (type, id, grp), each satisfying its component
// clause. A component's Param is "<composite>#<n>" as indexed; one
// without "#" is taken as the n-th component of the alternative.
func (c *compiler) composite(cl hale.Clause) ([]rows, error) {
	var alts []rows
	for _, comps := range cl.Composite {
		if len(comps) == 0 {
			continue
		}
		var from strings.Builder
		aliases := make([]string, len(comps))
		params := make([]string, len(comps))
		for i, comp := range comps {
			if comp.Not || comp.Missing != nil || comp.Chain != nil || comp.Has != nil || len(comp.Composite) > 0 {
				return nil, invalid("composite %q: a component must be a plain value", cl.Param)
			}
			table, err := tableOf(comp.Type, comp.Param)
			if err != nil {
				return nil, err
			}
			if err := checkModifier(comp); err != nil {
				return nil, err
			}
			aliases[i] = c.alias("c")
			params[i] = comp.Param
			if !strings.Contains(params[i], "#") {
				params[i] = cl.Param + "#" + itoa(i)
			}
			params[i] = c.param(params[i])
			if i == 0 {
				from.WriteString(table + " " + aliases[i])
				continue
			}
			c0, ci := aliases[0], aliases[i]
			from.WriteString(" JOIN " + table + " " + ci + " ON " + ci + ".type = " + c0 + ".type AND " +
				ci + ".id = " + c0 + ".id AND " + ci + ".grp = " + c0 + ".grp")
		}
		alts = append(alts, rows{from: from.String(), typeCol: aliases[0] + ".type", idCol: aliases[0] + ".id",
			cond: func() error {
				c.w.SQL(aliases[0], ".grp > 0")
				for i, comp := range comps {
					c.w.SQL(" AND ", aliases[i], ".param = ")
					c.w.Arg(params[i])
					c.w.SQL(" AND ")
					if err := c.values(aliases[i], comp, comp.Values); err != nil {
						return err
					}
				}
				return nil
			}})
	}
	return alts, nil
}

// idClause: _id on col, the resource row's id (or a contained
// resource's).
func (c *compiler) idClause(col string, cl hale.Clause) error {
	if cl.Missing != nil {
		c.w.SQL(map[bool]string{true: "(1 = 0)", false: "(1 = 1)"}[*cl.Missing])
		return nil
	}
	if len(cl.Values) == 0 {
		c.w.SQL(map[bool]string{true: "(1 = 1)", false: "(1 = 0)"}[cl.Not])
		return nil
	}
	c.w.SQL(col, " ")
	if cl.Not {
		c.w.SQL("NOT ")
	}
	c.w.SQL("IN (")
	for i, v := range cl.Values {
		if i > 0 {
			c.w.SQL(", ")
		}
		c.w.Arg(v.Code)
	}
	c.w.SQL(")")
	return nil
}

// lastUpdatedClause: _lastUpdated on the resource row, whose range is
// the microsecond [last_updated, last_updated+1).
func (c *compiler) lastUpdatedClause(r string, cl hale.Clause) error {
	if cl.Missing != nil {
		c.w.SQL(map[bool]string{true: "(1 = 0)", false: "(1 = 1)"}[*cl.Missing])
		return nil
	}
	if cl.Not {
		c.w.SQL("NOT ")
	}
	if len(cl.Values) == 0 {
		c.w.SQL("(1 = 0)")
		return nil
	}
	rc := rangeCols{lo: r + ".last_updated", point: true}
	c.w.SQL("(")
	for i, v := range cl.Values {
		if i > 0 {
			c.w.SQL(" OR ")
		}
		if err := c.dateCond(rc, v); err != nil {
			return err
		}
	}
	c.w.SQL(")")
	return nil
}

// tableOf is the index table of a parameter type.
func tableOf(t hale.ParamType, param string) (string, error) {
	switch t {
	case hale.TypeToken:
		return "idx_token", nil
	case hale.TypeString:
		if TextParam(param) {
			return TextTable, nil
		}
		return "idx_string", nil
	case hale.TypeReference:
		return "idx_reference", nil
	case hale.TypeDate:
		return "idx_date", nil
	case hale.TypeNumber:
		return "idx_number", nil
	case hale.TypeQuantity:
		return "idx_quantity", nil
	case hale.TypeURI:
		return "idx_uri", nil
	}
	return "", invalid("parameter %q: type %q has no index table", param, t)
}

func checkModifier(cl hale.Clause) error {
	switch {
	case cl.Modifier == "":
		return nil
	case cl.Type == hale.TypeString && (cl.Modifier == "exact" || cl.Modifier == "contains"):
		return nil
	case cl.Type == hale.TypeURI && (cl.Modifier == "below" || cl.Modifier == "above"):
		return nil
	}
	return invalid("parameter %q: modifier %q is not supported for type %q", cl.Param, cl.Modifier, cl.Type)
}

// drivesCount reports whether count may count the distinct resources of
// cl's index rows alone (see the package comment): a positive clause on
// the values of an index table (not _has, whose rows name the referring
// resource, not the target) whose find index yields the rows of each
// value in id order, so that DISTINCT streams. For other shapes SQLite,
// without statistics, prefers an index in (type, id) order to avoid
// sorting for DISTINCT and scans every row of the type; counting
// resource rows is then the better plan.
func drivesCount(cl hale.Clause) bool {
	if cl.Or != nil || cl.Types != nil || cl.Not || cl.Missing != nil || cl.Chain != nil || cl.Has != nil || len(cl.Composite) > 0 ||
		cl.Modifier != "" || len(cl.Values) == 0 {
		return false
	}
	for _, v := range cl.Values {
		switch {
		case cl.Type == hale.TypeToken && !v.AnyCode: // (type, param, code, id, …)
		case cl.Type == hale.TypeReference && (v.URL != "" || v.TargetType != ""): // (…, target_id, target_type, id)
		case cl.Type == hale.TypeURI: // (type, param, uri, id)
		default:
			return false
		}
	}
	return true
}

// readsResource reports whether cl needs the resource row's columns.
func readsResource(cl hale.Clause) bool {
	return cl.Type == hale.TypeLastUpdated || slices.ContainsFunc(cl.Or, readsResource)
}

// byRank orders clauses most selective first, as far as the shape of a
// clause tells without statistics, keeping the given order among equals.
func byRank(clauses []hale.Clause) []hale.Clause {
	out := slices.Clone(clauses)
	slices.SortStableFunc(out, func(a, b hale.Clause) int { return rank(a) - rank(b) })
	return out
}

func rank(cl hale.Clause) int {
	switch {
	case cl.Or != nil:
		return 8 // checked per resource, never a membership test
	case cl.Not || (cl.Missing != nil && *cl.Missing):
		return 9 // never drives: it excludes
	case cl.Type == hale.TypeID:
		return 0
	case cl.Missing != nil:
		return 8
	case cl.Has != nil:
		return 6
	case cl.Chain != nil, len(cl.Composite) > 0:
		return 4
	}
	switch cl.Type {
	case hale.TypeReference:
		return 1
	case hale.TypeToken:
		for _, v := range cl.Values {
			if v.AnyCode {
				return 7
			}
		}
		return 2
	case hale.TypeString:
		switch cl.Modifier {
		case "exact":
			return 2
		case "contains":
			return 7
		}
		return 3
	case hale.TypeURI:
		switch cl.Modifier {
		case "":
			return 2
		case "above":
			return 7
		}
		return 3
	case hale.TypeNumber, hale.TypeQuantity, hale.TypeDate:
		return 5
	}
	return 8
}

// in is the types a's rows may name within scope.
func (a rows) in(scope []string) []string {
	if a.types == nil {
		return scope
	}
	return intersect(scope, a.types)
}

// intersect is the types of scope that are in types, in scope's order.
func intersect(scope, types []string) []string {
	out := []string{}
	for _, t := range scope {
		if slices.Contains(types, t) {
			out = append(out, t)
		}
	}
	return out
}
