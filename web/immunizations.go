package web

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Immunizations (US Core us-core-immunization): the list, newest first,
// and a form that records one given here, one reported from elsewhere
// (primarySource false), or one not given with the reason.

const systemCVX = "http://hl7.org/fhir/sid/cvx"

// vaccine is one entry of the vaccine list offered on the form.
type vaccine struct{ Code, Display string }

// vaccines are common vaccines by their CVX code (CDC, "IIS: HL7
// Standard Code Set Mapping CVX", https://www2.cdc.gov/vaccines/iis/iisstandards/vaccines.asp?rpt=cvx),
// with the CDC's short descriptions; the same codes the synthetic
// population (synth/codes.go) and the Synthea demo patients use. Any
// other CVX code may be typed in.
var vaccines = []vaccine{
	{"140", "Influenza, seasonal, injectable, preservative free"},
	{"150", "Influenza, injectable, quadrivalent, preservative free"},
	{"208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose"},
	{"207", "COVID-19, mRNA, LNP-S, PF, 100 mcg/0.5 mL dose"},
	{"115", "Tdap"},
	{"113", "Td (adult) preservative free"},
	{"20", "DTaP"},
	{"10", "IPV"},
	{"03", "MMR"},
	{"21", "varicella"},
	{"08", "Hep B, adolescent or pediatric"},
	{"43", "Hep B, adult"},
	{"83", "Hep A, ped/adol, 2 dose"},
	{"52", "Hep A, adult"},
	{"49", "Hib (PRP-OMP)"},
	{"116", "rotavirus, pentavalent"},
	{"133", "Pneumococcal conjugate PCV 13"},
	{"216", "Pneumococcal conjugate PCV20"},
	{"33", "pneumococcal polysaccharide PPV23"},
	{"165", "HPV9"},
	{"114", "meningococcal MCV4P"},
	{"187", "zoster recombinant"},
}

// cvxCode: CVX codes are 1 to 3 digits.
var cvxCode = regexp.MustCompile(`^[0-9]{1,3}$`)

// option is a code with its display, for a select.
type option struct{ Code, Display string }

// notGivenReasons are the R4 immunization status reasons
// (v3-ActReason, ValueSet immunization-status-reason).
var notGivenReasons = []option{
	{"IMMUNE", "Immunity"}, {"MEDPREC", "Medical precaution"}, {"OSTOCK", "Product out of stock"}, {"PATOBJ", "Patient objection"},
}

// immSites and immRoutes: v3-ActSite and v3-RouteOfAdministration, the
// codes of the R4 example value sets immunization-site and
// immunization-route.
var immSites = []option{
	{"LA", "Left arm"}, {"RA", "Right arm"}, {"LD", "Left deltoid"}, {"RD", "Right deltoid"}, {"LT", "Left thigh"}, {"RT", "Right thigh"},
}

var immRoutes = []option{
	{"IM", "Injection, intramuscular"}, {"SQ", "Injection, subcutaneous"}, {"IDINJ", "Injection, intradermal"},
	{"PO", "Swallow, oral"}, {"NASINHLC", "Inhalation, nasal"},
}

func optionText(opts []option, code string) string {
	for _, o := range opts {
		if o.Code == code {
			return o.Display
		}
	}
	return ""
}

type immListRow struct {
	Date, Vaccine, Code, Status, Lot, Site, Route, Source, Reason string
	NotDone                                                       bool
}

type immForm struct {
	Vaccine, OtherCode, OtherText, Date, Given, Lot, Site, Route, Reason string
}

type immunizationsView struct {
	Rows                   []immListRow
	Form                   immForm
	Errors                 map[string]string
	Error                  string
	Vaccines               []vaccine
	Reasons, Sites, Routes []option
	Givens                 []option
	CanAdd                 bool
	Today                  string
}

func (a *App) serveImmunizations(w http.ResponseWriter, r *http.Request, u *user) {
	a.immunizationsPage(w, r, u, &immunizationsView{Form: immForm{Given: "here", Date: a.now().In(a.loc).Format(dateFmt)}}, http.StatusOK)
}

func (a *App) immunizationsPage(w http.ResponseWriter, r *http.Request, u *user, v *immunizationsView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	var imms *bundle
	c, err := a.loadChart(ctx, id, func() (err error) {
		imms, err = a.search(ctx, "Immunization", url.Values{"patient": {"Patient/" + id}, "_sort": {"-date"}, "_count": {"500"}})
		return err
	})
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	for _, im := range imms.Matches {
		row := immListRow{Date: a.showDate(str(im, "occurrenceDateTime")), Vaccine: conceptText(get(im, "vaccineCode")),
			Code: codeOf(get(im, "vaccineCode"), systemCVX), Status: str(im, "status"), Lot: str(im, "lotNumber"),
			Site: conceptText(get(im, "site")), Route: conceptText(get(im, "route")), Reason: conceptText(get(im, "statusReason"))}
		if row.Date == "" {
			row.Date = str(im, "occurrenceString")
		}
		row.NotDone = row.Status == "not-done"
		switch primary, ok := get(im, "primarySource").(bool); {
		case row.NotDone:
		case ok && primary:
			row.Source = "Given here"
		case ok:
			row.Source = "Reported"
			if t := conceptText(get(im, "reportOrigin")); t != "" {
				row.Source += " (" + t + ")"
			}
		}
		v.Rows = append(v.Rows, row)
	}
	v.Vaccines, v.Reasons, v.Sites, v.Routes = vaccines, notGivenReasons, immSites, immRoutes
	v.Givens = []option{{"here", "Given here"}, {"reported", "Given elsewhere (reported)"}, {"not-done", "Not given"}}
	v.CanAdd = u.can("Immunization", 'c')
	v.Today = a.now().In(a.loc).Format(dateFmt)
	w.WriteHeader(status)
	a.render(w, r, u, "immunizations", &page{Title: c.Banner.Name + " · Immunizations", Tab: "immunizations", Banner: c.Banner, Flash: flash(r)}, v)
}

func (a *App) postImmunization(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	f := r.PostForm
	t := func(k string) string { return strings.TrimSpace(f.Get(k)) }
	form := immForm{Vaccine: f.Get("vaccine"), OtherCode: t("other_code"), OtherText: t("other_text"), Date: t("date"), Given: f.Get("given"),
		Lot: t("lot"), Site: f.Get("site"), Route: f.Get("route"), Reason: f.Get("reason")}
	errs := map[string]string{}
	var code, display string
	if form.Vaccine == "other" {
		code, display = form.OtherCode, form.OtherText
		switch {
		case !cvxCode.MatchString(code):
			errs["other_code"] = "A CVX code is 1 to 3 digits, e.g. 88."
		case display == "":
			errs["other_text"] = "Name the vaccine."
		case len(display) > 200:
			errs["other_text"] = "The name is limited to 200 characters."
		}
	} else if i := slices.IndexFunc(vaccines, func(x vaccine) bool { return x.Code == form.Vaccine }); i >= 0 {
		code, display = vaccines[i].Code, vaccines[i].Display
	} else {
		errs["vaccine"] = "Choose the vaccine."
	}
	if d, err := time.ParseInLocation(dateFmt, form.Date, a.loc); err != nil {
		errs["date"] = "The date must be a date such as 2024-10-01."
	} else if d.After(a.now()) {
		errs["date"] = "The date cannot be in the future."
	}
	if !slices.Contains([]string{"here", "reported", "not-done"}, form.Given) {
		errs["given"] = "Say whether it was given here, reported, or not given."
	}
	if form.Given == "not-done" && optionText(notGivenReasons, form.Reason) == "" {
		errs["reason"] = "Give the reason it was not given."
	}
	if form.Given != "not-done" {
		if len(form.Lot) > 40 {
			errs["lot"] = "The lot number is limited to 40 characters."
		}
		if form.Site != "" && optionText(immSites, form.Site) == "" {
			errs["site"] = "Choose a site from the list."
		}
		if form.Route != "" && optionText(immRoutes, form.Route) == "" {
			errs["route"] = "Choose a route from the list."
		}
	}
	if len(errs) > 0 {
		a.immunizationsPage(w, r, u, &immunizationsView{Form: form, Errors: errs, Error: "The immunization was not recorded: correct the fields marked below."}, http.StatusBadRequest)
		return
	}
	im := resource{
		"resourceType":       "Immunization",
		"meta":               map[string]any{"profile": []any{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-immunization"}},
		"status":             "completed",
		"vaccineCode":        map[string]any{"coding": []any{map[string]any{"system": systemCVX, "code": code, "display": display}}, "text": display},
		"patient":            map[string]any{"reference": "Patient/" + id},
		"occurrenceDateTime": form.Date,
		"recorded":           a.now().UTC().Format(time.RFC3339),
		"primarySource":      form.Given == "here",
	}
	switch form.Given {
	case "not-done":
		im["status"] = "not-done"
		im["statusReason"] = map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
			"code": form.Reason, "display": optionText(notGivenReasons, form.Reason)}}, "text": optionText(notGivenReasons, form.Reason)}
	case "reported":
		im["reportOrigin"] = map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/immunization-origin",
			"code": "provider", "display": "Other Provider"}}, "text": "Other provider"}
	}
	if form.Given != "not-done" {
		if form.Lot != "" {
			im["lotNumber"] = form.Lot
		}
		if form.Site != "" {
			im["site"] = map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActSite",
				"code": form.Site, "display": optionText(immSites, form.Site)}}, "text": optionText(immSites, form.Site)}
		}
		if form.Route != "" {
			im["route"] = map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
				"code": form.Route, "display": optionText(immRoutes, form.Route)}}, "text": optionText(immRoutes, form.Route)}
		}
	}
	if form.Given == "here" && u.FHIRUser != "" {
		im["performer"] = []any{map[string]any{"actor": map[string]any{"reference": u.FHIRUser},
			"function": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0443", "code": "AP", "display": "Administering Provider"}}}}}
	}
	if _, err := a.create(ctx, im); err != nil {
		a.immunizationsPage(w, r, u, &immunizationsView{Form: form, Error: a.userMessage(err)}, a.status(err))
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/immunizations?saved=immunization", http.StatusSeeOther)
}
