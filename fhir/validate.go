package fhir

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hale-ehr/hale"
)

// Validate checks a decoded resource (see Decode) against the base R4
// StructureDefinitions and returns every problem found, nil when the
// resource is valid. It does not evaluate FHIRPath invariants.
//
// The checks:
//
//   - resourceType is present and names a concrete resource type; id
//     matches [A-Za-z0-9\-\.]{1,64}.
//   - every element is defined (issue code "structure"); "_x" companions
//     of primitives carry only id and extension, and for arrays align with
//     the primitive array (a null in one needs a value in the other).
//   - cardinality: a missing required element is "required"; an element
//     with max 1 must not be an array, a repeating element must be one, not
//     longer than its max; empty objects, arrays and strings and stray
//     nulls are invalid.
//   - choice elements appear with a listed type suffix (valueQuantity), at
//     most one variant.
//   - primitives have the right JSON type and match the specification's
//     format (integer ranges, calendar-valid dates, timezone on times, …);
//     issue code "value".
//   - code, Coding and CodeableConcept values bound with strength required
//     to an enumerable value set use a code of it ("code-invalid"). A
//     CodeableConcept passes when one of its codings is in the value set;
//     one with text only (no coding) is not checked.
//   - Reference.reference is "#id", urn:uuid:/urn:oid:, an absolute URL,
//     or Type/id[/_history/vid] (also Type?query, the conditional form
//     transactions use) with a known type allowed by the element's target
//     profiles ("value" for the form, "invalid" for a disallowed type).
//   - contained resources, Bundle.entry.resource and
//     Parameters.parameter.resource are validated as their own type; a
//     contained resource has no contained resources and no
//     meta.versionId/lastUpdated; an extension has either a value or
//     nested extensions ("invariant").
//
// Issue locations are FHIRPath-like with indexes and JSON names for choice
// elements: Patient.name[0].given[1], Observation.valueQuantity.value,
// Bundle.entry[2].resource.birthDate, Patient.birthDate with the _x
// companion as Patient._birthDate.
func Validate(res map[string]any) []hale.Issue {
	v := &validator{r: defs(), rx: primitiveRegexes(), loc: make([]byte, 0, 128)}
	v.resource(res, false)
	return v.issues
}

type validator struct {
	r      *registry
	rx     map[string]*regexp.Regexp
	issues []hale.Issue
	// loc is the location of the value being checked; it is built up
	// and cut back while walking, and copied only into an issue.
	loc  []byte
	keys []string
}

// add records an issue at the current location followed by suffix.
func (v *validator) add(code, suffix, format string, args ...any) {
	v.issues = append(v.issues, hale.Issue{
		Severity:    "error",
		Code:        code,
		Diagnostics: fmt.Sprintf(format, args...),
		Expression:  []string{string(v.loc) + suffix},
	})
}

// push appends a step to the location and returns the length to cut back
// to with pop.
func (v *validator) push(step string) int {
	n := len(v.loc)
	v.loc = append(v.loc, step...)
	return n
}

func (v *validator) pushIndex(i int) int {
	n := len(v.loc)
	v.loc = append(v.loc, '[')
	v.loc = strconv.AppendInt(v.loc, int64(i), 10)
	v.loc = append(v.loc, ']')
	return n
}

func (v *validator) pop(n int) { v.loc = v.loc[:n] }

var (
	rxOnce sync.Once
	rxMap  map[string]*regexp.Regexp
)

// primitiveRegexes compiles, once, the value formats of the primitive
// types that are not checked by hand.
func primitiveRegexes() map[string]*regexp.Regexp {
	rxOnce.Do(func() {
		rxMap = map[string]*regexp.Regexp{}
		for _, n := range []string{"date", "dateTime", "instant", "time", "oid", "uuid"} {
			t := defs().types[n]
			rxMap[n] = regexp.MustCompile(`^(?:` + t.Regex + `)$`)
		}
	})
	return rxMap
}

// resource validates m as a resource; at the root (empty location) the
// location starts with its type.
func (v *validator) resource(m map[string]any, contained bool) {
	raw, ok := m["resourceType"]
	rt, _ := raw.(string)
	t := v.r.types[rt]
	valid := ok && t != nil && t.Kind == KindResource && !t.Abstract
	if len(v.loc) == 0 {
		if valid {
			v.loc = append(v.loc, rt...)
		} else {
			v.loc = append(v.loc, "Resource"...)
		}
	}
	if !ok {
		v.add("required", "", "Missing resourceType")
		return
	}
	if !valid {
		v.add("invalid", ".resourceType", "Unknown resource type %s", quoteAny(raw))
		return
	}
	if contained {
		if _, ok := m["contained"]; ok {
			v.add("structure", ".contained", "A contained resource must not contain resources")
		}
		if meta, ok := m["meta"].(map[string]any); ok {
			for _, k := range []string{"versionId", "lastUpdated"} {
				if _, ok := meta[k]; ok {
					v.add("invalid", ".meta."+k, "A contained resource must not have meta.%s", k)
				}
			}
		}
	}
	v.object(t, rt, m, true)
}

func quoteAny(x any) string {
	if s, ok := x.(string); ok {
		return "'" + s + "'"
	}
	b, _ := json.Marshal(x)
	return string(b)
}

// object validates m as the element at path of type t.
func (v *validator) object(t *TypeDef, path string, m map[string]any, isResource bool) {
	if len(m) == 0 {
		v.add("structure", "", "Empty object")
		return
	}
	cs := t.childrenOf(path)
	if cs == nil {
		v.add("structure", "", "Element has no children of its own")
		return
	}
	// keys in sorted order, for a stable issue order; v.keys is a stack
	// shared with the nested calls.
	start := len(v.keys)
	for k := range m {
		v.keys = append(v.keys, k)
	}
	keys := v.keys[start:]
	slices.Sort(keys)
	defer func() { v.keys = v.keys[:start] }()
	var buf [24]use
	present := buf[:0] // the elements seen, with the JSON name used
	for _, k := range keys {
		val := m[k]
		if isResource && k == "resourceType" {
			continue
		}
		n := v.push(".")
		v.loc = append(v.loc, k...)
		if len(k) > 1 && k[0] == '_' {
			name := k[1:]
			c, ok := cs.byName[name]
			if !ok || !v.isPrimitive(c.code) {
				v.add("structure", "", "Unknown element '%s'", k)
			} else {
				present = v.mark(present, c.el, name)
				prim, hasPrim := m[name]
				v.companion(c.el, prim, hasPrim, val)
			}
			v.pop(n)
			continue
		}
		c, ok := cs.byName[k]
		switch {
		case !ok:
			v.add("structure", "", "Unknown element '%s'", k)
		case c.el.Max == "0":
			v.add("structure", "", "Element '%s' is not allowed", k)
		default:
			present = v.mark(present, c.el, k)
			code := c.code
			if isResource && k == "id" {
				code = "id"
			}
			var comp []any
			if c.el.Repeats() && v.isPrimitive(code) {
				comp, _ = m["_"+k].([]any)
			}
			v.elementValue(t, c.el, code, val, comp)
		}
		v.pop(n)
	}
	for _, el := range cs.list {
		if el.Min == 0 {
			continue
		}
		found := false
		for _, u := range present {
			found = found || u.el == el
		}
		if !found {
			v.add("required", "."+el.Name, "Missing required element '%s'", el.Name)
		}
	}
}

type use struct {
	el   *ElementDef
	name string
}

// mark records that el appeared under name, reporting a second variant of
// a choice element.
func (v *validator) mark(present []use, el *ElementDef, name string) []use {
	for _, u := range present {
		if u.el == el && u.name != name {
			v.add("structure", "", "Only one of %s and %s may be present (%s)", u.name, name, el.Name)
			return present
		}
	}
	return append(present, use{el, name})
}

func (v *validator) isPrimitive(code string) bool {
	t := v.r.types[code]
	return t != nil && t.Kind == KindPrimitive
}

// elementValue validates the value of one element, an array when the
// element repeats. comp is the "_x" companion array, if any.
func (v *validator) elementValue(t *TypeDef, el *ElementDef, code string, val any, comp []any) {
	if !el.Repeats() {
		if _, isArr := val.([]any); isArr {
			v.add("structure", "", "Element '%s' must not be an array", el.Name)
			return
		}
		if val == nil {
			v.add("structure", "", "Null value")
			return
		}
		v.item(t, el, code, val)
		return
	}
	arr, ok := val.([]any)
	if !ok {
		v.add("structure", "", "Element '%s' must be an array", el.Name)
		return
	}
	if len(arr) == 0 {
		v.add("structure", "", "Empty array")
		return
	}
	if el.Max != "*" {
		if n, err := strconv.Atoi(el.Max); err == nil && len(arr) > n {
			v.add("structure", "", "Element '%s' has %d values, at most %d allowed", el.Name, len(arr), n)
		}
	}
	if len(arr) < el.Min {
		v.add("required", "", "Element '%s' has %d values, at least %d required", el.Name, len(arr), el.Min)
	}
	prim := v.isPrimitive(code)
	for i, x := range arr {
		n := v.pushIndex(i)
		if x != nil {
			v.item(t, el, code, x)
		} else if !prim || i >= len(comp) || comp[i] == nil {
			v.add("structure", "", "Null value")
		}
		v.pop(n)
	}
}

// companion validates "_x", the id and extensions of primitive x.
func (v *validator) companion(el *ElementDef, prim any, hasPrim bool, comp any) {
	elemT := v.r.types["Element"]
	if !el.Repeats() {
		m, ok := comp.(map[string]any)
		if !ok {
			v.add("structure", "", "Element '_%s' must be an object", el.Name)
			return
		}
		v.object(elemT, "Element", m, false)
		return
	}
	arr, ok := comp.([]any)
	if !ok {
		v.add("structure", "", "Element '_%s' must be an array", el.Name)
		return
	}
	pa, _ := prim.([]any)
	if hasPrim && len(pa) != len(arr) {
		v.add("structure", "", "Element '_%s' must have as many items as '%s'", el.Name, el.Name)
	}
	for i, x := range arr {
		n := v.pushIndex(i)
		m, ok := x.(map[string]any)
		switch {
		case x == nil:
			if i >= len(pa) || pa[i] == nil {
				v.add("structure", "", "Null value")
			}
		case !ok:
			v.add("structure", "", "Element '_%s' items must be objects or null", el.Name)
		default:
			v.object(elemT, "Element", m, false)
		}
		v.pop(n)
	}
}

// item validates one (non-array) value of element el of type code.
func (v *validator) item(t *TypeDef, el *ElementDef, code string, val any) {
	if code == "" || code == "BackboneElement" || code == "Element" {
		if t.childrenOf(el.Path) != nil {
			m, ok := val.(map[string]any)
			if !ok {
				v.add("structure", "", "Element '%s' must be an object", el.Name)
				return
			}
			v.object(t, el.Path, m, false)
			return
		}
	}
	if code == "Resource" {
		m, ok := val.(map[string]any)
		if !ok {
			v.add("structure", "", "Element '%s' must be a resource object", el.Name)
			return
		}
		v.resource(m, strings.HasSuffix(el.Path, ".contained"))
		return
	}
	nt := v.r.types[code]
	if nt == nil {
		return // a System type, not reachable from JSON
	}
	if nt.Kind == KindResource {
		m, ok := val.(map[string]any)
		if !ok {
			v.add("structure", "", "Element '%s' must be a resource object", el.Name)
			return
		}
		if rt, _ := m["resourceType"].(string); rt != code && IsResourceType(rt) {
			v.add("invalid", ".resourceType", "Element '%s' must be a %s, not a %s", el.Name, code, rt)
			return
		}
		v.resource(m, false)
		return
	}
	if nt.Kind == KindPrimitive {
		if v.primitive(code, val) {
			if s, ok := val.(string); ok {
				v.bindingCode(el, s)
			}
		}
		return
	}
	m, ok := val.(map[string]any)
	if !ok {
		v.add("structure", "", "Element '%s' must be an object (%s)", el.Name, code)
		return
	}
	v.object(nt, nt.Name, m, false)
	switch code {
	case "Extension":
		v.extension(m)
	case "Reference":
		v.reference(el, m)
	case "Coding":
		v.bindingCoding(el, m)
	case "CodeableConcept":
		v.bindingConcept(el, m)
	}
}

func (v *validator) extension(m map[string]any) {
	hasValue := false
	for k := range m {
		if strings.HasPrefix(k, "value") || strings.HasPrefix(k, "_value") {
			hasValue = true
		}
	}
	_, hasExt := m["extension"]
	if hasValue == hasExt {
		v.add("invariant", "", "An extension must have either extensions or value[x], not both (ext-1)")
	}
}

// requiredValueSet returns the enumerable value set el is bound to with
// strength required, or nil.
func (v *validator) requiredValueSet(el *ElementDef) (*valueSetDef, string) {
	b := el.Binding
	if b == nil || b.Strength != "required" {
		return nil, ""
	}
	url := stripVersion(b.ValueSet)
	vs := v.r.valueSets[url]
	if vs == nil || !vs.enumerable {
		return nil, ""
	}
	return vs, url
}

func (v *validator) bindingCode(el *ElementDef, s string) {
	vs, url := v.requiredValueSet(el)
	if vs != nil && !vs.anySystem[s] {
		v.add("code-invalid", "", "Value '%s' is not in required value set %s", s, url)
	}
}

func codingIn(vs *valueSetDef, m map[string]any) (code string, in bool, checked bool) {
	code, _ = m["code"].(string)
	if code == "" {
		return "", false, false
	}
	if sys, ok := m["system"].(string); ok {
		return code, vs.set[Code{System: sys, Code: code}], true
	}
	return code, vs.anySystem[code], true
}

func (v *validator) bindingCoding(el *ElementDef, m map[string]any) {
	vs, url := v.requiredValueSet(el)
	if vs == nil {
		return
	}
	if code, in, checked := codingIn(vs, m); checked && !in {
		sys, _ := m["system"].(string)
		v.add("code-invalid", "", "Code '%s' of system '%s' is not in required value set %s", code, sys, url)
	}
}

func (v *validator) bindingConcept(el *ElementDef, m map[string]any) {
	vs, url := v.requiredValueSet(el)
	if vs == nil {
		return
	}
	codings, _ := m["coding"].([]any)
	var codes []string
	for _, c := range codings {
		cm, ok := c.(map[string]any)
		if !ok {
			continue
		}
		code, in, checked := codingIn(vs, cm)
		if in {
			return
		}
		if checked {
			codes = append(codes, "'"+code+"'")
		}
	}
	if len(codes) > 0 {
		v.add("code-invalid", "", "None of the codes %s is in required value set %s", strings.Join(codes, ", "), url)
	}
}

// reference checks the form of Reference.reference and, for a relative
// reference, that the element allows the target type.
func (v *validator) reference(el *ElementDef, m map[string]any) {
	ref, ok := m["reference"].(string)
	if !ok || ref == "" {
		return
	}
	typ, ok := parseReference(ref)
	if !ok {
		v.add("value", ".reference", "Invalid reference '%s'", ref)
		return
	}
	if typ == "" {
		return
	}
	var allowed []string
	for _, tr := range el.Types {
		if tr.Code != "Reference" {
			continue
		}
		for _, n := range tr.TargetTypes() {
			if n == "Resource" {
				return
			}
			if n == typ {
				return
			}
			allowed = append(allowed, n)
		}
	}
	if len(allowed) > 0 {
		v.add("invalid", ".reference", "Reference to a %s is not allowed here; allowed: %s", typ, strings.Join(allowed, ", "))
	}
}

// parseReference checks the form of a reference and returns the resource
// type of a relative one ("" for the other forms).
func parseReference(ref string) (typ string, ok bool) {
	if strings.ContainsAny(ref, " \t\r\n") {
		return "", false
	}
	switch {
	case strings.HasPrefix(ref, "#"):
		return "", true
	case strings.HasPrefix(ref, "urn:uuid:"):
		return "", len(ref) > len("urn:uuid:")
	case strings.HasPrefix(ref, "urn:oid:"):
		return "", len(ref) > len("urn:oid:")
	}
	if i := strings.Index(ref, "://"); i > 0 {
		return "", isScheme(ref[:i]) && len(ref) > i+3
	}
	if i := strings.IndexByte(ref, '?'); i > 0 { // conditional reference
		return ref[:i], IsResourceType(ref[:i])
	}
	segs := strings.Split(ref, "/")
	switch {
	case len(segs) == 2:
	case len(segs) == 4 && segs[2] == "_history" && idOK(segs[3]):
	default:
		return "", false
	}
	if !IsResourceType(segs[0]) || !idOK(segs[1]) {
		return "", false
	}
	return segs[0], true
}

func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return s != ""
}

// primitive checks the JSON type and format of a primitive value.
func (v *validator) primitive(code string, val any) bool {
	switch code {
	case "boolean":
		if _, ok := val.(bool); !ok {
			v.add("value", "", "Invalid boolean %s: must be a JSON boolean", quoteAny(val))
			return false
		}
		return true
	case "integer", "positiveInt", "unsignedInt":
		n, ok := intValue(val)
		if !ok {
			v.add("value", "", "Invalid %s %s: must be a JSON integer number", code, quoteAny(val))
			return false
		}
		lo := int64(math.MinInt32)
		switch code {
		case "positiveInt":
			lo = 1
		case "unsignedInt":
			lo = 0
		}
		if n < lo || n > math.MaxInt32 {
			v.add("value", "", "Invalid %s %s: out of range", code, quoteAny(val))
			return false
		}
		return true
	case "decimal":
		switch x := val.(type) {
		case json.Number:
			if validNumber(string(x)) {
				return true
			}
		case float64:
			if !math.IsInf(x, 0) && !math.IsNaN(x) {
				return true
			}
		case int, int64:
			return true
		}
		v.add("value", "", "Invalid decimal %s: must be a JSON number", quoteAny(val))
		return false
	}
	s, ok := val.(string)
	if !ok {
		v.add("value", "", "Invalid %s %s: must be a JSON string", code, quoteAny(val))
		return false
	}
	if s == "" {
		v.add("value", "", "Invalid %s: empty string", code)
		return false
	}
	good := true
	switch code {
	case "string", "markdown":
	case "code":
		good = codeOK(s)
	case "id":
		good = idOK(s)
	case "uri", "url", "canonical":
		good = !strings.ContainsAny(s, " \t\r\n\f")
	case "base64Binary":
		good = base64OK(s)
	case "xhtml":
		t := strings.TrimSpace(s)
		good = (strings.HasPrefix(t, "<div>") || strings.HasPrefix(t, "<div ")) && strings.HasSuffix(t, "</div>")
	case "date", "dateTime", "instant":
		good = v.rx[code].MatchString(s) && calendarOK(s)
	case "time", "oid", "uuid":
		good = v.rx[code].MatchString(s)
	}
	if !good {
		v.add("value", "", "Invalid %s '%s'", code, s)
	}
	return good
}

func intValue(val any) (int64, bool) {
	switch x := val.(type) {
	case json.Number:
		s := string(x)
		if strings.ContainsAny(s, ".eE") {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return math.MaxInt64, true // out of any range we accept
		}
		return n, true
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1e15 {
			return 0, false
		}
		return int64(x), true
	case int:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// codeOK: [^\s]+(\s[^\s]+)* — no leading, trailing or double whitespace.
func codeOK(s string) bool {
	if s == "" || isSpace(s[0]) || isSpace(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if isSpace(s[i]) && isSpace(s[i-1]) {
			return false
		}
	}
	return true
}

// idOK: [A-Za-z0-9\-\.]{1,64}.
func idOK(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// base64OK: (\s*([0-9a-zA-Z\+/=]){4}\s*)+ — groups of four base64
// characters, whitespace allowed between groups.
func base64OK(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/', c == '=':
			n++
		case isSpace(c):
			if n%4 != 0 {
				return false
			}
		default:
			return false
		}
	}
	return n > 0 && n%4 == 0
}

// calendarOK checks that the day of a date that passed the format regex
// exists (no 2020-02-30).
func calendarOK(s string) bool {
	if len(s) < 10 {
		return true
	}
	y, _ := strconv.Atoi(s[0:4])
	m, _ := strconv.Atoi(s[5:7])
	d, _ := strconv.Atoi(s[8:10])
	return d <= daysIn(m, y)
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
