package rest_test

import (
	"encoding/json"
	"github.com/hale-ehr/hale/internal/sharedtest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// sharedDir returns a folder of ../shared (or $HALE_SHARED). Tests that
// need it skip when it is absent, except under CI=true, where they fail.
func sharedDir(tb testing.TB, sub string) string {
	tb.Helper()
	return sharedtest.Dir(tb, sub)
}

// TestOfficialExamples: every R4 example the validator finds valid is
// accepted by create and reads back identical apart from id and meta's
// versionId/lastUpdated. Examples the validator rejects are counted by
// reason (docs/validation.md explains each class).
func TestOfficialExamples(t *testing.T) {
	dir := sharedDir(t, "testdata/fhir-examples/r4-core-4.0.1")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	engines(t, func(t *testing.T, c *client) {
		total, accepted, invalid, refused, badHash := 0, 0, 0, 0, 0
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := fhir.Decode(data)
			if err != nil {
				continue // package.json and friends
			}
			typ, _ := res["resourceType"].(string)
			if !fhir.IsResourceType(typ) {
				continue
			}
			total++
			if typ == "AuditEvent" {
				// The audit trail is written by the server only (audit.go).
				if r := c.do("POST", "/"+typ, data); r.status != 405 {
					t.Errorf("%s: create of an AuditEvent answered %d, want 405", filepath.Base(f), r.status)
				}
				refused++
				continue
			}
			if len(fhir.Validate(res)) > 0 {
				invalid++
				r := c.do("POST", "/"+typ, data)
				if r.status != 400 {
					t.Errorf("%s: invalid example answered %d, want 400", filepath.Base(f), r.status)
				}
				continue
			}
			r := c.do("POST", "/"+typ, data)
			if r.status == 400 && strings.Contains(string(r.raw), "attachment's hash") {
				// DiagnosticReport-example-pgx: its presentedForm's hash is
				// not the SHA-1 of its data (docs/security.md, "Integrity").
				badHash++
				continue
			}
			if r.status != 201 {
				t.Errorf("%s: create answered %d: %.300s", filepath.Base(f), r.status, r.raw)
				continue
			}
			g := c.do("GET", "/"+typ+"/"+str(r.body["id"]), nil, "Accept: application/fhir+json") // a Binary's content otherwise
			back, err := fhir.Decode(g.raw)
			if err != nil {
				t.Fatal(err)
			}
			if !sameApartFromIDMeta(res, back) {
				a, _ := fhir.Marshal(stripIDMeta(res))
				b, _ := fhir.Marshal(stripIDMeta(back))
				t.Errorf("%s: read back differs:\n sent %.400s\n got  %.400s", filepath.Base(f), a, b)
				continue
			}
			accepted++
		}
		t.Logf("official R4 examples: %d accepted by create and read back identical / %d total (%d rejected as invalid by validation, %d AuditEvents refused with 405, %d with an attachment hash that does not match its data refused with 400)", accepted, total, invalid, refused, badHash)
		if total < 700 || accepted+invalid+refused+badHash != total || badHash > 1 {
			t.Errorf("examples: %d accepted + %d invalid + %d refused + %d bad hash != %d total", accepted, invalid, refused, badHash, total)
		}
	})
}

func stripIDMeta(res map[string]any) map[string]any {
	out := make(map[string]any, len(res))
	for k, v := range res {
		out[k] = v
	}
	delete(out, "id")
	if m, ok := out["meta"].(map[string]any); ok {
		mm := map[string]any{}
		for k, v := range m {
			if k != "versionId" && k != "lastUpdated" {
				mm[k] = v
			}
		}
		if len(mm) == 0 {
			delete(out, "meta")
		} else {
			out["meta"] = mm
		}
	}
	return out
}

func sameApartFromIDMeta(a, b map[string]any) bool {
	return reflect.DeepEqual(stripIDMeta(a), stripIDMeta(b))
}

// TestSyntheaTransactions: every Synthea patient bundle of the shared
// corpus posts as one transaction, and afterwards every reference in every
// stored resource resolves to a stored resource.
func TestSyntheaTransactions(t *testing.T) {
	dir := sharedDir(t, "testdata/synthea")
	var files []string
	for _, set := range []string{"set-a", "set-b"} {
		f, _ := filepath.Glob(filepath.Join(dir, set, "*.json"))
		files = append(files, f...)
	}
	engines(t, func(t *testing.T, c *client) {
		if testing.Short() {
			files = files[:3]
		}
		entriesPosted := 0
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r := c.do("POST", "", data, "Prefer: return=minimal")
			if r.status != 200 {
				t.Errorf("%s: %d %.500s", filepath.Base(f), r.status, r.raw)
				continue
			}
			entriesPosted += len(entries(r))
		}
		stored, refs := checkReferences(t, c.store)
		t.Logf("Synthea: %d bundles, %d entries posted; %d resources stored, %d references, all resolve", len(files), entriesPosted, stored, refs)
		if int(stored) != entriesPosted {
			t.Errorf("stored %d resources for %d entries", stored, entriesPosted)
		}
	})
}

// checkReferences reads every current resource and checks each relative
// reference names a stored, not deleted resource.
func checkReferences(t *testing.T, store hale.Store) (stored, refs int) {
	ctx := t.Context()
	err := store.View(ctx, func(r hale.Reader) error {
		exists := map[string]bool{}
		var all []*hale.Version
		types := fhir.ResourceTypes()
		sort.Strings(types)
		for _, typ := range types {
			ids, err := r.Find(ctx, typ, nil, 0)
			if err != nil {
				return err
			}
			for _, id := range ids {
				v, err := r.Current(ctx, typ, id)
				if err != nil {
					return err
				}
				exists[typ+"/"+id] = true
				all = append(all, v)
			}
		}
		stored = len(all)
		for _, v := range all {
			var res any
			if err := json.Unmarshal(v.Data, &res); err != nil {
				return err
			}
			walkRefs(res, func(ref string) {
				if strings.HasPrefix(ref, "#") {
					return
				}
				refs++
				typ, id, ok := search.ParseLocalReference(ref)
				if !ok || !exists[typ+"/"+id] {
					t.Errorf("%s/%s: reference %q does not resolve", v.Type, v.ID, ref)
				}
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return stored, refs
}

func walkRefs(v any, fn func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "reference" {
				fn(s)
				continue
			}
			walkRefs(e, fn)
		}
	case []any:
		for _, e := range x {
			walkRefs(e, fn)
		}
	}
}
