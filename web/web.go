// Package web is the clinician web app of Hale (docs/web.md): sign-in,
// patient search, the chart (banner, summary, vitals flowsheet, problems,
// allergies, visits), served by `hale serve` under /app/.
//
// Pages are rendered on the server with html/template; the stylesheet and
// the one small script are embedded and served from /app/static/ (no CDN,
// no build step, nothing inline, so the strict Content-Security-Policy
// holds). Every read and write goes through the FHIR core,
// rest.Service.Do, with the signed-in user's hale.Principal in the
// context: the core scopes the store to the user (package access),
// validates and indexes every write, and records every access in the
// audit trail, so the app sees and does exactly what the API would let the
// same user see and do.
package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/rest"
)

// Prefix is where the app is mounted.
const Prefix = "/app"

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Options configure the app.
type Options struct {
	// FHIR is the FHIR core. Its Access must be set (access.Policy.Access):
	// the app refuses to run on an unscoped store.
	FHIR *rest.Service
	// Auth signs users in and out and resolves the session cookie.
	Auth *auth.Service
	// Records keeps each user's recently viewed patients (ids only);
	// default: FHIR.Store when it keeps records.
	Records hale.Records
	// IdleTimeout must be the auth service's session idle limit
	// (auth.Options.IdleTimeout, default 15 min): the page warns two
	// minutes before it and signs out when it is reached.
	IdleTimeout time.Duration
	// LoginKey seals the password between the two steps of a sign-in
	// with a one-time code (32 bytes). Nodes behind one load balancer
	// must share it; default: random per process.
	LoginKey []byte
	// Secure marks cookies Secure even on plain HTTP (TLS terminated by
	// a proxy).
	Secure   bool
	Now      hale.Now
	Location *time.Location // how times are shown; default time.Local
	Log      *slog.Logger
}

// App is the clinician web app, an http.Handler for Prefix + "/".
type App struct {
	opts   Options
	fhir   *rest.Service
	auth   *auth.Service
	rec    hale.Records
	now    hale.Now
	loc    *time.Location
	log    *slog.Logger
	pages  map[string]*template.Template
	assets map[string]string // file name → content hash
	mux    *http.ServeMux
}

// New checks opts and returns the app.
func New(opts Options) (*App, error) {
	switch {
	case opts.FHIR == nil || opts.Auth == nil:
		return nil, errors.New("web: FHIR and Auth are required")
	case opts.FHIR.Access == nil:
		return nil, errors.New("web: the FHIR service has no access policy (rest.Service.Access): the app would see every record")
	}
	a := &App{opts: opts, fhir: opts.FHIR, auth: opts.Auth, rec: opts.Records, now: opts.Now, loc: opts.Location, log: opts.Log}
	if a.rec == nil {
		a.rec, _ = opts.FHIR.Store.(hale.Records)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.loc == nil {
		a.loc = time.Local
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.opts.IdleTimeout <= 0 {
		a.opts.IdleTimeout = 15 * time.Minute
	}
	if len(a.opts.LoginKey) == 0 {
		a.opts.LoginKey = randomBytes(32)
	}
	if len(a.opts.LoginKey) != 32 {
		return nil, errors.New("web: LoginKey must be 32 bytes")
	}
	if err := a.loadAssets(); err != nil {
		return nil, err
	}
	if err := a.parseTemplates(); err != nil {
		return nil, err
	}
	a.routes()
	return a, nil
}

func (a *App) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /app/static/{file}", a.serveStatic)
	m.HandleFunc("GET /app/login", a.serveLoginPage)
	m.HandleFunc("POST /app/login", a.serveLogin)
	m.HandleFunc("POST /app/logout", a.serveLogout)
	m.HandleFunc("GET /app/reset", a.serveResetPage)
	m.HandleFunc("POST /app/reset", a.serveReset)
	m.HandleFunc("POST /app/login/passkey/options", a.postLoginPasskeyOptions)
	m.HandleFunc("POST /app/login/passkey", a.postLoginPasskey)
	m.Handle("GET /app/account", a.signedInAnyRole(a.serveAccount))
	m.Handle("POST /app/account/passkeys/options", a.signedInAnyRole(a.postPasskeyOptions))
	m.Handle("POST /app/account/passkeys", a.signedInAnyRole(a.postPasskey))
	m.Handle("POST /app/account/passkeys/{pid}/delete", a.signedInAnyRole(a.deletePasskey))
	m.Handle("POST /app/account/apps/{client}/revoke", a.signedInAnyRole(a.revokeApp))
	m.Handle("GET /app/ping", a.signedIn(a.servePing))
	m.Handle("GET /app/{$}", a.signedIn(a.serveHome))
	m.Handle("POST /app/inbox/reviews", a.signedIn(a.postReview))
	m.Handle("POST /app/inbox/messages/{cid}/read", a.signedIn(a.postMessageRead))
	m.Handle("GET /app/patients", a.signedIn(a.serveSearch))
	m.Handle("GET /app/patients/new", a.signedIn(a.serveRegister))
	m.Handle("POST /app/patients/new", a.signedIn(a.postRegister))
	m.Handle("GET /app/patients/{id}", a.signedIn(a.serveSummary))
	m.Handle("GET /app/patients/{id}/demographics", a.signedIn(a.serveDemographics))
	m.Handle("POST /app/patients/{id}/demographics", a.signedIn(a.postDemographics))
	m.Handle("GET /app/patients/{id}/vitals", a.signedIn(a.serveVitals))
	m.Handle("POST /app/patients/{id}/vitals", a.signedIn(a.postVitals))
	m.Handle("GET /app/patients/{id}/labs", a.signedIn(a.serveLabs))
	m.Handle("POST /app/patients/{id}/smoking", a.signedIn(a.postSmoking))
	m.Handle("GET /app/patients/{id}/problems", a.signedIn(a.serveProblems))
	m.Handle("POST /app/patients/{id}/problems", a.signedIn(a.postProblem))
	m.Handle("POST /app/patients/{id}/problems/{rid}/resolve", a.signedIn(a.resolveProblem))
	m.Handle("GET /app/patients/{id}/allergies", a.signedIn(a.serveAllergies))
	m.Handle("POST /app/patients/{id}/allergies", a.signedIn(a.postAllergy))
	m.Handle("POST /app/patients/{id}/allergies/{rid}/resolve", a.signedIn(a.resolveAllergy))
	m.Handle("GET /app/patients/{id}/immunizations", a.signedIn(a.serveImmunizations))
	m.Handle("POST /app/patients/{id}/immunizations", a.signedIn(a.postImmunization))
	m.Handle("GET /app/patients/{id}/procedures", a.signedIn(a.serveProcedures))
	m.Handle("POST /app/patients/{id}/procedures", a.signedIn(a.postProcedure))
	m.Handle("GET /app/patients/{id}/history", a.signedIn(a.serveHistory))
	m.Handle("POST /app/patients/{id}/history", a.signedIn(a.postFamilyHistory))
	m.Handle("GET /app/patients/{id}/medications", a.signedIn(a.serveMeds))
	m.Handle("POST /app/patients/{id}/medications", a.signedIn(a.postMed))
	m.Handle("POST /app/patients/{id}/medications/{rid}/discontinue", a.signedIn(a.discontinueMed))
	m.Handle("GET /app/patients/{id}/notes", a.signedIn(a.serveNotes))
	m.Handle("POST /app/patients/{id}/notes", a.signedIn(a.postNote))
	m.Handle("GET /app/patients/{id}/notes/{nid}", a.signedIn(a.serveNote))
	m.Handle("POST /app/patients/{id}/notes/{nid}", a.signedIn(a.updateNote))
	m.Handle("POST /app/patients/{id}/notes/{nid}/addenda", a.signedIn(a.postAddendum))
	m.Handle("GET /app/patients/{id}/orders", a.signedIn(a.serveOrders))
	m.Handle("POST /app/patients/{id}/orders", a.signedIn(a.postOrder))
	m.Handle("POST /app/patients/{id}/orders/{rid}/status", a.signedIn(a.orderStatus))
	m.Handle("GET /app/patients/{id}/visits", a.signedIn(a.serveVisits))
	m.Handle("GET /app/patients/{id}/documents", a.signedIn(a.serveDocuments))
	m.Handle("POST /app/patients/{id}/documents", a.signedIn(a.postDocument))
	m.Handle("GET /app/patients/{id}/documents/{did}/content", a.signedIn(a.serveDocumentContent))
	m.Handle("POST /app/patients/{id}/consents", a.signedIn(a.postConsent))
	m.Handle("POST /app/patients/{id}/consents/{rid}/revoke", a.signedIn(a.revokeConsent))
	m.Handle("GET /app/schedule", a.signedIn(a.serveSchedule))
	m.Handle("POST /app/schedule/appointments", a.signedIn(a.postBooking))
	m.Handle("POST /app/schedule/appointments/{aid}/reschedule", a.signedIn(a.rescheduleAppointment))
	m.Handle("POST /app/schedule/appointments/{aid}/cancel", a.signedIn(a.setAppointmentStatus("cancelled")))
	m.Handle("POST /app/schedule/appointments/{aid}/checkin", a.signedIn(a.setAppointmentStatus("checked-in")))
	m.HandleFunc("/app/", func(w http.ResponseWriter, r *http.Request) {
		a.errorPage(w, r, nil, http.StatusNotFound, "There is no such page.")
	})
	m.HandleFunc("GET /app", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusSeeOther)
	})
	a.mux = m
}

// ServeHTTP serves the app. Every response is private to the user:
// Cache-Control no-store, and no framing.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, Prefix+"/static/") {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.Header().Set("X-Frame-Options", "DENY")
	if w.Header().Get("Content-Security-Policy") == "" {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	a.mux.ServeHTTP(w, r)
}

// user is the signed-in caller of a page.
type user struct {
	*hale.Principal
	csrf string
}

type handler func(w http.ResponseWriter, r *http.Request, u *user)

// signedIn runs h for a signed-in clinician with the Principal in the
// request's context; others go to the sign-in page. A state-changing
// request must come from the app's own pages: same origin, and the form's
// CSRF token bound to the session.
func (a *App) signedIn(h handler) http.Handler { return a.session(h, false) }

// signedInAnyRole is signedIn for the pages of every account, whatever
// its role (account.go).
func (a *App) signedInAnyRole(h handler) http.Handler { return a.session(h, true) }

func (a *App) session(h handler, anyRole bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(auth.SessionCookie)
		if err != nil || c.Value == "" {
			a.toLogin(w, r, "")
			return
		}
		p := hale.PrincipalFrom(r.Context())
		if p == nil || p.Client != "" {
			// Not behind the server's guard (or a bearer token was
			// used): the app authenticates the cookie itself.
			p, err = a.auth.SessionPrincipal(r.Context(), c.Value, auth.ClientAddress(r.RemoteAddr))
			if hale.IsKind(err, hale.KindUnauthorized) {
				a.toLogin(w, r, "expired")
				return
			}
			if err != nil {
				a.errorPage(w, r, nil, 0, "", err)
				return
			}
		}
		u := &user{Principal: p, csrf: csrfToken(c.Value)}
		if !anyRole && !clinician(p.Role) {
			a.errorPage(w, r, u, http.StatusForbidden, "The clinician app is for physicians, nurses and front-desk staff. Your account ("+string(p.Role)+") cannot use it; its settings are on the account page.")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !sameOrigin(r) {
				a.errorPage(w, r, u, http.StatusForbidden, "The request did not come from this site's own pages, so it was refused.")
				return
			}
			var err error
			if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
				// An upload (documents.go): the file and a little form.
				r.Body = http.MaxBytesReader(w, r.Body, maxUpload+64<<10)
				err = r.ParseMultipartForm(maxUpload + 64<<10)
			} else {
				r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
				err = r.ParseForm()
			}
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				a.errorPage(w, r, u, http.StatusRequestEntityTooLarge, fmt.Sprintf("The form or file is too large (files up to %d MB are accepted).", maxUpload>>20))
				return
			}
			if err != nil {
				a.errorPage(w, r, u, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(u.csrf)) != 1 {
				a.errorPage(w, r, u, http.StatusForbidden, "The form has expired or did not come from this site. Reload the page and try again.")
				return
			}
		}
		ctx := hale.WithPrincipal(r.Context(), p)
		h(w, r.WithContext(ctx), u)
	})
}

func (a *App) toLogin(w http.ResponseWriter, r *http.Request, reason string) {
	q := url.Values{}
	if r.Method == http.MethodGet && r.URL.Path != Prefix+"/" && r.URL.Path != Prefix+"/ping" {
		q.Set("next", r.URL.RequestURI())
	}
	if reason != "" {
		q.Set("m", reason)
	}
	if r.URL.Path == Prefix+"/ping" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	target := Prefix + "/login"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// csrfToken is the form token of a session: a hash of the session id
// under its own label, so it differs from the session's record key (the
// plain SHA-256) and reveals nothing of the cookie. Another site cannot
// read the HttpOnly cookie, so it cannot make the token.
func csrfToken(session string) string {
	h := sha256.Sum256([]byte("hale-web-csrf-v1\x00" + session))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// sameOrigin refuses cross-site state-changing requests, as
// net/http.CrossOriginProtection does: by Fetch Metadata when the browser
// sends it, else by Origin (a page with Referrer-Policy no-referrer
// sends "Origin: null" with its forms, so Sec-Fetch-Site comes first); a
// request with neither (not from a browser) passes to the token check.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// serveStatic serves an embedded asset; with the content hash in the URL
// it may be cached for a year.
func (a *App) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	sum, ok := a.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, _ := staticFiles.ReadFile("static/" + name)
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".svg"):
		w.Header().Set("Content-Type", "image/svg+xml")
	}
	if r.URL.Query().Get("v") == sum {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("ETag", `"`+sum+`"`)
	w.Write(b)
}

func (a *App) loadAssets() error {
	a.assets = map[string]string{}
	return fs.WalkDir(staticFiles, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFiles.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		a.assets[strings.TrimPrefix(p, "static/")] = hex.EncodeToString(h[:6])
		return nil
	})
}

// asset is the URL of a static file, with its content hash.
func (a *App) asset(name string) string {
	return Prefix + "/static/" + name + "?v=" + a.assets[name]
}

// errorPage renders an error. With an error err, the status and message
// come from its kind; an internal error is logged with an id the page
// quotes, and its detail is never shown.
func (a *App) errorPage(w http.ResponseWriter, r *http.Request, u *user, status int, msg string, errs ...error) {
	if len(errs) > 0 && errs[0] != nil {
		status, msg = a.describe(errs[0])
	}
	w.WriteHeader(status)
	a.render(w, r, u, "error", &page{Title: http.StatusText(status)}, map[string]any{"Status": status, "Message": msg})
}

// describe maps an error to a status and a message a user may read.
func (a *App) describe(err error) (int, string) {
	var he *hale.Error
	if errors.As(err, &he) {
		switch he.Kind {
		case hale.KindNotFound, hale.KindGone:
			return http.StatusNotFound, "Not found, or you do not have access to it."
		case hale.KindForbidden:
			return http.StatusForbidden, "Your role does not allow this: " + he.Message
		case hale.KindInvalid, hale.KindUnprocessable:
			return http.StatusBadRequest, "The record was not saved: " + he.Message
		case hale.KindConflict, hale.KindPreconditionFailed:
			return http.StatusConflict, "Someone else changed this record meanwhile. Reload the page and try again."
		case hale.KindUnauthorized:
			return http.StatusUnauthorized, "You are signed out. Sign in again."
		}
	}
	id := hex.EncodeToString(randomBytes(6))
	a.log.Error("web: request failed", "error_id", id, "err", err)
	return http.StatusInternalServerError, "Something went wrong on the server (error " + id + "). Try again; if it persists, quote the error number to support."
}

// userMessage is the text of an error for a form's message line.
func (a *App) userMessage(err error) string {
	_, msg := a.describe(err)
	return msg
}

// deadline bounds the work of one page.
func deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 20*time.Second)
}

var _ = fmt.Sprint
