// Package search turns FHIR search parameters into index rows on write and
// into store matches on read.
//
// This is the part of search the core interactions need (conditional
// create, update and delete, conditional references in transactions and a
// basic type search): _id, and token, string and reference parameters whose
// expressions use the simple FHIRPath subset in path.go. The full search
// engine (search.html) builds on it.
package search

import (
	"encoding/json"
	"strings"
	"sync"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
)

// param is a search parameter Hale indexes, with its compiled paths.
type param struct {
	def   *fhir.SearchParam
	paths []compiledPath
}

var (
	registryMu sync.Mutex
	registry   = map[string][]param{}
)

// indexed returns the parameters of resourceType that Hale indexes.
func indexed(resourceType string) []param {
	registryMu.Lock()
	defer registryMu.Unlock()
	if ps, ok := registry[resourceType]; ok {
		return ps
	}
	var ps []param
	for _, sp := range fhir.SearchParams(resourceType) {
		if sp.Type != "token" && sp.Type != "string" && sp.Type != "reference" {
			continue
		}
		if p, ok := compileParam(resourceType, sp); ok {
			ps = append(ps, p)
		}
	}
	registry[resourceType] = ps
	return ps
}

func compileParam(resourceType string, sp *fhir.SearchParam) (param, bool) {
	if sp.Expression == "" {
		return param{}, false
	}
	p := param{def: sp}
	for _, member := range strings.Split(sp.Expression, "|") {
		cp, ok := compile(member)
		if !ok {
			return param{}, false
		}
		if cp.root != resourceType && cp.root != "Resource" && cp.root != "DomainResource" {
			continue
		}
		p.paths = append(p.paths, cp)
	}
	return p, len(p.paths) > 0
}

// Supported reports whether Hale can search resourceType by the parameter
// code (without modifier).
func Supported(resourceType, code string) bool {
	if code == "_id" {
		return true
	}
	return lookup(resourceType, code) != nil
}

// SupportedParams lists the indexed parameters of resourceType, for the
// CapabilityStatement.
func SupportedParams(resourceType string) []*fhir.SearchParam {
	var out []*fhir.SearchParam
	for _, p := range indexed(resourceType) {
		out = append(out, p.def)
	}
	return out
}

func lookup(resourceType, code string) *param {
	ps := indexed(resourceType)
	for i := range ps {
		if ps[i].def.Code == code {
			return &ps[i]
		}
	}
	return nil
}

// MaxTokenLen is the longest token system or code, and the longest
// reference, that is indexed. Longer values (a pasted document in an
// identifier, say) are stored with the resource but not searchable by
// that value: PostgreSQL cannot put entries over about 2.7 KB in a B-tree
// index, and no real code or identifier comes close.
const MaxTokenLen = 1024

// Extract computes the index rows of one resource.
func Extract(resourceType string, res map[string]any) *hale.Index {
	idx := &hale.Index{}
	for _, p := range indexed(resourceType) {
		for _, cp := range p.paths {
			for _, n := range cp.eval(res) {
				switch p.def.Type {
				case "token":
					addTokens(idx, p.def.Code, n)
				case "string":
					addStrings(idx, p.def.Code, n.v)
				case "reference":
					addReference(idx, p.def.Code, n)
				}
			}
		}
	}
	dedupe(idx)
	return idx
}

func addTokens(idx *hale.Index, code string, n node) {
	add := func(system, value string) {
		if len(system) > MaxTokenLen || len(value) > MaxTokenLen {
			return // see MaxTokenLen
		}
		if value != "" || system != "" {
			idx.Tokens = append(idx.Tokens, hale.TokenValue{Param: code, System: system, Code: value})
		}
	}
	switch v := n.v.(type) {
	case string:
		add("", v)
	case bool:
		if v {
			add("", "true")
		} else {
			add("", "false")
		}
	case json.Number:
		add("", v.String())
	case map[string]any:
		if codings, ok := v["coding"].([]any); ok { // CodeableConcept
			for _, c := range codings {
				if cm, ok := c.(map[string]any); ok {
					add(str(cm["system"]), str(cm["code"]))
				}
			}
			return
		}
		if c, ok := v["code"].(string); ok { // Coding, Quantity
			add(str(v["system"]), c)
			return
		}
		if val, ok := v["value"].(string); ok { // Identifier, ContactPoint
			add(str(v["system"]), val)
		}
	}
}

// stringKeys are the parts of HumanName and Address that string search
// matches (search.html#string).
var stringKeys = []string{"text", "family", "given", "prefix", "suffix", "line", "city", "district", "state", "postalCode", "country"}

func addStrings(idx *hale.Index, code string, v any) {
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			idx.Strings = append(idx.Strings, hale.StringValue{Param: code, Norm: Fold(s), Exact: s})
		}
	}
	switch v := v.(type) {
	case string:
		add(v)
	case map[string]any:
		for _, k := range stringKeys {
			switch x := v[k].(type) {
			case string:
				add(x)
			case []any:
				for _, e := range x {
					if s, ok := e.(string); ok {
						add(s)
					}
				}
			}
		}
	}
}

func addReference(idx *hale.Index, code string, n node) {
	var ref string
	switch v := n.v.(type) {
	case string: // canonical, uri
		ref = v
	case map[string]any:
		ref = str(v["reference"])
	}
	if ref == "" || strings.HasPrefix(ref, "#") {
		return
	}
	if len(ref) > MaxTokenLen {
		return // see MaxTokenLen
	}
	rv := hale.ReferenceValue{Param: code, URL: ref}
	if t, id, ok := ParseLocalReference(ref); ok {
		if n.filter != "" && n.filter != t {
			return
		}
		rv.TargetType, rv.TargetID = t, id
	} else if n.filter != "" {
		return
	}
	idx.References = append(idx.References, rv)
}

// ParseLocalReference splits a relative reference "Type/id" or
// "Type/id/_history/n" into type and id.
func ParseLocalReference(ref string) (typ, id string, ok bool) {
	parts := strings.Split(ref, "/")
	if len(parts) != 2 && !(len(parts) == 4 && parts[2] == "_history") {
		return "", "", false
	}
	if !fhir.IsResourceType(parts[0]) || !ValidID(parts[1]) {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// ValidID reports whether s is a valid FHIR id: [A-Za-z0-9\-\.]{1,64}.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// dedupe removes repeated rows (the same identifier listed twice, a name
// reached through two paths).
func dedupe(idx *hale.Index) {
	idx.Tokens = uniq(idx.Tokens)
	idx.Strings = uniq(idx.Strings)
	idx.References = uniq(idx.References)
}

func uniq[T comparable](xs []T) []T {
	if len(xs) < 2 {
		return xs
	}
	seen := make(map[T]bool, len(xs))
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
