package web

import (
	"crypto/rand"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Registration of a new patient (US Core Patient: name, gender, birth
// date, identifiers with the MRN, telecom, address, communication
// language, the us-core-race and us-core-ethnicity extensions, an
// emergency contact) with insurance as a Coverage, written together in
// one transaction. Before writing, the app looks for a patient the user
// can see with the same family name and birth date, or the same MRN or
// phone, and shows them; the registrar confirms it is someone new.
// The patient is managed by the user's (first) organization, so the
// user, and their colleagues, see the new chart.

// mrnSystem is the identifier system of MRNs the app assigns.
const mrnSystem = "https://hale-ehr.org/fhir/sid/mrn"

const systemOMB = "urn:oid:2.16.840.1.113883.6.238" // CDC Race & Ethnicity

// races are the OMB race categories (us-core-omb-race-category); "UNK"
// and "ASKU" (v3 NullFlavor) for unknown and declined.
var races = []struct{ Code, Display string }{
	{"1002-5", "American Indian or Alaska Native"}, {"2028-9", "Asian"}, {"2054-5", "Black or African American"},
	{"2076-8", "Native Hawaiian or Other Pacific Islander"}, {"2106-3", "White"}, {"UNK", "Unknown"}, {"ASKU", "Asked but declined"},
}

var ethnicities = []struct{ Code, Display string }{
	{"2135-2", "Hispanic or Latino"}, {"2186-5", "Not Hispanic or Latino"}, {"UNK", "Unknown"}, {"ASKU", "Asked but declined"},
}

// languages are the preferred languages offered (BCP 47).
var languages = []struct{ Code, Display string }{
	{"en", "English"}, {"es", "Spanish"}, {"zh", "Chinese"}, {"vi", "Vietnamese"}, {"tl", "Tagalog"}, {"ar", "Arabic"},
	{"fr", "French"}, {"ko", "Korean"}, {"ru", "Russian"}, {"ht", "Haitian Creole"}, {"pt", "Portuguese"}, {"de", "German"},
}

var usState = regexp.MustCompile(`^[A-Z]{2}$`)
var usZip = regexp.MustCompile(`^\d{5}(-\d{4})?$`)

// regForm is the demographics form of registration and editing
// (demographics.go), with the insurance of a registration.
type regForm struct {
	Family, Given, BirthDate, Gender, MRN, Phone, Mobile, Email, Line, City, State, Zip, Language string
	Races                                                                                         []string
	raceKey                                                                                       string // Races sorted and joined
	Ethnicity                                                                                     string
	ContactName, ContactRelation, ContactPhone                                                    string
	Payer, MemberID, Group                                                                        string
}

type registerView struct {
	Form                      regForm
	Errors                    map[string]string
	Error                     string
	Matches                   []patientRow
	Races, Ethnicities, Langs any
	CanRegister, CanInsure    bool
}

func (a *App) serveRegister(w http.ResponseWriter, r *http.Request, u *user) {
	a.registerPage(w, r, u, &registerView{Form: regForm{Language: "en"}}, http.StatusOK)
}

func (a *App) registerPage(w http.ResponseWriter, r *http.Request, u *user, v *registerView, status int) {
	v.Races, v.Ethnicities, v.Langs = races, ethnicities, languages
	v.CanRegister = u.can("Patient", 'c') && len(u.Organizations) > 0
	v.CanInsure = u.can("Coverage", 'c')
	w.WriteHeader(status)
	a.render(w, r, u, "register", &page{Title: "Register a patient", Nav: "search"}, v)
}

func (a *App) postRegister(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	f := r.PostForm
	form := readDemographics(f)
	form.Payer, form.MemberID, form.Group = strings.TrimSpace(f.Get("payer")), strings.TrimSpace(f.Get("member_id")), strings.TrimSpace(f.Get("group"))
	errs := map[string]string{}
	if !u.can("Patient", 'c') || len(u.Organizations) == 0 {
		a.errorPage(w, r, u, http.StatusForbidden, "Your account cannot register patients (no organization, or a role that may not).")
		return
	}
	a.checkDemographics(form, regForm{}, errs)
	if form.Payer != "" && !u.can("Coverage", 'c') {
		errs["payer"] = "Your role cannot record insurance: the front desk does."
	} else if (form.Payer == "") != (form.MemberID == "") {
		errs["payer"] = "Give the insurer and the member id, or neither."
	}
	for _, s := range []string{form.Payer, form.MemberID, form.Group} {
		if len(s) > 200 {
			errs["payer"] = "Insurance fields are limited to 200 characters."
		}
	}
	if len(errs) > 0 {
		a.registerPage(w, r, u, &registerView{Form: form, Errors: errs, Error: "The patient was not registered: correct the fields marked below."}, http.StatusBadRequest)
		return
	}

	// Possible duplicates, among the patients the user can see.
	searches := []url.Values{{"family": {form.Family}, "birthdate": {form.BirthDate}}}
	if form.MRN != "" {
		searches = append(searches, url.Values{"identifier": {form.MRN}})
	}
	if d := onlyDigit.ReplaceAllString(form.Phone, ""); len(d) == 10 {
		searches = append(searches, url.Values{"phone": {strings.Join([]string{form.Phone, d, d[:3] + "-" + d[3:6] + "-" + d[6:], "(" + d[:3] + ") " + d[3:6] + "-" + d[6:]}, ",")},
			"family": {form.Family}})
	}
	seen := map[string]bool{}
	var matches []patientRow
	for _, q := range searches {
		q.Set("_count", "20")
		b, err := a.search(ctx, "Patient", q)
		if err != nil {
			a.errorPage(w, r, u, 0, "", err)
			return
		}
		for _, p := range b.Matches {
			if !seen[str(p, "id")] {
				seen[str(p, "id")] = true
				matches = append(matches, a.patientRow(p))
			}
		}
	}
	if len(matches) > 0 && f.Get("not_duplicate") != "on" {
		a.registerPage(w, r, u, &registerView{Form: form, Matches: matches,
			Error: "This may be a patient already registered. Open their chart, or confirm this is someone new."}, http.StatusConflict)
		return
	}

	mrnValue := form.MRN
	if mrnValue == "" {
		n, _ := rand.Int(rand.Reader, big.NewInt(9_000_000_000))
		mrnValue = "H" + itoa(int(n.Int64()+1_000_000_000))
	}
	patURL := "urn:uuid:" + uuid()
	p := resource{
		"resourceType":         "Patient",
		"meta":                 map[string]any{"profile": []any{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"}},
		"active":               true,
		"managingOrganization": map[string]any{"reference": "Organization/" + u.Organizations[0]},
	}
	form.MRN = mrnValue
	applyDemographics(p, form, regForm{})
	entries := []txEntry{{FullURL: patURL, Method: "POST", Resource: p}}
	if form.Payer != "" {
		cov := resource{
			"resourceType": "Coverage",
			"status":       "active",
			"subscriberId": form.MemberID,
			"beneficiary":  map[string]any{"reference": patURL},
			"relationship": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self", "display": "Self"}}},
			"payor":        []any{map[string]any{"display": form.Payer}},
			"identifier":   []any{map[string]any{"value": form.MemberID}},
		}
		if form.Group != "" {
			cov["class"] = []any{map[string]any{"type": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "group"}}},
				"value": form.Group}}
		}
		entries = append(entries, txEntry{Method: "POST", Resource: cov})
	}
	refs, err := a.transact(ctx, entries)
	if err != nil {
		a.registerPage(w, r, u, &registerView{Form: form, Error: a.userMessage(err)}, http.StatusBadRequest)
		return
	}
	id := strings.TrimPrefix(refs[0], "Patient/")
	http.Redirect(w, r, Prefix+"/patients/"+id+"?saved=registered", http.StatusSeeOther)
}
