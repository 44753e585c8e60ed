package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/auth"
)

// TestBrowserPasskeyAndSingleSignOn drives chromium with a virtual
// authenticator (the DevTools WebAuthn domain): a physician signs in with
// the password and code, adds a passkey on the account page, signs out,
// signs in with the passkey alone; then, on an app's site (127.0.0.1, not
// the same site as localhost), follows the app's link to Hale's
// authorization: the Strict session cookie does not go with that
// navigation, the interstitial's same-site refresh brings it, and the
// consent screen comes without a password. Allow gives the app a code;
// the account page lists the app; Revoke ends its tokens.
func TestBrowserPasskeyAndSingleSignOn(t *testing.T) {
	chromium(t)
	e := newEnv(t)
	// Hale on http://localhost:port (a secure context, and a domain: an
	// RP ID cannot be an address), with an issuer to match.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	base := "http://localhost:" + port
	ctx := context.Background()
	a, err := auth.New(ctx, auth.Options{Records: e.store.(hale.Records), SecretKey: make([]byte, 32),
		Issuer: base + "/auth", Audience: base + "/fhir", Argon2: testArgon2, RatePerMinute: 10000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	app, err := New(Options{FHIR: e.fhir, Auth: a, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/app/", app)
	mux.Handle("/auth/", a.Handler())
	// Which authorization steps the browser sent the session cookie to.
	var (
		mu         sync.Mutex
		cookieSeen []string
	)
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/auth/authorize") {
			_, err := r.Cookie(auth.SessionCookie)
			mu.Lock()
			cookieSeen = append(cookieSeen, fmt.Sprintf("%s %s cookie=%v", r.Method, r.URL.Path, err == nil))
			mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	})
	srv := httptest.NewUnstartedServer(record)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	// The SMART app, on another site.
	gotCode := make(chan string, 1)
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cb" {
			gotCode <- r.URL.Query().Get("code")
			fmt.Fprint(w, `<!doctype html><title>Chart app</title><h1 id="done">Connected</h1>`)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>Chart app</title><a id="connect" href="%s">Connect to Hale</a>`, html.EscapeString(r.URL.Query().Get("to")))
	}))
	t.Cleanup(appSrv.Close)
	redirect := appSrv.URL + "/cb"
	client, err := a.AddClient(ctx, auth.NewClient{Name: "Chart app", Public: true, RedirectURIs: []string{redirect},
		Scopes: []string{"user/*.rs", "offline_access"}})
	if err != nil {
		t.Fatal(err)
	}

	w := &walker{t: t, ctx: browser(t, 1280, 900), dir: screenshotDir(t)}
	w.run("virtual authenticator", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{Protocol: "ctap2", Ctap2version: "ctap2_1", Transport: "internal",
				HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
		return err
	}))

	// Password and code, then the account page.
	w.run("open", chromedp.Navigate(base+"/app/login"), chromedp.WaitVisible(css("#username")))
	w.run("password", chromedp.SendKeys(css("#username"), testUser), chromedp.SendKeys(css("#password"), testPassword))
	w.nav("password", chromedp.Submit(css("#password")))
	w.run("code", chromedp.WaitVisible(css("#code")), chromedp.SendKeys(css("#code"), e.totp(0)))
	w.nav("code", chromedp.Submit(css("#code")))
	w.run("home", chromedp.WaitVisible(css("#recent-h")))
	w.nav("account", chromedp.Click(css(`a.user[href="/app/account"]`)))
	w.run("add form", chromedp.WaitVisible(css("#passkey-add")))
	w.expect("account", "main", "Passkeys", "You have no passkey yet", "Connected apps", "You have not connected any apps")
	w.run("add passkey", chromedp.SendKeys(css("#pk-name"), "Test laptop"), chromedp.SendKeys(css("#pk-password"), testPassword),
		chromedp.Click(css(`#passkey-add button[type=submit]`)))
	w.run("added", chromedp.WaitVisible(css(".flash")))
	w.expect("added", ".flash", "Passkey added")
	w.expect("added", "table.passkeys", "Test laptop")
	w.shot("passkey-01-account")

	// Sign out, then in with the passkey alone.
	w.nav("sign out", chromedp.Submit(css("#logout-form button")))
	w.run("sign-in page", chromedp.WaitVisible(css(".passkey-signin")))
	w.shot("passkey-02-sign-in")
	w.run("passkey sign-in", chromedp.Click(css(".passkey-signin")), chromedp.WaitVisible(css("#recent-h")))
	w.expect("signed in with the passkey", ".who", testUser)

	// Single sign-on from the app's site.
	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {client.ID}, "redirect_uri": {redirect}, "scope": {"user/Patient.rs offline_access"},
		"state": {"st1"}, "aud": {base + "/fhir"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	w.run("app site", chromedp.Navigate(appSrv.URL+"/?to="+url.QueryEscape(base+"/auth/authorize?"+q.Encode())), chromedp.WaitVisible(css("#connect")))
	w.run("connect", chromedp.Click(css("#connect")), chromedp.WaitVisible(css(`button[value="approve"]`)))
	w.expect("consent without a password", "main", "Chart app", "Signed in as "+testUser, "Allow")
	if n, _ := chromedp.Run(w.ctx, chromedp.Evaluate[int](`document.querySelectorAll('input[type=password]').length`)); n != 0 {
		t.Fatal("the consent step asked for a password")
	}
	w.shot("passkey-03-sso-consent")
	// The app's navigation came without the Strict cookie; Hale's own
	// refresh brought it.
	mu.Lock()
	if want := []string{"GET /auth/authorize cookie=false", "GET /auth/authorize/continue cookie=true"}; strings.Join(cookieSeen, "|") != strings.Join(want, "|") {
		t.Errorf("session cookie on the authorization steps: %q, want %q", cookieSeen, want)
	}
	mu.Unlock()
	w.run("allow", chromedp.Click(css(`button[value="approve"]`)), chromedp.WaitVisible(css("#done")))
	var code string
	select {
	case code = <-gotCode:
	case <-time.After(10 * time.Second):
		t.Fatal("the app got no code")
	}
	res, err := http.PostForm(srv.URL+"/auth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "client_id": {client.ID}, "code_verifier": {verifier}})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("token: %v %v", res, err)
	}
	var tok struct {
		Access string `json:"access_token"`
	}
	decodeBody(t, res, &tok)
	if p, err := a.TokenPrincipal(ctx, tok.Access, ""); err != nil || p.Name != testUser {
		t.Fatalf("the app's token: %+v %v", p, err)
	}

	// The account page lists the app; Revoke ends its access.
	w.run("account", chromedp.Navigate(base+"/app/account"), chromedp.WaitVisible(css("table.apps")))
	w.expect("connected apps", "table.apps", "Chart app", "Read and search Patient records")
	w.shot("passkey-04-connected-apps")
	w.nav("revoke", chromedp.Click(css(`table.apps button[type=submit]`)))
	w.run("revoked", chromedp.WaitVisible(css(".flash")))
	w.expect("revoked", ".flash", "access was revoked")
	if _, err := a.TokenPrincipal(ctx, tok.Access, ""); !hale.IsKind(err, hale.KindUnauthorized) {
		t.Fatalf("the app's token after Revoke: %v", err)
	}
}

func decodeBody(t *testing.T, res *http.Response, v any) {
	t.Helper()
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
