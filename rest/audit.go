package rest

import (
	"context"

	"github.com/hale-ehr/hale"
)

// This file connects the FHIR core to the audit trail (Service.Audit, a
// hale.AuditSink; package audit implements it, docs/security.md "Audit
// trail"): a write is recorded in its own transaction (auditWrite, from
// put and remove), everything else after it was answered (auditAnswer,
// from Do). AuditEvent resources are the trail itself: no interaction may
// create, change or delete them (refuseAuditWrite).

// refuseAuditWrite answers 405 to a create, update, patch or delete of an
// AuditEvent: the audit trail is written by the server only, and never
// changed (170.315(d)(2), auditevent.html "Security and Privacy").
func refuseAuditWrite(req *Request) error {
	if req.Type == "AuditEvent" && isWrite(req) {
		return hale.Errorf(hale.KindMethodNotAllowed, "%s is not allowed on AuditEvent: the audit trail cannot be created, changed or deleted through the API", req.Method)
	}
	return nil
}

// auditWrite records the write of v (with its index) in tx.
func (s *Service) auditWrite(ctx context.Context, tx hale.Tx, v *hale.Version, idx *hale.Index) error {
	if s.Audit == nil {
		return nil
	}
	interaction := map[string]string{"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[v.Method]
	return s.Audit.AuditTx(ctx, tx, &hale.Access{Interaction: interaction, Type: v.Type, ID: v.ID,
		Versions: []hale.Version{*v}, Index: idx, Time: v.LastUpdated})
}

// auditAnswer records a request that did not write (a read, a search, a
// failed write) after it was answered. A failure to record fails the
// request: an access that cannot be audited is not answered.
func (s *Service) auditAnswer(ctx context.Context, req *Request, resp *Response, err error) error {
	if s.Audit == nil {
		return err
	}
	a := &hale.Access{Type: req.Type, ID: req.ID, Query: req.RawQuery, Err: err}
	get := req.Method == "GET" || req.Method == "HEAD"
	switch {
	case req.Op == "metadata" || req.Op == "$validate":
		return err // no data
	case req.Type == "" && req.Op == "" && req.Method == "POST":
		if err == nil {
			return nil // each entry of a batch, or the transaction's writes, recorded themselves
		}
		a.Interaction = "transaction"
	case isWrite(req):
		if err == nil {
			return nil // recorded in its transaction
		}
		a.Interaction = map[string]string{"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[req.Method]
	case req.Op == "$everything":
		a.Interaction = "everything"
		a.Patients = []string{req.ID}
	case get && req.Op == "_history" && req.VersionID != "":
		a.Interaction = "vread"
	case req.Op == "_history" && req.ID != "":
		a.Interaction = "history-instance"
	case req.Op == "_history" && req.Type != "":
		a.Interaction = "history-type"
	case req.Op == "_history":
		a.Interaction = "history-system"
	case get && req.ID != "" && req.Op == "":
		a.Interaction = "read"
	case req.Compartment != nil:
		a.Interaction = "search-compartment"
		if req.Compartment.Type == "Patient" {
			a.Patients = []string{req.Compartment.ID}
		}
	case req.Type != "":
		a.Interaction = "search-type"
	default:
		a.Interaction = "search-system"
	}
	if resp != nil {
		a.Versions = resp.touched
		if resp.Body != nil && req.ID != "" {
			a.Versions = []hale.Version{{Type: req.Type, ID: req.ID, Data: resp.Body}}
		}
	}
	if aerr := s.Audit.Audit(ctx, a); aerr != nil && err == nil {
		return aerr
	}
	return err
}
