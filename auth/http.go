package auth

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// The HTTP side: the auth endpoints (Handler) and the guard in front of
// everything else (Middleware).

// SessionCookie is the name of the web session cookie.
const SessionCookie = "hale_session"

// maxForm bounds the body of a form POST to the auth endpoints.
const maxForm = 64 << 10

// Handler serves the auth endpoints, under /auth:
//
//	POST /auth/token       client_credentials with a private_key_jwt assertion (SMART Backend Services)
//	POST /auth/introspect  RFC 7662, SMART profile; the caller must be a client or an admin
//	POST /auth/revoke      RFC 7009
//	GET  /auth/jwks        the public keys of Hale's tokens
//	POST /auth/login       username, password, code → session cookie
//	POST /auth/logout      ends the session
//
// and SMART App Launch (authorize.go, smart.go, launch.go):
//
//	GET|POST /auth/authorize            starts an authorization (code flow with PKCE): the sign-in page
//	GET  /auth/authorize/continue       the same-site step: single sign-on from the Hale session, else the sign-in page (sso.go)
//	POST /auth/authorize/signin         sign-in form
//	POST /auth/authorize/switch         sign in as someone else than the session's user
//	GET|POST /auth/authorize/patient    patient picker (search, choose)
//	POST /auth/authorize/consent        consent form → redirect to the app with code and state
//	POST /auth/launch                   an EHR launch id for the signed-in user
//	GET  /auth/assets/auth.css          the pages' stylesheet
//
// /auth/token also takes grant_type authorization_code and refresh_token.
// All of them are public routes (PublicRoutes): each authenticates its
// caller itself. The discovery document is served by
// SMARTConfigurationHandler, mounted by the server under the FHIR base.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /auth/authorize", s.pageLimited(s.serveAuthorize))
	mux.Handle("POST /auth/authorize", s.pageLimited(s.serveAuthorize))
	mux.Handle("GET /auth/authorize/continue", s.pageLimited(s.serveContinue))
	mux.Handle("POST /auth/authorize/signin", s.pageLimited(s.serveSignIn))
	mux.HandleFunc("POST /auth/authorize/switch", s.serveSwitch)
	mux.Handle("GET /auth/authorize/patient", s.pageLimited(s.servePatientSearch))
	mux.HandleFunc("POST /auth/authorize/patient", s.servePatientPick)
	mux.HandleFunc("POST /auth/authorize/consent", s.serveConsent)
	mux.HandleFunc("POST /auth/launch", s.serveLaunch)
	mux.HandleFunc("GET /auth/assets/auth.css", serveCSS)
	mux.Handle("POST /auth/token", s.limited(http.HandlerFunc(s.serveToken)))
	mux.Handle("POST /auth/introspect", s.limited(http.HandlerFunc(s.serveIntrospect)))
	mux.Handle("POST /auth/revoke", s.limited(http.HandlerFunc(s.serveRevoke)))
	mux.HandleFunc("GET /auth/jwks", s.serveJWKS)
	mux.Handle("POST /auth/login", s.limited(http.HandlerFunc(s.serveLogin)))
	mux.HandleFunc("POST /auth/logout", s.serveLogout)
	mux.HandleFunc("/auth/", func(w http.ResponseWriter, r *http.Request) {
		writeOAuth(w, &OAuthError{Status: http.StatusNotFound, Code: "invalid_request", Description: "no such auth endpoint"})
	})
	return mux
}

// PublicRoutes are the routes Handler serves, for the server's
// allow-list.
var PublicRoutes = Public{"/auth/"}

// limited applies the per-address rate limit: 429 with Retry-After.
func (s *Service) limited(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait := s.limit.allow(ClientAddress(r.RemoteAddr))
		if !ok {
			writeTooMany(w, wait, "too many requests; slow down")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeTooMany(w http.ResponseWriter, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", retryAfter(wait))
	writeOAuth(w, &OAuthError{Status: http.StatusTooManyRequests, Code: "slow_down", Description: msg})
}

// parseForm reads an application/x-www-form-urlencoded body.
func parseForm(w http.ResponseWriter, r *http.Request) *OAuthError {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return oauthErr("invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return oauthErr("invalid_request", "malformed form body")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeOAuth writes an RFC 6749 §5.2 error.
func writeOAuth(w http.ResponseWriter, e *OAuthError) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	writeJSON(w, status, e)
}

// writeErr writes err as an OAuth error; internal errors are logged with
// an id the response quotes.
func (s *Service) writeErr(w http.ResponseWriter, err error) {
	var oe *OAuthError
	if errors.As(err, &oe) {
		writeOAuth(w, oe)
		return
	}
	var he *hale.Error
	if errors.As(err, &he) {
		switch he.Kind {
		case hale.KindUnauthorized:
			writeOAuth(w, &OAuthError{Status: 401, Code: "invalid_client", Description: he.Message})
			return
		case hale.KindForbidden:
			writeOAuth(w, &OAuthError{Status: 403, Code: "unauthorized_client", Description: he.Message})
			return
		case hale.KindInvalid:
			writeOAuth(w, oauthErr("invalid_request", "%s", he.Message))
			return
		}
	}
	id := randomID()[:12]
	s.log.Error("auth endpoint failed", "error_id", id, "err", err)
	writeOAuth(w, &OAuthError{Status: 500, Code: "server_error", Description: "internal error " + id})
}

func (s *Service) serveToken(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		writeOAuth(w, e)
		return
	}
	if r.URL.RawQuery != "" {
		writeOAuth(w, oauthErr("invalid_request", "parameters belong in the body, not the URL"))
		return
	}
	if len(r.PostForm["grant_type"]) > 1 {
		writeOAuth(w, oauthErr("invalid_request", "parameter grant_type given more than once"))
		return
	}
	var (
		resp *TokenResponse
		err  error
	)
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		resp, err = s.AuthorizationCode(r.Context(), r.PostForm)
	case "refresh_token":
		resp, err = s.Refresh(r.Context(), r.PostForm)
	default:
		var tok *IssuedToken
		tok, err = s.ClientCredentials(r.Context(), r.PostForm)
		if err == nil {
			resp = &TokenResponse{AccessToken: tok.AccessToken, TokenType: "bearer", ExpiresIn: tok.ExpiresIn, Scope: tok.Scope}
		}
	}
	if err != nil {
		var oe *OAuthError
		if errors.As(err, &oe) && oe.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hale"`)
		}
		s.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// callerOf authenticates the caller of an auth endpoint: a bearer token
// or session, else a client assertion in the form.
func (s *Service) callerOf(r *http.Request) (*hale.Principal, error) {
	p, err := s.Authenticate(r)
	if err != nil || p != nil {
		return p, err
	}
	if r.PostForm.Get("client_assertion") != "" {
		c, err := s.AuthenticateClient(r.Context(), r.PostForm.Get("client_assertion_type"), r.PostForm.Get("client_assertion"))
		if err != nil {
			return nil, err
		}
		return &hale.Principal{Subject: "client/" + c.ID, Name: c.Name, Role: hale.RoleSystem, Client: c.ID}, nil
	}
	return nil, nil
}

func (s *Service) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		writeOAuth(w, e)
		return
	}
	caller, err := s.callerOf(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	// RFC 7662 §2.1: the endpoint requires authorization; SMART's
	// profile lets the resource server or client present a token.
	if caller == nil || caller.Role != hale.RoleSystem && caller.Role != hale.RoleAdmin {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hale"`)
		writeOAuth(w, &OAuthError{Status: 401, Code: "invalid_client", Description: "introspection needs a client's token or assertion, or an admin"})
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeOAuth(w, oauthErr("invalid_request", "token is required"))
		return
	}
	in, err := s.Introspect(r.Context(), token)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, in)
}

func (s *Service) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		writeOAuth(w, e)
		return
	}
	caller, err := s.callerOf(r)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if caller == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hale"`)
		writeOAuth(w, &OAuthError{Status: 401, Code: "invalid_client", Description: "revocation needs client authentication"})
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeOAuth(w, oauthErr("invalid_request", "token is required"))
		return
	}
	if err := s.Revoke(r.Context(), token, caller); err != nil {
		s.writeErr(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Service) serveJWKS(w http.ResponseWriter, r *http.Request) {
	set, err := s.JWKS(r.Context())
	if err != nil {
		s.writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	json.NewEncoder(w).Encode(set)
}

func (s *Service) serveLogin(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		writeOAuth(w, e)
		return
	}
	f := r.PostForm
	sess, err := s.Login(r.Context(), f.Get("username"), f.Get("password"), f.Get("code"), ClientAddress(r.RemoteAddr))
	var locked *LockedError
	switch {
	case errors.As(err, &locked):
		writeTooMany(w, locked.Until.Sub(s.now()), locked.Error())
		return
	case errors.Is(err, ErrSecondFactor):
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "mfa_required", "error_description": err.Error()})
		return
	case errors.Is(err, ErrCredentials):
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_credentials", "error_description": err.Error()})
		return
	case err != nil:
		s.writeErr(w, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: sess.ID, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil || strings.HasPrefix(s.opts.Issuer, "https:"), SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]string{"username": sess.User.Username, "role": string(sess.User.Role)})
}

func (s *Service) serveLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		var who *hale.Principal
		if s.opts.Audit != nil {
			who, _ = s.SessionPrincipal(r.Context(), c.Value, ClientAddress(r.RemoteAddr))
		}
		if err := s.Logout(r.Context(), c.Value); err != nil {
			s.writeErr(w, err)
			return
		}
		if who != nil {
			if err := s.opts.Audit.Logout(r.Context(), *who); err != nil {
				s.log.Error("audit: recording a logout", "err", err)
			}
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil || strings.HasPrefix(s.opts.Issuer, "https:"), SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// errBadAuthorization is an Authorization header that is not a bearer
// token.
var errBadAuthorization = &hale.Error{Kind: hale.KindUnauthorized, Op: "auth.Authenticate", Message: "the Authorization header must be: Bearer <access token>"}

// Authenticate returns the caller of r: from the bearer access token if
// there is an Authorization header (never falling back to the cookie
// when the token is bad), else from the session cookie. It returns nil,
// nil for a request without credentials, and KindUnauthorized for
// credentials that are not valid now.
func (s *Service) Authenticate(r *http.Request) (*hale.Principal, error) {
	addr := ClientAddress(r.RemoteAddr)
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(h, " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return nil, errBadAuthorization
		}
		return s.TokenPrincipal(r.Context(), token, addr)
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		return s.SessionPrincipal(r.Context(), c.Value, addr)
	}
	return nil, nil
}

// Public is the allow-list of routes anonymous callers may reach. An entry
// is an exact path ("/fhir/metadata"), or a prefix ending in "/"
// ("/static/"), or a path ending in "{$}" for exactly that path ("/{$}"
// is the root alone, as in net/http patterns), optionally after a method
// and a space ("GET /fhir/metadata"). A path that is not in clean form ("/a/../b", "//x")
// matches nothing, so no entry can be reached around.
type Public []string

// Allows reports whether r may go through without credentials.
func (p Public) Allows(r *http.Request) bool {
	up := r.URL.Path
	clean := path.Clean(up)
	if strings.HasSuffix(up, "/") && clean != "/" {
		clean += "/"
	}
	if up == "" || clean != up {
		return false
	}
	for _, e := range p {
		method, route, ok := strings.Cut(e, " ")
		if !ok {
			method, route = "", e
		}
		if method != "" && method != r.Method && !(method == "GET" && r.Method == "HEAD") {
			continue
		}
		if exact, ok := strings.CutSuffix(route, "{$}"); ok {
			if up == exact {
				return true
			}
			continue
		}
		if strings.HasSuffix(route, "/") && strings.HasPrefix(up, route) || up == route {
			return true
		}
	}
	return false
}

// Middleware authenticates every request and puts its hale.Principal in
// the context (hale.WithPrincipal). A request to a route outside public
// without valid credentials gets 401 with WWW-Authenticate: Bearer (RFC
// 6750 §3; error="invalid_token" when a token was presented) and an
// OperationOutcome. On a public route bad credentials are ignored and
// the request goes on anonymous.
func (s *Service) Middleware(public Public, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Authenticate(r)
		if p != nil {
			next.ServeHTTP(w, r.WithContext(hale.WithPrincipal(r.Context(), p)))
			return
		}
		if public.Allows(r) {
			next.ServeHTTP(w, r)
			return
		}
		if err != nil && !hale.IsKind(err, hale.KindUnauthorized) {
			id := randomID()[:12]
			s.log.Error("authentication failed", "error_id", id, "err", err)
			writeOutcome(w, http.StatusInternalServerError, "exception", "internal error "+id)
			return
		}
		challenge := `Bearer realm="hale"`
		msg := "authentication is required: send an access token (Authorization: Bearer) or log in"
		if err != nil {
			if r.Header.Get("Authorization") != "" {
				challenge += `, error="invalid_token", error_description="the access token is not valid"`
			}
			msg = "the credentials are not valid (expired, revoked or malformed); authenticate again"
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeOutcome(w, http.StatusUnauthorized, "login", msg)
	})
}

// writeOutcome writes a one-issue OperationOutcome.
func writeOutcome(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []map[string]string{{"severity": "error", "code": code, "diagnostics": msg}},
	})
}
