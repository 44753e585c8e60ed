package fhir

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hale-ehr/hale"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestOfficialExamplesXMLRoundTrip writes every official R4 example as
// XML and reads it back: DecodeXML(MarshalXML(Decode(json))) must be the
// tree Decode gave.
func TestOfficialExamplesXMLRoundTrip(t *testing.T) {
	files := exampleFiles(t)
	same := 0
	for _, f := range files {
		name := filepath.Base(f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Decode(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		x, err := MarshalXML(res)
		if err != nil {
			t.Errorf("%s: MarshalXML: %v", name, err)
			continue
		}
		back, err := DecodeXML(x)
		if err != nil {
			t.Errorf("%s: DecodeXML(MarshalXML): %v", name, err)
			continue
		}
		if !reflect.DeepEqual(res, back) {
			t.Errorf("%s: DecodeXML(MarshalXML(x)) differs from x: %s", name, treeDiff(res["resourceType"].(string), res, back))
			continue
		}
		same++
	}
	t.Logf("official R4 examples round-tripped through XML: %d / %d", same, len(files))
}

// treeDiff returns the first difference between two decoded trees, as a
// location and the two values, or "" when they are equal.
func treeDiff(loc string, a, b any) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: %#v vs %#v", loc, a, b)
		}
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			xv, xok := x[k]
			yv, yok := y[k]
			if xok != yok {
				return fmt.Sprintf("%s.%s: present %v vs %v (%s)", loc, k, xok, yok, abbrevAny(xv, yv))
			}
			if d := treeDiff(loc+"."+k, xv, yv); d != "" {
				return d
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return fmt.Sprintf("%s: %s", loc, abbrevAny(a, b))
		}
		for i := range x {
			if d := treeDiff(fmt.Sprintf("%s[%d]", loc, i), x[i], y[i]); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Sprintf("%s: %s", loc, abbrevAny(a, b))
	}
	return ""
}

func abbrevAny(a, b any) string {
	s := fmt.Sprintf("%#v vs %#v", a, b)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// TestFHIRPathInputsXML decodes the XML inputs of the official FHIRPath
// test suite, validates them, and compares those with a JSON rendering in
// input-json (which the suite's MANIFEST says "may differ slightly").
func TestFHIRPathInputsXML(t *testing.T) {
	dir := sharedDir(t, filepath.Join("testdata", "fhirpath-tests", "r4"))
	files, err := filepath.Glob(filepath.Join(dir, "input", "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no XML inputs")
	}
	compared := 0
	for _, f := range files {
		name := filepath.Base(f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := DecodeXML(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if issues := Validate(res); len(issues) > 0 {
			t.Errorf("%s: %s", name, issuesString(issues))
		}
		jf := filepath.Join(dir, "input-json", strings.TrimSuffix(name, ".xml")+".json")
		jdata, err := os.ReadFile(jf)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		want, err := Decode(jdata)
		if err != nil {
			t.Fatal(err)
		}
		compared++
		rt := want["resourceType"].(string)
		canonical := map[string]bool{}
		for _, d := range treeDiffs(rt, canonicalDivs(t, want, false), canonicalDivs(t, res, false)) {
			canonical[d] = true
		}
		spaced := map[string]bool{}
		for _, d := range treeDiffs(rt, canonicalDivs(t, want, true), canonicalDivs(t, res, true)) {
			spaced[d] = true
		}
		for _, d := range treeDiffs(rt, want, res) {
			loc, _, _ := strings.Cut(d, ": ")
			switch {
			case !strings.HasSuffix(loc, ".div"):
			case !hasPrefixIn(canonical, loc+": "):
				d = loc + ": the same XHTML, serialised differently (character references, entities or empty-element tags)"
			case !hasPrefixIn(spaced, loc+": "):
				d = loc + ": the same XHTML but for white space (indentation between elements)"
			}
			t.Logf("%s: %s", name, d)
		}
	}
	t.Logf("FHIRPath XML inputs decoded: %d, compared with input-json: %d", len(files), compared)
}

// treeDiffs returns every difference between two trees (want, got).
func treeDiffs(loc string, a, b any) []string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %s", loc, abbrevAny(a, b))}
		}
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		var out []string
		for _, k := range sorted {
			xv, xok := x[k]
			yv, yok := y[k]
			if xok != yok {
				out = append(out, fmt.Sprintf("%s.%s: only in %s: %s", loc, k, map[bool]string{true: "JSON", false: "XML"}[xok], abbrevAny(xv, yv)))
				continue
			}
			out = append(out, treeDiffs(loc+"."+k, xv, yv)...)
		}
		return out
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return []string{fmt.Sprintf("%s: %s", loc, abbrevAny(a, b))}
		}
		var out []string
		for i := range x {
			out = append(out, treeDiffs(fmt.Sprintf("%s[%d]", loc, i), x[i], y[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(a, b) {
		return []string{fmt.Sprintf("%s: %s", loc, abbrevAny(a, b))}
	}
	return nil
}

// TestDecodeXMLFixtures checks each testdata/xml/*.xml against the JSON
// beside it: DecodeXML gives the tree Decode gives, the tree is valid, and
// it survives MarshalXML and DecodeXML again.
func TestDecodeXMLFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "xml", "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := mustDecode(t, string(mustRead(t, strings.TrimSuffix(f, ".xml")+".json")))
			got, err := DecodeXML(mustRead(t, f))
			if err != nil {
				t.Fatal(err)
			}
			if d := treeDiff(want["resourceType"].(string), want, got); d != "" {
				t.Errorf("DecodeXML differs from the JSON: %s", d)
			}
			if issues := Validate(got); len(issues) > 0 {
				t.Errorf("invalid: %s", issuesString(issues))
			}
			x, err := MarshalXML(got)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeXML(x)
			if err != nil {
				t.Fatalf("%v\n%s", err, x)
			}
			if d := treeDiff(want["resourceType"].(string), got, back); d != "" {
				t.Errorf("DecodeXML(MarshalXML) differs: %s", d)
			}
		})
	}
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

const xmlHead = `<Patient xmlns="http://hl7.org/fhir">`

// TestDecodeXML covers the mapping rules one at a time; want is the
// equivalent FHIR JSON.
func TestDecodeXML(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"resourceType and id element", xmlHead + `<id value="p"/></Patient>`,
			`{"resourceType":"Patient","id":"p"}`},
		{"repeating element occurring once is an array", xmlHead + `<name><given value="A"/></name></Patient>`,
			`{"resourceType":"Patient","name":[{"given":["A"]}]}`},
		{"boolean and integer", xmlHead + `<active value="false"/><multipleBirthInteger value="-0"/></Patient>`,
			`{"resourceType":"Patient","active":false,"multipleBirthInteger":-0}`},
		{"decimal keeps its lexical form", `<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="x"/></code><valueQuantity><value value="1.50"/></valueQuantity><referenceRange><low><value value="0.000"/></low><high><value value="1E3"/></high></referenceRange></Observation>`,
			`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50},"referenceRange":[{"low":{"value":0.000},"high":{"value":1E3}}]}`},
		{"date-like and code types stay strings", xmlHead + `<gender value="male"/><birthDate value="1974"/></Patient>`,
			`{"resourceType":"Patient","gender":"male","birthDate":"1974"}`},
		{"choice element", xmlHead + `<deceasedDateTime value="2020-01-01"/></Patient>`,
			`{"resourceType":"Patient","deceasedDateTime":"2020-01-01"}`},
		{"primitive extension, single", xmlHead + `<birthDate value="1974-12-25"><extension url="http://x"><valueDateTime value="1974-12-25T14:35:45-05:00"/></extension></birthDate></Patient>`,
			`{"resourceType":"Patient","birthDate":"1974-12-25","_birthDate":{"extension":[{"url":"http://x","valueDateTime":"1974-12-25T14:35:45-05:00"}]}}`},
		{"primitive id only", xmlHead + `<gender id="g" value="male"/></Patient>`,
			`{"resourceType":"Patient","gender":"male","_gender":{"id":"g"}}`},
		{"primitive extension in an array, aligned with nulls", xmlHead + `<name><given value="A"/><given id="b" value="B"/><given value="C"/></name></Patient>`,
			`{"resourceType":"Patient","name":[{"given":["A","B","C"],"_given":[null,{"id":"b"},null]}]}`},
		{"array item with only an extension", xmlHead + `<name><given value="A"/><given><extension url="u"><valueCode value="masked"/></extension></given></name></Patient>`,
			`{"resourceType":"Patient","name":[{"given":["A",null],"_given":[null,{"extension":[{"url":"u","valueCode":"masked"}]}]}]}`},
		{"no item has a value: no value array", xmlHead + `<name><given id="a"/><given id="b"/></name></Patient>`,
			`{"resourceType":"Patient","name":[{"_given":[{"id":"a"},{"id":"b"}]}]}`},
		{"complex element id attribute", xmlHead + `<name id="n"><family value="F"/></name></Patient>`,
			`{"resourceType":"Patient","name":[{"id":"n","family":"F"}]}`},
		{"empty complex element", xmlHead + `<maritalStatus/></Patient>`,
			`{"resourceType":"Patient","maritalStatus":{}}`},
		{"content reference", `<Questionnaire xmlns="http://hl7.org/fhir"><status value="draft"/><item><linkId value="1"/><type value="group"/><item><linkId value="1.1"/><type value="string"/></item></item></Questionnaire>`,
			`{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"string"}]}]}`},
		{"contained", xmlHead + `<contained><Organization><id value="o"/></Organization></contained><contained><Practitioner><id value="p"/></Practitioner></contained></Patient>`,
			`{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o"},{"resourceType":"Practitioner","id":"p"}]}`},
		{"prefixed FHIR namespace", `<f:Patient xmlns:f="http://hl7.org/fhir"><f:active value="true"/></f:Patient>`,
			`{"resourceType":"Patient","active":true}`},
		{"comments, processing instructions and xsi ignored", "<?xml version=\"1.0\"?>\n<!-- c --><?pi x?>" + `<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="a b"><!-- c --><active value="true"/></Patient><!-- end -->`,
			`{"resourceType":"Patient","active":true}`},
		{"byte order mark", "\xef\xbb\xbf" + xmlHead + `<active value="true"/></Patient>`,
			`{"resourceType":"Patient","active":true}`},
		{"attribute value normalisation", xmlHead + "<name><text value=\"a\tb\r\nc\nd &#x9;&#xA;&#xD;\"/></name></Patient>",
			`{"resourceType":"Patient","name":[{"text":"a b c d \t\n\r"}]}`},
		{"entities and character references", xmlHead + `<name><text value="&lt;&amp;&gt;&quot;&apos;&#233;&#x1F600;"/></name></Patient>`,
			`{"resourceType":"Patient","name":[{"text":"<&>\"'é😀"}]}`},
		{"narrative kept as written", xmlHead + "<text><status value=\"generated\"/><div xmlns=\"http://www.w3.org/1999/xhtml\" class=\"c\">\r\n<p>&quot;x&quot; &#xE9;<br/><!-- note --></p></div></text></Patient>",
			`{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\" class=\"c\">\r\n<p>&quot;x&quot; &#xE9;<br/><!-- note --></p></div>"}}`},
		{"prefixed narrative serialised again", xmlHead + `<text><status value="generated"/><h:div xmlns:h="http://www.w3.org/1999/xhtml"><h:p title="&quot;t&quot;">a &amp; b<h:br/></h:p></h:div></text></Patient>`,
			`{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p title=\"&quot;t&quot;\">a &amp; b<br/></p></div>"}}`},
		{"narrative namespace declared on the root", `<Patient xmlns="http://hl7.org/fhir" xmlns:x="http://www.w3.org/1999/xhtml"><text><status value="generated"/><x:div xml:lang="en"><x:p>hi</x:p></x:div></text></Patient>`,
			`{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\"><p>hi</p></div>"}}`},
		{"narrative default namespace with an outer prefix", `<Patient xmlns="http://hl7.org/fhir" xmlns:o="urn:other"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p o:a="1">hi</p></div></text></Patient>`,
			`{"resourceType":"Patient","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p xmlns:a0=\"urn:other\" a0:a=\"1\">hi</p></div>"}}`},
		{"extension url attribute and nested extensions", xmlHead + `<extension url="a"><extension url="b"><valueString value="v"/></extension></extension></Patient>`,
			`{"resourceType":"Patient","extension":[{"url":"a","extension":[{"url":"b","valueString":"v"}]}]}`},
		{"elements out of documented order", xmlHead + `<gender value="male"/><id value="p"/></Patient>`,
			`{"resourceType":"Patient","gender":"male","id":"p"}`},
		{"repeats interleaved with other elements", xmlHead + `<name><given value="A"/><family value="F"/><given value="B"/></name></Patient>`,
			`{"resourceType":"Patient","name":[{"given":["A","B"],"family":"F"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeXML([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			want := mustDecode(t, tc.want)
			if d := treeDiff(want["resourceType"].(string), want, got); d != "" {
				t.Errorf("differs: %s", d)
			}
			// and back
			x, err := MarshalXML(got)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeXML(x)
			if err != nil {
				t.Fatalf("%v\n%s", err, x)
			}
			if d := treeDiff(want["resourceType"].(string), got, back); d != "" {
				t.Errorf("round trip differs: %s\n%s", d, x)
			}
		})
	}
}

func TestDecodeXMLErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // substrings of the message
	}{
		{"empty", ``, []string{"empty document"}},
		{"malformed", xmlHead + `<active value="true"></Patient>`, []string{"line 1", "Patient.active"}},
		{"mismatched end tag", xmlHead + `<name></given></Patient>`, []string{"<name> closed by </given>"}},
		{"unclosed", xmlHead + `<active value="true"/>`, []string{"unexpected end"}},
		{"undefined entity", xmlHead + `<name><text value="&nbsp;"/></name></Patient>`, []string{"entity"}},
		{"doctype", `<!DOCTYPE Patient [<!ENTITY x "y">]>` + xmlHead + `</Patient>`, []string{"document type declaration"}},
		{"no namespace", `<Patient><active value="true"/></Patient>`, []string{"not http://hl7.org/fhir"}},
		{"wrong namespace", `<Patient xmlns="http://hl7.org/fhir/v2"/>`, []string{"not http://hl7.org/fhir"}},
		{"child in another namespace", xmlHead + `<active xmlns="urn:x" value="true"/></Patient>`, []string{"Patient", `namespace "urn:x"`}},
		{"unbound prefix", xmlHead + `<x:active value="true"/></Patient>`, []string{"unbound namespace prefix"}},
		{"not a resource", `<HumanName xmlns="http://hl7.org/fhir"/>`, []string{"not a FHIR resource type"}},
		{"abstract resource", `<DomainResource xmlns="http://hl7.org/fhir"/>`, []string{"not a FHIR resource type"}},
		{"unknown element", xmlHead + "<name>\n<given value=\"A\"/>\n<nickname value=\"B\"/></name></Patient>", []string{"line 3, column 1", "Patient.name[0]: unknown element <nickname>"}},
		{"unknown choice type", xmlHead + `<deceasedString value="x"/></Patient>`, []string{"unknown element <deceasedString>"}},
		{"value attribute on a complex element", xmlHead + `<name value="x"/></Patient>`, []string{"Patient.name[0]", "value attribute is not allowed on <name>, a complex element"}},
		{"text in an element", xmlHead + `<active>true</active></Patient>`, []string{"Patient.active", "unexpected text"}},
		{"non-repeating element twice", xmlHead + `<gender value="male"/><gender value="female"/></Patient>`, []string{"Patient.gender", "more than once"}},
		{"bad boolean", xmlHead + `<active value="yes"/></Patient>`, []string{"Patient.active", "not true or false"}},
		{"bad decimal", `<Observation xmlns="http://hl7.org/fhir"><valueQuantity><value value="1."/></valueQuantity></Observation>`, []string{"Observation.valueQuantity.value", "not a number"}},
		{"plus sign integer", xmlHead + `<multipleBirthInteger value="+1"/></Patient>`, []string{"not a number"}},
		{"primitive without value", xmlHead + `<name><given value="A"/><given/></name></Patient>`, []string{"Patient.name[0].given[1]", "neither a value attribute nor extensions"}},
		{"element in a primitive", xmlHead + `<active value="true"><id value="x"/></active></Patient>`, []string{"not allowed in <active>"}},
		{"unknown attribute", xmlHead + `<active value="true" foo="1"/></Patient>`, []string{"unexpected attribute foo"}},
		{"attribute on the resource", `<Patient xmlns="http://hl7.org/fhir" id="p"/>`, []string{"unexpected attribute id"}},
		{"duplicate value attribute", xmlHead + `<active value="true" value="false"/></Patient>`, []string{"value"}},
		{"element id as an element", xmlHead + `<name><id value="x"/></name></Patient>`, []string{"Patient.name[0].id", "attribute"}},
		{"extension url as an element", xmlHead + `<extension><url value="x"/></extension></Patient>`, []string{"Patient.extension[0].url", "attribute"}},
		{"empty contained", xmlHead + `<contained/></Patient>`, []string{"Patient.contained[0]", "holds no resource"}},
		{"two resources in contained", xmlHead + `<contained><Basic/><Basic/></contained></Patient>`, []string{"more than one resource"}},
		{"contained not a resource", xmlHead + `<contained><HumanName/></contained></Patient>`, []string{"Patient.contained[0]", "not a FHIR resource type"}},
		{"narrative in the FHIR namespace", xmlHead + `<text><status value="generated"/><div/></text></Patient>`, []string{"Patient.text.div", "XHTML namespace"}},
		{"content after the root", xmlHead + `</Patient><Patient/>`, []string{"after the root"}},
		{"text after the root", xmlHead + `</Patient>x`, []string{"after the root"}},
		{"text before the root", `x` + xmlHead + `</Patient>`, []string{"before the root"}},
		{"too deep", `<Questionnaire xmlns="http://hl7.org/fhir">` + strings.Repeat("<item>", 300) + strings.Repeat("</item>", 300) + `</Questionnaire>`, []string{"nesting deeper than 256"}},
		{"non-UTF-8 encoding", `<?xml version="1.0" encoding="ISO-8859-1"?>` + xmlHead + `</Patient>`, []string{"ISO-8859-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeXML([]byte(tc.in))
			if err == nil {
				t.Fatalf("want an error, got %v", m)
			}
			var he *hale.Error
			if !errors.As(err, &he) || he.Kind != hale.KindInvalid {
				t.Fatalf("want *hale.Error of KindInvalid, got %T %v", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestMarshalXML(t *testing.T) {
	in := `{"resourceType":"Patient","gender":"male","_birthDate":{"extension":[{"valueString":"x","url":"http://x"}],"id":"b"},"name":[{"given":["A",null,"C"],"_given":[null,{"id":"g"},null],"family":"B","id":"n1"}],"id":"p1","contained":[{"name":"O","id":"o","resourceType":"Organization"}],"text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">a &amp; <b>b</b></div>","status":"generated"},"multipleBirthInteger":1.0e1,"address":[{"text":"l1\nl2 \"q\" <&>"}],"maritalStatus":{}}`
	out, err := MarshalXML(mustDecode(t, in))
	if err != nil {
		t.Fatal(err)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?><Patient xmlns="http://hl7.org/fhir"><id value="p1"/>` +
		`<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">a &amp; <b>b</b></div></text>` +
		`<contained><Organization><id value="o"/><name value="O"/></Organization></contained>` +
		`<name id="n1"><family value="B"/><given value="A"/><given id="g"/><given value="C"/></name>` +
		`<gender value="male"/><birthDate id="b"><extension url="http://x"><valueString value="x"/></extension></birthDate>` +
		`<address><text value="l1&#xA;l2 &quot;q&quot; &lt;&amp;&gt;"/></address><maritalStatus/>` +
		`<multipleBirthInteger value="1.0e1"/></Patient>`
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestMarshalXMLErrors(t *testing.T) {
	div := func(s string) string {
		return `{"resourceType":"Patient","text":{"status":"generated","div":` + strconv.Quote(s) + `}}`
	}
	tests := []struct {
		name, in string
		want     []string
	}{
		{"no resourceType", `{"id":"x"}`, []string{"missing resourceType"}},
		{"unknown resourceType", `{"resourceType":"Patients"}`, []string{`unknown resourceType "Patients"`}},
		{"unknown element", `{"resourceType":"Patient","name":[{"nick":"x"}]}`, []string{"Patient.name[0].nick", "unknown element"}},
		{"object for a primitive", `{"resourceType":"Patient","gender":{"x":1}}`, []string{"Patient.gender", "must not be an object"}},
		{"string for a complex element", `{"resourceType":"Patient","maritalStatus":"x"}`, []string{"Patient.maritalStatus", "must be an object"}},
		{"null item", `{"resourceType":"Patient","name":[{"given":["a",null]}]}`, []string{"Patient.name[0].given[1]", "null"}},
		{"misaligned companion", `{"resourceType":"Patient","name":[{"given":["a"],"_given":[null,{"id":"x"}]}]}`, []string{"different lengths"}},
		{"companion on a complex element", `{"resourceType":"Patient","_maritalStatus":{"id":"x"}}`, []string{"only primitive elements"}},
		{"control character", `{"resourceType":"Patient","gender":"a\u0001"}`, []string{"cannot represent"}},
		{"bad number", `{"resourceType":"Patient","multipleBirthInteger":1}`, nil}, // valid: control
		{"narrative not XHTML", div(`<div>x</div>`), []string{"Patient.text.div", "not one well-formed XHTML div"}},
		{"narrative malformed", div(`<div xmlns="http://www.w3.org/1999/xhtml"><p></div>`), []string{"not one well-formed"}},
		{"narrative with an HTML entity", div(`<div xmlns="http://www.w3.org/1999/xhtml">&nbsp;</div>`), []string{"not one well-formed"}},
		{"two roots in the narrative", div(`<div xmlns="http://www.w3.org/1999/xhtml"/><div xmlns="http://www.w3.org/1999/xhtml"/>`), []string{"content after the div"}},
		{"narrative with an undeclared prefix", div(`<div xmlns="http://www.w3.org/1999/xhtml"><x:p/></div>`), []string{"unbound namespace prefix"}},
		{"narrative with a declaration", div(`<?xml version="1.0"?><div xmlns="http://www.w3.org/1999/xhtml"/>`), []string{"does not start with <div"}},
		{"contained without resourceType", `{"resourceType":"Patient","contained":[{"id":"x"}]}`, []string{"missing resourceType"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MarshalXML(mustDecode(t, tc.in))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var he *hale.Error
			if !errors.As(err, &he) || he.Kind != hale.KindInvalid {
				t.Fatalf("want *hale.Error of KindInvalid, got %T %v", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := MarshalXML(map[string]any{"resourceType": "Patient", "multipleBirthInteger": json.Number("1.")}); !hale.IsKind(err, hale.KindInvalid) {
		t.Errorf("invalid json.Number: %v", err)
	}
}

// FuzzDecodeXML checks that DecodeXML never panics, that its errors are
// KindInvalid, and that what it accepts MarshalXML writes and DecodeXML
// reads back unchanged.
func FuzzDecodeXML(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "xml", "*.xml"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(xmlHead + `<name><given value="A"/><given id="b"/></name><text><status value="generated"/><h:div xmlns:h="http://www.w3.org/1999/xhtml"><h:p>x</h:p></h:div></text></Patient>`))
	f.Add([]byte(`<Bundle xmlns="http://hl7.org/fhir"><entry><resource><Parameters><parameter><name value="x"/><valueDecimal value="1.50"/></parameter></Parameters></resource></entry></Bundle>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeXML(data)
		if err != nil {
			if !hale.IsKind(err, hale.KindInvalid) {
				t.Fatalf("error of kind %v: %v", hale.ErrorKind(err), err)
			}
			return
		}
		x, err := MarshalXML(m)
		if err != nil {
			t.Fatalf("MarshalXML of a decoded document: %v", err)
		}
		back, err := DecodeXML(x)
		if err != nil {
			t.Fatalf("DecodeXML(MarshalXML): %v\n%s", err, x)
		}
		if d := treeDiff("", m, back); d != "" {
			t.Fatalf("round trip differs: %s", d)
		}
	})
}

// xmlCorpus returns the official R4 examples written as XML.
func xmlCorpus(tb testing.TB) [][]byte {
	var out [][]byte
	for _, f := range exampleFiles(tb) {
		res, err := Decode(mustRead(tb, f))
		if err != nil {
			tb.Fatal(err)
		}
		x, err := MarshalXML(res)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

// BenchmarkDecodeXML measures DecodeXML throughput (MB/s) over the
// official R4 examples written as XML.
func BenchmarkDecodeXML(b *testing.B) {
	docs := xmlCorpus(b)
	var size int64
	for _, d := range docs {
		size += int64(len(d))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, d := range docs {
			if _, err := DecodeXML(d); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkMarshalXML measures MarshalXML throughput (MB/s of XML written).
func BenchmarkMarshalXML(b *testing.B) {
	docs := xmlCorpus(b)
	var size int64
	trees := make([]map[string]any, len(docs))
	for i, d := range docs {
		size += int64(len(d))
		m, err := DecodeXML(d)
		if err != nil {
			b.Fatal(err)
		}
		trees[i] = m
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, m := range trees {
			if _, err := MarshalXML(m); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// canonicalDivs returns a copy of tree with every narrative div serialised
// again by serializeXHTML, so two spellings of the same XHTML compare equal.
//
// With collapse, runs of white space become one space and white space
// between tags is dropped.
func canonicalDivs(tb testing.TB, tree any, collapse bool) any {
	switch x := tree.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, v := range x {
			if s, ok := v.(string); ok && k == "div" {
				c, err := serializeXHTML([]byte(s), []nsBinding{{"xml", xmlNS}})
				if err != nil {
					tb.Fatalf("div: %v", err)
				}
				if collapse {
					c = strings.Join(strings.Fields(c), " ")
					c = strings.ReplaceAll(strings.ReplaceAll(c, "> ", ">"), " <", "<")
				}
				out[k] = c
				continue
			}
			out[k] = canonicalDivs(tb, v, collapse)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, v := range x {
			out[i] = canonicalDivs(tb, v, collapse)
		}
		return out
	}
	return tree
}

func hasPrefixIn(set map[string]bool, prefix string) bool {
	for k := range set {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// TestSyntheaXMLRoundTrip writes the Synthea set-a bundles (large
// transaction bundles with generated narratives) as XML and reads them back.
func TestSyntheaXMLRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bundles, _, files := syntheaResources(t)
	size := 0
	for i, b := range bundles {
		x, err := MarshalXML(b)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(files[i]), err)
		}
		size += len(x)
		back, err := DecodeXML(x)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(files[i]), err)
		}
		if d := treeDiff("Bundle", b, back); d != "" {
			t.Errorf("%s: DecodeXML(MarshalXML(x)) differs: %s", filepath.Base(files[i]), d)
		}
	}
	t.Logf("Synthea set-a bundles round-tripped through XML: %d (%d MB of XML)", len(bundles), size>>20)
}

// BenchmarkDecodeXMLSynthea measures DecodeXML over the Synthea set-a
// bundles written as XML.
func BenchmarkDecodeXMLSynthea(b *testing.B) {
	bundles, _, _ := syntheaResources(b)
	var docs [][]byte
	var size int64
	for _, m := range bundles {
		x, err := MarshalXML(m)
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, x)
		size += int64(len(x))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, d := range docs {
			if _, err := DecodeXML(d); err != nil {
				b.Fatal(err)
			}
		}
	}
}
