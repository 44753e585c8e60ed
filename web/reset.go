package web

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/hale-ehr/hale"
)

// The password-reset page (docs/security.md, "Password reset"): an admin
// runs `hale user reset`, which issues a one-time code
// (auth.Service.IssueReset) and prints the link /app/reset?code=…; the
// user opens it, chooses a new password, and auth.Service.ResetPassword
// spends the code. Nobody is signed in by it, and a second factor stays
// as it was. The code is never logged; the page sends no Referer
// (Referrer-Policy: no-referrer, set for the whole app).

// resetCookie carries the reset form's CSRF token (double submit, as on
// the sign-in page: there is no session yet).
const resetCookie = "hale_reset"

type resetView struct {
	Code  string
	Token string
	Error string
	Done  bool
}

// badResetLink is the one message for an unknown, used or expired code:
// it says nothing about whether an account exists.
const badResetLink = "This reset link is not valid: it may have expired or been used already. Ask an administrator for a new one."

func (a *App) serveResetPage(w http.ResponseWriter, r *http.Request) {
	code := strings.TrimSpace(r.URL.Query().Get("code"))
	v := &resetView{Code: code}
	status := http.StatusOK
	if code == "" || len(code) > 200 {
		v.Code, v.Error, status = "", badResetLink, http.StatusBadRequest
	}
	a.resetPage(w, r, v, status)
}

// resetPage renders the form with a fresh CSRF token.
func (a *App) resetPage(w http.ResponseWriter, r *http.Request, v *resetView, status int) {
	if !v.Done && v.Code != "" {
		v.Token = base64.RawURLEncoding.EncodeToString(randomBytes(24))
		http.SetCookie(w, &http.Cookie{Name: resetCookie, Value: v.Token, Path: Prefix + "/reset", HttpOnly: true,
			Secure: a.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	} else {
		http.SetCookie(w, &http.Cookie{Name: resetCookie, Value: "", Path: Prefix + "/reset", MaxAge: -1, HttpOnly: true,
			Secure: a.secure(r), SameSite: http.SameSiteStrictMode})
	}
	w.WriteHeader(status)
	a.render(w, r, nil, "reset", &page{Title: "Choose a new password"}, v)
}

func (a *App) serveReset(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !sameOrigin(r) || r.ParseForm() != nil {
		a.errorPage(w, r, nil, http.StatusForbidden, "The form did not come from this site.")
		return
	}
	f := r.PostForm
	v := &resetView{Code: strings.TrimSpace(f.Get("code"))}
	if v.Code == "" || len(v.Code) > 200 {
		v.Code, v.Error = "", badResetLink
		a.resetPage(w, r, v, http.StatusBadRequest)
		return
	}
	c, err := r.Cookie(resetCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(f.Get("token"))) != 1 {
		v.Error = "The form expired. Please enter the new password again."
		a.resetPage(w, r, v, http.StatusForbidden)
		return
	}
	// The password rules are auth's (checkPassword): ResetPassword
	// refuses a bad one with KindInvalid and does not spend the code.
	pw := f.Get("password")
	if pw != f.Get("confirm") {
		v.Error = "The two passwords are not the same."
		a.resetPage(w, r, v, http.StatusBadRequest)
		return
	}
	switch err := a.auth.ResetPassword(r.Context(), v.Code, pw); {
	case hale.IsKind(err, hale.KindUnauthorized):
		v.Code, v.Error = "", badResetLink
		a.resetPage(w, r, v, http.StatusBadRequest)
	case hale.IsKind(err, hale.KindInvalid):
		var he *hale.Error
		msg := "The password was not accepted."
		if errors.As(err, &he) {
			msg = "The password was not accepted: " + he.Message
		}
		v.Error = msg
		a.resetPage(w, r, v, http.StatusBadRequest)
	case err != nil:
		a.errorPage(w, r, nil, 0, "", err)
	default:
		a.resetPage(w, r, &resetView{Done: true}, http.StatusOK)
	}
}
