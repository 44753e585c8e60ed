package rest

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/invariant"
	"github.com/hale-ehr/hale/search"
)

// decodeResource returns the request's resource, decoding the body if the
// caller has not, and checks that it is a valid resource of the type the
// URL names. Validation issues make a KindInvalid error whose issues carry
// the FHIRPath location of each problem; nothing is written.
func decodeResource(req *Request) (map[string]any, error) {
	res := req.Resource
	if res == nil {
		if len(req.Body) == 0 {
			return nil, hale.Errorf(hale.KindInvalid, "the request has no body; a %s resource is expected", req.Type)
		}
		var err error
		if res, err = fhir.Decode(req.Body); err != nil {
			return nil, err
		}
	}
	rt, _ := res["resourceType"].(string)
	switch {
	case rt == "":
		return nil, hale.Errorf(hale.KindInvalid, "the body is not a FHIR resource: resourceType is missing")
	case rt != req.Type:
		return nil, hale.Errorf(hale.KindInvalid, "resourceType %q does not match the %s the URL names", rt, req.Type)
	}
	if req.validated {
		return res, nil
	}
	if err := validateResource(res); err != nil {
		return nil, err
	}
	return res, nil
}

// prevalidate decodes and validates the resource of a create or update
// before its write transaction begins, so that this CPU work runs beside
// other writers instead of inside the store's write lock (SQLite has one
// writer; a transaction's validation was a sixth of its time there).
// A request that fails is left as it was: decodeResource finds the same
// problem inside the transaction and reports it as before.
func prevalidate(req *Request) {
	if req.Patch || req.Type == "" || (req.Method != "POST" && req.Method != "PUT") || req.Op != "" {
		return
	}
	if req.Resource == nil && len(req.Body) > 0 {
		res, err := fhir.Decode(req.Body)
		if err != nil {
			return
		}
		req.Resource = res
	}
	if _, err := decodeResource(req); err == nil {
		req.validated = req.Resource != nil
	}
}

// prevalidateAll runs prevalidate on the entries' requests, in parallel.
func prevalidateAll(entries []*entry) {
	work := make(chan *Request)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(entries)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				prevalidate(r)
			}
		}()
	}
	for _, e := range entries {
		if e.err == nil && e.req != nil {
			work <- e.req
		}
	}
	close(work)
	wg.Wait()
}

// validateResource checks res against the base definitions: the data
// model first (unknown elements, types, cardinality, required codes: 400),
// then, on a well-formed resource, every error-severity invariant of its
// StructureDefinition and data types (422).
func validateResource(res map[string]any) error {
	if issues := fhir.Validate(res); len(issues) > 0 {
		return &hale.Error{Kind: hale.KindInvalid, Op: "validate", Message: issues[0].Diagnostics, Issues: issues}
	}
	if issues := invariant.Check(context.Background(), res); len(issues) > 0 {
		return &hale.Error{Kind: hale.KindUnprocessable, Op: "validate", Message: issues[0].Diagnostics, Issues: issues}
	}
	if err := checkAttachmentHashes(res); err != nil {
		return err
	}
	if res["resourceType"] == "SearchParameter" && res["status"] == "active" {
		// An active SearchParameter becomes searchable: refuse one Hale
		// cannot index rather than ignore it silently.
		if _, err := search.CustomParams(res); err != nil {
			return &hale.Error{Kind: hale.KindUnprocessable, Op: "validate", Message: err.Error(),
				Issues: []hale.Issue{{Severity: "error", Code: "business-rule", Diagnostics: err.Error(), Expression: []string{"SearchParameter"}}}}
		}
	}
	return nil
}

// put stores res as the next version after prev (nil: a new resource),
// setting id, meta.versionId and meta.lastUpdated and indexing it.
func (s *Service) put(ctx context.Context, tx hale.Tx, typ, id string, res map[string]any, prev *hale.Version, method string) (*hale.Version, error) {
	if err := checkSigned(typ, prev, res); err != nil {
		return nil, err
	}
	if typ == "Appointment" {
		if err := s.checkBooking(ctx, tx, id, res, prev); err != nil {
			return nil, err
		}
	}
	v := &hale.Version{Type: typ, ID: id, VersionID: 1, Method: method, LastUpdated: s.now()}
	if prev != nil {
		v.VersionID = prev.VersionID + 1
		if !v.LastUpdated.After(prev.LastUpdated) {
			// Keep lastUpdated increasing along a resource's history even
			// if the clock steps back or two writes share a millisecond.
			v.LastUpdated = prev.LastUpdated.Add(time.Millisecond)
		}
	}
	res["id"] = id
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		res["meta"] = meta
	}
	meta["versionId"] = itoa(v.VersionID)
	meta["lastUpdated"] = instant(v.LastUpdated)
	data, err := fhir.Marshal(res)
	if err != nil {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: "rest.put", Err: err}
	}
	v.Data = data
	idx := s.Params.Extract(typ, res)
	if err := tx.Put(ctx, v, idx); err != nil {
		return nil, err
	}
	return v, s.auditWrite(ctx, tx, v, idx)
}

// remove writes a delete version after prev.
func (s *Service) remove(ctx context.Context, tx hale.Tx, prev *hale.Version) (*hale.Version, error) {
	v := &hale.Version{Type: prev.Type, ID: prev.ID, VersionID: prev.VersionID + 1, Method: "DELETE", Deleted: true, LastUpdated: s.now()}
	if !v.LastUpdated.After(prev.LastUpdated) {
		v.LastUpdated = prev.LastUpdated.Add(time.Millisecond)
	}
	if err := tx.Put(ctx, v, nil); err != nil {
		return nil, err
	}
	// The record names the patient the resource belonged to, which its
	// last version says (a delete has no content of its own).
	w := *v
	w.Data = prev.Data
	return v, s.auditWrite(ctx, tx, &w, nil)
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Millisecond) }

// current returns the current version, or nil when the resource never
// existed.
func current(ctx context.Context, r hale.Reader, typ, id string) (*hale.Version, error) {
	v, err := r.Current(ctx, typ, id)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, nil
	}
	return v, err
}

// checkIfMatch enforces If-Match (http.html#concurrency): the update
// applies only to the version the client read.
func checkIfMatch(req *Request, cur *hale.Version) error {
	if req.IfMatch == "" {
		return nil
	}
	want, ok := parseETag(req.IfMatch)
	if !ok {
		return hale.Errorf(hale.KindInvalid, "malformed If-Match %q: expected W/\"<versionId>\"", req.IfMatch)
	}
	if cur == nil || cur.Deleted {
		return hale.Errorf(hale.KindPreconditionFailed, "If-Match %s: %s/%s does not exist", req.IfMatch, req.Type, req.ID)
	}
	if cur.VersionID != want {
		return hale.Errorf(hale.KindPreconditionFailed, "If-Match %s does not match the current version %d of %s/%s", req.IfMatch, cur.VersionID, cur.Type, cur.ID)
	}
	return nil
}

// resolve runs the search of a conditional interaction and returns the ids
// that match, at most two (search.html; http.html#cond-update).
func (s *Service) resolve(ctx context.Context, tx hale.Tx, typ, rawQuery string) ([]string, error) {
	q, err := search.ParseConditional(s.Params, typ, rawQuery)
	if err != nil {
		return nil, err
	}
	// Serialise conditional interactions on this type so that concurrent
	// identical conditional creates cannot both see "no match".
	if err := tx.Lock(ctx, "conditional:"+typ); err != nil {
		return nil, err
	}
	return matchIDs(ctx, tx, q)
}

// matchIDs runs a query and returns the ids of the page.
func matchIDs(ctx context.Context, r hale.Reader, q *hale.Query) ([]string, error) {
	sr, ok := r.(hale.Searcher)
	if !ok {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: "rest.search", Message: "the store cannot search"}
	}
	res, err := sr.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(res.Versions))
	for i, v := range res.Versions {
		ids[i] = v.ID
	}
	return ids, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
