package storetest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
)

func tok(param, system, code string) hale.TokenValue {
	return hale.TokenValue{Param: param, System: system, Code: code}
}

func str(param, norm, exact string) hale.StringValue {
	return hale.StringValue{Param: param, Norm: norm, Exact: exact}
}

func ref(param, typ, id, url string) hale.ReferenceValue {
	return hale.ReferenceValue{Param: param, TargetType: typ, TargetID: id, URL: url}
}

const otherGP = "http://other.example/fhir/Practitioner/9"

// findFixture writes the resources the Find cases search. Norm values
// are folded as the FHIR core folds them; the store compares bytes.
func findFixture(t *testing.T, s hale.Store) {
	put := func(id string, idx hale.Index) { mustPut(t, s, version("Patient", id, 1, 1), &idx) }
	put("p1", hale.Index{
		Tokens:     []hale.TokenValue{tok("identifier", "http://a", "123"), tok("gender", "", "male")},
		Strings:    []hale.StringValue{str("name", "smith", "Smith"), str("name", "john", "John")},
		References: []hale.ReferenceValue{ref("general-practitioner", "Practitioner", "d1", "Practitioner/d1")},
	})
	put("p2", hale.Index{
		Tokens:  []hale.TokenValue{tok("identifier", "http://b", "123"), tok("gender", "", "female")},
		Strings: []hale.StringValue{str("name", "smithson", "Smithson"), str("name", "50%_off", "50%_Off")},
		References: []hale.ReferenceValue{ref("organization", "Organization", "o1", "Organization/o1"),
			ref("general-practitioner", "", "", otherGP)},
	})
	put("p3", hale.Index{
		Tokens: []hale.TokenValue{tok("identifier", "", "123"), tok("identifier", "http://a", "456"),
			tok("gender", "", "male")},
		Strings: []hale.StringValue{str("name", "o'brien", "O'Brien"), str("name", "50x1off", "50x1Off"),
			str("name", "ångström", "Ångström")},
		References: []hale.ReferenceValue{ref("general-practitioner", "Practitioner", "d2", "Practitioner/d2")},
	})
	put("p4", hale.Index{
		Tokens:  []hale.TokenValue{tok("gender", "", "other")},
		Strings: []hale.StringValue{str("name", "smith", "SMITH")},
	})
	put("p6", hale.Index{Strings: []hale.StringValue{str("name", "smiti", "Smiti")}})
	// p5 matched almost everything, but is deleted.
	p5 := hale.Index{
		Tokens:  []hale.TokenValue{tok("identifier", "http://a", "123"), tok("gender", "", "male")},
		Strings: []hale.StringValue{str("name", "smith", "Smith")},
	}
	put("p5", p5)
	mustPut(t, s, deletion("Patient", "p5", 2, 2), nil)
	mustPut(t, s, version("Observation", "o1", 1, 1), &hale.Index{
		Tokens:     []hale.TokenValue{tok("identifier", "http://a", "123")},
		Strings:    []hale.StringValue{str("name", "smith", "Smith")},
		References: []hale.ReferenceValue{ref("subject", "Patient", "p1", "Patient/p1")},
	})
}

// findCase is one Find and the ids it must return.
type findCase struct {
	name    string
	typ     string // "" for Patient
	matches []hale.Match
	limit   int
	want    []string
}

func runFindCases(t *testing.T, s hale.Store, cases []findCase) {
	t.Helper()
	mustView(t, s, func(r hale.Reader) error {
		for _, c := range cases {
			typ := c.typ
			if typ == "" {
				typ = "Patient"
			}
			got, err := r.Find(context.Background(), typ, c.matches, c.limit)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if !equal(got, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			}
		}
		return nil
	})
}

// match builds one Match.
func match(param string, kind hale.MatchKind, values ...hale.MatchValue) hale.Match {
	return hale.Match{Param: param, Kind: kind, Values: values}
}

// code, sysCode, noSys and anyCode are the four token forms:
// "code", "system|code", "|code" and "system|".
func code(c string) hale.MatchValue               { return hale.MatchValue{Code: c} }
func sysCode(system, c string) hale.MatchValue    { return hale.MatchValue{System: system, Code: c} }
func noSys(c string) hale.MatchValue              { return hale.MatchValue{NoSystem: true, Code: c} }
func anyCode(system string) hale.MatchValue       { return hale.MatchValue{System: system, AnyCode: true} }
func target(typ, id string) hale.MatchValue       { return hale.MatchValue{TargetType: typ, TargetID: id} }
func url(u string) hale.MatchValue                { return hale.MatchValue{URL: u} }
func one(m hale.Match) []hale.Match               { return []hale.Match{m} }
func all(ms ...hale.Match) []hale.Match           { return ms }
func ids(s ...string) []string                    { return s }
func prefix(param string, v ...string) hale.Match { return match(param, hale.MatchString, codes(v)...) }
func codes(v []string) []hale.MatchValue {
	out := make([]hale.MatchValue, len(v))
	for i, c := range v {
		out[i] = code(c)
	}
	return out
}

func testFind(t *testing.T, s hale.Store) {
	findFixture(t, s)
	const (
		tokenK    = hale.MatchToken
		exactK    = hale.MatchStringExact
		containsK = hale.MatchStringContains
		refK      = hale.MatchReference
		idK       = hale.MatchID
	)
	runFindCases(t, s, []findCase{
		{name: "no matches: every current resource", want: ids("p1", "p2", "p3", "p4", "p6")},
		{name: "a Match without values matches nothing", matches: one(match("gender", tokenK))},

		// Tokens.
		{name: "code in any system", matches: one(match("identifier", tokenK, code("123"))),
			want: ids("p1", "p2", "p3")},
		{name: "system|code", matches: one(match("identifier", tokenK, sysCode("http://a", "123"))),
			want: ids("p1")},
		{name: "system|code, other code", matches: one(match("identifier", tokenK, sysCode("http://a", "456"))),
			want: ids("p3")},
		{name: "|code: no system", matches: one(match("identifier", tokenK, noSys("123"))),
			want: ids("p3")},
		{name: "system|: any code", matches: one(match("identifier", tokenK, anyCode("http://a"))),
			want: ids("p1", "p3")},
		{name: "system|: unknown system", matches: one(match("identifier", tokenK, anyCode("http://z")))},
		{name: "codes are compared as stored", matches: one(match("gender", tokenK, code("MALE")))},
		{name: "token of another parameter", matches: one(match("gender", tokenK, code("123")))},
		{name: "OR of values", matches: one(match("gender", tokenK, code("female"), code("other"))),
			want: ids("p2", "p4")},
		{name: "OR of value forms",
			matches: one(match("identifier", tokenK, noSys("123"), sysCode("http://b", "123"))),
			want:    ids("p2", "p3")},
		{name: "AND of matches",
			matches: all(match("identifier", tokenK, code("123")), match("gender", tokenK, code("male"))),
			want:    ids("p1", "p3")},
		{name: "AND without a common resource",
			matches: all(match("identifier", tokenK, sysCode("http://b", "123")), match("gender", tokenK, code("male")))},

		// _id.
		{name: "id", matches: one(match("_id", idK, code("p2"))), want: ids("p2")},
		{name: "id OR id", matches: one(match("_id", idK, code("p3"), code("p2"))), want: ids("p2", "p3")},
		{name: "id of a deleted resource", matches: one(match("_id", idK, code("p5")))},
		{name: "id of another type", matches: one(match("_id", idK, code("o1")))},
		{name: "id AND token",
			matches: all(match("_id", idK, code("p1"), code("p2")), match("gender", tokenK, code("male"))),
			want:    ids("p1")},

		// Strings: prefix.
		{name: "prefix", matches: one(prefix("name", "smith")), want: ids("p1", "p2", "p4")},
		{name: "longer prefix", matches: one(prefix("name", "smiths")), want: ids("p2")},
		{name: "whole value is a prefix", matches: one(prefix("name", "smiti")), want: ids("p6")},
		{name: "empty prefix", matches: one(prefix("name", "")), want: ids("p1", "p2", "p3", "p4", "p6")},
		{name: "prefix with %", matches: one(prefix("name", "50%")), want: ids("p2")},
		{name: "prefix with _", matches: one(prefix("name", "50_"))},
		{name: "prefix with %_", matches: one(prefix("name", "50%_")), want: ids("p2")},
		{name: "prefix with a quote", matches: one(prefix("name", "o'")), want: ids("p3")},
		{name: "prefix beyond ASCII", matches: one(prefix("name", "å")), want: ids("p3")},
		{name: "prefix beyond ASCII, longer", matches: one(prefix("name", "ångs")), want: ids("p3")},
		{name: "prefix beyond ASCII, no match", matches: one(prefix("name", "ä"))},
		{name: "prefix OR prefix", matches: one(prefix("name", "john", "o'b")), want: ids("p1", "p3")},
		{name: "prefix of another parameter", matches: one(prefix("family", "smith"))},

		// Strings: exact.
		{name: "exact", matches: one(match("name", exactK, code("Smith"))), want: ids("p1")},
		{name: "exact is case-sensitive", matches: one(match("name", exactK, code("smith")))},
		{name: "exact is not a prefix", matches: one(match("name", exactK, code("Smit")))},
		{name: "exact with % and _", matches: one(match("name", exactK, code("50%_Off"))), want: ids("p2")},
		{name: "exact beyond ASCII", matches: one(match("name", exactK, code("Ångström"))), want: ids("p3")},

		// Strings: contains.
		{name: "contains", matches: one(match("name", containsK, code("mit"))), want: ids("p1", "p2", "p4", "p6")},
		{name: "contains %", matches: one(match("name", containsK, code("%"))), want: ids("p2")},
		{name: "contains _", matches: one(match("name", containsK, code("_"))), want: ids("p2")},
		{name: "contains %_", matches: one(match("name", containsK, code("%_"))), want: ids("p2")},
		{name: "contains beyond ASCII", matches: one(match("name", containsK, code("ngstr"))), want: ids("p3")},
		{name: "contains at the start", matches: one(match("name", containsK, code("50x"))), want: ids("p3")},
		{name: "contains, no match", matches: one(match("name", containsK, code("xyz")))},

		// References.
		{name: "reference type/id",
			matches: one(match("general-practitioner", refK, target("Practitioner", "d1"))), want: ids("p1")},
		{name: "reference id of any type",
			matches: one(match("general-practitioner", refK, target("", "d1"))), want: ids("p1")},
		{name: "reference of the wrong type",
			matches: one(match("general-practitioner", refK, target("Organization", "d1")))},
		{name: "reference OR reference",
			matches: one(match("general-practitioner", refK, target("Practitioner", "d1"), target("Practitioner", "d2"))),
			want:    ids("p1", "p3")},
		{name: "reference by absolute URL",
			matches: one(match("general-practitioner", refK, url(otherGP))), want: ids("p2")},
		{name: "reference by URL as written",
			matches: one(match("general-practitioner", refK, url("Practitioner/d1"))), want: ids("p1")},
		{name: "reference of another parameter",
			matches: one(match("organization", refK, target("Practitioner", "d1")))},
		{name: "reference AND string",
			matches: all(match("general-practitioner", refK, target("Practitioner", "d1"), url(otherGP)),
				prefix("name", "smiths")),
			want: ids("p2")},

		// Other types are separate.
		{name: "another type", typ: "Observation",
			matches: one(match("identifier", tokenK, sysCode("http://a", "123"))), want: ids("o1")},
		{name: "another type by reference", typ: "Observation",
			matches: one(match("subject", refK, target("Patient", "p1"))), want: ids("o1")},
		{name: "a type without resources", typ: "Encounter"},

		// Limit.
		{name: "limit", matches: one(match("identifier", tokenK, code("123"))), limit: 2, want: ids("p1", "p2")},
		{name: "limit above the count", matches: one(match("identifier", tokenK, code("123"))), limit: 10,
			want: ids("p1", "p2", "p3")},
	})
}

// testFindAfterWrites: Put replaces the index rows of the resource, and a
// delete removes it from every search.
func testFindAfterWrites(t *testing.T, s hale.Store) {
	findFixture(t, s)
	mustPut(t, s, version("Patient", "p1", 2, 3), &hale.Index{
		Tokens:  []hale.TokenValue{tok("identifier", "http://a", "123"), tok("gender", "", "female")},
		Strings: []hale.StringValue{str("name", "jones", "Jones")},
	})
	mustPut(t, s, deletion("Patient", "p3", 2, 4), nil)
	gender := func(c string) []hale.Match { return one(match("gender", hale.MatchToken, code(c))) }
	runFindCases(t, s, []findCase{
		{name: "old token gone", matches: gender("male")},
		{name: "new token", matches: gender("female"), want: ids("p1", "p2")},
		{name: "old string gone", matches: one(prefix("name", "smith")), want: ids("p2", "p4")},
		{name: "new string", matches: one(prefix("name", "jon")), want: ids("p1")},
		{name: "old reference gone",
			matches: one(match("general-practitioner", hale.MatchReference, target("Practitioner", "d1")))},
		{name: "deleted resource gone",
			matches: one(match("identifier", hale.MatchToken, code("123"))), want: ids("p1", "p2")},
		{name: "deleted resource gone by id", matches: one(match("_id", hale.MatchID, code("p3")))},
		{name: "all", want: ids("p1", "p2", "p4", "p6")},
	})
}

// testFindOrderAndLimit: ids come back in byte order (what FHIR ids,
// [A-Za-z0-9.-], sort as everywhere), whatever the write order.
func testFindOrderAndLimit(t *testing.T, s hale.Store) {
	written := []string{"b", "A", "a-1", "a.2", "B", "10", "9", "a"}
	for i, id := range written {
		mustPut(t, s, version("Patient", id, 1, float64(i)), &hale.Index{
			Tokens: []hale.TokenValue{tok("active", "", "true")}})
	}
	want := append([]string(nil), written...)
	sort.Strings(want)
	active := one(match("active", hale.MatchToken, code("true")))
	var cases []findCase
	for _, limit := range []int{0, 1, 3, len(want), len(want) + 1} {
		w := want
		if limit > 0 && limit < len(w) {
			w = w[:limit]
		}
		cases = append(cases,
			findCase{name: fmt.Sprintf("all, limit %d", limit), limit: limit, want: w},
			findCase{name: fmt.Sprintf("by token, limit %d", limit), matches: active, limit: limit, want: w})
	}
	runFindCases(t, s, cases)
}

// testFindLongStrings: string values and prefixes far longer than an
// index entry may be (an Observation's value-string, a description)
// are stored and matched like short ones.
func testFindLongStrings(t *testing.T, s hale.Store) {
	long := strings.Repeat("lorem ipsum dolor sit amet ", 400) // 10,800 bytes
	other := long[:230] + "X" + long[231:]
	mustPut(t, s, version("Observation", "long", 1, 1), &hale.Index{
		Strings: []hale.StringValue{str("value-string", long, strings.ToUpper(long))}})
	mustPut(t, s, version("Observation", "other", 1, 1), &hale.Index{
		Strings: []hale.StringValue{str("value-string", other, other)}})
	obs := func(name string, m hale.Match, want ...string) findCase {
		return findCase{name: name, typ: "Observation", matches: one(m), want: want}
	}
	runFindCases(t, s, []findCase{
		obs("short prefix", prefix("value-string", "lorem"), "long", "other"),
		obs("prefix of 250 characters", prefix("value-string", long[:250]), "long"),
		obs("prefix of 250 characters, the other", prefix("value-string", other[:250]), "other"),
		obs("prefix of 5,000 characters", prefix("value-string", long[:5000]), "long"),
		obs("whole value as prefix", prefix("value-string", long), "long"),
		obs("longer than the value", prefix("value-string", long+"x")),
		obs("exact", match("value-string", hale.MatchStringExact, code(strings.ToUpper(long))), "long"),
		obs("contains near the end", match("value-string", hale.MatchStringContains, code("amet lorem ipsum dolor sit amet ")),
			"long", "other"),
		obs("contains the difference", match("value-string", hale.MatchStringContains, code("X")), "other"),
	})
}
