package rest_test

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FHIRPath Patch (FHIR R4 fhirpatch.html) through the HTTP API.

type part = map[string]any

// operation builds one "operation" parameter.
func operation(typ, path string, parts ...part) part {
	ps := []any{part{"name": "type", "valueCode": typ}, part{"name": "path", "valueString": path}}
	for _, p := range parts {
		ps = append(ps, p)
	}
	return part{"name": "operation", "part": ps}
}

func parameters(ops ...part) part {
	p := part{"resourceType": "Parameters"}
	if len(ops) > 0 {
		list := make([]any, len(ops))
		for i, o := range ops {
			list[i] = o
		}
		p["parameter"] = list
	}
	return p
}

func pName(n string) part           { return part{"name": "name", "valueString": n} }
func pValue(key string, v any) part { return part{"name": "value", key: v} }
func pInt(name string, n int) part  { return part{"name": name, "valueInteger": n} }

// pParts is a value built from nested parts: name, value[x] key, value, ….
func pParts(parts ...part) part {
	list := make([]any, len(parts))
	for i, p := range parts {
		list[i] = p
	}
	return part{"name": "value", "part": list}
}

func sub(name, key string, v any) part { return part{"name": name, key: v} }

func mustJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return m
}

// normalize round-trips v through encoding/json so that values built in
// Go compare with decoded answers.
func normalize(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

// strip removes what the server sets (id, meta) from a resource.
func strip(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k != "id" && k != "meta" {
			out[k] = v
		}
	}
	return out
}

const fpJSON = "Content-Type: application/fhir+json"

var ids4 = `"identifier":[{"system":"http://example.org","value":"value 1"},{"system":"http://example.org","value":"value 2"},{"system":"http://example.org","value":"value 3"},{"system":"http://example.org","value":"value 4"}]`

func idents(values ...string) string {
	var b strings.Builder
	b.WriteString(`"identifier":[`)
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"system":"http://example.org","value":"value ` + v + `"}`)
	}
	return b.String() + "]"
}

// TestFHIRPathPatchSpec runs the test cases the specification publishes
// for FHIRPath Patch (fhir-test-cases r4/patch/fhir-path-tests.xml, linked
// from fhirpatch.html), translated to JSON. "Delete Nested Primitive #2"
// leaves a contact without details, which Hale's invariant pat-1 refuses
// (422), so that case expects the refusal.
func TestFHIRPathPatchSpec(t *testing.T) {
	contact := `"contact":[{"name":{"text":"a name"},"gender":"male"}]`
	ident := `{"system":"http://example.org","value":"value 3"}`
	div := `<div xmlns="http://www.w3.org/1999/xhtml"><p>Peter James <b>Chalmers1</b></p></div>`
	cases := []struct {
		name   string
		input  string // a Patient's elements
		ops    []part
		output string // the Patient's elements after the patch ("" with status)
		status int    // when the patch must fail
		says   string
	}{
		{"No Difference", `"birthDate":"1920-01-01"`, nil, `"birthDate":"1920-01-01"`, 0, ""},
		{"Replace Primitive", `"birthDate":"1920-01-01"`,
			[]part{operation("replace", "Patient.birthDate", pValue("valueDate", "1930-01-01"))},
			`"birthDate":"1930-01-01"`, 0, ""},
		{"Delete Primitive", `"birthDate":"1920-01-01"`,
			[]part{operation("delete", "Patient.birthDate")}, ``, 0, ""},
		{"Add Primitive", ``,
			[]part{operation("add", "Patient", pName("birthDate"), pValue("valueDate", "1930-01-01"))},
			`"birthDate":"1930-01-01"`, 0, ""},
		{"Replace Nested Primitive #1", contact,
			[]part{operation("replace", "Patient.contact[0].gender", pValue("valueCode", "female"))},
			`"contact":[{"name":{"text":"a name"},"gender":"female"}]`, 0, ""},
		{"Replace Nested Primitive #2", contact,
			[]part{operation("replace", "Patient.contact[0].name.text", pValue("valueString", "the name"))},
			`"contact":[{"name":{"text":"the name"},"gender":"male"}]`, 0, ""},
		{"Delete Nested Primitive #1", contact,
			[]part{operation("delete", "Patient.contact[0].gender")},
			`"contact":[{"name":{"text":"a name"}}]`, 0, ""},
		{"Delete Nested Primitive #2", contact,
			[]part{operation("delete", "Patient.contact[0].name.text")},
			"", 422, "pat-1"},
		{"Add Nested Primitive", `"contact":[{"name":{"text":"a name"}}]`,
			[]part{operation("add", "Patient.contact[0]", pName("gender"), pValue("valueCode", "male"))},
			contact, 0, ""},
		{"Add Complex", ``,
			[]part{operation("add", "Patient", pName("maritalStatus"), pValue("valueCodeableConcept", part{"text": "married"}))},
			`"maritalStatus":{"text":"married"}`, 0, ""},
		{"Replace Complex", `"maritalStatus":{"id":"1","text":"married"}`,
			[]part{operation("replace", "Patient.maritalStatus", pValue("valueCodeableConcept", part{"id": "2", "text": "not married"}))},
			`"maritalStatus":{"id":"2","text":"not married"}`, 0, ""},
		{"Delete Complex", `"maritalStatus":{"text":"married"}`,
			[]part{operation("delete", "Patient.maritalStatus")}, ``, 0, ""},
		{"Add Anonymous Type", ``,
			[]part{operation("add", "Patient", pName("contact"), pParts(sub("name", "valueHumanName", part{"text": "a name"})))},
			`"contact":[{"name":{"text":"a name"}}]`, 0, ""},
		{"Delete Anonymous Type", `"contact":[{"name":{"text":"a name"}}]`,
			[]part{operation("delete", "Patient.contact[0]")}, ``, 0, ""},
		{"List unchanged", idents("1", "2"), nil, idents("1", "2"), 0, ""},
		{"List unchanged, contents changed",
			`"identifier":[{"id":"a","system":"http://example.org","value":"value 1"},{"id":"b","system":"http://example.org","value":"value 2"}]`,
			[]part{
				operation("replace", "Patient.identifier[0].value", pValue("valueString", "value 2")),
				operation("replace", "Patient.identifier[1].value", pValue("valueString", "value 1")),
			},
			`"identifier":[{"id":"a","system":"http://example.org","value":"value 2"},{"id":"b","system":"http://example.org","value":"value 1"}]`, 0, ""},
		{"Add to list", idents("1", "2"),
			[]part{operation("insert", "Patient.identifier", pInt("index", 2), pValue("valueIdentifier", mustJSON(t, ident)))},
			idents("1", "2", "3"), 0, ""},
		{"Insert in list #1", idents("1", "2"),
			[]part{operation("insert", "Patient.identifier", pInt("index", 1), pValue("valueIdentifier", mustJSON(t, ident)))},
			idents("1", "3", "2"), 0, ""},
		{"Insert in list #2", idents("1", "2"),
			[]part{operation("insert", "Patient.identifier", pInt("index", 0), pValue("valueIdentifier", mustJSON(t, ident)))},
			idents("3", "1", "2"), 0, ""},
		{"Delete from List #1", idents("1", "2", "3"),
			[]part{operation("delete", "Patient.identifier[0]")}, idents("2", "3"), 0, ""},
		{"Delete from List #2", idents("1", "2", "3"),
			[]part{operation("delete", "Patient.identifier[1]")}, idents("1", "3"), 0, ""},
		{"Delete from List #3", idents("1", "2", "3"),
			[]part{operation("delete", "Patient.identifier[2]")}, idents("1", "2"), 0, ""},
		{"Reorder List #1", ids4,
			[]part{operation("move", "Patient.identifier", pInt("source", 3), pInt("destination", 1))},
			idents("1", "4", "2", "3"), 0, ""},
		{"Reorder List #2", ids4,
			[]part{operation("move", "Patient.identifier", pInt("source", 3), pInt("destination", 0))},
			idents("4", "1", "2", "3"), 0, ""},
		{"Reorder List #3", ids4,
			[]part{operation("move", "Patient.identifier", pInt("source", 3), pInt("destination", 2))},
			idents("1", "2", "4", "3"), 0, ""},
		{"Reorder List #4", ids4,
			[]part{operation("move", "Patient.identifier", pInt("source", 0), pInt("destination", 3))},
			idents("2", "3", "4", "1"), 0, ""},
		{"Reorder List #5", ids4,
			[]part{
				operation("move", "Patient.identifier", pInt("source", 1), pInt("destination", 0)),
				operation("move", "Patient.identifier", pInt("source", 2), pInt("destination", 1)),
			},
			idents("2", "3", "1", "4"), 0, ""},
		{"Reorder List #6", ids4,
			[]part{
				operation("move", "Patient.identifier", pInt("source", 3), pInt("destination", 0)),
				operation("move", "Patient.identifier", pInt("source", 3), pInt("destination", 1)),
				operation("move", "Patient.identifier", pInt("source", 3), pInt("destination", 2)),
			},
			idents("4", "3", "2", "1"), 0, ""},
		{"Operation on missing element", `"identifier":[{"use":"official","value":"123"}]`,
			[]part{operation("add", "Patient.identifier.where(use = 'official').period", pName("end"), pValue("valueDate", "2021-12-01"))},
			"", 422, "operation 0"},
		{"Operation on missing element #2", ``,
			[]part{operation("add", "Patient", pName("identifier"), pValue("valueIdentifier", mustJSON(t, ident)))},
			`"identifier":[` + ident + `]`, 0, ""},
		{"Full Resource",
			`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Peter James <b>Chalmers</b></p></div>"},"active":true,"name":[{"use":"official","family":"Chalmers","given":["Peter","James"]},{"use":"usual","given":["Jim"]}],"gender":"male","birthDate":"1974-12-25","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1974-12-25T14:35:45-05:00"}]}`,
			[]part{
				operation("replace", "Patient.text.div", pValue("valueString", div)),
				operation("replace", "Patient.name[0].family", pValue("valueString", "Chalmers1")),
			},
			`"text":{"status":"generated","div":` + strings.ReplaceAll(jsonString(div), `\u003c`, "<") + `},"active":true,"name":[{"use":"official","family":"Chalmers1","given":["Peter","James"]},{"use":"usual","given":["Jim"]}],"gender":"male","birthDate":"1974-12-25","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1974-12-25T14:35:45-05:00"}]}`, 0, ""},
	}
	engines(t, func(t *testing.T, c *client) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				in := `{"resourceType":"Patient"`
				if tc.input != "" {
					in += "," + tc.input
				}
				id := c.create(t, "Patient", in+"}")
				r := c.do("PATCH", "/Patient/"+id, parameters(tc.ops...), fpJSON)
				if tc.status != 0 {
					r.want(t, tc.status)
					if says := r.outcome(t); !strings.Contains(says, tc.says) {
						t.Errorf("outcome %q does not mention %q", says, tc.says)
					}
					if g := c.do("GET", "/Patient/"+id, nil); get(g.body, "meta", "versionId") != "1" {
						t.Errorf("a failed patch wrote a version: %s", g.raw)
					}
					return
				}
				r.want(t, 200)
				want := `{"resourceType":"Patient"`
				if tc.output != "" {
					want += "," + tc.output
				}
				if got, want := normalize(t, strip(r.body)), normalize(t, mustJSON(t, want+"}")); !reflect.DeepEqual(got, want) {
					t.Errorf("patched:\n got %v\nwant %v", got, want)
				}
				if get(r.body, "id") != id || get(r.body, "meta", "versionId") != "2" {
					t.Errorf("id or version: %s", r.raw)
				}
			})
		}
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestFHIRPathPatchOperations covers what the spec's cases do not:
// choice elements, primitives with extensions, empty lists, contained
// resources, deletes of nothing.
func TestFHIRPathPatchOperations(t *testing.T) {
	obs := `{"resourceType":"Observation","status":"final","code":{"text":"weight"},"valueQuantity":{"value":70,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}`
	cases := []struct {
		name, typ, input string
		ops              []part
		check            func(t *testing.T, res map[string]any)
	}{
		{"replace a choice with another type", "Observation", obs,
			[]part{operation("replace", "Observation.value", pValue("valueString", "heavy"))},
			func(t *testing.T, res map[string]any) {
				if res["valueString"] != "heavy" || res["valueQuantity"] != nil {
					t.Errorf("%v", res)
				}
			}},
		{"replace inside a choice", "Observation", obs,
			[]part{operation("replace", "Observation.value.value", pValue("valueDecimal", 71.5))},
			func(t *testing.T, res map[string]any) {
				if get(res, "valueQuantity", "value") != 71.5 {
					t.Errorf("%v", res)
				}
			}},
		{"add a choice by its stem", "Patient", patientJane,
			[]part{operation("add", "Patient", pName("deceased"), pValue("valueBoolean", false))},
			func(t *testing.T, res map[string]any) {
				if res["deceasedBoolean"] != false {
					t.Errorf("%v", res)
				}
			}},
		{"add an extension to a primitive", "Patient", patientJane,
			[]part{operation("add", "Patient.birthDate", pName("extension"), pParts(
				sub("url", "valueUri", "http://hl7.org/fhir/StructureDefinition/patient-birthTime"),
				sub("value", "valueDateTime", "1980-02-29T10:00:00Z")))},
			func(t *testing.T, res map[string]any) {
				if res["birthDate"] != "1980-02-29" || get(res, "_birthDate", "extension", 0, "valueDateTime") != "1980-02-29T10:00:00Z" {
					t.Errorf("%v", res)
				}
			}},
		{"insert into a primitive list with extensions", "Patient",
			`{"resourceType":"Patient","name":[{"given":["A","C"],"_given":[null,{"extension":[{"url":"http://example.org/x","valueString":"c"}]}]}]}`,
			[]part{operation("insert", "Patient.name[0].given", pInt("index", 1), pValue("valueString", "B"))},
			func(t *testing.T, res map[string]any) {
				if got := normalize(t, get(res, "name", 0)); !reflect.DeepEqual(got, normalize(t, mustJSON(t, `{"given":["A","B","C"],"_given":[null,null,{"extension":[{"url":"http://example.org/x","valueString":"c"}]}]}`))) {
					t.Errorf("%v", got)
				}
			}},
		{"delete a primitive keeps its companion aligned", "Patient",
			`{"resourceType":"Patient","name":[{"given":["A","C"],"_given":[null,{"extension":[{"url":"http://example.org/x","valueString":"c"}]}]}]}`,
			[]part{operation("delete", "Patient.name[0].given[0]")},
			func(t *testing.T, res map[string]any) {
				if got := normalize(t, get(res, "name", 0)); !reflect.DeepEqual(got, normalize(t, mustJSON(t, `{"given":["C"],"_given":[{"extension":[{"url":"http://example.org/x","valueString":"c"}]}]}`))) {
					t.Errorf("%v", got)
				}
			}},
		{"insert into an empty list", "Patient", `{"resourceType":"Patient","active":true}`,
			[]part{operation("insert", "Patient.name", pInt("index", 0), pValue("valueHumanName", part{"family": "Doe"}))},
			func(t *testing.T, res map[string]any) {
				if get(res, "name", 0, "family") != "Doe" {
					t.Errorf("%v", res)
				}
			}},
		{"delete nothing", "Patient", patientJane,
			[]part{operation("delete", "Patient.name.where(family = 'Nobody')")},
			func(t *testing.T, res map[string]any) {
				if get(res, "name", 0, "family") != "Doe" {
					t.Errorf("%v", res)
				}
			}},
		{"delete the last item drops the list", "Patient", patientJane,
			[]part{operation("delete", "Patient.identifier[0]")},
			func(t *testing.T, res map[string]any) {
				if _, ok := res["identifier"]; ok {
					t.Errorf("%v", res)
				}
			}},
		{"a where() path", "Patient", `{"resourceType":"Patient","name":[{"use":"official","family":"A"},{"use":"usual","family":"B"}]}`,
			[]part{operation("replace", "Patient.name.where(use = 'usual').family", pValue("valueString", "C"))},
			func(t *testing.T, res map[string]any) {
				if get(res, "name", 0, "family") != "A" || get(res, "name", 1, "family") != "C" {
					t.Errorf("%v", res)
				}
			}},
		{"add a contained resource and a reference to it", "Patient", patientJane,
			[]part{
				operation("add", "Patient", pName("contained"), part{"name": "value", "resource": mustJSON(t, `{"resourceType":"Organization","id":"o1","name":"Acme"}`)}),
				operation("add", "Patient", pName("managingOrganization"), pValue("valueReference", part{"reference": "#o1"})),
			},
			func(t *testing.T, res map[string]any) {
				if get(res, "contained", 0, "name") != "Acme" || get(res, "managingOrganization", "reference") != "#o1" {
					t.Errorf("%v", res)
				}
			}},
		{"replace inside a contained resource", "Patient",
			`{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o1","name":"Acme"}],"managingOrganization":{"reference":"#o1"}}`,
			[]part{operation("replace", "Patient.contained[0].name", pValue("valueString", "Acme 2"))},
			func(t *testing.T, res map[string]any) {
				if get(res, "contained", 0, "name") != "Acme 2" {
					t.Errorf("%v", res)
				}
			}},
		{"nested parts with a repeating child", "Patient", patientJane,
			[]part{operation("add", "Patient", pName("contact"), pParts(
				sub("name", "valueHumanName", part{"family": "Roe"}),
				sub("telecom", "valueContactPoint", part{"system": "phone", "value": "1"}),
				sub("telecom", "valueContactPoint", part{"system": "email", "value": "a@b.c"})))},
			func(t *testing.T, res map[string]any) {
				if get(res, "contact", 0, "telecom", 1, "system") != "email" || get(res, "contact", 0, "name", "family") != "Roe" {
					t.Errorf("%v", res)
				}
			}},
	}
	engines(t, func(t *testing.T, c *client) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				id := c.create(t, tc.typ, tc.input)
				r := c.do("PATCH", "/"+tc.typ+"/"+id, parameters(tc.ops...), fpJSON).want(t, 200)
				tc.check(t, r.body)
				if g := c.do("GET", "/"+tc.typ+"/"+id, nil); !reflect.DeepEqual(g.body, r.body) {
					t.Errorf("stored %s, answered %s", g.raw, r.raw)
				}
			})
		}
	})
}

// TestFHIRPathPatchErrors: a malformed Parameters is a 400, an operation
// that cannot apply a 422 naming it; nothing is written.
func TestFHIRPathPatchErrors(t *testing.T) {
	ok := operation("replace", "Patient.gender", pValue("valueCode", "male"))
	cases := []struct {
		name   string
		body   any
		status int
		says   string
	}{
		{"not an operation", parameters(part{"name": "op", "valueString": "x"}), 400, "operation"},
		{"unknown type", parameters(operation("copy", "Patient.gender")), 400, "copy"},
		{"no value", parameters(operation("replace", "Patient.gender")), 400, "value"},
		{"no index", parameters(operation("insert", "Patient.name", pValue("valueHumanName", part{"family": "x"}))), 400, "index"},
		{"unknown part", parameters(operation("delete", "Patient.gender", part{"name": "colour", "valueString": "red"})), 400, "colour"},
		{"negative index", parameters(operation("insert", "Patient.name", pInt("index", -1), pValue("valueHumanName", part{"family": "x"}))), 400, "index"},
		{"bad FHIRPath", parameters(operation("delete", "Patient.name.where(")), 400, "path"},
		{"not a valid Parameters", `{"resourceType":"Parameters","parameter":[{"name":"operation","bogus":1}]}`, 400, "bogus"},
		{"not JSON", `{"resourceType":"Parameters",`, 400, ""},
		{"a Patient", patientJane, 415, "FHIRPath Patch"},
		{"JSON Patch as FHIR", `[{"op":"remove","path":"/gender"}]`, 415, "json-patch+json"},
		{"replace nothing", parameters(ok, operation("replace", "Patient.maritalStatus", pValue("valueCodeableConcept", part{"text": "x"}))), 422, "operation 1"},
		{"replace several", parameters(operation("replace", "Patient.name.given", pValue("valueString", "x"))), 422, "2 elements"},
		{"delete several", parameters(operation("delete", "Patient.name.given")), 422, "operation 0"},
		{"add to nothing", parameters(operation("add", "Patient.contact", pName("gender"), pValue("valueCode", "male"))), 422, "0 elements"},
		{"add over a single element", parameters(operation("add", "Patient", pName("gender"), pValue("valueCode", "male"))), 422, "replace"},
		{"add an unknown element", parameters(operation("add", "Patient", pName("nickname"), pValue("valueString", "J"))), 422, "nickname"},
		{"wrong type", parameters(operation("replace", "Patient.birthDate", pValue("valueHumanName", part{"family": "x"}))), 422, "HumanName"},
		{"complex into complex of another type", parameters(operation("add", "Patient", pName("maritalStatus"), pValue("valueCoding", part{"code": "M"}))), 422, "Coding"},
		{"parts into a primitive", parameters(operation("replace", "Patient.gender", pParts(sub("x", "valueString", "y")))), 422, "primitive"},
		{"insert past the end", parameters(operation("insert", "Patient.name", pInt("index", 2), pValue("valueHumanName", part{"family": "x"}))), 422, "index 2"},
		{"insert into part of a list", parameters(operation("insert", "Patient.name.given.where($this = 'Q')", pInt("index", 0), pValue("valueString", "x"))), 422, "whole list"},
		{"insert into a single element", parameters(operation("insert", "Patient.gender", pInt("index", 0), pValue("valueCode", "male"))), 422, "list"},
		{"move out of range", parameters(operation("move", "Patient.name[0].given", pInt("source", 0), pInt("destination", 5))), 422, "destination 5"},
		{"invalid result", parameters(operation("replace", "Patient.gender", pValue("valueCode", "not-a-gender"))), 422, "Patient.gender"},
		{"invariant broken", parameters(operation("add", "Patient", pName("contact"), pParts(sub("gender", "valueCode", "male")))), 422, "pat-1"},
		{"change the id", parameters(operation("replace", "Patient.id", pValue("valueId", "other"))), 422, "id"},
		{"delete the resource", parameters(operation("delete", "Patient")), 422, "resource itself"},
		{"a computed value", parameters(operation("replace", "Patient.name.given.first().upper()", pValue("valueString", "x"))), 422, "computed"},
		{"a failing path", parameters(operation("replace", "Patient.name.given.single()", pValue("valueString", "x"))), 422, "evaluated"},
	}
	engines(t, func(t *testing.T, c *client) {
		id := c.create(t, "Patient", `{"resourceType":"Patient","name":[{"family":"Doe","given":["Jane","Q"]}],"gender":"female","birthDate":"1980-02-29"}`)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := c.do("PATCH", "/Patient/"+id, tc.body, fpJSON).want(t, tc.status)
				if says := r.outcome(t); !strings.Contains(says, tc.says) {
					t.Errorf("outcome %q does not mention %q", says, tc.says)
				}
			})
		}
		if g := c.do("GET", "/Patient/"+id, nil); get(g.body, "meta", "versionId") != "1" {
			t.Errorf("failed patches wrote a version: %s", g.raw)
		}
	})
}

// TestFHIRPathPatchHTTP: XML bodies, If-Match, conditional patch, and
// patches inside a transaction and a batch.
func TestFHIRPathPatchHTTP(t *testing.T) {
	setGender := func(g string) part {
		return parameters(operation("replace", "Patient.gender", pValue("valueCode", g)))
	}
	engines(t, func(t *testing.T, c *client) {
		id := c.create(t, "Patient", patientJane)

		// XML (fhir+xml is decoded by the adapter into the same tree)
		x := `<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="operation"/>` +
			`<part><name value="type"/><valueCode value="replace"/></part>` +
			`<part><name value="path"/><valueString value="Patient.birthDate"/></part>` +
			`<part><name value="value"/><valueDate value="1981-03-01"/></part></parameter></Parameters>`
		r := c.do("PATCH", "/Patient/"+id, x, "Content-Type: application/fhir+xml").want(t, 200)
		if r.body["birthDate"] != "1981-03-01" || get(r.body, "meta", "versionId") != "2" {
			t.Errorf("xml patch: %s", r.raw)
		}
		c.do("PATCH", "/Patient/"+id, `<Parameters xmlns="http://hl7.org/fhir"><parameter>`, "Content-Type: application/fhir+xml").want(t, 400)
		c.do("PATCH", "/Patient/"+id, `<Patient xmlns="http://hl7.org/fhir"/>`, "Content-Type: application/fhir+xml").want(t, 415)

		// If-Match
		c.do("PATCH", "/Patient/"+id, setGender("male"), fpJSON, `If-Match: W/"1"`).want(t, 412)
		r = c.do("PATCH", "/Patient/"+id, setGender("male"), fpJSON, `If-Match: W/"2"`).want(t, 200)
		if r.body["gender"] != "male" || r.header.Get("ETag") != `W/"3"` {
			t.Errorf("If-Match patch: %s %v", r.raw, r.header)
		}

		// conditional
		r = c.do("PATCH", "/Patient?identifier=http://example.org/mrn|MRN-1", setGender("other"), fpJSON).want(t, 200)
		if r.body["id"] != id || r.body["gender"] != "other" {
			t.Errorf("conditional patch: %s", r.raw)
		}
		c.do("PATCH", "/Patient?identifier=http://example.org/mrn|none", setGender("other"), fpJSON).want(t, 404)

		// transaction: a Parameters entry is a FHIRPath Patch, next to a
		// JSON Patch in a Binary; a failing operation rolls back all.
		id2 := c.create(t, "Patient", `{"resourceType":"Patient","identifier":[{"system":"http://example.org/mrn","value":"MRN-2"}]}`)
		jp := base64.StdEncoding.EncodeToString([]byte(`[{"op":"add","path":"/active","value":true}]`))
		tx := func(ops part) string {
			p, _ := json.Marshal(ops)
			return `{"resourceType":"Bundle","type":"transaction","entry":[
			 {"resource":` + string(p) + `,"request":{"method":"PATCH","url":"Patient/` + id + `"}},
			 {"fullUrl":"urn:uuid:0b7c4b6e-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","name":[{"family":"New"}]},"request":{"method":"POST","url":"Patient"}},
			 {"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"` + jp + `"},"request":{"method":"PATCH","url":"Patient?identifier=http://example.org/mrn|MRN-2"}}]}`
		}
		r = c.do("POST", "", tx(setGender("female")), fpJSON).want(t, 200)
		if !strings.HasPrefix(str(get(r.body, "entry", 0, "response", "status")), "200") {
			t.Errorf("transaction: %s", r.raw)
		}
		if g := c.do("GET", "/Patient/"+id, nil); g.body["gender"] != "female" || get(g.body, "meta", "versionId") != "5" {
			t.Errorf("after transaction: %s", g.raw)
		}
		if g := c.do("GET", "/Patient/"+id2, nil); g.body["active"] != true {
			t.Errorf("JSON Patch entry: %s", g.raw)
		}
		before := c.count(t, "Patient")
		r = c.do("POST", "", tx(parameters(operation("replace", "Patient.maritalStatus", pValue("valueCodeableConcept", part{"text": "x"})))), fpJSON).want(t, 422)
		if says := r.outcome(t); !strings.Contains(says, "Bundle.entry[0]") || !strings.Contains(says, "operation 0") {
			t.Errorf("transaction failure: %s", says)
		}
		if n := c.count(t, "Patient"); n != before {
			t.Errorf("failed transaction stored resources: %d → %d", before, n)
		}

		// batch: each entry on its own
		p, _ := json.Marshal(setGender("male"))
		bad, _ := json.Marshal(parameters(operation("replace", "Patient.maritalStatus", pValue("valueCodeableConcept", part{"text": "x"}))))
		r = c.do("POST", "", `{"resourceType":"Bundle","type":"batch","entry":[
		 {"resource":`+string(p)+`,"request":{"method":"PATCH","url":"Patient/`+id+`"}},
		 {"resource":`+string(bad)+`,"request":{"method":"PATCH","url":"Patient/`+id+`"}}]}`, fpJSON).want(t, 200)
		if !strings.HasPrefix(str(get(r.body, "entry", 0, "response", "status")), "200") ||
			!strings.HasPrefix(str(get(r.body, "entry", 1, "response", "status")), "422") {
			t.Errorf("batch: %s", r.raw)
		}
	})
}
