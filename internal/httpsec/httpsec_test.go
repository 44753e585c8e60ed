package httpsec

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

func mustPolicy(t *testing.T, opts Options) *Policy {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHeaders: every response carries the security headers, whatever its
// status, and every response under a no-store prefix says no-store even
// when the handler asked for caching.
func TestHeaders(t *testing.T) {
	p := mustPolicy(t, Options{NoStore: []string{"/fhir", "/auth"}})
	h := p.Headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		switch r.URL.Path {
		case "/fhir/Patient/404", "/nope":
			http.NotFound(w, r)
		case "/fhir/boom":
			w.WriteHeader(500)
		case "/fhir/implicit":
			w.Write([]byte("{}")) // no WriteHeader call
		default:
			w.WriteHeader(200)
		}
	}))
	paths := []string{"/fhir/Patient/1", "/fhir/Patient/404", "/fhir/boom", "/fhir/implicit", "/fhir", "/auth/jwks", "/auth/token", "/", "/nope", "/static/x.css", "/fhirx"}
	missing, cached, n := 0, 0, 0
	for _, path := range paths {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		hdr := rec.Result().Header
		for k, want := range map[string]string{"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if hdr.Get(k) != want {
				missing++
				t.Errorf("%s: %s = %q", path, k, hdr.Get(k))
			}
		}
		if strings.Contains(hdr.Get("Content-Security-Policy"), "unsafe-inline") {
			t.Errorf("CSP allows inline script")
		}
		if hdr.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS on plain HTTP", path)
		}
		noStore := hdr.Get("Cache-Control") == "no-store"
		under := path == "/fhir" || strings.HasPrefix(path, "/fhir/") || strings.HasPrefix(path, "/auth/")
		if under {
			n++
			if !noStore {
				cached++
				t.Errorf("%s: Cache-Control %q", path, hdr.Get("Cache-Control"))
			}
		} else if noStore {
			t.Errorf("%s: no-store outside the prefixes", path)
		}
	}
	t.Logf("responses missing a security header: %d; responses of /fhir and /auth without Cache-Control: no-store: %d / %d", missing, cached, n)

	// HSTS on TLS, and always when configured (TLS at a proxy).
	req := httptest.NewRequest("GET", "/fhir/metadata", nil)
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Result().Header.Get("Strict-Transport-Security") != HSTS {
		t.Errorf("no HSTS on TLS")
	}
	rec = httptest.NewRecorder()
	mustPolicy(t, Options{HSTSAlways: true}).Headers(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Result().Header.Get("Strict-Transport-Security") != HSTS {
		t.Errorf("HSTSAlways: no HSTS")
	}
}

// TestCORS: only listed origins are echoed, never with credentials;
// preflights for them allow Authorization; every other origin is refused
// (test 20, CORS half).
func TestCORS(t *testing.T) {
	const app = "https://app.example.org"
	p := mustPolicy(t, Options{Origins: []string{app}})
	served := 0
	h := p.CORS(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++; w.WriteHeader(200) }))

	pre := func(origin, method string) *http.Response {
		r := httptest.NewRequest("OPTIONS", "/fhir/Patient", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", method)
		r.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Result()
	}
	res := pre(app, "POST")
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		res.Header.Get("Access-Control-Allow-Credentials") != "" || served != 0 {
		t.Fatalf("preflight of a listed origin: %d %v (served %d)", res.StatusCode, res.Header, served)
	}
	if pre(app, "TRACE").StatusCode != 403 {
		t.Errorf("preflight for TRACE allowed")
	}

	// Arbitrary origins: lookalikes of the listed one and others.
	origins := []string{"null", "https://evil.example", app + ".evil.example", "https://app.example.org:444",
		"http://app.example.org", "https://APP.example.org", "https://evilapp.example.org", app + "/", " " + app}
	for i := range 91 {
		origins = append(origins, fmt.Sprintf("https://site%d.example", i))
	}
	reflected, withCreds := 0, 0
	for _, o := range origins {
		for _, res := range []*http.Response{pre(o, "GET"), func() *http.Response {
			r := httptest.NewRequest("GET", "/fhir/Patient", nil)
			r.Header.Set("Origin", o)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			return rec.Result()
		}()} {
			if acao := res.Header.Get("Access-Control-Allow-Origin"); acao != "" {
				reflected++
				if res.Header.Get("Access-Control-Allow-Credentials") != "" {
					withCreds++
				}
			}
		}
		if res := pre(o, "GET"); res.StatusCode != 403 {
			t.Errorf("preflight from %q: %d", o, res.StatusCode)
		}
	}
	t.Logf("arbitrary origins reflected: %d / %d; arbitrary origins reflected with credentials: %d", reflected, len(origins), withCreds)
	if reflected != 0 || withCreds != 0 {
		t.Errorf("origins reflected")
	}
	// A listed origin's actual request is readable, without credentials.
	r := httptest.NewRequest("GET", "/fhir/Patient", nil)
	r.Header.Set("Origin", app)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Result().Header.Get("Access-Control-Allow-Origin") != app || rec.Result().Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("listed origin: %v", rec.Result().Header)
	}
	for _, bad := range []string{"*", "https://a.example/", "https://a.example/path", "ftp://a.example", "https://A.example", "a.example"} {
		if _, err := New(Options{Origins: []string{bad}}); err == nil {
			t.Errorf("origin %q accepted in the configuration", bad)
		}
	}
}

// TestCrossOrigin: state-changing requests with the session cookie from
// another site are refused; same-site ones, bearer-token ones and
// cookie-less ones to the cross-site endpoints go through.
func TestCrossOrigin(t *testing.T) {
	p := mustPolicy(t, Options{SessionCookie: "hale_session", CrossSite: []string{"/auth/token"}})
	changed := 0
	h := p.CrossOrigin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { changed++; w.WriteHeader(200) }))
	type hdrs map[string]string
	do := func(method, path string, cookie bool, h2 hdrs) int {
		r := httptest.NewRequest(method, "http://ehr.example"+path, nil)
		if cookie {
			r.AddCookie(&http.Cookie{Name: "hale_session", Value: "s"})
		}
		for k, v := range h2 {
			r.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Code
	}
	cross := []hdrs{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"}, // a sibling subdomain is another origin
		{"Origin": "https://evil.example"},
		{"Origin": "null"},
		{"Origin": "http://ehr.example:8443"},
		{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
	}
	n, before := 0, changed
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		for _, path := range []string{"/fhir/Patient/1", "/auth/logout", "/auth/login", "/auth/token"} {
			for _, x := range cross {
				n++
				if code := do(m, path, true, x); code != 403 {
					t.Errorf("%s %s %v with cookie: %d", m, path, x, code)
				}
			}
		}
	}
	t.Logf("cross-origin state changes: %d / %d", changed-before, n)
	if changed != before {
		t.Fatal("cross-origin requests reached the handler")
	}
	// Allowed: same origin, no browser headers (curl), bearer tokens,
	// safe methods, the token endpoint without a cookie.
	for _, c := range []struct {
		method, path string
		cookie       bool
		h            hdrs
	}{
		{"POST", "/fhir/Patient", true, hdrs{"Sec-Fetch-Site": "same-origin"}},
		{"POST", "/fhir/Patient", true, hdrs{"Origin": "http://ehr.example"}},
		{"POST", "/fhir/Patient", true, nil},
		{"POST", "/fhir/Patient", false, hdrs{"Origin": "https://app.example", "Authorization": "Bearer x"}},
		{"GET", "/fhir/Patient", true, hdrs{"Sec-Fetch-Site": "cross-site"}},
		{"POST", "/auth/token", false, hdrs{"Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}},
	} {
		if code := do(c.method, c.path, c.cookie, c.h); code != 200 {
			t.Errorf("%s %s %v: %d, want it allowed", c.method, c.path, c.h, code)
		}
	}
	// Without a cookie, other endpoints still refuse cross-site writes
	// (login CSRF).
	if code := do("POST", "/auth/login", false, hdrs{"Sec-Fetch-Site": "cross-site"}); code != 403 {
		t.Errorf("cross-site login: %d", code)
	}
}

// TestRateLimit (test 36): R a minute with burst b; one caller sending 5R
// in 60 s gets at most R + b through, each refusal a 429 with Retry-After
// and an OperationOutcome "throttled"; a second caller at 0.5R is never
// refused.
func TestRateLimit(t *testing.T) {
	const R, b = 120, 20
	var mu sync.Mutex
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p := mustPolicy(t, Options{RatePerMinute: R, Burst: b, Now: clock})
	h := p.RateLimit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	send := func(who string) *http.Response {
		r := httptest.NewRequest("GET", "/fhir/Patient", nil)
		r.RemoteAddr = "192.0.2.7:5000"
		if who != "" {
			r = r.WithContext(hale.WithPrincipal(r.Context(), &hale.Principal{Subject: who}))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Result()
	}
	acceptedA, rejectedA, rejectedB, badRejects := 0, 0, 0, 0
	const steps = 5 * R // client A: 5R requests spread over 60 s
	for i := range steps {
		mu.Lock()
		now = now.Add(60 * time.Second / steps)
		mu.Unlock()
		res := send("client/a")
		if res.StatusCode == 200 {
			acceptedA++
		} else {
			rejectedA++
			body, _ := io.ReadAll(res.Body)
			var oo struct {
				ResourceType string
				Issue        []struct{ Code string }
			}
			json.Unmarshal(body, &oo)
			if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || oo.ResourceType != "OperationOutcome" || oo.Issue[0].Code != "throttled" {
				badRejects++
			}
		}
		if i%10 == 0 { // client B: 0.5R over the same minute
			if send("client/b").StatusCode != 200 {
				rejectedB++
			}
		}
	}
	t.Logf("caller at 5R: accepted %d / %d (limit R + b = %d), %d refused with 429 + Retry-After + throttled (malformed refusals: %d); caller at 0.5R: refused %d / %d",
		acceptedA, steps, R+b, rejectedA, badRejects, rejectedB, steps/10)
	if acceptedA > R+b+1 || acceptedA < R || badRejects != 0 || rejectedB != 0 {
		t.Errorf("rate limit wrong")
	}
	// Anonymous callers count per address.
	if send("").StatusCode != 200 {
		t.Errorf("an anonymous caller shares a principal's bucket")
	}
	// Off when no rate is set.
	if mustPolicy(t, Options{}).RateLimit(http.NotFoundHandler()) == nil {
		t.Error("nil handler")
	}
}

// TestTLS (test 28): the TLS configuration refuses TLS 1.0 and 1.1
// handshakes and accepts 1.2 and 1.3; the self-signed certificate is
// made once and reused.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cert, key, err := SelfSigned(dir, []string{"localhost", "127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(key); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode().Perm())
	}
	before, _ := os.ReadFile(cert)
	if _, _, err := SelfSigned(dir, []string{"localhost", "127.0.0.1"}, now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(cert); string(after) != string(before) {
		t.Errorf("a valid certificate was replaced")
	}
	if _, _, err := SelfSigned(dir, []string{"localhost", "ehr.test"}, now); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(cert); string(after) == string(before) {
		t.Errorf("a certificate not covering a new host was kept")
	}

	cfg, err := TLSConfig(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = cfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	// A control server that allows TLS 1.0 shows the client really
	// offers the old versions.
	loose := cfg.Clone()
	loose.MinVersion = tls.VersionTLS10
	ctrl := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ctrl.TLS = loose
	ctrl.Config.ErrorLog = log.New(io.Discard, "", 0)
	ctrl.StartTLS()
	defer ctrl.Close()

	handshake := func(addr string, v uint16) error {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}})
		if err == nil {
			c.Close()
		}
		return err
	}
	old, accepted := 0, 0
	for range 10 {
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
			old++
			if handshake(srv.Listener.Addr().String(), v) == nil {
				accepted++
			}
		}
	}
	t.Logf("TLS 1.0/1.1 handshakes accepted: %d / %d", accepted, old)
	if accepted != 0 {
		t.Errorf("old TLS accepted")
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		if err := handshake(srv.Listener.Addr().String(), v); err != nil {
			t.Errorf("TLS %x refused: %v", v, err)
		}
	}
	if err := handshake(ctrl.Listener.Addr().String(), tls.VersionTLS11); err != nil {
		t.Skipf("this Go's client cannot speak TLS 1.1 (%v): the refusal above proves nothing", err)
	}
}
