package auth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

// TestPasswordReset: an admin-issued code resets the password once, ends
// the user's sessions, and expires.
func TestPasswordReset(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newEnv(t, st)
		ctx := context.Background()
		u := addUser(t, e, "nurse9", hale.RoleNurse)
		sess, err := e.svc.Login(ctx, "nurse9", pw, "", "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		code, err := e.svc.IssueReset(ctx, u.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ResetPassword(ctx, code, "short"); !hale.IsKind(err, hale.KindInvalid) {
			t.Fatalf("short password: %v", err)
		}
		const np = "a brand new passphrase"
		if err := e.svc.ResetPassword(ctx, code, np); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ResetPassword(ctx, code, np+"2"); !hale.IsKind(err, hale.KindUnauthorized) {
			t.Fatalf("second use of a reset code: %v", err)
		}
		if _, err := e.svc.SessionPrincipal(ctx, sess.ID, ""); !hale.IsKind(err, hale.KindUnauthorized) {
			t.Fatalf("a session survived the reset: %v", err)
		}
		if _, err := e.svc.Login(ctx, "nurse9", pw, "", "10.0.0.1"); !errors.Is(err, ErrCredentials) {
			t.Fatalf("old password: %v", err)
		}
		if _, err := e.svc.Login(ctx, "nurse9", np, "", "10.0.0.1"); err != nil {
			t.Fatalf("new password: %v", err)
		}
		code, _ = e.svc.IssueReset(ctx, u.User.ID)
		e.clock.Advance(ResetTTL)
		if err := e.svc.ResetPassword(ctx, code, np+"3"); !hale.IsKind(err, hale.KindUnauthorized) {
			t.Fatalf("expired code: %v", err)
		}
		// Disabling ends sessions too.
		sess, _ = e.svc.Login(ctx, "nurse9", np, "", "10.0.0.1")
		if err := e.svc.SetDisabled(ctx, u.User.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.SessionPrincipal(ctx, sess.ID, ""); !hale.IsKind(err, hale.KindUnauthorized) {
			t.Fatalf("a disabled user's session: %v", err)
		}
		if _, err := e.svc.Login(ctx, "nurse9", np, "", "10.0.0.2"); !errors.Is(err, ErrCredentials) {
			t.Fatalf("a disabled user logged in: %v", err)
		}
	})
}

// TestKeyRotation: keys rotate after KeyRotation; tokens signed by the
// old key verify during the grace period and the JWKS lists both; a
// second service (node) with another secret key refuses to start.
func TestKeyRotation(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newEnv(t, st)
		ctx := context.Background()
		c := registerClient(t, e)
		jwks, err := e.svc.JWKS(ctx)
		if err != nil || len(jwks.Keys) != 2 || jwks.Keys[0].Alg != ES256 || jwks.Keys[1].Alg != RS256 || jwks.Keys[0].D != "" {
			t.Fatalf("JWKS %+v %v, want one ES256 and one RS256 public key", jwks, err)
		}
		old := getToken(t, e, c)
		k1, _ := e.svc.signer(ctx, ES256)
		e.clock.Advance(30*24*time.Hour + time.Minute)
		k2, err := e.svc.signer(ctx, ES256)
		if err != nil || k2.kid == k1.kid {
			t.Fatalf("no rotation: %v", err)
		}
		jwks, _ = e.svc.JWKS(ctx)
		if len(jwks.Keys) != 4 {
			t.Fatalf("JWKS after rotation has %d keys, want 4 (old and new of each)", len(jwks.Keys))
		}
		_ = old // expired by now (5 min); the key's own life is what is tested
		tok := getToken(t, e, c)
		if _, err := e.svc.TokenPrincipal(ctx, tok, ""); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(retireGrace + time.Minute)
		e.svc.Sweep(ctx)
		jwks, _ = e.svc.JWKS(ctx)
		if len(jwks.Keys) != 2 {
			t.Fatalf("JWKS after the grace period has %d keys, want 2", len(jwks.Keys))
		}
		if _, err := e.svc.publicKey(ctx, k1.kid, ES256); err == nil {
			t.Fatal("a retired key still verifies")
		}
		other := make([]byte, 32)
		if _, err := New(ctx, Options{Records: st.(hale.Records), SecretKey: other, Issuer: testIssuer, Audience: testAudience}); err == nil {
			t.Fatal("a service with another secret key started on these records")
		}
	})
}
