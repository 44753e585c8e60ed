package fhir

import (
	"reflect"
	"slices"
	"testing"
)

func TestResourceTypes(t *testing.T) {
	rts := ResourceTypes()
	if len(rts) < 145 || !slices.IsSorted(rts) {
		t.Fatalf("ResourceTypes: %d, sorted %v", len(rts), slices.IsSorted(rts))
	}
	for _, n := range []string{"Patient", "Observation", "Bundle", "Parameters", "Binary"} {
		if !IsResourceType(n) {
			t.Errorf("IsResourceType(%s) = false", n)
		}
	}
	for _, n := range []string{"Resource", "DomainResource", "MetadataResource", "HumanName", "patient", ""} {
		if IsResourceType(n) {
			t.Errorf("IsResourceType(%s) = true", n)
		}
	}
	for _, n := range rts {
		td := TypeDefinition(n)
		if td == nil || td.Kind != KindResource || td.Abstract {
			t.Errorf("%s: bad definition %+v", n, td)
		}
	}
}

func TestTypeDefinition(t *testing.T) {
	for _, tc := range []struct {
		name, kind, base string
		abstract         bool
	}{
		{"Resource", KindResource, "", true},
		{"DomainResource", KindResource, "Resource", true},
		{"Patient", KindResource, "DomainResource", false},
		{"Element", KindComplex, "", true},
		{"BackboneElement", KindComplex, "Element", true},
		{"HumanName", KindComplex, "Element", false},
		{"Age", KindComplex, "Quantity", false},
		{"SimpleQuantity", KindComplex, "Quantity", false},
		{"dateTime", KindPrimitive, "Element", false},
		{"xhtml", KindPrimitive, "Element", false},
	} {
		td := TypeDefinition(tc.name)
		if td == nil {
			t.Errorf("%s: missing", tc.name)
			continue
		}
		if td.Kind != tc.kind || td.Base != tc.base || td.Abstract != tc.abstract {
			t.Errorf("%s: got kind %s base %s abstract %v", tc.name, td.Kind, td.Base, td.Abstract)
		}
	}
	if re := TypeDefinition("date").Regex; re == "" {
		t.Error("date has no regex")
	}
	if len(TypeNames()) < 200 {
		t.Errorf("TypeNames: %d", len(TypeNames()))
	}
	p := TypeDefinition("Patient")
	if p.Elements[0].Path != "Patient" || p.Elements[1].Path != "Patient.id" {
		t.Errorf("Patient elements not in definition order: %s, %s", p.Elements[0].Path, p.Elements[1].Path)
	}
	el, typ, ok := TypeDefinition("Observation").Child("Observation", "valueQuantity")
	if !ok || el.Path != "Observation.value[x]" || typ != "Quantity" || !el.Choice {
		t.Errorf("Child(valueQuantity) = %v %q %v", el, typ, ok)
	}
	var names []string
	for _, c := range TypeDefinition("Questionnaire").Children("Questionnaire.item.item") {
		names = append(names, c.Name)
	}
	if !slices.Contains(names, "linkId") {
		t.Errorf("Children via contentReference: %v", names)
	}
}

func TestElement(t *testing.T) {
	tests := []struct {
		typ, path, want string
		types           []string
	}{
		{"Patient", "Patient.name", "Patient.name", []string{"HumanName"}},
		{"Patient", "Patient.name.given", "HumanName.given", []string{"string"}},
		{"Patient", "Patient.contact.name.family", "HumanName.family", []string{"string"}},
		{"Observation", "Observation.value[x]", "Observation.value[x]", nil},
		{"Observation", "Observation.value", "Observation.value[x]", nil},
		{"Observation", "Observation.component.value", "Observation.component.value[x]", nil},
		{"Observation", "Observation.valueQuantity.unit", "Quantity.unit", []string{"string"}},
		{"Observation", "Observation.subject", "Observation.subject", []string{"Reference"}},
		{"Questionnaire", "Questionnaire.item.item.linkId", "Questionnaire.item.linkId", []string{"string"}},
		{"Bundle", "Bundle.entry.resource", "Bundle.entry.resource", []string{"Resource"}},
	}
	for _, tc := range tests {
		el := Element(tc.typ, tc.path)
		if el == nil {
			t.Errorf("Element(%s, %s) = nil", tc.typ, tc.path)
			continue
		}
		if el.Path != tc.want {
			t.Errorf("Element(%s, %s).Path = %s, want %s", tc.typ, tc.path, el.Path, tc.want)
		}
		if tc.types != nil {
			var codes []string
			for _, tr := range el.Types {
				codes = append(codes, tr.Code)
			}
			if !reflect.DeepEqual(codes, tc.types) {
				t.Errorf("Element(%s, %s) types %v, want %v", tc.typ, tc.path, codes, tc.types)
			}
		}
	}
	if el := Element("Patient", "Patient.nope"); el != nil {
		t.Errorf("unknown path: %v", el)
	}
	qi := Element("Questionnaire", "Questionnaire.item.item")
	if qi == nil || qi.ContentRef != "#Questionnaire.item" {
		t.Errorf("Questionnaire.item.item: %+v", qi)
	}
	subj := Element("Observation", "Observation.subject")
	if tt := subj.Types[0].TargetTypes(); !slices.Contains(tt, "Patient") || !slices.Contains(tt, "Group") {
		t.Errorf("Observation.subject targets: %v", tt)
	}
	g := Element("Patient", "Patient.gender")
	if g.Binding == nil || g.Binding.Strength != "required" || g.Min != 0 || g.Max != "1" || g.Repeats() {
		t.Errorf("Patient.gender: %+v", g)
	}
}

func TestInvariants(t *testing.T) {
	keys := map[string]Constraint{}
	for _, c := range Invariants("Patient") {
		keys[c.Key] = c
	}
	for _, k := range []string{"pat-1", "dom-2", "dom-6"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("Patient invariants lack %s: %v", k, keys)
		}
	}
	if c := keys["pat-1"]; c.Path != "Patient.contact" || c.Expression == "" || c.Severity != "error" || c.Human == "" {
		t.Errorf("pat-1: %+v", c)
	}
	if _, ok := keys["ele-1"]; ok {
		t.Error("ele-1 should be listed under Element only")
	}
	found := false
	for _, c := range Invariants("Element") {
		found = found || c.Key == "ele-1"
	}
	if !found {
		t.Error("Element lacks ele-1")
	}
}

func TestValueSetCodes(t *testing.T) {
	codes, ok := ValueSetCodes("http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1")
	want := []Code{
		{"http://hl7.org/fhir/administrative-gender", "male"},
		{"http://hl7.org/fhir/administrative-gender", "female"},
		{"http://hl7.org/fhir/administrative-gender", "other"},
		{"http://hl7.org/fhir/administrative-gender", "unknown"},
	}
	if !ok || !reflect.DeepEqual(codes, want) {
		t.Errorf("administrative-gender: %v %v", codes, ok)
	}
	if _, ok := ValueSetCodes("http://hl7.org/fhir/ValueSet/mimetypes"); ok {
		t.Error("mimetypes should not be enumerable")
	}
	if _, ok := ValueSetCodes("http://example.org/nope"); ok {
		t.Error("unknown value set enumerable")
	}
	// a value set composed from another code system hierarchy
	codes, ok = ValueSetCodes("http://hl7.org/fhir/ValueSet/resource-types")
	if !ok || len(codes) < 145 {
		t.Errorf("resource-types: %d codes, %v", len(codes), ok)
	}
}

func TestSearchParams(t *testing.T) {
	ps := SearchParams("Patient")
	if !slices.IsSortedFunc(ps, func(a, b *SearchParam) int {
		if a.Code < b.Code {
			return -1
		}
		if a.Code > b.Code {
			return 1
		}
		return 0
	}) {
		t.Error("not sorted by code")
	}
	codes := map[string]*SearchParam{}
	for _, p := range ps {
		codes[p.Code] = p
	}
	for _, c := range []string{"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_text", "_content", "identifier", "name", "birthdate", "race", "ethnicity", "general-practitioner"} {
		if codes[c] == nil {
			t.Errorf("Patient lacks %s", c)
		}
	}
	if p := codes["_id"]; p.Expression != "Patient.id" || p.Type != "token" {
		t.Errorf("_id: %+v", p)
	}
	if p := codes["race"]; p.URL != "http://hl7.org/fhir/us/core/SearchParameter/us-core-race" || p.Type != "token" {
		t.Errorf("race: %+v", p)
	}
	if p := codes["name"]; p.Type != "string" || !slices.Contains(p.Modifiers, "exact") {
		t.Errorf("name: %+v", p)
	}

	id := LookupSearchParam("Observation", "identifier")
	if id == nil || id.Expression != "Observation.identifier" || len(id.Base) < 2 {
		t.Errorf("Observation identifier: %+v", id)
	}
	pat := LookupSearchParam("Observation", "patient")
	if pat == nil || pat.Expression != "Observation.subject.where(resolve() is Patient)" || !slices.Equal(pat.Target, []string{"Patient"}) {
		t.Errorf("Observation patient: %+v", pat)
	}
	vq := LookupSearchParam("Observation", "value-quantity")
	if vq == nil || vq.Expression != "(Observation.value as Quantity) | (Observation.value as SampledData)" || !slices.Contains(vq.Comparators, "gt") {
		t.Errorf("value-quantity: %+v", vq)
	}
	cvq := LookupSearchParam("Observation", "code-value-quantity")
	if cvq == nil || cvq.Type != "composite" || len(cvq.Components) != 2 || cvq.Components[1].Expression != "value.as(Quantity)" {
		t.Errorf("code-value-quantity: %+v", cvq)
	}
	if LookupSearchParam("Patient", "nope") != nil || LookupSearchParam("Nope", "_id") != nil {
		t.Error("unknown param found")
	}
	if p := LookupSearchParam("Binary", "_text"); p != nil {
		t.Error("_text is a DomainResource parameter, Binary is not a DomainResource")
	}
	if p := LookupSearchParam("Binary", "_lastUpdated"); p == nil || p.Expression != "Binary.meta.lastUpdated" {
		t.Errorf("Binary _lastUpdated: %+v", p)
	}
	// every resource type has params and each expression names only its type
	for _, rt := range ResourceTypes() {
		if len(SearchParams(rt)) == 0 {
			t.Errorf("%s: no search params", rt)
		}
	}
}

func TestCompartmentParams(t *testing.T) {
	if got := CompartmentParams("Patient", "Observation"); !slices.Equal(got, []string{"subject", "performer"}) {
		t.Errorf("Observation: %v", got)
	}
	if got := CompartmentParams("Patient", "Organization"); got != nil {
		t.Errorf("Organization: %v", got)
	}
	if got := CompartmentParams("Patient", "Patient"); !slices.Equal(got, []string{"link"}) {
		t.Errorf("Patient: %v", got)
	}
	if got := CompartmentParams("Encounter", "Observation"); got != nil {
		t.Errorf("Encounter compartment: %v", got)
	}
}

// BenchmarkLoad measures parsing the embedded definitions.
func BenchmarkLoad(b *testing.B) {
	b.SetBytes(int64(len(r4JSON)))
	for i := 0; i < b.N; i++ {
		if _, err := load(r4JSON); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentUse exercises the lazy loading and the read-only registry
// from several goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	done := make(chan bool)
	for i := 0; i < 8; i++ {
		go func() {
			defer func() { done <- true }()
			res := map[string]any{"resourceType": "Patient", "gender": "xyz"}
			if len(Validate(res)) != 1 {
				t.Error("want one issue")
			}
			if _, err := Marshal(res); err != nil {
				t.Error(err)
			}
			if LookupSearchParam("Patient", "_id") == nil {
				t.Error("no _id")
			}
		}()
	}
	for i := 0; i < 8; i++ {
		<-done
	}
}
