package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// history implements history at instance, type and system level
// (http.html#history) with _since, _at and _count. Versions come newest
// first. Paging uses a cursor on the store's write sequence (_cursor), so
// a next link keeps pointing at the same versions while others write.
func (s *Service) history(ctx context.Context, r hale.Reader, req *Request) (*Response, error) {
	q := hale.HistoryQuery{Type: req.Type, ID: req.ID}
	count, err := s.count(req.Query)
	if err != nil {
		return nil, err
	}
	q.Limit = count + 1
	if v := req.Query.Get("_since"); v != "" {
		t, err := parseInstant(v)
		if err != nil {
			return nil, hale.Errorf(hale.KindInvalid, "_since: %v", err)
		}
		q.Since = t
	}
	if v := req.Query.Get("_at"); v != "" {
		start, end, err := parseDateRange(v)
		if err != nil {
			return nil, hale.Errorf(hale.KindInvalid, "_at: %v", err)
		}
		q.AtStart, q.AtEnd = start, end
	}
	if v := req.Query.Get("_cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return nil, hale.Errorf(hale.KindInvalid, "_cursor: malformed paging cursor %q", v)
		}
		q.BeforeSeq = n
	}
	if req.ID != "" {
		if _, err := r.Current(ctx, req.Type, req.ID); err != nil {
			if hale.IsKind(err, hale.KindNotFound) {
				return nil, hale.Errorf(hale.KindNotFound, "%s/%s not found", req.Type, req.ID)
			}
			return nil, err
		}
	}
	versions, err := r.History(ctx, q)
	if err != nil {
		return nil, err
	}
	more := len(versions) > count
	if more {
		versions = versions[:count]
	}
	entries := make([]any, 0, len(versions))
	for i := range versions {
		entries = append(entries, historyEntry(req.Base, &versions[i]))
	}
	links := []any{obj{{"relation", "self"}, {"url", pageURL(req, "")}}}
	if more {
		next := strconv.FormatInt(versions[len(versions)-1].Seq, 10)
		links = append(links, obj{{"relation", "next"}, {"url", pageURL(req, next)}})
	}
	b := obj{{"resourceType", "Bundle"}, {"id", newID()}, {"meta", obj{{"lastUpdated", instant(s.now())}}},
		{"type", "history"}, {"link", links}}
	if len(entries) > 0 {
		b = append(b, kv{"entry", entries})
	}
	return &Response{Status: http.StatusOK, Object: b}, nil
}

func historyEntry(base string, v *hale.Version) obj {
	e := obj{{"fullUrl", base + "/" + v.Type + "/" + v.ID}}
	if !v.Deleted {
		e = append(e, kv{"resource", json.RawMessage(v.Data)})
	}
	method, url, status := v.Method, v.Type+"/"+v.ID, "200 OK"
	switch {
	case v.Deleted:
		method, status = "DELETE", "204 No Content"
	case v.VersionID == 1 || method == "POST":
		if method == "POST" {
			url = v.Type
		}
		status = "201 Created"
	}
	e = append(e,
		kv{"request", obj{{"method", method}, {"url", url}}},
		kv{"response", obj{{"status", status}, {"etag", etag(v.VersionID)}, {"lastModified", instant(v.LastUpdated)}}})
	return e
}

// pageURL is the URL of this request with the paging cursor set (or
// removed when cursor is "").
func pageURL(req *Request, cursor string) string {
	q := url.Values{}
	for k, vs := range req.Query {
		if k != "_cursor" && k != "_offset" && k != "_format" && k != "_pretty" {
			q[k] = vs
		}
	}
	if cursor != "" {
		q.Set("_cursor", cursor)
	}
	u := req.Base
	if req.Type != "" {
		u += "/" + req.Type
	}
	if req.ID != "" {
		u += "/" + req.ID
	}
	if req.Op != "" && req.Op != "_search" {
		u += "/" + req.Op
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// count reads _count: default DefaultCount, at most MaxCount.
func (s *Service) count(q url.Values) (int, error) {
	v := q.Get("_count")
	if v == "" {
		return s.DefaultCount, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, hale.Errorf(hale.KindInvalid, "_count must be a non-negative integer, not %q", v)
	}
	if n > s.MaxCount {
		n = s.MaxCount
	}
	return n, nil
}

// parseInstant parses a FHIR instant (or a dateTime with time zone).
func parseInstant(v string) (time.Time, error) {
	start, _, err := parseDateRange(v)
	return start, err
}

// parseDateRange parses a FHIR date or dateTime and returns the range its
// precision covers: "2020" is all of 2020, "2020-03-04T10:00:00Z" one
// second. A dateTime with a time must have a time zone.
func parseDateRange(v string) (start, end time.Time, err error) {
	layouts := []struct {
		layout string
		next   func(time.Time) time.Time
	}{
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01-02T15:04Z07:00", func(t time.Time) time.Time { return t.Add(time.Minute) }},
		{"2006-01-02T15:04:05Z07:00", func(t time.Time) time.Time { return t.Add(time.Second) }},
		{"2006-01-02T15:04:05.999999999Z07:00", func(t time.Time) time.Time { return t.Add(time.Millisecond) }},
	}
	if strings.Contains(v, ".") {
		layouts = layouts[len(layouts)-1:] // fractional seconds: millisecond precision
	}
	for _, l := range layouts {
		if t, perr := time.Parse(l.layout, v); perr == nil {
			return t.UTC(), l.next(t).UTC().Add(-time.Nanosecond), nil
		}
	}
	return time.Time{}, time.Time{}, errorString("malformed date or instant " + strconv.Quote(v) + " (expected e.g. 2024-05-01 or 2024-05-01T10:00:00Z)")
}
