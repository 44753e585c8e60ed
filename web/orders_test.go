package web

import (
	"net/url"
	"strings"
	"testing"
)

// TestOrders: lab and imaging orders are written as ServiceRequests,
// drafts are not sent until signed, and status moves only along draft →
// active → completed or to revoked; a bad form writes nothing.
func TestOrders(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	tok := csrf(t, c.login())
	id := e.patient("Reinger")
	base := "/app/patients/" + id + "/orders"
	if _, page := c.get(base); !strings.Contains(page, "No open orders") || !strings.Contains(page, "Hemoglobin A1c (LOINC 4548-4)") {
		t.Fatal("orders page")
	}
	status, page := c.post(base, url.Values{"csrf": {tok}, "catalog": {"a1c"}, "priority": {"routine"}, "reason": {"Diabetes monitoring"}, "action": {"sign"}})
	if status != 200 || !strings.Contains(page, "Order signed and sent") || !strings.Contains(page, "Hemoglobin A1c") {
		t.Fatalf("lab order: %d", status)
	}
	status, page = c.post(base, url.Values{"csrf": {tok}, "catalog": {"other"}, "category": {"imaging"}, "system": {"cpt"}, "code": {"73030"},
		"text": {"X-ray shoulder, 2 views"}, "priority": {"urgent"}, "action": {"draft"}})
	if status != 200 || !strings.Contains(page, "saved as a draft") || !strings.Contains(page, "CPT 73030") {
		t.Fatalf("imaging draft: %d", status)
	}
	srs := e.searchAll("ServiceRequest", url.Values{"patient": {"Patient/" + id}, "_sort": {"authored"}})
	if len(srs) != 2 {
		t.Fatalf("%d ServiceRequests", len(srs))
	}
	lab, img := srs[0], srs[1]
	if str(lab, "status") != "active" || str(lab, "intent") != "order" || str(lab, "code", "coding", "0", "system") != systemLOINC ||
		str(lab, "category", "0", "coding", "0", "code") != "108252007" || str(lab, "requester", "reference") != e.prac || str(lab, "reasonCode", "0", "text") != "Diabetes monitoring" {
		t.Errorf("lab order: %v", lab)
	}
	if str(img, "status") != "draft" || str(img, "priority") != "urgent" || str(img, "category", "0", "coding", "0", "code") != "363679005" {
		t.Errorf("imaging order: %v", img)
	}
	move := func(sr map[string]any, to, reason string) (int, string) {
		cur := e.read("ServiceRequest", str(sr, "id"))
		return c.post(base+"/"+str(sr, "id")+"/status", url.Values{"csrf": {tok}, "version": {str(cur, "meta", "versionId")}, "to": {to}, "reason": {reason}})
	}
	if status, page = move(img, "completed", ""); status != 409 || !strings.Contains(page, "draft cannot become completed") {
		t.Errorf("draft → completed: %d", status)
	}
	if status, page = move(img, "active", ""); status != 200 || !strings.Contains(page, "Order signed and sent") {
		t.Errorf("draft → active: %d", status)
	}
	if status, page = move(img, "revoked", "Patient declined"); status != 200 || !strings.Contains(page, "Order cancelled") || !strings.Contains(page, "Patient declined") {
		t.Errorf("active → revoked: %d", status)
	}
	if status, _ = move(img, "active", ""); status != 409 {
		t.Errorf("revoked → active: %d, want 409", status)
	}
	if status, page = move(lab, "completed", ""); status != 200 || !strings.Contains(page, "Order marked completed") {
		t.Errorf("active → completed: %d", status)
	}
	closed := page[strings.Index(page, `id="closed-h"`):]
	if !strings.Contains(closed, "Completed and cancelled (2)") || !strings.Contains(closed, "cancelled") || !strings.Contains(closed, "completed") {
		t.Error("closed orders not listed")
	}
	// A stale version is refused.
	if status, _ = c.post(base+"/"+str(lab, "id")+"/status", url.Values{"csrf": {tok}, "version": {"1"}, "to": {"revoked"}}); status != 409 {
		t.Errorf("stale version: %d", status)
	}
	// Bad forms write nothing.
	for _, bad := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"catalog": {"nope"}, "priority": {"routine"}}, "Choose a test"},
		{url.Values{"catalog": {"cbc"}, "priority": {"whenever"}}, "Choose a priority"},
		{url.Values{"catalog": {"other"}, "category": {"lab"}, "system": {"loinc"}, "code": {"2345"}, "text": {"Glucose"}, "priority": {"routine"}}, "A LOINC code is"},
		{url.Values{"catalog": {"other"}, "category": {"lab"}, "system": {"cpt"}, "code": {"7104"}, "text": {"x"}, "priority": {"routine"}}, "A CPT code is"},
		{url.Values{"catalog": {"other"}, "category": {"xray"}, "system": {"loinc"}, "code": {"2345-7"}, "priority": {"routine"}}, "Choose lab or imaging"},
		{url.Values{"catalog": {"cbc"}, "priority": {"routine"}, "when": {"2001-01-01"}}, "cannot be in the past"},
	} {
		bad.form.Set("csrf", tok)
		if status, page := c.post(base, bad.form); status != 400 || !strings.Contains(page, bad.want) {
			t.Errorf("%v: %d, want 400 with %q", bad.form, status, bad.want)
		}
	}
	if n := e.count("ServiceRequest", id); n != 2 {
		t.Errorf("%d ServiceRequests after bad forms, want 2", n)
	}
}
