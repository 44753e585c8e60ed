package hale

import "context"

// This file is the identity part of the vocabulary: who is calling. The
// auth package authenticates a request (session cookie, SMART access
// token, backend-services token) and puts a Principal in its context; the
// access package turns the Principal into a store scoped to what it may
// see and do, so that every surface (FHIR API, web apps, bulk export, HL7
// v2, C-CDA) gets the same checks from the store handle itself.

// Role is what a user account is for. It decides the resource types and
// interactions the user may use (docs/security.md has the table).
type Role string

const (
	RolePhysician Role = "physician"
	RoleNurse     Role = "nurse"
	RoleFrontDesk Role = "frontdesk"
	RoleBilling   Role = "billing"
	RoleAdmin     Role = "admin"
	RolePatient   Role = "patient"
	// RoleSystem is a SMART backend-services client: no user, only
	// system/ scopes.
	RoleSystem Role = "system"
)

// Roles lists the roles a user account may have, in the order screens
// show them.
var Roles = []Role{RolePhysician, RoleNurse, RoleFrontDesk, RoleBilling, RoleAdmin, RolePatient}

// Principal is an authenticated caller: a user, possibly through a SMART
// app, or a backend-services client.
type Principal struct {
	// Subject identifies the caller uniquely and stably: "user/<id>" or
	// "client/<client id>". It is the "who" of every AuditEvent.
	Subject string
	// Name is for humans (the username or the client's name).
	Name string
	Role Role
	// FHIRUser is the resource the user is ("Practitioner/123",
	// "Patient/456"); empty for clients and for users not linked to one.
	FHIRUser string
	// Organizations are the ids of the Organizations (facilities) whose
	// patients the user sees; empty means none.
	Organizations []string
	// Client is the SMART client id the request came through, "" for the
	// web apps' own sessions.
	Client string
	// Scopes are the SMART scopes granted (v1 or v2 syntax), as granted.
	// Empty for the web apps' own sessions, which are limited by Role
	// alone.
	Scopes []string
	// Patient is the launch context patient id: a patient/ scope token,
	// or a patient user's own record. Empty otherwise.
	Patient string
	// Encounter is the launch context encounter id, if any.
	Encounter string
	// Address is where the request came from (client IP), for the audit.
	Address string
	// Session identifies the login session or token family, for revocation
	// and the audit; never a secret.
	Session string
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller ctx carries, or nil for none.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Unscoped returns the store's own transaction under tx: a transaction
// scoped to a caller (access.Store) wraps one and unwraps to it. The
// system uses it for what it writes on its own account in the caller's
// transaction, such as the write's AuditEvent, which the caller itself
// may not write.
func Unscoped(tx Tx) Tx {
	for {
		u, ok := tx.(interface{ Unwrap() Tx })
		if !ok {
			return tx
		}
		tx = u.Unwrap()
	}
}
