package fhirpath

import (
	"math/big"
	"strconv"
	"strings"
	"sync"
)

// Quantity is a System.Quantity: a decimal value and a unit, which is a
// UCUM code (e.g. "mg", "[lb_av]", "1") or one of the calendar duration
// keywords (year, month, week, day, hour, minute, second, millisecond and
// their plurals) (http://hl7.org/fhirpath/N1/#quantity).
type Quantity struct {
	Value Decimal
	Unit  string
}

// String formats q as a FHIRPath literal: 4.5 'mg', 1 week.
func (q Quantity) String() string {
	if isCalendarKeyword(q.Unit) {
		return q.Value.String() + " " + q.Unit
	}
	return q.Value.String() + " '" + q.Unit + "'"
}

func isCalendarKeyword(u string) bool {
	switch u {
	case "year", "years", "month", "months", "week", "weeks", "day", "days",
		"hour", "hours", "minute", "minutes", "second", "seconds", "millisecond", "milliseconds":
		return true
	}
	return false
}

// dimensions: length, mass, time, temperature, amount, current, luminous
// intensity, arbitrary (international) units, calendar months.
const nDims = 9

type dims [nDims]int8

// unitDef is a unit reduced to its base units: value × factor (+ offset
// for temperatures) in the base units with the exponents of d.
type unitDef struct {
	factor *big.Rat
	d      dims
	offset *big.Rat // Cel and [degF] only; then the unit cannot be combined
}

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("fhirpath: bad unit factor " + s)
	}
	return r
}

type atom struct {
	factor string
	d      dims
	metric bool // takes a prefix
	offset string
}

func dm(l, m, t, k, n, a, cd, iu, cal int8) dims { return dims{l, m, t, k, n, a, cd, iu, cal} }

// ucumAtoms are the UCUM units Hale converts between: the common units of
// clinical data (http://unitsofmeasure.org/ucum.html). Anything else is
// still a valid unit; it is only comparable with itself.
var ucumAtoms = map[string]atom{
	"1":        {factor: "1"},
	"m":        {factor: "1", d: dm(1, 0, 0, 0, 0, 0, 0, 0, 0), metric: true},
	"g":        {factor: "1", d: dm(0, 1, 0, 0, 0, 0, 0, 0, 0), metric: true},
	"s":        {factor: "1", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0), metric: true},
	"K":        {factor: "1", d: dm(0, 0, 0, 1, 0, 0, 0, 0, 0), metric: true},
	"mol":      {factor: "1", d: dm(0, 0, 0, 0, 1, 0, 0, 0, 0), metric: true},
	"A":        {factor: "1", d: dm(0, 0, 0, 0, 0, 1, 0, 0, 0), metric: true},
	"cd":       {factor: "1", d: dm(0, 0, 0, 0, 0, 0, 1, 0, 0), metric: true},
	"eq":       {factor: "1", d: dm(0, 0, 0, 0, 1, 0, 0, 0, 0), metric: true},
	"[iU]":     {factor: "1", d: dm(0, 0, 0, 0, 0, 0, 0, 1, 0), metric: true},
	"[IU]":     {factor: "1", d: dm(0, 0, 0, 0, 0, 0, 0, 1, 0), metric: true},
	"U":        {factor: "1/60000000", d: dm(0, 0, -1, 0, 1, 0, 0, 0, 0), metric: true},
	"kat":      {factor: "1", d: dm(0, 0, -1, 0, 1, 0, 0, 0, 0), metric: true},
	"L":        {factor: "1/1000", d: dm(3, 0, 0, 0, 0, 0, 0, 0, 0), metric: true},
	"l":        {factor: "1/1000", d: dm(3, 0, 0, 0, 0, 0, 0, 0, 0), metric: true},
	"t":        {factor: "1000000", d: dm(0, 1, 0, 0, 0, 0, 0, 0, 0), metric: true},
	"min":      {factor: "60", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)},
	"h":        {factor: "3600", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)},
	"d":        {factor: "86400", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)},
	"wk":       {factor: "604800", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)},
	"mo":       {factor: "2629800", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)},  // mean Julian month
	"a":        {factor: "31557600", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)}, // Julian year
	"Hz":       {factor: "1", d: dm(0, 0, -1, 0, 0, 0, 0, 0, 0), metric: true},
	"N":        {factor: "1000", d: dm(1, 1, -2, 0, 0, 0, 0, 0, 0), metric: true},
	"Pa":       {factor: "1000", d: dm(-1, 1, -2, 0, 0, 0, 0, 0, 0), metric: true},
	"bar":      {factor: "100000000", d: dm(-1, 1, -2, 0, 0, 0, 0, 0, 0), metric: true},
	"atm":      {factor: "101325000", d: dm(-1, 1, -2, 0, 0, 0, 0, 0, 0)},
	"m[Hg]":    {factor: "133322000", d: dm(-1, 1, -2, 0, 0, 0, 0, 0, 0), metric: true},
	"m[H2O]":   {factor: "9806650", d: dm(-1, 1, -2, 0, 0, 0, 0, 0, 0), metric: true},
	"J":        {factor: "1000", d: dm(2, 1, -2, 0, 0, 0, 0, 0, 0), metric: true},
	"W":        {factor: "1000", d: dm(2, 1, -3, 0, 0, 0, 0, 0, 0), metric: true},
	"cal":      {factor: "4184", d: dm(2, 1, -2, 0, 0, 0, 0, 0, 0), metric: true},
	"[Cal]":    {factor: "4184000", d: dm(2, 1, -2, 0, 0, 0, 0, 0, 0)},
	"[in_i]":   {factor: "0.0254", d: dm(1, 0, 0, 0, 0, 0, 0, 0, 0)},
	"[ft_i]":   {factor: "0.3048", d: dm(1, 0, 0, 0, 0, 0, 0, 0, 0)},
	"[yd_i]":   {factor: "0.9144", d: dm(1, 0, 0, 0, 0, 0, 0, 0, 0)},
	"[mi_i]":   {factor: "1609.344", d: dm(1, 0, 0, 0, 0, 0, 0, 0, 0)},
	"[lb_av]":  {factor: "453.59237", d: dm(0, 1, 0, 0, 0, 0, 0, 0, 0)},
	"[oz_av]":  {factor: "28.349523125", d: dm(0, 1, 0, 0, 0, 0, 0, 0, 0)},
	"[gr]":     {factor: "0.06479891", d: dm(0, 1, 0, 0, 0, 0, 0, 0, 0)},
	"[foz_us]": {factor: "0.0000295735295625", d: dm(3, 0, 0, 0, 0, 0, 0, 0, 0)},
	"%":        {factor: "1/100"},
	"[ppm]":    {factor: "1/1000000"},
	"[ppb]":    {factor: "1/1000000000"},
	"Cel":      {factor: "1", d: dm(0, 0, 0, 1, 0, 0, 0, 0, 0), offset: "273.15"},
	"[degF]":   {factor: "5/9", d: dm(0, 0, 0, 1, 0, 0, 0, 0, 0), offset: "459.67"},
	// calendar durations: year and month are comparable with each other
	// only; week and finer equal their UCUM definite durations.
	"year":        {factor: "12", d: dm(0, 0, 0, 0, 0, 0, 0, 0, 1)},
	"month":       {factor: "1", d: dm(0, 0, 0, 0, 0, 0, 0, 0, 1)},
	"week":        {factor: "604800", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)},
	"day":         {factor: "86400", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)},
	"hour":        {factor: "3600", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)},
	"minute":      {factor: "60", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)},
	"second":      {factor: "1", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)},
	"millisecond": {factor: "1/1000", d: dm(0, 0, 1, 0, 0, 0, 0, 0, 0)},
}

var ucumPrefixes = map[string]string{
	"Y": "1e24", "Z": "1e21", "E": "1e18", "P": "1e15", "T": "1e12", "G": "1e9", "M": "1e6",
	"k": "1e3", "h": "1e2", "da": "10", "d": "1/10", "c": "1/100", "m": "1/1000", "u": "1/1000000",
	"n": "1e-9", "p": "1e-12", "f": "1e-15", "a": "1e-18",
}

var unitCache sync.Map // string -> *unitDef (nil entry: not understood)

// parseUnit reduces a UCUM unit expression (or calendar keyword) to base
// units; ok is false when Hale does not know the unit.
func parseUnit(u string) (*unitDef, bool) {
	if v, ok := unitCache.Load(u); ok {
		d := v.(*unitDef)
		return d, d != nil
	}
	key := u
	switch u {
	case "years", "months", "weeks", "days", "hours", "minutes", "seconds", "milliseconds":
		u = u[:len(u)-1]
	}
	p := &unitParser{s: u}
	d, ok := p.term()
	if ok && p.i != len(p.s) {
		ok = false
	}
	if !ok {
		d = nil
	}
	if d != nil && d.offset != nil && u != "Cel" && u != "[degF]" {
		d, ok = nil, false
	}
	unitCache.Store(key, d)
	return d, ok
}

type unitParser struct {
	s string
	i int
}

func (p *unitParser) term() (*unitDef, bool) {
	res := &unitDef{factor: big.NewRat(1, 1)}
	div := false
	if p.i < len(p.s) && p.s[p.i] == '/' {
		div = true
		p.i++
	}
	for {
		c, ok := p.component()
		if !ok {
			return nil, false
		}
		res = combine(res, c, div)
		if res == nil {
			return nil, false
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
			return nil, false
		}
		p.i++
	}
}

func combine(a, b *unitDef, div bool) *unitDef {
	if (a.offset != nil || b.offset != nil) && !(a.offset == nil && a.factor.Cmp(big.NewRat(1, 1)) == 0 && a.d == dims{} && !div) {
		return nil
	}
	out := &unitDef{factor: new(big.Rat), offset: b.offset}
	if div {
		if b.factor.Sign() == 0 {
			return nil
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
	return out
}

func (p *unitParser) component() (*unitDef, bool) {
	if p.i >= len(p.s) {
		return nil, false
	}
	switch c := p.s[p.i]; {
	case c == '(':
		p.i++
		d, ok := p.term()
		if !ok || p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, false
		}
		p.i++
		return p.exponent(d)
	case c == '{':
		end := strings.IndexByte(p.s[p.i:], '}')
		if end < 0 {
			return nil, false
		}
		p.i += end + 1
		return &unitDef{factor: big.NewRat(1, 1)}, true
	case c >= '0' && c <= '9':
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		n, _ := new(big.Rat).SetString(p.s[start:p.i])
		if n == nil {
			return nil, false
		}
		if p.i+1 < len(p.s) && (p.s[p.i] == '*' || p.s[p.i] == '^') {
			p.i++
			e, ok := p.signedInt()
			if !ok || e > 30 || e < -30 {
				return nil, false
			}
			n = ratPow(n, e)
		}
		p.skipAnnotation()
		return &unitDef{factor: n}, true
	}
	// an atom: the longest run of symbol characters (brackets may hold
	// anything), then an optional exponent
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '[' {
			end := strings.IndexByte(p.s[p.i:], ']')
			if end < 0 {
				return nil, false
			}
			p.i += end + 1
			continue
		}
		if c == '.' || c == '/' || c == '(' || c == ')' || c == '{' || (c >= '0' && c <= '9') || c == '-' || c == '+' {
			break
		}
		p.i++
	}
	sym := p.s[start:p.i]
	d, ok := lookupAtom(sym)
	if !ok {
		return nil, false
	}
	p.skipAnnotation()
	return p.exponent(d)
}

func (p *unitParser) skipAnnotation() {
	if p.i < len(p.s) && p.s[p.i] == '{' {
		if end := strings.IndexByte(p.s[p.i:], '}'); end >= 0 {
			p.i += end + 1
		}
	}
}

func (p *unitParser) signedInt() (int, bool) {
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

func (p *unitParser) exponent(d *unitDef) (*unitDef, bool) {
	if p.i >= len(p.s) {
		return d, true
	}
	c := p.s[p.i]
	if !(c >= '0' && c <= '9') && c != '-' && c != '+' {
		return d, true
	}
	e, ok := p.signedInt()
	if !ok || e > 10 || e < -10 || d.offset != nil {
		return nil, false
	}
	out := &unitDef{factor: ratPow(d.factor, e)}
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

func lookupAtom(sym string) (*unitDef, bool) {
	mk := func(a atom, prefix string) *unitDef {
		d := &unitDef{factor: rat(a.factor), d: a.d}
		if prefix != "" {
			d.factor.Mul(d.factor, rat(ucumPrefixes[prefix]))
		}
		if a.offset != "" {
			d.offset = rat(a.offset)
		}
		return d
	}
	if a, ok := ucumAtoms[sym]; ok {
		return mk(a, ""), true
	}
	for _, n := range [2]int{2, 1} {
		if len(sym) > n {
			if _, ok := ucumPrefixes[sym[:n]]; ok {
				if a, ok := ucumAtoms[sym[n:]]; ok && a.metric {
					return mk(a, sym[:n]), true
				}
			}
		}
	}
	return nil, false
}

// toBase returns q's value in base units as an exact rational.
func (q Quantity) toBase() (*big.Rat, dims, bool) {
	u, ok := parseUnit(q.Unit)
	if !ok {
		return nil, dims{}, false
	}
	v := q.Value.rat()
	if u.offset != nil {
		v.Add(v, u.offset)
	}
	return v.Mul(v, u.factor), u.d, true
}

func (d Decimal) rat() *big.Rat {
	r := new(big.Rat).SetInt(d.big())
	if d.scale > 0 {
		r.Quo(r, new(big.Rat).SetInt(pow10(d.scale)))
	}
	return r
}

// decimalFromRat converts r to a Decimal, exactly when its decimal
// expansion ends within 20 places, else rounded there.
func decimalFromRat(r *big.Rat) Decimal {
	for scale := int32(0); scale <= 20; scale++ {
		x := new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(scale)))
		if x.IsInt() {
			return Decimal{b: new(big.Int).Set(x.Num()), scale: scale}.norm()
		}
	}
	d, _ := ParseDecimal(r.FloatString(20))
	return d.trimTo(0)
}

// convert expresses q in unit; ok is false when the units are not
// comparable.
func (q Quantity) convert(unit string) (Quantity, bool) {
	if q.Unit == unit {
		return q, true
	}
	v, d1, ok := q.toBase()
	if !ok {
		return Quantity{}, false
	}
	u, ok := parseUnit(unit)
	if !ok || u.d != d1 {
		return Quantity{}, false
	}
	v.Quo(v, u.factor)
	if u.offset != nil {
		v.Sub(v, u.offset)
	}
	return Quantity{Value: decimalFromRat(v), Unit: unit}, true
}

// compareQuantity orders two quantities; ok is false when their units are
// not comparable.
func compareQuantity(a, b Quantity) (int, bool) {
	if a.Unit == b.Unit || (sameCalendar(a.Unit, b.Unit)) {
		return a.Value.Cmp(b.Value), true
	}
	va, da, ok1 := a.toBase()
	vb, db, ok2 := b.toBase()
	if !ok1 || !ok2 || da != db {
		return 0, false
	}
	return va.Cmp(vb), true
}

func sameCalendar(a, b string) bool {
	return isCalendarKeyword(a) && isCalendarKeyword(b) && strings.TrimSuffix(a, "s") == strings.TrimSuffix(b, "s")
}

// equivalentQuantity compares at the precision of the less precise value,
// in the larger of the two units.
func equivalentQuantity(a, b Quantity) bool {
	ua, ok1 := parseUnit(a.Unit)
	ub, ok2 := parseUnit(b.Unit)
	if !ok1 || !ok2 {
		return a.Unit == b.Unit && a.Value.Cmp(b.Value) == 0
	}
	if ua.d != ub.d {
		return false
	}
	scale := min(a.Value.Scale(), b.Value.Scale())
	if ua.factor.Cmp(ub.factor) >= 0 {
		b2, ok := b.convert(a.Unit)
		return ok && a.Value.Round(scale).Cmp(b2.Value.Round(scale)) == 0
	}
	a2, ok := a.convert(b.Unit)
	return ok && a2.Value.Round(scale).Cmp(b.Value.Round(scale)) == 0
}

// ucumUnit maps a calendar keyword to its UCUM unit for multiplication.
func ucumUnit(u string) string {
	switch strings.TrimSuffix(u, "s") {
	case "year":
		return "a"
	case "month":
		return "mo"
	case "week":
		return "wk"
	case "day":
		return "d"
	case "hour":
		return "h"
	case "minute":
		return "min"
	case "second":
		return "s"
	case "millisecond":
		return "ms"
	}
	return u
}

func wrapUnit(u string) string {
	if strings.ContainsAny(u, "./") {
		return "(" + u + ")"
	}
	return u
}

// mulQuantity multiplies or divides two quantities; the unit is the
// product or quotient of the units, "1" when they cancel.
func mulQuantity(a, b Quantity, div bool) (Quantity, bool) {
	ua, ub := ucumUnit(a.Unit), ucumUnit(b.Unit)
	var v Decimal
	var unit string
	if div {
		var ok bool
		if v, ok = a.Value.Div(b.Value); !ok {
			return Quantity{}, false
		}
		switch {
		case ub == "1":
			unit = ua
		case ua == ub:
			unit = "1"
		case ua == "1":
			unit = "/" + wrapUnit(ub)
		default:
			unit = wrapUnit(ua) + "/" + wrapUnit(ub)
		}
	} else {
		v = a.Value.Mul(b.Value)
		switch {
		case ua == "1":
			unit = ub
		case ub == "1":
			unit = ua
		default:
			unit = wrapUnit(ua) + "." + wrapUnit(ub)
		}
	}
	return Quantity{Value: v, Unit: unit}, true
}
