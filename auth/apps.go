package auth

import (
	"context"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/hale-ehr/hale"
)

// Connected apps: the SMART apps a user authorized, for the account page
// ("which apps can read my record?") and its Revoke button. Each grant a
// user gives an app through the authorization code flow is indexed by
// app-grant/<user id>/<client id>/<grant handle>, which names the grant
// record and keeps when the app last used it; revoking an app deletes
// every one of the user's grants to it, which ends its access and
// refresh tokens at once (tokens.go: a token is worth its grant).

const (
	kindAppGrant = "app-grant" // key: "<user id>/<client id>/<grant sid>"
	// useEvery is how often a node writes an app's last use: a token
	// used many times a minute costs one write a minute.
	useEvery = time.Minute
)

// appGrant is the stored index entry of a user's grant to an app.
type appGrant struct {
	GrantKey string    `json:"grantKey"` // the grant's record key
	LastUsed time.Time `json:"lastUsed"`
}

// ConnectedApp is an app a user has authorized, with what its live
// grants hold together.
type ConnectedApp struct {
	ClientID string
	Name     string
	Scopes   []string  // the union of the grants' scopes, sorted
	Granted  time.Time // the earliest live grant
	LastUsed time.Time // a token or refresh of any of them, to the minute
	Expires  time.Time // when the last grant ends unless refreshed
	Offline  bool      // it holds a refresh token (offline_access or online_access)
	Grants   int
}

var clientIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// indexAppGrant records a new user grant to an app (id is the grant id).
func (s *Service) indexAppGrant(ctx context.Context, id string, g *grant) error {
	_, err := s.putJSON(ctx, kindAppGrant, g.UserID+"/"+g.Client+"/"+g.SID, 0, g.Expires,
		&appGrant{GrantKey: digest(id), LastUsed: g.Issued})
	return err
}

// useThrottle remembers, per node, when each grant's last use was
// written.
type useThrottle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (t *useThrottle) due(sid string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil || len(t.last) >= maxCached {
		t.last = map[string]time.Time{}
	}
	if l, ok := t.last[sid]; ok && now.Sub(l) < useEvery {
		return false
	}
	t.last[sid] = now
	return true
}

// noteUse records that an app used a user's grant (a request with its
// access token, or a refresh), at most once a minute per grant and node.
// A failure is logged: it must not fail the app's request.
func (s *Service) noteUse(ctx context.Context, g *grant) {
	if g.UserID == "" || g.Type != "authorization_code" || g.SID == "" {
		return
	}
	now := s.now().UTC()
	if !s.uses.due(g.SID, now) {
		return
	}
	key := g.UserID + "/" + g.Client + "/" + g.SID
	var ag appGrant
	r, err := s.getJSON(ctx, kindAppGrant, key, &ag)
	if err != nil {
		if !hale.IsKind(err, hale.KindNotFound) {
			s.log.Warn("connected apps: reading a grant's last use", "err", err)
		}
		return
	}
	ag.LastUsed = now
	if _, err := s.putJSON(ctx, kindAppGrant, key, r.Version, r.Expires, &ag); err != nil && !hale.IsKind(err, hale.KindConflict) {
		s.log.Warn("connected apps: writing a grant's last use", "err", err)
	}
}

// appGrants lists the index entries of a user's grants under prefix.
func (s *Service) appGrants(ctx context.Context, prefix string) ([]hale.Record, error) {
	var out []hale.Record
	after := ""
	for {
		recs, err := s.rec.ListRecords(ctx, kindAppGrant, prefix, after, 100)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		if len(recs) < 100 {
			return out, nil
		}
		after = recs[len(recs)-1].Key
	}
}

// ConnectedApps lists the apps a user has authorized and that still hold
// a live grant, most recently used first. Index entries of grants that
// were revoked otherwise (by the app, a replayed code or refresh token,
// an admin) are dropped on the way.
func (s *Service) ConnectedApps(ctx context.Context, userID string) ([]ConnectedApp, error) {
	recs, err := s.appGrants(ctx, userID+"/")
	if err != nil {
		return nil, err
	}
	now := s.now()
	byClient := map[string]*ConnectedApp{}
	for _, r := range recs {
		var ag appGrant
		if s.decode(r, &ag) != nil {
			continue
		}
		var g grant
		_, err := s.getJSON(ctx, kindGrant, ag.GrantKey, &g)
		if hale.IsKind(err, hale.KindNotFound) {
			s.rec.DeleteRecord(ctx, kindAppGrant, r.Key, r.Version) // revoked: forget it
			continue
		}
		if err != nil {
			return nil, err
		}
		if !now.Before(g.Expires) || g.UserID != userID {
			continue
		}
		a := byClient[g.Client]
		if a == nil {
			a = &ConnectedApp{ClientID: g.Client, Name: s.clientName(ctx, g.Client), Granted: g.Issued}
			if a.Name == "" {
				a.Name = "(an app no longer registered)"
			}
			byClient[g.Client] = a
		}
		a.Grants++
		for _, sc := range g.Scopes {
			if !slices.Contains(a.Scopes, sc) {
				a.Scopes = append(a.Scopes, sc)
			}
		}
		if g.Issued.Before(a.Granted) {
			a.Granted = g.Issued
		}
		if ag.LastUsed.After(a.LastUsed) {
			a.LastUsed = ag.LastUsed
		}
		if g.Expires.After(a.Expires) {
			a.Expires = g.Expires
		}
		a.Offline = a.Offline || len(g.RefreshSealed) > 0
	}
	out := make([]ConnectedApp, 0, len(byClient))
	for _, a := range byClient {
		slices.Sort(a.Scopes)
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b ConnectedApp) int {
		if c := b.LastUsed.Compare(a.LastUsed); c != 0 {
			return c
		}
		return a.Granted.Compare(b.Granted)
	})
	return out, nil
}

// RevokeApp revokes every grant a user gave an app — its access and
// refresh tokens stop working at once (on this node at the next request,
// on others within the grant cache's 250 ms) — and returns how many
// grants it ended. KindNotFound when the user has no live grant to the
// app.
func (s *Service) RevokeApp(ctx context.Context, userID, clientID string) (int, error) {
	const op = "auth.RevokeApp"
	if !clientIDRE.MatchString(clientID) {
		return 0, &hale.Error{Kind: hale.KindNotFound, Op: op, Message: "no such app"}
	}
	recs, err := s.appGrants(ctx, userID+"/"+clientID+"/")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		var ag appGrant
		if s.decode(r, &ag) != nil {
			continue
		}
		err := s.rec.DeleteRecord(ctx, kindGrant, ag.GrantKey, 0)
		switch {
		case err == nil:
			n++
		case !hale.IsKind(err, hale.KindNotFound):
			return n, err
		}
		if err := s.rec.DeleteRecord(ctx, kindAppGrant, r.Key, 0); err != nil && !hale.IsKind(err, hale.KindNotFound) {
			return n, err
		}
	}
	s.cache.forgetGrants()
	if n == 0 {
		return 0, &hale.Error{Kind: hale.KindNotFound, Op: op, Message: "the app holds no access to revoke"}
	}
	s.accountChange(ctx, "user/"+userID, "SMART app access revoked: "+s.clientName(ctx, clientID)+" (client "+clientID+")")
	return n, nil
}
