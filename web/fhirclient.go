package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/rest"
)

// The app's only way to the data: FHIR requests through rest.Service.Do
// with the user's Principal in the context (signedIn puts it there). The
// core scopes the store to the user, validates, indexes and audits.

// resource is a FHIR resource as decoded JSON.
type resource = map[string]any

// bundle is a page of search results.
type bundle struct {
	Matches  []resource
	Included []resource
	Total    int    // -1 when not asked for
	Next     string // the cursor of the next page, "" on the last
	Hidden   bool   // the user's role may not search this type
}

// body is the JSON of a response: a stored resource, or a bundle the core
// built for the answer.
func body(resp *rest.Response) ([]byte, error) {
	if resp.Body != nil {
		return resp.Body, nil
	}
	return json.Marshal(resp.Object)
}

// search runs a search of typ with q. A type the user's role may not
// search at all gives an empty bundle marked Hidden (the screen says so)
// rather than an error page.
func (a *App) search(ctx context.Context, typ string, q url.Values) (*bundle, error) {
	if p := hale.PrincipalFrom(ctx); p != nil && !access.RoleAllows(p.Role, typ, access.Search) {
		return &bundle{Total: -1, Hidden: true}, nil
	}
	resp, err := a.fhir.Do(ctx, &rest.Request{Method: "GET", Type: typ, Query: q, RawQuery: q.Encode()})
	if err != nil {
		return nil, err
	}
	b, err := body(resp)
	if err != nil {
		return nil, err
	}
	var raw struct {
		Total *int `json:"total"`
		Link  []struct {
			Relation string `json:"relation"`
			URL      string `json:"url"`
		} `json:"link"`
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
			Search   struct {
				Mode string `json:"mode"`
			} `json:"search"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := &bundle{Total: -1}
	if raw.Total != nil {
		out.Total = *raw.Total
	}
	for _, l := range raw.Link {
		if l.Relation == "next" {
			if u, err := url.Parse(l.URL); err == nil {
				out.Next = u.Query().Get("_cursor")
			}
		}
	}
	for _, e := range raw.Entry {
		var r resource
		if err := json.Unmarshal(e.Resource, &r); err != nil {
			return nil, err
		}
		switch e.Search.Mode {
		case "match":
			out.Matches = append(out.Matches, r)
		case "include":
			out.Included = append(out.Included, r)
		}
	}
	return out, nil
}

// read returns the current version of typ/id and its version id.
func (a *App) read(ctx context.Context, typ, id string) (resource, string, error) {
	resp, err := a.fhir.Do(ctx, &rest.Request{Method: "GET", Type: typ, ID: id})
	if err != nil {
		return nil, "", err
	}
	var r resource
	if err := json.Unmarshal(resp.Body, &r); err != nil {
		return nil, "", err
	}
	return r, str(r, "meta", "versionId"), nil
}

// create writes a new resource and returns its id.
func (a *App) create(ctx context.Context, r resource) (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	typ, _ := r["resourceType"].(string)
	resp, err := a.fhir.Do(ctx, &rest.Request{Method: "POST", Type: typ, Body: b, Return: rest.ReturnMinimal})
	if err != nil {
		return "", err
	}
	// Location: Type/id/_history/n
	parts := strings.Split(resp.Location, "/")
	if len(parts) >= 2 {
		return parts[1], nil
	}
	return "", nil
}

// update replaces typ/id with r if it is still at version (If-Match), so
// a change made meanwhile by someone else is not overwritten.
func (a *App) update(ctx context.Context, r resource, version string) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	typ, _ := r["resourceType"].(string)
	id, _ := r["id"].(string)
	req := &rest.Request{Method: "PUT", Type: typ, ID: id, Body: b, Return: rest.ReturnMinimal}
	if version != "" {
		req.IfMatch = `W/"` + version + `"`
	}
	_, err = a.fhir.Do(ctx, req)
	return err
}

// transaction creates resources in one transaction: all or none.
func (a *App) transaction(ctx context.Context, rs []resource) error {
	var es []txEntry
	for _, r := range rs {
		es = append(es, txEntry{Method: "POST", Resource: r})
	}
	_, err := a.transact(ctx, es)
	return err
}

// txEntry is one entry of a transaction Bundle. FullURL (urn:uuid:…)
// lets other entries refer to a resource created in the same
// transaction; IfMatch makes the entry, and so the whole transaction,
// fail when the resource changed since it was read.
type txEntry struct {
	FullURL  string
	Method   string // POST or PUT
	Resource resource
	IfMatch  string // a version id
}

// transact runs es as one FHIR transaction (http.html#transaction) and
// returns the Type/id of each entry's resource, in order.
func (a *App) transact(ctx context.Context, es []txEntry) ([]string, error) {
	var entries []any
	for _, e := range es {
		typ, _ := e.Resource["resourceType"].(string)
		u := typ
		if e.Method == "PUT" {
			u += "/" + str(e.Resource, "id")
		}
		fu := e.FullURL
		if fu == "" {
			fu = "urn:uuid:" + uuid()
		}
		req := map[string]any{"method": e.Method, "url": u}
		if e.IfMatch != "" {
			req["ifMatch"] = `W/"` + e.IfMatch + `"`
		}
		entries = append(entries, map[string]any{"fullUrl": fu, "resource": e.Resource, "request": req})
	}
	b, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries})
	if err != nil {
		return nil, err
	}
	resp, err := a.fhir.Do(ctx, &rest.Request{Method: "POST", Body: b, Return: rest.ReturnMinimal})
	if err != nil {
		return nil, err
	}
	rb, err := body(resp)
	if err != nil {
		return nil, err
	}
	var out struct {
		Entry []struct {
			Response struct {
				Location string `json:"location"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(rb, &out); err != nil {
		return nil, err
	}
	refs := make([]string, len(es))
	for i, e := range out.Entry {
		if i < len(refs) {
			parts := strings.Split(e.Response.Location, "/")
			if len(parts) >= 2 {
				refs[i] = parts[0] + "/" + parts[1]
			}
		}
	}
	return refs, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// uuid is a random (version 4) UUID.
func uuid() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s bytes.Buffer
	const hexd = "0123456789abcdef"
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s.WriteByte('-')
		}
		s.WriteByte(hexd[c>>4])
		s.WriteByte(hexd[c&15])
	}
	return s.String()
}

// isNotFound reports an error that means "no such record (for you)".
func isNotFound(err error) bool {
	return hale.IsKind(err, hale.KindNotFound) || hale.IsKind(err, hale.KindGone)
}

// errNotFound is a patient or record that does not exist or that the user
// may not see (the two look the same).
var errNotFound = hale.Errorf(hale.KindNotFound, "not found")

func isForbidden(err error) bool { return hale.IsKind(err, hale.KindForbidden) }

// errChanged is a record changed since the page that changes it was shown.
var errChanged = hale.Errorf(hale.KindConflict, "the record changed meanwhile")
