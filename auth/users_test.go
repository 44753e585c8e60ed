package auth

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/sqlite"
)

const pw = "correct horse battery staple"

func addUser(t *testing.T, e *testEnv, name string, role hale.Role) *Created {
	t.Helper()
	c, err := e.svc.AddUser(context.Background(), NewUser{Username: name, Password: pw, Role: role, FHIRUser: "Practitioner/p-" + name, Organizations: []string{"org1"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seedOf extracts the base32 TOTP seed from a provisioning URI.
func seedOf(t *testing.T, uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.Query().Get("secret") == "" {
		t.Fatalf("provisioning URI %q", uri)
	}
	return u.Query().Get("secret")
}

func TestAddUserValidation(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	ctx := context.Background()
	for _, nu := range []NewUser{
		{Username: "x", Password: pw, Role: hale.RoleNurse},
		{Username: "bad name", Password: pw, Role: hale.RoleNurse},
		{Username: "nina", Password: "short", Role: hale.RoleNurse},
		{Username: "nina", Password: pw, Role: "surgeon"},
		{Username: "nina", Password: pw, Role: hale.RoleSystem},
		{Username: "nina", Password: pw, Role: hale.RoleNurse, FHIRUser: "Observation/1"},
		{Username: "nina", Password: pw, Role: hale.RolePatient, FHIRUser: "Practitioner/1"},
		{Username: "nina", Password: pw, Role: hale.RoleNurse, Organizations: []string{"a b"}},
	} {
		if _, err := e.svc.AddUser(ctx, nu); !hale.IsKind(err, hale.KindInvalid) {
			t.Errorf("AddUser(%+v): %v, want invalid", nu, err)
		}
	}
	c := addUser(t, e, "Nina", hale.RoleNurse)
	if c.ProvisioningURI != "" {
		t.Error("a nurse got a TOTP seed (MFA is for admin and physician by default)")
	}
	if _, err := e.svc.AddUser(ctx, NewUser{Username: "nINA", Password: pw, Role: hale.RoleNurse}); !hale.IsKind(err, hale.KindConflict) {
		t.Errorf("duplicate username (other case): %v", err)
	}
	for _, r := range []hale.Role{hale.RoleAdmin, hale.RolePhysician} {
		c := addUser(t, e, "u-"+string(r), r)
		if !strings.HasPrefix(c.ProvisioningURI, "otpauth://totp/Hale:u-"+string(r)+"?") {
			t.Errorf("%s: provisioning URI %q", r, c.ProvisioningURI)
		}
	}
}

func openSQLite(t *testing.T) *sqlite.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hale.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestIdleLogoff is test D24: sessions idle longer than the idle timeout
// (15 minutes) are refused by the server, activity keeps them alive, and
// once expired nothing brings them back.
func TestIdleLogoff(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newEnv(t, st)
		addUser(t, e, "nurse1", hale.RoleNurse)
		srv, served := guarded(e, PublicRoutes)
		defer srv.Close()
		login := func() *http.Cookie {
			code, body, h := postForm(t, srv, "/auth/login", url.Values{"username": {"nurse1"}, "password": {pw}}, "")
			if code != 200 {
				t.Fatalf("login: %d %v", code, body)
			}
			resp := http.Response{Header: h}
			for _, c := range resp.Cookies() {
				if c.Name == SessionCookie && c.HttpOnly && c.Secure && c.SameSite == http.SameSiteStrictMode {
					return c
				}
			}
			t.Fatalf("no secure session cookie in %v", h)
			return nil
		}
		const sessions, each = 10, 100
		var cookies []*http.Cookie
		for range sessions {
			cookies = append(cookies, login())
		}
		// Activity every 14 minutes keeps them alive for an hour.
		for range 4 {
			e.clock.Advance(14 * time.Minute)
			for i, c := range cookies {
				if code, _, _ := get(t, srv, "/fhir/Patient", "", c); code != 200 {
					t.Fatalf("session %d refused after 14 idle minutes: %d", i, code)
				}
			}
		}
		// Then idle for the timeout.
		e.clock.Advance(15 * time.Minute)
		before := served.Load()
		for _, c := range cookies {
			for range each {
				code, h, body := get(t, srv, "/fhir/Patient", "", c)
				if code != 401 || h.Get("WWW-Authenticate") == "" || !strings.Contains(body, "OperationOutcome") {
					t.Errorf("after idle: %d %s", code, body)
				}
			}
		}
		// A later request does not revive them either.
		e.clock.Advance(-10 * time.Minute)
		for _, c := range cookies {
			if code, _, _ := get(t, srv, "/fhir/Patient", "", c); code != 401 {
				t.Errorf("an expired session came back: %d", code)
			}
		}
		t.Logf("D24 idle logoff: requests served after idle 15 min: %d / %d", served.Load()-before, sessions*each)
		if served.Load() != before {
			t.Fatal("requests served after the idle timeout")
		}
		// The absolute limit holds even with constant activity.
		c := login()
		for range 12*4 + 1 {
			e.clock.Advance(14*time.Minute + 59*time.Second)
			get(t, srv, "/fhir/Patient", "", c)
		}
		if code, _, _ := get(t, srv, "/fhir/Patient", "", c); code != 401 {
			t.Errorf("a session older than 12 h: %d", code)
		}
		// Logout ends a session at once.
		c = login()
		req, _ := http.NewRequest("POST", srv.URL+"/auth/logout", nil)
		req.AddCookie(c)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if code, _, _ := get(t, srv, "/fhir/Patient", "", c); code != 401 {
			t.Errorf("after logout: %d", code)
		}
	})
}

// TestCredentialStorage is test D25: after seeding passwords, TOTP seeds,
// sessions, access tokens, reset codes and signing keys, none of them
// appears in the database (the SQLite file and its WAL, byte for byte;
// on PostgreSQL every record) nor in the logs.
func TestCredentialStorage(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		path := ""
		if _, ok := st.(*sqlite.Store); ok { // a file whose name the test knows
			path = filepath.Join(t.TempDir(), "hale.db")
			s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			st = s
		}
		e := newEnv(t, st)
		ctx := context.Background()
		var secrets []string
		for i, r := range []hale.Role{hale.RoleAdmin, hale.RolePhysician, hale.RoleNurse} {
			p := fmt.Sprintf("Secret-Password-%d-%s", i, randomID())
			c, err := e.svc.AddUser(ctx, NewUser{Username: fmt.Sprint("user", i), Password: p, Role: r})
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, p)
			code := ""
			if c.ProvisioningURI != "" {
				seed := seedOf(t, c.ProvisioningURI)
				raw, _ := b32.DecodeString(seed)
				secrets = append(secrets, seed, string(raw), hex.EncodeToString(raw))
				code, _ = TOTPCode(seed, e.clock.Now())
			}
			sess, err := e.svc.Login(ctx, c.User.Username, p, code, "10.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, sess.ID)
			reset, err := e.svc.IssueReset(ctx, c.User.ID)
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, reset)
		}
		cl := registerClient(t, e)
		for range 3 {
			tok := getToken(t, e, cl)
			p, _ := parseJWS(tok)
			var claims accessClaims
			if err := strictJSON(p.payload, &claims); err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, tok, claims.Grant, b64.EncodeToString(p.sig))
		}
		// SMART App Launch: a code, access, refresh and id tokens, the
		// pre-auth cookie, a launch id.
		se := newSmartEnv(t, st)
		for range 2 {
			b := se.browser(t)
			q, verifier := authzQuery(se.public, appRedirect, "launch/patient patient/*.rs openid fhirUser offline_access")
			page := b.get("/auth/authorize?" + q.Encode())
			u, _ := url.Parse(se.srv.URL + "/auth/")
			for _, c := range b.c.Jar.Cookies(u) {
				secrets = append(secrets, c.Value)
			}
			cb := redirected(t, b.approve(b.signIn(page, "pat", "")), appRedirect)
			_, tok := se.token(t, redeem(se.public, cb.Get("code"), appRedirect, verifier))
			_, next := se.token(t, refreshForm(se.public, str(tok, "refresh_token")))
			secrets = append(secrets, cb.Get("code"), str(tok, "access_token"), str(tok, "refresh_token"), str(tok, "id_token"),
				str(next, "refresh_token"), str(next, "access_token"))
			if _, _, mac, ok := parseRefresh(str(next, "refresh_token")); ok {
				secrets = append(secrets, mac)
			}
			id, _, err := se.svc.NewLaunch(ctx, &hale.Principal{Subject: "user/" + se.nurse.User.ID, Role: hale.RoleNurse},
				LaunchContext{Patient: "pt-smith"})
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, id)
		}
		for _, alg := range []string{ES256, RS256} {
			k, err := e.svc.signer(ctx, alg)
			if err != nil {
				t.Fatal(err)
			}
			der, _ := marshalPKCS8(k.key)
			secrets = append(secrets, string(der[len(der)-48:]))
		}

		var dump []byte
		if path != "" {
			for _, f := range []string{path, path + "-wal"} {
				b, err := os.ReadFile(f)
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				dump = append(dump, b...)
			}
		} else {
			for _, kind := range []string{kindUser, kindUsername, kindSession, kindClient, kindGrant, kindJTI, kindLock, kindReset, kindKey, kindCurrentKey, kindCheck,
				kindAuthz, kindCode, kindLaunch} {
				recs, err := st.(hale.Records).ListRecords(ctx, kind, "", "", 1000)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					dump = append(dump, r.Key...)
					dump = append(dump, r.Data...)
				}
			}
		}
		if len(dump) < 1000 || !bytes.Contains(dump, []byte("$argon2id$v=19$")) {
			t.Fatalf("the dump (%d bytes) does not hold the accounts: the test reads the wrong thing", len(dump))
		}
		dump = append(dump, e.logs.Bytes()...)
		hits := 0
		for _, s := range secrets {
			if bytes.Contains(dump, []byte(s)) {
				hits++
				t.Errorf("plaintext secret found in the database or logs: %.24q…", s)
			}
		}
		t.Logf("D25 credential storage (%s, %d bytes + logs): plaintext secrets found: %d / %d (passwords, TOTP seeds, "+
			"session ids, reset codes, access tokens, grant ids, private signing keys; SMART codes, access, refresh and id tokens, "+
			"refresh MACs, pre-auth cookies, launch ids)", st.Engine(), len(dump), hits, len(secrets))
	})
}

// TestMFAAndBruteForce is test D26.
func TestMFAAndBruteForce(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newEnv(t, st)
		ctx := context.Background()
		doc := addUser(t, e, "drhouse", hale.RolePhysician)
		seed := seedOf(t, doc.ProvisioningURI)

		// Logins without the second factor: none, whatever is sent.
		withoutMFA := 0
		for i := range 100 {
			code := []string{"", "000000", "12345", "abcdef", "9999999"}[i%5]
			sess, err := e.svc.Login(ctx, "drhouse", pw, code, fmt.Sprintf("10.1.0.%d", i))
			if sess != nil || err == nil {
				withoutMFA++
			}
			if code == "" && !errors.Is(err, ErrSecondFactor) {
				t.Errorf("no code: %v, want ErrSecondFactor", err)
			}
			if i%10 == 9 {
				e.clock.Advance(24*time.Hour + time.Second) // let the lockout pass
			}
		}
		t.Logf("D26 MFA: logins without a valid second factor: %d / 100", withoutMFA)
		if withoutMFA != 0 {
			t.Fatal("logins without the second factor")
		}

		// A code works once; its reuse in the window is refused.
		e.clock.Advance(24*time.Hour + time.Second)
		code, _ := TOTPCode(seed, e.clock.Now())
		if _, err := e.svc.Login(ctx, "drhouse", pw, code, "10.2.0.1"); err != nil {
			t.Fatalf("login with a fresh code: %v", err)
		}
		e.clock.Advance(10 * time.Second)
		if _, err := e.svc.Login(ctx, "drhouse", pw, code, "10.2.0.2"); !errors.Is(err, ErrCredentials) {
			t.Fatalf("reused code: %v, want ErrCredentials", err)
		}
		// Two logins racing with one fresh code: one wins.
		e.clock.Advance(totpStep)
		code, _ = TOTPCode(seed, e.clock.Now())
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.svc.Login(ctx, "drhouse", pw, code, fmt.Sprintf("10.3.0.%d", i)); err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		t.Logf("D26 TOTP reuse: reuse within the window rejected; 8 concurrent logins with one code: %d succeeded", wins)
		if wins != 1 {
			t.Fatalf("%d concurrent logins with one code succeeded, want 1", wins)
		}

		// Brute force on one account from one address: 1,000 wrong
		// passwords; how many are checked before the lock?
		addUser(t, e, "victim", hale.RoleNurse)
		checked, lockedAt := 0, 0
		for i := range 1000 {
			_, err := e.svc.Login(ctx, "victim", fmt.Sprint("wrong-password-", i), "", "203.0.113.9")
			var le *LockedError
			if errors.As(err, &le) {
				if lockedAt == 0 {
					lockedAt = i + 1
				}
				continue
			}
			if !errors.Is(err, ErrCredentials) {
				t.Fatalf("attempt %d: %v", i, err)
			}
			checked++
		}
		// The right password is refused while locked.
		if _, err := e.svc.Login(ctx, "victim", pw, "", "198.51.100.1"); err == nil {
			t.Error("the locked account logged in")
		}
		// Unknown and known usernames fail alike (an unknown username
		// is locked out like a known one, too).
		e.clock.Advance(24*time.Hour + time.Second)
		_, errUnknown := e.svc.Login(ctx, "nobody-here", "wrong-password-x", "", "192.0.2.7")
		_, errKnown := e.svc.Login(ctx, "drhouse", "wrong-password-x", "", "192.0.2.8")
		if errUnknown != ErrCredentials || errKnown != ErrCredentials || errUnknown.Error() != errKnown.Error() {
			t.Errorf("unknown user %v, wrong password %v: must be the same error", errUnknown, errKnown)
		}
		// Another user from another address is not affected.
		if _, err := e.svc.Login(ctx, "nurse2", pw, "", "198.51.100.2"); !errors.Is(err, ErrCredentials) {
			t.Errorf("nurse2 does not exist: %v", err)
		}
		addUser(t, e, "nurse3", hale.RoleNurse)
		if _, err := e.svc.Login(ctx, "nurse3", pw, "", "198.51.100.3"); err != nil {
			t.Errorf("another user during the attack: %v", err)
		}
		t.Logf("D26 brute force: 1000 wrong passwords for one account from one address: passwords checked: %d, "+
			"locked from attempt %d (threshold %d)", checked, lockedAt, DefaultUserLockout.Threshold)
		if checked > DefaultUserLockout.Threshold {
			t.Fatalf("%d passwords checked, want at most %d", checked, DefaultUserLockout.Threshold)
		}
		// Backoff grows: after a lock passes, one more failure locks for
		// twice as long.
		for range DefaultUserLockout.Threshold {
			e.svc.Login(ctx, "victim2", "wrong-password-x", "", "203.0.113.11")
		}
		until1, _ := e.svc.lockedUntil(ctx, userLockKey("victim2"))
		if d := until1.Sub(e.clock.Now()); d != DefaultUserLockout.Base {
			t.Errorf("first lock %s, want %s", d, DefaultUserLockout.Base)
		}
		e.clock.Advance(until1.Sub(e.clock.Now()) + time.Second)
		e.svc.Login(ctx, "victim2", "wrong-again-1", "", "203.0.113.10")
		until2, _ := e.svc.lockedUntil(ctx, userLockKey("victim2"))
		if d := until2.Sub(e.clock.Now()); d < 2*DefaultUserLockout.Base {
			t.Errorf("lock after one more failure %s, want at least %s (exponential)", d, 2*DefaultUserLockout.Base)
		}

		// Spraying many usernames from one address locks the address.
		sprayChecked := 0
		for i := range 200 {
			_, err := e.svc.Login(ctx, fmt.Sprint("spray", i), "wrong-password-x", "", "203.0.113.50")
			if errors.Is(err, ErrCredentials) {
				sprayChecked++
			}
		}
		t.Logf("D26 password spraying: 200 usernames from one address: attempts checked before the address lock: %d (threshold %d)",
			sprayChecked, DefaultAddressLockout.Threshold)
		if sprayChecked > DefaultAddressLockout.Threshold {
			t.Fatalf("%d checked, want at most %d", sprayChecked, DefaultAddressLockout.Threshold)
		}
	})
}

// TestLoginEndpoint: the HTTP login answers 401 alike for unknown users
// and wrong passwords, asks for the code, and answers 429 with
// Retry-After when locked or over the rate limit.
func TestLoginEndpoint(t *testing.T) {
	e := newEnv(t, openSQLite(t))
	doc := addUser(t, e, "drwho", hale.RolePhysician)
	srv, _ := guarded(e, PublicRoutes)
	defer srv.Close()
	form := func(u, p, c string) url.Values { return url.Values{"username": {u}, "password": {p}, "code": {c}} }
	c1, b1, _ := postForm(t, srv, "/auth/login", form("nobody", "wrong-password", ""), "")
	c2, b2, _ := postForm(t, srv, "/auth/login", form("drwho", "wrong-password", ""), "")
	if c1 != 401 || c2 != 401 || fmt.Sprint(b1) != fmt.Sprint(b2) {
		t.Errorf("unknown user %d %v; wrong password %d %v: must be the same", c1, b1, c2, b2)
	}
	if c, b, _ := postForm(t, srv, "/auth/login", form("drwho", pw, ""), ""); c != 401 || b["error"] != "mfa_required" {
		t.Errorf("no code: %d %v", c, b)
	}
	code, _ := TOTPCode(seedOf(t, doc.ProvisioningURI), e.clock.Now())
	if c, b, _ := postForm(t, srv, "/auth/login", form("drwho", pw, code), ""); c != 200 || b["role"] != "physician" {
		t.Errorf("good login: %d %v", c, b)
	}
	for range 10 {
		postForm(t, srv, "/auth/login", form("drwho", "wrong-password", ""), "")
	}
	c, b, h := postForm(t, srv, "/auth/login", form("drwho", pw, code), "")
	if c != 429 || h.Get("Retry-After") == "" {
		t.Errorf("locked: %d %v Retry-After %q", c, b, h.Get("Retry-After"))
	}

	// The per-address rate limit of this node.
	e2 := newEnv(t, openSQLite(t))
	e2.svc.limit = newLimiter(60, 5, e2.clock.Now)
	srv2 := httptestServer(e2)
	defer srv2.Close()
	limited, retry := 0, ""
	for range 20 {
		c, _, h := postForm(t, srv2, "/auth/token", url.Values{"grant_type": {"client_credentials"}}, "")
		if c == 429 {
			limited++
			retry = h.Get("Retry-After")
		}
	}
	if limited != 15 || retry != "1" {
		t.Errorf("20 token requests with burst 5: %d limited (Retry-After %q), want 15 and 1", limited, retry)
	}
}

// TestSetRole: a role change takes effect at the user's next request, a
// role that needs a second factor gets one (and then the login asks for
// it), a change into or out of the patient role is refused, and creating
// the account, each change and disabling it are recorded as permission
// changes.
func TestSetRole(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newEnv(t, st)
		fa := &accountAudit{}
		e.svc.opts.Audit = fa
		ctx := context.Background()
		n := addUser(t, e, "nurseroles", hale.RoleNurse)
		sess, err := e.svc.Login(ctx, "nurseroles", pw, "", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.SetRole(ctx, n.User.ID, hale.RoleFrontDesk, []string{"org1", "org2"}); err != nil {
			t.Fatal(err)
		}
		p, err := e.svc.SessionPrincipal(ctx, sess.ID, "192.0.2.1")
		if err != nil || p.Role != hale.RoleFrontDesk || len(p.Organizations) != 2 {
			t.Fatalf("after the change the session is %+v, %v; want front-desk in org1 and org2", p, err)
		}
		c, err := e.svc.SetRole(ctx, n.User.ID, hale.RolePhysician, nil)
		if err != nil || c.ProvisioningURI == "" || len(c.User.Organizations) != 2 {
			t.Fatalf("to physician: %+v, %v; want a one-time-code enrolment and the organizations kept", c, err)
		}
		if _, err := e.svc.Login(ctx, "nurseroles", pw, "", "192.0.2.1"); !errors.Is(err, ErrSecondFactor) {
			t.Errorf("a physician's login without a code: %v, want ErrSecondFactor", err)
		}
		if _, err := e.svc.SetRole(ctx, n.User.ID, hale.RolePatient, nil); !hale.IsKind(err, hale.KindInvalid) {
			t.Errorf("staff → patient: %v, want invalid", err)
		}
		if _, err := e.svc.SetRole(ctx, n.User.ID, "surgeon", nil); !hale.IsKind(err, hale.KindInvalid) {
			t.Errorf("an unknown role: %v, want invalid", err)
		}
		if _, err := e.svc.SetRole(ctx, "nobody", hale.RoleNurse, nil); !hale.IsKind(err, hale.KindNotFound) {
			t.Errorf("an unknown user: %v, want not found", err)
		}
		if err := e.svc.SetDisabled(ctx, n.User.ID, true); err != nil {
			t.Fatal(err)
		}
		fa.mu.Lock()
		defer fa.mu.Unlock()
		want := []string{
			"user/" + n.User.ID + " account nurseroles created: role nurse, organizations org1",
			"user/" + n.User.ID + " role nurse → frontdesk; organizations [org1] → [org1 org2]",
			"user/" + n.User.ID + " role frontdesk → physician; one-time-code enrolment issued",
			"user/" + n.User.ID + " account disabled",
		}
		if fmt.Sprint(fa.changes) != fmt.Sprint(want) {
			t.Errorf("permission changes audited:\n got %q\nwant %q", fa.changes, want)
		}
	})
}
