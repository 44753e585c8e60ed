package rest_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSignedDocumentImmutable: once a DocumentReference has docStatus
// final (or a Composition status final), PUT, PATCH and transactions may
// only mark it entered-in-error/superseded or add relatesTo links; a
// draft stays freely editable.
func TestSignedDocumentImmutable(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		pid := c.create(t, "Patient", patientJane)
		id := c.create(t, "DocumentReference", `{"resourceType":"DocumentReference","status":"current","docStatus":"preliminary",
			"subject":{"reference":"Patient/`+pid+`"},"description":"Progress note","date":"2026-01-02T10:00:00Z",
			"author":[{"reference":"Practitioner/dr1"}],
			"content":[{"attachment":{"contentType":"text/plain","data":"ZHJhZnQ="}}]}`)
		read := func() map[string]any {
			t.Helper()
			return c.do("GET", "/DocumentReference/"+id, nil).want(t, 200).body
		}
		put := func(fn func(d map[string]any)) *resp {
			t.Helper()
			d := read()
			fn(d)
			return c.do("PUT", "/DocumentReference/"+id, d)
		}
		// A draft: free to edit, patch, and sign.
		put(func(d map[string]any) { d["description"] = "Progress note, edited" }).want(t, 200)
		c.do("PATCH", "/DocumentReference/"+id, `[{"op":"replace","path":"/date","value":"2026-01-02T11:00:00Z"}]`,
			"Content-Type: application/json-patch+json").want(t, 200)
		put(func(d map[string]any) {
			d["docStatus"] = "final"
			d["content"] = []any{map[string]any{"attachment": map[string]any{"contentType": "text/plain", "data": "c2lnbmVk"}}}
		}).want(t, 200)
		signed := read()

		// Signed: content, description, author, subject, date, docStatus back to draft: refused.
		for name, fn := range map[string]func(d map[string]any){
			"content": func(d map[string]any) {
				d["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)["data"] = "Y2hhbmdlZA=="
			},
			"description": func(d map[string]any) { d["description"] = "rewritten" },
			"author":      func(d map[string]any) { d["author"] = []any{map[string]any{"reference": "Practitioner/other"}} },
			"subject":     func(d map[string]any) { delete(d, "subject") },
			"date":        func(d map[string]any) { d["date"] = "2020-01-01T00:00:00Z" },
			"docStatus":   func(d map[string]any) { d["docStatus"] = "preliminary" },
		} {
			out := put(fn).want(t, 422).outcome(t)
			if !strings.Contains(out, "business-rule") || !strings.Contains(out, "DocumentReference."+name) || !strings.Contains(out, "signed") {
				t.Errorf("%s: outcome %q", name, out)
			}
		}
		out := c.do("PATCH", "/DocumentReference/"+id, `[{"op":"replace","path":"/description","value":"patched"}]`,
			"Content-Type: application/json-patch+json").want(t, 422).outcome(t)
		if !strings.Contains(out, "DocumentReference.description") {
			t.Errorf("patch outcome %q", out)
		}
		// In a transaction: the whole bundle is refused, nothing written.
		d := read()
		d["description"] = "via transaction"
		entry, _ := json.Marshal(d)
		c.do("POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[
			{"resource":`+string(entry)+`,"request":{"method":"PUT","url":"DocumentReference/`+id+`"}},
			{"resource":{"resourceType":"Patient","name":[{"family":"Tx"}]},"request":{"method":"POST","url":"Patient"}}]}`).want(t, 422)
		if n := c.count(t, "Patient"); n != 1 {
			t.Errorf("the refused transaction wrote a Patient: %d", n)
		}
		if got := read(); got["description"] != signed["description"] || got["meta"].(map[string]any)["versionId"] != signed["meta"].(map[string]any)["versionId"] {
			t.Errorf("the signed note changed: %v", got)
		}

		// Allowed: a relatesTo link added; removing it is not.
		put(func(d map[string]any) {
			d["relatesTo"] = []any{map[string]any{"code": "appends", "target": map[string]any{"reference": "DocumentReference/x"}}}
		}).want(t, 200)
		put(func(d map[string]any) { delete(d, "relatesTo") }).want(t, 422)
		// Allowed: entered-in-error; going back to current is not.
		put(func(d map[string]any) { d["status"] = "entered-in-error" }).want(t, 200)
		put(func(d map[string]any) { d["status"] = "current" }).want(t, 422)
		if got := read(); got["status"] != "entered-in-error" || got["description"] != signed["description"] {
			t.Errorf("after entered-in-error: %v", got)
		}
	})
}

func TestSignedCompositionImmutable(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		body := `{"resourceType":"Composition","status":"%s","type":{"text":"Discharge summary"},"date":"2026-01-02T10:00:00Z",
			"author":[{"reference":"Practitioner/dr1"}],"title":"Discharge"}`
		id := c.create(t, "Composition", strings.Replace(body, "%s", "preliminary", 1))
		read := func() map[string]any { return c.do("GET", "/Composition/"+id, nil).want(t, 200).body }
		d := read()
		d["title"], d["status"] = "Discharge summary", "final"
		c.do("PUT", "/Composition/"+id, d).want(t, 200)
		out := c.do("PATCH", "/Composition/"+id, `[{"op":"replace","path":"/title","value":"changed"}]`,
			"Content-Type: application/json-patch+json").want(t, 422).outcome(t)
		if !strings.Contains(out, "Composition.title") {
			t.Errorf("outcome %q", out)
		}
		d = read()
		d["status"] = "amended"
		c.do("PUT", "/Composition/"+id, d).want(t, 422)
		d["status"] = "entered-in-error"
		c.do("PUT", "/Composition/"+id, d).want(t, 200)
	})
}
