package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFhirpathCommand(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "obs.json")
	obs := `{"resourceType": "Observation", "id": "o1", "status": "final",
		"code": {"text": "weight"}, "effectiveDateTime": "2016-03-28",
		"valueQuantity": {"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}}`
	if err := os.WriteFile(file, []byte(obs), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(string) string { return "" }
	tests := []struct {
		expr, want string
	}{
		{"Observation.status", `["final"]`},
		{"effective", `["@2016-03-28"]`},
		{"value", `[{"code":"[lb_av]","system":"http://unitsofmeasure.org","unit":"lbs","value":185}]`},
		{"value.value * 2", `[370]`},
		{"2.5 'mg' + 1 'mg'", `[{"unit":"mg","value":3.5}]`},
		{"@2015-02-04 + 1 day | @T10:30", `["@2015-02-05","@T10:30"]`},
		{"value.exists() and id = 'o1'", `[true]`},
		{"subject", `[]`},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), []string{"fhirpath", tt.expr, file}, getenv, &out, &errOut); err != nil {
			t.Errorf("%s: %v (%s)", tt.expr, err, errOut.String())
			continue
		}
		got := strings.Join(strings.Fields(out.String()), "")
		if got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.expr, got, tt.want)
		}
	}
	for _, tt := range []struct{ expr, msg string }{
		{"value.where(", "syntax error at 1:13"},
		{"status.foo()", "semantic error at 1:8"},
		{"code.text.single() + 1", "execution error at 1:20"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"fhirpath", tt.expr, file}, getenv, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: error %v, want %q", tt.expr, err, tt.msg)
		}
		if !strings.Contains(errOut.String(), "^") {
			t.Errorf("%s: no caret in %q", tt.expr, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"fhirpath", "status"}, getenv, &out, &errOut); err == nil {
		t.Error("a missing file argument is not an error")
	}
}
