package auth

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"time"

	"github.com/hale-ehr/hale"
)

// EHR launch (SMART App Launch 2.x, app-launch.html "Launch App: EHR
// Launch"): the EHR, with a user signed in, opens the app at its launch
// URL with iss and an opaque launch id; the app passes the launch id
// back in its authorization request, and the token response carries the
// context the id stands for. Hale's clinician app gets the id from POST
// /auth/launch; the id is a record launch/<SHA-256 of the id> that lives
// five minutes and is used once.

// launchTTL is how long a launch id may be used.
const launchTTL = 5 * time.Minute

type launchRecord struct {
	UserID     string    `json:"userId"`
	Client     string    `json:"client,omitempty"` // the app it is for, "" for any
	Patient    string    `json:"patient,omitempty"`
	Encounter  string    `json:"encounter,omitempty"`
	NeedBanner bool      `json:"needBanner,omitempty"`
	Created    time.Time `json:"created"`
}

// LaunchContext is what an EHR launch carries.
type LaunchContext struct {
	Client     string `json:"client_id,omitempty"`
	Patient    string `json:"patient,omitempty"`
	Encounter  string `json:"encounter,omitempty"`
	NeedBanner bool   `json:"need_patient_banner,omitempty"`
}

// NewLaunch creates a launch id for user p (who must be a user signed in
// to Hale itself, not an app) with context lc. A patient user may only
// launch with their own record; a patient is checked with
// Options.Patients when set, so nobody launches an app on a patient they
// cannot see. Returns KindForbidden for a caller that is not such a
// user, KindInvalid for a malformed id, KindNotFound for a patient the
// user may not see.
func (s *Service) NewLaunch(ctx context.Context, p *hale.Principal, lc LaunchContext) (string, time.Time, error) {
	const op = "auth.NewLaunch"
	if p == nil || p.Client != "" || len(p.Subject) < 6 || p.Subject[:5] != "user/" {
		return "", time.Time{}, &hale.Error{Kind: hale.KindForbidden, Op: op, Message: "only a user signed in to Hale can launch an app"}
	}
	for _, id := range []string{lc.Patient, lc.Encounter} {
		if id != "" && !fhirIDRE.MatchString(id) {
			return "", time.Time{}, invalid(op, "%q is not a FHIR id", id)
		}
	}
	if lc.Client != "" {
		c, err := s.Client(ctx, lc.Client)
		if err != nil || c.Disabled || len(c.RedirectURIs) == 0 {
			return "", time.Time{}, invalid(op, "client_id %q is not a registered app", lc.Client)
		}
	}
	if p.Role == hale.RolePatient && lc.Patient != "" && "Patient/"+lc.Patient != p.FHIRUser {
		return "", time.Time{}, &hale.Error{Kind: hale.KindNotFound, Op: op, Message: "no such patient"}
	}
	if lc.Patient != "" && s.opts.Patients != nil {
		if _, err := s.opts.Patients.Patient(ctx, p, lc.Patient); err != nil {
			return "", time.Time{}, err
		}
	}
	id := randomToken()
	now := s.now().UTC()
	exp := now.Add(launchTTL)
	_, err := s.putJSON(ctx, kindLaunch, digest(id), 0, exp, &launchRecord{UserID: p.Subject[5:], Client: lc.Client,
		Patient: lc.Patient, Encounter: lc.Encounter, NeedBanner: lc.NeedBanner, Created: now})
	if err != nil {
		return "", time.Time{}, err
	}
	return id, exp, nil
}

// serveLaunch is POST /auth/launch, a form or JSON body
// {client_id, patient, encounter, need_patient_banner}, answered with
// {"launch": id, "expires_in": 300}. The caller is the session of the
// signed-in user (or a user's own bearer token from Hale's web apps).
func (s *Service) serveLaunch(w http.ResponseWriter, r *http.Request) {
	p, err := s.Authenticate(r)
	if err != nil || p == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hale"`)
		writeOAuth(w, &OAuthError{Status: http.StatusUnauthorized, Code: "invalid_token", Description: "sign in to Hale first"})
		return
	}
	var lc LaunchContext
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&lc); err != nil {
			writeOAuth(w, oauthErr("invalid_request", "the body must be a JSON object with client_id, patient, encounter, need_patient_banner"))
			return
		}
	} else {
		if e := parseForm(w, r); e != nil {
			writeOAuth(w, e)
			return
		}
		v, err := formValues(r.PostForm, "client_id", "patient", "encounter", "need_patient_banner")
		if err != nil {
			s.writeErr(w, err)
			return
		}
		lc = LaunchContext{Client: v[0], Patient: v[1], Encounter: v[2], NeedBanner: v[3] == "true"}
	}
	id, exp, err := s.NewLaunch(r.Context(), p, lc)
	if hale.IsKind(err, hale.KindNotFound) {
		writeOAuth(w, &OAuthError{Status: http.StatusNotFound, Code: "invalid_request", Description: "no such patient"})
		return
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"launch": id, "expires_in": int(exp.Sub(s.now()) / time.Second)})
}
