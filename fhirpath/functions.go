package fhirpath

import (
	"encoding/base64"
	"encoding/hex"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The function library: every function of http://hl7.org/fhirpath/N1/#functions
// (existence, filtering and projection, subsetting, combining, conversion,
// string manipulation, math, tree navigation, utility, aggregates), the
// FHIR additions of FHIR R4 fhirpath.html#functions (functions_fhir.go),
// and the FHIRPath 2.1 additions the official test suite uses (sort,
// lowBoundary, highBoundary, precision, comparable, encode, decode, escape,
// unescape, trim, split, join, matchesFull).

type function struct {
	min, max int
	typeArg  bool // the first argument is a type specifier (is, as, ofType)
	impl     func(c *evalCtx, n *funcNode, focus Collection) (Collection, error)
}

func (f *function) call(c *evalCtx, n *funcNode, focus Collection) (Collection, error) {
	return f.impl(c, n, focus)
}

var functions map[string]*function

func fn(min, max int, impl func(c *evalCtx, n *funcNode, focus Collection) (Collection, error)) *function {
	return &function{min: min, max: max, impl: impl}
}

func init() {
	functions = map[string]*function{
		// existence
		"empty":      fn(0, 0, func(c *evalCtx, n *funcNode, f Collection) (Collection, error) { return boolColl(len(f) == 0), nil }),
		"exists":     fn(0, 1, fnExists),
		"all":        fn(1, 1, fnAll),
		"allTrue":    fn(0, 0, boolAgg(true, true)),
		"anyTrue":    fn(0, 0, boolAgg(false, true)),
		"allFalse":   fn(0, 0, boolAgg(true, false)),
		"anyFalse":   fn(0, 0, boolAgg(false, false)),
		"subsetOf":   fn(1, 1, fnSubset(false)),
		"supersetOf": fn(1, 1, fnSubset(true)),
		"count": fn(0, 0, func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
			return intColl(int64(len(f))), nil
		}),
		"distinct": fn(0, 0, func(c *evalCtx, n *funcNode, f Collection) (Collection, error) { return union(f, nil), nil }),
		"isDistinct": fn(0, 0, func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
			return boolColl(len(union(f, nil)) == len(f)), nil
		}),
		// filtering and projection
		"where":  fn(1, 1, fnWhere),
		"select": fn(1, 1, fnSelect),
		"repeat": fn(1, 1, fnRepeat),
		"ofType": {min: 1, max: 1, typeArg: true, impl: fnOfType},
		// subsetting
		"single":    fn(0, 0, fnSingle),
		"first":     fn(0, 0, func(c *evalCtx, n *funcNode, f Collection) (Collection, error) { return sub(f, 0, 1), nil }),
		"last":      fn(0, 0, func(c *evalCtx, n *funcNode, f Collection) (Collection, error) { return sub(f, len(f)-1, len(f)), nil }),
		"tail":      fn(0, 0, func(c *evalCtx, n *funcNode, f Collection) (Collection, error) { return sub(f, 1, len(f)), nil }),
		"skip":      fn(1, 1, fnSkipTake(true)),
		"take":      fn(1, 1, fnSkipTake(false)),
		"intersect": fn(1, 1, fnIntersect),
		"exclude":   fn(1, 1, fnExclude),
		// combining
		"union":   fn(1, 1, fnUnion),
		"combine": fn(1, 1, fnCombine),
		// conversion
		"iif":                fn(2, 3, fnIif),
		"toBoolean":          conv(toBooleanValue, false),
		"convertsToBoolean":  conv(toBooleanValue, true),
		"toInteger":          conv(toIntegerValue, false),
		"convertsToInteger":  conv(toIntegerValue, true),
		"toDecimal":          conv(toDecimalValue, false),
		"convertsToDecimal":  conv(toDecimalValue, true),
		"toString":           conv(toStringConv, false),
		"convertsToString":   conv(toStringConv, true),
		"toDate":             conv(toDateValue, false),
		"convertsToDate":     conv(toDateValue, true),
		"toDateTime":         conv(toDateTimeValue, false),
		"convertsToDateTime": conv(toDateTimeValue, true),
		"toTime":             conv(toTimeValue, false),
		"convertsToTime":     conv(toTimeValue, true),
		"toQuantity":         fn(0, 1, fnToQuantity(false)),
		"convertsToQuantity": fn(0, 1, fnToQuantity(true)),
		// strings
		"indexOf":        fn(1, 1, fnIndexOf),
		"substring":      fn(1, 2, fnSubstring),
		"startsWith":     strFn2(func(s, a string) Item { return boolItem(strings.HasPrefix(s, a)) }),
		"endsWith":       strFn2(func(s, a string) Item { return boolItem(strings.HasSuffix(s, a)) }),
		"contains":       strFn2(func(s, a string) Item { return boolItem(strings.Contains(s, a)) }),
		"upper":          strFn1(func(s string) Item { return Item{val: strings.ToUpper(s)} }),
		"lower":          strFn1(func(s string) Item { return Item{val: strings.ToLower(s)} }),
		"replace":        fn(2, 2, fnReplace),
		"matches":        fn(1, 1, fnMatches(false)),
		"matchesFull":    fn(1, 1, fnMatches(true)),
		"replaceMatches": fn(2, 2, fnReplaceMatches),
		"length":         strFn1(func(s string) Item { return Item{val: int64(utf8.RuneCountInString(s))} }),
		"toChars":        fn(0, 0, fnToChars),
		"trim":           strFn1(func(s string) Item { return Item{val: strings.TrimSpace(s)} }),
		"split":          fn(1, 1, fnSplit),
		"join":           fn(0, 1, fnJoin),
		"encode":         fn(1, 1, fnCodec(true)),
		"decode":         fn(1, 1, fnCodec(false)),
		"escape":         fn(1, 1, fnEscape(true)),
		"unescape":       fn(1, 1, fnEscape(false)),
		// math
		"abs":      fn(0, 0, fnAbs),
		"ceiling":  fn(0, 0, fnRounding(Decimal.Ceiling)),
		"floor":    fn(0, 0, fnRounding(Decimal.Floor)),
		"truncate": fn(0, 0, fnRounding(Decimal.Truncate)),
		"round":    fn(0, 1, fnRound),
		"exp":      floatFn(math.Exp),
		"ln":       floatFn(math.Log),
		"sqrt":     floatFn(math.Sqrt),
		"log":      fn(1, 1, fnLog),
		"power":    fn(1, 1, fnPower),
		// tree navigation
		"children":    fn(0, 0, fnChildren),
		"descendants": fn(0, 0, fnDescendants),
		// utility
		"trace":        fn(1, 2, fnTrace),
		"now":          fn(0, 0, fnNow),
		"today":        fn(0, 0, fnToday),
		"timeOfDay":    fn(0, 0, fnTimeOfDay),
		"aggregate":    fn(1, 2, fnAggregate),
		"sort":         fn(0, 10, fnSort),
		"type":         fn(0, 0, fnType),
		"not":          fn(0, 0, fnNot),
		"is":           {min: 1, max: 1, typeArg: true, impl: fnIs},
		"as":           {min: 1, max: 1, typeArg: true, impl: fnAs},
		"lowBoundary":  fn(0, 1, fnBoundary(false)),
		"highBoundary": fn(0, 1, fnBoundary(true)),
		"precision":    fn(0, 0, fnPrecision),
		"comparable":   fn(1, 1, fnComparable),
	}
	addFHIRFunctions()
}

// smallInts backs the results of count() and the like: shared,
// read-only one-item collections, so that counting allocates nothing.
var smallInts = func() (a [64]Item) {
	for i := range a {
		a[i] = Item{val: int64(i)}
	}
	return a
}()

func intColl(n int64) Collection {
	if n >= 0 && n < int64(len(smallInts)) {
		return smallInts[n : n+1 : n+1]
	}
	return Collection{{val: n}}
}

func sub(f Collection, from, to int) Collection {
	if from < 0 {
		from = 0
	}
	if to > len(f) {
		to = len(f)
	}
	if from >= to {
		return nil
	}
	return f[from:to:to]
}

func fnExists(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	if len(n.args) == 0 {
		return boolColl(len(f) > 0), nil
	}
	found := false
	err := c.lambda(n.args[0], f, func(_ int, r Collection) (bool, error) {
		b, known, err := toBool(r)
		found = known && b
		return found, err
	})
	return boolColl(found), err
}

func fnAll(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	all := true
	err := c.lambda(n.args[0], f, func(_ int, r Collection) (bool, error) {
		b, known, err := toBool(r)
		if !known || !b {
			all = false
		}
		return !all, err
	})
	return boolColl(all), err
}

// boolAgg implements allTrue (all, want true), anyTrue, allFalse, anyFalse.
func boolAgg(all, want bool) func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	return func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
		for _, it := range f {
			v, ok := it.sys()
			if !ok || v.k != sysBoolean {
				return nil, errorf("expected booleans, got %s", it.TypeName())
			}
			if all && v.b != want {
				return falseColl, nil
			}
			if !all && v.b == want {
				return trueColl, nil
			}
		}
		return boolColl(all), nil
	}
}

func fnSubset(super bool) func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	return func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
		other, err := c.arg(n.args[0])
		if err != nil {
			return nil, err
		}
		a, b := f, other
		if super {
			a, b = other, f
		}
		for _, it := range a {
			if !containsItem(b, it) {
				return falseColl, nil
			}
		}
		return trueColl, nil
	}
}

func fnWhere(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	var out Collection
	err := c.lambda(n.args[0], f, func(i int, r Collection) (bool, error) {
		b, known, err := toBool(r)
		if known && b {
			out = append(out, f[i])
		}
		return false, err
	})
	return out, err
}

func fnSelect(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	var out Collection
	err := c.lambda(n.args[0], f, func(i int, r Collection) (bool, error) {
		if out == nil && i == len(f)-1 {
			out = r // one result: no copy
			return false, nil
		}
		out = append(out[:len(out):len(out)], r...)
		return false, nil
	})
	return out, err
}

func fnRepeat(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	var out Collection
	queue := f
	for len(queue) > 0 {
		var next Collection
		err := c.lambda(n.args[0], queue, func(_ int, r Collection) (bool, error) {
			for _, it := range r {
				if !containsSame(out, it) {
					out = append(out, it)
					next = append(next, it)
				}
			}
			return false, nil
		})
		if err != nil {
			return nil, err
		}
		queue = next
	}
	return out, nil
}

// containsSame is identity for nodes of the tree and = for values.
func containsSame(col Collection, it Item) bool {
	if m, ok := it.val.(map[string]any); ok {
		for _, x := range col {
			if xm, ok := x.val.(map[string]any); ok && sameMap(xm, m) {
				return true
			}
		}
		return false
	}
	return containsItem(col, it)
}

func fnOfType(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	if err := n.ts.check(); err != nil {
		return nil, err
	}
	var out Collection
	for _, it := range f {
		if n.ts.matches(it, true) {
			out = append(out, it)
		}
	}
	return out, nil
}

func fnIs(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	switch len(f) {
	case 0:
		return nil, nil
	case 1:
		return boolColl(n.ts.matches(f[0], false)), nil
	}
	return nil, errorf("is() on a collection of %d items", len(f))
}

// fnAs is the as() function. On several items it filters as ofType does
// (R4's own invariants, e.g. dom-3, call descendants().as(canonical)); in
// Strict mode that is an error, as FHIRPath N1 has it.
func fnAs(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	if err := n.ts.check(); err != nil {
		return nil, err
	}
	if len(f) > 1 && c.env.Strict {
		return nil, errorf("as() on a collection of %d items", len(f))
	}
	return fnOfType(c, n, f)
}

func fnSingle(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	if len(f) > 1 {
		return nil, errorf("single() on a collection of %d items", len(f))
	}
	return f, nil
}

func fnSkipTake(skip bool) func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	return func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
		a, err := c.arg(n.args[0])
		if err != nil {
			return nil, err
		}
		k, ok, err := singletonInt(a)
		if err != nil || !ok {
			return nil, err
		}
		k = max(k, 0)
		if skip {
			return sub(f, int(min(k, int64(len(f)))), len(f)), nil
		}
		return sub(f, 0, int(min(k, int64(len(f))))), nil
	}
}

func fnIntersect(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	other, err := c.arg(n.args[0])
	if err != nil {
		return nil, err
	}
	var out Collection
	for _, it := range f {
		if containsItem(other, it) && !containsItem(out, it) {
			out = append(out, it)
		}
	}
	return out, nil
}

func fnExclude(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	other, err := c.arg(n.args[0])
	if err != nil {
		return nil, err
	}
	var out Collection
	for _, it := range f {
		if !containsItem(other, it) {
			out = append(out, it)
		}
	}
	return out, nil
}

func fnUnion(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	other, err := c.arg(n.args[0])
	if err != nil {
		return nil, err
	}
	return union(f, other), nil
}

func fnCombine(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	other, err := c.arg(n.args[0])
	if err != nil {
		return nil, err
	}
	out := make(Collection, 0, len(f)+len(other))
	return append(append(out, f...), other...), nil
}

func fnIif(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	saveThis := c.this
	defer func() { c.this = saveThis }()
	if n.target != nil {
		if len(f) > 1 {
			return nil, errorf("iif() on a collection of %d items", len(f))
		}
		c.this = f
	}
	crit, err := n.args[0].eval(c, c.this)
	if err != nil {
		return nil, err
	}
	if c.env.Strict && len(crit) == 1 && crit[0].kind() != sysBoolean {
		return nil, &Error{Pos: -1, Class: ClassSemantic, Msg: "iif() criterion is not a Boolean"}
	}
	b, known, err := toBool(crit)
	if err != nil {
		return nil, err
	}
	if known && b {
		return n.args[1].eval(c, c.this)
	}
	if len(n.args) == 3 {
		return n.args[2].eval(c, c.this)
	}
	return nil, nil
}

// conv builds toX (or convertsToX) from a conversion of one value.
func conv(f func(Item) (Item, bool), test bool) *function {
	return fn(0, 0, func(c *evalCtx, n *funcNode, focus Collection) (Collection, error) {
		switch len(focus) {
		case 0:
			return nil, nil
		case 1:
			r, ok := f(focus[0])
			if test {
				return boolColl(ok), nil
			}
			if !ok {
				return nil, nil
			}
			return Collection{r}, nil
		}
		return nil, errorf("conversion of a collection of %d items", len(focus))
	})
}

func toBooleanValue(it Item) (Item, bool) {
	v, ok := it.sys()
	if !ok {
		return Item{}, false
	}
	switch v.k {
	case sysBoolean:
		return boolItem(v.b), true
	case sysInteger:
		if v.i == 0 || v.i == 1 {
			return boolItem(v.i == 1), true
		}
	case sysDecimal:
		if v.d.Cmp(DecimalFromInt(1)) == 0 {
			return trueItem, true
		}
		if v.d.Sign() == 0 {
			return falseItem, true
		}
	case sysString:
		switch strings.ToLower(v.s) {
		case "true", "t", "yes", "y", "1", "1.0":
			return trueItem, true
		case "false", "f", "no", "n", "0", "0.0":
			return falseItem, true
		}
	}
	return Item{}, false
}

var intRe = regexp.MustCompile(`^[+-]?[0-9]+$`)
var decRe = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)

func toIntegerValue(it Item) (Item, bool) {
	v, ok := it.sys()
	if !ok {
		return Item{}, false
	}
	switch v.k {
	case sysInteger:
		return Item{val: v.i}, true
	case sysBoolean:
		if v.b {
			return Item{val: int64(1)}, true
		}
		return Item{val: int64(0)}, true
	case sysString:
		if intRe.MatchString(v.s) {
			n, err := strconv.ParseInt(v.s, 10, 64)
			if err == nil && n <= math.MaxInt32 && n >= math.MinInt32 {
				return Item{val: n}, true
			}
		}
	}
	return Item{}, false
}

func toDecimalValue(it Item) (Item, bool) {
	v, ok := it.sys()
	if !ok {
		return Item{}, false
	}
	switch v.k {
	case sysInteger, sysDecimal:
		return Item{val: v.decimal()}, true
	case sysBoolean:
		if v.b {
			return Item{val: Decimal{m: 10, scale: 1}}, true
		}
		return Item{val: Decimal{scale: 1}}, true
	case sysString:
		if decRe.MatchString(v.s) {
			d, ok := ParseDecimal(v.s)
			return Item{val: d}, ok
		}
	}
	return Item{}, false
}

func toStringConv(it Item) (Item, bool) {
	s, ok := toStringValue(it)
	return Item{val: s}, ok
}

// toStringValue is toString(): the value as FHIRPath writes it.
func toStringValue(it Item) (string, bool) {
	v, ok := it.sys()
	if !ok {
		return "", false
	}
	switch v.k {
	case sysString:
		return v.s, true
	case sysBoolean:
		return strconv.FormatBool(v.b), true
	case sysInteger:
		return strconv.FormatInt(v.i, 10), true
	case sysDecimal:
		if n, ok := it.val.(string); ok {
			return n, true
		}
		return v.d.String(), true
	case sysDate:
		return Date(v.t).String(), true
	case sysDateTime:
		if s, ok := it.val.(string); ok {
			return s, true
		}
		return v.t.String(), true
	case sysTime:
		if s, ok := it.val.(string); ok {
			return s, true
		}
		return Time(v.t).String(), true
	case sysQuantity:
		return v.q.String(), true
	}
	return "", false
}

func toDateValue(it Item) (Item, bool) {
	v, ok := it.sys()
	if !ok {
		return Item{}, false
	}
	switch v.k {
	case sysDate:
		return Item{val: Date(v.t)}, true
	case sysDateTime:
		t := v.t
		if t.Precision > PrecisionDay {
			t.Precision = PrecisionDay
		}
		t.truncate()
		return Item{val: Date(t)}, true
	case sysString:
		if d, ok := ParseDate(v.s); ok {
			return Item{val: d}, true
		}
		if dt, ok := ParseDateTime(v.s, true); ok {
			return toDateValue(Item{val: dt})
		}
	}
	return Item{}, false
}

func toDateTimeValue(it Item) (Item, bool) {
	v, ok := it.sys()
	if !ok {
		return Item{}, false
	}
	switch v.k {
	case sysDate, sysDateTime:
		return Item{val: v.t}, true
	case sysString:
		if dt, ok := ParseDateTime(v.s, true); ok {
			return Item{val: dt}, true
		}
	}
	return Item{}, false
}

func toTimeValue(it Item) (Item, bool) {
	v, ok := it.sys()
	if !ok {
		return Item{}, false
	}
	switch v.k {
	case sysTime:
		return Item{val: Time(v.t)}, true
	case sysString:
		if t, ok := ParseTime(v.s, true); ok {
			return Item{val: t}, true
		}
	}
	return Item{}, false
}

var quantityRe = regexp.MustCompile(`^([+-]?[0-9]+(?:\.[0-9]+)?)\s*(?:'([^']+)'|([a-z]+))?$`)

func toQuantityValue(it Item) (Quantity, bool) {
	v, ok := it.sys()
	if !ok {
		return Quantity{}, false
	}
	switch v.k {
	case sysQuantity:
		return v.q, true
	case sysInteger, sysDecimal:
		return Quantity{Value: v.decimal(), Unit: "1"}, true
	case sysBoolean:
		d := Decimal{scale: 1}
		if v.b {
			d.m = 10
		}
		return Quantity{Value: d, Unit: "1"}, true
	case sysString:
		m := quantityRe.FindStringSubmatch(strings.TrimSpace(v.s))
		if m == nil {
			return Quantity{}, false
		}
		d, ok := ParseDecimal(m[1])
		if !ok {
			return Quantity{}, false
		}
		switch {
		case m[2] != "":
			return Quantity{Value: d, Unit: m[2]}, true
		case m[3] != "":
			if !isCalendarKeyword(m[3]) {
				return Quantity{}, false
			}
			return Quantity{Value: d, Unit: m[3]}, true
		}
		return Quantity{Value: d, Unit: "1"}, true
	}
	return Quantity{}, false
}

func fnToQuantity(test bool) func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	return func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
		if len(f) == 0 {
			return nil, nil
		}
		if len(f) > 1 {
			return nil, errorf("conversion of a collection of %d items", len(f))
		}
		q, ok := toQuantityValue(f[0])
		if ok && len(n.args) == 1 {
			unit, has, err := argString(c, n.args[0])
			if err != nil || !has {
				return nil, err
			}
			q, ok = q.convert(unit)
		}
		if test {
			return boolColl(ok), nil
		}
		if !ok {
			return nil, nil
		}
		return Collection{{val: q}}, nil
	}
}

// argString evaluates an argument that must be a single string (or empty).
func argString(c *evalCtx, a node) (string, bool, error) {
	r, err := c.arg(a)
	if err != nil {
		return "", false, err
	}
	v, ok, err := singleValue(r, "argument")
	if err != nil || !ok {
		return "", false, err
	}
	if v.k != sysString {
		return "", false, errorf("expected a string argument, got %s", sysNames[v.k])
	}
	return v.s, true, nil
}

// inputString returns the single string input of a string function.
func inputString(f Collection) (string, bool, error) {
	if len(f) == 0 {
		return "", false, nil
	}
	if len(f) > 1 {
		return "", false, errorf("string function on a collection of %d items", len(f))
	}
	v, ok := f[0].sys()
	if !ok {
		if f[0].kind() == sysString {
			return "", false, nil
		}
		return "", false, errorf("string function on %s", f[0].TypeName())
	}
	if v.k != sysString {
		return "", false, errorf("string function on %s", sysNames[v.k])
	}
	return v.s, true, nil
}

func strFn1(f func(string) Item) *function {
	return fn(0, 0, func(c *evalCtx, n *funcNode, focus Collection) (Collection, error) {
		s, ok, err := inputString(focus)
		if err != nil || !ok {
			return nil, err
		}
		return Collection{f(s)}, nil
	})
}

func strFn2(f func(s, a string) Item) *function {
	return fn(1, 1, func(c *evalCtx, n *funcNode, focus Collection) (Collection, error) {
		s, ok, err := inputString(focus)
		if err != nil || !ok {
			return nil, err
		}
		a, ok, err := argString(c, n.args[0])
		if err != nil || !ok {
			return nil, err
		}
		return Collection{f(s, a)}, nil
	})
}

func fnIndexOf(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	s, ok, err := inputString(f)
	if err != nil || !ok {
		return nil, err
	}
	a, ok, err := argString(c, n.args[0])
	if err != nil || !ok {
		return nil, err
	}
	i := strings.Index(s, a)
	if i > 0 {
		i = utf8.RuneCountInString(s[:i])
	}
	return Collection{{val: int64(i)}}, nil
}

func fnSubstring(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	s, ok, err := inputString(f)
	if err != nil || !ok {
		return nil, err
	}
	a, err := c.arg(n.args[0])
	if err != nil {
		return nil, err
	}
	start, ok, err := singletonInt(a)
	if err != nil || !ok {
		return nil, err
	}
	r := []rune(s)
	if start < 0 || start >= int64(len(r)) {
		return nil, nil
	}
	end := int64(len(r))
	if len(n.args) == 2 {
		b, err := c.arg(n.args[1])
		if err != nil {
			return nil, err
		}
		l, ok, err := singletonInt(b)
		if err != nil {
			return nil, err
		}
		if ok {
			end = min(end, start+max(l, 0))
		}
	}
	return Collection{{val: string(r[start:end])}}, nil
}

func fnReplace(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	s, ok, err := inputString(f)
	if err != nil || !ok {
		return nil, err
	}
	pat, ok1, err := argString(c, n.args[0])
	if err != nil {
		return nil, err
	}
	rep, ok2, err := argString(c, n.args[1])
	if err != nil || !ok1 || !ok2 {
		return nil, err
	}
	return Collection{{val: strings.ReplaceAll(s, pat, rep)}}, nil
}

var regexCache sync.Map

// compileRegex compiles a FHIRPath regular expression: single-line mode
// (. matches a newline), as the specification asks.
func compileRegex(pat string, full bool) (*regexp.Regexp, error) {
	key := pat
	if full {
		key = "\x00" + pat
	}
	if re, ok := regexCache.Load(key); ok {
		return re.(*regexp.Regexp), nil
	}
	src := "(?s)" + pat
	if full {
		src = "(?s)^(?:" + pat + ")$"
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, errorf("bad regular expression %q: %v", pat, err)
	}
	regexCache.Store(key, re)
	return re, nil
}

func fnMatches(full bool) func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	return func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
		s, ok, err := inputString(f)
		if err != nil || !ok {
			return nil, err
		}
		pat, ok, err := argString(c, n.args[0])
		if err != nil || !ok {
			return nil, err
		}
		re, err := compileRegex(pat, full)
		if err != nil {
			return nil, err
		}
		return boolColl(re.MatchString(s)), nil
	}
}

func fnReplaceMatches(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	s, ok, err := inputString(f)
	if err != nil || !ok {
		return nil, err
	}
	pat, ok1, err := argString(c, n.args[0])
	if err != nil {
		return nil, err
	}
	rep, ok2, err := argString(c, n.args[1])
	if err != nil || !ok1 || !ok2 {
		return nil, err
	}
	if pat == "" {
		return Collection{{val: s}}, nil
	}
	re, err := compileRegex(pat, false)
	if err != nil {
		return nil, err
	}
	return Collection{{val: re.ReplaceAllString(s, rep)}}, nil
}

func fnToChars(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	s, ok, err := inputString(f)
	if err != nil || !ok {
		return nil, err
	}
	out := make(Collection, 0, len(s))
	for _, r := range s {
		out = append(out, Item{val: string(r)})
	}
	return out, nil
}

func fnSplit(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	s, ok, err := inputString(f)
	if err != nil || !ok {
		return nil, err
	}
	sep, ok, err := argString(c, n.args[0])
	if err != nil || !ok {
		return nil, err
	}
	parts := strings.Split(s, sep)
	out := make(Collection, len(parts))
	for i, p := range parts {
		out[i] = Item{val: p}
	}
	return out, nil
}

func fnJoin(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	sep := ""
	if len(n.args) == 1 {
		s, ok, err := argString(c, n.args[0])
		if err != nil {
			return nil, err
		}
		if ok {
			sep = s
		}
	}
	parts := make([]string, 0, len(f))
	for _, it := range f {
		v, ok := it.sys()
		if !ok || v.k != sysString {
			return nil, errorf("join() needs strings")
		}
		parts = append(parts, v.s)
	}
	return Collection{{val: strings.Join(parts, sep)}}, nil
}

func fnCodec(encode bool) func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	return func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
		s, ok, err := inputString(f)
		if err != nil || !ok {
			return nil, err
		}
		format, ok, err := argString(c, n.args[0])
		if err != nil || !ok {
			return nil, err
		}
		var enc interface {
			EncodeToString([]byte) string
			DecodeString(string) ([]byte, error)
		}
		switch format {
		case "base64":
			enc = base64.StdEncoding
		case "urlbase64":
			enc = base64.URLEncoding
		case "hex":
			if encode {
				return Collection{{val: hex.EncodeToString([]byte(s))}}, nil
			}
			b, err := hex.DecodeString(s)
			if err != nil {
				return nil, nil
			}
			return Collection{{val: string(b)}}, nil
		default:
			return nil, errorf("unknown encoding %q", format)
		}
		if encode {
			return Collection{{val: enc.EncodeToString([]byte(s))}}, nil
		}
		b, err := enc.DecodeString(s)
		if err != nil {
			return nil, nil
		}
		return Collection{{val: string(b)}}, nil
	}
}

var (
	htmlEscaper   = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;")
	htmlUnescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&#39;", "'", "&apos;", "'")
	jsonEscaper   = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\f", `\f`, "\b", `\b`)
	jsonUnescaper = strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\n`, "\n", `\r`, "\r", `\t`, "\t", `\f`, "\f", `\b`, "\b", `\/`, "/")
)

func fnEscape(escape bool) func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	return func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
		s, ok, err := inputString(f)
		if err != nil || !ok {
			return nil, err
		}
		format, ok, err := argString(c, n.args[0])
		if err != nil || !ok {
			return nil, err
		}
		var r *strings.Replacer
		switch {
		case format == "html" && escape:
			r = htmlEscaper
		case format == "html":
			r = htmlUnescaper
		case format == "json" && escape:
			r = jsonEscaper
		case format == "json":
			r = jsonUnescaper
		default:
			return nil, errorf("unknown escape format %q", format)
		}
		return Collection{{val: r.Replace(s)}}, nil
	}
}

// singleNumber returns the single numeric (or quantity) input.
func singleNumber(f Collection, name string) (value, bool, error) {
	v, ok, err := singleValue(f, name)
	if err != nil || !ok {
		return v, false, err
	}
	if !numeric(v.k) && v.k != sysQuantity {
		return v, false, errorf("%s() needs a number, got %s", name, sysNames[v.k])
	}
	return v, true, nil
}

func fnAbs(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	v, ok, err := singleNumber(f, "abs")
	if err != nil || !ok {
		return nil, err
	}
	switch v.k {
	case sysInteger:
		if v.i < 0 {
			v.i = -v.i
		}
	case sysDecimal:
		if v.d.Sign() < 0 {
			v.d = v.d.Neg()
		}
	case sysQuantity:
		if v.q.Value.Sign() < 0 {
			v.q.Value = v.q.Value.Neg()
		}
	}
	return Collection{v.item()}, nil
}

func fnRounding(op func(Decimal) Decimal) func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	return func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
		v, ok, err := singleNumber(f, "rounding")
		if err != nil || !ok {
			return nil, err
		}
		if v.k == sysQuantity {
			return nil, errorf("expected a number")
		}
		r := op(v.decimal())
		if i, ok := r.Int64(); ok {
			return Collection{{val: i}}, nil
		}
		return Collection{{val: r}}, nil
	}
}

func fnRound(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	v, ok, err := singleNumber(f, "round")
	if err != nil || !ok || v.k == sysQuantity {
		return nil, err
	}
	p := int64(0)
	if len(n.args) == 1 {
		a, err := c.arg(n.args[0])
		if err != nil {
			return nil, err
		}
		if p, ok, err = singletonInt(a); err != nil || !ok {
			return nil, err
		}
		if p < 0 {
			return nil, errorf("round() precision must not be negative")
		}
	}
	return Collection{{val: v.decimal().Round(int(p))}}, nil
}

func floatResult(x float64) Collection {
	d, ok := DecimalFromFloat(x)
	if !ok {
		return nil
	}
	return Collection{{val: d}}
}

func floatFn(op func(float64) float64) *function {
	return fn(0, 0, func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
		v, ok, err := singleNumber(f, "math")
		if err != nil || !ok || v.k == sysQuantity {
			return nil, err
		}
		return floatResult(op(v.decimal().Float64())), nil
	})
}

func argNumber(c *evalCtx, a node) (value, bool, error) {
	r, err := c.arg(a)
	if err != nil {
		return value{}, false, err
	}
	v, ok, err := singleValue(r, "argument")
	if err != nil || !ok {
		return v, false, err
	}
	if !numeric(v.k) {
		return v, false, errorf("expected a number argument")
	}
	return v, true, nil
}

func fnLog(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	v, ok, err := singleNumber(f, "log")
	if err != nil || !ok || v.k == sysQuantity {
		return nil, err
	}
	b, ok, err := argNumber(c, n.args[0])
	if err != nil || !ok {
		return nil, err
	}
	return floatResult(math.Log(v.decimal().Float64()) / math.Log(b.decimal().Float64())), nil
}

func fnPower(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	v, ok, err := singleNumber(f, "power")
	if err != nil || !ok || v.k == sysQuantity {
		return nil, err
	}
	e, ok, err := argNumber(c, n.args[0])
	if err != nil || !ok {
		return nil, err
	}
	if v.k == sysInteger && e.k == sysInteger && e.i >= 0 && e.i < 64 {
		r := int64(1)
		for i := int64(0); i < e.i; i++ {
			ok, p := mul64(r, v.i)
			if !ok {
				return nil, nil
			}
			r = p
		}
		return Collection{{val: r}}, nil
	}
	return floatResult(math.Pow(v.decimal().Float64(), e.decimal().Float64())), nil
}

// childItems appends the children of it, in definition order for FHIR
// items. It visits the keys the JSON object has (usually far fewer than
// the type's elements) and orders them by definition.
func (c *evalCtx) childItems(out Collection, it Item) Collection {
	m, ok := it.val.(map[string]any)
	if it.typ != nil && it.typ.kind == ntPrimitive {
		m, ok = it.ext, it.ext != nil
	}
	if !ok {
		return out
	}
	if it.typ == nil {
		keys := make([]string, 0, len(m))
		for k := range m {
			if k != "resourceType" && !strings.HasPrefix(k, "_") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = c.appendChild(out, it, m, childRef{json: k})
		}
		return out
	}
	nt := it.typ
	nt.children()
	var buf [24]childRef
	refs := buf[:0]
	for k := range m {
		if len(k) > 1 && k[0] == '_' {
			if _, has := m[k[1:]]; has {
				continue // visited with its value
			}
			k = k[1:]
		}
		if ref, ok := nt.byJSON[k]; ok {
			refs = append(refs, ref)
		}
	}
	// insertion sort: objects have few keys
	for i := 1; i < len(refs); i++ {
		for j := i; j > 0 && (refs[j].order < refs[j-1].order || refs[j].order == refs[j-1].order && refs[j].json < refs[j-1].json); j-- {
			refs[j], refs[j-1] = refs[j-1], refs[j]
		}
	}
	for _, r := range refs {
		out = c.appendChild(out, it, m, r)
	}
	return out
}

// countChildren is len(childItems(nil, it)) without building the items.
func countChildren(it Item) int {
	m, ok := it.val.(map[string]any)
	if it.typ != nil && it.typ.kind == ntPrimitive {
		m, ok = it.ext, it.ext != nil
	}
	if !ok {
		return 0
	}
	n := 0
	if it.typ == nil {
		for k, v := range m {
			if k != "resourceType" && !strings.HasPrefix(k, "_") {
				n += countValues(v, nil, false)
			}
		}
		return n
	}
	nt := it.typ
	nt.children()
	for k := range m {
		if len(k) > 1 && k[0] == '_' {
			if _, has := m[k[1:]]; has {
				continue
			}
			k = k[1:]
		}
		ref, ok := nt.byJSON[k]
		if !ok {
			continue
		}
		v := m[ref.json]
		var ev any
		hasExt := false
		if ref.nt != nil && ref.nt.kind == ntPrimitive {
			ev, hasExt = m[ref.ext]
		}
		n += countValues(v, ev, hasExt)
	}
	return n
}

// countValues counts the items appendChild makes of a property's value
// and its companion.
func countValues(v, ev any, hasExt bool) int {
	vals, isArr := v.([]any)
	exts, extArr := ev.([]any)
	if isArr || extArr {
		n := 0
		for i := 0; i < max(len(vals), len(exts)); i++ {
			var e any
			if i < len(vals) {
				e = vals[i]
			}
			var em map[string]any
			if i < len(exts) {
				em, _ = exts[i].(map[string]any)
			}
			if e != nil || em != nil {
				n++
			}
		}
		return n
	}
	em, _ := ev.(map[string]any)
	if v == nil && em == nil {
		return 0
	}
	return 1
}

func fnChildren(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	var out Collection
	for _, it := range f {
		out = c.childItems(out, it)
	}
	return out, nil
}

func fnDescendants(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	if len(f) == 1 {
		if r, ok := c.descendantsOf(f[0]); ok {
			return r, nil
		}
	}
	var out Collection
	if len(f) == 1 {
		if m, ok := f[0].val.(map[string]any); ok {
			out = make(Collection, 0, min(256, 4*len(m)+8)) // a guess that saves most regrowth
		}
	}
	queue := f
	for len(queue) > 0 {
		start := len(out)
		for _, it := range queue {
			if err := c.tick(); err != nil {
				return nil, err
			}
			out = c.childItems(out, it)
		}
		queue = out[start:]
	}
	if len(f) == 1 {
		out = c.rememberDescendants(f[0], out)
	}
	return out, nil
}

func fnTrace(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	name, _, err := argString(c, n.args[0])
	if err != nil {
		return nil, err
	}
	shown := f
	if len(n.args) == 2 {
		shown = nil
		err := c.lambda(n.args[1], f, func(_ int, r Collection) (bool, error) {
			shown = append(shown, r...)
			return false, nil
		})
		if err != nil {
			return nil, err
		}
	}
	if c.env.Trace != nil {
		c.env.Trace(name, shown)
	}
	return f, nil
}

func (c *evalCtx) clock() time.Time {
	if c.now.IsZero() {
		if c.env.Now != nil {
			c.now = c.env.Now()
		} else {
			c.now = time.Now()
		}
	}
	return c.now
}

func fnNow(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	t := c.clock()
	_, off := t.Zone()
	return Collection{{val: fromGoTime(t, PrecisionMillisecond, true, off/60)}}, nil
}

func fnToday(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	return Collection{{val: Date(fromGoTime(c.clock(), PrecisionDay, false, 0))}}, nil
}

func fnTimeOfDay(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	dt := fromGoTime(c.clock(), PrecisionMillisecond, false, 0)
	dt.Year, dt.Month, dt.Day = 0, 0, 0
	return Collection{{val: Time(dt)}}, nil
}

func fnAggregate(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	saveTotal := c.total
	defer func() { c.total = saveTotal }()
	var total Collection
	if len(n.args) == 2 {
		init, err := c.arg(n.args[1])
		if err != nil {
			return nil, err
		}
		total = init
	}
	c.total = total
	err := c.lambda(n.args[0], f, func(_ int, r Collection) (bool, error) {
		c.total = r
		return false, nil
	})
	return c.total, err
}

func fnSort(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	type key struct {
		x    node
		desc bool
	}
	keys := make([]key, len(n.args))
	for i, a := range n.args {
		keys[i] = key{x: a}
		if u, ok := a.(*unaryNode); ok && u.neg {
			keys[i] = key{x: u.x, desc: true}
		}
	}
	if len(keys) == 0 {
		keys = []key{{x: &specialNode{name: "this"}}}
	}
	vals := make([][]Collection, len(f))
	for ki, k := range keys {
		err := c.lambda(k.x, f, func(i int, r Collection) (bool, error) {
			if vals[i] == nil {
				vals[i] = make([]Collection, len(keys))
			}
			vals[i][ki] = r
			return false, nil
		})
		if err != nil {
			return nil, err
		}
	}
	idx := make([]int, len(f))
	for i := range idx {
		idx[i] = i
	}
	var sortErr error
	sort.SliceStable(idx, func(a, b int) bool {
		for ki, k := range keys {
			x, y := vals[idx[a]][ki], vals[idx[b]][ki]
			cmp := 0
			switch {
			case len(x) == 0 && len(y) == 0:
			case len(x) == 0: // empty sorts first, in either direction
				return true
			case len(y) == 0:
				return false
			default:
				vx, _ := x[0].sys()
				vy, _ := y[0].sys()
				var err error
				cmp, _, err = compareValues(vx, vy)
				if err != nil && sortErr == nil {
					sortErr = err
				}
			}
			if k.desc {
				cmp = -cmp
			}
			if cmp != 0 {
				return cmp < 0
			}
		}
		return false
	})
	if sortErr != nil {
		return nil, sortErr
	}
	out := make(Collection, len(f))
	for i, j := range idx {
		out[i] = f[j]
	}
	return out, nil
}

func fnType(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	out := make(Collection, 0, len(f))
	for _, it := range f {
		ns, name := it.Type()
		out = append(out, Item{val: map[string]any{"namespace": ns, "name": name}})
	}
	return out, nil
}

func fnNot(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	b, known, err := toBool(f)
	if err != nil || !known {
		return nil, err
	}
	return boolColl(!b), nil
}

// fnBoundary implements lowBoundary and highBoundary: the least and
// greatest value the input's precision allows, at the given precision.
func fnBoundary(high bool) func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	return func(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
		v, ok, err := singleValue(f, "boundary")
		if err != nil || !ok {
			return nil, err
		}
		p := int64(-1)
		if len(n.args) == 1 {
			a, err := c.arg(n.args[0])
			if err != nil {
				return nil, err
			}
			if p, ok, err = singletonInt(a); err != nil || !ok {
				return nil, err
			}
		}
		switch v.k {
		case sysInteger, sysDecimal, sysQuantity:
			d := v.decimal()
			if v.k == sysQuantity {
				d = v.q.Value
			}
			if p < 0 && len(n.args) == 1 || p > 28 {
				return nil, nil
			}
			if p < 0 {
				p = 8
			}
			r := decimalBoundary(d, int32(p), high)
			if v.k == sysQuantity {
				return Collection{{val: Quantity{Value: r, Unit: v.q.Unit}}}, nil
			}
			return Collection{{val: r}}, nil
		case sysDate, sysDateTime, sysTime:
			if p < 0 {
				p = map[sysKind]int64{sysDate: 8, sysDateTime: 17, sysTime: 9}[v.k]
			}
			r, ok := v.t.boundary(int(p), high, v.k == sysDate, v.k == sysTime)
			if !ok {
				return nil, nil
			}
			switch v.k {
			case sysDate:
				return Collection{{val: Date(r)}}, nil
			case sysTime:
				return Collection{{val: Time(r)}}, nil
			}
			return Collection{{val: r}}, nil
		}
		return nil, errorf("boundary of %s", sysNames[v.k])
	}
}

func decimalBoundary(d Decimal, p int32, high bool) Decimal {
	half := Decimal{m: 5, scale: d.scale + 1}
	if high {
		d = d.Add(half)
	} else {
		d = d.Sub(half)
	}
	if d.scale <= p {
		return d.rescale(p)
	}
	t := Decimal{b: new(big.Int).Quo(d.big(), pow10(d.scale-p)), scale: p}.norm()
	if t.rescale(d.scale).Cmp(d) != 0 {
		one := Decimal{m: 1, scale: p}
		if high && d.Sign() > 0 {
			t = t.Add(one)
		} else if !high && d.Sign() < 0 {
			t = t.Sub(one)
		}
	}
	return t
}

func fnPrecision(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	v, ok, err := singleValue(f, "precision")
	if err != nil || !ok {
		return nil, err
	}
	switch v.k {
	case sysDecimal:
		return Collection{{val: int64(v.d.Scale())}}, nil
	case sysInteger:
		return Collection{{val: int64(0)}}, nil
	case sysDate, sysDateTime:
		return Collection{{val: int64(v.t.precisionDigits())}}, nil
	case sysTime:
		return Collection{{val: int64(Time(v.t).precisionDigits())}}, nil
	}
	return nil, nil
}

func fnComparable(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	v, ok, err := singleValue(f, "comparable")
	if err != nil || !ok {
		return nil, err
	}
	r, err := c.arg(n.args[0])
	if err != nil {
		return nil, err
	}
	w, ok, err := singleValue(r, "comparable")
	if err != nil || !ok {
		return nil, err
	}
	if v.k != sysQuantity || w.k != sysQuantity {
		return nil, errorf("comparable() needs quantities")
	}
	_, ok = compareQuantity(v.q, w.q)
	return boolColl(ok), nil
}
