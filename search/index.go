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
	"context"
	"encoding/json"
	"html"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/fhirpath"
)

// param is a search parameter Hale indexes, with its compiled FHIRPath
// expression.
type param struct {
	def  *fhir.SearchParam
	typ  hale.ParamType
	expr *fhirpath.Expression
	// components of a composite parameter, each with its own type and
	// paths relative to the element the composite's paths select.
	components []component
}

type component struct {
	typ  hale.ParamType
	expr *fhirpath.Expression
}

// Registry is the set of search parameters of one store: the built-in R4
// and US Core ones, plus the custom ones its SearchParameter resources
// define (custom.go). The zero Registry is not usable; use NewRegistry.
type Registry struct {
	mu     sync.Mutex
	custom map[string][]*fhir.SearchParam // by resource type
	cache  map[string][]param             // compiled, by resource type
}

// NewRegistry returns a registry with the built-in parameters only.
func NewRegistry() *Registry {
	return &Registry{custom: map[string][]*fhir.SearchParam{}, cache: map[string][]param{}}
}

// Default is the registry of the package-level functions.
var Default = NewRegistry()

var (
	builtinMu sync.Mutex
	builtin   = map[string][]param{} // compiled built-in parameters, shared by every registry
	byURL     map[string]*fhir.SearchParam
)

func builtinParams(resourceType string) []param {
	builtinMu.Lock()
	defer builtinMu.Unlock()
	if ps, ok := builtin[resourceType]; ok {
		return ps
	}
	var ps []param
	for _, sp := range fhir.SearchParams(resourceType) {
		if p, ok := compileParam(resourceType, sp); ok {
			ps = append(ps, p)
		}
	}
	builtin[resourceType] = ps
	return ps
}

// indexed returns the parameters of resourceType that r indexes.
func (r *Registry) indexed(resourceType string) []param {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ps, ok := r.cache[resourceType]; ok {
		return ps
	}
	ps := builtinParams(resourceType)
	if extra := r.custom[resourceType]; len(extra) > 0 {
		ps = append([]param(nil), ps...)
		for _, sp := range extra {
			builtinMu.Lock() // compileParam reads byURL
			p, ok := compileParam(resourceType, sp)
			builtinMu.Unlock()
			if ok {
				ps = append(ps, p)
			}
		}
	}
	r.cache[resourceType] = ps
	return ps
}

// definition finds a search parameter by canonical URL (composite
// components name theirs so).
func definition(url string) *fhir.SearchParam {
	if byURL == nil {
		byURL = map[string]*fhir.SearchParam{}
		for _, t := range fhir.ResourceTypes() {
			for _, sp := range fhir.SearchParams(t) {
				byURL[sp.URL] = sp
			}
		}
	}
	return byURL[url]
}

func compileParam(resourceType string, sp *fhir.SearchParam) (param, bool) {
	switch sp.Type {
	case "token", "string", "reference", "date", "number", "quantity", "uri", "composite":
	default:
		return param{}, false // special: _text, _content, … handled elsewhere
	}
	if sp.Expression == "" || sp.Code == "_id" || sp.Code == "_lastUpdated" {
		return param{}, false
	}
	p := param{def: sp, typ: hale.ParamType(sp.Type)}
	var err error
	if p.expr, err = fhirpath.Compile(sp.Expression); err != nil {
		return param{}, false
	}
	if sp.Type == "composite" {
		for _, c := range sp.Components {
			def := definition(c.Definition)
			if def == nil || def.Type == "composite" {
				return param{}, false
			}
			comp := component{typ: hale.ParamType(def.Type)}
			if comp.expr, err = fhirpath.Compile(c.Expression); err != nil {
				return param{}, false
			}
			p.components = append(p.components, comp)
		}
	}
	return p, true
}

// SupportedParams lists the indexed parameters of resourceType, for the
// CapabilityStatement.
func SupportedParams(resourceType string) []*fhir.SearchParam {
	return Default.SupportedParams(resourceType)
}

// SupportedParams lists the indexed parameters of resourceType.
func (r *Registry) SupportedParams(resourceType string) []*fhir.SearchParam {
	var out []*fhir.SearchParam
	for _, p := range r.indexed(resourceType) {
		out = append(out, p.def)
	}
	return out
}

func (r *Registry) lookup(resourceType, code string) *param {
	ps := r.indexed(resourceType)
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

// Extract computes the index rows of one resource: each indexed
// parameter's FHIRPath expression is evaluated on it (resolve() answers
// with the referenced type, as "where(resolve() is Patient)" needs), and
// each selected value becomes rows of the parameter's type. An expression
// that fails on this resource indexes nothing for that parameter.
func Extract(resourceType string, res map[string]any) *hale.Index {
	return Default.Extract(resourceType, res)
}

// Extract computes the index rows of one resource with r's parameters.
func (r *Registry) Extract(resourceType string, res map[string]any) *hale.Index {
	idx := &hale.Index{}
	ctx := context.Background()
	env := &fhirpath.Env{Resource: res, RootResource: res}
	for _, p := range r.indexed(resourceType) {
		items, err := p.expr.Evaluate(ctx, res, env)
		if err != nil {
			continue
		}
		code := p.def.Code
		for g, it := range items {
			if p.typ != hale.TypeComposite {
				addValue(idx, p.typ, code, 0, nodeOf(it))
				continue
			}
			// A composite value exists only when every component has
			// one: a search on the composite needs them all, so a group
			// with a component missing (an Observation whose value is a
			// Quantity has no code-value-string value) would be rows no
			// search can match. Observations carry four such composites.
			mark := markOf(idx)
			complete := true
			for i, c := range p.components {
				sub, err := c.expr.Evaluate(ctx, it, env)
				if err != nil {
					complete = false
					break
				}
				before := rowCount(idx)
				for _, cit := range sub {
					addValue(idx, c.typ, code+"#"+strconv.Itoa(i), g+1, nodeOf(cit))
				}
				if rowCount(idx) == before {
					complete = false
					break
				}
			}
			if !complete {
				truncate(idx, mark)
			}
		}
	}
	textRows(idx, res)
	r.addContained(idx, res) // contained.go
	dedupe(idx)
	return idx
}

// maxTextLen bounds the _text and _content rows of one resource: they
// are stored in the string index, whose B-tree holds the whole value.
const maxTextLen = 2048

// textRows adds the rows _text (the narrative's words) and _content (every
// string of the resource) search.
func textRows(idx *hale.Index, res map[string]any) {
	if t, ok := res["text"].(map[string]any); ok {
		if div, ok := t["div"].(string); ok {
			if text := stripTags(div); text != "" {
				addLong(idx, "_text", text)
			}
		}
	}
	var b strings.Builder
	var walk func(v any, key string)
	walk = func(v any, key string) {
		if b.Len() >= maxTextLen {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				switch k {
				case "div", "data", "resourceType", "id", "meta", "reference", "url", "system":
				default:
					keys = append(keys, k)
				}
			}
			sort.Strings(keys) // the same resource gives the same text
			for _, k := range keys {
				walk(x[k], k)
			}
		case []any:
			for _, e := range x {
				walk(e, key)
			}
		case string:
			b.WriteString(x)
			b.WriteByte(' ')
		}
	}
	walk(res, "")
	if b.Len() > 0 {
		addLong(idx, "_content", b.String())
	}
}

func addLong(idx *hale.Index, param, text string) {
	if len(text) > maxTextLen {
		text = text[:maxTextLen]
	}
	// Only the folded form: _text and _content have no :exact.
	idx.Strings = append(idx.Strings, hale.StringValue{Param: param, Norm: Fold(text)})
}

// stripTags returns the text of an XHTML fragment.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
			b.WriteByte(' ')
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(html.UnescapeString(b.String())), " ")
}

// node is one value an expression selected: its JSON and FHIR type name
// ("Quantity", "dateTime"; "" for computed values).
type node struct {
	v   any
	typ string
}

func nodeOf(it fhirpath.Item) node {
	return node{v: it.Raw(), typ: strings.TrimPrefix(it.TypeName(), "FHIR.")}
}

// addValue adds the rows one selected value gives a parameter of type t.
func addValue(idx *hale.Index, t hale.ParamType, code string, group int, n node) {
	switch t {
	case hale.TypeToken:
		addTokens(idx, code, group, n)
	case hale.TypeString:
		addStrings(idx, code, group, n.v)
	case hale.TypeReference:
		addReference(idx, code, group, n)
	case hale.TypeDate:
		addDates(idx, code, group, n.v)
	case hale.TypeNumber:
		addNumbers(idx, code, group, n.v)
	case hale.TypeQuantity:
		addQuantities(idx, code, group, n.v)
	case hale.TypeURI:
		addURIs(idx, code, group, n.v)
	}
}

func addTokens(idx *hale.Index, code string, group int, n node) {
	add := func(param, system, value string) {
		if len(system) > MaxTokenLen || len(value) > MaxTokenLen {
			return // see MaxTokenLen
		}
		if value != "" || system != "" {
			idx.Tokens = append(idx.Tokens, hale.TokenValue{Param: param, Group: group, System: system, Code: value})
		}
	}
	text := func(s any) {
		if s, ok := s.(string); ok && group == 0 {
			addStrings(idx, code+":text", 0, s)
		}
	}
	switch v := n.v.(type) {
	case string:
		add(code, "", v)
	case bool:
		if v {
			add(code, "", "true")
		} else {
			add(code, "", "false")
		}
	case json.Number:
		add(code, "", v.String())
	case map[string]any:
		if codings, ok := v["coding"].([]any); ok || v["text"] != nil && v["value"] == nil && v["code"] == nil { // CodeableConcept
			for _, c := range codings {
				if cm, ok := c.(map[string]any); ok {
					add(code, str(cm["system"]), str(cm["code"]))
					text(cm["display"])
				}
			}
			text(v["text"])
			return
		}
		if c, ok := v["code"].(string); ok { // Coding, Quantity
			add(code, str(v["system"]), c)
			text(v["display"])
			return
		}
		if val, ok := v["value"].(string); ok { // Identifier, ContactPoint
			add(code, str(v["system"]), val)
			if typ, ok := v["type"].(map[string]any); ok { // Identifier.type → :of-type
				codings, _ := typ["coding"].([]any)
				for _, c := range codings {
					if cm, ok := c.(map[string]any); ok && str(cm["code"]) != "" {
						add(code+":of-type", str(cm["system"]), str(cm["code"])+"|"+val)
					}
				}
				text(typ["text"])
			}
		}
	}
}

// stringKeys are the parts of HumanName and Address that string search
// matches (search.html#string).
var stringKeys = []string{"text", "family", "given", "prefix", "suffix", "line", "city", "district", "state", "postalCode", "country"}

func addStrings(idx *hale.Index, code string, group int, v any) {
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			idx.Strings = append(idx.Strings, hale.StringValue{Param: code, Group: group, Norm: Fold(s), Exact: s})
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

func addReference(idx *hale.Index, code string, group int, n node) {
	var ref string
	switch v := n.v.(type) {
	case string: // canonical, uri
		ref = v
	case map[string]any:
		ref = str(v["reference"])
		if ident, ok := v["identifier"].(map[string]any); ok && group == 0 { // :identifier
			addTokens(idx, code+":identifier", 0, node{v: ident})
		}
	}
	if ref == "" || strings.HasPrefix(ref, "#") {
		return
	}
	if len(ref) > MaxTokenLen {
		return // see MaxTokenLen
	}
	rv := hale.ReferenceValue{Param: code, Group: group, URL: ref}
	if t, id, ok := ParseLocalReference(ref); ok {
		rv.TargetType, rv.TargetID = t, id
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
	idx.Dates = uniq(idx.Dates)
	idx.Numbers = uniq(idx.Numbers)
	idx.Quantities = uniq(idx.Quantities)
	idx.URIs = uniq(idx.URIs)
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

// ReferenceTargets returns the local references ("Type/id") a resource
// makes through a reference parameter ("*": every reference parameter),
// for _include.
func (r *Registry) ReferenceTargets(resourceType string, res map[string]any, code string) []hale.ReferenceValue {
	var out []hale.ReferenceValue
	env := &fhirpath.Env{Resource: res, RootResource: res}
	for _, p := range r.indexed(resourceType) {
		if p.typ != hale.TypeReference || code != "*" && p.def.Code != code {
			continue
		}
		items, err := p.expr.Evaluate(context.Background(), res, env)
		if err != nil {
			continue
		}
		idx := &hale.Index{}
		for _, it := range items {
			addReference(idx, p.def.Code, 0, nodeOf(it))
		}
		for _, ref := range idx.References {
			if ref.TargetID != "" {
				out = append(out, ref)
			}
		}
	}
	return out
}

// ReferenceParams lists the reference parameters of resourceType.
func (r *Registry) ReferenceParams(resourceType string) []string {
	var out []string
	for _, p := range r.indexed(resourceType) {
		if p.typ == hale.TypeReference {
			out = append(out, p.def.Code)
		}
	}
	return out
}

// markOf is the length of each of idx's row lists, for truncate.
func markOf(idx *hale.Index) [7]int {
	return [7]int{len(idx.Tokens), len(idx.Strings), len(idx.References), len(idx.Dates),
		len(idx.Numbers), len(idx.Quantities), len(idx.URIs)}
}

// rowCount is the number of rows in idx.
func rowCount(idx *hale.Index) int {
	n := 0
	for _, l := range markOf(idx) {
		n += l
	}
	return n
}

// truncate drops the rows added to idx since markOf returned m.
func truncate(idx *hale.Index, m [7]int) {
	idx.Tokens, idx.Strings, idx.References = idx.Tokens[:m[0]], idx.Strings[:m[1]], idx.References[:m[2]]
	idx.Dates, idx.Numbers, idx.Quantities, idx.URIs = idx.Dates[:m[3]], idx.Numbers[:m[4]], idx.Quantities[:m[5]], idx.URIs[:m[6]]
}
