package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Family and social history: the family members' conditions
// (FamilyMemberHistory, https://hl7.org/fhir/R4/familymemberhistory.html:
// relationship in v3-RoleCode, the condition coded in SNOMED CT or
// ICD-10-CM or as text, the age at onset as an Age in years, whether it
// contributed to the relative's death), and the social history
// (the smoking status, smoking.go).

// relatives are the relationships offered (v3-RoleCode), with the sex
// they imply (FamilyMemberHistory.sex).
var relatives = []struct{ Code, Display, Sex string }{
	{"MTH", "Mother", "female"}, {"FTH", "Father", "male"},
	{"SIS", "Sister", "female"}, {"BRO", "Brother", "male"},
	{"DAUC", "Daughter", "female"}, {"SONC", "Son", "male"},
	{"MGRMTH", "Maternal grandmother", "female"}, {"MGRFTH", "Maternal grandfather", "male"},
	{"PGRMTH", "Paternal grandmother", "female"}, {"PGRFTH", "Paternal grandfather", "male"},
	{"AUNT", "Aunt", "female"}, {"UNCLE", "Uncle", "male"},
}

type familyRow struct {
	Relative, Condition, Code, System, Onset, Recorded string
	Death                                              bool
}

type familyForm struct {
	Relationship, System, Code, Text, Onset string
	Death                                   bool
}

type historyView struct {
	Family    []familyRow
	Form      familyForm
	Errors    map[string]string
	Error     string
	Relatives any
	Smoking   smokingView
	CanAdd    bool
}

func (a *App) serveHistory(w http.ResponseWriter, r *http.Request, u *user) {
	a.historyPage(w, r, u, &historyView{Form: familyForm{System: "snomed"}}, http.StatusOK)
}

func (a *App) historyPage(w http.ResponseWriter, r *http.Request, u *user, v *historyView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	var fam, smoking *bundle
	c, err := a.loadChart(ctx, id, func() (err error) {
		fam, err = a.search(ctx, "FamilyMemberHistory", url.Values{"patient": {"Patient/" + id}, "_count": {"200"}})
		return err
	}, func() (err error) {
		smoking, err = a.search(ctx, "Observation", url.Values{"patient": {"Patient/" + id}, "code": {systemLOINC + "|" + loincSmoking}, "_sort": {"-date"}, "_count": {"1"}})
		return err
	})
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	for _, f := range fam.Matches {
		if str(f, "status") == "entered-in-error" {
			continue
		}
		rel := conceptText(get(f, "relationship"))
		if n := str(f, "name"); n != "" {
			rel += " (" + n + ")"
		}
		conds := list(f, "condition")
		if len(conds) == 0 {
			v.Family = append(v.Family, familyRow{Relative: rel, Condition: "(no condition recorded)", Recorded: a.showDate(str(f, "date"))})
		}
		for _, cd := range conds {
			row := familyRow{Relative: rel, Condition: conceptText(get(cd, "code")), Recorded: a.showDate(str(f, "date"))}
			if row.Code = codeOf(get(cd, "code"), systemSNOMED); row.Code != "" {
				row.System = "SNOMED CT"
			} else if row.Code = codeOf(get(cd, "code"), systemICD10); row.Code != "" {
				row.System = "ICD-10-CM"
			}
			if n, ok := num(cd, "onsetAge", "value"); ok {
				row.Onset = formatNumber(n, 0)
			} else if s := str(cd, "onsetString"); s != "" {
				row.Onset = s
			}
			row.Death, _ = get(cd, "contributedToDeath").(bool)
			v.Family = append(v.Family, row)
		}
	}
	slices.SortStableFunc(v.Family, func(x, y familyRow) int { return strings.Compare(x.Relative, y.Relative) })
	v.Relatives = relatives
	v.CanAdd = u.can("FamilyMemberHistory", 'c')
	err1 := v.Smoking.Error
	v.Smoking = a.smokingOf(smoking.Matches, u)
	v.Smoking.Error = err1
	w.WriteHeader(status)
	a.render(w, r, u, "history", &page{Title: c.Banner.Name + " · Family and social history", Tab: "history", Banner: c.Banner, Flash: flash(r)}, v)
}

func (a *App) postFamilyHistory(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	f := r.PostForm
	form := familyForm{Relationship: f.Get("relationship"), System: f.Get("system"), Code: strings.ToUpper(strings.TrimSpace(f.Get("code"))),
		Text: strings.TrimSpace(f.Get("text")), Onset: strings.TrimSpace(f.Get("onset")), Death: f.Get("death") == "yes"}
	errs := map[string]string{}
	ri := slices.IndexFunc(relatives, func(x struct{ Code, Display, Sex string }) bool { return x.Code == form.Relationship })
	if ri < 0 {
		errs["relationship"] = "Choose the relative."
	}
	if form.Text == "" {
		errs["text"] = "Name the condition (e.g. Type 2 diabetes mellitus)."
	} else if len(form.Text) > 200 {
		errs["text"] = "The condition is limited to 200 characters."
	}
	var system string
	if form.Code != "" {
		switch form.System {
		case "snomed":
			system = systemSNOMED
			if !snomedCode.MatchString(form.Code) {
				errs["code"] = "A SNOMED CT concept id is 6 to 18 digits, e.g. 44054006."
			}
		case "icd10":
			system = systemICD10
			if !icd10Code.MatchString(form.Code) {
				errs["code"] = "An ICD-10-CM code is a letter, two digits and optionally a dot and up to 4 more characters, e.g. E11.9."
			}
		default:
			errs["system"] = "Choose SNOMED CT or ICD-10-CM."
		}
	}
	var onset int
	if form.Onset != "" {
		n, err := strconv.Atoi(form.Onset)
		if err != nil || n < 0 || n > 120 {
			errs["onset"] = "The age at onset is a whole number of years from 0 to 120."
		}
		onset = n
	}
	if len(errs) > 0 {
		a.historyPage(w, r, u, &historyView{Form: form, Errors: errs, Error: "The family history was not recorded: correct the fields marked below."}, http.StatusBadRequest)
		return
	}
	rel := relatives[ri]
	cond := map[string]any{"code": map[string]any{"text": form.Text}}
	if form.Code != "" {
		cond["code"].(map[string]any)["coding"] = []any{map[string]any{"system": system, "code": form.Code, "display": form.Text}}
	}
	if form.Onset != "" {
		cond["onsetAge"] = map[string]any{"value": onset, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}
	}
	if form.Death {
		cond["contributedToDeath"] = true
	}
	fmh := resource{
		"resourceType": "FamilyMemberHistory",
		"status":       "completed",
		"patient":      map[string]any{"reference": "Patient/" + id},
		"date":         a.now().UTC().Format(time.RFC3339),
		"relationship": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": rel.Code, "display": rel.Display}},
			"text": rel.Display},
		"sex": map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/administrative-gender", "code": rel.Sex,
			"display": sexLabel(rel.Sex)}}},
		"condition": []any{cond},
	}
	if form.Death {
		fmh["deceasedBoolean"] = true
	}
	if _, err := a.create(ctx, fmh); err != nil {
		a.historyPage(w, r, u, &historyView{Form: form, Error: a.userMessage(err)}, a.status(err))
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/history?saved=family", http.StatusSeeOther)
}
