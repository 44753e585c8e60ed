package web

import (
	"net/url"
	"strings"
	"testing"
)

// TestSmokingStatus: the summary records a US Core smoking status and
// shows it; a code outside the value set is refused and writes nothing.
func TestSmokingStatus(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	tok := csrf(t, c.login())
	id := e.patient("Reinger")
	base := "/app/patients/" + id
	smokers := func() []map[string]any {
		return e.searchAll("Observation", url.Values{"patient": {"Patient/" + id}, "code": {"http://loinc.org|72166-2"}, "_sort": {"-date"}})
	}
	before := len(smokers())
	if _, page := c.get(base); !strings.Contains(page, `id="smoke-h"`) || !strings.Contains(page, `value="266919005"`) {
		t.Fatal("no smoking status card with its form")
	}
	for _, bad := range []string{"", "12345", "266919005 ", "72166-2"} {
		status, page := c.post(base+"/smoking", url.Values{"csrf": {tok}, "status": {bad}})
		if status != 400 || !strings.Contains(page, "Smoking status not saved") {
			t.Errorf("status %q: %d, want 400", bad, status)
		}
	}
	if n := len(smokers()); n != before {
		t.Fatalf("bad codes wrote %d Observations", n-before)
	}
	status, page := c.post(base+"/smoking", url.Values{"csrf": {tok}, "status": {"8517006"}})
	if status != 200 || !strings.Contains(page, "Smoking status recorded") || !strings.Contains(page, `<span class="what" id="smoking-status">Ex-smoker</span>`) {
		t.Fatalf("record: %d", status)
	}
	all := smokers()
	if len(all) != before+1 {
		t.Fatalf("%d smoking status Observations, want %d", len(all), before+1)
	}
	o := all[0]
	if str(o, "status") != "final" || str(o, "category", "0", "coding", "0", "code") != "social-history" ||
		str(o, "valueCodeableConcept", "coding", "0", "system") != systemSNOMED || str(o, "valueCodeableConcept", "coding", "0", "code") != "8517006" ||
		str(o, "effectiveDateTime") == "" || str(o, "performer", "0", "reference") != e.prac {
		t.Errorf("stored: %v", o)
	}
	// The latest wins.
	c.post(base+"/smoking", url.Values{"csrf": {tok}, "status": {"266919005"}})
	if _, page = c.get(base); !strings.Contains(page, `id="smoking-status">Never smoker<`) {
		t.Error("the latest status is not shown")
	}
}
