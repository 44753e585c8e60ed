package fhirpath

import "unsafe"

// Memoization within one evaluation. Two kinds of repeated work are
// common in FHIR's own expressions, dom-3 above all:
//
//	contained.where((('#'+id in (%resource.descendants().reference |
//	    %resource.descendants().as(canonical) | …)) or
//	    descendants().where(reference = '#').exists() or …).not())
//
//   - A sub-expression that does not depend on the item a lambda
//     (where, select, all, exists, repeat, sort) is iterating, such as
//     the union of %resource.descendants() above, is evaluated once per
//     evaluation instead of once per item: Parse wraps each such maximal
//     sub-expression inside a lambda argument in a cacheNode.
//   - descendants() of one node is computed once per evaluation, however
//     many times and from wherever it is asked for (the three
//     descendants() of each contained resource above).
//
// Results are shared between the places that ask for them; collections
// are read-only in the evaluator (every function builds a new slice, and
// shared results are capped so that an append copies).

// dep is what a node's value depends on besides the evaluation's
// constants (literals, variables, the environment, the clock).
type dep uint8

const (
	depNone  dep = iota // the same value wherever it is evaluated in one evaluation
	depInput            // the collection passed to eval
	depOuter            // $this, $index or $total of an enclosing lambda, or a side effect
)

// lambdaArg reports whether argument i of a function is evaluated once
// per item of the focus, with $this bound to the item.
func lambdaArg(name string, i int) bool {
	switch name {
	case "where", "select", "repeat", "all", "exists":
		return i == 0
	case "sort":
		return true
	}
	return false
}

// memoize analyses the tree and wraps the cacheable sub-expressions; it
// returns the new root and the number of cache slots.
func memoize(root node) (node, int) {
	root = rewrite(root)
	a := analysis{deps: map[node]dep{}}
	a.dep(root)
	root = a.wrap(root, false)
	return root, a.slots
}

type analysis struct {
	deps  map[node]dep
	slots int
}

func (a *analysis) dep(n node) dep {
	d := a.compute(n)
	a.deps[n] = d
	return d
}

func maxDep(ds ...dep) dep {
	m := depNone
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// chained is the dependency of next applied to the result of a target
// with dependency t.
func chained(t, next dep) dep {
	switch {
	case t == depOuter || next == depOuter:
		return depOuter
	case next == depNone:
		return depNone
	}
	return t
}

func (a *analysis) compute(n node) dep {
	switch x := n.(type) {
	case *litNode, *varNode:
		return depNone
	case *specialNode:
		return depOuter
	case *chainNode:
		if x.target == nil {
			return a.dep(x.next)
		}
		return chained(a.dep(x.target), a.dep(x.next))
	case *memberNode:
		if x.target == nil {
			return depInput
		}
		return a.dep(x.target)
	case *indexerNode:
		t := depInput
		if x.target != nil {
			t = a.dep(x.target)
		}
		if a.dep(x.idx) != depNone { // evaluated against $this
			return depOuter
		}
		return t
	case *unaryNode:
		return a.dep(x.x)
	case *typeOpNode:
		return a.dep(x.x)
	case *binaryNode:
		return maxDep(a.dep(x.l), a.dep(x.r))
	case *funcNode:
		focus := depInput
		if x.target != nil {
			focus = a.dep(x.target)
		}
		d := focus
		for i, arg := range x.args {
			ad := a.dep(arg)
			switch {
			case x.name == "iif" && x.target != nil:
				d = maxDep(d, chained(focus, ad)) // evaluated against the focus
			case lambdaArg(x.name, i):
				// $this and $index are bound per item; only $total
				// (aggregate's) could leak in, and aggregate is not
				// among these functions.
			case ad != depNone:
				return depOuter // evaluated against the enclosing $this
			}
		}
		switch x.name {
		case "trace", "aggregate":
			return depOuter // a side effect; $total
		}
		return d
	case *cacheNode:
		return depNone
	case *countChildrenNode:
		if x.target == nil {
			return depInput
		}
		return a.dep(x.target)
	}
	return depOuter // unknown node kinds are never cached
}

// wrap replaces each maximal cacheable sub-expression inside a lambda
// argument by a cacheNode.
func (a *analysis) wrap(n node, inLambda bool) node {
	if n == nil {
		return nil
	}
	if inLambda && a.deps[n] == depNone {
		switch n.(type) {
		case *litNode, *varNode:
			return n
		}
		c := &cacheNode{slot: a.slots, x: n}
		a.slots++
		return c
	}
	switch x := n.(type) {
	case *chainNode:
		x.target = a.wrap(x.target, inLambda)
		x.next = a.wrap(x.next, inLambda)
	case *memberNode:
		x.target = a.wrap(x.target, inLambda)
	case *indexerNode:
		x.target = a.wrap(x.target, inLambda)
		x.idx = a.wrap(x.idx, inLambda)
	case *unaryNode:
		x.x = a.wrap(x.x, inLambda)
	case *typeOpNode:
		x.x = a.wrap(x.x, inLambda)
	case *binaryNode:
		x.l = a.wrap(x.l, inLambda)
		x.r = a.wrap(x.r, inLambda)
	case *funcNode:
		x.target = a.wrap(x.target, inLambda)
		for i, arg := range x.args {
			x.args[i] = a.wrap(arg, inLambda || lambdaArg(x.name, i))
		}
	case *countChildrenNode:
		x.target = a.wrap(x.target, inLambda)
	}
	return n
}

// rewrite replaces children().count(), which ele-1 ("hasValue() or
// (children().count() > id.count())") evaluates on every element of
// every resource written, by a node that counts without building items.
func rewrite(n node) node {
	switch x := n.(type) {
	case *chainNode:
		x.target, x.next = rewriteOpt(x.target), rewrite(x.next)
	case *memberNode:
		x.target = rewriteOpt(x.target)
	case *indexerNode:
		x.target, x.idx = rewriteOpt(x.target), rewrite(x.idx)
	case *unaryNode:
		x.x = rewrite(x.x)
	case *typeOpNode:
		x.x = rewrite(x.x)
	case *binaryNode:
		x.l, x.r = rewrite(x.l), rewrite(x.r)
	case *funcNode:
		x.target = rewriteOpt(x.target)
		for i := range x.args {
			x.args[i] = rewrite(x.args[i])
		}
		if ch, ok := x.target.(*funcNode); ok && x.name == "count" && len(x.args) == 0 && ch.name == "children" && len(ch.args) == 0 {
			return &countChildrenNode{p: x.p, target: ch.target}
		}
	}
	return n
}

func rewriteOpt(n node) node {
	if n == nil {
		return nil
	}
	return rewrite(n)
}

// countChildrenNode is children().count().
type countChildrenNode struct {
	p      int
	target node
}

func (n *countChildrenNode) pos() int { return n.p }
func (n *countChildrenNode) eval(c *evalCtx, in Collection) (Collection, error) {
	focus, err := c.target(n.target, in)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, it := range focus {
		total += countChildren(it)
	}
	return intColl(int64(total)), nil
}

// cacheNode evaluates x once per evaluation.
type cacheNode struct {
	slot int
	x    node
}

type memoSlot struct {
	done bool
	r    Collection
}

func (n *cacheNode) pos() int { return n.x.pos() }
func (n *cacheNode) eval(c *evalCtx, in Collection) (Collection, error) {
	if c.memo == nil {
		c.memo = make([]memoSlot, c.slots)
	}
	s := &c.memo[n.slot]
	if s.done {
		return s.r, nil
	}
	r, err := n.x.eval(c, in)
	if err != nil {
		return nil, err
	}
	s.r, s.done = r[:len(r):len(r)], true
	return s.r, nil
}

// descMemo remembers descendants() of single nodes within one evaluation.
type descMemo struct {
	node unsafe.Pointer // the map of the node
	typ  *nodeType
	r    Collection
}

const maxDescMemo = 32

func (c *evalCtx) descendantsOf(it Item) (Collection, bool) {
	p := mapPointer(it.val)
	if p == nil {
		return nil, false
	}
	for _, m := range c.desc {
		if m.node == p && m.typ == it.typ {
			return m.r, true
		}
	}
	return nil, false
}

func (c *evalCtx) rememberDescendants(it Item, r Collection) Collection {
	r = r[:len(r):len(r)]
	if p := mapPointer(it.val); p != nil && len(c.desc) < maxDescMemo {
		c.desc = append(c.desc, descMemo{node: p, typ: it.typ, r: r})
	}
	return r
}

func mapPointer(v any) unsafe.Pointer {
	m, ok := v.(map[string]any)
	if !ok || m == nil {
		return nil
	}
	return *(*unsafe.Pointer)(unsafe.Pointer(&m))
}
