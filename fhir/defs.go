package fhir

import (
	_ "embed"
	"encoding/json"
	"sort"
	"strings"
	"sync"
)

// r4JSON is the compact form of the official R4 definitions that
// internal/gen writes; see generate.go.
//
//go:embed defs/r4.json
var r4JSON []byte

// Type kinds, as StructureDefinition.kind spells them.
const (
	KindPrimitive = "primitive-type"
	KindComplex   = "complex-type"
	KindResource  = "resource"
)

// TypeDef is the definition of one FHIR type: a primitive type (boolean,
// date, …), a complex data type (HumanName, Quantity, …; the abstract
// Element and BackboneElement included) or a resource (the abstract Resource
// and DomainResource included). It mirrors the type's StructureDefinition
// snapshot. The constraint profiles SimpleQuantity and MoneyQuantity are
// TypeDefs too, with Derivation "constraint" and Base "Quantity"; their
// element paths start with "Quantity.".
type TypeDef struct {
	Name       string // e.g. "Patient", "HumanName", "dateTime"
	Kind       string // KindPrimitive, KindComplex or KindResource
	Abstract   bool
	Base       string // base type name, e.g. "DomainResource"; "" for Element and Resource
	URL        string // canonical URL of the StructureDefinition
	Derivation string // "specialization" or "constraint" ("" for the roots)
	// Regex is a primitive type's value format as the specification
	// gives it (unanchored); "" for other kinds and for xhtml.
	Regex string
	// Elements is the snapshot, in definition order; Elements[0] is the
	// type itself (path "Patient").
	Elements []*ElementDef

	byPath   map[string]*ElementDef
	children map[string]*childSet // parent path -> its child elements
}

// ElementDef is one element of a type's snapshot.
type ElementDef struct {
	Path  string    // e.g. "Patient.name", "Observation.value[x]"
	Name  string    // last path segment, e.g. "name", "value[x]"
	Types []TypeRef // allowed types; empty when ContentRef is set or for a root
	Min   int
	Max   string // "*" or a number
	// Choice is true for a polymorphic element (path ending in "[x]"):
	// in JSON it appears as the name without "[x]" followed by the
	// capitalised type code, e.g. valueQuantity.
	Choice bool
	// ContentRef, when set, says this element has the same content as
	// another element of the same type, e.g. "#Questionnaire.item" for
	// Questionnaire.item.item.
	ContentRef  string
	Binding     *Binding
	Constraints []Constraint // invariants defined on this element; see Invariants
	IsModifier  bool
	IsSummary   bool
}

// Repeats reports whether the element may occur more than once, which in
// FHIR JSON means it is written as an array.
func (e *ElementDef) Repeats() bool { return e.Max != "1" && e.Max != "0" }

// TypeRef is one allowed type of an element.
type TypeRef struct {
	// Code is the type name ("string", "Reference", "BackboneElement", …).
	// A primitive type's own value element has a FHIRPath system type,
	// e.g. "http://hl7.org/fhirpath/System.String".
	Code string
	// Profile lists profiles the value must conform to (e.g.
	// SimpleQuantity).
	Profile []string
	// TargetProfile, for Reference and canonical, lists the
	// StructureDefinition URLs of the allowed targets.
	TargetProfile []string
}

// TargetTypes returns the type names of TargetProfile (the last segment of
// each URL), e.g. ["Patient", "Group"].
func (t TypeRef) TargetTypes() []string {
	out := make([]string, 0, len(t.TargetProfile))
	for _, p := range t.TargetProfile {
		out = append(out, p[strings.LastIndexByte(p, '/')+1:])
	}
	return out
}

// Binding is an element's terminology binding.
type Binding struct {
	Strength string // required | extensible | preferred | example
	ValueSet string // canonical URL, possibly with a "|version" suffix
}

// Constraint is an invariant. Expression is FHIRPath, evaluated with the
// element at Path as its context; this package stores it but does not
// evaluate it.
type Constraint struct {
	Key        string // e.g. "pat-1"
	Severity   string // error | warning
	Human      string
	Expression string
	Path       string // the element it applies to, e.g. "Patient.contact"
}

// Code is one code of an expanded value set.
type Code struct {
	System string
	Code   string
}

// childSet indexes the children of one element by their JSON names.
type childSet struct {
	list   []*ElementDef     // in definition order
	byName map[string]choice // JSON property name -> element and type
	order  map[string]int    // JSON property name -> position, for Marshal
}

type choice struct {
	el   *ElementDef
	code string // the type the JSON name selects; "" when the element has several types and is not a choice
}

// registry is the loaded form of the definitions.
type registry struct {
	types        map[string]*TypeDef
	valueSets    map[string]*valueSetDef
	params       map[string][]*SearchParam // per concrete resource type, sorted by code
	paramByCode  map[string]map[string]*SearchParam
	compartments map[string]map[string][]string
	invariants   map[string][]Constraint
}

type valueSetDef struct {
	enumerable bool
	codes      []Code
	set        map[Code]bool
	anySystem  map[string]bool
}

var (
	loadOnce sync.Once
	reg      *registry
)

// defs returns the loaded definitions, loading them on first use.
func defs() *registry {
	loadOnce.Do(func() {
		r, err := load(r4JSON)
		if err != nil {
			panic("fhir: embedded definitions are corrupt: " + err.Error())
		}
		reg = r
	})
	return reg
}

// wire shapes of defs/r4.json; internal/gen writes them.
type wireDefs struct {
	Version      string                         `json:"version"`
	Types        []wireType                     `json:"types"`
	ValueSets    []wireValueSet                 `json:"valueSets"`
	SearchParams []wireSearchParam              `json:"searchParams"`
	Compartments map[string]map[string][]string `json:"compartments"`
}

type wireType struct {
	Name       string        `json:"n"`
	Kind       string        `json:"k"`
	Abstract   bool          `json:"a"`
	Base       string        `json:"b"`
	URL        string        `json:"u"`
	Derivation string        `json:"d"`
	Regex      string        `json:"re"`
	Elements   []wireElement `json:"e"`
}

type wireElement struct {
	Path  string `json:"p"`
	Types []struct {
		Code          string   `json:"c"`
		Profile       []string `json:"pr"`
		TargetProfile []string `json:"tp"`
	} `json:"t"`
	Min        int    `json:"min"`
	Max        string `json:"max"`
	ContentRef string `json:"cr"`
	Binding    *struct {
		Strength string `json:"s"`
		ValueSet string `json:"v"`
	} `json:"bd"`
	Constraints []struct {
		Key        string `json:"key"`
		Severity   string `json:"sev"`
		Human      string `json:"h"`
		Expression string `json:"x"`
	} `json:"k"`
	Modifier bool `json:"mod"`
	Summary  bool `json:"sum"`
}

type wireValueSet struct {
	URL        string `json:"u"`
	Enumerable bool   `json:"en"`
	Systems    []struct {
		System string   `json:"s"`
		Codes  []string `json:"c"`
	} `json:"s"`
}

type wireSearchParam struct {
	Code        string            `json:"c"`
	Type        string            `json:"t"`
	URL         string            `json:"u"`
	Base        []string          `json:"b"`
	Expression  map[string]string `json:"x"`
	Target      []string          `json:"tg"`
	Modifiers   []string          `json:"m"`
	Comparators []string          `json:"cmp"`
	Components  []struct {
		Definition string `json:"d"`
		Expression string `json:"x"`
	} `json:"cp"`
}

func load(data []byte) (*registry, error) {
	var w wireDefs
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	r := &registry{
		types:        make(map[string]*TypeDef, len(w.Types)),
		valueSets:    make(map[string]*valueSetDef, len(w.ValueSets)),
		compartments: w.Compartments,
		invariants:   map[string][]Constraint{},
	}
	for i := range w.Types {
		wt := &w.Types[i]
		t := &TypeDef{
			Name: wt.Name, Kind: wt.Kind, Abstract: wt.Abstract, Base: wt.Base,
			URL: wt.URL, Derivation: wt.Derivation, Regex: wt.Regex,
			Elements: make([]*ElementDef, len(wt.Elements)),
			byPath:   make(map[string]*ElementDef, len(wt.Elements)),
			children: map[string]*childSet{},
		}
		for j := range wt.Elements {
			we := &wt.Elements[j]
			e := &ElementDef{
				Path: we.Path, Min: we.Min, Max: we.Max, ContentRef: we.ContentRef,
				IsModifier: we.Modifier, IsSummary: we.Summary,
			}
			e.Name = e.Path[strings.LastIndexByte(e.Path, '.')+1:]
			e.Choice = strings.HasSuffix(e.Name, "[x]")
			if len(we.Types) > 0 {
				e.Types = make([]TypeRef, len(we.Types))
				for k, wr := range we.Types {
					e.Types[k] = TypeRef{Code: wr.Code, Profile: wr.Profile, TargetProfile: wr.TargetProfile}
				}
			}
			if we.Binding != nil {
				e.Binding = &Binding{Strength: we.Binding.Strength, ValueSet: we.Binding.ValueSet}
			}
			for _, c := range we.Constraints {
				e.Constraints = append(e.Constraints, Constraint{Key: c.Key, Severity: c.Severity, Human: c.Human, Expression: c.Expression, Path: e.Path})
			}
			t.Elements[j] = e
			t.byPath[e.Path] = e
			if j > 0 {
				t.addChild(e)
			}
		}
		r.types[t.Name] = t
	}
	for _, wv := range w.ValueSets {
		vs := &valueSetDef{enumerable: wv.Enumerable, set: map[Code]bool{}, anySystem: map[string]bool{}}
		for _, s := range wv.Systems {
			for _, c := range s.Codes {
				k := Code{System: s.System, Code: c}
				vs.codes = append(vs.codes, k)
				vs.set[k] = true
				vs.anySystem[c] = true
			}
		}
		r.valueSets[wv.URL] = vs
	}
	r.loadSearchParams(w.SearchParams)
	return r, nil
}

func (t *TypeDef) addChild(e *ElementDef) {
	parent := e.Path[:strings.LastIndexByte(e.Path, '.')]
	cs := t.children[parent]
	if cs == nil {
		cs = &childSet{byName: map[string]choice{}, order: map[string]int{}}
		t.children[parent] = cs
	}
	pos := len(cs.list)
	cs.list = append(cs.list, e)
	if e.Choice {
		stem := strings.TrimSuffix(e.Name, "[x]")
		for _, tr := range e.Types {
			n := stem + upperFirst(tr.Code)
			cs.byName[n] = choice{el: e, code: tr.Code}
			cs.order[n] = pos
		}
		return
	}
	code := ""
	if len(e.Types) == 1 {
		code = e.Types[0].Code
	}
	cs.byName[e.Name] = choice{el: e, code: code}
	cs.order[e.Name] = pos
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// childrenOf returns the children of the element at path, following a
// contentReference.
func (t *TypeDef) childrenOf(path string) *childSet {
	if cs := t.children[path]; cs != nil {
		return cs
	}
	if e := t.byPath[path]; e != nil && e.ContentRef != "" {
		return t.children[strings.TrimPrefix(e.ContentRef, "#")]
	}
	return nil
}

// Children returns the child elements of the element at path (e.g.
// "Patient.contact"), following a contentReference, in definition order;
// nil when the element has no children of its own (its content is then
// given by its type).
func (t *TypeDef) Children(path string) []*ElementDef {
	if cs := t.childrenOf(path); cs != nil {
		return cs.list
	}
	return nil
}

// Child resolves a JSON property name under the element at path: it
// returns the element and the type the name selects, e.g.
// Child("Observation", "valueQuantity") returns Observation.value[x] and
// "Quantity". The type is "" when the element has no single type (a
// root or a content reference). ok is false for an unknown name.
func (t *TypeDef) Child(path, name string) (el *ElementDef, typ string, ok bool) {
	cs := t.childrenOf(path)
	if cs == nil {
		return nil, "", false
	}
	c, ok := cs.byName[name]
	return c.el, c.code, ok
}

// Element returns the element of t with the given path, or nil.
func (t *TypeDef) Element(path string) *ElementDef { return t.byPath[path] }

// TypeDefinition returns the definition of the named type (resource,
// complex or primitive type, abstract ones included), or nil.
func TypeDefinition(name string) *TypeDef { return defs().types[name] }

// TypeNames returns the names of every defined type, sorted.
func TypeNames() []string {
	r := defs()
	out := make([]string, 0, len(r.types))
	for n := range r.types {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Element returns the definition of the element at path within type
// typeName. Path may cross into data types and content references and may
// use JSON choice names: Element("Patient", "Patient.name.given") returns
// HumanName.given, Element("Observation", "Observation.valueQuantity.unit")
// returns Quantity.unit, and Element("Observation", "Observation.value[x]")
// or Element("Observation", "Observation.value") (the FHIRPath spelling)
// the choice element itself. It returns nil when the path does not exist.
func Element(typeName, path string) *ElementDef {
	t := TypeDefinition(typeName)
	if t == nil {
		return nil
	}
	if e := t.byPath[path]; e != nil {
		return e
	}
	segs := strings.Split(path, ".")
	if segs[0] != typeName {
		return nil
	}
	cur, curPath := t, typeName
	var el *ElementDef
	for _, s := range segs[1:] {
		if el != nil {
			// step into the element's own children or into its type
			if cs := cur.childrenOf(el.Path); cs != nil {
				curPath = el.Path
			} else {
				typ := elementTypeName(el)
				nt := TypeDefinition(typ)
				if nt == nil {
					return nil
				}
				cur, curPath = nt, nt.Name
			}
		}
		e, code, ok := cur.Child(curPath, s)
		if !ok {
			if e2 := cur.byPath[curPath+"."+s]; e2 != nil {
				e, code = e2, ""
			} else if e2 := cur.byPath[curPath+"."+s+"[x]"]; e2 != nil {
				e, code = e2, "" // FHIRPath names a choice without [x]
			} else {
				return nil
			}
		}
		el = e
		if code != "" && e.Choice {
			// a choice resolved by name continues in the chosen type
			nt := TypeDefinition(code)
			if nt == nil {
				return nil
			}
			el = &ElementDef{Path: e.Path, Name: e.Name, Types: []TypeRef{{Code: code}}, Min: e.Min, Max: e.Max, Choice: true, Binding: e.Binding, Constraints: e.Constraints, IsModifier: e.IsModifier, IsSummary: e.IsSummary}
		}
	}
	return el
}

func elementTypeName(el *ElementDef) string {
	if len(el.Types) == 1 {
		return el.Types[0].Code
	}
	return ""
}

// Invariants returns every invariant that applies to instances of the
// named type: those defined on its own elements and those inherited by its
// root from base types (e.g. dom-2…dom-6 for a DomainResource). The
// invariants every element or extension carries (ele-1 from Element,
// ext-1 from Extension) are listed only under Element and Extension; an
// engine applies Invariants("Element") to every element.
func Invariants(typeName string) []Constraint {
	r := defs()
	t := r.types[typeName]
	if t == nil {
		return nil
	}
	var out []Constraint
	for _, e := range t.Elements {
		out = append(out, e.Constraints...)
	}
	return out
}

// ValueSetCodes returns the codes of a value set bound with strength
// "required" somewhere in R4, expanded from the definitions. The URL may
// carry a "|version" suffix. enumerable is false when the value set is
// unknown or cannot be enumerated from the definition files; validation
// skips those bindings. These required value sets are not enumerable:
//
//   - http://hl7.org/fhir/ValueSet/mimetypes (BCP-13 mime types)
//   - http://hl7.org/fhir/ValueSet/ucum-units (UCUM)
//   - http://hl7.org/fhir/ValueSet/currencies (ISO 4217)
//   - http://loinc.org/vs/LL379-9 (a LOINC answer list, not published)
//   - http://hl7.org/fhir/ValueSet/characteristic-combination and
//     http://hl7.org/fhir/ValueSet/subscription-notification-type (later
//     versions referenced by EvidenceVariable and SubscriptionStatus, not
//     in the R4 files)
func ValueSetCodes(url string) (codes []Code, enumerable bool) {
	vs := defs().valueSets[stripVersion(url)]
	if vs == nil || !vs.enumerable {
		return nil, false
	}
	return append([]Code(nil), vs.codes...), true
}

func stripVersion(u string) string {
	if i := strings.IndexByte(u, '|'); i >= 0 {
		return u[:i]
	}
	return u
}

// IsResourceType reports whether name is a concrete (non-abstract)
// resource type.
func IsResourceType(name string) bool {
	i := sort.SearchStrings(resourceTypeNames, name)
	return i < len(resourceTypeNames) && resourceTypeNames[i] == name
}

// ResourceTypes returns the concrete resource types, sorted.
func ResourceTypes() []string { return append([]string(nil), resourceTypeNames...) }
