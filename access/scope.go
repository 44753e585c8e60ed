package access

import (
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// This file reads SMART on FHIR scopes (SMART App Launch 2.x, "Scopes
// and Launch Context", scopes-and-launch-context.html): v2
// <context>/<type>.<cruds>[?param=value&…] and the v1 forms .read, .write
// and .* they replace. A scope that does not parse grants nothing; it is
// never an error, since a token may carry scopes meant for others
// (openid, fhirUser, launch/patient, offline_access).

// Interaction letters of SMART v2 scopes, in their required order.
const letters = "cruds"

// Interactions, as the letters of SMART v2 scopes.
const (
	Create = 'c'
	Read   = 'r' // read, vread, instance history; includes and references followed
	Update = 'u' // update and patch
	Delete = 'd'
	Search = 's' // search, type and system history, $everything's compartment
)

// scopeContext is the first part of a scope.
type scopeContext string

const (
	patientContext scopeContext = "patient" // the launch patient's compartment
	userContext    scopeContext = "user"    // what the user may see
	systemContext  scopeContext = "system"  // a backend-services client
)

// scope is one parsed resource scope.
type scope struct {
	context scopeContext
	typ     string // a resource type, or "*"
	letters string // subset of "cruds", in that order
	// where narrows a granular scope (…rs?category=…): the clauses its
	// query parses to; nil for a whole-type scope.
	where []hale.Clause
}

// parseScope parses one scope; ok is false for a scope that grants no
// resource access (malformed, unknown type, or not a resource scope).
func parseScope(reg *search.Registry, s string) (sc scope, ok bool) {
	ctx, rest, found := strings.Cut(s, "/")
	if !found {
		return sc, false
	}
	switch c := scopeContext(ctx); c {
	case patientContext, userContext, systemContext:
		sc.context = c
	default:
		return sc, false // launch/patient and the like
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 {
		return sc, false
	}
	sc.typ, sc.letters = rest[:dot], rest[dot+1:]
	if sc.typ != "*" && !fhir.IsResourceType(sc.typ) {
		return sc, false
	}
	switch sc.letters {
	case "read": // v1
		sc.letters = "rs"
	case "write":
		sc.letters = "cud"
	case "*":
		sc.letters = letters
	default:
		if !inOrder(sc.letters) {
			return sc, false
		}
	}
	if hasQuery {
		// Granular scopes name one type; the query is a search on it,
		// with every parameter understood (ignoring one would widen
		// the scope).
		if sc.typ == "*" || query == "" {
			return sc, false
		}
		q, err := search.ParseConditional(reg, sc.typ, query)
		if err != nil {
			return sc, false
		}
		sc.where = q.Where
	}
	return sc, true
}

// inOrder reports whether s is a non-empty subsequence of "cruds".
func inOrder(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for _, c := range []byte(s) {
		j := strings.IndexByte(letters[i:], c)
		if j < 0 {
			return false
		}
		i += j + 1
	}
	return true
}

// grants reports whether the scope covers interaction l on typ.
func (sc *scope) grants(typ string, l byte) bool {
	return (sc.typ == "*" || sc.typ == typ) && strings.IndexByte(sc.letters, l) >= 0
}
