package fhirpath

import "testing"

func TestDecimal(t *testing.T) {
	d := func(s string) Decimal {
		t.Helper()
		v, ok := ParseDecimal(s)
		if !ok {
			t.Fatalf("ParseDecimal(%q) failed", s)
		}
		return v
	}
	tests := []struct{ got, want string }{
		{d("0.1").Add(d("0.2")).String(), "0.3"},
		{d("1.10").String(), "1.10"},
		{d("1.2").Mul(d("1.8")).String(), "2.16"},
		{d("1.8").Sub(d("1.2")).String(), "0.6"},
		{d("-0.5").String(), "-0.5"},
		{d("3.14159").Round(3).String(), "3.142"},
		{d("-1.56").Truncate().String(), "-1"},
		{d("-2.1").Floor().String(), "-3"},
		{d("-1.1").Ceiling().String(), "-1"},
		{d("1234567890987654321.0").Add(d("1")).String(), "1234567890987654322.0"},
		{func() string { m, _ := d("2.2").Mod(d("1.8")); return m.String() }(), "0.4"},
		{d("1e2").String(), "100"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: got %s, want %s", i, tt.got, tt.want)
		}
	}
	q, _ := d("1").Div(d("2"))
	if q.String() != "0.5" {
		t.Errorf("1/2 = %s", q)
	}
	q, _ = d("1.2").Div(d("1.8"))
	if q.Round(2).String() != "0.67" {
		t.Errorf("1.2/1.8 = %s", q)
	}
	if d("1.10").Cmp(d("1.1")) != 0 || d("0.0").Cmp(d("0")) != 0 {
		t.Error("Cmp ignores scale")
	}
	for _, bad := range []string{"", "1.", ".5", "1a", "--1", "1e"} {
		if _, ok := ParseDecimal(bad); ok {
			t.Errorf("ParseDecimal(%q) succeeded", bad)
		}
	}
}
