package fhirpath

import (
	"math/big"
	"strings"
	"sync"

	"github.com/hale-ehr/hale/ucum"
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

// dims are a unit's dimensions: UCUM's base units (package ucum), and
// calendar months, the dimension of the keywords year and month, which
// FHIRPath compares with each other only (a year is 12 months, never
// 365.25 days).
type dims struct {
	u   ucum.Dims
	cal int8
}

// unitDef is a unit reduced to base units: a value v is (v + offset) ×
// factor in the base units of d. The rationals are shared: read only.
type unitDef struct {
	factor *big.Rat
	d      dims
	offset *big.Rat // Cel and [degF] only
}

// calendarDefs are the calendar duration keywords (singular); week and
// finer equal their UCUM definite durations.
var calendarDefs = map[string]*unitDef{
	"year":  {factor: big.NewRat(12, 1), d: dims{cal: 1}},
	"month": {factor: big.NewRat(1, 1), d: dims{cal: 1}},
}

func init() {
	for kw, code := range map[string]string{"week": "wk", "day": "d", "hour": "h", "minute": "min", "second": "s", "millisecond": "ms"} {
		u, ok := ucum.Parse(code)
		if !ok {
			panic("fhirpath: ucum does not know " + code)
		}
		calendarDefs[kw] = &unitDef{factor: u.Factor, d: dims{u: u.Dims}}
	}
}

var unitCache sync.Map // string -> *unitDef (nil entry: not understood)

// parseUnit reduces a unit (a UCUM code, through package ucum, or a
// calendar keyword) to base units; ok is false when Hale does not know
// the unit. An unknown unit is still a unit: it equals only itself.
func parseUnit(u string) (*unitDef, bool) {
	if v, ok := unitCache.Load(u); ok {
		d := v.(*unitDef)
		return d, d != nil
	}
	var d *unitDef
	if isCalendarKeyword(u) {
		d = calendarDefs[strings.TrimSuffix(u, "s")]
	} else if x, ok := ucum.Parse(u); ok {
		d = &unitDef{factor: x.Factor, d: dims{u: x.Dims}, offset: x.Offset}
	}
	unitCache.Store(u, d)
	return d, d != nil
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
