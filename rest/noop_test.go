package rest_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/rest"
)

// versions returns how many versions the history of typ/id holds.
func versions(t *testing.T, c *client, typ, id string) int {
	t.Helper()
	var n int
	err := c.store.View(t.Context(), func(r hale.Reader) error {
		vs, err := r.History(t.Context(), hale.HistoryQuery{Type: typ, ID: id})
		n = len(vs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNoOpUpdate: under rest.SkipUnchanged an update whose content equals
// the current version apart from meta.versionId and meta.lastUpdated
// answers 200 with the current version and writes nothing; any other
// difference, a deleted resource, or no SkipUnchanged writes a version.
func TestNoOpUpdate(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		ctx := rest.SkipUnchanged(t.Context())
		put := func(ctx context.Context, body string, want int, headers ...string) *rest.Response {
			t.Helper()
			req := &rest.Request{Method: "PUT", Type: "Patient", ID: "p1", Body: []byte(body)}
			for i := 0; i+1 < len(headers); i += 2 {
				if headers[i] == "If-Match" {
					req.IfMatch = headers[i+1]
				}
			}
			resp, err := c.svc.Do(ctx, req)
			if err != nil {
				if want >= 400 {
					return nil
				}
				t.Fatalf("PUT %s: %v", body, err)
			}
			if resp.Status != want {
				t.Fatalf("PUT %s: status %d, want %d", body, resp.Status, want)
			}
			return resp
		}
		const jane = `{"resourceType":"Patient","id":"p1","name":[{"family":"Doe","given":["Jane"]}],"birthDate":"1980-02-29"}`
		first := put(ctx, jane, http.StatusCreated)
		again := put(ctx, jane, http.StatusOK)
		if again.ETag != first.ETag || !again.LastModified.Equal(first.LastModified) || string(again.Body) != string(first.Body) {
			t.Errorf("no-op answered %s %v, want the current version %s %v", again.ETag, again.LastModified, first.ETag, first.LastModified)
		}
		// Key order, whitespace and stale meta.versionId/lastUpdated are
		// not content.
		put(ctx, `{"birthDate":"1980-02-29", "resourceType":"Patient","meta":{"versionId":"7","lastUpdated":"2001-01-01T00:00:00Z"},
			"name":[{"given":["Jane"],"family":"Doe"}],"id":"p1"}`, http.StatusOK)
		if n := versions(t, c, "Patient", "p1"); n != 1 {
			t.Fatalf("%d versions after three identical PUTs, want 1", n)
		}
		// A wrong If-Match still fails: the precondition comes first.
		if put(ctx, jane, http.StatusPreconditionFailed, "If-Match", `W/"9"`) != nil {
			t.Errorf("If-Match W/\"9\" accepted")
		}

		// Any other difference is a new version: content, meta.profile.
		put(ctx, `{"resourceType":"Patient","id":"p1","name":[{"family":"Doe","given":["Jane"]}],"birthDate":"1980-03-01"}`, http.StatusOK)
		put(ctx, `{"resourceType":"Patient","id":"p1","meta":{"profile":["http://example.org/p"]},"name":[{"family":"Doe","given":["Jane"]}],"birthDate":"1980-03-01"}`, http.StatusOK)
		if n := versions(t, c, "Patient", "p1"); n != 3 {
			t.Errorf("%d versions, want 3", n)
		}

		// Without SkipUnchanged an identical PUT writes a version, as before.
		cur := c.do("GET", "/Patient/p1", nil).want(t, 200)
		put(t.Context(), string(cur.raw), http.StatusOK)
		if n := versions(t, c, "Patient", "p1"); n != 4 {
			t.Errorf("%d versions after a PUT without SkipUnchanged, want 4", n)
		}

		// After a delete the same content is created again.
		c.do("DELETE", "/Patient/p1", nil)
		put(ctx, string(cur.raw), http.StatusCreated)
		if n := versions(t, c, "Patient", "p1"); n != 6 {
			t.Errorf("%d versions after delete and PUT, want 6", n)
		}
	})
}

// TestNoOpTransaction: a transaction of PUTs sent twice under
// rest.SkipUnchanged adds no version the second time, and the entries
// answer with the versions already stored.
func TestNoOpTransaction(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		ctx := rest.SkipUnchanged(t.Context())
		bundle := `{"resourceType":"Bundle","type":"transaction","entry":[
			{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","id":"a","name":[{"family":"A"}]},"request":{"method":"PUT","url":"Patient/a"}},
			{"resource":{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:1"}},"request":{"method":"PUT","url":"Observation/o"}}]}`
		for run := 0; run < 3; run++ {
			for _, typ := range []string{"transaction", "batch"} {
				b := bundle
				if typ == "batch" {
					b = `{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient","id":"a","name":[{"family":"A"}]},"request":{"method":"PUT","url":"Patient/a"}}]}`
				}
				if _, err := c.svc.Do(ctx, &rest.Request{Method: "POST", Body: []byte(b), Return: rest.ReturnMinimal}); err != nil {
					t.Fatalf("run %d %s: %v", run, typ, err)
				}
			}
		}
		if a, o := versions(t, c, "Patient", "a"), versions(t, c, "Observation", "o"); a != 1 || o != 1 {
			t.Errorf("versions after three runs: Patient/a %d, Observation/o %d; want 1 and 1", a, o)
		}
		if r := c.do("GET", "/Observation/o", nil).want(t, 200); get(r.body, "subject", "reference") != "Patient/a" {
			t.Errorf("reference not rewritten: %s", r.raw)
		}
	})
}
