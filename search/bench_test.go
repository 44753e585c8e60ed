package search

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hale-ehr/hale/fhir"
)

// BenchmarkExtract measures index extraction over the resources of a few
// Synthea bundles: go test ./search -run '^$' -bench Extract
func BenchmarkExtract(b *testing.B) {
	root := os.Getenv("HALE_SHARED")
	if root == "" {
		root = filepath.Join("..", "..", "shared")
	}
	files, _ := filepath.Glob(filepath.Join(root, "testdata", "synthea", "set-a", "*.json"))
	if len(files) == 0 {
		b.Skip("no Synthea sample")
	}
	var res []map[string]any
	for _, f := range files[:3] {
		data, _ := os.ReadFile(f)
		bundle, err := fhir.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range bundle["entry"].([]any) {
			res = append(res, e.(map[string]any)["resource"].(map[string]any))
		}
	}
	rows := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := res[i%len(res)]
		idx := Extract(r["resourceType"].(string), r)
		rows += len(idx.Tokens) + len(idx.Strings) + len(idx.References) + len(idx.Dates) + len(idx.Quantities) + len(idx.Numbers) + len(idx.URIs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
	b.ReportMetric(float64(rows)/float64(b.N), "rows/resource")
}
