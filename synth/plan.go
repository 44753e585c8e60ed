package synth

import (
	"slices"
	"time"
)

// office reports whether the visit is a primary-care office visit.
func (v *visit) office() bool {
	return v.kind == vWellness || v.kind == vFollowUp || v.kind == vProblem || v.kind == vAcute
}

// plan walks the sorted visits and decides what enters the record at
// each: conditions known before the record, medication orders, labs,
// screenings and immunizations.
func (p *person) plan() {
	if len(p.visits) == 0 {
		return
	}
	r := p.r
	first := p.visits[0]
	for _, v := range p.visits {
		if v.office() {
			first = v
			break
		}
	}

	// Conditions that began before the record and are still active are
	// recorded at the first visit, with their true onset.
	for _, c := range p.conds {
		if conds[c.kind].chronic && c.onset.Before(p.from) && (c.abated.IsZero() || c.abated.After(first.start)) {
			first.diagnose = append(first.diagnose, c)
		}
	}
	for _, v := range p.visits {
		for _, c := range v.diagnose {
			c.recorded = v.start
		}
	}

	// Medication orders: acute courses are ordered where they were
	// planned; a chronic course is ordered where its condition is
	// recorded, or at the first visit once it starts.
	ordered := map[*course]bool{}
	for _, v := range p.visits {
		for _, c := range v.orders {
			ordered[c] = true
		}
	}
	kept := p.courses[:0]
	for _, c := range p.courses {
		if ordered[c] {
			kept = append(kept, c)
			continue
		}
		var at *visit
		switch {
		case c.reason != nil && c.reason.recorded.IsZero():
			// its condition never enters the record
		case c.reason != nil && !c.start.After(c.reason.recorded):
			at = p.visitAt(c.reason.recorded)
		default:
			for _, v := range p.visits {
				if (v.office() || v.kind == vDialysis) && !v.start.Before(c.start.Add(-day)) {
					at = v
					break
				}
			}
		}
		if at == nil || !c.end.IsZero() && !c.end.After(at.start) {
			continue // never in the record
		}
		if c.start.After(at.start) || at.start.Sub(c.start) < 3*day {
			c.start = at.start
		}
		at.orders = append(at.orders, c)
		kept = append(kept, c)
	}
	p.courses = kept

	var last [16]time.Time
	due := func(l labSet, t time.Time, years float64) bool {
		k := bitIndex(l)
		return last[k].IsZero() || yearsBetween(last[k], t) >= years*0.92
	}
	order := func(v *visit, l labSet) {
		v.labs |= l
	}
	given := map[string]time.Time{}
	lastTd := addYears(p.from, -p.r.between(0, 10))
	zoster := r.chance(0.4)
	var pneumoDone int

	for _, v := range p.visits {
		t := v.start
		a := p.ageAt(t)
		if v.kind == vWellness && a >= 18 && !p.recordedBy(cObesity, t) && p.has[cObesity] == nil && p.bmiAt(t) >= 30 {
			c := p.addCond(cObesity, t)
			c.recorded = t
			v.diagnose = append(v.diagnose, c)
		}
		diag := func(k condKind) bool {
			for _, c := range v.diagnose {
				if c.kind == k {
					return true
				}
			}
			return false
		}
		rec := func(k condKind) bool { return p.recordedBy(k, t) }
		switch v.kind {
		case vWellness, vFollowUp, vProblem:
			diab := rec(cDiabetes)
			if diab && due(labA1c, t, 0.22) || diag(cDiabetes) || rec(cPrediabetes) && due(labA1c, t, 1) ||
				v.kind == vWellness && a >= 35 && a <= 70 && p.bmiAt(t) >= 25 && due(labA1c, t, 3) {
				order(v, labA1c)
			}
			ckd := rec(cCKD3) || rec(cCKD4) || rec(cESRD)
			if (diab || ckd) && due(labUACR, t, 1) {
				order(v, labUACR)
			}
			switch {
			case rec(cCKD4) && due(labBMP, t, 0.25), rec(cCKD3) && due(labBMP, t, 0.5),
				(rec(cHypertension) || diab || rec(cAFib) || rec(cCAD)) && due(labBMP, t, 1),
				v.kind == vWellness && a >= 40 && due(labBMP, t, 2),
				diag(cCKD3) || diag(cCKD4) || diag(cHypertension):
				order(v, labBMP)
			}
			if ckd && due(labCBC, t, 0.5) || v.kind == vWellness && a >= 40 && due(labCBC, t, 2) || diag(cCKD3) {
				order(v, labCBC)
			}
			statin := p.onClass(mStatin, t)
			if (rec(cHyperlipidemia) || diab || rec(cCAD) || statin) && due(labLipid, t, 1) ||
				v.kind == vWellness && a >= 20 && due(labLipid, t, 5) || diag(cHyperlipidemia) || diag(cCAD) {
				order(v, labLipid)
			}
			if rec(cHypothyroidism) && due(labTSH, t, 1) || diag(cHypothyroidism) {
				order(v, labTSH)
			}
			if v.kind == vWellness && a >= 12 && due(labPHQ9, t, 0.9) || rec(cDepression) && v.kind != vWellness || diag(cDepression) {
				order(v, labPHQ9)
			}
			if v.kind == vWellness && a >= 13 {
				order(v, labSmoking)
			}
			if diag(cAsthma) && a >= 6 || diag(cCOPD) {
				v.procs = append(v.procs, procSpirometry)
			}
			if diag(cAFib) || diag(cCAD) {
				v.procs = append(v.procs, procECG)
			}
			if v.kind == vWellness && p.countActive(t) > 0 {
				v.procs = append(v.procs, procMedRec)
			}
		case vDialysis:
			if due(labBMP, t, 28/365.0) {
				order(v, labBMP|labCBC)
			}
		}
		if p.onClass(mAnticoagWarfarin, t) && v.office() && due(labINR, t, 25/365.0) {
			order(v, labINR)
		}
		for l := labBMP; l <= labSmoking; l <<= 1 {
			if v.labs&l != 0 {
				last[bitIndex(l)] = t
			}
		}

		// Immunizations at well visits.
		if v.kind != vWellness {
			continue
		}
		if a < 18 {
			for _, s := range childSchedule {
				key := s.vaccine.code + "/" + s.dose
				window := 1.5
				if s.age < 1 {
					window = 0.25 // infant series are not caught up late
				}
				if _, ok := given[key]; ok || a+0.05 < s.age || a > s.age+window {
					continue
				}
				c := s.vaccine
				if c == cvxHPV9 && t.Before(time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)) {
					c = code{sysCVX, "62", "HPV, quadrivalent"}
				}
				given[key] = t
				if c == cvxTdap {
					given["tdap"], lastTd = t, t
				}
				v.imms = append(v.imms, c)
			}
			continue
		}
		if yearsBetween(lastTd, t) >= 10 {
			c := cvxTd
			if _, ok := given["tdap"]; !ok {
				c, given["tdap"] = cvxTdap, t
			}
			v.imms = append(v.imms, c)
			lastTd = t
		}
		if a >= 65 {
			switch {
			case pneumoDone == 0 && t.Before(time.Date(2021, 10, 1, 0, 0, 0, 0, time.UTC)):
				v.imms = append(v.imms, cvxPCV13)
				pneumoDone, given["pcv"] = 1, t
			case pneumoDone == 0:
				v.imms = append(v.imms, cvxPCV20)
				pneumoDone = 2
			case pneumoDone == 1 && yearsBetween(given["pcv"], t) >= 1:
				v.imms = append(v.imms, cvxPPSV23)
				pneumoDone = 2
			}
		}
		if zoster && a >= 50 && !t.Before(time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)) {
			if _, ok := given["zoster1"]; !ok {
				given["zoster1"] = t
				v.imms = append(v.imms, cvxZoster)
			} else if _, ok := given["zoster2"]; !ok && yearsBetween(given["zoster1"], t) >= 2.0/12 {
				given["zoster2"] = t
				v.imms = append(v.imms, cvxZoster)
			}
		}
	}
}

// visitAt returns the visit that starts at t.
func (p *person) visitAt(t time.Time) *visit {
	i, ok := slices.BinarySearchFunc(p.visits, t, func(v *visit, t time.Time) int { return v.start.Compare(t) })
	if !ok {
		return nil
	}
	return p.visits[i]
}

// countActive counts the chronic medication courses active at t.
func (p *person) countActive(t time.Time) int {
	n := 0
	for _, c := range p.courses {
		if c.med.chronic && c.activeAt(t) {
			n++
		}
	}
	return n
}

func bitIndex(l labSet) int {
	k := 0
	for l > 1 {
		l >>= 1
		k++
	}
	return k
}

// childSchedule is the routine childhood schedule (age in years).
var childSchedule = []struct {
	age     float64
	vaccine code
	dose    string
}{
	{0, cvxHepBPed, "1"}, {1.0 / 12, cvxHepBPed, "2"}, {6.0 / 12, cvxHepBPed, "3"},
	{2.0 / 12, cvxDTaP, "1"}, {4.0 / 12, cvxDTaP, "2"}, {6.0 / 12, cvxDTaP, "3"}, {15.0 / 12, cvxDTaP, "4"}, {4, cvxDTaP, "5"},
	{2.0 / 12, cvxIPV, "1"}, {4.0 / 12, cvxIPV, "2"}, {6.0 / 12, cvxIPV, "3"}, {4, cvxIPV, "4"},
	{2.0 / 12, cvxHib, "1"}, {4.0 / 12, cvxHib, "2"}, {12.0 / 12, cvxHib, "3"},
	{2.0 / 12, cvxPCV13, "1"}, {4.0 / 12, cvxPCV13, "2"}, {6.0 / 12, cvxPCV13, "3"}, {12.0 / 12, cvxPCV13, "4"},
	{2.0 / 12, cvxRota, "1"}, {4.0 / 12, cvxRota, "2"}, {6.0 / 12, cvxRota, "3"},
	{1, cvxMMR, "1"}, {4, cvxMMR, "2"},
	{1, cvxVaricella, "1"}, {4, cvxVaricella, "2"},
	{1, cvxHepAPed, "1"}, {1.5, cvxHepAPed, "2"},
	{11, cvxTdap, "1"}, {11, cvxHPV9, "1"}, {11.5, cvxHPV9, "2"}, {11, cvxMenACWY, "1"}, {16, cvxMenACWY, "2"},
}
