package access

import (
	"context"
	"slices"

	"github.com/hale-ehr/hale"
)

// The audit trail is not a resource table (hale.AuditReader): AuditEvent
// reads and searches reach the store's append-only audit store, so the
// scoped reader decides there who reads what (docs/security.md, "Who may
// see what"):
//   - an admin (and a backend-services client with a system/ scope that
//     reads AuditEvent) reads the whole trail;
//   - a patient user reads the records about their own Patient: the
//     "who looked at my record" report (45 CFR 164.528; ONC (d)(3));
//   - nobody else reads any; to them the trail is empty.
// A record the caller may not read is answered like one that does not
// exist.

// auditRule returns the condition that limits the trail to what the
// caller may read (nil: all of it) and whether they may read any.
func (s *Store) auditRule() (*hale.AuditCondition, bool) {
	p := s.p
	switch {
	case p.Role == hale.RolePatient && p.Patient != "":
		if len(p.Scopes) > 0 && s.rule("Patient", Read).deny {
			return nil, false // an app of the patient's that may not read their record
		}
		return &hale.AuditCondition{Field: hale.AuditEntity, Values: []string{"Patient/" + p.Patient}}, true
	case p.Role == hale.RoleAdmin || p.Role == hale.RoleSystem:
		return nil, !s.rule("AuditEvent", Search).deny
	}
	return nil, false
}

func (rd *reader) auditReader() (hale.AuditReader, error) {
	ar, ok := rd.r.(hale.AuditReader)
	if !ok {
		return nil, hale.Errorf(hale.KindNotSupported, "this store keeps no audit trail")
	}
	return ar, nil
}

// AuditEvent implements hale.AuditReader for the caller.
func (rd *reader) AuditEvent(ctx context.Context, id string) (*hale.AuditRecord, error) {
	ar, err := rd.auditReader()
	if err != nil {
		return nil, err
	}
	cond, ok := rd.s.auditRule()
	if !ok {
		return nil, notFound("AuditEvent", id)
	}
	if cond == nil {
		return ar.AuditEvent(ctx, id)
	}
	page, err := ar.SearchAudit(ctx, &hale.AuditQuery{Count: 1, Where: []hale.AuditCondition{
		{Field: hale.AuditID, Values: []string{id}}, *cond}})
	if err != nil {
		return nil, err
	}
	if len(page.Records) == 0 {
		return nil, notFound("AuditEvent", id)
	}
	return &page.Records[0], nil
}

// SearchAudit implements hale.AuditReader for the caller: the caller's
// condition is one more condition of the query, so totals and pages
// count only what the caller may read.
func (rd *reader) SearchAudit(ctx context.Context, q *hale.AuditQuery) (*hale.AuditPage, error) {
	ar, err := rd.auditReader()
	if err != nil {
		return nil, err
	}
	cond, ok := rd.s.auditRule()
	if !ok {
		total := int64(-1)
		if q.Total {
			total = 0
		}
		return &hale.AuditPage{Total: total}, nil
	}
	if cond != nil {
		c := *q
		c.Where = append(slices.Clip(q.Where), *cond)
		q = &c
	}
	return ar.SearchAudit(ctx, q)
}

var _ hale.AuditReader = (*reader)(nil)
