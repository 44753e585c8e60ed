package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// SMART Backend Services (hl7.org/fhir/smart-app-launch/backend-services.html):
// a client proves who it is with a private_key_jwt assertion (RFC 7523
// §2.2, "Client Authentication: Asymmetric" in SMART App Launch 2.x) and
// gets a short-lived access token for system/ scopes with the
// client_credentials grant (RFC 6749 §4.4).

// AssertionType is the client_assertion_type SMART requires.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// maxAssertionLife is how far ahead an assertion's exp may be.
const maxAssertionLife = 5 * time.Minute

// OAuthError is an RFC 6749 §5.2 error response.
type OAuthError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(code, format string, a ...any) *OAuthError {
	return &OAuthError{Status: 400, Code: code, Description: fmt.Sprintf(format, a...)}
}

// assertionClaims are the claims of a client assertion.
type assertionClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *float64        `json:"exp"`
	Nbf *float64        `json:"nbf"`
	Iat *float64        `json:"iat"`
	JTI string          `json:"jti"`
}

// AuthenticateClient checks a private_key_jwt client assertion and
// returns its client. The assertion must be signed RS384 or ES384 with a
// key the client registered, chosen by kid, with the algorithm that key
// is pinned to; iss and sub must both be the client id; aud the token
// endpoint URL; exp in the future and at most five minutes ahead; jti
// present and never seen before for this client (the jti is recorded
// until the assertion's exp, so a replay on any node is refused).
// Errors are *OAuthError invalid_client, or internal.
func (s *Service) AuthenticateClient(ctx context.Context, assertionType, assertion string) (*Client, error) {
	if assertionType != AssertionType {
		return nil, oauthErr("invalid_client", "client_assertion_type must be %s", AssertionType)
	}
	p, err := parseJWS(assertion)
	if err != nil {
		return nil, oauthErr("invalid_client", "client assertion: %v", err)
	}
	if p.header.Alg != RS384 && p.header.Alg != ES384 {
		return nil, oauthErr("invalid_client", "client assertion: alg must be RS384 or ES384")
	}
	if p.header.Kid == "" {
		return nil, oauthErr("invalid_client", "client assertion: kid is required")
	}
	if p.header.Typ != "" && !strings.EqualFold(p.header.Typ, "JWT") {
		return nil, oauthErr("invalid_client", "client assertion: typ must be JWT")
	}
	var c assertionClaims
	if err := json.Unmarshal(p.payload, &c); err != nil {
		return nil, oauthErr("invalid_client", "client assertion: claims are not a JSON object")
	}
	if c.Iss == "" || c.Iss != c.Sub {
		return nil, oauthErr("invalid_client", "client assertion: iss and sub must both be the client id")
	}
	client, err := s.Client(ctx, c.Iss)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, oauthErr("invalid_client", "client assertion: unknown client")
	}
	if err != nil {
		return nil, err
	}
	if client.Disabled {
		return nil, oauthErr("invalid_client", "client assertion: the client is disabled")
	}
	jwk, alg, err := client.publicKey(p.header.Kid)
	if err != nil {
		return nil, oauthErr("invalid_client", "client assertion: %v", err)
	}
	pub, err := jwk.publicKey()
	if err != nil {
		return nil, oauthErr("invalid_client", "client assertion: registered key unusable")
	}
	if err := p.verify(alg, pub); err != nil {
		return nil, oauthErr("invalid_client", "client assertion: %v", err)
	}
	// Signed by the client: now the claims mean something.
	if !audienceIs(c.Aud, s.opts.TokenURL) {
		return nil, oauthErr("invalid_client", "client assertion: aud must be %s", s.opts.TokenURL)
	}
	now := s.now()
	if c.Exp == nil {
		return nil, oauthErr("invalid_client", "client assertion: exp is required")
	}
	exp := time.Unix(int64(*c.Exp), 0)
	switch {
	case !now.Before(exp):
		return nil, oauthErr("invalid_client", "client assertion: expired")
	case exp.Sub(now) > maxAssertionLife:
		return nil, oauthErr("invalid_client", "client assertion: exp is more than five minutes ahead")
	case c.Nbf != nil && time.Unix(int64(*c.Nbf), 0).After(now.Add(clockSkew)):
		return nil, oauthErr("invalid_client", "client assertion: not valid yet (nbf)")
	case c.Iat != nil && time.Unix(int64(*c.Iat), 0).After(now.Add(clockSkew)):
		return nil, oauthErr("invalid_client", "client assertion: issued in the future (iat)")
	case c.JTI == "" || len(c.JTI) > 256:
		return nil, oauthErr("invalid_client", "client assertion: jti is required (at most 256 characters)")
	}
	// Record the jti until exp; a second use conflicts.
	err = s.rec.PutRecord(ctx, &hale.Record{Kind: kindJTI, Key: digest(client.ID, c.JTI), Data: []byte{},
		Expires: exp.Add(clockSkew)})
	if hale.IsKind(err, hale.KindConflict) {
		return nil, oauthErr("invalid_client", "client assertion: jti was used before")
	}
	if err != nil {
		return nil, err
	}
	return client, nil
}

// audienceIs reports whether an aud claim (a string, or an array of
// strings) names want.
func audienceIs(raw json.RawMessage, want string) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one == want
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return len(many) > 0 && slices.Contains(many, want)
	}
	return false
}

// ClientCredentials runs the token request of a backend-services client
// (form values of POST /auth/token) and returns the token. Errors are
// *OAuthError (unsupported_grant_type, invalid_request, invalid_client,
// invalid_scope) or internal.
func (s *Service) ClientCredentials(ctx context.Context, form map[string][]string) (*IssuedToken, error) {
	get := func(k string) (string, *OAuthError) {
		v := form[k]
		if len(v) > 1 {
			return "", oauthErr("invalid_request", "parameter %s given more than once", k)
		}
		if len(v) == 0 {
			return "", nil
		}
		return v[0], nil
	}
	var vals [4]string
	for i, k := range []string{"grant_type", "client_assertion_type", "client_assertion", "scope"} {
		v, e := get(k)
		if e != nil {
			return nil, e
		}
		vals[i] = v
	}
	grantType, assertionType, assertion, scope := vals[0], vals[1], vals[2], vals[3]
	if grantType != "client_credentials" {
		if grantType == "" {
			return nil, oauthErr("invalid_request", "grant_type is required")
		}
		return nil, oauthErr("unsupported_grant_type", "grant_type %q is not supported here; use client_credentials", grantType)
	}
	if assertion == "" {
		return nil, oauthErr("invalid_request", "client_assertion is required")
	}
	client, err := s.AuthenticateClient(ctx, assertionType, assertion)
	if err != nil {
		return nil, err
	}
	requested := strings.Fields(scope)
	if len(requested) == 0 {
		return nil, oauthErr("invalid_scope", "scope is required")
	}
	granted := narrowScopes(requested, client.Scopes, "system")
	if len(granted) == 0 {
		return nil, oauthErr("invalid_scope", "none of the requested scopes is allowed to this client")
	}
	return s.issue(ctx, &grant{Type: "client_credentials", Subject: "client/" + client.ID, Name: client.Name,
		Role: hale.RoleSystem, Client: client.ID, Scopes: granted})
}
