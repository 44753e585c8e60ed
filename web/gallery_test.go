package web

import (
	"context"
	"encoding/json"
	"flag"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/rest"
)

var galleryDir = flag.String("gallery", "", "render every screen with fixture data into this folder (HTML, and PNG when chromium is installed)")

// TestGallery renders every screen of the app with the demo patients and
// a few fixtures (an alert, a critical lab with the lab's own range,
// appointments today and ahead) for review:
//
//	go test ./web -run TestGallery -gallery /tmp/hale-gallery
func TestGallery(t *testing.T) {
	if *galleryDir == "" {
		t.Skip("no -gallery folder given")
	}
	dir, _ := filepath.Abs(*galleryDir)
	if err := os.MkdirAll(filepath.Join(dir, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	id := e.patient("Kihn")
	now := time.Now()
	for _, r := range []map[string]any{
		{"resourceType": "Flag", "status": "active", "code": map[string]any{"text": "Fall risk: assist when walking"}, "subject": map[string]any{"reference": "Patient/" + id}},
		{"resourceType": "Observation", "status": "final", "category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}}}},
			"code":    map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium [Moles/volume] in Serum or Plasma"}}},
			"subject": map[string]any{"reference": "Patient/" + id}, "effectiveDateTime": now.Add(-2 * time.Hour).UTC().Format(time.RFC3339),
			"valueQuantity":  map[string]any{"value": 6.6, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
			"referenceRange": []any{map[string]any{"low": map[string]any{"value": 3.5, "unit": "mmol/L"}, "high": map[string]any{"value": 5.1, "unit": "mmol/L"}}},
			"interpretation": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "HH"}}}}},
		{"resourceType": "Appointment", "status": "booked", "description": "Follow-up: hypertension", "start": now.Add(time.Hour).UTC().Format(time.RFC3339),
			"end": now.Add(90 * time.Minute).UTC().Format(time.RFC3339), "participant": []any{
				map[string]any{"actor": map[string]any{"reference": "Patient/" + id}, "status": "accepted"},
				map[string]any{"actor": map[string]any{"reference": e.prac}, "status": "accepted"}}},
	} {
		b, _ := json.Marshal(r)
		if _, err := e.loader.Do(context.Background(), &rest.Request{Method: "POST", Type: r["resourceType"].(string), Body: b}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.client()
	var pages []string
	save := func(name, html string) {
		for file := range e.app.assets {
			html = strings.ReplaceAll(html, e.app.asset(file), "static/"+file)
		}
		p := filepath.Join(dir, name+".html")
		if err := os.WriteFile(p, []byte(html), 0o644); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
	}
	_, login := c.get("/app/login")
	save("01-sign-in", login)
	_, page := c.post("/app/login", url.Values{"token": {tokenRE.FindStringSubmatch(login)[1]}, "username": {testUser}, "password": {testPassword}})
	save("02-one-time-code", page)
	home := c.login()
	tok := csrf(t, home)
	_, page = c.get("/app/patients")
	save("03-search", page)
	_, page = c.get("/app/patients?name=Kihn")
	save("04-search-results", page)
	for _, s := range []struct{ name, path string }{
		{"05-summary", ""}, {"06-vitals", "/vitals"}, {"08-problems", "/problems"}, {"10-allergies", "/allergies"}, {"12-visits", "/visits"},
	} {
		_, page = c.get("/app/patients/" + id + s.path)
		save(s.name, page)
	}
	_, page = c.post("/app/patients/"+id+"/vitals", url.Values{"csrf": {tok}, "systolic": {"80"}, "diastolic": {"120"}, "hr": {"abc"}, "taken": {"2024-01-01T10:00"}})
	save("07-vitals-errors", page)
	_, page = c.post("/app/patients/"+id+"/problems", url.Values{"csrf": {tok}, "system": {"icd10"}, "code": {"12345"}})
	save("09-problems-errors", page)
	_, page = c.post("/app/patients/"+id+"/allergies", url.Values{"csrf": {tok}, "type": {"allergy"}, "category": {"food"}, "criticality": {"low"}})
	save("11-allergies-errors", page)
	_, page = c.get("/app/")
	save("13-home", page)
	c.post("/app/patients/"+id+"/allergies", url.Values{"csrf": {tok}, "substance": {"Penicillin"}, "type": {"allergy"}, "category": {"medication"},
		"criticality": {"high"}, "reaction": {"Anaphylaxis"}})
	c.post("/app/patients/"+id+"/medications", rxForm(tok, "Sertraline 50 MG Oral Tablet", "rxcui", "312941", "dose", "50", "dose_unit", "mg"))
	_, page = c.get("/app/patients/" + id + "/medications")
	save("15-medications", page)
	_, page = c.post("/app/patients/"+id+"/medications", rxForm(tok, "Phenelzine 15 MG Oral Tablet", "dose", "15", "dose_unit", "mg"))
	save("16-prescribe-interaction", page)
	_, page = c.post("/app/patients/"+id+"/medications", rxForm(tok, "Amoxicillin 500 MG Oral Capsule", "dose", "500", "dose_unit", "mg", "frequency", "TID", "refills", "x"))
	save("17-prescribe-errors", page)
	_, page = c.get("/app/patients/" + id + "/notes?template=progress")
	save("18-notes", page)
	_, page = c.post("/app/patients/"+id+"/notes", url.Values{"csrf": {tok}, "template": {"soap"}, "action": {"draft"}, "title": {"Annual review"},
		"s0": {"Feels well. No chest pain."}, "s1": {"BP 142/91."}})
	save("19-note-draft", page)
	_, page = c.post("/app/patients/"+id+"/notes", url.Values{"csrf": {tok}, "template": {"soap"}, "action": {"sign"}, "title": {"Hypertension follow-up"},
		"s0": {"Home readings 135-145/85-95."}, "s1": {"BP 142/91, HR 70."}, "s2": {"Hypertension, not at goal."}, "s3": {"Start lisinopril 10 mg daily; recheck in 4 weeks."}})
	if m := regexpMust(`/notes/([A-Za-z0-9.-]+)/addenda`).FindStringSubmatch(page); m != nil {
		_, page = c.post("/app/patients/"+id+"/notes/"+m[1]+"/addenda", url.Values{"csrf": {tok}, "text": {"Potassium 4.2 on the same day."}})
	}
	save("20-note-signed", page)
	_, page = c.get("/app/patients/" + id + "/notes")
	save("21-notes-list", page)
	for _, o := range []url.Values{
		{"catalog": {"lipid"}, "priority": {"routine"}, "reason": {"Hypertension"}, "action": {"sign"}},
		{"catalog": {"cxr"}, "priority": {"stat"}, "reason": {"Cough, fever"}, "action": {"sign"}},
		{"catalog": {"other"}, "category": {"lab"}, "system": {"loinc"}, "code": {"2160-0"}, "text": {"Creatinine"}, "priority": {"routine"}, "action": {"draft"}},
	} {
		o.Set("csrf", tok)
		c.post("/app/patients/"+id+"/orders", o)
	}
	_, page = c.get("/app/patients/" + id + "/orders")
	save("22-orders", page)
	_, page = c.post("/app/patients/"+id+"/orders", url.Values{"csrf": {tok}, "catalog": {"other"}, "system": {"loinc"}, "code": {"12"}, "priority": {"routine"}})
	save("23-orders-errors", page)
	day := now.AddDate(0, 0, 1).Format("2006-01-02")
	for i, b := range []struct{ at, min, what string }{{"09:00", "30", "Annual physical"}, {"09:30", "15", "Blood pressure check"}, {"11:00", "60", "New patient visit"}} {
		_ = i
		c.post("/app/schedule/appointments", bookingForm(tok, e.prac, id, day, b.at, b.min, b.what))
	}
	_, page = c.get("/app/schedule?date=" + day)
	save("24-schedule-day", page)
	_, page = c.post("/app/schedule/appointments", bookingForm(tok, e.prac, id, day, "09:10", "20", "Double booking"))
	save("25-schedule-double-booking", page)
	_, page = c.get("/app/schedule?view=week&date=" + day)
	save("26-schedule-week", page)
	fd := e.client()
	ftok := csrf(t, fd.loginAs("front.desk", e.addUser("front.desk", hale.RoleFrontDesk)))
	_, page = fd.get("/app/patients/new")
	save("27-register", page)
	_, page = fd.post("/app/patients/new", registration(ftok, "family", "Kihn", "given", "Rufus", "birthdate", "1976-09-16", "gender", "male"))
	save("28-register-duplicate", page)
	_, page = c.get("/app/patients/no-such-patient")
	save("14-not-found", page)
	fs.WalkDir(staticFiles, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := staticFiles.ReadFile(p)
			os.WriteFile(filepath.Join(dir, p), b, 0o644)
		}
		return nil
	})
	t.Logf("gallery: %d screens in %s", len(pages), dir)
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		return
	}
	w := &walker{t: t, ctx: browser(t, 1366, 900), dir: dir}
	for _, p := range pages {
		w.run("open "+p, chromedp.Navigate("file://"+p), chromedp.WaitVisible(css("main")))
		w.shot(strings.TrimSuffix(filepath.Base(p), ".html"))
	}
}
