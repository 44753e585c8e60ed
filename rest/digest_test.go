package rest_test

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/hale-ehr/hale/rest"
)

var pdf = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")

func sha256Field(b []byte) string {
	s := sha256.Sum256(b)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(s[:]) + ":"
}

// TestBinaryNative: a Binary is written from its content (any
// Content-Type but FHIR's) and read back as its content unless FHIR is
// asked for, with its digests and headers that keep a browser from
// running it; FHIR JSON on request; errors stay OperationOutcomes.
func TestBinaryNative(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		r := c.do("POST", "/Binary", pdf, "Content-Type: application/pdf", "X-Security-Context: DocumentReference/d1", "Accept: application/pdf").want(t, 201)
		if r.body["contentType"] != "application/pdf" || r.body["data"] != base64.StdEncoding.EncodeToString(pdf) ||
			str(r.body["securityContext"].(map[string]any)["reference"]) != "DocumentReference/d1" {
			t.Fatalf("created Binary: %s", r.raw)
		}
		id := str(r.body["id"])
		for _, accept := range []string{"", "*/*", "application/pdf", "text/html,application/xhtml+xml,*/*;q=0.8", "application/fhir+json;q=0"} {
			g := c.do("GET", "/Binary/"+id, nil, "Accept: "+accept).want(t, 200)
			if !bytes.Equal(g.raw, pdf) || g.header.Get("Content-Type") != "application/pdf" || g.header.Get("Content-Disposition") != "inline" ||
				g.header.Get("Repr-Digest") != sha256Field(pdf) || g.header.Get("Content-Digest") != sha256Field(pdf) ||
				g.header.Get("X-Security-Context") != "DocumentReference/d1" || g.header.Get("ETag") != `W/"1"` ||
				!strings.Contains(g.header.Get("Content-Security-Policy"), "sandbox") {
				t.Errorf("Accept %q: %v %q", accept, g.header, g.raw)
			}
		}
		for _, q := range []string{"?_format=json", ""} {
			h := "Accept: application/fhir+json"
			if q != "" {
				h = "Accept: */*"
			}
			g := c.do("GET", "/Binary/"+id+q, nil, h).want(t, 200)
			if g.body["resourceType"] != "Binary" || g.body["data"] != base64.StdEncoding.EncodeToString(pdf) {
				t.Errorf("FHIR read %q: %s", q, g.raw)
			}
		}
		if h := c.do("HEAD", "/Binary/"+id, nil).want(t, 200); len(h.raw) != 0 || h.header.Get("Repr-Digest") != sha256Field(pdf) || h.header.Get("Content-Digest") != "" {
			t.Errorf("HEAD: %v", h.header)
		}
		// Update from content; vread of each version as content.
		html := []byte("<script>alert(1)</script>")
		c.do("PUT", "/Binary/"+id, html, "Content-Type: text/html; charset=utf-8").want(t, 200)
		g := c.do("GET", "/Binary/"+id, nil).want(t, 200)
		if !bytes.Equal(g.raw, html) || g.header.Get("Content-Disposition") != "attachment" || g.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("HTML Binary served: %v", g.header)
		}
		if v1 := c.do("GET", "/Binary/"+id+"/_history/1", nil).want(t, 200); !bytes.Equal(v1.raw, pdf) {
			t.Errorf("vread 1: %q", v1.raw)
		}
		// Errors are OperationOutcomes, whatever the Accept.
		c.do("GET", "/Binary/nope", nil, "Accept: application/pdf").want(t, 404).outcome(t)
		c.do("POST", "/Binary", pdf, "Content-Type: application/pdf", "X-Security-Context: not a reference").want(t, 400).outcome(t)
		c.do("POST", "/Binary", pdf, "Content-Type: application/pdf;;").want(t, 400).outcome(t)
		// Other types keep FHIR content negotiation.
		c.do("POST", "/Patient", pdf, "Content-Type: application/pdf").want(t, 415)
	})
}

// TestDigestFields: a request body with Content-Digest or Repr-Digest is
// checked (sha-256 or sha-512): a mismatch, a malformed field or only
// other algorithms is a 400 and nothing is stored; an answer carries the
// digests Want-…-Digest asks for, computed over the bytes sent.
func TestDigestFields(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		s512 := sha512.Sum512(pdf)
		good := []string{
			"Content-Digest: " + sha256Field(pdf),
			"Repr-Digest: " + sha256Field(pdf),
			"Content-Digest: sha-512=:" + base64.StdEncoding.EncodeToString(s512[:]) + ":",
			"Content-Digest: md5=:AAAA:, " + sha256Field(pdf),                                             // the one Hale knows is checked
			"Content-Digest: " + strings.TrimSuffix(strings.TrimSuffix(sha256Field(pdf), ":"), "=") + ":", // no padding
			"Content-Digest: " + sha256Field(pdf) + ";x=1",                                                // a parameter
		}
		for _, h := range good {
			c.do("POST", "/Binary", pdf, "Content-Type: application/pdf", h).want(t, 201)
		}
		flipped := bytes.Clone(pdf)
		flipped[3] ^= 0x10
		other := sha256.Sum256([]byte("other"))
		bad := []string{
			"Content-Digest: " + sha256Field(flipped),
			"Repr-Digest: " + sha256Field(flipped),
			"Content-Digest: sha-256=:" + base64.StdEncoding.EncodeToString(other[:]) + ":, sha-512=:" + base64.StdEncoding.EncodeToString(s512[:]) + ":",
			"Content-Digest: md5=:AAAA:",
			"Content-Digest: sha-256",
			"Content-Digest: sha-256=abc",
			"Content-Digest: SHA-256=:" + base64.StdEncoding.EncodeToString(other[:]) + ":",
			"Content-Digest: sha-256=:***:",
		}
		for _, h := range bad {
			o := c.do("POST", "/Binary", pdf, "Content-Type: application/pdf", h).want(t, 400).outcome(t)
			if !strings.Contains(o, "Digest") {
				t.Errorf("%s: %s", h, o)
			}
		}
		// A FHIR body is checked the same way.
		pat := []byte(`{"resourceType":"Patient","active":true}`)
		c.do("POST", "/Patient", pat, "Content-Digest: "+sha256Field(pat)).want(t, 201)
		c.do("POST", "/Patient", pat, "Content-Digest: "+sha256Field(append(bytes.Clone(pat), ' '))).want(t, 400)
		if n := c.do("GET", "/Binary?_summary=count", nil).body["total"]; n != float64(len(good)) {
			t.Errorf("%v Binaries stored, want %d: a refused upload was stored", n, len(good))
		}
		if n := c.do("GET", "/Patient?_summary=count", nil).body["total"]; n != float64(1) {
			t.Errorf("%v Patients stored, want 1", n)
		}
		// Want-Repr-Digest on a FHIR answer.
		r := c.do("GET", "/Patient?_count=1", nil, "Want-Repr-Digest: sha-512=3, sha-256=10", "Want-Content-Digest: sha-512=1")
		s := sha512.Sum512(r.raw)
		if r.header.Get("Repr-Digest") != sha256Field(r.raw) || r.header.Get("Content-Digest") != "sha-512=:"+base64.StdEncoding.EncodeToString(s[:])+":" {
			t.Errorf("digests of a FHIR answer: %v", r.header)
		}
		if r := c.do("GET", "/Patient?_count=1", nil); r.header.Get("Repr-Digest") != "" {
			t.Errorf("a digest no one asked for: %v", r.header)
		}
		if rest.DigestValue(pdf) != sha256Field(pdf) {
			t.Errorf("DigestValue: %s", rest.DigestValue(pdf))
		}
	})
}

// TestAttachmentHash: an Attachment with its data inline and a hash is
// stored only when the hash is the data's SHA-1 (or SHA-256), on create,
// update, patch and in a transaction, wherever the Attachment is.
func TestAttachmentHash(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		s1 := sha1.Sum(pdf)
		s256 := sha256.Sum256(pdf)
		data := base64.StdEncoding.EncodeToString(pdf)
		doc := func(hash string) map[string]any {
			return map[string]any{"resourceType": "DocumentReference", "status": "current",
				"content": []any{map[string]any{"attachment": map[string]any{"contentType": "application/pdf", "data": data, "hash": hash}}}}
		}
		r := c.do("POST", "/DocumentReference", doc(base64.StdEncoding.EncodeToString(s1[:]))).want(t, 201)
		id := str(r.body["id"])
		c.do("POST", "/DocumentReference", doc(base64.StdEncoding.EncodeToString(s256[:]))).want(t, 201)
		flipped := s1
		flipped[0] ^= 1
		if o := c.do("POST", "/DocumentReference", doc(base64.StdEncoding.EncodeToString(flipped[:]))).want(t, 400).outcome(t); !strings.Contains(o, "DocumentReference.content[0].attachment.hash") {
			t.Errorf("outcome does not locate the hash: %s", o)
		}
		c.do("POST", "/DocumentReference", doc(base64.StdEncoding.EncodeToString([]byte("Hello there")))).want(t, 400)
		upd := doc(base64.StdEncoding.EncodeToString(flipped[:]))
		upd["id"] = id
		c.do("PUT", "/DocumentReference/"+id, upd).want(t, 400)
		c.do("PATCH", "/DocumentReference/"+id, `[{"op":"replace","path":"/content/0/attachment/data","value":"AAAA"}]`,
			"Content-Type: application/json-patch+json").want(t, 422) // a patch that yields an invalid resource (http.html#patch)
		comm := `{"resourceType":"Communication","status":"completed","payload":[{"contentAttachment":{"contentType":"application/pdf","data":"` + data +
			`","hash":"` + base64.StdEncoding.EncodeToString(flipped[:]) + `"}}]}`
		c.do("POST", "/Communication", comm).want(t, 400)
		tx := `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":` + comm + `,"request":{"method":"POST","url":"Communication"}}]}`
		c.do("POST", "", tx).want(t, 400)
		// Without data (a URL) or without a hash, nothing to check.
		c.do("POST", "/DocumentReference", `{"resourceType":"DocumentReference","status":"current","content":[{"attachment":{"url":"http://x/y","hash":"SGVsbG8gdGhlcmU="}}]}`).want(t, 201)
		if v := c.do("GET", "/DocumentReference/"+id, nil).want(t, 200); v.body["meta"].(map[string]any)["versionId"] != "1" {
			t.Errorf("a refused change was stored: %s", v.raw)
		}
	})
}
