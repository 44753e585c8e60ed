package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/auth"
)

// Signing in and out (auth.Service.Login, Logout), with the one-time
// code asked on a second step when the account has one.

// loginCookie carries the sign-in form's CSRF token before there is a
// session (double submit: another site can neither read nor set it).
const loginCookie = "hale_login"

// ticketTTL is how long the code step may take.
const ticketTTL = 5 * time.Minute

type loginView struct {
	Step     string // "password" or "code"
	Username string
	Ticket   string
	Next     string
	Error    string
	Notice   string
	Token    string
	// PasskeyOrigin is where passkeys work ("" when they do not): the
	// sign-in page offers them there (passkey.js).
	PasskeyOrigin string
}

func (a *App) serveLoginPage(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(auth.SessionCookie); err == nil {
		if p, err := a.auth.SessionPrincipal(r.Context(), c.Value, auth.ClientAddress(r.RemoteAddr)); err == nil && p != nil {
			http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
			return
		}
	}
	v := &loginView{Step: "password", Next: safeNext(r.URL.Query().Get("next"))}
	switch r.URL.Query().Get("m") {
	case "expired":
		v.Notice = "Your session ended. Sign in again to continue."
	case "idle":
		v.Notice = fmt.Sprintf("You were signed out after %d minutes without activity.", int(a.opts.IdleTimeout.Minutes()))
	case "out":
		v.Notice = "You have signed out."
	}
	a.loginPage(w, r, v, http.StatusOK)
}

// loginPage renders the sign-in form with a fresh pre-session CSRF token.
func (a *App) loginPage(w http.ResponseWriter, r *http.Request, v *loginView, status int) {
	v.Token = base64.RawURLEncoding.EncodeToString(randomBytes(24))
	v.PasskeyOrigin = a.auth.PasskeyOrigin()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: v.Token, Path: Prefix + "/login", HttpOnly: true,
		Secure: a.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	w.WriteHeader(status)
	a.render(w, r, nil, "login", &page{Title: "Sign in"}, v)
}

func (a *App) secure(r *http.Request) bool { return r.TLS != nil || a.opts.Secure }

func (a *App) serveLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !sameOrigin(r) || r.ParseForm() != nil {
		a.errorPage(w, r, nil, http.StatusForbidden, "The sign-in form did not come from this site.")
		return
	}
	f := r.PostForm
	v := &loginView{Step: "password", Username: strings.TrimSpace(f.Get("username")), Next: safeNext(f.Get("next"))}
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(f.Get("token"))) != 1 {
		v.Error = "The sign-in form expired. Please try again."
		a.loginPage(w, r, v, http.StatusForbidden)
		return
	}
	password := f.Get("password")
	code := strings.ReplaceAll(strings.TrimSpace(f.Get("code")), " ", "")
	if f.Get("step") == "code" {
		t, ok := a.openTicket(f.Get("ticket"))
		if !ok {
			v.Error = "The sign-in took too long. Enter your password again."
			a.loginPage(w, r, v, http.StatusUnauthorized)
			return
		}
		v.Username, password = t.Username, t.Password
		v.Step, v.Ticket = "code", f.Get("ticket")
		if code == "" {
			v.Error = "Enter the 6-digit code from your authenticator app."
			a.loginPage(w, r, v, http.StatusUnauthorized)
			return
		}
	} else if v.Username == "" || password == "" {
		v.Error = "Enter your username and password."
		a.loginPage(w, r, v, http.StatusUnauthorized)
		return
	}
	sess, err := a.auth.Login(r.Context(), v.Username, password, code, auth.ClientAddress(r.RemoteAddr))
	var locked *auth.LockedError
	switch {
	case errors.As(err, &locked):
		v.Step, v.Ticket = "password", ""
		v.Error = "Too many failed attempts. Try again in a few minutes."
		a.loginPage(w, r, v, http.StatusTooManyRequests)
		return
	case errors.Is(err, auth.ErrSecondFactor):
		v.Step, v.Ticket = "code", a.sealTicket(v.Username, password)
		a.loginPage(w, r, v, http.StatusOK)
		return
	case errors.Is(err, auth.ErrCredentials):
		if v.Step == "code" {
			v.Error = "That code is not correct or was already used. Wait for the next code and try again."
		} else {
			v.Error = "The username or password is not correct."
		}
		a.loginPage(w, r, v, http.StatusUnauthorized)
		return
	case err != nil:
		a.errorPage(w, r, nil, 0, "", err)
		return
	}
	a.startSession(w, r, sess)
	http.Redirect(w, r, landing(sess.User.Role, v.Next), http.StatusSeeOther)
}

// serveLogout ends the session (auth.Service.Logout). The form's token
// must match the session, so another site cannot sign the user out.
func (a *App) serveLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !sameOrigin(r) || r.ParseForm() != nil {
		a.errorPage(w, r, nil, http.StatusForbidden, "The request did not come from this site's own pages, so it was refused.")
		return
	}
	if c, err := r.Cookie(auth.SessionCookie); err == nil && c.Value != "" {
		if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(csrfToken(c.Value))) != 1 {
			a.errorPage(w, r, nil, http.StatusForbidden, "The form has expired. Reload the page and try again.")
			return
		}
		if err := a.auth.Logout(r.Context(), c.Value); err != nil {
			a.errorPage(w, r, nil, 0, "", err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: a.secure(r), SameSite: http.SameSiteStrictMode})
	m := "out"
	if r.PostForm.Get("reason") == "idle" {
		m = "idle"
	}
	http.Redirect(w, r, Prefix+"/login?m="+m, http.StatusSeeOther)
}

// servePing keeps the session alive when the user chooses "stay signed
// in" (the request itself moves the session's last-seen time).
func (a *App) servePing(w http.ResponseWriter, r *http.Request, u *user) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"idleSeconds":%d}`, int(a.opts.IdleTimeout.Seconds()))
}

// safeNext is where to go after signing in: a path of the app only, so
// the sign-in page cannot be used to send users to another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.Contains(next, "/login") || strings.Contains(next, "/logout") {
		return Prefix + "/"
	}
	return next
}

// ticket carries the checked username and password to the code step,
// sealed (AES-256-GCM) under the app's login key: the password never
// appears in the page in clear, and a ticket expires in ticketTTL.
type ticket struct {
	Username string    `json:"u"`
	Password string    `json:"p"`
	Expires  time.Time `json:"e"`
}

const ticketLabel = "hale-web-login-v1"

func (a *App) gcm() cipher.AEAD {
	b, _ := aes.NewCipher(a.opts.LoginKey)
	g, _ := cipher.NewGCM(b)
	return g
}

func (a *App) sealTicket(username, password string) string {
	pt, _ := json.Marshal(ticket{Username: username, Password: password, Expires: a.now().Add(ticketTTL)})
	g := a.gcm()
	nonce := randomBytes(g.NonceSize())
	return base64.RawURLEncoding.EncodeToString(g.Seal(nonce, nonce, pt, []byte(ticketLabel)))
}

func (a *App) openTicket(s string) (ticket, bool) {
	var t ticket
	b, err := base64.RawURLEncoding.DecodeString(s)
	g := a.gcm()
	if err != nil || len(b) < g.NonceSize() {
		return t, false
	}
	pt, err := g.Open(nil, b[:g.NonceSize()], b[g.NonceSize():], []byte(ticketLabel))
	if err != nil || json.Unmarshal(pt, &t) != nil || a.now().After(t.Expires) {
		return t, false
	}
	return t, true
}

var _ = hale.IsKind
