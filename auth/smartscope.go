package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hale-ehr/hale"
)

// The scopes of SMART App Launch 2.x ("Scopes and Launch Context",
// hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html) beyond
// the resource scopes of scope.go: launch context, identity and refresh
// lifetime. An app's granted scope is what it asked for, narrowed to its
// registration and to what the user's role permits (GrantScopes).

// Non-resource scopes Hale knows.
const (
	ScopeLaunch          = "launch"           // EHR launch: the context of the launch parameter
	ScopeLaunchPatient   = "launch/patient"   // standalone: a patient chosen at sign-in
	ScopeLaunchEncounter = "launch/encounter" // the encounter of an EHR launch
	ScopeOpenID          = "openid"           // an id_token
	ScopeFHIRUser        = "fhirUser"         // the fhirUser claim in the id_token
	ScopeOffline         = "offline_access"   // a refresh token that outlives the sign-in
	ScopeOnline          = "online_access"    // a refresh token for as long as a session could last
)

// contextScopes grant no data by themselves: every app client may be
// given them without registering them.
var contextScopes = []string{ScopeLaunch, ScopeLaunchPatient, ScopeLaunchEncounter, ScopeOpenID, ScopeFHIRUser}

// lifetimeScopes lengthen what a grant is worth in time: a client gets
// them only when its registration lists them.
var lifetimeScopes = []string{ScopeOffline, ScopeOnline}

// ValidScope reports whether s is a scope Hale understands: a resource
// scope (v1 or v2, granular or not) or one of the scopes above.
func ValidScope(s string) bool {
	if slices.Contains(contextScopes, s) || slices.Contains(lifetimeScopes, s) {
		return true
	}
	_, ok := parseScope(s)
	return ok
}

// RolePolicy says how far an app acting for a user of a role may reach,
// as the widest resource scopes (SMART v2 syntax, patient/ and user/)
// the role may hold. The access-control package supplies the real table;
// the store handle still checks every request against the role, so this
// only keeps a token from claiming more than the role could use.
type RolePolicy interface {
	RoleScopes(role hale.Role) []string
}

// RoleScopes is a RolePolicy as a table.
type RoleScopes map[hale.Role][]string

// RoleScopes returns the table's line for role (nil: nothing).
func (t RoleScopes) RoleScopes(role hale.Role) []string { return t[role] }

// DefaultRoleScopes is the permissive default used when Options.Roles is
// nil: every user role may hold every patient/ and user/ scope, except
// that a patient holds no user/ scope beyond reading and searching
// (their own record, which the store handle enforces) and admins hold
// only user/ scopes. It narrows nothing a role could not do anyway; the
// access-control package's table is the one that should be wired.
var DefaultRoleScopes = RoleScopes{
	hale.RolePhysician: {"patient/*.cruds", "user/*.cruds"},
	hale.RoleNurse:     {"patient/*.cruds", "user/*.cruds"},
	hale.RoleFrontDesk: {"patient/*.cruds", "user/*.cruds"},
	hale.RoleBilling:   {"patient/*.cruds", "user/*.cruds"},
	hale.RoleAdmin:     {"user/*.cruds"},
	hale.RolePatient:   {"patient/*.cruds", "user/*.rs"},
}

// GrantScopes returns the scopes an app gets: each requested scope that
// Hale knows, narrowed to the client's registered scopes and then to the
// role's, in the order asked and without duplicates. Resource scopes are
// intersected (scope.go): type * or equal, common permission letters, a
// granular ?param=value kept; system/ scopes are never granted to a
// user's app. Context scopes are kept as asked; offline_access and
// online_access only when registered (and offline_access wins over
// online_access). Unknown or malformed scopes are dropped: OAuth lets
// the server grant less than asked, and the token response says what was
// granted.
func GrantScopes(requested, registered, role []string) []string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, r := range requested {
		switch {
		case slices.Contains(contextScopes, r):
			add(r)
			continue
		case slices.Contains(lifetimeScopes, r):
			if slices.Contains(registered, r) {
				add(r)
			}
			continue
		}
		rq, ok := parseScope(r)
		if !ok || rq.context == "system" {
			continue
		}
		for _, g := range registered {
			gs, ok := parseScope(g)
			if !ok {
				continue
			}
			in, ok := intersect(rq, gs)
			if !ok {
				continue
			}
			for _, p := range role {
				ps, ok := parseScope(p)
				if !ok {
					continue
				}
				if both, ok := intersect(in, ps); ok {
					add(both.String())
				}
			}
		}
	}
	if slices.Contains(out, ScopeOffline) {
		out = slices.DeleteFunc(out, func(s string) bool { return s == ScopeOnline })
	}
	return out
}

// hasPatientScope reports whether scopes include a patient/ resource
// scope, which obliges the server to give a patient context.
func hasPatientScope(scopes []string) bool {
	for _, s := range scopes {
		if sc, ok := parseScope(s); ok && sc.context == "patient" {
			return true
		}
	}
	return false
}

// optionalScope is a scope the user may untick on the consent screen: a
// resource scope or a refresh lifetime. Context and identity scopes
// come with the launch and are not a choice.
func optionalScope(s string) bool {
	return !slices.Contains(contextScopes, s)
}

// DescribeScope says what a scope lets the app do, in plain language,
// for the consent screen.
func DescribeScope(s string) string {
	switch s {
	case ScopeLaunch:
		return "Use the patient and encounter you have open in Hale"
	case ScopeLaunchPatient:
		return "Know which patient you chose"
	case ScopeLaunchEncounter:
		return "Know which encounter you have open"
	case ScopeOpenID:
		return "Know who you are (your Hale account)"
	case ScopeFHIRUser:
		return "See your own record as a user (your Practitioner or Patient record)"
	case ScopeOffline:
		return "Keep this access after you sign out, until you revoke it or it expires"
	case ScopeOnline:
		return "Keep this access for as long as a sign-in lasts"
	}
	sc, ok := parseScope(s)
	if !ok {
		return s
	}
	verbs := map[rune]string{'c': "create", 'r': "read", 'u': "update", 'd': "delete", 's': "search"}
	var vs []string
	for _, c := range sc.perms {
		vs = append(vs, verbs[c])
	}
	what := "all kinds of records"
	if sc.typ != "*" {
		what = sc.typ + " records"
	}
	var whose string
	switch sc.context {
	case "patient":
		whose = "of the selected patient"
	case "user":
		whose = "you have access to"
	default:
		whose = "of every patient"
	}
	d := fmt.Sprintf("%s %s %s", capitalize(joinWords(vs)), what, whose)
	if sc.query != "" {
		d += ", only those where " + strings.ReplaceAll(sc.query, "&", " and ")
	}
	return d
}

func joinWords(ws []string) string {
	switch len(ws) {
	case 0:
		return ""
	case 1:
		return ws[0]
	}
	return strings.Join(ws[:len(ws)-1], ", ") + " and " + ws[len(ws)-1]
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
