package main

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/internal/httpsec"
	"github.com/hale-ehr/hale/rest"
)

// The HTTP surface of `hale serve`: one route table, one allow-list of
// what anonymous callers may reach, and the middleware every request goes
// through (docs/security.md, "HTTP").

// publicRoutes is the one allow-list of routes that need no
// authentication (auth.Public syntax). Everything else the server
// registers, and anything it does not, answers an anonymous caller with
// 401. TestRouteCoverage fails for a route that is neither guarded nor
// listed here, and for an entry here that matches no route.
var publicRoutes = append(auth.Public{
	"GET /fhir/metadata",                        // the CapabilityStatement (FHIR http.html#capabilities)
	"GET /fhir/.well-known/smart-configuration", // SMART App Launch discovery
	"GET /static/",                              // static assets
	"GET /healthz",                              // liveness: no data
	"GET /{$}",                                  // the start page: links only, or a redirect to the app
	"/app/",                                     // the clinician web app: it authenticates each page itself (web.App) and sends strangers to its sign-in page
	"/app",
}, auth.PublicRoutes...) // /auth/: token, introspection, revocation, JWKS, login, logout (each authenticates its caller)

// crossSitePaths take state-changing requests from other sites when they
// carry no session cookie: they authenticate the caller from the request
// itself (client assertions, tokens), and SMART apps in browsers call
// them from their own origins. /auth/authorize takes an app's
// authorization request as a form post ("authorize-post"); it changes
// nothing the request does not name and answers with Hale's own pages.
var crossSitePaths = []string{"/auth/token", "/auth/introspect", "/auth/revoke", "/auth/authorize"}

// noStorePrefixes are the paths whose every response is marked
// Cache-Control: no-store: patient data and credentials.
var noStorePrefixes = []string{"/fhir", "/auth", "/access"}

//go:embed static
var staticFiles embed.FS

// server is what the HTTP surface is made of.
type server struct {
	fhir  *rest.Service
	auth  *auth.Service
	sec   *httpsec.Policy
	store hale.Store
	log   *slog.Logger
	// policy is the access policy (break-the-glass grants), btgAudit
	// where emergency accesses are reported; both may be nil in tests.
	policy   *access.Policy
	btgAudit breakGlassAudit
	// app is the clinician web app (package web) at /app/; nil in tests
	// that build the server without it.
	app http.Handler
	// SMARTConfiguration serves [base]/.well-known/smart-configuration
	// (SMART App Launch 2.x "Conformance"). The SMART App Launch work
	// in package auth provides it; until then the route answers 404.
	SMARTConfiguration http.Handler
}

// route is one entry of the route table.
type route struct {
	pattern string // net/http ServeMux pattern
	handler http.Handler
}

// routes is the route table: every handler the server registers.
func (s *server) routes() []route {
	smart := s.SMARTConfiguration
	if smart == nil {
		smart = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeOutcome(w, http.StatusNotFound, "not-found", "SMART App Launch discovery is not available yet")
		})
	}
	static, _ := fs.Sub(staticFiles, "static")
	return []route{
		{"/fhir/", s.fhir.Handler("/fhir")},
		{"/fhir", s.fhir.Handler("/fhir")},
		{"GET /fhir/.well-known/smart-configuration", smart},
		{"/auth/", s.auth.Handler()},
		{"GET /static/", http.StripPrefix("/static/", files(static))},
		{"GET /healthz", http.HandlerFunc(s.serveHealth)},
		{"POST /access/break-glass", http.HandlerFunc(s.serveBreakGlass)},
		{"GET /{$}", http.HandlerFunc(s.serveHome)},
		{"/app/", s.appOr404()},
		{"/app", s.appOr404()},
	}
}

// appOr404 is the web app, or a 404 when the server runs without it.
func (s *server) appOr404() http.Handler {
	if s.app != nil {
		return s.app
	}
	return http.NotFoundHandler()
}

// mux routes the route table.
func (s *server) mux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, r := range s.routes() {
		mux.Handle(r.pattern, r.handler)
	}
	return mux
}

// handler is the whole server: the route table behind, from the outside
// in, the request log, the security headers, CORS, the cross-site check,
// the authentication guard and the rate limit. The guard wraps the mux,
// not each route, so a route cannot be added unguarded.
func (s *server) handler() http.Handler {
	var h http.Handler = s.mux()
	h = s.sec.RateLimit(h) // inside the guard: it counts per principal
	h = s.auth.Middleware(publicRoutes, h)
	h = s.sec.CrossOrigin(h)
	h = s.sec.CORS(h) // preflights are answered before the guard
	h = s.sec.Headers(h)
	return rest.LogRequests(s.log, h)
}

// securityPolicy is the httpsec configuration of cfg.
func securityPolicy(cfg Config) (*httpsec.Policy, error) {
	return httpsec.New(httpsec.Options{
		Origins:       cfg.Origins(),
		NoStore:       noStorePrefixes,
		CrossSite:     crossSitePaths,
		SessionCookie: auth.SessionCookie,
		HSTSAlways:    strings.HasPrefix(cfg.BaseURL, "https://"),
		RatePerMinute: int(cfg.RateLimit),
		Burst:         int(cfg.RateBurst),
	})
}

// files serves the files of fsys, without directory listings.
func files(fsys fs.FS) http.Handler {
	fileServer := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		fileServer.ServeHTTP(w, r)
	})
}

// serveHealth answers 200 while the database answers, else 503. It shows
// no data.
func (s *server) serveHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	if err := s.store.View(ctx, func(hale.Reader) error { return nil }); err != nil {
		s.log.Warn("health check: database unreachable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"status":"unavailable"}`)
		return
	}
	fmt.Fprintln(w, `{"status":"ok"}`)
}

func (s *server) serveHome(w http.ResponseWriter, r *http.Request) {
	if s.app != nil {
		http.Redirect(w, r, "/app/", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hale</title>
<link rel="stylesheet" href="/static/hale.css"></head>
<body><h1>Hale</h1><p>The FHIR R4 API is at <a href="/fhir/metadata">/fhir</a>; it needs an access token
(<code>hale token</code> prints one for the demo client, see the README).</p></body></html>`)
}

// writeOutcome writes a one-issue OperationOutcome.
func writeOutcome(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":%q,"diagnostics":%q}]}`, code, msg)
}
