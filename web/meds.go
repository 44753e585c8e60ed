package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale/search"
)

// Medications: the patient's prescriptions (MedicationRequest, US Core
// us-core-medicationrequest), prescribing with the safety check of
// medcheck.go, discontinuing and renewing
// (https://hl7.org/fhir/R4/medicationrequest.html).

// routes are the routes of administration offered, SNOMED CT (the
// FHIR "SNOMED CT Route Codes" value set).
var routes = []struct{ Code, Display string }{
	{"26643006", "Oral"}, {"37839007", "Sublingual"}, {"6064005", "Topical"}, {"45890007", "Transdermal"},
	{"447694001", "Inhalation (respiratory tract)"}, {"46713006", "Nasal"}, {"54485002", "Ophthalmic"},
	{"34206005", "Subcutaneous"}, {"78421000", "Intramuscular"}, {"47625008", "Intravenous"}, {"37161004", "Rectal"}, {"16857009", "Vaginal"},
}

// frequencies are the dosing frequencies offered: the FHIR timing
// abbreviation (v3 GTSAbbreviation) and its Timing.repeat.
var frequencies = []struct {
	Code, Text string
	Freq       int
	Period     float64
	Unit       string
}{
	{"QD", "once daily", 1, 1, "d"}, {"BID", "twice daily", 2, 1, "d"}, {"TID", "three times daily", 3, 1, "d"},
	{"QID", "four times daily", 4, 1, "d"}, {"Q4H", "every 4 hours", 1, 4, "h"}, {"Q6H", "every 6 hours", 1, 6, "h"},
	{"Q8H", "every 8 hours", 1, 8, "h"}, {"BED", "at bedtime", 1, 1, "d"}, {"QOD", "every other day", 1, 2, "d"}, {"WK", "weekly", 1, 1, "wk"},
}

// doseUnits are the dose and quantity units offered; the UCUM code when
// the unit is one.
var doseUnits = []struct{ Unit, UCUM string }{
	{"mg", "mg"}, {"g", "g"}, {"mcg", "ug"}, {"mL", "mL"}, {"unit", "[iU]"}, {"tablet", ""}, {"capsule", ""},
	{"puff", ""}, {"drop", ""}, {"patch", ""}, {"application", ""},
}

var rxcuiCode = regexp.MustCompile(`^[1-9][0-9]{0,8}$`)

type medListRow struct {
	ID, Version, Name, RxCUI, Sig, Quantity, Pharmacy, Authored, Prescriber, Status, StatusReason, Ended string
	Refills                                                                                              string
	Active                                                                                               bool
	Issues                                                                                               int
}

func (a *App) medListRow(m resource, names map[string]string) medListRow {
	row := medListRow{ID: str(m, "id"), Version: str(m, "meta", "versionId"), Name: conceptText(get(m, "medicationCodeableConcept")),
		RxCUI: codeOf(get(m, "medicationCodeableConcept"), systemRxNorm), Sig: dosageText(m), Authored: a.showDate(str(m, "authoredOn")),
		Status: str(m, "status"), StatusReason: conceptText(get(m, "statusReason")), Issues: len(list(m, "detectedIssue"))}
	if row.Name == "" {
		row.Name = refDisplay(get(m, "medicationReference"))
	}
	if q := obj(m, "dispenseRequest", "quantity"); q != nil {
		if v, ok := num(q, "value"); ok {
			row.Quantity = formatNumber(v, 2) + " " + str(q, "unit")
		}
	}
	if n, ok := num(m, "dispenseRequest", "numberOfRepeatsAllowed"); ok {
		row.Refills = formatNumber(n, 0)
	}
	perf := get(m, "dispenseRequest", "performer")
	row.Pharmacy = names[str(perf, "reference")]
	if row.Pharmacy == "" {
		row.Pharmacy = str(perf, "display")
	}
	row.Prescriber = names[str(m, "requester", "reference")]
	if row.Prescriber == "" {
		row.Prescriber = str(m, "requester", "display")
	}
	switch row.Status {
	case "active", "on-hold", "draft":
		row.Active = true
	}
	return row
}

type medForm struct {
	RxCUI, Text, Dose, DoseUnit, Route, Frequency, PRN, Quantity, QuantityUnit, Refills, Days, Pharmacy, PharmacyText, Note string
	Renews                                                                                                                  string
}

type pharmacyOption struct{ Ref, Name string }

type medsView struct {
	Active, Stopped []medListRow
	Form            medForm
	Errors          map[string]string
	Error           string
	Warnings        []medWarning
	WarningsKey     string
	Unknown         bool // the check knows none of the drug's ingredients
	CanAdd, CanEdit bool
	Open            bool
	Pharmacies      []pharmacyOption
	Routes          any
	Frequencies     any
	Units           any
	StopReasons     []string
}

func (a *App) serveMeds(w http.ResponseWriter, r *http.Request, u *user) {
	v := &medsView{Form: medForm{DoseUnit: "mg", Route: "26643006", Frequency: "QD", QuantityUnit: "tablet", Refills: "0"}}
	if rid := r.URL.Query().Get("renew"); rid != "" && search.ValidID(rid) {
		ctx, cancel := deadline(r.Context())
		old, _, err := a.read(ctx, "MedicationRequest", rid)
		cancel()
		if err != nil || refID(get(old, "subject"), "Patient") != r.PathValue("id") {
			a.errorPage(w, r, u, http.StatusNotFound, "Not found, or you do not have access to it.")
			return
		}
		v.Form = formFromRequest(old)
		v.Form.Renews = rid
		v.Open = true
	}
	a.medsPage(w, r, u, v, http.StatusOK)
}

// formFromRequest fills the prescribing form from an existing
// prescription, for a renewal.
func formFromRequest(m resource) medForm {
	f := medForm{RxCUI: codeOf(get(m, "medicationCodeableConcept"), systemRxNorm), Text: conceptText(get(m, "medicationCodeableConcept")),
		Refills: "0", DoseUnit: "mg", QuantityUnit: "tablet", Route: "26643006", Frequency: "QD"}
	d := obj(m, "dosageInstruction", "0")
	if q := obj(d, "doseAndRate", "0", "doseQuantity"); q != nil {
		if v, ok := num(q, "value"); ok {
			f.Dose = formatNumber(v, 3)
		}
		f.DoseUnit = str(q, "unit")
	}
	if c := codeOf(get(d, "route"), systemSNOMED); c != "" {
		f.Route = c
	}
	if c := codeOf(get(d, "timing", "code"), ""); c != "" {
		f.Frequency = c
	}
	if prn, _ := get(d, "asNeededBoolean").(bool); prn {
		f.PRN = "on"
	}
	if q := obj(m, "dispenseRequest", "quantity"); q != nil {
		if v, ok := num(q, "value"); ok {
			f.Quantity = formatNumber(v, 2)
		}
		f.QuantityUnit = str(q, "unit")
	}
	if n, ok := num(m, "dispenseRequest", "numberOfRepeatsAllowed"); ok {
		f.Refills = formatNumber(n, 0)
	}
	if n, ok := num(m, "dispenseRequest", "expectedSupplyDuration", "value"); ok {
		f.Days = formatNumber(n, 0)
	}
	perf := get(m, "dispenseRequest", "performer")
	if ref := str(perf, "reference"); strings.HasPrefix(ref, "Organization/") {
		f.Pharmacy = ref
	} else {
		f.PharmacyText = str(perf, "display")
	}
	return f
}

// medsData reads the patient's prescriptions with the names of their
// prescribers and pharmacies.
func (a *App) medsData(ctx context.Context, id string, more ...func() error) (*chart, *bundle, error) {
	var meds *bundle
	c, err := a.loadChart(ctx, id, append(more, func() (err error) {
		meds, err = a.search(ctx, "MedicationRequest", url.Values{"patient": {"Patient/" + id}, "_sort": {"-authoredon"}, "_count": {"500"},
			"_include": {"MedicationRequest:requester", "MedicationRequest:intended-performer"}})
		return err
	})...)
	return c, meds, err
}

func includedNames(included []resource) map[string]string {
	names := map[string]string{}
	for _, inc := range included {
		ref := str(inc, "resourceType") + "/" + str(inc, "id")
		if str(inc, "resourceType") == "Practitioner" {
			names[ref] = practitionerName(inc)
		} else {
			names[ref] = str(inc, "name")
		}
	}
	return names
}

func (a *App) medsPage(w http.ResponseWriter, r *http.Request, u *user, v *medsView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	var pharm *bundle
	c, meds, err := a.medsData(ctx, id, func() (err error) {
		pharm, err = a.search(ctx, "Organization", url.Values{"name:contains": {"pharm"}, "_count": {"50"}, "_sort": {"name"}})
		return err
	})
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	names := includedNames(meds.Included)
	for _, m := range meds.Matches {
		row := a.medListRow(m, names)
		if row.Active {
			v.Active = append(v.Active, row)
		} else {
			v.Stopped = append(v.Stopped, row)
		}
	}
	for _, p := range pharm.Matches {
		v.Pharmacies = append(v.Pharmacies, pharmacyOption{Ref: "Organization/" + str(p, "id"), Name: str(p, "name")})
	}
	v.CanAdd, v.CanEdit = u.can("MedicationRequest", 'c'), u.can("MedicationRequest", 'u')
	v.Routes, v.Frequencies, v.Units, v.StopReasons = routes, frequencies, doseUnits, stopReasons
	if v.Errors != nil || v.Error != "" || v.Warnings != nil {
		v.Open = true
	}
	w.WriteHeader(status)
	a.render(w, r, u, "medications", &page{Title: c.Banner.Name + " · Medications", Tab: "medications", Banner: c.Banner, Flash: flash(r)}, v)
}

// postMed prescribes: it validates the form, runs the check against the
// patient's allergies and active medications, and saves only when there
// is no warning or the prescriber acknowledged exactly the warnings
// shown (with a reason for any high-severity one). The
// MedicationRequest and one DetectedIssue per acknowledged warning are
// written in one transaction; a renewal also completes the prescription
// it renews (If-Match at the version read).
func (a *App) postMed(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	f := r.PostForm
	form := medForm{RxCUI: strings.TrimSpace(f.Get("rxcui")), Text: strings.TrimSpace(f.Get("text")), Dose: strings.TrimSpace(f.Get("dose")),
		DoseUnit: f.Get("dose_unit"), Route: f.Get("route"), Frequency: f.Get("frequency"), PRN: f.Get("prn"),
		Quantity: strings.TrimSpace(f.Get("quantity")), QuantityUnit: f.Get("quantity_unit"), Refills: strings.TrimSpace(f.Get("refills")),
		Days: strings.TrimSpace(f.Get("days")), Pharmacy: f.Get("pharmacy"), PharmacyText: strings.TrimSpace(f.Get("pharmacy_text")),
		Note: strings.TrimSpace(f.Get("note")), Renews: f.Get("renews")}
	errs := map[string]string{}
	if form.RxCUI != "" && !rxcuiCode.MatchString(form.RxCUI) {
		errs["rxcui"] = "An RxNorm code (RxCUI) is a number of up to 9 digits, e.g. 308182."
	}
	if form.Text == "" {
		errs["text"] = "Name the medication with its strength and form (e.g. Amoxicillin 500 MG Oral Capsule)."
	} else if len(form.Text) > 200 {
		errs["text"] = "The medication name is limited to 200 characters."
	}
	dose, err := strconv.ParseFloat(form.Dose, 64)
	if err != nil || dose <= 0 || dose > 100000 {
		errs["dose"] = "The dose must be a positive number, e.g. 500."
	}
	unit := slices.IndexFunc(doseUnits, func(x struct{ Unit, UCUM string }) bool { return x.Unit == form.DoseUnit })
	if unit < 0 {
		errs["dose"] = "Choose the unit of the dose."
	}
	route := slices.IndexFunc(routes, func(x struct{ Code, Display string }) bool { return x.Code == form.Route })
	if route < 0 {
		errs["route"] = "Choose a route."
	}
	freq := -1
	for i, x := range frequencies {
		if x.Code == form.Frequency {
			freq = i
		}
	}
	if freq < 0 {
		errs["frequency"] = "Choose how often."
	}
	qty, err := strconv.ParseFloat(form.Quantity, 64)
	if err != nil || qty <= 0 || qty > 10000 {
		errs["quantity"] = "The quantity to dispense must be a positive number, e.g. 30."
	}
	qunit := slices.IndexFunc(doseUnits, func(x struct{ Unit, UCUM string }) bool { return x.Unit == form.QuantityUnit })
	if qunit < 0 {
		errs["quantity"] = "Choose the unit of the quantity."
	}
	refills, err := strconv.Atoi(form.Refills)
	if err != nil || refills < 0 || refills > 11 {
		errs["refills"] = "Refills must be a whole number from 0 to 11."
	}
	days := 0
	if form.Days != "" {
		if days, err = strconv.Atoi(form.Days); err != nil || days < 1 || days > 365 {
			errs["days"] = "Days of supply must be a whole number from 1 to 365."
		}
	}
	if form.Pharmacy != "" && form.PharmacyText != "" {
		errs["pharmacy"] = "Choose a pharmacy from the list or type one, not both."
	} else if form.Pharmacy != "" {
		if t, pid, ok := search.ParseLocalReference(form.Pharmacy); !ok || t != "Organization" || !search.ValidID(pid) {
			errs["pharmacy"] = "Choose a pharmacy from the list."
		}
	} else if len(form.PharmacyText) > 200 {
		errs["pharmacy"] = "The pharmacy is limited to 200 characters."
	}
	if len(form.Note) > 1000 {
		errs["note"] = "The note to the pharmacist is limited to 1000 characters."
	}
	if form.Renews != "" && !search.ValidID(form.Renews) {
		form.Renews = ""
	}
	if len(errs) > 0 {
		a.medsPage(w, r, u, &medsView{Form: form, Errors: errs, Error: "The prescription was not saved: correct the fields marked below."}, http.StatusBadRequest)
		return
	}

	concept := map[string]any{"text": form.Text}
	if form.RxCUI != "" {
		concept["coding"] = []any{map[string]any{"system": systemRxNorm, "code": form.RxCUI, "display": form.Text}}
	}
	// What the check compares against: the active allergies and the
	// active prescriptions (but the one being renewed), read now.
	var allergies, meds *bundle
	var old resource
	var oldVersion string
	err = parallel(
		func() (err error) {
			allergies, err = a.search(ctx, "AllergyIntolerance", url.Values{"patient": {"Patient/" + id}, "_count": {"200"}})
			return err
		},
		func() (err error) {
			meds, err = a.search(ctx, "MedicationRequest", url.Values{"patient": {"Patient/" + id}, "status": {"active,on-hold"}, "_count": {"500"}})
			return err
		},
		func() (err error) {
			if form.Renews == "" {
				return nil
			}
			old, oldVersion, err = a.read(ctx, "MedicationRequest", form.Renews)
			if err == nil && refID(get(old, "subject"), "Patient") != id {
				err = errNotFound
			}
			return err
		},
	)
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	var active []activeMed
	for _, m := range meds.Matches {
		if str(m, "id") == form.Renews {
			continue
		}
		cc := get(m, "medicationCodeableConcept")
		active = append(active, activeMed{Ref: "MedicationRequest/" + str(m, "id"), Name: conceptText(cc), Concept: cc})
	}
	warnings := a.checkPrescription(concept, allergies.Matches, active)
	key := warningsKey(warnings)
	reason := strings.TrimSpace(f.Get("override_reason"))
	if len(warnings) > 0 {
		high := slices.ContainsFunc(warnings, func(w medWarning) bool { return w.Severity == "high" })
		msg := ""
		switch {
		case f.Get("ack") == "":
			msg = "Review the warnings below before prescribing."
		case f.Get("ack") != key:
			msg = "The warnings changed since the page was shown: review them again."
		case f.Get("override") != "on":
			msg = "Tick the box to confirm you reviewed the warnings, or change the prescription."
		case high && reason == "":
			msg = "Give the reason for prescribing despite a high-severity warning."
		case len(reason) > 500:
			msg = "The reason is limited to 500 characters."
		}
		if msg != "" {
			a.medsPage(w, r, u, &medsView{Form: form, Warnings: warnings, WarningsKey: key, Error: msg,
				Unknown: len(ingredientsOf(concept)) == 0}, http.StatusConflict)
			return
		}
	}

	now := a.now().UTC().Format(time.RFC3339)
	fr := frequencies[freq]
	timing := map[string]any{
		"repeat": map[string]any{"frequency": fr.Freq, "period": fr.Period, "periodUnit": fr.Unit},
		"code": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "code": fr.Code, "display": fr.Text}},
			"text": fr.Text},
	}
	if fr.Code == "BED" {
		timing["repeat"].(map[string]any)["when"] = []any{"HS"}
	}
	doseQ := map[string]any{"value": dose, "unit": doseUnits[unit].Unit}
	if c := doseUnits[unit].UCUM; c != "" {
		doseQ["system"], doseQ["code"] = "http://unitsofmeasure.org", c
	}
	sig := formatNumber(dose, 3) + " " + doseUnits[unit].Unit + " " + strings.ToLower(routes[route].Display) + " " + fr.Text
	if form.PRN == "on" {
		sig += " as needed"
	}
	dosage := map[string]any{
		"sequence": 1, "text": sig, "timing": timing,
		"route":       map[string]any{"coding": []any{map[string]any{"system": systemSNOMED, "code": routes[route].Code, "display": routes[route].Display}}, "text": routes[route].Display},
		"doseAndRate": []any{map[string]any{"doseQuantity": doseQ}},
	}
	if form.PRN == "on" {
		dosage["asNeededBoolean"] = true
	}
	qtyQ := map[string]any{"value": qty, "unit": doseUnits[qunit].Unit}
	if c := doseUnits[qunit].UCUM; c != "" {
		qtyQ["system"], qtyQ["code"] = "http://unitsofmeasure.org", c
	}
	dispense := map[string]any{"numberOfRepeatsAllowed": refills, "quantity": qtyQ}
	if days > 0 {
		dispense["expectedSupplyDuration"] = map[string]any{"value": days, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}
	}
	if form.Pharmacy != "" {
		dispense["performer"] = map[string]any{"reference": form.Pharmacy}
	} else if form.PharmacyText != "" {
		dispense["performer"] = map[string]any{"display": form.PharmacyText}
	}
	mrURL := "urn:uuid:" + uuid()
	mr := resource{
		"resourceType": "MedicationRequest",
		"meta":         map[string]any{"profile": []any{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest"}},
		"status":       "active",
		"intent":       "order",
		"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
			"code": "community", "display": "Community"}}}},
		"reportedBoolean":           false,
		"medicationCodeableConcept": concept,
		"subject":                   map[string]any{"reference": "Patient/" + id},
		"authoredOn":                now,
		"dosageInstruction":         []any{dosage},
		"dispenseRequest":           dispense,
	}
	if u.FHIRUser != "" {
		mr["requester"] = map[string]any{"reference": u.FHIRUser}
	} else {
		mr["requester"] = map[string]any{"display": u.Name}
	}
	if form.Note != "" {
		mr["note"] = []any{map[string]any{"text": form.Note}}
	}
	entries := []txEntry{{FullURL: mrURL, Method: "POST", Resource: mr}}
	var issues []any
	for _, wn := range warnings {
		code, display := wn.issueCode()
		iu := "urn:uuid:" + uuid()
		di := resource{
			"resourceType":       "DetectedIssue",
			"status":             "final",
			"code":               map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code, "display": display}}},
			"severity":           wn.Severity,
			"patient":            map[string]any{"reference": "Patient/" + id},
			"identifiedDateTime": now,
			"implicated":         []any{map[string]any{"reference": mrURL}, map[string]any{"reference": wn.With}},
			"detail":             wn.Text,
			"reference":          wn.Source,
			"mitigation": []any{map[string]any{
				"action": map[string]any{"text": "Prescriber reviewed the warning and prescribed" + map[bool]string{true: ": " + reason, false: ""}[reason != ""]},
				"date":   now,
			}},
		}
		if u.FHIRUser != "" {
			di["author"] = map[string]any{"reference": u.FHIRUser}
			di["mitigation"].([]any)[0].(map[string]any)["author"] = map[string]any{"reference": u.FHIRUser}
		}
		// DetectedIssue.reference is a uri: the source as text goes in
		// the detail instead.
		delete(di, "reference")
		di["detail"] = wn.Text + " Source: " + wn.Source + "."
		issues = append(issues, map[string]any{"reference": iu})
		entries = append(entries, txEntry{FullURL: iu, Method: "POST", Resource: di})
	}
	if len(issues) > 0 {
		mr["detectedIssue"] = issues
	}
	saved := "med"
	if old != nil {
		mr["priorPrescription"] = map[string]any{"reference": "MedicationRequest/" + form.Renews}
		if s := str(old, "status"); s == "active" || s == "on-hold" {
			old["status"] = "completed"
			old["statusReason"] = map[string]any{"text": "Renewed"}
			entries = append(entries, txEntry{Method: "PUT", Resource: old, IfMatch: oldVersion})
		}
		saved = "med-renewed"
	}
	if _, err := a.transact(ctx, entries); err != nil {
		a.medsPage(w, r, u, &medsView{Form: form, Error: a.userMessage(err)}, http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/medications?saved="+saved, http.StatusSeeOther)
}

// stopReasons are the reasons offered for discontinuing.
var stopReasons = []string{"Course completed", "Adverse reaction", "Not effective", "Patient request", "Changed to another medication", "Entered in error"}

// discontinueMed stops a prescription (status stopped, or
// entered-in-error for a mistake), at the version the page showed.
func (a *App) discontinueMed(w http.ResponseWriter, r *http.Request, u *user) {
	reason := r.PostForm.Get("reason")
	if !slices.Contains(stopReasons, reason) {
		a.errorPage(w, r, u, http.StatusBadRequest, "Choose why the medication is discontinued.")
		return
	}
	a.resolve(w, r, u, "MedicationRequest", "medications", "med-stopped", func(res resource, now string) error {
		if s := str(res, "status"); s != "active" && s != "on-hold" && s != "draft" {
			return errors.New("This prescription is " + s + " already.")
		}
		res["status"] = "stopped"
		if reason == "Entered in error" {
			res["status"] = "entered-in-error"
		}
		res["statusReason"] = map[string]any{"text": reason}
		return nil
	})
}
