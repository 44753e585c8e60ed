package fhir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mustDecode decodes s or fails the test.
func mustDecode(tb testing.TB, s string) map[string]any {
	tb.Helper()
	m, err := Decode([]byte(s))
	if err != nil {
		tb.Fatalf("Decode(%s): %v", s, err)
	}
	return m
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("a", 65)
	tests := []struct {
		name string
		json string
		code string // "" for valid
		loc  string
	}{
		// valid
		{"minimal", `{"resourceType":"Patient"}`, "", ""},
		{"typical patient", `{"resourceType":"Patient","id":"p-1.x","meta":{"versionId":"1","lastUpdated":"2020-01-01T10:00:00.123Z"},"active":true,"name":[{"use":"official","family":"Chalmers","given":["Peter","James"]}],"gender":"male","birthDate":"1974-12-25","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1974-12-25T14:35:45-05:00"}]},"multipleBirthInteger":2,"managingOrganization":{"reference":"Organization/1"}}`, "", ""},
		{"primitive extension only", `{"resourceType":"Patient","_gender":{"extension":[{"url":"http://x","valueString":"a"}]}}`, "", ""},
		{"array primitive with nulls aligned", `{"resourceType":"Patient","name":[{"given":["A",null],"_given":[null,{"extension":[{"url":"http://x","valueCode":"b"}]}]}]}`, "", ""},
		{"leap day", `{"resourceType":"Patient","birthDate":"2000-02-29"}`, "", ""},
		{"partial dates", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2020-05"}`, "", ""},
		{"valueQuantity", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}}`, "", ""},
		{"contained reference", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o1","name":"X"}],"managingOrganization":{"reference":"#o1"}}`, "", ""},
		{"absolute and versioned references", `{"resourceType":"Patient","managingOrganization":{"reference":"http://example.org/fhir/Organization/1"},"generalPractitioner":[{"reference":"Practitioner/1/_history/2"},{"reference":"urn:uuid:0b5e9d35-7b7b-4f4a-9d4f-000000000000"}]}`, "", ""},
		{"bundle", `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","birthDate":"2000-01-01"}}]}`, "", ""},
		{"contentReference", `{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"string"}]}]}`, "", ""},
		{"required CodeableConcept in value set", `{"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/1"},"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]}}`, "", ""},
		{"CodeableConcept with text only", `{"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/1"},"clinicalStatus":{"text":"active"}}`, "", ""},
		{"not enumerable binding skipped", `{"resourceType":"Patient","photo":[{"contentType":"image/x-anything","data":"QUJD RA=="}]}`, "", ""},
		{"xhtml", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">a &amp; b</div>"}}`, "", ""},

		// resourceType and id
		{"missing resourceType", `{"id":"1"}`, "required", "Resource"},
		{"unknown resourceType", `{"resourceType":"Foo"}`, "invalid", "Resource.resourceType"},
		{"abstract resourceType", `{"resourceType":"DomainResource"}`, "invalid", "Resource.resourceType"},
		{"bad id", `{"resourceType":"Patient","id":"a b"}`, "value", "Patient.id"},
		{"id too long", `{"resourceType":"Patient","id":"` + long + `"}`, "value", "Patient.id"},

		// unknown elements
		{"unknown element", `{"resourceType":"Patient","foo":1}`, "structure", "Patient.foo"},
		{"unknown nested element", `{"resourceType":"Patient","name":[{"family":"x","nick":"y"}]}`, "structure", "Patient.name[0].nick"},
		{"unknown companion", `{"resourceType":"Patient","_foo":{"id":"a"}}`, "structure", "Patient._foo"},
		{"companion of complex element", `{"resourceType":"Patient","_name":[{"id":"a"}]}`, "structure", "Patient._name"},
		{"companion with value", `{"resourceType":"Patient","birthDate":"2000-01-01","_birthDate":{"value":"x"}}`, "structure", "Patient._birthDate.value"},

		// cardinality and JSON shape
		{"missing required", `{"resourceType":"Observation","code":{"text":"x"}}`, "required", "Observation.status"},
		{"missing required choice", `{"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/1"}}`, "required", "MedicationRequest.medication[x]"},
		{"data type as resourceType", `{"resourceType":"Extension"}`, "invalid", "Resource.resourceType"},
		{"single as array", `{"resourceType":"Patient","birthDate":["2000-01-01"]}`, "structure", "Patient.birthDate"},
		{"repeating not array", `{"resourceType":"Patient","name":{"family":"x"}}`, "structure", "Patient.name"},
		{"empty array", `{"resourceType":"Patient","name":[]}`, "structure", "Patient.name"},
		{"empty object", `{"resourceType":"Patient","name":[{}]}`, "structure", "Patient.name[0]"},
		{"null value", `{"resourceType":"Patient","gender":null}`, "structure", "Patient.gender"},
		{"null in array", `{"resourceType":"Patient","name":[{"given":["a",null]}]}`, "structure", "Patient.name[0].given[1]"},
		{"companion length mismatch", `{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[{"id":"x"}]}]}`, "structure", "Patient.name[0]._given"},
		{"empty string", `{"resourceType":"Patient","name":[{"family":""}]}`, "value", "Patient.name[0].family"},
		{"object where primitive", `{"resourceType":"Patient","gender":{"value":"male"}}`, "value", "Patient.gender"},
		{"string where object", `{"resourceType":"Patient","name":["Peter"]}`, "structure", "Patient.name[0]"},
		{"content reference required", `{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"type":"string"}]}]}`, "required", "Questionnaire.item[0].item[0].linkId"},

		// choice types
		{"two choice variants", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"a","valueBoolean":true}`, "structure", "Observation.valueString"},
		{"bare choice name", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"value":"a"}`, "structure", "Observation.value"},
		{"choice type not allowed", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueReference":{"reference":"Patient/1"}}`, "structure", "Observation.valueReference"},
		{"choice value checked", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":"1.0"}}`, "value", "Observation.valueQuantity.value"},

		// primitive formats
		{"boolean as string", `{"resourceType":"Patient","active":"true"}`, "value", "Patient.active"},
		{"integer fraction", `{"resourceType":"Patient","multipleBirthInteger":1.5}`, "value", "Patient.multipleBirthInteger"},
		{"integer exponent", `{"resourceType":"Patient","multipleBirthInteger":1e2}`, "value", "Patient.multipleBirthInteger"},
		{"integer out of int32", `{"resourceType":"Patient","multipleBirthInteger":2147483648}`, "value", "Patient.multipleBirthInteger"},
		{"integer as string", `{"resourceType":"Patient","multipleBirthInteger":"2"}`, "value", "Patient.multipleBirthInteger"},
		{"positiveInt zero", `{"resourceType":"MedicationRequest","status":"active","intent":"order","medicationCodeableConcept":{"text":"x"},"subject":{"reference":"Patient/1"},"dosageInstruction":[{"timing":{"repeat":{"frequency":0}}}]}`, "value", "MedicationRequest.dosageInstruction[0].timing.repeat.frequency"},
		{"unsignedInt negative", `{"resourceType":"Patient","photo":[{"size":-1}]}`, "value", "Patient.photo[0].size"},
		{"decimal as string", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":"1"}}`, "value", "Observation.valueQuantity.value"},
		{"date Feb 30", `{"resourceType":"Patient","birthDate":"2020-02-30"}`, "value", "Patient.birthDate"},
		{"date Feb 29 non leap", `{"resourceType":"Patient","birthDate":"1900-02-29"}`, "value", "Patient.birthDate"},
		{"date month 13", `{"resourceType":"Patient","birthDate":"2020-13-01"}`, "value", "Patient.birthDate"},
		{"date with time", `{"resourceType":"Patient","birthDate":"2020-01-01T10:00:00Z"}`, "value", "Patient.birthDate"},
		{"dateTime without timezone", `{"resourceType":"Patient","deceasedDateTime":"2020-01-01T10:00:00"}`, "value", "Patient.deceasedDateTime"},
		{"dateTime without seconds", `{"resourceType":"Patient","deceasedDateTime":"2020-01-01T10:00Z"}`, "value", "Patient.deceasedDateTime"},
		{"dateTime April 31", `{"resourceType":"Patient","deceasedDateTime":"2020-04-31T10:00:00Z"}`, "value", "Patient.deceasedDateTime"},
		{"instant partial", `{"resourceType":"Patient","meta":{"lastUpdated":"2020-01-01"}}`, "value", "Patient.meta.lastUpdated"},
		{"time out of range", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueTime":"25:00:00"}`, "value", "Observation.valueTime"},
		{"uri with space", `{"resourceType":"Patient","implicitRules":"http://a b"}`, "value", "Patient.implicitRules"},
		{"code with leading space", `{"resourceType":"Patient","language":" en"}`, "value", "Patient.language"},
		{"code with double space", `{"resourceType":"Patient","language":"en  US"}`, "value", "Patient.language"},
		{"base64 bad", `{"resourceType":"Patient","photo":[{"data":"abc"}]}`, "value", "Patient.photo[0].data"},
		{"oid bad", `{"resourceType":"Patient","extension":[{"url":"http://x","valueOid":"1.2.3"}]}`, "value", "Patient.extension[0].valueOid"},
		{"uuid bad", `{"resourceType":"Patient","extension":[{"url":"http://x","valueUuid":"urn:uuid:XYZ"}]}`, "value", "Patient.extension[0].valueUuid"},
		{"id type bad", `{"resourceType":"Patient","extension":[{"url":"http://x","valueId":"a_b"}]}`, "value", "Patient.extension[0].valueId"},
		{"xhtml not a div", `{"resourceType":"Patient","text":{"status":"generated","div":"hello"}}`, "value", "Patient.text.div"},

		// required bindings
		{"code not in value set", `{"resourceType":"Patient","gender":"xyz"}`, "code-invalid", "Patient.gender"},
		{"data type code not in value set", `{"resourceType":"Patient","name":[{"use":"nick"}]}`, "code-invalid", "Patient.name[0].use"},
		{"CodeableConcept not in value set", `{"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/1"},"clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"gone"}]}}`, "code-invalid", "AllergyIntolerance.clinicalStatus"},
		{"CodeableConcept wrong system", `{"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/1"},"clinicalStatus":{"coding":[{"system":"http://example.org","code":"active"}]}}`, "code-invalid", "AllergyIntolerance.clinicalStatus"},

		// references
		{"reference unknown type", `{"resourceType":"Patient","managingOrganization":{"reference":"Foo/1"}}`, "value", "Patient.managingOrganization.reference"},
		{"reference bad id", `{"resourceType":"Patient","managingOrganization":{"reference":"Organization/a_b"}}`, "value", "Patient.managingOrganization.reference"},
		{"reference malformed", `{"resourceType":"Patient","managingOrganization":{"reference":"Organization"}}`, "value", "Patient.managingOrganization.reference"},
		{"reference type not allowed", `{"resourceType":"Patient","managingOrganization":{"reference":"Patient/1"}}`, "invalid", "Patient.managingOrganization.reference"},

		// nested resources and extensions
		{"nested contained", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o1","contained":[{"resourceType":"Organization","id":"o2"}]}]}`, "structure", "Patient.contained[0].contained"},
		{"contained versionId", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o1","meta":{"versionId":"1"}}]}`, "invalid", "Patient.contained[0].meta.versionId"},
		{"contained validated", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o1","active":"yes"}]}`, "value", "Patient.contained[0].active"},
		{"bundle entry validated", `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"Patient","birthDate":"2000-02-30"}}]}`, "value", "Bundle.entry[2].resource.birthDate"},
		{"parameters resource validated", `{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient","gender":"x"}}]}`, "code-invalid", "Parameters.parameter[0].resource.gender"},
		{"extension without url", `{"resourceType":"Patient","extension":[{"valueString":"a"}]}`, "required", "Patient.extension[0].url"},
		{"extension value and extension", `{"resourceType":"Patient","extension":[{"url":"http://x","valueString":"a","extension":[{"url":"y","valueString":"b"}]}]}`, "invariant", "Patient.extension[0]"},
		{"extension empty", `{"resourceType":"Patient","extension":[{"url":"http://x"}]}`, "invariant", "Patient.extension[0]"},
		{"modifierExtension checked", `{"resourceType":"Patient","modifierExtension":[{"url":"http://x","valueDate":"2020-02-30"}]}`, "value", "Patient.modifierExtension[0].valueDate"},
		{"extension unknown value type", `{"resourceType":"Patient","extension":[{"url":"http://x","valueFoo":"a"}]}`, "structure", "Patient.extension[0].valueFoo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			issues := Validate(mustDecode(t, tc.json))
			if tc.code == "" {
				if len(issues) > 0 {
					t.Fatalf("want valid, got %s", issuesString(issues))
				}
				return
			}
			for _, is := range issues {
				if is.Code == tc.code && len(is.Expression) == 1 && is.Expression[0] == tc.loc {
					if is.Severity != "error" || is.Diagnostics == "" {
						t.Errorf("issue %+v: want severity error and diagnostics", is)
					}
					return
				}
			}
			t.Fatalf("want %s at %s, got %s", tc.code, tc.loc, issuesString(issues))
		})
	}
}

func TestValidateDiagnostics(t *testing.T) {
	issues := Validate(mustDecode(t, `{"resourceType":"Patient","foo":1,"birthDate":"2020-02-30","gender":"xyz"}`))
	want := []string{
		"Invalid date '2020-02-30'",
		"Unknown element 'foo'",
		"Value 'xyz' is not in required value set http://hl7.org/fhir/ValueSet/administrative-gender",
	}
	if len(issues) != len(want) {
		t.Fatalf("got %s", issuesString(issues))
	}
	for i, w := range want {
		if issues[i].Diagnostics != w {
			t.Errorf("issue %d: got %q, want %q", i, issues[i].Diagnostics, w)
		}
	}
}

// TestValidateFixtures validates the official examples copied into
// testdata, so the validator is exercised without the shared corpus.
func TestValidateFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatal("no fixtures", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if issues := Validate(mustDecode(t, string(data))); len(issues) > 0 {
			t.Errorf("%s: %s", f, issuesString(issues))
		}
	}
}
