package synth

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
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

var (
	sampleOnce sync.Once
	sampleRes  []map[string]any
)

// sample is the population most tests look at: 200 patients of seed 7.
func sample(tb testing.TB) []map[string]any {
	sampleOnce.Do(func() { sampleRes = population(tb, 200, 7) })
	if sampleRes == nil {
		tb.Fatal("no sample population")
	}
	return sampleRes
}

// TestValid checks every resource of 200 patients against the base R4
// definitions and every error-severity invariant, as a write would.
func TestValid(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	res := sample(t)
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

// ndjson writes a population and returns the files' contents by name.
func ndjson(tb testing.TB, opt Options, gz bool) map[string][]byte {
	tb.Helper()
	dir := tb.TempDir()
	if _, err := WriteNDJSON(context.Background(), opt, dir, NDJSONOptions{Gzip: gz}); err != nil {
		tb.Fatal(err)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		out[f.Name()] = b
	}
	return out
}

// TestDeterministic: the same seed gives byte-identical files whatever the
// number of workers and GOMAXPROCS; another seed gives other files.
func TestDeterministic(t *testing.T) {
	opt := Options{Patients: 60, Seed: 42}
	prev := runtime.GOMAXPROCS(1)
	one := ndjson(t, opt, false)
	runtime.GOMAXPROCS(4)
	opt.Workers = 7
	many := ndjson(t, opt, false)
	runtime.GOMAXPROCS(prev)
	if len(one) < 10 {
		t.Fatalf("only %d files", len(one))
	}
	for name, b := range one {
		if !bytes.Equal(b, many[name]) {
			t.Errorf("%s differs between 1 and 7 workers", name)
		}
	}
	if len(many) != len(one) {
		t.Errorf("%d files, then %d", len(one), len(many))
	}
	gz1, gz2 := ndjson(t, Options{Patients: 20, Seed: 42, Workers: 1}, true), ndjson(t, Options{Patients: 20, Seed: 42, Workers: 3}, true)
	if !bytes.Equal(gz1["Observation.ndjson.gz"], gz2["Observation.ndjson.gz"]) || len(gz1["Observation.ndjson.gz"]) == 0 {
		t.Error("gzip output differs between runs")
	}
	other := ndjson(t, Options{Patients: 60, Seed: 43}, false)
	if bytes.Equal(one["Patient.ndjson"], other["Patient.ndjson"]) || bytes.Equal(one["Observation.ndjson"], other["Observation.ndjson"]) {
		t.Error("seeds 42 and 43 give the same population")
	}
	if strings.Contains(string(other["Patient.ndjson"]), `"id":"syn42-`) {
		t.Error("seed 43 uses seed 42's ids")
	}
}

// TestPrefixStable: patient i is the same in a population of any size, so
// a larger population extends a smaller one.
func TestPrefixStable(t *testing.T) {
	small, _ := New(Options{Patients: 5, Seed: 9})
	large, _ := New(Options{Patients: 5000, Seed: 9})
	for _, i := range []int{0, 3, 4} {
		a, b := small.Patient(i), large.Patient(i)
		if len(a) != len(b) {
			t.Fatalf("patient %d: %d resources, then %d", i, len(a), len(b))
		}
		for k := range a {
			ja, _ := fhir.Marshal(a[k].Body)
			jb, _ := fhir.Marshal(b[k].Body)
			if !bytes.Equal(ja, jb) {
				t.Fatalf("patient %d resource %d differs", i, k)
			}
		}
	}
}

func TestOptions(t *testing.T) {
	if _, err := New(Options{Patients: -1}); err == nil {
		t.Error("negative Patients accepted")
	}
	if _, err := New(Options{Patients: 1, Start: DefaultEnd, End: DefaultEnd}); err == nil {
		t.Error("an empty window accepted")
	}
	g, err := New(Options{Patients: 1, Seed: -5})
	if err != nil {
		t.Fatal(err)
	}
	if id := g.PatientID(3); id != "synm5-3" {
		t.Errorf("PatientID = %q", id)
	}
	if o := g.Options(); !o.End.Equal(DefaultEnd) || o.Start.Year() != DefaultEnd.Year()-DefaultYears {
		t.Errorf("default window %v to %v", o.Start, o.End)
	}
}
