package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/internal/passkeytest"
)

// The relying party of newEnv's issuer (https://ehr.example/auth).
const testOrigin = "https://ehr.example"

// accountAudit is fakeAudit that also hears account changes.
type accountAudit struct {
	fakeAudit
	mu      sync.Mutex
	changes []string
}

func (a *accountAudit) PermissionChange(ctx context.Context, target, detail string, err error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.changes = append(a.changes, target+" "+detail)
	return nil
}

func (a *accountAudit) count(prefix string) int {
	a.fakeAudit.mu.Lock()
	defer a.fakeAudit.mu.Unlock()
	n := 0
	for _, e := range a.events {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

// registerPasskey registers a passkey of a for the user, as the account
// page does.
func registerPasskey(t *testing.T, e *testEnv, a *passkeytest.Authenticator, userID, name string) (*Passkey, *passkeytest.Credential) {
	t.Helper()
	ctx := context.Background()
	c, err := e.svc.BeginPasskeyRegistration(ctx, userID, pw, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	resp, cred, err := a.Create(c.Options, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := e.svc.FinishPasskeyRegistration(ctx, userID, c.ID, name, resp)
	if err != nil {
		t.Fatalf("finish registration: %v", err)
	}
	return pk, cred
}

// TestPasskeys registers passkeys with a software authenticator (ES256,
// "none" attestation, responses built by hand per WebAuthn Level 2) and
// signs in with them passwordless and as the second factor; then tries
// hostile answers — a wrong signature, a counter gone back or standing
// still, replays, another user's credential, a phishing origin, another
// RP ID, no user verification, a disabled account, a removed passkey, an
// expired challenge — none of which may open a session, each audited as
// a failed login.
func TestPasskeys(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newEnv(t, st)
		fa := &accountAudit{}
		e.svc.opts.Audit = fa
		// Failures are counted; the lockout itself is checked at the end.
		e.svc.opts.UserLockout = Lockout{Threshold: 1000, Base: time.Second, Max: time.Second, Window: time.Hour}
		ctx := context.Background()
		doc := addUser(t, e, "drpk", hale.RolePhysician) // has TOTP
		nurse := addUser(t, e, "nursepk", hale.RoleNurse)
		docID, nurseID := doc.User.ID, nurse.User.ID
		if !e.svc.PasskeysEnabled() || e.svc.PasskeyOrigin() != testOrigin {
			t.Fatalf("passkeys: enabled %v origin %q", e.svc.PasskeysEnabled(), e.svc.PasskeyOrigin())
		}

		// Registration needs the password again.
		if _, err := e.svc.BeginPasskeyRegistration(ctx, docID, "not the password", "192.0.2.1"); !hale.IsKind(err, hale.KindUnauthorized) {
			t.Fatalf("registration with a wrong password: %v", err)
		}
		phone := passkeytest.New()
		pk, docCred := registerPasskey(t, e, phone, docID, "Work phone")
		if pk.Name != "Work phone" || len(pk.ID) != 64 {
			t.Errorf("passkey %+v", pk)
		}
		if list, _ := e.svc.Passkeys(ctx, docID); len(list) != 1 || list[0].ID != pk.ID {
			t.Fatalf("passkeys of the user: %+v", list)
		}
		key := passkeytest.New()
		_, nurseCred := registerPasskey(t, e, key, nurseID, "")

		// Registration refusals.
		regRefused, regTried := 0, 0
		refuseReg := func(what string, userID, ceremonyID string, resp []byte) {
			t.Helper()
			regTried++
			if _, err := e.svc.FinishPasskeyRegistration(ctx, userID, ceremonyID, "x", resp); err != nil {
				t.Logf("refused, %s: %v", what, err)
				regRefused++
			} else {
				t.Errorf("registration accepted: %s", what)
			}
		}
		{
			c, _ := e.svc.BeginPasskeyRegistration(ctx, docID, pw, "192.0.2.1")
			resp, _, err := passkeytest.New().Create(c.Options, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			refuseReg("another user finishing the ceremony", nurseID, c.ID, resp)
			refuseReg("the ceremony answered twice", docID, c.ID, resp) // spent by the attempt above
			// The exclude list keeps an authenticator from registering twice.
			c, _ = e.svc.BeginPasskeyRegistration(ctx, docID, pw, "192.0.2.1")
			if _, _, err := phone.Create(c.Options, testOrigin); err == nil {
				t.Error("the exclude list did not name the registered passkey")
			}
			// The nurse's credential registered to the physician.
			resp, _ = key.Attest(nurseCred, passkeytest.Challenge(c.Options), testOrigin, "webauthn.create")
			refuseReg("a credential of another account", docID, c.ID, resp)
			c, _ = e.svc.BeginPasskeyRegistration(ctx, docID, pw, "192.0.2.1")
			resp, _, _ = passkeytest.New().Create(c.Options, "https://ehr.example.evil")
			refuseReg("another origin", docID, c.ID, resp)
			c, _ = e.svc.BeginPasskeyRegistration(ctx, docID, pw, "192.0.2.1")
			resp, _, _ = passkeytest.New().Create([]byte(strings.Replace(string(c.Options), passkeytest.Challenge(c.Options), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1)), testOrigin)
			refuseReg("another challenge", docID, c.ID, resp)
			c, _ = e.svc.BeginPasskeyRegistration(ctx, docID, pw, "192.0.2.1")
			resp, _, _ = passkeytest.New().Create(c.Options, testOrigin)
			e.clock.Advance(ceremonyTTL + time.Second)
			refuseReg("an expired ceremony", docID, c.ID, resp)
			refuseReg("garbage", docID, "no-such-ceremony", []byte(`{"id":"x"}`))
		}
		if list, _ := e.svc.Passkeys(ctx, docID); len(list) != 1 {
			t.Fatalf("refused registrations stored passkeys: %d", len(list))
		}
		fmt.Printf("passkey registrations refused: %d / %d\n", regRefused, regTried)

		// Passwordless sign-in: a session, counted as MFA, audited.
		login := func(username, password string, a *passkeytest.Authenticator) (*Session, error) {
			t.Helper()
			c, err := e.svc.BeginPasskeyLogin(ctx, username, password, "192.0.2.1")
			if err != nil {
				return nil, err
			}
			resp, _, err := a.Get(c.Options, testOrigin)
			if err != nil {
				t.Fatal(err)
			}
			return e.svc.FinishPasskeyLogin(ctx, c.ID, resp, "192.0.2.1")
		}
		okBefore := fa.count("login ok drpk")
		sess, err := login("", "", phone)
		if err != nil {
			t.Fatalf("passwordless sign-in: %v", err)
		}
		if sess.User.ID != docID {
			t.Fatalf("signed in as %s", sess.User.Username)
		}
		p, err := e.svc.SessionPrincipal(ctx, sess.ID, "192.0.2.1")
		if err != nil || p.Subject != "user/"+docID {
			t.Fatalf("session: %v %v", p, err)
		}
		var stored session
		e.svc.getJSON(ctx, kindSession, digest(sess.ID), &stored)
		if !stored.MFA {
			t.Error("a passkey session is not marked MFA")
		}
		// The password with the passkey as the second factor (no TOTP
		// code), for the physician and for the nurse.
		if sess, err = login("drpk", pw, phone); err != nil || sess.User.ID != docID {
			t.Fatalf("password + passkey: %v", err)
		}
		if sess, err = login("nursepk", pw, key); err != nil || sess.User.ID != nurseID {
			t.Fatalf("nurse password + passkey: %v", err)
		}
		if n := fa.count("login ok drpk user/"+docID) - okBefore; n != 2 {
			t.Errorf("successful passkey logins audited: %d, want 2", n)
		}
		if _, err := e.svc.BeginPasskeyLogin(ctx, "drpk", "wrong password", "192.0.2.1"); !errors.Is(err, ErrCredentials) {
			t.Errorf("wrong password: %v", err)
		}
		if list, _ := e.svc.Passkeys(ctx, docID); list[0].LastUsed.IsZero() || list[0].Credential.Authenticator.SignCount != docCred.Counter {
			t.Errorf("stored passkey after sign-in: last used %v, count %d (authenticator %d)", list[0].LastUsed,
				list[0].Credential.Authenticator.SignCount, docCred.Counter)
		}

		// Hostile answers. Each gets a fresh ceremony (unless the point
		// is the ceremony) and a fresh address, so that no lockout hides
		// a wrong acceptance.
		accepted, tried, addr := 0, 0, 0
		failsBefore := fa.count("login fail")
		try := func(what string, ceremonyID string, resp []byte) {
			t.Helper()
			tried++
			addr++
			s, err := e.svc.FinishPasskeyLogin(ctx, ceremonyID, resp, fmt.Sprintf("198.51.100.%d", addr))
			if err == nil || s != nil {
				accepted++
				t.Errorf("accepted: %s", what)
			} else if t.Logf("refused, %s: %v", what, err); !errors.Is(err, ErrPasskey) {
				t.Errorf("%s: %v, want ErrPasskey", what, err)
			}
		}
		begin := func(username, password string) *PasskeyCeremony {
			t.Helper()
			c, err := e.svc.BeginPasskeyLogin(ctx, username, password, "192.0.2.9")
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		for _, mode := range []struct{ user, pass string }{{"", ""}, {"drpk", pw}} {
			c := begin(mode.user, mode.pass)
			resp, _ := phone.Assert(docCred, otherKey, passkeytest.Challenge(c.Options), testOrigin, docCred.Counter+1)
			try("a signature by another key", c.ID, resp)

			c = begin(mode.user, mode.pass)
			resp, _ = phone.Assert(docCred, docCred.Key, passkeytest.Challenge(c.Options), testOrigin, docCred.Counter-1)
			try("the signature counter gone back", c.ID, resp)

			c = begin(mode.user, mode.pass)
			resp, _ = phone.Assert(docCred, docCred.Key, passkeytest.Challenge(c.Options), testOrigin, docCred.Counter)
			try("the signature counter standing still", c.ID, resp)

			// A good answer, then the same answer again.
			c = begin(mode.user, mode.pass)
			good, _, _ := phone.Get(c.Options, testOrigin)
			if _, err := e.svc.FinishPasskeyLogin(ctx, c.ID, good, "192.0.2.1"); err != nil {
				t.Fatalf("control sign-in: %v", err)
			}
			try("the same answer to its spent challenge", c.ID, good)
			c = begin(mode.user, mode.pass)
			try("an old answer to a new challenge", c.ID, good)

			// The nurse's credential, rightly signed, for the physician.
			c = begin(mode.user, mode.pass)
			foreign := *nurseCred
			foreign.UserHandle = []byte(docID)
			resp, _ = key.Assert(&foreign, nurseCred.Key, passkeytest.Challenge(c.Options), testOrigin, nurseCred.Counter+1)
			try("another user's credential under this user's handle", c.ID, resp)

			c = begin(mode.user, mode.pass)
			resp, _ = phone.Assert(docCred, docCred.Key, passkeytest.Challenge(c.Options), "https://ehr.example.evil", docCred.Counter+1)
			try("a phishing origin", c.ID, resp)

			c = begin(mode.user, mode.pass)
			otherRP := *docCred
			otherRP.RPID = "evil.example"
			resp, _ = phone.Assert(&otherRP, docCred.Key, passkeytest.Challenge(c.Options), testOrigin, docCred.Counter+1)
			try("another RP ID", c.ID, resp)

			c = begin(mode.user, mode.pass)
			resp, _ = phone.Assert(docCred, docCred.Key, passkeytest.Challenge(c.Options), testOrigin, docCred.Counter+1)
			e.clock.Advance(ceremonyTTL + time.Second)
			try("an expired challenge", c.ID, resp)
		}
		// The nurse's credential under its own handle, answering the
		// physician's second-factor challenge (only the physician's
		// passkeys are allowed).
		c := begin("drpk", pw)
		resp, _ := key.Assert(nurseCred, nurseCred.Key, passkeytest.Challenge(c.Options), testOrigin, nurseCred.Counter+1)
		try("another user's passkey as the physician's second factor", c.ID, resp)
		// Passwordless needs user verification.
		c = begin("", "")
		phone.Flags = passkeytest.FlagUP
		resp, _ = phone.Assert(docCred, docCred.Key, passkeytest.Challenge(c.Options), testOrigin, docCred.Counter+1)
		phone.Flags = passkeytest.FlagUP | passkeytest.FlagUV
		try("passwordless without user verification", c.ID, resp)
		try("an unknown ceremony", "no-such-ceremony", resp)
		// A disabled account.
		if err := e.svc.SetDisabled(ctx, nurseID, true); err != nil {
			t.Fatal(err)
		}
		c = begin("", "")
		resp, _ = key.Assert(nurseCred, nurseCred.Key, passkeytest.Challenge(c.Options), testOrigin, nurseCred.Counter+1)
		try("a disabled account", c.ID, resp)
		// A removed passkey.
		if err := e.svc.DeletePasskey(ctx, docID, pk.ID); err != nil {
			t.Fatal(err)
		}
		c = begin("", "")
		resp, _ = phone.Assert(docCred, docCred.Key, passkeytest.Challenge(c.Options), testOrigin, docCred.Counter+1)
		try("a removed passkey", c.ID, resp)
		if _, err := e.svc.BeginPasskeyLogin(ctx, "drpk", pw, "192.0.2.1"); !hale.IsKind(err, hale.KindInvalid) {
			t.Errorf("second factor without passkeys: %v", err)
		}
		fmt.Printf("hostile passkey sign-ins accepted: %d / %d\n", accepted, tried)
		if n := fa.count("login fail") - failsBefore; n != tried {
			t.Errorf("failed passkey sign-ins audited: %d / %d", n, tried)
		}
		fa.mu.Lock()
		if len(fa.changes) != 3 || !strings.Contains(fa.changes[2], "passkey removed: Work phone") {
			t.Errorf("account changes audited: %q", fa.changes)
		}
		fa.mu.Unlock()

		// Failures lock the address out: 20 (DefaultAddressLockout).
		c = begin("", "")
		for range 20 {
			e.svc.FinishPasskeyLogin(ctx, "nope", []byte("{}"), "203.0.113.7")
		}
		if _, err := e.svc.FinishPasskeyLogin(ctx, c.ID, resp, "203.0.113.7"); !errors.As(err, new(*LockedError)) {
			t.Errorf("after 20 failures from one address: %v, want locked", err)
		}
		if _, err := e.svc.BeginPasskeyLogin(ctx, "", "", "203.0.113.7"); !errors.As(err, new(*LockedError)) {
			t.Errorf("a locked address beginning: %v, want locked", err)
		}
	})
}

// TestPasskeyRelyingParty: the relying party follows the issuer; a
// loopback address stands for localhost, other addresses have none.
func TestPasskeyRelyingParty(t *testing.T) {
	for issuer, want := range map[string]string{
		"https://ehr.example/auth":      "https://ehr.example",
		"https://ehr.example:8443/auth": "https://ehr.example:8443",
		"http://127.0.0.1:8080/auth":    "http://localhost:8080",
		"http://[::1]:8080/auth":        "http://localhost:8080",
		"http://localhost/auth":         "http://localhost",
		"https://10.1.2.3/auth":         "",
	} {
		wa, err := relyingParty(issuer)
		got := ""
		if err == nil {
			got = wa.Config.RPOrigins[0]
		}
		if got != want {
			t.Errorf("%s: origin %q (%v), want %q", issuer, got, err, want)
		}
	}
	var o struct {
		PublicKey struct {
			RPID string `json:"rpId"`
		} `json:"publicKey"`
	}
	wa, _ := relyingParty("http://127.0.0.1:8080/auth")
	a, _, _ := wa.BeginDiscoverableLogin()
	b, _ := json.Marshal(a)
	json.Unmarshal(b, &o)
	if o.PublicKey.RPID != "localhost" {
		t.Errorf("rpId %q", o.PublicKey.RPID)
	}
}
