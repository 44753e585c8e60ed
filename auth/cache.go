package auth

import (
	"sync"
	"time"
)

// verifyCache keeps, per node, what checking a bearer token costs most
// to learn again (docs/security.md, "Access tokens"):
//
//   - the claims of tokens whose signature was verified: a token's bytes
//     and the key that signed them do not change, so a token seen again
//     needs no second ECDSA verification (about 100 µs); times, issuer
//     and audience are still checked on every request;
//   - the grant a token belongs to, with its client and user, for
//     grantTTL: three record reads per request otherwise. Revocation,
//     disabling a client or a user, and any change of a user clear the
//     node's cache at once; another node sharing the database sees the
//     change within grantTTL.
type verifyCache struct {
	mu     sync.Mutex
	sigs   map[string]cachedClaims
	grants map[string]cachedGrant
}

type cachedClaims struct {
	c   accessClaims
	exp time.Time
}

type cachedGrant struct {
	g  grant
	at time.Time
}

// grantTTL bounds how stale another node's view of a revocation may be.
const grantTTL = 250 * time.Millisecond

// maxCached bounds each map; past it, the map starts afresh.
const maxCached = 20000

func (vc *verifyCache) claims(token string, now time.Time) (*accessClaims, bool) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	e, ok := vc.sigs[token]
	if !ok || !now.Before(e.exp) {
		return nil, false
	}
	c := e.c
	return &c, true
}

func (vc *verifyCache) putClaims(token string, c *accessClaims) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.sigs == nil || len(vc.sigs) >= maxCached {
		vc.sigs = map[string]cachedClaims{}
	}
	vc.sigs[token] = cachedClaims{c: *c, exp: time.Unix(c.Exp, 0)}
}

func (vc *verifyCache) grant(id string, now time.Time) (*grant, bool) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	e, ok := vc.grants[id]
	if !ok || now.Sub(e.at) >= grantTTL || now.Before(e.at) {
		return nil, false
	}
	g := e.g
	return &g, true
}

func (vc *verifyCache) putGrant(id string, g *grant, now time.Time) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.grants == nil || len(vc.grants) >= maxCached {
		vc.grants = map[string]cachedGrant{}
	}
	vc.grants[id] = cachedGrant{g: *g, at: now}
}

// forgetGrants drops every cached grant: after a revocation or a change
// of a client or user, the next request of each token reads its grant
// again.
func (vc *verifyCache) forgetGrants() {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	vc.grants = nil
}
