package invariant

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hale-ehr/hale/fhir"
)

// BenchmarkCheck measures invariant checking over Synthea resources:
// go test ./invariant -run '^$' -bench Check
func BenchmarkCheck(b *testing.B) {
	dir := sharedDir(b, "testdata/synthea/set-a")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var res []map[string]any
	for _, f := range files[:3] {
		data, _ := os.ReadFile(f)
		bundle, err := fhir.Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range bundle["entry"].([]any) {
			r := e.(map[string]any)["resource"].(map[string]any)
			if os.Getenv("BENCH_TYPE") == "" || r["resourceType"] == os.Getenv("BENCH_TYPE") {
				res = append(res, r)
			}
		}
	}
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if issues := Check(ctx, res[i%len(res)]); len(issues) > 0 {
			b.Fatalf("%v", issues)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
}
