package rest_test

import (
	"strings"
	"testing"
)

// TestClientMistakes: every client mistake is a 4xx OperationOutcome that
// says what is wrong, and stores nothing.
func TestClientMistakes(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		for _, tc := range []struct {
			name, method, path string
			body               any
			headers            []string
			status             int
			says               string
		}{
			{"malformed JSON", "POST", "/Patient", `{"resourceType":"Patient",`, nil, 400, ""},
			{"not an object", "POST", "/Patient", `[1,2]`, nil, 400, ""},
			{"trailing data", "POST", "/Patient", `{"resourceType":"Patient"} {}`, nil, 400, ""},
			{"no resourceType", "POST", "/Patient", `{"id":"x"}`, nil, 400, "resourceType"},
			{"type mismatch", "POST", "/Patient", `{"resourceType":"Observation"}`, nil, 400, "Observation"},
			{"unknown type", "POST", "/Frobnicate", `{"resourceType":"Frobnicate"}`, nil, 404, "Frobnicate"},
			{"unknown element", "POST", "/Patient", `{"resourceType":"Patient","foo":1}`, nil, 400, "Patient.foo"},
			{"bad date", "POST", "/Patient", `{"resourceType":"Patient","birthDate":"1980-02-30"}`, nil, 400, "Patient.birthDate"},
			{"bad code", "POST", "/Patient", `{"resourceType":"Patient","gender":"f"}`, nil, 400, "Patient.gender"},
			{"wrong cardinality", "POST", "/Patient", `{"resourceType":"Patient","gender":["female"]}`, nil, 400, "Patient.gender"},
			{"bad reference", "POST", "/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/has space"}}`, nil, 400, "Observation.subject"},
			{"missing required", "POST", "/Observation", `{"resourceType":"Observation","code":{"text":"x"}}`, nil, 400, "Observation.status"},
			{"empty body", "POST", "/Patient", "", nil, 400, ""},
			{"invariant per-1", "POST", "/Patient", `{"resourceType":"Patient","name":[{"family":"x","period":{"start":"2020-02-01","end":"2020-01-01"}}]}`, nil, 422, "per-1"},
			{"invariant pat-1", "POST", "/Patient", `{"resourceType":"Patient","contact":[{"gender":"male"}]}`, nil, 422, "Patient.contact[0]"},
			{"invariant dom-3", "POST", "/Patient", `{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o","name":"x"}]}`, nil, 422, "dom-3"},
			{"malformed xml", "POST", "/Patient", `<Patient xmlns="http://hl7.org/fhir"><name>`, []string{"Content-Type: application/fhir+xml"}, 400, "XML"},
			{"xml unknown element", "POST", "/Patient", `<Patient xmlns="http://hl7.org/fhir"><nickname value="x"/></Patient>`, []string{"Content-Type: application/fhir+xml"}, 400, "nickname"},
			{"xml patch", "PATCH", "/Patient/1", `<x/>`, []string{"Content-Type: application/xml"}, 415, "JSON Patch"},
			{"form body", "POST", "/Patient", `a=b`, []string{"Content-Type: application/x-www-form-urlencoded"}, 415, ""},
			{"accept png", "GET", "/metadata", nil, []string{"Accept: image/png"}, 406, "image/png"},
			{"_format html", "GET", "/metadata?_format=html", nil, nil, 406, "html"},
			{"too large", "POST", "/Patient", `{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">` + strings.Repeat("x", 5<<20) + `</div>"}}`, nil, 413, ""},
			{"bad method", "POST", "/Patient/123", patientJane, nil, 405, ""},
			{"bad path", "GET", "/Patient/1/2/3/4/5", nil, nil, 404, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := c.do(tc.method, tc.path, tc.body, tc.headers...).want(t, tc.status)
				if says := r.outcome(t); !strings.Contains(says, tc.says) {
					t.Errorf("outcome %q does not mention %q", says, tc.says)
				}
			})
		}
		if n := c.count(t, ""); n != 0 {
			t.Errorf("bad requests stored %d resources", n)
		}
	})
}

// TestLongValues: values longer than any index entry may be are stored
// and read back; they are just not searchable by that value.
func TestLongValues(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		long := strings.Repeat("x", 5000)
		body := `{"resourceType":"Patient","identifier":[{"system":"` + long + `","value":"` + long + `"}],"name":[{"family":"` + long + `"}],"managingOrganization":{"reference":"http://example.org/` + long + `"}}`
		id := c.create(t, "Patient", body)
		if r := c.do("GET", "/Patient/"+id, nil).want(t, 200); !strings.Contains(string(r.raw), long) {
			t.Errorf("long value not read back")
		}
		if r := c.do("GET", "/Patient?family="+long[:3000], nil).want(t, 200); r.body["total"] != float64(1) {
			t.Errorf("long string prefix search: %v", r.body["total"])
		}
	})
}

// TestXML: FHIR XML in and out (xml.html), through the same core.
func TestXML(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		x := `<Patient xmlns="http://hl7.org/fhir"><name><family value="Doe"/><given value="Jane"/></name><gender value="female"/><birthDate value="1980-02-29"/></Patient>`
		r := c.do("POST", "/Patient", x, "Content-Type: application/fhir+xml", "Accept: application/fhir+xml").want(t, 201)
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+xml") || !strings.Contains(string(r.raw), `<family value="Doe"/>`) {
			t.Fatalf("XML answer: %s %s", ct, r.raw)
		}
		loc := strings.TrimPrefix(r.header.Get("Location"), c.base)
		id := strings.Split(loc, "/")[2]
		g := c.do("GET", "/Patient/"+id, nil).want(t, 200)
		if get(g.body, "name", 0, "given", 0) != "Jane" {
			t.Errorf("XML create read back as JSON: %s", g.raw)
		}
		g = c.do("GET", "/Patient/"+id+"?_format=xml", nil).want(t, 200)
		if !strings.Contains(string(g.raw), `<birthDate value="1980-02-29"/>`) {
			t.Errorf("_format=xml: %s", g.raw)
		}
		e := c.do("GET", "/Patient/nope", nil, "Accept: application/fhir+xml").want(t, 404)
		if !strings.Contains(string(e.raw), "<OperationOutcome") {
			t.Errorf("XML error: %s", e.raw)
		}
		m := c.do("GET", "/metadata", nil, "Accept: application/fhir+json;q=0.5, application/fhir+xml").want(t, 200)
		if !strings.Contains(string(m.raw), "<CapabilityStatement") {
			t.Errorf("Accept q-values: %.100s", m.raw)
		}
	})
}

func TestFormats(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		r := c.do("GET", "/metadata?_pretty=true", nil).want(t, 200)
		if !strings.Contains(string(r.raw), "\n  \"") {
			t.Errorf("_pretty=true is not indented")
		}
		c.do("GET", "/metadata?_format=json", nil).want(t, 200)
		c.do("GET", "/metadata?_format=application/fhir%2Bjson", nil).want(t, 200)
		c.do("GET", "/metadata", nil, "Accept: text/html,application/xhtml+xml,*/*;q=0.8").want(t, 200)
		id := c.create(t, "Patient", patientJane)
		c.do("PUT", "/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`"}`, "Content-Type: application/json").want(t, 200)
	})
}

func TestCapabilityStatement(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		r := c.do("GET", "/metadata", nil).want(t, 200)
		if r.body["resourceType"] != "CapabilityStatement" || r.body["fhirVersion"] != "4.0.1" {
			t.Fatalf("metadata: %.200s", r.raw)
		}
		res := get(r.body, "rest", 0, "resource").([]any)
		if len(res) < 140 {
			t.Errorf("%d resource types listed", len(res))
		}
		var patient any
		for _, x := range res {
			if get(x, "type") == "Patient" {
				patient = x
			}
		}
		if get(patient, "conditionalCreate") != true || get(patient, "versioning") != "versioned-update" {
			t.Errorf("Patient capabilities: %v", patient)
		}
		params := map[string]bool{}
		for _, p := range get(patient, "searchParam").([]any) {
			params[str(get(p, "name"))] = true
		}
		for _, want := range []string{"_id", "_lastUpdated", "identifier", "family", "gender", "birthdate", "race"} {
			if !params[want] {
				t.Errorf("Patient search parameter %s not listed", want)
			}
		}
	})
}

func TestValidateOperation(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		r := c.do("POST", "/Patient/$validate", `{"resourceType":"Patient","gender":"x"}`).want(t, 200)
		if says := r.outcome(t); !strings.Contains(says, "Patient.gender") {
			t.Errorf("$validate: %s", says)
		}
		r = c.do("POST", "/Patient/$validate", patientJane).want(t, 200)
		if get(r.body, "issue", 0, "severity") != "information" {
			t.Errorf("valid resource: %s", r.raw)
		}
		p := `{"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":"Patient","foo":1}}]}`
		r = c.do("POST", "/Patient/$validate", p).want(t, 200)
		if says := r.outcome(t); !strings.Contains(says, "foo") {
			t.Errorf("$validate with Parameters: %s", says)
		}
		if n := c.count(t, ""); n != 0 {
			t.Errorf("$validate stored %d resources", n)
		}
	})
}
