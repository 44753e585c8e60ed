// Package auth authenticates Hale's callers and turns them into a
// hale.Principal: user accounts (argon2id passwords, TOTP, lockout with
// backoff, idle-limited sessions, one-time reset codes), SMART clients,
// the signing keys Hale generates and rotates, access tokens, and the
// SMART Backend Services token endpoint with introspection and
// revocation (docs/security.md).
//
// Everything it keeps lives in hale.Records, so that `hale user add`
// works while `hale serve` runs and several nodes on one PostgreSQL
// database share accounts, sessions, grants and keys; a revocation on
// one node takes effect on all at once. The only in-memory state is
// caches of immutable things (public keys by kid) and the per-node
// request-rate limiter.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/hale-ehr/hale"
)

// Record kinds auth keeps (docs/security.md has the table).
const (
	kindUser       = "user"            // key: user id
	kindUsername   = "username"        // key: lower-case username → user id
	kindSession    = "session"         // key: SHA-256 of the session id
	kindClient     = "client"          // key: client id
	kindGrant      = "grant"           // key: SHA-256 of the grant (token family) id
	kindJTI        = "jti"             // key: SHA-256 of client id and assertion jti
	kindLock       = "lock"            // key: "user:<username>" or "ip:<address>"
	kindReset      = "reset"           // key: SHA-256 of the reset code
	kindKey        = "signing-key"     // key: kid
	kindCurrentKey = "signing-current" // key: algorithm → kid
	kindCheck      = "secret-check"    // key: "sealer"
	kindAuthz      = "authz"           // key: SHA-256 of the pending authorization's id
	kindCode       = "code"            // key: SHA-256 of the authorization code
	kindLaunch     = "launch"          // key: SHA-256 of the EHR launch id
	// Passkeys (passkey.go) and connected apps (apps.go) add passkey,
	// passkey-id, webauthn and app-grant.
)

// Options configure a Service. Records, SecretKey, Issuer and Audience are
// required; the rest have defaults.
type Options struct {
	Records hale.Records
	// SecretKey seals TOTP seeds and private signing keys (seal.go).
	SecretKey []byte
	// Issuer is the iss of every token Hale signs (the SMART
	// configuration's "issuer"), an absolute URL.
	Issuer string
	// Audience is the FHIR base URL: the aud of access tokens, which
	// the resource server requires.
	Audience string
	// TokenURL is the token endpoint's absolute URL, which client
	// assertions must name as aud. Default: Issuer + "/token" when the
	// issuer ends in /auth, else Issuer + "/auth/token".
	TokenURL string

	Now hale.Now // default time.Now

	IdleTimeout    time.Duration // session idle limit, default 15 min
	SessionMaxAge  time.Duration // absolute session limit, default 12 h
	AccessTokenTTL time.Duration // default 5 min (SMART backend services recommends 300 s)
	KeyRotation    time.Duration // a signing key signs for this long, default 30 days

	Argon2 Argon2Params // default DefaultArgon2
	// MFARoles are the roles that must use TOTP; default admin and
	// physician (the prescriber role).
	MFARoles []hale.Role
	// UserLockout and AddressLockout are the backoff after failed logins
	// per username and per client address.
	UserLockout    Lockout
	AddressLockout Lockout
	// RatePerMinute and Burst limit requests to the login and token
	// endpoints per client address on this node; default 60 and 20.
	RatePerMinute, Burst int
	// DemoMode lets accounts created with NewUser.DemoNoMFA log in
	// without a second factor (hale serve's demo login). Outside demo
	// mode those accounts cannot log in at all.
	DemoMode bool
	// Audit, when set, is told of every login attempt and logout (the
	// audit trail, audit.Recorder, implements it).
	Audit LoginAudit

	// SMART App Launch (smart.go, authorize.go).
	//
	// RefreshTokenTTL is how long an offline_access grant lasts (its
	// refresh tokens rotate within it), default 30 days; an
	// online_access grant lasts SessionMaxAge.
	RefreshTokenTTL time.Duration
	// Roles bounds what an app may be granted for a user of each role;
	// default DefaultRoleScopes (permissive).
	Roles RolePolicy
	// Patients finds patients for the standalone-launch picker and checks
	// launch patients; nil disables the picker (a clinician's standalone
	// launch with patient scopes is then refused).
	Patients PatientFinder
	// SmartStyleURL, when set, is returned as smart_style_url.
	SmartStyleURL string

	Log *slog.Logger
}

// LoginAudit receives authentication events (ONC 170.315(d)(2): login
// success and failure are auditable events). An error from it is
// logged; the login is not undone.
type LoginAudit interface {
	// Login reports an attempt: who is the account as far as it is
	// known (for an unknown username, Name only), err nil for success.
	Login(ctx context.Context, who hale.Principal, err error) error
	Logout(ctx context.Context, who hale.Principal) error
}

// Service is the authentication service. It is safe for concurrent use.
type Service struct {
	opts   Options
	rec    hale.Records
	seal   *Sealer
	now    hale.Now
	log    *slog.Logger
	limit  *limiter
	hashes chan struct{} // bounds concurrent argon2 work

	mu       sync.Mutex
	pubKeys  map[string]cachedKey // kid → public key
	current  map[string]*signingKey
	dummyPHC string

	cache verifyCache // verified tokens and recent grants (cache.go)

	// webauthn is the passkey relying party (passkey.go); nil when the
	// issuer has no domain name.
	webauthn *webauthn.WebAuthn
	uses     useThrottle // when each app grant was last marked used (apps.go)
}

// New checks opts and returns a Service. It fails if the secret key is not
// the one the records were sealed with (a node given another key would
// otherwise fail on every login with MFA).
func New(ctx context.Context, opts Options) (*Service, error) {
	if opts.Records == nil {
		return nil, errors.New("auth: Records is required")
	}
	if opts.Issuer == "" || opts.Audience == "" {
		return nil, errors.New("auth: Issuer and Audience are required")
	}
	if opts.TokenURL == "" {
		if strings.HasSuffix(opts.Issuer, "/auth") {
			opts.TokenURL = opts.Issuer + "/token"
		} else {
			opts.TokenURL = strings.TrimSuffix(opts.Issuer, "/") + "/auth/token"
		}
	}
	seal, err := NewSealer(opts.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	setDefault(&opts.IdleTimeout, 15*time.Minute)
	setDefault(&opts.SessionMaxAge, 12*time.Hour)
	setDefault(&opts.AccessTokenTTL, 5*time.Minute)
	setDefault(&opts.KeyRotation, 30*24*time.Hour)
	setDefault(&opts.RefreshTokenTTL, 30*24*time.Hour)
	if opts.Roles == nil {
		opts.Roles = DefaultRoleScopes
	}
	if opts.Argon2 == (Argon2Params{}) {
		opts.Argon2 = DefaultArgon2
	}
	if opts.MFARoles == nil {
		opts.MFARoles = []hale.Role{hale.RoleAdmin, hale.RolePhysician}
	}
	if opts.UserLockout == (Lockout{}) {
		opts.UserLockout = DefaultUserLockout
	}
	if opts.AddressLockout == (Lockout{}) {
		opts.AddressLockout = DefaultAddressLockout
	}
	if opts.RatePerMinute == 0 {
		opts.RatePerMinute = 60
	}
	if opts.Burst == 0 {
		opts.Burst = 20
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		opts: opts, rec: opts.Records, seal: seal, now: opts.Now, log: opts.Log,
		limit:   newLimiter(opts.RatePerMinute, opts.Burst, opts.Now),
		hashes:  make(chan struct{}, 4),
		pubKeys: map[string]cachedKey{}, current: map[string]*signingKey{},
	}
	// A hash to verify against when the username is unknown, so that an
	// unknown user costs the same time as a wrong password.
	s.dummyPHC = hashPassword(randomToken(), opts.Argon2)
	if err := s.checkSecretKey(ctx); err != nil {
		return nil, err
	}
	if s.webauthn, err = relyingParty(opts.Issuer); err != nil {
		s.webauthn = nil
		s.log.Info("passkeys are not available", "err", err)
	}
	return s, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// checkSecretKey seals a known value in the records the first time, and
// afterwards checks that it opens.
func (s *Service) checkSecretKey(ctx context.Context) error {
	const ctxt = kindCheck + "/sealer"
	r, err := s.rec.GetRecord(ctx, kindCheck, "sealer")
	if hale.IsKind(err, hale.KindNotFound) {
		err = s.rec.PutRecord(ctx, &hale.Record{Kind: kindCheck, Key: "sealer", Data: s.seal.Seal([]byte("hale"), ctxt)})
		if hale.IsKind(err, hale.KindConflict) {
			return s.checkSecretKey(ctx)
		}
		return err
	}
	if err != nil {
		return err
	}
	if _, err := s.seal.Open(r.Data, ctxt); err != nil {
		return errors.New("auth: the secret key is not the one this database's secrets were sealed with " +
			"(HALE_SECRET_KEY, or secret.key in the data folder)")
	}
	return nil
}

// randomToken returns 256 random bits, base64url: session ids, codes,
// grant ids.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return b64.EncodeToString(b)
}

// randomID returns 128 random bits in hex: user and client ids.
func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// digest is the record key of a secret: its SHA-256 in hex. The secrets
// hashed this way are 256 random bits, so a fast hash is enough (no
// dictionary to try).
func digest(parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// getJSON reads kind/key into v.
func (s *Service) getJSON(ctx context.Context, kind, key string, v any) (*hale.Record, error) {
	r, err := s.rec.GetRecord(ctx, kind, key)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: "auth", Message: "corrupt record", Err: fmt.Errorf("%s/%s: %w", kind, key, err)}
	}
	return r, nil
}

// putJSON writes v as kind/key at version (0: create), expiring at exp.
func (s *Service) putJSON(ctx context.Context, kind, key string, version int64, exp time.Time, v any) (*hale.Record, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	r := &hale.Record{Kind: kind, Key: key, Version: version, Data: data, Expires: exp}
	if err := s.rec.PutRecord(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Sweep deletes expired records (sessions, grants, jtis, counters, codes,
// retired keys). hale serve calls it every few minutes.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	return s.rec.DeleteExpiredRecords(ctx, s.now())
}

// decode unmarshals a record's data.
func (s *Service) decode(r hale.Record, v any) error {
	if err := json.Unmarshal(r.Data, v); err != nil {
		s.log.Error("corrupt record", "kind", r.Kind, "key", r.Key, "err", err)
		return err
	}
	return nil
}

// IdleTimeout is how long a session may be idle before it ends
// (Options.IdleTimeout); the web apps warn before it.
func (s *Service) IdleTimeout() time.Duration { return s.opts.IdleTimeout }

// DeriveKey returns a 32-byte key for purpose, derived from the secret
// key (HMAC-SHA-256 of the purpose): the same on every node given the
// same secret key, and different for each purpose.
func (s *Service) DeriveKey(purpose string) []byte {
	m := hmac.New(sha256.New, s.opts.SecretKey)
	m.Write([]byte("hale derived key: " + purpose))
	return m.Sum(nil)
}
