package fhirpath

import (
	"encoding/json"
	"reflect"
	"strings"
)

// Operators: http://hl7.org/fhirpath/N1/#operations.

type binaryNode struct {
	p    int
	op   string
	l, r node
	fn   func(c *evalCtx, n *binaryNode, in Collection) (Collection, error)
}

func (n *binaryNode) pos() int { return n.p }
func (n *binaryNode) eval(c *evalCtx, in Collection) (Collection, error) {
	r, err := n.fn(c, n, in)
	if err != nil {
		return nil, at(err, c.expr, n.p)
	}
	return r, nil
}

func newBinary(p int, op string, l, r node) node {
	n := &binaryNode{p: p, op: op, l: l, r: r}
	switch op {
	case "and", "or", "xor", "implies":
		n.fn = evalLogic
	case "=", "!=", "~", "!~":
		n.fn = evalEquality
	case "<", ">", "<=", ">=":
		n.fn = evalCompare
	case "|":
		n.fn = evalUnion
	case "in", "contains":
		n.fn = evalMembership
	case "&":
		n.fn = evalConcat
	default:
		n.fn = evalArith
	}
	return n
}

func (n *binaryNode) operands(c *evalCtx, in Collection) (Collection, Collection, error) {
	l, err := n.l.eval(c, in)
	if err != nil {
		return nil, nil, err
	}
	r, err := n.r.eval(c, in)
	if err != nil {
		return nil, nil, err
	}
	return l, r, nil
}

// toBool is singleton evaluation of a collection where a Boolean is
// expected (http://hl7.org/fhirpath/N1/#singleton-evaluation-of-collections):
// empty is unknown, a single Boolean is itself, any other single item is
// true, and several items are an error.
func toBool(col Collection) (val, known bool, err error) {
	switch len(col) {
	case 0:
		return false, false, nil
	case 1:
		if b, ok := col[0].val.(bool); ok && (col[0].typ == nil || col[0].typ.system == sysBoolean && col[0].typ.kind == ntPrimitive) {
			return b, true, nil // the common case, without unboxing a value
		}
		v, ok := col[0].sys()
		if ok && v.k == sysBoolean {
			return v.b, true, nil
		}
		if col[0].kind() == sysBoolean {
			return false, false, nil // a boolean with only extensions
		}
		return true, true, nil
	}
	return false, false, errorf("expected a single boolean, got %d items", len(col))
}

func evalLogic(c *evalCtx, n *binaryNode, in Collection) (Collection, error) {
	lc, err := n.l.eval(c, in)
	if err != nil {
		return nil, err
	}
	l, lk, err := toBool(lc)
	if err != nil {
		return nil, err
	}
	// short circuits
	switch {
	case n.op == "and" && lk && !l:
		return falseColl, nil
	case n.op == "or" && lk && l:
		return trueColl, nil
	case n.op == "implies" && lk && !l:
		return trueColl, nil
	}
	rc, err := n.r.eval(c, in)
	if err != nil {
		return nil, err
	}
	r, rk, err := toBool(rc)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case "and":
		if rk && !r {
			return falseColl, nil
		}
		if lk && rk {
			return trueColl, nil
		}
	case "or":
		if rk && r {
			return trueColl, nil
		}
		if lk && rk {
			return falseColl, nil
		}
	case "xor":
		if lk && rk {
			return boolColl(l != r), nil
		}
	case "implies":
		if rk && r {
			return trueColl, nil
		}
		if lk && rk {
			return falseColl, nil
		}
	}
	return nil, nil
}

func evalEquality(c *evalCtx, n *binaryNode, in Collection) (Collection, error) {
	l, r, err := n.operands(c, in)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case "=", "!=":
		eq, known := equalColl(l, r)
		if !known {
			return nil, nil
		}
		return boolColl(eq == (n.op == "=")), nil
	}
	eq := equivalentColl(l, r)
	return boolColl(eq == (n.op == "~")), nil
}

// equalColl is the = operator: unknown when either side is empty or an
// item comparison is (dates of different precision).
func equalColl(a, b Collection) (eq, known bool) {
	if len(a) == 0 || len(b) == 0 {
		return false, false
	}
	if len(a) != len(b) {
		return false, true
	}
	result := true
	for i := range a {
		e, k := equalItem(a[i], b[i])
		if !k {
			return false, false
		}
		if !e {
			result = false
		}
	}
	return result, true
}

// equalItem compares two items; known is false when the result is empty.
func equalItem(x, y Item) (eq, known bool) {
	vx, okx := x.sys()
	vy, oky := y.sys()
	if okx && oky {
		return equalValue(vx, vy)
	}
	if okx != oky {
		return false, true
	}
	if x.kind() != sysNone || y.kind() != sysNone {
		// primitives without values: compare their extensions
		return deepEqual(x.ext, y.ext, false), true
	}
	return deepEqual(x.val, y.val, false), true
}

func numeric(k sysKind) bool { return k == sysInteger || k == sysDecimal }

func (v value) decimal() Decimal {
	if v.k == sysInteger {
		return DecimalFromInt(v.i)
	}
	return v.d
}

func isTemporal(k sysKind) bool { return k == sysDate || k == sysDateTime }

func equalValue(a, b value) (eq, known bool) {
	switch {
	case a.k == sysInteger && b.k == sysInteger:
		return a.i == b.i, true
	case numeric(a.k) && numeric(b.k):
		return a.decimal().Cmp(b.decimal()) == 0, true
	case a.k == sysString && b.k == sysString:
		return a.s == b.s, true
	case a.k == sysBoolean && b.k == sysBoolean:
		return a.b == b.b, true
	case isTemporal(a.k) && isTemporal(b.k), a.k == sysTime && b.k == sysTime:
		cmp, ok := compareTemporal(a.t, b.t, a.k == sysTime)
		return cmp == 0, ok
	case a.k == sysQuantity && b.k == sysQuantity:
		cmp, ok := compareQuantity(a.q, b.q)
		return cmp == 0, ok
	}
	return false, true
}

// equivalentColl is the ~ operator: order does not matter; empty ~ empty.
func equivalentColl(a, b Collection) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 1 {
		return equivalentItem(a[0], b[0])
	}
	used := make([]bool, len(b))
outer:
	for _, x := range a {
		for j, y := range b {
			if !used[j] && equivalentItem(x, y) {
				used[j] = true
				continue outer
			}
		}
		return false
	}
	return true
}

func equivalentItem(x, y Item) bool {
	vx, okx := x.sys()
	vy, oky := y.sys()
	if okx && oky {
		return equivalentValue(vx, vy)
	}
	if okx != oky {
		return false
	}
	if x.kind() != sysNone || y.kind() != sysNone {
		return deepEqual(x.ext, y.ext, true)
	}
	return deepEqual(x.val, y.val, true)
}

func normalizeSpace(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

func equivalentValue(a, b value) bool {
	switch {
	case numeric(a.k) && numeric(b.k):
		da, db := a.decimal(), b.decimal()
		s := min(da.Scale(), db.Scale())
		return da.Round(s).Cmp(db.Round(s)) == 0
	case a.k == sysString && b.k == sysString:
		return a.s == b.s || normalizeSpace(a.s) == normalizeSpace(b.s)
	case isTemporal(a.k) && isTemporal(b.k), a.k == sysTime && b.k == sysTime:
		cmp, ok := compareTemporal(a.t, b.t, a.k == sysTime)
		return ok && cmp == 0
	case a.k == sysQuantity && b.k == sysQuantity:
		return equivalentQuantity(a.q, b.q)
	}
	eq, known := equalValue(a, b)
	return eq && known
}

// deepEqual compares JSON trees; numbers compare by value, and with
// equiv strings compare as ~ does.
func deepEqual(a, b any, equiv bool) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !deepEqual(v, w, equiv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !deepEqual(x[i], y[i], equiv) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		dx, ok1 := ParseDecimal(string(x))
		dy, ok2 := ParseDecimal(string(y))
		return ok1 && ok2 && dx.Cmp(dy) == 0
	case string:
		y, ok := b.(string)
		if equiv && ok {
			return normalizeSpace(x) == normalizeSpace(y)
		}
		return ok && x == y
	}
	return reflect.DeepEqual(a, b)
}

func singleValue(col Collection, what string) (value, bool, error) {
	switch len(col) {
	case 0:
		return value{}, false, nil
	case 1:
		v, ok := col[0].sys()
		if !ok {
			if col[0].kind() != sysNone {
				return value{}, false, nil
			}
			return value{}, false, errorf("%s needs a primitive value, got %s", what, col[0].TypeName())
		}
		return v, true, nil
	}
	return value{}, false, errorf("%s needs a single item, got %d", what, len(col))
}

func evalCompare(c *evalCtx, n *binaryNode, in Collection) (Collection, error) {
	l, r, err := n.operands(c, in)
	if err != nil {
		return nil, err
	}
	if len(l) == 1 && len(r) == 1 {
		// integers (count() > 0) without unboxing values
		x, ok1 := l[0].val.(int64)
		y, ok2 := r[0].val.(int64)
		if ok1 && ok2 && l[0].typ == nil && r[0].typ == nil {
			return boolColl(n.op == "<" && x < y || n.op == ">" && x > y || n.op == "<=" && x <= y || n.op == ">=" && x >= y), nil
		}
	}
	a, ok1, err := singleValue(l, n.op)
	if err != nil {
		return nil, err
	}
	b, ok2, err := singleValue(r, n.op)
	if err != nil || !ok1 || !ok2 {
		return nil, err
	}
	cmp, known, err := compareValues(a, b)
	if err != nil || !known {
		return nil, err
	}
	switch n.op {
	case "<":
		return boolColl(cmp < 0), nil
	case ">":
		return boolColl(cmp > 0), nil
	case "<=":
		return boolColl(cmp <= 0), nil
	}
	return boolColl(cmp >= 0), nil
}

// compareValues orders two values; known is false for an empty result
// (dates of different precision, incomparable units).
func compareValues(a, b value) (cmp int, known bool, err error) {
	switch {
	case a.k == sysInteger && b.k == sysInteger:
		switch {
		case a.i < b.i:
			return -1, true, nil
		case a.i > b.i:
			return 1, true, nil
		}
		return 0, true, nil
	case numeric(a.k) && numeric(b.k):
		return a.decimal().Cmp(b.decimal()), true, nil
	case a.k == sysString && b.k == sysString:
		return strings.Compare(a.s, b.s), true, nil
	case isTemporal(a.k) && isTemporal(b.k), a.k == sysTime && b.k == sysTime:
		cmp, ok := compareTemporal(a.t, b.t, a.k == sysTime)
		return cmp, ok, nil
	case a.k == sysQuantity && b.k == sysQuantity:
		cmp, ok := compareQuantity(a.q, b.q)
		return cmp, ok, nil
	}
	return 0, false, errorf("cannot compare %s with %s", sysNames[a.k], sysNames[b.k])
}

func evalUnion(c *evalCtx, n *binaryNode, in Collection) (Collection, error) {
	l, r, err := n.operands(c, in)
	if err != nil {
		return nil, err
	}
	return union(l, r), nil
}

// union merges without duplicates (by =), keeping the first occurrence.
func union(a, b Collection) Collection {
	out := make(Collection, 0, len(a)+len(b))
	// Strings equal only strings, exactly: past a few items they are
	// deduplicated through a set (dom-3 unions every reference and URI
	// of a resource).
	var seen map[string]struct{}
	for _, col := range [2]Collection{a, b} {
		for _, it := range col {
			s, isStr := it.val.(string)
			isStr = isStr && it.kind() == sysString
			if isStr && seen != nil {
				if _, dup := seen[s]; dup {
					continue
				}
				seen[s] = struct{}{}
				out = append(out, it)
				continue
			}
			if containsItem(out, it) {
				continue
			}
			out = append(out, it)
			if isStr && seen == nil && len(out) >= 16 {
				seen = make(map[string]struct{}, len(a)+len(b))
				for _, x := range out {
					if xs, ok := x.val.(string); ok && x.kind() == sysString {
						seen[xs] = struct{}{}
					}
				}
			}
		}
	}
	return out
}

func containsItem(col Collection, it Item) bool {
	for _, x := range col {
		if eq, known := equalItem(x, it); eq && known {
			return true
		}
	}
	return false
}

func evalMembership(c *evalCtx, n *binaryNode, in Collection) (Collection, error) {
	l, r, err := n.operands(c, in)
	if err != nil {
		return nil, err
	}
	elem, coll := l, r
	if n.op == "contains" {
		elem, coll = r, l
	}
	switch len(elem) {
	case 0:
		return nil, nil
	case 1:
		return boolColl(containsItem(coll, elem[0])), nil
	}
	return nil, errorf("'%s' needs a single item, got %d", n.op, len(elem))
}

func evalConcat(c *evalCtx, n *binaryNode, in Collection) (Collection, error) {
	l, r, err := n.operands(c, in)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, col := range [2]Collection{l, r} {
		v, ok, err := singleValue(col, "&")
		if err != nil {
			return nil, err
		}
		if ok {
			if v.k != sysString {
				return nil, errorf("& needs strings")
			}
			b.WriteString(v.s)
		}
	}
	return Collection{{val: b.String()}}, nil
}

func evalArith(c *evalCtx, n *binaryNode, in Collection) (Collection, error) {
	l, r, err := n.operands(c, in)
	if err != nil {
		return nil, err
	}
	a, ok1, err := singleValue(l, n.op)
	if err != nil {
		return nil, err
	}
	b, ok2, err := singleValue(r, n.op)
	if err != nil || !ok1 || !ok2 {
		return nil, err
	}
	v, ok, err := arith(n.op, a, b)
	if err != nil || !ok {
		return nil, err
	}
	return Collection{v.item()}, nil
}

// arith applies an arithmetic operator; ok is false for an empty result
// (division by zero, overflow).
func arith(op string, a, b value) (value, bool, error) {
	switch {
	case a.k == sysInteger && b.k == sysInteger && op != "/":
		x, y := a.i, b.i
		var r int64
		switch op {
		case "+":
			r = x + y
			if (r > x) != (y > 0) {
				return value{}, false, nil
			}
		case "-":
			r = x - y
			if (r < x) != (y > 0) {
				return value{}, false, nil
			}
		case "*":
			ok, p := mul64(x, y)
			if !ok {
				return value{}, false, nil
			}
			r = p
		case "div":
			if y == 0 {
				return value{}, false, nil
			}
			r = x / y
		case "mod":
			if y == 0 {
				return value{}, false, nil
			}
			r = x % y
		}
		return value{k: sysInteger, i: r}, true, nil
	case numeric(a.k) && numeric(b.k):
		x, y := a.decimal(), b.decimal()
		var r Decimal
		ok := true
		switch op {
		case "+":
			r = x.Add(y)
		case "-":
			r = x.Sub(y)
		case "*":
			r = x.Mul(y)
		case "/":
			r, ok = x.Div(y)
		case "div":
			r, ok = x.DivTrunc(y)
			if ok {
				if i, isInt := r.Int64(); isInt {
					return value{k: sysInteger, i: i}, true, nil
				}
			}
		case "mod":
			r, ok = x.Mod(y)
		}
		return value{k: sysDecimal, d: r}, ok, nil
	case a.k == sysString && b.k == sysString && op == "+":
		return value{k: sysString, s: a.s + b.s}, true, nil
	case (isTemporal(a.k) || a.k == sysTime) && b.k == sysQuantity && (op == "+" || op == "-"):
		sign := 1
		if op == "-" {
			sign = -1
		}
		t, err := addQuantity(a.t, b.q, sign, a.k == sysTime)
		if err != nil {
			return value{}, false, err
		}
		return value{k: a.k, t: t}, true, nil
	case a.k == sysQuantity && b.k == sysQuantity:
		switch op {
		case "+", "-":
			y, ok := b.q.convert(a.q.Unit)
			if !ok {
				return value{}, false, errorf("cannot %s quantities in '%s' and '%s'", map[string]string{"+": "add", "-": "subtract"}[op], a.q.Unit, b.q.Unit)
			}
			r := a.q.Value.Add(y.Value)
			if op == "-" {
				r = a.q.Value.Sub(y.Value)
			}
			return value{k: sysQuantity, q: Quantity{Value: r, Unit: a.q.Unit}}, true, nil
		case "*", "/":
			q, ok := mulQuantity(a.q, b.q, op == "/")
			return value{k: sysQuantity, q: q}, ok, nil
		}
	case a.k == sysQuantity && numeric(b.k) && (op == "*" || op == "/"):
		if op == "*" {
			return value{k: sysQuantity, q: Quantity{Value: a.q.Value.Mul(b.decimal()), Unit: a.q.Unit}}, true, nil
		}
		d, ok := a.q.Value.Div(b.decimal())
		return value{k: sysQuantity, q: Quantity{Value: d, Unit: a.q.Unit}}, ok, nil
	case numeric(a.k) && b.k == sysQuantity && op == "*":
		return value{k: sysQuantity, q: Quantity{Value: b.q.Value.Mul(a.decimal()), Unit: b.q.Unit}}, true, nil
	}
	return value{}, false, errorf("operator %s is not defined for %s and %s", op, sysNames[a.k], sysNames[b.k])
}
