package auth

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
)

// TestSMARTSingleSignOn: a user signed in to Hale who opens an app's
// authorization request from the app's site (no cookie goes with that
// navigation) gets, after the same-site interstitial, the consent screen
// without a password; the code is theirs. Without a session, after
// signing out, with an expired or disabled session, the sign-in page
// comes; the step is bound to the browser that started it; another person
// can sign in instead; an EHR launch of another user is refused.
func TestSMARTSingleSignOn(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newSmartEnv(t, st)
		ctx := context.Background()
		const scope = "openid fhirUser user/Patient.rs offline_access"
		isConsent := func(r *resp, username string) bool {
			return r.status == 200 && strings.Contains(r.body, `action="/auth/authorize/consent"`) &&
				strings.Contains(r.body, "Signed in as <strong>"+username+"</strong>") && !strings.Contains(r.body, `name="password"`)
		}
		isSignIn := func(r *resp) bool {
			return r.status == 200 && strings.Contains(r.body, `action="/auth/authorize/signin"`) && strings.Contains(r.body, `name="password"`)
		}

		t.Run("from the app's site, signed in", func(t *testing.T) {
			b := e.browser(t)
			b.signInSession("nina", "")
			q, verifier := authzQuery(e.public, appRedirect, scope)
			// The first response is the interstitial: no session went
			// with the navigation, so nothing is known of the user yet.
			first := b.getRaw("/auth/authorize?"+q.Encode(), true)
			m := refreshRE.FindStringSubmatch(first.body)
			if first.status != 200 || m == nil || strings.Contains(first.body, "Signed in as") {
				t.Fatalf("interstitial: %d\n%s", first.status, first.body)
			}
			page := b.get(html.UnescapeString(m[1]))
			if !isConsent(page, "nina") {
				t.Fatalf("want the consent screen without a password, got %d:\n%s", page.status, page.body)
			}
			if page.header.Get("Location") != "" || !strings.Contains(page.body, `action="/auth/authorize/switch"`) {
				t.Fatal("consent skipped, or no way to sign in as someone else")
			}
			cb := redirected(t, b.approve(page), appRedirect)
			status, tok := e.token(t, redeem(e.public, cb.Get("code"), appRedirect, verifier))
			if status != 200 || str(tok, "refresh_token") == "" {
				t.Fatalf("token: %d %v", status, tok)
			}
			p, err := e.svc.TokenPrincipal(ctx, str(tok, "access_token"), "")
			if err != nil || p.Subject != "user/"+e.nurse.User.ID {
				t.Fatalf("the app's token is not the session user's: %+v %v", p, err)
			}
		})

		t.Run("same-site, signed in: no interstitial", func(t *testing.T) {
			b := e.browser(t)
			b.signInSession("nina", "")
			q, _ := authzQuery(e.public, appRedirect, scope)
			page := b.getRaw("/auth/authorize?"+q.Encode(), false)
			if !isConsent(page, "nina") || strings.Contains(page.body, "http-equiv") {
				t.Fatalf("want the consent screen at once:\n%s", page.body)
			}
		})

		t.Run("not signed in, signed out, idle, disabled", func(t *testing.T) {
			q, _ := authzQuery(e.public, appRedirect, scope)
			b := e.browser(t)
			if page := b.getCrossSite("/auth/authorize?" + q.Encode()); !isSignIn(page) {
				t.Fatalf("no session: want the sign-in page:\n%s", page.body)
			}
			// Not cross-site and no cookie: no session to look for, so
			// the sign-in page at once.
			if page := b.getRaw("/auth/authorize?"+q.Encode(), false); !isSignIn(page) {
				t.Fatalf("same-site without a session: want the sign-in page at once:\n%s", page.body)
			}
			b = e.browser(t)
			sess := b.signInSession("nina", "")
			if err := e.svc.Logout(ctx, sess.ID); err != nil {
				t.Fatal(err)
			}
			if page := b.getCrossSite("/auth/authorize?" + q.Encode()); !isSignIn(page) {
				t.Fatalf("signed out: want the sign-in page:\n%s", page.body)
			}
			b = e.browser(t)
			b.signInSession("nina", "")
			e.clock.Advance(e.svc.opts.IdleTimeout)
			if page := b.getCrossSite("/auth/authorize?" + q.Encode()); !isSignIn(page) {
				t.Fatalf("idle session: want the sign-in page:\n%s", page.body)
			}
			c, err := e.svc.AddUser(ctx, NewUser{Username: "temp", Password: pw, Role: hale.RoleNurse})
			if err != nil {
				t.Fatal(err)
			}
			b = e.browser(t)
			b.signInSession("temp", "")
			e.svc.SetDisabled(ctx, c.User.ID, true)
			if page := b.getCrossSite("/auth/authorize?" + q.Encode()); !isSignIn(page) {
				t.Fatalf("disabled account: want the sign-in page:\n%s", page.body)
			}
		})

		t.Run("bound to the browser", func(t *testing.T) {
			// The victim is signed in; the attacker starts an
			// authorization in their own browser and makes the victim's
			// browser open its continue link.
			attacker := e.browser(t)
			q, _ := authzQuery(e.public, appRedirect, scope)
			first := attacker.getRaw("/auth/authorize?"+q.Encode(), true)
			m := refreshRE.FindStringSubmatch(first.body)
			if m == nil {
				t.Fatalf("no interstitial:\n%s", first.body)
			}
			victim := e.browser(t)
			victim.signInSession("nina", "")
			page := victim.get(html.UnescapeString(m[1]))
			if page.status != 400 || isConsent(page, "nina") {
				t.Fatalf("another browser's continue link: %d\n%s", page.status, page.body)
			}
			// And the attacker's browser, without the victim's session,
			// only gets the sign-in page.
			if page := attacker.get(html.UnescapeString(m[1])); !isSignIn(page) {
				t.Fatalf("attacker's continue: %d\n%s", page.status, page.body)
			}
		})

		t.Run("someone else signs in", func(t *testing.T) {
			b := e.browser(t)
			b.signInSession("nina", "")
			q, verifier := authzQuery(e.public, appRedirect, scope)
			page := b.getCrossSite("/auth/authorize?" + q.Encode())
			page = b.submit(page.form(t, "/auth/authorize/switch"), nil)
			if !isSignIn(page) {
				t.Fatalf("switch: want the sign-in page:\n%s", page.body)
			}
			code, _ := TOTPCode(seedOf(t, e.phys.ProvisioningURI), e.clock.Now())
			page = b.signIn(page, "phil", code)
			if !isConsent(page, "phil") || strings.Contains(page.body, `action="/auth/authorize/switch"`) {
				t.Fatalf("consent for phil:\n%s", page.body)
			}
			cb := redirected(t, b.approve(page), appRedirect)
			_, tok := e.token(t, redeem(e.public, cb.Get("code"), appRedirect, verifier))
			if p, err := e.svc.TokenPrincipal(ctx, str(tok, "access_token"), ""); err != nil || p.Subject != "user/"+e.phys.User.ID {
				t.Fatalf("token after switching: %+v %v", p, err)
			}
		})

		t.Run("EHR launch by another user", func(t *testing.T) {
			code, _ := TOTPCode(seedOf(t, e.phys.ProvisioningURI), e.clock.Now().Add(30e9))
			sess, err := e.svc.Login(ctx, "phil", pw, code, "10.0.0.9")
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("POST", e.srv.URL+"/auth/launch", strings.NewReader(`{"patient":"pt-smith"}`))
			req.Header.Set("Content-Type", "application/json")
			req.AddCookie(&http.Cookie{Name: SessionCookie, Value: sess.ID})
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var lr map[string]any
			json.NewDecoder(res.Body).Decode(&lr)
			res.Body.Close()
			b := e.browser(t)
			b.signInSession("nina", "")
			q, _ := authzQuery(e.public, appRedirect, "launch patient/*.rs")
			q.Set("launch", str(lr, "launch"))
			page := b.getCrossSite("/auth/authorize?" + q.Encode())
			if cb := redirected(t, page, appRedirect); cb.Get("error") != "access_denied" {
				t.Fatalf("another user's launch: %v", cb)
			}
		})
	})
}
