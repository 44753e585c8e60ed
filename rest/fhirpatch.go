package rest

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/fhirpath"
)

// FHIRPath Patch (FHIR R4 fhirpatch.html; http.html#patch): a PATCH whose
// body is a Parameters resource. Each parameter named "operation" is one
// change, with the parts
//
//	type         add | insert | delete | replace | move
//	path         FHIRPath selecting the element(s) the operation works on
//	name         add: the name of the child to add
//	value        add, insert, replace: value[x] of any type, a resource,
//	             or, for anonymous or complex content, nested parts that
//	             build the element (parts named after its children)
//	index        insert: the list index to insert at (0 … length)
//	source,      move: the list indexes to move from and to
//	destination
//
// The operations run in order against the current version. The path is
// evaluated with Hale's FHIRPath engine and each item it selects is
// mapped back to the JSON tree through its location
// (fhirpath.Item.Location, e.g. "Patient.name[0].given[1]"), which is
// then checked to hold that very node, so a path that leaves the resource
// (resolve(), computed values) cannot change anything.
//
// Rules (fhirpatch.html "base rules"): the path must select exactly one
// element, except for delete, where nothing selected is not an error;
// for insert and move it selects a whole list (every item of one
// repeating element, in order; an empty list is found through the path's
// parent). add appends to a repeating element and refuses to overwrite a
// single one (use replace). The value's type must be one the target
// element allows (a primitive for a primitive element, the type or a type
// derived from it for a complex one, any resource for Resource).
//
// A malformed Parameters is KindInvalid (400); an operation that cannot
// apply is KindUnprocessable (422), naming the operation's index. The
// patched resource is then validated and stored like any patch (patch.go).

// fhirPathPatch is a parsed FHIRPath Patch document.
type fhirPathPatch []fpOp

type fpOp struct {
	index int    // position in Parameters.parameter, for messages
	kind  string // add, insert, delete, replace, move
	src   string // the path as sent
	path  *fhirpath.Expression
	name  string
	value *fpValue
	// at is insert's index; from and to are move's source and destination.
	at, from, to int
}

// fpValue is the value part of an operation: a typed value
// (value[x] or resource) or nested parts building an element.
type fpValue struct {
	typ   string         // FHIR type of value[x] or the resource's type; "" for parts
	val   any            // the JSON value
	ext   map[string]any // _value[x]: id and extensions of a primitive
	parts []fpPart
}

type fpPart struct {
	name string
	v    *fpValue
}

// parseFHIRPathPatch reads the Parameters of a FHIRPath Patch from the
// request (decoded by the HTTP adapter or a bundle entry, or in Body).
// A body that is not a Parameters resource is KindUnsupportedMediaType;
// a Parameters that is not a valid patch is KindInvalid.
func parseFHIRPathPatch(req *Request) (fhirPathPatch, error) {
	res := req.Resource
	if res == nil {
		body := bytes.TrimSpace(req.Body)
		if len(body) == 0 {
			return nil, hale.Errorf(hale.KindInvalid, "the PATCH request has no body")
		}
		if body[0] != '{' {
			return nil, errPatchFormat
		}
		var err error
		if res, err = fhir.Decode(body); err != nil {
			return nil, err
		}
	}
	if res["resourceType"] != "Parameters" {
		return nil, errPatchFormat
	}
	if issues := fhir.Validate(res); len(issues) > 0 {
		return nil, &hale.Error{Kind: hale.KindInvalid, Op: "rest.patch", Message: "FHIRPath Patch: " + issues[0].Diagnostics, Issues: issues}
	}
	params, _ := res["parameter"].([]any)
	out := make(fhirPathPatch, 0, len(params))
	for i, p := range params {
		op, err := parseFPOp(i, p.(map[string]any))
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, nil
}

var errPatchFormat = hale.Errorf(hale.KindUnsupportedMediaType,
	"PATCH takes a JSON Patch document (Content-Type: application/json-patch+json) or a FHIRPath Patch Parameters resource (application/fhir+json or application/fhir+xml)")

func parseFPOp(i int, p map[string]any) (fpOp, error) {
	op := fpOp{index: i, at: -1, from: -1, to: -1}
	bad := func(format string, args ...any) (fpOp, error) {
		return fpOp{}, hale.Errorf(hale.KindInvalid, "FHIRPath Patch: Parameters.parameter[%d]: %s", i, fmt.Sprintf(format, args...))
	}
	if p["name"] != "operation" {
		return bad("the parameter is named %q; a FHIRPath Patch has only \"operation\" parameters", p["name"])
	}
	seen := map[string]bool{}
	parts, _ := p["part"].([]any)
	for _, x := range parts {
		part := x.(map[string]any)
		name, _ := part["name"].(string)
		if seen[name] {
			return bad("part %q appears twice", name)
		}
		seen[name] = true
		switch name {
		case "type", "path", "name":
			s, ok := primitivePart(part)
			if !ok {
				return bad("part %q needs a string value", name)
			}
			switch name {
			case "type":
				op.kind = s
			case "path":
				op.src = s
			case "name":
				op.name = s
			}
		case "index", "source", "destination":
			n, ok := integerPart(part)
			if !ok {
				return bad("part %q needs a valueInteger of 0 or more", name)
			}
			switch name {
			case "index":
				op.at = n
			case "source":
				op.from = n
			case "destination":
				op.to = n
			}
		case "value":
			v, err := parseFPValue(part)
			if err != nil {
				return bad("part value: %v", err)
			}
			op.value = v
		default:
			return bad("unknown part %q", name)
		}
	}
	need := map[string][]string{
		"add":     {"path", "name", "value"},
		"insert":  {"path", "index", "value"},
		"delete":  {"path"},
		"replace": {"path", "value"},
		"move":    {"path", "source", "destination"},
	}[op.kind]
	if need == nil {
		return bad("type %q is not one of add, insert, delete, replace, move", op.kind)
	}
	for _, n := range need {
		if !seen[n] {
			return bad("a %s operation needs the part %q", op.kind, n)
		}
	}
	var err error
	if op.path, err = fhirpath.Compile(op.src); err != nil {
		return bad("path %q: %v", op.src, err)
	}
	return op, nil
}

// primitivePart returns the string value[x] of a part (valueString,
// valueCode, valueUri, …).
func primitivePart(part map[string]any) (string, bool) {
	for k, v := range part {
		if strings.HasPrefix(k, "value") {
			s, ok := v.(string)
			return s, ok && s != ""
		}
	}
	return "", false
}

func integerPart(part map[string]any) (int, bool) {
	for _, k := range []string{"valueInteger", "valueUnsignedInt", "valuePositiveInt"} {
		if v, ok := part[k]; ok {
			n, err := strconv.Atoi(fmt.Sprint(v))
			return n, err == nil && n >= 0
		}
	}
	return 0, false
}

// parseFPValue reads a value part: value[x], resource or nested parts.
func parseFPValue(part map[string]any) (*fpValue, error) {
	if r, ok := part["resource"].(map[string]any); ok {
		rt, _ := r["resourceType"].(string)
		return &fpValue{typ: rt, val: r}, nil
	}
	for k, v := range part {
		if !strings.HasPrefix(k, "value") {
			continue
		}
		typ := k[len("value"):]
		if fhir.TypeDefinition(typ) == nil {
			typ = strings.ToLower(typ[:1]) + typ[1:] // valueDate → date
		}
		ext, _ := part["_"+k].(map[string]any)
		return &fpValue{typ: typ, val: v, ext: ext}, nil
	}
	for k, e := range part { // a primitive with extensions only
		if typ, ok := strings.CutPrefix(k, "_value"); ok && typ != "" {
			ext, _ := e.(map[string]any)
			return &fpValue{typ: strings.ToLower(typ[:1]) + typ[1:], ext: ext}, nil
		}
	}
	subs, _ := part["part"].([]any)
	if len(subs) == 0 {
		return nil, errorString("no value[x], resource or part")
	}
	v := &fpValue{}
	for _, x := range subs {
		sp := x.(map[string]any)
		name, _ := sp["name"].(string)
		sv, err := parseFPValue(sp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		v.parts = append(v.parts, fpPart{name: name, v: sv})
	}
	return v, nil
}

// apply runs the operations on doc in place. An element left without
// content (a HumanName whose only part was deleted) is removed, as FHIR
// has no empty elements (fhirpatch.html test "Delete Nested Primitive #2").
func (p fhirPathPatch) apply(ctx context.Context, doc map[string]any) error {
	for i := range p {
		if err := p[i].apply(ctx, doc); err != nil {
			return err
		}
		prune(doc)
	}
	return nil
}

// prune removes empty objects and arrays below m and reports whether m is
// empty. In a primitive's companion array (_given) an empty object
// becomes null; in other arrays it is dropped.
func prune(m map[string]any) bool {
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			if prune(x) {
				delete(m, k)
			}
		case []any:
			out := x[:0]
			companion := strings.HasPrefix(k, "_")
			for _, e := range x {
				if em, ok := e.(map[string]any); ok && prune(em) {
					if !companion {
						continue
					}
					e = nil
				}
				out = append(out, e)
			}
			allNil := true
			for _, e := range out {
				allNil = allNil && e == nil
			}
			if len(out) == 0 || companion && allNil {
				delete(m, k)
			} else {
				m[k] = out
			}
		}
	}
	return len(m) == 0
}

func (op *fpOp) fail(format string, args ...any) error {
	return hale.Errorf(hale.KindUnprocessable, "FHIRPath Patch operation %d (%s %s): %s", op.index, op.kind, op.src, fmt.Sprintf(format, args...))
}

func (op *fpOp) apply(ctx context.Context, doc map[string]any) error {
	env := &fhirpath.Env{Resource: doc, RootResource: doc}
	items, err := op.path.Evaluate(ctx, doc, env)
	if err != nil {
		return op.fail("the path cannot be evaluated: %v", err)
	}
	switch op.kind {
	case "delete":
		switch len(items) {
		case 0:
			return nil // nothing to delete is not an error
		case 1:
			ref, err := locate(doc, items[0])
			if err != nil {
				return op.fail("%v", err)
			}
			if ref.m == nil {
				return op.fail("cannot delete the resource itself")
			}
			ref.remove()
			return nil
		}
		return op.fail("the path selects %d elements; delete takes one", len(items))
	case "replace":
		if len(items) != 1 {
			return op.fail("the path selects %d elements; replace takes exactly one", len(items))
		}
		ref, err := locate(doc, items[0])
		if err != nil {
			return op.fail("%v", err)
		}
		if ref.m == nil {
			return op.fail("cannot replace the resource itself")
		}
		el := fhir.Element(ref.resType, ref.defPath)
		if el == nil {
			return op.fail("no definition for %s", ref.defPath)
		}
		key := ref.key
		if el.Choice {
			el = fullChoice(el)
			if op.value.typ == "" {
				return op.fail("%s is a choice of types; give a typed value[x]", el.Path)
			}
			key = strings.TrimSuffix(el.Name, "[x]") + upperFirst(op.value.typ)
		}
		val, ext, err := op.build(op.value, el, ref.resType, ref.defPath)
		if err != nil {
			return err
		}
		if key != ref.key { // a choice changes type: valueQuantity → valueString
			ref.remove()
			ref.key, ref.index = key, -1
		}
		ref.set(val, ext)
		return nil
	case "add":
		if len(items) != 1 {
			return op.fail("the path selects %d elements; add needs exactly one to add to", len(items))
		}
		ref, err := locate(doc, items[0])
		if err != nil {
			return op.fail("%v", err)
		}
		m := ref.children(true)
		if m == nil {
			return op.fail("cannot add to this element")
		}
		resType, path := ref.childDefs()
		el := fhir.Element(resType, path+"."+op.name)
		if el == nil {
			return op.fail("%s has no element %q", path, op.name)
		}
		key := op.name
		if el.Choice {
			el = fullChoice(el)
			stem := strings.TrimSuffix(el.Name, "[x]")
			if op.name == stem {
				if op.value.typ == "" {
					return op.fail("%s is a choice of types; give a typed value[x]", el.Path)
				}
				key = stem + upperFirst(op.value.typ)
			}
			for _, t := range el.Types {
				if _, has := m[stem+upperFirst(t.Code)]; has {
					return op.fail("%s already has a value; use replace", path+"."+stem)
				}
			}
		}
		val, ext, err := op.build(op.value, el, resType, path+"."+key)
		if err != nil {
			return err
		}
		l := list{m: m, key: key}
		if el.Repeats() {
			l.insert(l.len(), val, ext)
			return nil
		}
		if _, has := m[key]; has || m["_"+key] != nil {
			return op.fail("%s.%s already has a value; use replace", path, key)
		}
		l.setSingle(val, ext)
		return nil
	case "insert", "move":
		l, ref, err := op.whole(ctx, doc, items, env)
		if err != nil {
			return err
		}
		n := l.len()
		if op.kind == "move" {
			if op.from >= n || op.to >= n {
				return op.fail("source %d and destination %d must be below the list's length %d", op.from, op.to, n)
			}
			val, ext := l.remove(op.from)
			l.insert(op.to, val, ext)
			return nil
		}
		if op.at > n {
			return op.fail("index %d is past the end of the list (length %d)", op.at, n)
		}
		el := fhir.Element(ref.resType, ref.defPath)
		if el == nil || !el.Repeats() {
			return op.fail("%s is not a list", ref.defPath)
		}
		val, ext, err := op.build(op.value, el, ref.resType, ref.defPath)
		if err != nil {
			return err
		}
		l.insert(op.at, val, ext)
		return nil
	}
	return op.fail("unknown operation")
}

// whole finds the list the path of an insert or move selects: every item
// of one repeating element, in order. An empty result is an empty list
// when the path is parent.name and the parent is one element.
func (op *fpOp) whole(ctx context.Context, doc map[string]any, items fhirpath.Collection, env *fhirpath.Env) (list, elemRef, error) {
	if len(items) == 0 {
		if op.kind == "move" {
			return list{}, elemRef{}, op.fail("the path selects no list to move within")
		}
		dot := strings.LastIndexByte(op.src, '.')
		name := op.src[dot+1:]
		parentExpr, err := fhirpath.Compile(op.src[:max(dot, 0)])
		if dot < 0 || !isName(name) || err != nil {
			return list{}, elemRef{}, op.fail("the path selects nothing to insert into")
		}
		parents, err := parentExpr.Evaluate(ctx, doc, env)
		if err != nil || len(parents) != 1 {
			return list{}, elemRef{}, op.fail("the path selects nothing to insert into")
		}
		pref, err := locate(doc, parents[0])
		if err != nil {
			return list{}, elemRef{}, op.fail("%v", err)
		}
		m := pref.children(true)
		if m == nil {
			return list{}, elemRef{}, op.fail("cannot insert into this element")
		}
		resType, path := pref.childDefs()
		return list{m: m, key: name}, elemRef{m: m, key: name, index: -1, resType: resType, defPath: path + "." + name}, nil
	}
	var first elemRef
	for i, it := range items {
		ref, err := locate(doc, it)
		if err != nil {
			return list{}, elemRef{}, op.fail("%v", err)
		}
		if i == 0 {
			first = ref
		}
		if ref.m == nil || ref.index != i || ref.key != first.key || !sameNode(ref.m, first.m) {
			return list{}, elemRef{}, op.fail("the path must select a whole list (every item of one repeating element)")
		}
	}
	l := list{m: first.m, key: first.key}
	if l.len() != len(items) {
		return list{}, elemRef{}, op.fail("the path selects %d of the list's %d items; it must select the whole list", len(items), l.len())
	}
	return l, first, nil
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// build turns a value part into the JSON of an element defined by el, at
// definition path path of resource type resType, checking its type.
func (op *fpOp) build(v *fpValue, el *fhir.ElementDef, resType, path string) (any, map[string]any, error) {
	if v.parts != nil {
		if isPrimitiveElement(el) {
			return nil, nil, op.fail("%s is a primitive; give a value[x], not parts", el.Path)
		}
		m := map[string]any{}
		for _, p := range v.parts {
			child := fhir.Element(resType, path+"."+p.name)
			if child == nil {
				return nil, nil, op.fail("%s has no element %q", path, p.name)
			}
			key := p.name
			if child.Choice {
				child = fullChoice(child)
				if stem := strings.TrimSuffix(child.Name, "[x]"); p.name == stem {
					if p.v.typ == "" {
						return nil, nil, op.fail("%s is a choice of types; give a typed value[x]", child.Path)
					}
					key = stem + upperFirst(p.v.typ)
				}
			}
			val, ext, err := op.build(p.v, child, resType, path+"."+key)
			if err != nil {
				return nil, nil, err
			}
			l := list{m: m, key: key}
			switch {
			case child.Repeats():
				l.insert(l.len(), val, ext)
			case m[key] != nil || m["_"+key] != nil:
				return nil, nil, op.fail("%s.%s is given twice but does not repeat", path, key)
			default:
				l.setSingle(val, ext)
			}
		}
		return m, nil, nil
	}
	if err := op.checkType(el, v.typ); err != nil {
		return nil, nil, err
	}
	var ext map[string]any
	if v.ext != nil {
		ext = deepCopy(v.ext).(map[string]any)
	}
	return deepCopy(v.val), ext, nil
}

// checkType: the value's type must fit the element (fhirpatch.html: "The
// type of the value must be correct for the place at which it will be
// added/inserted"). Primitive values go into any primitive element, whose
// format validation then applies (a valueString into Narrative.div, a
// valueDate into a dateTime); complex values must be of the element's
// type or derive from it; resources go where a resource is allowed.
func (op *fpOp) checkType(el *fhir.ElementDef, typ string) error {
	td := fhir.TypeDefinition(typ)
	if td == nil {
		return op.fail("unknown value type %q", typ)
	}
	for _, t := range el.Types {
		switch {
		case t.Code == typ:
			return nil
		case td.Kind == fhir.KindPrimitive:
			if et := fhir.TypeDefinition(t.Code); et != nil && et.Kind == fhir.KindPrimitive {
				return nil
			}
		case td.Kind == fhir.KindResource:
			if t.Code == "Resource" || t.Code == "DomainResource" && typ != "Bundle" && typ != "Binary" && typ != "Parameters" {
				return nil
			}
		default:
			for b := td; b != nil && b.Base != ""; b = fhir.TypeDefinition(b.Base) {
				if b.Base == t.Code {
					return nil
				}
			}
		}
	}
	want := make([]string, 0, len(el.Types))
	for _, t := range el.Types {
		want = append(want, t.Code)
	}
	if len(want) == 0 {
		want = append(want, "an element built from parts")
	}
	return op.fail("a %s value does not fit %s (%s)", typ, el.Path, strings.Join(want, ", "))
}

func isPrimitiveElement(el *fhir.ElementDef) bool {
	if len(el.Types) != 1 {
		return false
	}
	td := fhir.TypeDefinition(el.Types[0].Code)
	return td != nil && td.Kind == fhir.KindPrimitive
}

// fullChoice returns the choice element with all its types (fhir.Element
// narrows valueQuantity to the Quantity variant).
func fullChoice(el *fhir.ElementDef) *fhir.ElementDef {
	owner, _, _ := strings.Cut(el.Path, ".")
	if td := fhir.TypeDefinition(owner); td != nil {
		if full := td.Element(el.Path); full != nil {
			return full
		}
	}
	return el
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// elemRef is a mutable handle on one element of the JSON tree: property
// key of object m, at index of its array (-1 for a single value); m is nil
// for the resource itself. resType and defPath say where the element is
// defined (for fhir.Element): "Patient", "Patient.contact.name".
type elemRef struct {
	m       map[string]any
	key     string
	index   int
	resType string
	defPath string
	node    any // the value (for the root: the resource)
}

// locate maps an item the path selected back to its place in doc through
// its location, and checks that the place holds that very item.
func locate(doc map[string]any, it fhirpath.Item) (elemRef, error) {
	loc := it.Location()
	if loc == "" {
		return elemRef{}, errorString("the path selects a computed value, not an element of the resource")
	}
	steps := strings.Split(loc, ".")
	rt, _ := doc["resourceType"].(string)
	ref := elemRef{resType: rt, defPath: rt, index: -1, node: doc}
	if steps[0] != rt {
		return elemRef{}, errorString("the path selects " + loc + ", which is not in the resource being patched")
	}
	for _, s := range steps[1:] {
		m := ref.children(false)
		if m == nil {
			return elemRef{}, errorString("cannot find " + loc + " in the resource")
		}
		resType, path := ref.childDefs()
		name, index := s, -1
		if i := strings.IndexByte(s, '['); i > 0 && strings.HasSuffix(s, "]") {
			n, err := strconv.Atoi(s[i+1 : len(s)-1])
			if err != nil {
				return elemRef{}, errorString("malformed location " + loc)
			}
			name, index = s[:i], n
		}
		ref = elemRef{m: m, key: name, index: index, resType: resType, defPath: path + "." + name}
		val, _, ok := ref.get()
		if !ok {
			return elemRef{}, errorString("cannot find " + loc + " in the resource")
		}
		ref.node = val
	}
	if !sameNode(ref.node, it.Raw()) {
		return elemRef{}, errorString("the path selects " + loc + ", which is not an element of the resource being patched")
	}
	return ref, nil
}

// get returns the element's value and its primitive companion (_key).
func (r elemRef) get() (val any, ext map[string]any, ok bool) {
	if r.m == nil {
		return r.node, nil, true
	}
	l := list{m: r.m, key: r.key}
	if r.index < 0 {
		if _, isArr := r.m[r.key].([]any); isArr {
			return nil, nil, false
		}
		val = r.m[r.key]
		ext, _ = r.m["_"+r.key].(map[string]any)
		return val, ext, val != nil || ext != nil
	}
	if r.index >= l.len() {
		return nil, nil, false
	}
	val, ext = l.at(r.index)
	return val, ext, val != nil || ext != nil
}

// children returns the object holding the element's children: the
// element itself, or for a primitive its _key companion (id, extension),
// created when create is set.
func (r *elemRef) children(create bool) map[string]any {
	if m, ok := r.node.(map[string]any); ok {
		return m
	}
	if r.m == nil {
		return nil
	}
	_, ext, _ := r.get()
	if ext == nil && create {
		ext = map[string]any{}
		val, _, _ := r.get()
		r.set(val, ext)
	}
	return ext
}

// childDefs returns where the element's children are defined: in the
// resource's own type for a (contained) resource, else below defPath.
func (r elemRef) childDefs() (resType, path string) {
	if m, ok := r.node.(map[string]any); ok {
		if rt, ok := m["resourceType"].(string); ok && r.m != nil {
			return rt, rt
		}
	}
	return r.resType, r.defPath
}

func (r elemRef) set(val any, ext map[string]any) {
	l := list{m: r.m, key: r.key}
	if r.index < 0 {
		l.setSingle(val, ext)
		return
	}
	l.setAt(r.index, val, ext)
}

func (r elemRef) remove() {
	l := list{m: r.m, key: r.key}
	if r.index < 0 {
		delete(r.m, r.key)
		delete(r.m, "_"+r.key)
		return
	}
	l.remove(r.index)
}

// list is a repeating element key of m: the array m[key] and, for
// primitives, the companion array m["_"+key], kept the same length
// (a null where an item has no value or no extension).
type list struct {
	m   map[string]any
	key string
}

func (l list) arrays() (vals, exts []any) {
	vals, _ = l.m[l.key].([]any)
	exts, _ = l.m["_"+l.key].([]any)
	return vals, exts
}

func (l list) len() int {
	vals, exts := l.arrays()
	return max(len(vals), len(exts))
}

func (l list) at(i int) (any, map[string]any) {
	vals, exts := l.arrays()
	var val any
	var ext map[string]any
	if i < len(vals) {
		val = vals[i]
	}
	if i < len(exts) {
		ext, _ = exts[i].(map[string]any)
	}
	return val, ext
}

// store writes the arrays back, dropping the companion when it holds no
// extension and the element when it is empty.
func (l list) store(vals, exts []any) {
	hasExt := false
	for _, e := range exts {
		hasExt = hasExt || e != nil
	}
	if len(vals) == 0 && !hasExt {
		delete(l.m, l.key)
		delete(l.m, "_"+l.key)
		return
	}
	for len(vals) < len(exts) {
		vals = append(vals, nil)
	}
	l.m[l.key] = vals
	if !hasExt {
		delete(l.m, "_"+l.key)
		return
	}
	for len(exts) < len(vals) {
		exts = append(exts, nil)
	}
	l.m["_"+l.key] = exts
}

func (l list) expand() (vals, exts []any) {
	v, e := l.arrays()
	n := max(len(v), len(e))
	vals, exts = make([]any, n), make([]any, n)
	copy(vals, v)
	copy(exts, e)
	return vals, exts
}

func (l list) insert(i int, val any, ext map[string]any) {
	vals, exts := l.expand()
	var e any
	if ext != nil {
		e = ext
	}
	vals = append(vals[:i], append([]any{val}, vals[i:]...)...)
	exts = append(exts[:i], append([]any{e}, exts[i:]...)...)
	l.store(vals, exts)
}

func (l list) remove(i int) (any, map[string]any) {
	val, ext := l.at(i)
	vals, exts := l.expand()
	l.store(append(vals[:i], vals[i+1:]...), append(exts[:i], exts[i+1:]...))
	return val, ext
}

func (l list) setAt(i int, val any, ext map[string]any) {
	vals, exts := l.expand()
	vals[i] = val
	exts[i] = nil
	if ext != nil {
		exts[i] = ext
	}
	l.store(vals, exts)
}

func (l list) setSingle(val any, ext map[string]any) {
	if val == nil {
		delete(l.m, l.key)
	} else {
		l.m[l.key] = val
	}
	if ext == nil {
		delete(l.m, "_"+l.key)
	} else {
		l.m["_"+l.key] = ext
	}
}

// sameNode reports whether a and b are the same JSON node: the same
// object, or equal primitive values.
func sameNode(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok || bok {
		return aok && bok && reflect.ValueOf(am).UnsafePointer() == reflect.ValueOf(bm).UnsafePointer()
	}
	if _, ok := a.([]any); ok {
		return false
	}
	if _, ok := b.([]any); ok {
		return false
	}
	return a == b
}

// xmlRootName returns the local name of an XML document's root element,
// to tell a FHIRPath Patch (Parameters) from other XML sent to PATCH.
func xmlRootName(body []byte) string {
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se.Name.Local
		}
	}
}
