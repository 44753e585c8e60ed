package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// The token side of SMART App Launch 2.x (hl7.org/fhir/smart-app-launch/
// app-launch.html, "Obtain access token" and "Refresh access token"):
// the authorization_code grant with PKCE (RFC 7636, S256 only) and the
// refresh_token grant with rotation and reuse detection (RFC 9700 §4.14).
// The browser side, which issues the codes, is authorize.go.

const (
	// codeTTL is how long an authorization code may be redeemed
	// (RFC 6749 §4.1.2 recommends at most ten minutes; SMART apps redeem
	// at once).
	codeTTL = 60 * time.Second
	// codeKeep is how long a spent code is remembered, so that a replay
	// within it revokes the tokens minted from the code.
	codeKeep = time.Hour
	// refreshPrefix starts every refresh token; it tells them apart from
	// access tokens (RFC 7009 revocation takes either).
	refreshPrefix = "hrt."
)

// authCode is the stored form of an authorization code
// (code/<SHA-256 of the code>).
type authCode struct {
	Client      string    `json:"client"`
	RedirectURI string    `json:"redirectUri"`
	Challenge   string    `json:"challenge"` // S256 code_challenge
	Nonce       string    `json:"nonce,omitempty"`
	UserID      string    `json:"userId"`
	Scopes      []string  `json:"scopes"`
	Patient     string    `json:"patient,omitempty"`
	Encounter   string    `json:"encounter,omitempty"`
	NeedBanner  bool      `json:"needBanner,omitempty"`
	Created     time.Time `json:"created"`
	// Spent: redeemed (or a redemption was attempted); GrantKey is the
	// record key of the grant minted from it; Replayed: a second
	// redemption came, so that grant must not live.
	Spent    bool   `json:"spent,omitempty"`
	GrantKey string `json:"grantKey,omitempty"`
	Replayed bool   `json:"replayed,omitempty"`
}

// TokenResponse is a token endpoint answer (RFC 6749 §5.1 with the
// SMART launch context parameters).
type TokenResponse struct {
	AccessToken       string `json:"access_token"`
	TokenType         string `json:"token_type"`
	ExpiresIn         int    `json:"expires_in"`
	Scope             string `json:"scope"`
	RefreshToken      string `json:"refresh_token,omitempty"`
	IDToken           string `json:"id_token,omitempty"`
	Patient           string `json:"patient,omitempty"`
	Encounter         string `json:"encounter,omitempty"`
	NeedPatientBanner *bool  `json:"need_patient_banner,omitempty"`
	SmartStyleURL     string `json:"smart_style_url,omitempty"`
}

var (
	challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	verifierRE  = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)
)

// s256 is the PKCE S256 transform of a verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return b64.EncodeToString(sum[:])
}

// formValues returns the named form parameters, each at most once.
func formValues(form map[string][]string, keys ...string) ([]string, error) {
	out := make([]string, len(keys))
	for i, k := range keys {
		switch v := form[k]; len(v) {
		case 0:
		case 1:
			out[i] = v[0]
		default:
			return nil, oauthErr("invalid_request", "parameter %s given more than once", k)
		}
	}
	return out, nil
}

// appClient authenticates the client of an authorization_code or
// refresh_token request: a confidential app with a private_key_jwt
// assertion (Backend Services' check), a public one by client_id alone
// (its proof is the PKCE verifier or the refresh token).
func (s *Service) appClient(ctx context.Context, form map[string][]string) (*Client, error) {
	v, err := formValues(form, "client_id", "client_assertion_type", "client_assertion")
	if err != nil {
		return nil, err
	}
	id, assertionType, assertion := v[0], v[1], v[2]
	if assertion != "" {
		c, err := s.AuthenticateClient(ctx, assertionType, assertion)
		if err != nil {
			return nil, err
		}
		if id != "" && id != c.ID {
			return nil, oauthErr("invalid_client", "client_id is not the assertion's client")
		}
		return c, nil
	}
	if id == "" {
		return nil, &OAuthError{Status: 401, Code: "invalid_client", Description: "client_id (public client) or client_assertion (confidential client) is required"}
	}
	c, err := s.Client(ctx, id)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, &OAuthError{Status: 401, Code: "invalid_client", Description: "unknown client"}
	}
	if err != nil {
		return nil, err
	}
	if c.Disabled {
		return nil, &OAuthError{Status: 401, Code: "invalid_client", Description: "the client is disabled"}
	}
	if !c.Public {
		return nil, &OAuthError{Status: 401, Code: "invalid_client", Description: "this client is confidential: authenticate with a private_key_jwt client_assertion"}
	}
	return c, nil
}

// AuthorizationCode redeems an authorization code (form values of POST
// /auth/token with grant_type=authorization_code). The code is spent by
// the first attempt, whatever its outcome; it must be at most 60 s old,
// for the same client and redirect_uri, and the code_verifier's S256
// must be the challenge. A code presented again revokes the grant minted
// from it (RFC 6749 §4.1.2). Errors are *OAuthError (invalid_request,
// invalid_client, invalid_grant) or internal.
func (s *Service) AuthorizationCode(ctx context.Context, form map[string][]string) (*TokenResponse, error) {
	client, err := s.appClient(ctx, form)
	if err != nil {
		return nil, err
	}
	v, err := formValues(form, "code", "redirect_uri", "code_verifier")
	if err != nil {
		return nil, err
	}
	code, redirectURI, verifier := v[0], v[1], v[2]
	if code == "" || redirectURI == "" {
		return nil, oauthErr("invalid_request", "code and redirect_uri are required")
	}
	if len(code) > 100 {
		return nil, oauthErr("invalid_grant", "the code is not valid")
	}
	key := digest(code)
	c, err := s.spendCode(ctx, key)
	if err != nil {
		return nil, err
	}
	now := s.now()
	switch {
	case !now.Before(c.Created.Add(codeTTL)):
		return nil, oauthErr("invalid_grant", "the code has expired")
	case c.Client != client.ID:
		return nil, oauthErr("invalid_grant", "the code was issued to another client")
	case c.RedirectURI != redirectURI:
		return nil, oauthErr("invalid_grant", "redirect_uri is not the one of the authorization request")
	case verifier == "":
		return nil, oauthErr("invalid_grant", "code_verifier is required (PKCE)")
	case !verifierRE.MatchString(verifier):
		return nil, oauthErr("invalid_grant", "code_verifier must be 43 to 128 unreserved characters")
	case subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(c.Challenge)) != 1:
		return nil, oauthErr("invalid_grant", "code_verifier does not match the code_challenge")
	}
	u, err := s.User(ctx, c.UserID)
	if hale.IsKind(err, hale.KindNotFound) || err == nil && u.Disabled {
		return nil, oauthErr("invalid_grant", "the user can no longer sign in")
	}
	if err != nil {
		return nil, err
	}
	g := &grant{Type: "authorization_code", Subject: "user/" + u.ID, Name: u.Username, Role: u.Role,
		Client: client.ID, UserID: u.ID, FHIRUser: u.FHIRUser, Organizations: u.Organizations,
		Scopes: c.Scopes, Patient: c.Patient, Encounter: c.Encounter, NeedBanner: c.NeedBanner}
	life := s.opts.AccessTokenTTL
	refresh := slices.Contains(c.Scopes, ScopeOffline) || slices.Contains(c.Scopes, ScopeOnline)
	if refresh {
		life = s.opts.SessionMaxAge
		if slices.Contains(c.Scopes, ScopeOffline) {
			life = s.opts.RefreshTokenTTL
		}
		g.SID = randomID()
		secret := make([]byte, 32)
		rand.Read(secret)
		g.RefreshSealed = s.seal.Seal(secret, refreshContext(g.SID))
		g.RefreshGen = 1
	}
	id, err := s.newGrant(ctx, g, life)
	if err != nil {
		return nil, err
	}
	if err := s.indexAppGrant(ctx, id, g); err != nil { // the user's connected apps (apps.go)
		return nil, err
	}
	if err := s.bindCode(ctx, key, id); err != nil {
		return nil, err
	}
	return s.tokenResponse(ctx, id, g, g.Scopes, c.Nonce)
}

// spendCode marks a code spent and returns it as it was; a code already
// spent is a replay: its grant is revoked.
func (s *Service) spendCode(ctx context.Context, key string) (*authCode, error) {
	bad := oauthErr("invalid_grant", "the code is not valid")
	for range 20 {
		var c authCode
		r, err := s.getJSON(ctx, kindCode, key, &c)
		if hale.IsKind(err, hale.KindNotFound) {
			return nil, bad
		}
		if err != nil {
			return nil, err
		}
		if c.Spent {
			if !c.Replayed {
				c.Replayed = true
				if _, err := s.putJSON(ctx, kindCode, key, r.Version, r.Expires, &c); hale.IsKind(err, hale.KindConflict) {
					continue
				} else if err != nil {
					return nil, err
				}
			}
			if c.GrantKey != "" {
				if err := s.deleteGrantKey(ctx, c.GrantKey); err != nil {
					return nil, err
				}
			}
			return nil, oauthErr("invalid_grant", "the code was already used; the tokens issued for it are revoked")
		}
		spent := c
		spent.Spent = true
		_, err = s.putJSON(ctx, kindCode, key, r.Version, r.Expires, &spent)
		if hale.IsKind(err, hale.KindConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &c, nil
	}
	return nil, &hale.Error{Kind: hale.KindInternal, Op: "auth.spendCode", Message: "code record contended"}
}

// bindCode records which grant a code minted; if the code was replayed
// meanwhile, the grant is revoked and the redemption fails.
func (s *Service) bindCode(ctx context.Context, key, grantID string) error {
	for range 20 {
		var c authCode
		r, err := s.getJSON(ctx, kindCode, key, &c)
		if hale.IsKind(err, hale.KindNotFound) {
			break // swept: nothing can replay it any more
		}
		if err != nil {
			return err
		}
		if c.Replayed {
			if err := s.RevokeGrant(ctx, grantID); err != nil {
				return err
			}
			return oauthErr("invalid_grant", "the code was used twice; the tokens issued for it are revoked")
		}
		c.GrantKey = digest(grantID)
		_, err = s.putJSON(ctx, kindCode, key, r.Version, r.Expires, &c)
		if hale.IsKind(err, hale.KindConflict) {
			continue
		}
		return err
	}
	return nil
}

func refreshContext(sid string) string { return kindGrant + "/" + sid + "/refresh" }

// refreshToken is generation gen of grant id's refresh token:
// hrt.<grant id>.<gen>.<HMAC-SHA-256 of both under the family secret>.
// Only the secret's sealed form is stored, so the database holds no
// usable refresh token.
func refreshToken(secret []byte, id string, gen int64) string {
	return refreshPrefix + id + "." + strconv.FormatInt(gen, 10) + "." + refreshMAC(secret, id, gen)
}

func refreshMAC(secret []byte, id string, gen int64) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "hale-refresh-1|%s|%d", id, gen)
	return b64.EncodeToString(m.Sum(nil))
}

// parseRefresh splits a refresh token; ok false when malformed.
func parseRefresh(tok string) (id string, gen int64, mac string, ok bool) {
	rest, found := strings.CutPrefix(tok, refreshPrefix)
	if !found || len(tok) > 300 {
		return "", 0, "", false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return "", 0, "", false
	}
	gen, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || gen < 1 {
		return "", 0, "", false
	}
	return parts[0], gen, parts[2], true
}

// checkRefresh verifies a refresh token's MAC against its grant and
// returns the grant record; ok false when it is not one Hale issued for
// a grant that still exists.
func (s *Service) checkRefresh(ctx context.Context, tok string) (r *hale.Record, g *grant, id string, gen int64, err error) {
	id, gen, mac, ok := parseRefresh(tok)
	if !ok {
		return nil, nil, "", 0, nil
	}
	g = &grant{}
	r, err = s.getJSON(ctx, kindGrant, digest(id), g)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, nil, "", 0, nil
	}
	if err != nil || len(g.RefreshSealed) == 0 {
		return nil, nil, "", 0, err
	}
	secret, err := s.seal.Open(g.RefreshSealed, refreshContext(g.SID))
	if err != nil {
		return nil, nil, "", 0, &hale.Error{Kind: hale.KindInternal, Op: "auth.Refresh", Message: "cannot open a refresh secret", Err: err}
	}
	if !hmac.Equal([]byte(mac), []byte(refreshMAC(secret, id, gen))) {
		return nil, nil, "", 0, nil
	}
	return r, g, id, gen, nil
}

// Refresh runs a refresh_token request (RFC 6749 §6). Each refresh token
// works once: it returns a new access token and the next refresh token.
// Presenting one that was already used revokes the whole grant — every
// access and refresh token of the family — since either the client or
// someone who stole a token is replaying it (RFC 9700 §4.14.2). A scope
// parameter may narrow the new access token, never widen it. Errors are
// *OAuthError (invalid_request, invalid_client, invalid_grant,
// invalid_scope) or internal.
func (s *Service) Refresh(ctx context.Context, form map[string][]string) (*TokenResponse, error) {
	client, err := s.appClient(ctx, form)
	if err != nil {
		return nil, err
	}
	v, err := formValues(form, "refresh_token", "scope")
	if err != nil {
		return nil, err
	}
	if v[0] == "" {
		return nil, oauthErr("invalid_request", "refresh_token is required")
	}
	bad := oauthErr("invalid_grant", "the refresh token is not valid (expired, revoked or never issued)")
	r, g, id, gen, err := s.checkRefresh(ctx, v[0])
	if err != nil {
		return nil, err
	}
	if g == nil || g.Client != client.ID {
		return nil, bad
	}
	if !s.now().Before(g.Expires) {
		return nil, bad
	}
	if gen != g.RefreshGen {
		if err := s.RevokeGrant(ctx, id); err != nil {
			return nil, err
		}
		return nil, oauthErr("invalid_grant", "the refresh token was already used; every token of this authorization is revoked")
	}
	if _, err := s.activeGrant(ctx, id); err != nil { // client and user still enabled
		if hale.IsKind(err, hale.KindUnauthorized) {
			return nil, bad
		}
		return nil, err
	}
	scopes := g.Scopes
	if v[1] != "" {
		scopes = strings.Fields(v[1])
		for _, sc := range scopes {
			if !slices.Contains(g.Scopes, sc) {
				return nil, oauthErr("invalid_scope", "scope %q was not granted", sc)
			}
		}
	}
	g.RefreshGen++
	_, err = s.putJSON(ctx, kindGrant, r.Key, r.Version, r.Expires, g)
	if hale.IsKind(err, hale.KindConflict) {
		// Another request rotated this same token first: a replay.
		if err := s.RevokeGrant(ctx, id); err != nil {
			return nil, err
		}
		return nil, oauthErr("invalid_grant", "the refresh token was already used; every token of this authorization is revoked")
	}
	if err != nil {
		return nil, err
	}
	s.noteUse(ctx, g)
	return s.tokenResponse(ctx, id, g, scopes, "")
}

// tokenResponse mints an access token of grant id for scopes, with the
// current refresh token, an id_token for openid and the launch context.
func (s *Service) tokenResponse(ctx context.Context, id string, g *grant, scopes []string, nonce string) (*TokenResponse, error) {
	at, err := s.mintAccess(ctx, id, g, scopes)
	if err != nil {
		return nil, err
	}
	out := &TokenResponse{AccessToken: at.AccessToken, TokenType: "Bearer", ExpiresIn: at.ExpiresIn, Scope: at.Scope,
		SmartStyleURL: s.opts.SmartStyleURL}
	if len(g.RefreshSealed) > 0 {
		secret, err := s.seal.Open(g.RefreshSealed, refreshContext(g.SID))
		if err != nil {
			return nil, err
		}
		out.RefreshToken = refreshToken(secret, id, g.RefreshGen)
	}
	if slices.Contains(scopes, ScopeOpenID) {
		if out.IDToken, err = s.idToken(ctx, g, slices.Contains(scopes, ScopeFHIRUser), nonce); err != nil {
			return nil, err
		}
	}
	if slices.Contains(g.Scopes, ScopeLaunch) || slices.Contains(g.Scopes, ScopeLaunchPatient) || hasPatientScope(g.Scopes) {
		out.Patient = g.Patient
	}
	if slices.Contains(g.Scopes, ScopeLaunch) || slices.Contains(g.Scopes, ScopeLaunchEncounter) {
		out.Encounter = g.Encounter
	}
	if out.Patient != "" {
		banner := g.NeedBanner
		out.NeedPatientBanner = &banner
	}
	return out, nil
}

// idClaims are the claims of an OpenID Connect id token (OIDC Core §2;
// SMART App Launch 2.x "Scopes for requesting identity data").
type idClaims struct {
	Iss      string `json:"iss"`
	Sub      string `json:"sub"`
	Aud      string `json:"aud"`
	Exp      int64  `json:"exp"`
	Iat      int64  `json:"iat"`
	Nonce    string `json:"nonce,omitempty"`
	FHIRUser string `json:"fhirUser,omitempty"`
}

// idToken signs an id token (RS256) for g's user, with fhirUser as an
// absolute URL when asked for and the user is linked to a resource.
func (s *Service) idToken(ctx context.Context, g *grant, withFHIRUser bool, nonce string) (string, error) {
	k, err := s.signer(ctx, RS256)
	if err != nil {
		return "", err
	}
	now := s.now().UTC().Truncate(time.Second)
	c := idClaims{Iss: s.opts.Issuer, Sub: g.Subject, Aud: g.Client, Iat: now.Unix(),
		Exp: now.Add(s.opts.AccessTokenTTL).Unix(), Nonce: nonce}
	if withFHIRUser && g.FHIRUser != "" {
		c.FHIRUser = strings.TrimSuffix(s.opts.Audience, "/") + "/" + g.FHIRUser
	}
	return signJWS(RS256, k.kid, k.key, c)
}

// deleteGrantKey revokes the grant stored under record key (idempotent).
func (s *Service) deleteGrantKey(ctx context.Context, key string) error {
	defer s.cache.forgetGrants()
	err := s.rec.DeleteRecord(ctx, kindGrant, key, 0)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil
	}
	return err
}

// revokeRefresh revokes the grant of a refresh token for by (RFC 7009):
// ignored when the token is not one Hale issued or its grant is gone.
func (s *Service) revokeRefresh(ctx context.Context, token string, by *hale.Principal) error {
	_, g, id, _, err := s.checkRefresh(ctx, token)
	if err != nil || g == nil {
		return err
	}
	if !mayRevoke(by, g) {
		return &hale.Error{Kind: hale.KindForbidden, Op: "auth.Revoke", Message: "the token was not issued to this caller"}
	}
	return s.RevokeGrant(ctx, id)
}

func mayRevoke(by *hale.Principal, g *grant) bool {
	return by != nil && (by.Role == hale.RoleAdmin && by.Client == "" || by.Client != "" && by.Client == g.Client ||
		by.Subject == g.Subject)
}
