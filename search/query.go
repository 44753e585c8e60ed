package search

import (
	"net/url"
	"strings"

	"github.com/hale-ehr/hale"
)

// ParseConditional parses the criteria of a conditional interaction
// ("identifier=http://x|1&family=Doe") into a query for at most two
// matches (enough to tell none, one and several). Every criterion must be
// supported, and there must be at least one: ignoring a criterion could
// select the wrong resource.
func ParseConditional(reg *Registry, resourceType, rawQuery string) (*hale.Query, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, hale.Errorf(hale.KindInvalid, "malformed search criteria %q: %v", rawQuery, err)
	}
	r, err := ParseRequest([]string{resourceType}, q, Options{DefaultCount: 2, MaxCount: 2, Registry: reg})
	if err != nil {
		return nil, err
	}
	if len(r.Ignored) > 0 {
		return nil, hale.Errorf(hale.KindInvalid, "search parameter %q is not supported for %s in conditional interactions", r.Ignored[0], resourceType)
	}
	if len(r.Query.Where) == 0 {
		return nil, hale.Errorf(hale.KindInvalid, "conditional interaction needs at least one search criterion")
	}
	r.Query.Count, r.Query.Total, r.Query.Sort = 2, false, nil
	return &r.Query, nil
}

// tokenValue parses a token search value: code, system|code, |code or
// system| (search.html#token).
func tokenValue(v string) hale.Value {
	system, code, hasBar := strings.Cut(v, "|")
	switch {
	case !hasBar:
		return hale.Value{Code: v}
	case system == "":
		return hale.Value{Code: code, NoSystem: true}
	case code == "":
		return hale.Value{System: system, AnyCode: true}
	}
	return hale.Value{System: system, Code: code}
}

// referenceValue parses a reference search value: Type/id, id (with the
// type from a :Type modifier or the parameter's only target), or an
// absolute URL.
func referenceValue(p *param, modifier, v string) (*hale.Value, error) {
	if modifier != "" {
		// reference:Type/id forms: subject:Patient=123
		if !isIdent(modifier) || strings.Contains(v, "/") {
			return nil, nil
		}
		if !ValidID(v) {
			return nil, hale.Errorf(hale.KindInvalid, "invalid id %q in %s:%s", v, p.def.Code, modifier)
		}
		return &hale.Value{TargetType: modifier, TargetID: v}, nil
	}
	if t, id, ok := ParseLocalReference(v); ok {
		return &hale.Value{TargetType: t, TargetID: id}, nil
	}
	if strings.Contains(v, ":") { // absolute URL or canonical
		return &hale.Value{URL: v}, nil
	}
	if !ValidID(v) {
		return nil, hale.Errorf(hale.KindInvalid, "invalid reference %q for %s", v, p.def.Code)
	}
	mv := &hale.Value{TargetID: v}
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
