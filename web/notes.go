package web

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/search"
)

// Clinical notes: US Core clinical notes as DocumentReference
// (us-core-documentreference, category clinical-note), the text in
// content.attachment (text/plain, with its SHA-1 hash as FHIR defines
// Attachment.hash). A draft has docStatus preliminary and can be edited
// by its author; signing sets docStatus final, the authenticator and the
// date, and from then on the app refuses every change: corrections are
// addenda, DocumentReferences that relatesTo.code "appends" the signed
// note (https://hl7.org/fhir/R4/documentreference.html).
//
// The FHIR core refuses content changes to a signed DocumentReference
// too (rest/signed.go). The app still does not trust the current
// version of a signed note (data written before that rule, or by a
// direct store write): it reads the note's history, shows the text of
// the version that was signed, and says so when a later version changed
// it (see noteView).

// noteTemplate is a kind of note: its LOINC document type and sections.
type noteTemplate struct {
	Key, Name, LOINC, LOINCDisplay string
	Sections                       []string
}

var noteTemplates = []noteTemplate{
	{"soap", "SOAP note", "11506-3", "Progress note", []string{"Subjective", "Objective", "Assessment", "Plan"}},
	{"progress", "Progress note", "11506-3", "Progress note", []string{"Interval history", "Examination", "Assessment and plan"}},
}

const maxNoteBytes = 64 << 10

func templateByKey(k string) (noteTemplate, bool) {
	i := slices.IndexFunc(noteTemplates, func(t noteTemplate) bool { return t.Key == k })
	if i < 0 {
		return noteTemplate{}, false
	}
	return noteTemplates[i], true
}

// noteSection is one heading of a note and its text.
type noteSection struct{ Field, Heading, Text string }

// noteText joins the sections as the note's plain text: "Heading:" on a
// line of its own, then the text.
func noteText(secs []noteSection) string {
	var b strings.Builder
	for _, s := range secs {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(s.Heading + ":\n" + strings.TrimSpace(s.Text))
	}
	return b.String()
}

// splitNote reads the sections of a template back from a note's text;
// text before the first heading goes to the first section.
func splitNote(t noteTemplate, text string) []noteSection {
	secs := make([]noteSection, len(t.Sections))
	for i, h := range t.Sections {
		secs[i] = noteSection{Field: "s" + itoa(i), Heading: h}
	}
	cur := 0
	var lines []string
	flush := func() { secs[cur].Text = strings.TrimSpace(strings.Join(lines, "\n")); lines = nil }
	for _, line := range strings.Split(text, "\n") {
		if j := slices.Index(t.Sections, strings.TrimSuffix(strings.TrimSpace(line), ":")); j >= 0 && strings.HasSuffix(strings.TrimSpace(line), ":") && j >= cur {
			flush()
			cur = j
			continue
		}
		lines = append(lines, line)
	}
	flush()
	return secs
}

// noteRow is a note in the list or on its page.
type noteRow struct {
	ID, Version, Title, Type, Author, AuthorRef, Date, Status, Signer string
	Text                                                              string
	Final, Addendum                                                   bool
	Appends                                                           string // the id of the note an addendum appends
	Template                                                          string
}

func attachmentText(d resource) string {
	data := str(d, "content", "0", "attachment", "data")
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return ""
	}
	return string(b)
}

func (a *App) noteRow(d resource, names map[string]string) noteRow {
	n := noteRow{ID: str(d, "id"), Version: str(d, "meta", "versionId"), Title: str(d, "content", "0", "attachment", "title"),
		Type: conceptText(get(d, "type")), AuthorRef: str(d, "author", "0", "reference"), Date: a.showDateTime(str(d, "date")),
		Status: str(d, "docStatus"), Text: attachmentText(d)}
	if n.Title == "" {
		n.Title = str(d, "description")
	}
	if n.Title == "" {
		n.Title = n.Type
	}
	n.Author = names[n.AuthorRef]
	if n.Author == "" {
		n.Author = str(d, "author", "0", "display")
	}
	n.Signer = names[str(d, "authenticator", "reference")]
	if n.Signer == "" {
		n.Signer = str(d, "authenticator", "display")
	}
	n.Final = n.Status == "final" || n.Status == "amended"
	for _, rt := range list(d, "relatesTo") {
		if str(rt, "code") == "appends" {
			n.Addendum = true
			n.Appends = refID(get(rt, "target"), "DocumentReference")
		}
	}
	for _, ext := range list(d, "extension") {
		if str(ext, "url") == noteTemplateExt {
			n.Template = str(ext, "valueCode")
		}
	}
	if n.Status == "" {
		n.Status = "final" // a note from elsewhere without docStatus
		n.Final = true
	}
	return n
}

// noteTemplateExt records which template a note was written with, so a
// draft opens in the same form.
const noteTemplateExt = "https://hale-ehr.org/fhir/StructureDefinition/note-template"

type notesView struct {
	Notes     []noteRow // newest first, addenda under their note
	Template  noteTemplate
	Templates []noteTemplate
	Title     string
	Sections  []noteSection
	Errors    map[string]string
	Error     string
	CanWrite  bool
}

func (a *App) notesSearch(ctx context.Context, id string) func() (*bundle, error) {
	return func() (*bundle, error) {
		return a.search(ctx, "DocumentReference", url.Values{"patient": {"Patient/" + id}, "category": {"clinical-note"},
			"_sort": {"-date"}, "_count": {"200"}, "_include": {"DocumentReference:author", "DocumentReference:authenticator"}})
	}
}

func (a *App) serveNotes(w http.ResponseWriter, r *http.Request, u *user) {
	t, ok := templateByKey(r.URL.Query().Get("template"))
	if !ok {
		t = noteTemplates[0]
	}
	a.notesPage(w, r, u, &notesView{Template: t, Sections: splitNote(t, "")}, http.StatusOK)
}

func (a *App) notesPage(w http.ResponseWriter, r *http.Request, u *user, v *notesView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	var docs *bundle
	c, err := a.loadChart(ctx, id, func() (err error) { docs, err = a.notesSearch(ctx, id)(); return err })
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	names := includedNames(docs.Included)
	var notes, addenda []noteRow
	for _, d := range docs.Matches {
		n := a.noteRow(d, names)
		if n.Addendum {
			addenda = append(addenda, n)
		} else {
			notes = append(notes, n)
		}
	}
	for _, n := range notes {
		v.Notes = append(v.Notes, n)
		for i := len(addenda) - 1; i >= 0; i-- {
			if addenda[i].Appends == n.ID {
				v.Notes = append(v.Notes, addenda[i])
			}
		}
	}
	v.Templates = noteTemplates
	v.CanWrite = u.can("DocumentReference", 'c')
	w.WriteHeader(status)
	a.render(w, r, u, "notes", &page{Title: c.Banner.Name + " · Notes", Tab: "notes", Banner: c.Banner, Flash: flash(r)}, v)
}

// readNoteForm reads a note's title and sections from a form.
func readNoteForm(r *http.Request, t noteTemplate) (string, []noteSection, map[string]string) {
	f := r.PostForm
	title := strings.TrimSpace(f.Get("title"))
	secs := splitNote(t, "")
	errs := map[string]string{}
	total := 0
	for i := range secs {
		secs[i].Text = strings.ReplaceAll(strings.TrimSpace(f.Get(secs[i].Field)), "\r\n", "\n")
		total += len(secs[i].Text)
	}
	if title == "" {
		title = t.Name
	} else if len(title) > 200 {
		errs["title"] = "The title is limited to 200 characters."
	}
	if total == 0 {
		errs["s0"] = "The note is empty: write at least one section."
	}
	if total > maxNoteBytes {
		errs["s0"] = "The note is limited to 64 KB of text."
	}
	return title, secs, errs
}

// noteResource builds the DocumentReference of a note.
func (a *App) noteResource(u *user, patient string, t noteTemplate, title, text string, sign bool) resource {
	now := a.now().UTC().Format(time.RFC3339)
	sum := sha1.Sum([]byte(text))
	d := resource{
		"resourceType": "DocumentReference",
		"meta":         map[string]any{"profile": []any{"http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference"}},
		"extension":    []any{map[string]any{"url": noteTemplateExt, "valueCode": t.Key}},
		"status":       "current",
		"docStatus":    "preliminary",
		"type":         map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": t.LOINC, "display": t.LOINCDisplay}}, "text": t.Name},
		"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
			"code": "clinical-note", "display": "Clinical Note"}}}},
		"subject":     map[string]any{"reference": "Patient/" + patient},
		"date":        now,
		"description": title,
		"content": []any{map[string]any{"attachment": map[string]any{
			"contentType": "text/plain; charset=utf-8", "language": "en", "title": title, "creation": now,
			"data": base64.StdEncoding.EncodeToString([]byte(text)), "hash": base64.StdEncoding.EncodeToString(sum[:]), "size": len(text)},
			"format": map[string]any{"system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode", "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient", "display": "mimeType Sufficient"}}},
	}
	if u.FHIRUser != "" {
		d["author"] = []any{map[string]any{"reference": u.FHIRUser}}
	} else {
		d["author"] = []any{map[string]any{"display": u.Name}}
	}
	if sign {
		d["docStatus"] = "final"
		d["authenticator"] = d["author"].([]any)[0]
	}
	return d
}

func (a *App) postNote(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("id")
	t, ok := templateByKey(r.PostForm.Get("template"))
	if !ok {
		a.errorPage(w, r, u, http.StatusBadRequest, "Choose a note template.")
		return
	}
	title, secs, errs := readNoteForm(r, t)
	if len(errs) > 0 {
		a.notesPage(w, r, u, &notesView{Template: t, Title: title, Sections: secs, Errors: errs, Error: "The note was not saved: correct the fields marked below."}, http.StatusBadRequest)
		return
	}
	sign := r.PostForm.Get("action") == "sign"
	nid, err := a.create(ctx, a.noteResource(u, id, t, title, noteText(secs), sign))
	if err != nil {
		a.notesPage(w, r, u, &notesView{Template: t, Title: title, Sections: secs, Error: a.userMessage(err)}, http.StatusBadRequest)
		return
	}
	saved := "note-draft"
	if sign {
		saved = "note-signed"
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/notes/"+nid+"?saved="+saved, http.StatusSeeOther)
}

// noteView is one note's page.
type noteView struct {
	Note        noteRow
	Addenda     []noteRow
	Editable    bool // a draft of the user's
	Template    noteTemplate
	Title       string
	Sections    []noteSection
	Errors      map[string]string
	Error       string
	Tampered    string // the signed text was changed later, outside the app
	CanAddendum bool
	Addendum    string
}

// loadNote reads a note of the patient and, when it was ever signed, the
// version that was signed (the first final one of its history; nil for
// a draft).
func (a *App) loadNote(ctx context.Context, patient, nid string) (cur resource, signed resource, err error) {
	if !search.ValidID(nid) {
		return nil, nil, errNotFound
	}
	cur, _, err = a.read(ctx, "DocumentReference", nid)
	if err != nil {
		return nil, nil, err
	}
	if refID(get(cur, "subject"), "Patient") != patient || !coded(get(cur, "category", "0"), "", "clinical-note") {
		return nil, nil, errNotFound
	}
	// The first version with docStatus final is the signed note, even
	// if a later version (written through the API) says otherwise.
	resp, err := a.fhir.Do(ctx, &rest.Request{Method: "GET", Type: "DocumentReference", ID: nid, Op: "_history",
		Query: url.Values{"_count": {"100"}}, RawQuery: "_count=100"})
	if err != nil {
		return nil, nil, err
	}
	b, err := body(resp)
	if err != nil {
		return nil, nil, err
	}
	var h struct {
		Entry []struct {
			Resource resource `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, nil, err
	}
	// History is newest first.
	for i := len(h.Entry) - 1; i >= 0; i-- {
		if r := h.Entry[i].Resource; r != nil && (str(r, "docStatus") == "final" || str(r, "docStatus") == "amended") {
			signed = r
			break
		}
	}
	return cur, signed, nil
}

func (a *App) serveNote(w http.ResponseWriter, r *http.Request, u *user) {
	a.notePage(w, r, u, &noteView{}, http.StatusOK)
}

func (a *App) notePage(w http.ResponseWriter, r *http.Request, u *user, v *noteView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id, nid := r.PathValue("id"), r.PathValue("nid")
	var cur, signed resource
	var docs *bundle
	c, err := a.loadChart(ctx, id,
		func() (err error) { cur, signed, err = a.loadNote(ctx, id, nid); return err },
		func() (err error) { docs, err = a.notesSearch(ctx, id)(); return err })
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	names := includedNames(docs.Included)
	show := cur
	if signed != nil {
		show = signed
		if attachmentText(signed) != attachmentText(cur) || str(signed, "description") != str(cur, "description") ||
			str(cur, "docStatus") != str(signed, "docStatus") {
			v.Tampered = "This note was changed after it was signed (version " + str(cur, "meta", "versionId") + ", " +
				a.showDateTime(str(cur, "meta", "lastUpdated")) + ", not through this app). The text shown is the version that was signed (version " +
				str(signed, "meta", "versionId") + "); the later change is not part of the signed note."
		}
	}
	v.Note = a.noteRow(show, names)
	v.Note.Version = str(cur, "meta", "versionId")
	for _, d := range docs.Matches {
		if n := a.noteRow(d, names); n.Addendum && n.Appends == nid {
			v.Addenda = append([]noteRow{n}, v.Addenda...)
		}
	}
	v.Editable = !v.Note.Final && u.can("DocumentReference", 'u') && v.Note.AuthorRef != "" && v.Note.AuthorRef == u.FHIRUser
	v.CanAddendum = v.Note.Final && !v.Note.Addendum && u.can("DocumentReference", 'c')
	if v.Editable && v.Sections == nil {
		t, ok := templateByKey(v.Note.Template)
		if !ok {
			t = noteTemplates[0]
		}
		v.Template, v.Title, v.Sections = t, v.Note.Title, splitNote(t, v.Note.Text)
	}
	w.WriteHeader(status)
	a.render(w, r, u, "note", &page{Title: c.Banner.Name + " · " + v.Note.Title, Tab: "notes", Banner: c.Banner, Flash: flash(r)}, v)
}

// updateNote saves a draft again, or signs it. A signed note, or
// someone else's draft, is refused; the PUT carries If-Match at the
// version the page showed.
func (a *App) updateNote(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id, nid := r.PathValue("id"), r.PathValue("nid")
	cur, signed, err := a.loadNote(ctx, id, nid)
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	if signed != nil {
		a.errorPage(w, r, u, http.StatusConflict, "This note is signed and cannot be changed. Add an addendum to correct or complete it.")
		return
	}
	if str(cur, "author", "0", "reference") != u.FHIRUser || u.FHIRUser == "" {
		a.errorPage(w, r, u, http.StatusForbidden, "Only the author of a draft can change or sign it.")
		return
	}
	version := str(cur, "meta", "versionId")
	if v := r.PostForm.Get("version"); v != version {
		a.errorPage(w, r, u, 0, "", errChanged)
		return
	}
	var tk string
	for _, ext := range list(cur, "extension") {
		if str(ext, "url") == noteTemplateExt {
			tk = str(ext, "valueCode")
		}
	}
	t, ok := templateByKey(tk)
	if !ok {
		t = noteTemplates[0]
	}
	title, secs, errs := readNoteForm(r, t)
	if len(errs) > 0 {
		a.notePage(w, r, u, &noteView{Template: t, Title: title, Sections: secs, Errors: errs, Error: "The note was not saved: correct the fields marked below."}, http.StatusBadRequest)
		return
	}
	sign := r.PostForm.Get("action") == "sign"
	d := a.noteResource(u, id, t, title, noteText(secs), sign)
	d["id"] = nid
	if err := a.update(ctx, d, version); err != nil {
		a.notePage(w, r, u, &noteView{Template: t, Title: title, Sections: secs, Error: a.userMessage(err)}, http.StatusConflict)
		return
	}
	saved := "note-draft"
	if sign {
		saved = "note-signed"
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/notes/"+nid+"?saved="+saved, http.StatusSeeOther)
}

// postAddendum writes a signed addendum to a signed note.
func (a *App) postAddendum(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id, nid := r.PathValue("id"), r.PathValue("nid")
	cur, signed, err := a.loadNote(ctx, id, nid)
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	if signed == nil {
		a.errorPage(w, r, u, http.StatusConflict, "This note is a draft: edit it instead of adding an addendum.")
		return
	}
	for _, rt := range list(cur, "relatesTo") {
		if str(rt, "code") == "appends" {
			a.errorPage(w, r, u, http.StatusBadRequest, "An addendum is added to the note itself, not to another addendum.")
			return
		}
	}
	text := strings.TrimSpace(strings.ReplaceAll(r.PostForm.Get("text"), "\r\n", "\n"))
	if text == "" || len(text) > maxNoteBytes {
		msg := "The addendum is empty."
		if text != "" {
			msg = "The addendum is limited to 64 KB of text."
		}
		a.notePage(w, r, u, &noteView{Error: msg, Errors: map[string]string{"addendum": msg}, Addendum: text}, http.StatusBadRequest)
		return
	}
	t := noteTemplate{Key: "addendum", Name: "Addendum", LOINC: str(signed, "type", "coding", "0", "code"), LOINCDisplay: str(signed, "type", "coding", "0", "display")}
	if t.LOINC == "" {
		t.LOINC, t.LOINCDisplay = "11506-3", "Progress note"
	}
	title := "Addendum to " + str(signed, "description")
	if len(title) > 200 {
		title = title[:200]
	}
	d := a.noteResource(u, id, t, title, text, true)
	d["relatesTo"] = []any{map[string]any{"code": "appends", "target": map[string]any{"reference": "DocumentReference/" + nid}}}
	if _, err := a.create(ctx, d); err != nil {
		a.notePage(w, r, u, &noteView{Error: a.userMessage(err), Addendum: text}, http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, Prefix+"/patients/"+id+"/notes/"+nid+"?saved=addendum", http.StatusSeeOther)
}
