package search

import (
	"strings"
)

// This file evaluates the simple subset of FHIRPath that most R4 search
// parameter expressions use: dotted paths, unions with "|", "as Type"
// (both "(X as T)" and "X.as(T)"), ofType(T), where(resolve() is T) and
// where(field='literal'). It lets the store index identifiers, codes,
// strings and references before the full FHIRPath engine exists; an
// expression outside the subset reports ok=false and is not indexed.

type step struct {
	name   string // element name; "" for a filter-only step
	as     string // choice type to select ("as T", "ofType(T)")
	isType string // where(resolve() is T)
	eqKey  string // where(eqKey='eqVal')
	eqVal  string
}

type compiledPath struct {
	root  string // resource type the path starts at
	steps []step
}

// compileRelative compiles a path that starts at an element rather than
// at a resource type, as composite components do ("value.as(Quantity)").
func compileRelative(expr string) (compiledPath, bool) {
	return compile("X." + strings.TrimSpace(expr))
}

// compile turns one union member like "Patient.name.family" or
// "(Observation.value as CodeableConcept)" into steps.
func compile(expr string) (compiledPath, bool) {
	e := strings.TrimSpace(expr)
	asType := ""
	if strings.HasPrefix(e, "(") && strings.HasSuffix(e, ")") {
		e = strings.TrimSpace(e[1 : len(e)-1])
	}
	if i := strings.Index(e, " as "); i > 0 {
		asType = strings.TrimSpace(e[i+4:])
		e = strings.TrimSpace(e[:i])
		if !isIdent(asType) {
			return compiledPath{}, false
		}
	}
	parts, ok := splitDots(e)
	if !ok || !isIdent(parts[0]) {
		return compiledPath{}, false
	}
	cp := compiledPath{root: parts[0]}
	for _, p := range parts[1:] {
		switch {
		case isIdent(p):
			cp.steps = append(cp.steps, step{name: p})
		case strings.HasPrefix(p, "as(") && strings.HasSuffix(p, ")"),
			strings.HasPrefix(p, "ofType(") && strings.HasSuffix(p, ")"):
			t := p[strings.Index(p, "(")+1 : len(p)-1]
			if !isIdent(t) || len(cp.steps) == 0 {
				return compiledPath{}, false
			}
			cp.steps[len(cp.steps)-1].as = t
		case strings.HasPrefix(p, "where(") && strings.HasSuffix(p, ")"):
			cond := strings.TrimSpace(p[6 : len(p)-1])
			if t, ok := strings.CutPrefix(cond, "resolve() is "); ok && isIdent(strings.TrimSpace(t)) {
				cp.steps = append(cp.steps, step{isType: strings.TrimSpace(t)})
				continue
			}
			k, v, ok := strings.Cut(cond, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || !isIdent(k) || len(v) < 2 || v[0] != '\'' || v[len(v)-1] != '\'' || strings.ContainsAny(v[1:len(v)-1], "'\\") {
				return compiledPath{}, false
			}
			cp.steps = append(cp.steps, step{eqKey: k, eqVal: v[1 : len(v)-1]})
		default:
			return compiledPath{}, false
		}
	}
	if asType != "" {
		if len(cp.steps) == 0 || cp.steps[len(cp.steps)-1].name == "" {
			return compiledPath{}, false
		}
		cp.steps[len(cp.steps)-1].as = asType
	}
	return cp, true
}

// splitDots splits on dots outside parentheses and quotes.
func splitDots(s string) ([]string, bool) {
	var parts []string
	depth, start := 0, 0
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			inQuote = !inQuote
		case inQuote:
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return nil, false
			}
		case c == '.' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if depth != 0 || inQuote {
		return nil, false
	}
	return append(parts, s[start:]), true
}

func isIdent(s string) bool {
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

// node is one value reached by a path with the type it was selected as
// (known only through a choice element's suffix; "" otherwise).
type node struct {
	v      any
	typ    string
	filter string // resolve() is T: only references to T count
}

// eval applies the compiled steps to a resource (or, for a relative
// path, to an element).
func (cp compiledPath) eval(res any) []node {
	cur := []node{{v: res}}
	for _, s := range cp.steps {
		var next []node
		for _, n := range cur {
			switch {
			case s.isType != "":
				n.filter = s.isType
				next = append(next, n)
			case s.eqKey != "":
				if m, ok := n.v.(map[string]any); ok {
					if str, ok := m[s.eqKey].(string); ok && str == s.eqVal {
						next = append(next, n)
					}
				}
			default:
				m, ok := n.v.(map[string]any)
				if !ok {
					continue
				}
				next = appendChild(next, m, s)
			}
		}
		cur = next
		if len(cur) == 0 {
			break
		}
	}
	return cur
}

func appendChild(out []node, m map[string]any, s step) []node {
	add := func(v any, typ string) {
		if arr, ok := v.([]any); ok {
			for _, e := range arr {
				if e != nil {
					out = append(out, node{v: e, typ: typ})
				}
			}
			return
		}
		if v != nil {
			out = append(out, node{v: v, typ: typ})
		}
	}
	if s.as != "" {
		if v, ok := m[s.name+upperFirst(s.as)]; ok {
			add(v, s.as)
		} else if v, ok := m[s.name]; ok && s.as != "" {
			// "X.as(T)" on a non-choice element: keep it; the value's
			// shape decides.
			add(v, s.as)
		}
		return out
	}
	if v, ok := m[s.name]; ok {
		add(v, "")
		return out
	}
	// A choice element named without a type: valueQuantity, valueString, …
	for k, v := range m {
		if len(k) > len(s.name) && strings.HasPrefix(k, s.name) && k[len(s.name)] >= 'A' && k[len(s.name)] <= 'Z' {
			add(v, k[len(s.name):])
		}
	}
	return out
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
