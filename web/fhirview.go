package web

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Reading values out of decoded FHIR JSON for display.

// get follows a path of object keys and array indexes ("0").
func get(v any, path ...string) any {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func str(v any, path ...string) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...string) []any {
	l, _ := get(v, path...).([]any)
	return l
}

func obj(v any, path ...string) map[string]any {
	m, _ := get(v, path...).(map[string]any)
	return m
}

func num(v any, path ...string) (float64, bool) {
	f, ok := get(v, path...).(float64)
	return f, ok
}

// conceptText is what a CodeableConcept says: its text, else the first
// coding's display, else its code.
func conceptText(cc any) string {
	if t := str(cc, "text"); t != "" {
		return t
	}
	for _, c := range list(cc, "coding") {
		if d := str(c, "display"); d != "" {
			return d
		}
	}
	for _, c := range list(cc, "coding") {
		if d := str(c, "code"); d != "" {
			return d
		}
	}
	return ""
}

// coded reports whether the CodeableConcept has a coding system|code.
func coded(cc any, system, code string) bool {
	for _, c := range list(cc, "coding") {
		if str(c, "code") == code && (system == "" || str(c, "system") == system) {
			return true
		}
	}
	return false
}

// codeOf is the first code of cc in system (any system when "").
func codeOf(cc any, system string) string {
	for _, c := range list(cc, "coding") {
		if system == "" || str(c, "system") == system {
			return str(c, "code")
		}
	}
	return ""
}

// fhirTime parses a FHIR date, dateTime or instant. Partial dates give
// their first moment.
func fhirTime(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z07:00", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Display formats. Dates are shown ISO (unambiguous in every locale).
const (
	dateFmt     = "2006-01-02"
	dateTimeFmt = "2006-01-02 15:04"
)

// showDate formats a FHIR date or dateTime as a date, keeping the
// precision of partial dates.
func (a *App) showDate(s string) string {
	if len(s) <= 10 {
		return s
	}
	t, ok := fhirTime(s)
	if !ok {
		return s
	}
	return t.In(a.loc).Format(dateFmt)
}

// showDateTime formats a FHIR dateTime with its time of day when it has one.
func (a *App) showDateTime(s string) string {
	if len(s) <= 10 {
		return s
	}
	t, ok := fhirTime(s)
	if !ok {
		return s
	}
	return t.In(a.loc).Format(dateTimeFmt)
}

// age is the age on now of someone born on birth (YYYY[-MM[-DD]]), as a
// clinician writes it: years from 2, months under 2, days under a month.
func age(birth string, now time.Time) string {
	b, ok := fhirTime(birth)
	if !ok || len(birth) < 10 {
		if ok {
			return fmt.Sprintf("%d y", now.Year()-b.Year())
		}
		return ""
	}
	y, m, d := now.Date()
	by, bm, bd := b.Date()
	years := y - by
	if m < bm || m == bm && d < bd {
		years--
	}
	if years >= 2 {
		return fmt.Sprintf("%d y", years)
	}
	months := (y-by)*12 + int(m-bm)
	if d < bd {
		months--
	}
	if months >= 1 {
		return fmt.Sprintf("%d mo", months)
	}
	days := int(now.Sub(time.Date(by, bm, bd, 0, 0, 0, 0, now.Location())).Hours() / 24)
	return fmt.Sprintf("%d d", max(days, 0))
}

// humanName is "Family, Given Middle" of the official (else first) name.
func humanName(p resource) string {
	names := list(p, "name")
	var n any
	for _, x := range names {
		if str(x, "use") == "official" {
			n = x
			break
		}
	}
	if n == nil && len(names) > 0 {
		n = names[0]
	}
	if n == nil {
		return "(no name)"
	}
	var given []string
	for _, g := range list(n, "given") {
		if s, ok := g.(string); ok {
			given = append(given, s)
		}
	}
	family := str(n, "family")
	switch {
	case family != "" && len(given) > 0:
		return family + ", " + strings.Join(given, " ")
	case family != "":
		return family
	case len(given) > 0:
		return strings.Join(given, " ")
	case str(n, "text") != "":
		return str(n, "text")
	}
	return "(no name)"
}

// mrn is the patient's medical record number: the identifier of type MR.
func mrn(p resource) string {
	for _, id := range list(p, "identifier") {
		if coded(get(id, "type"), "", "MR") {
			return str(id, "value")
		}
	}
	return ""
}

// phone is the first phone number, home first.
func phone(p resource) string {
	var first string
	for _, t := range list(p, "telecom") {
		if str(t, "system") != "phone" {
			continue
		}
		if str(t, "use") == "home" {
			return str(t, "value")
		}
		if first == "" {
			first = str(t, "value")
		}
	}
	return first
}

// sexLabel is the administrative gender as a clinician reads it.
func sexLabel(g string) string {
	switch g {
	case "male":
		return "Male"
	case "female":
		return "Female"
	case "other":
		return "Other"
	case "unknown", "":
		return "Unknown"
	}
	return g
}

// refID is the id of a relative reference to typ ("Patient/1" → "1").
func refID(ref any, typ string) string {
	s := str(ref, "reference")
	if rest, ok := strings.CutPrefix(s, typ+"/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return ""
}

// practitionerName is "Prefix Given Family" of a Practitioner.
func practitionerName(p resource) string {
	n := obj(p, "name", "0")
	if n == nil {
		return ""
	}
	var parts []string
	for _, k := range []string{"prefix", "given"} {
		for _, x := range list(n, k) {
			if s, ok := x.(string); ok {
				parts = append(parts, s)
			}
		}
	}
	if f := str(n, "family"); f != "" {
		parts = append(parts, f)
	}
	if len(parts) == 0 {
		return str(n, "text")
	}
	return strings.Join(parts, " ")
}

// formatNumber shows a measured value with sensible precision: at most
// digits decimals, trailing zeros dropped.
func formatNumber(v float64, digits int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return ""
	}
	s := strconv.FormatFloat(v, 'f', digits, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
