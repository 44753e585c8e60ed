package fhirpath

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
)

// mustLoad reads a resource from testdata.
func mustLoad(tb testing.TB, name string) map[string]any {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	m, err := fhir.Decode(data)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// mustEval evaluates expr against input and fails the test on an error.
func mustEval(tb testing.TB, expr string, input any, env *Env) Collection {
	tb.Helper()
	e, err := Compile(expr)
	if err != nil {
		tb.Fatalf("Compile(%q): %v", expr, err)
	}
	r, err := e.Evaluate(context.Background(), input, env)
	if err != nil {
		tb.Fatalf("Evaluate(%q): %v", expr, err)
	}
	return r
}

// show renders a result as FHIRPath literals, for table tests.
func show(r Collection) string {
	parts := make([]string, len(r))
	for i, it := range r {
		parts[i] = literal(it)
	}
	return strings.Join(parts, " | ")
}

func TestExpressions(t *testing.T) {
	pat := mustLoad(t, "patient.json")
	obs := mustLoad(t, "observation.json")
	tests := []struct {
		expr  string
		input map[string]any
		want  string
	}{
		{"0.1 + 0.2 = 0.3", nil, "true"},
		{"0.1 + 0.2", nil, "0.3"},
		{"1.10 * 3", nil, "3.30"},
		{"7 / 2", nil, "3.5"},
		{"7 div 2", nil, "3"},
		{"-7 mod 3", nil, "-1"},
		{"2.0 'cm' * 3 'cm'", nil, "6.0 'cm.cm'"},
		{"1 '[in_i]' = 2.54 'cm'", nil, "true"},
		{"1 '[lb_av]' = 453.59237 'g'", nil, "true"},
		{"1 'L' = 1000 'mL'", nil, "true"},
		{"1 'dL' = 100 'mL'", nil, "true"},
		{"1 'kg' > 999 'g'", nil, "true"},
		{"37 'Cel' = 98.6 '[degF]'", nil, "true"},
		{"120 'mm[Hg]' ~ 16 'kPa'", nil, "true"},
		{"1 'h' = 60 'min'", nil, "true"},
		{"1 'wk' = 7 'd'", nil, "true"},
		{"1 year = 12 months", nil, "true"},
		{"1 year = 1 'a'", nil, ""},
		{"1 'm' = 1 's'", nil, ""},
		// the units come from package ucum, the one table search uses too
		{"1 'a' = 12 'mo'", nil, "true"},
		{"1 'a' = 365.25 'd'", nil, "true"},
		{"1 '[mi_i]' = 1609.344 'm'", nil, "true"},
		{"140 'meq/L' = 140 'mmol/L'", nil, "true"},
		{"1 'U' = 1 'umol/min'", nil, "true"},
		{"4.5 '10*3/uL' = 4500 '/uL'", nil, "true"},
		{"1 'atm' = 101.325 'kPa'", nil, "true"},
		{"1 'kcal' = 1 '[Cal]'", nil, "true"},
		{"2 weeks = 14 'd'", nil, "true"},
		{"1 'furlong' = 1 'furlong'", nil, "true"},
		{"1 'furlong' = 1 'm'", nil, ""},
		{"5 'mg' + 1 'g'", nil, "1005 'mg'"},
		{"@2020-01-31 + 1 month", nil, "@2020-02-29"},
		{"@2020-02-29 + 1 year", nil, "@2021-02-28"},
		{"@2020-03-01T10:00:00Z - 1 day", nil, "@2020-02-29T10:00:00Z"},
		{"@T23:30 + 1 hour", nil, "@T00:30"},
		{"@2014-01 < @2014-02-01", nil, "true"},
		{"@2014-02 < @2014-02-01", nil, ""},
		{"@2012-04-15T15:00:00+02:00 = @2012-04-15T13:00:00Z", nil, "true"},
		{"'abc'.substring(1) & 'd'.upper()", nil, "bcD"},
		{"(1 | 2 | 2 | 3).count()", nil, "3"},
		{"Patient.name.given", pat, "Peter | James | Jim"},
		{"name.where(use = 'usual').given", pat, "Jim"},
		{"Patient.birthDate", pat, "@1974-12-25"},
		{"birthDate.extension(%`ext-patient-birthTime`).value", pat, "@1974-12-25T14:35:45-05:00"},
		{"name.given.where(extension('http://example.org/nick').exists())", pat, "Jim"},
		{"deceased", pat, "false"},
		{"deceased is boolean", pat, "true"},
		{"(deceased as boolean).not()", pat, "true"},
		{"managingOrganization.resolve().name", pat, "Ward 4"},
		{"gender.memberOf('http://hl7.org/fhir/ValueSet/administrative-gender')", pat, "true"},
		{"'unknown-code'.memberOf('http://hl7.org/fhir/ValueSet/administrative-gender')", nil, "false"},
		{"'x'.memberOf('http://example.org/vs')", nil, ""},
		{"Observation.value > 80 'kg'", obs, "true"},
		{"Observation.value < 90 'kg'", obs, "true"},
		{"(Observation.value as Quantity).value", obs, "185"},
		{"Observation.value.ofType(Quantity).code", obs, "[lb_av]"},
		{"Observation.effective > @2016-01-01", obs, "true"},
		{"Observation.code.coding.where(system = %loinc).code", obs, "29463-7"},
		{"Observation.conformsTo('http://hl7.org/fhir/StructureDefinition/Observation')", obs, "true"},
		{"%resource.id", pat, "p1"},
		{"descendants().ofType(Reference).count()", pat, "2"},
		{"children().count()", obs, "6"},
		{"'<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>ok</p></div>'.htmlChecks()", nil, "true"},
		{"'<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>x</script></div>'.htmlChecks()", nil, "false"},
		{"(1|2|3).aggregate($this + $total, 0)", nil, "6"},
		{"(3|1|2).sort()", nil, "1 | 2 | 3"},
		{"name.select($index)", pat, "0 | 1"},
		{"{}.exists()", nil, "false"},
		{"true and {}", nil, ""},
		{"false and {}", nil, "false"},
	}
	for _, tt := range tests {
		var input any
		if tt.input != nil {
			input = tt.input
		}
		got := show(mustEval(t, tt.expr, input, nil))
		if got != tt.want {
			t.Errorf("%s = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

func TestItemTypesAndLocations(t *testing.T) {
	pat := mustLoad(t, "patient.json")
	obs := mustLoad(t, "observation.json")
	tests := []struct {
		expr     string
		input    map[string]any
		typ, loc string
	}{
		{"Patient.name", pat, "FHIR.HumanName", "Patient.name[0]"},
		{"Patient.name.given[1]", pat, "FHIR.string", "Patient.name[0].given[1]"},
		{"Patient.birthDate", pat, "FHIR.date", "Patient.birthDate"},
		{"Patient.id", pat, "FHIR.id", "Patient.id"},
		{"Patient.contained.name", pat, "FHIR.string", "Patient.contained[0].name"},
		{"Patient.contained", pat, "FHIR.Organization", "Patient.contained[0]"},
		{"Patient.identifier.value", pat, "FHIR.string", "Patient.identifier[0].value"},
		{"Observation.value", obs, "FHIR.Quantity", "Observation.valueQuantity"},
		{"Observation.status", obs, "FHIR.code", "Observation.status"},
		{"Observation.effective", obs, "FHIR.dateTime", "Observation.effectiveDateTime"},
		{"1 + 1", nil, "System.Integer", ""},
		{"Observation.value.value + 1", obs, "System.Decimal", ""},
		{"Patient.birthDate.toString()", pat, "System.String", ""},
		{"today()", nil, "System.Date", ""},
	}
	for _, tt := range tests {
		var input any
		if tt.input != nil {
			input = tt.input
		}
		r := mustEval(t, tt.expr, input, nil)
		if len(r) == 0 {
			t.Errorf("%s: empty", tt.expr)
			continue
		}
		if got := r[0].TypeName(); got != tt.typ {
			t.Errorf("%s: type %s, want %s", tt.expr, got, tt.typ)
		}
		if got := r[0].Location(); got != tt.loc {
			t.Errorf("%s: location %q, want %q", tt.expr, got, tt.loc)
		}
	}
}

func TestValues(t *testing.T) {
	obs := mustLoad(t, "observation.json")
	r := mustEval(t, "Observation.value", obs, nil)
	q, ok := r[0].Value().(map[string]any)
	if !ok || q["unit"] != "lbs" {
		t.Errorf("Value() of a FHIR Quantity = %#v", r[0].Value())
	}
	r = mustEval(t, "Observation.value.value", obs, nil)
	if d, ok := r[0].Value().(Decimal); !ok || d.String() != "185" {
		t.Errorf("Value() = %#v", r[0].Value())
	}
	r = mustEval(t, "Observation.effective", obs, nil)
	dt, ok := r[0].Value().(DateTime)
	if !ok || dt.Year != 2016 || dt.TZ != 60 || dt.Precision != PrecisionSecond {
		t.Errorf("Value() = %#v", r[0].Value())
	}
	out, _ := json.Marshal([]any{
		mustEval(t, "Observation.effective", obs, nil)[0].JSON(),
		mustEval(t, "2.50 'mg'", nil, nil)[0].JSON(),
		mustEval(t, "@2015-02-04", nil, nil)[0].JSON(),
		mustEval(t, "@T14:34", nil, nil)[0].JSON(),
		mustEval(t, "1.50", nil, nil)[0].JSON(),
	})
	want := `["@2016-03-28T09:30:10+01:00",{"unit":"mg","value":2.50},"@2015-02-04","@T14:34",1.50]`
	if string(out) != want {
		t.Errorf("JSON() = %s, want %s", out, want)
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		expr  string
		pos   int
		class string
	}{
		{"name.where(", 11, ClassSyntax},
		{"name.given +", 12, ClassSyntax},
		{"'abc", 0, ClassSyntax},
		{"name.foo()", 5, ClassSemantic},
		{"name.substring()", 5, ClassSemantic},
		{"@2015-13-01", 0, ClassSyntax},
	} {
		_, err := Parse(tt.expr)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) = %v, want *Error", tt.expr, err)
			continue
		}
		if e.Pos != tt.pos || e.Class != tt.class {
			t.Errorf("Parse(%q): pos %d class %s, want %d %s (%v)", tt.expr, e.Pos, e.Class, tt.pos, tt.class, err)
		}
		if hale.ErrorKind(err) != hale.KindInvalid {
			t.Errorf("Parse(%q): kind %v", tt.expr, hale.ErrorKind(err))
		}
	}
	pat := mustLoad(t, "patient.json")
	e := MustParse("name.given.single()")
	_, err := e.Evaluate(context.Background(), pat, nil)
	var fe *Error
	if !errors.As(err, &fe) || fe.Class != ClassExecution || fe.Pos != 11 {
		t.Errorf("single() on many: %v", err)
	}
	if _, err := MustParse("name.given1").Evaluate(context.Background(), pat, &Env{Strict: true}); err == nil {
		t.Error("Strict: an unknown element is not an error")
	}
	if r, err := MustParse("name.given1").Evaluate(context.Background(), pat, nil); err != nil || len(r) != 0 {
		t.Errorf("an unknown element: %v %v", r, err)
	}
	if _, err := MustParse("%undefined").Evaluate(context.Background(), pat, nil); err == nil {
		t.Error("an unknown variable is not an error")
	}
}

func TestEnv(t *testing.T) {
	pat := mustLoad(t, "patient.json")
	fixed := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	env := &Env{
		Now:  func() time.Time { return fixed },
		Vars: map[string]any{"limit": 2, "names": []any{"Peter", "Paul"}},
		Resolver: ResolverFunc(func(_ context.Context, ref string) (map[string]any, error) {
			if ref == "Practitioner/pr1" {
				return map[string]any{"resourceType": "Practitioner", "id": "pr1", "active": true}, nil
			}
			return nil, nil
		}),
	}
	var traced []string
	env.Trace = func(name string, c Collection) { traced = append(traced, name) }
	for expr, want := range map[string]string{
		"today()":                              "@2024-05-06",
		"now()":                                "@2024-05-06T07:08:09.000Z",
		"name.given.take(%limit)":              "Peter | James",
		"name.given.where($this in %names)":    "Peter",
		"generalPractitioner.resolve().active": "true",
		"generalPractitioner.resolve().is(Practitioner)": "true",
		"name.given.trace('g').count()":                  "3",
	} {
		if got := show(mustEval(t, expr, pat, env)); got != want {
			t.Errorf("%s = %q, want %q", expr, got, want)
		}
	}
	if len(traced) != 1 || traced[0] != "g" {
		t.Errorf("trace: %v", traced)
	}
	failing := &Env{Resolver: ResolverFunc(func(context.Context, string) (map[string]any, error) {
		return nil, hale.Errorf(hale.KindInternal, "store down")
	})}
	_, err := MustParse("generalPractitioner.resolve()").Evaluate(context.Background(), pat, failing)
	if err == nil || hale.ErrorKind(err) != hale.KindInternal {
		t.Errorf("resolver failure: %v (kind %v)", err, hale.ErrorKind(err))
	}
}

func TestResolveInBundle(t *testing.T) {
	bundle := map[string]any{
		"resourceType": "Bundle", "type": "collection",
		"entry": []any{
			map[string]any{"fullUrl": "http://example.org/fhir/Patient/p1", "resource": map[string]any{"resourceType": "Patient", "id": "p1", "gender": "female"}},
			map[string]any{"fullUrl": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", "resource": map[string]any{"resourceType": "Observation", "id": "o1", "status": "final",
				"subject": map[string]any{"reference": "Patient/p1"}, "code": map[string]any{"text": "x"}}},
			map[string]any{"fullUrl": "urn:uuid:9d2b6a5e-0000-4000-8000-000000000001", "resource": map[string]any{"resourceType": "Observation", "id": "o2", "status": "final",
				"subject": map[string]any{"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"}, "code": map[string]any{"text": "y"}}},
		},
	}
	r := mustEval(t, "Bundle.entry.resource.ofType(Observation).subject.resolve()", bundle, nil)
	if len(r) != 2 || r[0].TypeName() != "FHIR.Patient" || r[1].TypeName() != "FHIR.Observation" {
		t.Fatalf("resolve in a bundle: %s", formatResult(r))
	}
	if got := r[0].Location(); got != "Bundle.entry[0].resource" {
		t.Errorf("location of a resolved entry: %s", got)
	}
}

func TestEvaluateBool(t *testing.T) {
	pat := mustLoad(t, "patient.json")
	for expr, want := range map[string]string{
		"name.exists()":     "true",
		"gender = 'female'": "false",
		"{}":                "nil",
		"photo.exists().not() or photo.url.exists()": "true",
	} {
		b, err := MustParse(expr).EvaluateBool(context.Background(), pat, nil)
		got := "nil"
		if err != nil {
			got = err.Error()
		} else if b != nil {
			got = map[bool]string{true: "true", false: "false"}[*b]
		}
		if got != want {
			t.Errorf("EvaluateBool(%s) = %s, want %s", expr, got, want)
		}
	}
	if _, err := MustParse("name.given").EvaluateBool(context.Background(), pat, nil); err == nil {
		t.Error("EvaluateBool on several items is not an error")
	}
}

func TestCompileCache(t *testing.T) {
	a, err := Compile("Patient.name.given.first()")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Compile("Patient.name.given.first()")
	if a != b {
		t.Error("Compile did not reuse the compiled expression")
	}
	c := newLRU(2)
	c.put("a", a)
	c.put("b", b)
	c.get("a")
	c.put("c", a)
	if c.len() != 2 || c.get("b") != nil || c.get("a") == nil {
		t.Error("the LRU did not evict the least recently used entry")
	}
}
