package web

import (
	"github.com/hale-ehr/hale/postgres/pgtest"
	"net/url"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
)

// TestImmunizations: the list shows the Synthea history; a flu shot
// given here is stored as US Core has it (CVX, lot, site, route,
// performer) and shown on the list and the summary; a reported one has
// primarySource false; a refusal is status not-done with its reason;
// bad forms write nothing; a front-desk user cannot record one.
func TestImmunizations(t *testing.T) { testImmunizations(t, newEnv(t)) }

// TestImmunizationsPostgres is TestImmunizations on PostgreSQL (skipped without a server, failed
// with CI=true).
func TestImmunizationsPostgres(t *testing.T) { testImmunizations(t, newEnvOn(t, pgtest.Open(t))) }

func testImmunizations(t *testing.T, e *env) {
	c := e.client()
	tok := csrf(t, c.login())
	id := e.patient("Reinger")
	base := "/app/patients/" + id + "/immunizations"
	before := e.count("Immunization", id)
	status, page := c.get(base)
	if status != 200 || !strings.Contains(page, "Immunization history ("+itoa(before)+")") || !strings.Contains(page, "Influenza, seasonal, injectable, preservative free") ||
		!strings.Contains(page, "Record an immunization") {
		t.Fatalf("immunizations page: %d", status)
	}
	form := func(kv ...string) url.Values {
		f := url.Values{"csrf": {tok}, "given": {"here"}, "vaccine": {"150"}, "date": {"2024-10-01"}, "lot": {"FL2024-118"}, "site": {"LD"}, "route": {"IM"}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	for _, bad := range []struct {
		f    url.Values
		want string
	}{
		{form("vaccine", ""), "Choose the vaccine"},
		{form("vaccine", "999"), "Choose the vaccine"},
		{form("vaccine", "other", "other_code", "12a", "other_text", "x"), "CVX code is 1 to 3 digits"},
		{form("vaccine", "other", "other_code", "88"), "Name the vaccine"},
		{form("date", "2024-02-30"), "must be a date"},
		{form("date", "2999-01-01"), "cannot be in the future"},
		{form("given", "maybe"), "given here, reported, or not given"},
		{form("given", "not-done"), "reason it was not given"},
		{form("site", "NOSE"), "Choose a site"},
		{form("route", "XX"), "Choose a route"},
		{form("lot", strings.Repeat("9", 41)), "limited to 40"},
	} {
		if status, page := c.post(base, bad.f); status != 400 || !strings.Contains(page, bad.want) {
			t.Errorf("%v: %d, want 400 with %q", bad.f, status, bad.want)
		}
	}
	if n := e.count("Immunization", id); n != before {
		t.Fatalf("bad forms wrote %d immunizations", n-before)
	}
	status, page = c.post(base, form())
	if status != 200 || !strings.Contains(page, "Immunization recorded") || !strings.Contains(page, "FL2024-118") || !strings.Contains(page, "Left deltoid · Injection, intramuscular") {
		t.Fatalf("record: %d\n%s", status, page)
	}
	c.post(base, form("given", "reported", "vaccine", "other", "other_code", "88", "other_text", "influenza, unspecified formulation", "date", "2019-10-15", "lot", "", "site", "", "route", ""))
	c.post(base, form("given", "not-done", "vaccine", "187", "reason", "PATOBJ", "date", "2024-10-01"))
	var given, reported, refused map[string]any
	for _, im := range e.searchAll("Immunization", url.Values{"patient": {"Patient/" + id}, "date": {"ge2019-10-15"}}) {
		switch codeOf(get(im, "vaccineCode"), systemCVX) {
		case "150":
			given = im
		case "88":
			reported = im
		case "187":
			refused = im
		}
	}
	if given == nil || str(given, "status") != "completed" || get(given, "primarySource") != true || str(given, "lotNumber") != "FL2024-118" ||
		codeOf(get(given, "site"), "http://terminology.hl7.org/CodeSystem/v3-ActSite") != "LD" ||
		codeOf(get(given, "route"), "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration") != "IM" ||
		str(given, "performer", "0", "actor", "reference") != e.prac || str(given, "occurrenceDateTime") != "2024-10-01" {
		t.Errorf("given here: %v", given)
	}
	if reported == nil || get(reported, "primarySource") != false || str(reported, "reportOrigin", "coding", "0", "code") != "provider" || reported["performer"] != nil {
		t.Errorf("reported: %v", reported)
	}
	if refused == nil || str(refused, "status") != "not-done" || codeOf(get(refused, "statusReason"), "http://terminology.hl7.org/CodeSystem/v3-ActReason") != "PATOBJ" {
		t.Errorf("not given: %v", refused)
	}
	_, page = c.get(base)
	if !strings.Contains(page, "Not given</span>: Patient objection") || !strings.Contains(page, "Reported (Other provider)") {
		t.Error("the list does not show the refusal or the reported one")
	}
	// The summary lists them, newest first.
	if _, page = c.get("/app/patients/" + id); !strings.Contains(page, "Influenza, injectable, quadrivalent, preservative free") {
		t.Error("the summary does not show the new immunization")
	}
	// The front desk may not record immunizations.
	fd := e.client()
	ftok := csrf(t, fd.loginAs("front.desk", e.addUser("front.desk", hale.RoleFrontDesk)))
	if _, page := fd.get(base); strings.Contains(page, "Record an immunization") {
		t.Error("front desk offered the form")
	}
	f := form()
	f.Set("csrf", ftok)
	if status, _ := fd.post(base, f); status == 200 || status == 303 {
		t.Errorf("front desk records an immunization: %d", status)
	}
	if n := e.count("Immunization", id); n != before+3 {
		t.Errorf("%d immunizations, want %d", n, before+3)
	}
}

// TestProcedures: the Synthea procedures are listed; a catalog entry, an
// "other" SNOMED CT code with only a year, and a not-done one are
// stored as US Core has them; bad forms write nothing.
func TestProcedures(t *testing.T) { testProcedures(t, newEnv(t)) }

// TestProceduresPostgres is TestProcedures on PostgreSQL (skipped without a server, failed
// with CI=true).
func TestProceduresPostgres(t *testing.T) { testProcedures(t, newEnvOn(t, pgtest.Open(t))) }

func testProcedures(t *testing.T, e *env) {
	c := e.client()
	tok := csrf(t, c.login())
	id := e.patient("Kihn")
	base := "/app/patients/" + id + "/procedures"
	before := e.count("Procedure", id)
	if status, page := c.get(base); status != 200 || !strings.Contains(page, "Procedures ("+itoa(before)+")") || !strings.Contains(page, "Record a procedure") {
		t.Fatalf("procedures page: %d", status)
	}
	form := func(kv ...string) url.Values {
		f := url.Values{"csrf": {tok}, "catalog": {"appendectomy"}, "date": {"2015-06"}, "status": {"completed"}, "category": {"387713003"}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	for _, bad := range []struct {
		f    url.Values
		want string
	}{
		{form("catalog", ""), "Choose the procedure"},
		{form("catalog", "other", "code", "123", "text", "x"), "6 to 18 digits"},
		{form("catalog", "other", "code", "80146002"), "Name the procedure"},
		{form("date", ""), "Give when it was done"},
		{form("date", "06/2015"), "a month (2015-06)"},
		{form("date", "2015-13"), "a month (2015-06)"},
		{form("date", "2999"), "cannot be in the future"},
		{form("status", "done"), "Choose the status"},
		{form("status", "not-done"), "reason it was not done"},
		{form("category", "1"), "Choose a category"},
	} {
		if status, page := c.post(base, bad.f); status != 400 || !strings.Contains(page, bad.want) {
			t.Errorf("%v: %d, want 400 with %q", bad.f, status, bad.want)
		}
	}
	if n := e.count("Procedure", id); n != before {
		t.Fatalf("bad forms wrote %d procedures", n-before)
	}
	if status, page := c.post(base, form()); status != 200 || !strings.Contains(page, "Procedure recorded") || !strings.Contains(page, "Appendectomy") {
		t.Fatalf("record: %d", status)
	}
	c.post(base, form("catalog", "other", "code", "44946007", "text", "Arthroscopy of knee", "date", "2008", "category", ""))
	c.post(base, form("catalog", "colonoscopy", "status", "not-done", "reason", "Patient declined", "date", "", "category", "103693007"))
	byCode := map[string]map[string]any{}
	for _, p := range e.searchAll("Procedure", url.Values{"patient": {"Patient/" + id}, "_count": {"100"}}) {
		byCode[codeOf(get(p, "code"), systemSNOMED)] = p
	}
	if p := byCode["80146002"]; str(p, "status") != "completed" || str(p, "performedDateTime") != "2015-06" ||
		codeOf(get(p, "category"), systemSNOMED) != "387713003" || str(p, "recorder", "reference") != e.prac {
		t.Errorf("appendectomy: %v", p)
	}
	if p := byCode["44946007"]; str(p, "code", "text") != "Arthroscopy of knee" || str(p, "performedDateTime") != "2008" || p["category"] != nil {
		t.Errorf("other: %v", p)
	}
	if p := byCode["73761001"]; str(p, "status") != "not-done" || str(p, "statusReason", "text") != "Patient declined" || p["performedDateTime"] != nil {
		t.Errorf("not done: %v", p)
	}
	_, page := c.get(base)
	if !strings.Contains(page, "Procedures ("+itoa(before+3)+")") || !strings.Contains(page, "Not done</span>: Patient declined") {
		t.Error("list after recording")
	}
}

// TestFamilySocialHistory: family members' conditions are stored as
// FamilyMemberHistory (relationship, sex, coded condition, onset age,
// cause of death) and listed; bad forms write nothing; the smoking
// status recorded on the same page comes back to it.
func TestFamilySocialHistory(t *testing.T) { testFamilySocialHistory(t, newEnv(t)) }

// TestFamilySocialHistoryPostgres is TestFamilySocialHistory on PostgreSQL (skipped without a server, failed
// with CI=true).
func TestFamilySocialHistoryPostgres(t *testing.T) {
	testFamilySocialHistory(t, newEnvOn(t, pgtest.Open(t)))
}

func testFamilySocialHistory(t *testing.T, e *env) {
	c := e.client()
	tok := csrf(t, c.login())
	id := e.patient("Reinger")
	base := "/app/patients/" + id + "/history"
	if status, page := c.get(base); status != 200 || !strings.Contains(page, "No family history recorded") || !strings.Contains(page, "Social history") {
		t.Fatalf("history page: %d", status)
	}
	form := func(kv ...string) url.Values {
		f := url.Values{"csrf": {tok}, "relationship": {"MTH"}, "text": {"Type 2 diabetes mellitus"}, "system": {"snomed"}, "code": {"44054006"}, "onset": {"52"}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	for _, bad := range []struct {
		f    url.Values
		want string
	}{
		{form("relationship", "NEIGHBOR"), "Choose the relative"},
		{form("text", ""), "Name the condition"},
		{form("code", "E11"), "6 to 18 digits"},
		{form("system", "icd10", "code", "11"), "ICD-10-CM code"},
		{form("system", "loinc"), "SNOMED CT or ICD-10-CM"},
		{form("onset", "-3"), "0 to 120"},
		{form("onset", "fifty"), "0 to 120"},
	} {
		if status, page := c.post(base, bad.f); status != 400 || !strings.Contains(page, bad.want) {
			t.Errorf("%v: %d, want 400 with %q", bad.f, status, bad.want)
		}
	}
	if n := e.count("FamilyMemberHistory", id); n != 0 {
		t.Fatalf("bad forms wrote %d", n)
	}
	if status, page := c.post(base, form()); status != 200 || !strings.Contains(page, "Family history recorded") {
		t.Fatalf("record: %d", status)
	}
	c.post(base, form("relationship", "FTH", "text", "Myocardial infarction", "system", "icd10", "code", "i21.9", "onset", "61", "death", "yes"))
	c.post(base, form("relationship", "SIS", "text", "Asthma", "code", "", "onset", ""))
	byRel := map[string]map[string]any{}
	for _, f := range e.searchAll("FamilyMemberHistory", url.Values{"patient": {"Patient/" + id}}) {
		byRel[codeOf(get(f, "relationship"), "http://terminology.hl7.org/CodeSystem/v3-RoleCode")] = f
	}
	if m := byRel["MTH"]; str(m, "status") != "completed" || codeOf(get(m, "sex"), "") != "female" || codeOf(get(m, "condition", "0", "code"), systemSNOMED) != "44054006" ||
		get(m, "condition", "0", "onsetAge", "value") != 52.0 || str(m, "condition", "0", "onsetAge", "code") != "a" || m["deceasedBoolean"] != nil {
		t.Errorf("mother: %v", m)
	}
	if f := byRel["FTH"]; codeOf(get(f, "condition", "0", "code"), systemICD10) != "I21.9" || get(f, "condition", "0", "contributedToDeath") != true || f["deceasedBoolean"] != true {
		t.Errorf("father: %v", f)
	}
	if s := byRel["SIS"]; str(s, "condition", "0", "code", "text") != "Asthma" || get(s, "condition", "0", "code", "coding") != nil || get(s, "condition", "0", "onsetAge") != nil {
		t.Errorf("sister: %v", s)
	}
	_, page := c.get(base)
	for _, want := range []string{"Family history (3)", "Mother", "SNOMED CT 44054006", "Father", "Myocardial infarction", "ICD-10-CM I21.9", "Sister", "Asthma"} {
		if !strings.Contains(page, want) {
			t.Errorf("history page does not show %q", want)
		}
	}
	// The smoking status form here comes back here.
	status, page := c.post("/app/patients/"+id+"/smoking", url.Values{"csrf": {tok}, "status": {"8517006"}, "back": {"history"}})
	if status != 200 || !strings.Contains(page, "Family and social history") || !strings.Contains(page, "Smoking status recorded") || !strings.Contains(page, "Ex-smoker") {
		t.Errorf("smoking from the history page: %d", status)
	}
	if status, page = c.post("/app/patients/"+id+"/smoking", url.Values{"csrf": {tok}, "status": {"123"}, "back": {"history"}}); status != 400 ||
		!strings.Contains(page, "Family and social history") || !strings.Contains(page, "choose one of the statuses") {
		t.Errorf("bad smoking status from the history page: %d", status)
	}
}
