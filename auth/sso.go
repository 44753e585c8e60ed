package auth

import (
	"net/http"
	"strings"

	"github.com/hale-ehr/hale"
)

// Single sign-on from a Hale session into SMART App Launch
// (docs/security.md, "Single sign-on"): a user signed in to the clinician
// app who opens an app's authorization request is not asked for the
// password again; the consent screen still is.
//
// The session cookie is SameSite=Strict, so the browser leaves it out of
// a navigation that another site starts — which is what an app's
// redirect to /auth/authorize is. Rather than a second, laxer cookie
// (one more credential to keep, steal and expire), /auth/authorize
// answers such a request (Sec-Fetch-Site: cross-site) with a page that
// moves on by itself (meta refresh, no script) to
// /auth/authorize/continue: a navigation Hale's own page starts, so
// same-site, so the Strict cookie comes along. There
// the session, if any, signs the authorization in; without one the
// sign-in page is shown. The step is bound to the browser like every
// other (the hale_authz cookie and the authorization id), and what it
// leads to is the consent screen, which only a click on Hale's own page
// (frame-ancestors 'none') answers. A request that already carries the
// cookie (the app is same-site with Hale) skips the interstitial; one
// that is not cross-site and carries none has no session to find (the
// sign-in page at once), and so has a browser that does not send Fetch
// Metadata (no single sign-on there).

// sessionUser returns the user of the request's session cookie; nil
// when there is none or it is not valid now.
func (s *Service) sessionUser(r *http.Request) (*User, error) {
	var p *hale.Principal
	if cp := hale.PrincipalFrom(r.Context()); cp != nil && strings.HasPrefix(cp.Session, "session/") {
		p = cp // the guard read the cookie already
	} else if c, err := r.Cookie(SessionCookie); err == nil {
		sp, err := s.SessionPrincipal(r.Context(), c.Value, ClientAddress(r.RemoteAddr))
		if hale.IsKind(err, hale.KindUnauthorized) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		p = sp
	}
	if p == nil {
		return nil, nil
	}
	u, err := s.User(r.Context(), strings.TrimPrefix(p.Subject, "user/"))
	if hale.IsKind(err, hale.KindNotFound) || err == nil && u.Disabled {
		return nil, nil
	}
	return u, err
}

// serveContinue is the same-site step after the interstitial: the
// session signs the authorization in, else the sign-in page.
func (s *Service) serveContinue(w http.ResponseWriter, r *http.Request) {
	rec, req, tx := s.loadAuthz(w, r)
	if req == nil {
		return
	}
	if req.UserID != "" {
		s.errorPage(w, http.StatusBadRequest, "This sign-in was already completed; go back to the app and start again.")
		return
	}
	name := s.clientName(r.Context(), req.Client)
	u, err := s.sessionUser(r)
	if err != nil {
		s.internalPage(w, err)
		return
	}
	if u == nil {
		s.render(w, http.StatusOK, "signin", &page{Title: "Sign in to Hale", Client: name, TX: tx, CSRF: req.CSRF})
		return
	}
	req.UserID, req.SSO = u.ID, true
	s.afterSignIn(w, r, rec, req, tx, u)
}

// serveSwitch lets someone other than the session's user sign in to an
// authorization that single sign-on started (a shared workstation).
func (s *Service) serveSwitch(w http.ResponseWriter, r *http.Request) {
	rec, req, tx := s.loadAuthz(w, r)
	if req == nil {
		return
	}
	if !req.SSO {
		s.errorPage(w, http.StatusBadRequest, "This sign-in was not made from a Hale session.")
		return
	}
	req.UserID, req.SSO, req.Granted, req.Patient = "", false, nil, req.LaunchPatient
	if err := s.saveAuthz(r.Context(), rec, req); err != nil {
		s.stepFailed(w, err)
		return
	}
	s.render(w, http.StatusOK, "signin", &page{Title: "Sign in to Hale", Client: s.clientName(r.Context(), req.Client), TX: tx, CSRF: req.CSRF})
}
