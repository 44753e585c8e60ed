package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/rest"
)

// Demographics: the form registration and editing share (regForm), read
// from a Patient (formOf) and written into one (applyDemographics).
//
// Editing changes only the elements the form shows, and of those only
// the ones whose value the user changed: everything else on the Patient
// (other names, identifiers, telecoms and addresses, detailed race
// codes, extensions the app does not know) stays as it was. The write is
// a PUT with If-Match at the version the form was drawn from. When
// someone else saved the patient meanwhile, nothing is overwritten: the
// form comes back (409) merged field by field — what only the other
// person changed takes their value, what only the user changed keeps the
// user's, what both changed keeps the user's and is listed with the
// other value — at the new version, for the user to check and save again
// (TestEditDemographics).

// demoField is one field of the form, for comparing and merging.
type demoField struct {
	key, label string
	get        func(*regForm) *string
}

var demoFields = []demoField{
	{"family", "Family name", func(f *regForm) *string { return &f.Family }},
	{"given", "Given names", func(f *regForm) *string { return &f.Given }},
	{"birthdate", "Birth date", func(f *regForm) *string { return &f.BirthDate }},
	{"gender", "Sex", func(f *regForm) *string { return &f.Gender }},
	{"mrn", "MRN", func(f *regForm) *string { return &f.MRN }},
	{"language", "Preferred language", func(f *regForm) *string { return &f.Language }},
	{"race", "Race", func(f *regForm) *string { return &f.raceKey }},
	{"ethnicity", "Ethnicity", func(f *regForm) *string { return &f.Ethnicity }},
	{"phone", "Phone", func(f *regForm) *string { return &f.Phone }},
	{"mobile", "Mobile phone", func(f *regForm) *string { return &f.Mobile }},
	{"email", "E-mail", func(f *regForm) *string { return &f.Email }},
	{"line", "Street address", func(f *regForm) *string { return &f.Line }},
	{"city", "City", func(f *regForm) *string { return &f.City }},
	{"state", "State", func(f *regForm) *string { return &f.State }},
	{"zip", "ZIP", func(f *regForm) *string { return &f.Zip }},
	{"contact_name", "Emergency contact", func(f *regForm) *string { return &f.ContactName }},
	{"contact_relation", "Emergency contact's relationship", func(f *regForm) *string { return &f.ContactRelation }},
	{"contact_phone", "Emergency contact's phone", func(f *regForm) *string { return &f.ContactPhone }},
}

// readDemographics reads the demographic fields of a posted form.
func readDemographics(f url.Values) regForm {
	t := func(k string) string { return strings.TrimSpace(f.Get(k)) }
	form := regForm{Family: t("family"), Given: strings.Join(strings.Fields(f.Get("given")), " "), BirthDate: t("birthdate"), Gender: f.Get("gender"),
		MRN: t("mrn"), Phone: t("phone"), Mobile: t("mobile"), Email: t("email"), Line: t("line"), City: t("city"), State: upperIfCode(t("state")),
		Zip: t("zip"), Language: f.Get("language"), Races: f["race"], Ethnicity: f.Get("ethnicity"),
		ContactName: t("contact_name"), ContactRelation: t("contact_relation"), ContactPhone: t("contact_phone")}
	form.setRaceKey()
	return form
}

// setRaceKey keeps the race codes as one comparable value.
func (f *regForm) setRaceKey() {
	rs := slices.Clone(f.Races)
	slices.Sort(rs)
	f.raceKey = strings.Join(slices.Compact(rs), ",")
}

// checkDemographics records in errs what is wrong with form. was is the
// form as the Patient had it (zero for a registration): a value already
// on file (a language outside the list, an MRN) is accepted unchanged.
func (a *App) checkDemographics(form, was regForm, errs map[string]string) {
	form.setRaceKey()
	was.setRaceKey()
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
	switch {
	case form.MRN == "" && was.MRN != "":
		errs["mrn"] = "The MRN cannot be removed: it identifies the chart. Correct it instead."
	case form.MRN != "" && form.MRN != was.MRN && (len(form.MRN) > 40 || strings.ContainsAny(form.MRN, " |,$")):
		errs["mrn"] = "An MRN is up to 40 characters without spaces, |, $ or commas."
	}
	for k, p := range map[string]string{"phone": form.Phone, "mobile": form.Mobile, "contact_phone": form.ContactPhone} {
		if p != "" && (len(onlyDigit.ReplaceAllString(p, "")) < 7 || len(p) > 40) {
			errs[k] = "The phone number is not valid (at least 7 digits)."
		}
	}
	if form.Email != "" && (!strings.Contains(form.Email, "@") || len(form.Email) > 200 || strings.ContainsAny(form.Email, " \t")) {
		errs["email"] = "The e-mail address is not valid."
	}
	if form.State != "" && !usState.MatchString(form.State) {
		errs["state"] = "Two letters, e.g. MA."
	}
	if form.Zip != "" && !usZip.MatchString(form.Zip) {
		errs["zip"] = "Five digits (or ZIP+4), e.g. 02139."
	}
	if form.Language != was.Language && !slices.ContainsFunc(languages, func(l struct{ Code, Display string }) bool { return l.Code == form.Language }) {
		errs["language"] = "Choose a language."
	}
	for _, rc := range form.Races {
		if !slices.ContainsFunc(races, func(x struct{ Code, Display string }) bool { return x.Code == rc }) {
			errs["race"] = "Choose from the list."
		}
	}
	if len(form.Races) > 1 && (slices.Contains(form.Races, "UNK") || slices.Contains(form.Races, "ASKU")) {
		errs["race"] = "\"Unknown\" and \"Asked but declined\" cannot be combined with a race."
	}
	if form.Ethnicity != "" && !slices.ContainsFunc(ethnicities, func(x struct{ Code, Display string }) bool { return x.Code == form.Ethnicity }) {
		errs["ethnicity"] = "Choose from the list."
	}
	switch {
	case form.ContactName == "" && form.ContactPhone != "":
		errs["contact_name"] = "Give the emergency contact's name and phone, or neither."
	case form.ContactName != "" && form.ContactPhone == "":
		errs["contact_phone"] = "Give the emergency contact's name and phone, or neither."
	}
	for k, s := range map[string]string{"line": form.Line, "city": form.City, "contact_name": form.ContactName, "contact_relation": form.ContactRelation} {
		if len(s) > 200 {
			errs[k] = "Limited to 200 characters."
		}
	}
	// A value on file that the user left as it is stays acceptable
	// (Synthea writes "Massachusetts" as the state): editing one field
	// does not require fixing old data in another first.
	for _, f := range demoFields {
		if v := *f.get(&form); v != "" && v == *f.get(&was) {
			delete(errs, f.key)
		}
	}
}

// The parts of a Patient the form edits.

func officialName(p resource) map[string]any {
	var first map[string]any
	for _, n := range list(p, "name") {
		m, _ := n.(map[string]any)
		if m == nil {
			continue
		}
		if str(m, "use") == "official" {
			return m
		}
		if first == nil {
			first = m
		}
	}
	return first
}

func mrnIdentifier(p resource) map[string]any {
	for _, id := range list(p, "identifier") {
		if m, _ := id.(map[string]any); m != nil && coded(get(m, "type"), "", "MR") {
			return m
		}
	}
	return nil
}

// telecomIndex is the index of the first telecom of system with one of
// uses ("" matches a telecom without use), or -1.
func telecomIndex(p resource, system string, uses ...string) int {
	return slices.IndexFunc(list(p, "telecom"), func(t any) bool {
		return str(t, "system") == system && (len(uses) == 0 || slices.Contains(uses, str(t, "use")))
	})
}

func telecomAt(p resource, i int) map[string]any {
	if i < 0 {
		return nil
	}
	m, _ := list(p, "telecom")[i].(map[string]any)
	return m
}

var (
	homePhoneUses  = []string{"home", ""}
	mobilePhoneUse = []string{"mobile"}
)

func homePhone(p resource) map[string]any {
	return telecomAt(p, telecomIndex(p, "phone", homePhoneUses...))
}
func mobilePhone(p resource) map[string]any {
	return telecomAt(p, telecomIndex(p, "phone", mobilePhoneUse...))
}
func emailOf(p resource) map[string]any { return telecomAt(p, telecomIndex(p, "email")) }

func homeAddress(p resource) map[string]any {
	var first map[string]any
	for _, a := range list(p, "address") {
		m, _ := a.(map[string]any)
		if m == nil {
			continue
		}
		if str(m, "use") == "home" {
			return m
		}
		if first == nil {
			first = m
		}
	}
	return first
}

func preferredLanguage(p resource) map[string]any {
	var first map[string]any
	for _, c := range list(p, "communication") {
		m, _ := c.(map[string]any)
		if m == nil {
			continue
		}
		if pref, _ := m["preferred"].(bool); pref {
			return m
		}
		if first == nil {
			first = m
		}
	}
	return first
}

// emergencyContactIndex is the index of the first contact with the
// relationship v2-0131 C (emergency contact), or -1.
func emergencyContactIndex(p resource) int {
	return slices.IndexFunc(list(p, "contact"), func(c any) bool {
		return slices.ContainsFunc(list(c, "relationship"), func(rel any) bool { return coded(rel, "http://terminology.hl7.org/CodeSystem/v2-0131", "C") })
	})
}

func emergencyContact(p resource) map[string]any {
	if i := emergencyContactIndex(p); i >= 0 {
		m, _ := list(p, "contact")[i].(map[string]any)
		return m
	}
	return nil
}

const (
	extRace      = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
	extEthnicity = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
)

func extension(p resource, url string) map[string]any {
	for _, e := range list(p, "extension") {
		if m, _ := e.(map[string]any); m != nil && str(m, "url") == url {
			return m
		}
	}
	return nil
}

// ombCodes are the ombCategory codes of a race or ethnicity extension.
func ombCodes(ext map[string]any) []string {
	var out []string
	for _, s := range list(ext, "extension") {
		if str(s, "url") == "ombCategory" {
			out = append(out, str(s, "valueCoding", "code"))
		}
	}
	return out
}

// formOf is the form as Patient p fills it.
func formOf(p resource) regForm {
	f := regForm{BirthDate: str(p, "birthDate"), Gender: str(p, "gender"), MRN: mrn(p)}
	if n := officialName(p); n != nil {
		f.Family = str(n, "family")
		var given []string
		for _, g := range list(n, "given") {
			if s, ok := g.(string); ok {
				given = append(given, s)
			}
		}
		f.Given = strings.Join(given, " ")
	}
	f.Phone, f.Mobile, f.Email = str(homePhone(p), "value"), str(mobilePhone(p), "value"), str(emailOf(p), "value")
	if ad := homeAddress(p); ad != nil {
		f.Line, f.City, f.State, f.Zip = str(ad, "line", "0"), str(ad, "city"), str(ad, "state"), str(ad, "postalCode")
		if code, ok := usStates[strings.ToLower(f.State)]; ok {
			f.State = code
		}
	}
	if c := preferredLanguage(p); c != nil {
		f.Language = codeOf(get(c, "language"), "urn:ietf:bcp:47")
		if f.Language == "" {
			f.Language = codeOf(get(c, "language"), "")
		}
	}
	f.Races = ombCodes(extension(p, extRace))
	if eth := ombCodes(extension(p, extEthnicity)); len(eth) > 0 {
		f.Ethnicity = eth[0]
	}
	if c := emergencyContact(p); c != nil {
		f.ContactName = str(c, "name", "text")
		if f.ContactName == "" {
			f.ContactName = humanName(map[string]any{"name": []any{get(c, "name")}})
		}
		for _, rel := range list(c, "relationship") {
			if !coded(rel, "http://terminology.hl7.org/CodeSystem/v2-0131", "C") && str(rel, "text") != "" {
				f.ContactRelation = str(rel, "text")
			}
		}
		for _, t := range list(c, "telecom") {
			if str(t, "system") == "phone" {
				f.ContactPhone = str(t, "value")
				break
			}
		}
	}
	f.setRaceKey()
	return f
}

// applyDemographics writes into p the fields of form that differ from
// was (the form as p filled it; zero for a new patient), leaving the rest
// of p as it is.
func applyDemographics(p resource, form, was regForm) {
	changed := func(a, b string) bool { return a != b }
	if changed(form.Family, was.Family) || changed(form.Given, was.Given) {
		n := officialName(p)
		if n == nil {
			n = map[string]any{"use": "official"}
			p["name"] = append(list(p, "name"), n)
		}
		n["family"] = form.Family
		var given []any
		for _, g := range strings.Fields(form.Given) {
			given = append(given, g)
		}
		n["given"] = given
		delete(n, "text") // it would no longer agree
	}
	if changed(form.BirthDate, was.BirthDate) {
		p["birthDate"] = form.BirthDate
	}
	if changed(form.Gender, was.Gender) {
		p["gender"] = form.Gender
	}
	if changed(form.MRN, was.MRN) && form.MRN != "" {
		if id := mrnIdentifier(p); id != nil {
			id["value"] = form.MRN
		} else {
			p["identifier"] = append(list(p, "identifier"), map[string]any{"use": "usual", "system": mrnSystem, "value": form.MRN,
				"type": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical Record Number"}},
					"text": "Medical Record Number"}})
		}
	}
	setTelecom := func(i int, value, system, use string) {
		switch {
		case i >= 0 && value == "":
			p["telecom"] = slices.Delete(list(p, "telecom"), i, i+1)
		case i >= 0:
			telecomAt(p, i)["value"] = value
		case value != "":
			t := map[string]any{"system": system, "value": value}
			if use != "" {
				t["use"] = use
			}
			p["telecom"] = append(list(p, "telecom"), t)
		}
	}
	if changed(form.Phone, was.Phone) {
		setTelecom(telecomIndex(p, "phone", homePhoneUses...), form.Phone, "phone", "home")
	}
	if changed(form.Mobile, was.Mobile) {
		setTelecom(telecomIndex(p, "phone", mobilePhoneUse...), form.Mobile, "phone", "mobile")
	}
	if changed(form.Email, was.Email) {
		setTelecom(telecomIndex(p, "email"), form.Email, "email", "")
	}
	if len(list(p, "telecom")) == 0 {
		delete(p, "telecom")
	}
	if changed(form.Line, was.Line) || changed(form.City, was.City) || changed(form.State, was.State) || changed(form.Zip, was.Zip) {
		ad := homeAddress(p)
		if ad == nil && (form.Line != "" || form.City != "" || form.State != "" || form.Zip != "") {
			ad = map[string]any{"use": "home", "country": "US"}
			p["address"] = append(list(p, "address"), ad)
		}
		if ad != nil {
			lines := list(ad, "line")
			switch {
			case form.Line == "" && len(lines) <= 1:
				delete(ad, "line")
			case form.Line == "":
				ad["line"] = lines[1:]
			case len(lines) == 0:
				ad["line"] = []any{form.Line}
			default:
				lines[0] = form.Line
			}
			for k, v := range map[string]string{"city": form.City, "state": form.State, "postalCode": form.Zip} {
				if v == "" {
					delete(ad, k)
				} else {
					ad[k] = v
				}
			}
			delete(ad, "text")
			// The geolocation of the old address no longer applies.
			if exts := slices.DeleteFunc(list(ad, "extension"), func(e any) bool {
				return str(e, "url") == "http://hl7.org/fhir/StructureDefinition/geolocation"
			}); len(exts) > 0 {
				ad["extension"] = exts
			} else {
				delete(ad, "extension")
			}
		}
	}
	if changed(form.Language, was.Language) {
		for _, l := range languages {
			if l.Code != form.Language {
				continue
			}
			lang := map[string]any{"coding": []any{map[string]any{"system": "urn:ietf:bcp:47", "code": l.Code, "display": l.Display}}, "text": l.Display}
			if c := preferredLanguage(p); c != nil {
				c["language"], c["preferred"] = lang, true
			} else {
				p["communication"] = append(list(p, "communication"), map[string]any{"preferred": true, "language": lang})
			}
		}
	}
	if changed(form.raceKey, was.raceKey) {
		setExtension(p, extRace, raceExtension(form.Races))
	}
	if changed(form.Ethnicity, was.Ethnicity) {
		setExtension(p, extEthnicity, ethnicityExtension(form.Ethnicity))
	}
	if changed(form.ContactName, was.ContactName) || changed(form.ContactRelation, was.ContactRelation) || changed(form.ContactPhone, was.ContactPhone) {
		c := emergencyContact(p)
		if form.ContactName == "" {
			if i := emergencyContactIndex(p); i >= 0 {
				p["contact"] = slices.Delete(list(p, "contact"), i, i+1)
				if len(list(p, "contact")) == 0 {
					delete(p, "contact")
				}
			}
		} else {
			if c == nil {
				c = map[string]any{}
				p["contact"] = append(list(p, "contact"), c)
			}
			rel := []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C", "display": "Emergency Contact"}}}}
			if form.ContactRelation != "" {
				rel = append(rel, map[string]any{"text": form.ContactRelation})
			}
			c["relationship"] = rel
			c["name"] = map[string]any{"text": form.ContactName}
			c["telecom"] = []any{map[string]any{"system": "phone", "value": form.ContactPhone}}
		}
	}
}

// setExtension replaces the extension url of p by ext (nil: removes it).
func setExtension(p resource, url string, ext map[string]any) {
	exts := slices.DeleteFunc(list(p, "extension"), func(e any) bool { return str(e, "url") == url })
	if ext != nil {
		exts = append(exts, ext)
	}
	if len(exts) == 0 {
		delete(p, "extension")
	} else {
		p["extension"] = exts
	}
}

func raceExtension(codes []string) map[string]any {
	if len(codes) == 0 {
		return nil
	}
	var sub []any
	var texts []string
	for _, x := range races {
		if slices.Contains(codes, x.Code) {
			sys := systemOMB
			if x.Code == "UNK" || x.Code == "ASKU" {
				sys = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
			}
			sub = append(sub, map[string]any{"url": "ombCategory", "valueCoding": map[string]any{"system": sys, "code": x.Code, "display": x.Display}})
			texts = append(texts, x.Display)
		}
	}
	sub = append(sub, map[string]any{"url": "text", "valueString": strings.Join(texts, ", ")})
	return map[string]any{"url": extRace, "extension": sub}
}

func ethnicityExtension(code string) map[string]any {
	for _, x := range ethnicities {
		if x.Code == code {
			sys := systemOMB
			if x.Code == "UNK" || x.Code == "ASKU" {
				sys = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
			}
			return map[string]any{"url": extEthnicity, "extension": []any{
				map[string]any{"url": "ombCategory", "valueCoding": map[string]any{"system": sys, "code": x.Code, "display": x.Display}},
				map[string]any{"url": "text", "valueString": x.Display}}}
		}
	}
	return nil
}

// The edit screen.

type idRow struct{ Type, Value string }

type conflictRow struct{ Label, Theirs string }

type demographicsView struct {
	Form, Was               regForm
	Version                 string
	Errors                  map[string]string
	Error                   string
	Theirs, Both            []conflictRow // the conflict: changed by the other user only, by both
	Identifiers             []idRow       // the identifiers other than the MRN (not edited here)
	Races, Ethnicities      any
	Langs                   []struct{ Code, Display string }
	CanEdit                 bool
	LanguageText, RaceText  string
	EthnicityText, SexLabel string
}

func (a *App) serveDemographics(w http.ResponseWriter, r *http.Request, u *user) {
	a.demographicsPage(w, r, u, nil, http.StatusOK)
}

// demographicsPage draws the form: v nil draws the patient as stored.
func (a *App) demographicsPage(w http.ResponseWriter, r *http.Request, u *user, v *demographicsView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	c, err := a.loadChart(ctx, r.PathValue("id"))
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	p := c.Patient
	if v == nil {
		v = &demographicsView{Form: formOf(p), Version: str(p, "meta", "versionId")}
	}
	v.Was = formOf(p)
	v.Races, v.Ethnicities = races, ethnicities
	v.Langs = languages
	if v.Was.Language != "" && !slices.ContainsFunc(languages, func(l struct{ Code, Display string }) bool { return l.Code == v.Was.Language }) {
		// A language on file that the list does not offer stays choosable.
		label := conceptText(get(preferredLanguage(p), "language"))
		if label == "" {
			label = v.Was.Language
		}
		v.Langs = append([]struct{ Code, Display string }{{v.Was.Language, label + " (on file)"}}, languages...)
	}
	for _, l := range v.Langs {
		if l.Code == v.Form.Language {
			v.LanguageText = l.Display
		}
	}
	var rt []string
	for _, x := range races {
		if slices.Contains(v.Form.Races, x.Code) {
			rt = append(rt, x.Display)
		}
	}
	v.RaceText = strings.Join(rt, ", ")
	for _, x := range ethnicities {
		if x.Code == v.Form.Ethnicity {
			v.EthnicityText = x.Display
		}
	}
	v.SexLabel = sexLabel(v.Form.Gender)
	for _, id := range list(p, "identifier") {
		if coded(get(id, "type"), "", "MR") {
			continue
		}
		row := idRow{Type: conceptText(get(id, "type")), Value: str(id, "value")}
		if row.Type == "" {
			row.Type = str(id, "system")
		}
		if coded(get(id, "type"), "", "SS") && len(row.Value) > 4 {
			row.Value = "•••-••-" + row.Value[len(row.Value)-4:] // shown masked
		}
		v.Identifiers = append(v.Identifiers, row)
	}
	v.CanEdit = u.can("Patient", 'u')
	w.WriteHeader(status)
	a.render(w, r, u, "demographics", &page{Title: c.Banner.Name + " · Demographics", Tab: "demographics", Banner: c.Banner, Flash: flash(r)}, v)
}

func (a *App) postDemographics(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	form := readDemographics(r.PostForm)
	version := r.PostForm.Get("version")
	p, cur, err := a.read(ctx, "Patient", id)
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	if version != cur {
		a.demographicsConflict(w, r, u, id, form, version, p, cur)
		return
	}
	was := formOf(p)
	errs := map[string]string{}
	a.checkDemographics(form, was, errs)
	if len(errs) > 0 {
		a.demographicsPage(w, r, u, &demographicsView{Form: form, Version: version, Errors: errs,
			Error: "The changes were not saved: correct the fields marked below."}, http.StatusBadRequest)
		return
	}
	if !slices.ContainsFunc(demoFields, func(f demoField) bool { return *f.get(&form) != *f.get(&was) }) {
		http.Redirect(w, r, Prefix+"/patients/"+id+"/demographics?saved=unchanged", http.StatusSeeOther)
		return
	}
	applyDemographics(p, form, was)
	if str(p, "text", "status") == "generated" {
		delete(p, "text") // generated from the data as it was
	}
	err = a.update(ctx, p, version)
	if hale.IsKind(err, hale.KindPreconditionFailed) {
		// Saved by someone else between the read and the write.
		p, cur, err = a.read(ctx, "Patient", id)
		if err == nil {
			a.demographicsConflict(w, r, u, id, form, version, p, cur)
			return
		}
	}
	if err != nil {
		a.demographicsPage(w, r, u, &demographicsView{Form: form, Version: version, Error: a.userMessage(err)}, a.status(err))
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/demographics?saved=demographics", http.StatusSeeOther)
}

// status is the HTTP status of a page that shows err.
func (a *App) status(err error) int {
	st, _ := a.describe(err)
	return st
}

// demographicsConflict answers a save of form, drawn from version
// `from`, when the patient is now at version cur (p): the form merged
// with the other user's changes, at the new version (see the comment at
// the top of the file).
func (a *App) demographicsConflict(w http.ResponseWriter, r *http.Request, u *user, id string, form regForm, from string, p resource, cur string) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	now := formOf(p)
	v := &demographicsView{Version: cur}
	resp, err := a.fhir.Do(ctx, &rest.Request{Method: "GET", Type: "Patient", ID: id, Op: "_history", VersionID: from})
	if err != nil {
		// The version the form came from is unknown: keep the user's
		// values, show the current ones beside them.
		for _, f := range demoFields {
			if *f.get(&form) != *f.get(&now) {
				v.Both = append(v.Both, conflictRow{f.label, a.demoValue(f.key, *f.get(&now))})
			}
		}
	} else {
		var old resource
		b, _ := body(resp)
		if err := json.Unmarshal(b, &old); err != nil {
			a.errorPage(w, r, u, 0, "", err)
			return
		}
		base := formOf(old)
		for _, f := range demoFields {
			mine, theirs, orig := f.get(&form), *f.get(&now), *f.get(&base)
			switch {
			case theirs == orig || *mine == theirs:
			case *mine == orig:
				*mine = theirs
				v.Theirs = append(v.Theirs, conflictRow{f.label, a.demoValue(f.key, theirs)})
			default:
				v.Both = append(v.Both, conflictRow{f.label, a.demoValue(f.key, theirs)})
			}
		}
		form.Races = nil
		if form.raceKey != "" {
			form.Races = strings.Split(form.raceKey, ",")
		}
	}
	v.Form = form
	v.Error = "Someone else saved this patient's demographics while you were editing, so your changes were not saved yet. " +
		"The form below has your changes merged with theirs: check it and save again."
	a.demographicsPage(w, r, u, v, http.StatusConflict)
}

// demoValue is a field's value as the conflict list shows it.
func (a *App) demoValue(key, v string) string {
	switch key {
	case "gender":
		return sexLabel(v)
	case "race":
		var out []string
		for _, x := range races {
			if slices.Contains(strings.Split(v, ","), x.Code) {
				out = append(out, x.Display)
			}
		}
		v = strings.Join(out, ", ")
	case "ethnicity":
		for _, x := range ethnicities {
			if x.Code == v {
				v = x.Display
			}
		}
	case "language":
		for _, l := range languages {
			if l.Code == v {
				v = l.Display
			}
		}
	}
	if v == "" {
		return "(removed)"
	}
	return v
}

// upperIfCode upper-cases a two-letter state code ("ma" → "MA") and
// leaves anything else (a state on file written out) as typed.
func upperIfCode(s string) string {
	if len(s) == 2 {
		return strings.ToUpper(s)
	}
	return s
}

// usStates are the USPS codes of the states, DC and the territories, by
// name in lower case: Synthea and other sources write the name, the form
// shows the code.
var usStates = map[string]string{
	"alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO", "connecticut": "CT",
	"delaware": "DE", "district of columbia": "DC", "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID", "illinois": "IL",
	"indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD",
	"massachusetts": "MA", "michigan": "MI", "minnesota": "MN", "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE",
	"nevada": "NV", "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY", "north carolina": "NC",
	"north dakota": "ND", "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI",
	"south carolina": "SC", "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT", "vermont": "VT", "virginia": "VA",
	"washington": "WA", "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY", "puerto rico": "PR", "guam": "GU",
	"american samoa": "AS", "northern mariana islands": "MP", "u.s. virgin islands": "VI", "virgin islands": "VI",
}
