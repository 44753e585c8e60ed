package web

import (
	"crypto/rand"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
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

type regForm struct {
	Family, Given, BirthDate, Gender, MRN, Phone, Email, Line, City, State, Zip, Language string
	Races                                                                                 []string
	Ethnicity                                                                             string
	ContactName, ContactRelation, ContactPhone                                            string
	Payer, MemberID, Group                                                                string
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
	t := func(k string) string { return strings.TrimSpace(f.Get(k)) }
	form := regForm{Family: t("family"), Given: t("given"), BirthDate: t("birthdate"), Gender: f.Get("gender"), MRN: t("mrn"),
		Phone: t("phone"), Email: t("email"), Line: t("line"), City: t("city"), State: strings.ToUpper(t("state")), Zip: t("zip"),
		Language: f.Get("language"), Races: f["race"], Ethnicity: f.Get("ethnicity"),
		ContactName: t("contact_name"), ContactRelation: t("contact_relation"), ContactPhone: t("contact_phone"),
		Payer: t("payer"), MemberID: t("member_id"), Group: t("group")}
	errs := map[string]string{}
	if !u.can("Patient", 'c') || len(u.Organizations) == 0 {
		a.errorPage(w, r, u, http.StatusForbidden, "Your account cannot register patients (no organization, or a role that may not).")
		return
	}
	for k, s := range map[string]string{"family": form.Family, "given": form.Given} {
		if s == "" {
			errs[k] = "Required."
		} else if len(s) > 100 {
			errs[k] = "At most 100 characters."
		}
	}
	if bd, err := time.Parse(dateFmt, form.BirthDate); err != nil {
		errs["birthdate"] = "Birth date must be a date such as 1980-04-23."
	} else if bd.After(a.now()) || bd.Year() < 1900 {
		errs["birthdate"] = "The birth date is not plausible."
	}
	if !slices.Contains([]string{"male", "female", "other", "unknown"}, form.Gender) {
		errs["gender"] = "Choose the sex recorded for administration."
	}
	if form.MRN != "" && (len(form.MRN) > 40 || strings.ContainsAny(form.MRN, " |,$")) {
		errs["mrn"] = "An MRN is up to 40 characters without spaces, |, $ or commas."
	}
	if form.Phone != "" && len(onlyDigit.ReplaceAllString(form.Phone, "")) < 7 {
		errs["phone"] = "The phone number is too short."
	}
	if form.Email != "" && (!strings.Contains(form.Email, "@") || len(form.Email) > 200) {
		errs["email"] = "The e-mail address is not valid."
	}
	if form.State != "" && !usState.MatchString(form.State) {
		errs["state"] = "Two letters, e.g. MA."
	}
	if form.Zip != "" && !usZip.MatchString(form.Zip) {
		errs["zip"] = "Five digits (or ZIP+4), e.g. 02139."
	}
	if !slices.ContainsFunc(languages, func(l struct{ Code, Display string }) bool { return l.Code == form.Language }) {
		errs["language"] = "Choose a language."
	}
	for _, rc := range form.Races {
		if !slices.ContainsFunc(races, func(x struct{ Code, Display string }) bool { return x.Code == rc }) {
			errs["race"] = "Choose from the list."
		}
	}
	if form.Ethnicity != "" && !slices.ContainsFunc(ethnicities, func(x struct{ Code, Display string }) bool { return x.Code == form.Ethnicity }) {
		errs["ethnicity"] = "Choose from the list."
	}
	if (form.ContactName == "") != (form.ContactPhone == "") {
		errs["contact_name"] = "Give the emergency contact's name and phone, or neither."
	}
	if form.Payer != "" && !u.can("Coverage", 'c') {
		errs["payer"] = "Your role cannot record insurance: the front desk does."
	} else if (form.Payer == "") != (form.MemberID == "") {
		errs["payer"] = "Give the insurer and the member id, or neither."
	}
	for _, s := range []string{form.Line, form.City, form.ContactName, form.ContactRelation, form.ContactPhone, form.Payer, form.MemberID, form.Group} {
		if len(s) > 200 {
			errs["line"] = "Fields are limited to 200 characters."
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
		"resourceType": "Patient",
		"meta":         map[string]any{"profile": []any{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"}},
		"active":       true,
		"identifier": []any{map[string]any{"use": "usual", "system": mrnSystem, "value": mrnValue,
			"type": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical Record Number"}}, "text": "Medical Record Number"}}},
		"name":                 []any{map[string]any{"use": "official", "family": form.Family, "given": strings.Fields(form.Given)}},
		"gender":               form.Gender,
		"birthDate":            form.BirthDate,
		"managingOrganization": map[string]any{"reference": "Organization/" + u.Organizations[0]},
	}
	var telecom []any
	if form.Phone != "" {
		telecom = append(telecom, map[string]any{"system": "phone", "value": form.Phone, "use": "home"})
	}
	if form.Email != "" {
		telecom = append(telecom, map[string]any{"system": "email", "value": form.Email})
	}
	if telecom != nil {
		p["telecom"] = telecom
	}
	if form.Line != "" || form.City != "" || form.State != "" || form.Zip != "" {
		addr := map[string]any{"use": "home", "country": "US"}
		if form.Line != "" {
			addr["line"] = []any{form.Line}
		}
		for k, v := range map[string]string{"city": form.City, "state": form.State, "postalCode": form.Zip} {
			if v != "" {
				addr[k] = v
			}
		}
		p["address"] = []any{addr}
	}
	for _, l := range languages {
		if l.Code == form.Language {
			p["communication"] = []any{map[string]any{"preferred": true, "language": map[string]any{
				"coding": []any{map[string]any{"system": "urn:ietf:bcp:47", "code": l.Code, "display": l.Display}}, "text": l.Display}}}
		}
	}
	var exts []any
	if len(form.Races) > 0 {
		var sub []any
		var texts []string
		for _, x := range races {
			if slices.Contains(form.Races, x.Code) {
				sys := systemOMB
				if x.Code == "UNK" || x.Code == "ASKU" {
					sys = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
				}
				sub = append(sub, map[string]any{"url": "ombCategory", "valueCoding": map[string]any{"system": sys, "code": x.Code, "display": x.Display}})
				texts = append(texts, x.Display)
			}
		}
		sub = append(sub, map[string]any{"url": "text", "valueString": strings.Join(texts, ", ")})
		exts = append(exts, map[string]any{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": sub})
	}
	for _, x := range ethnicities {
		if x.Code == form.Ethnicity {
			sys := systemOMB
			if x.Code == "UNK" || x.Code == "ASKU" {
				sys = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
			}
			exts = append(exts, map[string]any{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity", "extension": []any{
				map[string]any{"url": "ombCategory", "valueCoding": map[string]any{"system": sys, "code": x.Code, "display": x.Display}},
				map[string]any{"url": "text", "valueString": x.Display}}})
		}
	}
	if exts != nil {
		p["extension"] = exts
	}
	if form.ContactName != "" {
		c := map[string]any{
			"relationship": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C", "display": "Emergency Contact"}}}},
			"name":         map[string]any{"text": form.ContactName},
			"telecom":      []any{map[string]any{"system": "phone", "value": form.ContactPhone}},
		}
		if form.ContactRelation != "" {
			c["relationship"] = append(c["relationship"].([]any), map[string]any{"text": form.ContactRelation})
		}
		p["contact"] = []any{c}
	}
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
