package fhir

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
)

// knownInvalid lists the official R4 examples that really are invalid,
// with the reason; TestOfficialExamples fails if one of them becomes valid
// or if any other example is rejected. See docs/validation.md.
var knownInvalid = map[string]string{
	"DeviceMetric-example.json":        "parent references a DeviceDefinition; R4 allows only Device",
	"DeviceUseStatement-example.json":  "reasonReference references a Procedure; R4 allows Condition, Observation, DiagnosticReport, DocumentReference, Media",
	"MedicationRequest-medrx0301.json": "dispenseRequest.performer references a Practitioner; R4 allows only Organization",
	"Observation-clinical-gender.json": "performer references an Encounter, which R4 does not allow",
	"Questionnaire-qs1.json":           "nested items lack the required linkId",
}

func exampleFiles(tb testing.TB) []string {
	dir := sharedDir(tb, filepath.Join("testdata", "fhir-examples", "r4-core-4.0.1"))
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".json") || n == "package.json" || strings.HasPrefix(n, "ig-") || strings.HasPrefix(n, ".") {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	sort.Strings(out)
	return out
}

func TestOfficialExamples(t *testing.T) {
	files := exampleFiles(t)
	accepted := 0
	for _, f := range files {
		name := filepath.Base(f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Decode(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		issues := Validate(res)
		reason, known := knownInvalid[name]
		switch {
		case len(issues) == 0 && known:
			t.Errorf("%s: listed as invalid (%s) but is accepted", name, reason)
		case len(issues) == 0:
			accepted++
		case !known:
			t.Errorf("%s: %s", name, issuesString(issues))
		default:
			t.Logf("%s (known invalid: %s): %s", name, reason, issuesString(issues))
		}
	}
	t.Logf("official R4 examples accepted: %d / %d", accepted, len(files))
}

func issuesString(issues []hale.Issue) string {
	var b strings.Builder
	for i, is := range issues {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(is.Code + " " + strings.Join(is.Expression, ",") + ": " + is.Diagnostics)
	}
	return b.String()
}

func TestOfficialExamplesRoundTrip(t *testing.T) {
	for _, f := range exampleFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Decode(data)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		out, err := Marshal(res)
		if err != nil {
			t.Errorf("%s: Marshal: %v", filepath.Base(f), err)
			continue
		}
		back, err := Decode(out)
		if err != nil {
			t.Errorf("%s: Decode(Marshal): %v", filepath.Base(f), err)
			continue
		}
		if !reflect.DeepEqual(res, back) {
			t.Errorf("%s: Marshal(Decode(x)) differs from x", filepath.Base(f))
		}
	}
}

// TestOfficialExamplesOrder checks that Marshal writes the official
// examples byte for byte as published (compacted): the specification's
// own serialisation order. Two examples were published with their keys
// sorted alphabetically instead.
func TestOfficialExamplesOrder(t *testing.T) {
	unordered := map[string]bool{"Bundle-terminologies.json": true, "Questionnaire-qs1.json": true}
	files := exampleFiles(t)
	same := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := json.Compact(&want, data); err != nil {
			t.Fatal(err)
		}
		res, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		switch {
		case bytes.Equal(got, want.Bytes()):
			same++
		case !unordered[name]:
			t.Errorf("%s: Marshal output differs from the published order", name)
		}
	}
	t.Logf("official examples written byte for byte as published: %d / %d", same, len(files))
}
