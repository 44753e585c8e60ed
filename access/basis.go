package access

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// This file finds the recorded bases (hale.Basis) on which a clinician
// reaches a patient of another organization (docs/security.md,
// "Referrals and consents"):
//
//   - a referral: a ServiceRequest with status active about Patient P
//     whose performer is the clinician (their FHIRUser), one of their
//     PractitionerRoles or one of their organizations, requested from
//     P's managing organization (requester that Organization, a
//     PractitionerRole of it, or a Practitioner with a PractitionerRole
//     of it), and in force now: not before authoredOn, within
//     occurrencePeriod, or on the day of occurrenceDateTime;
//   - a consent: a Consent with status active for Patient P whose
//     provision is a permit naming the clinician, one of their
//     PractitionerRoles or one of their organizations as actor, within
//     provision.period, and without deny exceptions (nested provisions of
//     type deny are not modelled, so such a consent grants nothing here).
//
// The bases are looked up for every request (Policy.Scope), in the
// database or, for basesTTL, in this node's cache of it, which the
// node's own writes clear: a referral completed or revoked, or a consent
// withdrawn, stops granting at the next request on this node and within
// basesTTL on the others. What a basis lets
// the clinician do is decided in policy.go (visibility): read and search
// P's record as the role allows, create and update what the role allows
// except what decides who sees P, never delete.

// maxBases bounds the candidate referrals and consents examined per
// request.
const maxBases = 1000

// basesTTL is how long a node reuses what the database said about a
// principal's referrals and consents (the time windows are checked on
// every request). Writes through the node's own scoped stores clear it
// at once; another node's writes apply within basesTTL, as for SMART
// token revocation (auth/cache.go).
const basesTTL = 250 * time.Millisecond

// basesCache caches candidates per identity.
type basesCache struct {
	mu      sync.Mutex
	gen     uint64 // bumped by every clear
	entries map[string]basesEntry
}

type basesEntry struct {
	at    time.Time // wall clock
	cands []candidate
}

func (c *basesCache) get(key string) ([]candidate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || time.Since(e.at) >= basesTTL {
		return nil, false
	}
	return e.cands, true
}

func (c *basesCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put keeps cands unless the cache was cleared since gen was read: a
// lookup that raced with a write must not outlive it.
func (c *basesCache) put(key string, gen uint64, cands []candidate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.entries == nil {
		c.entries = map[string]basesEntry{}
	}
	if len(c.entries) >= 4096 {
		for k, e := range c.entries {
			if time.Since(e.at) >= basesTTL {
				delete(c.entries, k)
			}
		}
	}
	c.entries[key] = basesEntry{at: time.Now(), cands: cands}
}

func (c *basesCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}

// decidesBases reports whether a write of typ can change someone's
// referrals or consents (or their validity).
func decidesBases(typ string) bool {
	switch typ {
	case "ServiceRequest", "Consent", "PractitionerRole", "Patient":
		return true
	}
	return false
}

// actors returns the references that name p as performer or actor:
// their FHIRUser (a Practitioner or PractitionerRole) and their
// organizations; practitioner is the Practitioner id when FHIRUser is
// one, whose PractitionerRoles count as well.
func actors(p *hale.Principal) (refs []hale.Value, practitioner string) {
	if t, id, ok := search.ParseLocalReference(p.FHIRUser); ok && (t == "Practitioner" || t == "PractitionerRole") {
		refs = append(refs, hale.Value{TargetType: t, TargetID: id})
		if t == "Practitioner" {
			practitioner = id
		}
	}
	for _, o := range p.Organizations {
		refs = append(refs, hale.Value{TargetType: "Organization", TargetID: o})
	}
	return refs, practitioner
}

// window is when a basis is in force: [lo, hi) in unix microseconds.
type window struct{ lo, hi int64 }

var always = window{hale.MinTime, hale.MaxTime}

// within narrows w to the range [lo, hi).
func (w window) within(lo, hi int64) window { return window{max(w.lo, lo), min(w.hi, hi)} }

// candidate is a referral or consent valid for the principal, in force
// during when.
type candidate struct {
	basis hale.Basis
	when  window
}

// bases returns the referrals and consents in force at now that let p
// reach patients outside p's organizations. The candidates (what the
// database says, without the time) are cached for basesTTL per
// identity (FHIRUser and organizations); a write of a ServiceRequest,
// Consent, PractitionerRole or Patient through a scoped store of pol
// clears the cache once it commits (Store.Update), so on this node a
// revoked referral or withdrawn consent stops granting at the next
// request, and on another node sharing the database within basesTTL.
func (pol *Policy) bases(ctx context.Context, base hale.Store, p *hale.Principal, now time.Time) ([]hale.Basis, error) {
	refs, _ := actors(p)
	if len(refs) == 0 || base == nil {
		return nil, nil
	}
	key := identityKey(p)
	cands, ok := pol.basesCache.get(key)
	if !ok {
		gen := pol.basesCache.generation()
		var err error
		if cands, err = pol.candidates(ctx, base, p); err != nil {
			return nil, err
		}
		pol.basesCache.put(key, gen, cands)
	}
	t := now.UnixMicro()
	var out []hale.Basis
	for _, c := range cands {
		if c.when.lo <= t && t < c.when.hi {
			out = append(out, c.basis)
		}
	}
	return out, nil
}

// identityKey is what a principal's candidates depend on.
func identityKey(p *hale.Principal) string {
	orgs := slices.Clone(p.Organizations)
	slices.Sort(orgs)
	return p.FHIRUser + "|" + strings.Join(orgs, ",")
}

// candidates reads from base, without access control, the active
// referrals and consents naming p that are valid bases at some time.
func (pol *Policy) candidates(ctx context.Context, base hale.Store, p *hale.Principal) ([]candidate, error) {
	refs, practitioner := actors(p)
	var out []candidate
	err := base.View(ctx, func(r hale.Reader) error {
		sr, ok := r.(hale.Searcher)
		if !ok {
			return &hale.Error{Kind: hale.KindInternal, Op: "access.bases", Message: "the store cannot search"}
		}
		// Active ServiceRequests and Consents naming p, each search
		// driven by the reference index.
		if practitioner != "" {
			roles, err := sr.Search(ctx, &hale.Query{Types: []string{"PractitionerRole"}, Count: maxBases,
				Where: []hale.Clause{ref("practitioner", "Practitioner", practitioner)}})
			if err != nil {
				return err
			}
			for _, v := range roles.Versions {
				refs = append(refs, hale.Value{TargetType: "PractitionerRole", TargetID: v.ID})
			}
		}
		active := hale.Clause{Param: "status", Type: hale.TypeToken, Values: []hale.Value{{Code: "active"}}}
		var found []hale.Version
		for _, q := range []struct{ typ, param string }{{"ServiceRequest", "performer"}, {"Consent", "actor"}} {
			res, err := sr.Search(ctx, &hale.Query{Types: []string{q.typ}, Count: maxBases, Where: []hale.Clause{
				{Param: q.param, Type: hale.TypeReference, Values: refs}, active}})
			if err != nil {
				return err
			}
			found = append(found, res.Versions...)
		}
		c := basisCheck{ctx: ctx, r: r, sr: sr, p: p, orgs: map[string]string{}}
		for _, v := range found {
			cand, ok, err := c.check(&v)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, cand)
			}
		}
		return nil
	})
	return out, err
}

// basisCheck checks candidate referrals and consents for one principal.
type basisCheck struct {
	ctx context.Context
	r   hale.Reader
	sr  hale.Searcher
	p   *hale.Principal
	// orgs caches each patient's managing organization id ("" for none
	// or a patient that does not exist).
	orgs map[string]string
}

// check reports whether v, an active ServiceRequest or Consent naming
// the principal, is a basis for a patient outside the principal's
// organizations, and when it is in force.
func (c *basisCheck) check(v *hale.Version) (candidate, bool, error) {
	res, err := fhir.Decode(v.Data)
	if err != nil || res["status"] != "active" {
		return candidate{}, false, nil
	}
	b := candidate{basis: hale.Basis{Reference: v.Type + "/" + v.ID}}
	var patient string
	var ok bool
	switch v.Type {
	case "ServiceRequest":
		patient = patientOf(res["subject"])
		b.when, ok = referralWindow(res)
		b.basis.Purposes = []string{"TREAT"}
	case "Consent":
		patient = patientOf(res["patient"])
		prov, _ := res["provision"].(map[string]any)
		if prov == nil || prov["type"] != "permit" || hasDeny(prov) {
			return b, false, nil
		}
		b.when, ok = periodWindow(always, prov["period"])
		b.basis.Purposes = purposes(prov["purpose"])
	}
	if !ok || patient == "" || b.when.lo >= b.when.hi {
		return b, false, nil
	}
	org, err := c.managingOrg(patient)
	if err != nil || org == "" || slices.Contains(c.p.Organizations, org) {
		// Not a patient of another organization: the organization rule
		// already decides (a patient without a managing organization
		// is reached through a care team or break-the-glass only).
		return b, false, err
	}
	if v.Type == "ServiceRequest" {
		ok, err := c.requestedBy(res["requester"], org)
		if err != nil || !ok {
			return b, false, err
		}
	}
	b.basis.Patient = patient
	return b, true, nil
}

// referralWindow is when a referral is in force: not before authoredOn,
// within occurrencePeriod, on the day of occurrenceDateTime. ok is false
// when a date does not parse.
func referralWindow(res map[string]any) (window, bool) {
	w := always
	if s, ok := res["authoredOn"].(string); ok {
		lo, _, ok := search.DateRange(s)
		if !ok {
			return w, false
		}
		w = w.within(lo, hale.MaxTime)
	}
	if p, ok := res["occurrencePeriod"]; ok {
		if w, ok = periodWindow(w, p); !ok {
			return w, false
		}
	}
	if s, ok := res["occurrenceDateTime"].(string); ok {
		if len(s) > 10 {
			s = s[:10] // the day it names
		}
		lo, hi, ok := search.DateRange(s)
		if !ok {
			return w, false
		}
		w = w.within(lo, hi)
	}
	return w, true
}

// periodWindow narrows w to a Period (start inclusive, end exclusive at
// the end of its precision; either may be open). A missing period does
// not narrow; ok is false for one that does not parse.
func periodWindow(w window, v any) (window, bool) {
	if v == nil {
		return w, true
	}
	p, ok := v.(map[string]any)
	if !ok {
		return w, false
	}
	if s, ok := p["start"].(string); ok {
		lo, _, ok := search.DateRange(s)
		if !ok {
			return w, false
		}
		w = w.within(lo, hale.MaxTime)
	}
	if s, ok := p["end"].(string); ok {
		_, hi, ok := search.DateRange(s)
		if !ok {
			return w, false
		}
		w = w.within(hale.MinTime, hi)
	}
	return w, true
}

// hasDeny reports whether a provision has nested deny provisions at any
// depth: exceptions Hale does not evaluate.
func hasDeny(prov map[string]any) bool {
	nested, _ := prov["provision"].([]any)
	for _, n := range nested {
		m, _ := n.(map[string]any)
		if m["type"] != "permit" || hasDeny(m) {
			return true
		}
	}
	return false
}

// purposes returns the v3 ActReason codes of a consent's
// provision.purpose, or TREAT when it states none.
func purposes(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		m, _ := x.(map[string]any)
		if code, _ := m["code"].(string); code != "" && m["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActReason" {
			out = append(out, code)
		}
	}
	if len(out) == 0 {
		out = []string{"TREAT"}
	}
	return out
}

// patientOf returns the id of a Reference to a Patient, or "".
func patientOf(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["reference"].(string)
	if t, id, ok := search.ParseLocalReference(s); ok && t == "Patient" {
		return id
	}
	return ""
}

// managingOrg returns the id of Patient/id's managing organization, ""
// when it has none or the patient does not exist.
func (c *basisCheck) managingOrg(id string) (string, error) {
	if org, ok := c.orgs[id]; ok {
		return org, nil
	}
	v, err := c.r.Current(c.ctx, "Patient", id)
	if hale.IsKind(err, hale.KindNotFound) {
		c.orgs[id] = ""
		return "", nil
	}
	if err != nil {
		return "", err
	}
	org := ""
	if !v.Deleted {
		if res, err := fhir.Decode(v.Data); err == nil {
			m, _ := res["managingOrganization"].(map[string]any)
			s, _ := m["reference"].(string)
			if t, id, ok := search.ParseLocalReference(s); ok && t == "Organization" {
				org = id
			}
		}
	}
	c.orgs[id] = org
	return org, nil
}

// requestedBy reports whether a referral's requester belongs to
// Organization/org: the organization itself, a PractitionerRole of it,
// or a Practitioner who has a PractitionerRole of it.
func (c *basisCheck) requestedBy(v any, org string) (bool, error) {
	m, _ := v.(map[string]any)
	s, _ := m["reference"].(string)
	t, id, ok := search.ParseLocalReference(s)
	if !ok {
		return false, nil
	}
	ofOrg := ref("organization", "Organization", org)
	var q hale.Query
	switch t {
	case "Organization":
		return id == org, nil
	case "PractitionerRole":
		q = hale.Query{Types: []string{"PractitionerRole"}, Count: 1, Where: []hale.Clause{
			{Param: "_id", Type: hale.TypeID, Values: []hale.Value{{Code: id}}}, ofOrg}}
	case "Practitioner":
		q = hale.Query{Types: []string{"PractitionerRole"}, Count: 1, Where: []hale.Clause{
			ref("practitioner", "Practitioner", id), ofOrg}}
	default:
		return false, nil
	}
	res, err := c.sr.Search(c.ctx, &q)
	if err != nil {
		return false, err
	}
	return len(res.Versions) > 0, nil
}

// basisTypes are the types whose writes decide who sees a patient (or
// who the patient is): a caller who reaches a patient only through a
// referral, a consent or break-the-glass may not write them for that
// patient, so that no such access can extend or widen itself.
var basisTypes = []string{"Patient", "RelatedPerson", "Person", "CareTeam", "Consent"}

// isBasisType reports whether typ is one of basisTypes.
func isBasisType(typ string) bool { return slices.Contains(basisTypes, typ) }

// requesterIsSelf is the clause a ServiceRequest a caller writes on a
// referral, consent or break-the-glass basis must satisfy: its requester
// is the caller (FHIRUser) or one of their organizations, so it can
// never count as a referral from the patient's organization.
func requesterIsSelf(p *hale.Principal) (hale.Clause, bool) {
	refs, _ := actors(p)
	if len(refs) == 0 {
		return hale.Clause{}, false
	}
	return hale.Clause{Param: "requester", Type: hale.TypeReference, Values: refs}, true
}
