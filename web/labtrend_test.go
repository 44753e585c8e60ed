package web

import (
	"net/url"
	"strings"
	"testing"
)

// TestLabsTrend: the Labs tab lists each analyte of a Synthea patient
// once, and the trend of the analyte chosen has one point per numeric
// result of it, with the reference range band.
func TestLabsTrend(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.login()
	// The demo patient with the longest series of one analyte.
	var id string
	var obs []map[string]any
	var numeric map[string]int
	var names map[string]string
	most := 0
	for _, pid := range e.patients {
		os := e.searchAll("Observation", url.Values{"patient": {"Patient/" + pid}, "category": {"laboratory"}, "_count": {"1000"}})
		nu, na := map[string]int{}, map[string]string{}
		for _, o := range os {
			code := codeOf(get(o, "code"), "http://loinc.org")
			na[code] = shortTest(conceptText(get(o, "code")))
			if _, ok := num(o, "valueQuantity", "value"); ok {
				nu[code]++
			}
		}
		for _, n := range nu {
			if n > most {
				most, id, obs, numeric, names = n, pid, os, nu, na
			}
		}
	}
	if len(obs) == 0 {
		t.Fatal("no demo patient has lab results")
	}
	status, page := c.get("/app/patients/" + id + "/labs")
	if status != 200 || !strings.Contains(page, `aria-current="page">Labs`) {
		t.Fatalf("labs page: %d", status)
	}
	for code := range names {
		if n := strings.Count(page, "labs?code="+code+"#"); n != 1 {
			t.Errorf("analyte %s (%s) listed %d times, want 1", code, names[code], n)
		}
	}
	if strings.Contains(page, "<svg") {
		t.Error("a trend drawn with no analyte chosen")
	}
	best := ""
	for code, n := range numeric {
		if n > numeric[best] || n == numeric[best] && code < best {
			best = code
		}
	}
	if numeric[best] < 2 {
		t.Fatalf("no analyte with two numeric results: %v", numeric)
	}
	status, page = c.get("/app/patients/" + id + "/labs?code=" + url.QueryEscape(best))
	if status != 200 {
		t.Fatalf("trend page: %d", status)
	}
	svg := page[strings.Index(page, "<svg"):]
	svg = svg[:strings.Index(svg, "</svg>")]
	if n := strings.Count(svg, "<circle"); n != numeric[best] {
		t.Errorf("%s trend has %d points, want %d", best, n, numeric[best])
	}
	if !strings.Contains(svg, `class="band"`) {
		t.Error("no reference range band")
	}
	// An unknown code lists the analytes and draws nothing.
	if status, page = c.get("/app/patients/" + id + "/labs?code=nope"); status != 200 || strings.Contains(page, "<svg") {
		t.Errorf("unknown code: %d", status)
	}
}
