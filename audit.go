package hale

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"
)

// This file is the audit part of the vocabulary (docs/security.md, "Audit
// trail"): what the FHIR core reports about each access (Access, to an
// AuditSink), and the storage contract of the audit store: append-only
// records (AuditRecord) in a tamper-evident chain (AuditTx, AuditStore),
// read and searched through AuditReader.
//
// An audit record is not an ordinary resource version: it is written once
// and never changed, so it is stored once, compactly, with the few columns
// the audit's own search uses (AuditQuery) instead of the general search
// index. The writer appends it in its transaction (AuditTx.AppendAudit);
// the chain links every record, in the order they were chained: link N
// covers the record's stored columns and the hash of link N-1
// (AuditHash), and signed checkpoints (SealAudit) state the head. An
// engine whose writers are serialised anyway (SQLite) chains each record
// in the transaction that appends it; one with concurrent writers
// (PostgreSQL) queues it, and a sealer, one at a time across every node,
// chains the queued records in batches, so writers never wait for the
// chain.

// Access is one access to data that the FHIR core (or another surface)
// reports to the audit trail. The caller is the hale.Principal of the
// context it is reported with.
type Access struct {
	// Interaction is the FHIR interaction or operation: create, read,
	// vread, update, patch, delete, search-type, search-system, history,
	// everything, export, export-file, …
	Interaction string
	Type        string // resource type, "" at system level
	ID          string // resource id, "" for searches
	Query       string // the query as sent, for searches and conditional interactions
	// Versions are what the access touched: the version written or read,
	// the resources a search returned. The audit finds the patients in
	// them.
	Versions []Version
	// Index is the search index of a written version (Versions[0]), from
	// which the patient it belongs to is known without decoding it again.
	Index *Index
	// Indexes, when there are as many as Versions, are the search indexes
	// of several written versions (nil for a delete): the writes of one
	// transaction recorded together.
	Indexes []*Index
	// Patients are patient ids the surface knows the access was about
	// (an export's patients, a compartment); the audit adds those it finds.
	Patients []string
	// Err is nil for success; otherwise what the caller was answered.
	Err error
	// Time is when the access was answered; zero means now.
	Time time.Time
}

// AuditSink receives the accesses a surface makes. The FHIR core calls it
// when one is configured (rest.Service.Audit).
type AuditSink interface {
	// AuditTx records a successful write in the write's own transaction:
	// the record commits with the change or not at all. An error fails
	// the write.
	AuditTx(ctx context.Context, tx Tx, a *Access) error
	// Audit records any other access (reads, searches, failed writes)
	// after it was answered. It may block while its queue is full, but it
	// never drops a record; it fails only when ctx ends or the sink is
	// closed.
	Audit(ctx context.Context, a *Access) error
}

type purposeKey struct{}

// WithPurposeOfUse returns a context whose accesses are recorded with
// these purpose-of-use codes (v3 ActReason, e.g. "BTG" for
// break-the-glass, "ETREAT"). The access package sets it.
func WithPurposeOfUse(ctx context.Context, codes ...string) context.Context {
	return context.WithValue(ctx, purposeKey{}, codes)
}

// PurposeOfUseFrom returns the purpose-of-use codes of ctx.
func PurposeOfUseFrom(ctx context.Context) []string {
	c, _ := ctx.Value(purposeKey{}).([]string)
	return c
}

// AuditRecord is one stored audit record: an AuditEvent (R4) as JSON and
// the columns the audit search reads, each taken from that AuditEvent.
type AuditRecord struct {
	Seq int64  // write order, set by AppendAudit
	ID  string // AuditEvent.id
	// Recorded is AuditEvent.recorded (also its meta.lastUpdated), at the
	// JSON's millisecond precision.
	Recorded time.Time
	Type     string // AuditEvent.type as "system|code"
	Subtype  string // the first AuditEvent.subtype as "system|code"; "" for none
	Action   string // C R U D E
	Outcome  string // 0 4 8 12
	// Agent is the requestor's who.identifier.value (the
	// Principal.Subject, "user/42", or "anonymous"), AgentRef its
	// who.reference ("Practitioner/7"; "" for none).
	Agent, AgentRef string
	// Entities are the references of entity.what ("Patient/1",
	// "Observation/9"), distinct. ScanAudit returns them sorted; searches
	// leave them nil.
	Entities []string
	Data     []byte // the AuditEvent JSON
}

// AuditLink is one link of the audit chain.
type AuditLink struct {
	N    int64  // position in the chain: 1, 2, 3, … without gaps
	Seq  int64  // the seq of the record it covers
	Hash []byte // AuditHash(hash of link N-1, N, the record)
	// Record is the stored record, read back; nil when that row is
	// missing.
	Record *AuditRecord
}

// AuditCheckpoint is a signed statement of the chain's head: link N has
// Hash. The sealer writes one after each batch; a chain shorter than a
// checkpoint was truncated.
type AuditCheckpoint struct {
	N         int64
	Hash      []byte
	Time      time.Time // microsecond precision
	Signature []byte    // over AuditCheckpointMessage
}

// AuditTx is implemented by the Tx of a Store that keeps the audit trail.
type AuditTx interface {
	// AppendAudit stores recs in this transaction and sets their Seq;
	// they commit with it or not at all. Each joins the chain in this
	// transaction or, once committed, at the next SealAudit. An id that
	// exists already is an error (ids are random: it is a bug).
	AppendAudit(ctx context.Context, recs []*AuditRecord) error
}

// AuditStore is implemented by a Store that keeps the audit trail (both
// engines do; storetest.RunAudit checks them).
type AuditStore interface {
	// SealAudit chains up to limit queued records, in seq order, and,
	// if sign is not nil and the head moved past the last checkpoint, a
	// checkpoint of the head stamped at, signed by sign. Sealers on every
	// node sharing the database take turns. It returns how many records
	// it chained (always 0 on an engine that chains at append).
	SealAudit(ctx context.Context, limit int, at time.Time, sign func(AuditCheckpoint) []byte) (int, error)

	// ScanAudit calls fn for each link of the chain in N order, with the
	// record it covers (Entities included), on one consistent snapshot;
	// an error from fn stops the scan and is returned.
	ScanAudit(ctx context.Context, fn func(*AuditLink) error) error

	// AuditCheckpoints returns every checkpoint, by N.
	AuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error)

	// AuditUnchained returns the seqs of records that are neither in the
	// chain nor queued for it: records that did not come through
	// AppendAudit.
	AuditUnchained(ctx context.Context) ([]int64, error)

	// AuditQueued returns how many records wait for SealAudit.
	AuditQueued(ctx context.Context) (int64, error)
}

// AuditReader is implemented by the Reader (and Tx) of a Store that keeps
// the audit trail: the FHIR core answers AuditEvent read, search and
// history with it.
type AuditReader interface {
	// AuditEvent returns the record with AuditEvent.id id (Entities
	// nil). Returns KindNotFound when there is none.
	AuditEvent(ctx context.Context, id string) (*AuditRecord, error)
	// SearchAudit returns one page of the records q matches, in q's
	// order (records without Entities). Returns KindInvalid for a query
	// it cannot run.
	SearchAudit(ctx context.Context, q *AuditQuery) (*AuditPage, error)
}

// AuditField is a column of the audit search.
type AuditField int

const (
	AuditID       AuditField = iota + 1 // AuditEvent.id
	AuditRecorded                       // AuditEvent.recorded: Ranges
	AuditEntity                         // any entity.what reference: "Type/id"
	AuditAgent                          // the requestor's identifier value (Principal.Subject)
	AuditAgentRef                       // the requestor's who.reference
	AuditType                           // token: "system|code", "code" (any system) or "system|" (any code)
	AuditSubtype                        // token, as AuditType
	AuditAction
	AuditOutcome
)

// AuditCondition is one condition of an AuditQuery: the field has any of
// Values (or, for AuditRecorded, lies in any of Ranges). No values match
// nothing.
type AuditCondition struct {
	Field  AuditField
	Values []string
	Ranges []AuditRange
}

// AuditRange is the condition "recorded (µs) lies in [Lo, Hi)", or, with
// Not, outside it. An open end is MinTime or MaxTime.
type AuditRange struct {
	Lo, Hi int64
	Not    bool
}

// AuditQuery selects audit records: every condition must hold. Records
// come by (Recorded, Seq), oldest first, or newest first with Desc; a page
// holds at most Count of them and starts after After, so paging stays
// stable while records are appended.
type AuditQuery struct {
	Where []AuditCondition
	Desc  bool
	After *AuditCursor
	Count int
	Total bool // count every match (AuditPage.Total)
}

// AuditCursor is the position of a record in the audit's sort order.
type AuditCursor struct {
	Recorded int64 // µs
	Seq      int64
}

// AuditPage is one page of an audit search.
type AuditPage struct {
	Records []AuditRecord
	Total   int64        // every match when AuditQuery.Total; else -1
	Next    *AuditCursor // where the next page starts; nil on the last page
}

// AuditHash returns the hash of chain link n covering r, after the link
// whose hash is prev (nil for the first link): SHA-256 over a fixed,
// length-prefixed encoding of n and every stored column of r (seq, id,
// recorded µs, type, subtype, action, outcome, agent, agent reference,
// the entity references sorted, the JSON) and prev. An edit of any
// column, or of the entity rows the audit search reads, breaks the link.
func AuditHash(prev []byte, n int64, r *AuditRecord) []byte {
	b := make([]byte, 0, 512+len(r.Data))
	num := func(x int64) { b = binary.BigEndian.AppendUint64(b, uint64(x)) }
	str := func(s string) {
		num(int64(len(s)))
		b = append(b, s...)
	}
	b = append(b, "hale-audit-link-2\x00"...)
	num(n)
	num(r.Seq)
	str(r.ID)
	num(r.Recorded.UnixMicro())
	str(r.Type)
	str(r.Subtype)
	str(r.Action)
	str(r.Outcome)
	str(r.Agent)
	str(r.AgentRef)
	ents := r.Entities // hashed sorted and distinct, as ScanAudit returns them
	for i := 1; i < len(ents); i++ {
		if ents[i-1] >= ents[i] {
			ents = slices.Compact(slices.Sorted(slices.Values(r.Entities)))
			break
		}
	}
	num(int64(len(ents)))
	for _, e := range ents {
		str(e)
	}
	num(int64(len(r.Data)))
	b = append(b, r.Data...)
	num(int64(len(prev)))
	b = append(b, prev...)
	h := sha256.Sum256(b)
	return h[:]
}

// AuditCheckpointMessage is the byte string a checkpoint's signature
// covers.
func AuditCheckpointMessage(c AuditCheckpoint) []byte {
	msg := make([]byte, 0, 64)
	msg = append(msg, "hale-audit-checkpoint-1\x00"...)
	msg = binary.BigEndian.AppendUint64(msg, uint64(c.N))
	msg = append(msg, c.Hash...)
	msg = binary.BigEndian.AppendUint64(msg, uint64(c.Time.UnixMicro()))
	return msg
}
