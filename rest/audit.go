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

// auditWrite records the write of v (with its index) in tx; inside a
// transaction bundle it is logged and recorded with the bundle's other
// writes (auditBundle).
func (s *Service) auditWrite(ctx context.Context, tx hale.Tx, v *hale.Version, idx *hale.Index) error {
	if s.Audit == nil {
		return nil
	}
	interaction := writeInteraction[v.Method]
	if log, ok := ctx.Value(bundleLogKey{}).(*bundleLog); ok {
		w := *v
		w.Data = nil // the index says whose it is; the bytes are not needed
		log.writes = append(log.writes, loggedWrite{interaction: interaction, v: w, idx: idx})
		return nil
	}
	return s.Audit.AuditTx(ctx, tx, &hale.Access{Interaction: interaction, Type: v.Type, ID: v.ID,
		Versions: []hale.Version{*v}, Index: idx, Time: v.LastUpdated})
}

var writeInteraction = map[string]string{"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}

// A transaction bundle's accesses are logged while it runs and recorded
// when it is done: its writes together, in its own database transaction
// (auditBundle), its reads after it committed (auditBundleReads).
//
// The writes are grouped by interaction, up to bundleAuditGroup
// resources to an AuditEvent, each naming every resource it wrote and
// every patient they belong to. A Synthea patient's bundle of 300
// creates is then 6 AuditEvents rather than 300: the same who, what,
// which patient and when, at a fraction of the audit rows a bulk load
// writes (docs/security.md, "What is recorded").
type bundleLogKey struct{}

type bundleLog struct {
	writes []loggedWrite
	reads  []loggedRead
}

type loggedWrite struct {
	interaction string
	v           hale.Version
	idx         *hale.Index
}

type loggedRead struct {
	req  *Request
	resp *Response
}

// bundleAuditGroup is how many written resources one AuditEvent of a
// transaction names at most (audit's maxEntities).
const bundleAuditGroup = 50

// withBundleLog returns a context under which the transaction's writes
// and reads are logged rather than recorded one by one.
func withBundleLog(ctx context.Context) (context.Context, *bundleLog) {
	log := &bundleLog{}
	return context.WithValue(ctx, bundleLogKey{}, log), log
}

// auditBundle records the transaction's logged writes in tx.
func (s *Service) auditBundle(ctx context.Context, tx hale.Tx, log *bundleLog) error {
	if s.Audit == nil || len(log.writes) == 0 {
		return nil
	}
	var order []string
	groups := map[string][]loggedWrite{}
	for _, w := range log.writes {
		if _, ok := groups[w.interaction]; !ok {
			order = append(order, w.interaction)
		}
		groups[w.interaction] = append(groups[w.interaction], w)
	}
	for _, interaction := range order {
		ws := groups[interaction]
		for len(ws) > 0 {
			n := min(len(ws), bundleAuditGroup)
			a := &hale.Access{Interaction: interaction, Versions: make([]hale.Version, n), Indexes: make([]*hale.Index, n)}
			for i, w := range ws[:n] {
				a.Versions[i], a.Indexes[i] = w.v, w.idx
				if w.v.LastUpdated.After(a.Time) {
					a.Time = w.v.LastUpdated
				}
			}
			if n == 1 {
				a.Type, a.ID = a.Versions[0].Type, a.Versions[0].ID
			}
			if err := s.Audit.AuditTx(ctx, tx, a); err != nil {
				return err
			}
			ws = ws[n:]
		}
	}
	return nil
}

// auditBundleReads records the reads and searches of a committed
// transaction, as Do records a request that did not write.
func (s *Service) auditBundleReads(ctx context.Context, log *bundleLog) error {
	for _, r := range log.reads {
		if err := s.auditAnswer(ctx, r.req, r.resp, nil); err != nil {
			return err
		}
	}
	return nil
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
