package search

import (
	"fmt"
	"sort"

	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/fhirpath"
)

// Custom search parameters (searchparameter.html): a SearchParameter
// resource stored with status active adds a parameter to the types in its
// base. New writes index it at once; resources stored before need a
// reindex (`hale reindex`). A custom parameter cannot replace a built-in
// one of the same code.

// CustomParams reads a SearchParameter resource and returns the
// parameter it defines, or an error saying why it cannot be used.
func CustomParams(res map[string]any) (*fhir.SearchParam, error) {
	str := func(k string) string { s, _ := res[k].(string); return s }
	sp := &fhir.SearchParam{Code: str("code"), Type: str("type"), Expression: str("expression"), URL: str("url")}
	switch sp.Type {
	case "number", "date", "string", "token", "reference", "quantity", "uri":
	default:
		return nil, fmt.Errorf("SearchParameter.type %q: Hale indexes number, date, string, token, reference, quantity and uri parameters", sp.Type)
	}
	if sp.Code == "" || !isIdentLike(sp.Code) {
		return nil, fmt.Errorf("SearchParameter.code %q is not a usable parameter name", sp.Code)
	}
	if sp.Expression == "" {
		return nil, fmt.Errorf("SearchParameter.expression is missing")
	}
	if _, err := fhirpath.Compile(sp.Expression); err != nil {
		return nil, fmt.Errorf("SearchParameter.expression: %v", err)
	}
	bases, _ := res["base"].([]any)
	for _, b := range bases {
		t, _ := b.(string)
		if !fhir.IsResourceType(t) {
			return nil, fmt.Errorf("SearchParameter.base %q is not a resource type", t)
		}
		sp.Base = append(sp.Base, t)
	}
	if len(sp.Base) == 0 {
		return nil, fmt.Errorf("SearchParameter.base is missing")
	}
	if targets, ok := res["target"].([]any); ok {
		for _, x := range targets {
			if t, _ := x.(string); t != "" {
				sp.Target = append(sp.Target, t)
			}
		}
	}
	return sp, nil
}

func isIdentLike(s string) bool {
	for i, r := range s {
		if !(r == '-' || r == '_' && i > 0 || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// SetCustom replaces the custom parameters with those of the active
// SearchParameter resources given, and returns why any could not be used
// (keyed by resource id or url).
func (r *Registry) SetCustom(resources []map[string]any) map[string]error {
	problems := map[string]error{}
	next := map[string][]*fhir.SearchParam{}
	for _, res := range resources {
		if res["status"] != "active" {
			continue
		}
		name, _ := res["url"].(string)
		if id, _ := res["id"].(string); name == "" {
			name = id
		}
		sp, err := CustomParams(res)
		if err != nil {
			problems[name] = err
			continue
		}
		for _, t := range sp.Base {
			if fhir.LookupSearchParam(t, sp.Code) != nil {
				problems[name] = fmt.Errorf("%s already has a built-in parameter %q", t, sp.Code)
				continue
			}
			next[t] = append(next[t], sp)
		}
	}
	for _, ps := range next {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Code < ps[j].Code })
	}
	r.mu.Lock()
	r.custom = next
	r.cache = map[string][]param{}
	r.mu.Unlock()
	return problems
}
