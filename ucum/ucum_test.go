package ucum

import (
	"math"
	"testing"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		code  string
		value float64
		canon string
		want  float64
	}{
		{"mg", 500, "g", 0.5},
		{"g", 0.5, "g", 0.5},
		{"kg", 70, "g", 70000},
		{"[lb_av]", 1, "g", 453.59237},
		{"cm", 180, "m", 1.8},
		{"[in_i]", 10, "m", 0.254},
		{"mL", 250, "m3", 0.00025},
		{"dL", 1, "m3", 0.0001},
		{"mg/dL", 100, "g.m-3", 1000},
		{"g/L", 1, "g.m-3", 1000},
		{"mmol/L", 5, "m-3.mol", 5},
		{"mm[Hg]", 120, "g.m-1.s-2", 120 * 133322}, // UCUM: m[Hg] = 133.3220 kPa
		{"cm[H2O]", 10, "g.m-1.s-2", 980665},
		{"kPa", 16, "g.m-1.s-2", 16e6},
		{"/min", 72, "s-1", 1.2},
		{"{beats}/min", 60, "s-1", 1},
		{"h", 2, "s", 7200},
		{"wk", 1, "s", 604800},
		{"Cel", 37, "K", 310.15},
		{"[degF]", 98.6, "K", 310.15},
		{"kg/m2", 25, "g.m-2", 25000},
		{"%", 50, "1", 0.5},
		{"1", 3, "1", 3},
		// units FHIRPath knew before the table was shared
		{"10*3/uL", 4.5, "m-3", 4.5e12},
		{"10^3/uL", 1, "m-3", 1e12},
		{"[gr]", 1, "g", 0.06479891},
		{"[mi_i]", 1, "m", 1609.344},
		{"[yd_i]", 1, "m", 0.9144},
		{"[foz_us]", 1, "m3", 0.0000295735295625},
		{"t", 1, "g", 1e6},
		{"atm", 1, "g.m-1.s-2", 101325000},
		{"bar", 1, "g.m-1.s-2", 1e8},
		{"kcal", 1, "g.m2.s-2", 4184000},
		{"[Cal]", 1, "g.m2.s-2", 4184000},
		{"J", 1, "g.m2.s-2", 1000},
		{"W", 1, "g.m2.s-3", 1000},
		{"N", 1, "g.m.s-2", 1000},
		{"Hz", 50, "s-1", 50},
		{"meq/L", 140, "m-3.mol", 140},                   // UCUM: eq = mol
		{"U/L", 60, "m-3.mol.s-1", 60 * 1e-6 / 60 * 1e3}, // U = umol/min
		{"ukat", 1, "mol.s-1", 1e-6},
		{"[IU]/mL", 1, "[iU].m-3", 1e6},
		{"mA", 1, "A", 0.001},
		{"mcd", 1, "cd", 0.001},
		{"[ppm]", 5, "1", 5e-6},
		{"[ppb]", 5, "1", 5e-9},
		{"a", 1, "s", 31557600}, // Julian year (365.25 d)
		{"mo", 1, "s", 2629800}, // a/12
		{"am", 1, "m", 1e-18},
		{"(kg.m)/s2", 1, "g.m.s-2", 1000},
		{"kg.m/s2", 1, "g.m.s-2", 1000},
		{"mg{total}/dL", 1, "g.m-3", 10},
	} {
		c, v, ok := Canonical(tc.code, tc.value)
		if !ok || c != tc.canon || math.Abs(v-tc.want) > 1e-9*math.Max(1, math.Abs(tc.want)) {
			t.Errorf("Canonical(%q, %v) = %q %v %v, want %q %v", tc.code, tc.value, c, v, ok, tc.canon, tc.want)
		}
	}
	for _, bad := range []string{"furlong", "{unclosed", "Cel/s", "Cel2", "kg.Cel", "xg", "", "m/", "(m", "[lb_av", "ms-"} {
		if _, _, ok := Canonical(bad, 1); ok {
			t.Errorf("Canonical(%q) should not convert", bad)
		}
	}
}

func TestConvert(t *testing.T) {
	if v, ok := Convert(1, "g", "mg"); !ok || math.Abs(v-1000) > 1e-9 {
		t.Errorf("g→mg: %v %v", v, ok)
	}
	if v, ok := Convert(310.15, "K", "Cel"); !ok || math.Abs(v-37) > 1e-9 {
		t.Errorf("K→Cel: %v %v", v, ok)
	}
	if _, ok := Convert(1, "g", "m"); ok {
		t.Errorf("g→m converted")
	}
	if !Comparable("mm[Hg]", "kPa") || Comparable("mg", "mL") {
		t.Errorf("Comparable")
	}
}

// TestParseExact: factors are exact rationals, so conversions between
// customary and metric units are exact.
func TestParseExact(t *testing.T) {
	for _, tc := range []struct {
		code, factor, dims string
		offset             string
	}{
		{"[lb_av]", "45359237/100000", "g", ""},
		{"[oz_av]/[lb_av]", "1/16", "1", ""},
		{"[ft_i]/[in_i]", "12", "1", ""},
		{"a/mo", "12", "1", ""},
		{"wk/d", "7", "1", ""},
		{"mm[Hg]", "133322", "g.m-1.s-2", ""},
		{"Cel", "1", "K", "5463/20"},
		{"[degF]", "5/9", "K", "45967/100"},
		{"%", "1/100", "1", ""},
	} {
		u, ok := Parse(tc.code)
		if !ok || u.Factor.RatString() != tc.factor || u.Dims.String() != tc.dims {
			t.Errorf("Parse(%q) = %v %v %v, want %s %s", tc.code, u.Factor, u.Dims, ok, tc.factor, tc.dims)
			continue
		}
		if got := ""; u.Offset != nil {
			if got = u.Offset.RatString(); got != tc.offset {
				t.Errorf("Parse(%q) offset %s, want %s", tc.code, got, tc.offset)
			}
		} else if tc.offset != "" {
			t.Errorf("Parse(%q) has no offset", tc.code)
		}
	}
	if !Comparable("[degF]", "Cel") || Comparable("a", "m") || !Comparable("meq", "mmol") {
		t.Errorf("Comparable")
	}
	if v, ok := Convert(212, "[degF]", "Cel"); !ok || math.Abs(v-100) > 1e-9 {
		t.Errorf("[degF]→Cel: %v %v", v, ok)
	}
}
