package fhirpath

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hale-ehr/hale/fhir"
)

// The type model: every item navigated from a resource knows its FHIR
// type from the definitions (fhir.TypeDefinition, TypeDef.Children), as
// FHIR R4 fhirpath.html describes: primitives are FHIR types whose values
// are System types (a FHIR.date holds a System.Date), choice elements are
// navigated without their type suffix (Observation.value) and take the
// type their JSON name selects (valueQuantity → Quantity).

type sysKind uint8

const (
	sysNone sysKind = iota // a complex value (no System type)
	sysBoolean
	sysString
	sysInteger
	sysDecimal
	sysDate
	sysDateTime
	sysTime
	sysQuantity
)

var sysNames = [...]string{"", "Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity"}

type ntKind uint8

const (
	ntPrimitive ntKind = iota
	ntComplex
	ntResource
	ntAbstractResource // Resource, DomainResource: the JSON's resourceType says which
)

// nodeType is the type of a FHIR item: a named type (Patient, HumanName,
// date) or an element with its own children inside one (Patient.contact,
// a BackboneElement).
type nodeType struct {
	name   string        // type name for type() and is: "HumanName", "BackboneElement", "date"
	def    *fhir.TypeDef // the definition that holds the element
	path   string        // the element whose children this type has
	kind   ntKind
	system sysKind // primitives: the System type of the value
	qty    bool    // Quantity or a type derived from it (Age, Duration, …)

	root loc // location of a resource of this type at the root of a tree

	qualified atomic.Pointer[string] // "FHIR." + name, built once

	once   sync.Once
	byName map[string][]childRef // FHIRPath name → JSON properties (several for a choice)
	byJSON map[string]childRef   // JSON property → child
}

type childRef struct {
	json  string
	ext   string    // "_" + json: a primitive's companion
	nt    *nodeType // nil for the value of a primitive (not navigable)
	order int       // position among the type's children (definition order)
}

var (
	typeCache  sync.Map // type name → *nodeType
	innerMu    sync.Mutex
	innerTypes = map[string]*nodeType{} // def|path → backbone nodeType
)

// typeOf returns the nodeType of a named FHIR type, or nil.
func typeOf(name string) *nodeType {
	if v, ok := typeCache.Load(name); ok {
		return v.(*nodeType)
	}
	def := fhir.TypeDefinition(name)
	if def == nil {
		return nil
	}
	nt := &nodeType{name: name, def: def, path: name, root: loc{name: name, index: -1}}
	switch def.Kind {
	case fhir.KindPrimitive:
		nt.kind = ntPrimitive
		nt.system = primitiveSystem(def)
	case fhir.KindResource:
		nt.kind = ntResource
		if name == "Resource" || name == "DomainResource" {
			nt.kind = ntAbstractResource
		}
	default:
		nt.kind = ntComplex
		nt.qty = derivesFrom(name, "Quantity")
	}
	v, _ := typeCache.LoadOrStore(name, nt)
	return v.(*nodeType)
}

func primitiveSystem(def *fhir.TypeDef) sysKind {
	switch def.Name {
	case "date":
		return sysDate
	case "dateTime", "instant":
		return sysDateTime
	case "time":
		return sysTime
	}
	if el := def.Element(def.Name + ".value"); el != nil && len(el.Types) == 1 {
		code := el.Types[0].Code
		code = code[strings.LastIndexByte(code, '.')+1:]
		for k, n := range sysNames {
			if n == code && n != "" {
				return sysKind(k)
			}
		}
	}
	return sysString
}

// derivesFrom reports whether type name is base or is derived from it.
func derivesFrom(name, base string) bool {
	for i := 0; name != "" && i < 20; i++ {
		if name == base {
			return true
		}
		def := fhir.TypeDefinition(name)
		if def == nil {
			return false
		}
		name = def.Base
		if def.Derivation == "constraint" && name == base {
			return true
		}
	}
	return false
}

func innerType(def *fhir.TypeDef, path, name string) *nodeType {
	key := def.Name + "|" + path
	innerMu.Lock()
	defer innerMu.Unlock()
	if nt := innerTypes[key]; nt != nil {
		return nt
	}
	nt := &nodeType{name: name, def: def, path: path, kind: ntComplex}
	innerTypes[key] = nt
	return nt
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// children builds the child tables once.
func (nt *nodeType) children() {
	nt.once.Do(func() {
		nt.byName = map[string][]childRef{}
		nt.byJSON = map[string]childRef{}
		for order, el := range nt.def.Children(nt.path) {
			if el.Choice {
				stem := strings.TrimSuffix(el.Name, "[x]")
				for _, tr := range el.Types {
					json := stem + upperFirst(tr.Code)
					ref := childRef{json: json, ext: "_" + json, nt: typeOf(tr.Code), order: order}
					nt.byName[stem] = append(nt.byName[stem], ref)
					nt.byJSON[ref.json] = ref
				}
				continue
			}
			ref := childRef{json: el.Name, ext: "_" + el.Name, order: order}
			switch {
			case el.Name == "id" && nt.kind != ntComplex && nt.kind != ntPrimitive:
				ref.nt = typeOf("id") // Resource.id is an id (R4 writes its type as System.String)
			case len(nt.def.Children(el.Path)) > 0:
				tn := "BackboneElement"
				if len(el.Types) == 1 {
					tn = el.Types[0].Code
				} else if el.ContentRef != "" {
					if target := nt.def.Element(strings.TrimPrefix(el.ContentRef, "#")); target != nil && len(target.Types) == 1 {
						tn = target.Types[0].Code
					}
				}
				ref.nt = innerType(nt.def, el.Path, tn)
			case len(el.Types) == 1 && !strings.Contains(el.Types[0].Code, "/"):
				ref.nt = typeOf(el.Types[0].Code)
			case len(el.Types) == 1:
				continue // the System value of a primitive
			}
			nt.byName[el.Name] = []childRef{ref}
			nt.byJSON[el.Name] = ref
		}
	})
}

// fullName returns "FHIR." + the type's name.
func (nt *nodeType) fullName() string {
	if p := nt.qualified.Load(); p != nil {
		return *p
	}
	s := "FHIR." + nt.name
	nt.qualified.Store(&s)
	return s
}

// isType reports whether nt is the named type or derives from it.
func (nt *nodeType) isType(name string) bool {
	if nt.name == name {
		return true
	}
	if nt.name == "BackboneElement" && name == "Element" {
		return true
	}
	return derivesFrom(nt.name, name)
}
