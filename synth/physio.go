package synth

import (
	"math"
	"time"
)

// The person's measurable state at a moment: true values that follow
// age, disease and treatment, plus measurement noise.

func (p *person) bloodPressure(t time.Time) (sys, dia float64) {
	r := p.r
	a := p.ageAt(t)
	if a < 18 {
		sys = 88 + 1.6*a + p.sbpOff*0.5 + r.normal(0, 5)
		dia = 0.6*sys - 4 + r.normal(0, 4)
	} else {
		sys = 108 + 0.45*(a-18) + p.sbpOff
		if c := p.has[cHypertension]; c != nil {
			dt := yearsBetween(c.onset, t)
			sys += 24*clamp((dt+4)/4, 0, 1) + 0.4*max(0, dt)
		}
		sys -= 9 * float64(p.countClasses(t, mACE, mThiazide, mCCB))
		if p.onClass(mBetaBlocker, t) {
			sys -= 5
		}
		if p.recordedBy(cESRD, t) {
			sys += 8
		}
		sys += r.normal(0, 6)
		dia = 0.5*sys + 12 - 0.2*max(0, a-60) + r.normal(0, 4)
	}
	sys = math.Round(clamp(sys, 70, 220))
	dia = math.Round(clamp(dia, 35, min(125, sys-15)))
	return sys, dia
}

var (
	hrByAge = [][2]float64{{0, 135}, {1, 120}, {3, 105}, {6, 95}, {12, 82}, {18, 73}}
	rrByAge = [][2]float64{{0, 40}, {1, 30}, {3, 25}, {6, 21}, {12, 18}, {18, 15}}
	hcByAge = [][2]float64{{0, 35}, {0.25, 40}, {0.5, 43}, {1, 46}, {2, 48.5}}
)

func (p *person) heartRate(t time.Time, fever bool) float64 {
	hr := interp(hrByAge, p.ageAt(t)) * p.hrBase / 73
	if p.onClass(mBetaBlocker, t) {
		hr -= 8
	}
	if fever {
		hr += 12
	}
	if p.hasAt(cAFib, t) {
		hr += p.r.between(0, 18)
	}
	return math.Round(clamp(hr+p.r.normal(0, 5), 40, 200))
}

func (p *person) respRate(t time.Time, v *visit) float64 {
	rr := interp(rrByAge, p.ageAt(t))
	if p.hasAt(cCOPD, t) {
		rr += 2
	}
	if v.reason != nil && (v.reason.kind == cPneumonia || v.reason.kind == cAsthmaAttack) {
		rr += 6
	}
	return math.Round(clamp(rr+p.r.normal(0, 1.5), 8, 60))
}

func (p *person) temperature(fever bool) float64 {
	if fever {
		return round(p.r.between(38.0, 39.4), 1)
	}
	return round(clamp(p.r.normal(36.8, 0.2), 36.0, 37.5), 1)
}

func (p *person) oxygenSaturation(t time.Time, v *visit) float64 {
	s := p.r.normal(98, 0.8)
	if p.hasAt(cCOPD, t) {
		s = p.r.normal(93, 1.5)
	}
	if v.reason != nil && (v.reason.kind == cPneumonia || v.reason.kind == cAsthmaAttack) {
		s = p.r.normal(91.5, 1.8)
	}
	return math.Round(clamp(s, 82, 100))
}

func (p *person) headCircumference(t time.Time) float64 {
	hc := interp(hcByAge, p.ageAt(t))
	if p.female {
		hc -= 1
	}
	return round(hc+p.r.normal(0, 0.4), 1)
}

// a1c is haemoglobin A1c (%) at t.
func (p *person) a1c(t time.Time) float64 {
	base := p.a1cBase + 0.005*max(0, p.ageAt(t)-30)
	c := p.has[cDiabetes]
	v := base
	if c != nil {
		dt := yearsBetween(c.onset, t)
		diagnosed := p.a1cTarget + 1.3
		switch {
		case dt < -4:
		case dt < 0:
			v = base + (6.3-base)*(dt+4)/4
		case dt < 0.5:
			v = diagnosed - (diagnosed-p.a1cTarget)*dt/0.5
		default:
			v = p.a1cTarget + 0.08*(dt-0.5)
		}
		if !p.insulinAt.IsZero() && t.After(p.insulinAt) {
			v -= min(1.3, yearsBetween(p.insulinAt, t)*5)
		}
		if dt >= 0 {
			v = max(v, 5.9)
		}
	}
	return round(clamp(v+p.r.normal(0, 0.18), 4.2, 14.5), 1)
}

// glucose (mg/dL, serum) follows the A1c through the estimated average
// glucose relation, less a little for the morning draw.
func (p *person) glucose(a1c float64) float64 {
	return math.Round(clamp(28.7*a1c-46.7-10+p.r.normal(0, 10), 55, 450))
}

// gfr is the person's true glomerular filtration rate (mL/min/1.73m²).
func (p *person) gfr(t time.Time) float64 {
	a := p.ageAt(t)
	v := 118 - 0.85*max(0, a-20) + p.egfrOff
	if c := p.has[cCKD3]; c != nil && p.ckdRate > 0 {
		v = min(v, p.ckdGFR-p.ckdRate*yearsBetween(c.onset, t))
	}
	if p.recordedBy(cESRD, t) {
		v = 9
	}
	return clamp(v+p.r.normal(0, 2.5), 4, 140)
}

// creatinine inverts the CKD-EPI 2021 equation for the person's GFR and
// returns the creatinine (mg/dL) and the eGFR a lab reports for it.
func (p *person) creatinine(t time.Time) (scr, egfr float64) {
	a := p.ageAt(t)
	if a < 18 {
		return round(clamp(0.25+0.03*a+p.r.normal(0, 0.05), 0.15, 1.1), 2), 0
	}
	g := p.gfr(t)
	kappa, alpha, sexF := 0.9, -0.302, 1.0
	if p.female {
		kappa, alpha, sexF = 0.7, -0.241, 1.012
	}
	k := 142 * math.Pow(0.9938, a) * sexF
	ratio := math.Pow(g/k, -1/1.2)
	if ratio < 1 {
		ratio = math.Pow(g/k, 1/alpha)
	}
	scr = round(clamp(ratio*kappa, 0.3, 15), 2)
	x := scr / kappa
	egfr = k * math.Pow(min(x, 1), alpha) * math.Pow(max(x, 1), -1.2)
	return scr, math.Round(egfr)
}

// labValue is one result of a panel.
type labValue struct {
	test  *labTest
	value float64
}

// labTest is a quantitative lab test with its reference range.
type labTest struct {
	code        code
	unit        string
	places      int
	low, high   float64 // 0: no bound
	lowF, highF float64 // when set, the range for women
}

func (l *labTest) rangeFor(female bool) (lo, hi float64) {
	lo, hi = l.low, l.high
	if female && (l.lowF != 0 || l.highF != 0) {
		lo, hi = l.lowF, l.highF
	}
	return lo, hi
}

var (
	tA1c     = &labTest{loinc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"), "%", 1, 4.0, 5.6, 0, 0}
	tGlucose = &labTest{loinc("2345-7", "Glucose [Mass/volume] in Serum or Plasma"), "mg/dL", 0, 70, 99, 0, 0}
	tBUN     = &labTest{loinc("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma"), "mg/dL", 0, 7, 20, 0, 0}
	tCreat   = &labTest{loinc("2160-0", "Creatinine [Mass/volume] in Serum or Plasma"), "mg/dL", 2, 0.7, 1.3, 0.5, 1.1}
	tEGFR    = &labTest{loinc("98979-8", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI 2021)"), "mL/min/{1.73_m2}", 0, 60, 0, 0, 0}
	tSodium  = &labTest{loinc("2951-2", "Sodium [Moles/volume] in Serum or Plasma"), "mmol/L", 0, 135, 145, 0, 0}
	tPotass  = &labTest{loinc("2823-3", "Potassium [Moles/volume] in Serum or Plasma"), "mmol/L", 1, 3.5, 5.1, 0, 0}
	tChlor   = &labTest{loinc("2075-0", "Chloride [Moles/volume] in Serum or Plasma"), "mmol/L", 0, 98, 107, 0, 0}
	tCO2     = &labTest{loinc("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma"), "mmol/L", 0, 22, 29, 0, 0}
	tCalcium = &labTest{loinc("17861-6", "Calcium [Mass/volume] in Serum or Plasma"), "mg/dL", 1, 8.6, 10.3, 0, 0}
	tWBC     = &labTest{loinc("6690-2", "Leukocytes [#/volume] in Blood by Automated count"), "10*3/uL", 1, 4.5, 11.0, 0, 0}
	tRBC     = &labTest{loinc("789-8", "Erythrocytes [#/volume] in Blood by Automated count"), "10*6/uL", 2, 4.5, 5.9, 4.1, 5.1}
	tHgb     = &labTest{loinc("718-7", "Hemoglobin [Mass/volume] in Blood"), "g/dL", 1, 13.5, 17.5, 12.0, 15.5}
	tHct     = &labTest{loinc("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count"), "%", 1, 41, 50, 36, 44}
	tMCV     = &labTest{loinc("787-2", "MCV [Entitic volume] by Automated count"), "fL", 1, 80, 100, 0, 0}
	tPlt     = &labTest{loinc("777-3", "Platelets [#/volume] in Blood by Automated count"), "10*3/uL", 0, 150, 400, 0, 0}
	tChol    = &labTest{loinc("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma"), "mg/dL", 0, 0, 199, 0, 0}
	tTrig    = &labTest{loinc("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma"), "mg/dL", 0, 0, 149, 0, 0}
	tHDL     = &labTest{loinc("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma"), "mg/dL", 0, 40, 0, 50, 0}
	tLDL     = &labTest{loinc("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay"), "mg/dL", 0, 0, 99, 0, 0}
	tUACR    = &labTest{loinc("9318-7", "Albumin/Creatinine [Mass Ratio] in Urine"), "mg/g", 0, 0, 29, 0, 0}
	tTSH     = &labTest{loinc("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma"), "m[IU]/L", 2, 0.4, 4.0, 0, 0}
	tINR     = &labTest{loinc("6301-6", "INR in Platelet poor plasma by Coagulation assay"), "{INR}", 1, 0.8, 1.1, 0, 0}
)

var (
	panelBMP   = loinc("51990-0", "Basic metabolic panel - Blood")
	panelCBC   = loinc("58410-2", "CBC panel - Blood by Automated count")
	panelLipid = loinc("57698-3", "Lipid panel with direct LDL - Serum or Plasma")
)

func (p *person) bmp(t time.Time, a1c float64) []labValue {
	r := p.r
	scr, egfr := p.creatinine(t)
	g := p.gfr(t)
	bun := 14 + r.normal(0, 3)
	if p.ageAt(t) < 18 {
		bun = 10 + r.normal(0, 2)
	}
	if g < 60 {
		bun += 0.6 * (60 - g)
	}
	if p.recordedBy(cESRD, t) {
		bun = r.normal(55, 9)
	}
	k := 4.2 + r.normal(0, 0.3)
	if p.onClass(mACE, t) {
		k += 0.15
	}
	if g < 45 {
		k += 0.02 * (45 - g)
	}
	na := 140 + r.normal(0, 1.8)
	if p.onClass(mThiazide, t) {
		na -= 2
	}
	co2 := 25 + r.normal(0, 1.8)
	if g < 45 {
		co2 -= 0.12 * (45 - g)
	}
	ca := 9.5 + r.normal(0, 0.3)
	if p.recordedBy(cESRD, t) {
		ca -= 0.6
	}
	out := []labValue{
		{tGlucose, p.glucose(a1c)},
		{tBUN, math.Round(clamp(bun, 3, 140))},
		{tCreat, scr},
		{tSodium, math.Round(clamp(na, 125, 155))},
		{tPotass, round(clamp(k, 2.8, 6.8), 1)},
		{tChlor, math.Round(103 + r.normal(0, 2))},
		{tCO2, math.Round(clamp(co2, 12, 34))},
		{tCalcium, round(ca, 1)},
	}
	if egfr > 0 {
		out = append(out, labValue{tEGFR, egfr})
	}
	return out
}

func (p *person) cbc(t time.Time, infection bool) []labValue {
	r := p.r
	hgb := p.hgbBase + r.normal(0, 0.4)
	if a := p.ageAt(t); a < 12 {
		hgb = 12.2 + r.normal(0, 0.7)
	}
	if g := p.gfr(t); g < 60 {
		hgb -= 0.06 * (60 - g)
	}
	if p.onClass(mESA, t) {
		hgb = r.normal(10.6, 0.6)
	}
	hgb = round(clamp(hgb, 6, 20), 1)
	wbc := p.wbcBase + r.normal(0, 0.8)
	if infection {
		wbc += r.between(4, 9)
	}
	rbc := round(hgb/3.0+r.normal(0, 0.1), 2)
	hct := round(hgb*2.95+r.normal(0, 0.8), 1)
	return []labValue{
		{tWBC, round(clamp(wbc, 2, 30), 1)},
		{tRBC, rbc},
		{tHgb, hgb},
		{tHct, hct},
		{tMCV, round(hct/rbc*10, 1)},
		{tPlt, math.Round(clamp(p.pltBase+r.normal(0, 20), 60, 700))},
	}
}

func (p *person) lipids(t time.Time) []labValue {
	r := p.r
	a := p.ageAt(t)
	ldl := p.ldlBase + 0.5*clamp(a-30, 0, 30)
	if p.onClass(mStatin, t) {
		ldl *= 0.62
	}
	ldl += r.normal(0, 8)
	hdl := p.hdlBase + r.normal(0, 4)
	tg := p.tgBase + r.normal(0, 20)
	if p.hasAt(cDiabetes, t) {
		hdl -= 4
		tg += 40
	}
	if p.bmiAt(t) >= 30 {
		tg += 30
	}
	ldl, hdl, tg = math.Round(clamp(ldl, 30, 320)), math.Round(clamp(hdl, 20, 110)), math.Round(clamp(tg, 35, 900))
	return []labValue{
		{tChol, math.Round(ldl + hdl + tg/5)},
		{tTrig, tg},
		{tHDL, hdl},
		{tLDL, ldl},
	}
}

func (p *person) uacr(t time.Time) float64 {
	v := p.uacrBase
	if c := p.has[cDiabetes]; c.activeAt(t) {
		v += 6 * max(0, yearsBetween(c.onset, t))
	}
	if p.hasAt(cCKD3, t) || p.hasAt(cCKD4, t) || p.hasAt(cESRD, t) {
		v *= 4
	}
	if p.onClass(mACE, t) {
		v *= 0.7
	}
	return math.Round(clamp(v*(1+p.r.normal(0, 0.15)), 1, 3000))
}

func (p *person) tsh(t time.Time) float64 {
	v := p.tshBase
	if c := p.has[cHypothyroidism]; c != nil {
		dt := yearsBetween(c.onset, t)
		switch {
		case dt < -1:
		case dt < 0.15:
			v = p.r.between(6.5, 12)
		default:
			v = p.tshBase*1.1 + p.r.normal(0, 0.6)
			if p.r.chance(0.12) {
				v = p.r.between(4.2, 7)
			}
		}
	}
	return round(clamp(v+p.r.normal(0, 0.15), 0.05, 40), 2)
}

func (p *person) inr(t time.Time) float64 {
	if p.onClass(mAnticoagWarfarin, t) {
		return round(clamp(p.r.normal(2.5, 0.45), 1.2, 4.8), 1)
	}
	return round(p.r.normal(1.0, 0.05), 1)
}

// phq9 is the PHQ-9 total score (0–27).
func (p *person) phq9(t time.Time) float64 {
	r := p.r
	v := float64(r.intn(4))
	if c := p.has[cDepression]; c.activeAt(t) {
		treated := false
		for _, k := range p.courses {
			if k.med.class == mSSRI && k.activeAt(t) && yearsBetween(k.start, t) > 8.0/52 {
				treated = true
			}
		}
		if treated {
			v = float64(3 + r.intn(7))
		} else {
			v = float64(10 + r.intn(11))
		}
	} else if c := p.has[cDepression]; c != nil && t.After(c.onset) {
		v = float64(r.intn(5))
	}
	if p.hasAt(cAnxiety, t) {
		v += 2
	}
	return min(v, 27)
}
