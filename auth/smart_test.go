package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

// TestSMARTLaunch walks the launches end to end: standalone with the
// patient picker and an unticked scope, EHR launch, a patient user, a
// physician's second factor, a confidential client, deny, CSRF and the
// discovery document.
func TestSMARTLaunch(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newSmartEnv(t, st)
		ctx := context.Background()

		t.Run("standalone clinician with picker", func(t *testing.T) {
			b := e.browser(t)
			scope := "launch/patient openid fhirUser offline_access patient/Observation.rs patient/Condition.read user/Patient.rs system/Patient.rs"
			q, verifier := authzQuery(e.public, appRedirect, scope)
			page := b.get("/auth/authorize?" + q.Encode())
			if page.status != 200 || !strings.Contains(page.body, "Growth Chart") {
				t.Fatalf("sign-in page: %d\n%s", page.status, page.body)
			}
			if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(page.body, "<script") {
				t.Fatalf("CSP %q or script on the page", csp)
			}
			page = b.signIn(page, "nina", "")
			page = b.submit(page.formM(t, "GET", "/auth/authorize/patient"), url.Values{"name": {"smi"}})
			if !strings.Contains(page.body, "Alice Smith") || strings.Contains(page.body, "Smythe") {
				t.Fatalf("picker for smi:\n%s", page.body)
			}
			// A made-up patient id is refused.
			pick := page.form(t, "/auth/authorize/patient")
			if r := b.submit(pick, url.Values{"patient": {"pt-nobody"}}); r.status != 404 {
				t.Fatalf("unknown patient picked: %d", r.status)
			}
			page = b.submit(pick, nil)
			if !strings.Contains(page.body, "Alice Smith") {
				t.Fatalf("consent page names no patient:\n%s", page.body)
			}
			f := page.form(t, "/auth/authorize/consent")
			// Context scopes are not a choice; resource scopes are.
			if slices.Contains(f.boxes, "openid") || !slices.Contains(f.boxes, "patient/Observation.rs") {
				t.Fatalf("checkboxes %v", f.boxes)
			}
			cb := redirected(t, b.approve(page, "patient/Condition.read"), appRedirect)
			if cb.Get("state") != q.Get("state") || cb.Get("code") == "" {
				t.Fatalf("callback %v", cb)
			}
			status, tok := e.token(t, redeem(e.public, cb.Get("code"), appRedirect, verifier))
			if status != 200 {
				t.Fatalf("token: %d %v", status, tok)
			}
			granted := strings.Fields(str(tok, "scope"))
			for _, want := range []string{"launch/patient", "openid", "fhirUser", "offline_access", "patient/Observation.rs", "user/Patient.rs"} {
				if !slices.Contains(granted, want) {
					t.Errorf("granted %v lacks %s", granted, want)
				}
			}
			for _, not := range []string{"patient/Condition.read", "system/Patient.rs"} {
				if slices.Contains(granted, not) {
					t.Errorf("granted %v has %s", granted, not)
				}
			}
			if str(tok, "patient") != "pt-smith" || tok["need_patient_banner"] != true || str(tok, "refresh_token") == "" ||
				!strings.EqualFold(str(tok, "token_type"), "bearer") {
				t.Errorf("token response %v", tok)
			}
			// id_token: RS256 under a JWKS key, fhirUser absolute.
			p, err := parseJWS(str(tok, "id_token"))
			if err != nil {
				t.Fatal(err)
			}
			pub, err := e.svc.publicKey(ctx, p.header.Kid, RS256)
			if err != nil || p.verify(RS256, pub) != nil {
				t.Fatalf("id_token does not verify: %v", err)
			}
			var idc idClaims
			json.Unmarshal(p.payload, &idc)
			if idc.Aud != e.public.ID || idc.Iss != testIssuer || idc.FHIRUser != testAudience+"/Practitioner/p-nina" {
				t.Errorf("id_token claims %+v", idc)
			}
			// The access token carries the scopes and the patient.
			pr, err := e.svc.TokenPrincipal(ctx, str(tok, "access_token"), "")
			if err != nil || pr.Patient != "pt-smith" || !slices.Equal(pr.Scopes, granted) || pr.Client != e.public.ID || pr.Role != hale.RoleNurse {
				t.Fatalf("principal %+v, %v", pr, err)
			}
			in, err := e.svc.Introspect(ctx, str(tok, "access_token"))
			if err != nil || !in.Active || in.Patient != "pt-smith" || in.FHIRUser != testAudience+"/Practitioner/p-nina" || in.ClientID != e.public.ID {
				t.Fatalf("introspection %+v %v", in, err)
			}
		})

		t.Run("EHR launch", func(t *testing.T) {
			sess, err := e.svc.Login(ctx, "nina", pw, "", "10.0.0.9")
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("POST", e.srv.URL+"/auth/launch", strings.NewReader(`{"patient":"pt-smythe","encounter":"enc-1"}`))
			req.Header.Set("Content-Type", "application/json")
			req.AddCookie(&http.Cookie{Name: SessionCookie, Value: sess.ID})
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var lr map[string]any
			json.NewDecoder(res.Body).Decode(&lr)
			res.Body.Close()
			if res.StatusCode != 201 || str(lr, "launch") == "" {
				t.Fatalf("launch: %d %v", res.StatusCode, lr)
			}
			// Anonymous launch creation is refused.
			if status, _, _ := postForm(t, e.srv, "/auth/launch", url.Values{"patient": {"pt-smith"}}, ""); status != 401 {
				t.Fatalf("anonymous launch: %d", status)
			}
			b := e.browser(t)
			q, verifier := authzQuery(e.public, appRedirect, "launch openid patient/*.rs")
			q.Set("launch", str(lr, "launch"))
			page := b.signIn(b.get("/auth/authorize?"+q.Encode()), "nina", "")
			cb := redirected(t, b.approve(page), appRedirect)
			status, tok := e.token(t, redeem(e.public, cb.Get("code"), appRedirect, verifier))
			if status != 200 || str(tok, "patient") != "pt-smythe" || str(tok, "encounter") != "enc-1" ||
				tok["need_patient_banner"] != false || str(tok, "refresh_token") != "" {
				t.Fatalf("EHR launch token: %d %v", status, tok)
			}
			// The launch id is spent.
			b = e.browser(t)
			if cb := redirected(t, b.get("/auth/authorize?"+q.Encode()), appRedirect); cb.Get("error") != "invalid_request" || cb.Get("code") != "" {
				t.Fatalf("second use of a launch: %v", cb)
			}
			// Another user cannot take over a launch.
			id, _, err := e.svc.NewLaunch(ctx, &hale.Principal{Subject: "user/" + e.nurse.User.ID, Role: hale.RoleNurse}, LaunchContext{Patient: "pt-smith"})
			if err != nil {
				t.Fatal(err)
			}
			q.Set("launch", id)
			b = e.browser(t)
			cb = redirected(t, b.signIn(b.get("/auth/authorize?"+q.Encode()), "pat", ""), appRedirect)
			if cb.Get("error") != "access_denied" {
				t.Fatalf("launch of another user: %v", cb)
			}
		})

		t.Run("patient user", func(t *testing.T) {
			cb, verifier, _ := e.flow(t, e.public, appRedirect, "launch/patient patient/*.rs openid fhirUser", "pat")
			status, tok := e.token(t, redeem(e.public, cb.Get("code"), appRedirect, verifier))
			if status != 200 || str(tok, "patient") != "pt-own" {
				t.Fatalf("patient token: %d %v", status, tok)
			}
			pr, _ := e.svc.TokenPrincipal(ctx, str(tok, "access_token"), "")
			if pr == nil || pr.Patient != "pt-own" || pr.Role != hale.RolePatient {
				t.Fatalf("patient principal %+v", pr)
			}
		})

		t.Run("physician second factor", func(t *testing.T) {
			b := e.browser(t)
			q, verifier := authzQuery(e.public, appRedirect, "user/Patient.rs")
			page := b.signIn(b.get("/auth/authorize?"+q.Encode()), "phil", "")
			if page.status != 401 || !strings.Contains(page.body, "one-time code") {
				t.Fatalf("no code asked: %d", page.status)
			}
			code, _ := TOTPCode(seedOf(t, e.phys.ProvisioningURI), e.clock.Now())
			page = b.signIn(page, "phil", code)
			cb := redirected(t, b.approve(page), appRedirect)
			if status, tok := e.token(t, redeem(e.public, cb.Get("code"), appRedirect, verifier)); status != 200 {
				t.Fatalf("physician token: %d %v", status, tok)
			}
		})

		t.Run("confidential client", func(t *testing.T) {
			cb, verifier, _ := e.flow(t, e.confApp, "https://cardio.example/cb", "user/Observation.rs", "nina")
			f := redeem(e.confApp, cb.Get("code"), "https://cardio.example/cb", verifier)
			if status, tok := e.token(t, f); status != 401 || str(tok, "error") != "invalid_client" {
				t.Fatalf("confidential client without assertion: %d %v", status, tok)
			}
			cb, verifier, _ = e.flow(t, e.confApp, "https://cardio.example/cb", "user/Observation.rs", "nina")
			f = redeem(e.confApp, cb.Get("code"), "https://cardio.example/cb", verifier)
			f.Del("client_id")
			f.Set("client_assertion_type", AssertionType)
			f.Set("client_assertion", e.conf.assertion(t, e.testEnv, ES384))
			status, tok := e.token(t, f)
			if status != 200 || str(tok, "scope") != "user/Observation.rs" || str(tok, "patient") != "" || str(tok, "id_token") != "" {
				t.Fatalf("confidential client: %d %v", status, tok)
			}
			// Introspection names no patient or fhirUser that was not granted.
			if in, err := e.svc.Introspect(ctx, str(tok, "access_token")); err != nil || !in.Active || in.Patient != "" || in.FHIRUser != "" {
				t.Fatalf("introspection %+v %v", in, err)
			}
		})

		t.Run("deny, CSRF, foreign browser", func(t *testing.T) {
			b := e.browser(t)
			q, _ := authzQuery(e.public, appRedirect, "user/Patient.rs")
			consent := b.signIn(b.get("/auth/authorize?"+q.Encode()), "nina", "")
			f := consent.form(t, "/auth/authorize/consent")
			if r := b.submit(f, url.Values{"action": {"approve"}, "csrf": {"forged"}}); r.status != 403 || r.header.Get("Location") != "" {
				t.Fatalf("forged CSRF token: %d", r.status)
			}
			other := e.browser(t) // same form, another browser (no cookie)
			if r := other.submit(f, url.Values{"action": {"approve"}}); r.status != 400 || r.header.Get("Location") != "" {
				t.Fatalf("form from another browser: %d", r.status)
			}
			cb := redirected(t, b.submit(f, url.Values{"action": {"deny"}}), appRedirect)
			if cb.Get("error") != "access_denied" || cb.Get("state") != q.Get("state") || cb.Get("code") != "" {
				t.Fatalf("deny: %v", cb)
			}
			if r := b.submit(f, url.Values{"action": {"approve"}}); r.header.Get("Location") != "" {
				t.Fatalf("approve after deny redirected")
			}
		})

		t.Run("discovery", func(t *testing.T) {
			res, err := e.srv.Client().Get(e.srv.URL + "/fhir/.well-known/smart-configuration")
			if err != nil {
				t.Fatal(err)
			}
			var c map[string]any
			json.NewDecoder(res.Body).Decode(&c)
			res.Body.Close()
			if res.StatusCode != 200 || str(c, "authorization_endpoint") != testIssuer+"/authorize" ||
				str(c, "token_endpoint") != testTokenURL || !reflectHas(c["code_challenge_methods_supported"], "S256") ||
				reflectHas(c["code_challenge_methods_supported"], "plain") || !reflectHas(c["capabilities"], "launch-ehr") ||
				!reflectHas(c["capabilities"], "permission-v2") || !reflectHas(c["grant_types_supported"], "refresh_token") {
				t.Fatalf("smart-configuration: %d %v", res.StatusCode, c)
			}
		})
	})
}

func reflectHas(v any, s string) bool {
	l, _ := v.([]any)
	return slices.Contains(l, any(s))
}

// TestPKCENegative is test A1: codes redeemed with a missing, blank or
// wrong verifier, or with the challenge itself as verifier (what plain
// would accept), 25 each; and authorization requests with plain or no
// challenge method. No token is issued.
func TestPKCENegative(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newSmartEnv(t, st)
		issued, total := 0, 0
		for i := range 100 {
			cb, verifier, _ := e.flow(t, e.public, appRedirect, "user/Patient.rs", "nina")
			var v string
			switch i % 4 {
			case 0:
				v = "\x00" // parameter absent
			case 1:
				v = ""
			case 2:
				_, other := pkce()
				v = other + "x" // a well-formed verifier of another launch
			case 3:
				v = s256(verifier) // the challenge, as plain would compare it
			}
			status, tok := e.token(t, redeem(e.public, cb.Get("code"), appRedirect, v))
			total++
			if status == 200 || str(tok, "access_token") != "" {
				issued++
			} else if status != 400 && status != 401 {
				t.Errorf("case %d: status %d", i%4, status)
			}
		}
		// Positive control: the right verifier gets a token.
		controls := 0
		for range 5 {
			cb, verifier, _ := e.flow(t, e.public, appRedirect, "user/Patient.rs", "nina")
			if status, _ := e.token(t, redeem(e.public, cb.Get("code"), appRedirect, verifier)); status == 200 {
				controls++
			}
		}
		// The authorization endpoint refuses plain and a missing method.
		codes := 0
		for _, method := range []string{"plain", "", "s256", "S512"} {
			b := e.browser(t)
			q, _ := authzQuery(e.public, appRedirect, "user/Patient.rs")
			q.Set("code_challenge_method", method)
			if method == "" {
				q.Del("code_challenge_method")
			}
			cb := redirected(t, b.get("/auth/authorize?"+q.Encode()), appRedirect)
			if cb.Get("code") != "" || cb.Get("error") != "invalid_request" {
				codes++
			}
		}
		b := e.browser(t)
		q, _ := authzQuery(e.public, appRedirect, "user/Patient.rs")
		q.Del("code_challenge")
		if cb := redirected(t, b.get("/auth/authorize?"+q.Encode()), appRedirect); cb.Get("error") != "invalid_request" {
			codes++
		}
		t.Logf("A1 PKCE (%s): tokens issued: %d / %d; authorization requests with plain/no/unknown method or no challenge accepted: %d / 5; "+
			"positive controls: %d / 5", st.Engine(), issued, total, codes, controls)
		if issued != 0 || codes != 0 || controls != 5 {
			t.Fail()
		}
	})
}

// TestCodeReplay is test A2: 200 codes redeemed twice (the second
// redemption fails and revokes the tokens of the first), codes redeemed
// by another client or with another redirect_uri, and expired codes.
func TestCodeReplay(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newSmartEnv(t, st)
		ctx := context.Background()
		const n = 200
		second, survived := 0, 0
		for range n {
			cb, verifier, _ := e.flow(t, e.public, appRedirect, "user/Patient.rs offline_access", "nina")
			f := redeem(e.public, cb.Get("code"), appRedirect, verifier)
			status, tok := e.token(t, f)
			if status != 200 {
				t.Fatalf("first redemption: %d %v", status, tok)
			}
			status, tok2 := e.token(t, f)
			if status == 200 || str(tok2, "error") != "invalid_grant" {
				second++
			}
			if _, err := e.svc.TokenPrincipal(ctx, str(tok, "access_token"), ""); err == nil {
				survived++
			}
			if s, _ := e.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {str(tok, "refresh_token")}, "client_id": {e.public.ID}}); s == 200 {
				survived++
			}
		}
		cross, crossTotal := 0, 0
		for i := range 30 {
			cb, verifier, _ := e.flow(t, e.public, appRedirect, "user/Patient.rs", "nina")
			f := redeem(e.public, cb.Get("code"), appRedirect, verifier)
			switch i % 3 {
			case 0:
				f.Set("client_id", e.public2.ID) // same redirect URI registered
			case 1:
				f.Set("redirect_uri", appRedirect2) // registered too, but not the one asked
			case 2:
				e.clock.Advance(codeTTL)
			}
			crossTotal++
			if status, _ := e.token(t, f); status == 200 {
				cross++
			}
		}
		t.Logf("A2 code replay (%s): second redemptions accepted: %d / %d; tokens of a replayed code still working: %d / %d; "+
			"cross-client, other redirect_uri or expired accepted: %d / %d", st.Engine(), second, n, survived, 2*n, cross, crossTotal)
		if second != 0 || survived != 0 || cross != 0 {
			t.Fail()
		}
	})
}

// TestRedirectAudState is test A3: crafted redirect URIs get an error
// page and never a redirect; a wrong aud never gets a code; a request
// without state gets an error page; every redirect to the app echoes
// state.
func TestRedirectAudState(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newSmartEnv(t, st)
		crafted := []string{
			appRedirect + "/", appRedirect + "x", appRedirect + "/../callback", appRedirect + "/extra",
			"https://app.example/cal", "https://app.example", "https://APP.example/callback", "https://app.example/Callback",
			"HTTPS://app.example/callback", "http://app.example/callback", "https://app.example:443/callback",
			"https://app.example:8443/callback", "https://evil.example@app.example/callback",
			"https://app.example@evil.example/callback", appRedirect + "@evil.example", "https://app.example.evil.example/callback",
			"https://evil.example/callback", "https://app.example%2Fcallback", appRedirect + "%2F..%2Fevil",
			"https://app.example/%63allback", appRedirect + "?x=1", appRedirect + "?", appRedirect + "#frag", appRedirect + "#",
			"//app.example/callback", "/callback", `https://app.example\@evil.example/callback`, appRedirect + `\`,
			" " + appRedirect, appRedirect + " ", appRedirect + "%00", appRedirect + "\x00", "https://app.example./callback",
			appRedirect + ";x", "https://app.example//callback", "https://app.example/./callback", "https://app.example/CALLBACK",
			"javascript:alert(1)", "data:text/html,x", appRedirect + "%20", "https://app.example%40evil.example/callback",
			"https://app.example:80/callback", "https://[::1]/callback", "https://127.0.0.1/callback", "https://app.example/callbac",
			"https://app.exampl/callback", appRedirect + "/.", "https://app.example/other/../callback", "",
			"https://cardio.example/cb", // another client's URI
		}
		sent := 0
		check := func(r *resp) {
			if r.header.Get("Location") != "" || r.status != 400 || strings.Contains(r.body, "code=") {
				sent++
			}
		}
		for _, uri := range crafted {
			q, _ := authzQuery(e.public, uri, "user/Patient.rs")
			check(e.browser(t).get("/auth/authorize?" + q.Encode()))
		}
		// Registered for one client but not the other; unknown client;
		// the same request as a form post.
		q, _ := authzQuery(e.public2, appRedirect2, "user/Patient.rs")
		check(e.browser(t).get("/auth/authorize?" + q.Encode()))
		q.Set("client_id", "nosuchclient")
		check(e.browser(t).get("/auth/authorize?" + q.Encode()))
		q, _ = authzQuery(e.public, appRedirect+"/", "user/Patient.rs")
		check(e.browser(t).post("/auth/authorize", q))
		redirects := len(crafted) + 3

		wrongAud := []string{"https://evil.example/fhir", testAudience + "x", testAudience + "/Patient", "https://ehr.example/FHIR",
			"http://ehr.example/fhir", "https://ehr.example/fhir/../auth", "", "https://ehr.example", testAudience + "?x",
			"https://ehr.example:443/fhir"}
		audAccepted, stateMissing, redirectsSeen := 0, 0, 0
		for _, aud := range wrongAud {
			q, _ := authzQuery(e.public, appRedirect, "user/Patient.rs")
			q.Set("aud", aud)
			if aud == "" {
				q.Del("aud")
			}
			b := e.browser(t)
			r := b.get("/auth/authorize?" + q.Encode())
			cb := redirected(t, r, appRedirect)
			redirectsSeen++
			if cb.Get("state") != q.Get("state") {
				stateMissing++
			}
			if cb.Get("error") == "" || cb.Get("code") != "" || strings.Contains(r.body, "/auth/authorize/signin") {
				audAccepted++
			}
		}
		noState := 0
		for _, state := range []string{"\x00", "", strings.Repeat("s", maxState+1)} {
			q, _ := authzQuery(e.public, appRedirect, "user/Patient.rs")
			q.Set("state", state)
			if state == "\x00" {
				q.Del("state")
			}
			r := e.browser(t).get("/auth/authorize?" + q.Encode())
			if r.header.Get("Location") != "" || r.status != 400 {
				noState++
			}
		}
		for range 10 {
			cb, _, state := e.flow(t, e.public, appRedirect, "user/Patient.rs", "nina")
			redirectsSeen++
			if cb.Get("state") != state || cb.Get("code") == "" {
				stateMissing++
			}
		}
		t.Logf("A3 (%s): codes (or any redirect) sent to unregistered URIs: %d / %d; wrong aud accepted: %d / %d; "+
			"requests without state answered by redirect: %d / 3; redirects missing the echoed state: %d / %d",
			st.Engine(), sent, redirects, audAccepted, len(wrongAud), noState, stateMissing, redirectsSeen)
		if sent != 0 || audAccepted != 0 || noState != 0 || stateMissing != 0 {
			t.Fail()
		}
	})
}

func refreshForm(app *Client, rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {app.ID}}
}

// TestRefreshRotation is test A6: 100 refresh chains of 5 rotations
// each; then an old refresh token of each chain is replayed: the replay
// is refused and the whole family (latest access and refresh tokens)
// is revoked.
func TestRefreshRotation(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newSmartEnv(t, st)
		ctx := context.Background()
		const chains, rotations = 100, 5
		replays, revoked, rotateFailures := 0, 0, 0
		for i := range chains {
			scope := "user/Patient.rs offline_access"
			if i%2 == 1 {
				scope = "user/Patient.rs online_access openid"
			}
			cb, verifier, _ := e.flow(t, e.public, appRedirect, scope, "nina")
			status, tok := e.token(t, redeem(e.public, cb.Get("code"), appRedirect, verifier))
			if status != 200 || str(tok, "refresh_token") == "" {
				t.Fatalf("token: %d %v", status, tok)
			}
			used := []string{str(tok, "refresh_token")}
			access := str(tok, "access_token")
			for range rotations {
				status, next := e.token(t, refreshForm(e.public, used[len(used)-1]))
				rt := str(next, "refresh_token")
				if status != 200 || rt == "" || slices.Contains(used, rt) || str(next, "access_token") == "" {
					rotateFailures++
					break
				}
				used, access = append(used, rt), str(next, "access_token")
			}
			if i == 0 {
				// A refresh may narrow the scope, never widen it.
				if s, n := e.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {used[len(used)-1]},
					"client_id": {e.public.ID}, "scope": {"user/Patient.rs user/Observation.rs"}}); s != 400 || str(n, "error") != "invalid_scope" {
					t.Fatalf("widening refresh: %d %v", s, n)
				}
				// Another client cannot use the token.
				if s, _ := e.token(t, refreshForm(e.public2, used[len(used)-1])); s == 200 {
					t.Fatal("another client refreshed")
				}
			}
			old := used[i%(len(used)-1)] // any token but the latest
			if status, _ := e.token(t, refreshForm(e.public, old)); status == 200 {
				replays++
			}
			_, accessErr := e.svc.TokenPrincipal(ctx, access, "")
			latest, _ := e.token(t, refreshForm(e.public, used[len(used)-1]))
			if accessErr != nil && latest == 400 {
				revoked++
			}
		}
		t.Logf("A6 refresh (%s): %d chains × %d rotations, rotation failures: %d; replays accepted: %d / %d; "+
			"families revoked after replay: %d / %d (%d%%)", st.Engine(), chains, rotations, rotateFailures,
			replays, chains, revoked, chains, 100*revoked/chains)
		if rotateFailures != 0 || replays != 0 || revoked != chains {
			t.Fail()
		}
		// Refreshes racing with one token: at most one wins, and the
		// family does not survive the race.
		cb0, v0, _ := e.flow(t, e.public, appRedirect, "user/Patient.rs offline_access", "nina")
		_, tok0 := e.token(t, redeem(e.public, cb0.Get("code"), appRedirect, v0))
		var wins atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s, _ := e.token(t, refreshForm(e.public, str(tok0, "refresh_token"))); s == 200 {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		_, accessErr := e.svc.TokenPrincipal(ctx, str(tok0, "access_token"), "")
		t.Logf("A6 racing refreshes with one token (%s): accepted %d / 8; family revoked: %v", st.Engine(), wins.Load(), accessErr != nil)
		if wins.Load() > 1 || wins.Load() == 1 && accessErr == nil {
			t.Fail()
		}
		// No refresh token without offline_access or online_access.
		cb, verifier, _ := e.flow(t, e.public, appRedirect, "user/Patient.rs", "nina")
		if _, tok := e.token(t, redeem(e.public, cb.Get("code"), appRedirect, verifier)); str(tok, "refresh_token") != "" {
			t.Fatal("refresh token without offline_access/online_access")
		}
	})
}

// TestRevocationLatency is test A7: while a client reads as fast as it
// can with its access token, the app's access is revoked (RFC 7009,
// by the app with its refresh token); the time from the revocation's
// answer to the first 401 is measured, and a refresh after revocation
// fails, for 10 launches.
func TestRevocationLatency(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newSmartEnv(t, st)
		var worst time.Duration
		refreshAfter, launches := 0, 10
		for range launches {
			cb, verifier, _ := e.flow(t, e.public, appRedirect, "patient/*.rs offline_access launch/patient", "pat")
			_, tok := e.token(t, redeem(e.public, cb.Get("code"), appRedirect, verifier))
			access, rt := str(tok, "access_token"), str(tok, "refresh_token")
			var revokedAt atomic.Int64
			firstDenied := make(chan time.Time, 1)
			stop := make(chan struct{})
			go func() {
				defer close(firstDenied)
				for {
					select {
					case <-stop:
						return
					default:
					}
					req, _ := http.NewRequest("GET", e.srv.URL+"/fhir/Patient/pt-own", nil)
					req.Header.Set("Authorization", "Bearer "+access)
					res, err := e.srv.Client().Do(req)
					if err != nil {
						continue
					}
					res.Body.Close()
					if res.StatusCode == 401 {
						firstDenied <- time.Now()
						return
					}
					if res.StatusCode != 200 {
						t.Errorf("read: %d", res.StatusCode)
						return
					}
				}
			}()
			time.Sleep(30 * time.Millisecond) // reads are flowing
			status, body, _ := postForm(t, e.srv, "/auth/revoke", url.Values{"token": {rt}}, access)
			revokedAt.Store(time.Now().UnixNano())
			if status != 200 {
				t.Fatalf("revoke: %d %v", status, body)
			}
			var lat time.Duration
			select {
			case at, ok := <-firstDenied:
				if !ok {
					t.Fatal("reader stopped")
				}
				lat = max(0, at.Sub(time.Unix(0, revokedAt.Load())))
			case <-time.After(5 * time.Second):
				close(stop)
				t.Fatal("still served 5 s after the revocation")
			}
			worst = max(worst, lat)
			if s, b := e.token(t, refreshForm(e.public, rt)); s == 400 && str(b, "error") == "invalid_grant" {
				refreshAfter++
			}
		}
		t.Logf("A7 revocation (%s): time until first 401, worst of %d: %v (≤ 1 s); refresh after revocation refused (400 invalid_grant): %d / %d",
			st.Engine(), launches, worst, refreshAfter, launches)
		if worst > time.Second || refreshAfter != launches {
			t.Fail()
		}
	})
}
