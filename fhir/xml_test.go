package fhir

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
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
		for _, d := range treeDiffs(want["resourceType"].(string), want, res) {
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
