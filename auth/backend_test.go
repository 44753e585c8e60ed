package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

// testClient is a registered backend-services client with its private
// keys.
type testClient struct {
	id   string
	rsa  *rsa.PrivateKey
	ec   *ecdsa.PrivateKey
	jwks []byte
}

func registerClient(t *testing.T, e *testEnv, scopes ...string) *testClient {
	t.Helper()
	c := &testClient{}
	c.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
	c.ec, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rj, _ := publicJWK(&c.rsa.PublicKey, "rsa1", RS384)
	ej, _ := publicJWK(&c.ec.PublicKey, "ec1", ES384)
	c.jwks, _ = json.Marshal(JWKS{Keys: []JWK{rj, ej}})
	if len(scopes) == 0 {
		scopes = []string{"system/*.rs"}
	}
	cl, err := e.svc.AddClient(context.Background(), NewClient{Name: "Bulk exporter", Scopes: scopes, JWKS: c.jwks})
	if err != nil {
		t.Fatal(err)
	}
	c.id = cl.ID
	return c
}

// makeJWT builds a compact JWS the way a client (or an attacker) would,
// independently of the package's own signer.
func makeJWT(t *testing.T, header, claims map[string]any, alg string, key any) string {
	t.Helper()
	header["alg"] = alg
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	var sig []byte
	digest := func(h crypto.Hash) []byte {
		w := h.New()
		w.Write([]byte(input))
		return w.Sum(nil)
	}
	ecSig := func(k *ecdsa.PrivateKey, h crypto.Hash) []byte {
		r, s, err := ecdsa.Sign(rand.Reader, k, digest(h))
		if err != nil {
			t.Fatal(err)
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*n)
		r.FillBytes(out[:n])
		s.FillBytes(out[n:])
		return out
	}
	var err error
	switch alg {
	case "none":
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, digest(crypto.SHA256))
	case "RS384":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA384, digest(crypto.SHA384))
	case "PS384":
		sig, err = rsa.SignPSS(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA384, digest(crypto.SHA384), nil)
	case "ES256":
		sig = ecSig(key.(*ecdsa.PrivateKey), crypto.SHA256)
	case "ES384":
		sig = ecSig(key.(*ecdsa.PrivateKey), crypto.SHA384)
	case "HS256", "HS384":
		var h func() hash.Hash = sha256.New
		if alg == "HS384" {
			h = sha512.New384
		}
		m := hmac.New(h, key.([]byte))
		m.Write([]byte(input))
		sig = m.Sum(nil)
	default:
		t.Fatalf("makeJWT: %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64.EncodeToString(sig)
}

var jtiSeq int

func (c *testClient) claims(e *testEnv) map[string]any {
	jtiSeq++
	now := e.clock.Now()
	return map[string]any{"iss": c.id, "sub": c.id, "aud": testTokenURL, "exp": now.Add(4 * time.Minute).Unix(),
		"iat": now.Unix(), "jti": fmt.Sprintf("jti-%d-%d", jtiSeq, now.UnixNano())}
}

func (c *testClient) assertion(t *testing.T, e *testEnv, alg string) string {
	if alg == ES384 {
		return makeJWT(t, map[string]any{"kid": "ec1", "typ": "JWT"}, c.claims(e), ES384, c.ec)
	}
	return makeJWT(t, map[string]any{"kid": "rsa1", "typ": "JWT"}, c.claims(e), RS384, c.rsa)
}

func tokenForm(assertion string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {AssertionType},
		"client_assertion": {assertion}, "scope": {"system/Patient.rs system/Observation.rs"}}
}

func postForm(t *testing.T, srv *httptest.Server, path string, form url.Values, bearer string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	json.Unmarshal(b, &body)
	if body == nil {
		body = map[string]any{"_raw": string(b)}
	}
	return resp.StatusCode, body, resp.Header
}

// TestBackendServicesAssertionMatrix is test A9: 20 kinds of malformed or
// hostile client assertions, 10 of each, posted to /auth/token; none may
// get a token. RS384 and ES384 assertions done right all must.
func TestBackendServicesAssertionMatrix(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newEnv(t, st)
		c := registerClient(t, e)
		srv := httptest.NewServer(e.svc.Handler())
		defer srv.Close()
		attackerRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
		attackerEC, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		rsaPubJWK, _ := json.Marshal(mustJWK(t, &c.rsa.PublicKey, "rsa1", RS384))
		attackerJWK := mustJWK(t, &attackerEC.PublicKey, "ec1", ES384)
		rsaPubDER := c.rsa.PublicKey.N.Bytes()

		h := func(kid string) map[string]any { return map[string]any{"kid": kid, "typ": "JWT"} }
		with := func(m map[string]any, k string, v any) map[string]any {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
			return m
		}
		flip := func(tok string, part int) string {
			parts := strings.Split(tok, ".")
			b, _ := b64.DecodeString(parts[part])
			b[len(b)/2] ^= 0x01
			parts[part] = b64.EncodeToString(b)
			return strings.Join(parts, ".")
		}
		cases := []struct {
			name string
			make func() string
		}{
			{"alg none", func() string { return makeJWT(t, h("rsa1"), c.claims(e), "none", nil) }},
			{"stripped signature", func() string {
				tok := makeJWT(t, h("rsa1"), c.claims(e), RS384, c.rsa)
				return tok[:strings.LastIndexByte(tok, '.')+1]
			}},
			{"HS256 keyed with the registered public key (n)", func() string { return makeJWT(t, h("rsa1"), c.claims(e), "HS256", rsaPubDER) }},
			{"HS384 keyed with the registered public JWK", func() string { return makeJWT(t, h("rsa1"), c.claims(e), "HS384", rsaPubJWK) }},
			{"RS256 (not allowed)", func() string { return makeJWT(t, h("rsa1"), c.claims(e), "RS256", c.rsa) }},
			{"PS384 (not allowed)", func() string { return makeJWT(t, h("rsa1"), c.claims(e), "PS384", c.rsa) }},
			{"ES256 with a P-256 key", func() string { return makeJWT(t, h("ec1"), c.claims(e), "ES256", p256) }},
			{"RS384 naming the EC key", func() string { return makeJWT(t, h("ec1"), c.claims(e), RS384, c.rsa) }},
			{"wrong aud", func() string {
				return makeJWT(t, h("rsa1"), with(c.claims(e), "aud", "https://ehr.example/fhir"), RS384, c.rsa)
			}},
			{"exp more than 5 min ahead", func() string {
				return makeJWT(t, h("rsa1"), with(c.claims(e), "exp", e.clock.Now().Add(6*time.Minute).Unix()), RS384, c.rsa)
			}},
			{"expired", func() string {
				return makeJWT(t, h("rsa1"), with(c.claims(e), "exp", e.clock.Now().Add(-time.Second).Unix()), RS384, c.rsa)
			}},
			{"no exp", func() string { return makeJWT(t, h("rsa1"), with(c.claims(e), "exp", nil), RS384, c.rsa) }},
			{"no jti", func() string { return makeJWT(t, h("rsa1"), with(c.claims(e), "jti", nil), RS384, c.rsa) }},
			{"replayed jti", func() string {
				tok := c.assertion(t, e, RS384)
				if code, body, _ := postForm(t, srv, "/auth/token", tokenForm(tok), ""); code != 200 {
					t.Fatalf("first use of an assertion: %d %v", code, body)
				}
				return tok
			}},
			{"unknown kid", func() string { return makeJWT(t, h("rsa9"), c.claims(e), RS384, c.rsa) }},
			{"unlisted jku", func() string {
				return makeJWT(t, with(h("rsa1"), "jku", "https://attacker.example/jwks"), c.claims(e), RS384, c.rsa)
			}},
			{"embedded jwk (attacker's key)", func() string {
				return makeJWT(t, with(h("ec1"), "jwk", attackerJWK), c.claims(e), ES384, attackerEC)
			}},
			{"iss not sub", func() string { return makeJWT(t, h("rsa1"), with(c.claims(e), "sub", "other"), RS384, c.rsa) }},
			{"payload byte flipped", func() string { return flip(makeJWT(t, h("rsa1"), c.claims(e), RS384, c.rsa), 1) }},
			{"signed by another key under the registered kid", func() string { return makeJWT(t, h("rsa1"), c.claims(e), RS384, attackerRSA) }},
		}
		accepted, total, wrongStatus := 0, 0, 0
		for _, tc := range cases {
			for range 10 {
				code, body, _ := postForm(t, srv, "/auth/token", tokenForm(tc.make()), "")
				total++
				if code == 200 || body["access_token"] != nil {
					accepted++
					t.Errorf("%s: accepted", tc.name)
				}
				if code != 400 || body["error"] != "invalid_client" {
					wrongStatus++
					t.Errorf("%s: %d %v, want 400 invalid_client", tc.name, code, body)
				}
			}
		}
		ok := map[string]int{}
		for _, alg := range []string{RS384, ES384} {
			for range 10 {
				code, body, _ := postForm(t, srv, "/auth/token", tokenForm(c.assertion(t, e, alg)), "")
				if code == 200 && body["token_type"] == "bearer" && body["expires_in"] == float64(300) &&
					body["scope"] == "system/Patient.rs system/Observation.rs" && body["access_token"] != nil {
					ok[alg]++
				} else {
					t.Errorf("%s positive control: %d %v", alg, code, body)
				}
			}
		}
		t.Logf("A9 backend-services assertion matrix: accepted: %d / %d (%d kinds × 10; non-400 answers: %d); "+
			"positive controls accepted: RS384 %d / 10, ES384 %d / 10", accepted, total, len(cases), wrongStatus, ok[RS384], ok[ES384])

		// The request around the assertion (onc g10 bulk_data_authorization).
		for _, tc := range []struct {
			name string
			edit func(url.Values)
			code string
		}{
			{"grant_type password", func(f url.Values) { f.Set("grant_type", "password") }, "unsupported_grant_type"},
			{"no grant_type", func(f url.Values) { f.Del("grant_type") }, "invalid_request"},
			{"assertion type wrong", func(f url.Values) { f.Set("client_assertion_type", "urn:x") }, "invalid_client"},
			{"no assertion", func(f url.Values) { f.Del("client_assertion") }, "invalid_request"},
			{"no scope", func(f url.Values) { f.Del("scope") }, "invalid_scope"},
			{"only scopes not registered", func(f url.Values) { f.Set("scope", "system/Patient.cud patient/*.rs") }, "invalid_scope"},
			{"duplicate parameter", func(f url.Values) { f.Add("grant_type", "client_credentials") }, "invalid_request"},
		} {
			f := tokenForm(c.assertion(t, e, RS384))
			tc.edit(f)
			if code, body, _ := postForm(t, srv, "/auth/token", f, ""); code != 400 || body["error"] != tc.code {
				t.Errorf("%s: %d %v, want 400 %s", tc.name, code, body, tc.code)
			}
		}
		// Scopes are narrowed to the registration.
		f := tokenForm(c.assertion(t, e, ES384))
		f.Set("scope", "system/*.cruds system/Patient.read patient/Observation.rs")
		code, body, _ := postForm(t, srv, "/auth/token", f, "")
		if code != 200 || body["scope"] != "system/*.rs system/Patient.read" {
			t.Errorf("narrowing: %d %v, want scope \"system/*.rs system/Patient.read\"", code, body)
		}
		// The token works at the resource server.
		p, err := e.svc.TokenPrincipal(context.Background(), body["access_token"].(string), "127.0.0.1")
		if err != nil || p.Subject != "client/"+c.id || p.Role != hale.RoleSystem || p.Client != c.id ||
			strings.Join(p.Scopes, " ") != "system/*.rs system/Patient.read" {
			t.Fatalf("principal %+v, %v", p, err)
		}
	})
}

func mustJWK(t *testing.T, pub crypto.PublicKey, kid, alg string) JWK {
	j, err := publicJWK(pub, kid, alg)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// getToken runs client_credentials for c and returns the access token.
func getToken(t *testing.T, e *testEnv, c *testClient) string {
	t.Helper()
	tok, err := e.svc.ClientCredentials(context.Background(), tokenForm(c.assertion(t, e, RS384)))
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// TestIntrospection is test A8: 100 active tokens must carry active,
// scope, client_id and exp (and no patient or fhirUser, which were not
// granted); 200 expired, revoked, garbage or forged ones must answer
// exactly {"active":false}.
func TestIntrospection(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newEnv(t, st)
		c := registerClient(t, e)
		srv := httptest.NewServer(e.svc.Handler())
		defer srv.Close()
		caller := getToken(t, e, c) // the resource server's own token
		post := func(token, bearer string) (int, string) {
			req, _ := http.NewRequest("POST", srv.URL+"/auth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, strings.TrimSpace(string(b))
		}
		violations, checks := 0, 0
		violate := func(format string, a ...any) {
			violations++
			t.Errorf(format, a...)
		}
		for range 100 {
			tok := getToken(t, e, c)
			code, body := post(tok, caller)
			checks++
			var m map[string]any
			json.Unmarshal([]byte(body), &m)
			if code != 200 || m["active"] != true || m["scope"] != "system/Patient.rs system/Observation.rs" ||
				m["client_id"] != c.id || m["exp"] == nil || m["sub"] != "client/"+c.id {
				violate("active token: %d %s", code, body)
			}
			if _, ok := m["patient"]; ok {
				violate("patient present though not granted: %s", body)
			}
			if _, ok := m["fhirUser"]; ok {
				violate("fhirUser present though not granted: %s", body)
			}
		}
		inactive := func(kind, tok string) {
			checks++
			if code, body := post(tok, caller); code != 200 || body != `{"active":false}` {
				violate("%s token: %d %s, want exactly {\"active\":false}", kind, code, body)
			}
		}
		// Revoked: 50.
		for range 50 {
			tok := getToken(t, e, c)
			if err := e.svc.Revoke(context.Background(), tok, &hale.Principal{Client: c.id}); err != nil {
				t.Fatal(err)
			}
			inactive("revoked", tok)
		}
		// Garbage: 50.
		for i := range 50 {
			inactive("garbage", []string{"x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("z", 100), "Bearer"}[i%5]+fmt.Sprint(i))
		}
		// Forged: 50, signed by a key of the attacker's under our kid.
		k, err := e.svc.signer(context.Background(), ES256)
		if err != nil {
			t.Fatal(err)
		}
		forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		good := getToken(t, e, c)
		p, _ := parseJWS(good)
		var claims map[string]any
		json.Unmarshal(p.payload, &claims)
		for range 50 {
			inactive("forged", makeJWT(t, map[string]any{"kid": k.kid, "typ": "JWT"}, claims, ES256, forger))
		}
		// Expired: 50, after the clock moves past their exp.
		var old []string
		for range 50 {
			old = append(old, getToken(t, e, c))
		}
		e.clock.Advance(5*time.Minute + time.Second)
		caller = getToken(t, e, c)
		for _, tok := range old {
			inactive("expired", tok)
		}
		t.Logf("A8 introspection contract: violations: %d / %d (100 active, 50 revoked, 50 garbage, 50 forged, 50 expired)", violations, checks)

		// Introspection needs an authorized caller.
		if code, _ := post(caller, ""); code != 401 {
			t.Errorf("anonymous introspection: %d, want 401", code)
		}
		if code, _ := post(caller, "garbage"); code != 401 {
			t.Errorf("introspection with a bad token: %d, want 401", code)
		}
	})
}

// TestRevocationAtOnce: revoking a token, or disabling its client, makes
// it fail at the very next request on every handle of the database.
func TestRevocationAtOnce(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newEnv(t, st)
		// A second service on the same records: another node.
		other, err := New(context.Background(), Options{Records: st.(hale.Records), SecretKey: e.key,
			Issuer: testIssuer, Audience: testAudience, Now: e.clock.Now, Argon2: testArgon2})
		if err != nil {
			t.Fatal(err)
		}
		c := registerClient(t, e)
		srv := httptest.NewServer(e.svc.Handler())
		defer srv.Close()
		ctx := context.Background()
		tok := getToken(t, e, c)
		if _, err := other.TokenPrincipal(ctx, tok, ""); err != nil {
			t.Fatalf("the other node refuses a good token: %v", err)
		}
		// Another client cannot revoke it.
		c2 := registerClient(t, e)
		if code, _, _ := postForm(t, srv, "/auth/revoke", url.Values{"token": {tok}}, getToken(t, e, c2)); code != 403 {
			t.Errorf("revocation by another client: %d, want 403", code)
		}
		if code, _, _ := postForm(t, srv, "/auth/revoke", url.Values{"token": {tok}}, ""); code != 401 {
			t.Errorf("anonymous revocation: %d, want 401", code)
		}
		// Its own client revokes it with a client assertion.
		f := url.Values{"token": {tok}, "client_assertion_type": {AssertionType}, "client_assertion": {c.assertion(t, e, ES384)}}
		if code, body, _ := postForm(t, srv, "/auth/revoke", f, ""); code != 200 {
			t.Fatalf("revocation: %d %v", code, body)
		}
		// At once on the node that revoked it; on another node once its
		// grant cache (grantTTL, cache.go) has run out.
		if _, err := e.svc.TokenPrincipal(ctx, tok, ""); !hale.IsKind(err, hale.KindUnauthorized) {
			t.Fatalf("revoked token on the revoking node: %v", err)
		}
		e.clock.Advance(grantTTL)
		if _, err := other.TokenPrincipal(ctx, tok, ""); !hale.IsKind(err, hale.KindUnauthorized) {
			t.Fatalf("revoked token on the other node after %v: %v", grantTTL, err)
		}
		// Revoking garbage or twice is fine (RFC 7009 §2.2).
		if code, _, _ := postForm(t, srv, "/auth/revoke", url.Values{"token": {"garbage"}}, getToken(t, e, c)); code != 200 {
			t.Errorf("revoking garbage: %d", code)
		}
		// Disabling the client ends its tokens at once.
		tok = getToken(t, e, c)
		if _, err := other.TokenPrincipal(ctx, tok, ""); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SetClientDisabled(ctx, c.id, true); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.TokenPrincipal(ctx, tok, ""); !hale.IsKind(err, hale.KindUnauthorized) {
			t.Fatalf("token of a disabled client on the node that disabled it: %v", err)
		}
		e.clock.Advance(grantTTL)
		if _, err := other.TokenPrincipal(ctx, tok, ""); !hale.IsKind(err, hale.KindUnauthorized) {
			t.Fatalf("token of a disabled client: %v", err)
		}
		if _, err := e.svc.ClientCredentials(ctx, tokenForm(c.assertion(t, e, RS384))); err == nil {
			t.Fatal("a disabled client got a token")
		}
	})
}
