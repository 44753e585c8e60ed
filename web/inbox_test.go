package web

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale/rest"
)

// post creates r through the loader (no access control) and returns its id.
func (e *env) post(r map[string]any) string {
	e.t.Helper()
	b, _ := json.Marshal(r)
	resp, err := e.loader.Do(context.Background(), &rest.Request{Method: "POST", Type: r["resourceType"].(string), Body: b, Return: rest.ReturnMinimal})
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.Split(resp.Location, "/")[1]
}

// TestInbox: Home lists the clinician's new lab results (abnormal ones
// flagged), open Tasks and unread patient messages; "Mark reviewed"
// records a completed review Task and drops the result, "Mark read" sets
// Communication.received and drops the message.
func TestInbox(t *testing.T) {
	e := newEnv(t)
	id := e.patient("Reinger")
	now := time.Now().UTC().Format(time.RFC3339)
	obs := e.post(map[string]any{"resourceType": "Observation", "status": "final",
		"category":          []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}}}},
		"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "2823-3"}}, "text": "Potassium zz-inbox"},
		"subject":           map[string]any{"reference": "Patient/" + id},
		"effectiveDateTime": now,
		"valueQuantity":     map[string]any{"value": 6.8, "unit": "mmol/L"},
	})
	e.post(map[string]any{"resourceType": "Observation", "status": "preliminary",
		"category":          []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}}}},
		"code":              map[string]any{"text": "Sodium zz-preliminary"},
		"subject":           map[string]any{"reference": "Patient/" + id},
		"effectiveDateTime": now,
		"valueQuantity":     map[string]any{"value": 140, "unit": "mmol/L"},
	})
	e.post(map[string]any{"resourceType": "Task", "status": "requested", "intent": "order", "description": "Call back about zz-task",
		"for": map[string]any{"reference": "Patient/" + id}, "owner": map[string]any{"reference": e.prac}, "authoredOn": now})
	e.post(map[string]any{"resourceType": "Task", "status": "completed", "intent": "order", "description": "Done zz-closed",
		"for": map[string]any{"reference": "Patient/" + id}, "owner": map[string]any{"reference": e.prac}, "authoredOn": now})
	msg := e.post(map[string]any{"resourceType": "Communication", "status": "completed", "subject": map[string]any{"reference": "Patient/" + id},
		"sender": map[string]any{"reference": "Patient/" + id}, "recipient": []any{map[string]any{"reference": e.prac}}, "sent": now,
		"payload": []any{map[string]any{"contentString": "Can I take ibuprofen zz-msg?"}}})

	c := e.client()
	page := c.login()
	tok := csrf(t, page)
	results := page[strings.Index(page, `id="results-h"`):strings.Index(page, `id="tasks-h"`)]
	if !strings.Contains(results, "Potassium zz-inbox") || !strings.Contains(results, "6.8 mmol/L") || strings.Contains(results, "zz-preliminary") {
		t.Fatalf("results to review:\n%s", results)
	}
	row := results[strings.LastIndex(results[:strings.Index(results, "Potassium zz-inbox")], "<tr"):]
	row = row[:strings.Index(row, "</tr>")]
	if !strings.Contains(row, `class="abnormal"`) || !strings.Contains(row, `class="flag"`) {
		t.Errorf("potassium 6.8 not flagged: %s", row)
	}
	tasks := page[strings.Index(page, `id="tasks-h"`):strings.Index(page, `id="messages-h"`)]
	if !strings.Contains(tasks, "Call back about zz-task") || strings.Contains(tasks, "zz-closed") {
		t.Errorf("open tasks:\n%s", tasks)
	}
	msgs := page[strings.Index(page, `id="messages-h"`):]
	if !strings.Contains(msgs, "Can I take ibuprofen zz-msg?") {
		t.Errorf("messages:\n%s", msgs)
	}

	// Bad input changes nothing.
	for _, bad := range []string{"Patient/" + id, "Observation/../x", ""} {
		if status, _ := c.post("/app/inbox/reviews", url.Values{"csrf": {tok}, "result": {bad}}); status != 400 {
			t.Errorf("review %q: %d, want 400", bad, status)
		}
	}
	if status, _ := c.post("/app/inbox/reviews", url.Values{"csrf": {tok}, "result": {"Observation/nosuch"}}); status != 404 {
		t.Errorf("review of a missing result: %d, want 404", status)
	}
	if n := len(e.searchAll("Task", url.Values{"code": {taskCodeSystem + "|review"}})); n != 0 {
		t.Fatalf("%d review Tasks after bad input", n)
	}

	status, page := c.post("/app/inbox/reviews", url.Values{"csrf": {tok}, "result": {"Observation/" + obs}})
	if status != 200 || !strings.Contains(page, "Result marked reviewed") {
		t.Fatalf("mark reviewed: %d", status)
	}
	if strings.Contains(page, "Potassium zz-inbox") {
		t.Error("the reviewed result is still listed")
	}
	rev := e.searchAll("Task", url.Values{"code": {taskCodeSystem + "|review"}})
	if len(rev) != 1 || str(rev[0], "status") != "completed" || str(rev[0], "focus", "reference") != "Observation/"+obs ||
		str(rev[0], "owner", "reference") != e.prac || str(rev[0], "for", "reference") != "Patient/"+id {
		t.Errorf("review Task: %v", rev)
	}
	if !strings.Contains(page, "Call back about zz-task") {
		t.Error("the review Task must not hide the open one")
	}

	cur := e.read("Communication", msg)
	status, page = c.post("/app/inbox/messages/"+msg+"/read", url.Values{"csrf": {tok}, "version": {str(cur, "meta", "versionId")}})
	if status != 200 || !strings.Contains(page, "Message marked read") || strings.Contains(page, "zz-msg") {
		t.Fatalf("mark read: %d", status)
	}
	if str(e.read("Communication", msg), "received") == "" {
		t.Error("Communication.received not set")
	}
	if status, _ := c.post("/app/inbox/messages/"+msg+"/read", url.Values{"csrf": {tok}, "version": {"1"}}); status != 409 {
		t.Errorf("stale version: %d, want 409", status)
	}
}
