package search

import (
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/ucum"
)

// This file turns the values a search parameter's expression selects into
// index rows, by parameter type (search.html#ptypes). A value is known by
// its shape when its FHIR type is not: a string for a date parameter is a
// date, an object with start/end a Period, and so on.

// DateRange returns the range a FHIR date, dateTime or instant covers at
// its precision, as [lo, hi) in unix microseconds UTC: "2020" is all of
// 2020, "2020-03-04T10:00:00Z" one second, "…:00.5Z" a tenth of a second.
// A date without a time zone is taken as UTC.
func DateRange(s string) (lo, hi int64, ok bool) {
	var t time.Time
	var next func(time.Time) time.Time
	var err error
	switch {
	case len(s) == 4:
		t, err = time.Parse("2006", s)
		next = func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }
	case len(s) == 7:
		t, err = time.Parse("2006-01", s)
		next = func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	case len(s) == 10:
		t, err = time.Parse("2006-01-02", s)
		next = func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	case len(s) > 10 && s[10] == 'T':
		clock := s[11:]
		if i := strings.IndexAny(clock, "+-Z"); i >= 0 {
			clock = clock[:i]
		}
		frac := 0
		if i := strings.IndexByte(clock, '.'); i >= 0 {
			frac = len(clock) - i - 1
		}
		colons := strings.Count(clock, ":")
		if colons == 1 { // hh:mm
			t, err = time.Parse("2006-01-02T15:04Z07:00", s)
			next = func(t time.Time) time.Time { return t.Add(time.Minute) }
		} else {
			t, err = time.Parse(time.RFC3339Nano, s)
			step := time.Second
			for i := 0; i < frac && i < 6; i++ {
				step /= 10
			}
			next = func(t time.Time) time.Time { return t.Add(step) }
		}
	default:
		return 0, 0, false
	}
	if err != nil {
		return 0, 0, false
	}
	return t.UTC().UnixMicro(), next(t).UTC().UnixMicro(), true
}

func addDates(idx *hale.Index, param string, group int, v any) {
	add := func(lo, hi int64) {
		idx.Dates = append(idx.Dates, hale.DateValue{Param: param, Group: group, Lo: lo, Hi: hi})
	}
	switch x := v.(type) {
	case string:
		if lo, hi, ok := DateRange(x); ok {
			add(lo, hi)
		}
	case map[string]any:
		if _, isPeriod := x["start"]; isPeriod || x["end"] != nil { // Period
			lo, hi := hale.MinTime, hale.MaxTime
			if s, ok := x["start"].(string); ok {
				if l, _, ok := DateRange(s); ok {
					lo = l
				}
			}
			if e, ok := x["end"].(string); ok {
				if _, h, ok := DateRange(e); ok {
					hi = h
				}
			}
			if lo <= hi {
				add(lo, hi)
			}
			return
		}
		if events, ok := x["event"].([]any); ok { // Timing
			for _, e := range events {
				addDates(idx, param, group, e)
			}
			if rep, ok := x["repeat"].(map[string]any); ok {
				if bp, ok := rep["boundsPeriod"]; ok {
					addDates(idx, param, group, bp)
				}
			}
		}
	}
}

// numberRange returns a decimal's value and the range its implied
// precision covers: "100" is [99.5, 100.5), "1.50" is [1.495, 1.505).
func numberRange(n json.Number) (v, lo, hi float64, ok bool) {
	v, err := n.Float64()
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, 0, 0, false
	}
	s := strings.ToLower(n.String())
	exp := 0
	if i := strings.IndexByte(s, 'e'); i >= 0 {
		var e json.Number = json.Number(s[i+1:])
		if x, err := e.Int64(); err == nil {
			exp = int(x)
		}
		s = s[:i]
	}
	decimals := 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		decimals = len(s) - i - 1
	}
	half := 0.5 * math.Pow(10, float64(exp-decimals))
	return v, v - half, v + half, true
}

func addNumbers(idx *hale.Index, param string, group int, v any) {
	n, ok := v.(json.Number)
	if !ok {
		return
	}
	if val, lo, hi, ok := numberRange(n); ok {
		idx.Numbers = append(idx.Numbers, hale.NumberValue{Param: param, Group: group, Value: val, Lo: lo, Hi: hi})
	}
}

func addQuantities(idx *hale.Index, param string, group int, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if _, isRange := m["low"]; isRange || m["high"] != nil { // Range: one row spanning it
		low, _ := m["low"].(map[string]any)
		high, _ := m["high"].(map[string]any)
		q := hale.QuantityValue{Param: param, Group: group, Lo: math.Inf(-1), Hi: math.Inf(1)}
		unitOf := low
		if low == nil {
			unitOf = high
		}
		if n, ok := low["value"].(json.Number); ok {
			q.Lo, _ = n.Float64()
		}
		if n, ok := high["value"].(json.Number); ok {
			q.Hi, _ = n.Float64()
		}
		q.Value = q.Lo
		if math.IsInf(q.Value, 0) {
			q.Value = q.Hi
		}
		setUnit(&q, unitOf)
		q.Lo, q.Hi = clamp(q.Lo), clamp(q.Hi)
		q.Value = clamp(q.Value)
		idx.Quantities = append(idx.Quantities, q)
		return
	}
	n, ok := m["value"].(json.Number)
	if !ok {
		return
	}
	val, lo, hi, ok := numberRange(n)
	if !ok {
		return
	}
	q := hale.QuantityValue{Param: param, Group: group, Value: val, Lo: lo, Hi: hi}
	setUnit(&q, m)
	if cur, ok := m["currency"].(string); ok { // Money
		q.System, q.Code = "urn:iso:std:iso:4217", cur
	}
	idx.Quantities = append(idx.Quantities, q)
}

// clamp keeps infinite Range ends storable (SQL has no infinities).
func clamp(f float64) float64 {
	return math.Max(-math.MaxFloat64, math.Min(math.MaxFloat64, f))
}

func setUnit(q *hale.QuantityValue, m map[string]any) {
	q.System, _ = m["system"].(string)
	q.Code, _ = m["code"].(string)
	q.Unit, _ = m["unit"].(string)
	if q.System == "http://unitsofmeasure.org" && q.Code != "" {
		if c, lo, ok := ucum.Canonical(q.Code, q.Lo); ok {
			_, hi, _ := ucum.Canonical(q.Code, q.Hi)
			q.CanonCode, q.CanonLo, q.CanonHi = c, clamp(lo), clamp(hi)
		}
	}
}

func addURIs(idx *hale.Index, param string, group int, v any) {
	if s, ok := v.(string); ok && s != "" && len(s) <= MaxTokenLen {
		idx.URIs = append(idx.URIs, hale.URIValue{Param: param, Group: group, URI: s})
	}
}

func jsonNumber(s string) json.Number {
	if s == "" || strings.ContainsAny(s, " +") {
		return json.Number("x") // not a number
	}
	return json.Number(s)
}
