package auth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// Access tokens are JWTs (RFC 9068 in spirit) signed ES256 by Hale's
// current access-token key (keys.go). The signature only proves the token
// came from Hale; what the token is worth is its grant: the record
// grant/<SHA-256 of the grant id> holds who the caller is and what was granted, and the token
// is valid only while that record exists. So revocation (RFC 7009, a
// disabled client or user, a refresh-token reuse later) is deleting one
// record and takes effect on every node at the next request; the check is
// one primary-key read. A client_credentials grant is one token; an
// authorization-code grant (SMART App Launch, smart.go) is a family of
// access and refresh tokens under one grant id, so revoking it, or
// replaying a spent refresh token or code, ends them all.

// grant is the stored form of what a token family was given.
type grant struct {
	Type          string    `json:"type"` // "client_credentials" or "authorization_code"
	Subject       string    `json:"subject"`
	Name          string    `json:"name"`
	Role          hale.Role `json:"role"`
	Client        string    `json:"client"`
	UserID        string    `json:"userId,omitempty"`
	FHIRUser      string    `json:"fhirUser,omitempty"`
	Organizations []string  `json:"organizations,omitempty"`
	Scopes        []string  `json:"scopes"`
	Patient       string    `json:"patient,omitempty"`
	Encounter     string    `json:"encounter,omitempty"`
	// NeedBanner is the need_patient_banner of the launch.
	NeedBanner bool      `json:"needBanner,omitempty"`
	Issued     time.Time `json:"issued"`
	// Expires ends the grant: the access token's expiry for a grant
	// without refresh, the refresh lifetime otherwise.
	Expires time.Time `json:"expires"`
	// RefreshSealed is the family's refresh secret, sealed (refresh
	// tokens are MACs of their generation under it); RefreshGen is the
	// generation of the one refresh token that is valid now.
	RefreshSealed []byte `json:"refreshSealed,omitempty"`
	RefreshGen    int64  `json:"refreshGen,omitempty"`
	// SID is a public handle of the grant for the audit (never the grant
	// id, which with the family secret makes refresh tokens).
	SID string `json:"sid,omitempty"`
}

// accessClaims are the claims of an access token.
type accessClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	JTI      string `json:"jti"`
	Grant    string `json:"grant"`
	Iat      int64  `json:"iat"`
	Nbf      int64  `json:"nbf"`
	Exp      int64  `json:"exp"`
}

// clockSkew tolerates clocks of nodes and clients slightly apart.
const clockSkew = 30 * time.Second

// IssuedToken is a new access token.
type IssuedToken struct {
	AccessToken string
	ExpiresIn   int // seconds
	Scope       string
	GrantID     string
}

// issue stores g under a new grant id, for as long as its access token
// lives, and returns the token.
func (s *Service) issue(ctx context.Context, g *grant) (*IssuedToken, error) {
	id, err := s.newGrant(ctx, g, s.opts.AccessTokenTTL)
	if err != nil {
		return nil, err
	}
	return s.mintAccess(ctx, id, g, g.Scopes)
}

// newGrant stores g under a new grant id, valid for life from now.
func (s *Service) newGrant(ctx context.Context, g *grant, life time.Duration) (string, error) {
	now := s.now().UTC().Truncate(time.Second)
	g.Issued, g.Expires = now, now.Add(life)
	if g.SID == "" {
		g.SID = randomID()
	}
	id := randomToken()
	if _, err := s.putJSON(ctx, kindGrant, digest(id), 0, g.Expires, g); err != nil {
		return "", err
	}
	return id, nil
}

// mintAccess signs an access token of grant id for scopes (a subset of
// the grant's), living AccessTokenTTL but never past the grant.
func (s *Service) mintAccess(ctx context.Context, id string, g *grant, scopes []string) (*IssuedToken, error) {
	k, err := s.signer(ctx, ES256)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Second)
	exp := minTime(now.Add(s.opts.AccessTokenTTL), g.Expires)
	c := accessClaims{Iss: s.opts.Issuer, Sub: g.Subject, Aud: s.opts.Audience, ClientID: g.Client,
		Scope: strings.Join(scopes, " "), JTI: randomID(), Grant: id,
		Iat: now.Unix(), Nbf: now.Unix(), Exp: exp.Unix()}
	tok, err := signJWS(ES256, k.kid, k.key, c)
	if err != nil {
		return nil, err
	}
	return &IssuedToken{AccessToken: tok, ExpiresIn: int(exp.Sub(now) / time.Second),
		Scope: c.Scope, GrantID: id}, nil
}

// errToken is every reason a bearer token is refused, as the caller sees
// it (the detail goes to the debug log only).
var errToken = &hale.Error{Kind: hale.KindUnauthorized, Op: "auth.Token", Message: "the access token is not valid"}

// checkSignature verifies a token's signature against Hale's own key
// named by kid, for ES256 only, and decodes its claims.
func (s *Service) checkSignature(ctx context.Context, token string) (*accessClaims, error) {
	p, err := parseJWS(token)
	if err != nil {
		return nil, err
	}
	if p.header.Alg != ES256 || p.header.Kid == "" || len(p.header.Kid) > 64 {
		return nil, jwsError("algorithm or kid not accepted")
	}
	if p.header.Typ != "" && !strings.EqualFold(p.header.Typ, "JWT") && !strings.EqualFold(p.header.Typ, "at+jwt") {
		return nil, jwsError("typ %q not accepted", p.header.Typ)
	}
	pub, err := s.publicKey(ctx, p.header.Kid, ES256)
	if err != nil {
		if hale.IsKind(err, hale.KindNotFound) {
			return nil, jwsError("unknown kid")
		}
		return nil, err
	}
	if err := p.verify(ES256, pub); err != nil {
		return nil, err
	}
	var c accessClaims
	if err := json.Unmarshal(p.payload, &c); err != nil {
		return nil, jwsError("claims: %v", err)
	}
	return &c, nil
}

// verifyAccess checks a bearer token completely: signature, issuer,
// audience, times, and that its grant still exists and its client (or
// user) is still enabled.
func (s *Service) verifyAccess(ctx context.Context, token string) (*grant, *accessClaims, error) {
	now := s.now()
	c, ok := s.cache.claims(token, now)
	if !ok {
		var err error
		c, err = s.checkSignature(ctx, token)
		if err != nil {
			if errors.Is(err, errJWS) {
				s.log.Debug("bearer token refused", "err", err)
				return nil, nil, errToken
			}
			return nil, nil, err
		}
		s.cache.putClaims(token, c)
	}
	switch {
	case c.Iss != s.opts.Issuer, c.Aud != s.opts.Audience, c.Grant == "", c.JTI == "",
		c.Exp == 0 || !now.Before(time.Unix(c.Exp, 0)),
		time.Unix(c.Nbf, 0).After(now.Add(clockSkew)), time.Unix(c.Iat, 0).After(now.Add(clockSkew)):
		s.log.Debug("bearer token refused: claims")
		return nil, nil, errToken
	}
	g, err := s.activeGrant(ctx, c.Grant)
	if err != nil {
		return nil, nil, err
	}
	if g.Client != c.ClientID || g.Subject != c.Sub {
		return nil, nil, errToken
	}
	return g, c, nil
}

// activeGrant returns a grant that exists, has not expired, and whose
// client and user are enabled.
func (s *Service) activeGrant(ctx context.Context, id string) (*grant, error) {
	if id == "" || len(id) > hale.MaxRecordKey {
		return nil, errToken
	}
	now := s.now()
	if g, ok := s.cache.grant(id, now); ok && now.Before(g.Expires) {
		return g, nil
	}
	g, err := s.readGrant(ctx, id)
	if err == nil {
		s.cache.putGrant(id, g, now)
	}
	return g, err
}

// readGrant is activeGrant from the records.
func (s *Service) readGrant(ctx context.Context, id string) (*grant, error) {
	var g grant
	_, err := s.getJSON(ctx, kindGrant, digest(id), &g)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, errToken // revoked or swept
	}
	if err != nil {
		return nil, err
	}
	if !s.now().Before(g.Expires) {
		return nil, errToken
	}
	if g.Client != "" {
		c, err := s.Client(ctx, g.Client)
		if hale.IsKind(err, hale.KindNotFound) || err == nil && c.Disabled {
			return nil, errToken
		}
		if err != nil {
			return nil, err
		}
	}
	if g.UserID != "" {
		u, err := s.User(ctx, g.UserID)
		if hale.IsKind(err, hale.KindNotFound) || err == nil && u.Disabled {
			return nil, errToken
		}
		if err != nil {
			return nil, err
		}
		// Who the user is now: a role or organization change applies
		// to the app's next request, as it does to a session's.
		g.Name, g.Role, g.FHIRUser, g.Organizations = u.Username, u.Role, u.FHIRUser, u.Organizations
	}
	return &g, nil
}

// TokenPrincipal returns the caller a bearer access token stands for;
// KindUnauthorized when the token is not valid now (forged, expired,
// revoked, for another issuer or audience).
func (s *Service) TokenPrincipal(ctx context.Context, token, address string) (*hale.Principal, error) {
	g, c, err := s.verifyAccess(ctx, token)
	if err != nil {
		return nil, err
	}
	s.noteUse(ctx, g) // the user's connected apps show when it was last used (apps.go)
	p := g.principal(address)
	// The token's own scope, which may be narrower than the grant's (a
	// refresh asking for less); never wider.
	p.Scopes = slices.DeleteFunc(strings.Fields(c.Scope), func(s string) bool { return !slices.Contains(g.Scopes, s) })
	return p, nil
}

func (g *grant) principal(address string) *hale.Principal {
	return &hale.Principal{
		Subject: g.Subject, Name: g.Name, Role: g.Role, FHIRUser: g.FHIRUser,
		Organizations: slices.Clone(g.Organizations), Client: g.Client, Scopes: slices.Clone(g.Scopes),
		Patient: g.Patient, Encounter: g.Encounter, Address: address, Session: "grant/" + g.SID,
	}
}

// Introspection is an RFC 7662 response as profiled by SMART ("Token
// Introspection"): for an inactive token only Active, false.
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Aud       string `json:"aud,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	FHIRUser  string `json:"fhirUser,omitempty"`
	Patient   string `json:"patient,omitempty"`
	Encounter string `json:"encounter,omitempty"`
}

// Introspect describes a token. Any token that is not valid now —
// forged, garbage, expired, revoked — is just inactive.
func (s *Service) Introspect(ctx context.Context, token string) (*Introspection, error) {
	g, c, err := s.verifyAccess(ctx, token)
	if hale.IsKind(err, hale.KindUnauthorized) {
		return &Introspection{Active: false}, nil
	}
	if err != nil {
		return nil, err
	}
	in := &Introspection{Active: true, Scope: c.Scope, ClientID: c.ClientID, Exp: c.Exp, Iat: c.Iat,
		Sub: c.Sub, Iss: c.Iss, Aud: c.Aud, TokenType: "Bearer"}
	// Context only when granted (SMART "Token Introspection"): fhirUser
	// with the fhirUser scope, patient and encounter with a launch
	// context or patient/ scopes.
	scopes := strings.Fields(c.Scope)
	if slices.Contains(scopes, ScopeFHIRUser) && g.FHIRUser != "" {
		in.FHIRUser = strings.TrimSuffix(s.opts.Audience, "/") + "/" + g.FHIRUser
	}
	if slices.Contains(scopes, ScopeLaunch) || slices.Contains(scopes, ScopeLaunchPatient) || hasPatientScope(scopes) {
		in.Patient = g.Patient
	}
	if slices.Contains(scopes, ScopeLaunch) || slices.Contains(scopes, ScopeLaunchEncounter) {
		in.Encounter = g.Encounter
	}
	return in, nil
}

// Revoke revokes the grant of token (RFC 7009), an access or a refresh
// token, and with it every token of the grant, at once, provided by may revoke it: the token's own
// client or subject, or an admin. A token that is not Hale's, or already
// revoked or expired, is ignored, as RFC 7009 §2.2 says.
func (s *Service) Revoke(ctx context.Context, token string, by *hale.Principal) error {
	if strings.HasPrefix(token, refreshPrefix) {
		return s.revokeRefresh(ctx, token, by)
	}
	c, err := s.checkSignature(ctx, token)
	if err != nil {
		if errors.Is(err, errJWS) {
			return nil
		}
		return err
	}
	var g grant
	_, err = s.getJSON(ctx, kindGrant, digest(c.Grant), &g)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !mayRevoke(by, &g) {
		return &hale.Error{Kind: hale.KindForbidden, Op: "auth.Revoke", Message: "the token was not issued to this caller"}
	}
	return s.RevokeGrant(ctx, c.Grant)
}

// RevokeGrant deletes a grant: its tokens stop working at once
// (idempotent).
func (s *Service) RevokeGrant(ctx context.Context, id string) error {
	defer s.cache.forgetGrants()
	err := s.rec.DeleteRecord(ctx, kindGrant, digest(id), 0)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil
	}
	return err
}
