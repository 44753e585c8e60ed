package web

import (
	"net/http"
)

// Smoking status as US Core 6 profiles it (us-core-smokingstatus): an
// Observation, status final, category social-history, code LOINC
// 72166-2 "Tobacco smoking status", effectiveDateTime, and a
// valueCodeableConcept from the Smoking Status value set (SNOMED CT,
// hl7.org/fhir/us/core/ValueSet-us-core-smoking-status-observation-codes).
// The summary shows the latest; a small form there records a new one.

const loincSmoking = "72166-2"

// smokingCodes are the SNOMED CT concepts offered, in the form's order.
var smokingCodes = []struct{ Code, Display string }{
	{"449868002", "Current every day smoker"},
	{"428041000124106", "Current some day smoker"},
	{"77176002", "Smoker, current status unknown"},
	{"428071000124103", "Current heavy tobacco smoker"},
	{"428061000124105", "Current light tobacco smoker"},
	{"8517006", "Ex-smoker"},
	{"266919005", "Never smoker"},
	{"266927001", "Unknown if ever smoked"},
}

func smokingDisplay(code string) string {
	for _, c := range smokingCodes {
		if c.Code == code {
			return c.Display
		}
	}
	return ""
}

// smokingView is the summary's smoking status card.
type smokingView struct {
	Status, Code, Date string
	CanEdit            bool
	Error              string
	Options            []struct{ Code, Display string }
}

func (a *App) smokingOf(obs []resource, u *user) smokingView {
	v := smokingView{CanEdit: u.can("Observation", 'c'), Options: smokingCodes}
	if len(obs) > 0 {
		o := obs[0]
		v.Code = codeOf(get(o, "valueCodeableConcept"), systemSNOMED)
		v.Status = conceptText(get(o, "valueCodeableConcept"))
		if v.Status == "" {
			v.Status = smokingDisplay(v.Code)
		}
		when := str(o, "effectiveDateTime")
		if when == "" {
			when = str(o, "issued")
		}
		v.Date = a.showDate(when)
	}
	return v
}

func (a *App) postSmoking(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	code := r.PostForm.Get("status")
	display := smokingDisplay(code)
	// The form is on the summary and on the family and social history.
	back, fail := "", func(msg string, status int) { a.summaryPage(w, r, u, msg, status) }
	if r.PostForm.Get("back") == "history" {
		back = "/history"
		fail = func(msg string, status int) {
			a.historyPage(w, r, u, &historyView{Form: familyForm{System: "snomed"}, Smoking: smokingView{Error: msg}}, status)
		}
	}
	if display == "" {
		fail("Smoking status not saved: choose one of the statuses listed.", http.StatusBadRequest)
		return
	}
	o := resource{
		"resourceType": "Observation",
		"meta":         map[string]any{"profile": []any{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-smokingstatus"}},
		"status":       "final",
		"category": []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "social-history", "display": "Social History"}}, "text": "Social History"}},
		"code": map[string]any{"coding": []any{map[string]any{"system": systemLOINC, "code": loincSmoking, "display": "Tobacco smoking status"}},
			"text": "Tobacco smoking status"},
		"subject":              map[string]any{"reference": "Patient/" + id},
		"effectiveDateTime":    a.now().UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		"valueCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": systemSNOMED, "code": code, "display": display}}, "text": display},
	}
	if u.FHIRUser != "" {
		o["performer"] = []any{map[string]any{"reference": u.FHIRUser}}
	}
	if _, err := a.create(ctx, o); err != nil {
		fail(a.userMessage(err), a.status(err))
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+back+"?saved=smoking", http.StatusSeeOther)
}
