package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/invariant"
)

// TestRecordJSON: the recorder writes each AuditEvent's JSON itself,
// without validating it on the hot path, so every shape it can write is
// checked here: it is valid FHIR R4 (structure and every invariant), in
// the definitions' element order (exactly what fhir.Marshal writes for
// it), and the record's search columns say what the JSON says.
func TestRecordJSON(t *testing.T) {
	nurse := &hale.Principal{Subject: "user/n1", Name: `N. "Quote" Ürse`, FHIRUser: "Practitioner/pr1", Address: "192.0.2.10"}
	viaApp := &hale.Principal{Subject: "user/p7", Name: "Pat", FHIRUser: "Patient/p7", Client: "app-1", Address: "2001:db8::1"}
	backend := &hale.Principal{Subject: "client/bulk", Client: "bulk"}
	at := time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.FixedZone("x", 3600))
	many := make([]string, 80)
	for i := range many {
		many[i] = fmt.Sprintf("Observation/o%d", i%70) // 70 distinct, some twice
	}
	events := map[string]*Event{
		"read":      restEvent(&hale.Access{Interaction: "read", Type: "Patient", ID: "p1", Time: at}),
		"search":    restEvent(&hale.Access{Interaction: "search-type", Type: "Observation", Query: "subject=Patient/p1&code=x|y", Time: at}),
		"failed":    restEvent(&hale.Access{Interaction: "update", Type: "Patient", ID: "p2", Err: hale.Errorf(hale.KindPreconditionFailed, "version 3 is not 2\n<b>"), Time: at}),
		"internal":  restEvent(&hale.Access{Interaction: "read", Type: "Patient", ID: "p3", Err: errors.New("disk on fire"), Time: at}),
		"many":      restEvent(&hale.Access{Interaction: "search-system", Patients: []string{"p1", "p2", "p1"}, Time: at}),
		"export":    restEvent(&hale.Access{Interaction: "export", Query: "_type=Patient", Patients: []string{"p1"}, Time: at}),
		"download":  restEvent(&hale.Access{Interaction: "download", Type: "DocumentReference", ID: "d1", Patients: []string{"p1"}, Time: at}),
		"operation": restEvent(&hale.Access{Interaction: "everything", Type: "Patient", ID: "p1", Patients: []string{"p1"}, Time: at}),
		"login":     {Type: [2]string{sysDICOM, "110114"}, Display: "User Authentication", Subtype: [2]string{sysDICOM, "110122"}, Action: "E", Time: at, Target: [2]string{SystemPrincipal, "user/u2"}},
		"privilege": {Type: [2]string{sysDICOM, "110136"}, Display: "Security Roles Changed", Action: "U", Time: at, Detail: "role nurse → physician", Target: [2]string{SystemPrincipal, "user/u2"}},
		"btg":       {Type: [2]string{sysDICOM, "110113"}, Display: "Security Alert", Action: "E", Time: at, Detail: "break-the-glass: ED", Patients: []string{"p9"}, Purposes: []string{"BTG", "ETREAT"}},
	}
	events["many"].Entities = many
	// A read under a referral and a consent (patient p1) and a
	// break-the-glass grant (p2); p3's basis does not apply.
	basis := restEvent(&hale.Access{Interaction: "search-system", Patients: []string{"p1", "p2"}, Time: at})
	basis.Entities = many
	basis.markBases([]hale.BreakGlass{{Patient: "p2"}}, []hale.Basis{
		{Patient: "p1", Reference: "ServiceRequest/sr1", Purposes: []string{"TREAT"}},
		{Patient: "p1", Reference: "Consent/c1", Purposes: []string{"TREAT", "HPAYMT"}},
		{Patient: "p3", Reference: "Consent/c3", Purposes: []string{"HRESCH"}}})
	if want := []string{"TREAT", "HPAYMT", "BTG"}; !slices.Equal(basis.Purposes, want) {
		t.Errorf("purposes of an access under bases: %v, want %v", basis.Purposes, want)
	}
	if want := []string{"ServiceRequest/sr1", "Consent/c1"}; !slices.Equal(basis.Bases, want) {
		t.Errorf("bases of an access: %v, want %v", basis.Bases, want)
	}
	if r := basis.record("n", "x"); !slices.Contains(r.Entities, "Consent/c1") || slices.Contains(r.Entities, "Consent/c3") {
		t.Errorf("entities of an access under bases: %v", r.Entities)
	}
	events["basis"] = basis
	whos := []*hale.Principal{nil, nurse, viaApp, backend}
	n := 0
	for name, e := range events {
		for _, who := range whos {
			e.Who = who
			label := fmt.Sprintf("%s/%v", name, who != nil && who.Client != "")
			r := e.record("node-1", fmt.Sprintf("id%d", n))
			n++
			res, err := fhir.Decode(r.Data)
			if err != nil {
				t.Fatalf("%s: not JSON: %v\n%s", label, err, r.Data)
			}
			if issues := fhir.Validate(res); len(issues) > 0 {
				t.Errorf("%s: invalid: %s\n%s", label, issues[0].Diagnostics, r.Data)
			}
			if issues := invariant.Check(context.Background(), res); len(issues) > 0 {
				t.Errorf("%s: fails %s", label, issues[0].Diagnostics)
			}
			if canon, _ := fhir.Marshal(res); !bytes.Equal(canon, r.Data) {
				t.Errorf("%s: not in the definitions' order:\n got %s\nwant %s", label, r.Data, canon)
			}
			checkColumns(t, label, r, res)
		}
	}
	t.Logf("AuditEvent shapes written and checked: %d (valid R4, canonical order, columns match): all", n)
}

// checkColumns compares the record's columns with its AuditEvent.
func checkColumns(t *testing.T, label string, r *hale.AuditRecord, res map[string]any) {
	t.Helper()
	get := func(m any, path ...any) any {
		for _, p := range path {
			switch k := p.(type) {
			case string:
				mm, _ := m.(map[string]any)
				m = mm[k]
			case int:
				l, _ := m.([]any)
				if k >= len(l) {
					return nil
				}
				m = l[k]
			}
		}
		return m
	}
	str := func(v any) string { s, _ := v.(string); return s }
	token := func(c any) string {
		if c == nil {
			return ""
		}
		return str(get(c, "system")) + "|" + str(get(c, "code"))
	}
	var ents []string
	entities, _ := get(res, "entity").([]any)
	for _, e := range entities {
		if ref := str(get(e, "what", "reference")); ref != "" {
			ents = append(ents, ref)
		}
	}
	slices.Sort(ents)
	got := []string{r.ID, r.Recorded.Format(time.RFC3339Nano), r.Type, r.Subtype, r.Action, r.Outcome, r.Agent, r.AgentRef, strings.Join(slices.Sorted(slices.Values(r.Entities)), " ")}
	rec, _ := time.Parse(time.RFC3339Nano, str(res["recorded"]))
	want := []string{str(res["id"]), rec.Format(time.RFC3339Nano), token(res["type"]), token(get(res, "subtype", 0)), str(res["action"]), str(res["outcome"]),
		str(get(res, "agent", 0, "who", "identifier", "value")), str(get(res, "agent", 0, "who", "reference")), strings.Join(ents, " ")}
	if !slices.Equal(got, want) {
		t.Errorf("%s: columns %q, the JSON says %q", label, got, want)
	}
	if len(slices.Compact(slices.Clone(ents))) != len(ents) {
		t.Errorf("%s: an entity is named twice: %v", label, ents)
	}
	if r.Recorded.Location() != time.UTC || r.Recorded.Nanosecond()%int(time.Millisecond) != 0 {
		t.Errorf("%s: recorded %v, want UTC milliseconds", label, r.Recorded)
	}
	if str(get(res, "meta", "lastUpdated")) != str(res["recorded"]) {
		t.Errorf("%s: meta.lastUpdated is not recorded", label)
	}
}
