package web

import (
	"net/url"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
)

func registration(tok string, kv ...string) url.Values {
	f := url.Values{"csrf": {tok}, "family": {"Okafor"}, "given": {"Adaeze Grace"}, "birthdate": {"1987-05-14"}, "gender": {"female"},
		"language": {"es"}, "race": {"2054-5", "2106-3"}, "ethnicity": {"2186-5"}, "phone": {"617-555-0142"}, "email": {"a.okafor@example.org"},
		"line": {"12 Elm St"}, "city": {"Springfield"}, "state": {"MA"}, "zip": {"01103"},
		"contact_name": {"Chidi Okafor"}, "contact_relation": {"Spouse"}, "contact_phone": {"617-555-0199"}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// TestRegister: the front desk registers a patient with US Core
// demographics and a Coverage in one transaction; the same person again
// is flagged as a possible duplicate until confirmed; bad forms write
// nothing; a physician cannot record insurance.
func TestRegister(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	tok := csrf(t, c.loginAs("front.desk", e.addUser("front.desk", hale.RoleFrontDesk)))
	if status, page := c.get("/app/patients/new"); status != 200 || !strings.Contains(page, "Insurer") {
		t.Fatalf("registration page: %d", status)
	}
	f := registration(tok, "payer", "Blue Cross Blue Shield", "member_id", "XJH123456", "group", "G-77")
	status, page := c.post("/app/patients/new", f)
	if status != 200 || !strings.Contains(page, "Patient registered") || !strings.Contains(page, "Okafor, Adaeze Grace") || !strings.Contains(page, "MRN") {
		t.Fatalf("register: %d\n%s", status, page)
	}
	pats := e.searchAll("Patient", url.Values{"family": {"Okafor"}})
	if len(pats) != 1 {
		t.Fatalf("%d patients", len(pats))
	}
	p := pats[0]
	if mrn(p) == "" || str(p, "managingOrganization", "reference") != "Organization/"+e.orgs[0] || str(p, "communication", "0", "language", "coding", "0", "code") != "es" ||
		str(p, "extension", "0", "url") != "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race" || len(list(p, "extension", "0", "extension")) != 3 ||
		str(p, "extension", "1", "extension", "0", "valueCoding", "code") != "2186-5" || str(p, "contact", "0", "name", "text") != "Chidi Okafor" {
		t.Errorf("stored patient: %v", p)
	}
	covs := e.searchAll("Coverage", url.Values{"beneficiary": {"Patient/" + str(p, "id")}})
	if len(covs) != 1 || str(covs[0], "subscriberId") != "XJH123456" || str(covs[0], "payor", "0", "display") != "Blue Cross Blue Shield" {
		t.Errorf("coverage: %v", covs)
	}
	// The same person again: a warning, nothing written until confirmed.
	status, page = c.post("/app/patients/new", registration(tok, "given", "Ada"))
	if status != 409 || !strings.Contains(page, "Possible existing patient") || !strings.Contains(page, "Okafor, Adaeze Grace") {
		t.Fatalf("duplicate: %d", status)
	}
	// Same phone, another birth date: also flagged.
	if status, _ = c.post("/app/patients/new", registration(tok, "birthdate", "1990-01-01", "phone", "(617) 555-0142")); status != 409 {
		t.Errorf("same phone: %d, want 409", status)
	}
	if n := len(e.searchAll("Patient", url.Values{"family": {"Okafor"}})); n != 1 {
		t.Fatalf("%d patients after unconfirmed duplicates", n)
	}
	if status, _ = c.post("/app/patients/new", registration(tok, "given", "Ada", "not_duplicate", "on")); status != 200 {
		t.Errorf("confirmed new patient: %d", status)
	}
	for _, bad := range []struct {
		form url.Values
		want string
	}{
		{registration(tok, "family", ""), "Required"},
		{registration(tok, "birthdate", "2999-01-01"), "not plausible"},
		{registration(tok, "gender", "x"), "Choose the sex"},
		{registration(tok, "state", "Mass"), "Two letters"},
		{registration(tok, "zip", "1234"), "Five digits"},
		{registration(tok, "race", "9999-9"), "Choose from the list"},
		{registration(tok, "payer", "Aetna"), "the insurer and the member id"},
		{registration(tok, "contact_phone", ""), "name and phone"},
	} {
		if status, page := c.post("/app/patients/new", bad.form); status != 400 || !strings.Contains(page, bad.want) {
			t.Errorf("%v: %d, want 400 with %q", bad.form, status, bad.want)
		}
	}
	if n := len(e.searchAll("Patient", url.Values{"family": {"Okafor"}})); n != 2 {
		t.Errorf("%d patients after bad forms, want 2", n)
	}
	// A physician registers, but cannot record insurance.
	d := e.client()
	dtok := csrf(t, d.login())
	if _, page := d.get("/app/patients/new"); strings.Contains(page, "Insurer") {
		t.Error("physician offered the insurance fields")
	}
	if status, page := d.post("/app/patients/new", registration(dtok, "family", "Nguyen", "payer", "Aetna", "member_id", "1")); status != 400 || !strings.Contains(page, "front desk") {
		t.Errorf("physician with insurance: %d", status)
	}
}
