package web

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale/search"
)

// The problem list (Condition, US Core problems-and-health-concerns:
// category problem-list-item, coded in ICD-10-CM or SNOMED CT) and
// allergies and intolerances (AllergyIntolerance, US Core
// us-core-allergyintolerance): list, add, resolve.

const (
	systemICD10  = "http://hl7.org/fhir/sid/icd-10-cm"
	systemSNOMED = "http://snomed.info/sct"
)

var (
	// ICD-10-CM: a letter, two digits (the third may be A or B), then
	// optionally a dot and 1–4 characters (ICD-10-CM official guidelines,
	// Section I.A).
	icd10Code = regexp.MustCompile(`^[A-TV-Z][0-9][0-9AB](\.[0-9A-TV-Z]{1,4})?$`)
	// SNOMED CT concept ids: 6 to 18 digits, no leading zero.
	snomedCode = regexp.MustCompile(`^[1-9][0-9]{5,17}$`)
)

type problemRow struct {
	ID, Version, Text, Code, System, Onset, Recorded, Status, Abated string
	Active                                                           bool
}

func (a *App) problemRow(c resource) problemRow {
	status := codeOf(get(c, "clinicalStatus"), "")
	row := problemRow{ID: str(c, "id"), Version: str(c, "meta", "versionId"), Text: conceptText(get(c, "code")),
		Onset: a.showDate(str(c, "onsetDateTime")), Recorded: a.showDate(str(c, "recordedDate")), Status: status,
		Abated: a.showDate(str(c, "abatementDateTime"))}
	if row.Onset == "" {
		row.Onset = a.showDate(str(c, "onsetPeriod", "start"))
	}
	for _, cd := range list(c, "code", "coding") {
		switch str(cd, "system") {
		case systemICD10:
			row.Code, row.System = str(cd, "code"), "ICD-10-CM"
		case systemSNOMED:
			if row.Code == "" {
				row.Code, row.System = str(cd, "code"), "SNOMED CT"
			}
		}
	}
	row.Active = status == "active" || status == "recurrence" || status == "relapse"
	return row
}

func sortProblems(ps []problemRow) {
	slices.SortStableFunc(ps, func(x, y problemRow) int {
		if x.Active != y.Active {
			if x.Active {
				return -1
			}
			return 1
		}
		kx, ky := x.Onset, y.Onset
		if kx == "" {
			kx = x.Recorded
		}
		if ky == "" {
			ky = y.Recorded
		}
		return strings.Compare(ky, kx)
	})
}

type problemForm struct {
	System, Code, Text, Onset string
}

type problemsView struct {
	Active, Inactive []problemRow
	Form             problemForm
	Errors           map[string]string
	Error            string
	CanAdd, CanEdit  bool
}

func (a *App) serveProblems(w http.ResponseWriter, r *http.Request, u *user) {
	a.problemsPage(w, r, u, &problemsView{Form: problemForm{System: "icd10"}}, http.StatusOK)
}

func (a *App) problemsPage(w http.ResponseWriter, r *http.Request, u *user, v *problemsView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	var conds *bundle
	c, err := a.loadChart(ctx, id, func() (err error) {
		conds, err = a.search(ctx, "Condition", url.Values{"patient": {"Patient/" + id}, "_count": {"500"}})
		return err
	})
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	var rows []problemRow
	for _, cd := range conds.Matches {
		rows = append(rows, a.problemRow(cd))
	}
	sortProblems(rows)
	for _, p := range rows {
		if p.Active {
			v.Active = append(v.Active, p)
		} else {
			v.Inactive = append(v.Inactive, p)
		}
	}
	v.CanAdd, v.CanEdit = u.can("Condition", 'c'), u.can("Condition", 'u')
	w.WriteHeader(status)
	a.render(w, r, u, "problems", &page{Title: c.Banner.Name + " · Problems", Tab: "problems", Banner: c.Banner, Flash: flash(r)}, v)
}

func (a *App) postProblem(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	f := r.PostForm
	form := problemForm{System: f.Get("system"), Code: strings.ToUpper(strings.TrimSpace(f.Get("code"))), Text: strings.TrimSpace(f.Get("text")),
		Onset: strings.TrimSpace(f.Get("onset"))}
	errs := map[string]string{}
	var system, display string
	switch form.System {
	case "icd10":
		system = systemICD10
		if !icd10Code.MatchString(form.Code) {
			errs["code"] = "An ICD-10-CM code is a letter, two digits and optionally a dot and up to 4 more characters, e.g. E11.9."
		}
	case "snomed":
		system = systemSNOMED
		if !snomedCode.MatchString(form.Code) {
			errs["code"] = "A SNOMED CT concept id is 6 to 18 digits, e.g. 44054006."
		}
	default:
		errs["system"] = "Choose ICD-10-CM or SNOMED CT."
	}
	if form.Text == "" {
		errs["text"] = "Describe the problem (e.g. Type 2 diabetes mellitus without complications)."
	} else if len(form.Text) > 500 {
		errs["text"] = "The description is limited to 500 characters."
	}
	display = form.Text
	a.checkOnset(errs, form.Onset)
	if len(errs) > 0 {
		a.problemsPage(w, r, u, &problemsView{Form: form, Errors: errs, Error: "The problem was not added: correct the fields marked below."}, http.StatusBadRequest)
		return
	}
	cond := resource{
		"resourceType": "Condition",
		"meta":         map[string]any{"profile": []any{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns"}},
		"clinicalStatus": map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active", "display": "Active"}}},
		"verificationStatus": map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed", "display": "Confirmed"}}},
		"category": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item", "display": "Problem List Item"}}}},
		"code":         map[string]any{"coding": []any{map[string]any{"system": system, "code": form.Code, "display": display}}, "text": form.Text},
		"subject":      map[string]any{"reference": "Patient/" + id},
		"recordedDate": a.now().UTC().Format(time.RFC3339),
	}
	if form.Onset != "" {
		cond["onsetDateTime"] = form.Onset
	}
	if u.FHIRUser != "" {
		cond["recorder"] = map[string]any{"reference": u.FHIRUser}
	}
	if _, err := a.create(ctx, cond); err != nil {
		a.problemsPage(w, r, u, &problemsView{Form: form, Error: a.userMessage(err)}, http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/problems?saved=problem", http.StatusSeeOther)
}

// resolveProblem sets clinicalStatus resolved and the abatement date, at
// the version the page showed (If-Match).
func (a *App) resolveProblem(w http.ResponseWriter, r *http.Request, u *user) {
	a.resolve(w, r, u, "Condition", "problems", "problem-resolved", func(res resource, now string) error {
		res["clinicalStatus"] = map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved", "display": "Resolved"}}}
		if _, ok := res["abatementDateTime"]; !ok {
			delete(res, "abatementPeriod")
			delete(res, "abatementAge")
			delete(res, "abatementRange")
			delete(res, "abatementString")
			res["abatementDateTime"] = now
		}
		return nil
	})
}

// resolve changes a record of the chart's patient with change, at the
// version the page showed (If-Match). A refusal from change (the
// change does not apply to the record as it is) is shown as a 409 page.
func (a *App) resolve(w http.ResponseWriter, r *http.Request, u *user, typ, tab, saved string, change func(resource, string) error) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id, rid := r.PathValue("id"), r.PathValue("rid")
	if !search.ValidID(id) || !search.ValidID(rid) {
		a.errorPage(w, r, u, http.StatusNotFound, "Not found, or you do not have access to it.")
		return
	}
	res, version, err := a.read(ctx, typ, rid)
	if err == nil {
		// The record must be this patient's: a form for one chart cannot
		// change another's.
		subj := "subject"
		if typ == "AllergyIntolerance" || typ == "Consent" {
			subj = "patient"
		}
		if refID(get(res, subj), "Patient") != id {
			err = errNotFound
		}
	}
	if err == nil {
		if v := r.PostForm.Get("version"); v != "" && v != version {
			err = errChanged
		}
	}
	if err == nil {
		if rerr := change(res, a.now().UTC().Format(time.RFC3339)); rerr != nil {
			a.errorPage(w, r, u, http.StatusConflict, rerr.Error())
			return
		}
		err = a.update(ctx, res, version)
	}
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/"+tab+"?saved="+saved, http.StatusSeeOther)
}

// Allergies.

type allergyRow struct {
	ID, Version, Substance, Type, Category, Criticality, Reaction, Severity, Recorded, Status string
	Active, High                                                                              bool
}

func (a *App) allergyRow(al resource) allergyRow {
	status := codeOf(get(al, "clinicalStatus"), "")
	row := allergyRow{ID: str(al, "id"), Version: str(al, "meta", "versionId"), Substance: conceptText(get(al, "code")),
		Type: str(al, "type"), Criticality: str(al, "criticality"), Recorded: a.showDate(str(al, "recordedDate")), Status: status}
	if row.Substance == "" {
		row.Substance = "(substance not stated)"
	}
	var cats []string
	for _, c := range list(al, "category") {
		if s, ok := c.(string); ok {
			cats = append(cats, s)
		}
	}
	row.Category = strings.Join(cats, ", ")
	var reactions, severities []string
	for _, re := range list(al, "reaction") {
		for _, m := range list(re, "manifestation") {
			reactions = append(reactions, conceptText(m))
		}
		if s := str(re, "severity"); s != "" {
			severities = append(severities, s)
		}
	}
	row.Reaction = strings.Join(slices.Compact(reactions), ", ")
	row.Severity = strings.Join(slices.Compact(severities), ", ")
	// An allergy without a clinical status is taken as active (it may be
	// absent only when verificationStatus is entered-in-error).
	row.Active = (status == "" || status == "active") && codeOf(get(al, "verificationStatus"), "") != "entered-in-error" &&
		codeOf(get(al, "verificationStatus"), "") != "refuted"
	row.High = row.Criticality == "high"
	return row
}

type allergyForm struct {
	Substance, Type, Category, Reaction, Severity, Criticality, Onset string
}

type allergiesView struct {
	All             []allergyRow
	Form            allergyForm
	Errors          map[string]string
	Error           string
	CanAdd, CanEdit bool
}

func (a *App) serveAllergies(w http.ResponseWriter, r *http.Request, u *user) {
	a.allergiesPage(w, r, u, &allergiesView{Form: allergyForm{Type: "allergy", Category: "medication", Criticality: "low"}}, http.StatusOK)
}

func (a *App) allergiesPage(w http.ResponseWriter, r *http.Request, u *user, v *allergiesView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	c, err := a.loadChart(ctx, r.PathValue("id"))
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	v.All = c.Allergies
	v.CanAdd, v.CanEdit = u.can("AllergyIntolerance", 'c'), u.can("AllergyIntolerance", 'u')
	w.WriteHeader(status)
	a.render(w, r, u, "allergies", &page{Title: c.Banner.Name + " · Allergies", Tab: "allergies", Banner: c.Banner, Flash: flash(r)}, v)
}

func (a *App) postAllergy(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	f := r.PostForm
	form := allergyForm{Substance: strings.TrimSpace(f.Get("substance")), Type: f.Get("type"), Category: f.Get("category"),
		Reaction: strings.TrimSpace(f.Get("reaction")), Severity: f.Get("severity"), Criticality: f.Get("criticality"), Onset: strings.TrimSpace(f.Get("onset"))}
	errs := map[string]string{}
	if form.Substance == "" {
		errs["substance"] = "Name the substance (e.g. Penicillin V, Peanut)."
	} else if len(form.Substance) > 200 {
		errs["substance"] = "The substance is limited to 200 characters."
	}
	if len(form.Reaction) > 200 {
		errs["reaction"] = "The reaction is limited to 200 characters."
	}
	if !slices.Contains([]string{"allergy", "intolerance"}, form.Type) {
		errs["type"] = "Choose allergy or intolerance."
	}
	if !slices.Contains([]string{"food", "medication", "environment", "biologic"}, form.Category) {
		errs["category"] = "Choose a category."
	}
	if !slices.Contains([]string{"low", "high", "unable-to-assess"}, form.Criticality) {
		errs["criticality"] = "Choose the criticality."
	}
	if form.Severity != "" && !slices.Contains([]string{"mild", "moderate", "severe"}, form.Severity) {
		errs["severity"] = "Choose mild, moderate or severe."
	}
	if form.Severity != "" && form.Reaction == "" {
		errs["reaction"] = "Describe the reaction the severity is about (e.g. Hives)."
	}
	a.checkOnset(errs, form.Onset)
	if len(errs) > 0 {
		a.allergiesPage(w, r, u, &allergiesView{Form: form, Errors: errs, Error: "The allergy was not recorded: correct the fields marked below."}, http.StatusBadRequest)
		return
	}
	al := resource{
		"resourceType": "AllergyIntolerance",
		"meta":         map[string]any{"profile": []any{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance"}},
		"clinicalStatus": map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active", "display": "Active"}}},
		"verificationStatus": map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "confirmed", "display": "Confirmed"}}},
		"type":         form.Type,
		"category":     []any{form.Category},
		"criticality":  form.Criticality,
		"code":         map[string]any{"text": form.Substance},
		"patient":      map[string]any{"reference": "Patient/" + id},
		"recordedDate": a.now().UTC().Format(time.RFC3339),
	}
	if form.Onset != "" {
		al["onsetDateTime"] = form.Onset
	}
	if form.Reaction != "" {
		re := map[string]any{"manifestation": []any{map[string]any{"text": form.Reaction}}}
		if form.Severity != "" {
			re["severity"] = form.Severity
		}
		al["reaction"] = []any{re}
	}
	if u.FHIRUser != "" {
		al["recorder"] = map[string]any{"reference": u.FHIRUser}
	}
	if _, err := a.create(ctx, al); err != nil {
		a.allergiesPage(w, r, u, &allergiesView{Form: form, Error: a.userMessage(err)}, http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/allergies?saved=allergy", http.StatusSeeOther)
}

func (a *App) resolveAllergy(w http.ResponseWriter, r *http.Request, u *user) {
	a.resolve(w, r, u, "AllergyIntolerance", "allergies", "allergy-resolved", func(res resource, now string) error {
		res["clinicalStatus"] = map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "resolved", "display": "Resolved"}}}
		return nil
	})
}

// checkOnset records in errs what is wrong with an onset date from a form
// (empty: none given, which is fine).
func (a *App) checkOnset(errs map[string]string, onset string) {
	if onset == "" {
		return
	}
	if t, err := time.Parse(dateFmt, onset); err != nil {
		errs["onset"] = "Onset must be a date such as 2021-03-14."
	} else if t.After(a.now()) {
		errs["onset"] = "Onset cannot be in the future."
	}
}
