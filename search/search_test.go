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

func TestParseConditional(t *testing.T) {
	q, err := ParseConditional(nil, "Patient", "identifier=http://x|1,|2,http://y|,3&family:exact=M%C3%BCller&organization=Organization/o1&_id=a,b")
	if err != nil {
		t.Fatal(err)
	}
	byParam := map[string]hale.Clause{}
	for _, c := range q.Where {
		byParam[c.Param] = c
	}
	if got := byParam["identifier"].Values; !reflect.DeepEqual(got, []hale.Value{
		{System: "http://x", Code: "1"}, {Code: "2", NoSystem: true}, {System: "http://y", AnyCode: true}, {Code: "3"},
	}) {
		t.Errorf("identifier: %+v", got)
	}
	if c := byParam["family"]; c.Modifier != "exact" || c.Values[0].Code != "Müller" {
		t.Errorf("family:exact: %+v", c)
	}
	if c := byParam["organization"]; c.Values[0] != (hale.Value{TargetType: "Organization", TargetID: "o1"}) {
		t.Errorf("organization: %+v", c)
	}
	if c := byParam["_id"]; c.Type != hale.TypeID || len(c.Values) != 2 {
		t.Errorf("_id: %+v", c)
	}
	if q.Count != 2 || q.Total {
		t.Errorf("a conditional query asks for two matches and no total: %+v", q)
	}
	for _, bad := range []string{"nonsense=1", "_count=1", "subject=not%20an%20id", "%zz"} {
		if _, err := ParseConditional(nil, "Observation", bad); !hale.IsKind(err, hale.KindInvalid) {
			t.Errorf("%s: want KindInvalid, got %v", bad, err)
		}
	}
}

func TestSplitComma(t *testing.T) {
	if got := splitComma(`a,b\,c,d\\`); !reflect.DeepEqual(got, []string{"a", "b,c", `d\`}) {
		t.Errorf("splitComma: %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("Patient", "identifier=http://x|1&name:exact=Doe&_id=a,b")
	f.Add("Observation", "subject:Patient.name=x&code=http://loinc.org|8867-4&date=ge2020&value-quantity=lt5|http://unitsofmeasure.org|mg&_has:Provenance:target:agent=1")
	f.Fuzz(func(t *testing.T, typ, query string) {
		q, err := url.ParseQuery(query)
		if err != nil || !fhir.IsResourceType(typ) {
			return
		}
		ParseRequest([]string{typ}, q, Options{DefaultCount: 10, MaxCount: 100})
		ParseConditional(nil, typ, query)
	})
}
