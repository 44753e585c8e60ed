package fhirpath

import (
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Decimal is a FHIRPath System.Decimal: an exact decimal number that keeps
// the precision it was written with (1.10 has scale 2). Arithmetic is exact
// for +, - and *; division keeps at least 8 decimal places
// (http://hl7.org/fhirpath/N1/#decimal).
//
// The zero Decimal is 0.
type Decimal struct {
	m     int64    // mantissa when b is nil
	b     *big.Int // mantissa when it does not fit an int64
	scale int32    // value = mantissa × 10^-scale; scale >= 0
}

// divScale is the number of decimal places a division keeps at least.
const divScale = 8

// ParseDecimal parses a decimal in FHIR/FHIRPath syntax: an optional sign,
// digits and an optional fraction; exponents are accepted as JSON allows.
func ParseDecimal(s string) (Decimal, bool) {
	if s == "" {
		return Decimal{}, false
	}
	neg := false
	body := s
	if body[0] == '-' || body[0] == '+' {
		neg = body[0] == '-'
		body = body[1:]
	}
	exp := 0
	if i := strings.IndexAny(body, "eE"); i >= 0 {
		e, err := strconv.Atoi(body[i+1:])
		if err != nil || e > 1000 || e < -1000 {
			return Decimal{}, false
		}
		exp = e
		body = body[:i]
	}
	intPart, frac := body, ""
	if i := strings.IndexByte(body, '.'); i >= 0 {
		intPart, frac = body[:i], body[i+1:]
		if frac == "" {
			return Decimal{}, false
		}
	}
	if intPart == "" {
		return Decimal{}, false
	}
	for _, part := range [2]string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return Decimal{}, false
			}
		}
	}
	digits := intPart + frac
	scale := len(frac) - exp
	if scale < 0 {
		digits += strings.Repeat("0", -scale)
		scale = 0
	}
	var d Decimal
	d.scale = int32(scale)
	if len(digits) <= 18 {
		v, _ := strconv.ParseInt(digits, 10, 64)
		if neg {
			v = -v
		}
		d.m = v
		return d, true
	}
	b, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return Decimal{}, false
	}
	if neg {
		b.Neg(b)
	}
	d.b = b
	return d.norm(), true
}

// DecimalFromInt returns the integer n as a Decimal of scale 0.
func DecimalFromInt(n int64) Decimal { return Decimal{m: n} }

func (d Decimal) big() *big.Int {
	if d.b != nil {
		return d.b
	}
	return big.NewInt(d.m)
}

// norm moves a big mantissa back to int64 when it fits.
func (d Decimal) norm() Decimal {
	if d.b != nil && d.b.IsInt64() {
		return Decimal{m: d.b.Int64(), scale: d.scale}
	}
	return d
}

var bigTen = big.NewInt(10)

func pow10(n int32) *big.Int {
	return new(big.Int).Exp(bigTen, big.NewInt(int64(n)), nil)
}

// rescale returns d with the given (larger or equal) scale.
func (d Decimal) rescale(s int32) Decimal {
	if s <= d.scale {
		return d
	}
	diff := s - d.scale
	if d.b == nil && diff < 18 {
		p := int64(1)
		for i := int32(0); i < diff; i++ {
			p *= 10
		}
		if hi, lo := mul64(d.m, p); hi {
			return Decimal{m: lo, scale: s}
		}
	}
	return Decimal{b: new(big.Int).Mul(d.big(), pow10(diff)), scale: s}.norm()
}

// mul64 multiplies without overflow; ok is false on overflow.
func mul64(a, b int64) (ok bool, r int64) {
	if a == 0 || b == 0 {
		return true, 0
	}
	r = a * b
	if r/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return false, 0
	}
	return true, r
}

func align(a, b Decimal) (Decimal, Decimal) {
	if a.scale < b.scale {
		return a.rescale(b.scale), b
	}
	return a, b.rescale(a.scale)
}

// Add returns d + e.
func (d Decimal) Add(e Decimal) Decimal {
	d, e = align(d, e)
	if d.b == nil && e.b == nil {
		s := d.m + e.m
		if (s > d.m) == (e.m > 0) {
			return Decimal{m: s, scale: d.scale}
		}
	}
	return Decimal{b: new(big.Int).Add(d.big(), e.big()), scale: d.scale}.norm()
}

// Neg returns -d.
func (d Decimal) Neg() Decimal {
	if d.b == nil && d.m != math.MinInt64 {
		return Decimal{m: -d.m, scale: d.scale}
	}
	return Decimal{b: new(big.Int).Neg(d.big()), scale: d.scale}.norm()
}

// Sub returns d - e.
func (d Decimal) Sub(e Decimal) Decimal { return d.Add(e.Neg()) }

// Mul returns d × e (scale is the sum of the scales).
func (d Decimal) Mul(e Decimal) Decimal {
	if d.b == nil && e.b == nil {
		if ok, r := mul64(d.m, e.m); ok {
			return Decimal{m: r, scale: d.scale + e.scale}
		}
	}
	return Decimal{b: new(big.Int).Mul(d.big(), e.big()), scale: d.scale + e.scale}.norm()
}

// Div returns d / e with at least divScale decimal places, trailing zeros
// beyond the operands' own scale removed; ok is false when e is 0.
func (d Decimal) Div(e Decimal) (Decimal, bool) {
	if e.Sign() == 0 {
		return Decimal{}, false
	}
	scale := divScale
	if int(d.scale) > scale {
		scale = int(d.scale)
	}
	if int(e.scale) > scale {
		scale = int(e.scale)
	}
	// d/e = (dm × 10^(scale - ds + es)) / em × 10^-scale
	num := d.big()
	shift := int32(scale) - d.scale + e.scale
	if shift > 0 {
		num = new(big.Int).Mul(num, pow10(shift))
	} else if shift < 0 {
		num = new(big.Int).Quo(num, pow10(-shift))
	}
	// round half away from zero at the last place
	q, r := new(big.Int).QuoRem(new(big.Int).Mul(num, bigTen), e.big(), new(big.Int))
	_ = r
	q2, last := new(big.Int).QuoRem(q, bigTen, new(big.Int))
	if last.CmpAbs(big.NewInt(5)) >= 0 {
		if q.Sign() < 0 {
			q2.Sub(q2, big.NewInt(1))
		} else {
			q2.Add(q2, big.NewInt(1))
		}
	}
	res := Decimal{b: q2, scale: int32(scale)}.norm()
	keep := d.scale
	if e.scale > keep {
		keep = e.scale
	}
	return res.trimTo(keep), true
}

// trimTo removes trailing zeros while the scale is above min.
func (d Decimal) trimTo(min int32) Decimal {
	for d.scale > min {
		if d.b == nil {
			if d.m%10 != 0 {
				break
			}
			d.m /= 10
		} else {
			q, r := new(big.Int).QuoRem(d.b, bigTen, new(big.Int))
			if r.Sign() != 0 {
				break
			}
			d.b = q
		}
		d.scale--
	}
	return d.norm()
}

// DivTrunc returns the integer part of d / e (the div operator).
func (d Decimal) DivTrunc(e Decimal) (Decimal, bool) {
	if e.Sign() == 0 {
		return Decimal{}, false
	}
	a, b := align(d, e)
	return Decimal{b: new(big.Int).Quo(a.big(), b.big())}.norm(), true
}

// Mod returns d mod e: the remainder of the truncated division.
func (d Decimal) Mod(e Decimal) (Decimal, bool) {
	if e.Sign() == 0 {
		return Decimal{}, false
	}
	a, b := align(d, e)
	return Decimal{b: new(big.Int).Rem(a.big(), b.big()), scale: a.scale}.norm(), true
}

// Sign returns -1, 0 or 1.
func (d Decimal) Sign() int {
	if d.b != nil {
		return d.b.Sign()
	}
	switch {
	case d.m < 0:
		return -1
	case d.m > 0:
		return 1
	}
	return 0
}

// Cmp compares the values of d and e (scale does not matter: 1.10 = 1.1).
func (d Decimal) Cmp(e Decimal) int {
	a, b := align(d, e)
	if a.b == nil && b.b == nil {
		switch {
		case a.m < b.m:
			return -1
		case a.m > b.m:
			return 1
		}
		return 0
	}
	return a.big().Cmp(b.big())
}

// Scale returns the number of decimal places d was written with.
func (d Decimal) Scale() int { return int(d.scale) }

// Round rounds half away from zero to n decimal places.
func (d Decimal) Round(n int) Decimal {
	if n < 0 {
		n = 0
	}
	if int(d.scale) <= n {
		return d.rescale(int32(n))
	}
	drop := d.scale - int32(n)
	p := pow10(drop)
	q, r := new(big.Int).QuoRem(d.big(), p, new(big.Int))
	twice := new(big.Int).Mul(new(big.Int).Abs(r), big.NewInt(2))
	if twice.Cmp(p) >= 0 {
		if d.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return Decimal{b: q, scale: int32(n)}.norm()
}

// Truncate drops the fraction (towards zero), keeping scale 0.
func (d Decimal) Truncate() Decimal {
	if d.scale == 0 {
		return d
	}
	return Decimal{b: new(big.Int).Quo(d.big(), pow10(d.scale))}.norm()
}

// Floor returns the greatest integer <= d.
func (d Decimal) Floor() Decimal {
	t := d.Truncate()
	if d.Sign() < 0 && t.Cmp(d) != 0 {
		t = t.Sub(DecimalFromInt(1))
	}
	return t
}

// Ceiling returns the least integer >= d.
func (d Decimal) Ceiling() Decimal {
	t := d.Truncate()
	if d.Sign() > 0 && t.Cmp(d) != 0 {
		t = t.Add(DecimalFromInt(1))
	}
	return t
}

// Int64 returns d as an int64 when it is a whole number that fits.
func (d Decimal) Int64() (int64, bool) {
	t := d.Truncate()
	if t.Cmp(d) != 0 || t.b != nil {
		return 0, false
	}
	return t.m, true
}

// Float64 returns the nearest float64.
func (d Decimal) Float64() float64 {
	f, _ := strconv.ParseFloat(d.String(), 64)
	return f
}

// DecimalFromFloat converts a float64 (from a math function) to a Decimal
// with up to 8 decimal places, trailing zeros removed.
func DecimalFromFloat(f float64) (Decimal, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Decimal{}, false
	}
	d, ok := ParseDecimal(strconv.FormatFloat(f, 'f', divScale, 64))
	if !ok {
		return Decimal{}, false
	}
	return d.trimTo(0), true
}

// String formats d with exactly its scale, e.g. "1.10", "-0.5", "3".
func (d Decimal) String() string {
	var s string
	if d.b == nil {
		s = strconv.FormatInt(d.m, 10)
	} else {
		s = d.b.String()
	}
	if d.scale == 0 {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	sc := int(d.scale)
	if len(s) <= sc {
		s = strings.Repeat("0", sc-len(s)+1) + s
	}
	s = s[:len(s)-sc] + "." + s[len(s)-sc:]
	if neg {
		s = "-" + s
	}
	return s
}
