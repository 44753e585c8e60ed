package synth

import (
	"slices"
	"time"
)

const (
	day  = 24 * time.Hour
	year = 365.2425 * 24 * float64(time.Hour)
)

// addYears moves t by y years (fractional).
func addYears(t time.Time, y float64) time.Time { return t.Add(time.Duration(y * year)) }

// yearsBetween is b-a in years.
func yearsBetween(a, b time.Time) float64 { return float64(b.Sub(a)) / year }

// cond is one condition of one patient.
type cond struct {
	kind     condKind
	onset    time.Time
	recorded time.Time // the visit that put it in the record
	abated   time.Time // zero: ongoing at the end of the window
	status   string    // clinicalStatus once abated: resolved, remission, inactive
	id       string    // set when emitted
}

func (c *cond) activeAt(t time.Time) bool {
	return c != nil && !c.onset.After(t) && (c.abated.IsZero() || c.abated.After(t))
}

// course is one medication course: the drug taken from start to end.
type course struct {
	med    *medDef
	start  time.Time // when the patient started taking it (may precede the record)
	end    time.Time // zero: still taken at the end of the window
	reason *cond
	id     string
}

func (c *course) activeAt(t time.Time) bool {
	return !c.start.After(t) && (c.end.IsZero() || c.end.After(t))
}

type allergy struct {
	def   *allergyDef
	onset time.Time
}

// visitKind is the kind of encounter.
type visitKind int

const (
	vWellness visitKind = iota
	vFollowUp
	vProblem
	vAcute
	vED
	vInpatient
	vVaccine
	vProcedure
	vDialysis
)

// visit is one planned encounter and what happens at it.
type visit struct {
	kind     visitKind
	start    time.Time
	end      time.Time
	reason   *cond
	diagnose []*cond   // conditions put in the record here
	orders   []*course // medication requests written here
	imms     []code
	procs    []code
	labs     labSet
	vitals   bool
	prac     int // practitioner index in the block pool
	hospital bool
	fever    bool
	id       string
}

// labSet is a set of lab orders.
type labSet uint16

const (
	labBMP labSet = 1 << iota
	labCBC
	labLipid
	labA1c
	labUACR
	labTSH
	labINR
	labPHQ9
	labSmoking
)

// person is one simulated patient.
type person struct {
	g      *Generator
	r      *rng
	idx    int
	id     string
	block  int
	heavy  bool
	female bool
	birth  time.Time
	from   time.Time // first day in the record
	to     time.Time // the end of the window

	// physiology, fixed per person
	adultHeight, bmi20, bmiSlope                  float64
	sbpOff, hrBase, a1cBase, egfrOff              float64
	ldlBase, hdlBase, tgBase, hgbBase, wbcBase    float64
	pltBase, tshBase, uacrBase, a1cTarget, ckdGFR float64
	ckdRate                                       float64
	smoker                                        int // 0 never, 1 former, 2 current
	quit                                          time.Time
	pcp                                           int
	diabetesDiag, insulinAt                       time.Time
	has                                           [numConds]*cond
	conds                                         []*cond
	courses                                       []*course
	allergies                                     []allergy
	visits                                        []*visit
	seq                                           int
}

func (p *person) ageAt(t time.Time) float64 { return yearsBetween(p.birth, t) }

// at returns the moment age a, in years.
func (p *person) at(a float64) time.Time { return addYears(p.birth, a) }

// clinicTime moves t to a weekday clinic slot (08:00–16:45 Eastern,
// written in UTC).
func (p *person) clinicTime(t time.Time) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch d.Weekday() {
	case time.Saturday:
		d = d.Add(2 * day)
	case time.Sunday:
		d = d.Add(day)
	}
	return d.Add(13*time.Hour + time.Duration(p.r.intn(36))*15*time.Minute)
}

// anyTime is a moment on t's day at any hour (emergencies).
func (p *person) anyTime(t time.Time) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return d.Add(time.Duration(p.r.intn(24*60)) * time.Minute)
}

func (p *person) addCond(k condKind, onset time.Time) *cond {
	c := &cond{kind: k, onset: onset}
	if conds[k].chronic {
		p.has[k] = c
	}
	p.conds = append(p.conds, c)
	return c
}

func (p *person) addCourse(m *medDef, start, end time.Time, reason *cond) *course {
	c := &course{med: m, start: start, end: end, reason: reason}
	p.courses = append(p.courses, c)
	return c
}

func (p *person) onClass(cl medClass, t time.Time) bool {
	for _, c := range p.courses {
		if c.med.class == cl && c.activeAt(t) {
			return true
		}
	}
	return false
}

// countClasses counts active courses among the classes.
func (p *person) countClasses(t time.Time, cls ...medClass) int {
	n := 0
	for _, c := range p.courses {
		if c.activeAt(t) && slices.Contains(cls, c.med.class) {
			n++
		}
	}
	return n
}

func (p *person) hasAt(k condKind, t time.Time) bool { return p.has[k].activeAt(t) }

// recordedBy reports whether condition k is in the record at t.
func (p *person) recordedBy(k condKind, t time.Time) bool {
	c := p.has[k]
	return c != nil && !c.recorded.IsZero() && !c.recorded.After(t) && (c.abated.IsZero() || c.abated.After(t))
}

// simulate builds patient i and appends its resources to out.
func simulate(g *Generator, i int, out []Resource) []Resource {
	p := &person{
		g:     g,
		r:     newRNG(g.opt.Seed, 1, uint64(i)),
		idx:   i,
		id:    g.PatientID(i),
		block: i / BlockSize,
		heavy: g.Heavy(i),
		to:    g.opt.End,
	}
	p.demographics()
	p.physiology()
	p.chronicConditions()
	p.treatments()
	p.schedule()
	return p.emit(out)
}

// demographics draws sex, age and the start of the record.
func (p *person) demographics() {
	r := p.r
	p.female = r.chance(0.51)
	// Age at the end of the window, by US census bands.
	var age float64
	switch r.pick(0.06, 0.16, 0.22, 0.19, 0.19, 0.13, 0.05) {
	case 0:
		age = r.between(0, 5)
	case 1:
		age = r.between(5, 18)
	case 2:
		age = r.between(18, 35)
	case 3:
		age = r.between(35, 50)
	case 4:
		age = r.between(50, 65)
	case 5:
		age = r.between(65, 80)
	default:
		age = r.between(80, 97)
	}
	if p.heavy {
		age = r.between(58, 80)
	}
	p.birth = addYears(p.to, -age).Truncate(day)
	p.from = p.g.opt.Start
	// A third of the patients joined the practice during the window.
	if r.chance(0.33) {
		p.from = addYears(p.from, r.between(0, yearsBetween(p.from, p.to)*0.8))
	}
	if p.heavy {
		p.from = p.g.opt.Start
	}
	if p.from.Before(p.birth) {
		p.from = p.birth
	}
	p.pcp = r.intn(poolPCPs)
	if age < 18 && r.chance(0.7) {
		p.pcp = 5 + r.intn(2) // pediatricians
	}
}

// physiology draws the person's fixed physiological parameters.
func (p *person) physiology() {
	r := p.r
	if p.female {
		p.adultHeight = r.normal(162.5, 6.5)
		p.hdlBase = r.normal(58, 10)
		p.hgbBase = r.normal(13.6, 0.8)
	} else {
		p.adultHeight = r.normal(176.5, 7)
		p.hdlBase = r.normal(47, 9)
		p.hgbBase = r.normal(15.0, 0.9)
	}
	p.bmi20 = clamp(r.normal(23.5, 3.5), 17, 40)
	p.bmiSlope = clamp(r.normal(0.12, 0.1), -0.1, 0.4)
	p.sbpOff = r.normal(0, 7)
	p.hrBase = r.normal(73, 7)
	p.a1cBase = r.normal(5.25, 0.2)
	p.egfrOff = r.normal(0, 7)
	p.ldlBase = r.normal(108, 22)
	p.tgBase = r.normal(120, 30)
	p.wbcBase = r.normal(7, 1.1)
	p.pltBase = r.normal(255, 40)
	p.tshBase = clamp(r.normal(1.8, 0.5), 0.6, 3.6)
	p.uacrBase = clamp(r.normal(9, 4), 2, 25)
	if p.ageAt(p.to) >= 15 {
		switch r.pick(0.68, 0.20, 0.12) {
		case 1:
			p.smoker = 1
		case 2:
			p.smoker = 2
			if r.chance(0.3) {
				p.quit = addYears(p.from, r.between(0, yearsBetween(p.from, p.to)))
			}
		}
	}
	if p.heavy {
		p.bmi20 = r.between(26, 31)
	}
}

// bmiAt is the person's underlying BMI at t (no measurement noise).
func (p *person) bmiAt(t time.Time) float64 {
	a := p.ageAt(t)
	if a < 20 {
		return interp(bmiByAge, a) * p.bmi20 / 22
	}
	b := p.bmi20 + p.bmiSlope*(min(a, 65)-20)
	if a > 65 {
		b -= 0.06 * (a - 65)
	}
	if p.recordedBy(cESRD, t) {
		b -= 2
	}
	return b
}

// heightAt is the person's height in cm at t.
func (p *person) heightAt(t time.Time) float64 {
	a := p.ageAt(t)
	curve := maleHeight
	if p.female {
		curve = femaleHeight
	}
	if a < 18 {
		return interp(curve, a) * p.adultHeight / interp(curve, 18)
	}
	h := p.adultHeight
	if a > 65 {
		h -= 0.12 * (a - 65)
	}
	return h
}

// Growth: median height (cm) and BMI by age (years); a person scales
// them by their own adult height and BMI.
var (
	maleHeight   = [][2]float64{{0, 50}, {0.5, 67}, {1, 75.5}, {2, 87}, {3, 95}, {4, 102.5}, {5, 109}, {6, 115.5}, {8, 128}, {10, 138.5}, {12, 149.5}, {14, 163.5}, {16, 173}, {18, 176.5}}
	femaleHeight = [][2]float64{{0, 49}, {0.5, 65.5}, {1, 74}, {2, 86}, {3, 95}, {4, 101.5}, {5, 108}, {6, 115}, {8, 127.5}, {10, 138.5}, {12, 151.5}, {14, 160}, {16, 162}, {18, 162.5}}
	bmiByAge     = [][2]float64{{0, 13.4}, {0.5, 17.2}, {1, 17.5}, {2, 16.4}, {4, 15.6}, {6, 15.4}, {8, 16}, {10, 17}, {12, 18.3}, {14, 19.5}, {16, 20.6}, {18, 21.4}, {20, 22}}
)

func interp(tab [][2]float64, x float64) float64 {
	if x <= tab[0][0] {
		return tab[0][1]
	}
	for k := 1; k < len(tab); k++ {
		if x <= tab[k][0] {
			a, b := tab[k-1], tab[k]
			return a[1] + (b[1]-a[1])*(x-a[0])/(b[0]-a[0])
		}
	}
	return tab[len(tab)-1][1]
}

// chronicConditions decides which chronic conditions the person has and
// when each began. The probabilities are the share of people of that
// age and sex who have been diagnosed (US figures, rounded; see
// docs/generate.md).
func (p *person) chronicConditions() {
	r := p.r
	age := p.ageAt(p.to)
	f := p.female
	onsetIn := func(k condKind, lo, spread float64) {
		if age < lo {
			return
		}
		a := r.between(max(lo, age-spread), age)
		p.addCond(k, p.at(a))
	}
	bmi50 := p.bmi20 + p.bmiSlope*30
	obese := bmi50 >= 30

	// Type 2 diabetes.
	pd := band(age, []float64{18, 45, 65}, []float64{0, 0.03, 0.13, 0.22})
	if obese {
		pd *= 1.8
	}
	if p.heavy || r.chance(pd) {
		if p.heavy {
			p.addCond(cDiabetes, addYears(p.to, -r.between(16, 22)))
		} else {
			onsetIn(cDiabetes, 30, 25)
		}
		// Glycaemic control once treated (target HbA1c, %).
		switch r.pick(0.45, 0.35, 0.20) {
		case 0:
			p.a1cTarget = r.normal(6.7, 0.25)
		case 1:
			p.a1cTarget = r.normal(7.6, 0.3)
		default:
			p.a1cTarget = r.normal(8.9, 0.5)
		}
		if p.heavy {
			p.a1cTarget = r.normal(8.3, 0.4)
		}
	} else if age >= 35 && r.chance(0.07*btof(obese, 2, 1)) {
		onsetIn(cPrediabetes, 35, 15)
		p.a1cBase = r.between(5.75, 6.25)
	}

	// Hypertension.
	ph := band(age, []float64{18, 40, 60, 75}, []float64{0.003, 0.08, 0.30, 0.55, 0.65})
	if obese {
		ph *= 1.4
	}
	if p.has[cDiabetes] != nil {
		ph *= 1.5
	}
	if p.heavy {
		p.addCond(cHypertension, addYears(p.to, -r.between(15, 20)))
	} else if r.chance(ph) {
		onsetIn(cHypertension, 25, 25)
	}

	// Hyperlipidemia.
	if r.chance(band(age, []float64{20, 40, 60}, []float64{0, 0.05, 0.25, 0.40})) {
		onsetIn(cHyperlipidemia, 25, 25)
		p.ldlBase += r.between(35, 60)
	}

	// Chronic kidney disease, stage 3 and beyond.
	pk := band(age, []float64{45, 65}, []float64{0, 0.035, 0.12})
	if p.has[cDiabetes] != nil {
		pk *= 2.5
	}
	if p.has[cHypertension] != nil {
		pk *= 1.5
	}
	if p.heavy {
		onset := addYears(p.to, -r.between(11, 13))
		p.addCond(cCKD3, onset)
		p.ckdGFR = r.between(54, 58)
		// Reach eGFR 14 about four years before the end: 600+ dialysis
		// sessions follow.
		p.ckdRate = (p.ckdGFR - 14) / (yearsBetween(onset, p.to) - r.between(4.1, 4.6))
	} else if r.chance(pk) {
		onsetIn(cCKD3, 45, 12)
		p.ckdGFR = r.between(50, 59)
		p.ckdRate = clamp(r.normal(2.2, 1.2), 0.3, 5)
	}
	if c := p.has[cCKD3]; c != nil {
		// Where the decline crosses 30 and 15 the stage changes.
		if t4 := addYears(c.onset, (p.ckdGFR-29.5)/p.ckdRate); t4.Before(p.to) {
			c.abated, c.status = t4, "inactive"
			c4 := p.addCond(cCKD4, t4)
			if t5 := addYears(c.onset, (p.ckdGFR-14.5)/p.ckdRate); t5.Before(p.to) {
				c4.abated, c4.status = t5, "inactive"
				p.addCond(cESRD, t5)
			}
		}
	}

	// Coronary artery disease.
	pc := band(age, []float64{45, 65}, []float64{0, btof(f, 0.03, 0.05), btof(f, 0.09, 0.15)})
	if p.smoker > 0 {
		pc *= 1.5
	}
	if p.has[cDiabetes] != nil {
		pc *= 1.5
	}
	if r.chance(pc) {
		onsetIn(cCAD, 45, 15)
	}
	// Atrial fibrillation.
	if r.chance(band(age, []float64{60, 75}, []float64{0, 0.04, 0.10})) {
		onsetIn(cAFib, 60, 12)
	}
	// Asthma: children and adults.
	if r.chance(btof(age < 18, 0.07, btof(f, 0.10, 0.065))) {
		onsetIn(cAsthma, 2, age)
	}
	// COPD, mostly in smokers.
	pcopd := band(age, []float64{40, 65}, []float64{0, 0.03, 0.08})
	if p.smoker > 0 {
		pcopd *= 3
	}
	if r.chance(pcopd) {
		onsetIn(cCOPD, 40, 20)
	}
	// Depression and anxiety from adolescence.
	if r.chance(band(age, []float64{12, 18}, []float64{0, 0.08, btof(f, 0.15, 0.08)})) {
		onsetIn(cDepression, 12, 20)
	}
	if r.chance(band(age, []float64{12}, []float64{0, btof(f, 0.10, 0.05)})) {
		onsetIn(cAnxiety, 12, 20)
	}
	// Hypothyroidism, mostly women and rising with age.
	if r.chance(band(age, []float64{18, 40}, []float64{0, btof(f, 0.03, 0.008), btof(f, 0.09, 0.025)})) {
		onsetIn(cHypothyroidism, 18, 25)
	}
	// Osteoarthritis.
	po := band(age, []float64{45, 65}, []float64{0, 0.10, 0.28})
	if obese {
		po *= 1.5
	}
	if r.chance(po) {
		onsetIn(cOsteoarthritis, 45, 15)
	}

	// Allergies.
	for k := range allergyDefs {
		d := &allergyDefs[k]
		if age >= d.minAge && r.chance(d.p) {
			a := r.between(d.minAge, min(d.maxAge, age))
			p.allergies = append(p.allergies, allergy{d, p.at(a)})
		}
	}
}

// band returns vals[k] for the k-th age band: vals[0] below cuts[0],
// vals[k] from cuts[k-1].
func band(age float64, cuts, vals []float64) float64 {
	k := 0
	for k < len(cuts) && age >= cuts[k] {
		k++
	}
	return vals[k]
}

func btof(b bool, yes, no float64) float64 {
	if b {
		return yes
	}
	return no
}

func (p *person) allergicTo(cl medClass) bool {
	for _, a := range p.allergies {
		if a.def.substance.code == "7980" && cl == mAntibiotic {
			return true
		}
		if a.def.substance.code == "1191" && cl == mAspirin {
			return true
		}
	}
	return false
}

// treatments decides the medication courses of the chronic conditions,
// started at onset (the record may begin later, with the course running).
func (p *person) treatments() {
	r := p.r
	later := func(t time.Time, lo, hi float64) time.Time { return addYears(t, r.between(lo, hi)) }
	if c := p.has[cDiabetes]; c != nil {
		p.addCourse(medMetformin, c.onset, time.Time{}, c)
		if p.a1cTarget > 8.2 && r.chance(0.8) || p.a1cTarget > 7.3 && r.chance(0.2) {
			p.insulinAt = later(c.onset, 1, 5)
			if p.insulinAt.Before(p.to) {
				p.addCourse(medInsulin, p.insulinAt, time.Time{}, c)
			} else {
				p.insulinAt = time.Time{}
			}
		}
	}
	if c := p.has[cHypertension]; c != nil {
		first := []*medDef{medLisinopril, medHCTZ, medAmlodipine}[r.pick(0.55, 0.25, 0.20)]
		if p.has[cDiabetes] != nil || p.has[cCKD3] != nil {
			first = medLisinopril
		}
		p.addCourse(first, c.onset, time.Time{}, c)
		n := 1
		for _, m := range []*medDef{medLisinopril, medHCTZ, medAmlodipine} {
			if m == first || !r.chance(btof(n == 1, 0.45, 0.3)) {
				continue
			}
			p.addCourse(m, later(c.onset, 0.5, 4), time.Time{}, c)
			n++
		}
	}
	statin := func(c *cond) {
		for _, k := range p.courses {
			if k.med.class == mStatin {
				return
			}
		}
		m := medAtorvastatin
		if r.chance(0.35) {
			m = medSimvastatin
		}
		p.addCourse(m, later(c.onset, 0, 0.3), time.Time{}, c)
	}
	if c := p.has[cHyperlipidemia]; c != nil && r.chance(0.85) {
		statin(c)
	}
	if c := p.has[cCAD]; c != nil {
		statin(c)
		if !p.allergicTo(mAspirin) {
			p.addCourse(medAspirin, c.onset, time.Time{}, c)
		}
		p.addCourse(medMetoprolol, c.onset, time.Time{}, c)
		p.addCourse(medNitro, c.onset, time.Time{}, c)
	}
	if c := p.has[cDiabetes]; c != nil && p.ageAt(c.onset) >= 40 && r.chance(0.7) {
		statin(c)
	}
	if c := p.has[cAFib]; c != nil {
		if r.chance(0.35) {
			p.addCourse(medWarfarin, c.onset, time.Time{}, c)
		} else {
			p.addCourse(medApixaban, c.onset, time.Time{}, c)
		}
		if p.has[cCAD] == nil {
			p.addCourse(medMetoprolol, c.onset, time.Time{}, c)
		}
	}
	if c := p.has[cAsthma]; c != nil {
		p.addCourse(medAlbuterol, c.onset, time.Time{}, c)
		if r.chance(0.6) {
			p.addCourse(medFluticasone, later(c.onset, 0, 1), time.Time{}, c)
		}
	}
	if c := p.has[cCOPD]; c != nil {
		if p.has[cAsthma] == nil {
			p.addCourse(medAlbuterol, c.onset, time.Time{}, c)
		}
		p.addCourse(medTiotropium, c.onset, time.Time{}, c)
	}
	ssri := func(c *cond) {
		m := []*medDef{medSertraline, medCitalopram, medFluoxetine, medEscitalopram}[r.intn(4)]
		k := p.addCourse(m, c.onset, time.Time{}, c)
		// Half recover within a few years; the drug is stopped then.
		if c.kind == cDepression && r.chance(0.5) {
			if end := later(c.onset, 0.8, 3); end.Before(p.to) {
				c.abated, c.status = end, "remission"
				k.end = end
			}
		}
	}
	if c := p.has[cDepression]; c != nil {
		ssri(c)
	}
	if c := p.has[cAnxiety]; c != nil && p.countClasses(c.onset, mSSRI) == 0 && r.chance(0.6) {
		ssri(c)
	}
	if c := p.has[cHypothyroidism]; c != nil {
		p.addCourse(medLevothyrox, c.onset, time.Time{}, c)
	}
	if c := p.has[cOsteoarthritis]; c != nil {
		if p.has[cCKD3] == nil && r.chance(0.5) {
			p.addCourse(medNaproxen, c.onset, time.Time{}, c)
		} else {
			p.addCourse(medAcetaminophen, c.onset, time.Time{}, c)
		}
	}
	if c := p.has[cESRD]; c != nil {
		p.addCourse(medEpoetin, addYears(c.onset, 0.1), time.Time{}, c)
	}
	for _, a := range p.allergies {
		switch a.def.category {
		case "food":
			if a.def.critical {
				p.addCourse(medEpinephrine, a.onset, time.Time{}, nil)
			}
		case "environment":
			if a.def.substance.code != "111088007" && r.chance(0.6) && !p.onClass(mAntihistamine, p.to) {
				p.addCourse(medLoratadine, a.onset, time.Time{}, nil)
			}
		}
	}
}
