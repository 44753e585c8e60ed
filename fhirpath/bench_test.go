package fhirpath

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hale-ehr/hale/fhir"
)

// syntheaSample returns n resources spread evenly over the Synthea set-a
// bundles (so every resource type is represented in proportion).
func syntheaSample(tb testing.TB, n int) []map[string]any {
	tb.Helper()
	dir := sharedDir(tb, filepath.Join("testdata", "synthea", "set-a"))
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no Synthea bundles in %s: %v", dir, err)
	}
	sort.Strings(files)
	var all []map[string]any
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		b, err := fhir.Decode(data)
		if err != nil {
			tb.Fatal(err)
		}
		entries, _ := b["entry"].([]any)
		for _, e := range entries {
			if r, ok := e.(map[string]any)["resource"].(map[string]any); ok {
				all = append(all, r)
			}
		}
	}
	if len(all) <= n {
		return all
	}
	out := make([]map[string]any, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, all[i*len(all)/n])
	}
	return out
}

type compiledParam struct {
	code string
	expr *Expression
}

// searchExpressions compiles the search parameters of every resource type.
func searchExpressions(tb testing.TB) map[string][]compiledParam {
	out := map[string][]compiledParam{}
	for _, rt := range fhir.ResourceTypes() {
		for _, p := range fhir.SearchParams(rt) {
			if p.Expression == "" {
				continue
			}
			e, err := Compile(p.Expression)
			if err != nil {
				tb.Fatalf("%s.%s: %v", rt, p.Code, err)
			}
			out[rt] = append(out[rt], compiledParam{p.Code, e})
		}
	}
	return out
}

// TestSearchExpressionsOnSynthea evaluates every search parameter of each
// resource's type on the Synthea sample: none may fail, and the common
// parameters must find values.
func TestSearchExpressionsOnSynthea(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	sample := syntheaSample(t, 1000)
	params := searchExpressions(t)
	found := map[string]int{}
	for _, r := range sample {
		rt := r["resourceType"].(string)
		env := &Env{Resource: r}
		for _, p := range params[rt] {
			res, err := p.expr.Evaluate(context.Background(), r, env)
			if err != nil {
				t.Errorf("%s/%v %s: %v", rt, r["id"], p.code, err)
				continue
			}
			if len(res) > 0 {
				found[rt+"."+p.code]++
			}
		}
	}
	for _, want := range []string{"Patient.name", "Patient.birthdate", "Patient.gender", "Observation.code", "Observation.subject", "Observation.date", "Encounter.subject", "Encounter.date", "Condition.code"} {
		if found[want] == 0 {
			t.Errorf("%s found no value in the sample", want)
		}
	}
}

// BenchmarkSearchExtraction evaluates every search parameter expression of
// each resource's type (what indexing a write needs) over 1,000 Synthea
// resources.
func BenchmarkSearchExtraction(b *testing.B) {
	sample := syntheaSample(b, 1000)
	params := searchExpressions(b)
	exprs := 0
	for _, r := range sample {
		exprs += len(params[r["resourceType"].(string)])
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range sample {
			env := Env{Resource: r}
			for _, p := range params[r["resourceType"].(string)] {
				if _, err := p.expr.Evaluate(ctx, r, &env); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*len(sample))/sec, "resources/s")
	b.ReportMetric(float64(b.N*exprs)/sec, "exprs/s")
}

func BenchmarkExpressions(b *testing.B) {
	pat := mustLoad(b, "patient.json")
	obs := mustLoad(b, "observation.json")
	for _, bc := range []struct {
		name, expr string
		input      map[string]any
	}{
		{"path", "Patient.name.given", pat},
		{"where", "Patient.name.where(use = 'official').family", pat},
		{"choice", "(Observation.value as Quantity)", obs},
		{"quantity", "Observation.value > 80 'kg'", obs},
		{"date", "Patient.birthDate < @2000-01-01", pat},
		{"arith", "1 + 2 * 3 - 4 / 5", nil},
		{"exists", "Patient.identifier.where(system = 'urn:oid:1.2.36.146.595.217.0.1').exists()", pat},
		{"ele-1", "hasValue() or (children().count() > id.count())", obs},
		{"dom-3", "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | %resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()", pat},
	} {
		e := MustParse(bc.expr)
		var input any
		if bc.input != nil {
			input = bc.input
		}
		env := &Env{Resource: input}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := e.Evaluate(context.Background(), input, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	const expr = "Patient.name.where(use = 'official' and period.end.empty()).given.first() | Patient.telecom.where(system = 'phone').value"
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(expr); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileCached(b *testing.B) {
	const expr = "Patient.name.where(use = 'official').given.first()"
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Compile(expr); err != nil {
			b.Fatal(err)
		}
	}
}
