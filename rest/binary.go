package rest

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/search"
)

// Binary in its native form (binary.html, "Serving Binary Resources using
// the RESTful API"): a read of Binary/[id] that does not ask for FHIR
// JSON or XML answers with the content itself, in its contentType; a
// create or update of a Binary whose Content-Type is not a FHIR format
// takes the body as the content (X-Security-Context names the
// securityContext). Reads stay reads of the resource: scoped to the
// caller and audited as any read.

// fhirMediaTypes are the media types that mean a FHIR representation.
var fhirMediaTypes = []string{"application/fhir+json", "application/json", "application/json+fhir",
	"application/fhir+xml", "application/xml", "text/xml", "application/xml+fhir"}

// nativeBinaryRead reports whether r reads a Binary as its content: a
// read or vread of Binary whose _format and Accept do not ask for FHIR.
func nativeBinaryRead(r *http.Request, req *Request, q url.Values) bool {
	if req.Type != "Binary" || req.ID == "" || (req.Op != "" && req.Op != "_history") || (req.Op == "_history" && req.VersionID == "") ||
		(r.Method != http.MethodGet && r.Method != http.MethodHead) || q.Get("_format") != "" {
		return false
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || !slices.Contains(fhirMediaTypes, mt) {
			continue
		}
		if qv, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(qv, 64); err != nil || f <= 0 {
				continue
			}
		}
		return false
	}
	return true
}

// nativeBinaryWrite returns the Binary a create or update with a
// non-FHIR Content-Type stands for, or nil when the request is not one.
// Errors: KindInvalid for a malformed X-Security-Context.
func nativeBinaryWrite(r *http.Request, req *Request, mt string, body []byte) (map[string]any, error) {
	if req.Type != "Binary" || req.Op != "" || mt == "" || slices.Contains(fhirMediaTypes, mt) ||
		!(r.Method == http.MethodPost && req.ID == "" || r.Method == http.MethodPut && req.ID != "") {
		return nil, nil
	}
	ct := r.Header.Get("Content-Type")
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return nil, hale.Errorf(hale.KindInvalid, "Content-Type %q is not a media type", ct)
	}
	res := map[string]any{"resourceType": "Binary", "contentType": ct}
	if len(body) > 0 {
		res["data"] = base64.StdEncoding.EncodeToString(body)
	}
	if req.ID != "" {
		res["id"] = req.ID
	}
	if sc := r.Header.Get("X-Security-Context"); sc != "" {
		typ, id, ok := strings.Cut(sc, "/")
		if !ok || !search.ValidID(id) || typ == "" || strings.Contains(id, "/") {
			return nil, hale.Errorf(hale.KindInvalid, "X-Security-Context %q: expected a reference Type/id", sc)
		}
		res["securityContext"] = map[string]any{"reference": sc}
	}
	return res, nil
}

// inlineTypes are shown by a browser inside the page rather than saved;
// any other content is sent as an attachment.
var inlineTypes = []string{"application/pdf", "image/png", "image/jpeg", "image/gif", "text/plain"}

// writeNativeBinary answers a native read with the Binary's content, its
// digests, and headers that keep a browser from running it as part of
// Hale's site (the content type comes from whoever wrote the Binary).
func (s *Service) writeNativeBinary(w http.ResponseWriter, r *http.Request, resp *Response) {
	body, err := marshal(resp.content())
	var b struct {
		ResourceType    string
		ContentType     string
		Data            string
		SecurityContext struct{ Reference string }
	}
	if err == nil {
		err = json.Unmarshal(body, &b)
	}
	var data []byte
	if err == nil {
		data, err = base64Data(b.Data)
	}
	if err != nil || b.ResourceType != "Binary" {
		s.writeError(w, r, &hale.Error{Kind: hale.KindInternal, Op: "rest.binary", Message: "stored Binary unreadable", Err: err}, format{})
		return
	}
	h := w.Header()
	ct, _, err := mime.ParseMediaType(b.ContentType)
	if err != nil || ct == "" {
		b.ContentType, ct = "application/octet-stream", "application/octet-stream"
	}
	disposition := "attachment"
	if slices.Contains(inlineTypes, ct) {
		disposition = "inline"
	}
	h.Set("Content-Type", b.ContentType)
	h.Set("Content-Disposition", disposition)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; sandbox")
	if b.SecurityContext.Reference != "" {
		h.Set("X-Security-Context", b.SecurityContext.Reference)
	}
	setDigests(w, r, data, true)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(resp.Status)
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

// checkAttachmentHashes checks every Attachment of res that carries its
// data inline and a hash (anywhere: contained resources and extensions
// too): the hash must be the data's SHA-1 (Attachment.hash in R4), or its
// SHA-256 when it is 32 bytes long. A mismatch is KindInvalid at the
// hash's location: the document was altered, or the hash is wrong, and
// storing it would keep a record that can never verify.
func checkAttachmentHashes(res map[string]any) error {
	typ, _ := res["resourceType"].(string)
	return walkAttachments(res, typ)
}

func walkAttachments(v any, path string) error {
	switch x := v.(type) {
	case map[string]any:
		if data, ok := x["data"].(string); ok {
			if h, ok := x["hash"].(string); ok {
				if err := checkHash(data, h, path+".hash"); err != nil {
					return err
				}
			}
		}
		for k, e := range x {
			if _, isObj := e.(map[string]any); isObj || isArray(e) {
				if err := walkAttachments(e, path+"."+k); err != nil {
					return err
				}
			}
		}
	case []any:
		for i, e := range x {
			if err := walkAttachments(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func isArray(v any) bool { _, ok := v.([]any); return ok }

func checkHash(data, h, location string) error {
	raw, err1 := base64Data(data)
	sum, err2 := base64Data(h)
	if err1 != nil || err2 != nil {
		return nil // not base64: validation reports it
	}
	var got []byte
	switch len(sum) {
	case sha1.Size:
		s := sha1.Sum(raw)
		got = s[:]
	case sha256.Size:
		s := sha256.Sum256(raw)
		got = s[:]
	default:
		msg := fmt.Sprintf("the attachment's hash is %d bytes; expected the SHA-1 of its data (20 bytes, base64)", len(sum))
		return &hale.Error{Kind: hale.KindInvalid, Op: "rest.attachment", Message: msg,
			Issues: []hale.Issue{{Severity: "error", Code: "value", Diagnostics: msg, Expression: []string{location}}}}
	}
	if subtle.ConstantTimeCompare(got, sum) != 1 {
		msg := "the attachment's hash does not match its data: the document was altered, or the hash is not the SHA-1 of the data"
		return &hale.Error{Kind: hale.KindInvalid, Op: "rest.attachment", Message: msg,
			Issues: []hale.Issue{{Severity: "error", Code: "value", Diagnostics: msg, Expression: []string{location}}}}
	}
	return nil
}

// base64Data decodes a base64Binary value; the white space some writers
// wrap it with (the R4 Binary example has spaces) is skipped.
func base64Data(s string) ([]byte, error) {
	if strings.ContainsAny(s, " \t\r\n") {
		s = strings.Map(func(r rune) rune {
			if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, s)
	}
	return base64.StdEncoding.DecodeString(s)
}
