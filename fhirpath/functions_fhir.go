package fhirpath

import (
	"encoding/xml"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"

	"github.com/hale-ehr/hale/fhir"
)

// The FHIR additions to FHIRPath (FHIR R4 fhirpath.html#functions):
// extension, hasValue, getValue, resolve, memberOf, conformsTo,
// htmlChecks, checkModifiers, subsumes and subsumedBy.

func addFHIRFunctions() {
	functions["extension"] = fn(1, 1, fnExtension)
	functions["hasValue"] = fn(0, 0, fnHasValue)
	functions["getValue"] = fn(0, 0, fnGetValue)
	functions["resolve"] = fn(0, 0, fnResolve)
	functions["memberOf"] = fn(1, 1, fnMemberOf)
	functions["conformsTo"] = fn(1, 1, fnConformsTo)
	functions["htmlChecks"] = fn(0, 0, fnHTMLChecks)
	functions["htmlchecks"] = functions["htmlChecks"] // the spelling R4's txt-1 uses
	functions["checkModifiers"] = fn(0, 100, fnCheckModifiers)
	functions["subsumes"] = fn(1, 1, fnNoTerminology)
	functions["subsumedBy"] = fn(1, 1, fnNoTerminology)
}

func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

func fnExtension(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	url, ok, err := argString(c, n.args[0])
	if err != nil || !ok {
		return nil, err
	}
	var out Collection
	for _, it := range f {
		start := len(out)
		if out, err = c.child(out, it, "extension", n.p); err != nil {
			return nil, err
		}
		kept := out[:start]
		for _, e := range out[start:] {
			if m, ok := e.val.(map[string]any); ok && m["url"] == url {
				kept = append(kept, e)
			}
		}
		out = kept
	}
	return out, nil
}

func fnHasValue(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	if len(f) != 1 || f[0].kind() == sysNone {
		return falseColl, nil
	}
	_, ok := f[0].sys()
	return boolColl(ok), nil
}

func fnGetValue(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	if len(f) != 1 || f[0].kind() == sysNone {
		return nil, nil
	}
	v, ok := f[0].sys()
	if !ok {
		return nil, nil
	}
	return Collection{v.item()}, nil
}

// referenceOf returns the reference an item holds: Reference.reference,
// or the value of a uri/canonical/string.
func referenceOf(it Item) string {
	switch v := it.val.(type) {
	case string:
		if it.kind() == sysString {
			return v
		}
	case map[string]any:
		s, _ := v["reference"].(string)
		return s
	}
	return ""
}

func fnResolve(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	var out Collection
	for _, it := range f {
		ref := referenceOf(it)
		if ref == "" {
			continue
		}
		r, err := c.resolve(ref)
		if err != nil {
			return nil, err
		}
		if r.val != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// resolve finds a reference: "#id" among the contained resources of
// %resource, then by fullUrl or type/id among the entries of an enclosing
// Bundle (%rootResource, %resource or the input), then through the
// Resolver.
func (c *evalCtx) resolve(ref string) (Item, error) {
	var roots []Item
	for _, name := range [3]string{"resource", "rootResource", "context"} {
		col, _ := c.variable(name)
		for _, it := range col {
			if _, ok := it.val.(map[string]any); ok {
				roots = append(roots, it)
			}
		}
	}
	if id, ok := strings.CutPrefix(ref, "#"); ok {
		for _, root := range roots {
			m := root.val.(map[string]any)
			if id == "" {
				return root, nil
			}
			for _, it := range (&evalCtx{env: c.env}).mustChildren(root, "contained") {
				if cm, ok := it.val.(map[string]any); ok && cm["id"] == id {
					return it, nil
				}
			}
			_ = m
		}
		return Item{}, nil
	}
	for _, root := range roots {
		m := root.val.(map[string]any)
		if m["resourceType"] != "Bundle" {
			continue
		}
		entries := (&evalCtx{env: c.env}).mustChildren(root, "entry")
		for _, e := range entries {
			em, _ := e.val.(map[string]any)
			full, _ := em["fullUrl"].(string)
			res, _ := em["resource"].(map[string]any)
			if res == nil {
				continue
			}
			typeID := ""
			if rt, ok := res["resourceType"].(string); ok {
				id, _ := res["id"].(string)
				typeID = rt + "/" + id
			}
			if full == ref || (typeID != "" && (ref == typeID || strings.HasSuffix(ref, "/"+typeID) || strings.HasSuffix(full, "/"+ref))) {
				items := (&evalCtx{env: c.env}).mustChildren(e, "resource")
				if len(items) == 1 {
					return items[0], nil
				}
			}
		}
	}
	if c.env.Resolver != nil {
		m, err := c.env.Resolver.Resolve(c.ctx, ref)
		if err != nil {
			return Item{}, &Error{Pos: -1, Class: ClassExecution, Msg: "resolve(" + ref + ") failed", Err: err}
		}
		if m != nil {
			return NewItem(m), nil
		}
	}
	return referenceStub(ref), nil
}

// referenceStub stands for a literal reference ([base/]Type/id) that did
// not resolve: a resource of that type with only its id, so that the
// search parameters' resolve() is Patient tests the reference's type, as
// FHIR R4 search.html#reference expects of a server.
func referenceStub(ref string) Item {
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	n := len(parts)
	if n < 2 || !fhir.IsResourceType(parts[n-2]) || parts[n-1] == "" {
		return Item{}
	}
	return NewItem(map[string]any{"resourceType": parts[n-2], "id": parts[n-1]})
}

func (c *evalCtx) mustChildren(it Item, name string) Collection {
	r, _ := c.child(nil, it, name, 0)
	return r
}

type valueSet struct {
	codes map[fhir.Code]bool
	any   map[string]bool
}

var valueSets sync.Map // url → *valueSet (nil: not enumerable)

func lookupValueSet(url string) *valueSet {
	if v, ok := valueSets.Load(url); ok {
		return v.(*valueSet)
	}
	codes, ok := fhir.ValueSetCodes(url)
	var vs *valueSet
	if ok {
		vs = &valueSet{codes: make(map[fhir.Code]bool, len(codes)), any: make(map[string]bool, len(codes))}
		for _, c := range codes {
			vs.codes[c] = true
			vs.any[c.Code] = true
		}
	}
	valueSets.Store(url, vs)
	return vs
}

// fnMemberOf checks codes against the value sets R4 binds with strength
// required (fhir.ValueSetCodes); for any other value set the result is
// empty (unknown).
func fnMemberOf(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	url, ok, err := argString(c, n.args[0])
	if err != nil || !ok || len(f) == 0 {
		return nil, err
	}
	if len(f) > 1 {
		return nil, errorf("memberOf() on a collection of %d items", len(f))
	}
	vs := lookupValueSet(url)
	if vs == nil {
		return nil, nil
	}
	coding := func(m map[string]any) bool {
		code, _ := m["code"].(string)
		sys, _ := m["system"].(string)
		if sys == "" {
			return vs.any[code]
		}
		return vs.codes[fhir.Code{System: sys, Code: code}]
	}
	it := f[0]
	if v, ok := it.sys(); ok && v.k == sysString {
		return boolColl(vs.any[v.s]), nil
	}
	m, ok := it.val.(map[string]any)
	if !ok {
		return nil, nil
	}
	if _, isConcept := m["coding"]; isConcept || (it.typ != nil && it.typ.name == "CodeableConcept") {
		list, _ := m["coding"].([]any)
		for _, e := range list {
			if cm, ok := e.(map[string]any); ok && coding(cm) {
				return trueColl, nil
			}
		}
		return falseColl, nil
	}
	return boolColl(coding(m)), nil
}

const coreSD = "http://hl7.org/fhir/StructureDefinition/"

// fnConformsTo checks the core profiles: an item conforms to the
// StructureDefinition of its type and of the types it derives from.
// Other profiles are not known to Hale, which is an error.
func fnConformsTo(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	url, ok, err := argString(c, n.args[0])
	if err != nil || !ok || len(f) == 0 {
		return nil, err
	}
	name, ok := strings.CutPrefix(url, coreSD)
	if !ok || typeOf(name) == nil {
		return nil, errorf("conformsTo(): unknown profile %s", url)
	}
	for _, it := range f {
		if it.typ == nil || !it.typ.isType(name) {
			return falseColl, nil
		}
	}
	return trueColl, nil
}

// allowed XHTML of a narrative (FHIR R4 narrative.html#xhtml): no active
// content, no event attributes, no javascript: URLs.
var forbiddenElements = map[string]bool{
	"script": true, "object": true, "applet": true, "embed": true, "form": true, "iframe": true,
	"frame": true, "frameset": true, "input": true, "button": true, "select": true, "textarea": true,
	"base": true, "link": true, "meta": true, "style": true, "head": true, "body": true, "html": true, "title": true,
}

func fnHTMLChecks(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	if len(f) == 0 {
		return nil, nil
	}
	for _, it := range f {
		s, _ := it.val.(string)
		if !htmlOK(s) {
			return falseColl, nil
		}
	}
	return trueColl, nil
}

func htmlOK(s string) bool {
	d := xml.NewDecoder(strings.NewReader(s))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	depth := 0
	seenRoot := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return seenRoot && depth == 0
		}
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if seenRoot || t.Name.Local != "div" || t.Name.Space != "http://www.w3.org/1999/xhtml" {
					return false
				}
				seenRoot = true
			}
			if forbiddenElements[strings.ToLower(t.Name.Local)] {
				return false
			}
			for _, a := range t.Attr {
				name := strings.ToLower(a.Name.Local)
				if strings.HasPrefix(name, "on") {
					return false
				}
				if (name == "href" || name == "src") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Value)), "javascript:") {
					return false
				}
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && strings.TrimSpace(string(t)) != "" {
				return false
			}
		}
	}
}

// fnCheckModifiers returns the input, or an error when an item has a
// modifierExtension whose url is not among the arguments.
func fnCheckModifiers(c *evalCtx, n *funcNode, f Collection) (Collection, error) {
	known := map[string]bool{}
	for _, a := range n.args {
		r, err := c.arg(a)
		if err != nil {
			return nil, err
		}
		for _, it := range r {
			if s, ok := it.val.(string); ok {
				known[s] = true
			}
		}
	}
	for _, it := range f {
		m, ok := it.val.(map[string]any)
		if !ok {
			continue
		}
		list, _ := m["modifierExtension"].([]any)
		for _, e := range list {
			em, _ := e.(map[string]any)
			if u, _ := em["url"].(string); !known[u] {
				return nil, errorf("unknown modifier extension %s", u)
			}
		}
	}
	return f, nil
}

// fnNoTerminology: subsumption needs a terminology service Hale does not
// have; the result is empty (unknown).
func fnNoTerminology(c *evalCtx, n *funcNode, f Collection) (Collection, error) { return nil, nil }
