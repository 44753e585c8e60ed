package invariant

import (
	"context"
	"github.com/hale-ehr/hale/internal/sharedtest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hale-ehr/hale/fhir"
)

func sharedDir(tb testing.TB, sub string) string {
	tb.Helper()
	return sharedtest.Dir(tb, sub)
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	m, err := fhir.Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, res, key, loc string
	}{
		{"valid", `{"resourceType":"Patient","name":[{"family":"Doe"}]}`, "", ""},
		{"per-1", `{"resourceType":"Patient","name":[{"family":"Doe","period":{"start":"2020-01-02","end":"2020-01-01"}}]}`, "per-1", "Patient.name[0].period"},
		{"pat-1", `{"resourceType":"Patient","contact":[{"gender":"male"}]}`, "pat-1", "Patient.contact[0]"},
		{"obs-7", `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"x"}]},"valueString":"a","component":[{"code":{"coding":[{"system":"http://loinc.org","code":"x"}]}}]}`, "obs-7", "Observation"},
		{"obs-6", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a","dataAbsentReason":{"text":"b"}}`, "obs-6", "Observation"},
		{"dom-3 contained not referenced", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o1","name":"x"}]}`, "dom-3", "Patient"},
		{"dom-3 referenced", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o1","name":"x"}],"managingOrganization":{"reference":"#o1"}}`, "", ""},
		{"ext-1", `{"resourceType":"Patient","extension":[{"url":"http://x","valueString":"a","extension":[{"url":"y","valueString":"b"}]}]}`, "ext-1", "Patient.extension[0]"},
		{"qty-3 in Age", `{"resourceType":"Condition","subject":{"reference":"Patient/1"},"onsetAge":{"value":3,"code":"a"}}`, "qty-3", "Condition.onset"},
		{"contained resource invariant", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"#p"},"contained":[{"resourceType":"Patient","id":"p","contact":[{"gender":"male"}]}]}`, "pat-1", "Observation.contained[0].contact[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			issues := Check(context.Background(), decode(t, tc.res))
			if tc.key == "" {
				if len(issues) > 0 {
					t.Errorf("valid resource: %+v", issues)
				}
				return
			}
			found := false
			for _, is := range issues {
				if strings.Contains(is.Diagnostics, tc.key+" ") && is.Code == "invariant" && len(is.Expression) == 1 && strings.HasPrefix(is.Expression[0], tc.loc) {
					found = true
				}
			}
			if !found {
				t.Errorf("want %s at %s, got %+v", tc.key, tc.loc, issues)
			}
		})
	}
}

// TestOfficialExamples: the specification's own examples pass invariant
// validation; each failure is listed in docs/fhirpath.md with its reason.
func TestOfficialExamples(t *testing.T) {
	evalErrors.Store(0)
	dir := sharedDir(t, "testdata/fhir-examples/r4-core-4.0.1")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	total, pass := 0, 0
	failures := map[string][]string{}
	for _, f := range files {
		data, _ := os.ReadFile(f)
		res, err := fhir.Decode(data)
		if err != nil || !fhir.IsResourceType(str(res["resourceType"])) {
			continue
		}
		total++
		issues := Check(context.Background(), res)
		if len(issues) == 0 {
			pass++
			continue
		}
		for _, is := range issues {
			failures[filepath.Base(f)] = append(failures[filepath.Base(f)], is.Diagnostics+" @ "+strings.Join(is.Expression, ","))
		}
	}
	names := make([]string, 0, len(failures))
	for n := range failures {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Logf("%s: %s", n, strings.Join(failures[n], "; "))
	}
	t.Logf("official R4 examples passing invariant validation: %d / %d (%.1f%%); invariants skipped (not compilable): %v; evaluation errors: %d (last: %v)", pass, total, 100*float64(pass)/float64(total), skipped, evalErrors.Load(), lastEvalErr.Load())
	if evalErrors.Load() > 0 || len(skipped) > 0 {
		t.Errorf("every invariant must compile and evaluate without error")
	}
	if total < 700 || float64(pass) < 0.99*float64(total) {
		t.Errorf("%d / %d examples pass, want at least 99%%", pass, total)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
