package web

import (
	"bytes"
	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// upload posts a file to the chart's documents form.
func (c *client) upload(path, tok, kind, name, contentType string, data []byte) (int, string) {
	c.e.t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("csrf", tok)
	mw.WriteField("kind", kind)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+name+`"`)
	h.Set("Content-Type", contentType)
	pw, _ := mw.CreatePart(h)
	pw.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", c.e.srv.URL+path, &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", c.e.srv.URL)
	resp, err := c.http.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

var docLinkRE = regexp.MustCompile(`/documents/([A-Za-z0-9.-]+)/content"`)

// TestDocuments: a PDF is uploaded, listed and served back byte for byte
// with its own content type, as an attachment on request, never
// sniffed; HTML dressed up as a PDF, an unknown type and an oversized
// file are refused and write nothing.
func TestDocuments(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	tok := csrf(t, c.login())
	id := e.patient("Reinger")
	base := "/app/patients/" + id + "/documents"
	if status, page := c.get(base); status != 200 || !strings.Contains(page, "No documents") || !strings.Contains(page, `enctype="multipart/form-data"`) {
		t.Fatalf("documents page: %d", status)
	}
	pdf := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	status, page := c.upload(base, tok, "lab", "outside lab.pdf", "application/pdf", pdf)
	if status != 200 || !strings.Contains(page, "Document uploaded") || !strings.Contains(page, "outside lab.pdf") || !strings.Contains(page, "Laboratory report") {
		t.Fatalf("upload: %d\n%s", status, page)
	}
	m := docLinkRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no link to the document")
	}
	doc := e.read("DocumentReference", m[1])
	if str(doc, "content", "0", "attachment", "contentType") != "application/pdf" || str(doc, "subject", "reference") != "Patient/"+id ||
		str(doc, "category", "0", "coding", "0", "code") != "uploaded" || str(doc, "author", "0", "reference") != e.prac {
		t.Errorf("DocumentReference: %v", doc)
	}
	for _, dl := range []struct{ query, disp string }{{"", "inline"}, {"?download", "attachment"}} {
		resp, err := c.http.Get(e.srv.URL + base + "/" + m[1] + "/content" + dl.query)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, pdf) {
			t.Errorf("download%s: %d, %d bytes", dl.query, resp.StatusCode, len(got))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/pdf" {
			t.Errorf("Content-Type %q", ct)
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, dl.disp+";") || !strings.Contains(cd, "outside lab.pdf") {
			t.Errorf("Content-Disposition %q, want %s", cd, dl.disp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("headers: %v", resp.Header)
		}
		if resp.Header.Get("Repr-Digest") != reprDigest(got) {
			t.Errorf("Repr-Digest %q does not match the bytes", resp.Header.Get("Repr-Digest"))
		}
	}
	// Another patient's chart does not serve it.
	other := e.patients[0]
	if other == id {
		other = e.patients[1]
	}
	if status, _ := c.get("/app/patients/" + other + "/documents/" + m[1] + "/content"); status != 404 {
		t.Errorf("document through another chart: %d", status)
	}
	// Refused: HTML claiming to be a PDF, a text file, a PDF claiming to
	// be a PNG, an empty file, no kind, a file over the limit.
	html := []byte("<!DOCTYPE html><html><body><script>alert(1)</script></body></html>")
	big := append(append([]byte{}, pdf...), make([]byte, maxUpload)...)
	huge := append(append([]byte{}, pdf...), make([]byte, maxUpload+100<<10)...)
	for _, bad := range []struct {
		kind, name, ct string
		data           []byte
		status         int
		want           string
	}{
		{"lab", "x.pdf", "application/pdf", html, 400, "only PDF, PNG and JPEG"},
		{"lab", "x.txt", "text/plain", []byte("hello"), 400, "only PDF, PNG and JPEG"},
		{"lab", "x.png", "image/png", pdf, 400, "says it is image/png"},
		{"lab", "x.pdf", "application/pdf", nil, 400, "the file is empty"},
		{"nope", "x.pdf", "application/pdf", pdf, 400, "choose what kind"},
		{"lab", "big.pdf", "application/pdf", big, 400, "larger than 4 MB"},
		{"lab", "huge.pdf", "application/pdf", huge, 413, "too large"},
	} {
		if status, page := c.upload(base, tok, bad.kind, bad.name, bad.ct, bad.data); status != bad.status || !strings.Contains(page, bad.want) {
			t.Errorf("%s (%s): %d, want %d with %q", bad.name, bad.ct, status, bad.status, bad.want)
		}
	}
	if n := e.count("DocumentReference", id, "category", docCategorySystem+"|uploaded"); n != 1 {
		t.Errorf("%d uploaded documents, want 1", n)
	}
	// A record written through the API whose bytes are HTML is served
	// as an opaque download, not as a page.
	putJSON(t, e.loader, "DocumentReference", "evil", map[string]any{"resourceType": "DocumentReference", "id": "evil", "status": "current",
		"subject": map[string]any{"reference": "Patient/" + id},
		"content": []any{map[string]any{"attachment": map[string]any{"contentType": "text/html", "data": "PGh0bWw+PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "title": "x.html"}}}})
	resp, err := c.http.Get(e.srv.URL + base + "/evil/content")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "application/octet-stream" || !strings.HasPrefix(cd, "attachment") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("HTML record served as %q, %q", ct, cd)
	}
}

// TestConsent: a consent signed on screen (typed name and the box
// ticked) is recorded as an active Consent; an unsigned one is refused.
func TestConsent(t *testing.T) { testConsent(t, newEnv(t)) }

// TestConsentPostgres is TestConsent on PostgreSQL.
func TestConsentPostgres(t *testing.T) { testConsent(t, newEnvOn(t, pgtest.Open(t))) }

func testConsent(t *testing.T, e *env) {
	c := e.client()
	tok := csrf(t, c.login())
	id := e.patient("Reinger")
	base := "/app/patients/" + id + "/consents"
	for _, bad := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"scope": {"treatment"}, "name": {"Ann Reinger"}}, "tick the box"},
		{url.Values{"scope": {"treatment"}, "agree": {"yes"}, "name": {"  "}}, "type their full name"},
		{url.Values{"scope": {"research"}, "agree": {"yes"}, "name": {"Ann Reinger"}}, "Choose the consent form"},
	} {
		bad.form.Set("csrf", tok)
		if status, page := c.post(base, bad.form); status != 400 || !strings.Contains(page, bad.want) {
			t.Errorf("%v: %d, want 400 with %q", bad.form, status, bad.want)
		}
	}
	if n := e.count("Consent", id); n != 0 {
		t.Fatalf("%d Consents after refused forms", n)
	}
	status, page := c.post(base, url.Values{"csrf": {tok}, "scope": {"patient-privacy"}, "agree": {"yes"}, "name": {"Ann Reinger"}})
	if status != 200 || !strings.Contains(page, "Consent signed and recorded") || !strings.Contains(page, "Acknowledgement of privacy practices") {
		t.Fatalf("consent: %d\n%s", status, page)
	}
	cs := e.searchAll("Consent", url.Values{"patient": {"Patient/" + id}})
	if len(cs) != 1 {
		t.Fatalf("%d Consents", len(cs))
	}
	cn := cs[0]
	if str(cn, "status") != "active" || str(cn, "scope", "coding", "0", "code") != "patient-privacy" || str(cn, "dateTime") == "" ||
		str(cn, "performer", "0", "reference") != "Patient/"+id || str(cn, "performer", "0", "display") != "Ann Reinger" ||
		!strings.Contains(str(cn, "policyRule", "text"), "notice of privacy practices") {
		t.Errorf("Consent: %v", cn)
	}

	// Revoking: a nurse is not offered it and is refused; a stale
	// version, another chart's URL and a second revoke are refused; the
	// revoke sets the status inactive in a new version.
	revoke := base + "/" + str(cn, "id") + "/revoke"
	n := e.client()
	ntok := csrf(t, n.loginAs("nurse", e.addUser("nurse", hale.RoleNurse)))
	if _, page := n.get("/app/patients/" + id + "/documents"); strings.Contains(page, "Revoke consent") {
		t.Error("a nurse is offered to revoke a consent")
	}
	if status, _ := n.post(revoke, url.Values{"csrf": {ntok}, "version": {"1"}}); status != 403 {
		t.Errorf("nurse revokes: %d, want 403", status)
	}
	if _, page := c.get("/app/patients/" + id + "/documents"); !strings.Contains(page, "Revoke consent") {
		t.Error("the physician is not offered to revoke")
	}
	if status, _ := c.post(revoke, url.Values{"csrf": {tok}, "version": {"7"}}); status != 409 {
		t.Errorf("revoke at a stale version: %d, want 409", status)
	}
	if status, _ := c.post("/app/patients/"+e.patient("Kihn")+"/consents/"+str(cn, "id")+"/revoke", url.Values{"csrf": {tok}, "version": {"1"}}); status != 404 {
		t.Errorf("revoke through another chart: %d, want 404", status)
	}
	if str(e.read("Consent", str(cn, "id")), "status") != "active" {
		t.Fatal("a refused revoke changed the consent")
	}
	status, page = c.post(revoke, url.Values{"csrf": {tok}, "version": {"1"}})
	if status != 200 || !strings.Contains(page, "Consent revoked") || !strings.Contains(page, "Revoked") {
		t.Fatalf("revoke: %d", status)
	}
	cn = e.read("Consent", str(cn, "id"))
	if str(cn, "status") != "inactive" || str(cn, "meta", "versionId") != "2" || str(cn, "performer", "0", "display") != "Ann Reinger" {
		t.Errorf("revoked consent: %v", cn)
	}
	if status, page = c.post(revoke, url.Values{"csrf": {tok}, "version": {"2"}}); status != 409 || !strings.Contains(page, "Only an active consent") {
		t.Errorf("revoke twice: %d", status)
	}
}
