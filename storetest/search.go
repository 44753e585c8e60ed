package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

// This file is the Search part of the suite (query.go): every parameter
// type with its prefixes and modifiers, :missing and :not, chains, _has,
// composites, sorting, keyset paging and totals. Resources carry index
// rows written by hand, as the FHIR core would extract them.

// searcher returns r as a hale.Searcher; every engine's readers and
// transactions must be one.
func searcher(t testing.TB, r hale.Reader) hale.Searcher {
	t.Helper()
	s, ok := r.(hale.Searcher)
	if !ok {
		t.Fatalf("%T does not implement hale.Searcher", r)
	}
	return s
}

// putIdx stores version 1 of typ/id with idx.
func putIdx(t testing.TB, s hale.Store, typ, id string, idx hale.Index) {
	t.Helper()
	mustPut(t, s, version(typ, id, 1, 1), &idx)
}

// searchCase is one Search and the resources it must return, as
// "Type/id", in order.
type searchCase struct {
	name string
	q    hale.Query
	want []string
	// pageSizes to check besides one page holding everything; default 1 and 2.
	pageSizes []int
}

// runSearchCases runs every case in one View: once with a page large
// enough for all results and the Total, then page by page (Count 1 and
// 2 by default) following Next, which must give the same resources in
// the same order, each page's Total the same, and Next nil exactly on
// the last page.
func runSearchCases(t *testing.T, s hale.Store, cases []searchCase) {
	t.Helper()
	ctx := context.Background()
	mustView(t, s, func(r hale.Reader) error {
		sr := searcher(t, r)
		for _, c := range cases {
			q := c.q
			q.Count, q.Total = 1000, true
			res, err := sr.Search(ctx, &q)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			got := resultLabels(res.Versions)
			if !equal(got, c.want) {
				t.Errorf("%s:\n got %v\nwant %v", c.name, got, c.want)
				continue
			}
			if res.Total != int64(len(c.want)) {
				t.Errorf("%s: Total = %d, want %d", c.name, res.Total, len(c.want))
			}
			if res.Next != nil {
				t.Errorf("%s: Next = %+v on the only page", c.name, res.Next)
			}
			sizes := c.pageSizes
			if sizes == nil {
				sizes = []int{1, 2}
			}
			for _, size := range sizes {
				paged, err := pageAll(ctx, sr, c.q, size, nil)
				if err != nil {
					t.Errorf("%s, pages of %d: %v", c.name, size, err)
					continue
				}
				if !equal(paged, c.want) {
					t.Errorf("%s, pages of %d:\n got %v\nwant %v", c.name, size, paged, c.want)
				}
			}
		}
		return nil
	})
}

// pageAll follows Next from the first page to the last, calling between
// (if set) after each page, and returns every resource in order. Only
// the first page asks for the Total.
func pageAll(ctx context.Context, sr hale.Searcher, q hale.Query, size int, between func(page int)) ([]string, error) {
	var out []string
	q.Count, q.Total, q.After = size, true, nil
	var total int64
	for page := 0; ; page++ {
		res, err := sr.Search(ctx, &q)
		if err != nil {
			return out, err
		}
		if page == 0 {
			total = res.Total
		} else if res.Total != -1 {
			return out, fmt.Errorf("page %d: Total = %d without asking", page, res.Total)
		}
		if len(res.Versions) > size {
			return out, fmt.Errorf("page %d: %d resources, more than Count %d", page, len(res.Versions), size)
		}
		out = append(out, resultLabels(res.Versions)...)
		if res.Next == nil {
			if page == 0 && int64(len(out)) != total && between == nil {
				return out, fmt.Errorf("Total %d, but %d resources", total, len(out))
			}
			return out, nil
		}
		if len(res.Versions) < size {
			return out, fmt.Errorf("page %d: Next set after a short page of %d", page, len(res.Versions))
		}
		if page > 10000 {
			return out, fmt.Errorf("more than 10,000 pages")
		}
		if between != nil {
			between(page)
		}
		q.After, q.Total = res.Next, false
	}
}

func resultLabels(vs []hale.Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Type + "/" + v.ID
	}
	return out
}

// refs builds "Type/id" labels: refs("Observation", "a", "b").
func refs(typ string, ids ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = typ + "/" + id
	}
	return out
}

// Query and clause builders, named after the search they spell.

func query(typ string, where ...hale.Clause) hale.Query {
	return hale.Query{Types: []string{typ}, Where: where}
}

func clause(param string, typ hale.ParamType, values ...hale.Value) hale.Clause {
	return hale.Clause{Param: param, Type: typ, Values: values}
}

func not(c hale.Clause) hale.Clause { c.Not = true; return c }

func modified(c hale.Clause, modifier string) hale.Clause { c.Modifier = modifier; return c }

func missing(param string, typ hale.ParamType, m bool) hale.Clause {
	return hale.Clause{Param: param, Type: typ, Missing: &m}
}

func tokenV(system, code string) hale.Value { return hale.Value{System: system, Code: code} }
func codeV(code string) hale.Value          { return hale.Value{Code: code} }
func noSystemV(code string) hale.Value      { return hale.Value{NoSystem: true, Code: code} }
func anyCodeV(system string) hale.Value     { return hale.Value{System: system, AnyCode: true} }
func targetV(typ, id string) hale.Value     { return hale.Value{TargetType: typ, TargetID: id} }
func urlV(u string) hale.Value              { return hale.Value{URL: u} }

// dateV is a date search value: prefix and the range the date's
// precision covers ("2020" is all of 2020).
func dateV(prefix, date string) hale.Value {
	lo, hi := dateRange(date)
	return hale.Value{Prefix: prefix, Lo: lo, Hi: hi}
}

// dateRange parses a FHIR date or dateTime in UTC into [lo, hi) in unix
// microseconds, widened to its precision.
func dateRange(s string) (lo, hi int64) {
	layouts := []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01-02T15:04", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02T15:04:05", func(t time.Time) time.Time { return t.Add(time.Second) }},
	}
	for _, l := range layouts {
		if t, err := time.Parse(l.layout, s); err == nil {
			return t.UnixMicro(), l.next(t).UnixMicro()
		}
	}
	panic("storetest: bad date " + s)
}

// dateRow is the index row of a date (or Period with both ends).
func dateRow(param, date string) hale.DateValue {
	lo, hi := dateRange(date)
	return hale.DateValue{Param: param, Lo: lo, Hi: hi}
}

// numberV is a number search value with its precision range.
func numberV(prefix string, n, lo, hi float64) hale.Value {
	return hale.Value{Prefix: prefix, Number: n, NumberLo: lo, NumberHi: hi}
}

func numberRow(param string, v, lo, hi float64) hale.NumberValue {
	return hale.NumberValue{Param: param, Value: v, Lo: lo, Hi: hi}
}

func testSearchToken(t *testing.T, s hale.Store) {
	const loinc, snomed = "http://loinc.org", "http://snomed.info/sct"
	putIdx(t, s, "Observation", "t1", hale.Index{Tokens: []hale.TokenValue{
		tok("code", loinc, "1234-5"), tok("code", snomed, "999")}})
	putIdx(t, s, "Observation", "t2", hale.Index{Tokens: []hale.TokenValue{tok("code", loinc, "1234-5")}})
	putIdx(t, s, "Observation", "t3", hale.Index{Tokens: []hale.TokenValue{tok("code", "", "1234-5")}})
	putIdx(t, s, "Observation", "t4", hale.Index{Tokens: []hale.TokenValue{tok("code", loinc, "9999-9")}})
	putIdx(t, s, "Observation", "t5", hale.Index{Tokens: []hale.TokenValue{tok("status", "", "final")}})
	// Matches everything, but deleted.
	putIdx(t, s, "Observation", "t6", hale.Index{Tokens: []hale.TokenValue{tok("code", loinc, "1234-5")}})
	mustPut(t, s, deletion("Observation", "t6", 2, 2), nil)

	code := func(v ...hale.Value) hale.Clause { return clause("code", hale.TypeToken, v...) }
	obs := func(ids ...string) []string { return refs("Observation", ids...) }
	runSearchCases(t, s, []searchCase{
		{name: "code in any system", q: query("Observation", code(codeV("1234-5"))), want: obs("t1", "t2", "t3")},
		{name: "system|code", q: query("Observation", code(tokenV(loinc, "1234-5"))), want: obs("t1", "t2")},
		{name: "|code", q: query("Observation", code(noSystemV("1234-5"))), want: obs("t3")},
		{name: "system|", q: query("Observation", code(anyCodeV(loinc))), want: obs("t1", "t2", "t4")},
		{name: "code of another system", q: query("Observation", code(tokenV(snomed, "1234-5")))},
		{name: "code OR |code", q: query("Observation", code(codeV("9999-9"), noSystemV("1234-5"))),
			want: obs("t3", "t4")},
		{name: "code AND code", q: query("Observation", code(codeV("1234-5")), code(codeV("999"))),
			want: obs("t1")},
		{name: "no values matches nothing", q: query("Observation", code())},
		{name: ":not code (also no code at all)", q: query("Observation", not(code(codeV("1234-5")))),
			want: obs("t4", "t5")},
		{name: ":not system|code OR system|code",
			q:    query("Observation", not(code(tokenV(loinc, "1234-5"), tokenV(snomed, "999")))),
			want: obs("t3", "t4", "t5")},
		{name: ":not system|", q: query("Observation", not(code(anyCodeV(loinc)))), want: obs("t3", "t5")},
		{name: ":not AND code", q: query("Observation", not(code(codeV("999"))), code(codeV("1234-5"))),
			want: obs("t2", "t3")},
		{name: ":missing true", q: query("Observation", missing("code", hale.TypeToken, true)), want: obs("t5")},
		{name: ":missing false", q: query("Observation", missing("code", hale.TypeToken, false)),
			want: obs("t1", "t2", "t3", "t4")},
		{name: "another type", q: query("Patient", code(codeV("1234-5")))},
	})
}

func testSearchString(t *testing.T, s hale.Store) {
	putIdx(t, s, "Patient", "s1", hale.Index{Strings: []hale.StringValue{str("name", "smith", "Smith")}})
	putIdx(t, s, "Patient", "s2", hale.Index{Strings: []hale.StringValue{str("name", "smithson", "Smithson"),
		str("name", "50%_off", "50%_Off")}})
	putIdx(t, s, "Patient", "s3", hale.Index{Strings: []hale.StringValue{str("name", "ångström", "Ångström"),
		str("name", "50x1off", "50x1Off")}})
	putIdx(t, s, "Patient", "s4", hale.Index{Strings: []hale.StringValue{str("address", "smith street", "Smith Street")}})
	name := func(v ...string) hale.Clause {
		c := clause("name", hale.TypeString)
		for _, x := range v {
			c.Values = append(c.Values, codeV(x))
		}
		return c
	}
	pat := func(ids ...string) []string { return refs("Patient", ids...) }
	runSearchCases(t, s, []searchCase{
		{name: "prefix", q: query("Patient", name("smith")), want: pat("s1", "s2")},
		{name: "longer prefix", q: query("Patient", name("smiths")), want: pat("s2")},
		{name: "prefix OR prefix", q: query("Patient", name("smiths", "ång")), want: pat("s2", "s3")},
		{name: "prefix with % is literal", q: query("Patient", name("50%")), want: pat("s2")},
		{name: "prefix with _ is literal", q: query("Patient", name("50_"))},
		{name: "exact", q: query("Patient", modified(name("Smith"), "exact")), want: pat("s1")},
		{name: "exact is case-sensitive", q: query("Patient", modified(name("smith"), "exact"))},
		{name: "exact is not a prefix", q: query("Patient", modified(name("Smit"), "exact"))},
		{name: "exact beyond ASCII", q: query("Patient", modified(name("Ångström"), "exact")), want: pat("s3")},
		{name: "contains", q: query("Patient", modified(name("mit"), "contains")), want: pat("s1", "s2")},
		{name: "contains %_", q: query("Patient", modified(name("%_"), "contains")), want: pat("s2")},
		{name: "contains beyond ASCII", q: query("Patient", modified(name("gstr"), "contains")), want: pat("s3")},
		{name: "contains OR contains", q: query("Patient", modified(name("x1", "son"), "contains")),
			want: pat("s2", "s3")},
		{name: ":missing true", q: query("Patient", missing("name", hale.TypeString, true)), want: pat("s4")},
		{name: ":missing false", q: query("Patient", missing("name", hale.TypeString, false)),
			want: pat("s1", "s2", "s3")},
	})
}

func testSearchURI(t *testing.T, s hale.Store) {
	put := func(id, uri string) {
		putIdx(t, s, "ValueSet", id, hale.Index{URIs: []hale.URIValue{{Param: "url", URI: uri}}})
	}
	put("u1", "http://acme.org/fhir/ValueSet/a")
	put("u2", "http://acme.org/fhir/ValueSet/ab")
	put("u3", "http://acme.org/fhir")
	put("u4", "http://other.org/x_%")
	putIdx(t, s, "ValueSet", "u5", hale.Index{})
	url := func(mod, v string) hale.Clause { return modified(clause("url", hale.TypeURI, codeV(v)), mod) }
	vs := func(ids ...string) []string { return refs("ValueSet", ids...) }
	runSearchCases(t, s, []searchCase{
		{name: "equal", q: query("ValueSet", url("", "http://acme.org/fhir/ValueSet/a")), want: vs("u1")},
		{name: "equal is not a prefix", q: query("ValueSet", url("", "http://acme.org/fhir/ValueSet"))},
		{name: "below", q: query("ValueSet", url("below", "http://acme.org/fhir/ValueSet/a")), want: vs("u1", "u2")},
		{name: "below the base", q: query("ValueSet", url("below", "http://acme.org/fhir")), want: vs("u1", "u2", "u3")},
		{name: "below with _", q: query("ValueSet", url("below", "http://other.org/x_")), want: vs("u4")},
		{name: "below: _ is literal", q: query("ValueSet", url("below", "http://other.org/xa"))},
		{name: "below: % is literal", q: query("ValueSet", url("below", "http://acme.org/%"))},
		{name: "above", q: query("ValueSet", url("above", "http://acme.org/fhir/ValueSet/abc")),
			want: vs("u1", "u2", "u3")},
		{name: "above, another branch", q: query("ValueSet", url("above", "http://acme.org/fhir/ValueSet/b")),
			want: vs("u3")},
		{name: "above itself", q: query("ValueSet", url("above", "http://acme.org/fhir")), want: vs("u3")},
		{name: "above with %", q: query("ValueSet", url("above", "http://other.org/x_%y")), want: vs("u4")},
		{name: "above: % and _ are literal", q: query("ValueSet", url("above", "http://other.org/xa%y"))},
		{name: ":missing true", q: query("ValueSet", missing("url", hale.TypeURI, true)), want: vs("u5")},
	})
}

func testSearchReference(t *testing.T, s hale.Store) {
	put := func(id string, rv ...hale.ReferenceValue) {
		putIdx(t, s, "Observation", id, hale.Index{References: rv})
	}
	put("r1", ref("subject", "Patient", "p1", "Patient/p1"))
	put("r2", ref("subject", "Patient", "p2", "Patient/p2"))
	put("r3", ref("subject", "Group", "p1", "Group/p1"))
	put("r4", ref("subject", "", "", "http://elsewhere.org/fhir/Patient/p1"))
	put("r5", ref("performer", "Practitioner", "d1", "Practitioner/d1"))
	subject := func(v ...hale.Value) hale.Clause { return clause("subject", hale.TypeReference, v...) }
	obs := func(ids ...string) []string { return refs("Observation", ids...) }
	runSearchCases(t, s, []searchCase{
		{name: "type/id", q: query("Observation", subject(targetV("Patient", "p1"))), want: obs("r1")},
		{name: "id of any type", q: query("Observation", subject(targetV("", "p1"))), want: obs("r1", "r3")},
		{name: "type/id OR type/id", q: query("Observation", subject(targetV("Patient", "p1"), targetV("Patient", "p2"))),
			want: obs("r1", "r2")},
		{name: "absolute URL", q: query("Observation", subject(urlV("http://elsewhere.org/fhir/Patient/p1"))),
			want: obs("r4")},
		{name: "wrong type", q: query("Observation", subject(targetV("Practitioner", "p1")))},
		{name: ":missing true", q: query("Observation", missing("subject", hale.TypeReference, true)), want: obs("r5")},
		{name: ":missing false", q: query("Observation", missing("subject", hale.TypeReference, false)),
			want: obs("r1", "r2", "r3", "r4")},
	})
}

func testSearchID(t *testing.T, s hale.Store) {
	for _, id := range []string{"a", "b", "c"} {
		putIdx(t, s, "Patient", id, hale.Index{})
	}
	putIdx(t, s, "Observation", "a", hale.Index{})
	mustPut(t, s, deletion("Patient", "c", 2, 2), nil)
	id := func(v ...string) hale.Clause {
		c := clause("_id", hale.TypeID)
		for _, x := range v {
			c.Values = append(c.Values, codeV(x))
		}
		return c
	}
	typ := func(not bool, v ...string) hale.Clause {
		c := clause("_type", hale.TypeResourceType)
		c.Not = not
		for _, x := range v {
			c.Values = append(c.Values, codeV(x))
		}
		return c
	}
	runSearchCases(t, s, []searchCase{
		{name: "_id", q: query("Patient", id("b")), want: refs("Patient", "b")},
		{name: "_id OR _id", q: query("Patient", id("b", "a", "x")), want: refs("Patient", "a", "b")},
		{name: "_id of a deleted resource", q: query("Patient", id("c"))},
		{name: "_id without values", q: query("Patient", id())},
		{name: "_id AND _id", q: query("Patient", id("a", "b"), id("b", "c")), want: refs("Patient", "b")},
		{name: "_id in every type", q: hale.Query{Where: []hale.Clause{id("a")}},
			want: []string{"Observation/a", "Patient/a"}},
		// The resource type as a clause (package access restricts each
		// type of a multi-type search this way).
		{name: "_type", q: hale.Query{Where: []hale.Clause{typ(false, "Observation")}},
			want: []string{"Observation/a"}},
		{name: "not _type", q: hale.Query{Where: []hale.Clause{typ(true, "Observation")}},
			want: refs("Patient", "a", "b")},
		{name: "not _type OR _id", q: hale.Query{Where: []hale.Clause{{Or: []hale.Clause{typ(true, "Patient"), id("b")}}}},
			want: []string{"Observation/a", "Patient/b"}},
		{name: "_type without values", q: hale.Query{Where: []hale.Clause{typ(false)}}},
	})
}

// testSearchDate checks each prefix against the precision ranges of the
// stored dates (search.html#date): a year against days and seconds,
// equal boundaries, and Periods with an open end.
func testSearchDate(t *testing.T, s hale.Store) {
	put := func(id string, rows ...hale.DateValue) {
		putIdx(t, s, "Observation", id, hale.Index{Dates: rows})
	}
	lo2020, _ := dateRange("2020")
	put("d1", dateRow("date", "2020-06-15"))
	put("d2", dateRow("date", "2020-06-15T10:00:00"))
	put("d3", dateRow("date", "2020"))
	put("d4", hale.DateValue{Param: "date", Lo: mustLo("2019-12-31"), Hi: hale.MaxTime}) // Period, no end
	put("d5", hale.DateValue{Param: "date", Lo: hale.MinTime, Hi: lo2020})               // Period, no start, to 2019-12-31
	put("d6", dateRow("date", "2021-01-01"))
	put("d7")
	put("d8", dateRow("date", "2018-05-01"), dateRow("date", "2022-05-01"))

	date := func(v ...hale.Value) hale.Clause { return clause("date", hale.TypeDate, v...) }
	obs := func(ids ...string) []string { return refs("Observation", ids...) }
	q := func(v ...hale.Value) hale.Query { return query("Observation", date(v...)) }
	runSearchCases(t, s, []searchCase{
		// Against 2020, [2020-01-01, 2021-01-01).
		{name: "2020 (no prefix is eq)", q: q(dateV("", "2020")), want: obs("d1", "d2", "d3")},
		{name: "eq2020", q: q(dateV("eq", "2020")), want: obs("d1", "d2", "d3")},
		{name: "ne2020", q: q(dateV("ne", "2020")), want: obs("d4", "d5", "d6", "d8")},
		{name: "gt2020", q: q(dateV("gt", "2020")), want: obs("d4", "d6", "d8")},
		{name: "lt2020", q: q(dateV("lt", "2020")), want: obs("d4", "d5", "d8")},
		{name: "ge2020", q: q(dateV("ge", "2020")), want: obs("d1", "d2", "d3", "d4", "d6", "d8")},
		{name: "le2020", q: q(dateV("le", "2020")), want: obs("d1", "d2", "d3", "d4", "d5", "d8")},
		{name: "sa2020", q: q(dateV("sa", "2020")), want: obs("d6", "d8")},
		{name: "eb2020 (d5 ends where 2020 starts)", q: q(dateV("eb", "2020")), want: obs("d5", "d8")},
		{name: "ap2020", q: q(dateV("ap", "2020")), want: obs("d1", "d2", "d3", "d4")},
		// Against a day, [2020-06-15, 2020-06-16): the year 2020 is not in it.
		{name: "eq2020-06-15", q: q(dateV("eq", "2020-06-15")), want: obs("d1", "d2")},
		{name: "ne2020-06-15", q: q(dateV("ne", "2020-06-15")), want: obs("d3", "d4", "d5", "d6", "d8")},
		{name: "lt2020-06-15 (d1 starts with it)", q: q(dateV("lt", "2020-06-15")), want: obs("d3", "d4", "d5", "d8")},
		{name: "gt2020-06-15 (d1 ends with it)", q: q(dateV("gt", "2020-06-15")), want: obs("d3", "d4", "d6", "d8")},
		{name: "sa2020-06-14", q: q(dateV("sa", "2020-06-14")), want: obs("d1", "d2", "d6", "d8")},
		{name: "eb2020-06-16", q: q(dateV("eb", "2020-06-16")), want: obs("d1", "d2", "d5", "d8")},
		{name: "ap2020-06-15", q: q(dateV("ap", "2020-06-15")), want: obs("d1", "d2", "d3", "d4")},
		// Against a second, and a minute.
		{name: "eq2020-06-15T10:00:00", q: q(dateV("eq", "2020-06-15T10:00:00")), want: obs("d2")},
		{name: "eq2020-06-15T10:00", q: q(dateV("eq", "2020-06-15T10:00")), want: obs("d2")},
		{name: "eq2020-06-15T10:01", q: q(dateV("eq", "2020-06-15T10:01"))},
		// A day that only open Periods cover.
		{name: "eq2019-12-31", q: q(dateV("eq", "2019-12-31"))},
		{name: "ap2019-12-31", q: q(dateV("ap", "2019-12-31")), want: obs("d4", "d5")},
		// Several values and several clauses.
		{name: "2021 OR 2018", q: q(dateV("", "2021"), dateV("", "2018")), want: obs("d6", "d8")},
		{name: "ge2020 AND lt2021", q: query("Observation", date(dateV("ge", "2020")), date(dateV("lt", "2021"))),
			want: obs("d1", "d2", "d3", "d4", "d8")},
		{name: ":missing true", q: query("Observation", missing("date", hale.TypeDate, true)), want: obs("d7")},
	})
	bad := query("Observation", date(dateV("xx", "2020")))
	mustView(t, s, func(r hale.Reader) error {
		if _, err := searcher(t, r).Search(context.Background(), &bad); !hale.IsKind(err, hale.KindInvalid) {
			t.Errorf("unknown prefix: err = %v, want kind invalid", err)
		}
		return nil
	})
}

func mustLo(date string) int64 { lo, _ := dateRange(date); return lo }

// testSearchLastUpdated: _lastUpdated is the range [last_updated,
// last_updated + 1µs) with the date prefixes.
func testSearchLastUpdated(t *testing.T, s hale.Store) {
	for _, sec := range []float64{1, 2, 2.5, 3, 4} {
		id := strings.ReplaceAll(fmt.Sprint("l", sec), ".", "_")
		mustPut(t, s, version("Patient", id, 1, sec), &hale.Index{})
	}
	// The search range [t0+2s, t0+3s), as "…:02" at second precision.
	v := func(prefix string) hale.Value {
		return hale.Value{Prefix: prefix, Lo: at(2).UnixMicro(), Hi: at(3).UnixMicro()}
	}
	lu := func(v ...hale.Value) hale.Query {
		return query("Patient", clause("_lastUpdated", hale.TypeLastUpdated, v...))
	}
	pat := func(ids ...string) []string { return refs("Patient", ids...) }
	runSearchCases(t, s, []searchCase{
		{name: "eq", q: lu(v("eq")), want: pat("l2", "l2_5")},
		{name: "ne", q: lu(v("ne")), want: pat("l1", "l3", "l4")},
		{name: "gt", q: lu(v("gt")), want: pat("l3", "l4")},
		{name: "lt", q: lu(v("lt")), want: pat("l1")},
		{name: "ge", q: lu(v("ge")), want: pat("l2", "l2_5", "l3", "l4")},
		{name: "le", q: lu(v("le")), want: pat("l1", "l2", "l2_5")},
		{name: "sa", q: lu(v("sa")), want: pat("l3", "l4")},
		{name: "eb", q: lu(v("eb")), want: pat("l1")},
		{name: "ap", q: lu(v("ap")), want: pat("l2", "l2_5")},
		{name: "the exact microsecond", q: lu(hale.Value{Lo: at(2.5).UnixMicro(), Hi: at(2.5).UnixMicro() + 1}),
			want: pat("l2_5")},
		{name: "gt, then a token", q: query("Patient", clause("_lastUpdated", hale.TypeLastUpdated, v("gt")),
			not(clause("x", hale.TypeToken, codeV("y")))), want: pat("l3", "l4")},
	})
}

func testSearchNumber(t *testing.T, s hale.Store) {
	put := func(id string, rows ...hale.NumberValue) {
		putIdx(t, s, "RiskAssessment", id, hale.Index{Numbers: rows})
	}
	put("n1", numberRow("probability", 100, 99.5, 100.5))
	put("n2", numberRow("probability", 99.5, 99.45, 99.55))
	put("n3", numberRow("probability", 100.5, 100.45, 100.55))
	put("n4", numberRow("probability", 0.5, 0.45, 0.55))
	put("n5", numberRow("probability", -3, -3.5, -2.5))
	put("n6")
	put("n7", numberRow("probability", 10, 9.5, 10.5), numberRow("probability", 1000, 999.5, 1000.5))
	// "100": 100, precision [99.5, 100.5).
	q := func(prefix string) hale.Query {
		return query("RiskAssessment", clause("probability", hale.TypeNumber, numberV(prefix, 100, 99.5, 100.5)))
	}
	ra := func(ids ...string) []string { return refs("RiskAssessment", ids...) }
	runSearchCases(t, s, []searchCase{
		{name: "100 (lower bound in, upper out)", q: q(""), want: ra("n1", "n2")},
		{name: "eq100", q: q("eq"), want: ra("n1", "n2")},
		{name: "ne100", q: q("ne"), want: ra("n3", "n4", "n5", "n7")},
		{name: "gt100", q: q("gt"), want: ra("n3", "n7")},
		{name: "sa100", q: q("sa"), want: ra("n3", "n7")},
		{name: "lt100", q: q("lt"), want: ra("n2", "n4", "n5", "n7")},
		{name: "eb100", q: q("eb"), want: ra("n2", "n4", "n5", "n7")},
		{name: "ge100", q: q("ge"), want: ra("n1", "n3", "n7")},
		{name: "le100", q: q("le"), want: ra("n1", "n2", "n4", "n5", "n7")},
		{name: "ap100 (both bounds in)", q: q("ap"), want: ra("n1", "n2", "n3")},
		{name: "-3", q: query("RiskAssessment", clause("probability", hale.TypeNumber, numberV("", -3, -3.5, -2.5))),
			want: ra("n5")},
		{name: "0.5 OR 1000", q: query("RiskAssessment", clause("probability", hale.TypeNumber,
			numberV("", 0.5, 0.45, 0.55), numberV("", 1000, 999.5, 1000.5))), want: ra("n4", "n7")},
		{name: ":missing true", q: query("RiskAssessment", missing("probability", hale.TypeNumber, true)), want: ra("n6")},
	})
}

func testSearchQuantity(t *testing.T, s hale.Store) {
	const ucum = "http://unitsofmeasure.org"
	put := func(id string, q hale.QuantityValue) {
		q.Param = "value-quantity"
		putIdx(t, s, "Observation", id, hale.Index{Quantities: []hale.QuantityValue{q}})
	}
	// 5.4 mg and 0.0054 g are the same amount: 0.0054 g canonical.
	put("q1", hale.QuantityValue{System: ucum, Code: "mg", Unit: "mg", Value: 5.4, Lo: 5.35, Hi: 5.45,
		CanonCode: "g", CanonLo: 0.00535, CanonHi: 0.00545})
	put("q2", hale.QuantityValue{System: ucum, Code: "g", Unit: "g", Value: 0.0054, Lo: 0.00535, Hi: 0.00545,
		CanonCode: "g", CanonLo: 0.00535, CanonHi: 0.00545})
	put("q3", hale.QuantityValue{System: "http://other.org", Code: "mg", Unit: "milligram", Value: 5.4, Lo: 5.35, Hi: 5.45})
	put("q4", hale.QuantityValue{Unit: "mg", Value: 5.4, Lo: 5.35, Hi: 5.45})
	put("q5", hale.QuantityValue{System: ucum, Code: "kg", Unit: "kg", Value: 6, Lo: 5.5, Hi: 6.5,
		CanonCode: "g", CanonLo: 5500, CanonHi: 6500})
	put("q6", hale.QuantityValue{System: ucum, Code: "mg", Unit: "mg", Value: 7, Lo: 6.5, Hi: 7.5,
		CanonCode: "g", CanonLo: 0.0065, CanonHi: 0.0075})
	putIdx(t, s, "Observation", "q7", hale.Index{})

	v := func(prefix, system, code string, canon bool) hale.Value {
		x := hale.Value{Prefix: prefix, System: system, Code: code, Number: 5.4, NumberLo: 5.35, NumberHi: 5.45}
		if canon {
			x.CanonCode, x.CanonNumberLo, x.CanonNumberHi = "g", 0.00535, 0.00545
		}
		return x
	}
	q := func(v hale.Value) hale.Query {
		return query("Observation", clause("value-quantity", hale.TypeQuantity, v))
	}
	obs := func(ids ...string) []string { return refs("Observation", ids...) }
	runSearchCases(t, s, []searchCase{
		{name: "5.4|ucum|mg, canonical", q: q(v("", ucum, "mg", true)), want: obs("q1", "q2")},
		{name: "gt5.4|ucum|mg, canonical", q: q(v("gt", ucum, "mg", true)), want: obs("q5", "q6")},
		{name: "le5.4|ucum|mg, canonical", q: q(v("le", ucum, "mg", true)), want: obs("q1", "q2")},
		{name: "ne5.4|ucum|mg, canonical", q: q(v("ne", ucum, "mg", true)), want: obs("q5", "q6")},
		{name: "5.4|ucum|mg, not converted", q: q(v("", ucum, "mg", false)), want: obs("q1")},
		{name: "5.4||mg: code or unit", q: q(v("", "", "mg", false)), want: obs("q1", "q3", "q4")},
		{name: "ne5.4||mg", q: q(v("ne", "", "mg", false)), want: obs("q6")},
		{name: "5.4 in any unit", q: q(v("", "", "", false)), want: obs("q1", "q3", "q4")},
		{name: "gt5.4 in any unit", q: q(v("gt", "", "", false)), want: obs("q5", "q6")},
		{name: "ap5.4 in any unit", q: q(v("ap", "", "", false)), want: obs("q1", "q3", "q4")},
		{name: ":missing true", q: query("Observation", missing("value-quantity", hale.TypeQuantity, true)),
			want: obs("q7")},
	})
}

// chainFixture: Observations point at Patients (and a Group), which
// point at Practitioners, which point at Organizations; some targets
// are deleted.
func chainFixture(t *testing.T, s hale.Store) {
	name := func(n string) []hale.StringValue { return []hale.StringValue{str("name", n, n)} }
	put := func(typ, id string, idx hale.Index) { putIdx(t, s, typ, id, idx) }
	del := func(typ, id string) { mustPut(t, s, deletion(typ, id, 2, 2), nil) }
	put("Organization", "org1", hale.Index{Strings: name("acme")})
	put("Organization", "org2", hale.Index{Strings: name("globex")})
	put("Organization", "org3", hale.Index{Strings: name("acme")})
	del("Organization", "org3")
	org := func(id string) []hale.ReferenceValue {
		return []hale.ReferenceValue{ref("organization", "Organization", id, "Organization/"+id)}
	}
	put("Practitioner", "d1", hale.Index{Strings: name("house"), References: org("org1")})
	put("Practitioner", "d2", hale.Index{Strings: name("wilson"), References: org("org2")})
	put("Practitioner", "d3", hale.Index{Strings: name("cuddy"), References: org("org3")})
	gp := func(id string) []hale.ReferenceValue {
		return []hale.ReferenceValue{ref("general-practitioner", "Practitioner", id, "Practitioner/"+id)}
	}
	put("Patient", "p1", hale.Index{Strings: name("smith"), References: gp("d1")})
	put("Patient", "p2", hale.Index{Strings: name("jones"), References: gp("d2")})
	put("Patient", "p3", hale.Index{Strings: name("smith"), References: gp("d3")})
	put("Patient", "p4", hale.Index{Strings: name("smith"), References: gp("d1")})
	del("Patient", "p4")
	put("Group", "g1", hale.Index{Strings: name("smith")})
	obs := func(code string, subject ...string) hale.Index {
		idx := hale.Index{Tokens: []hale.TokenValue{tok("code", "http://loinc.org", code)}}
		for _, sub := range subject {
			typ, id, _ := strings.Cut(sub, "/")
			idx.References = append(idx.References, ref("subject", typ, id, sub))
		}
		return idx
	}
	put("Observation", "o1", obs("bp", "Patient/p1"))
	put("Observation", "o2", obs("hr", "Patient/p2"))
	put("Observation", "o3", obs("bp", "Patient/p3"))
	put("Observation", "o4", obs("bp", "Patient/p4"))
	put("Observation", "o5", obs("bp", "Group/g1"))
	put("Observation", "o6", obs("bp", "Patient/p404")) // a target that never existed
	put("Observation", "o7", obs("bp", "Patient/p2"))
	del("Observation", "o7")
	put("Observation", "o8", hale.Index{References: []hale.ReferenceValue{
		ref("performer", "Practitioner", "d1", "Practitioner/d1")}})
}

func chain(param, typ string, where ...hale.Clause) hale.Clause {
	return hale.Clause{Param: param, Type: hale.TypeReference, Chain: &hale.Chain{Type: typ, Where: where}}
}

func has(typ, param string, where ...hale.Clause) hale.Clause {
	return hale.Clause{Type: hale.TypeReference, Has: &hale.Has{Type: typ, Param: param, Where: where}}
}

func nameIs(n string) hale.Clause { return clause("name", hale.TypeString, codeV(n)) }

func testSearchChain(t *testing.T, s hale.Store) {
	chainFixture(t, s)
	obs := func(ids ...string) []string { return refs("Observation", ids...) }
	code := func(c string) hale.Clause { return clause("code", hale.TypeToken, codeV(c)) }
	runSearchCases(t, s, []searchCase{
		{name: "subject:Patient.name=smith (not the deleted p4, not the Group)",
			q: query("Observation", chain("subject", "Patient", nameIs("smith"))), want: obs("o1", "o3")},
		{name: "subject.name=smith, any type",
			q: query("Observation", chain("subject", "", nameIs("smith"))), want: obs("o1", "o3", "o5")},
		{name: "subject:Group.name=smith",
			q: query("Observation", chain("subject", "Group", nameIs("smith"))), want: obs("o5")},
		{name: "subject:Patient (any live Patient)",
			q: query("Observation", chain("subject", "Patient")), want: obs("o1", "o2", "o3")},
		{name: "subject:Patient.name=nobody", q: query("Observation", chain("subject", "Patient", nameIs("nobody")))},
		{name: "chain AND token",
			q:    query("Observation", code("bp"), chain("subject", "Patient", nameIs("smith"), nameIs("smi"))),
			want: obs("o1", "o3")},
		{name: "two levels: subject:Patient.general-practitioner:Practitioner.name=house",
			q:    query("Observation", chain("subject", "Patient", chain("general-practitioner", "Practitioner", nameIs("house")))),
			want: obs("o1")},
		{name: "two levels ending in a reference",
			q: query("Observation", chain("subject", "Patient", chain("general-practitioner", "Practitioner",
				clause("organization", hale.TypeReference, targetV("Organization", "org2"))))),
			want: obs("o2")},
		{name: "three levels: …organization:Organization.name=acme (org3 is deleted)",
			q: query("Observation", chain("subject", "Patient", chain("general-practitioner", "Practitioner",
				chain("organization", "Organization", nameIs("acme"))))),
			want: obs("o1")},
		{name: "three levels, globex",
			q: query("Observation", chain("subject", "Patient", chain("general-practitioner", "Practitioner",
				chain("organization", "Organization", nameIs("globex"))))),
			want: obs("o2")},
		{name: "three levels, untyped",
			q: query("Observation", chain("subject", "", chain("general-practitioner", "",
				chain("organization", "", nameIs("acme"))))),
			want: obs("o1")},
		{name: "three levels, no match",
			q: query("Observation", chain("subject", "Patient", chain("general-practitioner", "Practitioner",
				chain("organization", "Organization", nameIs("initech")))))},
		{name: "not(chain)",
			q:    query("Observation", code("bp"), not(chain("subject", "Patient", nameIs("smith")))),
			want: obs("o4", "o5", "o6")},
	})
}

// testSearchOr: a clause that holds when any of its clauses does (a
// compartment: subject or performer), combined with others and with
// _lastUpdated inside it.
func testSearchOr(t *testing.T, s hale.Store) {
	chainFixture(t, s)
	or := func(cls ...hale.Clause) hale.Clause { return hale.Clause{Or: cls} }
	subject := clause("subject", hale.TypeReference, targetV("Patient", "p1"))
	performer := clause("performer", hale.TypeReference, targetV("Practitioner", "d1"))
	code := clause("code", hale.TypeToken, codeV("bp"))
	lastUpdated := clause("_lastUpdated", hale.TypeLastUpdated, hale.Value{Prefix: "ge", Lo: at(1).UnixMicro(), Hi: at(2).UnixMicro()})
	obs := func(ids ...string) []string { return refs("Observation", ids...) }
	withTypes := func(cl hale.Clause, types ...string) hale.Clause { cl.Types = types; return cl }
	runSearchCases(t, s, []searchCase{
		{name: "subject OR performer", q: query("Observation", or(subject, performer)), want: obs("o1", "o8")},
		{name: "(subject OR performer) AND code", q: query("Observation", code, or(subject, performer)), want: obs("o1")},
		{name: "code AND (_lastUpdated OR subject)", q: query("Observation", code, or(lastUpdated, subject)),
			want: obs("o1", "o3", "o4", "o5", "o6")},
		{name: "an empty Or matches nothing", q: query("Observation", hale.Clause{Or: []hale.Clause{}})},
		// Clause.Types: an alternative that holds for some types only
		// (a compartment over every type).
		{name: "Types drops an alternative for other types", q: query("Observation", or(subject, withTypes(performer, "Patient"))),
			want: obs("o1")},
		{name: "Types keeps an alternative for its types", q: query("Observation", or(withTypes(subject, "Patient", "Observation"), performer)),
			want: obs("o1", "o8")},
		{name: "Types on a plain clause", q: query("Observation", withTypes(subject, "Patient"))},
		{name: "Types over several types", q: hale.Query{Types: []string{"Observation", "Patient"},
			Where: []hale.Clause{or(withTypes(subject, "Observation"), withTypes(performer, "Observation"))}},
			want: obs("o1", "o8")},
		{name: "chain OR _has",
			q: query("Patient", or(chain("general-practitioner", "Practitioner", nameIs("wilson")),
				has("Observation", "subject", clause("code", hale.TypeToken, codeV("bp"))))),
			want: refs("Patient", "p1", "p2", "p3")},
	})
}

func testSearchHas(t *testing.T, s hale.Store) {
	chainFixture(t, s)
	code := func(c string) hale.Clause { return clause("code", hale.TypeToken, codeV(c)) }
	runSearchCases(t, s, []searchCase{
		{name: "_has:Observation:subject:code=bp (not by the deleted o7)",
			q: query("Patient", has("Observation", "subject", code("bp"))), want: refs("Patient", "p1", "p3")},
		{name: "_has:Observation:subject:code=hr",
			q: query("Patient", has("Observation", "subject", code("hr"))), want: refs("Patient", "p2")},
		{name: "_has without conditions: any referring Observation",
			q: query("Patient", has("Observation", "subject")), want: refs("Patient", "p1", "p2", "p3")},
		{name: "_has on Group", q: query("Group", has("Observation", "subject", code("bp"))), want: refs("Group", "g1")},
		{name: "_has AND name",
			q: query("Patient", has("Observation", "subject", code("bp")), nameIs("smith")), want: refs("Patient", "p1", "p3")},
		{name: "nested: Practitioner?_has:Patient:general-practitioner:_has:Observation:subject:code=bp",
			q:    query("Practitioner", has("Patient", "general-practitioner", has("Observation", "subject", code("bp")))),
			want: refs("Practitioner", "d1", "d3")},
		{name: "nested three deep: Organization?_has:Practitioner:organization:_has:Patient:…:code=hr",
			q: query("Organization", has("Practitioner", "organization",
				has("Patient", "general-practitioner", has("Observation", "subject", code("hr"))))),
			want: refs("Organization", "org2")},
		{name: "_has with a chain inside",
			q: query("Practitioner", has("Patient", "general-practitioner",
				has("Observation", "subject", chain("subject", "Patient", nameIs("smith"))))),
			want: refs("Practitioner", "d1", "d3")},
		{name: "not(_has)", q: query("Patient", not(has("Observation", "subject", code("bp")))), want: refs("Patient", "p2")},
		{name: "_has, no match", q: query("Patient", has("Observation", "subject", code("xx")))},
	})
}

// testSearchComposite: two Observations with the same component values
// in different groups; a composite must match within one group.
func testSearchComposite(t *testing.T, s hale.Store) {
	const p = "component-code-value-quantity"
	row := func(group int, code string, value float64) ([]hale.TokenValue, []hale.QuantityValue) {
		return []hale.TokenValue{{Param: p + "#0", Group: group, System: "http://loinc.org", Code: code}},
			[]hale.QuantityValue{{Param: p + "#1", Group: group, System: "http://unitsofmeasure.org", Code: "mm[Hg]",
				Unit: "mmHg", Value: value, Lo: value - 0.5, Hi: value + 0.5}}
	}
	put := func(id string, elems ...[2]any) {
		var idx hale.Index
		for i, e := range elems {
			toks, qs := row(i+1, e[0].(string), e[1].(float64))
			idx.Tokens, idx.Quantities = append(idx.Tokens, toks...), append(idx.Quantities, qs...)
		}
		// A row of the same parameters outside any composite (group 0)
		// must not take part.
		idx.Tokens = append(idx.Tokens, hale.TokenValue{Param: p + "#0", System: "http://loinc.org", Code: "8310-5"})
		idx.Quantities = append(idx.Quantities, hale.QuantityValue{Param: p + "#1", Value: 37, Lo: 36.5, Hi: 37.5})
		putIdx(t, s, "Observation", id, idx)
	}
	put("c1", [2]any{"8480-6", 120.0}, [2]any{"8462-4", 80.0})
	put("c2", [2]any{"8480-6", 80.0}, [2]any{"8462-4", 120.0})
	put("c3", [2]any{"8310-5", 37.0})

	comp := func(code string, prefix string, value float64) []hale.Clause {
		return []hale.Clause{
			{Param: p + "#0", Type: hale.TypeToken, Values: []hale.Value{tokenV("http://loinc.org", code)}},
			{Param: p + "#1", Type: hale.TypeQuantity, Values: []hale.Value{
				{Prefix: prefix, Number: value, NumberLo: value - 0.5, NumberHi: value + 0.5}}},
		}
	}
	composite := func(alts ...[]hale.Clause) hale.Clause {
		return hale.Clause{Param: p, Type: hale.TypeComposite, Composite: alts}
	}
	obs := func(ids ...string) []string { return refs("Observation", ids...) }
	unnumbered := comp("8480-6", "", 120)
	unnumbered[0].Param, unnumbered[1].Param = "code", "value-quantity"
	runSearchCases(t, s, []searchCase{
		{name: "8480-6$120 (c2 has both, in different groups)", q: query("Observation", composite(comp("8480-6", "", 120))),
			want: obs("c1")},
		{name: "8462-4$120", q: query("Observation", composite(comp("8462-4", "", 120))), want: obs("c2")},
		{name: "8480-6$80", q: query("Observation", composite(comp("8480-6", "", 80))), want: obs("c2")},
		{name: "8480-6$gt100", q: query("Observation", composite(comp("8480-6", "gt", 100))), want: obs("c1")},
		{name: "8480-6$120,8462-4$120",
			q: query("Observation", composite(comp("8480-6", "", 120), comp("8462-4", "", 120))), want: obs("c1", "c2")},
		{name: "two composite clauses (AND), each its own group",
			q: query("Observation", composite(comp("8480-6", "", 120)), composite(comp("8462-4", "", 80))), want: obs("c1")},
		{name: "group 0 rows are no element: 8310-5$37 only in c3",
			q: query("Observation", composite(comp("8310-5", "", 37))), want: obs("c3")},
		{name: "components named by position", q: query("Observation", composite(unnumbered)), want: obs("c1")},
		{name: "not(composite)", q: query("Observation", not(composite(comp("8480-6", "", 120)))), want: obs("c2", "c3")},
	})
}

// sortFixture: Patients with zero, one or two family names and birth
// dates, so that keys tie, differ between min and max, and are missing.
func sortFixture(t *testing.T, s hale.Store) {
	put := func(id string, sec float64, families []string, birth string, extra hale.Index) {
		idx := extra
		for _, f := range families {
			idx.Strings = append(idx.Strings, str("family", f, strings.ToUpper(f)))
		}
		if birth != "" {
			idx.Dates = append(idx.Dates, dateRow("birthdate", birth))
		}
		mustPut(t, s, version("Patient", id, 1, sec), &idx)
	}
	num := func(v float64) hale.Index {
		return hale.Index{Numbers: []hale.NumberValue{numberRow("n", v, v, v)},
			Quantities: []hale.QuantityValue{{Param: "q", Value: -v, Lo: -v, Hi: -v}},
			Tokens:     []hale.TokenValue{tok("t", "", fmt.Sprint(v))},
			URIs:       []hale.URIValue{{Param: "u", URI: fmt.Sprint("urn:", v)}},
			References: []hale.ReferenceValue{ref("r", "X", fmt.Sprint(v), fmt.Sprint("X/", v))}}
	}
	put("s1", 6, []string{"b"}, "1980", num(3))
	put("s2", 5, []string{"a", "z"}, "1990", num(1))
	put("s3", 4, []string{"c"}, "", num(2))
	put("s4", 3, nil, "1970", hale.Index{})
	put("s5", 2, []string{"b"}, "1985", num(5))
	put("s6", 1, nil, "", num(4))
}

func testSearchSort(t *testing.T, s hale.Store) {
	sortFixture(t, s)
	key := func(param string, typ hale.ParamType, desc bool) hale.SortKey {
		return hale.SortKey{Param: param, Type: typ, Desc: desc}
	}
	sorted := func(keys ...hale.SortKey) hale.Query {
		q := query("Patient")
		q.Sort = keys
		return q
	}
	pat := func(ids ...string) []string { return refs("Patient", ids...) }
	all := []int{1, 2, 3, 4}
	runSearchCases(t, s, []searchCase{
		{name: "no sort: type, id", q: sorted(), want: pat("s1", "s2", "s3", "s4", "s5", "s6")},
		{name: "family (min), missing last, ties by id", q: sorted(key("family", hale.TypeString, false)),
			want: pat("s2", "s1", "s5", "s3", "s4", "s6"), pageSizes: all},
		{name: "-family (max), missing last", q: sorted(key("family", hale.TypeString, true)),
			want: pat("s2", "s3", "s1", "s5", "s4", "s6"), pageSizes: all},
		{name: "family, -birthdate", q: sorted(key("family", hale.TypeString, false), key("birthdate", hale.TypeDate, true)),
			want: pat("s2", "s5", "s1", "s3", "s4", "s6"), pageSizes: all},
		{name: "-family, birthdate", q: sorted(key("family", hale.TypeString, true), key("birthdate", hale.TypeDate, false)),
			want: pat("s2", "s3", "s1", "s5", "s4", "s6"), pageSizes: all},
		{name: "birthdate", q: sorted(key("birthdate", hale.TypeDate, false)),
			want: pat("s4", "s1", "s5", "s2", "s3", "s6"), pageSizes: all},
		{name: "-birthdate", q: sorted(key("birthdate", hale.TypeDate, true)),
			want: pat("s2", "s5", "s1", "s4", "s3", "s6"), pageSizes: all},
		{name: "birthdate, -family", q: sorted(key("birthdate", hale.TypeDate, false), key("family", hale.TypeString, true)),
			want: pat("s4", "s1", "s5", "s2", "s3", "s6"), pageSizes: all},
		{name: "-_id", q: sorted(key("_id", hale.TypeID, true)), want: pat("s6", "s5", "s4", "s3", "s2", "s1")},
		{name: "_lastUpdated", q: sorted(key("_lastUpdated", hale.TypeLastUpdated, false)),
			want: pat("s6", "s5", "s4", "s3", "s2", "s1")},
		{name: "-_lastUpdated", q: sorted(key("_lastUpdated", hale.TypeLastUpdated, true)),
			want: pat("s1", "s2", "s3", "s4", "s5", "s6")},
		{name: "number", q: sorted(key("n", hale.TypeNumber, false)), want: pat("s2", "s3", "s1", "s6", "s5", "s4")},
		{name: "-number", q: sorted(key("n", hale.TypeNumber, true)), want: pat("s5", "s6", "s1", "s3", "s2", "s4")},
		{name: "quantity", q: sorted(key("q", hale.TypeQuantity, false)), want: pat("s5", "s6", "s1", "s3", "s2", "s4")},
		{name: "token", q: sorted(key("t", hale.TypeToken, false)), want: pat("s2", "s3", "s1", "s6", "s5", "s4"), pageSizes: all},
		{name: "uri", q: sorted(key("u", hale.TypeURI, true)), want: pat("s5", "s6", "s1", "s3", "s2", "s4"), pageSizes: all},
		{name: "reference", q: sorted(key("r", hale.TypeReference, false)), want: pat("s2", "s3", "s1", "s6", "s5", "s4"), pageSizes: all},
		{name: "sorted and filtered",
			q: hale.Query{Types: []string{"Patient"}, Sort: []hale.SortKey{key("family", hale.TypeString, true)},
				Where: []hale.Clause{missing("birthdate", hale.TypeDate, false)}},
			want: pat("s2", "s1", "s5", "s4")},
		{name: "-birthdate, filtered by :not", pageSizes: all,
			q: hale.Query{Types: []string{"Patient"}, Sort: []hale.SortKey{key("birthdate", hale.TypeDate, true)},
				Where: []hale.Clause{not(clause("family", hale.TypeString, codeV("b")))}},
			want: pat("s2", "s4", "s3", "s6")},
		{name: "-number, filtered by a code", pageSizes: all,
			q: hale.Query{Types: []string{"Patient"}, Sort: []hale.SortKey{key("n", hale.TypeNumber, true)},
				Where: []hale.Clause{clause("family", hale.TypeString, codeV("b"))}},
			want: pat("s5", "s1")},
	})
}

// testSearchPagingWhileWriting pages through a sorted search while
// other transactions add resources that sort before, among and after
// the pages read so far: every resource that existed at the start comes
// exactly once, and none twice.
func testSearchPagingWhileWriting(t *testing.T, s hale.Store) {
	ctx := context.Background()
	const n = 60
	code := hale.TokenValue{Param: "code", System: "http://loinc.org", Code: "bp"}
	put := func(id string, day int, withDate bool) {
		idx := hale.Index{Tokens: []hale.TokenValue{code}}
		if withDate {
			idx.Dates = []hale.DateValue{dateRow("date", time.Date(2020, 1, 1+day, 0, 0, 0, 0, time.UTC).Format("2006-01-02"))}
		}
		putIdx(t, s, "Observation", id, idx)
	}
	var start []string
	for i := range n {
		id := fmt.Sprintf("o%03d", i)
		put(id, i%7, i%5 != 0) // ties on the date, and some without one
		start = append(start, "Observation/"+id)
	}
	added := 0
	for _, sort := range [][]hale.SortKey{nil, {{Param: "date", Type: hale.TypeDate}},
		{{Param: "date", Type: hale.TypeDate, Desc: true}}} {
		for _, size := range []int{1, 7, 25} {
			q := query("Observation", clause("code", hale.TypeToken, codeV("bp")))
			if size == 7 {
				// The whole type: a sorted page is read in sort order
				// from the sort-key index, not found and then sorted.
				q = query("Observation")
			}
			q.Sort = sort
			var got []string
			// Each page in its own View, as separate HTTP requests would.
			var next *hale.Cursor
			for page := 0; ; page++ {
				var res *hale.SearchResult
				mustView(t, s, func(r hale.Reader) (err error) {
					q.Count, q.After = size, next
					res, err = searcher(t, r).Search(ctx, &q)
					return err
				})
				got = append(got, resultLabels(res.Versions)...)
				if res.Next == nil {
					break
				}
				if page > 1000 {
					t.Fatalf("sort %v, pages of %d: more than 1,000 pages", sort, size)
				}
				next = res.Next
				if page >= 8 {
					continue // else pages of 1 would never reach the end
				}
				// New resources sorting first, in the middle and last.
				for _, id := range []string{"a", "o0305", "z"} {
					added++
					put(fmt.Sprintf("%s-%d", id, added), added%9, added%4 != 0)
				}
			}
			name := fmt.Sprintf("sort %v, pages of %d", sort, size)
			seen := map[string]int{}
			for _, l := range got {
				seen[l]++
				if seen[l] == 2 {
					t.Errorf("%s: %s twice", name, l)
				}
			}
			for _, l := range start {
				if seen[l] == 0 {
					t.Errorf("%s: %s, there from the start, never came", name, l)
				}
			}
		}
	}
}

func testSearchTotal(t *testing.T, s hale.Store) {
	ctx := context.Background()
	for i := range 25 {
		code := "a"
		if i%5 == 0 {
			code = "b"
		}
		idx := hale.Index{Tokens: []hale.TokenValue{tok("code", "s", code), tok("code", "t", code)}} // two rows each
		putIdx(t, s, "Observation", fmt.Sprintf("o%02d", i), idx)
	}
	mustPut(t, s, deletion("Observation", "o01", 2, 2), nil)
	code := func(c string) hale.Clause { return clause("code", hale.TypeToken, codeV(c)) }
	mustView(t, s, func(r hale.Reader) error {
		sr := searcher(t, r)
		for _, c := range []struct {
			name  string
			q     hale.Query
			total int64
		}{
			{"count only", hale.Query{Types: []string{"Observation"}, Where: []hale.Clause{code("a")}, Total: true}, 19},
			{"count only, two rows per resource", hale.Query{Types: []string{"Observation"},
				Where: []hale.Clause{clause("code", hale.TypeToken, codeV("a"), codeV("b"))}, Total: true}, 24},
			{"count with a second clause", hale.Query{Types: []string{"Observation"},
				Where: []hale.Clause{code("a"), not(code("b"))}, Total: true}, 19},
			{"count of everything", hale.Query{Types: []string{"Observation"}, Total: true}, 24},
			{"count with a page", hale.Query{Types: []string{"Observation"}, Where: []hale.Clause{code("b")},
				Total: true, Count: 2}, 5},
			{"no total asked", hale.Query{Types: []string{"Observation"}, Count: 2}, -1},
			{"count of nothing", hale.Query{Types: []string{"Observation"}, Where: []hale.Clause{code("c")}, Total: true}, 0},
			{"count of a system search", hale.Query{Where: []hale.Clause{code("b")}, Total: true}, 5},
		} {
			res, err := sr.Search(ctx, &c.q)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if res.Total != c.total {
				t.Errorf("%s: Total = %d, want %d", c.name, res.Total, c.total)
			}
			if want := min(c.q.Count, max(int(c.total), 2)); len(res.Versions) != want {
				t.Errorf("%s: %d versions, want %d", c.name, len(res.Versions), want)
			}
			if c.q.Count == 0 && res.Next != nil {
				t.Errorf("%s: Next set with Count 0", c.name)
			}
		}
		return nil
	})
}

// testSearchTypes: a search over several types, and over all (a system
// search), with the data of each version.
func testSearchTypes(t *testing.T, s hale.Store) {
	ctx := context.Background()
	mine := hale.Index{Tokens: []hale.TokenValue{tok("_tag", "urn:t", "mine")}}
	want := map[string]*hale.Version{}
	for _, typ := range []string{"Patient", "Observation", "Encounter"} {
		for _, id := range []string{"x", "y"} {
			v := version(typ, id, 1, 1)
			mustPut(t, s, v, &mine)
			want[typ+"/"+id] = v
		}
	}
	v2 := version("Patient", "x", 2, 3)
	mustPut(t, s, v2, &mine)
	want["Patient/x"] = v2
	mustPut(t, s, deletion("Encounter", "y", 2, 2), nil)
	mustPut(t, s, version("Patient", "z", 1, 1), &hale.Index{})
	tag := clause("_tag", hale.TypeToken, codeV("mine"))
	runSearchCases(t, s, []searchCase{
		{name: "two types", q: hale.Query{Types: []string{"Patient", "Observation"}, Where: []hale.Clause{tag}},
			want: []string{"Observation/x", "Observation/y", "Patient/x", "Patient/y"}},
		{name: "every type", q: hale.Query{Where: []hale.Clause{tag}},
			want: []string{"Encounter/x", "Observation/x", "Observation/y", "Patient/x", "Patient/y"}},
		{name: "every type, no clause", q: hale.Query{},
			want: []string{"Encounter/x", "Observation/x", "Observation/y", "Patient/x", "Patient/y", "Patient/z"}},
		{name: "every type, :missing", q: hale.Query{Where: []hale.Clause{missing("_tag", hale.TypeToken, true)}},
			want: []string{"Patient/z"}},
		{name: "a type without resources", q: hale.Query{Types: []string{"Device"}, Where: []hale.Clause{tag}}},
	})
	mustView(t, s, func(r hale.Reader) error {
		res, err := searcher(t, r).Search(ctx, &hale.Query{Where: []hale.Clause{tag}, Count: 10})
		if err != nil {
			return err
		}
		for i := range res.Versions {
			got := &res.Versions[i]
			checkVersion(t, got, want[got.Type+"/"+got.ID])
		}
		return nil
	})
}

// testSearchAfterWrites: an update replaces the resource's rows in
// every index table; a delete removes it from every search.
func testSearchAfterWrites(t *testing.T, s hale.Store) {
	idx := func(v string, n float64, date string) *hale.Index {
		return &hale.Index{
			Tokens:     []hale.TokenValue{tok("tk", "", v)},
			Strings:    []hale.StringValue{str("st", v, v)},
			References: []hale.ReferenceValue{ref("rf", "Patient", v, "Patient/"+v)},
			Dates:      []hale.DateValue{dateRow("dt", date)},
			Numbers:    []hale.NumberValue{numberRow("nm", n, n-0.5, n+0.5)},
			Quantities: []hale.QuantityValue{{Param: "qt", Code: "mg", Value: n, Lo: n - 0.5, Hi: n + 0.5}},
			URIs:       []hale.URIValue{{Param: "ur", URI: "urn:" + v}},
		}
	}
	mustPut(t, s, version("Observation", "w", 1, 1), idx("old", 1, "2001"))
	mustPut(t, s, version("Observation", "w", 2, 2), idx("new", 2, "2002"))
	mustPut(t, s, version("Observation", "gone", 1, 1), idx("new", 2, "2002"))
	mustPut(t, s, deletion("Observation", "gone", 2, 2), idx("new", 2, "2002")) // rows ignored on a delete
	clauses := func(v string, n float64, date string) map[string]hale.Clause {
		return map[string]hale.Clause{
			"token":     clause("tk", hale.TypeToken, codeV(v)),
			"string":    clause("st", hale.TypeString, codeV(v)),
			"reference": clause("rf", hale.TypeReference, targetV("Patient", v)),
			"date":      clause("dt", hale.TypeDate, dateV("eq", date)),
			"number":    clause("nm", hale.TypeNumber, numberV("eq", n, n-0.5, n+0.5)),
			"quantity":  clause("qt", hale.TypeQuantity, hale.Value{Code: "mg", Number: n, NumberLo: n - 0.5, NumberHi: n + 0.5}),
			"uri":       clause("ur", hale.TypeURI, codeV("urn:"+v)),
		}
	}
	var cases []searchCase
	for kind, c := range clauses("old", 1, "2001") {
		cases = append(cases, searchCase{name: "old " + kind, q: query("Observation", c)})
	}
	for kind, c := range clauses("new", 2, "2002") {
		cases = append(cases, searchCase{name: "new " + kind, q: query("Observation", c), want: refs("Observation", "w")})
	}
	slices.SortFunc(cases, func(a, b searchCase) int { return strings.Compare(a.name, b.name) })
	runSearchCases(t, s, cases)
}

// testSearchInTx: Search through a Tx sees the transaction's own writes.
func testSearchInTx(t *testing.T, s hale.Store) {
	ctx := context.Background()
	idx := &hale.Index{Tokens: []hale.TokenValue{tok("code", "", "x")}}
	q := query("Observation", clause("code", hale.TypeToken, codeV("x")))
	q.Count, q.Total = 10, true
	err := s.Update(ctx, func(tx hale.Tx) error {
		if err := tx.Put(ctx, version("Observation", "a", 1, 1), idx); err != nil {
			return err
		}
		res, err := searcher(t, tx).Search(ctx, &q)
		if err != nil {
			return err
		}
		if got := resultLabels(res.Versions); !equal(got, refs("Observation", "a")) || res.Total != 1 {
			t.Errorf("Search in the tx = %v (Total %d), want [Observation/a]", got, res.Total)
		}
		if err := tx.Put(ctx, deletion("Observation", "a", 2, 2), nil); err != nil {
			return err
		}
		if res, err = searcher(t, tx).Search(ctx, &q); err != nil {
			return err
		}
		if len(res.Versions) != 0 || res.Total != 0 {
			t.Errorf("Search after a delete in the tx = %v (Total %d), want none", resultLabels(res.Versions), res.Total)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testSearchErrors: what the store cannot run is KindInvalid, never a
// database error.
func testSearchErrors(t *testing.T, s hale.Store) {
	ctx := context.Background()
	putIdx(t, s, "Patient", "a", hale.Index{Strings: []hale.StringValue{str("family", "a", "A")}})
	putIdx(t, s, "Patient", "b", hale.Index{Strings: []hale.StringValue{str("family", "b", "B")}})
	sorted := hale.Query{Types: []string{"Patient"}, Count: 1,
		Sort: []hale.SortKey{{Param: "birthdate", Type: hale.TypeDate}}}
	for _, c := range []struct {
		name string
		q    hale.Query
	}{
		{"cursor with too many keys", hale.Query{Types: []string{"Patient"}, Count: 1,
			After: &hale.Cursor{Keys: []string{"=a"}, Type: "Patient", ID: "a"}}},
		{"cursor with a text key for a date", func() hale.Query {
			q := sorted
			q.After = &hale.Cursor{Keys: []string{"=yesterday"}, Type: "Patient", ID: "a"}
			return q
		}()},
		{"cursor key without its marker", func() hale.Query {
			q := sorted
			q.After = &hale.Cursor{Keys: []string{"12"}, Type: "Patient", ID: "a"}
			return q
		}()},
		{"write-order cursor without a key", hale.Query{Types: []string{"Patient"}, Count: 1, WriteOrder: true,
			After: &hale.Cursor{Type: "Patient", ID: "a"}}},
		{"write-order cursor with a text key", hale.Query{Types: []string{"Patient"}, Count: 1, WriteOrder: true,
			After: &hale.Cursor{Keys: []string{"@a"}, Type: "Patient", ID: "a"}}},
		{"write-order cursor with a sort key", hale.Query{Types: []string{"Patient"}, Count: 1, WriteOrder: true,
			After: &hale.Cursor{Keys: []string{"=1"}, Type: "Patient", ID: "a"}}},
		{"write-order cursor of another type", hale.Query{Types: []string{"Patient"}, Count: 1, WriteOrder: true,
			After: &hale.Cursor{Keys: []string{"@1"}, Type: "Observation", ID: "a"}}},
		{"write-order cursor on a sorted search", hale.Query{Types: []string{"Patient"}, Count: 1, WriteOrder: true,
			Sort:  []hale.SortKey{{Param: "_id", Type: hale.TypeID}},
			After: &hale.Cursor{Keys: []string{"@1"}, Type: "Patient", ID: "a"}}},
		{"unknown prefix", query("Patient", clause("n", hale.TypeNumber, numberV("xx", 1, 0.5, 1.5)))},
		{"unknown modifier", query("Patient", modified(clause("family", hale.TypeString, codeV("a")), "text"))},
		{"sort by a composite", hale.Query{Types: []string{"Patient"}, Count: 1,
			Sort: []hale.SortKey{{Param: "c", Type: hale.TypeComposite}}}},
		{"unknown type", query("Patient", clause("x", hale.ParamType("special"), codeV("a")))},
	} {
		mustView(t, s, func(r hale.Reader) error {
			if _, err := searcher(t, r).Search(ctx, &c.q); !hale.IsKind(err, hale.KindInvalid) {
				t.Errorf("%s: err = %v, want kind invalid", c.name, err)
			}
			return nil
		})
	}
}
