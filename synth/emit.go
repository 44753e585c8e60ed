package synth

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// emit turns the planned record into resources.
func (p *person) emit(out []Resource) []Resource {
	e := &emitter{p: p, out: out}
	e.patient()
	recordedAllergy := make([]bool, len(p.allergies))
	for _, v := range p.visits {
		e.encounter(v)
		for _, c := range v.diagnose {
			e.condition(c, v)
		}
		if v.vitals {
			e.vitals(v)
		}
		e.labs(v)
		for _, c := range v.procs {
			e.procedure(c, v)
		}
		for _, c := range v.orders {
			e.medicationRequest(c, v)
		}
		for _, c := range v.imms {
			e.immunization(c, v)
		}
		if v.office() {
			for k, a := range p.allergies {
				if !recordedAllergy[k] && a.onset.Before(v.start) {
					recordedAllergy[k] = true
					e.allergy(a, v)
				}
			}
		}
	}
	return e.out
}

type emitter struct {
	p   *person
	out []Resource
}

func (e *emitter) nextID() string {
	e.p.seq++
	return e.p.id + "-" + strconv.Itoa(e.p.seq)
}

func (e *emitter) add(typ, id string, body obj) {
	body["resourceType"] = typ
	body["id"] = id
	e.out = append(e.out, Resource{typ, id, body})
}

func (e *emitter) subject() obj { return ref("Patient", e.p.id) }

func (e *emitter) prac(k int) obj { return ref("Practitioner", e.p.g.pracID(e.p.block, k)) }

func (e *emitter) org(hospital bool) obj {
	if hospital {
		return ref("Organization", e.p.g.orgID(e.p.block, "hospital"))
	}
	return ref("Organization", e.p.g.orgID(e.p.block, "clinic"))
}

func (e *emitter) patient() {
	p, r := e.p, e.p.r
	pl := p.g.blockPlace(p.block)
	if r.chance(0.2) {
		pl = places[r.intn(len(places))]
	}
	gender, given := "male", maleNames
	if p.female {
		gender, given = "female", femaleNames
	}
	first := given[r.intn(len(given))]
	family := surnames[r.intn(len(surnames))]
	names := []any{first}
	if r.chance(0.6) {
		names = append(names, given[r.intn(len(given))])
	}
	name := obj{"use": "official", "family": family, "given": names, "text": first + " " + family}
	adult := p.ageAt(p.to) >= 18
	if adult {
		if p.female {
			name["prefix"] = []any{"Ms."}
		} else {
			name["prefix"] = []any{"Mr."}
		}
	}
	// Race: one OMB category, two for a few; ethnicity about 19%
	// Hispanic or Latino.
	w := make([]float64, len(races))
	for k, rc := range races {
		w[k] = rc.share
	}
	ri := r.pick(w...)
	raceExt := []any{obj{"url": "ombCategory", "valueCoding": obj{"system": sysOMB, "code": races[ri].code, "display": races[ri].display}}}
	raceText := races[ri].display
	if r.chance(0.03) {
		rj := (ri + 1 + r.intn(len(races)-1)) % len(races)
		raceExt = append(raceExt, obj{"url": "ombCategory", "valueCoding": obj{"system": sysOMB, "code": races[rj].code, "display": races[rj].display}})
		raceText = "Two or more races"
	}
	raceExt = append(raceExt, obj{"url": "text", "valueString": raceText})
	ethCode, ethDisplay := "2186-5", "Not Hispanic or Latino"
	hispanic := r.chance(0.19)
	if hispanic {
		ethCode, ethDisplay = "2135-2", "Hispanic or Latino"
	}
	lang := code{sysLang, "en-US", "English (United States)"}
	if hispanic && r.chance(0.3) {
		lang = code{sysLang, "es", "Spanish"}
	}
	mrn := fmt.Sprintf("%08d", mix(uint64(p.g.opt.Seed)<<20^uint64(p.idx))%100_000_000)
	pt := obj{
		"extension": []any{
			obj{"url": extRace, "extension": raceExt},
			obj{"url": extEthnicity, "extension": []any{
				obj{"url": "ombCategory", "valueCoding": obj{"system": sysOMB, "code": ethCode, "display": ethDisplay}},
				obj{"url": "text", "valueString": ethDisplay},
			}},
			obj{"url": extBirthSex, "valueCode": map[bool]string{true: "F", false: "M"}[p.female]},
		},
		"identifier": []any{obj{
			"use":    "usual",
			"type":   concept("Medical Record Number", code{sysV20203, "MR", "Medical record number"}),
			"system": mrnSystem,
			"value":  "SYN" + mrn,
		}},
		"active": true,
		"name":   []any{name},
		"telecom": []any{
			obj{"system": "phone", "value": phone(r, pl), "use": "home"},
		},
		"gender":    gender,
		"birthDate": date(p.birth),
		"address": []any{obj{
			"use": "home", "line": []any{streetAddress(r)}, "city": pl.city, "state": pl.state, "postalCode": pl.zip, "country": "US",
		}},
		"communication":        []any{obj{"language": lang.concept(), "preferred": true}},
		"generalPractitioner":  []any{e.prac(p.pcp)},
		"managingOrganization": e.org(false),
	}
	if adult {
		ms := []code{
			{sysMarital, "M", "Married"}, {sysMarital, "S", "Never Married"}, {sysMarital, "D", "Divorced"}, {sysMarital, "W", "Widowed"},
		}[r.pick(0.5, 0.3, 0.12, btof(p.ageAt(p.to) > 60, 0.15, 0.02))]
		pt["maritalStatus"] = ms.concept()
		pt["telecom"] = append(pt["telecom"].([]any), obj{"system": "email", "value": fmt.Sprintf("%s.%s%d@example.com", lower(first), lower(family), p.idx)})
	}
	e.add("Patient", p.id, pt)
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
		if c == '\'' {
			b[i] = 'x'
		}
	}
	return string(b)
}

var encClasses = map[visitKind]code{
	vWellness:  {sysActCode, "AMB", "ambulatory"},
	vFollowUp:  {sysActCode, "AMB", "ambulatory"},
	vProblem:   {sysActCode, "AMB", "ambulatory"},
	vAcute:     {sysActCode, "AMB", "ambulatory"},
	vVaccine:   {sysActCode, "AMB", "ambulatory"},
	vProcedure: {sysActCode, "AMB", "ambulatory"},
	vDialysis:  {sysActCode, "AMB", "ambulatory"},
	vED:        {sysActCode, "EMER", "emergency"},
	vInpatient: {sysActCode, "IMP", "inpatient encounter"},
}

func (e *emitter) encounter(v *visit) {
	p := e.p
	v.id = e.nextID()
	var typ code
	switch v.kind {
	case vWellness:
		typ = encCheckUp
		if p.ageAt(v.start) < 18 {
			typ = encWellChild
		}
	case vFollowUp:
		typ = encFollowUp
	case vProblem:
		typ = encProblem
	case vAcute:
		typ = encSymptom
	case vED:
		typ = encED
	case vInpatient:
		typ = encInpatient
	case vVaccine:
		typ = encVaccine
	case vProcedure:
		typ = encProcedure
	case vDialysis:
		typ = encDialysis
	}
	enc := obj{
		"status":  "finished",
		"class":   encClasses[v.kind].coding(),
		"type":    []any{typ.concept()},
		"subject": e.subject(),
		"participant": []any{obj{
			"type":       []any{concept("primary performer", code{sysPartType, "PPRF", "primary performer"})},
			"period":     obj{"start": dateTime(v.start), "end": dateTime(v.end)},
			"individual": e.prac(v.prac),
		}},
		"period":          obj{"start": dateTime(v.start), "end": dateTime(v.end)},
		"serviceProvider": e.org(v.hospital),
	}
	if v.reason != nil && v.reason.id != "" {
		enc["reasonReference"] = []any{ref("Condition", v.reason.id)}
	} else if v.reason != nil {
		enc["reasonCode"] = []any{conceptOf(v.reason, v.start)}
	}
	if v.kind == vInpatient {
		enc["hospitalization"] = obj{"dischargeDisposition": concept("Discharged to home", code{sysDischarge, "home", "Home"})}
	}
	e.add("Encounter", v.id, enc)
}

// conceptOf is a condition's code: SNOMED CT and ICD-10-CM as in force
// at t.
func conceptOf(c *cond, t time.Time) obj {
	d := conds[c.kind]
	icd := d.icd
	if d.icdSince != "" && date(t) < d.icdSince {
		icd = d.icdOld
	}
	return concept(d.snomed.display, d.snomed, icd)
}

func (e *emitter) condition(c *cond, v *visit) {
	c.id = e.nextID()
	cat := code{sysCondCat, "problem-list-item", "Problem List Item"}
	if !conds[c.kind].chronic {
		cat = code{sysCondCat, "encounter-diagnosis", "Encounter Diagnosis"}
	}
	status := "active"
	res := obj{
		"verificationStatus": code{sysCondVer, "confirmed", "Confirmed"}.concept(),
		"category":           []any{cat.concept()},
		"code":               conceptOf(c, c.recorded),
		"subject":            e.subject(),
		"encounter":          ref("Encounter", v.id),
		"onsetDateTime":      dateTime(c.onset),
		"recordedDate":       dateTime(c.recorded),
		"recorder":           e.prac(v.prac),
	}
	if !c.abated.IsZero() && c.abated.Before(e.p.to) {
		status = c.status
		res["abatementDateTime"] = dateTime(c.abated)
	}
	res["clinicalStatus"] = code{sysCondClin, status, statusDisplay[status]}.concept()
	e.add("Condition", c.id, res)
}

var statusDisplay = map[string]string{
	"active": "Active", "resolved": "Resolved", "remission": "Remission", "inactive": "Inactive",
}

// observation builds the common part of an Observation.
func (e *emitter) observation(cat string, c code, v *visit, t time.Time) (string, obj) {
	id := e.nextID()
	return id, obj{
		"status":            "final",
		"category":          []any{concept(catDisplay[cat], code{sysObsCat, cat, catDisplay[cat]})},
		"code":              c.concept(),
		"subject":           e.subject(),
		"encounter":         ref("Encounter", v.id),
		"effectiveDateTime": dateTime(t),
	}
}

var catDisplay = map[string]string{
	"vital-signs": "Vital Signs", "laboratory": "Laboratory", "survey": "Survey", "social-history": "Social History",
}

var (
	vBP       = loinc("85354-9", "Blood pressure panel with all children optional")
	vSystolic = loinc("8480-6", "Systolic blood pressure")
	vDiastol  = loinc("8462-4", "Diastolic blood pressure")
	vHR       = loinc("8867-4", "Heart rate")
	vRR       = loinc("9279-1", "Respiratory rate")
	vTemp     = loinc("8310-5", "Body temperature")
	vSpO2     = loinc("2708-6", "Oxygen saturation in Arterial blood")
	vPulseOx  = loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
	vHeight   = loinc("8302-2", "Body height")
	vWeight   = loinc("29463-7", "Body weight")
	vBMI      = loinc("39156-5", "Body mass index (BMI) [Ratio]")
	vHeadCirc = loinc("9843-4", "Head Occipital-frontal circumference")
	sPHQ9     = loinc("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]")
	sSmoking  = loinc("72166-2", "Tobacco smoking status")
)

func (e *emitter) vital(v *visit, c code, value float64, places int, unit string) {
	id, o := e.observation("vital-signs", c, v, v.start)
	o["valueQuantity"] = quantity(value, places, unit)
	e.add("Observation", id, o)
}

func (e *emitter) vitals(v *visit) {
	p := e.p
	t := v.start
	a := p.ageAt(t)
	if a >= 3 || v.kind == vDialysis {
		sys, dia := p.bloodPressure(t)
		id, o := e.observation("vital-signs", vBP, v, t)
		o["component"] = []any{
			obj{"code": vSystolic.concept(), "valueQuantity": quantity(sys, 0, "mm[Hg]"), "interpretation": []any{interpretation(sys, 0, 129)}},
			obj{"code": vDiastol.concept(), "valueQuantity": quantity(dia, 0, "mm[Hg]"), "interpretation": []any{interpretation(dia, 0, 79)}},
		}
		e.add("Observation", id, o)
	}
	e.vital(v, vHR, p.heartRate(t, v.fever), 0, "/min")
	if v.kind == vDialysis {
		e.vital(v, vWeight, round(p.bmiAt(t)*sq(p.heightAt(t)/100)+p.r.normal(1.5, 0.6), 1), 1, "kg")
		return
	}
	e.vital(v, vRR, p.respRate(t, v), 0, "/min")
	e.vital(v, vTemp, p.temperature(v.fever), 1, "Cel")
	{
		id, o := e.observation("vital-signs", vSpO2, v, t)
		o["code"] = concept("Oxygen saturation", vSpO2, vPulseOx)
		o["valueQuantity"] = quantity(p.oxygenSaturation(t, v), 0, "%")
		e.add("Observation", id, o)
	}
	h := p.heightAt(t)
	measureHeight := v.kind == vWellness || a < 18
	if measureHeight {
		h = round(h+p.r.normal(0, 0.3), 1)
		e.vital(v, vHeight, h, 1, "cm")
	}
	if v.kind == vWellness && a < 2 {
		e.vital(v, vHeadCirc, p.headCircumference(t), 1, "cm")
	}
	if v.kind == vED || v.kind == vInpatient || v.kind == vWellness || v.kind == vFollowUp || v.kind == vProblem || a < 18 {
		wt := p.bmiAt(t) * sq(h/100)
		wt = round(wt+p.r.normal(0, 0.5)*min(1, wt/60), 1)
		if wt < 1.5 {
			wt = 1.5
		}
		e.vital(v, vWeight, wt, 1, "kg")
		if a >= 2 {
			e.vital(v, vBMI, round(wt/sq(h/100), 1), 1, "kg/m2")
		}
	}
}

func sq(x float64) float64 { return x * x }

var interps = map[string]code{
	"H": {sysInterp, "H", "High"},
	"L": {sysInterp, "L", "Low"},
	"N": {sysInterp, "N", "Normal"},
}

// interpretation flags a value against a range (0: no bound).
func interpretation(v, lo, hi float64) obj {
	switch {
	case hi != 0 && v > hi:
		return interps["H"].concept()
	case lo != 0 && v < lo:
		return interps["L"].concept()
	}
	return interps["N"].concept()
}

// labObservation writes one result and returns its id.
func (e *emitter) labObservation(v *visit, lv labValue, t time.Time) string {
	id, o := e.observation("laboratory", lv.test.code, v, t)
	o["issued"] = dateTime(t.Add(3 * time.Hour))
	o["valueQuantity"] = quantity(lv.value, lv.test.places, lv.test.unit)
	lo, hi := lv.test.rangeFor(e.p.female)
	o["interpretation"] = []any{interpretation(lv.value, lo, hi)}
	rr := obj{}
	if lo != 0 {
		rr["low"] = quantity(lo, lv.test.places, lv.test.unit)
	}
	if hi != 0 {
		rr["high"] = quantity(hi, lv.test.places, lv.test.unit)
	}
	o["referenceRange"] = []any{rr}
	e.add("Observation", id, o)
	return id
}

// report groups a panel's results in a DiagnosticReport.
func (e *emitter) report(v *visit, panel code, t time.Time, values []labValue) {
	results := make([]any, len(values))
	for k, lv := range values {
		results[k] = ref("Observation", e.labObservation(v, lv, t))
	}
	id := e.nextID()
	e.add("DiagnosticReport", id, obj{
		"status":             "final",
		"category":           []any{concept("Laboratory", code{sysV20074, "LAB", "Laboratory"})},
		"code":               panel.concept(),
		"subject":            e.subject(),
		"encounter":          ref("Encounter", v.id),
		"effectiveDateTime":  dateTime(t),
		"issued":             dateTime(t.Add(4 * time.Hour)),
		"performer":          []any{e.org(true)},
		"resultsInterpreter": []any{e.prac(v.prac)},
		"result":             results,
	})
}

func (e *emitter) labs(v *visit) {
	if v.labs == 0 {
		return
	}
	p := e.p
	t := v.start.Add(10 * time.Minute)
	a1c := p.a1c(t)
	infection := v.reason != nil && v.reason.kind == cPneumonia
	if v.labs&labA1c != 0 {
		e.labObservation(v, labValue{tA1c, a1c}, t)
	}
	if v.labs&labBMP != 0 {
		e.report(v, panelBMP, t, p.bmp(t, a1c))
	}
	if v.labs&labCBC != 0 {
		e.report(v, panelCBC, t, p.cbc(t, infection))
	}
	if v.labs&labLipid != 0 {
		e.report(v, panelLipid, t, p.lipids(t))
	}
	if v.labs&labUACR != 0 {
		e.labObservation(v, labValue{tUACR, p.uacr(t)}, t)
	}
	if v.labs&labTSH != 0 {
		e.labObservation(v, labValue{tTSH, p.tsh(t)}, t)
	}
	if v.labs&labINR != 0 {
		e.labObservation(v, labValue{tINR, p.inr(t)}, t)
	}
	if v.labs&labPHQ9 != 0 {
		id, o := e.observation("survey", sPHQ9, v, v.start)
		o["valueQuantity"] = quantity(p.phq9(v.start), 0, "{score}")
		e.add("Observation", id, o)
	}
	if v.labs&labSmoking != 0 {
		id, o := e.observation("social-history", sSmoking, v, v.start)
		s := sct("266919005", "Never smoked tobacco (finding)")
		switch {
		case p.smoker == 1 || p.smoker == 2 && !p.quit.IsZero() && p.quit.Before(v.start):
			s = sct("8517006", "Ex-smoker (finding)")
		case p.smoker == 2:
			s = sct("449868002", "Smokes tobacco daily (finding)")
		}
		o["valueCodeableConcept"] = s.concept()
		e.add("Observation", id, o)
	}
}

func (e *emitter) procedure(c code, v *visit) {
	id := e.nextID()
	start, end := v.start.Add(5*time.Minute), v.end
	if c == procMedRec || c == procThroatCulture || c == procECG || c == procSpirometry {
		end = start.Add(10 * time.Minute)
	}
	if end.After(v.end) {
		end = v.end
	}
	if !start.Before(end) {
		start = v.start
	}
	pr := obj{
		"status":          "completed",
		"code":            c.concept(),
		"subject":         e.subject(),
		"encounter":       ref("Encounter", v.id),
		"performedPeriod": obj{"start": dateTime(start), "end": dateTime(end)},
		"performer":       []any{obj{"actor": e.prac(v.prac)}},
	}
	if v.reason != nil && v.reason.id != "" {
		pr["reasonReference"] = []any{ref("Condition", v.reason.id)}
	}
	e.add("Procedure", id, pr)
}

func (e *emitter) medicationRequest(c *course, v *visit) {
	c.id = e.nextID()
	m := c.med
	status := "active"
	if !c.end.IsZero() && !c.end.After(e.p.to) {
		status = "stopped"
		if !m.chronic {
			status = "completed"
		}
	}
	dose := obj{
		"sequence": json.Number("1"),
		"text":     m.sig,
		"route":    m.route.concept(),
		"doseAndRate": []any{obj{
			"type":         concept("Ordered", code{"http://terminology.hl7.org/CodeSystem/dose-rate-type", "ordered", "Ordered"}),
			"doseQuantity": quantity(m.dose, decimals(m.dose), m.unit),
		}},
	}
	if m.perDay > 0 {
		dose["timing"] = obj{"repeat": obj{"frequency": json.Number(strconv.Itoa(m.perDay)), "period": json.Number("1"), "periodUnit": "d"}}
	} else {
		dose["asNeededBoolean"] = true
	}
	validity := obj{"start": dateTime(v.start)}
	if !c.end.IsZero() && c.end.After(v.start) {
		validity["end"] = dateTime(c.end)
	}
	mr := obj{
		"status":                    status,
		"intent":                    "order",
		"category":                  []any{concept("Community", code{"http://terminology.hl7.org/CodeSystem/medicationrequest-category", "community", "Community"})},
		"medicationCodeableConcept": m.rx.concept(),
		"subject":                   e.subject(),
		"encounter":                 ref("Encounter", v.id),
		"authoredOn":                dateTime(v.start),
		"requester":                 e.prac(v.prac),
		"dosageInstruction":         []any{dose},
		"dispenseRequest":           obj{"validityPeriod": validity},
	}
	if c.reason != nil && c.reason.id != "" {
		mr["reasonReference"] = []any{ref("Condition", c.reason.id)}
	}
	e.add("MedicationRequest", c.id, mr)
}

func decimals(x float64) int {
	switch {
	case x == float64(int64(x)):
		return 0
	case x*10 == float64(int64(x*10)):
		return 1
	}
	return 2
}

func (e *emitter) immunization(c code, v *visit) {
	id := e.nextID()
	r := e.p.r
	e.add("Immunization", id, obj{
		"status":             "completed",
		"vaccineCode":        c.concept(),
		"patient":            e.subject(),
		"encounter":          ref("Encounter", v.id),
		"occurrenceDateTime": dateTime(v.start.Add(5 * time.Minute)),
		"primarySource":      true,
		"lotNumber":          fmt.Sprintf("SYN%c%04d", 'A'+rune(r.intn(26)), r.intn(10000)),
		"performer":          []any{obj{"actor": e.prac(v.prac)}},
	})
}

func (e *emitter) allergy(a allergy, v *visit) {
	id := e.nextID()
	r := e.p.r
	d := a.def
	crit, sev := "low", "mild"
	if d.critical {
		crit, sev = "high", "severe"
	} else if r.chance(0.3) {
		sev = "moderate"
	}
	reactions := make([]any, len(d.reactions))
	for k, rc := range d.reactions {
		reactions[k] = rc.concept()
	}
	e.add("AllergyIntolerance", id, obj{
		"clinicalStatus":     code{sysAllerClin, "active", "Active"}.concept(),
		"verificationStatus": code{sysAllerVer, "confirmed", "Confirmed"}.concept(),
		"type":               "allergy",
		"category":           []any{d.category},
		"criticality":        crit,
		"code":               d.substance.concept(),
		"patient":            e.subject(),
		"encounter":          ref("Encounter", v.id),
		"onsetDateTime":      dateTime(a.onset),
		"recordedDate":       dateTime(v.start),
		"recorder":           e.prac(v.prac),
		"reaction":           []any{obj{"manifestation": reactions, "severity": sev}},
	})
}
