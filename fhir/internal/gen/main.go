// Command gen reads the official FHIR R4 (4.0.1) definition files and
// writes the compact form package fhir embeds: defs/r4.json and
// resourcetypes_gen.go. Its output is byte-for-byte deterministic, so CI can
// regenerate and fail on a diff.
//
// Usage (from the fhir directory, via go generate):
//
//	go run ./internal/gen [-shared DIR] [-out DIR]
//
// DIR defaults to $HALE_FHIR_DEFS, else ../../shared/fhir-r4.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	def := os.Getenv("HALE_FHIR_DEFS")
	if def == "" {
		def = filepath.Join("..", "..", "shared", "fhir-r4")
	}
	shared := flag.String("shared", def, "folder holding the official FHIR R4 definition files")
	out := flag.String("out", ".", "the fhir package directory to write into")
	flag.Parse()
	if err := Generate(*shared, *out); err != nil {
		log.Fatal(err)
	}
}

// Generate reads the definitions in shared and writes the generated files
// under out.
func Generate(shared, out string) error {
	g := &generator{dir: shared, vsByURL: map[string]*valueSet{}, csByURL: map[string]*codeSystem{}, expanded: map[string]*expansion{}}
	defs, err := g.run()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(defs); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "defs"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "defs", "r4.json"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	src, err := resourceTypesSource(defs)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "resourcetypes_gen.go"), src, 0o644)
}

// ---- input shapes (only what is read) ----

type bundle struct {
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

type extension struct {
	URL         string `json:"url"`
	ValueURL    string `json:"valueUrl"`
	ValueString string `json:"valueString"`
}

type structureDefinition struct {
	ResourceType   string `json:"resourceType"`
	ID             string `json:"id"`
	URL            string `json:"url"`
	Kind           string `json:"kind"`
	Abstract       bool   `json:"abstract"`
	Type           string `json:"type"`
	BaseDefinition string `json:"baseDefinition"`
	Derivation     string `json:"derivation"`
	Snapshot       struct {
		Element []elementDefinition `json:"element"`
	} `json:"snapshot"`
}

type elementDefinition struct {
	Path             string `json:"path"`
	Min              int    `json:"min"`
	Max              string `json:"max"`
	ContentReference string `json:"contentReference"`
	IsModifier       bool   `json:"isModifier"`
	IsSummary        bool   `json:"isSummary"`
	Type             []struct {
		Extension     []extension `json:"extension"`
		Code          string      `json:"code"`
		Profile       []string    `json:"profile"`
		TargetProfile []string    `json:"targetProfile"`
	} `json:"type"`
	Binding *struct {
		Strength string `json:"strength"`
		ValueSet string `json:"valueSet"`
	} `json:"binding"`
	Constraint []struct {
		Key        string `json:"key"`
		Severity   string `json:"severity"`
		Human      string `json:"human"`
		Expression string `json:"expression"`
		Source     string `json:"source"`
	} `json:"constraint"`
}

type valueSet struct {
	ResourceType string `json:"resourceType"`
	URL          string `json:"url"`
	Compose      *struct {
		Include []conceptSet `json:"include"`
		Exclude []conceptSet `json:"exclude"`
	} `json:"compose"`
}

type conceptSet struct {
	System  string `json:"system"`
	Concept []struct {
		Code string `json:"code"`
	} `json:"concept"`
	Filter []struct {
		Property string `json:"property"`
		Op       string `json:"op"`
		Value    string `json:"value"`
	} `json:"filter"`
	ValueSet []string `json:"valueSet"`
}

type codeSystem struct {
	ResourceType string    `json:"resourceType"`
	URL          string    `json:"url"`
	Content      string    `json:"content"`
	Concept      []concept `json:"concept"`
}

type concept struct {
	Code    string    `json:"code"`
	Concept []concept `json:"concept"`
}

type searchParameter struct {
	ResourceType string   `json:"resourceType"`
	URL          string   `json:"url"`
	Code         string   `json:"code"`
	Base         []string `json:"base"`
	Type         string   `json:"type"`
	Expression   string   `json:"expression"`
	Target       []string `json:"target"`
	Modifier     []string `json:"modifier"`
	Comparator   []string `json:"comparator"`
	Component    []struct {
		Definition string `json:"definition"`
		Expression string `json:"expression"`
	} `json:"component"`
}

type compartmentDefinition struct {
	Code     string `json:"code"`
	Resource []struct {
		Code  string   `json:"code"`
		Param []string `json:"param"`
	} `json:"resource"`
}

// ---- output shapes; keep in step with package fhir (defs.go) ----

type outDefs struct {
	Version      string                         `json:"version"`
	Types        []*outType                     `json:"types"`
	ValueSets    []*outValueSet                 `json:"valueSets"`
	SearchParams []*outSearchParam              `json:"searchParams"`
	Compartments map[string]map[string][]string `json:"compartments"`
}

type outType struct {
	Name       string        `json:"n"`
	Kind       string        `json:"k"`
	Abstract   bool          `json:"a,omitempty"`
	Base       string        `json:"b,omitempty"`
	URL        string        `json:"u"`
	Derivation string        `json:"d,omitempty"`
	Regex      string        `json:"re,omitempty"`
	Elements   []*outElement `json:"e"`
}

type outElement struct {
	Path        string          `json:"p"`
	Types       []*outTypeRef   `json:"t,omitempty"`
	Min         int             `json:"min,omitempty"`
	Max         string          `json:"max"`
	ContentRef  string          `json:"cr,omitempty"`
	Binding     *outBinding     `json:"bd,omitempty"`
	Constraints []*outConstrain `json:"k,omitempty"`
	Modifier    bool            `json:"mod,omitempty"`
	Summary     bool            `json:"sum,omitempty"`
}

type outTypeRef struct {
	Code          string   `json:"c"`
	Profile       []string `json:"pr,omitempty"`
	TargetProfile []string `json:"tp,omitempty"`
}

type outBinding struct {
	Strength string `json:"s"`
	ValueSet string `json:"v,omitempty"`
}

type outConstrain struct {
	Key        string `json:"key"`
	Severity   string `json:"sev"`
	Human      string `json:"h"`
	Expression string `json:"x,omitempty"`
}

type outValueSet struct {
	URL        string         `json:"u"`
	Enumerable bool           `json:"en"`
	Systems    []*outVSSystem `json:"s,omitempty"`
}

type outVSSystem struct {
	System string   `json:"s"`
	Codes  []string `json:"c"`
}

type outSearchParam struct {
	Code        string            `json:"c"`
	Type        string            `json:"t"`
	URL         string            `json:"u"`
	Base        []string          `json:"b"`
	Expression  map[string]string `json:"x,omitempty"`
	Target      []string          `json:"tg,omitempty"`
	Modifiers   []string          `json:"m,omitempty"`
	Comparators []string          `json:"cmp,omitempty"`
	Components  []*outComponent   `json:"cp,omitempty"`
}

type outComponent struct {
	Definition string `json:"d"`
	Expression string `json:"x"`
}

// ---- generation ----

type generator struct {
	dir      string
	vsByURL  map[string]*valueSet
	csByURL  map[string]*codeSystem
	expanded map[string]*expansion
}

func (g *generator) readBundle(name string) ([]json.RawMessage, error) {
	data, err := os.ReadFile(filepath.Join(g.dir, name))
	if err != nil {
		return nil, err
	}
	var b bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out := make([]json.RawMessage, len(b.Entry))
	for i, e := range b.Entry {
		out[i] = e.Resource
	}
	return out, nil
}

func resourceTypeOf(raw json.RawMessage) string {
	var h struct {
		ResourceType string `json:"resourceType"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.ResourceType
}

func (g *generator) run() (*outDefs, error) {
	defs := &outDefs{Version: "4.0.1"}
	for _, f := range []string{"valuesets.json", "v3-codesystems.json"} {
		entries, err := g.readBundle(f)
		if err != nil {
			return nil, err
		}
		for _, raw := range entries {
			switch resourceTypeOf(raw) {
			case "ValueSet":
				var vs valueSet
				if err := json.Unmarshal(raw, &vs); err != nil {
					return nil, err
				}
				if _, dup := g.vsByURL[vs.URL]; !dup {
					g.vsByURL[vs.URL] = &vs
				}
			case "CodeSystem":
				var cs codeSystem
				if err := json.Unmarshal(raw, &cs); err != nil {
					return nil, err
				}
				if _, dup := g.csByURL[cs.URL]; !dup {
					g.csByURL[cs.URL] = &cs
				}
			}
		}
	}

	required := map[string]bool{}
	for _, f := range []string{"profiles-types.json", "profiles-resources.json"} {
		entries, err := g.readBundle(f)
		if err != nil {
			return nil, err
		}
		for _, raw := range entries {
			if resourceTypeOf(raw) != "StructureDefinition" {
				continue
			}
			var sd structureDefinition
			if err := json.Unmarshal(raw, &sd); err != nil {
				return nil, err
			}
			if sd.Kind == "logical" {
				continue // MetadataResource: a pattern, not a type
			}
			t := convertType(&sd)
			for _, e := range t.Elements {
				if e.Binding != nil && e.Binding.Strength == "required" && e.Binding.ValueSet != "" {
					required[stripVersion(e.Binding.ValueSet)] = true
				}
			}
			defs.Types = append(defs.Types, t)
		}
	}
	sort.Slice(defs.Types, func(i, j int) bool { return defs.Types[i].Name < defs.Types[j].Name })

	urls := make([]string, 0, len(required))
	for u := range required {
		urls = append(urls, u)
	}
	sort.Strings(urls)
	for _, u := range urls {
		x := g.expand(u, map[string]bool{})
		ovs := &outValueSet{URL: u, Enumerable: x != nil}
		if x != nil {
			for _, s := range x.systems {
				ovs.Systems = append(ovs.Systems, &outVSSystem{System: s, Codes: x.codes[s]})
			}
		}
		defs.ValueSets = append(defs.ValueSets, ovs)
	}

	sps, err := g.searchParams(defs.Types)
	if err != nil {
		return nil, err
	}
	defs.SearchParams = sps

	data, err := os.ReadFile(filepath.Join(g.dir, "compartmentdefinition-patient.json"))
	if err != nil {
		return nil, err
	}
	var cd compartmentDefinition
	if err := json.Unmarshal(data, &cd); err != nil {
		return nil, err
	}
	comp := map[string][]string{}
	for _, r := range cd.Resource {
		if len(r.Param) > 0 {
			comp[r.Code] = r.Param
		}
	}
	defs.Compartments = map[string]map[string][]string{cd.Code: comp}
	return defs, nil
}

const (
	extFHIRType = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
	extRegex    = "http://hl7.org/fhir/StructureDefinition/regex"
	sdPrefix    = "http://hl7.org/fhir/StructureDefinition/"
)

func convertType(sd *structureDefinition) *outType {
	t := &outType{
		Name:       sd.ID,
		Kind:       sd.Kind,
		Abstract:   sd.Abstract,
		Base:       strings.TrimPrefix(sd.BaseDefinition, sdPrefix),
		URL:        sd.URL,
		Derivation: sd.Derivation,
	}
	for i := range sd.Snapshot.Element {
		ed := &sd.Snapshot.Element[i]
		root := !strings.Contains(ed.Path, ".")
		oe := &outElement{
			Path:       ed.Path,
			Min:        ed.Min,
			Max:        ed.Max,
			ContentRef: ed.ContentReference,
			Modifier:   ed.IsModifier,
			Summary:    ed.IsSummary,
		}
		for _, tr := range ed.Type {
			code := tr.Code
			for _, x := range tr.Extension {
				// System.String etc. on id/url/value elements; the fhir-type
				// extension names the FHIR type, except on a primitive's
				// own value, which stays a System type.
				if x.URL == extFHIRType && !(sd.Kind == "primitive-type" && ed.Path == sd.ID+".value") {
					code = x.ValueURL
				}
				if x.URL == extRegex && ed.Path == sd.ID+".value" {
					t.Regex = x.ValueString
				}
			}
			oe.Types = append(oe.Types, &outTypeRef{Code: code, Profile: tr.Profile, TargetProfile: tr.TargetProfile})
		}
		if ed.Binding != nil {
			oe.Binding = &outBinding{Strength: ed.Binding.Strength, ValueSet: ed.Binding.ValueSet}
		}
		for _, c := range ed.Constraint {
			// ele-1 and ext-1 are kept once, on Element and Extension.
			if c.Source == sdPrefix+"Element" && sd.ID != "Element" {
				continue
			}
			if c.Source == sdPrefix+"Extension" && !(root && sd.ID == "Extension") {
				continue
			}
			if c.Source != "" && c.Source != sd.URL && !root {
				continue
			}
			oe.Constraints = append(oe.Constraints, &outConstrain{Key: c.Key, Severity: c.Severity, Human: c.Human, Expression: c.Expression})
		}
		t.Elements = append(t.Elements, oe)
	}
	return t
}

func stripVersion(u string) string {
	if i := strings.IndexByte(u, '|'); i >= 0 {
		return u[:i]
	}
	return u
}

// expansion is an expanded value set: codes per system, in first-seen order.
type expansion struct {
	systems []string
	codes   map[string][]string
	seen    map[[2]string]bool
}

func newExpansion() *expansion {
	return &expansion{codes: map[string][]string{}, seen: map[[2]string]bool{}}
}

func (x *expansion) add(system, code string) {
	k := [2]string{system, code}
	if x.seen[k] {
		return
	}
	x.seen[k] = true
	if _, ok := x.codes[system]; !ok {
		x.systems = append(x.systems, system)
	}
	x.codes[system] = append(x.codes[system], code)
}

func (x *expansion) remove(other *expansion) *expansion {
	y := newExpansion()
	for _, s := range x.systems {
		for _, c := range x.codes[s] {
			if !other.seen[[2]string{s, c}] {
				y.add(s, c)
			}
		}
	}
	return y
}

// expand returns the codes of the value set at url, or nil when it cannot
// be enumerated from the files at hand (an external code system such as
// BCP-13 mime types, BCP-47 languages, UCUM or ISO 4217, or a value set
// that is not in the files).
func (g *generator) expand(url string, visiting map[string]bool) *expansion {
	url = stripVersion(url)
	if x, ok := g.expanded[url]; ok {
		return x
	}
	if visiting[url] {
		return nil
	}
	visiting[url] = true
	defer delete(visiting, url)
	vs := g.vsByURL[url]
	var x *expansion
	if vs != nil && vs.Compose != nil {
		inc := g.conceptSets(vs.Compose.Include, visiting)
		if inc != nil && len(vs.Compose.Exclude) > 0 {
			exc := g.conceptSets(vs.Compose.Exclude, visiting)
			if exc == nil {
				inc = nil
			} else {
				inc = inc.remove(exc)
			}
		}
		x = inc
	}
	g.expanded[url] = x
	return x
}

func (g *generator) conceptSets(sets []conceptSet, visiting map[string]bool) *expansion {
	x := newExpansion()
	for _, cs := range sets {
		part := newExpansion()
		for _, ref := range cs.ValueSet {
			sub := g.expand(ref, visiting)
			if sub == nil {
				return nil
			}
			for _, s := range sub.systems {
				for _, c := range sub.codes[s] {
					part.add(s, c)
				}
			}
		}
		if cs.System != "" {
			var sys *expansion
			switch {
			case len(cs.Concept) > 0:
				sys = newExpansion()
				for _, c := range cs.Concept {
					sys.add(cs.System, c.Code)
				}
			default:
				sys = g.systemCodes(cs)
			}
			if sys == nil {
				return nil
			}
			if len(cs.ValueSet) > 0 { // intersection
				y := newExpansion()
				for _, c := range sys.codes[cs.System] {
					if part.seen[[2]string{cs.System, c}] {
						y.add(cs.System, c)
					}
				}
				part = y
			} else {
				part = sys
			}
		}
		for _, s := range part.systems {
			for _, c := range part.codes[s] {
				x.add(s, c)
			}
		}
	}
	return x
}

// systemCodes returns the codes of a whole code system, narrowed by simple
// is-a / descendent-of / = filters on the concept hierarchy.
func (g *generator) systemCodes(cs conceptSet) *expansion {
	sys := g.csByURL[cs.System]
	if sys == nil || sys.Content != "complete" {
		return nil
	}
	x := newExpansion()
	var walk func(cs []concept, in bool, f func(concept) (self, below bool))
	walk = func(list []concept, in bool, f func(concept) (bool, bool)) {
		for _, c := range list {
			self, below := in, in
			if !in {
				self, below = f(c)
			}
			if self {
				x.add(sys.URL, c.Code)
			}
			walk(c.Concept, below, f)
		}
	}
	if len(cs.Filter) == 0 {
		walk(sys.Concept, true, nil)
		return x
	}
	if len(cs.Filter) > 1 {
		return nil
	}
	f := cs.Filter[0]
	if f.Property != "concept" && f.Property != "code" {
		return nil
	}
	switch f.Op {
	case "is-a":
		walk(sys.Concept, false, func(c concept) (bool, bool) { return c.Code == f.Value, c.Code == f.Value })
	case "descendent-of":
		walk(sys.Concept, false, func(c concept) (bool, bool) { return false, c.Code == f.Value })
	case "=":
		walk(sys.Concept, false, func(c concept) (bool, bool) { return c.Code == f.Value, false })
	default:
		return nil
	}
	return x
}

// defaultModifiers are the search modifiers R4 defines per parameter type
// (search.html#modifiers); the SearchParameter resources of the core
// specification leave SearchParameter.modifier empty.
var defaultModifiers = map[string][]string{
	"string":    {"missing", "exact", "contains"},
	"token":     {"missing", "text", "not", "above", "below", "in", "not-in", "of-type"},
	"reference": {"missing", "type", "identifier", "above", "below"},
	"uri":       {"missing", "above", "below"},
	"date":      {"missing"},
	"number":    {"missing"},
	"quantity":  {"missing"},
	"composite": {"missing"},
	"special":   {"missing"},
}

func (g *generator) searchParams(types []*outType) ([]*outSearchParam, error) {
	known := map[string]bool{}
	for _, t := range types {
		if t.Kind == "resource" {
			known[t.Name] = true
		}
	}
	var out []*outSearchParam
	byKey := map[string]bool{} // base + "|" + code
	for _, f := range []string{"search-parameters.json", filepath.Join("us-core", "search-parameters-uscore.json")} {
		entries, err := g.readBundle(f)
		if err != nil {
			return nil, err
		}
		for _, raw := range entries {
			if resourceTypeOf(raw) != "SearchParameter" {
				continue
			}
			var sp searchParameter
			if err := json.Unmarshal(raw, &sp); err != nil {
				return nil, err
			}
			// A US Core parameter adds to the core set; where core
			// already defines the code for a base, core wins.
			var base []string
			for _, b := range sp.Base {
				if !byKey[b+"|"+sp.Code] {
					base = append(base, b)
				}
			}
			if len(base) == 0 {
				continue
			}
			for _, b := range base {
				byKey[b+"|"+sp.Code] = true
			}
			o := &outSearchParam{
				Code:        sp.Code,
				Type:        sp.Type,
				URL:         sp.URL,
				Base:        base,
				Target:      sp.Target,
				Modifiers:   sp.Modifier,
				Comparators: sp.Comparator,
			}
			if len(o.Modifiers) == 0 {
				o.Modifiers = defaultModifiers[sp.Type]
			}
			for _, c := range sp.Component {
				o.Components = append(o.Components, &outComponent{Definition: c.Definition, Expression: c.Expression})
			}
			if sp.Expression != "" {
				o.Expression = splitExpression(sp.Expression, base, known)
			}
			out = append(out, o)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Code != out[j].Code {
			return out[i].Code < out[j].Code
		}
		return out[i].URL < out[j].URL
	})
	return out, nil
}

// splitExpression splits a FHIRPath union over several resource types into
// one expression per base type. A part that does not start with a type
// name applies to every base.
func splitExpression(expr string, base []string, known map[string]bool) map[string]string {
	parts := splitUnion(expr)
	res := map[string][]string{}
	inBase := map[string]bool{}
	for _, b := range base {
		inBase[b] = true
	}
	for _, p := range parts {
		lead := leadingName(p)
		if inBase[lead] {
			res[lead] = append(res[lead], p)
			continue
		}
		if known[lead] || lead == "Resource" || lead == "DomainResource" {
			continue // a type not in base (an inconsistency of the source); drop
		}
		for _, b := range base {
			res[b] = append(res[b], p)
		}
	}
	out := map[string]string{}
	for b, ps := range res {
		out[b] = strings.Join(ps, " | ")
	}
	return out
}

// splitUnion splits expr at the top-level '|' operators.
func splitUnion(expr string) []string {
	var parts []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		case c == '|' && depth == 0:
			parts = append(parts, strings.TrimSpace(expr[start:i]))
			start = i + 1
		}
	}
	return append(parts, strings.TrimSpace(expr[start:]))
}

func leadingName(p string) string {
	p = strings.TrimLeft(p, "( ")
	end := 0
	for end < len(p) {
		c := p[end]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			break
		}
		end++
	}
	return p[:end]
}

func resourceTypesSource(defs *outDefs) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by go run ./internal/gen; DO NOT EDIT.\n\n")
	b.WriteString("package fhir\n\n")
	b.WriteString("// resourceTypeNames lists the concrete resource types of FHIR R4, sorted.\n")
	b.WriteString("var resourceTypeNames = []string{\n")
	for _, t := range defs.Types {
		if t.Kind == "resource" && !t.Abstract {
			fmt.Fprintf(&b, "\t%q,\n", t.Name)
		}
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}
