package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

// TestConnectedApps: the apps a user authorized are listed with their
// scopes, when granted and when last used; revoking one ends every token
// of every grant the user gave it at once (access tokens refused by the
// guard, refresh tokens by the token endpoint, introspection inactive),
// and nothing of another app or another user's grant to the same app.
func TestConnectedApps(t *testing.T) {
	engines(t, func(t *testing.T, st hale.Store) {
		e := newSmartEnv(t, st)
		ctx := context.Background()
		fa := &accountAudit{}
		e.svc.opts.Audit = fa
		nina, phil := e.nurse.User.ID, e.phys.User.ID
		granted := e.clock.Now().UTC()

		type tokens struct{ access, refresh string }
		authorize := func(app *Client, scope, username, code string) tokens {
			t.Helper()
			b := e.browser(t)
			q, verifier := authzQuery(app, appRedirect, scope)
			page := b.get("/auth/authorize?" + q.Encode())
			page = b.signIn(page, username, code)
			cb := redirected(t, b.approve(page), appRedirect)
			status, tok := e.token(t, redeem(app, cb.Get("code"), appRedirect, verifier))
			if status != 200 {
				t.Fatalf("token: %d %v", status, tok)
			}
			return tokens{str(tok, "access_token"), str(tok, "refresh_token")}
		}
		served := func(tok tokens) bool {
			t.Helper()
			status, _, _ := get(t, e.srv, "/fhir/Patient", tok.access, nil)
			return status == 200
		}
		refreshes := func(tok tokens, app *Client) (tokens, bool) {
			t.Helper()
			status, body := e.token(t, refreshForm(app, tok.refresh))
			return tokens{str(body, "access_token"), str(body, "refresh_token")}, status == 200
		}

		growth1 := authorize(e.public, "user/Patient.rs offline_access", "nina", "")
		growth2 := authorize(e.public, "user/Observation.rs online_access", "nina", "")
		other := authorize(e.public2, "user/Patient.rs online_access", "nina", "")
		code, _ := TOTPCode(seedOf(t, e.phys.ProvisioningURI), e.clock.Now())
		philGrowth := authorize(e.public, "user/Patient.rs offline_access", "phil", code)

		apps, err := e.svc.ConnectedApps(ctx, nina)
		if err != nil {
			t.Fatal(err)
		}
		if len(apps) != 2 {
			t.Fatalf("connected apps: %+v", apps)
		}
		i := slices.IndexFunc(apps, func(a ConnectedApp) bool { return a.ClientID == e.public.ID })
		g := apps[i]
		if g.Name != "Growth Chart" || g.Grants != 2 || !g.Offline || !g.Granted.Equal(granted.Truncate(time.Second)) ||
			!slices.Equal(g.Scopes, []string{"offline_access", "online_access", "user/Observation.rs", "user/Patient.rs"}) {
			t.Errorf("Growth Chart: %+v", g)
		}
		if o := apps[1-i]; o.Name != "Other App" || !o.Offline || o.Grants != 1 || !o.Expires.Equal(granted.Truncate(time.Second).Add(12*time.Hour)) {
			t.Errorf("Other App: %+v", o)
		}
		if phils, _ := e.svc.ConnectedApps(ctx, phil); len(phils) != 1 || phils[0].ClientID != e.public.ID || phils[0].Grants != 1 {
			t.Errorf("phil's apps: %+v", phils)
		}

		// Last used moves with the app's requests and refreshes, at most
		// once a minute.
		e.clock.Advance(3 * time.Minute)
		if !served(growth1) {
			t.Fatal("the app's token does not work")
		}
		apps, _ = e.svc.ConnectedApps(ctx, nina)
		if !apps[0].LastUsed.Equal(e.clock.Now().UTC()) || apps[0].ClientID != e.public.ID {
			t.Errorf("last used after a request: %+v (now %v)", apps[0], e.clock.Now())
		}
		e.clock.Advance(2 * time.Minute)
		growth1, ok := refreshes(growth1, e.public)
		if !ok {
			t.Fatal("refresh failed")
		}
		if apps, _ = e.svc.ConnectedApps(ctx, nina); !apps[0].LastUsed.Equal(e.clock.Now().UTC()) {
			t.Errorf("last used after a refresh: %v (now %v)", apps[0].LastUsed, e.clock.Now())
		}

		// Revoke: every token of both of nina's grants to Growth Chart,
		// at once; Other App and phil's Growth Chart go on.
		n, err := e.svc.RevokeApp(ctx, nina, e.public.ID)
		if err != nil || n != 2 {
			t.Fatalf("revoke: %d %v", n, err)
		}
		still, tried := 0, 0
		for _, tok := range []tokens{growth1, growth2} {
			tried += 2
			if served(tok) {
				still++
				t.Error("a revoked access token was served")
			}
			if in, _ := e.svc.Introspect(ctx, tok.access); in.Active {
				t.Error("a revoked access token introspects active")
			}
			if _, ok := refreshes(tok, e.public); ok {
				still++
				t.Error("a revoked refresh token was honoured")
			}
		}
		fmt.Printf("tokens of a revoked app still accepted: %d / %d\n", still, tried)
		// (Their access tokens are older than 5 minutes: refresh first.)
		var ok1, ok2 bool
		other, ok1 = refreshes(other, e.public2)
		philGrowth, ok2 = refreshes(philGrowth, e.public)
		if !ok1 || !ok2 || !served(other) || !served(philGrowth) {
			t.Error("revoking one app of one user ended another's access")
		}
		if apps, _ = e.svc.ConnectedApps(ctx, nina); len(apps) != 1 || apps[0].ClientID != e.public2.ID {
			t.Errorf("apps after the revocation: %+v", apps)
		}
		if _, err := e.svc.RevokeApp(ctx, nina, e.public.ID); !hale.IsKind(err, hale.KindNotFound) {
			t.Errorf("revoking again: %v", err)
		}
		for _, bad := range []string{"", "../" + e.public.ID, e.public.ID + "/x"} {
			if _, err := e.svc.RevokeApp(ctx, nina, bad); !hale.IsKind(err, hale.KindNotFound) {
				t.Errorf("revoking %q: %v", bad, err)
			}
		}
		// phil cannot revoke nina's grant to Other App (it is not his).
		if _, err := e.svc.RevokeApp(ctx, phil, e.public2.ID); !hale.IsKind(err, hale.KindNotFound) || !served(other) {
			t.Errorf("another user revoking: %v", err)
		}
		fa.mu.Lock()
		if len(fa.changes) != 1 || !strings.Contains(fa.changes[0], "revoked: Growth Chart") {
			t.Errorf("audited: %q", fa.changes)
		}
		fa.mu.Unlock()

		// A grant the app revoked itself (RFC 7009) leaves the list.
		status, _, _ := postForm(t, e.srv, "/auth/revoke", map[string][]string{"token": {other.access}}, other.access)
		if status != 200 {
			t.Fatalf("the app revoking: %d", status)
		}
		if apps, _ = e.svc.ConnectedApps(ctx, nina); len(apps) != 0 {
			t.Errorf("apps after the app revoked itself: %+v", apps)
		}
		if recs, _ := st.(hale.Records).ListRecords(ctx, kindAppGrant, nina+"/", "", 10); len(recs) != 0 {
			t.Errorf("index entries left: %d", len(recs))
		}
	})
}
