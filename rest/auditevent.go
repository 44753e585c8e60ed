package rest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// This file answers the interactions that read AuditEvent (read, vread,
// history, search; auditevent.html) from the store's audit trail
// (hale.AuditReader) rather than from the general resource tables: audit
// records are append-only, stored once with a few columns, and searched
// by a small search of their own (auditSearchParams), which the
// CapabilityStatement lists. docs/security.md, "Audit trail", explains
// why.

// auditSearchParams are the AuditEvent search parameters Hale answers, as
// the CapabilityStatement states them.
var auditSearchParams = []struct{ name, typ, doc string }{
	{"_id", "token", "logical id"},
	{"date", "date", "AuditEvent.recorded; prefixes eq ne lt le gt ge sa eb"},
	{"patient", "reference", "a patient named as an entity (Patient/id or id)"},
	{"entity", "reference", "any entity.what (Type/id, or entity:Type=id)"},
	{"agent", "reference", "the requestor's who.reference (Practitioner/id …); agent:identifier=urn:hale:principal|user/… matches the account"},
	{"altid", "token", "the requestor's account (Principal subject: user/…, client/…)"},
	{"action", "token", "C R U D E"},
	{"type", "token", "AuditEvent.type (system|code, code or system|)"},
	{"subtype", "token", "AuditEvent.subtype: the FHIR interaction (read, search-type …) or DICOM event"},
	{"outcome", "token", "0 success, 4 failed (client error or refused), 8 server error"},
}

// auditControlParams are the other parameters an AuditEvent search takes.
var auditControlParams = []string{"_count", "_sort", "_total", "_summary", "_cursor", "_format", "_pretty"}

func supportedAuditParams() string {
	var names []string
	for _, p := range auditSearchParams {
		names = append(names, p.name)
	}
	return strings.Join(names, ", ") + "; and _count, _sort (" + strings.Join(auditSortNames, ", ") + ", each optionally with -), _total=accurate, _summary=count"
}

// auditSortFields are the keys _sort takes on AuditEvent: every element
// of an audit record (ONC 170.315(d)(3), "sortable by each audit data
// element"), by its search parameter's name; address is the
// requestor's network address.
var auditSortFields = map[string]hale.AuditField{
	"date": hale.AuditRecorded, "agent": hale.AuditAgentRef, "altid": hale.AuditAgent,
	"patient": hale.AuditPatient, "entity": hale.AuditEntity, "action": hale.AuditAction,
	"outcome": hale.AuditOutcome, "type": hale.AuditType, "subtype": hale.AuditSubtype,
	"address": hale.AuditAddress,
}

var auditSortNames = []string{"date", "altid", "agent", "patient", "entity", "action", "subtype", "type", "outcome", "address"}

// auditSort reads _sort: comma-separated keys, each optionally with -.
// Sorting by the date alone is the store's natural order (q.Desc);
// anything else becomes q.Sort.
func auditSort(q *hale.AuditQuery, raw string) error {
	var keys []hale.AuditSort
	for _, k := range strings.Split(raw, ",") {
		name, desc := strings.CutPrefix(strings.TrimSpace(k), "-")
		f, ok := auditSortFields[name]
		if !ok {
			return fmt.Errorf("AuditEvent sorts by %s (each optionally with -), not %q", strings.Join(auditSortNames, ", "), k)
		}
		if slices.ContainsFunc(keys, func(s hale.AuditSort) bool { return s.Field == f }) {
			return fmt.Errorf("%s is named twice", name)
		}
		keys = append(keys, hale.AuditSort{Field: f, Desc: desc})
	}
	if len(keys) == 1 && keys[0].Field == hale.AuditRecorded {
		q.Desc = keys[0].Desc
		return nil
	}
	q.Sort = keys
	return nil
}

// auditEvent routes a read interaction on AuditEvent.
func (s *Service) auditEvent(ctx context.Context, r hale.Reader, req *Request) (*Response, error) {
	ar, ok := r.(hale.AuditReader)
	if !ok {
		return nil, hale.Errorf(hale.KindNotSupported, "this store keeps no audit trail")
	}
	get := req.Method == "GET" || req.Method == "HEAD"
	switch {
	case get && req.Op == "_history" && req.VersionID != "":
		v, err := auditVersion(ctx, ar, req.ID)
		if err != nil {
			return nil, err
		}
		if req.VersionID != "1" {
			return nil, hale.Errorf(hale.KindNotFound, "version %s of AuditEvent/%s not found", req.VersionID, req.ID)
		}
		return versionResponse(http.StatusOK, v), nil
	case get && req.Op == "_history":
		return s.auditHistory(ctx, ar, req)
	case get && req.ID != "" && req.Op == "":
		v, err := auditVersion(ctx, ar, req.ID)
		if err != nil {
			return nil, err
		}
		if notModified(req, v) {
			return &Response{Status: http.StatusNotModified, ETag: etag(v.VersionID), LastModified: v.LastUpdated}, nil
		}
		return versionResponse(http.StatusOK, v), nil
	case (get && req.Op == "" || req.Method == "POST" && req.Op == "_search") && req.ID == "":
		return s.auditSearch(ctx, ar, req)
	}
	return nil, notAllowed(req)
}

// auditVersion returns the record id as the (only) version of its
// AuditEvent.
func auditVersion(ctx context.Context, ar hale.AuditReader, id string) (*hale.Version, error) {
	rec, err := ar.AuditEvent(ctx, id)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, hale.Errorf(hale.KindNotFound, "AuditEvent/%s not found", id)
	}
	if err != nil {
		return nil, err
	}
	return recordVersion(rec), nil
}

func recordVersion(rec *hale.AuditRecord) *hale.Version {
	return &hale.Version{Seq: rec.Seq, Type: "AuditEvent", ID: rec.ID, VersionID: 1, Method: "POST",
		LastUpdated: rec.Recorded, Data: rec.Data}
}

// auditSearch implements search on AuditEvent over the audit store's
// columns. Unknown parameters are a 400 naming the supported ones: the
// audit's search is small, and a client must not take an ignored filter
// for an empty result.
func (s *Service) auditSearch(ctx context.Context, ar hale.AuditReader, req *Request) (*Response, error) {
	q, err := s.auditQuery(req)
	if err != nil {
		return nil, err
	}
	page, err := ar.SearchAudit(ctx, q)
	if err != nil {
		return nil, err
	}
	entries := make([]any, 0, len(page.Records))
	touched := make([]hale.Version, 0, len(page.Records))
	for i := range page.Records {
		rec := &page.Records[i]
		entries = append(entries, obj{
			{"fullUrl", req.Base + "/AuditEvent/" + rec.ID},
			{"resource", json.RawMessage(rec.Data)},
			{"search", obj{{"mode", "match"}}},
		})
		touched = append(touched, *recordVersion(rec))
	}
	self := *req
	self.Query = url.Values{}
	for k, vs := range req.Query {
		if k != "_cursor" && k != "_format" && k != "_pretty" {
			self.Query[k] = vs
		}
	}
	links := []any{obj{{"relation", "self"}, {"url", searchURL(&self, "")}}}
	if page.Next != nil {
		links = append(links, obj{{"relation", "next"}, {"url", searchURL(&self, auditCursor(page.Next))}})
	}
	b := obj{{"resourceType", "Bundle"}, {"id", newID()}, {"meta", obj{{"lastUpdated", instant(s.now())}}}, {"type", "searchset"}}
	if page.Total >= 0 {
		b = append(b, kv{"total", page.Total})
	}
	b = append(b, kv{"link", links})
	if len(entries) > 0 {
		b = append(b, kv{"entry", entries})
	}
	return &Response{Status: http.StatusOK, Object: b, touched: touched}, nil
}

// auditHistory implements history on AuditEvent: an AuditEvent has one
// version, and the type's history is the trail, newest first, with
// _since, _count and paging.
func (s *Service) auditHistory(ctx context.Context, ar hale.AuditReader, req *Request) (*Response, error) {
	var recs []hale.AuditRecord
	var next *hale.AuditCursor
	if req.ID != "" {
		v, err := auditVersion(ctx, ar, req.ID)
		if err != nil {
			return nil, err
		}
		recs = []hale.AuditRecord{{ID: v.ID, Recorded: v.LastUpdated, Data: v.Data}}
	} else {
		q := &hale.AuditQuery{Desc: true}
		for k, vs := range req.Query {
			switch k {
			case "_count", "_cursor", "_format", "_pretty":
			case "_since":
				t, err := parseInstant(vs[0])
				if err != nil {
					return nil, hale.Errorf(hale.KindInvalid, "_since: %v", err)
				}
				q.Where = append(q.Where, hale.AuditCondition{Field: hale.AuditRecorded,
					Ranges: []hale.AuditRange{{Lo: t.UnixMicro(), Hi: hale.MaxTime}}})
			default:
				return nil, hale.Errorf(hale.KindInvalid, "parameter %q is not supported on the history of AuditEvent (supported: _since, _count)", k)
			}
		}
		count, err := s.count(req.Query)
		if err != nil {
			return nil, err
		}
		q.Count = count
		if v := req.Query.Get("_cursor"); v != "" {
			if q.After, err = parseAuditCursor(v); err != nil {
				return nil, err
			}
		}
		page, err := ar.SearchAudit(ctx, q)
		if err != nil {
			return nil, err
		}
		recs, next = page.Records, page.Next
	}
	entries := make([]any, 0, len(recs))
	for i := range recs {
		entries = append(entries, historyEntry(req.Base, recordVersion(&recs[i])))
	}
	links := []any{obj{{"relation", "self"}, {"url", pageURL(req, "")}}}
	if next != nil {
		links = append(links, obj{{"relation", "next"}, {"url", pageURL(req, auditCursor(next))}})
	}
	b := obj{{"resourceType", "Bundle"}, {"id", newID()}, {"meta", obj{{"lastUpdated", instant(s.now())}}},
		{"type", "history"}, {"link", links}}
	if len(entries) > 0 {
		b = append(b, kv{"entry", entries})
	}
	return &Response{Status: http.StatusOK, Object: b}, nil
}

// auditQuery turns an AuditEvent search into a hale.AuditQuery. Errors:
// KindInvalid, naming the parameter and what is supported.
func (s *Service) auditQuery(req *Request) (*hale.AuditQuery, error) {
	q := &hale.AuditQuery{}
	count, err := s.count(req.Query)
	if err != nil {
		return nil, err
	}
	q.Count = count
	if c := req.Compartment; c != nil {
		// Patient/1/AuditEvent: the patient param; Practitioner/1/AuditEvent
		// (and Device, RelatedPerson): agent (compartmentdefinition-*.html).
		field := hale.AuditAgentRef
		if c.Type == "Patient" {
			field = hale.AuditEntity
		} else if !slices.Contains(fhir.CompartmentParams(c.Type, "AuditEvent"), "agent") {
			return nil, hale.Errorf(hale.KindNotFound, "AuditEvent resources are not in the %s compartment", c.Type)
		}
		q.Where = append(q.Where, hale.AuditCondition{Field: field, Values: []string{c.Type + "/" + c.ID}})
	}
	keys := make([]string, 0, len(req.Query))
	for k := range req.Query {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first bad parameter is the same on every run
	for _, key := range keys {
		name, mod, _ := strings.Cut(key, ":")
		for _, raw := range req.Query[key] {
			bad := func(format string, args ...any) error {
				return hale.Errorf(hale.KindInvalid, "%s=%s: %s", key, raw, fmt.Sprintf(format, args...))
			}
			if slices.Contains(auditControlParams, name) {
				if mod != "" {
					return nil, bad("no modifier is supported")
				}
				switch name {
				case "_sort":
					if err := auditSort(q, raw); err != nil {
						return nil, bad("%v", err)
					}
				case "_total":
					switch raw {
					case "accurate":
						q.Total = true
					case "none", "estimate":
					default:
						return nil, bad("expected none, estimate or accurate")
					}
				case "_summary":
					if raw != "count" {
						return nil, bad("AuditEvent supports _summary=count only")
					}
					q.Count, q.Total = 0, true
				case "_cursor":
					if q.After, err = parseAuditCursor(raw); err != nil {
						return nil, err
					}
				}
				continue
			}
			values := strings.Split(raw, ",")
			if raw == "" || slices.Contains(values, "") {
				return nil, bad("empty value")
			}
			c := hale.AuditCondition{}
			switch {
			case name == "_id" && mod == "":
				c.Field = hale.AuditID
				c.Values = values
			case name == "date" && mod == "":
				c.Field = hale.AuditRecorded
				for _, v := range values {
					r, err := auditDateRange(v)
					if err != nil {
						return nil, bad("%v", err)
					}
					c.Ranges = append(c.Ranges, r)
				}
			case name == "patient" && (mod == "" || mod == "Patient"):
				c.Field = hale.AuditEntity
				for _, v := range values {
					ref, ok := auditReference(v, "Patient")
					if !ok || !strings.HasPrefix(ref, "Patient/") {
						return nil, bad("expected Patient/id or id")
					}
					c.Values = append(c.Values, ref)
				}
			case name == "entity" || name == "agent" && mod != "identifier":
				c.Field = hale.AuditEntity
				if name == "agent" {
					c.Field = hale.AuditAgentRef
				}
				if mod != "" && !fhir.IsResourceType(mod) {
					return nil, bad("modifier :%s is not supported (a resource type is)", mod)
				}
				for _, v := range values {
					ref, ok := auditReference(v, mod)
					if !ok {
						return nil, bad("expected Type/id")
					}
					c.Values = append(c.Values, ref)
				}
			case name == "agent" || name == "altid" && mod == "":
				c.Field = hale.AuditAgent
				for _, v := range values {
					system, value, hasSystem := strings.Cut(v, "|")
					if !hasSystem {
						value = v
					} else if system != "" && system != "urn:hale:principal" {
						return nil, bad("only urn:hale:principal identifiers (Hale's accounts) are searchable")
					}
					c.Values = append(c.Values, value)
				}
			case (name == "type" || name == "subtype") && mod == "":
				c.Field = hale.AuditType
				if name == "subtype" {
					c.Field = hale.AuditSubtype
				}
				for _, v := range values {
					if strings.Count(v, "|") > 1 || v == "|" || strings.HasPrefix(v, "|") {
						return nil, bad("expected system|code, code or system|")
					}
				}
				c.Values = values
			case (name == "action" || name == "outcome") && mod == "":
				c.Field = hale.AuditAction
				if name == "outcome" {
					c.Field = hale.AuditOutcome
				}
				for _, v := range values {
					_, code, _ := strings.Cut(v, "|")
					if !strings.Contains(v, "|") {
						code = v
					}
					c.Values = append(c.Values, code)
				}
			default:
				if mod != "" && slices.ContainsFunc(auditSearchParams, func(p struct{ name, typ, doc string }) bool { return p.name == name }) {
					return nil, hale.Errorf(hale.KindInvalid, "%s: modifier :%s is not supported on AuditEvent", key, mod)
				}
				return nil, hale.Errorf(hale.KindInvalid, "search parameter %q is not supported on AuditEvent; supported: %s", key, supportedAuditParams())
			}
			q.Where = append(q.Where, c)
		}
	}
	if q.After != nil {
		texts := 0
		for _, k := range q.Sort {
			if k.Field != hale.AuditRecorded {
				texts++
			}
		}
		if len(q.After.Keys) != texts {
			return nil, hale.Errorf(hale.KindInvalid, "_cursor: not a paging cursor of this search's sort")
		}
	}
	return q, nil
}

// auditReference reads a reference search value as "Type/id": Type/id, a
// URL ending in Type/id, or a bare id when typ is given.
func auditReference(v, typ string) (string, bool) {
	parts := strings.Split(v, "/")
	switch {
	case len(parts) == 1 && typ != "":
		return typ + "/" + v, search.ValidID(v)
	case len(parts) >= 2:
		t, id := parts[len(parts)-2], parts[len(parts)-1]
		if len(parts) > 2 && !strings.Contains(v, "://") {
			return "", false
		}
		return t + "/" + id, fhir.IsResourceType(t) && search.ValidID(id) && (typ == "" || typ == t)
	}
	return "", false
}

// auditDateRange reads [prefix]date for AuditEvent.recorded, an instant:
// the range of recorded times the value matches (search.html#date).
func auditDateRange(v string) (hale.AuditRange, error) {
	prefix := "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
	}
	lo, hi, ok := search.DateRange(v)
	if !ok {
		return hale.AuditRange{}, fmt.Errorf("%q is not a date (expected e.g. 2025-05-01 or 2025-05-01T10:00:00Z, optionally after a prefix such as ge)", v)
	}
	switch prefix {
	case "eq":
		return hale.AuditRange{Lo: lo, Hi: hi}, nil
	case "ne":
		return hale.AuditRange{Lo: lo, Hi: hi, Not: true}, nil
	case "gt", "sa":
		return hale.AuditRange{Lo: hi, Hi: hale.MaxTime}, nil
	case "ge":
		return hale.AuditRange{Lo: lo, Hi: hale.MaxTime}, nil
	case "lt", "eb":
		return hale.AuditRange{Lo: hale.MinTime, Hi: lo}, nil
	case "le":
		return hale.AuditRange{Lo: hale.MinTime, Hi: hi}, nil
	}
	return hale.AuditRange{}, fmt.Errorf("prefix %q is not supported on AuditEvent date (eq ne lt le gt ge sa eb are)", prefix)
}

// auditCursor is the _cursor of a next link: "recorded.seq", then, for
// a sorted search, ".key" for each sort key's value (base64url).
func auditCursor(c *hale.AuditCursor) string {
	s := strconv.FormatInt(c.Recorded, 10) + "." + strconv.FormatInt(c.Seq, 10)
	for _, k := range c.Keys {
		s += "." + base64.RawURLEncoding.EncodeToString([]byte(k))
	}
	return s
}

func parseAuditCursor(v string) (*hale.AuditCursor, error) {
	bad := hale.Errorf(hale.KindInvalid, "_cursor: not a paging cursor this server issued")
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return nil, bad
	}
	c := &hale.AuditCursor{}
	var err1, err2 error
	c.Recorded, err1 = strconv.ParseInt(parts[0], 10, 64)
	c.Seq, err2 = strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || c.Seq < 1 {
		return nil, bad
	}
	for _, p := range parts[2:] {
		k, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			return nil, bad
		}
		c.Keys = append(c.Keys, string(k))
	}
	return c, nil
}

// auditCapability is the CapabilityStatement's entry for AuditEvent: read
// and search only (the server writes the trail; any write is a 405), with
// exactly the parameters auditQuery answers.
func auditCapability() obj {
	var params []any
	for _, p := range auditSearchParams {
		po := obj{{"name", p.name}}
		if !strings.HasPrefix(p.name, "_") {
			po = append(po, kv{"definition", "http://hl7.org/fhir/SearchParameter/AuditEvent-" + p.name})
		}
		params = append(params, append(po, kv{"type", p.typ}, kv{"documentation", p.doc}))
	}
	return obj{
		{"type", "AuditEvent"},
		{"documentation", "The audit trail (docs/security.md): written by the server only, append-only and hash-chained. " +
			"Create, update, patch and delete answer 405. Search supports the parameters listed, each with comma-separated " +
			"alternatives, _count, _sort by date (the default), altid, agent, patient, entity, action, subtype, type, outcome or address " +
			"(comma-separated keys, each ascending or with - descending; ties by date), _total=accurate and _summary=count; any other " +
			"parameter answers 400. _include, _revinclude and _elements are not supported."},
		{"interaction", []any{
			obj{{"code", "read"}}, obj{{"code", "vread"}}, obj{{"code", "history-instance"}},
			obj{{"code", "history-type"}}, obj{{"code", "search-type"}},
		}},
		{"versioning", "versioned"},
		{"readHistory", false},
		{"updateCreate", false},
		{"conditionalCreate", false},
		{"conditionalRead", "not-supported"},
		{"conditionalUpdate", false},
		{"conditionalDelete", "not-supported"},
		{"searchParam", params},
	}
}
