package hale

import (
	"context"
	"time"
)

// BreakGlass is an emergency access ("break the glass"): a clinician
// reaching the record of a patient outside their organizations and care
// teams, for a stated reason and a limited time (45 CFR 170.315(d)(6),
// HIPAA 164.312(a)(2)(ii)). Package access grants and honours it; the
// audit marks every access made through one with purposeOfUse BTG
// (v3 ActReason "BTG", break the glass).
type BreakGlass struct {
	Subject string // Principal.Subject of the clinician
	Patient string // the Patient's id
	Reason  string // as the clinician wrote it; never empty
	Start   time.Time
	Expires time.Time // access ends at this instant
}

type breakGlassKey struct{}

// WithBreakGlass returns a context carrying the break-the-glass grants in
// force for its request, so that whoever audits the request can tell an
// emergency access (BreakGlassFrom) from a routine one.
func WithBreakGlass(ctx context.Context, grants []BreakGlass) context.Context {
	return context.WithValue(ctx, breakGlassKey{}, grants)
}

// BreakGlassFrom returns the grants ctx carries: the patients the request
// may reach only through break-the-glass. A request that touches one of
// these patients is an emergency access and its AuditEvent must say so.
func BreakGlassFrom(ctx context.Context) []BreakGlass {
	g, _ := ctx.Value(breakGlassKey{}).([]BreakGlass)
	return g
}

// Basis is a recorded reason for a clinician to reach the record of a
// patient of another organization, other than break-the-glass: a
// referral (an active ServiceRequest from the patient's organization
// naming the clinician, their PractitionerRole or their organization as
// performer) or the patient's consent (an active Consent whose permit
// provision names them as actor). Package access finds the bases in
// force for each request; the audit records every access to such a
// patient with the basis and its purpose of use.
type Basis struct {
	Patient string // the Patient's id
	// Reference is the resource that grants it: "ServiceRequest/12" or
	// "Consent/7".
	Reference string
	// Purposes are the purpose-of-use codes (v3 ActReason) of the
	// accesses it allows: "TREAT" for a referral; a consent's
	// provision.purpose, or "TREAT".
	Purposes []string
}

type basesKey struct{}

// WithBases returns a context carrying the referrals and consents in
// force for its request (BasesFrom).
func WithBases(ctx context.Context, bases []Basis) context.Context {
	return context.WithValue(ctx, basesKey{}, bases)
}

// BasesFrom returns the bases ctx carries: the patients the request may
// reach through a referral or a consent. An access to one of these
// patients must be audited with the basis.
func BasesFrom(ctx context.Context) []Basis {
	b, _ := ctx.Value(basesKey{}).([]Basis)
	return b
}
