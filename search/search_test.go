package search

import (
	"net/url"
	"reflect"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
)

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"Müller":           "muller",
		"  ÉLODIE  Dupré ": "elodie dupre",
		"O'Brien":          "o'brien",
		"Zoë\tKraus":       "zoe kraus",
		"":                 "",
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	m, err := fhir.Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExtract(t *testing.T) {
	p := decode(t, `{"resourceType":"Patient","identifier":[{"system":"http://x/mrn","value":"42"},{"value":"no-system"}],
	 "name":[{"family":"Müller","given":["Anna","Lena"]}],"gender":"female","active":true,
	 "telecom":[{"system":"phone","value":"555-1234"},{"system":"email","value":"a@example.org"}],
	 "generalPractitioner":[{"reference":"Practitioner/p1"},{"reference":"http://other.example/fhir/Practitioner/9"}]}`)
	idx := Extract("Patient", p)
	has := func(tv hale.TokenValue) bool {
		for _, x := range idx.Tokens {
			if x == tv {
				return true
			}
		}
		return false
	}
	for _, want := range []hale.TokenValue{
		{Param: "identifier", System: "http://x/mrn", Code: "42"},
		{Param: "identifier", Code: "no-system"},
		{Param: "gender", Code: "female"},
		{Param: "active", Code: "true"},
		{Param: "phone", System: "phone", Code: "555-1234"},
		{Param: "email", System: "email", Code: "a@example.org"},
	} {
		if !has(want) {
			t.Errorf("missing token %+v in %+v", want, idx.Tokens)
		}
	}
	if has(hale.TokenValue{Param: "phone", System: "email", Code: "a@example.org"}) {
		t.Errorf("where(system='phone') did not filter")
	}
	strs := map[string]bool{}
	for _, s := range idx.Strings {
		strs[s.Param+"="+s.Norm+"/"+s.Exact] = true
	}
	for _, want := range []string{"family=muller/Müller", "given=anna/Anna", "name=lena/Lena"} {
		if !strs[want] {
			t.Errorf("missing string %s in %v", want, idx.Strings)
		}
	}
	refs := map[hale.ReferenceValue]bool{}
	for _, r := range idx.References {
		refs[r] = true
	}
	if !refs[hale.ReferenceValue{Param: "general-practitioner", TargetType: "Practitioner", TargetID: "p1", URL: "Practitioner/p1"}] ||
		!refs[hale.ReferenceValue{Param: "general-practitioner", URL: "http://other.example/fhir/Practitioner/9"}] {
		t.Errorf("references: %+v", idx.References)
	}

	// where(resolve() is Patient): a Group subject is not a patient.
	obs := decode(t, `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Group/g1"}}`)
	for _, r := range Extract("Observation", obs).References {
		if r.Param == "patient" {
			t.Errorf("Group indexed as patient: %+v", r)
		}
	}
}

func TestParse(t *testing.T) {
	q, err := Parse("Patient", url.Values{
		"identifier":     {"http://x|1,|2,http://y|,3"},
		"family:exact":   {"Müller"},
		"name":           {"MÜL"},
		"organization":   {"Organization/o1"},
		"_id":            {"a,b"},
		"_count":         {"10"},
		"birthdate":      {"2000"}, // not indexed yet: ignored
		"unknown:banana": {"x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	byParam := map[string]hale.Match{}
	for _, m := range q.Matches {
		byParam[m.Param] = m
	}
	if got := byParam["identifier"].Values; !reflect.DeepEqual(got, []hale.MatchValue{
		{System: "http://x", Code: "1"}, {Code: "2", NoSystem: true}, {System: "http://y", AnyCode: true}, {Code: "3"},
	}) {
		t.Errorf("identifier: %+v", got)
	}
	if m := byParam["family"]; m.Kind != hale.MatchStringExact || m.Values[0].Code != "Müller" {
		t.Errorf("family:exact: %+v", m)
	}
	if m := byParam["name"]; m.Kind != hale.MatchString || m.Values[0].Code != "mul" {
		t.Errorf("name: %+v", m)
	}
	if m := byParam["organization"]; m.Values[0] != (hale.MatchValue{TargetType: "Organization", TargetID: "o1"}) {
		t.Errorf("organization: %+v", m)
	}
	if m := byParam["_id"]; m.Kind != hale.MatchID || len(m.Values) != 2 {
		t.Errorf("_id: %+v", m)
	}
	if !reflect.DeepEqual(q.Ignored, []string{"birthdate", "unknown:banana"}) {
		t.Errorf("ignored: %v", q.Ignored)
	}
	if _, err := Parse("Observation", url.Values{"subject": {"not a valid id"}}); !hale.IsKind(err, hale.KindInvalid) {
		t.Errorf("malformed reference: %v", err)
	}
	if _, err := ParseConditional("Patient", "birthdate=2000"); !hale.IsKind(err, hale.KindInvalid) {
		t.Errorf("conditional with an unsupported parameter: %v", err)
	}
	if _, err := ParseConditional("Patient", "_count=1"); !hale.IsKind(err, hale.KindInvalid) {
		t.Errorf("conditional with no criteria: %v", err)
	}
}

func TestSplitComma(t *testing.T) {
	if got := splitComma(`a,b\,c,d\\`); !reflect.DeepEqual(got, []string{"a", "b,c", `d\`}) {
		t.Errorf("splitComma: %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("Patient", "identifier=http://x|1&name:exact=Doe&_id=a,b")
	f.Add("Observation", "subject=Patient/1&code=http://loinc.org|8867-4")
	f.Fuzz(func(t *testing.T, typ, query string) {
		q, err := url.ParseQuery(query)
		if err != nil || !fhir.IsResourceType(typ) {
			return
		}
		Parse(typ, q)
		ParseConditional(typ, query)
	})
}
