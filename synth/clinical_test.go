package synth

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestReferences: every reference in the sample points at a resource of
// the sample.
func TestReferences(t *testing.T) {
	res := sample(t)
	have := map[string]bool{}
	for _, r := range res {
		have[fmt.Sprint(r["resourceType"], "/", r["id"])] = true
	}
	n := 0
	var walk func(x any, path string)
	walk = func(x any, path string) {
		switch v := x.(type) {
		case map[string]any:
			for k, y := range v {
				if k == "reference" {
					n++
					if ref, _ := y.(string); !have[ref] {
						t.Errorf("%s: %v does not resolve", path, y)
					}
					continue
				}
				walk(y, path+"."+k)
			}
		case []any:
			for _, y := range v {
				walk(y, path)
			}
		}
	}
	for _, r := range res {
		walk(r, fmt.Sprint(r["resourceType"], "/", r["id"]))
	}
	if n < len(res) {
		t.Errorf("only %d references in %d resources", n, len(res))
	}
}

// record is one patient's resources, by type.
type record struct {
	patient map[string]any
	byType  map[string][]map[string]any
}

func records(res []map[string]any) map[string]*record {
	out := map[string]*record{}
	get := func(id string) *record {
		if out[id] == nil {
			out[id] = &record{byType: map[string][]map[string]any{}}
		}
		return out[id]
	}
	for _, r := range res {
		typ := r["resourceType"].(string)
		if typ == "Patient" {
			get("Patient/" + r["id"].(string)).patient = r
			continue
		}
		for _, key := range []string{"subject", "patient"} {
			if ref, ok := r[key].(map[string]any); ok {
				rec := get(ref["reference"].(string))
				rec.byType[typ] = append(rec.byType[typ], r)
			}
		}
	}
	return out
}

func codes(r map[string]any, key string) []string {
	cc, _ := r[key].(map[string]any)
	var out []string
	for _, c := range asList(cc["coding"]) {
		out = append(out, c.(map[string]any)["code"].(string))
	}
	return out
}

func asList(x any) []any { l, _ := x.([]any); return l }

func num(x any) float64 {
	var f float64
	switch v := x.(type) {
	case json.Number:
		f, _ = v.Float64()
	}
	return f
}

func (rec *record) hasCondition(snomed string) bool {
	for _, c := range rec.byType["Condition"] {
		if slices.Contains(codes(c, "code"), snomed) {
			return true
		}
	}
	return false
}

func (rec *record) hasMed(rxcuis ...string) bool {
	for _, m := range rec.byType["MedicationRequest"] {
		for _, c := range codes(m, "medicationCodeableConcept") {
			if slices.Contains(rxcuis, c) {
				return true
			}
		}
	}
	return false
}

func (rec *record) values(loinc string) []float64 {
	var out []float64
	for _, o := range rec.byType["Observation"] {
		if slices.Contains(codes(o, "code"), loinc) {
			out = append(out, num(o["valueQuantity"].(map[string]any)["value"]))
		}
	}
	return out
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// TestPlausible checks the sample against clinical common sense.
func TestPlausible(t *testing.T) {
	recs := records(sample(t))
	end := dateTime(DefaultEnd)
	var diabeticA1c, otherA1c []float64
	counts := map[string]int{}
	heavy := 0
	for id, rec := range recs {
		if rec.patient == nil {
			t.Fatalf("%s has resources but no Patient", id)
		}
		birth := rec.patient["birthDate"].(string)
		// Nothing happens before birth or after the end of the window.
		for typ, rs := range rec.byType {
			for _, r := range rs {
				for _, k := range []string{"effectiveDateTime", "onsetDateTime", "recordedDate", "authoredOn", "occurrenceDateTime", "abatementDateTime"} {
					if s, ok := r[k].(string); ok && (s < birth || s > end && k != "abatementDateTime") {
						t.Errorf("%s %s %s %s: %s, born %s", id, typ, r["id"], k, s, birth)
					}
				}
				if p, ok := r["period"].(map[string]any); ok {
					if p["start"].(string) < birth || p["end"].(string) < p["start"].(string) || p["end"].(string) > end {
						t.Errorf("%s %s %s: period %v, born %s", id, typ, r["id"], p, birth)
					}
				}
			}
		}
		if n := len(rec.byType["Encounter"]); n >= 500 {
			heavy++
		}
		for _, e := range rec.byType["Encounter"] {
			start := e["period"].(map[string]any)["start"].(string)
			age := ageAt(birth, start)
			typ := asList(asList(e["type"])[0].(map[string]any)["coding"])[0].(map[string]any)["code"]
			if typ == "410620009" && age >= 18 || typ == "185349003" && age < 18 {
				t.Errorf("%s: %v visit at age %d", id, typ, age)
			}
		}
		// Adult conditions begin in adulthood.
		for _, c := range rec.byType["Condition"] {
			code := codes(c, "code")[0]
			if slices.Contains([]string{"44054006", "59621000", "433144002", "53741008", "49436004", "13645005", "396275006"}, code) {
				if age := ageAt(birth, c["onsetDateTime"].(string)); age < 18 {
					t.Errorf("%s: %s began at age %d", id, code, age)
				}
			}
		}
		// Conditions come with their treatment and monitoring.
		a1c := rec.values("4548-4")
		if rec.hasCondition("44054006") {
			counts["diabetes"]++
			if len(a1c) == 0 || !rec.hasMed("861007", "274783") {
				t.Errorf("%s: diabetic with %d HbA1c results, diabetes medication %v", id, len(a1c), rec.hasMed("861007", "274783"))
			}
			diabeticA1c = append(diabeticA1c, a1c...)
		} else {
			otherA1c = append(otherA1c, a1c...)
		}
		for _, want := range []struct {
			cond string
			meds []string
		}{
			{"59621000", []string{"314076", "310798", "197361"}},
			{"195967001", []string{"745679"}},
			{"35489007", []string{"36437", "2556", "4493", "321988"}},
			{"40930008", []string{"966222"}},
			{"49436004", []string{"11289", "1364430"}},
		} {
			if rec.hasCondition(want.cond) {
				counts[want.cond]++
				if !rec.hasMed(want.meds...) {
					t.Errorf("%s: condition %s without any of %v", id, want.cond, want.meds)
				}
			}
		}
		if rec.hasCondition("433144002") {
			egfr := rec.values("98979-8")
			if len(egfr) == 0 || slices.Min(egfr) >= 60 {
				t.Errorf("%s: CKD stage 3 with eGFR %v", id, egfr)
			}
		}
		// Vital signs in physiological ranges.
		for _, o := range rec.byType["Observation"] {
			c := codes(o, "code")[0]
			if c == "85354-9" {
				comp := asList(o["component"])
				sys := num(comp[0].(map[string]any)["valueQuantity"].(map[string]any)["value"])
				dia := num(comp[1].(map[string]any)["valueQuantity"].(map[string]any)["value"])
				if sys < 70 || sys > 220 || dia < 35 || dia >= sys {
					t.Errorf("%s: blood pressure %v/%v", id, sys, dia)
				}
				continue
			}
			vq, ok := o["valueQuantity"].(map[string]any)
			if !ok {
				continue
			}
			v := num(vq["value"])
			bounds := map[string][2]float64{"8867-4": {40, 200}, "9279-1": {8, 60}, "8310-5": {35, 41}, "2708-6": {80, 100}, "39156-5": {10, 70}, "29463-7": {1.5, 250}, "8302-2": {40, 215}}
			if b, ok := bounds[c]; ok && (v < b[0] || v > b[1]) {
				t.Errorf("%s: %s = %v", id, c, v)
			}
		}
	}
	if heavy == 0 {
		t.Error("no patient with 500+ encounters among 200")
	}
	if m := mean(diabeticA1c); len(diabeticA1c) == 0 || m < 6.5 {
		t.Errorf("diabetics' mean HbA1c %.2f over %d results", m, len(diabeticA1c))
	}
	if m := mean(otherA1c); len(otherA1c) == 0 || m > 6.0 {
		t.Errorf("non-diabetics' mean HbA1c %.2f over %d results", m, len(otherA1c))
	}
	for _, k := range []string{"diabetes", "59621000", "195967001", "35489007"} {
		if counts[k] == 0 {
			t.Errorf("no patient with %s among 200", k)
		}
	}
	t.Logf("%d patients; %d with 500+ encounters; %v", len(recs), heavy, counts)
}

// ageAt is the age in whole years on the date of an ISO dateTime.
func ageAt(birth, when string) int {
	var by, bm, bd, y, m, d int
	fmt.Sscanf(birth, "%d-%d-%d", &by, &bm, &bd)
	fmt.Sscanf(strings.SplitN(when, "T", 2)[0], "%d-%d-%d", &y, &m, &d)
	age := y - by
	if m < bm || m == bm && d < bd {
		age--
	}
	return age
}
