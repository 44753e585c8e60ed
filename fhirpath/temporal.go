package fhirpath

import (
	"strconv"
	"strings"
	"time"
)

// Precision is how much of a date, dateTime or time is known.
type Precision int8

// Precisions, coarsest first. A Time uses PrecisionHour and finer.
const (
	PrecisionYear Precision = iota
	PrecisionMonth
	PrecisionDay
	PrecisionHour
	PrecisionMinute
	PrecisionSecond
	PrecisionMillisecond
)

// DateTime is a System.DateTime: a possibly partial date and time with an
// optional timezone offset (http://hl7.org/fhirpath/N1/#datetime).
// Fields finer than Precision are zero.
type DateTime struct {
	Year, Month, Day             int
	Hour, Minute, Second, Millis int
	Precision                    Precision
	HasTZ                        bool
	TZ                           int // offset east of UTC in minutes, when HasTZ
}

// Date is a System.Date; it uses the date fields of DateTime and never a
// timezone.
type Date DateTime

// Time is a System.Time (a time of day, no timezone); it uses the time
// fields of DateTime and a Precision of PrecisionHour or finer.
type Time DateTime

func atoiN(s string, n int) (int, bool) {
	if len(s) != n {
		return 0, false
	}
	v := 0
	for i := 0; i < n; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseDatePart parses YYYY[-MM[-DD]] into dt.
func parseDatePart(s string, dt *DateTime) bool {
	var ok bool
	if dt.Year, ok = atoiN(s[:min(4, len(s))], 4); !ok {
		return false
	}
	dt.Precision = PrecisionYear
	s = s[4:]
	if s == "" {
		return true
	}
	if s[0] != '-' || len(s) < 3 {
		return false
	}
	if dt.Month, ok = atoiN(s[1:3], 2); !ok || dt.Month < 1 || dt.Month > 12 {
		return false
	}
	dt.Precision = PrecisionMonth
	s = s[3:]
	if s == "" {
		return true
	}
	if s[0] != '-' || len(s) != 3 {
		return false
	}
	if dt.Day, ok = atoiN(s[1:3], 2); !ok || dt.Day < 1 || dt.Day > daysIn(dt.Year, dt.Month) {
		return false
	}
	dt.Precision = PrecisionDay
	return true
}

// parseTimePart parses hh[:mm[:ss[.fff]]] into dt; partial times are
// allowed only when partial is set (FHIRPath literals; FHIR needs seconds).
func parseTimePart(s string, dt *DateTime, partial bool) bool {
	var ok bool
	if len(s) < 2 {
		return false
	}
	if dt.Hour, ok = atoiN(s[:2], 2); !ok || dt.Hour > 23 {
		return false
	}
	dt.Precision = PrecisionHour
	s = s[2:]
	if s == "" {
		return partial
	}
	if s[0] != ':' || len(s) < 3 {
		return false
	}
	if dt.Minute, ok = atoiN(s[1:3], 2); !ok || dt.Minute > 59 {
		return false
	}
	dt.Precision = PrecisionMinute
	s = s[3:]
	if s == "" {
		return partial
	}
	if s[0] != ':' || len(s) < 3 {
		return false
	}
	if dt.Second, ok = atoiN(s[1:3], 2); !ok || dt.Second > 60 {
		return false
	}
	dt.Precision = PrecisionSecond
	s = s[3:]
	if s == "" {
		return true
	}
	if s[0] != '.' || len(s) < 2 {
		return false
	}
	frac := s[1:]
	for i := 0; i < len(frac); i++ {
		if frac[i] < '0' || frac[i] > '9' {
			return false
		}
	}
	ms := (frac + "00")[:3]
	dt.Millis, _ = atoiN(ms, 3)
	dt.Precision = PrecisionMillisecond
	return true
}

func parseTZ(s string, dt *DateTime) bool {
	if s == "Z" {
		dt.HasTZ, dt.TZ = true, 0
		return true
	}
	if len(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' {
		return false
	}
	h, ok1 := atoiN(s[1:3], 2)
	m, ok2 := atoiN(s[4:6], 2)
	if !ok1 || !ok2 || h > 14 || m > 59 {
		return false
	}
	dt.HasTZ, dt.TZ = true, h*60+m
	if s[0] == '-' {
		dt.TZ = -dt.TZ
	}
	return true
}

// ParseDate parses a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD).
func ParseDate(s string) (Date, bool) {
	var dt DateTime
	if len(s) < 4 || !parseDatePart(s, &dt) {
		return Date{}, false
	}
	return Date(dt), true
}

// ParseDateTime parses a FHIR dateTime or instant. With partial set it also
// accepts the FHIRPath literal forms (a trailing T, hour or minute
// precision).
func ParseDateTime(s string, partial bool) (DateTime, bool) {
	var dt DateTime
	datePart, rest := s, ""
	if i := strings.IndexByte(s, 'T'); i >= 0 {
		datePart, rest = s[:i], s[i+1:]
		if rest == "" && !partial {
			return DateTime{}, false
		}
	}
	if len(datePart) < 4 || !parseDatePart(datePart, &dt) {
		return DateTime{}, false
	}
	if rest == "" {
		return dt, true
	}
	if dt.Precision != PrecisionDay {
		return DateTime{}, false
	}
	tz := ""
	if i := strings.IndexAny(rest, "Z+-"); i >= 0 {
		rest, tz = rest[:i], rest[i:]
	}
	if !parseTimePart(rest, &dt, partial) {
		return DateTime{}, false
	}
	if tz != "" && !parseTZ(tz, &dt) {
		return DateTime{}, false
	}
	return dt, true
}

// ParseTime parses a FHIR time (hh:mm:ss[.fff]); with partial set, also
// hh and hh:mm as FHIRPath literals allow.
func ParseTime(s string, partial bool) (Time, bool) {
	var dt DateTime
	if !parseTimePart(s, &dt, partial) {
		return Time{}, false
	}
	return Time(dt), true
}

func pad(b []byte, v, n int) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < n; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func appendDate(b []byte, dt DateTime) []byte {
	b = pad(b, dt.Year, 4)
	if dt.Precision >= PrecisionMonth {
		b = pad(append(b, '-'), dt.Month, 2)
	}
	if dt.Precision >= PrecisionDay {
		b = pad(append(b, '-'), dt.Day, 2)
	}
	return b
}

func appendTime(b []byte, dt DateTime) []byte {
	b = pad(b, dt.Hour, 2)
	if dt.Precision >= PrecisionMinute {
		b = pad(append(b, ':'), dt.Minute, 2)
	}
	if dt.Precision >= PrecisionSecond {
		b = pad(append(b, ':'), dt.Second, 2)
	}
	if dt.Precision >= PrecisionMillisecond {
		b = pad(append(b, '.'), dt.Millis, 3)
	}
	return b
}

// String formats d as FHIR does, e.g. "2015-02-04".
func (d Date) String() string { return string(appendDate(nil, DateTime(d))) }

// String formats t as FHIR does, e.g. "14:34:28.123".
func (t Time) String() string { return string(appendTime(nil, DateTime(t))) }

// String formats dt as FHIR does, e.g. "2015-02-04T14:34:28.123+10:00";
// one with hour or minute precision, which FHIR cannot write, is written
// as FHIRPath writes it ("2015-02-04T14").
func (dt DateTime) String() string {
	b := appendDate(make([]byte, 0, 29), dt)
	if dt.Precision >= PrecisionHour {
		b = appendTime(append(b, 'T'), dt)
		if dt.HasTZ {
			if dt.TZ == 0 {
				b = append(b, 'Z')
			} else {
				off := dt.TZ
				sign := byte('+')
				if off < 0 {
					sign, off = '-', -off
				}
				b = pad(append(b, sign), off/60, 2)
				b = pad(append(b, ':'), off%60, 2)
			}
		}
	}
	return string(b)
}

// precisionDigits is the precision() function's value for a DateTime.
func (dt DateTime) precisionDigits() int {
	return [...]int{4, 6, 8, 10, 12, 14, 17}[dt.Precision]
}

func (t Time) precisionDigits() int {
	return [...]int{0, 0, 0, 2, 4, 6, 9}[t.Precision]
}

// toUTC shifts a DateTime with a timezone and a time part to UTC.
func (dt DateTime) toUTC() DateTime {
	if !dt.HasTZ || dt.Precision < PrecisionHour || dt.TZ == 0 {
		return dt
	}
	t := dt.goTime().UTC()
	out := fromGoTime(t, dt.Precision, true, 0)
	return out
}

func (dt DateTime) goTime() time.Time {
	mo, d := dt.Month, dt.Day
	if mo == 0 {
		mo = 1
	}
	if d == 0 {
		d = 1
	}
	loc := time.UTC
	if dt.HasTZ && dt.TZ != 0 {
		loc = time.FixedZone("", dt.TZ*60)
	}
	return time.Date(dt.Year, time.Month(mo), d, dt.Hour, dt.Minute, dt.Second, dt.Millis*1e6, loc)
}

func fromGoTime(t time.Time, p Precision, hasTZ bool, tz int) DateTime {
	dt := DateTime{Year: t.Year(), Month: int(t.Month()), Day: t.Day(), Hour: t.Hour(), Minute: t.Minute(), Second: t.Second(), Millis: t.Nanosecond() / 1e6, Precision: p, HasTZ: hasTZ, TZ: tz}
	dt.truncate()
	return dt
}

// truncate zeroes the fields finer than the precision.
func (dt *DateTime) truncate() {
	if dt.Precision < PrecisionMonth {
		dt.Month = 0
	}
	if dt.Precision < PrecisionDay {
		dt.Day = 0
	}
	if dt.Precision < PrecisionHour {
		dt.Hour, dt.HasTZ, dt.TZ = 0, false, 0
	}
	if dt.Precision < PrecisionMinute {
		dt.Minute = 0
	}
	if dt.Precision < PrecisionSecond {
		dt.Second = 0
	}
	if dt.Precision < PrecisionMillisecond {
		dt.Millis = 0
	}
}

// compareTemporal compares two date/times field by field
// (http://hl7.org/fhirpath/N1/#comparison): ok is false (the result is
// empty) when they agree up to the coarser precision but their precisions
// differ, or when only one has a timezone and both have a time part.
// Seconds and milliseconds count as one precision.
func compareTemporal(a, b DateTime, timeOnly bool) (cmp int, ok bool) {
	if !timeOnly {
		if a.HasTZ && b.HasTZ {
			a, b = a.toUTC(), b.toUTC()
		} else if a.HasTZ != b.HasTZ && a.Precision >= PrecisionHour && b.Precision >= PrecisionHour {
			return 0, false
		}
	}
	pa, pb := a.Precision, b.Precision
	if pa == PrecisionMillisecond {
		pa = PrecisionSecond
	}
	if pb == PrecisionMillisecond {
		pb = PrecisionSecond
	}
	start := PrecisionYear
	if timeOnly {
		start = PrecisionHour
	}
	fa := [...]int{a.Year, a.Month, a.Day, a.Hour, a.Minute, a.Second*1000 + a.Millis}
	fb := [...]int{b.Year, b.Month, b.Day, b.Hour, b.Minute, b.Second*1000 + b.Millis}
	for p := start; p <= min(pa, pb); p++ {
		if fa[p] != fb[p] {
			if fa[p] < fb[p] {
				return -1, true
			}
			return 1, true
		}
	}
	if pa != pb {
		return 0, false
	}
	return 0, true
}

// calendar units a date/time arithmetic accepts; the UCUM units 'a' and
// 'mo' are not definite durations and are refused
// (http://hl7.org/fhirpath/N1/#date-time-arithmetic).
var calendarUnits = map[string]string{
	"year": "year", "years": "year", "month": "month", "months": "month",
	"week": "week", "weeks": "week", "day": "day", "days": "day",
	"hour": "hour", "hours": "hour", "minute": "minute", "minutes": "minute",
	"second": "second", "seconds": "second", "millisecond": "millisecond", "milliseconds": "millisecond",
	"wk": "week", "d": "day", "h": "hour", "min": "minute", "s": "second", "ms": "millisecond",
}

// addQuantity adds q (a time-valued quantity) to dt; sign is +1 or -1.
// The quantity's value is truncated to whole units.
func addQuantity(dt DateTime, q Quantity, sign int, timeOnly bool) (DateTime, error) {
	unit, ok := calendarUnits[q.Unit]
	if !ok {
		return DateTime{}, errorf("cannot add a quantity in '%s' to a date/time", q.Unit)
	}
	n, ok := q.Value.Truncate().Int64()
	if !ok {
		return DateTime{}, errorf("quantity %s is too large for date arithmetic", q.Value)
	}
	n *= int64(sign)
	p := dt.Precision
	// below the value's precision, express the amount in its finest unit
	switch {
	case unit == "week" && p >= PrecisionDay, unit == "day" && p >= PrecisionDay:
	case p < PrecisionDay && (unit == "week" || unit == "day" || unit == "hour" || unit == "minute" || unit == "second" || unit == "millisecond"):
		days := map[string]int64{"week": 7, "day": 1}[unit]
		if days == 0 {
			return dt, nil
		}
		if p == PrecisionMonth {
			unit, n = "month", n*days/30
		} else {
			unit, n = "year", n*days/365
		}
	}
	if unit == "month" && p < PrecisionMonth {
		unit, n = "year", n/12
	}
	t := dt.goTime()
	if timeOnly {
		t = time.Date(2000, 1, 1, dt.Hour, dt.Minute, dt.Second, dt.Millis*1e6, time.UTC)
		if unit != "hour" && unit != "minute" && unit != "second" && unit != "millisecond" {
			return DateTime{}, errorf("cannot add %s to a time", q.Unit)
		}
	}
	switch unit {
	case "year", "month":
		months := n
		if unit == "year" {
			months = n * 12
		}
		y := int64(dt.Year)*12 + int64(max(dt.Month, 1)-1) + months
		ny, nm := int(y/12), int(y%12)+1
		if y < 0 {
			return DateTime{}, errorf("date out of range")
		}
		d := max(dt.Day, 1)
		if d > daysIn(ny, nm) {
			d = daysIn(ny, nm)
		}
		t = time.Date(ny, time.Month(nm), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	case "week":
		t = t.AddDate(0, 0, int(n*7))
	case "day":
		t = t.AddDate(0, 0, int(n))
	case "hour":
		t = t.Add(time.Duration(n) * time.Hour)
	case "minute":
		t = t.Add(time.Duration(n) * time.Minute)
	case "second":
		t = t.Add(time.Duration(n) * time.Second)
	case "millisecond":
		t = t.Add(time.Duration(n) * time.Millisecond)
	}
	if !timeOnly && (t.Year() < 1 || t.Year() > 9999) {
		return DateTime{}, errorf("date out of range")
	}
	out := fromGoTime(t, p, dt.HasTZ, dt.TZ)
	if timeOnly {
		out.Year, out.Month, out.Day = 0, 0, 0
	}
	return out, nil
}

// boundary returns the low or high boundary of dt at the given precision
// in digits (lowBoundary/highBoundary); ok is false for an invalid
// precision.
func (dt DateTime) boundary(digits int, high, isDate, isTime bool) (DateTime, bool) {
	var p Precision
	found := false
	for i, d := range [...]int{4, 6, 8, 10, 12, 14, 17} {
		if isTime {
			d = [...]int{-1, -1, -1, 2, 4, 6, 9}[i]
		}
		if d == digits {
			p, found = Precision(i), true
		}
	}
	if !found || (isDate && p > PrecisionDay) {
		return DateTime{}, false
	}
	out := dt
	fill := func(prec Precision, lo, hi int, f *int) {
		if dt.Precision < prec {
			if high {
				*f = hi
			} else {
				*f = lo
			}
		}
	}
	fill(PrecisionMonth, 1, 12, &out.Month)
	fill(PrecisionHour, 0, 23, &out.Hour)
	fill(PrecisionMinute, 0, 59, &out.Minute)
	fill(PrecisionSecond, 0, 59, &out.Second)
	fill(PrecisionMillisecond, 0, 999, &out.Millis)
	if dt.Precision < PrecisionDay {
		if high {
			out.Day = daysIn(out.Year, out.Month)
		} else {
			out.Day = 1
		}
	}
	if !isDate && !isTime && p >= PrecisionHour && !dt.HasTZ {
		out.HasTZ = true
		if high {
			out.TZ = -12 * 60
		} else {
			out.TZ = 14 * 60
		}
	}
	out.Precision = p
	out.truncate()
	if !isDate && !isTime && p >= PrecisionHour && !out.HasTZ {
		out.HasTZ = dt.HasTZ
	}
	return out, true
}
