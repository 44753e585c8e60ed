package synth

import (
	"encoding/json"
	"strconv"
	"time"
)

// obj is the generic JSON object the resources are built of.
type obj = map[string]any

func (c code) coding() obj {
	return obj{"system": c.system, "code": c.code, "display": c.display}
}

// concept is a CodeableConcept of one coding whose text is the display.
func (c code) concept() obj {
	return obj{"coding": []any{c.coding()}, "text": c.display}
}

func concept(text string, cs ...code) obj {
	codings := make([]any, len(cs))
	for i, c := range cs {
		codings[i] = c.coding()
	}
	return obj{"coding": codings, "text": text}
}

func ref(typ, id string) obj { return obj{"reference": typ + "/" + id} }

// dec formats a decimal with a fixed number of places, so the JSON text
// does not depend on float formatting.
func dec(v float64, places int) json.Number {
	return json.Number(strconv.FormatFloat(v, 'f', places, 64))
}

// quantity is a UCUM Quantity.
func quantity(v float64, places int, unit string) obj {
	return obj{"value": dec(v, places), "unit": unit, "system": sysUCUM, "code": unit}
}

func dateTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
func date(t time.Time) string     { return t.UTC().Format("2006-01-02") }

// round rounds v to places decimals (half away from zero).
func round(v float64, places int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', places, 64), 64)
	return f
}

func clamp(v, lo, hi float64) float64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}
