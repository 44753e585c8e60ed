package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// everything implements Patient/[id]/$everything
// (patient-operation-everything.html): the patient, every resource in
// its compartment, and the resources those refer to (practitioners,
// organizations, locations, medications, …), as a searchset Bundle paged
// with _count and a cursor. _since keeps only resources changed at or
// after an instant; _type limits the resource types.
func (s *Service) everything(ctx context.Context, r hale.Reader, req *Request) (*Response, error) {
	if req.Type != "Patient" || req.ID == "" || req.Method != "GET" && req.Method != "HEAD" && req.Method != "POST" {
		return nil, hale.Errorf(hale.KindNotFound, "$everything is defined on a patient: GET [base]/Patient/[id]/$everything")
	}
	patient, err := r.Current(ctx, "Patient", req.ID)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, hale.Errorf(hale.KindNotFound, "Patient/%s not found", req.ID)
	}
	if err != nil {
		return nil, err
	}
	if patient.Deleted {
		return nil, hale.Errorf(hale.KindGone, "Patient/%s was deleted", req.ID)
	}
	sr, ok := r.(hale.Searcher)
	if !ok {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: "rest.everything", Message: "the store cannot search"}
	}

	types := compartmentTypes("Patient")
	if v := req.Query.Get("_type"); v != "" {
		var want []string
		for _, t := range strings.Split(v, ",") {
			if !fhir.IsResourceType(t) {
				return nil, hale.Errorf(hale.KindInvalid, "_type: unknown resource type %q", t)
			}
			want = append(want, t)
		}
		var kept []string
		for _, t := range types {
			for _, w := range want {
				if t == w && t != "Patient" {
					kept = append(kept, t)
				}
			}
		}
		types = kept
	}
	c, err := compartmentClause(&Compartment{Type: "Patient", ID: req.ID}, "")
	if err != nil {
		return nil, err
	}
	// Bundle.total costs a second query as large as the page's; it is
	// computed when asked for (_total=accurate) and otherwise given only
	// when the first page holds everything (then it is known for free).
	q := hale.Query{Types: types, Where: []hale.Clause{c}, Total: req.Query.Get("_total") == "accurate"}
	var since time.Time
	if v := req.Query.Get("_since"); v != "" {
		lo, _, ok := search.DateRange(v)
		if !ok || len(v) <= 10 {
			return nil, hale.Errorf(hale.KindInvalid, "_since must be an instant such as 2024-05-01T00:00:00Z, not %q", v)
		}
		since = time.UnixMicro(lo)
		q.Where = append(q.Where, hale.Clause{Param: "_lastUpdated", Type: hale.TypeLastUpdated, Values: []hale.Value{{Prefix: "ge", Lo: lo, Hi: lo + 1}}})
	}
	if q.Count, err = s.count(req.Query); err != nil {
		return nil, err
	}
	if v := req.Query.Get("_cursor"); v != "" {
		if q.After, err = decodeCursor(v); err != nil {
			return nil, err
		}
	}
	if len(types) == 0 {
		q.Count = 0
	}
	res := &hale.SearchResult{Total: 0}
	if len(types) > 0 {
		if res, err = sr.Search(ctx, &q); err != nil {
			return nil, err
		}
	}

	var entries []any
	seen := map[string]bool{"Patient/" + req.ID: true}
	add := func(v *hale.Version, mode string) {
		entries = append(entries, obj{
			{"fullUrl", req.Base + "/" + v.Type + "/" + v.ID},
			{"resource", json.RawMessage(v.Data)},
			{"search", obj{{"mode", mode}}},
		})
	}
	first := q.After == nil
	total := res.Total
	if !q.Total {
		total = -1
		if first && res.Next == nil {
			total = int64(len(res.Versions))
		}
	}
	patientIn := first && (since.IsZero() || !patient.LastUpdated.Before(since)) && req.Query.Get("_type") == ""
	if patientIn {
		add(patient, "match")
	}
	if since.IsZero() && req.Query.Get("_type") == "" && total >= 0 {
		total++ // the patient
	}
	for i := range res.Versions {
		seen[res.Versions[i].Type+"/"+res.Versions[i].ID] = true
	}
	page := make([]*hale.Version, 0, len(res.Versions)+1)
	if patientIn {
		page = append(page, patient)
	}
	for i := range res.Versions {
		add(&res.Versions[i], "match")
		page = append(page, &res.Versions[i])
	}
	var refs []*hale.Version
	for _, v := range page {
		m, err := fhir.Decode(v.Data)
		if err != nil {
			return nil, &hale.Error{Kind: hale.KindInternal, Op: "rest.everything", Err: err}
		}
		for _, ref := range s.Params.ReferenceTargets(v.Type, m, "*") {
			key := ref.TargetType + "/" + ref.TargetID
			if seen[key] {
				continue
			}
			seen[key] = true
			t, err := r.Current(ctx, ref.TargetType, ref.TargetID)
			if hale.IsKind(err, hale.KindNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if !t.Deleted {
				refs = append(refs, t)
			}
		}
	}
	for _, v := range refs {
		add(v, "include")
	}

	self := req.Base + "/Patient/" + req.ID + "/$everything"
	links := []any{obj{{"relation", "self"}, {"url", self + queryString(req, "")}}}
	if res.Next != nil && q.Count > 0 {
		links = append(links, obj{{"relation", "next"}, {"url", self + queryString(req, encodeCursor(res.Next))}})
	}
	b := obj{{"resourceType", "Bundle"}, {"id", newID()}, {"meta", obj{{"lastUpdated", instant(s.now())}}},
		{"type", "searchset"}}
	if total >= 0 {
		b = append(b, kv{"total", total})
	}
	b = append(b, kv{"link", links})
	if len(entries) > 0 {
		b = append(b, kv{"entry", entries})
	}
	return &Response{Status: http.StatusOK, Object: b}, nil
}

// queryString is the operation's parameters with the cursor replaced.
func queryString(req *Request, cursor string) string {
	q := url.Values(cloneWithout(req.Query, "_cursor"))
	if cursor != "" {
		q.Set("_cursor", cursor)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
