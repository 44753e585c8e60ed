package importer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// decode turns a job into items (and, for a bundle that must be sent as
// it is, a unit). Problems are reported with their position.
func (r *run) decode(j job, items chan<- *item, units chan<- unit) {
	if j.json != nil {
		r.decodeFile(j, items, units)
		return
	}
	var out []*item
	for i, b := range j.lines {
		at := Position{File: j.file, Line: j.firstLine + i, Entry: -1}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		res, err := fhir.Decode(b)
		if err != nil {
			// The line is the file's; the decoder's "line 1" says nothing.
			r.failed(at, strings.Replace(err.Error(), "at line 1, column", "at column", 1))
			continue
		}
		it, err := newItem(at, res, "")
		if err != nil {
			r.failed(at, err.Error())
			continue
		}
		out = append(out, it)
	}
	send(out, j.bytes, items, r)
}

// send hands items on, crediting bytes with the last of them.
func send(out []*item, bytes int64, items chan<- *item, r *run) {
	if len(out) == 0 {
		r.progress.add(bytes)
		return
	}
	out[len(out)-1].bytes = bytes
	for _, it := range out {
		items <- it
	}
}

// newItem makes the item for resource res; the id is res's own, else
// fallback, else derived from the content so that a re-run finds it.
func newItem(at Position, res map[string]any, fallback string) (*item, error) {
	typ, _ := res["resourceType"].(string)
	if typ == "" {
		return nil, fmt.Errorf("not a FHIR resource: resourceType is missing")
	}
	if !fhir.IsResourceType(typ) {
		return nil, fmt.Errorf("unknown resourceType %q", typ)
	}
	id, _ := res["id"].(string)
	if id == "" {
		id = fallback
		if id == "" {
			id = contentID(res)
		}
		res["id"] = id
	}
	return &item{at: at, typ: typ, id: id, res: res, cond: conditionalTargets(res)}, nil
}

// conditionalTargets returns the types that res's conditional references
// (Type?search, resolved by the server in a transaction) search.
func conditionalTargets(res map[string]any) []string {
	var types []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok {
					if k == "reference" {
						if typ, _, ok := strings.Cut(s, "?"); ok && fhir.IsResourceType(typ) && !slices.Contains(types, typ) {
							types = append(types, typ)
						}
					}
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(res)
	return types
}

// contentID derives an id from a resource's content (meta.versionId and
// meta.lastUpdated aside): the first 128 bits of the SHA-256 of its
// canonical JSON, as 32 hex digits. The same resource gets the same id in
// every run, so importing it again does not duplicate it.
func contentID(res map[string]any) string {
	c := make(map[string]any, len(res))
	for k, v := range res {
		if k != "id" {
			c[k] = v
		}
	}
	if meta, ok := res["meta"].(map[string]any); ok {
		m := make(map[string]any, len(meta))
		for k, v := range meta {
			if k != "versionId" && k != "lastUpdated" {
				m[k] = v
			}
		}
		if len(m) == 0 {
			delete(c, "meta")
		} else {
			c["meta"] = m
		}
	}
	data, err := fhir.Marshal(c)
	if err != nil {
		data = fmt.Appendf(nil, "%v", c) // an invalid number: the write will say so
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// decodeFile handles a JSON file: one resource or a Bundle.
func (r *run) decodeFile(j job, items chan<- *item, units chan<- unit) {
	file := Position{File: j.file, Entry: -1}
	res, err := fhir.Decode(j.json)
	if err != nil {
		r.fileFailed(j.file, j.bytes, err.Error())
		return
	}
	typ, _ := res["resourceType"].(string)
	if typ == "" && !j.named {
		r.fileSkippedRead(j.file, j.bytes) // package.json, a Bulk Data manifest, …
		return
	}
	btype, _ := res["type"].(string)
	if typ != "Bundle" || btype == "document" {
		// A document Bundle is stored as it is (documents.html).
		it, err := newItem(file, res, "")
		if err != nil {
			r.fileFailed(j.file, j.bytes, err.Error())
			return
		}
		send([]*item{it}, j.bytes, items, r)
		return
	}
	raw, _ := res["entry"].([]any)
	lines := entryLines(j.json)
	if len(lines) != len(raw) {
		lines = nil
	}
	at := func(i int) Position {
		p := Position{File: j.file, Entry: i}
		if lines != nil {
			p.Line = lines[i]
		}
		return p
	}
	switch btype {
	case "transaction", "batch":
		out, ok := r.requests(raw, at)
		if !ok {
			// Deletes, conditional interactions, patches or reads:
			// the server must process the bundle as it is.
			units <- unit{raw: res, rawAt: file, bytes: j.bytes}
			return
		}
		send(out, j.bytes, items, r)
	case "collection", "searchset":
		send(r.resources(raw, at), j.bytes, items, r)
	default:
		r.fileFailed(j.file, j.bytes, fmt.Sprintf("a Bundle of type %q is not imported: expected transaction, batch, collection, searchset or document", btype))
	}
}

// requests turns the entries of a transaction or batch into items when
// every entry creates or updates one resource (POST Type, PUT Type/id);
// ok is false otherwise. A POST keeps the resource's id (else the uuid
// of its urn:uuid: fullUrl, else a content id) and becomes a PUT, so a
// re-run writes the same resources; references to fullUrls are rewritten
// to Type/id, as the server would in a transaction.
func (r *run) requests(raw []any, at func(int) Position) (out []*item, ok bool) {
	ids := map[string]string{} // fullUrl → Type/id
	for i, x := range raw {
		e, _ := x.(map[string]any)
		req, _ := e["request"].(map[string]any)
		res, _ := e["resource"].(map[string]any)
		method, _ := req["method"].(string)
		url, _ := req["url"].(string)
		if res == nil || req["ifNoneExist"] != nil || req["ifMatch"] != nil || req["ifNoneMatch"] != nil || strings.Contains(url, "?") {
			return nil, false
		}
		fullURL, _ := e["fullUrl"].(string)
		var fallback string
		switch method {
		case "POST":
			fallback = idFromFullURL(fullURL)
		case "PUT":
			// The id is the URL's: [base/]Type/id.
			parts := strings.Split(strings.TrimRight(url, "/"), "/")
			if len(parts) < 2 {
				return nil, false
			}
			fallback = parts[len(parts)-1]
		default:
			return nil, false
		}
		it, err := newItem(at(i), res, fallback)
		if err != nil {
			r.failed(at(i), err.Error())
			continue
		}
		if fullURL != "" {
			ids[fullURL] = it.typ + "/" + it.id
		}
		out = append(out, it)
	}
	rewrite(out, ids)
	return out, true
}

// resources turns the entries of a collection or searchset into items.
func (r *run) resources(raw []any, at func(int) Position) []*item {
	ids := map[string]string{}
	var out []*item
	for i, x := range raw {
		e, _ := x.(map[string]any)
		res, _ := e["resource"].(map[string]any)
		if res == nil {
			continue
		}
		if s, _ := e["search"].(map[string]any); s != nil && s["mode"] == "outcome" {
			continue // an OperationOutcome about the search, not data
		}
		fullURL, _ := e["fullUrl"].(string)
		it, err := newItem(at(i), res, idFromFullURL(fullURL))
		if err != nil {
			r.failed(at(i), err.Error())
			continue
		}
		if fullURL != "" {
			ids[fullURL] = it.typ + "/" + it.id
		}
		out = append(out, it)
	}
	rewrite(out, ids)
	return out
}

// idFromFullURL is the id a fullUrl suggests: the uuid of urn:uuid:, or
// the last segment of [base]/Type/id; "" if that is not a valid id.
func idFromFullURL(u string) string {
	var id string
	switch {
	case strings.HasPrefix(u, "urn:uuid:"):
		id = strings.TrimPrefix(u, "urn:uuid:")
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		u = strings.TrimSuffix(u, "/")
		if i := strings.Index(u, "/_history/"); i >= 0 {
			u = u[:i]
		}
		id = u[strings.LastIndex(u, "/")+1:]
	}
	if !search.ValidID(id) {
		return ""
	}
	return id
}

// rewrite replaces, in every item's resource, each reference to a fullUrl
// of the same bundle by Type/id.
func rewrite(items []*item, ids map[string]string) {
	if len(ids) == 0 {
		return
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok {
					if k == "reference" {
						if to, ok := ids[s]; ok {
							x[k] = to
						}
					}
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for _, it := range items {
		walk(it.res)
	}
}

// entryLines returns the line on which each element of a Bundle's
// top-level "entry" array starts, by a scan of the JSON text that only
// follows strings and nesting (the document was already decoded, so it is
// well-formed).
func entryLines(data []byte) []int {
	var lines []int
	line, depth := 1, 0
	key := ""        // the last string seen directly in the top-level object
	inEntry := false // inside the top-level entry array
	element := false // the entry array expects a new element
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inEntry && depth == 2 && element && c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != ']' {
			lines = append(lines, line)
			element = false
		}
		switch c {
		case '\n':
			line++
		case '"':
			start := i + 1
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			if depth == 1 {
				key = string(data[start:i])
			}
		case '{', '[':
			depth++
			if c == '[' && depth == 2 && key == "entry" {
				inEntry, element = true, true
			}
		case '}', ']':
			depth--
			if inEntry && depth == 1 {
				return lines
			}
		case ',':
			if inEntry && depth == 2 {
				element = true
			}
		}
	}
	return lines
}
