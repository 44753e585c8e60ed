package access_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hale-ehr/hale/fhir"
)

// normalize makes two answers comparable: the ids asked for become "X",
// and what differs between any two answers (a Bundle's id and
// lastUpdated) is dropped.
func normalize(r *resp, ids ...string) (int, any) {
	raw := string(r.raw)
	for _, id := range ids {
		raw = strings.ReplaceAll(raw, id, "X")
	}
	var v any
	json.Unmarshal([]byte(raw), &v)
	var strip func(v any)
	strip = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["resourceType"] == "Bundle" {
				delete(x, "id")
				delete(x, "meta")
			}
			for _, e := range x {
				strip(e)
			}
		case []any:
			for _, e := range x {
				strip(e)
			}
		}
	}
	strip(v)
	return r.status, v
}

// TestExistenceOracles is B12: for every vector that names an id, the
// answer about B's hidden resource must equal the answer about an id
// that does not exist (status, body and Bundle.total).
func TestExistenceOracles(t *testing.T) {
	engines(t, func(t *testing.T, w *world) {
		w.patientApps()
		w.clinicians()
		for _, who := range []string{"a-app", "drA"} {
			pairs, distinguishable := 0, 0
			compare := func(name, method, pathB, pathNone string, bodyB, bodyNone any, ids ...string) {
				pairs++
				sb, nb := normalize(w.do(who, method, pathB, bodyB), ids...)
				sn, nn := normalize(w.do(who, method, pathNone, bodyNone), ids...)
				if sb != sn || !reflect.DeepEqual(nb, nn) {
					distinguishable++
					t.Errorf("%s as %s: hidden and missing differ: %d %v / %d %v", name, who, sb, nb, sn, nn)
				}
			}
			const none = missing
			for _, typ := range w.types() {
				b := w.res[w.B][typ][0]
				param := fhir.CompartmentParams("Patient", typ)[0]
				for _, v := range []struct{ name, path string }{
					{"read", typ + "/%s"},
					{"vread", typ + "/%s/_history/1"},
					{"history", typ + "/%s/_history"},
					{"search _id", typ + "?_id=%s&_total=accurate"},
					{"system search _id", "?_id=%s&_total=accurate"},
					{"_has", "Patient?_has:" + typ + ":" + param + ":_id=%s&_total=accurate"},
					{"_revinclude of the hidden", typ + "?_id=%s&_revinclude=*&_include=*"},
				} {
					compare(typ+" "+v.name, "GET", fmt.Sprintf(v.path, b), fmt.Sprintf(v.path, none), nil, nil, b, none)
				}
				compare(typ+" batch", "POST", "", "", bundle("batch", "GET", typ+"/"+b), bundle("batch", "GET", typ+"/"+none), b, none)
			}
			// Vectors naming the patient: B against a patient that does
			// not exist.
			for _, typ := range w.types() {
				param := fhir.CompartmentParams("Patient", typ)[0]
				for _, v := range []struct{ name, path string }{
					{"by patient", typ + "?" + param + "=Patient/%s&_total=accurate"},
					{"chain", typ + "?" + param + ":Patient._id=%s&_total=accurate"},
					{"compartment", "Patient/%s/" + typ + "?_total=accurate"},
				} {
					compare(typ+" "+v.name, "GET", fmt.Sprintf(v.path, w.B), fmt.Sprintf(v.path, none), nil, nil, w.B, none)
				}
			}
			for _, v := range []string{"Patient/%s", "Patient/%s/$everything", "Patient/%s/*", "Patient/%s/_history",
				"Patient?_id=%s&_total=accurate", "Patient?link=Patient/%s"} {
				compare(v, "GET", fmt.Sprintf(v, w.B), fmt.Sprintf(v, none), nil, nil, w.B, none)
			}
			fmt.Printf("B12 existence and count oracles (%s, %s): distinguishable pairs: %d / %d\n", w.store.Engine(), who, distinguishable, pairs)
		}
	})
}
