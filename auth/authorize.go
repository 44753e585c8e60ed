package auth

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// The browser side of SMART App Launch 2.x (hl7.org/fhir/smart-app-launch/
// app-launch.html, "Obtain authorization code"): GET or POST
// /auth/authorize starts an authorization, the user signs in, picks a
// patient when the app needs one and nobody gave it, approves the scopes,
// and the browser goes back to the app's redirect URI with code and
// state. The pages are server-rendered (html/template, embedded, no
// script, one stylesheet from /auth/assets), so a strict CSP holds.
//
// The authorization in progress is a record authz/<SHA-256 of its id>,
// living ten minutes; its id travels in the forms, and it is bound to the
// browser by the pre-auth cookie hale_authz (its SHA-256 is in the
// record) and to the page by a CSRF token in every form: a form posted
// from another site, or in another browser, is refused.

//go:embed pages
var pageFS embed.FS

var pages = template.Must(template.ParseFS(pageFS, "pages/*.html"))

const (
	// AuthzCookie binds an authorization in progress to the browser.
	AuthzCookie = "hale_authz"
	authzTTL    = 10 * time.Minute
	// maxState bounds state and nonce, which Hale echoes.
	maxState = 1024
)

// authzRequest is the stored authorization in progress.
type authzRequest struct {
	Client      string   `json:"client"`
	RedirectURI string   `json:"redirectUri"`
	State       string   `json:"state"`
	Challenge   string   `json:"challenge"`
	Nonce       string   `json:"nonce,omitempty"`
	Requested   []string `json:"requested"`
	LaunchKey   string   `json:"launchKey,omitempty"` // record key of the EHR launch
	LaunchUser  string   `json:"launchUser,omitempty"`
	Patient     string   `json:"patient,omitempty"`
	Encounter   string   `json:"encounter,omitempty"`
	NeedBanner  bool     `json:"needBanner,omitempty"`
	Binding     string   `json:"binding"` // SHA-256 of the hale_authz cookie
	CSRF        string   `json:"csrf"`
	UserID      string   `json:"userId,omitempty"` // once signed in
	// SSO: the user came signed in, from their Hale session (sso.go);
	// LaunchPatient is the EHR launch's patient, for signing in again
	// as someone else.
	SSO           bool      `json:"sso,omitempty"`
	LaunchPatient string    `json:"launchPatient,omitempty"`
	Granted       []string  `json:"granted,omitempty"`
	Created       time.Time `json:"created"`
}

// page is what a template shows.
type page struct {
	Title, Client, Error string
	TX, CSRF             string
	Username             string
	NeedCode             bool
	Query                string
	Patients             []PatientChoice
	PatientName          string
	Scopes               []scopeItem
	SSO                  bool   // signed in from the Hale session: offer another account
	Continue             string // the interstitial's next URL (sso.go)
}

type scopeItem struct {
	Scope, Text string
	Optional    bool
}

// pageHeaders are set on every auth page: nothing cached, nothing framed,
// nothing loaded but Hale's stylesheet, no Referer (the code and the
// authorization id must not leak to other sites).
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'")
}

func (s *Service) render(w http.ResponseWriter, status int, name string, p *page) {
	pageHeaders(w)
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, p); err != nil {
		s.log.Error("auth page", "page", name, "err", err)
	}
}

// errorPage answers a request that must not go back to the app (unknown
// client, unregistered redirect URI, no state, expired or foreign form).
func (s *Service) errorPage(w http.ResponseWriter, status int, msg string) {
	s.render(w, status, "error", &page{Title: "The app cannot connect", Error: msg})
}

// internalPage logs err with an id the page quotes.
func (s *Service) internalPage(w http.ResponseWriter, err error) {
	id := randomID()[:12]
	s.log.Error("authorization failed", "error_id", id, "err", err)
	s.errorPage(w, http.StatusInternalServerError, "Something went wrong on Hale's side (error "+id+").")
}

// redirectTo sends the browser to the app: the registered redirect URI
// with params added to its query.
func redirectTo(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil { // registered URIs were checked; cannot happen
		http.Error(w, "bad redirect URI", http.StatusInternalServerError)
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	http.Redirect(w, r, u.String(), status)
}

// redirectError answers an authorization error to the app (RFC 6749
// §4.1.2.1), with its state.
func redirectError(w http.ResponseWriter, r *http.Request, req *authzRequest, code, desc string) {
	redirectTo(w, r, req.RedirectURI, url.Values{"error": {code}, "error_description": {desc}, "state": {req.State}})
}

// serveAuthorize starts an authorization (GET, or POST with the same
// parameters as a form: "authorize-post"). Until the client and its
// redirect URI are known good, and state is there to echo, problems are
// shown on a page and never sent anywhere; after that they go back to the
// app as error redirects.
func (s *Service) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if e := parseForm(w, r); e != nil {
			s.errorPage(w, http.StatusBadRequest, "The authorization request must be a form post.")
			return
		}
	} else if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "The authorization request is malformed.")
		return
	}
	keys := []string{"response_type", "client_id", "redirect_uri", "scope", "state", "aud", "launch",
		"code_challenge", "code_challenge_method", "nonce"}
	v, err := formValues(r.Form, keys...)
	if err != nil {
		s.errorPage(w, http.StatusBadRequest, "A parameter of the authorization request is repeated.")
		return
	}
	p := map[string]string{}
	for i, k := range keys {
		p[k] = v[i]
	}
	ctx := r.Context()
	client, err := s.Client(ctx, p["client_id"])
	if hale.IsKind(err, hale.KindNotFound) || err == nil && (client.Disabled || len(client.RedirectURIs) == 0) {
		s.errorPage(w, http.StatusBadRequest, "The app is not registered with Hale (unknown client_id).")
		return
	}
	if err != nil {
		s.internalPage(w, err)
		return
	}
	// Exact, byte-for-byte: no prefix, case, path or encoding games.
	if !slices.Contains(client.RedirectURIs, p["redirect_uri"]) {
		s.errorPage(w, http.StatusBadRequest, "The app asked to return to an address it did not register (redirect_uri).")
		return
	}
	if p["state"] == "" || len(p["state"]) > maxState {
		s.errorPage(w, http.StatusBadRequest, "The app sent no state parameter (or one too long); Hale cannot answer it safely.")
		return
	}
	req := &authzRequest{Client: client.ID, RedirectURI: p["redirect_uri"], State: p["state"],
		Challenge: p["code_challenge"], Nonce: p["nonce"], Requested: strings.Fields(p["scope"])}
	switch {
	case p["response_type"] != "code":
		redirectError(w, r, req, "unsupported_response_type", "response_type must be code")
		return
	case strings.TrimSuffix(p["aud"], "/") != strings.TrimSuffix(s.opts.Audience, "/"):
		redirectError(w, r, req, "invalid_request", "aud must be this server's FHIR base URL, "+s.opts.Audience)
		return
	case p["code_challenge_method"] != "S256":
		redirectError(w, r, req, "invalid_request", "PKCE is required with code_challenge_method S256 (plain is not accepted)")
		return
	case !challengeRE.MatchString(p["code_challenge"]):
		redirectError(w, r, req, "invalid_request", "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)")
		return
	case len(p["nonce"]) > maxState:
		redirectError(w, r, req, "invalid_request", "nonce is too long")
		return
	case len(req.Requested) == 0 || len(p["scope"]) > 4096:
		redirectError(w, r, req, "invalid_scope", "scope is required")
		return
	}
	if l := p["launch"]; l != "" {
		if !slices.Contains(req.Requested, ScopeLaunch) {
			redirectError(w, r, req, "invalid_scope", "an EHR launch (launch parameter) needs the launch scope")
			return
		}
		var ln launchRecord
		key := digest(l)
		lr, err := s.getJSON(ctx, kindLaunch, key, &ln)
		if err != nil && !hale.IsKind(err, hale.KindNotFound) {
			s.internalPage(w, err)
			return
		}
		if err != nil || !s.now().Before(lr.Expires) || ln.Client != "" && ln.Client != client.ID {
			redirectError(w, r, req, "invalid_request", "the launch is unknown, expired or for another app")
			return
		}
		req.LaunchKey, req.LaunchUser, req.Patient, req.Encounter, req.NeedBanner = key, ln.UserID, ln.Patient, ln.Encounter, ln.NeedBanner
		req.LaunchPatient = ln.Patient
	} else {
		req.NeedBanner = true // standalone: the app shows who the patient is
	}
	// The pre-auth cookie: reuse this browser's, so that two tabs work.
	cookie := ""
	if c, err := r.Cookie(AuthzCookie); err == nil && len(c.Value) == 43 {
		cookie = c.Value
	} else {
		cookie = randomToken()
	}
	http.SetCookie(w, &http.Cookie{Name: AuthzCookie, Value: cookie, Path: "/auth/", HttpOnly: true,
		Secure: r.TLS != nil || strings.HasPrefix(s.opts.Issuer, "https:"), SameSite: http.SameSiteStrictMode,
		MaxAge: int(authzTTL / time.Second)})
	req.Binding, req.CSRF, req.Created = digest(cookie), randomToken(), s.now().UTC()
	tx := randomToken()
	rec, err := s.putJSON(ctx, kindAuthz, digest(tx), 0, req.Created.Add(authzTTL), req)
	if err != nil {
		s.internalPage(w, err)
		return
	}
	// Single sign-on from the Hale session (sso.go): a same-site
	// navigation carries the session cookie; from an app's site it
	// does not, so the interstitial page makes the same-site one.
	u, err := s.sessionUser(r)
	if err != nil {
		s.internalPage(w, err)
		return
	}
	if u != nil {
		req.UserID, req.SSO = u.ID, true
		s.afterSignIn(w, r, rec, req, tx, u)
		return
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		// Another site started the navigation: a session cookie, if
		// any, stayed behind.
		s.render(w, http.StatusOK, "continue", &page{Title: "Connecting to Hale", Client: client.Name,
			Continue: "/auth/authorize/continue?tx=" + url.QueryEscape(tx)})
		return
	}
	s.render(w, http.StatusOK, "signin", &page{Title: "Sign in to Hale", Client: client.Name, TX: tx, CSRF: req.CSRF})
}

// loadAuthz finds the authorization a form belongs to and checks that it
// comes from the browser that started it (cookie) and from Hale's own
// page (CSRF token, on posts). It writes the error page itself and
// returns nil on failure.
func (s *Service) loadAuthz(w http.ResponseWriter, r *http.Request) (*hale.Record, *authzRequest, string) {
	if r.Method == http.MethodPost {
		if e := parseForm(w, r); e != nil {
			s.errorPage(w, http.StatusBadRequest, "The form could not be read.")
			return nil, nil, ""
		}
	} else if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "The request could not be read.")
		return nil, nil, ""
	}
	expired := "This sign-in has expired or was started in another browser."
	tx := r.Form.Get("tx")
	c, err := r.Cookie(AuthzCookie)
	if tx == "" || len(tx) > 100 || err != nil {
		s.errorPage(w, http.StatusBadRequest, expired)
		return nil, nil, ""
	}
	var req authzRequest
	rec, err := s.getJSON(r.Context(), kindAuthz, digest(tx), &req)
	if hale.IsKind(err, hale.KindNotFound) {
		s.errorPage(w, http.StatusBadRequest, expired)
		return nil, nil, ""
	}
	if err != nil {
		s.internalPage(w, err)
		return nil, nil, ""
	}
	if !s.now().Before(rec.Expires) || subtle.ConstantTimeCompare([]byte(digest(c.Value)), []byte(req.Binding)) != 1 {
		s.errorPage(w, http.StatusBadRequest, expired)
		return nil, nil, ""
	}
	if r.Method == http.MethodPost && subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(req.CSRF)) != 1 {
		s.errorPage(w, http.StatusForbidden, "The form did not come from this Hale page (CSRF check failed).")
		return nil, nil, ""
	}
	return rec, &req, tx
}

// saveAuthz writes req back at the version read; a conflict is a second
// submission of the same step.
func (s *Service) saveAuthz(ctx context.Context, rec *hale.Record, req *authzRequest) error {
	_, err := s.putJSON(ctx, kindAuthz, rec.Key, rec.Version, rec.Expires, req)
	if err == nil {
		rec.Version++
	}
	return err
}

func (s *Service) clientName(ctx context.Context, id string) string {
	if c, err := s.Client(ctx, id); err == nil {
		return c.Name
	}
	return ""
}

// pageLimited applies the per-address rate limit to a page that costs a
// database write or a password hash: 429 with Retry-After, as a page.
func (s *Service) pageLimited(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := s.limit.allow(ClientAddress(r.RemoteAddr)); !ok {
			w.Header().Set("Retry-After", retryAfter(wait))
			s.errorPage(w, http.StatusTooManyRequests, "Too many requests from this address; wait a little and try again.")
			return
		}
		h(w, r)
	})
}

// serveSignIn checks the sign-in form with Login's checks (lockout,
// second factor, no enumeration) and moves on.
func (s *Service) serveSignIn(w http.ResponseWriter, r *http.Request) {
	rec, req, tx := s.loadAuthz(w, r)
	if req == nil {
		return
	}
	ctx := r.Context()
	f := r.PostForm
	pg := &page{Title: "Sign in to Hale", Client: s.clientName(ctx, req.Client), TX: tx, CSRF: req.CSRF, Username: f.Get("username")}
	if req.UserID != "" {
		s.errorPage(w, http.StatusBadRequest, "This sign-in was already completed.")
		return
	}
	u, _, err := s.checkLogin(ctx, f.Get("username"), f.Get("password"), f.Get("code"), ClientAddress(r.RemoteAddr))
	var locked *LockedError
	switch {
	case errors.As(err, &locked):
		w.Header().Set("Retry-After", retryAfter(locked.Until.Sub(s.now())))
		pg.Error = "Too many failed attempts; try again later."
		s.render(w, http.StatusTooManyRequests, "signin", pg)
		return
	case errors.Is(err, ErrSecondFactor):
		pg.Error, pg.NeedCode = "Enter the one-time code from your authenticator app, with your password again.", true
		s.render(w, http.StatusUnauthorized, "signin", pg)
		return
	case errors.Is(err, ErrCredentials):
		pg.Error = ErrCredentials.Error() + "."
		s.render(w, http.StatusUnauthorized, "signin", pg)
		return
	case err != nil:
		s.internalPage(w, err)
		return
	}
	req.UserID = u.ID
	s.afterSignIn(w, r, rec, req, tx, u)
}

// afterSignIn narrows the scopes to the client and the role, settles
// the patient context and shows the picker or the consent screen.
func (s *Service) afterSignIn(w http.ResponseWriter, r *http.Request, rec *hale.Record, req *authzRequest, tx string, u *User) {
	ctx := r.Context()
	client, err := s.Client(ctx, req.Client)
	if err != nil || client.Disabled {
		s.errorPage(w, http.StatusBadRequest, "The app is no longer registered with Hale.")
		return
	}
	if req.LaunchUser != "" && req.LaunchUser != u.ID {
		redirectError(w, r, req, "access_denied", "the launch was started by another user")
		return
	}
	granted := GrantScopes(req.Requested, client.Scopes, s.opts.Roles.RoleScopes(u.Role))
	if req.LaunchKey == "" {
		// No EHR launch: no launch context to give (launch/encounter
		// standalone is not supported).
		granted = slices.DeleteFunc(granted, func(s string) bool { return s == ScopeLaunch || s == ScopeLaunchEncounter })
	}
	req.Granted = granted
	needPatient := slices.Contains(granted, ScopeLaunchPatient) || hasPatientScope(granted)
	if u.Role == hale.RolePatient {
		own, _ := strings.CutPrefix(u.FHIRUser, "Patient/")
		if !strings.HasPrefix(u.FHIRUser, "Patient/") {
			own = ""
		}
		if req.Patient != "" && req.Patient != own {
			redirectError(w, r, req, "access_denied", "the launch patient is not the signed-in patient")
			return
		}
		if own == "" && needPatient {
			redirectError(w, r, req, "access_denied", "the account is not linked to a patient record")
			return
		}
		req.Patient = own
	}
	if err := s.saveAuthz(ctx, rec, req); err != nil {
		s.stepFailed(w, err)
		return
	}
	if needPatient && req.Patient == "" {
		if s.opts.Patients == nil {
			redirectError(w, r, req, "access_denied", "patient scopes need a patient, and this server has no patient picker")
			return
		}
		s.render(w, http.StatusOK, "patient", &page{Title: "Choose a patient", Client: client.Name, TX: tx, CSRF: req.CSRF, SSO: req.SSO, Username: u.Username})
		return
	}
	s.showConsent(w, r, req, tx, u, client.Name)
}

// stepFailed answers a failed save of the authorization.
func (s *Service) stepFailed(w http.ResponseWriter, err error) {
	if hale.IsKind(err, hale.KindConflict) {
		s.errorPage(w, http.StatusConflict, "This step was submitted twice; go back to the app and start again.")
		return
	}
	s.internalPage(w, err)
}

func (s *Service) showConsent(w http.ResponseWriter, r *http.Request, req *authzRequest, tx string, u *User, clientName string) {
	pg := &page{Title: "Allow access?", Client: clientName, TX: tx, CSRF: req.CSRF, Username: u.Username, SSO: req.SSO}
	for _, sc := range req.Granted {
		pg.Scopes = append(pg.Scopes, scopeItem{Scope: sc, Text: DescribeScope(sc), Optional: optionalScope(sc)})
	}
	if req.Patient != "" {
		pg.PatientName = "Patient/" + req.Patient
		if s.opts.Patients != nil {
			if pc, err := s.opts.Patients.Patient(r.Context(), userPrincipal(u, r), req.Patient); err == nil {
				pg.PatientName = pc.Name
			}
		}
	}
	s.render(w, http.StatusOK, "consent", pg)
}

func userPrincipal(u *User, r *http.Request) *hale.Principal {
	return &hale.Principal{Subject: "user/" + u.ID, Name: u.Username, Role: u.Role, FHIRUser: u.FHIRUser,
		Organizations: slices.Clone(u.Organizations), Address: ClientAddress(r.RemoteAddr)}
}

// signedIn returns the user of an authorization past sign-in; it writes
// the error page and returns nil otherwise.
func (s *Service) signedIn(w http.ResponseWriter, r *http.Request, req *authzRequest) *User {
	if req.UserID == "" {
		s.errorPage(w, http.StatusBadRequest, "Sign in first.")
		return nil
	}
	u, err := s.User(r.Context(), req.UserID)
	if hale.IsKind(err, hale.KindNotFound) || err == nil && u.Disabled {
		s.errorPage(w, http.StatusForbidden, "The account can no longer sign in.")
		return nil
	}
	if err != nil {
		s.internalPage(w, err)
		return nil
	}
	return u
}

// servePatientSearch lists the patients whose name matches (GET: it
// changes nothing).
func (s *Service) servePatientSearch(w http.ResponseWriter, r *http.Request) {
	_, req, tx := s.loadAuthz(w, r)
	if req == nil {
		return
	}
	u := s.signedIn(w, r, req)
	if u == nil {
		return
	}
	if s.opts.Patients == nil {
		s.errorPage(w, http.StatusNotFound, "This server has no patient picker.")
		return
	}
	q := strings.TrimSpace(r.Form.Get("name"))
	if len(q) > 200 {
		q = q[:200]
	}
	pg := &page{Title: "Choose a patient", Client: s.clientName(r.Context(), req.Client), TX: tx, CSRF: req.CSRF, Query: q}
	if q != "" {
		found, err := s.opts.Patients.FindPatients(r.Context(), userPrincipal(u, r), q, 20)
		if err != nil {
			s.internalPage(w, err)
			return
		}
		pg.Patients = found
	}
	s.render(w, http.StatusOK, "patient", pg)
}

// servePatientPick takes the chosen patient, if the user may see it.
func (s *Service) servePatientPick(w http.ResponseWriter, r *http.Request) {
	rec, req, tx := s.loadAuthz(w, r)
	if req == nil {
		return
	}
	u := s.signedIn(w, r, req)
	if u == nil {
		return
	}
	ctx := r.Context()
	name := s.clientName(ctx, req.Client)
	if s.opts.Patients == nil || req.Patient != "" || req.Granted == nil {
		s.errorPage(w, http.StatusBadRequest, "No patient is to be chosen for this sign-in.")
		return
	}
	pc, err := s.opts.Patients.Patient(ctx, userPrincipal(u, r), r.PostForm.Get("patient"))
	if hale.IsKind(err, hale.KindNotFound) {
		s.render(w, http.StatusNotFound, "patient", &page{Title: "Choose a patient", Client: name, TX: tx, CSRF: req.CSRF,
			Error: "That patient was not found."})
		return
	}
	if err != nil {
		s.internalPage(w, err)
		return
	}
	req.Patient = pc.ID
	if err := s.saveAuthz(ctx, rec, req); err != nil {
		s.stepFailed(w, err)
		return
	}
	s.showConsent(w, r, req, tx, u, name)
}

// serveConsent ends the authorization: Deny sends access_denied to the
// app; Allow issues a code for the scopes left ticked (and the context
// scopes, which are not a choice).
func (s *Service) serveConsent(w http.ResponseWriter, r *http.Request) {
	rec, req, _ := s.loadAuthz(w, r)
	if req == nil {
		return
	}
	u := s.signedIn(w, r, req)
	if u == nil {
		return
	}
	ctx := r.Context()
	if req.Granted == nil || (slices.Contains(req.Granted, ScopeLaunchPatient) || hasPatientScope(req.Granted)) && req.Patient == "" {
		s.errorPage(w, http.StatusBadRequest, "Choose a patient first.")
		return
	}
	// The authorization ends here, whatever the answer: spend it.
	if err := s.rec.DeleteRecord(ctx, kindAuthz, rec.Key, rec.Version); err != nil {
		if hale.IsKind(err, hale.KindNotFound) || hale.IsKind(err, hale.KindConflict) {
			s.errorPage(w, http.StatusConflict, "This authorization was already answered.")
			return
		}
		s.internalPage(w, err)
		return
	}
	if r.PostForm.Get("action") != "approve" {
		redirectError(w, r, req, "access_denied", "the user denied access")
		return
	}
	ticked := r.PostForm["scope"]
	approved := slices.DeleteFunc(slices.Clone(req.Granted), func(sc string) bool {
		return optionalScope(sc) && !slices.Contains(ticked, sc)
	})
	if !hasPatientScope(approved) && !slices.Contains(approved, ScopeLaunchPatient) && !slices.Contains(approved, ScopeLaunch) &&
		u.Role != hale.RolePatient {
		req.Patient = "" // no patient context asked for any more
	}
	if req.LaunchKey != "" {
		// An EHR launch is used once.
		if err := s.rec.DeleteRecord(ctx, kindLaunch, req.LaunchKey, 0); err != nil {
			if hale.IsKind(err, hale.KindNotFound) {
				redirectError(w, r, req, "invalid_request", "the launch was already used or has expired")
				return
			}
			s.internalPage(w, err)
			return
		}
	}
	code := randomToken()
	now := s.now().UTC()
	c := &authCode{Client: req.Client, RedirectURI: req.RedirectURI, Challenge: req.Challenge, Nonce: req.Nonce,
		UserID: u.ID, Scopes: approved, Patient: req.Patient, Encounter: req.Encounter, NeedBanner: req.NeedBanner,
		Created: now}
	if _, err := s.putJSON(ctx, kindCode, digest(code), 0, now.Add(codeKeep), c); err != nil {
		s.internalPage(w, err)
		return
	}
	redirectTo(w, r, req.RedirectURI, url.Values{"code": {code}, "state": {req.State}})
}

// retryAfter is a Retry-After value: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// serveCSS serves the pages' one stylesheet.
func serveCSS(w http.ResponseWriter, r *http.Request) {
	b, _ := pageFS.ReadFile("pages/auth.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}
