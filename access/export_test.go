package access_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/export"
)

// TestExportScoped runs a Bulk Data export kicked off by a physician of
// organization A: the runner reads through a store scoped to the owner
// the job recorded, so the files hold A's record and none of B's; the
// job is invisible to other principals and anonymous callers get 401.
func TestExportScoped(t *testing.T) {
	engines(t, func(t *testing.T, w *world) {
		w.clinicians()
		w.patientApps()
		r := w.do("drA", "GET", "Patient/$export", nil, "Prefer: respond-async", "Accept: application/fhir+json")
		if r.status != 202 {
			t.Fatalf("kick-off: %d %s", r.status, r.raw)
		}
		status := r.header.Get("Content-Location")
		runner := export.New(w.store, w.svc)
		runner.Access = func(ctx context.Context, p *hale.Principal, s hale.Store) (hale.Store, error) {
			return w.pol.Scope(ctx, s, p)
		}
		if ran, err := runner.RunOnce(context.Background()); !ran || err != nil {
			t.Fatalf("runner: ran %v, %v", ran, err)
		}
		if r := w.do("b-app", "GET", status, nil); r.status != 404 {
			t.Errorf("another principal's status request: %d, want 404", r.status)
		}
		if r := w.do("", "GET", status, nil); r.status != 401 {
			t.Errorf("anonymous status request: %d, want 401", r.status)
		}
		m := w.do("drA", "GET", status, nil)
		if m.status != 200 {
			t.Fatalf("manifest: %d %s", m.status, m.raw)
		}
		lines, leaked, own := 0, 0, 0
		outputs, _ := m.body["output"].([]any)
		for _, o := range outputs {
			u := get(o, "url").(string)
			if r := w.do("b-app", "GET", u, nil); r.status != 404 {
				t.Errorf("another principal downloaded %s: %d", u, r.status)
			}
			f := w.do("drA", "GET", u, nil, "Accept: application/fhir+ndjson")
			for _, line := range strings.Split(strings.TrimSpace(string(f.raw)), "\n") {
				if line == "" {
					continue
				}
				var res map[string]any
				if err := json.Unmarshal([]byte(line), &res); err != nil {
					t.Fatalf("%s: %v", u, err)
				}
				lines++
				ref := fmt.Sprint(res["resourceType"], "/", res["id"])
				if w.inB[ref] {
					leaked++
					t.Errorf("export holds B's %s", ref)
				}
				if ref == "Patient/"+w.A {
					own++
				}
			}
		}
		fmt.Printf("B11 bulk export (%s): B resources exported: %d / %d lines; A's Patient exported: %d\n", w.store.Engine(), leaked, lines, own)
		if own != 1 || lines < 50 {
			t.Errorf("export of A's organization: %d lines, A's Patient %d times", lines, own)
		}
	})
}

// TestAnonymous: with access control, a request without a Principal is
// 401 with an OperationOutcome, before the request's type, id or body is
// looked at (the HTTP adapter still answers 406/415 for formats it cannot
// read; the auth middleware in front of it answers 401 first); the
// CapabilityStatement stays public.
func TestAnonymous(t *testing.T) {
	w := newWorld(t, sqlitetestOpen(t))
	for _, c := range []struct{ method, path string }{
		{"GET", "Patient/" + w.A}, {"GET", "Patient"}, {"GET", "Nonsense/1"}, {"GET", "Patient/bad$id"},
		{"POST", "Patient"}, {"POST", ""}, {"GET", "_history"}, {"GET", "Patient/" + w.A + "/$everything"},
		{"GET", "$export"},
	} {
		var body any
		if c.method == "POST" {
			body = map[string]any{"resourceType": "Patient"}
		}
		r := w.do("", c.method, c.path, body, "Prefer: respond-async")
		if r.status != 401 || r.body["resourceType"] != "OperationOutcome" {
			t.Errorf("anonymous %s %s: %d %s, want 401 with an OperationOutcome", c.method, c.path, r.status, r.raw)
		}
	}
	if r := w.do("", "GET", "metadata", nil); r.status != 200 {
		t.Errorf("anonymous metadata: %d", r.status)
	}
}
