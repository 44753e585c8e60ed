package rest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// maxIncludes bounds the resources _include and _revinclude may add to
// one page, so a search cannot pull in the whole database.
const maxIncludes = 1000

// searchset implements search at type, system and compartment level
// (search.html, http.html#search) on a store that runs Queries: the
// parameters become a hale.Query (package search), the store returns one
// page in sort order, and this function adds _include and _revinclude
// resources, applies _summary and _elements, and writes the links. Paging
// uses an opaque cursor (_cursor), so next links stay correct while
// others write.
func (s *Service) searchset(ctx context.Context, r hale.Reader, sr hale.Searcher, req *Request) (*Response, error) {
	var types []string
	switch {
	case req.Type != "":
		types = []string{req.Type}
	case req.Compartment != nil:
		types = compartmentTypes(req.Compartment.Type)
	}
	parsed, err := search.ParseRequest(types, req.Query, search.Options{DefaultCount: s.DefaultCount, MaxCount: s.MaxCount, Now: s.Now, Registry: s.Params})
	if err != nil {
		return nil, err
	}
	if req.Strict && len(parsed.Ignored) > 0 {
		return nil, hale.Errorf(hale.KindInvalid, "search parameter %q is not supported here", parsed.Ignored[0])
	}
	if req.Compartment != nil {
		c, err := compartmentClause(req.Compartment, req.Type)
		if err != nil {
			return nil, err
		}
		parsed.Query.Where = append(parsed.Query.Where, c)
	}
	for i, c := range parsed.Query.Where {
		if c.Param == "_list" {
			if parsed.Query.Where[i], err = listClause(ctx, r, c.Values[0].Code, types); err != nil {
				return nil, err
			}
		}
	}
	counted := int64(-1) // Bundle.total as the first page counted it
	if v := req.Query.Get("_cursor"); v != "" {
		cur, total, err := decodePageCursor(v)
		if err != nil {
			return nil, err
		}
		parsed.Query.After, counted = cur, total
	}
	q := parsed.Query
	if q.Total && counted >= 0 {
		// A later page repeats the first page's total instead of counting
		// every match again: for a paged download of a whole type the
		// count cost more than the page. The total is of the matches when
		// the search began, as the pages are (search.html#total).
		q.Total = false
	}
	// Without _sort the order is the server's (search.html#sort): a paged
	// download of a whole type then reads in write order, where the
	// store can (hale.Query.WriteOrder).
	q.WriteOrder = len(q.Sort) == 0
	if parsed.Offset > 0 && q.After == nil {
		q.Count += parsed.Offset
	}
	res, err := sr.Search(ctx, &q)
	if err != nil {
		return nil, err
	}
	if parsed.Query.Total && counted >= 0 {
		res.Total = counted
	}
	page := res.Versions
	if parsed.Offset > 0 && q.After == nil {
		page = page[min(parsed.Offset, len(page)):]
	}

	entries := make([]any, 0, len(page))
	includes := len(parsed.Includes) > 0 || len(parsed.RevIncludes) > 0
	seen := map[string]bool{}
	for i := range page {
		v := &page[i]
		if includes {
			seen[v.Type+"/"+v.ID] = true
		}
		e, err := s.entry(req, v, "match", parsed)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	// _include and _revinclude follow the resources of the page, not
	// contained ones (whose Version is their container's).
	resources := slices.DeleteFunc(slices.Clone(page), func(v hale.Version) bool { return strings.Contains(v.ID, "#") })
	included, err := s.includes(ctx, r, sr, resources, parsed, seen)
	if err != nil {
		return nil, err
	}
	for i := range included {
		e, err := s.entry(req, &included[i], "include", parsed)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	if len(parsed.Ignored) > 0 {
		entries = append(entries, obj{
			{"resource", outcome([]hale.Issue{{Severity: "warning", Code: "not-supported",
				Diagnostics: "ignored unsupported search parameters: " + strings.Join(parsed.Ignored, ", ")}})},
			{"search", obj{{"mode", "outcome"}}},
		})
	}
	self := *req
	self.Query = parsed.Applied
	links := []any{obj{{"relation", "self"}, {"url", searchURL(&self, "")}}}
	if res.Next != nil && q.Count > 0 {
		links = append(links, obj{{"relation", "next"}, {"url", searchURL(&self, encodePageCursor(res.Next, res.Total))}})
	}
	b := obj{{"resourceType", "Bundle"}, {"id", newID()}, {"meta", obj{{"lastUpdated", instant(s.now())}}}, {"type", "searchset"}}
	if res.Total >= 0 {
		b = append(b, kv{"total", res.Total})
	}
	b = append(b, kv{"link", links})
	if len(entries) > 0 {
		b = append(b, kv{"entry", entries})
	}
	return &Response{Status: http.StatusOK, Object: b, touched: append(page, included...)}, nil
}

func (s *Service) entry(req *Request, v *hale.Version, mode string, parsed *search.Request) (obj, error) {
	data := v.Data
	if _, cid, ok := strings.Cut(v.ID, "#"); ok {
		// A contained resource (_containedType=contained): the store
		// returns its container with the id "<container id>#<contained
		// id>", which is also the fullUrl's last part (search.html#contained).
		var err error
		if data, err = containedData(v.Data, cid); err != nil {
			return nil, &hale.Error{Kind: hale.KindInternal, Op: "rest.search", Err: err}
		}
	}
	var content any = json.RawMessage(data)
	if parsed.Summary == "true" || parsed.Summary == "text" || parsed.Summary == "data" || len(parsed.Elements) > 0 {
		res, err := fhir.Decode(data)
		if err != nil {
			return nil, &hale.Error{Kind: hale.KindInternal, Op: "rest.search", Err: err}
		}
		content = summarize(res, parsed.Summary, parsed.Elements)
	}
	return obj{
		{"fullUrl", req.Base + "/" + v.Type + "/" + v.ID},
		{"resource", content},
		{"search", obj{{"mode", mode}}},
	}, nil
}

// containedData returns the JSON of the resource with id cid that the
// container (JSON) contains.
func containedData(container []byte, cid string) ([]byte, error) {
	res, err := fhir.Decode(container)
	if err != nil {
		return nil, err
	}
	list, _ := res["contained"].([]any)
	for _, item := range list {
		if c, ok := item.(map[string]any); ok && c["id"] == cid {
			return fhir.Marshal(c)
		}
	}
	return nil, fmt.Errorf("%s/%s contains no resource %q", res["resourceType"], res["id"], cid)
}

// includes returns the resources _include and _revinclude add to a page
// (search.html#include), following :iterate until nothing new appears.
func (s *Service) includes(ctx context.Context, r hale.Reader, sr hale.Searcher, page []hale.Version, parsed *search.Request, seen map[string]bool) ([]hale.Version, error) {
	if len(parsed.Includes) == 0 && len(parsed.RevIncludes) == 0 {
		return nil, nil
	}
	var out []hale.Version
	frontier := page
	for round := 0; len(frontier) > 0 && round < 4; round++ {
		var next []hale.Version
		add := func(v *hale.Version) bool {
			key := v.Type + "/" + v.ID
			if seen[key] || len(out) >= maxIncludes {
				return false
			}
			seen[key] = true
			out = append(out, *v)
			next = append(next, *v)
			return true
		}
		for _, inc := range parsed.Includes {
			if round > 0 && !inc.Iterate {
				continue
			}
			for i := range frontier {
				v := &frontier[i]
				if v.Type != inc.Source {
					continue
				}
				res, err := fhir.Decode(v.Data)
				if err != nil {
					return nil, &hale.Error{Kind: hale.KindInternal, Op: "rest.include", Err: err}
				}
				for _, ref := range s.Params.ReferenceTargets(v.Type, res, inc.Param) {
					if inc.Target != "" && ref.TargetType != inc.Target || seen[ref.TargetType+"/"+ref.TargetID] {
						continue
					}
					t, err := r.Current(ctx, ref.TargetType, ref.TargetID)
					if hale.IsKind(err, hale.KindNotFound) {
						continue
					}
					if err != nil {
						return nil, err
					}
					if !t.Deleted {
						add(t)
					}
				}
			}
		}
		for _, inc := range parsed.RevIncludes {
			if round > 0 && !inc.Iterate {
				continue
			}
			var targets []hale.Value
			for i := range frontier {
				if inc.Target == "" || frontier[i].Type == inc.Target {
					targets = append(targets, hale.Value{TargetType: frontier[i].Type, TargetID: frontier[i].ID})
				}
			}
			if len(targets) == 0 {
				continue
			}
			params := []string{inc.Param}
			if inc.Param == "*" {
				params = s.Params.ReferenceParams(inc.Source)
			}
			var or []hale.Clause
			for _, p := range params {
				or = append(or, hale.Clause{Param: p, Type: hale.TypeReference, Values: targets})
			}
			where := []hale.Clause{{Or: or}}
			if len(or) == 1 {
				where = or
			}
			q := hale.Query{Types: []string{inc.Source}, Where: where, Count: maxIncludes}
			res, err := sr.Search(ctx, &q)
			if err != nil {
				return nil, err
			}
			for i := range res.Versions {
				add(&res.Versions[i])
			}
		}
		frontier = next
	}
	return out, nil
}

// compartmentClause limits a search to a compartment
// (compartmentdefinition.html): the resource refers to the compartment's
// owner through any of the parameters the CompartmentDefinition lists.
//
// For [base]/Patient/1/* (typ ""), the clause is the union over the
// parameters of every type in the compartment.
func compartmentClause(c *Compartment, typ string) (hale.Clause, error) {
	var params []string
	typesOf := map[string][]string{} // param → the types whose compartment parameter it is
	if typ == "" {
		for _, t := range compartmentTypes(c.Type) {
			for _, p := range fhir.CompartmentParams(c.Type, t) {
				if typesOf[p] == nil {
					params = append(params, p)
				}
				typesOf[p] = append(typesOf[p], t)
			}
		}
	} else {
		params = fhir.CompartmentParams(c.Type, typ)
	}
	if len(params) == 0 && typ != c.Type {
		return hale.Clause{}, hale.Errorf(hale.KindNotFound, "%s resources are not in the %s compartment", typ, c.Type)
	}
	var or []hale.Clause
	for _, p := range params {
		if p == "{def}" {
			continue
		}
		// Over every type ($everything, Patient/1/*) each parameter
		// counts for the types whose compartment it defines, and the
		// store probes its index for those only.
		or = append(or, hale.Clause{Param: p, Type: hale.TypeReference, Values: []hale.Value{{TargetType: c.Type, TargetID: c.ID}},
			Types: typesOf[p]})
	}
	if typ == c.Type { // the owner is in its own compartment
		or = append(or, hale.Clause{Param: "_id", Type: hale.TypeID, Values: []hale.Value{{Code: c.ID}}})
	}
	return hale.Clause{Or: or}, nil
}

// searchURL is the URL of a search with the given (applied) parameters
// and, for a next link, the cursor.
func searchURL(req *Request, cursor string) string {
	q := url.Values{}
	for k, vs := range req.Query {
		q[k] = vs
	}
	if cursor != "" {
		q.Set("_cursor", cursor)
	}
	u := req.Base
	if req.Compartment != nil {
		u += "/" + req.Compartment.Type + "/" + req.Compartment.ID
	}
	if req.Type != "" {
		u += "/" + req.Type
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// pageCursor is the _cursor of a searchset's next link: the store's
// position and, when the first page counted the matches, that count
// (Total is absent otherwise, and in cursors issued before it existed).
type pageCursor struct {
	hale.Cursor
	Total *int64 `json:",omitempty"`
}

// encodePageCursor is encodeCursor with the total (none when negative).
func encodePageCursor(c *hale.Cursor, total int64) string {
	pc := pageCursor{Cursor: *c}
	if total >= 0 {
		pc.Total = &total
	}
	data, _ := json.Marshal(pc)
	return base64.RawURLEncoding.EncodeToString(data)
}

// decodePageCursor reads a cursor of encodePageCursor (or encodeCursor),
// with its total, -1 when it has none. Errors: KindInvalid.
func decodePageCursor(s string) (*hale.Cursor, int64, error) {
	data, err := base64.RawURLEncoding.DecodeString(s)
	var pc pageCursor
	if err == nil {
		err = json.Unmarshal(data, &pc)
	}
	if err != nil || pc.ID == "" || pc.Total != nil && *pc.Total < 0 {
		return nil, 0, hale.Errorf(hale.KindInvalid, "_cursor: not a paging cursor this server issued")
	}
	total := int64(-1)
	if pc.Total != nil {
		total = *pc.Total
	}
	return &pc.Cursor, total, nil
}

func encodeCursor(c *hale.Cursor) string {
	data, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeCursor(s string) (*hale.Cursor, error) {
	data, err := base64.RawURLEncoding.DecodeString(s)
	var c hale.Cursor
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil || c.ID == "" {
		return nil, hale.Errorf(hale.KindInvalid, "_cursor: not a paging cursor this server issued")
	}
	return &c, nil
}

// compartmentTypes lists the resource types of a compartment.
func compartmentTypes(compartment string) []string {
	var out []string
	for _, t := range fhir.ResourceTypes() {
		if len(fhir.CompartmentParams(compartment, t)) > 0 || t == compartment {
			out = append(out, t)
		}
	}
	return out
}

// listClause turns _list=id (search.html#list) into the ids of the List's
// entries of the searched types; a missing List matches nothing.
func listClause(ctx context.Context, r hale.Reader, id string, types []string) (hale.Clause, error) {
	c := hale.Clause{Param: "_id", Type: hale.TypeID, Values: []hale.Value{{Code: ""}}} // matches nothing
	v, err := r.Current(ctx, "List", id)
	if hale.IsKind(err, hale.KindNotFound) {
		return c, nil
	}
	if err != nil || v.Deleted {
		return c, err
	}
	list, err := fhir.Decode(v.Data)
	if err != nil {
		return c, &hale.Error{Kind: hale.KindInternal, Op: "rest.list", Err: err}
	}
	entries, _ := list["entry"].([]any)
	for _, e := range entries {
		ref, _ := e.(map[string]any)["item"].(map[string]any)["reference"].(string)
		if t, id, ok := search.ParseLocalReference(ref); ok && (len(types) == 0 || slices.Contains(types, t)) {
			c.Values = append(c.Values, hale.Value{Code: id})
		}
	}
	return c, nil
}
