package auth

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
)

// oracleScope is the test's own reading of a SMART resource scope
// (SMART App Launch 2.x, "Scopes and Launch Context"), written apart from
// scope.go so that the two can disagree.
type oracleScope struct {
	ctx, typ, perms, query string
}

var oracleType = regexp.MustCompile(`^(\*|[A-Z][A-Za-z]+)$`)

func oracleParse(s string) (oracleScope, bool) {
	ctx, rest, ok := strings.Cut(s, "/")
	if !ok || ctx != "patient" && ctx != "user" && ctx != "system" {
		return oracleScope{}, false
	}
	typ, rest, ok := strings.Cut(rest, ".")
	if !ok || !oracleType.MatchString(typ) {
		return oracleScope{}, false
	}
	perm, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery && query == "" {
		return oracleScope{}, false
	}
	switch perm {
	case "read":
		perm = "rs"
	case "write":
		perm = "cud"
	case "*":
		perm = "cruds"
	default:
		last := -1
		for _, c := range perm {
			i := strings.IndexRune("cruds", c)
			if i <= last {
				return oracleScope{}, false
			}
			last = i
		}
		if perm == "" {
			return oracleScope{}, false
		}
		return oracleScope{ctx, typ, perm, query}, true
	}
	if hasQuery { // v1 forms have no granular variant
		return oracleScope{}, false
	}
	return oracleScope{ctx, typ, perm, ""}, true
}

// within: everything g allows, x allows.
func (g oracleScope) within(x oracleScope) bool {
	if g.ctx != x.ctx || x.typ != "*" && x.typ != g.typ || x.query != "" && x.query != g.query {
		return false
	}
	for _, c := range g.perms {
		if !strings.ContainsRune(x.perms, c) {
			return false
		}
	}
	return true
}

func withinAny(g oracleScope, list []string) bool {
	for _, s := range list {
		if x, ok := oracleParse(s); ok && g.within(x) {
			return true
		}
	}
	return false
}

// expand is a set of scopes as (context, type, letter, query) tuples.
func expand(list []string) []string {
	var out []string
	for _, s := range list {
		if o, ok := oracleParse(s); ok {
			for _, c := range o.perms {
				out = append(out, fmt.Sprintf("%s/%s.%c?%s", o.ctx, o.typ, c, o.query))
			}
		} else {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// genScope makes a scope string, valid or not.
func genScope(r *rand.Rand) string {
	specials := []string{"launch", "launch/patient", "launch/encounter", "openid", "fhirUser", "offline_access",
		"online_access", "Launch", "offline", "profile", "launch/Patient"}
	if r.IntN(6) == 0 {
		return specials[r.IntN(len(specials))]
	}
	ctxs := []string{"patient", "patient", "user", "user", "system", "Patient", "", "admin"}
	types := []string{"Observation", "Observation", "Patient", "*", "*", "Condition", "observation", "Obs-1", ""}
	perms := []string{"read", "write", "*", "", "x", "rr", "sc", "sr", "dc", "cruds", "crud"}
	var p string
	if r.IntN(2) == 0 {
		p = perms[r.IntN(len(perms))]
	} else {
		for _, c := range "cruds" {
			if r.IntN(2) == 0 {
				p += string(c)
			}
		}
		if r.IntN(8) == 0 && len(p) > 1 { // shuffle: usually a bad order
			b := []byte(p)
			r.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
			p = string(b)
		}
	}
	s := ctxs[r.IntN(len(ctxs))] + "/" + types[r.IntN(len(types))] + "." + p
	switch r.IntN(8) {
	case 0:
		s += "?category=vital-signs"
	case 1:
		s += "?category=laboratory"
	case 2:
		s += "?"
	}
	return s
}

func genValid(r *rand.Rand, n int, extra ...string) []string {
	var out []string
	for len(out) < n {
		if s := genScope(r); oracleValidResource(s) {
			out = append(out, s)
		}
	}
	for _, x := range extra {
		if r.IntN(2) == 0 {
			out = append(out, x)
		}
	}
	return out
}

func oracleValidResource(s string) bool { _, ok := oracleParse(s); return ok }

// TestScopeNarrowing is test A4: 500 generated scope strings (v1, v2,
// wildcards, bad letter order, unknown contexts and types, query
// suffixes) through the grammar, and 500 requests narrowed by a random
// registration and role: no granted scope is wider than requested ∩
// registration ∩ role; v1 .read/.write/.* grant exactly what .rs/.cud/
// .cruds grant.
func TestScopeNarrowing(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 4))
	specials := append(slices.Clone(contextScopes), lifetimeScopes...)
	disagree := 0
	for range 500 {
		s := genScope(r)
		want := oracleValidResource(s) || slices.Contains(specials, s)
		if ValidScope(s) != want {
			disagree++
			t.Errorf("ValidScope(%q) = %v, the oracle says %v", s, !want, want)
		}
	}
	wider, grantedTotal := 0, 0
	for range 500 {
		var requested []string
		for range 1 + r.IntN(6) {
			requested = append(requested, genScope(r))
		}
		registered := genValid(r, 1+r.IntN(4), "offline_access", "online_access")
		role := genValid(r, 1+r.IntN(3))
		if r.IntN(3) == 0 {
			role = DefaultRoleScopes.RoleScopes([]hale.Role{hale.RolePhysician, hale.RoleNurse, hale.RolePatient, hale.RoleAdmin}[r.IntN(4)])
		}
		granted := GrantScopes(requested, registered, role)
		grantedTotal += len(granted)
		for _, g := range granted {
			ok := slices.Contains(requested, g)
			switch {
			case slices.Contains(contextScopes, g):
			case slices.Contains(lifetimeScopes, g):
				ok = ok && slices.Contains(registered, g)
			default:
				o, valid := oracleParse(g)
				ok = valid && o.ctx != "system" && withinAny(o, requested) && withinAny(o, registered) && withinAny(o, role)
			}
			if !ok {
				wider++
				t.Errorf("granted %q: requested %v, registered %v, role %v", g, requested, registered, role)
			}
		}
	}
	// v1 ≡ v2: the same request written both ways grants the same.
	same, cases := 0, 0
	v1to2 := strings.NewReplacer(".read", ".rs", ".write", ".cud", ".*", ".cruds")
	for cases < 100 {
		requested := genValid(r, 1+r.IntN(4))
		if !slices.ContainsFunc(requested, func(s string) bool {
			return strings.HasSuffix(s, ".read") || strings.HasSuffix(s, ".write") || strings.HasSuffix(s, ".*")
		}) {
			continue
		}
		cases++
		registered, role := genValid(r, 1+r.IntN(4)), genValid(r, 1+r.IntN(3))
		var v2 []string
		for _, s := range requested {
			v2 = append(v2, v1to2.Replace(s))
		}
		a, b := expand(GrantScopes(requested, registered, role)), expand(GrantScopes(v2, registered, role))
		if slices.Equal(a, b) {
			same++
		} else {
			t.Errorf("v1 %v → %v; v2 %v → %v", requested, a, v2, b)
		}
	}
	t.Logf("A4 scopes: grammar disagreements with the oracle: %d / 500; granted wider than requested ∩ registration ∩ role: %d / 500 requests (%d scopes granted); "+
		"v1 and v2 forms granting the same: %d / %d", disagree, wider, grantedTotal, same, cases)
	if grantedTotal < 100 {
		t.Fatalf("only %d scopes granted in 500 requests: the test is not exercising narrowing", grantedTotal)
	}
	// Spot checks.
	for _, c := range []struct{ req, reg, role, want string }{
		{"patient/Observation.rs", "patient/*.cruds", "patient/*.cruds", "patient/Observation.rs"},
		{"patient/*.cruds", "patient/Observation.rs?category=vital-signs", "patient/*.rs", "patient/Observation.rs?category=vital-signs"},
		{"patient/Observation.read", "patient/*.r", "patient/*.cruds", "patient/Observation.r"},
		{"user/*.rs system/*.rs", "user/Patient.cruds system/*.rs", "user/*.cruds", "user/Patient.rs"},
		{"openid fhirUser offline_access online_access", "patient/*.rs offline_access online_access", "", "openid fhirUser offline_access"},
		{"online_access", "patient/*.rs", "", ""},
	} {
		got := strings.Join(GrantScopes(strings.Fields(c.req), strings.Fields(c.reg), strings.Fields(c.role)), " ")
		if got != c.want {
			t.Errorf("GrantScopes(%q, %q, %q) = %q, want %q", c.req, c.reg, c.role, got, c.want)
		}
	}
}
