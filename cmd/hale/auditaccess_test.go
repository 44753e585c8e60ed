package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/rest"
)

// TestAuditTrailAccess: with the server's wiring (access policy and audit
// recorder together), writes by a scoped caller are audited, an admin
// reads the whole trail, a patient reads the records about their own
// record ("who looked at my record") and nobody else's, and a physician
// reads none.
func TestAuditTrailAccess(t *testing.T) {
	ctx := context.Background()
	store := sqliteStore(t)
	svc := rest.NewService(store)
	svc.Log = discardLogger()
	rec, err := newAuditRecorder(Config{Data: t.TempDir()}, store, svc, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	svc.Audit = rec
	go rec.Run()
	defer rec.Close(ctx)
	policy := &access.Policy{Params: svc.Params, Now: time.Now}
	svc.Access = policy.Access

	as := func(p *hale.Principal) context.Context { return hale.WithPrincipal(ctx, p) }
	system := as(&hale.Principal{Subject: "client/loader", Role: hale.RoleSystem, Scopes: []string{"system/*.cruds"}})
	do := func(c context.Context, method, typ, id, query string, body string) *rest.Response {
		t.Helper()
		req := &rest.Request{Method: method, Type: typ, ID: id, RawQuery: query}
		if body != "" {
			req.Body = []byte(body)
		}
		if query != "" {
			req.Query, _ = url.ParseQuery(query)
		}
		resp, err := svc.Do(c, req)
		if err != nil {
			t.Fatalf("%s %s/%s?%s: %v", method, typ, id, query, err)
		}
		return resp
	}
	org := strings.Split(do(system, "POST", "Organization", "", "", `{"resourceType":"Organization","name":"A"}`).Location, "/")[1]
	var pats []string
	for _, name := range []string{"One", "Two"} {
		loc := do(system, "POST", "Patient", "", "", `{"resourceType":"Patient","name":[{"family":"`+name+`"}],"managingOrganization":{"reference":"Organization/`+org+`"}}`).Location
		pats = append(pats, strings.Split(loc, "/")[1])
	}
	doctor := as(&hale.Principal{Subject: "user/dr", Role: hale.RolePhysician, Organizations: []string{org}})
	do(doctor, "GET", "Patient", pats[0], "", "")
	do(doctor, "POST", "Observation", "", "", `{"resourceType":"Observation","status":"final","code":{"text":"pulse"},"subject":{"reference":"Patient/`+pats[1]+`"}}`)
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	total := func(c context.Context, query string) int {
		var b struct{ Total int }
		body, err := do(c, "GET", "AuditEvent", "", query+"&_total=accurate", "").JSON()
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(body, &b)
		return b.Total
	}
	admin := as(&hale.Principal{Subject: "user/admin", Role: hale.RoleAdmin})
	patientOne := as(&hale.Principal{Subject: "user/p1", Role: hale.RolePatient, Patient: pats[0], FHIRUser: "Patient/" + pats[0]})
	if n := total(admin, "patient="+pats[0]); n < 2 {
		t.Errorf("admin: %d records about patient one, want its create and the doctor's read", n)
	}
	if n := total(admin, "agent:identifier=user/dr"); n < 2 {
		t.Errorf("admin: %d records of the doctor, want the read and the audited create", n)
	}
	if n := total(patientOne, "agent:identifier=user/dr"); n != 1 {
		t.Errorf("patient one: %d records of the doctor, want 1 (the read of their record)", n)
	}
	if n := total(patientOne, "patient="+pats[1]); n != 0 {
		t.Errorf("patient one sees %d records about patient two", n)
	}
	if n := total(doctor, "patient="+pats[0]); n != 0 {
		t.Errorf("the physician sees %d audit records", n)
	}
}

// TestExportAudited: a Bulk Data kick-off and each file download are
// recorded in the audit trail, with the client as the actor.
func TestExportAudited(t *testing.T) {
	ctx := context.Background()
	store := sqliteStore(t)
	svc := rest.NewService(store)
	svc.Log = discardLogger()
	rec, err := newAuditRecorder(Config{Data: t.TempDir()}, store, svc, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	svc.Audit = rec
	go rec.Run()
	defer rec.Close(ctx)
	client := &hale.Principal{Subject: "client/exporter", Role: hale.RoleSystem, Scopes: []string{"system/*.rs"}}
	h := svc.Handler("/fhir")
	call := func(method, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Prefer", "respond-async")
		r.Header.Set("Accept", "application/fhir+json")
		r = r.WithContext(hale.WithPrincipal(r.Context(), client))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if _, err := svc.Do(hale.WithPrincipal(ctx, client), &rest.Request{Method: "POST", Type: "Patient",
		Body: []byte(`{"resourceType":"Patient","name":[{"family":"Bulk"}]}`)}); err != nil {
		t.Fatal(err)
	}
	if w := call("GET", "/fhir/$export"); w.Code != 202 {
		t.Fatalf("kick-off: %d %s", w.Code, w.Body)
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var n int64
	err = store.View(ctx, func(r hale.Reader) error {
		page, err := r.(hale.AuditReader).SearchAudit(ctx, &hale.AuditQuery{Count: 10, Total: true,
			Where: []hale.AuditCondition{{Field: hale.AuditAgent, Values: []string{"client/exporter"}}}})
		if err == nil {
			n = page.Total
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 { // the create and the kick-off
		t.Errorf("%d audit records of the client, want 2 (the create and the export kick-off)", n)
	}
}
