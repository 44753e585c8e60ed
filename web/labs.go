package web

import (
	"fmt"
	"strings"
)

// Lab results and their abnormal flags.
//
// A flag comes, in this order, from the result's own interpretation
// (Observation.interpretation, v3 ObservationInterpretation: H, L, HH,
// LL, A, AA, HU, LU, N), from its reference range
// (Observation.referenceRange low/high, as the performing lab set it),
// and only when the lab sent neither, from the typical adult range of
// the analyte (docs/web.md: shown with "typical range" so the reader
// knows it is not the lab's). Critical limits are commonly used adult
// panic values; a result past one is flagged critical whatever the range.

// labRange is a default adult range for an analyte, by LOINC code.
type labRange struct {
	Low, High       float64 // typical range; NaN-free: 0/0 means "no bound"
	HasLow, HasHigh bool
	CritLow         float64 // critical below this (HasCritLow)
	CritHigh        float64
	HasCritLow      bool
	HasCritHigh     bool
}

func rng(lo, hi float64) labRange { return labRange{Low: lo, High: hi, HasLow: true, HasHigh: true} }

func (r labRange) crit(lo, hi float64) labRange {
	if lo > 0 {
		r.CritLow, r.HasCritLow = lo, true
	}
	if hi > 0 {
		r.CritHigh, r.HasCritHigh = hi, true
	}
	return r
}

// typicalRanges: general adult textbook values (clinical-knowledge.md),
// used only when the result carries no range or interpretation.
var typicalRanges = map[string]labRange{
	"2951-2":  rng(135, 145).crit(120, 160), // sodium mmol/L
	"2823-3":  rng(3.5, 5.1).crit(2.8, 6.2), // potassium mmol/L
	"2075-0":  rng(98, 107),                 // chloride
	"2028-9":  rng(22, 29).crit(10, 40),     // CO2
	"3094-0":  rng(7, 20),                   // BUN mg/dL
	"6299-2":  rng(7, 20),                   // BUN (blood)
	"2160-0":  rng(0.6, 1.2),                // creatinine mg/dL
	"38483-4": rng(0.6, 1.2),                // creatinine (blood)
	"2345-7":  rng(70, 99).crit(50, 400),    // glucose mg/dL
	"2339-0":  rng(70, 99).crit(50, 400),    // glucose (blood)
	"1558-6":  rng(70, 99).crit(50, 400),    // fasting glucose
	"17861-6": rng(8.6, 10.3).crit(6.5, 13), // calcium mg/dL
	"49765-1": rng(8.6, 10.3).crit(6.5, 13), // calcium (blood)
	"1751-7":  rng(3.5, 5.0),                // albumin g/dL
	"2885-2":  rng(6.0, 8.3),                // total protein
	"1742-6":  rng(7, 56),                   // ALT
	"1920-8":  rng(10, 40),                  // AST
	"6768-6":  rng(44, 147),                 // alkaline phosphatase
	"1975-2":  rng(0.1, 1.2),                // bilirubin
	"718-7":   rng(12.0, 17.5).crit(7, 20),  // hemoglobin g/dL (both sexes)
	"4544-3":  rng(36, 50).crit(20, 60),     // hematocrit %
	"6690-2":  rng(4.5, 11.0).crit(2, 30),   // WBC 10*3/uL
	"777-3":   rng(150, 400).crit(20, 1000), // platelets 10*3/uL
	"4548-4":  {High: 5.6, HasHigh: true},   // HbA1c %: < 5.7 normal
	"2093-3":  {High: 199, HasHigh: true},   // total cholesterol mg/dL
	"13457-7": {High: 99, HasHigh: true},    // LDL calculated
	"18262-6": {High: 99, HasHigh: true},    // LDL direct
	"2085-9":  {Low: 40, HasLow: true},      // HDL
	"2571-8":  {High: 149, HasHigh: true},   // triglycerides
	"3016-3":  rng(0.4, 4.0),                // TSH
	"3024-7":  rng(0.8, 1.8),                // free T4
	"6301-6":  rng(0.8, 1.1).crit(0, 5),     // INR
	"9318-7":  {High: 29, HasHigh: true},    // urine albumin/creatinine mg/g
	"98979-8": {Low: 60, HasLow: true},      // eGFR
	"33914-3": {Low: 60, HasLow: true},      // eGFR (MDRD)
	"789-8":   rng(4.2, 5.9),                // RBC 10*6/uL
	"787-2":   rng(80, 100),                 // MCV fL
	"785-6":   rng(27, 33),                  // MCH pg
	"786-4":   rng(32, 36),                  // MCHC g/dL
	"2857-1":  {High: 4, HasHigh: true},     // PSA ng/mL
	"14647-2": {High: 199, HasHigh: true},   // total cholesterol (mol)
	"20565-8": rng(22, 29),                  // CO2 (blood)
	"6298-4":  rng(3.5, 5.1).crit(2.8, 6.2), // potassium (blood)
	"2947-0":  rng(135, 145).crit(120, 160), // sodium (blood)
	"2069-3":  rng(98, 107),                 // chloride (blood)
	"33037-3": rng(8, 16),                   // anion gap
	"1968-7":  rng(0, 0.3),                  // direct bilirubin
}

// Flags.
const (
	flagNone     = ""
	flagHigh     = "H"
	flagLow      = "L"
	flagCritHigh = "HH"
	flagCritLow  = "LL"
	flagAbnormal = "A"
	flagCritical = "AA"
)

type labRow struct {
	Date, Test, Value, Unit, Range, Flag, FlagText string
	RangeTypical                                   bool // Range is the typical one, not the lab's
	Critical                                       bool
}

// labFlag computes a result's flag (see the package comment above).
func labFlag(o resource) (flag, rangeText string, typical bool) {
	for _, in := range list(o, "interpretation") {
		for _, c := range list(in, "coding") {
			switch str(c, "code") {
			case "HH", "H>":
				flag = flagCritHigh
			case "LL", "L<":
				flag = flagCritLow
			case "AA":
				flag = flagCritical
			case "H", "HU":
				flag = flagHigh
			case "L", "LU":
				flag = flagLow
			case "A", "POS", "DET":
				if flag == "" {
					flag = flagAbnormal
				}
			}
		}
	}
	v, hasValue := num(o, "valueQuantity", "value")
	var r labRange
	r, rangeText, typical = labRangeOf(o)
	if flag != "" || !hasValue {
		return flag, rangeText, typical
	}
	switch {
	case r.HasCritHigh && v >= r.CritHigh:
		flag = flagCritHigh
	case r.HasCritLow && v <= r.CritLow:
		flag = flagCritLow
	case r.HasHigh && v > r.High:
		flag = flagHigh
	case r.HasLow && v < r.Low:
		flag = flagLow
	}
	return flag, rangeText, typical
}

// labRangeOf is the range a result is judged by: the lab's reference
// range, else the analyte's typical adult range (typical), with the
// analyte's critical limits; rangeText shows it.
func labRangeOf(o resource) (r labRange, rangeText string, typical bool) {
	rr := obj(o, "referenceRange", "0")
	if rr != nil {
		r.Low, r.HasLow = num(rr, "low", "value")
		r.High, r.HasHigh = num(rr, "high", "value")
		rangeText = str(rr, "text")
	}
	def, known := typicalRanges[codeOf(get(o, "code"), "http://loinc.org")]
	if !r.HasLow && !r.HasHigh && rangeText == "" && known {
		r, typical = def, true
	}
	if known {
		r.CritLow, r.HasCritLow, r.CritHigh, r.HasCritHigh = def.CritLow, def.HasCritLow, def.CritHigh, def.HasCritHigh
	}
	if rangeText == "" {
		switch {
		case r.HasLow && r.HasHigh:
			rangeText = fmt.Sprintf("%s–%s", formatNumber(r.Low, 3), formatNumber(r.High, 3))
		case r.HasLow:
			rangeText = "≥ " + formatNumber(r.Low, 3)
		case r.HasHigh:
			rangeText = "≤ " + formatNumber(r.High, 3)
		}
	}
	return r, rangeText, typical
}

func flagText(f string) string {
	switch f {
	case flagHigh:
		return "High"
	case flagLow:
		return "Low"
	case flagCritHigh:
		return "Critical high"
	case flagCritLow:
		return "Critical low"
	case flagCritical:
		return "Critical"
	case flagAbnormal:
		return "Abnormal"
	}
	return ""
}

// observationValue is an Observation's value as text and its unit.
func observationValue(o resource) (string, string) {
	if q := obj(o, "valueQuantity"); q != nil {
		v, _ := num(q, "value")
		unit := str(q, "unit")
		if unit == "" {
			unit = str(q, "code")
		}
		return formatNumber(v, 2), unit
	}
	if s := str(o, "valueString"); s != "" {
		return s, ""
	}
	if cc := get(o, "valueCodeableConcept"); cc != nil {
		return conceptText(cc), ""
	}
	if b, ok := get(o, "valueBoolean").(bool); ok {
		if b {
			return "Yes", ""
		}
		return "No", ""
	}
	if da := str(o, "dataAbsentReason", "text"); da != "" {
		return da, ""
	}
	return "", ""
}

// recentLabs is the newest result of each analyte among obs (newest
// first), at most n rows.
func (a *App) recentLabs(obs []resource, n int) []labRow {
	seen := map[string]bool{}
	var out []labRow
	for _, o := range obs {
		key := codeOf(get(o, "code"), "")
		if key == "" {
			key = conceptText(get(o, "code"))
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		if len(out) == n {
			break
		}
		out = append(out, a.labRow(o))
	}
	return out
}

func (a *App) labRow(o resource) labRow {
	val, unit := observationValue(o)
	flag, rangeText, typical := labFlag(o)
	when := str(o, "effectiveDateTime")
	if when == "" {
		when = str(o, "effectivePeriod", "start")
	}
	if when == "" {
		when = str(o, "issued")
	}
	return labRow{Date: a.showDate(when), Test: shortTest(conceptText(get(o, "code"))), Value: val, Unit: unit, Range: rangeText,
		RangeTypical: typical, Flag: flag, FlagText: flagText(flag), Critical: strings.HasPrefix(flagText(flag), "Critical")}
}

// shortTest drops LOINC's method and system parts ("Hemoglobin
// [Mass/volume] in Blood" → "Hemoglobin"), which clinicians do not read.
func shortTest(s string) string {
	if i := strings.Index(s, " ["); i > 0 {
		return s[:i]
	}
	return s
}
