package fhir

import (
	"sort"
	"strings"
)

// SearchParam is a search parameter of FHIR R4 core or US Core, as it
// applies to one resource type.
//
// Modifiers: the R4 SearchParameter resources leave modifier empty, so the
// generator fills in the modifiers R4 defines for the parameter's type
// (search.html#modifiers), e.g. token: missing, text, not, above, below,
// in, not-in, of-type.
type SearchParam struct {
	Code string // e.g. "identifier"
	Type string // number|date|string|token|reference|composite|quantity|uri|special
	// Expression is the FHIRPath expression restricted to the resource
	// type the parameter was asked for: the parts of an official union
	// over several types that name this type, joined with " | ". For the
	// parameters defined on Resource and DomainResource (_id,
	// _lastUpdated, …) the leading "Resource." is replaced by the type
	// name, e.g. "Patient.meta.lastUpdated". "" when the specification
	// gives none (_text, _content, _query).
	Expression  string
	Target      []string               // allowed target types, for references
	Components  []SearchParamComponent // for composite parameters
	Modifiers   []string
	Comparators []string
	URL         string
	Base        []string // the resource types the definition names
}

// SearchParamComponent is one part of a composite search parameter.
type SearchParamComponent struct {
	Definition string // URL of the component's SearchParameter
	Expression string // FHIRPath relative to the composite's expression
}

func (r *registry) loadSearchParams(wire []wireSearchParam) {
	r.params = map[string][]*SearchParam{}
	r.paramByCode = map[string]map[string]*SearchParam{}
	add := func(typ string, p *SearchParam) {
		m := r.paramByCode[typ]
		if m == nil {
			m = map[string]*SearchParam{}
			r.paramByCode[typ] = m
		}
		if _, dup := m[p.Code]; dup {
			return
		}
		m[p.Code] = p
		r.params[typ] = append(r.params[typ], p)
	}
	for _, w := range wire {
		base := &SearchParam{
			Code: w.Code, Type: w.Type, URL: w.URL, Base: w.Base,
			Target: w.Target, Modifiers: w.Modifiers, Comparators: w.Comparators,
		}
		for _, c := range w.Components {
			base.Components = append(base.Components, SearchParamComponent{Definition: c.Definition, Expression: c.Expression})
		}
		for _, b := range w.Base {
			if b == "Resource" || b == "DomainResource" {
				for _, t := range resourceTypeNames {
					if b == "DomainResource" && !isDomainResource(r, t) {
						continue
					}
					p := *base
					if x := w.Expression[b]; x != "" {
						p.Expression = retarget(x, b, t)
					}
					add(t, &p)
				}
				continue
			}
			p := *base
			p.Expression = w.Expression[b]
			add(b, &p)
		}
	}
	for _, ps := range r.params {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Code < ps[j].Code })
	}
}

func isDomainResource(r *registry, typ string) bool {
	for t := r.types[typ]; t != nil; t = r.types[t.Base] {
		if t.Name == "DomainResource" {
			return true
		}
	}
	return false
}

// retarget rewrites each union part "Resource.x" of expr to "Type.x".
func retarget(expr, from, to string) string {
	parts := strings.Split(expr, " | ")
	for i, p := range parts {
		if strings.HasPrefix(p, from+".") {
			parts[i] = to + p[len(from):]
		}
	}
	return strings.Join(parts, " | ")
}

// SearchParams returns every search parameter that applies to the
// resource type, those defined on Resource and DomainResource included
// (_id, _lastUpdated, _tag, _profile, _security, _source, _text, _content,
// _query) and the US Core additions (e.g. Patient race, ethnicity), sorted
// by code. Where US Core and core both define a code for a type, core's is
// kept. Returns nil for an unknown type. The result is shared: do not
// modify it.
func SearchParams(resourceType string) []*SearchParam {
	return defs().params[resourceType]
}

// LookupSearchParam returns the search parameter code of the resource
// type, or nil if there is none.
func LookupSearchParam(resourceType, code string) *SearchParam {
	return defs().paramByCode[resourceType][code]
}

// CompartmentParams returns the search parameters that link a resource of
// the given type to a compartment, e.g. ("Patient", "Observation") ->
// ["subject", "performer"]. It returns nil when resources of that type are
// not in the compartment. Only the Patient compartment is defined.
func CompartmentParams(compartment, resourceType string) []string {
	ps := defs().compartments[compartment][resourceType]
	if len(ps) == 0 {
		return nil
	}
	return append([]string(nil), ps...)
}
