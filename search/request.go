package search

import (
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/ucum"
)

// Request is a parsed search (search.html): the store Query plus the
// result parameters the core applies around it.
type Request struct {
	Query       hale.Query
	Includes    []Include // _include
	RevIncludes []Include // _revinclude
	Summary     string    // _summary: "", "true", "text", "data", "count", "false"
	Elements    []string  // _elements
	// Offset is set when the client pages with _offset rather than a
	// cursor (Hale's own links use cursors).
	Offset int
	// Contained is _contained: "false" (the default, ""), "true" or
	// "both"; ContainedType is _containedType: "container" (the
	// default, "") or "contained" (search.html#contained). Query already
	// holds their "_contained" clause (see applyContained).
	Contained, ContainedType string
	// Ignored lists parameters that were not applied, as sent.
	Ignored []string
	// Applied holds the parameters that were applied, for the self link.
	Applied url.Values
}

// Include is one _include or _revinclude: resources of Target type that
// Source resources refer to through Param ("*": every reference parameter).
type Include struct {
	Source, Param, Target string
	Iterate               bool
}

// Options bound a search.
type Options struct {
	DefaultCount, MaxCount int
	Now                    func() time.Time
	// Registry holds the parameters; Default when nil.
	Registry *Registry
}

func (o Options) reg() *Registry {
	if o.Registry != nil {
		return o.Registry
	}
	return Default
}

// ParseRequest parses the parameters of a search over types (one type for
// a type search; nil for a system search, where _type may name some).
// Unknown and unsupported parameters are listed in Ignored; a malformed
// value is a KindInvalid error that says what is wrong.
func ParseRequest(types []string, q url.Values, opt Options) (*Request, error) {
	r := &Request{Applied: url.Values{}}
	r.Query.Types = types
	r.Query.Total = true
	r.Query.Count = opt.DefaultCount
	if opt.Now == nil {
		opt.Now = time.Now
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if v := q.Get("_type"); v != "" && types == nil {
		for _, t := range strings.Split(v, ",") {
			if !fhir.IsResourceType(t) {
				return nil, hale.Errorf(hale.KindInvalid, "_type: unknown resource type %q", t)
			}
			r.Query.Types = append(r.Query.Types, t)
		}
		r.Applied["_type"] = q["_type"]
	}
	for _, key := range keys {
		for _, raw := range q[key] {
			applied, err := r.parseParam(key, raw, opt)
			if err != nil {
				return nil, err
			}
			if applied {
				r.Applied[key] = append(r.Applied[key], raw)
			} else if !isNeutral(key) {
				r.Ignored = append(r.Ignored, key)
			}
		}
	}
	r.applyContained()
	r.Ignored = uniqStrings(r.Ignored)
	return r, nil
}

// applyContained turns a type search with _contained=true or both into
// the store's form (internal/sqlsearch, contained.go): the clauses parsed
// so far apply to the contained resources of the type. For
// _containedType=container the Query finds their containers, of any
// type, through one "_contained" clause whose Chain holds the clauses;
// for contained it finds the contained resources themselves, marked by a
// "_contained" clause without Chain. Contained resources cannot be
// sorted, so _sort is then ignored; so is _contained in a search of
// several types.
func (r *Request) applyContained() {
	if r.Contained == "" || r.Contained == "false" {
		return
	}
	if len(r.Query.Types) != 1 {
		r.Ignored = append(r.Ignored, "_contained")
		delete(r.Applied, "_contained")
		delete(r.Applied, "_containedType")
		return
	}
	if len(r.Query.Sort) > 0 {
		r.Query.Sort = nil
		r.Ignored = append(r.Ignored, "_sort")
		delete(r.Applied, "_sort")
	}
	mode := []hale.Value{{Code: r.Contained}}
	if r.ContainedType == "contained" {
		r.Query.Where = append([]hale.Clause{{Param: "_contained", Type: hale.TypeToken, Values: mode}}, r.Query.Where...)
		return
	}
	typ := r.Query.Types[0]
	r.Query.Types = nil
	r.Query.Where = []hale.Clause{{Param: "_contained", Type: hale.TypeReference, Values: mode,
		Chain: &hale.Chain{Type: typ, Where: r.Query.Where}}}
}

// isNeutral names parameters that shape the answer's format, not the
// search; they are neither applied nor ignored.
func isNeutral(key string) bool {
	switch key {
	case "_format", "_pretty", "_type", "_cursor":
		return true
	}
	return false
}

func (r *Request) parseParam(key, raw string, opt Options) (bool, error) {
	switch key {
	case "_count":
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return false, hale.Errorf(hale.KindInvalid, "_count must be a non-negative integer, not %q", raw)
		}
		r.Query.Count = min(n, opt.MaxCount)
		return true, nil
	case "_offset":
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return false, hale.Errorf(hale.KindInvalid, "_offset must be a non-negative integer, not %q", raw)
		}
		r.Offset = n
		return true, nil
	case "_total":
		switch raw {
		case "none":
			r.Query.Total = false
		case "estimate", "accurate":
			r.Query.Total = true
		default:
			return false, hale.Errorf(hale.KindInvalid, "_total must be none, estimate or accurate, not %q", raw)
		}
		return true, nil
	case "_summary":
		switch raw {
		case "true", "text", "data", "false":
			r.Summary = raw
		case "count":
			r.Summary = raw
			r.Query.Count, r.Query.Total = 0, true
		default:
			return false, hale.Errorf(hale.KindInvalid, "_summary must be true, text, data, count or false, not %q", raw)
		}
		return true, nil
	case "_elements":
		for _, e := range strings.Split(raw, ",") {
			if e = strings.TrimSpace(e); e != "" {
				r.Elements = append(r.Elements, e)
			}
		}
		return true, nil
	case "_sort":
		return r.parseSort(opt.reg(), raw)
	case "_include", "_include:iterate", "_include:recurse", "_revinclude", "_revinclude:iterate", "_revinclude:recurse":
		inc, err := parseInclude(opt.reg(), raw, strings.Contains(key, ":"))
		if err != nil {
			return false, err
		}
		if strings.HasPrefix(key, "_include") {
			r.Includes = append(r.Includes, inc)
		} else {
			r.RevIncludes = append(r.RevIncludes, inc)
		}
		return true, nil
	case "_contained":
		switch raw {
		case "true", "false", "both":
			r.Contained = raw
			return true, nil
		}
		return false, hale.Errorf(hale.KindInvalid, "_contained must be true, false or both, not %q", raw)
	case "_containedType":
		switch raw {
		case "container", "contained":
			r.ContainedType = raw
			return true, nil
		}
		return false, hale.Errorf(hale.KindInvalid, "_containedType must be container or contained, not %q", raw)
	case "_format", "_pretty", "_type", "_cursor":
		return false, nil
	}
	c, ok, err := parseClause(r.Query.Types, key, raw, opt)
	if err != nil || !ok {
		return false, err
	}
	r.Query.Where = append(r.Query.Where, c)
	return true, nil
}

func (r *Request) parseSort(reg *Registry, raw string) (bool, error) {
	for _, k := range strings.Split(raw, ",") {
		k = strings.TrimSpace(k)
		desc := strings.HasPrefix(k, "-")
		k = strings.TrimPrefix(k, "-")
		var t hale.ParamType
		switch k {
		case "_id":
			t = hale.TypeID
		case "_lastUpdated":
			t = hale.TypeLastUpdated
		default:
			p := reg.lookupAny(r.Query.Types, k)
			if p == nil || p.typ == hale.TypeComposite {
				return false, nil
			}
			t = p.typ
		}
		r.Query.Sort = append(r.Query.Sort, hale.SortKey{Param: k, Type: t, Desc: desc})
	}
	return true, nil
}

func parseInclude(reg *Registry, raw string, iterate bool) (Include, error) {
	parts := strings.Split(raw, ":")
	inc := Include{Iterate: iterate}
	switch len(parts) {
	case 2, 3:
		inc.Source, inc.Param = parts[0], parts[1]
		if len(parts) == 3 {
			inc.Target = parts[2]
		}
	default:
		return inc, hale.Errorf(hale.KindInvalid, "_include/_revinclude value %q: expected SourceType:param[:TargetType]", raw)
	}
	if !fhir.IsResourceType(inc.Source) || inc.Target != "" && !fhir.IsResourceType(inc.Target) {
		return inc, hale.Errorf(hale.KindInvalid, "_include/_revinclude value %q names an unknown resource type", raw)
	}
	if inc.Param != "*" {
		p := reg.lookup(inc.Source, inc.Param)
		if p == nil || p.typ != hale.TypeReference {
			return inc, hale.Errorf(hale.KindInvalid, "_include/_revinclude: %s has no reference search parameter %q", inc.Source, inc.Param)
		}
	}
	return inc, nil
}

// lookupAny finds a parameter defined on every one of types (or, for a
// system search, on Resource).
func (r *Registry) lookupAny(types []string, code string) *param {
	if len(types) == 0 {
		// A system search may use the parameters every resource has
		// (_id, _lastUpdated, _tag, _profile, …); Basic stands for all.
		if !strings.HasPrefix(code, "_") {
			return nil
		}
		return r.lookup("Basic", code)
	}
	var found *param
	for _, t := range types {
		p := r.lookup(t, code)
		if p == nil {
			return nil
		}
		found = p
	}
	return found
}

// parseClause parses one search parameter (name[:modifier][.chain]) with
// its value into a clause on the given types. ok is false when the
// parameter is unknown or its modifier unsupported.
func parseClause(types []string, key, raw string, opt Options) (hale.Clause, bool, error) {
	if strings.HasPrefix(key, "_has:") {
		return parseHas(types, key, raw, opt)
	}
	name, chain, hasChain := strings.Cut(key, ".")
	code, modifier, _ := strings.Cut(name, ":")
	switch code {
	case "_id":
		return simple(hale.TypeID, "_id", modifier, raw, opt)
	case "_lastUpdated":
		return simple(hale.TypeLastUpdated, "_lastUpdated", modifier, raw, opt)
	case "_text", "_content":
		// Words in the narrative (_text) or anywhere in the resource
		// (_content, its first 2 KiB), case- and accent-insensitive; see textRows.
		if modifier != "" || hasChain {
			return hale.Clause{}, false, nil
		}
		c := hale.Clause{Param: code, Type: hale.TypeString, Modifier: "contains"}
		for _, v := range splitComma(raw) {
			c.Values = append(c.Values, hale.Value{Code: Fold(v)})
		}
		return c, true, nil
	case "_list":
		// Resolved by the caller, which can read the List: see ListClause.
		if modifier != "" || hasChain || !ValidID(raw) {
			return hale.Clause{}, false, hale.Errorf(hale.KindInvalid, "_list takes the id of a List, not %q", raw)
		}
		return hale.Clause{Param: "_list", Type: hale.TypeID, Values: []hale.Value{{Code: raw}}}, true, nil
	}
	p := opt.reg().lookupAny(types, code)
	if p == nil {
		return hale.Clause{}, false, nil
	}
	if hasChain {
		if p.typ != hale.TypeReference {
			return hale.Clause{}, false, hale.Errorf(hale.KindInvalid, "%s is not a reference parameter, so it cannot be chained", code)
		}
		targets := p.def.Target
		if modifier != "" {
			if !fhir.IsResourceType(modifier) {
				return hale.Clause{}, false, nil
			}
			targets = []string{modifier}
		}
		sub, ok, err := parseClause(targets, chain, raw, opt)
		if err != nil || !ok {
			return hale.Clause{}, ok, err
		}
		ch := &hale.Chain{Where: []hale.Clause{sub}}
		if modifier != "" {
			ch.Type = modifier
		}
		return hale.Clause{Param: code, Type: hale.TypeReference, Chain: ch}, true, nil
	}
	if p.typ == hale.TypeComposite {
		return parseComposite(p, modifier, raw, opt)
	}
	return simpleParam(p, code, modifier, raw, opt)
}

func parseHas(types []string, key, raw string, opt Options) (hale.Clause, bool, error) {
	// _has:Observation:patient:code=x — Observation resources whose
	// patient parameter refers to the result, and whose code is x.
	parts := strings.SplitN(key, ":", 4)
	if len(parts) != 4 || !fhir.IsResourceType(parts[1]) {
		return hale.Clause{}, false, hale.Errorf(hale.KindInvalid, "malformed _has parameter %q: expected _has:Type:reference-param:param", key)
	}
	ref := opt.reg().lookup(parts[1], parts[2])
	if ref == nil || ref.typ != hale.TypeReference {
		return hale.Clause{}, false, hale.Errorf(hale.KindInvalid, "_has: %s has no reference search parameter %q", parts[1], parts[2])
	}
	sub, ok, err := parseClause([]string{parts[1]}, parts[3], raw, opt)
	if err != nil || !ok {
		return hale.Clause{}, ok, err
	}
	return hale.Clause{Param: "_has", Type: hale.TypeReference, Has: &hale.Has{Type: parts[1], Param: parts[2], Where: []hale.Clause{sub}}}, true, nil
}

func simple(t hale.ParamType, code, modifier, raw string, opt Options) (hale.Clause, bool, error) {
	return simpleParam(&param{typ: t, def: &fhir.SearchParam{Code: code, Type: string(t)}}, code, modifier, raw, opt)
}

// simpleParam parses a parameter of a non-composite type.
func simpleParam(p *param, code, modifier, raw string, opt Options) (hale.Clause, bool, error) {
	c := hale.Clause{Param: code, Type: p.typ}
	if modifier == "missing" {
		switch raw {
		case "true", "false":
			b := raw == "true"
			c.Missing = &b
			return c, true, nil
		}
		return c, false, hale.Errorf(hale.KindInvalid, "%s:missing takes true or false, not %q", code, raw)
	}
	values := splitComma(raw)
	switch p.typ {
	case hale.TypeID:
		if modifier != "" {
			return c, false, nil
		}
		for _, v := range values {
			c.Values = append(c.Values, hale.Value{Code: v})
		}
	case hale.TypeToken:
		switch modifier {
		case "", "not":
			c.Not = modifier == "not"
			for _, v := range values {
				c.Values = append(c.Values, tokenValue(v))
			}
		case "text":
			c.Param, c.Type = code+":text", hale.TypeString
			for _, v := range values {
				c.Values = append(c.Values, hale.Value{Code: Fold(v)})
			}
		case "of-type":
			c.Param = code + ":of-type"
			for _, v := range values {
				parts := strings.SplitN(v, "|", 3)
				if len(parts) != 3 {
					return c, false, hale.Errorf(hale.KindInvalid, "%s:of-type takes system|code|value, not %q", code, v)
				}
				c.Values = append(c.Values, hale.Value{System: parts[0], Code: parts[1] + "|" + parts[2], NoSystem: parts[0] == ""})
			}
		case "in", "not-in":
			c.Not = modifier == "not-in"
			for _, v := range values {
				codes, ok := fhir.ValueSetCodes(v)
				if !ok {
					return c, false, hale.Errorf(hale.KindInvalid, "%s:%s: value set %q is not one Hale can expand", code, modifier, v)
				}
				for _, cd := range codes {
					c.Values = append(c.Values, hale.Value{System: cd.System, Code: cd.Code, NoSystem: cd.System == ""})
				}
			}
			if len(c.Values) == 0 && !c.Not {
				c.Values = []hale.Value{{System: "urn:hale:no-code", Code: "\x00"}} // matches nothing
			}
		default:
			return c, false, nil
		}
	case hale.TypeString:
		switch modifier {
		case "", "contains":
			c.Modifier = modifier
			for _, v := range values {
				c.Values = append(c.Values, hale.Value{Code: Fold(v)})
			}
		case "exact":
			c.Modifier = modifier
			for _, v := range values {
				c.Values = append(c.Values, hale.Value{Code: v})
			}
		default:
			return c, false, nil
		}
	case hale.TypeURI:
		switch modifier {
		case "", "below", "above":
			c.Modifier = modifier
			for _, v := range values {
				c.Values = append(c.Values, hale.Value{Code: v})
			}
		default:
			return c, false, nil
		}
	case hale.TypeReference:
		if modifier == "identifier" {
			c.Param, c.Type = code+":identifier", hale.TypeToken
			for _, v := range values {
				c.Values = append(c.Values, tokenValue(v))
			}
			return c, true, nil
		}
		for _, v := range values {
			mv, err := referenceValue(p, modifier, v)
			if err != nil || mv == nil {
				return c, false, err
			}
			c.Values = append(c.Values, *mv)
		}
	case hale.TypeDate, hale.TypeLastUpdated:
		if modifier != "" {
			return c, false, nil
		}
		for _, v := range values {
			dv, err := dateValue(code, v, opt.Now())
			if err != nil {
				return c, false, err
			}
			c.Values = append(c.Values, dv)
		}
	case hale.TypeNumber, hale.TypeQuantity:
		if modifier != "" {
			return c, false, nil
		}
		for _, v := range values {
			nv, err := numberValue(code, v, p.typ == hale.TypeQuantity)
			if err != nil {
				return c, false, err
			}
			c.Values = append(c.Values, nv)
		}
	default:
		return c, false, nil
	}
	return c, true, nil
}

var prefixes = []string{"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}

func cutPrefix(v string) (prefix, rest string) {
	if len(v) > 2 {
		for _, p := range prefixes {
			if strings.HasPrefix(v, p) && (v[2] >= '0' && v[2] <= '9' || v[2] == '-' || v[2] == '.') {
				return p, v[2:]
			}
		}
	}
	return "", v
}

// dateValue parses [prefix]date. ap widens the range by a tenth of its
// distance from now (at least a day), as search.html suggests.
func dateValue(code, raw string, now time.Time) (hale.Value, error) {
	prefix, v := cutPrefix(raw)
	if len(v) > 10 && v[10] == 'T' && !strings.ContainsAny(v[11:], "Z+-") {
		v += "Z" // a dateTime without a zone is taken as UTC
	}
	lo, hi, ok := DateRange(v)
	if !ok {
		return hale.Value{}, hale.Errorf(hale.KindInvalid, "%s: %q is not a date (expected e.g. 2024, 2024-05, 2024-05-01 or 2024-05-01T10:00:00Z, optionally after a prefix such as ge)", code, raw)
	}
	if prefix == "ap" {
		mid := (lo + hi) / 2
		gap := now.UnixMicro() - mid
		if gap < 0 {
			gap = -gap
		}
		widen := max(gap/10, int64(24*time.Hour/time.Microsecond))
		lo, hi = lo-widen, hi+widen
	}
	return hale.Value{Prefix: prefix, Lo: lo, Hi: hi}, nil
}

// numberValue parses [prefix]number or, for quantities,
// [prefix]number|system|code (or number||code).
func numberValue(code, raw string, quantity bool) (hale.Value, error) {
	prefix, v := cutPrefix(raw)
	num, unit, hasUnit := strings.Cut(v, "|")
	if hasUnit && !quantity {
		return hale.Value{}, hale.Errorf(hale.KindInvalid, "%s: %q: a number has no unit", code, raw)
	}
	n, lo, hi, ok := numberRange(jsonNumber(num))
	if !ok {
		return hale.Value{}, hale.Errorf(hale.KindInvalid, "%s: %q is not a number", code, raw)
	}
	if prefix == "ap" {
		w := math.Abs(n) / 10
		lo, hi = min(lo, n-w), max(hi, n+w)
	}
	out := hale.Value{Prefix: prefix, Number: n, NumberLo: lo, NumberHi: hi}
	if hasUnit {
		system, ucode, _ := strings.Cut(unit, "|")
		if strings.Contains(ucode, "|") {
			return hale.Value{}, hale.Errorf(hale.KindInvalid, "%s: %q: expected number|system|code", code, raw)
		}
		out.System, out.Code, out.NoSystem = system, ucode, system == ""
		if (system == "http://unitsofmeasure.org" || system == "") && ucode != "" {
			if c, clo, ok := ucum.Canonical(ucode, lo); ok {
				_, chi, _ := ucum.Canonical(ucode, hi)
				out.CanonCode, out.CanonNumberLo, out.CanonNumberHi = c, clo, chi
			}
		}
	}
	return out, nil
}

// parseComposite parses a composite value "a$b" (components in order).
func parseComposite(p *param, modifier, raw string, opt Options) (hale.Clause, bool, error) {
	if modifier != "" {
		return hale.Clause{}, false, nil
	}
	c := hale.Clause{Param: p.def.Code, Type: hale.TypeComposite}
	for _, alt := range splitComma(raw) {
		parts := strings.Split(alt, "$")
		if len(parts) != len(p.components) {
			return c, false, hale.Errorf(hale.KindInvalid, "%s takes %d components separated by $, not %q", p.def.Code, len(p.components), alt)
		}
		var comps []hale.Clause
		for i, part := range parts {
			sub := &param{typ: p.components[i].typ, def: &fhir.SearchParam{Code: p.def.Code + "#" + strconv.Itoa(i), Type: string(p.components[i].typ)}}
			cc, ok, err := simpleParam(sub, sub.def.Code, "", strings.ReplaceAll(part, ",", `\,`), opt)
			if err != nil || !ok {
				return c, ok, err
			}
			comps = append(comps, cc)
		}
		c.Composite = append(c.Composite, comps)
	}
	return c, true, nil
}

func uniqStrings(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
