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
