package web

import (
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The Labs tab: the patient's laboratory Observations (category
// laboratory, FHIR R4 Observation; US Core us-core-observation-lab)
// grouped by analyte, the LOINC code, each with its latest value and
// flag (labFlag), and for the analyte chosen (?code=LOINC) a trend over
// time drawn on the server (trendChart) with the reference range as a
// band: the lab's range on the latest result, else the typical adult
// range.

// labsMax bounds the results read for the tab (the newest ones).
const labsMax = 1000

type analyteRow struct {
	Code     string // LOINC code, or the text when the result has none
	Latest   labRow
	Count    int // results
	Numeric  int // results with a numeric value (points of the trend)
	Selected bool
}

type labsView struct {
	Analytes []analyteRow
	Selected *analyteRow
	Chart    template.HTML // empty when no numeric result
	Results  []labRow
	Read     int
	Capped   bool
}

// analyteKey is the grouping key of a lab result: its LOINC code, else
// any code, else its text.
func analyteKey(o resource) string {
	if c := codeOf(get(o, "code"), "http://loinc.org"); c != "" {
		return c
	}
	if c := codeOf(get(o, "code"), ""); c != "" {
		return c
	}
	return conceptText(get(o, "code"))
}

func (a *App) serveLabs(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	var obs *bundle
	c, err := a.loadChart(ctx, id, func() (err error) {
		obs, err = a.search(ctx, "Observation", url.Values{"patient": {"Patient/" + id}, "category": {"laboratory"},
			"_sort": {"-date"}, "_count": {"1000"}})
		return err
	})
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	want := r.URL.Query().Get("code")
	v := &labsView{Read: len(obs.Matches), Capped: len(obs.Matches) >= labsMax}
	index := map[string]int{}
	groups := map[string][]resource{}
	for _, o := range obs.Matches { // newest first
		key := analyteKey(o)
		if key == "" {
			continue
		}
		i, ok := index[key]
		if !ok {
			i = len(v.Analytes)
			index[key] = i
			v.Analytes = append(v.Analytes, analyteRow{Code: key, Latest: a.labRow(o), Selected: key == want})
		}
		v.Analytes[i].Count++
		if _, ok := num(o, "valueQuantity", "value"); ok {
			v.Analytes[i].Numeric++
		}
		groups[key] = append(groups[key], o)
	}
	slices.SortStableFunc(v.Analytes, func(x, y analyteRow) int { return strings.Compare(x.Latest.Test, y.Latest.Test) })
	for i := range v.Analytes {
		if v.Analytes[i].Selected {
			v.Selected = &v.Analytes[i]
		}
	}
	if v.Selected != nil {
		rs := groups[v.Selected.Code]
		for _, o := range rs {
			v.Results = append(v.Results, a.labRow(o))
		}
		v.Chart = a.labChart(v.Selected.Latest, rs)
	}
	title := c.Banner.Name + " · Labs"
	if v.Selected != nil {
		title += " · " + v.Selected.Latest.Test
	}
	a.render(w, r, u, "labs", &page{Title: title, Tab: "labs", Banner: c.Banner, Flash: flash(r)}, v)
}

// labChart draws rs (one analyte, newest first) with trendChart; the
// band is the reference range of the latest result. Empty without a
// numeric result.
func (a *App) labChart(latest labRow, rs []resource) template.HTML {
	var pts []vitalValue
	hi := math.Inf(-1)
	for _, o := range rs {
		x, ok := num(o, "valueQuantity", "value")
		if !ok {
			continue
		}
		when := str(o, "effectiveDateTime")
		if when == "" {
			when = str(o, "effectivePeriod", "start")
		}
		if when == "" {
			when = str(o, "issued")
		}
		t, ok := fhirTime(when)
		if !ok {
			continue
		}
		pts = append(pts, vitalValue{At: t, Value: x, HasValue: true})
		hi = math.Max(hi, x)
	}
	if len(pts) == 0 {
		return ""
	}
	k := &vitalKind{Key: "lab", Label: latest.Test, Label2: latest.Unit, Digits: 2}
	rg, _, _ := labRangeOf(rs[0])
	switch {
	case rg.HasLow && rg.HasHigh:
		k.Low, k.High = rg.Low, rg.High
	case rg.HasHigh:
		k.Low, k.High = 0, rg.High
	case rg.HasLow:
		// Only a lower limit: the band runs to the top of the chart.
		k.Low, k.High = rg.Low, math.Max(hi, rg.Low)
	}
	return a.trendChart(k, pts)
}
