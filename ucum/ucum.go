// Package ucum converts quantities in common UCUM units to canonical
// base units, so that 500 mg and 0.5 g compare equal in search and in
// FHIRPath (http://unitsofmeasure.org/ucum.html).
//
// It covers what clinical data uses: metric prefixes on gram, metre,
// litre, second, mole, pascal, gram-equivalents and international units;
// the customary units [lb_av], [oz_av], [in_i], [ft_i]; time units min, h,
// d, wk, mo, a; mm[Hg] and cm[H2O]; Cel and [degF] (affine); percent and
// annotations ({beats}/min). Unit terms combine with '.' and '/', and
// take integer exponents (m2, s-1). Anything else is reported as not
// convertible, and callers compare the unit code as written.
package ucum

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

// unit is a factor times a product of base dimensions.
type unit struct {
	factor float64
	dims   map[string]int // base → exponent: g, m, s, mol, K, eq, [iU], …
}

type atom struct {
	factor float64
	dims   map[string]int
	metric bool // takes SI prefixes
	affine bool // temperature scales with an offset: only alone, exponent 1
	offset float64
}

var atoms = map[string]atom{
	"g":       {factor: 1, dims: map[string]int{"g": 1}, metric: true},
	"m":       {factor: 1, dims: map[string]int{"m": 1}, metric: true},
	"s":       {factor: 1, dims: map[string]int{"s": 1}, metric: true},
	"mol":     {factor: 1, dims: map[string]int{"mol": 1}, metric: true},
	"K":       {factor: 1, dims: map[string]int{"K": 1}, metric: true},
	"eq":      {factor: 1, dims: map[string]int{"eq": 1}, metric: true},
	"L":       {factor: 0.001, dims: map[string]int{"m": 3}, metric: true},
	"l":       {factor: 0.001, dims: map[string]int{"m": 3}, metric: true},
	"Pa":      {factor: 1000, dims: map[string]int{"g": 1, "m": -1, "s": -2}, metric: true},
	"bar":     {factor: 1e8, dims: map[string]int{"g": 1, "m": -1, "s": -2}, metric: true},
	"U":       {factor: 1, dims: map[string]int{"U": 1}, metric: true},
	"[iU]":    {factor: 1, dims: map[string]int{"[iU]": 1}, metric: true},
	"[IU]":    {factor: 1, dims: map[string]int{"[iU]": 1}, metric: true},
	"min":     {factor: 60, dims: map[string]int{"s": 1}},
	"h":       {factor: 3600, dims: map[string]int{"s": 1}},
	"d":       {factor: 86400, dims: map[string]int{"s": 1}},
	"wk":      {factor: 604800, dims: map[string]int{"s": 1}},
	"mo":      {factor: 2629746, dims: map[string]int{"s": 1}},  // mean Julian month
	"a":       {factor: 31556952, dims: map[string]int{"s": 1}}, // mean Julian year
	"[lb_av]": {factor: 453.59237, dims: map[string]int{"g": 1}},
	"[oz_av]": {factor: 28.349523125, dims: map[string]int{"g": 1}},
	"[in_i]":  {factor: 0.0254, dims: map[string]int{"m": 1}},
	"[ft_i]":  {factor: 0.3048, dims: map[string]int{"m": 1}},
	"mm[Hg]":  {factor: 133322.387415, dims: map[string]int{"g": 1, "m": -1, "s": -2}},
	"cm[H2O]": {factor: 98066.5, dims: map[string]int{"g": 1, "m": -1, "s": -2}},
	"%":       {factor: 0.01, dims: map[string]int{}},
	"Cel":     {factor: 1, dims: map[string]int{"K": 1}, affine: true, offset: 273.15},
	"[degF]":  {factor: 5.0 / 9, dims: map[string]int{"K": 1}, affine: true, offset: 459.67 * 5 / 9},
	"1":       {factor: 1, dims: map[string]int{}},
}

var prefixes = map[string]float64{
	"Y": 1e24, "Z": 1e21, "E": 1e18, "P": 1e15, "T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3, "h": 1e2, "da": 1e1,
	"d": 1e-1, "c": 1e-2, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12, "f": 1e-15,
}

// Canonical converts value in unit code to canonical units and returns
// the canonical unit code (e.g. "g", "g.m-1.s-2") and value. ok is false
// when the code is not a unit this package knows.
func Canonical(code string, value float64) (canonCode string, canonValue float64, ok bool) {
	if a, found := atoms[code]; found && a.affine {
		return "K", (value + a.offset/a.factor) * a.factor, true
	}
	u, ok := parse(code)
	if !ok {
		return "", 0, false
	}
	return u.code(), value * u.factor, true
}

// Comparable reports whether two unit codes measure the same dimension.
func Comparable(a, b string) bool {
	ca, _, okA := Canonical(a, 1)
	cb, _, okB := Canonical(b, 1)
	return okA && okB && ca == cb
}

// Convert converts value from unit from to unit to.
func Convert(value float64, from, to string) (float64, bool) {
	cf, v, ok := Canonical(from, value)
	if !ok {
		return 0, false
	}
	if a, found := atoms[to]; found && a.affine {
		if cf != "K" {
			return 0, false
		}
		return v/a.factor - a.offset/a.factor, true
	}
	ut, ok := parse(to)
	if !ok || ut.code() != cf {
		return 0, false
	}
	return v / ut.factor, true
}

func parse(code string) (unit, bool) {
	u := unit{factor: 1, dims: map[string]int{}}
	if code == "" {
		return u, true
	}
	// Annotations {…} count as the unit 1.
	var b strings.Builder
	depth := 0
	for _, r := range code {
		switch {
		case r == '{':
			depth++
		case r == '}':
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if depth != 0 {
		return u, false
	}
	sign := 1
	for i := 0; i < len(s) || i == 0; {
		j := i
		for j < len(s) && s[j] != '.' && s[j] != '/' {
			if s[j] == '[' {
				for j < len(s) && s[j] != ']' {
					j++
				}
			}
			j++
		}
		if j > len(s) {
			j = len(s)
		}
		// An empty term ("/min") is the unit 1.
		if term := s[i:j]; term != "" && !u.mul(term, sign) {
			return u, false
		}
		if j >= len(s) {
			break
		}
		if s[j] == '/' {
			sign = -1
		} else {
			sign = 1
		}
		i = j + 1
	}
	return u, true
}

// mul multiplies u by term^(sign*exp), where term is an atom with an
// optional prefix and an optional integer exponent: "mg", "m2", "s-1".
func (u *unit) mul(term string, sign int) bool {
	name, exp := term, 1
	k := len(term)
	for k > 0 && term[k-1] >= '0' && term[k-1] <= '9' {
		k--
	}
	if k > 0 && (term[k-1] == '-' || term[k-1] == '+') && k < len(term) {
		k--
	}
	if k > 0 && k < len(term) {
		if n, err := strconv.Atoi(term[k:]); err == nil {
			name, exp = term[:k], n
		}
	}
	a, ok := lookup(name)
	if !ok || a.affine {
		return false
	}
	e := sign * exp
	u.factor *= math.Pow(a.factor, float64(e))
	for d, x := range a.dims {
		u.dims[d] += x * e
		if u.dims[d] == 0 {
			delete(u.dims, d)
		}
	}
	return true
}

func lookup(name string) (atom, bool) {
	if a, ok := atoms[name]; ok {
		return a, true
	}
	for p, f := range prefixes {
		if strings.HasPrefix(name, p) {
			if a, ok := atoms[name[len(p):]]; ok && a.metric {
				a.factor *= f
				return a, true
			}
		}
	}
	return atom{}, false
}

// code writes the dimensions in a fixed order: "g.m-1.s-2".
func (u unit) code() string {
	if len(u.dims) == 0 {
		return "1"
	}
	keys := make([]string, 0, len(u.dims))
	for k := range u.dims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(k)
		if e := u.dims[k]; e != 1 {
			b.WriteString(strconv.Itoa(e))
		}
	}
	return b.String()
}
