package web

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/rest"
)

// Documents and consents in the chart.
//
// Uploaded documents (PDF, PNG, JPEG) are DocumentReferences
// (https://hl7.org/fhir/R4/documentreference.html) in Hale's category
// "uploaded" (docCategorySystem), the bytes in content.attachment.data
// with contentType, size, hash (SHA-1) and title. The brief asked for a
// Binary the attachment URL points to; Binary is outside the Patient
// compartment, so the access policy gives clinicians no right to it (it
// could not be scoped to the patient), and the bytes stay in the
// DocumentReference, which is scoped, validated and audited like the rest
// of the chart. The type is checked against the bytes
// (http.DetectContentType, the WHATWG sniffing rules): a file whose
// bytes are not a PDF or an image is refused whatever it claims to be,
// and on the way out the bytes are sniffed again, so a record written
// through the API cannot make the app serve HTML.
//
// Consents are Consent resources (https://hl7.org/fhir/R4/consent.html):
// status active, scope patient-privacy or treatment, category LOINC
// 59284-0 (Patient consent), the patient as performer, the dateTime of
// signing, and the policy text the patient read in policyRule.text and
// sourceAttachment (with the typed signature).

const docCategorySystem = "https://hale-ehr.org/fhir/CodeSystem/document-category"

// maxUpload is the largest file accepted.
const maxUpload = 4 << 20

// uploadTypes are the content types accepted, as http.DetectContentType
// names them.
var uploadTypes = []string{"application/pdf", "image/png", "image/jpeg"}

// docKind is a kind of document offered on the upload form (LOINC
// document types; check).
type docKind struct{ Key, Code, Text string }

var docKinds = []docKind{
	{"outside", "34133-9", "Outside records (summary of episode)"},
	{"lab", "11502-2", "Laboratory report"},
	{"imaging", "18748-4", "Diagnostic imaging report"},
	{"consent", "59284-0", "Signed consent (paper)"},
	{"admin", "51851-4", "Administrative document"},
}

// consentPolicies are the consent forms offered: the text the patient
// reads and signs.
var consentPolicies = map[string]struct{ Title, Text string }{
	"treatment": {"Consent to treatment",
		"I consent to examination and treatment by the clinicians of this practice, including tests and procedures they consider necessary. I may ask questions at any time and withdraw this consent in writing."},
	"patient-privacy": {"Acknowledgement of privacy practices",
		"I have been given the notice of privacy practices of this practice. I understand how my health information may be used and shared for treatment, payment and operations, and that I may ask for restrictions."},
}

type docRow struct {
	ID, Title, Kind, ContentType, Size, Date string
}

type consentRow struct {
	ID, Version, Title, Scope, Status, Date, Signer, Revoked string
	Active                                                   bool
}

type documentsView struct {
	Docs                  []docRow
	Consents              []consentRow
	Kinds                 []docKind
	Policies              map[string]struct{ Title, Text string }
	Kind, Scope, Name     string
	Error, ConsentError   string
	CanUpload, CanConsent bool
	CanRevoke             bool
}

func (a *App) serveDocuments(w http.ResponseWriter, r *http.Request, u *user) {
	a.documentsPage(w, r, u, &documentsView{Kind: "outside", Scope: "treatment"}, http.StatusOK)
}

func (a *App) documentsPage(w http.ResponseWriter, r *http.Request, u *user, v *documentsView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	var docs, consents *bundle
	c, err := a.loadChart(ctx, id, func() (err error) {
		docs, err = a.search(ctx, "DocumentReference", url.Values{"patient": {"Patient/" + id}, "category": {docCategorySystem + "|uploaded"},
			"_sort": {"-date"}, "_count": {"200"}, "_elements": {"id,type,date,content,category,subject"}})
		return err
	}, func() (err error) {
		consents, err = a.search(ctx, "Consent", url.Values{"patient": {"Patient/" + id}, "_sort": {"-date"}, "_count": {"100"}})
		return err
	})
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	for _, d := range docs.Matches {
		att := obj(d, "content", "0", "attachment")
		row := docRow{ID: str(d, "id"), Title: str(att, "title"), Kind: conceptText(get(d, "type")), ContentType: str(att, "contentType"),
			Date: a.showDateTime(str(d, "date"))}
		if n, ok := num(att, "size"); ok {
			row.Size = byteSize(int64(n))
		}
		v.Docs = append(v.Docs, row)
	}
	for _, cn := range consents.Matches {
		row := consentRow{ID: str(cn, "id"), Version: str(cn, "meta", "versionId"), Title: str(cn, "sourceAttachment", "title"), Scope: codeOf(get(cn, "scope"), ""),
			Status: str(cn, "status"), Date: a.showDateTime(str(cn, "dateTime")), Signer: str(cn, "performer", "0", "display")}
		row.Active = row.Status == "active"
		if row.Status == "inactive" {
			// Revoking sets the status; the version's time says when.
			row.Revoked = a.showDateTime(str(cn, "meta", "lastUpdated"))
		}
		if row.Title == "" {
			row.Title = conceptText(get(cn, "scope"))
		}
		v.Consents = append(v.Consents, row)
	}
	v.Kinds, v.Policies = docKinds, consentPolicies
	v.CanUpload, v.CanConsent, v.CanRevoke = u.can("DocumentReference", 'c'), u.can("Consent", 'c'), u.can("Consent", 'u')
	w.WriteHeader(status)
	a.render(w, r, u, "documents", &page{Title: c.Banner.Name + " · Documents", Tab: "documents", Banner: c.Banner, Flash: flash(r)}, v)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", (n+512)>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// safeFileName keeps a file name's base, printable, at most 100 runes.
func safeFileName(s string) string {
	s = path.Base(strings.ReplaceAll(s, "\\", "/"))
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) || r == '"' || r == '/' {
			return -1
		}
		return r
	}, s)
	if rs := []rune(s); len(rs) > 100 {
		s = string(rs[:100])
	}
	if s == "." || s == "" {
		s = "document"
	}
	return s
}

// postDocument stores an uploaded file (see the package comment above).
func (a *App) postDocument(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	v := &documentsView{Kind: r.PostForm.Get("kind"), Scope: "treatment"}
	fail := func(msg string) {
		v.Error = "The document was not saved: " + msg
		a.documentsPage(w, r, u, v, http.StatusBadRequest)
	}
	ki := slices.IndexFunc(docKinds, func(k docKind) bool { return k.Key == v.Kind })
	if ki < 0 {
		fail("choose what kind of document it is.")
		return
	}
	if r.MultipartForm == nil || len(r.MultipartForm.File["file"]) != 1 {
		fail("choose one file.")
		return
	}
	fh := r.MultipartForm.File["file"][0]
	f, err := fh.Open()
	if err != nil {
		fail("the file could not be read.")
		return
	}
	data, err := io.ReadAll(io.LimitReader(f, maxUpload+1))
	f.Close()
	switch {
	case err != nil:
		fail("the file could not be read.")
		return
	case len(data) == 0:
		fail("the file is empty.")
		return
	case len(data) > maxUpload:
		fail(fmt.Sprintf("the file is larger than %d MB.", maxUpload>>20))
		return
	}
	sniffed := http.DetectContentType(data)
	declared, _, _ := mime.ParseMediaType(fh.Header.Get("Content-Type"))
	if !slices.Contains(uploadTypes, sniffed) {
		fail("only PDF, PNG and JPEG files are accepted, and this file's content is none of them.")
		return
	}
	if declared != "" && declared != "application/octet-stream" && declared != sniffed {
		fail("the file says it is " + declared + " but its content is " + sniffed + ".")
		return
	}
	sum := sha1.Sum(data)
	now := a.now().UTC().Format(time.RFC3339)
	k := docKinds[ki]
	doc := resource{
		"resourceType": "DocumentReference",
		"status":       "current",
		"type":         map[string]any{"coding": []any{map[string]any{"system": systemLOINC, "code": k.Code}}, "text": k.Text},
		"category":     []any{map[string]any{"coding": []any{map[string]any{"system": docCategorySystem, "code": "uploaded", "display": "Uploaded document"}}}},
		"subject":      map[string]any{"reference": "Patient/" + id},
		"date":         now,
		"content": []any{map[string]any{"attachment": map[string]any{
			"contentType": sniffed, "data": base64.StdEncoding.EncodeToString(data), "size": len(data),
			"hash": base64.StdEncoding.EncodeToString(sum[:]), "title": safeFileName(fh.Filename), "creation": now}}},
	}
	if u.FHIRUser != "" {
		doc["author"] = []any{map[string]any{"reference": u.FHIRUser}}
	}
	if _, err := a.create(ctx, doc); err != nil {
		fail(a.userMessage(err))
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/documents?saved=document", http.StatusSeeOther)
}

// serveDocumentContent sends a document's bytes: the content type they
// really are (else application/octet-stream), inline only for a PDF or
// an image and as an attachment with ?download, and a sandbox CSP. The
// bytes must still match the hash recorded at upload, and go out with
// their SHA-256 (Repr-Digest, RFC 9530) for the browser's side to check
// (docs/security.md, "Integrity of exchanged documents"). A download is
// a copy leaving Hale: recorded in the audit trail as an export, besides
// the read of the DocumentReference.
func (a *App) serveDocumentContent(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id, did := r.PathValue("id"), r.PathValue("did")
	d, _, err := a.read(ctx, "DocumentReference", did)
	if err == nil && (refID(get(d, "subject"), "Patient") != id || str(d, "content", "0", "attachment", "data") == "") {
		err = errNotFound
	}
	var data []byte
	if err == nil {
		data, err = base64.StdEncoding.DecodeString(str(d, "content", "0", "attachment", "data"))
		if err != nil {
			err = errors.Join(errNotFound, err)
		}
	}
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	att := obj(d, "content", "0", "attachment")
	if h := str(att, "hash"); h != "" {
		if sum := sha1.Sum(data); h != base64.StdEncoding.EncodeToString(sum[:]) {
			a.errorPage(w, r, u, http.StatusConflict, "This document's content no longer matches the fingerprint recorded when it was uploaded, so it was not sent. Tell the administrator.")
			return
		}
	}
	_, download := r.URL.Query()["download"]
	if download && a.fhir.Audit != nil {
		if err := a.fhir.Audit.Audit(ctx, &hale.Access{Interaction: "download", Type: "DocumentReference", ID: did, Patients: []string{id}}); err != nil {
			a.errorPage(w, r, u, 0, "", err)
			return
		}
	}
	ct, disp := "application/octet-stream", "attachment"
	if sniffed := http.DetectContentType(data); slices.Contains(uploadTypes, sniffed) && sniffed == str(att, "contentType") {
		ct = sniffed
		if !download {
			disp = "inline"
		}
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": safeFileName(str(att, "title"))}))
	h.Set("X-Content-Type-Options", "nosniff")
	csp := "default-src 'none'; frame-ancestors 'none'"
	if disp != "inline" {
		csp += "; sandbox"
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("Repr-Digest", rest.DigestValue(data))
	h.Set("Content-Digest", rest.DigestValue(data))
	h.Set("Content-Length", fmt.Sprint(len(data)))
	w.Write(data)
}

// postConsent records a consent the patient signed on screen.
func (a *App) postConsent(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	f := r.PostForm
	v := &documentsView{Kind: "outside", Scope: f.Get("scope"), Name: strings.TrimSpace(f.Get("name"))}
	pol, ok := consentPolicies[v.Scope]
	switch {
	case !ok:
		v.ConsentError = "Choose the consent form."
	case v.Name == "" || len(v.Name) > 200:
		v.ConsentError = "The patient must type their full name (at most 200 characters) to sign."
	case f.Get("agree") != "yes":
		v.ConsentError = "The patient must tick the box to agree."
	}
	if v.ConsentError != "" {
		a.documentsPage(w, r, u, v, http.StatusBadRequest)
		return
	}
	now := a.now().UTC().Format(time.RFC3339)
	signed := pol.Title + "\n\n" + pol.Text + "\n\nSigned on screen by " + v.Name + " (typed name) at " + now + "."
	consent := resource{
		"resourceType": "Consent",
		"status":       "active",
		"scope":        map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": v.Scope}}, "text": pol.Title},
		"category":     []any{map[string]any{"coding": []any{map[string]any{"system": systemLOINC, "code": "59284-0", "display": "Patient Consent"}}}},
		"patient":      map[string]any{"reference": "Patient/" + id},
		"dateTime":     now,
		"performer":    []any{map[string]any{"reference": "Patient/" + id, "display": v.Name}},
		"policyRule":   map[string]any{"text": pol.Text},
		"sourceAttachment": map[string]any{"contentType": "text/plain; charset=utf-8", "title": pol.Title, "creation": now,
			"data": base64.StdEncoding.EncodeToString([]byte(signed))},
		"provision": map[string]any{"type": "permit"},
	}
	if _, err := a.create(ctx, consent); err != nil {
		v.ConsentError = a.userMessage(err)
		a.documentsPage(w, r, u, v, http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/documents?saved=consent", http.StatusSeeOther)
}

// revokeConsent withdraws an active consent: status inactive ("the
// consent is terminated or replaced"), a PUT with If-Match at the
// version the page showed, audited like every write. The signed text and
// the earlier version stay in the history.
func (a *App) revokeConsent(w http.ResponseWriter, r *http.Request, u *user) {
	a.resolve(w, r, u, "Consent", "documents", "consent-revoked", func(res resource, now string) error {
		if s := str(res, "status"); s != "active" {
			return errors.New("Only an active consent can be revoked; this one is " + s + ".")
		}
		res["status"] = "inactive"
		return nil
	})
}
