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
		{"mm[Hg]", 120, "g.m-1.s-2", 120 * 133322.387415},
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
	} {
		c, v, ok := Canonical(tc.code, tc.value)
		if !ok || c != tc.canon || math.Abs(v-tc.want) > 1e-9*math.Max(1, math.Abs(tc.want)) {
			t.Errorf("Canonical(%q, %v) = %q %v %v, want %q %v", tc.code, tc.value, c, v, ok, tc.canon, tc.want)
		}
	}
	for _, bad := range []string{"furlong", "10*3/uL", "{unclosed", "Cel/s", "xg"} {
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
