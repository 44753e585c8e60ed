package fhirpath

import (
	"context"
	"errors"
	"testing"
	"time"
)

var fuzzSeeds = []string{
	"Patient.name.given", "name.where(use = 'official').given.first()", "1 + 2 * 3 - 4 / 5 div 6 mod 7",
	"@2015-02-04T14:34:28.123+10:00 + 1 month", "@T14:34 < @T15", "4 'g' ~ 4000 'mg'", "(1|2|3).aggregate($this + $total, 0)",
	"descendants().ofType(Reference).resolve()", "iif(active, 'a', 'b')", "'a\\u0041'.matches('^a.$')",
	"%`ext-patient-birthTime`", "name.select($index)", "birthDate.extension('x').value as dateTime",
	"contained.where(('#'+id in %resource.descendants().reference).not()).empty()", "repeat(children())",
	"0.1.lowBoundary(3)", "{}.empty() and true xor false implies {}", "name[0].given[1].toChars().sort(-$this)",
	"/* c */ 1 // c", "`Patient`.`name`", "Observation.value.is(Quantity)", "'2015'.toDateTime() + 2 years",
}

// FuzzParse checks that Parse never panics and that its errors are *Error
// values with a position inside the expression.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		_, err := Parse(expr)
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Parse(%q): %T %v", expr, err, err)
		}
		if e.Pos < 0 || e.Pos > len(expr) {
			t.Fatalf("Parse(%q): position %d outside the expression", expr, e.Pos)
		}
		_ = e.Error()
	})
}

// FuzzEvaluate checks that evaluating any expression that parses, against
// a Patient and an Observation, never panics and fails only with *Error.
func FuzzEvaluate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	pat := mustLoad(f, "patient.json")
	obs := mustLoad(f, "observation.json")
	env := &Env{Now: func() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) }}
	f.Fuzz(func(t *testing.T, expr string) {
		e, err := Parse(expr)
		if err != nil {
			return
		}
		for _, in := range []any{pat, obs, nil} {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r, err := e.Evaluate(ctx, in, env)
			cancel()
			if err != nil {
				var fe *Error
				if !errors.As(err, &fe) {
					t.Fatalf("Evaluate(%q): %T %v", expr, err, err)
				}
				continue
			}
			for _, it := range r {
				_ = it.JSON()
				_ = it.Location()
				_ = it.String()
			}
		}
	})
}
