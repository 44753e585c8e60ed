package web

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/auth"
)

// The account page (any signed-in user, whatever the role): passkeys
// (add, remove) and connected apps (the SMART apps the user authorized,
// with a Revoke button). The WebAuthn ceremonies run in passkey.js, which
// posts forms here and gets JSON back; the checks are auth's
// (docs/security.md, "Passkeys", "Connected apps").

type accountView struct {
	Username, Role  string
	Passkeys        []passkeyRow
	PasskeysEnabled bool
	PasskeyOrigin   string
	Apps            []appRow
	Error           string
}

type passkeyRow struct {
	ID, Name, Created, LastUsed string
}

type appRow struct {
	ClientID, Name, Granted, LastUsed, Until string
	Scopes                                   []string
}

// userID is the account id of a session's principal.
func userID(u *user) string { return strings.TrimPrefix(u.Subject, "user/") }

func (a *App) showTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.In(a.loc).Format(dateTimeFmt)
}

func (a *App) serveAccount(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	v := &accountView{Username: u.Name, Role: string(u.Role), PasskeysEnabled: a.auth.PasskeysEnabled(), PasskeyOrigin: a.auth.PasskeyOrigin()}
	pks, err := a.auth.Passkeys(ctx, userID(u))
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	for _, pk := range pks {
		v.Passkeys = append(v.Passkeys, passkeyRow{ID: pk.ID, Name: pk.Name, Created: a.showTime(pk.Created), LastUsed: a.showTime(pk.LastUsed)})
	}
	apps, err := a.auth.ConnectedApps(ctx, userID(u))
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	for _, app := range apps {
		row := appRow{ClientID: app.ClientID, Name: app.Name, Granted: a.showTime(app.Granted), LastUsed: a.showTime(app.LastUsed),
			Until: a.showTime(app.Expires)}
		for _, sc := range app.Scopes {
			row.Scopes = append(row.Scopes, auth.DescribeScope(sc))
		}
		v.Apps = append(v.Apps, row)
	}
	p := &page{Title: "Your account", Nav: "account"}
	switch r.URL.Query().Get("m") {
	case "added":
		p.Flash = "Passkey added. You can sign in with it now."
	case "removed":
		p.Flash = "Passkey removed."
	case "revoked":
		p.Flash = "The app's access was revoked. Its tokens no longer work."
	}
	a.render(w, r, u, "account", p, v)
}

// writeJSON answers one of passkey.js's requests.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// jsonError answers a passkey request that failed with a message for the
// user; internal errors are logged with an id.
func (a *App) jsonError(w http.ResponseWriter, err error) {
	var locked *auth.LockedError
	switch {
	case errors.As(err, &locked):
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "Too many failed attempts. Try again in a few minutes."})
	case errors.Is(err, auth.ErrPasskey):
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "The passkey could not be verified. Try again, or sign in with your password."})
	case errors.Is(err, auth.ErrCredentials):
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "The username or password is not correct."})
	case hale.IsKind(err, hale.KindUnauthorized), hale.IsKind(err, hale.KindInvalid):
		var he *hale.Error
		errors.As(err, &he)
		msg := he.Message
		if msg != "" {
			msg = strings.ToUpper(msg[:1]) + msg[1:] + "."
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
	default:
		status, msg := a.describe(err)
		writeJSON(w, status, map[string]string{"error": msg})
	}
}

// postPasskeyOptions starts adding a passkey: the password again, then
// the options for navigator.credentials.create.
func (a *App) postPasskeyOptions(w http.ResponseWriter, r *http.Request, u *user) {
	c, err := a.auth.BeginPasskeyRegistration(r.Context(), userID(u), r.PostForm.Get("password"), auth.ClientAddress(r.RemoteAddr))
	if err != nil {
		a.jsonError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// postPasskey stores the new passkey (the authenticator's answer).
func (a *App) postPasskey(w http.ResponseWriter, r *http.Request, u *user) {
	f := r.PostForm
	if _, err := a.auth.FinishPasskeyRegistration(r.Context(), userID(u), f.Get("ceremony"), f.Get("name"), []byte(f.Get("credential"))); err != nil {
		a.jsonError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"next": Prefix + "/account?m=added"})
}

func (a *App) deletePasskey(w http.ResponseWriter, r *http.Request, u *user) {
	if err := a.auth.DeletePasskey(r.Context(), userID(u), r.PathValue("pid")); err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	http.Redirect(w, r, Prefix+"/account?m=removed", http.StatusSeeOther)
}

// revokeApp ends the app's access (every grant the user gave it).
func (a *App) revokeApp(w http.ResponseWriter, r *http.Request, u *user) {
	if _, err := a.auth.RevokeApp(r.Context(), userID(u), r.PathValue("client")); err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	http.Redirect(w, r, Prefix+"/account?m=revoked", http.StatusSeeOther)
}

// Signing in with a passkey (the sign-in page's buttons): passwordless,
// or in place of the one-time code on the code step. The sign-in form's
// double-submit token guards both requests, as it guards the form.

func (a *App) loginFormOK(w http.ResponseWriter, r *http.Request) bool {
	if ok, wait := a.auth.AllowAttempt(auth.ClientAddress(r.RemoteAddr)); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "Too many requests from this address. Wait a little and try again."})
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !sameOrigin(r) || r.ParseForm() != nil {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "The request did not come from this site."})
		return false
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("token"))) != 1 {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "The sign-in form expired. Reload the page and try again."})
		return false
	}
	return true
}

func (a *App) postLoginPasskeyOptions(w http.ResponseWriter, r *http.Request) {
	if !a.loginFormOK(w, r) {
		return
	}
	username, password := "", ""
	if tk := r.PostForm.Get("ticket"); tk != "" {
		t, ok := a.openTicket(tk)
		if !ok {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "The sign-in took too long. Start again."})
			return
		}
		username, password = t.Username, t.Password
	}
	c, err := a.auth.BeginPasskeyLogin(r.Context(), username, password, auth.ClientAddress(r.RemoteAddr))
	if err != nil {
		a.jsonError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (a *App) postLoginPasskey(w http.ResponseWriter, r *http.Request) {
	if !a.loginFormOK(w, r) {
		return
	}
	f := r.PostForm
	sess, err := a.auth.FinishPasskeyLogin(r.Context(), f.Get("ceremony"), []byte(f.Get("credential")), auth.ClientAddress(r.RemoteAddr))
	if err != nil {
		a.jsonError(w, err)
		return
	}
	a.startSession(w, r, sess)
	writeJSON(w, http.StatusOK, map[string]string{"next": landing(sess.User.Role, safeNext(f.Get("next")))})
}

// startSession sets the session cookie of a new sign-in.
func (a *App) startSession(w http.ResponseWriter, r *http.Request, sess *auth.Session) {
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: Prefix + "/login", MaxAge: -1, HttpOnly: true, Secure: a.secure(r), SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: sess.ID, Path: "/", HttpOnly: true,
		Secure: a.secure(r), SameSite: http.SameSiteStrictMode})
}

// clinician reports whether the role uses the clinician screens.
func clinician(role hale.Role) bool {
	return role == hale.RolePhysician || role == hale.RoleNurse || role == hale.RoleFrontDesk
}

// landing is where a sign-in goes: next, except that accounts the
// clinician screens are not for go to their account page.
func landing(role hale.Role, next string) string {
	if !clinician(role) && next == Prefix+"/" {
		return Prefix + "/account"
	}
	return next
}

// Clinician tells the layout whether to show the clinician navigation.
func (u *user) Clinician() bool { return clinician(u.Role) }
