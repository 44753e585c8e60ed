package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/search"
)

// The chart: the banner on every chart page, and the summary.

// banner is the patient banner: who the patient is and what must never
// be missed (allergies, alerts).
type banner struct {
	ID, Name, Age, Sex, BirthDate, MRN, PCP string
	Deceased                                string
	Allergies                               []allergyRow // active ones
	Alerts                                  []string     // active Flags
}

// chart is what every chart page reads: the patient with the primary
// care provider, the active allergies and the alerts.
type chart struct {
	Banner    *banner
	Patient   resource
	Allergies []allergyRow // all, active first
}

// loadChart reads the patient's banner data and runs more alongside it
// (each a FHIR search of its own, in parallel).
func (a *App) loadChart(ctx context.Context, id string, more ...func() error) (*chart, error) {
	if !search.ValidID(id) {
		return nil, errNotFound
	}
	c := &chart{}
	var pat, allergies, flags *bundle
	tasks := []func() error{
		func() (err error) {
			pat, err = a.search(ctx, "Patient", url.Values{"_id": {id}, "_include": {"Patient:general-practitioner"}})
			return err
		},
		func() (err error) {
			allergies, err = a.search(ctx, "AllergyIntolerance", url.Values{"patient": {"Patient/" + id}, "_count": {"200"}})
			return err
		},
		func() (err error) {
			flags, err = a.search(ctx, "Flag", url.Values{"patient": {"Patient/" + id}, "status": {"active"}, "_count": {"20"}})
			if isForbidden(err) {
				flags, err = &bundle{}, nil
			}
			return err
		},
	}
	if err := parallel(append(tasks, more...)...); err != nil {
		return nil, err
	}
	if len(pat.Matches) == 0 {
		return nil, errNotFound
	}
	p := pat.Matches[0]
	c.Patient = p
	now := a.now().In(a.loc)
	b := &banner{ID: id, Name: humanName(p), Sex: sexLabel(str(p, "gender")), BirthDate: str(p, "birthDate"),
		Age: age(str(p, "birthDate"), now), MRN: mrn(p)}
	if d := str(p, "deceasedDateTime"); d != "" {
		b.Deceased = "Deceased " + a.showDate(d)
		b.Age = ""
	} else if dec, ok := get(p, "deceasedBoolean").(bool); ok && dec {
		b.Deceased = "Deceased"
		b.Age = ""
	}
	var pcps []string
	for _, inc := range pat.Included {
		switch str(inc, "resourceType") {
		case "Practitioner":
			pcps = append(pcps, practitionerName(inc))
		case "Organization":
			pcps = append(pcps, str(inc, "name"))
		}
	}
	b.PCP = strings.Join(pcps, "; ")
	for _, al := range allergies.Matches {
		row := a.allergyRow(al)
		c.Allergies = append(c.Allergies, row)
		if row.Active {
			b.Allergies = append(b.Allergies, row)
		}
	}
	slices.SortStableFunc(c.Allergies, func(x, y allergyRow) int {
		if x.Active != y.Active {
			if x.Active {
				return -1
			}
			return 1
		}
		return strings.Compare(y.Recorded, x.Recorded)
	})
	for _, f := range flags.Matches {
		b.Alerts = append(b.Alerts, conceptText(get(f, "code")))
	}
	c.Banner = b
	return c, nil
}

// parallel runs fns at once and returns the first error.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// can reports whether u's role may use interaction l on typ (the role
// table of package access); screens hide what the role cannot do, and
// the store refuses it anyway.
func (u *user) can(typ string, l byte) bool { return access.RoleAllows(u.Role, typ, l) }

// Summary.

type summaryView struct {
	Problems     []problemRow
	Medications  []medRow
	Immunization []immRow
	Vitals       []vitalLatest
	Labs         []labRow
	Appointments []apptRow
	Smoking      smokingView
}

type medRow struct{ Name, Dosage, Authored, Status string }

type immRow struct{ Vaccine, Date, Status string }

func (a *App) serveSummary(w http.ResponseWriter, r *http.Request, u *user) {
	a.summaryPage(w, r, u, "", http.StatusOK)
}

// summaryPage renders the summary; smokingErr is the smoking status
// form's error.
func (a *App) summaryPage(w http.ResponseWriter, r *http.Request, u *user, smokingErr string, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	pid := "Patient/" + id
	var conds, meds, imms, vitals, labs, appts, smoking *bundle
	c, err := a.loadChart(ctx, id,
		func() (err error) {
			conds, err = a.search(ctx, "Condition", url.Values{"patient": {pid}, "clinical-status": {"active,recurrence,relapse"}, "_count": {"100"}})
			return err
		},
		func() (err error) {
			meds, err = a.search(ctx, "MedicationRequest", url.Values{"patient": {pid}, "status": {"active,on-hold"}, "_count": {"100"}, "_sort": {"-authoredon"}})
			return err
		},
		func() (err error) {
			imms, err = a.search(ctx, "Immunization", url.Values{"patient": {pid}, "_sort": {"-date"}, "_count": {"12"}})
			return err
		},
		func() (err error) {
			vitals, err = a.search(ctx, "Observation", url.Values{"patient": {pid}, "category": {"vital-signs"}, "_sort": {"-date"}, "_count": {"60"}})
			return err
		},
		func() (err error) {
			labs, err = a.search(ctx, "Observation", url.Values{"patient": {pid}, "category": {"laboratory"}, "_sort": {"-date"}, "_count": {"60"}})
			return err
		},
		func() (err error) {
			smoking, err = a.search(ctx, "Observation", url.Values{"patient": {pid}, "code": {systemLOINC + "|" + loincSmoking}, "_sort": {"-date"}, "_count": {"1"}})
			return err
		},
		func() (err error) {
			appts, err = a.search(ctx, "Appointment", url.Values{"patient": {pid}, "date": {"ge" + a.now().UTC().Format("2006-01-02T15:04:05Z")},
				"_sort": {"date"}, "_count": {"5"}, "_include": {"Appointment:actor"}})
			if isForbidden(err) {
				appts, err = &bundle{}, nil
			}
			return err
		},
	)
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	a.noteRecent(ctx, u, id)
	v := &summaryView{}
	for _, cd := range conds.Matches {
		v.Problems = append(v.Problems, a.problemRow(cd))
	}
	sortProblems(v.Problems)
	for _, m := range meds.Matches {
		v.Medications = append(v.Medications, medRow{Name: conceptText(get(m, "medicationCodeableConcept")) + refDisplay(get(m, "medicationReference")),
			Dosage: dosageText(m), Authored: a.showDate(str(m, "authoredOn")), Status: str(m, "status")})
	}
	for _, im := range imms.Matches {
		v.Immunization = append(v.Immunization, immRow{Vaccine: conceptText(get(im, "vaccineCode")),
			Date: a.showDate(str(im, "occurrenceDateTime")), Status: str(im, "status")})
	}
	v.Vitals = a.latestVitals(vitals.Matches)
	v.Labs = a.recentLabs(labs.Matches, 20)
	v.Appointments = a.apptRows(appts.Matches, appts.Included)
	v.Smoking = a.smokingOf(smoking.Matches, u)
	v.Smoking.Error = smokingErr
	w.WriteHeader(status)
	a.render(w, r, u, "summary", &page{Title: c.Banner.Name + " · Summary", Tab: "summary", Banner: c.Banner, Flash: flash(r)}, v)
}

func refDisplay(ref any) string { return str(ref, "display") }

// dosageText is the sig of a MedicationRequest: its text, else what can
// be read from the structured dose.
func dosageText(m resource) string {
	d := obj(m, "dosageInstruction", "0")
	if d == nil {
		return ""
	}
	if t := str(d, "text"); t != "" {
		return t
	}
	var parts []string
	if q := obj(d, "doseAndRate", "0", "doseQuantity"); q != nil {
		if v, ok := num(q, "value"); ok {
			parts = append(parts, formatNumber(v, 3)+" "+str(q, "unit"))
		}
	}
	if rt := conceptText(get(d, "route")); rt != "" {
		parts = append(parts, rt)
	}
	if t := conceptText(get(d, "timing", "code")); t != "" {
		parts = append(parts, t)
	}
	if prn, _ := get(d, "asNeededBoolean").(bool); prn {
		parts = append(parts, "as needed")
	}
	return strings.Join(parts, ", ")
}

type apptRow struct {
	Start, End, Status, Description, With, PatientID, Patient string
}

func (a *App) apptRows(appts, included []resource) []apptRow {
	names := map[string]string{}
	for _, inc := range included {
		switch str(inc, "resourceType") {
		case "Practitioner":
			names["Practitioner/"+str(inc, "id")] = practitionerName(inc)
		case "Patient":
			names["Patient/"+str(inc, "id")] = humanName(inc)
		case "Location", "HealthcareService":
			names[str(inc, "resourceType")+"/"+str(inc, "id")] = str(inc, "name")
		}
	}
	var out []apptRow
	for _, ap := range appts {
		row := apptRow{Start: a.showDateTime(str(ap, "start")), End: a.showDateTime(str(ap, "end")), Status: str(ap, "status"),
			Description: str(ap, "description")}
		if row.Description == "" {
			row.Description = conceptText(get(ap, "serviceType", "0"))
		}
		if row.Description == "" {
			row.Description = conceptText(get(ap, "appointmentType"))
		}
		var with []string
		for _, pt := range list(ap, "participant") {
			ref := str(pt, "actor", "reference")
			name := names[ref]
			if name == "" {
				name = str(pt, "actor", "display")
			}
			if strings.HasPrefix(ref, "Patient/") {
				row.PatientID, row.Patient = strings.TrimPrefix(ref, "Patient/"), name
				continue
			}
			if name != "" {
				with = append(with, name)
			}
		}
		row.With = strings.Join(with, ", ")
		out = append(out, row)
	}
	return out
}
