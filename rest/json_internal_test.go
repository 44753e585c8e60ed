package rest

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestAppendJSON: the direct encoder writes exactly what encoding/json
// (without HTML escaping, compacted) writes for the same value.
func TestAppendJSON(t *testing.T) {
	stored := json.RawMessage(`{"resourceType":"Patient","id":"1","text":{"div":"<div>a & b</div>"}}`)
	for _, v := range []any{
		obj{{"resourceType", "Bundle"}, {"total", int64(3)}, {"skipped", nil}, {"ok", true}, {"n", 7}},
		obj{{"entry", []any{obj{{"resource", stored}, {"search", obj{{"mode", "match"}}}}, nil, "x"}}},
		obj{{"list", []obj{{{"a", "b"}}, {}}}, {"empty", []any{}}, {"raw", json.RawMessage(nil)}},
		"plain", "quote \" and \\ backslash", "tab\tnewline\n\x01", "<b>&amp;</b>", "é ü 東京",
		"line\u2028separator\u2029", "bad \xff utf-8", "",
		map[string]any{"z": 1.5, "a": []any{"<x>", nil}}, 3.25, false,
		obj{{"meta", map[string]any{"k": obj{{"nested", "obj"}}}}},
	} {
		got, err := appendJSON(nil, v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		w := bytes.TrimSuffix(want.Bytes(), []byte{'\n'})
		if !bytes.Equal(got, w) {
			t.Errorf("%#v:\n got %s\nwant %s", v, got, w)
		}
		if !json.Valid(got) {
			t.Errorf("%#v: not valid JSON: %s", v, got)
		}
	}
}
