package fhirpath

import (
	"context"
	"sort"
	"strings"
	"time"
)

// node is one node of a compiled expression.
type node interface {
	eval(c *evalCtx, in Collection) (Collection, error)
	pos() int
}

// evalCtx is the state of one evaluation.
type evalCtx struct {
	ctx   context.Context
	env   *Env
	expr  string
	this  Collection // $this: the item a lambda is iterating, or the input
	index int        // $index
	total Collection // $total (aggregate)
	input Collection // %context
	now   time.Time
	steps int

	inBuf, resBuf [1]Item    // backing arrays for one-item input and %resource
	resource      Collection // %resource, converted once
	hasResource   bool

	slots int        // the expression's cacheNodes
	memo  []memoSlot // their results (memo.go)
	desc  []descMemo // descendants() of single nodes
	// locs is a slab the locations of navigated items are cut from. It
	// survives the pooling of the context: a slot is handed out once, so
	// items of earlier evaluations keep theirs.
	locs []loc
}

// reset prepares a pooled context for an evaluation of e. It writes
// only what an earlier evaluation changed: assigning the whole struct
// costs more than the evaluation of a small invariant (the struct is
// mostly pointers, each written through the GC's write barrier). What a
// pooled context still references is released with the pool.
func (c *evalCtx) reset(ctx context.Context, env *Env, e *Expression) {
	c.ctx, c.env, c.expr, c.slots = ctx, env, e.src, e.slots
	c.index, c.steps = 0, 0
	if c.total != nil {
		c.total = nil
	}
	if !c.now.IsZero() {
		c.now = time.Time{}
	}
	if c.hasResource {
		c.resource, c.hasResource = nil, false
	}
	if c.memo != nil {
		c.memo = nil
	}
	if len(c.desc) > 0 {
		clear(c.desc)
		c.desc = c.desc[:0]
	}
}

// newLoc returns a location for a child item.
func (c *evalCtx) newLoc(parent *loc, name string, index int) *loc {
	if c == nil {
		return &loc{parent: parent, name: name, index: index}
	}
	if len(c.locs) == 0 {
		c.locs = make([]loc, 256)
	}
	l := &c.locs[0]
	c.locs = c.locs[1:]
	*l = loc{parent: parent, name: name, index: index}
	return l
}

// maxSteps bounds the work of one evaluation (repeat and descendants on
// cyclic or huge inputs), and ctx is checked along the way.
const maxSteps = 50_000_000

func (c *evalCtx) tick() error {
	c.steps++
	if c.steps&1023 == 0 {
		if c.steps > maxSteps {
			return errorf("evaluation too costly")
		}
		if err := c.ctx.Err(); err != nil {
			return &Error{Pos: -1, Class: ClassExecution, Msg: "evaluation cancelled", Err: err}
		}
	}
	return nil
}

func (c *evalCtx) target(t node, in Collection) (Collection, error) {
	if t == nil {
		return in, nil
	}
	return t.eval(c, in)
}

// arg evaluates a non-lambda argument: against $this.
func (c *evalCtx) arg(n node) (Collection, error) { return n.eval(c, c.this) }

// lambda evaluates n once per item of focus with $this and $index set,
// calling f with each result.
func (c *evalCtx) lambda(n node, focus Collection, f func(i int, r Collection) (stop bool, err error)) error {
	saveThis, saveIndex := c.this, c.index
	defer func() { c.this, c.index = saveThis, saveIndex }()
	for i := range focus {
		if err := c.tick(); err != nil {
			return err
		}
		one := focus[i : i+1 : i+1]
		c.this, c.index = one, i
		r, err := n.eval(c, one)
		if err != nil {
			return err
		}
		stop, err := f(i, r)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

type litNode struct {
	p int
	v Collection
}

func (n *litNode) pos() int                                      { return n.p }
func (n *litNode) eval(*evalCtx, Collection) (Collection, error) { return n.v, nil }

type specialNode struct {
	p    int
	name string
}

func (n *specialNode) pos() int { return n.p }
func (n *specialNode) eval(c *evalCtx, _ Collection) (Collection, error) {
	switch n.name {
	case "this":
		return c.this, nil
	case "index":
		return intColl(int64(c.index)), nil
	}
	return c.total, nil
}

// chainNode applies next to the result of target (target.$this).
type chainNode struct{ target, next node }

func (n *chainNode) pos() int { return n.next.pos() }
func (n *chainNode) eval(c *evalCtx, in Collection) (Collection, error) {
	r, err := c.target(n.target, in)
	if err != nil {
		return nil, err
	}
	return n.next.eval(c, r)
}

type varNode struct {
	p    int
	name string
}

func (n *varNode) pos() int { return n.p }
func (n *varNode) eval(c *evalCtx, _ Collection) (Collection, error) {
	r, ok := c.variable(n.name)
	if !ok {
		return nil, &Error{Expr: c.expr, Pos: n.p, Class: ClassSemantic, Msg: "unknown variable %" + n.name}
	}
	return r, nil
}

func (c *evalCtx) variable(name string) (Collection, bool) {
	env := c.env
	if v, ok := env.Vars[name]; ok {
		return toCollection(v), true
	}
	switch name {
	case "context":
		return c.input, true
	case "resource":
		if env.Resource != nil {
			if !c.hasResource {
				c.resource, c.hasResource = c.collection(env.Resource, &c.resBuf), true
			}
			return c.resource, true
		}
		return c.input, true
	case "rootResource":
		if env.RootResource != nil {
			return toCollection(env.RootResource), true
		}
		if env.Resource != nil {
			return toCollection(env.Resource), true
		}
		return c.input, true
	case "ucum":
		return Collection{{val: ucumSystem}}, true
	case "sct":
		return Collection{{val: "http://snomed.info/sct"}}, true
	case "loinc":
		return Collection{{val: "http://loinc.org"}}, true
	}
	if s, ok := strings.CutPrefix(name, "vs-"); ok {
		return Collection{{val: "http://hl7.org/fhir/ValueSet/" + s}}, true
	}
	if s, ok := strings.CutPrefix(name, "ext-"); ok {
		return Collection{{val: "http://hl7.org/fhir/StructureDefinition/" + s}}, true
	}
	return nil, false
}

// collection is toCollection using buf for a single item.
func (c *evalCtx) collection(v any, buf *[1]Item) Collection {
	switch v.(type) {
	case map[string]any, Item:
		buf[0] = NewItem(v)
		return buf[:1:1]
	}
	return toCollection(v)
}

// toCollection converts a variable's value.
func toCollection(v any) Collection {
	switch x := v.(type) {
	case nil:
		return nil
	case Collection:
		return x
	case []Item:
		return x
	case Item:
		return Collection{x}
	case []any:
		out := make(Collection, 0, len(x))
		for _, e := range x {
			out = append(out, NewItem(e))
		}
		return out
	}
	return Collection{NewItem(v)}
}

// memberNode navigates to the children named name (or, as the first step
// of a path, selects the input when name is its type: Patient.name).
type memberNode struct {
	p      int
	target node
	name   string
}

func (n *memberNode) pos() int { return n.p }
func (n *memberNode) eval(c *evalCtx, in Collection) (Collection, error) {
	src, err := c.target(n.target, in)
	if err != nil {
		return nil, err
	}
	if len(src) == 0 {
		return nil, nil
	}
	if n.target == nil && n.name != "" && n.name[0] >= 'A' && n.name[0] <= 'Z' {
		var out Collection
		matched := false
		for _, it := range src {
			if isNamedType(it, n.name) {
				out = append(out, it)
				matched = true
			}
		}
		if matched {
			return out, nil
		}
		if typeOf(n.name) != nil {
			if c.env.Strict {
				return nil, &Error{Expr: c.expr, Pos: n.p, Class: ClassSemantic, Msg: "the input is not a " + n.name}
			}
			return nil, nil
		}
	}
	var out Collection
	for _, it := range src {
		if out, err = c.child(out, it, n.name, n.p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// isNamedType reports whether the item is of the named FHIR type (or a
// type derived from it), for the first step of a path.
func isNamedType(it Item, name string) bool {
	if it.typ != nil {
		return it.typ.isType(name)
	}
	if m, ok := it.val.(map[string]any); ok {
		return m["resourceType"] == name
	}
	return false
}

func (c *evalCtx) child(out Collection, it Item, name string, pos int) (Collection, error) {
	m, ok := it.val.(map[string]any)
	if it.typ != nil && it.typ.kind == ntPrimitive {
		m, ok = it.ext, it.ext != nil
	}
	if !ok {
		if c.env.Strict && it.typ != nil && it.typ.kind == ntPrimitive && name != "id" && name != "extension" {
			return nil, &Error{Expr: c.expr, Pos: pos, Class: ClassSemantic, Msg: name + " is not an element of " + it.typ.name}
		}
		return out, nil
	}
	if it.typ == nil {
		return c.appendChild(out, it, m, childRef{json: name}), nil
	}
	nt := it.typ
	nt.children()
	refs, ok := nt.byName[name]
	if !ok {
		ref, isJSON := nt.byJSON[name]
		if !isJSON || c.env.Strict {
			if c.env.Strict {
				return nil, &Error{Expr: c.expr, Pos: pos, Class: ClassSemantic, Msg: name + " is not an element of " + nt.name}
			}
			return out, nil
		}
		return c.appendChild(out, it, m, ref), nil
	}
	for _, r := range refs {
		out = c.appendChild(out, it, m, r)
	}
	return out, nil
}

// appendChild appends the values of property ref.json of m (with their
// _json companions) as items of type ref.nt.
func (c *evalCtx) appendChild(out Collection, parent Item, m map[string]any, ref childRef) Collection {
	key, nt := ref.json, ref.nt
	v, has := m[key]
	var ev any
	hasExt := false
	if nt != nil && nt.kind == ntPrimitive {
		ev, hasExt = m[ref.ext]
	}
	if !has && !hasExt {
		return out
	}
	vals, isArr := v.([]any)
	exts, extArr := ev.([]any)
	if isArr || extArr {
		n := max(len(vals), len(exts))
		for i := 0; i < n; i++ {
			var e any
			if i < len(vals) {
				e = vals[i]
			}
			var em map[string]any
			if i < len(exts) {
				em, _ = exts[i].(map[string]any)
			}
			if e == nil && em == nil {
				continue
			}
			out = append(out, makeItem(e, nt, em, c.newLoc(parent.loc, key, i)))
		}
		return out
	}
	em, _ := ev.(map[string]any)
	if v == nil && em == nil {
		return out
	}
	return append(out, makeItem(v, nt, em, c.newLoc(parent.loc, key, -1)))
}

func makeItem(v any, nt *nodeType, ext map[string]any, l *loc) Item {
	if nt != nil && (nt.kind == ntAbstractResource || nt.kind == ntResource) {
		if m, ok := v.(map[string]any); ok {
			if rt, ok := m["resourceType"].(string); ok && rt != nt.name {
				if t := typeOf(rt); t != nil {
					nt = t
				}
			}
		}
	}
	return Item{val: v, typ: nt, ext: ext, loc: l}
}

type indexerNode struct {
	p           int
	target, idx node
}

func (n *indexerNode) pos() int { return n.p }
func (n *indexerNode) eval(c *evalCtx, in Collection) (Collection, error) {
	src, err := c.target(n.target, in)
	if err != nil {
		return nil, err
	}
	ix, err := c.arg(n.idx)
	if err != nil {
		return nil, err
	}
	i, ok, err := singletonInt(ix)
	if err != nil {
		return nil, at(err, c.expr, n.p)
	}
	if !ok || i < 0 || i >= int64(len(src)) {
		return nil, nil
	}
	return src[i : i+1 : i+1], nil
}

func singletonInt(col Collection) (int64, bool, error) {
	if len(col) == 0 {
		return 0, false, nil
	}
	if len(col) > 1 {
		return 0, false, errorf("expected a single integer, got %d items", len(col))
	}
	v, ok := col[0].sys()
	if !ok || v.k != sysInteger {
		return 0, false, errorf("expected an integer")
	}
	return v.i, true, nil
}

type funcNode struct {
	p      int
	target node
	name   string
	args   []node
	fn     *function
	ts     typeSpec
}

func (n *funcNode) pos() int { return n.p }
func (n *funcNode) eval(c *evalCtx, in Collection) (Collection, error) {
	focus, err := c.target(n.target, in)
	if err != nil {
		return nil, err
	}
	r, err := n.fn.call(c, n, focus)
	if err != nil {
		return nil, at(err, c.expr, n.p)
	}
	return r, nil
}

type unaryNode struct {
	p   int
	neg bool
	x   node
}

func (n *unaryNode) pos() int { return n.p }
func (n *unaryNode) eval(c *evalCtx, in Collection) (Collection, error) {
	r, err := n.x.eval(c, in)
	if err != nil || len(r) == 0 {
		return nil, err
	}
	if len(r) > 1 {
		return nil, at(errorf("unary %s on a collection of %d items", map[bool]string{true: "-", false: "+"}[n.neg], len(r)), c.expr, n.p)
	}
	v, ok := r[0].sys()
	if !ok || (v.k != sysInteger && v.k != sysDecimal && v.k != sysQuantity) {
		return nil, at(errorf("unary - needs a number or quantity"), c.expr, n.p)
	}
	if !n.neg {
		return Collection{v.item()}, nil
	}
	switch v.k {
	case sysInteger:
		v.i = -v.i
	case sysDecimal:
		v.d = v.d.Neg()
	case sysQuantity:
		v.q.Value = v.q.Value.Neg()
	}
	return Collection{v.item()}, nil
}

type typeOpNode struct {
	p  int
	op string // is, as
	x  node
	ts typeSpec
}

func (n *typeOpNode) pos() int { return n.p }
func (n *typeOpNode) eval(c *evalCtx, in Collection) (Collection, error) {
	r, err := n.x.eval(c, in)
	if err != nil || len(r) == 0 {
		return nil, err
	}
	if len(r) > 1 && (n.op == "is" || c.env.Strict) {
		return nil, at(errorf("'%s' on a collection of %d items", n.op, len(r)), c.expr, n.p)
	}
	if n.op == "is" {
		return boolColl(n.ts.matches(r[0], false)), nil
	}
	if err := n.ts.check(); err != nil {
		return nil, at(err, c.expr, n.p)
	}
	// Several items: R4's search parameters apply as to collections
	// ((Observation.component.value as Quantity)), so outside Strict mode
	// it filters as ofType does.
	var out Collection
	for _, it := range r {
		if n.ts.matches(it, true) {
			out = append(out, it)
		}
	}
	return out, nil
}

// matches reports whether the item is of the type; exact (as, ofType)
// refuses a FHIR primitive of a derived type (a code is not "as string").
func (ts typeSpec) matches(it Item, exact bool) bool {
	fhirOK := ts.ns == "" || ts.ns == "FHIR"
	sysOK := ts.ns == "" || ts.ns == "System"
	if ts.name == "Any" && ts.ns != "FHIR" {
		return true
	}
	if it.typ != nil {
		if !fhirOK {
			return false
		}
		if exact && it.typ.kind == ntPrimitive {
			return it.typ.name == ts.name
		}
		return it.typ.isType(ts.name)
	}
	if !sysOK {
		return false
	}
	k := it.kind()
	if k != sysNone {
		return sysNames[k] == ts.name
	}
	if m, ok := it.val.(map[string]any); ok && fhirOK {
		return m["resourceType"] == ts.name
	}
	return false
}

// sortStrings is used where map keys must be visited in a stable order.
func sortStrings(s []string) { sort.Strings(s) }
