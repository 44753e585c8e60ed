package fhir

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
)

func TestDecode(t *testing.T) {
	m, err := Decode([]byte(`{"resourceType":"Observation","valueQuantity":{"value":1.50,"big":12345678901234567890.000001},"a":[true,false,null],"s":"\u00e9\ud83d\ude00\n"}`))
	if err != nil {
		t.Fatal(err)
	}
	q := m["valueQuantity"].(map[string]any)
	if q["value"] != json.Number("1.50") || q["big"] != json.Number("12345678901234567890.000001") {
		t.Errorf("numbers not kept verbatim: %#v", q)
	}
	if !reflect.DeepEqual(m["a"], []any{true, false, nil}) {
		t.Errorf("array: %#v", m["a"])
	}
	if m["s"] != "é😀\n" {
		t.Errorf("string: %q", m["s"])
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", ``, "empty document"},
		{"top-level array", `[{"resourceType":"Patient"}]`, "must be a JSON object"},
		{"top-level string", `"x"`, "must be a JSON object"},
		{"trailing data", `{"resourceType":"Patient"} {}`, "after the top-level object"},
		{"trailing garbage", `{"resourceType":"Patient"}x`, "after the top-level object"},
		{"duplicate key", "{\"resourceType\":\"Patient\",\n \"id\":\"1\",\n \"id\":\"2\"}", "line 3, column 2"},
		{"nested duplicate key", `{"a":{"b":1,"b":2}}`, `duplicate key "b"`},
		{"unterminated", `{"a":"b`, "unterminated string"},
		{"bad literal", `{"a":tru}`, "invalid literal"},
		{"leading zero", `{"a":01}`, "expected ',' or '}'"},
		{"plus sign", `{"a":+1}`, "unexpected character"},
		{"bare fraction", `{"a":1.}`, "invalid number"},
		{"control char", "{\"a\":\"x\ty\"}", "control character"},
		{"bad escape", `{"a":"\x"}`, "invalid escape"},
		{"invalid utf8", "{\"a\":\"\xff\"}", "invalid UTF-8"},
		{"trailing comma", `{"a":1,}`, "expected a string for an object key"},
		{"too deep", `{"a":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + `}`, "nesting deeper"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			if err == nil {
				t.Fatal("want error")
			}
			var he *hale.Error
			if !errors.As(err, &he) || he.Kind != hale.KindInvalid {
				t.Fatalf("want *hale.Error of KindInvalid, got %T %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestMarshalOrder(t *testing.T) {
	in := `{"zzz":1,"gender":"male","_birthDate":{"extension":[{"valueString":"x","url":"http://x"}],"id":"b"},"birthDate":"2000-01-01","name":[{"given":["A"],"family":"B","use":"official"}],"meta":{"versionId":"1"},"id":"p1","contained":[{"name":"O","id":"o","resourceType":"Organization"}],"text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">a &amp; <b>b</b></div>","status":"generated"},"resourceType":"Patient","multipleBirthInteger":1.0e1,"aaa":{"y":1,"x":2}}`
	out, err := Marshal(mustDecode(t, in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Patient","id":"p1","meta":{"versionId":"1"},"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">a &amp; <b>b</b></div>"},"contained":[{"resourceType":"Organization","id":"o","name":"O"}],"name":[{"use":"official","family":"B","given":["A"]}],"gender":"male","birthDate":"2000-01-01","_birthDate":{"id":"b","extension":[{"url":"http://x","valueString":"x"}]},"multipleBirthInteger":1.0e1,"aaa":{"x":2,"y":1},"zzz":1}`
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestMarshalBundle(t *testing.T) {
	in := `{"type":"collection","resourceType":"Bundle","entry":[{"resource":{"status":"final","resourceType":"Observation","code":{"text":"x"}},"fullUrl":"urn:uuid:1","response":{"outcome":{"issue":[{"code":"informational","severity":"information"}],"resourceType":"OperationOutcome"},"status":"200"}}]}`
	out, err := Marshal(mustDecode(t, in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Observation","status":"final","code":{"text":"x"}},"response":{"status":"200","outcome":{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}}}]}`
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestMarshalValues(t *testing.T) {
	out, err := Marshal(map[string]any{"resourceType": "Basic", "x": []string{"a"}, "f": 1.5, "n": 3, "s": "\u2028<\x01"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"resourceType":"Basic","f":1.5,"n":3,"s":"\u2028<\u0001","x":["a"]}`; string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
	if _, err := Marshal(map[string]any{"resourceType": "Basic", "x": json.Number("1.2.3")}); !hale.IsKind(err, hale.KindInvalid) {
		t.Errorf("invalid json.Number: got %v", err)
	}
}

// TestRoundTripFixtures checks Marshal(Decode(x)) == x as trees, and that
// Marshal is stable.
func TestRoundTripFixtures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res := mustDecode(t, string(data))
		out, err := Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		back := mustDecode(t, string(out))
		if !reflect.DeepEqual(res, back) {
			t.Errorf("%s: round trip differs", f)
		}
		again, _ := Marshal(back)
		if string(again) != string(out) {
			t.Errorf("%s: Marshal not stable", f)
		}
	}
}

func FuzzDecodeValidate(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"resourceType":"Patient","name":[{"given":["a",null],"_given":[null,{"id":"x"}]}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","contained":[{}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Decode(data)
		if err != nil {
			return
		}
		_ = Validate(res)
		out, err := Marshal(res)
		if err != nil {
			return
		}
		back, err := Decode(out)
		if err != nil {
			t.Fatalf("Marshal output does not decode: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(res, back) {
			t.Fatalf("round trip differs:\n%s", out)
		}
	})
}
