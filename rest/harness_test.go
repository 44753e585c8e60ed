package rest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
)

// engines runs fn once per storage engine, each with a fresh store, so
// every REST behaviour is checked on SQLite and on PostgreSQL.
func engines(t *testing.T, fn func(t *testing.T, c *client)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, newClient(t, sqlitetest.Open(t)))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, newClient(t, pgtest.Open(t)))
	})
}

// client talks to a test server over real HTTP.
type client struct {
	t     testing.TB
	srv   *httptest.Server
	base  string
	store hale.Store
	svc   *rest.Service
}

func newClient(t testing.TB, store hale.Store) *client {
	svc := rest.NewService(store)
	svc.MaxBodyBytes = 4 << 20
	mux := http.NewServeMux()
	mux.Handle("/fhir/", svc.Handler("/fhir"))
	mux.Handle("/fhir", svc.Handler("/fhir"))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &client{t: t, srv: srv, base: srv.URL + "/fhir", store: store, svc: svc}
}

// resp is an HTTP answer with its body decoded when it is JSON.
type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request. body may be a string, []byte or a value to encode;
// headers are "Name: value" pairs. A JSON body gets the FHIR content type
// unless headers set one.
func (c *client) do(method, path string, body any, headers ...string) *resp {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer hr.Body.Close()
	raw, _ := io.ReadAll(hr.Body)
	r := &resp{status: hr.StatusCode, header: hr.Header, raw: raw}
	if len(raw) > 0 && strings.Contains(hr.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			c.t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, path, err, raw)
		}
	}
	if r.status >= 500 {
		c.t.Errorf("%s %s: server error %d: %s", method, path, r.status, raw)
	}
	return r
}

// want fails the test unless the status is code.
func (r *resp) want(t testing.TB, code int) *resp {
	t.Helper()
	if r.status != code {
		t.Fatalf("status %d, want %d; body: %s", r.status, code, r.raw)
	}
	return r
}

// outcome asserts an OperationOutcome body and returns its diagnostics
// and expressions joined, for assertions on what it says.
func (r *resp) outcome(t testing.TB) string {
	t.Helper()
	if r.body["resourceType"] != "OperationOutcome" {
		t.Fatalf("want an OperationOutcome, got %s", r.raw)
	}
	var parts []string
	issues, _ := r.body["issue"].([]any)
	if len(issues) == 0 {
		t.Fatalf("OperationOutcome without issues: %s", r.raw)
	}
	for _, is := range issues {
		m := is.(map[string]any)
		parts = append(parts, str(m["code"]), str(m["diagnostics"]))
		if ex, ok := m["expression"].([]any); ok {
			for _, e := range ex {
				parts = append(parts, str(e))
			}
		}
	}
	return strings.Join(parts, " | ")
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// get walks a decoded JSON value by keys and indexes: get(m, "meta", "versionId").
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

const patientJane = `{"resourceType":"Patient","identifier":[{"system":"http://example.org/mrn","value":"MRN-1"}],"name":[{"family":"Doe","given":["Jane"]}],"gender":"female","birthDate":"1980-02-29"}`

// create posts a resource and returns its id.
func (c *client) create(t testing.TB, typ, body string) string {
	t.Helper()
	r := c.do("POST", "/"+typ, body).want(t, 201)
	id, _ := r.body["id"].(string)
	if id == "" {
		t.Fatalf("created %s has no id: %s", typ, r.raw)
	}
	return id
}

// count returns how many current resources of typ the store holds.
func (c *client) count(t testing.TB, typ string) int64 {
	t.Helper()
	var n int64
	err := c.store.View(t.Context(), func(r hale.Reader) error {
		var err error
		n, err = r.Count(t.Context(), typ)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
