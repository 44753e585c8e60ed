package access_test

import (
	"fmt"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/fhir"
)

// clinicians adds the users of organization A (Practitioner drA) and a
// physician of B.
func (w *world) clinicians() {
	for _, r := range hale.Roles {
		if r == hale.RolePatient {
			continue
		}
		w.who[string(r)] = &hale.Principal{Subject: "user/" + string(r), Role: r, Organizations: []string{w.orgA}}
	}
	w.who["drA"] = &hale.Principal{Subject: "user/drA", Role: hale.RolePhysician, FHIRUser: "Practitioner/" + w.drA,
		Organizations: []string{w.orgA}}
	w.who["drB"] = &hale.Principal{Subject: "user/drB", Role: hale.RolePhysician, FHIRUser: "Practitioner/" + w.drB,
		Organizations: []string{w.orgB}}
	w.who["nurseA"] = &hale.Principal{Subject: "user/nurseA", Role: hale.RoleNurse, Organizations: []string{w.orgA}}
}

// patientApps adds the SMART patient apps of A and B (patient/*.rs).
func (w *world) patientApps() {
	w.who["a-app"] = &hale.Principal{Subject: "user/a", Role: hale.RolePatient, FHIRUser: "Patient/" + w.A,
		Patient: w.A, Client: "app", Scopes: []string{"launch/patient", "openid", "patient/*.rs"}}
	w.who["b-app"] = &hale.Principal{Subject: "user/b", Role: hale.RolePatient, FHIRUser: "Patient/" + w.B,
		Patient: w.B, Client: "app", Scopes: []string{"patient/*.rs"}}
}

// vector is one request of the cross-patient matrix.
type vector struct {
	name, method, path string
	body               any
}

// crossVectors are the ways a caller might reach B's resource of typ
// (test list B11): by id, by patient, through chains, _has, includes,
// history, compartments, system search and bundle entries.
func (w *world) crossVectors(typ string) []vector {
	b := w.res[w.B][typ][0]
	param := fhir.CompartmentParams("Patient", typ)[0]
	family := "Reinger"
	return []vector{
		{"read", "GET", typ + "/" + b, nil},
		{"vread", "GET", typ + "/" + b + "/_history/1", nil},
		{"instance history", "GET", typ + "/" + b + "/_history", nil},
		{"type history", "GET", typ + "/_history?_count=1000", nil},
		{"search _id", "GET", typ + "?_id=" + b, nil},
		{"search patient", "GET", typ + "?" + param + "=Patient/" + w.B, nil},
		{"search all", "GET", typ + "?_count=1000&_total=accurate", nil},
		{"chain _id", "GET", typ + "?" + param + ":Patient._id=" + w.B, nil},
		{"chain name", "GET", typ + "?" + param + ":Patient.name=" + family, nil},
		{"compartment", "GET", "Patient/" + w.B + "/" + typ, nil},
		{"_has", "GET", "Patient?_has:" + typ + ":" + param + ":_id=" + b, nil},
		{"_revinclude", "GET", "Patient?_revinclude=" + typ + ":" + param + "&_count=1000", nil},
		{"_include", "GET", typ + "?_include=" + typ + ":" + param + "&_include:iterate=*&_count=1000", nil},
		{"system search", "GET", "?_type=" + typ + "&_id=" + b, nil},
		{"batch GET", "POST", "", bundle("batch", "GET", typ+"/"+b, "GET", typ+"?_id="+b)},
		{"transaction GET", "POST", "", bundle("transaction", "GET", typ+"/"+b)},
	}
}

// bundle builds a batch or transaction of bodiless requests
// (method, url pairs).
func bundle(typ string, reqs ...string) map[string]any {
	var entries []any
	for i := 0; i+1 < len(reqs); i += 2 {
		entries = append(entries, map[string]any{"request": map[string]any{"method": reqs[i], "url": reqs[i+1]}})
	}
	return map[string]any{"resourceType": "Bundle", "type": typ, "entry": entries}
}

// leaks reports which resources of B an answer carries.
func (w *world) leaks(r *resp) []string {
	var out []string
	for _, ref := range r.resources() {
		if w.inB[ref] {
			out = append(out, ref)
		}
	}
	return out
}

// TestCrossPatientMatrix is B11: with A's patient app (patient/*.rs),
// every way of reaching B's data, for every type of the Patient
// compartment the examples provide. The positive control reads A's
// resource of each type, so a policy that hid everything would fail.
func TestCrossPatientMatrix(t *testing.T) {
	engines(t, func(t *testing.T, w *world) {
		w.patientApps()
		w.clinicians()
		for _, who := range []string{"a-app", "drA"} {
			w.crossPatient(t, who)
		}
	})
}

// crossPatient runs the B11 matrix as who, a caller who sees A and not B.
func (w *world) crossPatient(t *testing.T, who string) {
	role := w.who[who].Role
	requests, leaked := 0, 0
	check := func(name string, r *resp) {
		requests++
		if l := w.leaks(r); len(l) > 0 {
			leaked++
			t.Errorf("%s as %s: B data returned: %v", name, who, l)
		}
	}
	types := w.types()
	ownRead, readable := 0, len(types)
	for _, typ := range types {
		for _, v := range w.crossVectors(typ) {
			check(typ+" "+v.name, w.do(who, v.method, v.path, v.body))
		}
		// Paging links replayed with another principal: B's app
		// pages through its own resources, who replays the link.
		r := w.do("b-app", "GET", typ+"?_count=1", nil)
		if next := link(r.body, "next"); next != "" {
			check(typ+" replayed next link", w.do(who, "GET", next, nil))
		}
		if !access.RoleAllows(role, typ, access.Read) {
			readable--
		} else if w.do(who, "GET", typ+"/"+w.res[w.A][typ][0], nil).status == 200 {
			ownRead++
		}
	}
	for name, path := range map[string]string{
		"Patient/B":                 "Patient/" + w.B,
		"Patient/B/$everything":     "Patient/" + w.B + "/$everything",
		"Patient/A/$everything":     "Patient/" + w.A + "/$everything?_count=1000",
		"Patient/B/*":               "Patient/" + w.B + "/*?_count=1000",
		"system history":            "_history?_count=1000",
		"system search":             "?_count=1000",
		"bridge _include=*":         "Observation?code:text=bridge&_include=*&_include:iterate=*",
		"bridge _include focus":     "Observation?code:text=bridge&_include=Observation:focus",
		"bridge _revinclude":        "Patient?_id=" + w.A + "&_revinclude=*&_include:iterate=*",
		"Patient _has any":          "Patient?_has:Observation:subject:status=final",
		"Patient by name":           "Patient?name=Reinger",
		"B's Patient/B/_history":    "Patient/" + w.B + "/_history",
		"Patient?_id=B&_total":      "Patient?_id=" + w.B + "&_total=accurate",
		"Encounter chained subject": "Encounter?subject.name=Reinger",
	} {
		check(name, w.do(who, "GET", path, nil))
	}
	fmt.Printf("B11 cross-patient matrix (%s, %s): %d types × %d vectors + paging + 14 whole-record requests; B data returned: %d / %d requests; A's own resources readable: %d / %d\n",
		w.store.Engine(), who, len(types), len(w.crossVectors(types[0])), leaked, requests, ownRead, readable)
	if ownRead != readable {
		t.Errorf("%s read %d of A's %d resource types; the policy hides too much", who, ownRead, readable)
	}
	if len(types) < 40 {
		t.Errorf("only %d types in the matrix; the fixture lost examples", len(types))
	}
}

// link returns the URL of a Bundle link relation.
func link(b map[string]any, rel string) string {
	links, _ := b["link"].([]any)
	for _, l := range links {
		m, _ := l.(map[string]any)
		if m["relation"] == rel {
			s, _ := m["url"].(string)
			return s
		}
	}
	return ""
}
