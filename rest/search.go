package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/search"
)

// search implements type search (search.html) for the parameters the
// core indexes: _id and token, string and reference parameters (see
// package search). Parameters Hale does not support are ignored and
// reported in an OperationOutcome entry, or refused with
// Prefer: handling=strict. Results are in id order, paged with _count and
// _offset; total is exact.
func (s *Service) search(ctx context.Context, r hale.Reader, req *Request) (*Response, error) {
	if sr, ok := r.(hale.Searcher); ok {
		return s.searchset(ctx, r, sr, req)
	}
	q, err := search.Parse(req.Type, req.Query)
	if err != nil {
		return nil, err
	}
	if req.Strict && len(q.Ignored) > 0 {
		return nil, hale.Errorf(hale.KindInvalid, "search parameter %q is not supported for %s", q.Ignored[0], req.Type)
	}
	count, err := s.count(req.Query)
	if err != nil {
		return nil, err
	}
	offset := 0
	if v := req.Query.Get("_offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return nil, hale.Errorf(hale.KindInvalid, "_offset must be a non-negative integer, not %q", v)
		}
	}
	ids, err := r.Find(ctx, req.Type, q.Matches, 0)
	if err != nil {
		return nil, err
	}
	total := len(ids)
	page := ids[min(offset, total):min(offset+count, total)]
	entries := make([]any, 0, len(page)+1)
	for _, id := range page {
		v, err := r.Current(ctx, req.Type, id)
		if err != nil {
			return nil, err
		}
		entries = append(entries, obj{
			{"fullUrl", req.Base + "/" + req.Type + "/" + id},
			{"resource", json.RawMessage(v.Data)},
			{"search", obj{{"mode", "match"}}},
		})
	}
	if len(q.Ignored) > 0 {
		entries = append(entries, obj{
			{"resource", outcome([]hale.Issue{{Severity: "warning", Code: "not-supported",
				Diagnostics: "ignored unsupported search parameters: " + strings.Join(q.Ignored, ", ")}})},
			{"search", obj{{"mode", "outcome"}}},
		})
	}
	applied := *req
	applied.Query = req.Query
	for _, name := range q.Ignored {
		applied.Query = cloneWithout(applied.Query, name)
	}
	links := []any{obj{{"relation", "self"}, {"url", offsetURL(&applied, offset)}}}
	if offset+count < total {
		links = append(links, obj{{"relation", "next"}, {"url", offsetURL(&applied, offset+count)}})
	}
	if offset > 0 {
		links = append(links, obj{{"relation", "previous"}, {"url", offsetURL(&applied, max(0, offset-count))}})
	}
	b := obj{{"resourceType", "Bundle"}, {"id", newID()}, {"meta", obj{{"lastUpdated", instant(s.now())}}},
		{"type", "searchset"}, {"total", total}, {"link", links}}
	if len(entries) > 0 {
		b = append(b, kv{"entry", entries})
	}
	return &Response{Status: http.StatusOK, Object: b}, nil
}

func offsetURL(req *Request, offset int) string {
	u := pageURL(req, "")
	if offset == 0 {
		return u
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "_offset=" + strconv.Itoa(offset)
}
