package search

import (
	"net/url"
	"sort"
	"strings"

	"github.com/hale-ehr/hale"
)

// resultParams are the search result parameters (search.html#return) and
// format parameters: they shape the answer, not the match.
var resultParams = map[string]bool{
	"_count": true, "_sort": true, "_format": true, "_pretty": true, "_summary": true,
	"_elements": true, "_include": true, "_revinclude": true, "_total": true,
	"_contained": true, "_containedType": true, "_cursor": true, "_offset": true,
}

// IsResultParam reports whether name is a result or format parameter.
func IsResultParam(name string) bool { return resultParams[name] }

// Query is a parsed search.
type Query struct {
	Matches []hale.Match
	// Ignored lists the parameters that were not applied (unknown or
	// unsupported), as name[:modifier].
	Ignored []string
}

// Parse turns the search parameters of a type search into store matches.
// Result parameters are skipped. Unknown or unsupported parameters are
// collected in Ignored; the caller decides whether that is an error (it is
// for conditional interactions, where ignoring a criterion could select the
// wrong resource). A malformed value is a KindInvalid error.
func Parse(resourceType string, q url.Values) (*Query, error) {
	out := &Query{}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names) // deterministic match order
	for _, key := range names {
		name, modifier, _ := strings.Cut(key, ":")
		if IsResultParam(name) {
			continue
		}
		for _, raw := range q[key] {
			m, ok, err := parseOne(resourceType, name, modifier, raw)
			if err != nil {
				return nil, err
			}
			if !ok {
				out.Ignored = append(out.Ignored, key)
				break
			}
			out.Matches = append(out.Matches, m)
		}
	}
	return out, nil
}

// ParseConditional parses the query of a conditional interaction
// ("identifier=http://x|1&family=Doe"). Every criterion must be supported,
// and there must be at least one.
func ParseConditional(resourceType, rawQuery string) ([]hale.Match, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, hale.Errorf(hale.KindInvalid, "malformed search criteria %q: %v", rawQuery, err)
	}
	parsed, err := Parse(resourceType, q)
	if err != nil {
		return nil, err
	}
	if len(parsed.Ignored) > 0 {
		return nil, hale.Errorf(hale.KindInvalid, "search parameter %q is not supported for %s in conditional interactions", parsed.Ignored[0], resourceType)
	}
	if len(parsed.Matches) == 0 {
		return nil, hale.Errorf(hale.KindInvalid, "conditional interaction needs at least one search criterion")
	}
	return parsed.Matches, nil
}

func parseOne(resourceType, name, modifier, raw string) (hale.Match, bool, error) {
	values := splitComma(raw)
	if name == "_id" {
		if modifier != "" {
			return hale.Match{}, false, nil
		}
		m := hale.Match{Param: "_id", Kind: hale.MatchID}
		for _, v := range values {
			m.Values = append(m.Values, hale.MatchValue{Code: v})
		}
		return m, true, nil
	}
	p := lookup(resourceType, name)
	if p == nil {
		return hale.Match{}, false, nil
	}
	m := hale.Match{Param: name}
	switch p.def.Type {
	case "token":
		if modifier != "" {
			return hale.Match{}, false, nil
		}
		m.Kind = hale.MatchToken
		for _, v := range values {
			m.Values = append(m.Values, tokenValue(v))
		}
	case "string":
		switch modifier {
		case "":
			m.Kind = hale.MatchString
		case "exact":
			m.Kind = hale.MatchStringExact
		case "contains":
			m.Kind = hale.MatchStringContains
		default:
			return hale.Match{}, false, nil
		}
		for _, v := range values {
			if m.Kind != hale.MatchStringExact {
				v = Fold(v)
			}
			m.Values = append(m.Values, hale.MatchValue{Code: v})
		}
	case "reference":
		m.Kind = hale.MatchReference
		for _, v := range values {
			mv, err := referenceValue(p, modifier, v)
			if err != nil {
				return hale.Match{}, false, err
			}
			if mv == nil {
				return hale.Match{}, false, nil
			}
			m.Values = append(m.Values, *mv)
		}
	default:
		return hale.Match{}, false, nil
	}
	return m, true, nil
}

func tokenValue(v string) hale.MatchValue {
	system, code, hasBar := strings.Cut(v, "|")
	switch {
	case !hasBar:
		return hale.MatchValue{Code: v}
	case system == "":
		return hale.MatchValue{Code: code, NoSystem: true}
	case code == "":
		return hale.MatchValue{System: system, AnyCode: true}
	}
	return hale.MatchValue{System: system, Code: code}
}

func referenceValue(p *param, modifier, v string) (*hale.MatchValue, error) {
	if modifier != "" {
		// reference:Type/id forms: subject:Patient=123
		if !isIdent(modifier) || strings.Contains(v, "/") {
			return nil, nil
		}
		if !ValidID(v) {
			return nil, hale.Errorf(hale.KindInvalid, "invalid id %q in %s:%s", v, p.def.Code, modifier)
		}
		return &hale.MatchValue{TargetType: modifier, TargetID: v}, nil
	}
	if t, id, ok := ParseLocalReference(v); ok {
		return &hale.MatchValue{TargetType: t, TargetID: id}, nil
	}
	if strings.Contains(v, ":") { // absolute URL or canonical
		return &hale.MatchValue{URL: v}, nil
	}
	if !ValidID(v) {
		return nil, hale.Errorf(hale.KindInvalid, "invalid reference %q for %s", v, p.def.Code)
	}
	mv := &hale.MatchValue{TargetID: v}
	if len(p.def.Target) == 1 {
		mv.TargetType = p.def.Target[0]
	}
	return mv, nil
}

// splitComma splits a parameter value on commas that are not escaped with
// a backslash (search.html#escaping), and unescapes \, \| and \$.
func splitComma(s string) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) && (s[i+1] == ',' || s[i+1] == '$' || s[i+1] == '\\') {
			b.WriteByte(s[i+1])
			i++
			continue
		}
		if c == ',' {
			out = append(out, b.String())
			b.Reset()
			continue
		}
		b.WriteByte(c)
	}
	return append(out, b.String())
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
