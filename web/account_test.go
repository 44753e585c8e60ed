package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/internal/passkeytest"
	"github.com/hale-ehr/hale/postgres/pgtest"
)

// The relying party of the test issuer, http://hale.test/auth.
const webOrigin = "http://hale.test"

// postJSON posts a form and decodes the JSON answer.
func (c *client) postJSON(path string, form url.Values) (int, map[string]any) {
	c.e.t.Helper()
	status, body := c.post(path, form)
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		c.e.t.Fatalf("%s: %d, not JSON:\n%s", path, status, body)
	}
	return status, m
}

func ceremonyOf(t testing.TB, m map[string]any) (id string, options []byte) {
	t.Helper()
	id, _ = m["ceremony"].(string)
	options, _ = json.Marshal(m["options"])
	if id == "" {
		t.Fatalf("no ceremony in %v", m)
	}
	return id, options
}

var passkeyIDRE = regexp.MustCompile(`action="/app/account/passkeys/([0-9a-f]{64})/delete"`)

func TestAccountPasskeysSQLite(t *testing.T)   { testAccountPasskeys(t, newEnv(t)) }
func TestAccountPasskeysPostgres(t *testing.T) { testAccountPasskeys(t, newEnvOn(t, pgtest.Open(t))) }

// testAccountPasskeys: a signed-in clinician adds a passkey on the account
// page (password again, then the authenticator), signs in with it
// passwordless and in place of the one-time code, and removes it; forged
// answers, a missing form token and another site are refused.
func testAccountPasskeys(t *testing.T, e *env) {
	c := e.client()
	c.login()
	status, page := c.get("/app/account")
	if status != 200 || !strings.Contains(page, "You have no passkey yet") || !strings.Contains(page, `id="passkey-add"`) ||
		!strings.Contains(page, `data-origin="`+webOrigin+`"`) || !strings.Contains(page, "passkey.js") {
		t.Fatalf("account page: %d\n%s", status, page)
	}
	tok := csrf(t, page)

	// The password is asked again.
	if status, m := c.postJSON("/app/account/passkeys/options", url.Values{"csrf": {tok}, "password": {"wrong password!"}}); status != 400 ||
		!strings.Contains(m["error"].(string), "password is not correct") {
		t.Fatalf("wrong password: %d %v", status, m)
	}
	if status, _ := c.post("/app/account/passkeys/options", url.Values{"csrf": {"forged"}, "password": {testPassword}}); status != 403 {
		t.Fatalf("forged csrf: %d", status)
	}
	status, m := c.postJSON("/app/account/passkeys/options", url.Values{"csrf": {tok}, "password": {testPassword}})
	if status != 200 {
		t.Fatalf("options: %d %v", status, m)
	}
	id, options := ceremonyOf(t, m)
	laptop := passkeytest.New()
	resp, cred, err := laptop.Create(options, webOrigin)
	if err != nil {
		t.Fatal(err)
	}
	status, m = c.postJSON("/app/account/passkeys", url.Values{"csrf": {tok}, "ceremony": {id}, "name": {"Clinic laptop"}, "credential": {string(resp)}})
	if status != 200 || m["next"] != "/app/account?m=added" {
		t.Fatalf("add: %d %v", status, m)
	}
	_, page = c.get("/app/account?m=added")
	if !strings.Contains(page, "Clinic laptop") || !strings.Contains(page, "Passkey added") {
		t.Fatalf("account after adding:\n%s", page)
	}
	pid := passkeyIDRE.FindStringSubmatch(page)[1]

	// Passwordless, from a fresh browser.
	signIn := func(c *client, ticket string, answer func(options []byte, challenge string) []byte) (int, map[string]any) {
		t.Helper()
		_, page := c.get("/app/login?next=/app/patients")
		if !strings.Contains(page, `id="passkey-login" data-origin="`+webOrigin+`"`) || !strings.Contains(page, "Sign in with a passkey") {
			t.Fatalf("no passkey sign-in on the page:\n%s", page)
		}
		form := url.Values{"token": {tokenRE.FindStringSubmatch(page)[1]}}
		if ticket != "" {
			form.Set("ticket", ticket)
		}
		status, m := c.postJSON("/app/login/passkey/options", form)
		if status != 200 {
			t.Fatalf("sign-in options: %d %v", status, m)
		}
		id, options := ceremonyOf(t, m)
		form.Set("ceremony", id)
		form.Set("credential", string(answer(options, passkeytest.Challenge(options))))
		form.Set("next", "/app/patients")
		return c.postJSON("/app/login/passkey", form)
	}
	honest := func(options []byte, _ string) []byte {
		resp, _, err := laptop.Get(options, webOrigin)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	b := e.client()
	if status, m := signIn(b, "", honest); status != 200 || m["next"] != "/app/patients" {
		t.Fatalf("passwordless sign-in: %d %v", status, m)
	}
	if status, page := b.get("/app/patients"); status != 200 || !strings.Contains(page, "Find a patient") {
		t.Fatalf("after the passkey sign-in: %d", status)
	}

	// In place of the one-time code.
	b = e.client()
	_, page = b.get("/app/login")
	_, page = b.post("/app/login", url.Values{"token": {tokenRE.FindStringSubmatch(page)[1]}, "username": {testUser}, "password": {testPassword}})
	ticket := ticketRE.FindStringSubmatch(page)
	if ticket == nil || !strings.Contains(page, "Use a passkey instead") {
		t.Fatalf("code step:\n%s", page)
	}
	if status, m := signIn(b, html.UnescapeString(ticket[1]), honest); status != 200 {
		t.Fatalf("passkey as the second factor: %d %v", status, m)
	}
	if _, page := b.get("/app/patients"); !strings.Contains(page, "Find a patient") {
		t.Fatal("no session after the second factor")
	}

	// Forged answers open no session.
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := func(options []byte, challenge string) []byte {
		resp, _ := laptop.Assert(cred, otherKey, challenge, webOrigin, cred.Counter+1)
		return resp
	}
	b = e.client()
	if status, m := signIn(b, "", forged); status != 401 || !strings.Contains(m["error"].(string), "could not be verified") {
		t.Fatalf("forged signature: %d %v", status, m)
	}
	if _, page := b.get("/app/patients"); strings.Contains(page, "Find a patient") || !strings.Contains(page, "Sign in to Hale") {
		t.Fatal("a forged passkey answer opened a session")
	}
	phishing := func(options []byte, challenge string) []byte {
		resp, _ := laptop.Assert(cred, cred.Key, challenge, "http://hale.test.evil", cred.Counter+1)
		return resp
	}
	if status, _ := signIn(e.client(), "", phishing); status != 401 {
		t.Fatalf("another origin: %d", status)
	}
	// The form's token is required, and the request must be same-site.
	if status, _ := e.client().post("/app/login/passkey/options", url.Values{"token": {"forged"}}); status != 403 {
		t.Fatalf("no form token: %d", status)
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/app/login/passkey", strings.NewReader("token=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 403 {
		t.Fatalf("cross-site: %v %v", res, err)
	}

	// Remove it: it signs nobody in any more.
	if status, page := c.post("/app/account/passkeys/"+pid+"/delete", url.Values{"csrf": {tok}}); status != 200 || !strings.Contains(page, "Passkey removed") ||
		strings.Contains(page, "Clinic laptop") {
		t.Fatalf("remove: %d\n%s", status, page)
	}
	if status, _ := signIn(e.client(), "", honest); status != 401 {
		t.Fatalf("a removed passkey: %d", status)
	}
}

func TestConnectedAppsPageSQLite(t *testing.T) { testConnectedAppsPage(t, newEnv(t)) }
func TestConnectedAppsPagePostgres(t *testing.T) {
	testConnectedAppsPage(t, newEnvOn(t, pgtest.Open(t)))
}

// testConnectedAppsPage: a clinician signed in to the app authorizes a
// SMART app without typing the password again (single sign-on; the
// consent screen still comes), sees it on the account page, revokes it
// there, and the app's access and refresh tokens are refused at once. A
// patient account, which the clinician screens are not for, lands on
// its account page.
func testConnectedAppsPage(t *testing.T, e *env) {
	ctx := context.Background()
	const redirect = "https://app.example/cb"
	app, err := e.auth.AddClient(ctx, auth.NewClient{Name: "Growth Chart", Public: true, RedirectURIs: []string{redirect},
		Scopes: []string{"user/*.rs", "offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.login()
	// The browser stops at the app's callback.
	c.http.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == "app.example" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	buf := make([]byte, 32)
	rand.Read(buf)
	verifier := base64.RawURLEncoding.EncodeToString(buf)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {app.ID}, "redirect_uri": {redirect}, "scope": {"user/Patient.rs offline_access"},
		"state": {"s1"}, "aud": {"http://hale.test/fhir"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	status, page := c.get("/auth/authorize?" + q.Encode())
	if status != 200 || !strings.Contains(page, "Signed in as <strong>"+testUser+"</strong>") || strings.Contains(page, `name="password"`) {
		t.Fatalf("single sign-on: want the consent screen without a password, got %d:\n%s", status, page)
	}
	form := url.Values{"action": {"approve"}, "scope": {"user/Patient.rs", "offline_access"}}
	for _, name := range []string{"tx", "csrf"} {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(page)
		form.Set(name, html.UnescapeString(m[1]))
	}
	req, _ := http.NewRequest("POST", e.srv.URL+"/auth/authorize/consent", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	code := loc.Query().Get("code")
	if res.StatusCode != http.StatusSeeOther || code == "" {
		t.Fatalf("consent: %d %s", res.StatusCode, loc)
	}
	tokenReq := func(form url.Values) (int, map[string]any) {
		res, err := http.PostForm(e.srv.URL+"/auth/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		return res.StatusCode, m
	}
	status, tok := tokenReq(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {app.ID}, "code_verifier": {verifier}})
	access, _ := tok["access_token"].(string)
	refresh, _ := tok["refresh_token"].(string)
	if status != 200 || access == "" || refresh == "" {
		t.Fatalf("token: %d %v", status, tok)
	}
	if _, err := e.auth.TokenPrincipal(ctx, access, ""); err != nil {
		t.Fatalf("the app's token: %v", err)
	}

	_, page = c.get("/app/account")
	if !strings.Contains(page, "Growth Chart") || !strings.Contains(page, "Read and search Patient records") {
		t.Fatalf("the account page does not list the app:\n%s", page)
	}
	status, page = c.post("/app/account/apps/"+app.ID+"/revoke", url.Values{"csrf": {csrf(t, page)}})
	if status != 200 || !strings.Contains(page, "access was revoked") || strings.Contains(page, "<td>Growth Chart</td>") {
		t.Fatalf("revoke: %d\n%s", status, page)
	}
	if _, err := e.auth.TokenPrincipal(ctx, access, ""); !hale.IsKind(err, hale.KindUnauthorized) {
		t.Errorf("the access token after revocation: %v", err)
	}
	if status, m := tokenReq(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {app.ID}}); status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("the refresh token after revocation: %d %v", status, m)
	}
	// Revoking what is not there (or another's app) is a page, not a 500.
	if status, _ := c.post("/app/account/apps/"+app.ID+"/revoke", url.Values{"csrf": {csrf(t, page)}}); status != 404 {
		t.Errorf("revoking again: %d", status)
	}

	// A patient account: the account page, not the clinician screens.
	if _, err := e.auth.AddUser(ctx, auth.NewUser{Username: "pat.jones", Password: testPassword, Role: hale.RolePatient,
		FHIRUser: "Patient/" + e.patients[0]}); err != nil {
		t.Fatal(err)
	}
	p := e.client()
	_, page = p.get("/app/login")
	status, page = p.post("/app/login", url.Values{"token": {tokenRE.FindStringSubmatch(page)[1]}, "username": {"pat.jones"}, "password": {testPassword}})
	if status != 200 || !strings.Contains(page, "Your account") || !strings.Contains(page, "Connected apps") || strings.Contains(page, "Find patient") {
		t.Fatalf("patient sign-in: %d\n%s", status, page)
	}
	if status, _ := p.get("/app/patients"); status != 403 {
		t.Errorf("a patient on the clinician screens: %d", status)
	}
}

// TestPasskeySignInRateLimit: the passkey sign-in requests count against
// the per-address limit of the sign-in endpoints (429 with Retry-After).
func TestPasskeySignInRateLimit(t *testing.T) {
	e := newEnv(t)
	a, err := auth.New(context.Background(), auth.Options{Records: e.store.(hale.Records), SecretKey: make([]byte, 32),
		Issuer: "http://hale.test/auth", Audience: "http://hale.test/fhir", Argon2: testArgon2, RatePerMinute: 1, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	app, err := New(Options{FHIR: e.fhir, Auth: a, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Config.Handler = app
	c := e.client()
	_, page := c.get("/app/login")
	form := url.Values{"token": {tokenRE.FindStringSubmatch(page)[1]}}
	var statuses []int
	for range 5 {
		req, _ := http.NewRequest("POST", e.srv.URL+"/app/login/passkey/options", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
		if res.StatusCode == 429 && res.Header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if fmt.Sprint(statuses) != "[200 200 200 429 429]" {
		t.Errorf("statuses %v, want 3 served then 429", statuses)
	}
}
