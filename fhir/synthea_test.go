package fhir

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// syntheaResources decodes every resource of the Synthea set-a bundles.
func syntheaResources(tb testing.TB) (bundles []map[string]any, resources []map[string]any, files []string) {
	tb.Helper()
	dir := sharedDir(tb, filepath.Join("testdata", "synthea", "set-a"))
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		b, err := Decode(data)
		if err != nil {
			tb.Fatalf("%s: %v", filepath.Base(f), err)
		}
		bundles = append(bundles, b)
		entries, _ := b["entry"].([]any)
		for _, e := range entries {
			if r, ok := e.(map[string]any)["resource"].(map[string]any); ok {
				resources = append(resources, r)
			}
		}
	}
	return bundles, resources, files
}

func TestSynthea(t *testing.T) {
	bundles, resources, files := syntheaResources(t)
	byType := map[string]int{}
	rejected := 0
	for _, r := range resources {
		byType[r["resourceType"].(string)]++
		if issues := Validate(r); len(issues) > 0 {
			rejected++
			if rejected <= 20 {
				t.Errorf("%s/%v: %s", r["resourceType"], r["id"], issuesString(issues))
			}
		}
	}
	for i, b := range bundles {
		if issues := Validate(b); len(issues) > 0 {
			t.Errorf("bundle %s: %d issues, first: %s", filepath.Base(files[i]), len(issues), issuesString(issues[:1]))
		}
		out, err := Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(out)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(b, back) {
			t.Errorf("bundle %s: Marshal(Decode(x)) differs from x", filepath.Base(files[i]))
		}
	}
	t.Logf("Synthea set-a: %d bundles, %d resources, %d accepted, %d rejected; by type: %v",
		len(bundles), len(resources), len(resources)-rejected, rejected, byType)
}

// BenchmarkValidateSynthea measures validation throughput over the
// resources of the Synthea set-a bundles.
func BenchmarkValidateSynthea(b *testing.B) {
	_, resources, _ := syntheaResources(b)
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		for _, r := range resources {
			if issues := Validate(r); len(issues) > 0 {
				b.Fatal(issuesString(issues))
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
}

// BenchmarkDecodeSynthea measures Decode over the Synthea set-a bundles.
func BenchmarkDecodeSynthea(b *testing.B) {
	dir := sharedDir(b, filepath.Join("testdata", "synthea", "set-a"))
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var data [][]byte
	size := 0
	for _, f := range files {
		d, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		data = append(data, d)
		size += len(d)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, d := range data {
			if _, err := Decode(d); err != nil {
				b.Fatal(err)
			}
		}
	}
}
