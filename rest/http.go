package rest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
)

// Handler returns the FHIR REST API as an http.Handler to be mounted at
// prefix (e.g. "/fhir").
func (s *Service) Handler(prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveHTTP(w, r, prefix)
	})
}

// statusOf maps an error kind to its HTTP status, the one place this
// mapping lives.
func statusOf(k hale.Kind) int {
	switch k {
	case hale.KindInvalid:
		return http.StatusBadRequest
	case hale.KindUnprocessable:
		return http.StatusUnprocessableEntity
	case hale.KindNotFound:
		return http.StatusNotFound
	case hale.KindGone:
		return http.StatusGone
	case hale.KindConflict:
		return http.StatusConflict
	case hale.KindPreconditionFailed:
		return http.StatusPreconditionFailed
	case hale.KindForbidden:
		return http.StatusForbidden
	case hale.KindUnauthorized:
		return http.StatusUnauthorized
	case hale.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case hale.KindNotAcceptable:
		return http.StatusNotAcceptable
	case hale.KindUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case hale.KindMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case hale.KindNotSupported:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// format is how the answer is written: FHIR JSON or FHIR XML
// (http.html#mime-type), optionally indented (_pretty).
type format struct {
	xml    bool
	pretty bool
}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request, prefix string) {
	// Bulk Data $export, its status and its files (export.go).
	if s.serveExport(w, r, prefix) {
		return
	}
	var f format
	req, err := s.parseHTTP(w, r, prefix, &f)
	if err == nil {
		var resp *Response
		resp, err = s.Do(r.Context(), req)
		if err == nil {
			s.writeResponse(w, r, req, resp, f)
			return
		}
	}
	s.writeError(w, r, err, f)
}

// parseHTTP turns an HTTP request into a Request: path, query, headers,
// content negotiation and the body (within the size limit).
func (s *Service) parseHTTP(w http.ResponseWriter, r *http.Request, prefix string, f *format) (*Request, error) {
	query := r.URL.Query()
	f.pretty = query.Get("_pretty") == "true"
	req := &Request{Method: r.Method, Query: query, RawQuery: r.URL.RawQuery, Base: s.base(r, prefix)}
	path := strings.Trim(strings.TrimPrefix(r.URL.Path, prefix), "/")
	routeErr := route(req, path)
	// A Binary read as its content answers in its own type (binary.go);
	// a Binary written from its content may be sent with any Accept.
	req.native = routeErr == nil && nativeBinaryRead(r, req, query)
	nativeWrite := routeErr == nil && req.Type == "Binary" && (r.Method == "POST" || r.Method == "PUT")
	xmlOut, err := negotiate(r, query)
	if err != nil && !req.native && !nativeWrite {
		return nil, err
	}
	f.xml = xmlOut && err == nil
	if routeErr != nil {
		return nil, routeErr
	}
	req.IfMatch = r.Header.Get("If-Match")
	req.IfNoneMatch = r.Header.Get("If-None-Match")
	req.IfNoneExist = r.Header.Get("If-None-Exist")
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		if err != nil {
			return nil, hale.Errorf(hale.KindInvalid, "malformed If-Modified-Since %q: expected an HTTP date", ims)
		}
		req.IfModifiedSince = t
	}
	for _, p := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(p, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch strings.TrimSpace(k) {
			case "return":
				req.Return = strings.Trim(strings.TrimSpace(v), `"`)
			case "handling":
				req.Strict = strings.TrimSpace(v) == "strict"
			}
		}
	}
	switch r.Method {
	case "GET", "HEAD", "DELETE", "OPTIONS":
		return req, nil
	case "POST", "PUT", "PATCH":
	default:
		return nil, hale.Errorf(hale.KindMethodNotAllowed, "method %s is not part of the FHIR RESTful API", r.Method)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, hale.Errorf(hale.KindTooLarge, "the request body is larger than the limit of %d bytes", s.MaxBodyBytes)
		}
		return nil, hale.Errorf(hale.KindInvalid, "could not read the request body: %v", err)
	}
	// The sender's digest of the body, if any, must match what arrived
	// (digest.go): before anything is decoded or stored.
	if err := VerifyDigests(r.Header, body); err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if res, err := nativeBinaryWrite(r, req, mt, body); err != nil || res != nil {
		req.Resource = res
		return req, err
	}
	switch {
	case r.Method == "POST" && req.Op == "_search":
		if mt != "application/x-www-form-urlencoded" {
			return nil, hale.Errorf(hale.KindUnsupportedMediaType, "POST _search takes application/x-www-form-urlencoded parameters")
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, hale.Errorf(hale.KindInvalid, "malformed form body: %v", err)
		}
		for k, vs := range form {
			req.Query[k] = append(req.Query[k], vs...)
		}
		return req, nil
	case r.Method == "PATCH" && mt == "application/json-patch+json":
		req.Patch = true
	case mt == "application/fhir+json", mt == "application/json", mt == "application/json+fhir":
	case mt == "application/fhir+xml", mt == "application/xml", mt == "text/xml", mt == "application/xml+fhir":
		res, err := fhir.DecodeXML(body)
		if err != nil {
			if r.Method == "PATCH" && xmlRootName(body) != "Parameters" {
				return nil, errPatchFormat // XML Patch is not implemented; FHIRPath Patch is
			}
			return nil, err
		}
		req.Resource = res
		return req, nil
	case mt == "":
		return nil, hale.Errorf(hale.KindUnsupportedMediaType, "the request has no Content-Type; send application/fhir+json")
	default:
		return nil, hale.Errorf(hale.KindUnsupportedMediaType, "unsupported Content-Type %q; send application/fhir+json", mt)
	}
	req.Body = body
	return req, nil
}

// negotiate reads _format, else Accept, and reports whether the answer
// is to be XML. Hale writes FHIR JSON and FHIR XML; asking for anything
// else only is a 406.
func negotiate(r *http.Request, q url.Values) (xml bool, err error) {
	if f := q.Get("_format"); f != "" {
		switch f {
		case "json", "application/json", "application/fhir+json", "application/json+fhir":
			return false, nil
		case "xml", "application/xml", "application/fhir+xml", "text/xml", "application/xml+fhir":
			return true, nil
		}
		return false, hale.Errorf(hale.KindNotAcceptable, "unknown _format %q; Hale answers json or xml", f)
	}
	accept := r.Header.Get("Accept")
	if accept == "" {
		return false, nil
	}
	best, bestQ := "", -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, _ := mime.ParseMediaType(strings.TrimSpace(part))
		quality := 1.0
		if v, ok := params["q"]; ok {
			if quality, err = strconv.ParseFloat(v, 64); err != nil {
				quality = 0
			}
		}
		var kind string
		switch mt {
		case "application/fhir+json", "application/json", "application/json+fhir":
			kind = "json"
		case "application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir":
			kind = "xml"
		case "", "*/*", "application/*", "text/html", "text/plain", "text/*":
			// Browsers ask for text/html first; JSON reads well there.
			kind = "any"
		default:
			continue
		}
		if quality > bestQ || quality == bestQ && best == "any" {
			best, bestQ = kind, quality
		}
	}
	if best == "" || bestQ <= 0 {
		return false, hale.Errorf(hale.KindNotAcceptable, "cannot answer in %q; Hale answers application/fhir+json or application/fhir+xml", accept)
	}
	return best == "xml", nil
}

// route fills Type, ID, VersionID and Op from a path relative to the base.
func route(req *Request, path string) error {
	if path == "" {
		return nil
	}
	seg := strings.Split(path, "/")
	special := func(s string) bool {
		return s == "_history" || s == "_search" || s == "metadata" || strings.HasPrefix(s, "$")
	}
	switch {
	case len(seg) == 1 && special(seg[0]):
		req.Op = seg[0]
	case len(seg) == 1:
		req.Type = seg[0]
	case len(seg) == 2 && special(seg[1]):
		req.Type, req.Op = seg[0], seg[1]
	case len(seg) == 2:
		req.Type, req.ID = seg[0], seg[1]
	case len(seg) == 3 && special(seg[2]):
		req.Type, req.ID, req.Op = seg[0], seg[1], seg[2]
	case len(seg) == 3 && (req.Method == "GET" || req.Method == "HEAD"):
		// Compartment search: [base]/Patient/123/Observation or …/*
		if !fhir.IsResourceType(seg[0]) || seg[2] != "*" && !fhir.IsResourceType(seg[2]) {
			return hale.Errorf(hale.KindNotFound, "no FHIR interaction at [base]/%s", path)
		}
		req.Compartment = &Compartment{Type: seg[0], ID: seg[1]}
		if seg[2] != "*" {
			req.Type = seg[2]
		}
	case len(seg) == 4 && seg[2] == "_history":
		req.Type, req.ID, req.Op, req.VersionID = seg[0], seg[1], seg[2], seg[3]
	default:
		return hale.Errorf(hale.KindNotFound, "no FHIR interaction at [base]/%s", path)
	}
	if req.Op == "metadata" && (req.Type != "" || req.Method != "GET" && req.Method != "HEAD") {
		return hale.Errorf(hale.KindNotFound, "no FHIR interaction at [base]/%s", path)
	}
	return nil
}

// base returns the FHIR base URL for links.
func (s *Service) base(r *http.Request, prefix string) string {
	if s.BaseURL != "" {
		return strings.TrimSuffix(s.BaseURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + prefix
}

const (
	fhirJSON = "application/fhir+json; charset=utf-8"
	fhirXML  = "application/fhir+xml; charset=utf-8"
)

func (s *Service) writeResponse(w http.ResponseWriter, r *http.Request, req *Request, resp *Response, f format) {
	h := w.Header()
	if resp.ETag != "" {
		h.Set("ETag", resp.ETag)
	}
	if !resp.LastModified.IsZero() {
		h.Set("Last-Modified", resp.LastModified.UTC().Format(http.TimeFormat))
	}
	if resp.Location != "" && (resp.Status == http.StatusCreated || req.Method != "GET") {
		loc := req.Base + "/" + resp.Location
		h.Set("Location", loc)
		if resp.Status == http.StatusCreated {
			h.Set("Content-Location", loc)
		}
	}
	var content any = resp.content()
	// For a batch or transaction, Prefer shapes the entries (bundle.go),
	// not the response Bundle itself.
	if (isWrite(req) || req.Method == "DELETE") && req.Type != "" {
		switch req.Return {
		case ReturnMinimal:
			content = nil
		case ReturnOutcome:
			content = info(resp.outcomeMessage())
			if resp.Status == http.StatusNoContent {
				resp.Status = http.StatusOK
			}
		}
	}
	if content == nil || resp.Status == http.StatusNotModified || resp.Status == http.StatusNoContent {
		w.WriteHeader(resp.Status)
		return
	}
	if req.native && resp.Status == http.StatusOK {
		s.writeNativeBinary(w, r, resp)
		return
	}
	body, err := encodeBody(content, f)
	if err != nil {
		s.writeError(w, r, &hale.Error{Kind: hale.KindInternal, Op: "rest.encode", Err: err}, f)
		return
	}
	setDigests(w, r, body, false)
	h.Set("Content-Type", f.contentType())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.Status)
	if r.Method != "HEAD" {
		w.Write(body)
	}
}

func (f format) contentType() string {
	if f.xml {
		return fhirXML
	}
	return fhirJSON
}

func encodeBody(content any, f format) ([]byte, error) {
	body, err := marshal(content)
	if err != nil {
		return nil, err
	}
	if f.xml {
		res, err := fhir.Decode(body)
		if err != nil {
			return nil, err
		}
		return fhir.MarshalXML(res)
	}
	if !f.pretty {
		return body, nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeError answers with an OperationOutcome. An internal error gets an
// id that is in the answer and in the log line with the detail.
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error, f format) {
	kind := hale.ErrorKind(err)
	if errors.Is(err, context.Canceled) {
		kind = hale.KindInternal
	}
	issues := hale.ErrorIssues(err)
	if kind == hale.KindInternal {
		id := errorID()
		s.Log.Error("internal error", "error_id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		issues = []hale.Issue{{Severity: "error", Code: "exception", Diagnostics: "internal error; quote error id " + id + " to the administrator"}}
		w.Header().Set("X-Error-Id", id)
	} else {
		s.Log.Debug("request failed", "method", r.Method, "path", r.URL.Path, "kind", kind.String(), "err", err)
	}
	body, err := encodeBody(outcome(issues), f)
	if err != nil { // an outcome always encodes; fall back to JSON if not
		f.xml = false
		body, _ = encodeBody(outcome(issues), f)
	}
	w.Header().Set("Content-Type", f.contentType())
	w.WriteHeader(statusOf(kind))
	if r.Method != "HEAD" {
		w.Write(body)
	}
}

func errorID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// LogRequests wraps h with one structured log line per request.
func LogRequests(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: 200}
		h.ServeHTTP(sw, r)
		log.Info("http", "method", r.Method, "path", r.URL.Path, "status", sw.status, "ms", float64(time.Since(start).Microseconds())/1000)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// HTTPStatus is the HTTP status Hale answers err with (its hale.Kind),
// for handlers beside the FHIR core that answer with an OperationOutcome.
func HTTPStatus(err error) int { return statusOf(hale.ErrorKind(err)) }
