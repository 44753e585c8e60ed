package synth

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/invariant"
)

// population generates n patients of seed and returns every resource
// as generated (what `hale generate` hands the FHIR core), after checking
// that it encodes and decodes back to the same JSON (what the NDJSON
// files hold).
func population(tb testing.TB, n int, seed int64) []map[string]any {
	tb.Helper()
	var out []map[string]any
	err := Generate(context.Background(), Options{Patients: n, Seed: seed}, func(typ string, res map[string]any) error {
		b, err := fhir.Marshal(res)
		if err != nil {
			return err
		}
		m, err := fhir.Decode(b)
		if err != nil {
			return fmt.Errorf("%s: %v", b, err)
		}
		if b2, err := fhir.Marshal(m); err != nil || string(b2) != string(b) {
			return fmt.Errorf("%s does not survive a round trip: %s (%v)", b, b2, err)
		}
		out = append(out, res)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestValid checks every resource of 200 patients against the base R4
// definitions and every error-severity invariant, as a write would.
func TestValid(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	res := population(t, 200, 7)
	problems := map[string]int{}
	var examples []string
	for _, r := range res {
		issues := fhir.Validate(r)
		if len(issues) == 0 {
			issues = invariant.Check(context.Background(), r)
		}
		for _, is := range issues {
			key := fmt.Sprintf("%s %v: %s", r["resourceType"], is.Expression, is.Diagnostics)
			if problems[key] == 0 && len(examples) < 20 {
				examples = append(examples, key)
			}
			problems[key]++
		}
	}
	if len(problems) > 0 {
		t.Errorf("%d kinds of problem, e.g.:\n%s", len(problems), strings.Join(examples, "\n"))
	}
	t.Logf("%d resources valid", len(res))
}

func BenchmarkPatient(b *testing.B) {
	g, _ := New(Options{Patients: 1 << 30, Seed: 1})
	n := 0
	for i := 0; b.Loop(); i++ {
		n += len(g.Patient(i))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
}

func BenchmarkMarshal(b *testing.B) {
	g, _ := New(Options{Patients: 1 << 30, Seed: 1})
	n := 0
	for i := 0; b.Loop(); i++ {
		for _, r := range g.Patient(i) {
			if _, err := fhir.Marshal(r.Body); err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
}
