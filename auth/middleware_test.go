package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

// guarded is a server with Middleware in front of a trivial handler that
// counts what it served.
func guarded(e *testEnv, public Public) (*httptest.Server, *atomic.Int64) {
	var served atomic.Int64
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := hale.PrincipalFrom(r.Context()); p != nil || public.Allows(r) {
			served.Add(1)
			w.Write([]byte("ok"))
			return
		}
		w.WriteHeader(599) // the guard let an anonymous request through
	})
	mux := http.NewServeMux()
	mux.Handle("/auth/", e.svc.Handler())
	mux.Handle("/", next)
	return httptest.NewServer(e.svc.Middleware(public, mux)), &served
}

func get(t *testing.T, srv *httptest.Server, path, bearer string, cookie *http.Cookie) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestAccessTokenForgery is test A10: forged bearer tokens against the
// resource server's guard — alg none, HS256 keyed with Hale's public key,
// expired, other audience, other issuer, 20 each: none is served.
func TestAccessTokenForgery(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newEnv(t, st)
		c := registerClient(t, e)
		srv, served := guarded(e, Public{"GET /fhir/metadata"})
		defer srv.Close()
		ctx := context.Background()
		good := getToken(t, e, c)
		if code, _, _ := get(t, srv, "/fhir/Patient", good, nil); code != 200 {
			t.Fatalf("a good token was refused: %d", code)
		}
		served.Store(0)
		k, err := e.svc.signer(ctx, ES256)
		if err != nil {
			t.Fatal(err)
		}
		jwks, _ := e.svc.JWKS(ctx)
		pubJSON, _ := json.Marshal(jwks.Keys[0])
		p, _ := parseJWS(good)
		claims := func(edit func(m map[string]any)) map[string]any {
			var m map[string]any
			json.Unmarshal(p.payload, &m)
			edit(m)
			return m
		}
		// signed with Hale's real key, claims changed
		ours := func(m map[string]any) string {
			tok, err := signJWS(ES256, k.kid, k.key, m)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		kinds := []struct {
			name string
			make func() string
		}{
			{"alg none", func() string {
				return makeJWT(t, map[string]any{"kid": k.kid}, claims(func(map[string]any) {}), "none", nil)
			}},
			{"HS256 keyed with the published JWK", func() string {
				return makeJWT(t, map[string]any{"kid": k.kid}, claims(func(map[string]any) {}), "HS256", pubJSON)
			}},
			{"expired", func() string {
				return ours(claims(func(m map[string]any) { m["exp"] = e.clock.Now().Add(-time.Second).Unix() }))
			}},
			{"other audience", func() string { return ours(claims(func(m map[string]any) { m["aud"] = "https://other.example/fhir" })) }},
			{"other issuer", func() string { return ours(claims(func(m map[string]any) { m["iss"] = "https://other.example/auth" })) }},
			{"attacker's key under our kid", func() string {
				return makeJWT(t, map[string]any{"kid": k.kid}, claims(func(map[string]any) {}), ES256, forger)
			}},
			{"embedded jwk", func() string {
				return makeJWT(t, map[string]any{"kid": k.kid, "jwk": mustJWK(t, &forger.PublicKey, k.kid, ES256)}, claims(func(map[string]any) {}), ES256, forger)
			}},
			{"scope widened", func() string {
				// the signature no longer matches the payload
				parts := strings.Split(good, ".")
				parts[1] = b64.EncodeToString([]byte(strings.Replace(string(p.payload), "system/Patient.rs", "system/*.cruds", 1)))
				return strings.Join(parts, ".")
			}},
		}
		total := 0
		for i, kd := range kinds {
			n := 20
			if i >= 5 {
				n = 0 // the list's 100 are the first five kinds; the others run once more below
			}
			for range n {
				total++
				code, h, body := get(t, srv, "/fhir/Patient", kd.make(), nil)
				if code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") ||
					!strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) || !strings.Contains(body, `"OperationOutcome"`) {
					t.Errorf("%s: %d %q %s", kd.name, code, h.Get("WWW-Authenticate"), body)
				}
			}
		}
		servedMain := served.Load()
		extra := 0
		for _, kd := range kinds[5:] {
			for range 10 {
				extra++
				if code, _, _ := get(t, srv, "/fhir/Patient", kd.make(), nil); code != 401 {
					t.Errorf("%s: %d", kd.name, code)
				}
			}
		}
		t.Logf("A10 access-token forgery: requests served: %d / %d (alg none, HS256 with the public key, expired, "+
			"other audience, other issuer; 20 each); and %d / %d more (attacker key, embedded jwk, widened scope)",
			servedMain, total, served.Load()-servedMain, extra)
		if served.Load() != 0 {
			t.Fatalf("forged tokens served %d requests", served.Load())
		}

		// Anonymous: 401 with a bare challenge; public routes pass.
		code, h, body := get(t, srv, "/fhir/Patient", "", nil)
		if code != 401 || h.Get("WWW-Authenticate") != `Bearer realm="hale"` || !strings.Contains(body, `"code":"login"`) ||
			!strings.HasPrefix(h.Get("Content-Type"), "application/fhir+json") {
			t.Errorf("anonymous: %d %q %s", code, h.Get("WWW-Authenticate"), body)
		}
		if code, _, _ := get(t, srv, "/fhir/metadata", "", nil); code != 200 {
			t.Errorf("public route: %d", code)
		}
		if code, _, _ := get(t, srv, "/fhir/metadata", "forged", nil); code != 200 {
			t.Errorf("public route with a bad token: %d", code)
		}
		for _, path := range []string{"/fhir/metadata/../Patient", "/fhir//metadata", "/fhir/metadata/", "/fhir/metadataX"} {
			req, _ := http.NewRequest("GET", srv.URL, nil)
			req.URL.Path = path
			if (Public{"GET /fhir/metadata"}).Allows(req) {
				t.Errorf("public allow-list matched %q", path)
			}
		}
		req, _ := http.NewRequest("GET", srv.URL+"/fhir/Patient", nil)
		req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
		resp, _ := srv.Client().Do(req)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("Basic authorization: %d", resp.StatusCode)
		}
		if served.Load() != 2 {
			t.Errorf("served %d, want the 2 public requests", served.Load())
		}
	})
}
