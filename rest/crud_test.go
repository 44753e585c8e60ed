package rest_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCreateRead(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		body := strings.Replace(patientJane, `"resourceType":"Patient"`, `"resourceType":"Patient","id":"ignored-by-create"`, 1)
		r := c.do("POST", "/Patient", body).want(t, 201)
		id := str(r.body["id"])
		if id == "" || id == "ignored-by-create" {
			t.Fatalf("create must assign the id, got %q", id)
		}
		if loc := r.header.Get("Location"); loc != c.base+"/Patient/"+id+"/_history/1" {
			t.Errorf("Location = %q", loc)
		}
		if et := r.header.Get("ETag"); et != `W/"1"` {
			t.Errorf("ETag = %q", et)
		}
		if _, err := http.ParseTime(r.header.Get("Last-Modified")); err != nil {
			t.Errorf("Last-Modified %q: %v", r.header.Get("Last-Modified"), err)
		}
		if get(r.body, "meta", "versionId") != "1" || get(r.body, "meta", "lastUpdated") == nil {
			t.Errorf("meta = %v", r.body["meta"])
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
			t.Errorf("Content-Type = %q", ct)
		}

		g := c.do("GET", "/Patient/"+id, nil).want(t, 200)
		if get(g.body, "name", 0, "given", 0) != "Jane" || g.body["birthDate"] != "1980-02-29" {
			t.Errorf("read back %s", g.raw)
		}
		if g.header.Get("ETag") != `W/"1"` {
			t.Errorf("read ETag = %q", g.header.Get("ETag"))
		}
		// Resource JSON starts with resourceType, like the spec's examples.
		if !strings.HasPrefix(string(g.raw), `{"resourceType":"Patient","id":"`+id+`","meta":`) {
			t.Errorf("element order: %.80s", g.raw)
		}

		c.do("GET", "/Patient/does-not-exist", nil).want(t, 404).outcome(t)
		c.do("GET", "/Patientx/1", nil).want(t, 404).outcome(t)
		c.do("GET", "/Patient/bad$id", nil).want(t, 400).outcome(t)
		c.do("HEAD", "/Patient/"+id, nil).want(t, 200)
	})
}

func TestConditionalRead(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		id := c.create(t, "Patient", patientJane)
		c.do("GET", "/Patient/"+id, nil, `If-None-Match: W/"1"`).want(t, 304)
		c.do("GET", "/Patient/"+id, nil, `If-None-Match: W/"2"`).want(t, 200)
		future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
		past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
		c.do("GET", "/Patient/"+id, nil, "If-Modified-Since: "+future).want(t, 304)
		c.do("GET", "/Patient/"+id, nil, "If-Modified-Since: "+past).want(t, 200)
		c.do("GET", "/Patient/"+id, nil, "If-Modified-Since: yesterday").want(t, 400).outcome(t)
	})
}

func TestUpdate(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		id := c.create(t, "Patient", patientJane)
		upd := `{"resourceType":"Patient","id":"` + id + `","gender":"other"}`
		r := c.do("PUT", "/Patient/"+id, upd).want(t, 200)
		if get(r.body, "meta", "versionId") != "2" || r.header.Get("ETag") != `W/"2"` {
			t.Errorf("update: %s %v", r.raw, r.header)
		}
		if r.body["name"] != nil {
			t.Errorf("update replaces the whole resource: %s", r.raw)
		}
		// vread both versions
		v1 := c.do("GET", "/Patient/"+id+"/_history/1", nil).want(t, 200)
		if v1.body["gender"] != "female" {
			t.Errorf("vread 1: %s", v1.raw)
		}
		c.do("GET", "/Patient/"+id+"/_history/2", nil).want(t, 200)
		c.do("GET", "/Patient/"+id+"/_history/3", nil).want(t, 404).outcome(t)
		c.do("GET", "/Patient/"+id+"/_history/x", nil).want(t, 404).outcome(t)

		// create-on-update with a client-chosen id
		r = c.do("PUT", "/Patient/chosen-1", `{"resourceType":"Patient","id":"chosen-1"}`).want(t, 201)
		if get(r.body, "meta", "versionId") != "1" {
			t.Errorf("create-on-update: %s", r.raw)
		}
		// id rules
		c.do("PUT", "/Patient/chosen-1", `{"resourceType":"Patient","id":"other"}`).want(t, 400).outcome(t)
		c.do("PUT", "/Patient/chosen-1", `{"resourceType":"Patient"}`).want(t, 400).outcome(t)
		c.do("PUT", "/Patient/chosen-1", `{"resourceType":"Observation","id":"chosen-1"}`).want(t, 400).outcome(t)
	})
}

func TestIfMatch(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		id := c.create(t, "Patient", patientJane)
		upd := `{"resourceType":"Patient","id":"` + id + `","active":true}`
		c.do("PUT", "/Patient/"+id, upd, `If-Match: W/"2"`).want(t, 412).outcome(t)
		c.do("PUT", "/Patient/"+id, upd, `If-Match: W/"1"`).want(t, 200)
		c.do("PUT", "/Patient/"+id, upd, `If-Match: W/"1"`).want(t, 412)
		c.do("PUT", "/Patient/"+id, upd, `If-Match: garbage`).want(t, 400)
		c.do("DELETE", "/Patient/"+id, nil, `If-Match: W/"1"`).want(t, 412)
		c.do("GET", "/Patient/"+id, nil).want(t, 200)
	})
}

func TestPrefer(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		r := c.do("POST", "/Patient", patientJane, "Prefer: return=minimal").want(t, 201)
		if len(r.raw) != 0 || r.header.Get("Location") == "" {
			t.Errorf("return=minimal: body %q, Location %q", r.raw, r.header.Get("Location"))
		}
		r = c.do("POST", "/Patient", patientJane, "Prefer: return=OperationOutcome").want(t, 201)
		r.outcome(t)
		r = c.do("POST", "/Patient", patientJane, "Prefer: return=representation").want(t, 201)
		if r.body["resourceType"] != "Patient" {
			t.Errorf("return=representation: %s", r.raw)
		}
	})
}

func TestPatch(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		id := c.create(t, "Patient", patientJane)
		p := `[{"op":"replace","path":"/gender","value":"male"},{"op":"add","path":"/name/0/given/-","value":"Q"},{"op":"test","path":"/birthDate","value":"1980-02-29"}]`
		r := c.do("PATCH", "/Patient/"+id, p, "Content-Type: application/json-patch+json").want(t, 200)
		if r.body["gender"] != "male" || get(r.body, "name", 0, "given", 1) != "Q" || get(r.body, "meta", "versionId") != "2" {
			t.Errorf("patched: %s", r.raw)
		}
		// A failed test op, a bad path, an invalid result or a changed id
		// change nothing.
		for _, bad := range []string{
			`[{"op":"test","path":"/gender","value":"female"}]`,
			`[{"op":"remove","path":"/nothing"}]`,
			`[{"op":"replace","path":"/gender","value":"not-a-gender"}]`,
			`[{"op":"replace","path":"/id","value":"other"}]`,
			`[{"op":"add","path":"/unknownElement","value":1}]`,
		} {
			c.do("PATCH", "/Patient/"+id, bad, "Content-Type: application/json-patch+json").want(t, 422).outcome(t)
		}
		c.do("PATCH", "/Patient/"+id, `{"op":"x"}`, "Content-Type: application/json-patch+json").want(t, 400)
		c.do("PATCH", "/Patient/"+id, p).want(t, 415)
		c.do("PATCH", "/Patient/nope", p, "Content-Type: application/json-patch+json").want(t, 404)
		if g := c.do("GET", "/Patient/"+id, nil); get(g.body, "meta", "versionId") != "2" {
			t.Errorf("failed patches wrote a version: %s", g.raw)
		}
	})
}

func TestDelete(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		id := c.create(t, "Patient", patientJane)
		r := c.do("DELETE", "/Patient/"+id, nil).want(t, 204)
		if r.header.Get("ETag") != `W/"2"` {
			t.Errorf("delete ETag %q", r.header.Get("ETag"))
		}
		c.do("GET", "/Patient/"+id, nil).want(t, 410).outcome(t)
		c.do("GET", "/Patient/"+id+"/_history/1", nil).want(t, 200)
		c.do("GET", "/Patient/"+id+"/_history/2", nil).want(t, 410)
		c.do("DELETE", "/Patient/"+id, nil).want(t, 204) // idempotent
		c.do("DELETE", "/Patient/never-was", nil).want(t, 204)
		h := c.do("GET", "/Patient/"+id+"/_history", nil).want(t, 200)
		entries, _ := h.body["entry"].([]any)
		if len(entries) != 2 || get(entries[0], "request", "method") != "DELETE" || get(entries[1], "resource", "id") != id {
			t.Errorf("history after delete: %s", h.raw)
		}
		// Updating a deleted resource brings it back as version 3.
		r = c.do("PUT", "/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`"}`).want(t, 201)
		if get(r.body, "meta", "versionId") != "3" {
			t.Errorf("resurrect: %s", r.raw)
		}
		r = c.do("DELETE", "/Patient/"+id, nil, "Prefer: return=OperationOutcome").want(t, 200)
		r.outcome(t)
	})
}
