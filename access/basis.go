package access

import (
	"context"
	"slices"
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
// database, so a referral completed or revoked, or a consent withdrawn,
// stops granting at the next request on every node. What a basis lets
// the clinician do is decided in policy.go (visibility): read and search
// P's record as the role allows, create and update what the role allows
// except what decides who sees P, never delete.

// maxBases bounds the candidate referrals and consents examined per
// request.
const maxBases = 1000

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

// bases returns the referrals and consents in force at now that let p
// reach patients outside p's organizations, read from base without
// access control.
func (pol *Policy) bases(ctx context.Context, base hale.Store, p *hale.Principal, now time.Time) ([]hale.Basis, error) {
	refs, practitioner := actors(p)
	if len(refs) == 0 || base == nil {
		return nil, nil
	}
	var out []hale.Basis
	err := base.View(ctx, func(r hale.Reader) error {
		sr, ok := r.(hale.Searcher)
		if !ok {
			return &hale.Error{Kind: hale.KindInternal, Op: "access.bases", Message: "the store cannot search"}
		}
		// Candidates: active ServiceRequests and Consents naming p, in
		// one query; the rest is checked on each below.
		names := []hale.Clause{
			{Param: "performer", Type: hale.TypeReference, Values: refs, Types: []string{"ServiceRequest"}},
			{Param: "actor", Type: hale.TypeReference, Values: refs, Types: []string{"Consent"}},
		}
		if practitioner != "" {
			roles := &hale.Chain{Type: "PractitionerRole", Where: []hale.Clause{ref("practitioner", "Practitioner", practitioner)}}
			names = append(names,
				hale.Clause{Param: "performer", Type: hale.TypeReference, Chain: roles, Types: []string{"ServiceRequest"}},
				hale.Clause{Param: "actor", Type: hale.TypeReference, Chain: roles, Types: []string{"Consent"}})
		}
		res, err := sr.Search(ctx, &hale.Query{Types: []string{"Consent", "ServiceRequest"}, Count: maxBases, Where: []hale.Clause{
			{Param: "status", Type: hale.TypeToken, Values: []hale.Value{{Code: "active"}}},
			{Or: names},
		}})
		if err != nil {
			return err
		}
		c := basisCheck{ctx: ctx, r: r, sr: sr, p: p, now: now, orgs: map[string]string{}}
		for _, v := range res.Versions {
			b, ok, err := c.check(&v)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, b)
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
	now time.Time
	// orgs caches each patient's managing organization id ("" for none
	// or a patient that does not exist).
	orgs map[string]string
}

// check reports whether v, an active ServiceRequest or Consent naming
// the principal, is a basis in force now for a patient outside the
// principal's organizations.
func (c *basisCheck) check(v *hale.Version) (hale.Basis, bool, error) {
	res, err := fhir.Decode(v.Data)
	if err != nil || res["status"] != "active" {
		return hale.Basis{}, false, nil
	}
	b := hale.Basis{Reference: v.Type + "/" + v.ID}
	var patient string
	switch v.Type {
	case "ServiceRequest":
		patient = patientOf(res["subject"])
		if !c.inForceReferral(res) {
			return b, false, nil
		}
		b.Purposes = []string{"TREAT"}
	case "Consent":
		patient = patientOf(res["patient"])
		prov, _ := res["provision"].(map[string]any)
		if prov == nil || prov["type"] != "permit" || !inPeriod(prov["period"], c.now) || hasDeny(prov) {
			return b, false, nil
		}
		b.Purposes = purposes(prov["purpose"])
	default:
		return b, false, nil
	}
	if patient == "" {
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
	b.Patient = patient
	return b, true, nil
}

// inForceReferral reports whether a referral is in force now: not
// before authoredOn, within occurrencePeriod, on the day of
// occurrenceDateTime. A date that does not parse fails it.
func (c *basisCheck) inForceReferral(res map[string]any) bool {
	now := c.now.UnixMicro()
	if s, ok := res["authoredOn"].(string); ok {
		lo, _, ok := search.DateRange(s)
		if !ok || now < lo {
			return false
		}
	}
	if p, ok := res["occurrencePeriod"]; ok && !inPeriod(p, c.now) {
		return false
	}
	if s, ok := res["occurrenceDateTime"].(string); ok {
		if len(s) > 10 {
			s = s[:10] // the day it names
		}
		lo, hi, ok := search.DateRange(s)
		if !ok || now < lo || now >= hi {
			return false
		}
	}
	return true
}

// inPeriod reports whether now is within a Period (start inclusive, end
// exclusive at the end of its precision; either may be open). A missing
// period is always in force; one that does not parse never is.
func inPeriod(v any, now time.Time) bool {
	if v == nil {
		return true
	}
	p, ok := v.(map[string]any)
	if !ok {
		return false
	}
	t := now.UnixMicro()
	if s, ok := p["start"].(string); ok {
		lo, _, ok := search.DateRange(s)
		if !ok || t < lo {
			return false
		}
	}
	if s, ok := p["end"].(string); ok {
		_, hi, ok := search.DateRange(s)
		if !ok || t >= hi {
			return false
		}
	}
	return true
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
