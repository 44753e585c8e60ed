package web

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale/rest"
)

func concept(text string, rxcui ...string) map[string]any {
	c := map[string]any{"text": text}
	for _, r := range rxcui {
		c["coding"] = []any{map[string]any{"system": systemRxNorm, "code": r}}
	}
	return c
}

func allergyRes(id, substance string) resource {
	return resource{"resourceType": "AllergyIntolerance", "id": id, "code": map[string]any{"text": substance},
		"clinicalStatus": map[string]any{"coding": []any{map[string]any{"code": "active"}}}}
}

// TestCheckPrescription: the check finds allergies by ingredient, by
// class name and by related class; ONC interaction pairs in either
// order; duplicates; and nothing where there is nothing.
func TestCheckPrescription(t *testing.T) {
	a := &App{loc: timeUTC}
	cases := []struct {
		name      string
		med       map[string]any
		allergies []resource
		meds      []activeMed
		want      []string // kind:severity:text fragment, in order
	}{
		{"penicillin allergy, amoxicillin", concept("Amoxicillin 500 MG Oral Capsule"), []resource{allergyRes("1", "Penicillin V")}, nil,
			[]string{"allergy:high:amoxicillin is one of the penicillins"}},
		{"by RxCUI only", concept("Amox 500", "723"), []resource{allergyRes("1", "Penicillins")}, nil,
			[]string{"allergy:high:penicillins"}},
		{"related class", concept("Cephalexin 500 MG Oral Capsule"), []resource{allergyRes("1", "Penicillin")}, nil,
			[]string{"allergy:moderate:cross-reactivity"}},
		{"sulfa", concept("Sulfamethoxazole 800 MG / Trimethoprim 160 MG Oral Tablet"), []resource{allergyRes("1", "Sulfa drugs")}, nil,
			[]string{"allergy:high:sulfonamide antibiotics"}},
		{"unknown drug named in allergy", concept("Loratadine 10 MG Oral Tablet"), []resource{allergyRes("1", "Loratadine")}, nil,
			[]string{"allergy:high:Loratadine"}},
		{"unrelated allergy", concept("Amoxicillin 500 MG Oral Capsule"), []resource{allergyRes("1", "Peanut")}, nil, nil},
		{"resolved allergy", concept("Amoxicillin 500 MG"), []resource{{"resourceType": "AllergyIntolerance", "id": "1", "code": map[string]any{"text": "Penicillin"},
			"clinicalStatus": map[string]any{"coding": []any{map[string]any{"code": "resolved"}}}}}, nil, nil},
		{"SSRI + MAOI", concept("Phenelzine 15 MG Oral Tablet"), nil, []activeMed{{"MedicationRequest/s", "Sertraline 50 MG Oral Tablet", concept("Sertraline 50 MG Oral Tablet")}},
			[]string{"interaction:high:serotonin syndrome"}},
		{"MAOI + SSRI, other order", concept("Sertraline 50 MG Oral Tablet"), nil, []activeMed{{"MedicationRequest/p", "Phenelzine 15 MG", concept("Phenelzine 15 MG")}},
			[]string{"interaction:high:pair 4"}},
		{"QT + QT", concept("Ondansetron 4 MG Oral Tablet"), nil, []activeMed{{"MedicationRequest/c", "Citalopram 20 MG", concept("Citalopram 20 MG")}},
			[]string{"interaction:high:QT prolongation"}},
		{"simvastatin + clarithromycin", concept("Clarithromycin 500 MG Oral Tablet"), nil, []activeMed{{"MedicationRequest/s", "Simvastatin 20 MG", concept("Simvastatin 20 MG", "36567")}},
			[]string{"interaction:high:rhabdomyolysis"}},
		{"duplicate", concept("Naproxen sodium 550 MG Oral Tablet"), nil, []activeMed{{"MedicationRequest/n", "Naproxen sodium 220 MG Oral Tablet", concept("Naproxen sodium 220 MG Oral Tablet")}},
			[]string{"duplicate:moderate:Already prescribed"}},
		{"no words inside words", concept("Methamphetamine 5 MG"), nil, []activeMed{{"MedicationRequest/x", "Loratadine 10 MG", concept("Loratadine 10 MG")}}, nil},
		{"nothing known", concept("Loratadine 10 MG Oral Tablet"), []resource{allergyRes("1", "Latex")}, []activeMed{{"MedicationRequest/e", "Epinephrine auto-injector", concept("Epinephrine auto-injector")}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := a.checkPrescription(c.med, c.allergies, c.meds)
			if len(got) != len(c.want) {
				t.Fatalf("%d warnings %+v, want %d", len(got), got, len(c.want))
			}
			for i, w := range c.want {
				parts := strings.SplitN(w, ":", 3)
				if got[i].Kind != parts[0] || got[i].Severity != parts[1] || !strings.Contains(got[i].Text+" "+got[i].Source, parts[2]) {
					t.Errorf("warning %d = %+v, want %s", i, got[i], w)
				}
			}
		})
	}
}

// count is how many resources of typ the patient has (no access control).
func (e *env) count(typ, patient string, extra ...string) int {
	e.t.Helper()
	q := url.Values{"patient": {"Patient/" + patient}, "_summary": {"count"}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	resp, err := e.loader.Do(context.Background(), &rest.Request{Method: "GET", Type: typ, Query: q, RawQuery: q.Encode()})
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := body(resp)
	var bun struct{ Total int }
	json.Unmarshal(b, &bun)
	return bun.Total
}

// searchAll returns the patient's resources of typ (no access control).
func (e *env) searchAll(typ string, q url.Values) []map[string]any {
	e.t.Helper()
	resp, err := e.loader.Do(context.Background(), &rest.Request{Method: "GET", Type: typ, Query: q, RawQuery: q.Encode()})
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := body(resp)
	var bun struct {
		Entry []struct{ Resource map[string]any }
	}
	json.Unmarshal(b, &bun)
	var out []map[string]any
	for _, en := range bun.Entry {
		out = append(out, en.Resource)
	}
	return out
}

func rxForm(tok, text string, extra ...string) url.Values {
	f := url.Values{"csrf": {tok}, "text": {text}, "dose": {"1"}, "dose_unit": {"tablet"}, "route": {"26643006"}, "frequency": {"QD"},
		"quantity": {"30"}, "quantity_unit": {"tablet"}, "refills": {"2"}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

var ackRE = regexpMust(`name="ack" value="([0-9a-f]+)"`)

// TestPrescribing walks the prescribing screens over HTTP: a warning
// stops the prescription until acknowledged (with a reason for a high
// one), and the acknowledgement is saved as DetectedIssues; an
// interaction, a duplicate, discontinuing and renewing.
func TestPrescribing(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	tok := csrf(t, c.login())
	id := e.patient("Reinger")
	path := "/app/patients/" + id + "/medications"
	status, page := c.get(path)
	if status != 200 || !strings.Contains(page, "Loratadine 5 MG Chewable Tablet") || !strings.Contains(page, "Prescribe") {
		t.Fatalf("medications page: %d", status)
	}
	c.post("/app/patients/"+id+"/allergies", url.Values{"csrf": {tok}, "substance": {"Penicillin V"}, "type": {"allergy"},
		"category": {"medication"}, "criticality": {"high"}, "reaction": {"Anaphylaxis"}, "severity": {"severe"}})
	before := e.count("MedicationRequest", id)

	form := rxForm(tok, "Amoxicillin 500 MG Oral Capsule", "rxcui", "308182", "dose", "500", "dose_unit", "mg", "frequency", "TID",
		"quantity", "30", "quantity_unit", "capsule", "refills", "0", "days", "10", "pharmacy_text", "Main Street Pharmacy, 555-0100")
	status, page = c.post(path, form)
	if status != 409 || !strings.Contains(page, "amoxicillin is one of the penicillins") || !strings.Contains(page, "Penicillin V (Anaphylaxis)") {
		t.Fatalf("first submission: %d, want 409 with the allergy warning\n%s", status, page)
	}
	key := ackRE.FindStringSubmatch(page)[1]
	for _, f := range []url.Values{
		{"ack": {key}},                     // not ticked
		{"ack": {key}, "override": {"on"}}, // no reason for a high warning
		{"ack": {"0123456789abcdef01234567"}, "override": {"on"}, "override_reason": {"x"}}, // another set of warnings
	} {
		g := url.Values{}
		for k, v := range form {
			g[k] = v
		}
		for k, v := range f {
			g[k] = v
		}
		if status, _ = c.post(path, g); status != 409 {
			t.Errorf("acknowledgement %v: %d, want 409", f, status)
		}
	}
	if n := e.count("MedicationRequest", id); n != before {
		t.Fatalf("%d prescriptions written before the warning was acknowledged", n-before)
	}
	form.Set("ack", key)
	form.Set("override", "on")
	form.Set("override_reason", "Tolerated amoxicillin in 2022")
	status, page = c.post(path, form)
	if status != 200 || !strings.Contains(page, "Prescription saved") || !strings.Contains(page, "500 mg oral three times daily") ||
		!strings.Contains(page, "Main Street Pharmacy") || !strings.Contains(page, "1 warning overridden") {
		t.Fatalf("acknowledged: %d\n%s", status, page)
	}
	amox := e.searchAll("MedicationRequest", url.Values{"patient": {"Patient/" + id}, "code": {systemRxNorm + "|308182"}})
	if len(amox) != 1 {
		t.Fatalf("%d amoxicillin prescriptions", len(amox))
	}
	mr := amox[0]
	if str(mr, "status") != "active" || str(mr, "intent") != "order" || refID(get(mr, "requester"), "Practitioner") == "" ||
		get(mr, "dispenseRequest", "numberOfRepeatsAllowed") != 0.0 || str(mr, "dispenseRequest", "performer", "display") == "" ||
		str(mr, "dosageInstruction", "0", "timing", "code", "coding", "0", "code") != "TID" || len(list(mr, "detectedIssue")) != 1 {
		t.Errorf("stored prescription: %v", mr)
	}
	issues := e.searchAll("DetectedIssue", url.Values{"patient": {"Patient/" + id}})
	if len(issues) != 1 || str(issues[0], "severity") != "high" || !strings.Contains(str(issues[0], "mitigation", "0", "action", "text"), "Tolerated amoxicillin") ||
		str(issues[0], "implicated", "0", "reference") != "MedicationRequest/"+str(mr, "id") {
		t.Errorf("DetectedIssue: %v", issues)
	}

	// No warning: saved at once. Then an interaction.
	status, page = c.post(path, rxForm(tok, "Sertraline 50 MG Oral Tablet"))
	if status != 200 || !strings.Contains(page, "Prescription saved") {
		t.Fatalf("sertraline: %d", status)
	}
	status, page = c.post(path, rxForm(tok, "Phenelzine 15 MG Oral Tablet"))
	if status != 409 || !strings.Contains(page, "serotonin syndrome") || !strings.Contains(page, "pair 4") {
		t.Fatalf("phenelzine: %d, want the interaction warning", status)
	}
	// A duplicate is moderate: ticking the box is enough.
	f := rxForm(tok, "Loratadine 10 MG Oral Tablet")
	_, page = c.post(path, f)
	if !strings.Contains(page, "Already prescribed: Loratadine 5 MG Chewable Tablet") {
		t.Fatalf("no duplicate warning")
	}
	f.Set("ack", ackRE.FindStringSubmatch(page)[1])
	f.Set("override", "on")
	if status, page = c.post(path, f); status != 200 || !strings.Contains(page, "Prescription saved") {
		t.Fatalf("duplicate acknowledged: %d", status)
	}

	// Discontinue sertraline.
	sert := e.searchAll("MedicationRequest", url.Values{"patient": {"Patient/" + id}, "status": {"active"}})
	var sid, sver string
	for _, m := range sert {
		if strings.HasPrefix(conceptText(get(m, "medicationCodeableConcept")), "Sertraline") {
			sid, sver = str(m, "id"), str(m, "meta", "versionId")
		}
	}
	if status, _ = c.post(path+"/"+sid+"/discontinue", url.Values{"csrf": {tok}, "version": {sver}, "reason": {"made up"}}); status != 400 {
		t.Errorf("discontinue with an unknown reason: %d", status)
	}
	status, page = c.post(path+"/"+sid+"/discontinue", url.Values{"csrf": {tok}, "version": {sver}, "reason": {"Adverse reaction"}})
	if status != 200 || !strings.Contains(page, "Medication discontinued") {
		t.Fatalf("discontinue: %d", status)
	}
	stopped := page[strings.Index(page, `id="stopped-h"`):]
	if !strings.Contains(stopped, "Sertraline 50 MG Oral Tablet") || !strings.Contains(stopped, "Adverse reaction") {
		t.Error("sertraline is not among the stopped medications")
	}
	if status, _ = c.post(path+"/"+sid+"/discontinue", url.Values{"csrf": {tok}, "version": {sver}, "reason": {"Adverse reaction"}}); status != 409 {
		t.Errorf("discontinue at an old version: %d, want 409", status)
	}

	// Renew amoxicillin: the form comes prefilled; the check runs again.
	_, page = c.get(path + "?renew=" + str(mr, "id"))
	if !strings.Contains(page, `value="Amoxicillin 500 MG Oral Capsule"`) || !strings.Contains(page, `name="renews"`) || !strings.Contains(page, `value="308182"`) {
		t.Fatal("renewal form not prefilled")
	}
	rf := rxForm(tok, "Amoxicillin 500 MG Oral Capsule", "rxcui", "308182", "dose", "500", "dose_unit", "mg", "renews", str(mr, "id"))
	_, page = c.post(path, rf)
	rf.Set("ack", ackRE.FindStringSubmatch(page)[1])
	rf.Set("override", "on")
	rf.Set("override_reason", "Course extended; tolerated")
	if status, page = c.post(path, rf); status != 200 || !strings.Contains(page, "Prescription renewed") {
		t.Fatalf("renew: %d", status)
	}
	amox = e.searchAll("MedicationRequest", url.Values{"patient": {"Patient/" + id}, "code": {systemRxNorm + "|308182"}, "_sort": {"-authoredon"}})
	if len(amox) != 2 {
		t.Fatalf("%d amoxicillin prescriptions after the renewal", len(amox))
	}
	for _, m := range amox {
		switch str(m, "id") {
		case str(mr, "id"):
			if str(m, "status") != "completed" {
				t.Errorf("renewed prescription status %s, want completed", str(m, "status"))
			}
		default:
			if str(m, "status") != "active" || refID(get(m, "priorPrescription"), "MedicationRequest") != str(mr, "id") {
				t.Errorf("renewal: %v", m)
			}
		}
	}

	// Bad forms: a message, nothing written.
	before = e.count("MedicationRequest", id)
	for _, bad := range []struct {
		form url.Values
		want string
	}{
		{rxForm(tok, ""), "Name the medication"},
		{rxForm(tok, "X", "rxcui", "12ab"), "RxNorm code"},
		{rxForm(tok, "X", "dose", "-1"), "dose must be a positive"},
		{rxForm(tok, "X", "route", "123"), "Choose a route"},
		{rxForm(tok, "X", "frequency", "hourly"), "Choose how often"},
		{rxForm(tok, "X", "refills", "12"), "Refills must be"},
		{rxForm(tok, "X", "quantity", "0"), "quantity to dispense"},
		{rxForm(tok, "X", "days", "400"), "Days of supply"},
		{rxForm(tok, "X", "pharmacy", "Patient/1"), "Choose a pharmacy"},
	} {
		status, page := c.post(path, bad.form)
		if status != 400 || !strings.Contains(page, bad.want) {
			t.Errorf("%v: %d, want 400 with %q", bad.form, status, bad.want)
		}
	}
	if n := e.count("MedicationRequest", id); n != before {
		t.Errorf("bad forms wrote %d prescriptions", n-before)
	}
	_, page = c.get("/app/patients/" + id)
	if !strings.Contains(page, "Amoxicillin 500 MG Oral Capsule") || strings.Contains(page[strings.Index(page, "med-h"):strings.Index(page, "vit-h")], "Sertraline") {
		t.Error("summary does not show the active medications only")
	}
}

var timeUTC = time.UTC

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }
