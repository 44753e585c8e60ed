package auth

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// User is an account of a person. It is stored as JSON in the record
// user/<ID>; username/<lower-case username> points to it.
type User struct {
	ID       string    `json:"id"`
	Username string    `json:"username"`
	Role     hale.Role `json:"role"`
	// FHIRUser is the resource the user is: "Practitioner/123",
	// "PractitionerRole/…", "Patient/456", or "".
	FHIRUser      string   `json:"fhirUser,omitempty"`
	Organizations []string `json:"organizations,omitempty"`
	// PasswordHash is the argon2id PHC string (password.go).
	PasswordHash string `json:"passwordHash"`
	// TOTPSealed is the TOTP seed sealed with the secret key (seal.go),
	// empty when the user has no second factor.
	TOTPSealed []byte `json:"totpSealed,omitempty"`
	// TOTPLastStep is the time step of the last accepted code: a code
	// is accepted only for a later step, so none is used twice.
	TOTPLastStep int64 `json:"totpLastStep,omitempty"`
	// DemoNoMFA marks the demo account, which logs in without a second
	// factor while the server runs in demo mode (Options.DemoMode) and
	// not at all otherwise.
	DemoNoMFA bool `json:"demoNoMfa,omitempty"`
	Disabled  bool `json:"disabled,omitempty"`
	// Generation changes when the password is reset or the account is
	// disabled: sessions of an older generation end.
	Generation int       `json:"generation"`
	Created    time.Time `json:"created"`
}

// NewUser describes an account to create.
type NewUser struct {
	Username      string
	Password      string
	Role          hale.Role
	FHIRUser      string
	Organizations []string
	// DemoNoMFA creates the demo account without a second factor even
	// for a role that requires one; only in demo mode.
	DemoNoMFA bool
}

// Created is what AddUser returns: the stored user and, when the role
// requires a second factor, the otpauth:// URI to enrol in an
// authenticator app (shown once: the seed is stored only sealed).
type Created struct {
	User            *User
	ProvisioningURI string
}

var (
	usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$`)
	fhirUserRE = regexp.MustCompile(`^(Practitioner|PractitionerRole|Patient|RelatedPerson|Person)/[A-Za-z0-9\-.]{1,64}$`)
	fhirIDRE   = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
)

func normUsername(u string) string { return strings.ToLower(strings.TrimSpace(u)) }

func invalid(op, format string, a ...any) error {
	return &hale.Error{Kind: hale.KindInvalid, Op: op, Message: fmt.Sprintf(format, a...)}
}

// MFARequired reports whether role must log in with a second factor.
func (s *Service) MFARequired(role hale.Role) bool { return slices.Contains(s.opts.MFARoles, role) }

// AddUser creates an account. Returns KindInvalid for a bad username,
// role, password, fhirUser or organization id, KindConflict when the
// username is taken (case-insensitively).
func (s *Service) AddUser(ctx context.Context, nu NewUser) (*Created, error) {
	const op = "auth.AddUser"
	if !usernameRE.MatchString(nu.Username) {
		return nil, invalid(op, "username must be 2 to 64 letters, digits or . _ @ -, starting with a letter or digit")
	}
	if !slices.Contains(hale.Roles, nu.Role) {
		return nil, invalid(op, "role %q: expected one of %v", nu.Role, hale.Roles)
	}
	if err := checkPassword(nu.Password); err != nil {
		return nil, invalid(op, "%v", err)
	}
	if nu.FHIRUser != "" && !fhirUserRE.MatchString(nu.FHIRUser) {
		return nil, invalid(op, "fhir user %q: expected Practitioner/ID, PractitionerRole/ID, Patient/ID, RelatedPerson/ID or Person/ID", nu.FHIRUser)
	}
	if nu.Role == hale.RolePatient && nu.FHIRUser != "" && !strings.HasPrefix(nu.FHIRUser, "Patient/") {
		return nil, invalid(op, "a patient user's fhir user must be a Patient")
	}
	for _, o := range nu.Organizations {
		if !fhirIDRE.MatchString(o) {
			return nil, invalid(op, "organization %q: not a FHIR id", o)
		}
	}
	if nu.DemoNoMFA && !s.opts.DemoMode {
		return nil, invalid(op, "an account without a second factor can only be made in demo mode")
	}
	u := &User{
		ID: randomID(), Username: nu.Username, Role: nu.Role, FHIRUser: nu.FHIRUser,
		Organizations: nu.Organizations, Generation: 1, Created: s.now().UTC(), DemoNoMFA: nu.DemoNoMFA,
	}
	u.PasswordHash = s.hash(nu.Password)
	out := &Created{User: u}
	if s.MFARequired(u.Role) && !nu.DemoNoMFA {
		seed := newTOTPSecret()
		u.TOTPSealed = s.seal.Seal(seed, kindUser+"/"+u.ID+"/totp")
		out.ProvisioningURI = provisioningURI("Hale", u.Username, seed)
	}
	// The username first: it is the uniqueness check.
	if _, err := s.putJSON(ctx, kindUsername, normUsername(u.Username), 0, time.Time{}, map[string]string{"id": u.ID}); err != nil {
		if hale.IsKind(err, hale.KindConflict) {
			return nil, &hale.Error{Kind: hale.KindConflict, Op: op, Message: fmt.Sprintf("username %q is taken", u.Username)}
		}
		return nil, err
	}
	if _, err := s.putJSON(ctx, kindUser, u.ID, 0, time.Time{}, u); err != nil {
		s.rec.DeleteRecord(ctx, kindUsername, normUsername(u.Username), 0)
		return nil, err
	}
	// A new account is a grant of privileges (45 CFR 170.210(e)(1):
	// changes to user privileges are audited).
	s.accountChange(ctx, "user/"+u.ID, fmt.Sprintf("account %s created: role %s%s", u.Username, u.Role, orgList(u.Organizations)))
	return out, nil
}

func orgList(orgs []string) string {
	if len(orgs) == 0 {
		return ", no organization"
	}
	return ", organizations " + strings.Join(orgs, " ")
}

// SetRole changes an account's role and, when orgs is not nil, its
// organizations (whose patients the role applies to). It takes effect at
// the user's next request, in every session and app token: the caller is
// read from the account each time. A role that needs a second factor gets
// one when the account has none: the returned Created then carries the
// provisioning URI (shown once). The change is recorded with the audit
// (AccountAudit.PermissionChange) as made by the context's principal.
// Errors: KindInvalid for an unknown role, a bad organization id, or a
// change into or out of the patient role (a patient's account is tied to
// their Patient record: make a new account); KindNotFound.
func (s *Service) SetRole(ctx context.Context, userID string, role hale.Role, orgs []string) (*Created, error) {
	const op = "auth.SetRole"
	if !slices.Contains(hale.Roles, role) {
		return nil, invalid(op, "role %q: expected one of %v", role, hale.Roles)
	}
	for _, o := range orgs {
		if !fhirIDRE.MatchString(o) {
			return nil, invalid(op, "organization %q: not a FHIR id", o)
		}
	}
	var before User
	out := &Created{}
	u, err := s.updateUser(ctx, userID, func(u *User) error {
		before = *u
		if (u.Role == hale.RolePatient) != (role == hale.RolePatient) {
			return invalid(op, "a %s account cannot become a %s account: create a new account", u.Role, role)
		}
		u.Role = role
		if orgs != nil {
			u.Organizations = slices.Clone(orgs)
		}
		out.ProvisioningURI = ""
		if s.MFARequired(role) && len(u.TOTPSealed) == 0 && !u.DemoNoMFA {
			seed := newTOTPSecret()
			u.TOTPSealed = s.seal.Seal(seed, kindUser+"/"+u.ID+"/totp")
			out.ProvisioningURI = provisioningURI("Hale", u.Username, seed)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out.User = u
	detail := fmt.Sprintf("role %s → %s", before.Role, u.Role)
	if !slices.Equal(before.Organizations, u.Organizations) {
		detail += fmt.Sprintf("; organizations [%s] → [%s]", strings.Join(before.Organizations, " "), strings.Join(u.Organizations, " "))
	}
	if out.ProvisioningURI != "" {
		detail += "; one-time-code enrolment issued"
	}
	s.accountChange(ctx, "user/"+u.ID, detail)
	return out, nil
}

// hash hashes a password, at most a few at a time (each takes the
// configured memory).
func (s *Service) hash(pw string) string {
	s.hashes <- struct{}{}
	defer func() { <-s.hashes }()
	return hashPassword(pw, s.opts.Argon2)
}

func (s *Service) verify(pw, phc string) bool {
	s.hashes <- struct{}{}
	defer func() { <-s.hashes }()
	ok, err := verifyPassword(pw, phc)
	if err != nil {
		s.log.Error("stored password hash is malformed", "err", err)
	}
	return ok
}

// UserByName returns the user with username (case-insensitive);
// KindNotFound when there is none.
func (s *Service) UserByName(ctx context.Context, username string) (*User, error) {
	var ref struct {
		ID string `json:"id"`
	}
	if _, err := s.getJSON(ctx, kindUsername, normUsername(username), &ref); err != nil {
		return nil, err
	}
	return s.User(ctx, ref.ID)
}

// User returns the user with id; KindNotFound when there is none.
func (s *Service) User(ctx context.Context, id string) (*User, error) {
	var u User
	if _, err := s.getJSON(ctx, kindUser, id, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// updateUser applies fn to the current user record by compare-and-swap,
// retrying when another write came first.
func (s *Service) updateUser(ctx context.Context, id string, fn func(u *User) error) (*User, error) {
	defer s.cache.forgetGrants() // tokens of the user's apps see the change at once
	for range 20 {
		var u User
		r, err := s.getJSON(ctx, kindUser, id, &u)
		if err != nil {
			return nil, err
		}
		if err := fn(&u); err != nil {
			return nil, err
		}
		_, err = s.putJSON(ctx, kindUser, id, r.Version, time.Time{}, &u)
		if err == nil {
			return &u, nil
		}
		if !hale.IsKind(err, hale.KindConflict) {
			return nil, err
		}
	}
	return nil, &hale.Error{Kind: hale.KindInternal, Op: "auth.updateUser", Message: "user record contended"}
}

// SetDisabled disables or enables an account; disabling ends its sessions
// at once.
func (s *Service) SetDisabled(ctx context.Context, userID string, disabled bool) error {
	_, err := s.updateUser(ctx, userID, func(u *User) error {
		if disabled && !u.Disabled {
			u.Generation++
		}
		u.Disabled = disabled
		return nil
	})
	if err == nil {
		s.accountChange(ctx, "user/"+userID, map[bool]string{true: "account disabled", false: "account enabled"}[disabled])
	}
	return err
}

// Login errors. The message of ErrCredentials is the same for an unknown
// username, a wrong password, a wrong code and a disabled account, so
// that a login reveals nothing about which accounts exist.
var (
	ErrCredentials = errors.New("the username, password or code is not correct")
	// ErrSecondFactor: the password was right and the account needs a
	// TOTP code; ask for it and call Login again with it.
	ErrSecondFactor = errors.New("a one-time code from the authenticator app is needed")
)

// LockedError says a username or address is locked out until a time.
type LockedError struct{ Until time.Time }

func (e *LockedError) Error() string {
	return "too many failed attempts; try again later"
}

// Session is a login session as the caller sees it once: ID is the secret
// for the cookie (only its SHA-256 is stored).
type Session struct {
	ID      string
	User    *User
	Expires time.Time // idle expiry, as of now
}

// session is the stored record (session/<SHA-256 of the id>).
type session struct {
	UserID     string    `json:"userId"`
	Generation int       `json:"generation"`
	SID        string    `json:"sid"` // public handle for the audit
	Created    time.Time `json:"created"`
	LastSeen   time.Time `json:"lastSeen"`
	Address    string    `json:"address,omitempty"`
	MFA        bool      `json:"mfa"`
}

// Login checks a username, password and (when the account has one) TOTP
// code from address and opens a session. Errors: ErrCredentials,
// ErrSecondFactor, *LockedError, or an internal error. Every failure
// except ErrSecondFactor counts towards the lockout of the username and
// of the address.
func (s *Service) Login(ctx context.Context, username, password, code, address string) (*Session, error) {
	u, mfa, err := s.checkLogin(ctx, username, password, code, address)
	if err != nil {
		return nil, err
	}
	return s.openSession(ctx, u, address, mfa)
}

// checkLogin is Login without the session: the SMART sign-in page uses it
// too, with the same lockout and audit. mfa tells whether a second factor
// was checked. Every outcome but "the second factor is needed" is
// recorded with the audit (Options.Audit).
func (s *Service) checkLogin(ctx context.Context, username, password, code, address string) (u *User, mfa bool, err error) {
	u, mfa, err = s.verifyLogin(ctx, username, password, code, address)
	if s.opts.Audit != nil && !errors.Is(err, ErrSecondFactor) {
		who := hale.Principal{Name: username, Address: address}
		if u != nil && err == nil {
			who = hale.Principal{Subject: "user/" + u.ID, Name: u.Username, Role: u.Role,
				FHIRUser: u.FHIRUser, Organizations: slices.Clone(u.Organizations), Address: address}
		} else if known, uerr := s.UserByName(ctx, username); uerr == nil {
			who.Subject, who.Role = "user/"+known.ID, known.Role
		}
		if aerr := s.opts.Audit.Login(ctx, who, err); aerr != nil {
			s.log.Error("audit: recording a login", "err", aerr)
		}
	}
	return u, mfa, err
}

// verifyLogin checks the credentials, counting failures towards the
// lockout.
func (s *Service) verifyLogin(ctx context.Context, username, password, code, address string) (u *User, mfa bool, err error) {
	for _, k := range []string{userLockKey(username), addrLockKey(address)} {
		until, err := s.lockedUntil(ctx, k)
		if err != nil {
			return nil, false, err
		}
		if !until.IsZero() {
			return nil, false, &LockedError{Until: until}
		}
	}
	fail := func() (*User, bool, error) {
		if err := s.recordFailure(ctx, userLockKey(username), s.opts.UserLockout); err != nil {
			return nil, false, err
		}
		if err := s.recordFailure(ctx, addrLockKey(address), s.opts.AddressLockout); err != nil {
			return nil, false, err
		}
		return nil, false, ErrCredentials
	}
	if len(password) > MaxPasswordLength || len(username) > 256 {
		return fail()
	}
	u, err = s.UserByName(ctx, username)
	if hale.IsKind(err, hale.KindNotFound) {
		s.verify(password, s.dummyPHC) // same time as a wrong password
		return fail()
	}
	if err != nil {
		return nil, false, err
	}
	if !s.verify(password, u.PasswordHash) || u.Disabled {
		return fail()
	}
	mfa = len(u.TOTPSealed) > 0
	if u.DemoNoMFA && !s.opts.DemoMode {
		return fail()
	}
	if !mfa && s.MFARequired(u.Role) && !u.DemoNoMFA {
		// A role that requires MFA without an enrolled seed cannot log
		// in (AddUser always enrols one; this guards edited records).
		return fail()
	}
	if mfa {
		if code == "" {
			return nil, false, ErrSecondFactor
		}
		seed, err := s.seal.Open(u.TOTPSealed, kindUser+"/"+u.ID+"/totp")
		if err != nil {
			return nil, false, &hale.Error{Kind: hale.KindInternal, Op: "auth.Login", Message: "cannot open the TOTP seed", Err: err}
		}
		step, ok := matchTOTP(seed, code, s.now(), u.TOTPLastStep)
		if !ok {
			return fail()
		}
		// Spend the step: of two logins with one code, one wins.
		_, err = s.updateUser(ctx, u.ID, func(cur *User) error {
			if step <= cur.TOTPLastStep {
				return ErrCredentials
			}
			cur.TOTPLastStep = step
			return nil
		})
		if errors.Is(err, ErrCredentials) {
			return fail()
		}
		if err != nil {
			return nil, false, err
		}
	}
	if err := s.clearFailures(ctx, userLockKey(username)); err != nil {
		return nil, false, err
	}
	return u, mfa, nil
}

func (s *Service) openSession(ctx context.Context, u *User, address string, mfa bool) (*Session, error) {
	now := s.now().UTC()
	id := randomToken()
	sess := session{UserID: u.ID, Generation: u.Generation, SID: randomID(), Created: now, LastSeen: now,
		Address: address, MFA: mfa}
	if _, err := s.putJSON(ctx, kindSession, digest(id), 0, s.sessionExpiry(&sess), &sess); err != nil {
		return nil, err
	}
	return &Session{ID: id, User: u, Expires: now.Add(s.opts.IdleTimeout)}, nil
}

// sessionExpiry is when a session record may be swept: idle or absolute
// limit, whichever comes first.
func (s *Service) sessionExpiry(sess *session) time.Time {
	return minTime(sess.LastSeen.Add(s.opts.IdleTimeout), sess.Created.Add(s.opts.SessionMaxAge))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// touchEvery is how stale a session's LastSeen may be before a request
// writes it again; it saves a database write per request. The idle limit
// counts from the stored LastSeen, so a session may end up to this much
// early, never late.
const touchEvery = 30 * time.Second

// errNoSession is what every session failure is to the caller.
var errNoSession = &hale.Error{Kind: hale.KindUnauthorized, Op: "auth.Session", Message: "no valid session"}

// SessionPrincipal returns the caller of a session id: KindUnauthorized
// when the session does not exist, was idle longer than the idle timeout
// or is older than the maximum age (then it is deleted), or its user was
// disabled or had the password reset. A request within the limits
// extends the idle timer.
func (s *Service) SessionPrincipal(ctx context.Context, id, address string) (*hale.Principal, error) {
	if id == "" || len(id) > 100 {
		return nil, errNoSession
	}
	key := digest(id)
	var sess session
	r, err := s.getJSON(ctx, kindSession, key, &sess)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if now.Sub(sess.LastSeen) >= s.opts.IdleTimeout || now.Sub(sess.Created) >= s.opts.SessionMaxAge {
		s.rec.DeleteRecord(ctx, kindSession, key, 0)
		return nil, errNoSession
	}
	u, err := s.User(ctx, sess.UserID)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled || u.Generation != sess.Generation {
		s.rec.DeleteRecord(ctx, kindSession, key, 0)
		return nil, errNoSession
	}
	if now.Sub(sess.LastSeen) >= touchEvery {
		sess.LastSeen = now.UTC()
		// A lost race means another request touched it: fine.
		if _, err := s.putJSON(ctx, kindSession, key, r.Version, s.sessionExpiry(&sess), &sess); err != nil &&
			!hale.IsKind(err, hale.KindConflict) {
			return nil, err
		}
	}
	return &hale.Principal{
		Subject: "user/" + u.ID, Name: u.Username, Role: u.Role, FHIRUser: u.FHIRUser,
		Organizations: slices.Clone(u.Organizations), Address: address, Session: "session/" + sess.SID,
	}, nil
}

// Logout ends a session (idempotent).
func (s *Service) Logout(ctx context.Context, id string) error {
	err := s.rec.DeleteRecord(ctx, kindSession, digest(id), 0)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil
	}
	return err
}

// ResetTTL is how long an admin-issued reset code stays valid.
const ResetTTL = 24 * time.Hour

// IssueReset returns a one-time password-reset code for a user, valid for
// ResetTTL, to put in a link (the admin hands it over out of band). Only
// its SHA-256 is stored. KindNotFound when there is no such user.
func (s *Service) IssueReset(ctx context.Context, userID string) (string, error) {
	if _, err := s.User(ctx, userID); err != nil {
		return "", err
	}
	code := randomToken()
	exp := s.now().UTC().Add(ResetTTL)
	if _, err := s.putJSON(ctx, kindReset, digest(code), 0, exp, map[string]string{"userId": userID}); err != nil {
		return "", err
	}
	return code, nil
}

// ResetPassword spends a reset code and sets the user's new password,
// ending every session of the user. Returns KindInvalid for a bad
// password (the code is not spent then), KindUnauthorized for an
// unknown, used or expired code.
func (s *Service) ResetPassword(ctx context.Context, code, password string) error {
	const op = "auth.ResetPassword"
	bad := &hale.Error{Kind: hale.KindUnauthorized, Op: op, Message: "the reset link is not valid or was used"}
	if err := checkPassword(password); err != nil {
		return invalid(op, "%v", err)
	}
	var ref struct {
		UserID string `json:"userId"`
	}
	r, err := s.getJSON(ctx, kindReset, digest(code), &ref)
	if hale.IsKind(err, hale.KindNotFound) {
		return bad
	}
	if err != nil {
		return err
	}
	// Spending is deleting this version: of two uses, one wins.
	if err := s.rec.DeleteRecord(ctx, kindReset, r.Key, r.Version); err != nil {
		if hale.IsKind(err, hale.KindNotFound) || hale.IsKind(err, hale.KindConflict) {
			return bad
		}
		return err
	}
	if !r.Expires.After(s.now()) {
		return bad
	}
	phc := s.hash(password)
	_, err = s.updateUser(ctx, ref.UserID, func(u *User) error {
		u.PasswordHash = phc
		u.Generation++
		return nil
	})
	if err != nil {
		return err
	}
	u, err := s.User(ctx, ref.UserID)
	if err == nil {
		err = s.clearFailures(ctx, userLockKey(u.Username))
	}
	return err
}
