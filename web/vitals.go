package web

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Vital signs: the flowsheet, entry, and trend charts.
//
// Entries are written as FHIR R4 vital-signs Observations as US Core 6
// profiles them (hl7.org/fhir/R4/observation-vitalsigns.html; US Core
// us-core-blood-pressure, -heart-rate, -respiratory-rate,
// -body-temperature, -pulse-oximetry, -body-height, -body-weight, -bmi):
// status final, category vital-signs, the LOINC code, UCUM units, the
// patient, the time taken, and the user as performer. BMI is computed
// from the weight and the height (entered now, else the latest on file).

const ucum = "http://unitsofmeasure.org"

// vitalKind is one row of the flowsheet.
type vitalKind struct {
	Key    string
	Label  string
	Codes  []string // LOINC codes read as this vital; the first is written
	Unit   string   // UCUM code shown and written
	Label2 string   // the unit as shown
	Digits int
	// Low and High are the typical adult resting range (flags and the
	// band on the chart); 0 when none.
	Low, High float64
}

var vitalKinds = []vitalKind{
	{Key: "bp", Label: "Blood pressure", Codes: []string{"85354-9", "55284-4", "8480-6"}, Unit: "mm[Hg]", Label2: "mmHg", Low: 90, High: 129},
	{Key: "hr", Label: "Heart rate", Codes: []string{"8867-4"}, Unit: "/min", Label2: "/min", Low: 60, High: 100},
	{Key: "rr", Label: "Respiratory rate", Codes: []string{"9279-1"}, Unit: "/min", Label2: "/min", Low: 12, High: 20},
	{Key: "temp", Label: "Temperature", Codes: []string{"8310-5", "8331-1", "8332-9", "8333-7", "8328-7"}, Unit: "Cel", Label2: "°C", Digits: 1, Low: 36.1, High: 37.9},
	{Key: "spo2", Label: "SpO2", Codes: []string{"59408-5", "2708-6"}, Unit: "%", Label2: "%", Low: 95, High: 100},
	{Key: "height", Label: "Height", Codes: []string{"8302-2", "8306-3"}, Unit: "cm", Label2: "cm", Digits: 1},
	{Key: "weight", Label: "Weight", Codes: []string{"29463-7", "3141-9"}, Unit: "kg", Label2: "kg", Digits: 1},
	{Key: "bmi", Label: "BMI", Codes: []string{"39156-5"}, Unit: "kg/m2", Label2: "kg/m²", Digits: 1, Low: 18.5, High: 24.9},
	{Key: "pain", Label: "Pain (0–10)", Codes: []string{"72514-3"}, Unit: "{score}", Label2: "", Low: 0, High: 3},
}

func kindOf(o resource) *vitalKind {
	for i := range vitalKinds {
		for _, c := range vitalKinds[i].Codes {
			if coded(get(o, "code"), "http://loinc.org", c) {
				return &vitalKinds[i]
			}
		}
	}
	return nil
}

// vitalValue is one measurement in the kind's unit; BP carries the
// diastolic in Value2.
type vitalValue struct {
	At       time.Time
	Value    float64
	Value2   float64
	HasValue bool
}

// measure reads o as kind k, converting units to k's.
func measure(k *vitalKind, o resource) (vitalValue, bool) {
	var v vitalValue
	when := str(o, "effectiveDateTime")
	if when == "" {
		when = str(o, "effectivePeriod", "start")
	}
	t, ok := fhirTime(when)
	if !ok {
		return v, false
	}
	v.At = t
	if k.Key == "bp" {
		var sys, dia float64
		var hs, hd bool
		for _, c := range list(o, "component") {
			switch {
			case coded(get(c, "code"), "", "8480-6"):
				sys, hs = num(c, "valueQuantity", "value")
			case coded(get(c, "code"), "", "8462-4"):
				dia, hd = num(c, "valueQuantity", "value")
			}
		}
		if !hs || !hd {
			return v, false
		}
		// Pressures are read and flagged as shown: whole mmHg.
		v.Value, v.Value2, v.HasValue = math.Round(sys), math.Round(dia), true
		return v, true
	}
	q := obj(o, "valueQuantity")
	x, ok := num(q, "value")
	if !ok {
		return v, false
	}
	unit := str(q, "code")
	if unit == "" {
		unit = str(q, "unit")
	}
	switch {
	case unit == "[degF]" || unit == "degF" || unit == "°F":
		x = (x - 32) * 5 / 9
	case unit == "[in_i]" || unit == "in":
		x *= 2.54
	case unit == "[lb_av]" || unit == "lb" || unit == "lbs":
		x *= 0.45359237
	case unit == "g" && k.Key == "weight":
		x /= 1000
	case unit == "m" && k.Key == "height":
		x *= 100
	}
	v.Value, v.HasValue = x, true
	return v, true
}

func (k *vitalKind) format(v vitalValue) string {
	if !v.HasValue {
		return ""
	}
	if k.Key == "bp" {
		return formatNumber(v.Value, 0) + "/" + formatNumber(v.Value2, 0)
	}
	return formatNumber(v.Value, k.Digits)
}

// secondary is the value in US customary units, for temperature,
// weight and height.
func (k *vitalKind) secondary(v vitalValue) string {
	switch k.Key {
	case "temp":
		return formatNumber(v.Value*9/5+32, 1) + " °F"
	case "weight":
		return formatNumber(v.Value/0.45359237, 1) + " lb"
	case "height":
		in := v.Value / 2.54
		return fmt.Sprintf("%d′ %s″", int(in)/12, formatNumber(in-float64(int(in)/12*12), 0))
	}
	return ""
}

// abnormal flags a value outside the typical adult range.
func (k *vitalKind) abnormal(v vitalValue) string {
	if k.Low == 0 && k.High == 0 || !v.HasValue {
		return ""
	}
	if k.Key == "bp" {
		switch {
		case v.Value >= 180 || v.Value2 >= 120:
			return "HH"
		case v.Value >= 130 || v.Value2 >= 80:
			return "H"
		case v.Value < 90 || v.Value2 < 60:
			return "L"
		}
		return ""
	}
	switch {
	case v.Value > k.High:
		return "H"
	case v.Value < k.Low:
		return "L"
	}
	return ""
}

// vitalLatest is one vital's latest value, for the summary.
type vitalLatest struct {
	Label, Value, Unit, Secondary, Date, Flag string
}

func (a *App) latestVitals(obs []resource) []vitalLatest {
	var out []vitalLatest
	for i := range vitalKinds {
		k := &vitalKinds[i]
		for _, o := range obs {
			if kindOf(o) != k {
				continue
			}
			v, ok := measure(k, o)
			if !ok {
				continue
			}
			out = append(out, vitalLatest{Label: k.Label, Value: k.format(v), Unit: k.Label2, Secondary: k.secondary(v),
				Date: v.At.In(a.loc).Format(dateFmt), Flag: k.abnormal(v)})
			break
		}
	}
	return out
}

// The flowsheet.

type flowCell struct {
	Value, Secondary, Flag string
}

type flowRow struct {
	Label, Unit string
	Cells       []flowCell
}

type vitalsView struct {
	Columns []string // times, newest first
	Rows    []flowRow
	Charts  []template.HTML
	Form    vitalsForm
	Errors  map[string]string
	Error   string
	CanAdd  bool
	Shown   int // measurements read
}

type vitalsForm struct {
	Systolic, Diastolic, HR, RR, Temp, TempUnit, SpO2, Height, HeightUnit, Weight, WeightUnit, Taken string
}

const flowColumns = 12

func (a *App) serveVitals(w http.ResponseWriter, r *http.Request, u *user) {
	a.vitalsPage(w, r, u, &vitalsView{Form: vitalsForm{TempUnit: "Cel", HeightUnit: "cm", WeightUnit: "kg"}}, http.StatusOK)
}

func (a *App) vitalsPage(w http.ResponseWriter, r *http.Request, u *user, v *vitalsView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	var obs *bundle
	c, err := a.loadChart(ctx, id, func() (err error) {
		obs, err = a.search(ctx, "Observation", url.Values{"patient": {"Patient/" + id}, "category": {"vital-signs"},
			"_sort": {"-date"}, "_count": {"300"}})
		return err
	})
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	if v.Form.Taken == "" {
		v.Form.Taken = a.now().In(a.loc).Format("2006-01-02T15:04")
	}
	v.CanAdd = u.can("Observation", 'c')
	v.Shown = len(obs.Matches)
	// Columns: the distinct times (to the minute) of the newest readings.
	type key = string
	cols := map[key]int{}
	series := map[string][]vitalValue{}
	cells := map[string]map[key]vitalValue{}
	for _, o := range obs.Matches {
		k := kindOf(o)
		if k == nil {
			continue
		}
		m, ok := measure(k, o)
		if !ok {
			continue
		}
		series[k.Key] = append(series[k.Key], m)
		col := m.At.In(a.loc).Format(dateTimeFmt)
		if _, ok := cols[col]; !ok {
			if len(cols) >= flowColumns {
				continue
			}
			cols[col] = len(cols)
			v.Columns = append(v.Columns, col)
		}
		if cells[k.Key] == nil {
			cells[k.Key] = map[key]vitalValue{}
		}
		if _, ok := cells[k.Key][col]; !ok {
			cells[k.Key][col] = m
		}
	}
	for i := range vitalKinds {
		k := &vitalKinds[i]
		if len(series[k.Key]) == 0 && (k.Key == "pain") {
			continue
		}
		row := flowRow{Label: k.Label, Unit: k.Label2}
		for _, col := range v.Columns {
			m, ok := cells[k.Key][col]
			if !ok {
				row.Cells = append(row.Cells, flowCell{})
				continue
			}
			row.Cells = append(row.Cells, flowCell{Value: k.format(m), Secondary: k.secondary(m), Flag: k.abnormal(m)})
		}
		v.Rows = append(v.Rows, row)
	}
	for _, key := range []string{"bp", "hr", "weight", "bmi", "temp", "spo2", "rr"} {
		if s := series[key]; len(s) >= 2 {
			k := &vitalKinds[slices.IndexFunc(vitalKinds, func(x vitalKind) bool { return x.Key == key })]
			v.Charts = append(v.Charts, a.trendChart(k, s))
		}
	}
	w.WriteHeader(status)
	a.render(w, r, u, "vitals", &page{Title: c.Banner.Name + " · Vitals", Tab: "vitals", Banner: c.Banner, Flash: flash(r)}, v)
}

// flash is the confirmation of the write a page was redirected from.
func flash(r *http.Request) string { return flashes[r.URL.Query().Get("saved")] }

// flashes are the confirmations shown after a write (?saved=…).
var flashes = map[string]string{
	"vitals":           "Vital signs saved.",
	"problem":          "Problem added to the problem list.",
	"problem-resolved": "Problem marked resolved.",
	"allergy":          "Allergy recorded.",
	"allergy-resolved": "Allergy marked resolved.",
	"med":              "Prescription saved.",
	"med-renewed":      "Prescription renewed.",
	"med-stopped":      "Medication discontinued.",
	"note-draft":       "Draft saved. It is not part of the record until signed.",
	"note-signed":      "Note signed.",
	"addendum":         "Addendum signed.",
	"order":            "Order signed and sent.",
	"order-draft":      "Order saved as a draft. It is not sent until signed.",
	"order-active":     "Order signed and sent.",
	"order-completed":  "Order marked completed.",
	"order-revoked":    "Order cancelled.",
	"booked":           "Appointment booked.",
	"registered":       "Patient registered.",
	"demographics":     "Demographics saved.",
	"unchanged":        "Nothing was changed, so nothing was saved.",
	"rescheduled":      "Appointment rescheduled.",
	"cancelled":        "Appointment cancelled.",
	"checked-in":       "Patient checked in.",
	"reviewed":         "Result marked reviewed.",
	"read":             "Message marked read.",
	"document":         "Document uploaded.",
	"consent":          "Consent signed and recorded.",
	"smoking":          "Smoking status recorded.",
	"immunization":     "Immunization recorded.",
	"procedure":        "Procedure recorded.",
	"family":           "Family history recorded.",
	"consent-revoked":  "Consent revoked.",
}

// vitalInput is one field of the entry form: its plausible range in the
// kind's unit (values outside are typing errors, not measurements).
type vitalInput struct {
	field    string
	label    string
	min, max float64
}

func parseVital(s string, in vitalInput, errs map[string]string) (float64, bool) {
	s = strings.TrimSpace(strings.ReplaceAll(s, ",", "."))
	if s == "" {
		return 0, false
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		errs[in.field] = in.label + " must be a number."
		return 0, false
	}
	if x < in.min || x > in.max {
		errs[in.field] = fmt.Sprintf("%s must be between %s and %s.", in.label, formatNumber(in.min, 1), formatNumber(in.max, 1))
		return 0, false
	}
	return x, true
}

func (a *App) postVitals(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	f := r.PostForm
	form := vitalsForm{Systolic: f.Get("systolic"), Diastolic: f.Get("diastolic"), HR: f.Get("hr"), RR: f.Get("rr"),
		Temp: f.Get("temp"), TempUnit: f.Get("temp_unit"), SpO2: f.Get("spo2"), Height: f.Get("height"),
		HeightUnit: f.Get("height_unit"), Weight: f.Get("weight"), WeightUnit: f.Get("weight_unit"), Taken: f.Get("taken")}
	errs := map[string]string{}
	taken, err := time.ParseInLocation("2006-01-02T15:04", form.Taken, a.loc)
	if err != nil {
		errs["taken"] = "Enter the date and time the vitals were taken."
	} else if taken.After(a.now().Add(5 * time.Minute)) {
		errs["taken"] = "The time taken cannot be in the future."
	}
	sys, hasSys := parseVital(form.Systolic, vitalInput{"systolic", "Systolic pressure", 40, 300}, errs)
	dia, hasDia := parseVital(form.Diastolic, vitalInput{"diastolic", "Diastolic pressure", 20, 200}, errs)
	if hasSys != hasDia && errs["systolic"] == "" && errs["diastolic"] == "" {
		errs["systolic"] = "Enter both systolic and diastolic pressure."
	} else if hasSys && hasDia && dia >= sys {
		errs["diastolic"] = "Diastolic pressure must be lower than systolic."
	}
	hr, hasHR := parseVital(form.HR, vitalInput{"hr", "Heart rate", 20, 300}, errs)
	rr, hasRR := parseVital(form.RR, vitalInput{"rr", "Respiratory rate", 2, 80}, errs)
	tempIn := vitalInput{"temp", "Temperature", 25, 45}
	if form.TempUnit == "[degF]" {
		tempIn.min, tempIn.max = 77, 113
	} else {
		form.TempUnit = "Cel"
	}
	temp, hasTemp := parseVital(form.Temp, tempIn, errs)
	spo2, hasSpO2 := parseVital(form.SpO2, vitalInput{"spo2", "SpO2", 40, 100}, errs)
	hIn := vitalInput{"height", "Height", 20, 272}
	if form.HeightUnit == "[in_i]" {
		hIn.min, hIn.max = 8, 108
	} else {
		form.HeightUnit = "cm"
	}
	height, hasHeight := parseVital(form.Height, hIn, errs)
	wIn := vitalInput{"weight", "Weight", 0.3, 500}
	if form.WeightUnit == "[lb_av]" {
		wIn.min, wIn.max = 0.7, 1100
	} else {
		form.WeightUnit = "kg"
	}
	weight, hasWeight := parseVital(form.Weight, wIn, errs)
	if len(errs) == 0 && !(hasSys || hasHR || hasRR || hasTemp || hasSpO2 || hasHeight || hasWeight) {
		errs["form"] = "Enter at least one vital sign."
	}
	if len(errs) > 0 {
		a.vitalsPage(w, r, u, &vitalsView{Form: form, Errors: errs, Error: "The vital signs were not saved: correct the fields marked below."}, http.StatusBadRequest)
		return
	}
	when := taken.Format(time.RFC3339)
	obs := func(code, display, profile string) resource {
		o := resource{
			"resourceType": "Observation",
			"meta":         map[string]any{"profile": []any{"http://hl7.org/fhir/us/core/StructureDefinition/" + profile}},
			"status":       "final",
			"category": []any{map[string]any{"coding": []any{map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}}, "text": "Vital Signs"}},
			"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": code, "display": display}}, "text": display},
			"subject":           map[string]any{"reference": "Patient/" + id},
			"effectiveDateTime": when,
		}
		if u.FHIRUser != "" {
			o["performer"] = []any{map[string]any{"reference": u.FHIRUser}}
		}
		return o
	}
	qty := func(v float64, unit, code string, digits int) map[string]any {
		return map[string]any{"value": round(v, digits), "unit": unit, "system": ucum, "code": code}
	}
	var rs []resource
	if hasSys {
		o := obs("85354-9", "Blood pressure panel with all children optional", "us-core-blood-pressure")
		o["component"] = []any{
			map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}}},
				"valueQuantity": qty(sys, "mmHg", "mm[Hg]", 0)},
			map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}}},
				"valueQuantity": qty(dia, "mmHg", "mm[Hg]", 0)},
		}
		rs = append(rs, o)
	}
	add := func(code, display, profile string, q map[string]any) {
		o := obs(code, display, profile)
		o["valueQuantity"] = q
		rs = append(rs, o)
	}
	if hasHR {
		add("8867-4", "Heart rate", "us-core-heart-rate", qty(hr, "/min", "/min", 0))
	}
	if hasRR {
		add("9279-1", "Respiratory rate", "us-core-respiratory-rate", qty(rr, "/min", "/min", 0))
	}
	if hasTemp {
		label := "Cel"
		if form.TempUnit == "[degF]" {
			label = "degF"
		}
		add("8310-5", "Body temperature", "us-core-body-temperature", qty(temp, label, form.TempUnit, 1))
	}
	if hasSpO2 {
		o := obs("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "us-core-pulse-oximetry")
		coding := get(o, "code", "coding").([]any)
		o["code"].(map[string]any)["coding"] = append(coding, map[string]any{"system": "http://loinc.org", "code": "2708-6", "display": "Oxygen saturation in Arterial blood"})
		o["valueQuantity"] = qty(spo2, "%", "%", 0)
		rs = append(rs, o)
	}
	heightCm := height
	if hasHeight {
		unit := "cm"
		if form.HeightUnit == "[in_i]" {
			unit, heightCm = "in", height*2.54
		}
		add("8302-2", "Body height", "us-core-body-height", qty(height, unit, form.HeightUnit, 1))
	}
	weightKg := weight
	if hasWeight {
		unit := "kg"
		if form.WeightUnit == "[lb_av]" {
			unit, weightKg = "lb", weight*0.45359237
		}
		add("29463-7", "Body weight", "us-core-body-weight", qty(weight, unit, form.WeightUnit, 1))
		if !hasHeight {
			heightCm, hasHeight = a.latestHeight(r, id)
		}
		if hasHeight && heightCm > 0 {
			bmi := weightKg / math.Pow(heightCm/100, 2)
			add("39156-5", "Body mass index (BMI) [Ratio]", "us-core-bmi", qty(bmi, "kg/m2", "kg/m2", 1))
		}
	}
	if err := a.transaction(ctx, rs); err != nil {
		a.vitalsPage(w, r, u, &vitalsView{Form: form, Error: a.userMessage(err)}, http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/vitals?saved=vitals", http.StatusSeeOther)
}

// latestHeight is the patient's latest recorded height in cm.
func (a *App) latestHeight(r *http.Request, id string) (float64, bool) {
	b, err := a.search(r.Context(), "Observation", url.Values{"patient": {"Patient/" + id}, "code": {"http://loinc.org|8302-2"},
		"_sort": {"-date"}, "_count": {"1"}})
	if err != nil || len(b.Matches) == 0 {
		return 0, false
	}
	m, ok := measure(&vitalKinds[5], b.Matches[0])
	return m.Value, ok
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// trendChart draws a vital's values over time as an SVG line chart, with
// the typical range as a band. Everything in it is numbers and the kind's
// own labels; nothing comes from the record's text.
func (a *App) trendChart(k *vitalKind, s []vitalValue) template.HTML {
	pts := slices.Clone(s)
	slices.SortFunc(pts, func(x, y vitalValue) int { return x.At.Compare(y.At) })
	const W, H, left, right, top, bottom = 640.0, 200.0, 48.0, 12.0, 14.0, 28.0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
		if k.Key == "bp" {
			lo = math.Min(lo, p.Value2)
		}
	}
	band := (k.Low != 0 || k.High != 0) && k.Key != "bp"
	if band {
		lo, hi = math.Min(lo, k.Low), math.Max(hi, k.High)
	}
	if k.Key == "bp" {
		// Stage 1 hypertension thresholds (ACC/AHA 2017) as lines.
		lo, hi = math.Min(lo, 70), math.Max(hi, 140)
	}
	if hi-lo < 1e-9 {
		lo, hi = lo-1, hi+1
	}
	pad := (hi - lo) * 0.08
	lo, hi = lo-pad, hi+pad
	t0, t1 := pts[0].At, pts[len(pts)-1].At
	span := t1.Sub(t0).Seconds()
	x := func(t time.Time) float64 {
		if span <= 0 {
			return left + (W-left-right)/2
		}
		return left + (W-left-right)*t.Sub(t0).Seconds()/span
	}
	y := func(v float64) float64 { return top + (H-top-bottom)*(1-(v-lo)/(hi-lo)) }
	var b strings.Builder
	title := template.HTMLEscapeString(k.Label)
	unit := template.HTMLEscapeString(k.Label2)
	id := "chart-" + k.Key
	fmt.Fprintf(&b, `<figure class="chart"><figcaption id="%s">%s`, id, title)
	if unit != "" {
		fmt.Fprintf(&b, ` (%s)`, unit)
	}
	if k.Key == "bp" {
		b.WriteString(` <span class="legend"><span class="key1">systolic</span> <span class="key2">diastolic</span></span>`)
	}
	fmt.Fprintf(&b, `, %d readings, %s to %s</figcaption>`, len(pts), t0.In(a.loc).Format(dateFmt), t1.In(a.loc).Format(dateFmt))
	fmt.Fprintf(&b, `<svg viewBox="0 0 %g %g" role="img" aria-labelledby="%s">`, W, H, id)
	if band {
		fmt.Fprintf(&b, `<rect class="band" x="%g" y="%.1f" width="%g" height="%.1f"/>`, left, y(k.High), W-left-right, y(k.Low)-y(k.High))
	}
	if k.Key == "bp" {
		for _, th := range []float64{130, 80} {
			fmt.Fprintf(&b, `<line class="threshold" x1="%g" y1="%.1f" x2="%g" y2="%.1f"/><text class="tick" x="%g" y="%.1f">%g</text>`,
				left, y(th), W-right, y(th), W-right, y(th)-3, th)
		}
	}
	// Axes and three value ticks.
	fmt.Fprintf(&b, `<line class="axis" x1="%g" y1="%g" x2="%g" y2="%g"/>`, left, H-bottom, W-right, H-bottom)
	for i := 0; i <= 2; i++ {
		v := lo + pad + (hi-lo-2*pad)*float64(i)/2
		fmt.Fprintf(&b, `<line class="grid" x1="%g" y1="%.1f" x2="%g" y2="%.1f"/><text class="tick" x="%g" y="%.1f">%s</text>`,
			left, y(v), W-right, y(v), left-6, y(v)+4, formatNumber(v, k.Digits))
	}
	fmt.Fprintf(&b, `<text class="date" x="%g" y="%g">%s</text><text class="date end" x="%g" y="%g">%s</text>`,
		left, H-8, t0.In(a.loc).Format(dateFmt), W-right, H-8, t1.In(a.loc).Format(dateFmt))
	line := func(class string, val func(vitalValue) float64) {
		b.WriteString(`<polyline class="` + class + `" points="`)
		for i, p := range pts {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", x(p.At), y(val(p)))
		}
		b.WriteString(`"/>`)
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle class="%s" cx="%.1f" cy="%.1f" r="3"><title>%s: %s %s</title></circle>`, class, x(p.At), y(val(p)),
				p.At.In(a.loc).Format(dateTimeFmt), k.format(p), unit)
		}
	}
	line("series", func(p vitalValue) float64 { return p.Value })
	if k.Key == "bp" {
		line("series2", func(p vitalValue) float64 { return p.Value2 })
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String())
}
