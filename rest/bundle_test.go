package rest_test

import (
	"encoding/base64"
	"strings"
	"testing"
)

const txBundle = `{"resourceType":"Bundle","type":"transaction","entry":[
 {"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a","resource":{"resourceType":"Observation","status":"final","code":{"text":"bp"},
   "subject":{"reference":"urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059"},
   "extension":[{"url":"http://example.org/ext","valueReference":{"reference":"urn:oid:1.2.3.4"}}],
   "contained":[{"resourceType":"Provenance","id":"p1","recorded":"2020-01-01T00:00:00Z","target":[{"reference":"#"}],"agent":[{"who":{"reference":"urn:oid:1.2.3.4"}},{"who":{"reference":"urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059"}}]}],
   "text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059\">patient</a></div>"}},
  "request":{"method":"POST","url":"Observation"}},
 {"fullUrl":"urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059","resource":{"resourceType":"Patient","name":[{"family":"Tx"}]},
  "request":{"method":"POST","url":"Patient"}},
 {"fullUrl":"urn:oid:1.2.3.4","resource":{"resourceType":"Practitioner","id":"pr1","name":[{"family":"Who"}]},
  "request":{"method":"PUT","url":"Practitioner/pr1"}}
]}`

func TestTransaction(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		r := c.do("POST", "", txBundle).want(t, 200)
		if r.body["type"] != "transaction-response" || len(entries(r)) != 3 {
			t.Fatalf("response: %s", r.raw)
		}
		// Response entries are in request order.
		obsLoc := str(get(entries(r)[0], "response", "location"))
		patLoc := str(get(entries(r)[1], "response", "location"))
		if !strings.HasPrefix(obsLoc, "Observation/") || !strings.HasPrefix(patLoc, "Patient/") {
			t.Fatalf("locations %q %q", obsLoc, patLoc)
		}
		if get(entries(r)[0], "response", "status") != "201 Created" || get(entries(r)[2], "response", "status") != "201 Created" {
			t.Errorf("statuses: %s", r.raw)
		}
		patRef := strings.Join(strings.Split(patLoc, "/")[:2], "/")
		obs := c.do("GET", "/"+strings.Join(strings.Split(obsLoc, "/")[:2], "/"), nil).want(t, 200)
		if get(obs.body, "subject", "reference") != patRef {
			t.Errorf("subject not rewritten: %v", get(obs.body, "subject"))
		}
		if get(obs.body, "extension", 0, "valueReference", "reference") != "Practitioner/pr1" {
			t.Errorf("urn:oid in extension not rewritten: %v", obs.body["extension"])
		}
		if get(obs.body, "contained", 0, "agent", 1, "who", "reference") != patRef || get(obs.body, "contained", 0, "agent", 0, "who", "reference") != "Practitioner/pr1" {
			t.Errorf("contained not rewritten: %v", obs.body["contained"])
		}
		if div := str(get(obs.body, "text", "div")); !strings.Contains(div, patRef) {
			t.Errorf("narrative link not rewritten: %s", div)
		}
		c.do("GET", "/Practitioner/pr1", nil).want(t, 200)
	})
}

func TestTransactionAllOrNothing(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		bad := strings.Replace(txBundle, `"name":[{"family":"Who"}]`, `"name":[{"family":"Who"}],"gender":"nope"`, 1)
		r := c.do("POST", "", bad).want(t, 400)
		if says := r.outcome(t); !strings.Contains(says, "Bundle.entry[2]") {
			t.Errorf("error does not name the entry: %s", says)
		}
		if n := c.count(t, ""); n != 0 {
			t.Errorf("failed transaction stored %d resources", n)
		}
		// An unresolvable urn:uuid reference fails the transaction.
		dangling := `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:00000000-0000-0000-0000-000000000000"}},"request":{"method":"POST","url":"Observation"}}]}`
		c.do("POST", "", dangling).want(t, 400).outcome(t)
		// Two entries writing one resource.
		twice := `{"resourceType":"Bundle","type":"transaction","entry":[
		  {"resource":{"resourceType":"Patient","id":"a"},"request":{"method":"PUT","url":"Patient/a"}},
		  {"resource":{"resourceType":"Patient","id":"a"},"request":{"method":"PUT","url":"Patient/a"}}]}`
		c.do("POST", "", twice).want(t, 400).outcome(t)
		// A failing If-Match inside rolls back the rest.
		c.do("PUT", "/Patient/a", `{"resourceType":"Patient","id":"a"}`).want(t, 201)
		ifMatch := `{"resourceType":"Bundle","type":"transaction","entry":[
		  {"resource":{"resourceType":"Patient","name":[{"family":"New"}]},"request":{"method":"POST","url":"Patient"}},
		  {"resource":{"resourceType":"Patient","id":"a","active":true},"request":{"method":"PUT","url":"Patient/a","ifMatch":"W/\"9\""}}]}`
		c.do("POST", "", ifMatch).want(t, 412).outcome(t)
		if n := c.count(t, "Patient"); n != 1 {
			t.Errorf("%d patients after a failed transaction, want 1", n)
		}
	})
}

func TestTransactionOrderAndConditionals(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		c.do("PUT", "/Patient/old", `{"resourceType":"Patient","id":"old","identifier":[{"system":"s","value":"old"}]}`).want(t, 201)
		c.do("PUT", "/Patient/keep", `{"resourceType":"Patient","id":"keep","identifier":[{"system":"s","value":"keep"}]}`).want(t, 201)
		b := `{"resourceType":"Bundle","type":"transaction","entry":[
		 {"request":{"method":"GET","url":"Patient?identifier=s|new"}},
		 {"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient?identifier=s|keep"}},"request":{"method":"POST","url":"Observation"}},
		 {"fullUrl":"urn:uuid:11111111-1111-1111-1111-111111111111","resource":{"resourceType":"Patient","identifier":[{"system":"s","value":"new"}]},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=s|new"}},
		 {"resource":{"resourceType":"Patient","identifier":[{"system":"s","value":"keep"}],"active":true},"request":{"method":"PUT","url":"Patient?identifier=s|keep"}},
		 {"request":{"method":"DELETE","url":"Patient?identifier=s|old"}}
		]}`
		r := c.do("POST", "", b).want(t, 200)
		e := entries(r)
		// The GET runs last, so it sees the patient the POST created.
		if get(e[0], "resource", "total") != float64(1) {
			t.Errorf("GET entry did not run after the writes: %v", e[0])
		}
		obs := c.do("GET", "/"+strings.Join(strings.Split(str(get(e[1], "response", "location")), "/")[:2], "/"), nil).want(t, 200)
		if get(obs.body, "subject", "reference") != "Patient/keep" {
			t.Errorf("conditional reference: %v", obs.body["subject"])
		}
		if get(e[3], "response", "location") != "Patient/keep/_history/2" {
			t.Errorf("conditional update in transaction: %v", e[3])
		}
		c.do("GET", "/Patient/old", nil).want(t, 410)
		// Again: the conditional create now matches and writes nothing.
		r = c.do("POST", "", strings.Replace(b, `{"request":{"method":"DELETE","url":"Patient?identifier=s|old"}}`, `{"request":{"method":"GET","url":"Patient/keep"}}`, 1)).want(t, 200)
		if get(entries(r)[2], "response", "status") != "200 OK" {
			t.Errorf("conditional create matched: %v", entries(r)[2])
		}
		bad := strings.Replace(b, "Patient?identifier=s|keep\"}},\"request\"", "Patient?identifier=s|none\"}},\"request\"", 1)
		c.do("POST", "", bad).want(t, 412).outcome(t)
	})
}

func TestBatch(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		b := `{"resourceType":"Bundle","type":"batch","entry":[
		 {"resource":{"resourceType":"Patient","name":[{"family":"Ok"}]},"request":{"method":"POST","url":"Patient"}},
		 {"resource":{"resourceType":"Patient","gender":"bad"},"request":{"method":"POST","url":"Patient"}},
		 {"request":{"method":"GET","url":"Patient/missing"}},
		 {"request":{"method":"GET","url":"metadata"}}
		]}`
		r := c.do("POST", "", b).want(t, 200)
		e := entries(r)
		if r.body["type"] != "batch-response" || len(e) != 4 {
			t.Fatalf("batch: %s", r.raw)
		}
		for i, want := range []string{"201 Created", "400 Bad Request", "404 Not Found", "200 OK"} {
			if got := get(e[i], "response", "status"); got != want {
				t.Errorf("entry %d: status %v, want %s", i, got, want)
			}
		}
		if get(e[1], "response", "outcome", "resourceType") != "OperationOutcome" {
			t.Errorf("failed entry has no outcome: %v", e[1])
		}
		if n := c.count(t, "Patient"); n != 1 {
			t.Errorf("%d patients, want 1", n)
		}
		c.do("POST", "", `{"resourceType":"Bundle","type":"collection"}`).want(t, 400)
		c.do("POST", "", `{"resourceType":"Patient"}`).want(t, 400)
	})
}

func TestTransactionPatchAndOutcomes(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		c.do("PUT", "/Patient/p", `{"resourceType":"Patient","id":"p"}`).want(t, 201)
		patch := base64.StdEncoding.EncodeToString([]byte(`[{"op":"add","path":"/active","value":true}]`))
		b := `{"resourceType":"Bundle","type":"transaction","entry":[
		 {"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"` + patch + `"},"request":{"method":"PATCH","url":"Patient/p"}},
		 {"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}`
		r := c.do("POST", "", b, "Prefer: return=OperationOutcome").want(t, 200)
		for i, e := range entries(r) {
			if get(e, "response", "outcome", "resourceType") != "OperationOutcome" || get(e, "resource") != nil {
				t.Errorf("entry %d: want an outcome and no resource: %v", i, e)
			}
		}
		if g := c.do("GET", "/Patient/p", nil).want(t, 200); g.body["active"] != true || get(g.body, "meta", "versionId") != "2" {
			t.Errorf("patch in transaction: %s", g.raw)
		}
		r = c.do("POST", "", strings.Replace(b, "Patient/p", "Patient/nope", 1), "Prefer: return=minimal").want(t, 404)
		r.outcome(t)
	})
}
