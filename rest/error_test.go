package rest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
)

// brokenStore fails every transaction the way a lost database would.
type brokenStore struct{ hale.Store }

var errDiskOnFire = errors.New("disk on fire at /var/lib/secret")

func (brokenStore) View(context.Context, func(hale.Reader) error) error { return errDiskOnFire }
func (brokenStore) Update(context.Context, func(hale.Tx) error) error   { return errDiskOnFire }

// TestInternalErrorID: a 500 carries an error id that finds its log line,
// and never the internal detail.
func TestInternalErrorID(t *testing.T) {
	var logs bytes.Buffer
	svc := rest.NewService(brokenStore{sqlitetest.Open(t)})
	svc.Log = slog.New(slog.NewTextHandler(&logs, nil))
	srv := httptest.NewServer(svc.Handler("/fhir"))
	defer srv.Close()
	r, err := http.Get(srv.URL + "/fhir/Patient/1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	id := r.Header.Get("X-Error-Id")
	if r.StatusCode != 500 || id == "" {
		t.Fatalf("status %d, X-Error-Id %q", r.StatusCode, id)
	}
	if !strings.Contains(string(body), id) || strings.Contains(string(body), "secret") {
		t.Errorf("outcome must quote the id and hide the detail: %s", body)
	}
	if !strings.Contains(logs.String(), "error_id="+id) || !strings.Contains(logs.String(), "disk on fire") {
		t.Errorf("log line with the id and the detail missing:\n%s", logs.String())
	}
}

// FuzzHTTP: whatever a client sends, the answer is never a 500 and a
// rejected write stores nothing.
func FuzzHTTP(f *testing.F) {
	f.Add("POST", "/Patient", `{"resourceType":"Patient","name":[{"family":"x"}]}`, "application/fhir+json")
	f.Add("PUT", "/Patient/a", `{"resourceType":"Patient","id":"a"}`, "application/fhir+json")
	f.Add("PATCH", "/Patient/a", `[{"op":"add","path":"/active","value":true}]`, "application/json-patch+json")
	f.Add("POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}`, "application/fhir+json")
	f.Add("GET", "/_history?_since=2020&_count=1", "", "")
	f.Add("POST", "/Patient/$validate", `{"resourceType":"Patient","gender":1}`, "application/json")
	c := newClient(f, sqlitetest.Open(f))
	f.Fuzz(func(t *testing.T, method, path, body, ctype string) {
		switch method {
		case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD":
		default:
			return
		}
		req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
		if err != nil || !strings.HasPrefix(req.URL.String(), c.base) {
			return
		}
		req.Header.Set("Content-Type", ctype)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		msg, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, r.StatusCode, msg)
		}
	})
}
