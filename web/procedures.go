package web

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Procedures and surgical history (US Core us-core-procedure): a
// Procedure coded in SNOMED CT with its status and when it was done
// (a date, or only a year or month for history the patient recalls).

// procedureKind is one entry of the short catalog on the form: SNOMED CT
// concepts of common operations (check).
type procedureKind struct{ Key, Code, Text string }

var procedureCatalog = []procedureKind{
	{"appendectomy", "80146002", "Appendectomy"},
	{"cholecystectomy", "38102005", "Cholecystectomy"},
	{"tonsillectomy", "173422009", "Tonsillectomy"},
	{"cesarean", "11466000", "Cesarean section"},
	{"hysterectomy", "236886002", "Hysterectomy"},
	{"knee", "609588000", "Total knee replacement"},
	{"hip", "52734007", "Total hip replacement"},
	{"cabg", "232717009", "Coronary artery bypass grafting"},
	{"colonoscopy", "73761001", "Colonoscopy"},
}

// procedureCategories: SNOMED CT, the R4 example value set
// procedure-category.
var procedureCategories = []option{
	{"387713003", "Surgical procedure"}, {"103693007", "Diagnostic procedure"}, {"277132007", "Therapeutic procedure"},
}

var procedureStatuses = []option{{"completed", "Completed"}, {"in-progress", "In progress"}, {"not-done", "Not done"}}

// partialDate: a year, a year and month, or a date (FHIR dateTime).
var partialDate = regexp.MustCompile(`^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$`)

type procRow struct {
	Date, Text, Code, Category, Status, StatusText, Reason string
}

type procForm struct {
	Catalog, Code, Text, Date, Status, Category, Reason string
}

type proceduresView struct {
	Rows                 []procRow
	Form                 procForm
	Errors               map[string]string
	Error                string
	Catalog              []procedureKind
	Categories, Statuses []option
	CanAdd               bool
}

func (a *App) serveProcedures(w http.ResponseWriter, r *http.Request, u *user) {
	a.proceduresPage(w, r, u, &proceduresView{Form: procForm{Status: "completed", Category: "387713003"}}, http.StatusOK)
}

func (a *App) proceduresPage(w http.ResponseWriter, r *http.Request, u *user, v *proceduresView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	var procs *bundle
	c, err := a.loadChart(ctx, id, func() (err error) {
		procs, err = a.search(ctx, "Procedure", url.Values{"patient": {"Patient/" + id}, "_sort": {"-date"}, "_count": {"500"}})
		return err
	})
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	for _, p := range procs.Matches {
		row := procRow{Text: conceptText(get(p, "code")), Code: codeOf(get(p, "code"), systemSNOMED), Category: conceptText(get(p, "category")),
			Status: str(p, "status"), Reason: conceptText(get(p, "statusReason"))}
		if row.StatusText = optionText(procedureStatuses, row.Status); row.StatusText == "" {
			row.StatusText = row.Status
		}
		switch {
		case str(p, "performedDateTime") != "":
			row.Date = a.showDate(str(p, "performedDateTime"))
		case str(p, "performedPeriod", "start") != "":
			row.Date = a.showDate(str(p, "performedPeriod", "start"))
		default:
			row.Date = str(p, "performedString")
		}
		v.Rows = append(v.Rows, row)
	}
	v.Catalog, v.Categories, v.Statuses = procedureCatalog, procedureCategories, procedureStatuses
	v.CanAdd = u.can("Procedure", 'c')
	w.WriteHeader(status)
	a.render(w, r, u, "procedures", &page{Title: c.Banner.Name + " · Procedures", Tab: "procedures", Banner: c.Banner, Flash: flash(r)}, v)
}

func (a *App) postProcedure(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	f := r.PostForm
	t := func(k string) string { return strings.TrimSpace(f.Get(k)) }
	form := procForm{Catalog: f.Get("catalog"), Code: t("code"), Text: t("text"), Date: t("date"), Status: f.Get("status"), Category: f.Get("category"),
		Reason: t("reason")}
	errs := map[string]string{}
	code, text := form.Code, form.Text
	if i := slices.IndexFunc(procedureCatalog, func(k procedureKind) bool { return k.Key == form.Catalog }); i >= 0 {
		code, text = procedureCatalog[i].Code, procedureCatalog[i].Text
	} else if form.Catalog != "other" {
		errs["catalog"] = "Choose the procedure, or Other to give its SNOMED CT code."
	} else {
		if !snomedCode.MatchString(code) {
			errs["code"] = "A SNOMED CT concept id is 6 to 18 digits, e.g. 80146002."
		}
		if text == "" {
			errs["text"] = "Name the procedure."
		} else if len(text) > 200 {
			errs["text"] = "The name is limited to 200 characters."
		}
	}
	if optionText(procedureStatuses, form.Status) == "" {
		errs["status"] = "Choose the status."
	}
	if form.Category != "" && optionText(procedureCategories, form.Category) == "" {
		errs["category"] = "Choose a category from the list."
	}
	switch {
	case form.Date == "" && (form.Status == "completed" || form.Status == "in-progress"):
		// US Core us-core-7: performed[x] for completed and in-progress.
		errs["date"] = "Give when it was done: a date, or only the year (2015) or the month (2015-06)."
	case form.Date != "" && !partialDate.MatchString(form.Date):
		errs["date"] = "Give a date (2015-06-30), a month (2015-06) or a year (2015)."
	case form.Date != "":
		if d, ok := fhirTime(form.Date); !ok || d.After(a.now()) {
			errs["date"] = "The date cannot be in the future."
		}
	}
	if form.Status == "not-done" && form.Reason == "" {
		errs["reason"] = "Give the reason it was not done."
	} else if len(form.Reason) > 200 {
		errs["reason"] = "The reason is limited to 200 characters."
	}
	if len(errs) > 0 {
		a.proceduresPage(w, r, u, &proceduresView{Form: form, Errors: errs, Error: "The procedure was not recorded: correct the fields marked below."}, http.StatusBadRequest)
		return
	}
	p := resource{
		"resourceType": "Procedure",
		"meta":         map[string]any{"profile": []any{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-procedure"}},
		"status":       form.Status,
		"code":         map[string]any{"coding": []any{map[string]any{"system": systemSNOMED, "code": code, "display": text}}, "text": text},
		"subject":      map[string]any{"reference": "Patient/" + id},
	}
	if form.Date != "" {
		p["performedDateTime"] = form.Date
	}
	if form.Category != "" {
		p["category"] = map[string]any{"coding": []any{map[string]any{"system": systemSNOMED, "code": form.Category,
			"display": optionText(procedureCategories, form.Category)}}, "text": optionText(procedureCategories, form.Category)}
	}
	if form.Status == "not-done" {
		p["statusReason"] = map[string]any{"text": form.Reason}
	}
	if u.FHIRUser != "" {
		p["recorder"] = map[string]any{"reference": u.FHIRUser}
	}
	if _, err := a.create(ctx, p); err != nil {
		a.proceduresPage(w, r, u, &proceduresView{Form: form, Error: a.userMessage(err)}, a.status(err))
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/procedures?saved=procedure", http.StatusSeeOther)
}
