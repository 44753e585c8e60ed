package search

import (
	"net/url"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

var testOpt = Options{DefaultCount: 20, MaxCount: 100, Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}

func mustParse(t *testing.T, typ, query string) *Request {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	if typ != "" {
		types = []string{typ}
	}
	r, err := ParseRequest(types, q, testOpt)
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, query, err)
	}
	return r
}

func TestParseRequestClauses(t *testing.T) {
	r := mustParse(t, "Observation", "code=http://loinc.org|8867-4&date=ge2020-01&value-quantity=lt5.4|http://unitsofmeasure.org|mg&subject:Patient.name=smi&_has:Provenance:target:agent=Practitioner/1&status:not=cancelled&code:text=heart&combo-code-value-quantity=http://loinc.org|8480-6$gt100&_count=500&_sort=-date,_id&_total=none&_summary=data&focus:missing=true&nonsense=1")
	if r.Query.Count != 100 || r.Query.Total || r.Summary != "data" {
		t.Errorf("result params: count %d total %v summary %q", r.Query.Count, r.Query.Total, r.Summary)
	}
	if len(r.Query.Sort) != 2 || !r.Query.Sort[0].Desc || r.Query.Sort[0].Type != hale.TypeDate || r.Query.Sort[1].Type != hale.TypeID {
		t.Errorf("sort: %+v", r.Query.Sort)
	}
	byParam := map[string]hale.Clause{}
	for _, c := range r.Query.Where {
		byParam[c.Param] = c
	}
	if c := byParam["date"]; c.Type != hale.TypeDate || c.Values[0].Prefix != "ge" || c.Values[0].Lo != time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro() || c.Values[0].Hi != time.Date(2020, 2, 1, 0, 0, 0, 0, time.UTC).UnixMicro() {
		t.Errorf("date: %+v", c)
	}
	if c := byParam["value-quantity"]; c.Values[0].Prefix != "lt" || c.Values[0].Number != 5.4 || c.Values[0].CanonCode != "g" || c.Values[0].Code != "mg" {
		t.Errorf("quantity: %+v", c)
	}
	if c := byParam["subject"]; c.Chain == nil || c.Chain.Type != "Patient" || c.Chain.Where[0].Param != "name" || c.Chain.Where[0].Values[0].Code != "smi" {
		t.Errorf("chain: %+v", c)
	}
	if c := byParam["_has"]; c.Has == nil || c.Has.Type != "Provenance" || c.Has.Param != "target" || c.Has.Where[0].Values[0].TargetType != "Practitioner" {
		t.Errorf("_has: %+v", c)
	}
	if c := byParam["status"]; !c.Not || c.Values[0].Code != "cancelled" {
		t.Errorf(":not: %+v", c)
	}
	if c := byParam["code:text"]; c.Type != hale.TypeString || c.Values[0].Code != "heart" {
		t.Errorf(":text: %+v", c)
	}
	if c := byParam["combo-code-value-quantity"]; len(c.Composite) != 1 || c.Composite[0][0].Param != "combo-code-value-quantity#0" || c.Composite[0][1].Values[0].Prefix != "gt" {
		t.Errorf("composite: %+v", c)
	}
	if c := byParam["focus"]; c.Missing == nil || !*c.Missing {
		t.Errorf(":missing: %+v", c)
	}
	if len(r.Ignored) != 1 || r.Ignored[0] != "nonsense" || r.Applied.Get("nonsense") != "" || r.Applied.Get("code") == "" {
		t.Errorf("ignored %v applied %v", r.Ignored, r.Applied)
	}
}

func TestParseRequestChains(t *testing.T) {
	r := mustParse(t, "Observation", "subject:Patient.organization.name=acme&patient.general-practitioner:Practitioner.name=smith")
	c := r.Query.Where[0]
	for depth := 0; depth < 3; depth++ {
		if c.Chain == nil && depth < 2 {
			t.Fatalf("depth %d: no chain in %+v", depth, c)
		}
		if c.Chain != nil {
			c = c.Chain.Where[0]
		}
	}
	if c.Param != "name" || c.Values[0].Code != "smith" {
		t.Errorf("three-level chain ends in %+v", c)
	}
}

func TestParseRequestErrors(t *testing.T) {
	for _, q := range []string{
		"date=notadate", "date=ge2020-13", "value-quantity=abc", "_count=-1", "_total=maybe", "_summary=everything",
		"code:missing=perhaps", "subject=not an id", "_include=Observation:nope", "_include=bad",
		"combo-code-value-quantity=onlyone", "_has:Nope:x:y=1", "code:of-type=a|b", "code:in=http://example.org/not-a-valueset",
	} {
		v, _ := url.ParseQuery(q)
		if _, err := ParseRequest([]string{"Observation"}, v, testOpt); !hale.IsKind(err, hale.KindInvalid) {
			t.Errorf("%s: want a KindInvalid error, got %v", q, err)
		}
	}
}

func TestDateRange(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi time.Time
	}{
		{"2020", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"2020-02", time.Date(2020, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"2020-02-29", time.Date(2020, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"2020-02-29T10:00:00+02:00", time.Date(2020, 2, 29, 8, 0, 0, 0, time.UTC), time.Date(2020, 2, 29, 8, 0, 1, 0, time.UTC)},
		{"2020-02-29T10:00:00.25Z", time.Date(2020, 2, 29, 10, 0, 0, 250e6, time.UTC), time.Date(2020, 2, 29, 10, 0, 0, 260e6, time.UTC)},
		{"2020-02-29T10:00Z", time.Date(2020, 2, 29, 10, 0, 0, 0, time.UTC), time.Date(2020, 2, 29, 10, 1, 0, 0, time.UTC)},
	} {
		lo, hi, ok := DateRange(tc.in)
		if !ok || lo != tc.lo.UnixMicro() || hi != tc.hi.UnixMicro() {
			t.Errorf("DateRange(%q) = %v %v %v", tc.in, time.UnixMicro(lo).UTC(), time.UnixMicro(hi).UTC(), ok)
		}
	}
	for _, bad := range []string{"", "20", "2020-13", "2020-02-30", "yesterday"} {
		if _, _, ok := DateRange(bad); ok {
			t.Errorf("DateRange(%q) accepted", bad)
		}
	}
}
