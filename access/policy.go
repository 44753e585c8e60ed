// Package access decides who may see and do what, and enforces it in
// the store handle: Policy.Scope wraps a hale.Store in one that can only
// read and write what a Principal may, so that every surface (FHIR API,
// web apps, bulk export, $everything) gets the same checks and no
// handler can forget one.
//
// Three things decide (docs/security.md, "Who may see what"):
//
//   - the role table (roles.go): the types and interactions (SMART's
//     c r u d s) a role may use at all;
//   - rows: a clinician (physician, nurse, front desk, billing) sees
//     the patients whose Patient.managingOrganization is one of the
//     Principal's Organizations, whose CareTeam lists the Principal's
//     FHIRUser, or who are reached through an active break-the-glass
//     grant, and the resources of those patients' compartments; a
//     patient user sees their own compartment;
//   - SMART scopes, when the Principal has any, narrow both
//     (scope.go): patient/ scopes to the launch patient's compartment,
//     granular scopes to their search.
//
// What a caller may not see looks exactly like what does not exist: the
// restriction is added to every search as clauses of its hale.Query
// (including the targets of chains and _has), so counts and pages never
// include hidden rows; a read of a hidden resource is KindNotFound.
package access

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// Break-the-glass limits.
const (
	DefaultBreakGlass = time.Hour
	MaxBreakGlass     = 4 * time.Hour
)

// Policy holds what access decisions need besides the Principal.
type Policy struct {
	// Params are the search parameters (the FHIR core's registry, with
	// the custom ones): granular scopes are searches, and a resource's
	// rows are computed with them when the database cannot be asked.
	Params *search.Registry
	// Grants keeps break-the-glass grants; nil: none can be made.
	Grants Grants
	Now    hale.Now

	// decoys are, by type, the id of a resource found hidden: what a
	// read of a missing id evaluates the rule on (store.go, Current).
	decoys sync.Map
	// basesCache keeps what the database says of referrals and consents
	// for basesTTL (basis.go).
	basesCache basesCache
}

// NewPolicy returns a Policy with the built-in search parameters, the
// system clock and no break-the-glass grants.
func NewPolicy() *Policy {
	return &Policy{Params: search.NewRegistry(), Now: time.Now}
}

// Access derives the store a request may use from the Principal in ctx
// (hale.PrincipalFrom). It returns KindUnauthorized when ctx carries
// none. The returned context carries the break-the-glass grants in force
// (hale.BreakGlassFrom), for the audit. rest.Service.Access takes it.
func (pol *Policy) Access(ctx context.Context, base hale.Store) (context.Context, hale.Store, error) {
	p := hale.PrincipalFrom(ctx)
	if p == nil {
		return ctx, nil, &hale.Error{Kind: hale.KindUnauthorized, Op: "access", Message: "authentication required"}
	}
	s, err := pol.Scope(ctx, base, p)
	if err != nil {
		return ctx, nil, err
	}
	if len(s.grants) > 0 {
		ctx = hale.WithBreakGlass(ctx, s.grants)
	}
	if len(s.bases) > 0 {
		ctx = hale.WithBases(ctx, s.bases)
	}
	return ctx, s, nil
}

// Scope returns base as p may use it. The break-the-glass grants, the
// referrals and the consents of p are read once, now (basis.go); a Store
// is meant for one request (or one export run).
func (pol *Policy) Scope(ctx context.Context, base hale.Store, p *hale.Principal) (*Store, error) {
	s := &Store{base: base, pol: pol, p: p, rules: map[ruleKey]rule{}}
	if isClinician(p.Role) {
		now := pol.Now()
		if pol.Grants != nil && p.Subject != "" {
			g, err := pol.Grants.Active(ctx, p.Subject, now)
			if err != nil {
				return nil, err
			}
			s.grants = g
		}
		b, err := pol.bases(ctx, base, p, now)
		if err != nil {
			return nil, err
		}
		s.bases = b
	}
	for _, raw := range p.Scopes {
		if sc, ok := parseScope(pol.Params, raw); ok {
			s.scopes = append(s.scopes, sc)
		}
	}
	return s, nil
}

// BreakGlass grants p emergency access to Patient/patient for d (0:
// DefaultBreakGlass, at most MaxBreakGlass), for reason. Only physicians
// and nurses may break the glass. Returns KindInvalid without a reason,
// KindForbidden for other roles and KindNotFound when the patient does
// not exist. The grant is recorded in pol.Grants and is in force for
// stores scoped from then until it expires; the audit learns of every
// access made through it from hale.BreakGlassFrom.
func (pol *Policy) BreakGlass(ctx context.Context, base hale.Store, p *hale.Principal, patient, reason string, d time.Duration) (hale.BreakGlass, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case pol.Grants == nil:
		return hale.BreakGlass{}, hale.Errorf(hale.KindNotSupported, "break-the-glass is not configured")
	case p == nil || p.Subject == "":
		return hale.BreakGlass{}, &hale.Error{Kind: hale.KindUnauthorized, Op: "access.BreakGlass", Message: "authentication required"}
	case !isClinician(p.Role) || p.Role == hale.RoleFrontDesk || p.Role == hale.RoleBilling:
		return hale.BreakGlass{}, hale.Errorf(hale.KindForbidden, "only physicians and nurses may break the glass")
	case reason == "":
		return hale.BreakGlass{}, hale.Errorf(hale.KindInvalid, "break-the-glass needs a reason")
	case d < 0 || d > MaxBreakGlass:
		return hale.BreakGlass{}, hale.Errorf(hale.KindInvalid, "break-the-glass lasts at most %v", MaxBreakGlass)
	case d == 0:
		d = DefaultBreakGlass
	}
	err := base.View(ctx, func(r hale.Reader) error {
		v, err := r.Current(ctx, "Patient", patient)
		if err == nil && v.Deleted {
			err = hale.Errorf(hale.KindNotFound, "Patient/%s not found", patient)
		}
		return err
	})
	if err != nil {
		return hale.BreakGlass{}, err
	}
	now := pol.Now().UTC()
	g := hale.BreakGlass{Subject: p.Subject, Patient: patient, Reason: reason, Start: now, Expires: now.Add(d)}
	return g, pol.Grants.Add(ctx, g)
}

func isClinician(r hale.Role) bool {
	switch r {
	case hale.RolePhysician, hale.RoleNurse, hale.RoleFrontDesk, hale.RoleBilling:
		return true
	}
	return false
}

// rule is what a Principal may do with one type for one interaction:
// nothing (deny), everything (no clauses), or the resources that satisfy
// every clause of where.
type rule struct {
	deny  bool
	where []hale.Clause
	// proxy: the resource is visible when the resources it stands for
	// are (proxy.go: a Binary's securityContext or the DocumentReference
	// that points to it, a Group's members). It is decided per resource,
	// never in a search: such types are not searchable by the callers
	// this applies to.
	proxy bool
}

var denyAll = rule{deny: true}

func (r rule) all() bool { return !r.deny && !r.proxy && len(r.where) == 0 }

// and is the rule that holds where both hold.
func and(a, b rule) rule {
	if a.deny || b.deny {
		return denyAll
	}
	return rule{where: slices.Concat(a.where, b.where)}
}

// maxClauses bounds the clauses a union of granular scopes may expand to.
const maxClauses = 32

// or is the rule that holds where either holds, kept as clauses that
// must all hold: (a1 ∧ a2) ∨ b = (a1 ∨ b) ∧ (a2 ∨ b), and so on. Past
// maxClauses the union is refused (deny): narrower, never wider.
func or(a, b rule) rule {
	switch {
	case a.deny:
		return b
	case b.deny:
		return a
	case a.all() || b.all():
		return rule{}
	}
	if len(a.where)*len(b.where) > maxClauses {
		return denyAll
	}
	var out []hale.Clause
	for _, x := range a.where {
		for _, y := range b.where {
			out = append(out, hale.Clause{Or: slices.Concat(alternatives(x), alternatives(y))})
		}
	}
	return rule{where: out}
}

func alternatives(c hale.Clause) []hale.Clause {
	if c.Or != nil {
		return c.Or
	}
	return []hale.Clause{c}
}

// nothing is a clause no resource satisfies.
func nothing() hale.Clause { return hale.Clause{Param: "_id", Type: hale.TypeID} }

func ref(param, typ, id string) hale.Clause {
	return hale.Clause{Param: param, Type: hale.TypeReference, Values: []hale.Value{{TargetType: typ, TargetID: id}}}
}

// patientParams are the reference parameters that put a resource of typ
// in a patient's compartment (compartmentdefinition-patient.html), plus
// Device.patient; nil for types whose rows are not about a patient.
// Schedule is left out: its actor is nearly always a practitioner, and
// schedules are shared.
func patientParams(typ string) []string {
	switch typ {
	case "Device":
		return []string{"patient"}
	case "Schedule":
		return nil
	}
	var out []string
	for _, p := range fhir.CompartmentParams("Patient", typ) {
		if p != "{def}" {
			out = append(out, p)
		}
	}
	return out
}

// aboutPatients reports whether typ's resources are rows of patients'
// records, visible only through a visible patient.
func aboutPatients(typ string) bool { return typ == "Patient" || len(patientParams(typ)) > 0 }

// compartmentRule is the compartment of Patient/id for typ: the patient
// itself, or resources that refer to it through a compartment
// parameter. Types outside the compartment: directory and definitional
// types are readable, everything else is denied.
func compartmentRule(typ, id string, l byte) rule {
	if typ == "Patient" {
		return rule{where: []hale.Clause{{Param: "_id", Type: hale.TypeID, Values: []hale.Value{{Code: id}}}}}
	}
	params := patientParams(typ)
	if len(params) == 0 {
		if (l == Read || l == Search) && (slices.Contains(directory, typ) || slices.Contains(definitional, typ) || typ == "Schedule" || typ == "Slot") {
			return rule{}
		}
		return denyAll
	}
	var alts []hale.Clause
	for _, p := range params {
		alts = append(alts, ref(p, "Patient", id))
	}
	return rule{where: []hale.Clause{{Or: alts}}}
}

// reach is how a clinician reaches patients: own are the clauses a
// Patient of their own satisfies (managed by one of their organizations,
// or a CareTeam about it lists their FHIRUser); extra are the ids of the
// patients of other organizations they reach through break-the-glass, a
// referral or a consent (basis.go).
type reach struct {
	own   []hale.Clause
	extra []string
}

func (s *Store) reach() reach {
	p := s.p
	var rc reach
	if len(p.Organizations) > 0 {
		c := hale.Clause{Param: "organization", Type: hale.TypeReference}
		for _, o := range p.Organizations {
			c.Values = append(c.Values, hale.Value{TargetType: "Organization", TargetID: o})
		}
		rc.own = append(rc.own, c)
	}
	if t, id, ok := search.ParseLocalReference(p.FHIRUser); ok && (t == "Practitioner" || t == "PractitionerRole") {
		rc.own = append(rc.own, hale.Clause{Param: "_has", Type: hale.TypeReference, Has: &hale.Has{Type: "CareTeam", Param: "patient",
			Where: []hale.Clause{ref("participant", t, id)}}})
	}
	for _, g := range s.grants {
		if !slices.Contains(rc.extra, g.Patient) {
			rc.extra = append(rc.extra, g.Patient)
		}
	}
	for _, b := range s.bases {
		if !slices.Contains(rc.extra, b.Patient) {
			rc.extra = append(rc.extra, b.Patient)
		}
	}
	return rc
}

// patients is the clause a Patient the clinician reaches satisfies: their
// own, and with extra the patients of other organizations too. ok is
// false when they reach no patient that way.
func (rc reach) patients(extra bool) (c hale.Clause, ok bool) {
	alts := slices.Clone(rc.own)
	if extra && len(rc.extra) > 0 {
		c := hale.Clause{Param: "_id", Type: hale.TypeID}
		for _, id := range rc.extra {
			c.Values = append(c.Values, hale.Value{Code: id})
		}
		alts = append(alts, c)
	}
	switch len(alts) {
	case 0:
		return hale.Clause{}, false
	case 1:
		return alts[0], true
	}
	return hale.Clause{Or: alts}, true
}

// chains is the clause "a compartment parameter of typ refers to a
// Patient satisfying vis".
func chains(typ string, vis hale.Clause) hale.Clause {
	var alts []hale.Clause
	for _, param := range patientParams(typ) {
		alts = append(alts, hale.Clause{Param: param, Type: hale.TypeReference,
			Chain: &hale.Chain{Type: "Patient", Where: []hale.Clause{vis}}})
	}
	return hale.Clause{Or: alts}
}

// ruleKey caches rules per type and interaction.
type ruleKey struct {
	typ string
	l   byte
}

// Store is a hale.Store scoped to one Principal (Policy.Scope).
type Store struct {
	base   hale.Store
	pol    *Policy
	p      *hale.Principal
	scopes []scope
	grants []hale.BreakGlass
	bases  []hale.Basis

	mu    sync.Mutex
	rules map[ruleKey]rule
}

// Principal returns the caller the store is scoped to.
func (s *Store) Principal() *hale.Principal { return s.p }

// BreakGlass returns the break-the-glass grants the store honours.
func (s *Store) BreakGlass() []hale.BreakGlass { return slices.Clone(s.grants) }

// Bases returns the referrals and consents the store honours.
func (s *Store) Bases() []hale.Basis { return slices.Clone(s.bases) }

// Allows reports whether the Principal may use interaction l on typ for
// some resource at all (its role and scopes permit it).
func (s *Store) Allows(typ string, l byte) bool { return !s.rule(typ, l).deny }

// rule returns what the Principal may do with typ for interaction l.
func (s *Store) rule(typ string, l byte) rule {
	k := ruleKey{typ, l}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.rules[k]; ok {
		return r
	}
	r := s.compute(typ, l)
	s.rules[k] = r
	return r
}

func (s *Store) compute(typ string, l byte) rule {
	p := s.p
	if !fhir.IsResourceType(typ) || !roleAllows(p.Role, typ, l) {
		return denyAll
	}
	if (typ == "Binary" || typ == "Group") && p.Role != hale.RoleSystem {
		// Visible through what they stand for, judged per resource.
		if len(p.Scopes) > 0 && !s.scopesGrant(typ, l) {
			return denyAll
		}
		return rule{proxy: true}
	}
	// Rows the role sees.
	var base rule
	switch {
	case p.Role == hale.RoleSystem:
		if len(p.Scopes) == 0 {
			return denyAll // a client without scopes may do nothing
		}
	case p.Role == hale.RolePatient:
		if p.Patient == "" {
			return denyAll
		}
		base = compartmentRule(typ, p.Patient, l)
	case p.Role == hale.RoleAdmin:
		// The admin's types are directory, definitional and the audit
		// trail, none of them one patient's rows.
	case aboutPatients(typ):
		// Patients of other organizations (break-the-glass, referral,
		// consent) may be read and searched, and written as the role
		// allows, except for what decides who sees them, and never
		// deleted.
		rc := s.reach()
		vis, ok := rc.patients(l == Read || l == Search || l != Delete && !isBasisType(typ))
		if !ok {
			return denyAll
		}
		if typ == "Patient" {
			base = rule{where: []hale.Clause{vis}}
		} else {
			base = rule{where: []hale.Clause{chains(typ, vis)}}
		}
		if typ == "ServiceRequest" && (l == Create || l == Update) && len(rc.extra) > 0 {
			// For those patients, only with the caller as requester: it
			// then never counts as a referral from their organization.
			var alts []hale.Clause
			if own, ok := rc.patients(false); ok {
				alts = append(alts, chains(typ, own).Or...)
			}
			if self, ok := requesterIsSelf(p); ok {
				alts = append(alts, self)
			}
			if len(alts) == 0 {
				alts = []hale.Clause{nothing()}
			}
			base.where = append(base.where, hale.Clause{Or: alts})
		}
	}
	if len(p.Scopes) == 0 {
		return base // the web apps' own sessions: the role decides
	}
	// Scopes: the union of those that grant l on typ, each in its context.
	granted := denyAll
	for i := range s.scopes {
		sc := &s.scopes[i]
		if !sc.grants(typ, l) {
			continue
		}
		var ctx rule
		switch sc.context {
		case patientContext:
			if p.Patient == "" {
				continue // patient/ scopes need a launch patient
			}
			ctx = compartmentRule(typ, p.Patient, l)
		case userContext:
			if p.Role == hale.RoleSystem {
				continue
			}
		case systemContext:
			if p.Role != hale.RoleSystem {
				continue // a user's token cannot reach beyond the user
			}
		}
		granted = or(granted, and(ctx, rule{where: sc.where}))
	}
	return and(base, granted)
}

// scopesGrant reports whether one of the Principal's scopes grants
// interaction l on every resource of typ it applies to (without a
// granular query) in a context the Principal can use.
func (s *Store) scopesGrant(typ string, l byte) bool {
	p := s.p
	for i := range s.scopes {
		sc := &s.scopes[i]
		if !sc.grants(typ, l) || sc.where != nil {
			continue
		}
		switch sc.context {
		case patientContext:
			if p.Patient != "" {
				return true
			}
		case userContext:
			if p.Role != hale.RoleSystem {
				return true
			}
		case systemContext:
			if p.Role == hale.RoleSystem {
				return true
			}
		}
	}
	return false
}

// String describes a rule for messages and tests.
func (r rule) String() string {
	switch {
	case r.deny:
		return "deny"
	case r.proxy:
		return "proxy"
	case r.all():
		return "all"
	}
	return fmt.Sprintf("%d clauses", len(r.where))
}
