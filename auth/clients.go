package auth

import (
	"context"

	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// Client is a registered SMART client, stored as JSON in client/<ID>.
// A backend-services client authenticates with private_key_jwt
// assertions signed by a key of its JWKS ("Client Authentication:
// Asymmetric", SMART App Launch 2.x); Hale never fetches a JWKS URL, so
// the keys are the ones registered (rotated by registering again).
type Client struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"` // the most it may be granted
	JWKS   JWKS     `json:"jwks"`
	// RedirectURIs are for SMART App Launch (authorization code flow);
	// empty for a backend-services client.
	RedirectURIs []string `json:"redirectUris,omitempty"`
	// Public marks an app that cannot keep a secret (a browser or native
	// app): it has no keys and proves itself at the token endpoint with
	// PKCE alone ("client-public"). A confidential app (not Public, with
	// redirect URIs) authenticates with private_key_jwt as well.
	Public   bool      `json:"public,omitempty"`
	Disabled bool      `json:"disabled,omitempty"`
	Created  time.Time `json:"created"`
}

// NewClient describes a client to register.
type NewClient struct {
	Name         string
	Scopes       []string
	JWKS         []byte // a JWK Set document (public keys); none for a public client
	RedirectURIs []string
	// Public registers an app without keys (SMART "client-public"); it
	// needs redirect URIs.
	Public bool
}

// AddClient registers a client and returns it with its new id. A client
// with redirect URIs is a SMART app and may register patient/, user/ and
// the non-resource scopes (launch, openid, offline_access, …); a
// confidential app may also hold system/ scopes for client_credentials.
// Returns KindInvalid for a missing name, a malformed scope, a JWKS
// without a usable key (RSA of at least 2048 bits for RS384, EC P-384
// for ES384, each with a distinct kid, no private members) or with keys
// for a public client, or a bad redirect URI.
func (s *Service) AddClient(ctx context.Context, nc NewClient) (*Client, error) {
	const op = "auth.AddClient"
	name := strings.TrimSpace(nc.Name)
	if name == "" || len(name) > 200 {
		return nil, invalid(op, "name must be 1 to 200 characters")
	}
	if len(nc.Scopes) == 0 {
		return nil, invalid(op, "at least one scope is needed")
	}
	app := len(nc.RedirectURIs) > 0
	if nc.Public && !app {
		return nil, invalid(op, "a public client is an app: it needs at least one redirect URI")
	}
	for _, sc := range nc.Scopes {
		if app && ValidScope(sc) {
			if p, ok := parseScope(sc); ok && p.context == "system" && nc.Public {
				return nil, invalid(op, "scope %q: a public client cannot authenticate, so it gets no system/ scopes", sc)
			}
			continue
		}
		p, ok := parseScope(sc)
		if !ok {
			return nil, invalid(op, "scope %q: expected patient|user|system/Type.cruds (or .read, .write), launch, launch/patient, openid, fhirUser, offline_access or online_access", sc)
		}
		if !app && p.context != "system" {
			return nil, invalid(op, "scope %q: a client without redirect URIs is a backend-services client and gets system/ scopes only", sc)
		}
	}
	var jwks *JWKS
	switch {
	case nc.Public && len(nc.JWKS) > 0:
		return nil, invalid(op, "a public client has no keys; leave out the JWKS (or register a confidential client)")
	case nc.Public:
		jwks = &JWKS{Keys: []JWK{}}
	default:
		var err error
		jwks, err = parseClientJWKS(nc.JWKS)
		if err != nil {
			return nil, invalid(op, "jwks: %v", err)
		}
	}
	for _, u := range nc.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, invalid(op, "redirect uri %q: %v", u, err)
		}
	}
	c := &Client{ID: randomID(), Name: name, Scopes: nc.Scopes, JWKS: *jwks, RedirectURIs: nc.RedirectURIs,
		Public: nc.Public, Created: s.now().UTC()}
	if _, err := s.putJSON(ctx, kindClient, c.ID, 0, time.Time{}, c); err != nil {
		return nil, err
	}
	return c, nil
}

// Client returns a registered client; KindNotFound when there is none.
func (s *Service) Client(ctx context.Context, id string) (*Client, error) {
	var c Client
	if id == "" || len(id) > hale.MaxRecordKey {
		return nil, &hale.Error{Kind: hale.KindNotFound, Op: "auth.Client", Message: "no such client"}
	}
	if _, err := s.getJSON(ctx, kindClient, id, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// SetClientDisabled disables or enables a client; a disabled client's
// tokens stop working at once.
func (s *Service) SetClientDisabled(ctx context.Context, id string, disabled bool) error {
	defer s.cache.forgetGrants()
	for range 20 {
		var c Client
		r, err := s.getJSON(ctx, kindClient, id, &c)
		if err != nil {
			return err
		}
		c.Disabled = disabled
		_, err = s.putJSON(ctx, kindClient, id, r.Version, time.Time{}, &c)
		if !hale.IsKind(err, hale.KindConflict) {
			return err
		}
	}
	return &hale.Error{Kind: hale.KindInternal, Op: "auth.SetClientDisabled", Message: "client record contended"}
}

// parseClientJWKS checks a client's key set.
func parseClientJWKS(doc []byte) (*JWKS, error) {
	var set JWKS
	if err := strictJSON(doc, &set); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %v", err)
	}
	if len(set.Keys) == 0 || len(set.Keys) > 20 {
		return nil, fmt.Errorf("1 to 20 keys needed, got %d", len(set.Keys))
	}
	seen := map[string]bool{}
	for i := range set.Keys {
		k := &set.Keys[i]
		if k.Kid == "" || seen[k.Kid] {
			return nil, fmt.Errorf("key %d: every key needs a distinct kid", i)
		}
		seen[k.Kid] = true
		if _, err := k.publicKey(); err != nil {
			return nil, fmt.Errorf("key %q: %v", k.Kid, err)
		}
		if _, err := clientKeyAlg(k); err != nil {
			return nil, fmt.Errorf("key %q: %v", k.Kid, err)
		}
	}
	return &set, nil
}

// clientKeyAlg is the one assertion algorithm a client key may verify:
// RS384 for RSA, ES384 for EC P-384 (SMART Backend Services requires
// servers to support these two). A key's own alg, use and key_ops must
// agree.
func clientKeyAlg(k *JWK) (string, error) {
	var alg string
	switch {
	case k.Kty == "RSA":
		alg = RS384
	case k.Kty == "EC" && k.Crv == "P-384":
		alg = ES384
	default:
		return "", fmt.Errorf("only RSA (RS384) and EC P-384 (ES384) keys are accepted")
	}
	if k.Alg != "" && k.Alg != alg {
		return "", fmt.Errorf("alg %q: a %s key verifies %s only", k.Alg, k.Kty, alg)
	}
	if k.Use != "" && k.Use != "sig" {
		return "", fmt.Errorf("use %q: must be sig", k.Use)
	}
	if len(k.KeyOps) > 0 && !slices.Contains(k.KeyOps, "verify") {
		return "", fmt.Errorf("key_ops must include verify")
	}
	return alg, nil
}

// checkRedirectURI accepts absolute https URIs, and http ones on the
// loopback address (native apps, RFC 8252 §7.3), without fragments.
func checkRedirectURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("not an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("must not have a fragment")
	}
	if u.User != nil {
		return fmt.Errorf("must not have user information")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "127.0.0.1" || h == "::1" || h == "localhost" {
			return nil
		}
	}
	return fmt.Errorf("must be https (or http on the loopback address)")
}

// clientPublicKey returns the key kid of c's set and the algorithm it
// verifies.
func (c *Client) publicKey(kid string) (*JWK, string, error) {
	for i := range c.JWKS.Keys {
		k := &c.JWKS.Keys[i]
		if k.Kid == kid {
			alg, err := clientKeyAlg(k)
			return k, alg, err
		}
	}
	return nil, "", fmt.Errorf("no key %q registered", kid)
}
