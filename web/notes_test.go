package web

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/rest"
)

var (
	noteIDRE      = regexpMust(`/notes/([A-Za-z0-9.-]+)"`)
	noteVersionRE = regexpMust(`name="version" value="(\d+)"`)
)

func (e *env) read(typ, id string) map[string]any {
	e.t.Helper()
	resp, err := e.loader.Do(context.Background(), &rest.Request{Method: "GET", Type: typ, ID: id})
	if err != nil {
		e.t.Fatal(err)
	}
	return decode(e.t, resp.Body)
}

// TestNotes: a draft is saved and edited by its author, signing makes it
// final, a signed note refuses every change in the app, addenda attach
// to it, and a change made to it through the API afterwards is shown as
// such while the signed text stays what the page shows.
func TestNotes(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	tok := csrf(t, c.login())
	id := e.patient("Reinger")
	base := "/app/patients/" + id + "/notes"
	if _, page := c.get(base); !strings.Contains(page, "No clinical notes") || !strings.Contains(page, `name="s3"`) {
		t.Fatal("notes page: no empty list or no SOAP form")
	}
	if _, page := c.get(base + "?template=progress"); !strings.Contains(page, "Interval history") {
		t.Fatal("progress note template not offered")
	}
	// Empty: refused.
	if status, page := c.post(base, url.Values{"csrf": {tok}, "template": {"soap"}, "action": {"draft"}}); status != 400 || !strings.Contains(page, "The note is empty") {
		t.Fatalf("empty note: %d", status)
	}
	status, page := c.post(base, url.Values{"csrf": {tok}, "template": {"soap"}, "action": {"draft"}, "title": {"Cough, 3 days"},
		"s0": {"Dry cough for 3 days. <script>alert(1)</script>"}, "s1": {"T 37.8, lungs clear."}})
	if status != 200 || !strings.Contains(page, "Draft saved") || !strings.Contains(page, "Dry cough for 3 days") || strings.Contains(page, "<script>alert") {
		t.Fatalf("draft: %d\n%s", status, page)
	}
	nid := noteIDRE.FindStringSubmatch(page[strings.Index(page, `class="card note-form"`)-200:])[1]
	ver := noteVersionRE.FindStringSubmatch(page)[1]
	status, page = c.post(base+"/"+nid, url.Values{"csrf": {tok}, "version": {ver}, "action": {"draft"}, "title": {"Cough, 3 days"},
		"s0": {"Dry cough for 3 days."}, "s1": {"T 37.8, lungs clear."}, "s2": {"Viral bronchitis."}, "s3": {"Fluids, review in 1 week."}})
	if status != 200 || !strings.Contains(page, "Viral bronchitis.") {
		t.Fatalf("edit draft: %d", status)
	}
	if status, _ = c.post(base+"/"+nid, url.Values{"csrf": {tok}, "version": {ver}, "action": {"draft"}, "s0": {"stale"}}); status != 409 {
		t.Errorf("edit at an old version: %d, want 409", status)
	}
	ver = noteVersionRE.FindStringSubmatch(page)[1]
	status, page = c.post(base+"/"+nid, url.Values{"csrf": {tok}, "version": {ver}, "action": {"sign"}, "title": {"Cough, 3 days"},
		"s0": {"Dry cough for 3 days."}, "s1": {"T 37.8, lungs clear."}, "s2": {"Viral bronchitis."}, "s3": {"Fluids, review in 1 week."}})
	if status != 200 || !strings.Contains(page, "Note signed") || strings.Contains(page, "<textarea id=\"n-s0\"") ||
		!strings.Contains(page, "Subjective:\nDry cough for 3 days.\n\nObjective:\nT 37.8, lungs clear.\n\nAssessment:\nViral bronchitis.\n\nPlan:\nFluids, review in 1 week.") {
		t.Fatalf("sign: %d\n%s", status, page)
	}
	doc := e.read("DocumentReference", nid)
	signedVersion := str(doc, "meta", "versionId")
	if str(doc, "docStatus") != "final" || str(doc, "authenticator", "reference") != e.prac || str(doc, "type", "coding", "0", "code") != "11506-3" ||
		str(doc, "content", "0", "attachment", "hash") == "" {
		t.Errorf("signed DocumentReference: %v", doc)
	}
	// The app refuses every change to the signed note.
	status, page = c.post(base+"/"+nid, url.Values{"csrf": {tok}, "version": {signedVersion}, "action": {"draft"}, "s0": {"Changed after signing"}})
	if status != 409 || !strings.Contains(page, "signed and cannot be changed") {
		t.Errorf("edit of a signed note: %d", status)
	}
	if v := str(e.read("DocumentReference", nid), "meta", "versionId"); v != signedVersion {
		t.Errorf("signed note went from version %s to %s", signedVersion, v)
	}
	// Addenda.
	if status, page = c.post(base+"/"+nid+"/addenda", url.Values{"csrf": {tok}, "text": {"  "}}); status != 400 || !strings.Contains(page, "addendum is empty") {
		t.Errorf("empty addendum: %d", status)
	}
	status, page = c.post(base+"/"+nid+"/addenda", url.Values{"csrf": {tok}, "text": {"Chest X-ray normal."}})
	if status != 200 || !strings.Contains(page, "Addendum signed") || !strings.Contains(page, "Addenda (1)") || !strings.Contains(page, "Chest X-ray normal.") {
		t.Fatalf("addendum: %d", status)
	}
	adds := e.searchAll("DocumentReference", url.Values{"relatesto": {"DocumentReference/" + nid}})
	if len(adds) != 1 || str(adds[0], "relatesTo", "0", "code") != "appends" || str(adds[0], "docStatus") != "final" {
		t.Fatalf("addendum resources: %v", adds)
	}
	if status, _ = c.post(base+"/"+str(adds[0], "id")+"/addenda", url.Values{"csrf": {tok}, "text": {"x"}}); status != 400 {
		t.Errorf("addendum to an addendum: %d, want 400", status)
	}
	_, page = c.get(base)
	if !strings.Contains(page, "Notes (2)") || !strings.Contains(page, "Addendum to Cough, 3 days") || !strings.Contains(page, "Signed") {
		t.Error("list does not show the note and its addendum")
	}

	// Through the API the signed note cannot be changed either (rest
	// refuses it, rest/signed.go): the page shows the signed text, no
	// tampering, and the app still refuses edits.
	doc["docStatus"] = "preliminary"
	rewritten := []byte("Subjective:\nRewritten later")
	att := doc["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)
	att["data"] = base64.StdEncoding.EncodeToString(rewritten)
	sum := sha1.Sum(rewritten) // a consistent hash: the signature, not the hash check, must refuse it
	att["hash"] = base64.StdEncoding.EncodeToString(sum[:])
	b0, _ := json.Marshal(doc)
	if _, err := e.loader.Do(context.Background(), &rest.Request{Method: "PUT", Type: "DocumentReference", ID: nid, Body: b0}); !hale.IsKind(err, hale.KindUnprocessable) {
		t.Fatalf("API rewrite of a signed note: %v, want refused (422)", err)
	}
	_, page = c.get(base + "/" + nid)
	if strings.Contains(page, "changed after it was signed") || strings.Contains(page, "Rewritten later") || !strings.Contains(page, "Viral bronchitis.") ||
		strings.Contains(page, `<textarea id="n-s0"`) {
		t.Errorf("signed note page after a refused API rewrite:\n%s", page)
	}
	ver = str(e.read("DocumentReference", nid), "meta", "versionId")
	if status, _ = c.post(base+"/"+nid, url.Values{"csrf": {tok}, "version": {ver}, "action": {"sign"}, "s0": {"x"}}); status != 409 {
		t.Errorf("edit of a signed note: %d, want 409", status)
	}

	// Someone else's draft: readable, not editable.
	other := map[string]any{"resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
		"extension": []any{map[string]any{"url": noteTemplateExt, "valueCode": "soap"}},
		"category":  []any{map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "code": "clinical-note"}}}},
		"type":      map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "11506-3"}}},
		"subject":   map[string]any{"reference": "Patient/" + id}, "author": []any{map[string]any{"reference": "Practitioner/someone-else"}},
		"date": "2024-01-01T10:00:00Z", "content": []any{map[string]any{"attachment": map[string]any{"contentType": "text/plain", "data": base64.StdEncoding.EncodeToString([]byte("Subjective:\nTheirs"))}}}}
	b, _ := json.Marshal(other)
	resp, err := e.loader.Do(context.Background(), &rest.Request{Method: "POST", Type: "DocumentReference", Body: b})
	if err != nil {
		t.Fatal(err)
	}
	oid := strings.Split(resp.Location, "/")[1]
	_, page = c.get(base + "/" + oid)
	if !strings.Contains(page, "Theirs") || strings.Contains(page, `<textarea id="n-s0"`) {
		t.Error("another author's draft is editable or not shown")
	}
	if status, _ = c.post(base+"/"+oid, url.Values{"csrf": {tok}, "version": {"1"}, "action": {"sign"}, "s0": {"mine now"}}); status != 403 {
		t.Errorf("signing another's draft: %d, want 403", status)
	}
	// A note of another patient through this chart: not found.
	if status, _ = c.get("/app/patients/" + e.patient("Kihn") + "/notes/" + nid); status != 404 {
		t.Errorf("note through another chart: %d, want 404", status)
	}
}
