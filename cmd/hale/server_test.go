package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/internal/clientauth"
	"github.com/hale-ehr/hale/rest"
)

// testServer is the HTTP surface of hale serve on a fresh SQLite data
// folder, in this process, with a backend-services client's token.
type testServer struct {
	*httptest.Server
	s     *server
	h     http.Handler
	base  string // FHIR base URL
	token string // access token of a system/*.cruds client
}

func startTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	ctx := context.Background()
	cfg.Data = t.TempDir()
	store := sqliteStore(t)
	svc := rest.NewService(store)
	svc.Log = discardLogger()
	ts := &testServer{Server: httptest.NewUnstartedServer(nil)}
	ts.base = "http://" + ts.Listener.Addr().String() + "/fhir"
	authSvc, err := authService(ctx, cfg, store, ts.base, func(o *auth.Options) {
		o.Argon2 = auth.Argon2Params{Memory: 256, Time: 1, Threads: 1}
	})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := securityPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.s = &server{fhir: svc, auth: authSvc, sec: sec, store: store, log: discardLogger()}
	ts.h = ts.s.handler()
	ts.Config.Handler = ts.h
	ts.Start()
	t.Cleanup(ts.Close)

	key, err := clientauth.NewKey(filepath.Join(t.TempDir(), "client.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := authSvc.AddClient(ctx, auth.NewClient{Name: "test", Scopes: []string{"system/*.cruds"}, JWKS: key.PublicJWKS()})
	if err != nil {
		t.Fatal(err)
	}
	src := &clientauth.Source{Base: ts.base, ClientID: c.ID, Key: key}
	if ts.token, err = src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	return ts
}

// do sends a request through the whole handler, in process.
func (ts *testServer) do(method, path, body string, hdr map[string]string) *http.Response {
	r := httptest.NewRequest(method, "http://"+ts.Listener.Addr().String()+"/", strings.NewReader(body))
	r.URL.Path, r.URL.RawPath = path, ""
	if p, q, ok := strings.Cut(path, "?"); ok {
		r.URL.Path, r.URL.RawQuery = p, q
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/fhir+json")
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, r)
	return rec.Result()
}

func (ts *testServer) bearer() map[string]string {
	return map[string]string{"Authorization": "Bearer " + ts.token}
}

func outcomeCode(t *testing.T, res *http.Response) string {
	t.Helper()
	var oo struct {
		ResourceType string
		Issue        []struct{ Code string }
	}
	b, _ := io.ReadAll(res.Body)
	json.Unmarshal(b, &oo)
	if oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		return ""
	}
	return oo.Issue[0].Code
}

// is401 reports whether res is the guard's answer to an anonymous caller.
func is401(t *testing.T, res *http.Response) bool {
	return res.StatusCode == 401 && strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") && outcomeCode(t, res) == "login"
}

// fhirProbes are requests for every FHIR interaction on every resource
// type, the system-level ones, Bulk Data, and paths that try to get
// around the allow-list.
func fhirProbes() [][2]string {
	var p [][2]string
	for _, typ := range fhir.ResourceTypes() {
		for _, m := range [][2]string{
			{"GET", "/fhir/%s"}, {"POST", "/fhir/%s"}, {"GET", "/fhir/%s/x1"}, {"HEAD", "/fhir/%s/x1"},
			{"PUT", "/fhir/%s/x1"}, {"PATCH", "/fhir/%s/x1"}, {"DELETE", "/fhir/%s/x1"}, {"DELETE", "/fhir/%s?_id=x1"},
			{"GET", "/fhir/%s/x1/_history"}, {"GET", "/fhir/%s/x1/_history/1"}, {"GET", "/fhir/%s/_history"},
			{"POST", "/fhir/%s/_search"}, {"POST", "/fhir/%s/$validate"},
		} {
			p = append(p, [2]string{m[0], fmt.Sprintf(m[1], typ)})
		}
	}
	return append(p,
		[2]string{"GET", "/fhir"}, [2]string{"POST", "/fhir"}, [2]string{"GET", "/fhir/"}, [2]string{"GET", "/fhir/_history"},
		[2]string{"GET", "/fhir/Patient/x1/$everything"}, [2]string{"GET", "/fhir/Patient/x1/Observation"}, [2]string{"GET", "/fhir/Patient/x1/*"},
		[2]string{"GET", "/fhir/$export"}, [2]string{"GET", "/fhir/Patient/$export"}, [2]string{"GET", "/fhir/Group/g1/$export"},
		[2]string{"GET", "/fhir/$export-status/j1"}, [2]string{"DELETE", "/fhir/$export-status/j1"}, [2]string{"GET", "/fhir/$export-file/j1/f1"},
		[2]string{"POST", "/fhir/metadata"}, [2]string{"PUT", "/fhir/metadata"}, [2]string{"DELETE", "/fhir/metadata"},
		[2]string{"GET", "/fhir/metadata/../Patient"}, [2]string{"GET", "/fhir//Patient"}, [2]string{"GET", "//fhir/Patient"},
		[2]string{"GET", "/fhir/metadata/"}, [2]string{"GET", "/fhir/metadataPatient"}, [2]string{"GET", "/fhir/./Patient"},
		[2]string{"GET", "/fhir/Patient?_format=/fhir/metadata"}, [2]string{"GET", "/fhir/.well-known/../Patient"},
		[2]string{"GET", "/static/../fhir/Patient"}, [2]string{"GET", "/auth/../fhir/Patient"}, [2]string{"GET", "/healthz/../fhir/Patient"},
		[2]string{"POST", "/fhir/.well-known/smart-configuration"}, [2]string{"GET", "/fhir/Patient/x1/$everything?x=/healthz"},
	)
}

// TestRouteCoverage is test 15: every route the server registers is
// either behind the authentication guard or on the one allow-list, and
// every allow-list entry is a route; an anonymous request to anything
// else gets 401.
func TestRouteCoverage(t *testing.T) {
	ts := startTestServer(t, DefaultConfig())
	mux := ts.s.mux()
	routes := ts.s.routes()

	// 1. The route table: probe each pattern with every method.
	unguarded := 0
	for _, r := range routes {
		method, path, ok := strings.Cut(r.pattern, " ")
		methods := []string{method}
		if !ok {
			path, methods = r.pattern, []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
		}
		path = strings.ReplaceAll(path, "{$}", "")
		bad := false
		for _, m := range methods {
			req := httptest.NewRequest(m, path, nil)
			res := ts.do(m, path, "", nil)
			if !publicRoutes.Allows(req) && !is401(t, res) {
				bad = true
				t.Errorf("route %q: anonymous %s %s answered %d", r.pattern, m, path, res.StatusCode)
			}
		}
		if bad {
			unguarded++
		}
	}
	t.Logf("unguarded routes: %d / %d", unguarded, len(routes))

	// 2. Every allow-list entry names a registered route, and the
	// anonymous caller gets something other than 401 from it.
	stale := 0
	for _, e := range publicRoutes {
		method, path, ok := strings.Cut(e, " ")
		if !ok {
			method, path = "GET", e
		}
		path = strings.ReplaceAll(path, "{$}", "")
		req := httptest.NewRequest(method, path, nil)
		if _, pattern := mux.Handler(req); pattern == "" {
			stale++
			t.Errorf("allow-list entry %q matches no route", e)
		}
		if res := ts.do(method, path, "", nil); res.StatusCode == 401 {
			t.Errorf("public %q: 401", e)
		}
	}
	t.Logf("allow-list entries matching no route: %d / %d", stale, len(publicRoutes))

	// 3. Every FHIR interaction on every type, anonymous: 401; with a
	// token: not 401 (the guard tells them apart).
	probes := fhirProbes()
	served, notServedWithToken := 0, 0
	for _, p := range probes {
		body := ""
		if p[0] == "POST" || p[0] == "PUT" || p[0] == "PATCH" {
			body = "{}"
		}
		if res := ts.do(p[0], p[1], body, nil); !is401(t, res) {
			served++
			t.Errorf("anonymous %s %s: %d", p[0], p[1], res.StatusCode)
		}
		if res := ts.do(p[0], p[1], body, ts.bearer()); res.StatusCode == 401 {
			notServedWithToken++
		}
	}
	t.Logf("anonymous FHIR requests served: %d / %d (with a token, refused as unauthenticated: %d)", served, len(probes), notServedWithToken)
	if notServedWithToken != 0 {
		t.Errorf("the control with a token was refused")
	}

	// 4. The guard is around the mux, not per route: a path no route
	// registers is 401 too, and a bad token on a public route is ignored.
	for _, path := range []string{"/nope", "/fhirx/Patient", "/admin", "/.well-known/smart-configuration/../../fhir/Patient"} {
		if res := ts.do("GET", path, "", nil); !is401(t, res) {
			t.Errorf("unregistered %s: %d", path, res.StatusCode)
		}
	}
	if res := ts.do("GET", "/fhir/metadata", "", map[string]string{"Authorization": "Bearer forged"}); res.StatusCode != 200 {
		t.Errorf("metadata with a bad token: %d", res.StatusCode)
	}
	if unguarded+stale+served != 0 {
		t.Fatal("route coverage failed")
	}
}

// TestCrossSiteAndCORS is test 20 on the real stack: with a logged-in
// session cookie, state-changing requests from another origin change
// nothing; same-origin ones do. CORS echoes only the listed origin, never
// with credentials.
func TestCrossSiteAndCORS(t *testing.T) {
	const app = "https://app.example.org"
	cfg := DefaultConfig()
	cfg.CORSOrigins = app
	ts := startTestServer(t, cfg)
	ctx := context.Background()
	if _, err := ts.s.auth.AddUser(ctx, auth.NewUser{Username: "nurse1", Password: "a long nurse password", Role: hale.RoleNurse}); err != nil {
		t.Fatal(err)
	}
	self := "http://" + ts.Listener.Addr().String()
	form := url.Values{"username": {"nurse1"}, "password": {"a long nurse password"}}.Encode()
	login := func(origin string) *http.Response {
		r := httptest.NewRequest("POST", self+"/auth/login", strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", origin)
		rec := httptest.NewRecorder()
		ts.h.ServeHTTP(rec, r)
		return rec.Result()
	}
	if res := login("https://evil.example"); res.StatusCode != 403 || len(res.Cookies()) != 0 {
		t.Errorf("cross-site login (login CSRF): %d", res.StatusCode)
	}
	res := login(self)
	if res.StatusCode != 200 || len(res.Cookies()) != 1 {
		t.Fatalf("login: %d", res.StatusCode)
	}
	cookie := res.Cookies()[0].Name + "=" + res.Cookies()[0].Value
	withCookie := func(h map[string]string) map[string]string {
		out := map[string]string{"Cookie": cookie}
		for k, v := range h {
			out[k] = v
		}
		return out
	}
	// A patient to change, created with the session (positive control:
	// the cookie does authorize same-origin writes).
	res = ts.do("PUT", "/fhir/Patient/p1", `{"resourceType":"Patient","id":"p1","active":true}`, withCookie(map[string]string{"Origin": self}))
	if res.StatusCode != 201 {
		t.Fatalf("same-origin PUT with the session: %d", res.StatusCode)
	}
	state := func() string {
		res := ts.do("GET", "/fhir/Patient?_count=0&_total=accurate", "", ts.bearer())
		b, _ := io.ReadAll(res.Body)
		var bundle struct{ Total int }
		json.Unmarshal(b, &bundle)
		res = ts.do("GET", "/fhir/Patient/p1", "", ts.bearer())
		return fmt.Sprint(bundle.Total, res.StatusCode, res.Header.Get("ETag"))
	}
	before := state()
	writes := [][3]string{
		{"POST", "/fhir/Patient", `{"resourceType":"Patient"}`},
		{"PUT", "/fhir/Patient/p1", `{"resourceType":"Patient","id":"p1","active":false}`},
		{"PATCH", "/fhir/Patient/p1", `[{"op":"replace","path":"/active","value":false}]`},
		{"DELETE", "/fhir/Patient/p1", ""},
		{"POST", "/fhir", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}`},
		{"POST", "/auth/logout", ""},
	}
	attackers := []map[string]string{
		{"Origin": "https://evil.example"},
		{"Origin": "null"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site", "Origin": "https://sub.example"},
		{"Origin": "http://" + strings.Replace(ts.Listener.Addr().String(), "127.0.0.1", "localhost", 1)},
		{"Origin": app, "Sec-Fetch-Site": "cross-site"}, // even the CORS-listed app, with the cookie
	}
	refused, n := 0, 0
	for _, w := range writes {
		for _, a := range attackers {
			n++
			h := withCookie(a)
			if w[0] == "PATCH" {
				h["Content-Type"] = "application/json-patch+json"
			}
			if res := ts.do(w[0], w[1], w[2], h); res.StatusCode == 403 {
				refused++
			}
		}
	}
	after := state()
	changed := n - refused
	if before != after {
		changed = max(changed, 1)
	}
	// The session survived the cross-site logout attempts.
	if res := ts.do("GET", "/fhir/Patient/p1", "", withCookie(nil)); res.StatusCode != 200 {
		t.Errorf("session ended by a cross-site logout: %d", res.StatusCode)
	}
	t.Logf("cross-origin state changes: %d / %d (state before %s, after %s)", changed, n, before, after)
	if changed != 0 {
		t.Errorf("cross-site writes went through")
	}

	// CORS: 50 arbitrary origins, preflight and actual request, with the
	// cookie: none reflected, never with credentials.
	reflected, creds := 0, 0
	for i := range 50 {
		o := fmt.Sprintf("https://site%d.example", i)
		if i == 0 {
			o = app + ".evil.example"
		}
		for _, res := range []*http.Response{
			ts.do("OPTIONS", "/fhir/Patient", "", map[string]string{"Origin": o, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}),
			ts.do("GET", "/fhir/Patient", "", withCookie(map[string]string{"Origin": o})),
		} {
			if res.Header.Get("Access-Control-Allow-Origin") != "" {
				reflected++
			}
			if res.Header.Get("Access-Control-Allow-Credentials") != "" {
				creds++
			}
		}
	}
	t.Logf("arbitrary origins reflected: %d / 50; arbitrary origins reflected with credentials: %d", reflected, creds)
	if reflected+creds != 0 {
		t.Errorf("CORS reflected an arbitrary origin")
	}
	// The listed SMART app: its preflight allows Authorization, and its
	// bearer request is readable, without credentials.
	res = ts.do("OPTIONS", "/fhir/Patient", "", map[string]string{"Origin": app, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"})
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("listed preflight: %d %v", res.StatusCode, res.Header)
	}
	h := ts.bearer()
	h["Origin"], h["Sec-Fetch-Site"] = app, "cross-site"
	res = ts.do("POST", "/fhir/Patient", `{"resourceType":"Patient"}`, h)
	if res.StatusCode != 201 || res.Header.Get("Access-Control-Allow-Origin") != app || res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("listed app with a token: %d %v", res.StatusCode, res.Header)
	}
	// A SMART app's authorization request posted from its own site
	// (authorize-post; the browser sends no Strict cookie with it) reaches
	// Hale's pages.
	client, err := ts.s.auth.AddClient(ctx, auth.NewClient{Name: "Posting app", Public: true, Scopes: []string{"user/*.rs"},
		RedirectURIs: []string{app + "/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	authz := url.Values{"response_type": {"code"}, "client_id": {client.ID}, "redirect_uri": {app + "/cb"}, "scope": {"user/Patient.rs"},
		"state": {"s"}, "aud": {self + "/fhir"}, "code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}}
	res = ts.do("POST", "/auth/authorize", authz.Encode(), map[string]string{"Origin": app, "Sec-Fetch-Site": "cross-site",
		"Content-Type": "application/x-www-form-urlencoded"})
	if b, _ := io.ReadAll(res.Body); res.StatusCode != 200 || !strings.Contains(string(b), `http-equiv="refresh"`) {
		t.Errorf("authorize-post from the app's site: %d\n%s", res.StatusCode, b)
	}
}

// TestNoStore is the server side of test 27: every response of /fhir and
// /auth — data, errors, the guard's 401s, export — says no-store, and
// every response carries the security headers.
func TestNoStore(t *testing.T) {
	ts := startTestServer(t, DefaultConfig())
	ts.do("PUT", "/fhir/Patient/p1", `{"resourceType":"Patient","id":"p1"}`, ts.bearer())
	reqs := []struct {
		method, path, body string
		auth               bool
	}{
		{"GET", "/fhir/metadata", "", false}, {"GET", "/fhir/Patient/p1", "", true}, {"HEAD", "/fhir/Patient/p1", "", true},
		{"GET", "/fhir/Patient", "", true}, {"GET", "/fhir/Patient/p1/_history/1", "", true}, {"GET", "/fhir/Patient/p1/$everything", "", true},
		{"POST", "/fhir/Patient", `{"resourceType":"Patient"}`, true}, {"POST", "/fhir/Patient", `{"resourceType":"Nope"}`, true},
		{"GET", "/fhir/Patient/none", "", true}, {"GET", "/fhir/Patient/p1", "", false}, {"GET", "/fhir/Patient?bogus=1", "", true},
		{"GET", "/fhir/Patient?_format=text/csv", "", true}, {"GET", "/fhir/$export", "", true}, {"GET", "/fhir/$export-status/none", "", true},
		{"GET", "/fhir/_history", "", true}, {"DELETE", "/fhir/Patient/p1", "", true}, {"GET", "/fhir/Patient/p1", "", true},
		{"GET", "/fhir/.well-known/smart-configuration", "", false},
		{"GET", "/auth/jwks", "", false}, {"POST", "/auth/token", "", false}, {"POST", "/auth/login", "", false}, {"GET", "/auth/nope", "", false},
	}
	missing, nFHIR, nAuth, badAuth, noHeaders := 0, 0, 0, 0, 0
	for _, q := range reqs {
		h := map[string]string{"Prefer": "respond-async"}
		if q.auth {
			h["Authorization"] = "Bearer " + ts.token
		}
		res := ts.do(q.method, q.path, q.body, h)
		if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			noHeaders++
		}
		ok := res.Header.Get("Cache-Control") == "no-store"
		if strings.HasPrefix(q.path, "/fhir") {
			nFHIR++
			if !ok {
				missing++
				t.Errorf("%s %s (%d): Cache-Control %q", q.method, q.path, res.StatusCode, res.Header.Get("Cache-Control"))
			}
		} else {
			nAuth++
			if !ok {
				badAuth++
				t.Errorf("%s %s (%d): Cache-Control %q", q.method, q.path, res.StatusCode, res.Header.Get("Cache-Control"))
			}
		}
	}
	t.Logf("responses of /fhir without Cache-Control: no-store: %d / %d; of /auth: %d / %d; responses without the security headers: %d",
		missing, nFHIR, badAuth, nAuth, noHeaders)
	if noHeaders != 0 {
		t.Error("security headers missing")
	}
}

// TestServerRateLimit: over the per-caller limit, 429 with Retry-After
// and an OperationOutcome "throttled"; another caller is not affected.
func TestServerRateLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RateLimit, cfg.RateBurst = 60, 5
	ts := startTestServer(t, cfg)
	ok, limited := 0, 0
	for range 20 {
		res := ts.do("GET", "/fhir/Patient", "", ts.bearer())
		switch {
		case res.StatusCode == 200:
			ok++
		case res.StatusCode == 429 && res.Header.Get("Retry-After") != "" && outcomeCode(t, res) == "throttled":
			limited++
		default:
			t.Errorf("unexpected %d", res.StatusCode)
		}
	}
	t.Logf("20 requests at once, limit 60/min burst 5: %d served, %d refused with 429 + Retry-After + throttled", ok, limited)
	if ok < 5 || ok > 6 || limited != 20-ok {
		t.Errorf("rate limit: %d served", ok)
	}
	if res := ts.do("GET", "/fhir/metadata", "", nil); res.StatusCode != 200 {
		t.Errorf("another caller (anonymous address) throttled: %d", res.StatusCode)
	}
}
