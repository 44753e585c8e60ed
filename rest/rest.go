// Package rest is Hale's FHIR core: a transport-independent dispatcher that
// takes a FHIR request (Request) and answers with a resource, a bundle or
// an error (Response, *hale.Error), plus the HTTP adapter for it (http.go).
//
// Every FHIR interaction of http.html lives in its own file. The HTTP
// handler, batch and transaction entries (bundle.go) and later the web
// apps all call the same functions, so FHIR semantics are written once.
package rest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// Service answers FHIR requests against a Store.
type Service struct {
	Store hale.Store
	Now   hale.Now
	Log   *slog.Logger

	// BaseURL is the public FHIR base ("https://ehr.example.org/fhir").
	// When empty the HTTP adapter derives it from each request.
	BaseURL string
	// MaxBodyBytes limits request bodies; default 16 MiB.
	MaxBodyBytes int64
	// DefaultCount and MaxCount bound _count for searches and history.
	DefaultCount, MaxCount int
	// Version is the software version stated in the CapabilityStatement.
	Version string
	// Params are the search parameters: the built-in ones and those the
	// store's SearchParameter resources define.
	Params *search.Registry
	// Audit, when set, records every access (audit.go): writes in their
	// transaction, the rest after they were answered.
	Audit hale.AuditSink

	// Access, when set, derives the store a request may use from the
	// caller its context carries (hale.PrincipalFrom), and a context for
	// the rest of the request: access.Policy.Access, which answers
	// KindUnauthorized for a context without a Principal and scopes the
	// store to what the Principal may see and do. Every interaction
	// but metadata goes through it. When nil, requests use Store as is
	// (tests, the importer, a server without access control).
	Access func(ctx context.Context, store hale.Store) (context.Context, hale.Store, error)

	// OAuth, when set, names the authorization server's endpoints: the
	// CapabilityStatement then declares SMART on FHIR security.
	OAuth *OAuthURIs

	// ExportQueued, when set, is called after an export kick-off queued
	// its job: the server wakes this node's export runner with it, so a
	// job starts at once instead of at the runner's next poll.
	ExportQueued func()
}

// OAuthURIs are the endpoints of the authorization server that protects
// the API (SMART App Launch "oauth-uris").
type OAuthURIs struct {
	Authorize, Token, Revoke, Introspect string
}

// scoped returns the store the request in ctx may use, and its context.
func (s *Service) scoped(ctx context.Context) (context.Context, hale.Store, error) {
	if s.Access == nil {
		return ctx, s.Store, nil
	}
	return s.Access(ctx, s.Store)
}

// NewService returns a Service with the defaults filled in.
func NewService(store hale.Store) *Service {
	return &Service{
		Store:        store,
		Now:          time.Now,
		Log:          slog.Default(),
		MaxBodyBytes: 16 << 20,
		DefaultCount: 50,
		MaxCount:     1000,
		Version:      "dev",
		Params:       search.NewRegistry(),
	}
}

// Prefer return values (http.html#ops).
const (
	ReturnRepresentation = "representation"
	ReturnMinimal        = "minimal"
	ReturnOutcome        = "OperationOutcome"
)

// Request is one FHIR interaction, independent of transport.
type Request struct {
	Method    string // GET, HEAD, POST, PUT, PATCH, DELETE
	Type      string // resource type, "" at system level
	ID        string
	VersionID string
	// Op is the last special path segment: "_history", "_search",
	// "metadata", or an operation such as "$validate".
	Op    string
	Query url.Values
	// RawQuery is the query as sent, for conditional interactions.
	RawQuery string

	Body     []byte         // request body (JSON, or a JSON Patch document)
	Resource map[string]any // the decoded body, when the caller decoded it
	Patch    bool           // Body is application/json-patch+json
	// validated: Resource passed validateResource before the write
	// transaction began (prevalidate), so decodeResource need not check
	// it again while holding the write lock.
	validated bool
	// native: a Binary read over HTTP answered with its content rather
	// than as FHIR (binary.go).
	native bool

	IfMatch, IfNoneMatch, IfNoneExist string
	IfModifiedSince                   time.Time

	// Compartment, for a compartment search ([base]/Patient/1/Observation
	// or [base]/Patient/1/*), names the compartment's owner.
	Compartment *Compartment

	Return string // Prefer: return=…
	Strict bool   // Prefer: handling=strict
	Base   string // FHIR base URL, for absolute links
}

// Compartment is a compartment owner: Patient/123.
type Compartment struct{ Type, ID string }

// Response is the answer to a Request. Body holds a stored resource's
// JSON as is; Object holds something built for this answer (a bundle, an
// outcome). At most one is set.
type Response struct {
	Status       int
	Body         json.RawMessage
	Object       obj
	Location     string // relative: Type/id/_history/n
	ETag         string // W/"n"
	LastModified time.Time

	// Outcome is shown for Prefer: return=OperationOutcome.
	Outcome string

	touched []hale.Version // the resources a search returned, for the audit
}

func (r *Response) content() any {
	if r.Body != nil {
		return r.Body
	}
	if r.Object != nil {
		return r.Object
	}
	return nil
}

// JSON is the body the HTTP adapter sends for r in FHIR JSON (without
// _pretty): Body as is, or Object encoded; nil when r has neither.
func (r *Response) JSON() ([]byte, error) {
	if c := r.content(); c != nil {
		return marshal(c)
	}
	return nil, nil
}

// outcomeMessage is the text of the OperationOutcome that answers a
// request with Prefer: return=OperationOutcome.
func (r *Response) outcomeMessage() string {
	if r.Outcome != "" {
		return r.Outcome
	}
	msg := http.StatusText(r.Status)
	if r.Location != "" {
		msg += ": " + r.Location
	}
	return msg
}

// Do answers one request: writes in one write transaction, reads in one
// read transaction. With Audit set, every request is recorded.
func (s *Service) Do(ctx context.Context, req *Request) (*Response, error) {
	store := s.Store
	if req.Op != "metadata" {
		// Who is asking comes first: an anonymous request learns nothing,
		// not even whether its type or id is well formed.
		var err error
		if ctx, store, err = s.scoped(ctx); err != nil {
			return nil, err
		}
	}
	resp, err := s.do(ctx, store, req)
	if err = s.auditAnswer(ctx, req, resp, err); err != nil {
		return nil, err
	}
	return resp, nil
}

// do answers req with store, the store scoped to the caller.
func (s *Service) do(ctx context.Context, store hale.Store, req *Request) (*Response, error) {
	if err := s.checkTarget(req); err != nil {
		return nil, err
	}
	if req.Op == "metadata" {
		return s.capabilities(req)
	}
	if req.Type == "" && req.Op == "" && req.Method == "POST" {
		return s.bundle(ctx, store, req)
	}
	if req.Op == "$validate" {
		return s.validate(req)
	}
	if req.Op == "$everything" {
		var resp *Response
		err := store.View(ctx, func(r hale.Reader) error {
			var err error
			resp, err = s.everything(ctx, r, req)
			return err
		})
		return resp, err
	}
	if isWrite(req) {
		prevalidate(req)
		var resp *Response
		err := store.Update(ctx, func(tx hale.Tx) error {
			var err error
			resp, err = s.write(ctx, tx, req)
			return err
		})
		if err == nil && req.Type == "SearchParameter" {
			err = s.LoadSearchParameters(ctx)
		}
		return resp, err
	}
	var resp *Response
	err := store.View(ctx, func(r hale.Reader) error {
		var err error
		resp, err = s.read(ctx, r, req)
		return err
	})
	return resp, err
}

func isWrite(req *Request) bool {
	switch req.Method {
	case "POST":
		return req.Op != "_search"
	case "PUT", "PATCH", "DELETE":
		return true
	}
	return false
}

// checkTarget rejects unknown types and malformed ids before any work.
func (s *Service) checkTarget(req *Request) error {
	if req.Type != "" && !fhir.IsResourceType(req.Type) {
		return hale.Errorf(hale.KindNotFound, "unknown resource type %q", req.Type)
	}
	if req.ID != "" && !search.ValidID(req.ID) {
		return hale.Errorf(hale.KindInvalid, "invalid id %q: ids are 1-64 characters of A-Z a-z 0-9 - .", req.ID)
	}
	if req.VersionID != "" {
		if n, err := strconv.ParseInt(req.VersionID, 10, 64); err != nil || n < 1 {
			return hale.Errorf(hale.KindNotFound, "version %q of %s/%s not found", req.VersionID, req.Type, req.ID)
		}
	}
	return nil
}

// write routes a write interaction inside a write transaction. Bundle
// entries of a transaction come here too, all with the same tx.
func (s *Service) write(ctx context.Context, tx hale.Tx, req *Request) (*Response, error) {
	if err := refuseAuditWrite(req); err != nil {
		return nil, err
	}
	switch {
	case req.Method == "POST" && req.Type != "" && req.ID == "" && req.Op == "":
		return s.create(ctx, tx, req)
	case req.Method == "PUT" && req.Type != "" && req.Op == "":
		return s.update(ctx, tx, req)
	case req.Method == "PATCH" && req.Type != "" && req.Op == "":
		return s.patch(ctx, tx, req)
	case req.Method == "DELETE" && req.Type != "" && req.Op == "":
		return s.delete(ctx, tx, req)
	}
	return nil, notAllowed(req)
}

// read routes a read interaction inside a read (or write) transaction.
func (s *Service) read(ctx context.Context, r hale.Reader, req *Request) (*Response, error) {
	if req.Type == "AuditEvent" {
		return s.auditEvent(ctx, r, req) // from the audit trail (auditevent.go)
	}
	get := req.Method == "GET" || req.Method == "HEAD"
	switch {
	case get && req.Op == "_history" && req.VersionID != "":
		return s.vread(ctx, r, req)
	case get && req.Op == "_history":
		return s.history(ctx, r, req)
	case get && req.Type != "" && req.ID != "" && req.Op == "":
		return s.readCurrent(ctx, r, req)
	case (get && req.Op == "" || req.Method == "POST" && req.Op == "_search") && req.ID == "":
		return s.search(ctx, r, req)
	}
	return nil, notAllowed(req)
}

func notAllowed(req *Request) error {
	path := req.Type
	if req.ID != "" {
		path += "/" + req.ID
	}
	if req.Op != "" {
		path += "/" + req.Op
	}
	return hale.Errorf(hale.KindMethodNotAllowed, "%s is not supported on [base]/%s", req.Method, path)
}

// newID returns a server-assigned id: 128 random bits as 32 hex digits
// (a valid FHIR id, unguessable, no coordination between nodes).
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[8:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	binary.BigEndian.PutUint64(b[:8], idClock.next(time.Now()))
	return hex.EncodeToString(b[:])
}

// idClock makes server-assigned ids increase in the order they are
// made (within one process): 48 bits of Unix milliseconds and a 16-bit
// counter, then 64 random bits, in the spirit of UUIDv7 (RFC 9562 §5.7).
// Ids that follow write order keep each store's (type, id) keys
// append-mostly: a bundle's rows land on a few B-tree pages instead of
// one random page per index per resource, which is most of the cost of
// a large write (fewer pages to write at commit), and reading in id
// order reads the data in the order it was written. 64 random bits keep
// ids unguessable; the creation time they reveal is in meta.lastUpdated
// anyway.
var idClock clock48

type clock48 struct {
	mu   sync.Mutex
	last uint64 // ms<<16 | counter of the last id
}

func (c *clock48) next(now time.Time) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := uint64(now.UnixMilli()) << 16
	if v <= c.last {
		v = c.last + 1 // same millisecond (or the clock stepped back)
	}
	c.last = v
	return v
}

// etag is the weak ETag of a version (http.html#versioning).
func etag(version int64) string { return fmt.Sprintf("W/%q", strconv.FormatInt(version, 10)) }

// parseETag accepts W/"3", "3" and 3.
func parseETag(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	s = strings.Trim(s, `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// instant formats t as a FHIR instant with millisecond precision.
func instant(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func location(v *hale.Version) string {
	return v.Type + "/" + v.ID + "/_history/" + strconv.FormatInt(v.VersionID, 10)
}

// versionResponse is the answer carrying one stored version.
func versionResponse(status int, v *hale.Version) *Response {
	return &Response{
		Status:       status,
		Body:         v.Data,
		Location:     location(v),
		ETag:         etag(v.VersionID),
		LastModified: v.LastUpdated,
	}
}

// LoadSearchParameters reads the SearchParameter resources in the store
// and makes the active ones searchable (search.SetCustom). It runs at
// start-up, after every write of a SearchParameter on this node, and
// periodically (cmd/hale) so that nodes sharing a database agree.
func (s *Service) LoadSearchParameters(ctx context.Context) error {
	var defs []map[string]any
	err := s.Store.View(ctx, func(r hale.Reader) error {
		sr, ok := r.(hale.Searcher)
		if !ok {
			return nil
		}
		res, err := sr.Search(ctx, &hale.Query{Types: []string{"SearchParameter"}, Count: 100000})
		if err != nil {
			return err
		}
		for _, v := range res.Versions {
			m, err := fhir.Decode(v.Data)
			if err != nil {
				return err
			}
			defs = append(defs, m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for name, problem := range s.Params.SetCustom(defs) {
		s.Log.Warn("search parameter not used", "searchparameter", name, "problem", problem)
	}
	return nil
}
