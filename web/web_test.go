package web

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/hale-ehr/hale/rest"
)

// TestSignIn: the password step, then the code step; a wrong code and a
// wrong password are refused; sign-out ends the session.
func TestSignIn(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	status, page := c.get("/app/")
	if status != 200 || !strings.Contains(page, `name="password"`) {
		t.Fatalf("anonymous Home: %d, want the sign-in page", status)
	}
	_, page = c.get("/app/login")
	tok := tokenRE.FindStringSubmatch(page)[1]
	status, page = c.post("/app/login", url.Values{"token": {tok}, "username": {testUser}, "password": {"wrong password!!"}})
	if status != 401 || !strings.Contains(page, "not correct") {
		t.Fatalf("wrong password: %d", status)
	}
	tok = tokenRE.FindStringSubmatch(page)[1]
	_, page = c.post("/app/login", url.Values{"token": {tok}, "username": {testUser}, "password": {testPassword}})
	ticket := ticketRE.FindStringSubmatch(page)
	if ticket == nil || strings.Contains(page, testPassword) {
		t.Fatalf("code step missing, or the password is in the page")
	}
	tok = tokenRE.FindStringSubmatch(page)[1]
	status, page = c.post("/app/login", url.Values{"token": {tok}, "step": {"code"}, "ticket": {ticket[1]}, "code": {"000000"}})
	if status != 401 || !strings.Contains(page, "code is not correct") {
		t.Fatalf("wrong code: %d", status)
	}
	// A forged ticket is refused.
	tok = tokenRE.FindStringSubmatch(page)[1]
	status, _ = c.post("/app/login", url.Values{"token": {tok}, "step": {"code"}, "ticket": {"AAAA" + ticket[1][4:]}, "code": {e.totp(0)}})
	if status != 401 {
		t.Fatalf("forged ticket: %d", status)
	}
	page = c.login()
	if !strings.Contains(page, testUser) {
		t.Fatal("Home does not name the user")
	}
	status, _ = c.post("/app/logout", url.Values{"csrf": {"forged"}})
	if status != 403 {
		t.Fatalf("logout with a bad token: %d", status)
	}
	status, page = c.post("/app/logout", url.Values{"csrf": {csrf(t, page)}})
	if status != 200 || !strings.Contains(page, "You have signed out") {
		t.Fatalf("logout: %d", status)
	}
	if _, page = c.get("/app/"); !strings.Contains(page, `name="password"`) {
		t.Fatal("Home after sign-out is not the sign-in page")
	}
}

// TestLoginCSRF: the sign-in form needs its pre-session token.
func TestLoginCSRF(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	status, _ := c.post("/app/login", url.Values{"token": {"x"}, "username": {testUser}, "password": {testPassword}})
	if status != 403 {
		t.Fatalf("sign-in without the form's token: %d, want 403", status)
	}
}

// TestWritesNeedCSRF: a state-changing request without the session's
// token, or from another origin, changes nothing.
func TestWritesNeedCSRF(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	home := c.login()
	id := e.patient("Reinger")
	form := url.Values{"system": {"icd10"}, "code": {"E11.9"}, "text": {"Refused-request marker"}}
	for _, tok := range []string{"", "forged", csrfToken("another session")} {
		form.Set("csrf", tok)
		if status, _ := c.post("/app/patients/"+id+"/problems", form); status != 403 {
			t.Errorf("token %q: %d, want 403", tok, status)
		}
	}
	form.Set("csrf", csrf(t, home))
	req, _ := newPost(e.srv.URL+"/app/patients/"+id+"/problems", form)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("cross-origin post: %d, want 403", resp.StatusCode)
	}
	if _, page := c.get("/app/patients/" + id + "/problems"); strings.Contains(page, "Refused-request marker") {
		t.Fatal("a refused request added the problem")
	}
}

// TestHostileText: names and free text with markup are shown as text,
// never as HTML, on every screen that shows them.
func TestHostileText(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.patient("Reinger")
	resp, err := e.loader.Do(ctx, &rest.Request{Method: "GET", Type: "Patient", ID: id})
	if err != nil {
		t.Fatal(err)
	}
	p := decode(t, resp.Body)
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`
	p["name"] = []any{map[string]any{"use": "official", "family": evil, "given": []any{`"><svg onload=alert(3)>`}}}
	p["identifier"] = append(p["identifier"].([]any), map[string]any{"type": map[string]any{"coding": []any{map[string]any{"code": "MR"}}}, "value": "<b>MRN</b>"})
	putJSON(t, e.loader, "Patient", id, p)
	c := e.client()
	home := c.login()
	tok := csrf(t, home)
	c.post("/app/patients/"+id+"/allergies", url.Values{"csrf": {tok}, "substance": {evil}, "type": {"allergy"}, "category": {"food"},
		"criticality": {"high"}, "reaction": {"<i>hives</i>"}, "severity": {"severe"}})
	c.post("/app/patients/"+id+"/problems", url.Values{"csrf": {tok}, "system": {"icd10"}, "code": {"E11.9"}, "text": {evil}})
	c.post("/app/patients/"+id+"/immunizations", url.Values{"csrf": {tok}, "given": {"here"}, "vaccine": {"other"}, "other_code": {"88"},
		"other_text": {evil}, "date": {"2024-01-02"}, "lot": {"<b>lot"}})
	c.post("/app/patients/"+id+"/procedures", url.Values{"csrf": {tok}, "catalog": {"other"}, "code": {"80146002"}, "text": {evil}, "date": {"2001"}, "status": {"completed"}})
	c.post("/app/patients/"+id+"/history", url.Values{"csrf": {tok}, "relationship": {"MTH"}, "text": {evil}})
	for _, path := range []string{"", "/vitals", "/problems", "/allergies", "/medications", "/notes", "/orders", "/visits", "/immunizations", "/procedures", "/history", "/demographics"} {
		status, page := c.get("/app/patients/" + id + path)
		if status != 200 {
			t.Fatalf("%s: %d", path, status)
		}
		for _, bad := range []string{"<script>alert", "<img src=x", "<svg onload", "<b>MRN", "<i>hives", "<b>lot"} {
			if strings.Contains(page, bad) {
				t.Errorf("chart%s: markup from the record is in the page: %q", path, bad)
			}
		}
		if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("chart%s: the hostile name is not shown escaped", path)
		}
		if (path == "/immunizations" || path == "/procedures" || path == "/history") && strings.Count(page, "&lt;script&gt;alert(1)&lt;/script&gt;") < 2 {
			t.Errorf("chart%s: the hostile record is not shown (escaped)", path)
		}
	}
	_, page := c.get("/app/patients?name=" + url.QueryEscape("<script>"))
	if strings.Contains(page, "<script>alert") {
		t.Error("search results contain markup")
	}
	_, page = c.get("/app/")
	if strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;script&gt;") {
		t.Error("Home (recent patients) does not escape the name")
	}
}

// TestValidation: bad input gets a clear message and writes nothing.
func TestValidation(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	tok := csrf(t, c.login())
	id := e.patient("Reinger")
	cases := []struct {
		path string
		form url.Values
		want string
	}{
		{"vitals", url.Values{"systolic": {"120"}}, "Enter both systolic and diastolic"},
		{"vitals", url.Values{"systolic": {"80"}, "diastolic": {"120"}}, "Diastolic pressure must be lower"},
		{"vitals", url.Values{"hr": {"abc"}}, "Heart rate must be a number"},
		{"vitals", url.Values{"temp": {"98.6"}, "temp_unit": {"Cel"}}, "Temperature must be between 25 and 45"},
		{"vitals", url.Values{"spo2": {"101"}}, "SpO2 must be between"},
		{"vitals", url.Values{}, "Enter at least one vital sign"},
		{"vitals", url.Values{"hr": {"70"}, "taken": {"2999-01-01T10:00"}}, "cannot be in the future"},
		{"problems", url.Values{"system": {"icd10"}, "code": {"12345"}, "text": {"x"}}, "An ICD-10-CM code is"},
		{"problems", url.Values{"system": {"snomed"}, "code": {"E11"}, "text": {"x"}}, "A SNOMED CT concept id"},
		{"problems", url.Values{"system": {"icd10"}, "code": {"E11.9"}}, "Describe the problem"},
		{"problems", url.Values{"system": {"loinc"}, "code": {"E11.9"}, "text": {"x"}}, "Choose ICD-10-CM or SNOMED CT"},
		{"allergies", url.Values{"type": {"allergy"}, "category": {"food"}, "criticality": {"low"}}, "Name the substance"},
		{"allergies", url.Values{"substance": {"Peanut"}, "type": {"allergy"}, "category": {"weather"}, "criticality": {"low"}}, "Choose a category"},
		{"allergies", url.Values{"substance": {"Peanut"}, "type": {"allergy"}, "category": {"food"}, "criticality": {"extreme"}}, "Choose the criticality"},
	}
	count := func() int {
		n := 0
		for _, typ := range []string{"Observation", "Condition", "AllergyIntolerance"} {
			resp, _ := e.loader.Do(context.Background(), &rest.Request{Method: "GET", Type: typ, Query: url.Values{"patient": {id}, "_summary": {"count"}}})
			b, _ := body(resp)
			n += int(decode(t, b)["total"].(float64))
		}
		return n
	}
	before := count()
	for _, tc := range cases {
		tc.form.Set("csrf", tok)
		if tc.path == "vitals" && tc.form.Get("taken") == "" {
			tc.form.Set("taken", "2024-01-01T10:00")
		}
		status, page := c.post("/app/patients/"+id+"/"+tc.path, tc.form)
		if status != 400 || !strings.Contains(page, tc.want) {
			t.Errorf("%s %v: %d, want 400 with %q", tc.path, tc.form, status, tc.want)
		}
	}
	if after := count(); after != before {
		t.Errorf("rejected forms wrote %d resources", after-before)
	}
}

// TestAccessScoped: the app shows only what the access policy lets the
// user see: a patient of another organization is not found, and a
// form posted for it writes nothing.
func TestAccessScoped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	resp, err := e.loader.Do(ctx, &rest.Request{Method: "POST", Type: "Patient", Return: rest.ReturnMinimal,
		Body: []byte(`{"resourceType":"Patient","name":[{"family":"Hidden","given":["Harriet"]}],"birthDate":"1970-01-01"}`)})
	if err != nil {
		t.Fatal(err)
	}
	hidden := strings.Split(resp.Location, "/")[1]
	c := e.client()
	tok := csrf(t, c.login())
	if status, _ := c.get("/app/patients/" + hidden); status != 404 {
		t.Errorf("chart of a patient outside the user's organizations: %d, want 404", status)
	}
	if _, page := c.get("/app/patients?name=Hidden"); !strings.Contains(page, "No patient matches") {
		t.Error("search finds a patient outside the user's organizations")
	}
	status, _ := c.post("/app/patients/"+hidden+"/allergies", url.Values{"csrf": {tok}, "substance": {"Peanut"}, "type": {"allergy"},
		"category": {"food"}, "criticality": {"low"}})
	if status == 303 || status == 200 {
		t.Errorf("allergy for a hidden patient: %d", status)
	}
	r2, _ := e.loader.Do(ctx, &rest.Request{Method: "GET", Type: "AllergyIntolerance", Query: url.Values{"patient": {hidden}}})
	b, _ := body(r2)
	if decode(t, b)["entry"] != nil {
		t.Error("an allergy was written for a patient the user cannot see")
	}
}
