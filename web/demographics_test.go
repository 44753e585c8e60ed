package web

import (
	"github.com/hale-ehr/hale/postgres/pgtest"
	"net/url"
	"strings"
	"testing"
)

// demoForm is the demographics form as the page shows it for patient id,
// with kv changed.
func demoForm(t *testing.T, c *client, id string, kv ...string) url.Values {
	t.Helper()
	status, page := c.get("/app/patients/" + id + "/demographics")
	if status != 200 {
		t.Fatalf("demographics page: %d", status)
	}
	f := url.Values{"csrf": {csrf(t, page)}, "version": {noteVersionRE.FindStringSubmatch(page)[1]}}
	for _, m := range regexpMust(`<input id="d-[a-z]+" name="([a-z_]+)"(?: type="[a-z]+")? value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		f.Set(m[1], htmlUnescape(m[2]))
	}
	for _, m := range regexpMust(`name="race" value="([^"]+)" checked`).FindAllStringSubmatch(page, -1) {
		f.Add("race", m[1])
	}
	for _, sel := range []string{"gender", "language", "ethnicity"} {
		if m := regexpMust(`name="` + sel + `">(?:[^<]|<option[^>]*>[^<]*</option>)*?<option value="([^"]*)" selected`).FindStringSubmatch(page); m != nil {
			f.Set(sel, m[1])
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "race" {
			f["race"] = strings.Split(kv[i+1], ",")
			continue
		}
		f.Set(kv[i], kv[i+1])
	}
	return f
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&quot;", `"`).Replace(s)
}

// TestEditDemographics: the chart's demographics form shows the patient
// as stored; saving changes only what was changed (the Synthea
// extensions, identifiers and name prefix stay); a form drawn from an
// older version is not saved over someone else's change but comes back
// merged (their change in, both-changed fields listed), and saving it then
// keeps both; bad values are refused with a message per field and write
// nothing.
func TestEditDemographics(t *testing.T) { testEditDemographics(t, newEnv(t)) }

// TestEditDemographicsPostgres is TestEditDemographics on PostgreSQL (skipped without a server, failed
// with CI=true).
func TestEditDemographicsPostgres(t *testing.T) { testEditDemographics(t, newEnvOn(t, pgtest.Open(t))) }

func testEditDemographics(t *testing.T, e *env) {
	c := e.client()
	c.login()
	id := e.patient("Reinger")
	before := e.read("Patient", id)

	f := demoForm(t, c, id)
	if f.Get("family") != "Reinger" || f.Get("given") != "Bill" || f.Get("birthdate") != "1992-12-25" || f.Get("gender") != "male" ||
		f.Get("phone") != "555-274-1339" || f.Get("language") != "en-US" || f.Get("race") != "2106-3" || f.Get("ethnicity") != "2186-5" {
		t.Fatalf("form as drawn: %v", f)
	}
	// Nothing changed: nothing written.
	if status, page := c.post("/app/patients/"+id+"/demographics", f); status != 200 || !strings.Contains(page, "Nothing was changed") {
		t.Errorf("unchanged save: %d %v\n%s", status, f, page)
	}
	f = demoForm(t, c, id, "phone", "617-555-0100", "mobile", "617-555-0101", "email", "bill@example.org", "line", "1 Main St", "city", "Boston",
		"state", "ma", "zip", "02110", "language", "es", "race", "2106-3,2028-9", "contact_name", "Ann Reinger", "contact_relation", "Sister",
		"contact_phone", "617-555-0102")
	status, page := c.post("/app/patients/"+id+"/demographics", f)
	if status != 200 || !strings.Contains(page, "Demographics saved") {
		t.Fatalf("save: %d\n%s", status, page)
	}
	p := e.read("Patient", id)
	if str(p, "meta", "versionId") != "2" || phone(p) != "617-555-0100" || str(mobilePhone(p), "value") != "617-555-0101" ||
		str(emailOf(p), "value") != "bill@example.org" || str(homeAddress(p), "line", "0") != "1 Main St" || str(homeAddress(p), "state") != "MA" ||
		str(homeAddress(p), "postalCode") != "02110" || codeOf(get(preferredLanguage(p), "language"), "urn:ietf:bcp:47") != "es" ||
		strings.Join(ombCodes(extension(p, extRace)), ",") != "2028-9,2106-3" || str(emergencyContact(p), "name", "text") != "Ann Reinger" {
		t.Errorf("stored: %v", p)
	}
	// What the form does not show, or did not change, is kept.
	if len(list(p, "identifier")) != len(list(before, "identifier")) || mrn(p) != mrn(before) ||
		str(p, "name", "0", "prefix", "0") != "Mr." || extension(p, "http://hl7.org/fhir/StructureDefinition/patient-birthPlace") == nil ||
		extension(p, extEthnicity) == nil || len(list(p, "extension")) != len(list(before, "extension")) {
		t.Errorf("lost data: %v", p)
	}
	if extension(homeAddress(p), "http://hl7.org/fhir/StructureDefinition/geolocation") != nil {
		t.Error("the old address's geolocation kept")
	}

	// A concurrent edit: the form is drawn at version 2; meanwhile the
	// phone and the family name are changed through the API.
	mine := demoForm(t, c, id, "family", "Reinger-Smith", "email", "b.reinger@example.org")
	other := e.read("Patient", id)
	other["telecom"].([]any)[0].(map[string]any)["value"] = "617-555-0199"
	other["name"].([]any)[0].(map[string]any)["family"] = "Rainger"
	putJSON(t, e.loader, "Patient", id, other)
	status, page = c.post("/app/patients/"+id+"/demographics", mine)
	if status != 409 || !strings.Contains(page, "Someone else saved this patient") || !strings.Contains(page, "617-555-0199") ||
		!strings.Contains(page, "Changed by both of you") || !strings.Contains(page, "Rainger") {
		t.Fatalf("conflict: %d\n%s", status, page)
	}
	if v := str(e.read("Patient", id), "meta", "versionId"); v != "3" {
		t.Fatalf("the conflicting save wrote version %s", v)
	}
	// The page's form: their phone, my name and e-mail, at version 3.
	merged := url.Values{"csrf": mine["csrf"]}
	for _, m := range regexpMust(`<input id="d-[a-z]+" name="([a-z_]+)"(?: type="[a-z]+")? value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		merged.Set(m[1], htmlUnescape(m[2]))
	}
	merged.Set("version", noteVersionRE.FindStringSubmatch(page)[1])
	merged["race"], merged["gender"], merged["language"], merged["ethnicity"], merged["birthdate"] = mine["race"], mine["gender"], mine["language"], mine["ethnicity"], mine["birthdate"]
	if merged.Get("phone") != "617-555-0199" || merged.Get("family") != "Reinger-Smith" || merged.Get("email") != "b.reinger@example.org" || merged.Get("version") != "3" {
		t.Fatalf("merged form: %v", merged)
	}
	if status, _ = c.post("/app/patients/"+id+"/demographics", merged); status != 200 {
		t.Fatalf("saving the merged form: %d", status)
	}
	p = e.read("Patient", id)
	if phone(p) != "617-555-0199" || str(officialName(p), "family") != "Reinger-Smith" || str(emailOf(p), "value") != "b.reinger@example.org" {
		t.Errorf("after the merge: %v", p)
	}

	// Bad values: a message per field, nothing written.
	version := str(p, "meta", "versionId")
	for _, bad := range []struct{ k, v, want string }{
		{"birthdate", "1992-13-01", "Birth date must be a date"},
		{"birthdate", "2999-01-01", "not plausible"},
		{"family", "", "Required"},
		{"gender", "robot", "Choose the sex"},
		{"mrn", "", "cannot be removed"},
		{"mrn", "A B", "without spaces"},
		{"email", "not-an-address", "e-mail address is not valid"},
		{"mobile", "12", "phone number is not valid"},
		{"zip", "ABCDE", "Five digits"},
		{"race", "UNK,2106-3", "cannot be combined"},
		{"language", "xx", "Choose a language"},
		{"contact_phone", "", "name and phone, or neither"},
	} {
		status, page := c.post("/app/patients/"+id+"/demographics", demoForm(t, c, id, bad.k, bad.v))
		if status != 400 || !strings.Contains(page, bad.want) || !strings.Contains(page, "The changes were not saved") {
			t.Errorf("%s=%q: %d, want 400 with %q", bad.k, bad.v, status, bad.want)
		}
	}
	if v := str(e.read("Patient", id), "meta", "versionId"); v != version {
		t.Errorf("bad forms wrote version %s", v)
	}
	// A patient the user may not see.
	hidden := e.post(map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Hidden"}}})
	if status, _ := c.get("/app/patients/" + hidden + "/demographics"); status != 404 {
		t.Errorf("hidden patient's demographics: %d", status)
	}
	f = demoForm(t, c, id)
	f.Set("version", "1")
	if status, _ := c.post("/app/patients/"+hidden+"/demographics", f); status != 404 {
		t.Errorf("saving a hidden patient: %d", status)
	}
}
