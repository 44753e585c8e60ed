package rest

import (
	"github.com/hale-ehr/hale/fhir"
)

// subsetted is the tag a server puts on a resource it did not return whole
// (search.html#summary, _elements).
var subsetted = map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}

// summarize applies _summary (true, text, data) or _elements to a decoded
// resource and returns the subset, tagged SUBSETTED.
func summarize(res map[string]any, summary string, elements []string) map[string]any {
	typ, _ := res["resourceType"].(string)
	td := fhir.TypeDefinition(typ)
	if td == nil {
		return res
	}
	keep := func(name string) bool { return false }
	switch {
	case len(elements) > 0:
		want := map[string]bool{}
		for _, e := range elements {
			want[e] = true
		}
		keep = func(name string) bool { return want[name] || mandatory(td, typ, name) }
	case summary == "true":
		keep = func(name string) bool {
			el, _, ok := td.Child(typ, name)
			return ok && (el.IsSummary || el.Min > 0)
		}
	case summary == "text":
		keep = func(name string) bool { return name == "text" || mandatory(td, typ, name) }
	case summary == "data":
		keep = func(name string) bool { return name != "text" }
	default:
		return res
	}
	out := map[string]any{}
	for k, v := range res {
		base := k
		if len(k) > 1 && k[0] == '_' {
			base = k[1:]
		}
		if k == "resourceType" || k == "id" || k == "meta" || keep(base) {
			out[k] = v
		}
	}
	meta, _ := out["meta"].(map[string]any)
	m := map[string]any{}
	for k, v := range meta {
		m[k] = v
	}
	tags, _ := m["tag"].([]any)
	m["tag"] = append(append([]any(nil), tags...), subsetted)
	out["meta"] = m
	return out
}

func mandatory(td *fhir.TypeDef, typ, name string) bool {
	el, _, ok := td.Child(typ, name)
	return ok && el.Min > 0
}
