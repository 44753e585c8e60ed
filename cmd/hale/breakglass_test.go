package main

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/auth"
)

// TestBreakGlassEndpoint is test 23 through the server: a nurse of
// another organization cannot reach the patient; asking without a reason
// is refused; with a reason the record opens, and the patient's
// organization gets a Communication about it.
func TestBreakGlassEndpoint(t *testing.T) {
	ts := startTestServer(t, Config{})
	ctx := context.Background()
	records := ts.s.store.(hale.Records)
	ts.s.policy = &access.Policy{Params: ts.s.fhir.Params, Grants: access.RecordGrants{Store: records}, Now: ts.s.fhir.Now}
	ts.s.fhir.Access = ts.s.policy.Access

	create := func(typ, body string) string {
		res := ts.do("POST", "/fhir/"+typ, body, ts.bearer())
		if res.StatusCode != 201 {
			b, _ := io.ReadAll(res.Body)
			t.Fatalf("create %s: %d %s", typ, res.StatusCode, b)
		}
		return strings.Split(strings.TrimPrefix(res.Header.Get("Location"), ts.base+"/"), "/")[1]
	}
	orgA := create("Organization", `{"resourceType":"Organization","name":"Clinic A"}`)
	orgB := create("Organization", `{"resourceType":"Organization","name":"Clinic B"}`)
	pat := create("Patient", `{"resourceType":"Patient","name":[{"family":"Glass"}],"managingOrganization":{"reference":"Organization/`+orgA+`"}}`)

	if _, err := ts.s.auth.AddUser(ctx, auth.NewUser{Username: "nurseb", Password: "a long nurse password", Role: hale.RoleNurse,
		Organizations: []string{orgB}}); err != nil {
		t.Fatal(err)
	}
	origin := strings.TrimSuffix(ts.base, "/fhir")
	form := url.Values{"username": {"nurseb"}, "password": {"a long nurse password"}}.Encode()
	res := ts.do("POST", "/auth/login", form, map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": origin})
	if res.StatusCode != 200 || len(res.Cookies()) != 1 {
		t.Fatalf("login: %d", res.StatusCode)
	}
	nurse := map[string]string{"Cookie": res.Cookies()[0].String(), "Origin": origin}
	read := func() int { return ts.do("GET", "/fhir/Patient/"+pat, "", nurse).StatusCode }
	btg := func(body string) int {
		h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
		for k, v := range nurse {
			h[k] = v
		}
		return ts.do("POST", "/access/break-glass", body, h).StatusCode
	}

	if got := read(); got != 404 {
		t.Fatalf("before break-the-glass: %d, want 404", got)
	}
	if got := btg("patient=" + pat); got != 400 {
		t.Errorf("without a reason: %d, want 400", got)
	}
	if got := read(); got != 404 {
		t.Errorf("after a refused break-the-glass: %d, want 404", got)
	}
	if got := ts.do("POST", "/access/break-glass", "patient="+pat+"&reason=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}).StatusCode; got != 401 {
		t.Errorf("anonymous break-the-glass: %d, want 401", got)
	}
	if got := btg("patient=" + pat + "&reason=" + url.QueryEscape("found unconscious, no records") + "&minutes=30"); got != 200 {
		t.Fatalf("with a reason: %d, want 200", got)
	}
	if got := read(); got != 200 {
		t.Errorf("after break-the-glass: %d, want 200", got)
	}

	// Clinic A is told.
	res = ts.do("GET", "/fhir/Communication?recipient=Organization/"+orgA, "", ts.bearer())
	var b struct {
		Total int
		Entry []struct {
			Resource struct {
				Payload []struct{ ContentString string }
			}
		}
	}
	json.NewDecoder(res.Body).Decode(&b)
	if b.Total != 1 || !strings.Contains(b.Entry[0].Resource.Payload[0].ContentString, "found unconscious") {
		t.Errorf("notification to the patient's organization: %+v", b)
	}
}
