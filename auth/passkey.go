package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/hale-ehr/hale"
)

// Passkeys (WebAuthn Level 2, w3.org/TR/webauthn-2) are an option for
// every user, next to the password and TOTP (docs/security.md,
// "Passkeys"). A signed-in user registers one after confirming the
// password; then signs in either
//
//   - passwordless: a discoverable credential with user verification
//     (the authenticator checked a PIN or biometric), which is two
//     factors in one (possession and inherence or knowledge), so the
//     session counts as MFA; or
//   - with the password and the passkey as the second factor in place
//     of the TOTP code (user verification preferred, not required).
//
// The ceremonies' cryptography (CBOR, COSE keys, attestation formats,
// signature checks) is github.com/go-webauthn/webauthn's; what Hale
// decides is here: where challenges and credentials are kept, that a
// challenge is used once, that the signature counter never goes back,
// that a credential belongs to one account, lockout and audit.

const (
	kindPasskey   = "passkey"    // key: "<user id>/<SHA-256 of the credential id>"
	kindPasskeyID = "passkey-id" // key: SHA-256 of the credential id → user id (one account per credential)
	kindCeremony  = "webauthn"   // key: SHA-256 of the ceremony id: a challenge in flight

	ceremonyTTL = 5 * time.Minute
	// maxPasskeys bounds the passkeys of one account.
	maxPasskeys = 10
)

// ErrPasskey is every failed passkey sign-in as the caller sees it
// (wrong signature, unknown or foreign credential, counter gone back,
// replayed or expired challenge); the detail goes to the audit trail.
var ErrPasskey = errors.New("the passkey could not be verified")

// Passkey is a user's WebAuthn credential, stored as JSON in
// passkey/<user id>/<ID>. Nothing in it is secret: the credential is a
// public key.
type Passkey struct {
	// ID is the SHA-256 of the credential id in hex: the public handle
	// of the passkey (the credential id itself may be up to 1,023 bytes).
	ID         string              `json:"id"`
	Name       string              `json:"name"`
	Created    time.Time           `json:"created"`
	LastUsed   time.Time           `json:"lastUsed,omitzero"`
	Credential webauthn.Credential `json:"credential"`
}

// PasskeyCeremony is the first half of a registration or sign-in: the
// options for navigator.credentials.create or .get ({"publicKey": …},
// binary members base64url-encoded) and the id the browser sends back
// with the answer.
type PasskeyCeremony struct {
	ID      string          `json:"ceremony"`
	Options json.RawMessage `json:"options"`
}

// ceremony is the stored challenge of a ceremony in flight
// (webauthn/<SHA-256 of its id>, 5 minutes, spent by the answer).
type ceremony struct {
	Purpose string `json:"purpose"` // "register" or "login"
	// UserID: for a registration, the account; for a sign-in, the
	// account whose password was checked ("" when passwordless).
	UserID  string               `json:"userId,omitempty"`
	Session webauthn.SessionData `json:"session"`
}

// relyingParty derives the WebAuthn relying party from the issuer URL:
// its host is the RP ID and its origin the one origin accepted. A
// loopback address stands for localhost (an RP ID is a domain, never an
// address), so a development server is reached at http://localhost:port
// for passkeys; any other address has no passkeys.
func relyingParty(issuer string) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("issuer %q: not an absolute URL", issuer)
	}
	host, origin := u.Hostname(), u.Scheme+"://"+u.Host
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return nil, errors.New("passkeys need the server to be reached by a domain name, not an IP address")
		}
		host, origin = "localhost", u.Scheme+"://localhost"
		if p := u.Port(); p != "" {
			origin += ":" + p
		}
	}
	return webauthn.New(&webauthn.Config{
		RPID: host, RPDisplayName: "Hale", RPOrigins: []string{origin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
	})
}

// PasskeysEnabled reports whether this server can use passkeys (its
// issuer has a domain name, or is on the loopback address).
func (s *Service) PasskeysEnabled() bool { return s.webauthn != nil }

// PasskeyOrigin is the origin passkeys work on ("" when they do not).
func (s *Service) PasskeyOrigin() string {
	if s.webauthn == nil {
		return ""
	}
	return s.webauthn.Config.RPOrigins[0]
}

var errNoPasskeys = &hale.Error{Kind: hale.KindInvalid, Op: "auth.Passkey", Message: "passkeys are not available on this server (it needs a domain name)"}

// credentialKey is the record key part of a credential id.
func credentialKey(id []byte) string {
	sum := sha256.Sum256(id)
	return hex.EncodeToString(sum[:])
}

// passkeyUser is a user with their passkeys, as the library sees it. The
// WebAuthn user handle is the user id (128 random bits, no personal
// data, §14.6.1).
type passkeyUser struct {
	u    *User
	keys []hale.Record // passkey records, with their versions
	pks  []Passkey
}

func (p *passkeyUser) WebAuthnID() []byte          { return []byte(p.u.ID) }
func (p *passkeyUser) WebAuthnName() string        { return p.u.Username }
func (p *passkeyUser) WebAuthnDisplayName() string { return p.u.Username }
func (p *passkeyUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(p.pks))
	for i := range p.pks {
		out[i] = p.pks[i].Credential
	}
	return out
}

// loadPasskeyUser reads a user and their passkeys.
func (s *Service) loadPasskeyUser(ctx context.Context, userID string) (*passkeyUser, error) {
	u, err := s.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	recs, err := s.rec.ListRecords(ctx, kindPasskey, userID+"/", "", maxPasskeys+5)
	if err != nil {
		return nil, err
	}
	p := &passkeyUser{u: u}
	for _, r := range recs {
		var pk Passkey
		if s.decode(r, &pk) != nil {
			continue
		}
		p.keys, p.pks = append(p.keys, r), append(p.pks, pk)
	}
	return p, nil
}

// Passkeys lists a user's passkeys, oldest first.
func (s *Service) Passkeys(ctx context.Context, userID string) ([]Passkey, error) {
	p, err := s.loadPasskeyUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(p.pks, func(a, b Passkey) int { return a.Created.Compare(b.Created) })
	return p.pks, nil
}

// newCeremony stores a ceremony's challenge and returns its id with the
// options.
func (s *Service) newCeremony(ctx context.Context, c *ceremony, options any) (*PasskeyCeremony, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, err
	}
	id := randomToken()
	if _, err := s.putJSON(ctx, kindCeremony, digest(id), 0, s.now().UTC().Add(ceremonyTTL), c); err != nil {
		return nil, err
	}
	return &PasskeyCeremony{ID: id, Options: opts}, nil
}

// spendCeremony reads a ceremony and deletes it at the version read, so
// that of two answers to one challenge at most one is checked. It
// returns nil for an unknown, spent, expired or other-purpose ceremony.
func (s *Service) spendCeremony(ctx context.Context, id, purpose string) (*ceremony, error) {
	if id == "" || len(id) > 100 {
		return nil, nil
	}
	var c ceremony
	r, err := s.getJSON(ctx, kindCeremony, digest(id), &c)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.rec.DeleteRecord(ctx, kindCeremony, r.Key, r.Version); err != nil {
		if hale.IsKind(err, hale.KindNotFound) || hale.IsKind(err, hale.KindConflict) {
			return nil, nil
		}
		return nil, err
	}
	if !s.now().Before(r.Expires) || c.Purpose != purpose {
		return nil, nil
	}
	return &c, nil
}

// checkPassword confirms the password of a signed-in user (before a
// change to their credentials), with the lockout of a login.
func (s *Service) checkPassword(ctx context.Context, u *User, password, address string) error {
	until, err := s.lockedUntil(ctx, userLockKey(u.Username))
	if err != nil {
		return err
	}
	if !until.IsZero() {
		return &LockedError{Until: until}
	}
	if len(password) > MaxPasswordLength || !s.verify(password, u.PasswordHash) {
		if err := s.recordFailure(ctx, userLockKey(u.Username), s.opts.UserLockout); err != nil {
			return err
		}
		if err := s.recordFailure(ctx, addrLockKey(address), s.opts.AddressLockout); err != nil {
			return err
		}
		return &hale.Error{Kind: hale.KindUnauthorized, Op: "auth.Passkey", Message: "the password is not correct"}
	}
	return nil
}

// BeginPasskeyRegistration starts registering a passkey for a signed-in
// user, who confirms the password first (a stolen session alone cannot
// add a credential). Errors: KindUnauthorized for a wrong password or a
// disabled account, *LockedError, KindInvalid when passkeys are not
// available or the account has the most passkeys it may.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, userID, password, address string) (*PasskeyCeremony, error) {
	if s.webauthn == nil {
		return nil, errNoPasskeys
	}
	p, err := s.loadPasskeyUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	if p.u.Disabled {
		return nil, &hale.Error{Kind: hale.KindUnauthorized, Op: "auth.Passkey", Message: "the account is disabled"}
	}
	if err := s.checkPassword(ctx, p.u, password, address); err != nil {
		return nil, err
	}
	if len(p.pks) >= maxPasskeys {
		return nil, invalid("auth.Passkey", "an account may have at most %d passkeys; remove one first", maxPasskeys)
	}
	creation, sess, err := s.webauthn.BeginRegistration(p,
		webauthn.WithExclusions(webauthn.Credentials(p.WebAuthnCredentials()).CredentialDescriptors()),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementPreferred))
	if err != nil {
		return nil, err
	}
	return s.newCeremony(ctx, &ceremony{Purpose: "register", UserID: userID, Session: *sess}, creation)
}

// FinishPasskeyRegistration checks the authenticator's answer (the
// browser's PublicKeyCredential as JSON) to a registration the same user
// began, and stores the passkey under name. Errors (KindInvalid, the
// message fit for the user): expired or unknown ceremony, an answer that
// does not verify (challenge, origin, RP ID, flags, attestation), a
// credential already registered (to this or another account).
func (s *Service) FinishPasskeyRegistration(ctx context.Context, userID, ceremonyID, name string, response []byte) (*Passkey, error) {
	const op = "auth.Passkey"
	if s.webauthn == nil {
		return nil, errNoPasskeys
	}
	c, err := s.spendCeremony(ctx, ceremonyID, "register")
	if err != nil {
		return nil, err
	}
	if c == nil || c.UserID != userID {
		return nil, invalid(op, "the passkey request expired or was already answered; try again")
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = "Passkey added " + s.now().UTC().Format("2006-01-02")
	}
	if utf8.RuneCountInString(name) > 64 || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' }) {
		return nil, invalid(op, "the passkey's name must be at most 64 characters, on one line")
	}
	p, err := s.loadPasskeyUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, invalid(op, "the authenticator's answer could not be read")
	}
	cred, err := s.webauthn.CreateCredential(p, c.Session, parsed)
	if err != nil {
		s.log.Info("passkey registration refused", "user", userID, "err", err)
		return nil, invalid(op, "the authenticator's answer could not be verified")
	}
	key := credentialKey(cred.ID)
	// One account per credential (§7.1 step 22): claim the id first.
	if _, err := s.putJSON(ctx, kindPasskeyID, key, 0, time.Time{}, map[string]string{"userId": userID}); err != nil {
		if hale.IsKind(err, hale.KindConflict) {
			return nil, invalid(op, "this passkey is already registered")
		}
		return nil, err
	}
	pk := &Passkey{ID: key, Name: name, Created: s.now().UTC(), Credential: *cred}
	if _, err := s.putJSON(ctx, kindPasskey, userID+"/"+key, 0, time.Time{}, pk); err != nil {
		s.rec.DeleteRecord(ctx, kindPasskeyID, key, 0)
		return nil, err
	}
	s.accountChange(ctx, "user/"+userID, "passkey added: "+name)
	return pk, nil
}

// DeletePasskey removes a user's passkey (id as Passkey.ID);
// KindNotFound when the user has no such passkey.
func (s *Service) DeletePasskey(ctx context.Context, userID, id string) error {
	if len(id) != 64 {
		return &hale.Error{Kind: hale.KindNotFound, Op: "auth.DeletePasskey", Message: "no such passkey"}
	}
	var pk Passkey
	if _, err := s.getJSON(ctx, kindPasskey, userID+"/"+id, &pk); err != nil {
		return err
	}
	if err := s.rec.DeleteRecord(ctx, kindPasskey, userID+"/"+id, 0); err != nil {
		return err
	}
	if err := s.rec.DeleteRecord(ctx, kindPasskeyID, id, 0); err != nil && !hale.IsKind(err, hale.KindNotFound) {
		return err
	}
	s.accountChange(ctx, "user/"+userID, "passkey removed: "+pk.Name)
	return nil
}

// BeginPasskeyLogin starts a sign-in with a passkey. Without a username
// it is passwordless: any passkey of this server the authenticator holds
// (a discoverable credential), with user verification required. With a
// username and password, these are checked as Login checks them
// (lockout, the same error for every failure, audit of failures) and the
// passkey is the second factor: only that account's passkeys are
// allowed. Errors: ErrCredentials, *LockedError, KindInvalid when
// passkeys are not available or the account has none.
func (s *Service) BeginPasskeyLogin(ctx context.Context, username, password, address string) (*PasskeyCeremony, error) {
	if s.webauthn == nil {
		return nil, errNoPasskeys
	}
	if username == "" {
		until, err := s.lockedUntil(ctx, addrLockKey(address))
		if err != nil {
			return nil, err
		}
		if !until.IsZero() {
			return nil, &LockedError{Until: until}
		}
		assertion, sess, err := s.webauthn.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
		if err != nil {
			return nil, err
		}
		return s.newCeremony(ctx, &ceremony{Purpose: "login", Session: *sess}, assertion)
	}
	u, _, err := s.verifyLogin(ctx, username, password, "", address)
	if errors.Is(err, ErrSecondFactor) {
		u, err = s.UserByName(ctx, username) // the password was right
	} else if err != nil {
		s.auditLogin(ctx, username, address, nil, err)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	p, err := s.loadPasskeyUser(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if len(p.pks) == 0 {
		return nil, invalid("auth.Passkey", "no passkey is registered for this account; use the one-time code")
	}
	assertion, sess, err := s.webauthn.BeginLogin(p, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, err
	}
	return s.newCeremony(ctx, &ceremony{Purpose: "login", UserID: u.ID, Session: *sess}, assertion)
}

// FinishPasskeyLogin checks the authenticator's answer (the browser's
// PublicKeyCredential as JSON) to a sign-in begun by BeginPasskeyLogin
// and opens a session, which counts as MFA. The challenge is spent by
// the first answer; the credential must be one of the account's
// (passwordless: of the account its user handle names), the signature
// must verify over this challenge, this origin and this RP ID, the user
// must be verified (passwordless), and the signature counter must have
// moved forward (unless the authenticator keeps none). Every failure is
// ErrPasskey (wrapped with the reason, which the audit trail records),
// counts towards the address's lockout (and the account's, when the
// password was given), and is audited as a failed login.
func (s *Service) FinishPasskeyLogin(ctx context.Context, ceremonyID string, response []byte, address string) (*Session, error) {
	if s.webauthn == nil {
		return nil, errNoPasskeys
	}
	until, err := s.lockedUntil(ctx, addrLockKey(address))
	if err != nil {
		return nil, err
	}
	if !until.IsZero() {
		return nil, &LockedError{Until: until}
	}
	c, err := s.spendCeremony(ctx, ceremonyID, "login")
	if err != nil {
		return nil, err
	}
	var p *passkeyUser
	fail := func(reason string) (*Session, error) {
		err := fmt.Errorf("%w: %s", ErrPasskey, reason)
		keys := []string{addrLockKey(address)}
		name := ""
		if p != nil {
			name = p.u.Username
			if c != nil && c.UserID != "" {
				keys = append(keys, userLockKey(name))
			}
		}
		for i, k := range keys {
			l := s.opts.AddressLockout
			if i > 0 {
				l = s.opts.UserLockout
			}
			if ferr := s.recordFailure(ctx, k, l); ferr != nil {
				return nil, ferr
			}
		}
		var u *User
		if p != nil {
			u = p.u
		}
		s.auditLogin(ctx, name, address, u, err)
		return nil, err
	}
	if c == nil {
		return fail("the challenge is unknown, expired or was already answered")
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return fail("the answer could not be read")
	}
	var cred *webauthn.Credential
	if c.UserID != "" {
		if p, err = s.loadPasskeyUser(ctx, c.UserID); err != nil {
			if hale.IsKind(err, hale.KindNotFound) {
				return fail("the account no longer exists")
			}
			return nil, err
		}
		cred, err = s.webauthn.ValidateLogin(p, c.Session, parsed)
	} else {
		var lookupErr error
		_, cred, err = s.webauthn.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			p, lookupErr = s.loadPasskeyUser(ctx, string(userHandle))
			if lookupErr != nil {
				p = nil
				return nil, lookupErr
			}
			return p, nil
		}, c.Session, parsed)
		if lookupErr != nil && !hale.IsKind(lookupErr, hale.KindNotFound) {
			return nil, lookupErr
		}
		if err == nil && !parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
			return fail("the authenticator did not verify the user")
		}
	}
	if err != nil {
		s.log.Info("passkey sign-in refused", "err", err)
		return fail("the answer does not verify for a passkey of the account")
	}
	if cred.Authenticator.CloneWarning {
		return fail("the signature counter did not move forward (a cloned or replayed authenticator)")
	}
	u := p.u
	if u.Disabled || u.DemoNoMFA && !s.opts.DemoMode {
		return fail("the account cannot sign in")
	}
	// Keep the new counter, at the version checked: of two sign-ins
	// racing with one passkey, the second fails.
	i := slices.IndexFunc(p.pks, func(pk Passkey) bool { return pk.ID == credentialKey(cred.ID) })
	if i < 0 {
		return fail("the credential is not the account's")
	}
	pk := p.pks[i]
	pk.Credential, pk.LastUsed = *cred, s.now().UTC()
	if _, err := s.putJSON(ctx, kindPasskey, p.keys[i].Key, p.keys[i].Version, time.Time{}, &pk); err != nil {
		if hale.IsKind(err, hale.KindConflict) || hale.IsKind(err, hale.KindNotFound) {
			return fail("the passkey was used or removed meanwhile")
		}
		return nil, err
	}
	if c.UserID != "" {
		if err := s.clearFailures(ctx, userLockKey(u.Username)); err != nil {
			return nil, err
		}
	}
	s.auditLogin(ctx, u.Username, address, u, nil)
	return s.openSession(ctx, u, address, true)
}

// AllowAttempt applies the per-address rate limit of the login and token
// endpoints (Options.RatePerMinute, Burst) to another sign-in surface —
// the web app's passkey sign-in — and says how long to wait when over it.
func (s *Service) AllowAttempt(address string) (bool, time.Duration) { return s.limit.allow(address) }

// auditLogin tells the audit of a login attempt: u is the account when
// known.
func (s *Service) auditLogin(ctx context.Context, username, address string, u *User, err error) {
	if s.opts.Audit == nil {
		return
	}
	who := hale.Principal{Name: username, Address: address}
	if u != nil {
		who.Subject, who.Name, who.Role = "user/"+u.ID, u.Username, u.Role
		if err == nil {
			who.FHIRUser, who.Organizations = u.FHIRUser, slices.Clone(u.Organizations)
		}
	} else if username != "" {
		if known, uerr := s.UserByName(ctx, username); uerr == nil {
			who.Subject, who.Role = "user/"+known.ID, known.Role
		}
	}
	if aerr := s.opts.Audit.Login(ctx, who, err); aerr != nil {
		s.log.Error("audit: recording a login", "err", aerr)
	}
}

// AccountAudit, when Options.Audit also implements it (audit.Recorder
// does), hears changes to an account's credentials and to the apps it
// authorized: passkeys added or removed, apps' access revoked. The
// context's principal made the change.
type AccountAudit interface {
	PermissionChange(ctx context.Context, target, detail string, err error) error
}

func (s *Service) accountChange(ctx context.Context, target, detail string) {
	if a, ok := s.opts.Audit.(AccountAudit); ok {
		if err := a.PermissionChange(ctx, target, detail, nil); err != nil {
			s.log.Error("audit: recording an account change", "err", err)
		}
	}
}
