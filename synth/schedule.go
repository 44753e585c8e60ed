package synth

import (
	"slices"
	"time"
)

// schedule plans the person's encounters in the record window and what
// happens at each.
func (p *person) schedule() {
	r := p.r
	from, to := p.from, p.to
	if !from.Before(to) {
		return
	}
	add := func(v *visit) *visit {
		if v.start.Before(from) || !v.start.Before(to) || v.start.Before(p.birth) {
			return nil
		}
		if v.end.IsZero() {
			v.end = v.start.Add(time.Duration(15+r.intn(4)*5) * time.Minute)
		}
		if v.end.After(to) {
			v.end = to
		}
		p.visits = append(p.visits, v)
		return v
	}
	office := func(kind visitKind, t time.Time, reason *cond) *visit {
		return add(&visit{kind: kind, start: p.clinicTime(t), reason: reason, vitals: true, prac: p.pcp})
	}

	// Well-child visits on the AAP schedule (months), then yearly
	// check-ups; adults most years.
	for _, m := range []float64{0.2, 1, 2, 4, 6, 9, 12, 15, 18, 24, 30, 36} {
		office(vWellness, p.at(m/12+r.between(0, 0.02)), nil)
	}
	for a := 4.0; a < 18; a++ {
		if r.chance(0.85) {
			office(vWellness, p.at(a+r.between(0, 0.1)), nil)
		}
	}
	for y := from.Year(); y <= to.Year(); y++ {
		t := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.intn(365)) * day)
		a := p.ageAt(t)
		if a >= 18 && r.chance(btof(a >= 65, 0.85, 0.7)) || p.heavy {
			office(vWellness, t, nil)
		}
	}
	// A first visit when joining the practice.
	office(vWellness, from.Add(time.Duration(r.intn(45))*day), nil)

	// Chronic conditions that begin inside the record are diagnosed at a
	// problem visit; the others are recorded at the first visit.
	for _, c := range p.conds {
		if !conds[c.kind].chronic || c.onset.Before(from) {
			continue
		}
		if v := office(vProblem, c.onset, c); v != nil {
			v.diagnose = append(v.diagnose, c)
			c.onset = v.start // the diagnosis dates the onset
		}
	}

	p.followUps(add, office)
	p.acuteEpisodes(add, office)
	p.dialysis(add)
	p.screenings(add)
	p.seasonalVaccines(add)

	slices.SortStableFunc(p.visits, func(a, b *visit) int { return a.start.Compare(b.start) })
	p.plan()
}

// followUps schedules chronic-care visits at the interval the sickest
// active condition needs.
func (p *person) followUps(add func(*visit) *visit, office func(visitKind, time.Time, *cond) *visit) {
	r := p.r
	interval := func(t time.Time) (float64, *cond) {
		best, why := 0.0, (*cond)(nil)
		consider := func(k condKind, months float64) {
			if c := p.has[k]; c.activeAt(t) && (best == 0 || months < best) {
				best, why = months, c
			}
		}
		consider(cHyperlipidemia, 12)
		consider(cHypothyroidism, 12)
		consider(cAsthma, 12)
		consider(cOsteoarthritis, 12)
		consider(cHypertension, 6)
		consider(cCOPD, 6)
		consider(cCAD, 6)
		consider(cAFib, 6)
		consider(cCKD3, 6)
		consider(cAnxiety, 6)
		if c := p.has[cDepression]; c.activeAt(t) {
			consider(cDepression, btof(yearsBetween(c.onset, t) < 0.3, 1, 4))
		}
		consider(cDiabetes, btof(p.a1cTarget > 8, 3, 4))
		consider(cCKD4, 3)
		if p.onClass(mAnticoagWarfarin, t) {
			consider(cAFib, 1) // INR checks
		}
		return best, why
	}
	t := p.from.Add(time.Duration(30+r.intn(60)) * day)
	for t.Before(p.to) {
		months, why := interval(t)
		if months == 0 {
			t = t.Add(time.Duration(60+r.intn(60)) * day)
			continue
		}
		if p.recordedBy(cESRD, t) {
			months = 3 // nephrology sees them at dialysis; the PCP quarterly
		}
		office(vFollowUp, t, why)
		t = t.Add(time.Duration(months*30.4*r.between(0.85, 1.15)) * day)
	}
}

// acuteEpisodes schedules sick visits, emergencies and admissions.
func (p *person) acuteEpisodes(add func(*visit) *visit, office func(visitKind, time.Time, *cond) *visit) {
	r := p.r
	for y := p.from.Year(); y <= p.to.Year(); y++ {
		mid := time.Date(y, 7, 1, 0, 0, 0, 0, time.UTC)
		a := p.ageAt(mid)
		if a < 0 {
			continue
		}
		rate := band(a, []float64{5, 18, 65}, []float64{2.0, 1.0, 0.6, 0.8})
		for k := r.poisson(rate); k > 0; k-- {
			t := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.intn(365)) * day)
			p.sickVisit(t, office)
		}
		edRate := 0.08
		if p.has[cAsthma].activeAt(mid) {
			edRate += 0.15
		}
		if p.has[cCAD].activeAt(mid) {
			edRate += 0.2
		}
		if a >= 65 || p.has[cCOPD].activeAt(mid) {
			edRate += 0.06
		}
		for k := r.poisson(edRate); k > 0; k-- {
			t := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.intn(365)) * day)
			p.emergency(t, add)
		}
	}
}

// sickVisit plans one acute office visit.
func (p *person) sickVisit(t time.Time, office func(visitKind, time.Time, *cond) *visit) {
	r := p.r
	a := p.ageAt(t)
	covid := !t.Before(time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC))
	w := []float64{
		cURI - cPharyngitis:         3,
		cPharyngitis - cPharyngitis: 2,
		cStrep - cPharyngitis:       btof(a < 25, 1.5, 0.4),
		cBronchitis - cPharyngitis:  btof(a >= 18, 1.2, 0.5),
		cOtitis - cPharyngitis:      btof(a < 8, 3, 0.2),
		cUTI - cPharyngitis:         btof(p.female && a >= 15, 1.5, 0.1),
		cSinusitis - cPharyngitis:   btof(a >= 18, 1.5, 0.3),
		cSprain - cPharyngitis:      btof(a >= 8 && a < 60, 0.8, 0.2),
		cCOVID - cPharyngitis:       btof(covid, 1.2, 0),
	}
	k := cPharyngitis + condKind(r.pick(w...))
	c := p.addCond(k, t)
	v := office(vAcute, t, c)
	if v == nil {
		return
	}
	c.onset = v.start.Add(-time.Duration(1+r.intn(4)) * day)
	if c.onset.Before(p.birth) {
		c.onset = p.birth
	}
	c.abated, c.status = v.start.Add(time.Duration(7+r.intn(10))*day), "resolved"
	if k == cSprain {
		c.abated = v.start.Add(time.Duration(18+r.intn(14)) * day)
	}
	v.diagnose = append(v.diagnose, c)
	v.fever = k == cStrep || k == cOtitis || k == cCOVID || k == cBronchitis && r.chance(0.4)
	stop := func(d int) time.Time { return v.start.Add(time.Duration(d) * day) }
	switch k {
	case cStrep, cOtitis:
		if k == cStrep {
			v.procs = append(v.procs, procThroatCulture)
		}
		m := medAmoxicillin
		if p.allergicTo(mAntibiotic) {
			m = medAzithro
		}
		v.orders = append(v.orders, p.addCourse(m, v.start, stop(10), c))
	case cPharyngitis:
		v.procs = append(v.procs, procThroatCulture)
	case cUTI:
		v.orders = append(v.orders, p.addCourse(medNitrofur, v.start, stop(5), c))
	case cSprain:
		v.orders = append(v.orders, p.addCourse(medIbuprofen, v.start, stop(14), c))
	default:
		if r.chance(0.4) && !p.onClass(mAnalgesic, v.start) {
			v.orders = append(v.orders, p.addCourse(medAcetaminophen, v.start, stop(7), c))
		}
	}
}

// emergency plans one emergency-department visit, and an admission for
// pneumonia in the old and the chronically ill.
func (p *person) emergency(t time.Time, add func(*visit) *visit) {
	r := p.r
	a := p.ageAt(t)
	w := []float64{
		0: 1,                                                    // laceration
		1: btof(a >= 5, 0.8, 0.1),                               // sprain
		2: btof(a >= 40, 0.6, 0) + btof(p.hasAt(cCAD, t), 3, 0), // chest pain
		3: btof(p.hasAt(cAsthma, t), 3, 0),                      // asthma exacerbation
		4: btof(a >= 60 || p.hasAt(cCOPD, t), 1.2, 0.15),        // pneumonia
	}
	kind := []condKind{cLaceration, cSprain, cChestPain, cAsthmaAttack, cPneumonia}[r.pick(w...)]
	start := p.anyTime(t)
	ed := pracED + r.intn(2)
	v := add(&visit{kind: vED, start: start, end: start.Add(time.Duration(90+r.intn(240)) * time.Minute), vitals: true, prac: ed, hospital: true})
	if v == nil {
		return
	}
	c := p.addCond(kind, start.Add(-time.Duration(r.intn(12))*time.Hour))
	if c.onset.Before(p.birth) {
		c.onset = p.birth
	}
	c.abated, c.status = start.Add(time.Duration(10+r.intn(14))*day), "resolved"
	v.reason = c
	v.diagnose = append(v.diagnose, c)
	stop := func(d int) time.Time { return v.start.Add(time.Duration(d) * day) }
	switch kind {
	case cLaceration:
		v.procs = append(v.procs, procSuture)
	case cSprain:
		v.orders = append(v.orders, p.addCourse(medIbuprofen, v.start, stop(14), c))
	case cChestPain:
		v.procs = append(v.procs, procECG)
		v.labs |= labBMP | labCBC
		c.abated = start.Add(time.Duration(1+r.intn(3)) * day)
	case cAsthmaAttack:
		v.orders = append(v.orders, p.addCourse(medPrednisone, v.start, stop(5), c))
	case cPneumonia:
		v.fever = true
		v.procs = append(v.procs, procChestXray)
		v.labs |= labBMP | labCBC
		m := medAzithro
		if r.chance(0.5) && !p.allergicTo(mAntibiotic) {
			m = medAmoxicillin
		}
		if a >= 65 || p.hasAt(cCOPD, t) || r.chance(0.2) {
			// Admitted from the emergency department.
			in := v.end.Add(30 * time.Minute)
			stay := time.Duration(2+r.intn(5)) * day
			ip := add(&visit{kind: vInpatient, start: in, end: in.Add(stay), reason: c, vitals: true, prac: pracHospitalist, hospital: true, labs: labBMP | labCBC, fever: true})
			if ip != nil {
				ip.orders = append(ip.orders, p.addCourse(m, ip.start, ip.end.Add(5*day), c))
				c.abated = ip.end.Add(time.Duration(7+r.intn(10)) * day)
				return
			}
		}
		v.orders = append(v.orders, p.addCourse(m, v.start, stop(7), c))
	}
}

// dialysis schedules haemodialysis three times a week from end-stage
// renal disease on.
func (p *person) dialysis(add func(*visit) *visit) {
	c := p.has[cESRD]
	if c == nil {
		return
	}
	t := c.onset.Add(10 * day).Truncate(day)
	for t.Before(p.to) {
		switch t.Weekday() {
		case time.Monday, time.Wednesday, time.Friday:
			s := t.Add(11*time.Hour + time.Duration(p.r.intn(4))*15*time.Minute)
			add(&visit{kind: vDialysis, start: s, end: s.Add(4 * time.Hour), reason: c, vitals: true, prac: pracNephrology, hospital: true,
				procs: []code{procHemodialysis}})
		}
		t = t.Add(day)
	}
}

// screenings schedules colonoscopies and mammograms as outpatient
// procedures.
func (p *person) screenings(add func(*visit) *visit) {
	r := p.r
	proc := func(t time.Time, c code) {
		s := p.clinicTime(t)
		add(&visit{kind: vProcedure, start: s, end: s.Add(time.Duration(30+r.intn(4)*15) * time.Minute), prac: p.pcp, hospital: true, procs: []code{c}})
	}
	if r.chance(0.65) {
		// USPSTF: from 50, from 45 since 2021; every 10 years.
		start := p.at(50 + r.between(0, 2))
		if s45 := p.at(45 + r.between(0, 2)); s45.After(time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC)) && s45.Before(start) {
			start = s45
		}
		for t := start; t.Before(p.to) && p.ageAt(t) < 76; t = addYears(t, 10) {
			proc(t, procColonoscopy)
		}
	}
	if p.female && r.chance(0.75) {
		for t := p.at(40 + r.between(0, 1)); t.Before(p.to) && p.ageAt(t) < 75; t = addYears(t, r.between(1, 2.5)) {
			proc(t, procMammography)
		}
	}
}

// seasonalVaccines plans influenza shots each autumn, at an office visit
// when there is one, and the 2021 COVID-19 primary series.
func (p *person) seasonalVaccines(add func(*visit) *visit) {
	r := p.r
	vaccineVisit := func(t time.Time, c code) {
		v := add(&visit{kind: vVaccine, start: p.clinicTime(t), prac: p.pcp})
		if v != nil {
			v.end = v.start.Add(10 * time.Minute)
			v.imms = append(v.imms, c)
		}
	}
	for y := p.from.Year(); y <= p.to.Year(); y++ {
		open := time.Date(y, 9, 1, 0, 0, 0, 0, time.UTC)
		shut := time.Date(y, 12, 15, 0, 0, 0, 0, time.UTC)
		a := p.ageAt(open)
		if a < 0.5 || !r.chance(band(a, []float64{18, 50, 65}, []float64{0.55, 0.35, 0.5, 0.72})) {
			continue
		}
		var at *visit
		for _, v := range p.visits {
			if (v.kind == vWellness || v.kind == vFollowUp || v.kind == vProblem) && !v.start.Before(open) && v.start.Before(shut) &&
				(at == nil || v.start.Before(at.start)) {
				at = v
			}
		}
		if at != nil {
			at.imms = append(at.imms, cvxFlu)
		} else {
			vaccineVisit(open.Add(time.Duration(r.intn(90))*day), cvxFlu)
		}
	}
	if a := p.ageAt(time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC)); a >= 12 && r.chance(btof(a >= 65, 0.85, 0.6)) {
		first := time.Date(2021, 1, 10, 0, 0, 0, 0, time.UTC).Add(time.Duration(btof(a >= 65, 0, 90)+float64(r.intn(60))) * day)
		vaccineVisit(first, cvxCOVID)
		vaccineVisit(first.Add(21*day), cvxCOVID)
	}
}
