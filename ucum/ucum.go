// Package ucum converts quantities in UCUM units
// (http://unitsofmeasure.org/ucum.html) to canonical base units, so that
// 500 mg and 0.5 g compare equal in search and in FHIRPath. It is the one
// unit table of Hale: search indexes and queries quantities through
// Canonical, FHIRPath compares and converts them through Parse.
//
// Units reduce to the base units m, g, s, K, mol, A, cd and [iU]
// (international units, which UCUM leaves arbitrary) with exact rational
// factors. The parser takes UCUM's syntax: terms joined by '.' and '/', a
// leading '/', integer exponents (m2, s-1), parentheses, factors 10*n and
// 10^n and plain integers, and annotations ({beats}/min, which count as 1).
// The atoms are the common units of clinical data:
//
//	mass         g (metric prefixes Y…a), t, [lb_av], [oz_av], [gr]
//	length       m, [in_i], [ft_i], [yd_i], [mi_i]
//	volume       L, l, [foz_us] (and m3)
//	time         s, min, h, d, wk, mo (mean Julian month), a (Julian year)
//	temperature  K, Cel, [degF] (with an offset: only alone, not in products)
//	pressure     Pa, bar, atm, m[Hg], m[H2O] (mm[Hg], cm[H2O])
//	amount       mol, eq (= mol), kat, U (= umol/min), [iU], [IU]
//	other        1, %, [ppm], [ppb], Hz, N, J, W, cal, [Cal], A, cd
//
// Factors are UCUM's own definitions (ucum-essence.xml): a = 365.25 d,
// mo = a/12, m[Hg] = 133.3220 kPa, m[H2O] = 9.80665 kPa. Any other code is
// reported as not convertible; callers then compare the code as written.
package ucum

import (
	"math/big"
	"strconv"
	"strings"
	"sync"
)

// Dims are the exponents of the base units, in the order of baseNames.
type Dims [8]int8

// baseNames are the base units, sorted as canonical codes list them.
var baseNames = [8]string{"A", "K", "[iU]", "cd", "g", "m", "mol", "s"}

const (
	dA = iota
	dK
	dIU
	dCd
	dG
	dM
	dMol
	dS
)

// String returns the canonical code of the dimensions: "g.m-1.s-2",
// "m-3.mol", "1" for none.
func (d Dims) String() string {
	var b strings.Builder
	for i, e := range d {
		if e == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(baseNames[i])
		if e != 1 {
			b.WriteString(strconv.Itoa(int(e)))
		}
	}
	if b.Len() == 0 {
		return "1"
	}
	return b.String()
}

// Unit is a unit reduced to base units: a value v in the unit is
// (v + Offset) × Factor in the base units Dims. The rationals are shared
// between callers and must not be modified.
type Unit struct {
	Factor *big.Rat
	// Offset is nil except for the temperature scales Cel and [degF],
	// which are only understood alone.
	Offset *big.Rat
	Dims   Dims
}

type atom struct {
	factor string // exact, as big.Rat parses it
	d      Dims
	metric bool   // takes a metric prefix
	offset string // Cel and [degF]
}

func dims(pairs ...int) Dims {
	var d Dims
	for i := 0; i < len(pairs); i += 2 {
		d[pairs[i]] = int8(pairs[i+1])
	}
	return d
}

var (
	mass     = dims(dG, 1)
	length   = dims(dM, 1)
	volume   = dims(dM, 3)
	duration = dims(dS, 1)
	pressure = dims(dG, 1, dM, -1, dS, -2)
	energy   = dims(dG, 1, dM, 2, dS, -2)
)

var atoms = map[string]atom{
	"1":        {factor: "1"},
	"m":        {factor: "1", d: length, metric: true},
	"g":        {factor: "1", d: mass, metric: true},
	"s":        {factor: "1", d: duration, metric: true},
	"K":        {factor: "1", d: dims(dK, 1), metric: true},
	"mol":      {factor: "1", d: dims(dMol, 1), metric: true},
	"A":        {factor: "1", d: dims(dA, 1), metric: true},
	"cd":       {factor: "1", d: dims(dCd, 1), metric: true},
	"eq":       {factor: "1", d: dims(dMol, 1), metric: true},
	"[iU]":     {factor: "1", d: dims(dIU, 1), metric: true},
	"[IU]":     {factor: "1", d: dims(dIU, 1), metric: true},
	"U":        {factor: "1/60000000", d: dims(dMol, 1, dS, -1), metric: true},
	"kat":      {factor: "1", d: dims(dMol, 1, dS, -1), metric: true},
	"L":        {factor: "1/1000", d: volume, metric: true},
	"l":        {factor: "1/1000", d: volume, metric: true},
	"t":        {factor: "1000000", d: mass, metric: true},
	"min":      {factor: "60", d: duration},
	"h":        {factor: "3600", d: duration},
	"d":        {factor: "86400", d: duration},
	"wk":       {factor: "604800", d: duration},
	"mo":       {factor: "2629800", d: duration},  // mean Julian month, a/12
	"a":        {factor: "31557600", d: duration}, // Julian year, 365.25 d
	"Hz":       {factor: "1", d: dims(dS, -1), metric: true},
	"N":        {factor: "1000", d: dims(dG, 1, dM, 1, dS, -2), metric: true},
	"Pa":       {factor: "1000", d: pressure, metric: true},
	"bar":      {factor: "100000000", d: pressure, metric: true},
	"atm":      {factor: "101325000", d: pressure},
	"m[Hg]":    {factor: "133322000", d: pressure, metric: true},
	"m[H2O]":   {factor: "9806650", d: pressure, metric: true},
	"J":        {factor: "1000", d: energy, metric: true},
	"W":        {factor: "1000", d: dims(dG, 1, dM, 2, dS, -3), metric: true},
	"cal":      {factor: "4184", d: energy, metric: true},
	"[Cal]":    {factor: "4184000", d: energy},
	"[in_i]":   {factor: "0.0254", d: length},
	"[ft_i]":   {factor: "0.3048", d: length},
	"[yd_i]":   {factor: "0.9144", d: length},
	"[mi_i]":   {factor: "1609.344", d: length},
	"[lb_av]":  {factor: "453.59237", d: mass},
	"[oz_av]":  {factor: "28.349523125", d: mass},
	"[gr]":     {factor: "0.06479891", d: mass},
	"[foz_us]": {factor: "0.0000295735295625", d: volume},
	"%":        {factor: "1/100"},
	"[ppm]":    {factor: "1/1000000"},
	"[ppb]":    {factor: "1/1000000000"},
	"Cel":      {factor: "1", d: dims(dK, 1), offset: "273.15"},
	"[degF]":   {factor: "5/9", d: dims(dK, 1), offset: "459.67"},
}

var prefixes = map[string]string{
	"Y": "1e24", "Z": "1e21", "E": "1e18", "P": "1e15", "T": "1e12", "G": "1e9", "M": "1e6",
	"k": "1e3", "h": "1e2", "da": "10", "d": "1/10", "c": "1/100", "m": "1/1000", "u": "1/1000000",
	"n": "1e-9", "p": "1e-12", "f": "1e-15", "a": "1e-18",
}

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("ucum: bad factor " + s)
	}
	return r
}

var cache sync.Map // code → *Unit (nil: not understood)

// Parse reduces a UCUM code to base units; ok is false when the code is
// not one this package understands (an unknown atom, a syntax error, a
// temperature scale inside a product).
func Parse(code string) (Unit, bool) {
	if v, ok := cache.Load(code); ok {
		u := v.(*Unit)
		if u == nil {
			return Unit{}, false
		}
		return *u, true
	}
	p := &parser{s: code}
	u, ok := p.term()
	if ok && p.i != len(p.s) {
		ok = false
	}
	if ok && u.offset != nil && code != "Cel" && code != "[degF]" {
		ok = false
	}
	var out *Unit
	if ok {
		out = &Unit{Factor: u.factor, Offset: u.offset, Dims: u.d}
	}
	cache.Store(code, out)
	if !ok {
		return Unit{}, false
	}
	return *out, true
}

// Canonical converts value in unit code to canonical units and returns
// the canonical unit code (e.g. "g", "g.m-1.s-2") and value. ok is false
// when the code is not a unit this package knows.
func Canonical(code string, value float64) (canonCode string, canonValue float64, ok bool) {
	u, ok := Parse(code)
	if !ok {
		return "", 0, false
	}
	f, _ := u.Factor.Float64()
	if u.Offset != nil {
		off, _ := u.Offset.Float64()
		value += off
	}
	return u.Dims.String(), value * f, true
}

// Comparable reports whether two unit codes measure the same dimension.
func Comparable(a, b string) bool {
	ua, okA := Parse(a)
	ub, okB := Parse(b)
	return okA && okB && ua.Dims == ub.Dims
}

// Convert converts value from unit from to unit to.
func Convert(value float64, from, to string) (float64, bool) {
	uf, ok1 := Parse(from)
	ut, ok2 := Parse(to)
	if !ok1 || !ok2 || uf.Dims != ut.Dims {
		return 0, false
	}
	_, v, _ := Canonical(from, value)
	f, _ := ut.Factor.Float64()
	v /= f
	if ut.Offset != nil {
		off, _ := ut.Offset.Float64()
		v -= off
	}
	return v, true
}

// unit is a term being parsed.
type unit struct {
	factor *big.Rat
	d      Dims
	offset *big.Rat
}

var one = big.NewRat(1, 1)

type parser struct {
	s string
	i int
}

// term parses components joined by '.' and '/', up to the end or ')'.
func (p *parser) term() (unit, bool) {
	res := unit{factor: one}
	div := false
	if p.i < len(p.s) && p.s[p.i] == '/' {
		div = true
		p.i++
	}
	for {
		c, ok := p.component()
		if !ok {
			return unit{}, false
		}
		if res, ok = combine(res, c, div); !ok {
			return unit{}, false
		}
		if p.i >= len(p.s) || p.s[p.i] == ')' {
			return res, true
		}
		switch p.s[p.i] {
		case '.':
			div = false
		case '/':
			div = true
		default:
			return unit{}, false
		}
		p.i++
	}
}

// combine multiplies (or divides) a by b. A unit with an offset
// (a temperature scale) combines with nothing.
func combine(a, b unit, div bool) (unit, bool) {
	if a.offset != nil || b.offset != nil {
		if a.offset != nil || a.factor.Cmp(one) != 0 || a.d != (Dims{}) || div {
			return unit{}, false
		}
		return b, true
	}
	out := unit{factor: new(big.Rat)}
	if div {
		if b.factor.Sign() == 0 {
			return unit{}, false
		}
		out.factor.Quo(a.factor, b.factor)
	} else {
		out.factor.Mul(a.factor, b.factor)
	}
	for i := range out.d {
		if div {
			out.d[i] = a.d[i] - b.d[i]
		} else {
			out.d[i] = a.d[i] + b.d[i]
		}
	}
	return out, true
}

func (p *parser) component() (unit, bool) {
	if p.i >= len(p.s) {
		return unit{}, false
	}
	switch c := p.s[p.i]; {
	case c == '(':
		p.i++
		d, ok := p.term()
		if !ok || p.i >= len(p.s) || p.s[p.i] != ')' {
			return unit{}, false
		}
		p.i++
		return p.exponent(d)
	case c == '{':
		end := strings.IndexByte(p.s[p.i:], '}')
		if end < 0 {
			return unit{}, false
		}
		p.i += end + 1
		return unit{factor: one}, true
	case c >= '0' && c <= '9':
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		n, ok := new(big.Rat).SetString(p.s[start:p.i])
		if !ok {
			return unit{}, false
		}
		if p.i+1 < len(p.s) && (p.s[p.i] == '*' || p.s[p.i] == '^') {
			p.i++
			e, ok := p.signedInt()
			if !ok || e > 30 || e < -30 {
				return unit{}, false
			}
			n = ratPow(n, e)
		}
		p.skipAnnotation()
		return unit{factor: n}, true
	}
	// an atom: the longest run of symbol characters (brackets may hold
	// anything), then an optional annotation and exponent
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '[' {
			end := strings.IndexByte(p.s[p.i:], ']')
			if end < 0 {
				return unit{}, false
			}
			p.i += end + 1
			continue
		}
		if c == '.' || c == '/' || c == '(' || c == ')' || c == '{' || (c >= '0' && c <= '9') || c == '-' || c == '+' {
			break
		}
		p.i++
	}
	d, ok := lookup(p.s[start:p.i])
	if !ok {
		return unit{}, false
	}
	p.skipAnnotation()
	return p.exponent(d)
}

func (p *parser) skipAnnotation() {
	if p.i < len(p.s) && p.s[p.i] == '{' {
		if end := strings.IndexByte(p.s[p.i:], '}'); end >= 0 {
			p.i += end + 1
		}
	}
}

func (p *parser) signedInt() (int, bool) {
	start := p.i
	if p.i < len(p.s) && (p.s[p.i] == '-' || p.s[p.i] == '+') {
		p.i++
	}
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	n, err := strconv.Atoi(p.s[start:p.i])
	return n, err == nil
}

func (p *parser) exponent(d unit) (unit, bool) {
	if p.i >= len(p.s) {
		return d, true
	}
	c := p.s[p.i]
	if !(c >= '0' && c <= '9') && c != '-' && c != '+' {
		return d, true
	}
	e, ok := p.signedInt()
	if !ok || e > 10 || e < -10 || d.offset != nil {
		return unit{}, false
	}
	out := unit{factor: ratPow(d.factor, e)}
	for i := range d.d {
		out.d[i] = d.d[i] * int8(e)
	}
	return out, true
}

func ratPow(r *big.Rat, e int) *big.Rat {
	out := big.NewRat(1, 1)
	base := new(big.Rat).Set(r)
	if e < 0 {
		if base.Sign() == 0 {
			return out
		}
		base.Inv(base)
		e = -e
	}
	for i := 0; i < e; i++ {
		out.Mul(out, base)
	}
	return out
}

// lookup finds an atom, with a metric prefix where the atom takes one.
func lookup(sym string) (unit, bool) {
	mk := func(a atom, prefix string) unit {
		u := unit{factor: rat(a.factor), d: a.d}
		if prefix != "" {
			u.factor.Mul(u.factor, rat(prefixes[prefix]))
		}
		if a.offset != "" {
			u.offset = rat(a.offset)
		}
		return u
	}
	if a, ok := atoms[sym]; ok {
		return mk(a, ""), true
	}
	for _, n := range [2]int{2, 1} {
		if len(sym) > n {
			if _, ok := prefixes[sym[:n]]; ok {
				if a, ok := atoms[sym[n:]]; ok && a.metric {
					return mk(a, sym[:n]), true
				}
			}
		}
	}
	return unit{}, false
}
