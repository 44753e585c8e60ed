package web

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Orders: lab and imaging orders as ServiceRequest (US Core
// us-core-servicerequest; https://hl7.org/fhir/R4/servicerequest.html)
// with their status tracked: draft → active (signed and sent) →
// completed, or revoked (cancelled) from draft or active.

const systemCPT = "http://www.ama-assn.org/go/cpt"

// orderable is an entry of the order catalog. CPT descriptors are the
// AMA's: the labels here are our own short ones.
type orderable struct {
	Key, Category, System, Code, Text string
}

// orderCatalog is the short list offered; anything else is ordered by
// code and text. Codes: LOINC from shared/reference/clinical-knowledge.md
// (HbA1c, lipids, TSH, UACR, PSA, INR, HCV Ab) and common use for the
// panels (check); CPT for imaging from the same file (77067, 71271,
// 76706, 77080) and common use (71046, 70450, 74177: check).
var orderCatalog = []orderable{
	{"cbc", "lab", systemLOINC, "58410-2", "Complete blood count (CBC) panel"},
	{"bmp", "lab", systemLOINC, "51990-0", "Basic metabolic panel"},
	{"cmp", "lab", systemLOINC, "24323-8", "Comprehensive metabolic panel"},
	{"lipid", "lab", systemLOINC, "57698-3", "Lipid panel"},
	{"a1c", "lab", systemLOINC, "4548-4", "Hemoglobin A1c"},
	{"tsh", "lab", systemLOINC, "3016-3", "TSH"},
	{"uacr", "lab", systemLOINC, "9318-7", "Urine albumin/creatinine ratio"},
	{"psa", "lab", systemLOINC, "2857-1", "PSA"},
	{"inr", "lab", systemLOINC, "6301-6", "INR"},
	{"hcv", "lab", systemLOINC, "13955-0", "Hepatitis C antibody"},
	{"cxr", "imaging", systemCPT, "71046", "Chest X-ray, 2 views"},
	{"mammo", "imaging", systemCPT, "77067", "Screening mammogram, bilateral"},
	{"ldct", "imaging", systemCPT, "71271", "Low-dose CT chest, lung cancer screening"},
	{"aaa", "imaging", systemCPT, "76706", "Ultrasound, abdominal aorta (AAA screening)"},
	{"dxa", "imaging", systemCPT, "77080", "DXA bone density, axial"},
	{"cthead", "imaging", systemCPT, "70450", "CT head without contrast"},
	{"ctap", "imaging", systemCPT, "74177", "CT abdomen and pelvis with contrast"},
}

const systemLOINC = "http://loinc.org"

// orderCategories are the US Core ServiceRequest categories used
// (SNOMED CT).
var orderCategories = map[string][2]string{
	"lab":     {"108252007", "Laboratory procedure"},
	"imaging": {"363679005", "Imaging"},
}

var orderPriorities = []string{"routine", "urgent", "asap", "stat"}

// orderTransitions are the status changes the app offers.
var orderTransitions = map[string][]string{
	"draft":   {"active", "revoked"},
	"active":  {"completed", "revoked"},
	"on-hold": {"active", "revoked"},
}

var loincCode = regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)
var cptCode = regexp.MustCompile(`^[0-9]{4}[0-9A-Z]$`)

type orderRow struct {
	ID, Version, Text, Code, System, Category, Priority, Status, Authored, Requester, Reason, Note, When string
	Open                                                                                                 bool
	Next                                                                                                 []string
}

type orderForm struct {
	Catalog, Category, System, Code, Text, Priority, Reason, Note, When string
}

type ordersView struct {
	Open, Closed    []orderRow
	Form            orderForm
	Catalog         []orderable
	Priorities      []string
	Errors          map[string]string
	Error           string
	CanAdd, CanEdit bool
}

func (a *App) serveOrders(w http.ResponseWriter, r *http.Request, u *user) {
	a.ordersPage(w, r, u, &ordersView{Form: orderForm{Catalog: "cbc", Priority: "routine", System: "loinc", Category: "lab"}}, http.StatusOK)
}

func (a *App) ordersPage(w http.ResponseWriter, r *http.Request, u *user, v *ordersView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	var srs *bundle
	c, err := a.loadChart(ctx, id, func() (err error) {
		srs, err = a.search(ctx, "ServiceRequest", url.Values{"patient": {"Patient/" + id}, "_sort": {"-authored"}, "_count": {"200"},
			"_include": {"ServiceRequest:requester"}})
		return err
	})
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	names := includedNames(srs.Included)
	v.CanAdd, v.CanEdit = u.can("ServiceRequest", 'c'), u.can("ServiceRequest", 'u')
	for _, sr := range srs.Matches {
		row := orderRow{ID: str(sr, "id"), Version: str(sr, "meta", "versionId"), Text: conceptText(get(sr, "code")),
			Priority: str(sr, "priority"), Status: str(sr, "status"), Authored: a.showDateTime(str(sr, "authoredOn")),
			When: a.showDate(str(sr, "occurrenceDateTime"))}
		for _, cd := range list(sr, "code", "coding") {
			row.Code = str(cd, "code")
			switch str(cd, "system") {
			case systemLOINC:
				row.System = "LOINC"
			case systemCPT:
				row.System = "CPT"
			default:
				row.System = str(cd, "system")
			}
			break
		}
		for _, cat := range list(sr, "category") {
			switch {
			case coded(cat, systemSNOMED, "108252007"):
				row.Category = "Lab"
			case coded(cat, systemSNOMED, "363679005"):
				row.Category = "Imaging"
			}
		}
		if row.Priority == "" {
			row.Priority = "routine"
		}
		row.Requester = names[str(sr, "requester", "reference")]
		var reasons []string
		for _, rc := range list(sr, "reasonCode") {
			reasons = append(reasons, conceptText(rc))
		}
		row.Reason = strings.Join(reasons, "; ")
		var notes []string
		for _, n := range list(sr, "note") {
			notes = append(notes, str(n, "text"))
		}
		row.Note = strings.Join(notes, " · ")
		_, row.Open = orderTransitions[row.Status]
		if v.CanEdit {
			row.Next = orderTransitions[row.Status]
		}
		if row.Open {
			v.Open = append(v.Open, row)
		} else {
			v.Closed = append(v.Closed, row)
		}
	}
	v.Catalog, v.Priorities = orderCatalog, orderPriorities
	w.WriteHeader(status)
	a.render(w, r, u, "orders", &page{Title: c.Banner.Name + " · Orders", Tab: "orders", Banner: c.Banner, Flash: flash(r)}, v)
}

// postOrder writes a ServiceRequest: status draft ("Save as draft") or
// active ("Sign and send").
func (a *App) postOrder(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	f := r.PostForm
	form := orderForm{Catalog: f.Get("catalog"), Category: f.Get("category"), System: f.Get("system"), Code: strings.ToUpper(strings.TrimSpace(f.Get("code"))),
		Text: strings.TrimSpace(f.Get("text")), Priority: f.Get("priority"), Reason: strings.TrimSpace(f.Get("reason")),
		Note: strings.TrimSpace(f.Get("note")), When: strings.TrimSpace(f.Get("when"))}
	errs := map[string]string{}
	var item orderable
	if form.Catalog != "other" {
		i := slices.IndexFunc(orderCatalog, func(o orderable) bool { return o.Key == form.Catalog })
		if i < 0 {
			errs["catalog"] = "Choose a test or study, or \"other\" to give a code."
		} else {
			item = orderCatalog[i]
		}
	} else {
		item = orderable{Category: form.Category, Code: form.Code, Text: form.Text}
		if _, ok := orderCategories[form.Category]; !ok {
			errs["category"] = "Choose lab or imaging."
		}
		switch form.System {
		case "loinc":
			item.System = systemLOINC
			if !loincCode.MatchString(form.Code) {
				errs["code"] = "A LOINC code is digits, a hyphen and a check digit, e.g. 2345-7."
			}
		case "cpt":
			item.System = systemCPT
			if !cptCode.MatchString(form.Code) {
				errs["code"] = "A CPT code is five characters, e.g. 71046."
			}
		default:
			errs["system"] = "Choose LOINC or CPT."
		}
		if form.Text == "" {
			errs["text"] = "Name the test or study (e.g. Glucose, fasting)."
		} else if len(form.Text) > 200 {
			errs["text"] = "The name is limited to 200 characters."
		}
	}
	if !slices.Contains(orderPriorities, form.Priority) {
		errs["priority"] = "Choose a priority."
	}
	if len(form.Reason) > 300 {
		errs["reason"] = "The reason is limited to 300 characters."
	}
	if len(form.Note) > 1000 {
		errs["note"] = "The note is limited to 1000 characters."
	}
	if form.When != "" {
		if t, err := time.ParseInLocation(dateFmt, form.When, a.loc); err != nil {
			errs["when"] = "The date must be a date such as 2025-03-14."
		} else if t.Before(a.now().In(a.loc).Truncate(24 * time.Hour).Add(-24 * time.Hour)) {
			errs["when"] = "The date cannot be in the past."
		}
	}
	if len(errs) > 0 {
		a.ordersPage(w, r, u, &ordersView{Form: form, Errors: errs, Error: "The order was not saved: correct the fields marked below."}, http.StatusBadRequest)
		return
	}
	status := "draft"
	if f.Get("action") == "sign" {
		status = "active"
	}
	cat := orderCategories[item.Category]
	sr := resource{
		"resourceType": "ServiceRequest",
		"meta":         map[string]any{"profile": []any{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-servicerequest"}},
		"status":       status,
		"intent":       "order",
		"category":     []any{map[string]any{"coding": []any{map[string]any{"system": systemSNOMED, "code": cat[0], "display": cat[1]}}}},
		"code":         map[string]any{"coding": []any{map[string]any{"system": item.System, "code": item.Code, "display": item.Text}}, "text": item.Text},
		"subject":      map[string]any{"reference": "Patient/" + id},
		"authoredOn":   a.now().UTC().Format(time.RFC3339),
		"priority":     form.Priority,
	}
	if u.FHIRUser != "" {
		sr["requester"] = map[string]any{"reference": u.FHIRUser}
	}
	if form.Reason != "" {
		sr["reasonCode"] = []any{map[string]any{"text": form.Reason}}
	}
	if form.Note != "" {
		sr["note"] = []any{map[string]any{"text": form.Note}}
	}
	if form.When != "" {
		sr["occurrenceDateTime"] = form.When
	}
	if _, err := a.create(ctx, sr); err != nil {
		a.ordersPage(w, r, u, &ordersView{Form: form, Error: a.userMessage(err)}, http.StatusBadRequest)
		return
	}
	saved := "order-draft"
	if status == "active" {
		saved = "order"
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/orders?saved="+saved, http.StatusSeeOther)
}

// orderStatus moves an order along orderTransitions, at the version the
// page showed; a cancellation keeps its reason as a note (R4
// ServiceRequest has no statusReason).
func (a *App) orderStatus(w http.ResponseWriter, r *http.Request, u *user) {
	to := r.PostForm.Get("to")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if len(reason) > 300 {
		a.errorPage(w, r, u, http.StatusBadRequest, "The reason is limited to 300 characters.")
		return
	}
	a.resolve(w, r, u, "ServiceRequest", "orders", "order-"+to, func(res resource, now string) error {
		from := str(res, "status")
		if !slices.Contains(orderTransitions[from], to) {
			return errors.New("An order that is " + from + " cannot become " + to + ".")
		}
		res["status"] = to
		if to == "revoked" {
			text := "Cancelled " + now
			if reason != "" {
				text += ": " + reason
			}
			res["note"] = append(list(res, "note"), map[string]any{"text": text, "time": now})
		}
		return nil
	})
}
