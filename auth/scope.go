package auth

import (
	"regexp"
	"slices"
	"strings"
)

// SMART scopes (SMART App Launch 2.x, "Scopes and Launch Context"): v2
// <patient|user|system>/<Type|*>.<c r u d s>[?param=value] and the v1
// forms .read (= rs), .write (= cud) and .* (= cruds). Backend Services
// grants the intersection of what the client asks for and what it was
// registered with, so a token is never wider than either.

type scope struct {
	context string // patient, user or system
	typ     string // a resource type or *
	perms   string // a non-empty subsequence of "cruds"
	query   string // granular restriction, "" for none
	v1      string // the v1 suffix as written (read, write, *), "" for v2
}

var (
	scopeRE = regexp.MustCompile(`^(patient|user|system)/(\*|[A-Z][A-Za-z]{1,63})\.([a-z*]{1,5})(?:\?(.{1,512}))?$`)
	v1Perms = map[string]string{"read": "rs", "write": "cud", "*": "cruds"}
)

// parseScope parses one clinical-data scope; ok is false for anything
// else (openid, launch, malformed).
func parseScope(s string) (scope, bool) {
	m := scopeRE.FindStringSubmatch(s)
	if m == nil {
		// v1 suffixes longer than the letter group
		if i := strings.LastIndexByte(s, '.'); i > 0 {
			if p, ok := v1Perms[s[i+1:]]; ok {
				if sc, ok := parseScope(s[:i] + "." + p); ok && sc.query == "" {
					sc.v1 = s[i+1:]
					return sc, true
				}
			}
		}
		return scope{}, false
	}
	sc := scope{context: m[1], typ: m[2], query: m[4]}
	if p, ok := v1Perms[m[3]]; ok {
		sc.perms, sc.v1 = p, m[3]
		return sc, sc.query == ""
	}
	// Letters in the order c, r, u, d, s, each at most once.
	pos := 0
	for _, c := range m[3] {
		i := strings.IndexRune("cruds"[pos:], c)
		if i < 0 {
			return scope{}, false
		}
		pos += i + 1
	}
	sc.perms = m[3]
	return sc, true
}

func (sc scope) String() string {
	s := sc.context + "/" + sc.typ + "."
	if sc.v1 != "" && v1Perms[sc.v1] == sc.perms {
		return s + sc.v1
	}
	s += sc.perms
	if sc.query != "" {
		s += "?" + sc.query
	}
	return s
}

// intersect is what both a and b allow, in a's form where possible; ok
// false when that is nothing.
func intersect(a, b scope) (scope, bool) {
	if a.context != b.context {
		return scope{}, false
	}
	out := scope{context: a.context, v1: a.v1}
	switch {
	case a.typ == b.typ || b.typ == "*":
		out.typ = a.typ
	case a.typ == "*":
		out.typ = b.typ
	default:
		return scope{}, false
	}
	for _, c := range "cruds" {
		if strings.ContainsRune(a.perms, c) && strings.ContainsRune(b.perms, c) {
			out.perms += string(c)
		}
	}
	if out.perms == "" {
		return scope{}, false
	}
	switch {
	case a.query == b.query || b.query == "":
		out.query = a.query
	case a.query == "":
		out.query = b.query
	default:
		return scope{}, false
	}
	if out.query != "" || out.perms != a.perms {
		out.v1 = ""
	}
	return out, true
}

// narrowScopes returns the requested scopes of context ctx narrowed to
// the registered ones, without duplicates, in the order asked.
func narrowScopes(requested, registered []string, ctx string) []string {
	var out []string
	for _, r := range requested {
		rq, ok := parseScope(r)
		if !ok || rq.context != ctx {
			continue
		}
		for _, g := range registered {
			gs, ok := parseScope(g)
			if !ok {
				continue
			}
			if in, ok := intersect(rq, gs); ok && !slices.Contains(out, in.String()) {
				out = append(out, in.String())
			}
		}
	}
	return out
}
