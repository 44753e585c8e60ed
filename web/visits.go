package web

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Visits: the patient's encounters, newest first, a page at a time. The
// next page continues from the FHIR search's cursor (the store's keyset
// position), so page 20 costs what page 1 costs, however many visits the
// patient has.

const visitsPerPage = 25

type visitRow struct {
	Date, End, Duration, Class, Type, Reason, Provider, Location, Status string
}

type visitsView struct {
	Visits []visitRow
	Total  int
	Next   string // link to the next page
	First  bool   // this is the first page
}

// encounterClass names the v3 ActCode classes Encounter uses.
var encounterClass = map[string]string{
	"AMB": "Outpatient", "EMER": "Emergency", "IMP": "Inpatient", "ACUTE": "Inpatient", "NONAC": "Inpatient",
	"OBSENC": "Observation", "PRENC": "Pre-admission", "SS": "Short stay", "VR": "Virtual", "HH": "Home health", "FLD": "Field",
}

func (a *App) serveVisits(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	cursor := r.URL.Query().Get("cursor")
	q := url.Values{"patient": {"Patient/" + id}, "_sort": {"-date"}, "_count": {"25"},
		"_include": {"Encounter:participant", "Encounter:service-provider", "Encounter:location"}}
	if cursor != "" {
		q.Set("_cursor", cursor)
	} else {
		q.Set("_total", "accurate")
	}
	var encs *bundle
	c, err := a.loadChart(ctx, id, func() (err error) {
		encs, err = a.search(ctx, "Encounter", q)
		return err
	})
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	names := map[string]string{}
	for _, inc := range encs.Included {
		ref := str(inc, "resourceType") + "/" + str(inc, "id")
		switch str(inc, "resourceType") {
		case "Practitioner":
			names[ref] = practitionerName(inc)
		default:
			names[ref] = str(inc, "name")
		}
	}
	v := &visitsView{Total: encs.Total, First: cursor == ""}
	for _, e := range encs.Matches {
		row := visitRow{Date: a.showDateTime(str(e, "period", "start")), Status: str(e, "status")}
		cls := str(e, "class", "code")
		row.Class = encounterClass[cls]
		if row.Class == "" {
			row.Class = cls
		}
		var types []string
		for _, t := range list(e, "type") {
			types = append(types, conceptText(t))
		}
		row.Type = strings.Join(types, "; ")
		var reasons []string
		for _, rc := range list(e, "reasonCode") {
			reasons = append(reasons, conceptText(rc))
		}
		row.Reason = strings.Join(reasons, "; ")
		if s, ok := fhirTime(str(e, "period", "start")); ok {
			if en, ok := fhirTime(str(e, "period", "end")); ok && en.After(s) {
				row.Duration = duration(en.Sub(s))
			}
		}
		var provs []string
		for _, p := range list(e, "participant") {
			if n := names[str(p, "individual", "reference")]; n != "" {
				provs = append(provs, n)
			} else if d := str(p, "individual", "display"); d != "" {
				provs = append(provs, d)
			}
		}
		row.Provider = strings.Join(provs, ", ")
		row.Location = names[str(e, "serviceProvider", "reference")]
		if l := names[str(e, "location", "0", "location", "reference")]; l != "" {
			row.Location = l
		}
		v.Visits = append(v.Visits, row)
	}
	if encs.Next != "" {
		v.Next = Prefix + "/patients/" + pathEscape(id) + "/visits?cursor=" + url.QueryEscape(encs.Next)
	}
	a.render(w, r, u, "visits", &page{Title: c.Banner.Name + " · Visits", Tab: "visits", Banner: c.Banner}, v)
}

// duration as a clinician writes it: 15 min, 2 h 30 min, 3 d.
func duration(d time.Duration) string {
	switch {
	case d < time.Hour:
		return itoa(int(d.Minutes())) + " min"
	case d < 24*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return itoa(h) + " h"
		}
		return itoa(h) + " h " + itoa(m) + " min"
	}
	return itoa(int(d.Hours()/24)) + " d"
}

func itoa(n int) string { return formatNumber(float64(n), 0) }
