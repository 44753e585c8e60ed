package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// bundle implements batch and transaction (http.html#transaction).
//
// A transaction runs in one write transaction: every entry succeeds or
// nothing is stored. Entries are processed in the order the spec gives
// (DELETE, POST, PUT and PATCH, then GET and HEAD), but the response lists
// them in request order. Before anything is written every POST and
// conditional entry gets its identity, and each reference to an entry's
// fullUrl (urn:uuid:, urn:oid: or an absolute URL), including references
// inside contained resources, extensions and the narrative, is rewritten to
// the entry's Type/id. Conditional references ("Patient?identifier=x|1")
// resolve to the one resource they match.
//
// A batch runs each entry on its own; an entry's failure is reported in its
// response entry and does not affect the others.
func (s *Service) bundle(ctx context.Context, store hale.Store, req *Request) (*Response, error) {
	if len(req.Body) == 0 && req.Resource == nil {
		return nil, hale.Errorf(hale.KindInvalid, "POST [base] takes a batch or transaction Bundle")
	}
	b := req.Resource
	if b == nil {
		var err error
		if b, err = fhir.Decode(req.Body); err != nil {
			return nil, err
		}
	}
	if b["resourceType"] != "Bundle" {
		return nil, hale.Errorf(hale.KindInvalid, "POST [base] takes a Bundle, not %v", b["resourceType"])
	}
	typ, _ := b["type"].(string)
	if typ != "batch" && typ != "transaction" {
		return nil, hale.Errorf(hale.KindInvalid, "Bundle.type must be batch or transaction to be processed, not %q", typ)
	}
	entries, err := parseEntries(b, req)
	if err != nil {
		return nil, err
	}
	prevalidateAll(entries)
	var out []any
	if typ == "transaction" {
		tctx, log := withBundleLog(ctx)
		err = store.Update(ctx, func(tx hale.Tx) error {
			log.writes, log.reads = log.writes[:0], log.reads[:0] // a retried transaction starts over
			var err error
			if out, err = s.transaction(tctx, tx, entries); err != nil {
				return err
			}
			return s.auditBundle(ctx, tx, log)
		})
		if err == nil {
			err = s.auditBundleReads(ctx, log)
		}
	} else {
		out, err = s.batch(ctx, entries)
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.req != nil && e.req.Type == "SearchParameter" && isWrite(e.req) {
			if err := s.LoadSearchParameters(ctx); err != nil {
				return nil, err
			}
			break
		}
	}
	resp := obj{{"resourceType", "Bundle"}, {"id", newID()}, {"type", typ + "-response"},
		{"link", []any{obj{{"relation", "self"}, {"url", req.Base}}}}}
	if len(out) > 0 {
		resp = append(resp, kv{"entry", out})
	}
	return &Response{Status: http.StatusOK, Object: resp}, nil
}

// entry is one request of a batch or transaction.
type entry struct {
	index    int
	fullURL  string
	resource map[string]any
	req      *Request
	err      error // a problem found while parsing (batch reports it per entry)
}

func parseEntries(b map[string]any, outer *Request) ([]*entry, error) {
	raw, _ := b["entry"].([]any)
	entries := make([]*entry, 0, len(raw))
	for i, x := range raw {
		e := &entry{index: i}
		entries = append(entries, e)
		m, ok := x.(map[string]any)
		if !ok {
			e.err = hale.Errorf(hale.KindInvalid, "Bundle.entry[%d] is not an object", i)
			continue
		}
		e.fullURL, _ = m["fullUrl"].(string)
		if r, ok := m["resource"]; ok {
			if e.resource, ok = r.(map[string]any); !ok {
				e.err = hale.Errorf(hale.KindInvalid, "Bundle.entry[%d].resource is not an object", i)
				continue
			}
		}
		rq, _ := m["request"].(map[string]any)
		if rq == nil {
			e.err = hale.Errorf(hale.KindInvalid, "Bundle.entry[%d] has no request", i)
			continue
		}
		r, err := entryRequest(rq, outer)
		if err != nil {
			e.err = fmt.Errorf("Bundle.entry[%d].request: %w", i, err)
			continue
		}
		r.Resource = e.resource
		if r.Method == "PATCH" && e.resource["resourceType"] == "Parameters" {
			// FHIRPath Patch (fhirpatch.html): the Parameters is the patch.
			r.Patch = false
		} else if r.Method == "PATCH" {
			// A patch entry carries a Binary with the JSON Patch document,
			// or (FHIRPath Patch) a Parameters resource.
			data, _ := e.resource["data"].(string)
			if e.resource["resourceType"] != "Binary" || data == "" {
				e.err = hale.Errorf(hale.KindInvalid, "Bundle.entry[%d]: a PATCH entry needs a Binary resource holding the JSON Patch", i)
				continue
			}
			body, err := decodeBase64(data)
			if err != nil {
				e.err = hale.Errorf(hale.KindInvalid, "Bundle.entry[%d]: Binary.data is not base64: %v", i, err)
				continue
			}
			r.Body, r.Resource, r.Patch = body, nil, true
		}
		if (r.Method == "POST" || r.Method == "PUT") && e.resource == nil {
			e.err = hale.Errorf(hale.KindInvalid, "Bundle.entry[%d]: %s needs a resource", i, r.Method)
			continue
		}
		e.req = r
	}
	return entries, nil
}

// entryRequest turns Bundle.entry.request into a Request.
func entryRequest(rq map[string]any, outer *Request) (*Request, error) {
	method, _ := rq["method"].(string)
	rawURL, _ := rq["url"].(string)
	switch method {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE":
	default:
		return nil, hale.Errorf(hale.KindInvalid, "unknown method %q", method)
	}
	if rawURL == "" {
		return nil, hale.Errorf(hale.KindInvalid, "url is missing")
	}
	rawURL = strings.TrimPrefix(rawURL, outer.Base+"/")
	path, rawQuery, _ := strings.Cut(rawURL, "?")
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, hale.Errorf(hale.KindInvalid, "malformed query in %q", rawURL)
	}
	r := &Request{Method: method, Query: query, RawQuery: rawQuery, Base: outer.Base, Return: outer.Return, Strict: outer.Strict}
	if err := route(r, strings.Trim(path, "/")); err != nil {
		return nil, err
	}
	r.IfMatch, _ = rq["ifMatch"].(string)
	r.IfNoneMatch, _ = rq["ifNoneMatch"].(string)
	r.IfNoneExist, _ = rq["ifNoneExist"].(string)
	return r, nil
}

// order is the processing rank of a method in a transaction.
func order(method string) int {
	switch method {
	case "DELETE":
		return 0
	case "POST":
		return 1
	case "PUT", "PATCH":
		return 2
	}
	return 3
}

func (s *Service) transaction(ctx context.Context, tx hale.Tx, entries []*entry) ([]any, error) {
	for _, e := range entries {
		if e.err != nil {
			return nil, e.err
		}
		if err := refuseAuditWrite(e.req); err != nil {
			return nil, entryErr(e, err)
		}
	}
	ids := map[string]string{} // fullUrl → Type/id
	owner := map[string]int{}  // Type/id → entry index, to refuse two writes of one resource
	found := map[int]string{}  // entry index → matched id of a conditional create
	for _, e := range entries {
		r := e.req
		target := ""
		switch r.Method {
		case "POST":
			if r.IfNoneExist != "" {
				m, err := s.resolve(ctx, tx, r.Type, r.IfNoneExist)
				if err != nil {
					return nil, entryErr(e, err)
				}
				switch len(m) {
				case 0:
				case 1:
					found[e.index] = m[0]
					target = r.Type + "/" + m[0]
				default:
					return nil, entryErr(e, hale.Errorf(hale.KindPreconditionFailed, "ifNoneExist %q matches more than one %s", r.IfNoneExist, r.Type))
				}
			}
			if target == "" {
				r.ID = newID() // assigned now so references can point at it
				target = r.Type + "/" + r.ID
			}
		case "PUT", "PATCH", "DELETE":
			if r.ID == "" && r.RawQuery != "" {
				m, err := s.resolve(ctx, tx, r.Type, r.RawQuery)
				if err != nil {
					return nil, entryErr(e, err)
				}
				switch {
				case len(m) == 1:
					r.ID = m[0]
				case len(m) > 1:
					return nil, entryErr(e, hale.Errorf(hale.KindPreconditionFailed, "criteria %q match more than one %s", r.RawQuery, r.Type))
				case r.Method == "PUT":
					if id, _ := e.resource["id"].(string); id != "" {
						r.ID = id
					} else {
						r.ID = newID()
					}
				}
				if r.Method == "PUT" && e.resource["id"] == nil {
					e.resource["id"] = r.ID
				}
				r.RawQuery, r.Query = "", url.Values{}
			}
			if r.ID != "" {
				target = r.Type + "/" + r.ID
			}
		}
		if target != "" && r.Method != "GET" && r.Method != "HEAD" {
			if j, dup := owner[target]; dup {
				return nil, entryErr(e, hale.Errorf(hale.KindInvalid, "entries %d and %d both write %s", j, e.index, target))
			}
			owner[target] = e.index
		}
		if e.fullURL != "" && target != "" {
			ids[e.fullURL] = target
		}
	}
	for _, e := range entries {
		if e.resource != nil && e.req.Method != "PATCH" {
			changed, err := s.rewriteReferences(ctx, tx, e.resource, ids)
			if err != nil {
				return nil, entryErr(e, err)
			}
			if changed && e.req.validated {
				// Validated before the rewrite: check again what a
				// rewrite can change, the type each reference names.
				if issues := fhir.Validate(e.resource); len(issues) > 0 {
					return nil, entryErr(e, &hale.Error{Kind: hale.KindInvalid, Op: "validate", Message: issues[0].Diagnostics, Issues: issues})
				}
			}
		}
	}
	sorted := append([]*entry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return order(sorted[i].req.Method) < order(sorted[j].req.Method) })
	out := make([]any, len(entries))
	for _, e := range sorted {
		var resp *Response
		var err error
		switch {
		case e.req.Method == "POST" && found[e.index] != "":
			var v *hale.Version
			if v, err = tx.Current(ctx, e.req.Type, found[e.index]); err == nil {
				resp = versionResponse(http.StatusOK, v)
			}
		case e.req.Method == "POST":
			resp, err = s.createWithID(ctx, tx, e.req)
		case isWrite(e.req):
			resp, err = s.write(ctx, tx, e.req)
		default:
			if resp, err = s.read(ctx, tx, e.req); err == nil {
				if log, ok := ctx.Value(bundleLogKey{}).(*bundleLog); ok {
					log.reads = append(log.reads, loggedRead{req: e.req, resp: resp})
				}
			}
		}
		if err != nil {
			return nil, entryErr(e, err)
		}
		out[e.index] = responseEntry(e.req, resp)
	}
	return out, nil
}

// createWithID is create with the id the transaction assigned up front.
func (s *Service) createWithID(ctx context.Context, tx hale.Tx, req *Request) (*Response, error) {
	res, err := decodeResource(req)
	if err != nil {
		return nil, err
	}
	v, err := s.put(ctx, tx, req.Type, req.ID, res, nil, "POST")
	if err != nil {
		return nil, err
	}
	return versionResponse(http.StatusCreated, v), nil
}

func (s *Service) batch(ctx context.Context, entries []*entry) ([]any, error) {
	out := make([]any, len(entries))
	for _, e := range entries {
		var resp *Response
		err := e.err
		if err == nil {
			if e.req.Resource != nil {
				// Entries of a batch are independent: no reference
				// rewriting, each in its own transaction.
				e.req.Resource = deepCopy(e.req.Resource).(map[string]any)
			}
			resp, err = s.Do(ctx, e.req)
		}
		if err != nil {
			out[e.index] = errorEntry(err)
			continue
		}
		out[e.index] = responseEntry(e.req, resp)
	}
	return out, nil
}

// entryErr names the failing entry in a transaction's error.
func entryErr(e *entry, err error) error {
	he, ok := err.(*hale.Error)
	if !ok {
		return err
	}
	out := *he
	out.Message = fmt.Sprintf("Bundle.entry[%d] (%s %s): %s", e.index, e.req.Method, entryURL(e.req), he.Message)
	if len(he.Issues) > 0 {
		out.Issues = make([]hale.Issue, len(he.Issues))
		for i, is := range he.Issues {
			is.Diagnostics = fmt.Sprintf("Bundle.entry[%d]: %s", e.index, is.Diagnostics)
			for j, x := range is.Expression {
				is.Expression = append([]string(nil), is.Expression...)
				is.Expression[j] = fmt.Sprintf("Bundle.entry[%d].resource%s", e.index, strings.TrimPrefix(x, e.req.Type))
			}
			out.Issues[i] = is
		}
	}
	return &out
}

func entryURL(r *Request) string {
	u := r.Type
	if r.ID != "" {
		u += "/" + r.ID
	}
	if r.RawQuery != "" {
		u += "?" + r.RawQuery
	}
	return u
}

// responseEntry is Bundle.entry of a batch-response or transaction-response.
func responseEntry(req *Request, resp *Response) obj {
	status := strconv.Itoa(resp.Status) + " " + http.StatusText(resp.Status)
	r := obj{{"status", status}}
	if resp.Location != "" {
		r = append(r, kv{"location", resp.Location})
	}
	if resp.ETag != "" {
		r = append(r, kv{"etag", resp.ETag})
	}
	if !resp.LastModified.IsZero() {
		r = append(r, kv{"lastModified", instant(resp.LastModified)})
	}
	e := obj{}
	if resp.Location != "" {
		t, id, _ := search.ParseLocalReference(resp.Location)
		e = append(e, kv{"fullUrl", req.Base + "/" + t + "/" + id})
	}
	switch req.Return {
	case ReturnMinimal:
	case ReturnOutcome:
		r = append(r, kv{"outcome", info(resp.outcomeMessage())})
	default:
		if c := resp.content(); c != nil {
			e = append(e, kv{"resource", c})
		}
	}
	return append(e, kv{"response", r})
}

func errorEntry(err error) obj {
	st := statusOf(hale.ErrorKind(err))
	return obj{{"response", obj{
		{"status", strconv.Itoa(st) + " " + http.StatusText(st)},
		{"outcome", outcome(hale.ErrorIssues(err))},
	}}}
}

// rewriteReferences replaces, everywhere in res, references to another
// entry's fullUrl by that entry's Type/id, and resolves conditional
// references. It also rewrites the fullUrls inside narrative links.
func (s *Service) rewriteReferences(ctx context.Context, tx hale.Tx, res map[string]any, ids map[string]string) (changed bool, err error) {
	var walk func(v any) error
	walk = func(v any) error {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if ref, ok := e.(string); ok {
					switch {
					case k == "reference":
						n, err := s.rewriteOne(ctx, tx, ref, ids)
						if err != nil {
							return err
						}
						changed = changed || n != ref
						x[k] = n
					case k == "div" && len(ids) > 0 && strings.Contains(ref, "urn:"):
						x[k] = rewriteNarrative(ref, ids)
					}
					continue
				}
				if err := walk(e); err != nil {
					return err
				}
			}
		case []any:
			for _, e := range x {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err = walk(res)
	return changed, err
}

func (s *Service) rewriteOne(ctx context.Context, tx hale.Tx, ref string, ids map[string]string) (string, error) {
	if n, ok := ids[ref]; ok {
		return n, nil
	}
	typ, query, ok := strings.Cut(ref, "?")
	if !ok || !fhir.IsResourceType(typ) {
		if strings.HasPrefix(ref, "urn:uuid:") || strings.HasPrefix(ref, "urn:oid:") {
			return "", hale.Errorf(hale.KindInvalid, "reference %q names no entry of this transaction", ref)
		}
		return ref, nil
	}
	q, err := search.ParseConditional(s.Params, typ, query)
	if err != nil {
		return "", err
	}
	found, err := matchIDs(ctx, tx, q)
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 1:
		return typ + "/" + found[0], nil
	case 0:
		return "", hale.Errorf(hale.KindPreconditionFailed, "conditional reference %q matches no resource", ref)
	}
	return "", hale.Errorf(hale.KindPreconditionFailed, "conditional reference %q matches more than one resource", ref)
}

func rewriteNarrative(div string, ids map[string]string) string {
	for from, to := range ids {
		if strings.HasPrefix(from, "urn:") && strings.Contains(div, from) {
			div = strings.ReplaceAll(div, `"`+from+`"`, `"`+to+`"`)
		}
	}
	return div
}

// decodeBase64 reads Binary.data.
func decodeBase64(s string) ([]byte, error) {
	var b []byte
	err := json.Unmarshal([]byte(strconv.Quote(s)), &b)
	return b, err
}
