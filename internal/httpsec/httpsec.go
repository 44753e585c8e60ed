// Package httpsec is the HTTP hardening in front of every route of `hale
// serve`: security headers on every response, Cache-Control: no-store on
// patient data, strict CORS, cross-site request forgery protection for
// cookie sessions, per-caller rate limits, and TLS (docs/security.md,
// "HTTP").
//
// Each protection is a middleware of a Policy; cmd/hale composes them
// around the authentication guard:
//
//	Headers(CORS(CrossOrigin(auth guard(RateLimit(routes)))))
//
// References: OWASP Secure Headers and CSRF Prevention cheat sheets;
// Fetch Standard (CORS, §3.2); W3C Fetch Metadata (Sec-Fetch-Site); RFC
// 6797 (HSTS); RFC 6585 §4 (429); ONC 45 CFR 170.315(d)(7) (no local
// storage of EHI: no-store) and (d)(9) / (g)(10) (TLS 1.2 or later).
package httpsec

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// CSP is the Content-Security-Policy of every response: same-origin
// scripts only (no inline script, no eval), no plugins, no framing, no
// <base> rewriting.
const CSP = "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'"

// HSTS is the Strict-Transport-Security value sent on TLS connections:
// two years (the HSTS preload list's minimum is one).
const HSTS = "max-age=63072000; includeSubDomains"

// Options configure a Policy. The zero value of each field is safe: no
// cross-origin caller, no rate limit.
type Options struct {
	// Origins may call the API from a browser on another origin (CORS),
	// each an exact origin "https://app.example.org" (scheme, host and
	// port; no path, no wildcard). They are never granted credentials
	// (cookies): SMART apps send their access token in Authorization.
	Origins []string
	// NoStore are path prefixes ("/fhir", "/auth") whose every response
	// gets Cache-Control: no-store, whatever the handler set.
	NoStore []string
	// CrossSite are the paths that take state-changing requests from
	// other sites when they carry no session cookie: endpoints that
	// authenticate the caller in the request itself (the OAuth token,
	// introspection and revocation endpoints).
	CrossSite []string
	// SessionCookie is the name of the cookie that authenticates web
	// sessions (auth.SessionCookie).
	SessionCookie string
	// HSTSAlways sends Strict-Transport-Security on every response, for
	// a server behind a proxy that terminates TLS (base_url https://);
	// otherwise it is sent on TLS connections only.
	HSTSAlways bool
	// RatePerMinute and Burst limit the requests of each caller (the
	// authenticated principal, else the client address): a token bucket
	// of Burst requests refilled at RatePerMinute. 0: no limit.
	RatePerMinute, Burst int
	// Now is the clock of the rate limiter (default time.Now).
	Now hale.Now
}

// Policy is a configured set of protections. Safe for concurrent use.
type Policy struct {
	opts    Options
	origins map[string]bool
	cop     *http.CrossOriginProtection
	limit   *limiter
}

// New checks opts and returns a Policy. An origin that is not exactly
// scheme://host[:port] is an error.
func New(opts Options) (*Policy, error) {
	p := &Policy{opts: opts, origins: map[string]bool{}, cop: http.NewCrossOriginProtection()}
	for _, o := range opts.Origins {
		if err := CheckOrigin(o); err != nil {
			return nil, err
		}
		p.origins[o] = true
	}
	if opts.Now == nil {
		p.opts.Now = time.Now
	}
	if opts.RatePerMinute > 0 {
		p.limit = newLimiter(opts.RatePerMinute, max(opts.Burst, 1), p.opts.Now)
	}
	return p, nil
}

// CheckOrigin reports whether o is an origin the CORS allow-list can
// hold: http(s)://host[:port], lower-case, nothing else.
func CheckOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || o != strings.ToLower(o) ||
		strings.HasSuffix(o, "/") || strings.Contains(o, "*") {
		return fmt.Errorf("CORS origin %q: expected scheme://host[:port] in lower case, e.g. https://app.example.org", o)
	}
	return nil
}

// Headers sets the security headers on every response: the CSP,
// X-Content-Type-Options, Referrer-Policy, X-Frame-Options, HSTS on TLS,
// and Cache-Control: no-store under the NoStore prefixes (enforced when
// the handler writes its header, so a handler cannot loosen it).
func (p *Policy) Headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.TLS != nil || p.opts.HSTSAlways {
			h.Set("Strict-Transport-Security", HSTS)
		}
		if p.noStore(r.URL.Path) {
			w = &noStoreWriter{ResponseWriter: w}
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Policy) noStore(path string) bool {
	for _, pre := range p.opts.NoStore {
		if path == pre || strings.HasPrefix(path, strings.TrimSuffix(pre, "/")+"/") {
			return true
		}
	}
	return false
}

// noStoreWriter sets Cache-Control: no-store just before the header is
// written, over whatever the handler set.
type noStoreWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *noStoreWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Del("Expires")
		w.Header().Set("Pragma", "no-cache")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *noStoreWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *noStoreWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *noStoreWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// The CORS answer for allowed origins.
var (
	corsMethods = "GET, HEAD, POST, PUT, PATCH, DELETE"
	// Request headers a FHIR client sends: content negotiation,
	// conditional requests, Prefer, and the access token.
	corsHeaders = "Authorization, Accept, Content-Type, If-Match, If-None-Match, If-None-Exist, If-Modified-Since, Prefer, X-Requested-With"
	// Response headers a FHIR client reads.
	corsExpose = "Location, Content-Location, ETag, Last-Modified, Retry-After, WWW-Authenticate, X-Error-Id, X-Progress, Expires"
)

// CORS answers preflight requests and marks responses readable by the
// allowed origins (Fetch Standard §3.2). The Origin is echoed only when it
// is on the allow-list, and Access-Control-Allow-Credentials is never
// sent, so no other site can read a response with the user's cookies.
// A preflight is answered here, before authentication (browsers send it
// without credentials): 204 for an allowed origin and method, else 403
// without CORS headers.
func (p *Policy) CORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		allowed := p.origins[origin]
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			m := r.Header.Get("Access-Control-Request-Method")
			if !allowed || !slices.Contains(strings.Split(corsMethods, ", "), m) {
				writeOutcome(w, http.StatusForbidden, "forbidden", "cross-origin requests from "+origin+" are not allowed")
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", corsMethods)
			h.Set("Access-Control-Allow-Headers", corsHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExpose)
		}
		next.ServeHTTP(w, r)
	})
}

// CrossOrigin refuses cross-site state-changing requests (POST, PUT,
// PATCH, DELETE) that a browser could send with the user's session
// cookie: 403 when Sec-Fetch-Site says another site, or, without it, the
// Origin is not this host (http.CrossOriginProtection). Requests with an
// Authorization header are not checked: a browser never adds a bearer
// token by itself, and the guard never falls back to the cookie when
// there is one. The CrossSite paths take cross-site requests that carry
// no session cookie. The session cookie is also SameSite=Strict; this is
// the second line.
func (p *Policy) CrossOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if r.Header.Get("Authorization") != "" {
			next.ServeHTTP(w, r)
			return
		}
		_, err := r.Cookie(p.opts.SessionCookie)
		if err != nil && slices.Contains(p.opts.CrossSite, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if err := p.cop.Check(r); err != nil {
			writeOutcome(w, http.StatusForbidden, "forbidden",
				"cross-site request refused: a state-changing request with the session cookie must come from this site's own pages")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// RateLimit limits each caller's requests: the principal the guard put in
// the context, else the client address. Over the limit: 429 with
// Retry-After and an OperationOutcome with code throttled. It must run
// after the guard (inside it) to see the principal.
func (p *Policy) RateLimit(next http.Handler) http.Handler {
	if p.limit == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok, wait := p.limit.allow(callerKey(r))
		if !ok {
			w.Header().Set("Retry-After", fmt.Sprint(max(1, int(math.Ceil(wait.Seconds())))))
			writeOutcome(w, http.StatusTooManyRequests, "throttled",
				fmt.Sprintf("too many requests: the limit is %d a minute; retry later", p.opts.RatePerMinute))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// callerKey is who a request counts against.
func callerKey(r *http.Request) string {
	if pr := hale.PrincipalFrom(r.Context()); pr != nil && pr.Subject != "" {
		return "p:" + pr.Subject
	}
	return "a:" + ClientAddress(r.RemoteAddr)
}

// ClientAddress is the IP of a RemoteAddr, from the connection (never
// from X-Forwarded-For, which the client writes).
func ClientAddress(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
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
