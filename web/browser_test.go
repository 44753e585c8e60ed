package web

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser tests: Debian's chromium driven by chromedp (the Chrome
// DevTools Protocol), against Hale in-process. They skip without
// chromium, except with CI=true, where they fail (.ci/run installs it).

// chromium returns the browser's path (FindChromium).
func chromium(t testing.TB) string {
	t.Helper()
	p, err := FindChromium(os.Getenv)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v; CI=true requires the browser tests", err)
	}
	t.Skipf("%v; the browser tests are skipped (they fail with CI=true)", err)
	return ""
}

// browser starts a headless chromium with a window of w×h.
func browser(t testing.TB, w, h int) context.Context {
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(w, h),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 180*time.Second)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// screenshotDir is where the walk saves its screenshots:
// $HALE_SCREENSHOTS, else web/testdata/screenshots (git-ignored).
func screenshotDir(t testing.TB) string {
	dir := os.Getenv("HALE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

type css = chromedp.CSS

type walker struct {
	t   *testing.T
	ctx context.Context
	dir string
}

// nav runs an action that loads a page (a link, a form) and waits for
// the new page, so that later waits cannot match the old one.
func (w *walker) nav(step string, a chromedp.Action[chromedp.Void]) {
	w.t.Helper()
	if _, err := chromedp.RunResponse(w.ctx, a); err != nil {
		w.t.Fatalf("%s: %v", step, err)
	}
}

func (w *walker) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	w.t.Helper()
	if err := chromedp.Do(w.ctx, actions...); err != nil {
		w.t.Fatalf("%s: %v", step, err)
	}
}

// text is the visible text of the first element matching sel.
// value is the value of the form control sel.
func (w *walker) value(sel string) string {
	w.t.Helper()
	s, err := chromedp.Run(w.ctx, chromedp.Value(css(sel), chromedp.NodeVisible))
	if err != nil {
		w.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

func (w *walker) text(sel string) string {
	w.t.Helper()
	s, err := chromedp.Run(w.ctx, chromedp.Text(css(sel), chromedp.NodeVisible))
	if err != nil {
		w.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// expect checks that the element sel shows each of want.
func (w *walker) expect(step, sel string, want ...string) {
	w.t.Helper()
	got := w.text(sel)
	for _, s := range want {
		if !strings.Contains(got, s) {
			w.t.Errorf("%s: %s shows %q, want it to contain %q", step, sel, got, s)
		}
	}
}

func (w *walker) shot(name string) {
	w.t.Helper()
	png, err := chromedp.Run(w.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		w.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(w.dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.t.Logf("screenshot %s", p)
}

// TestBrowserClinicianWalk walks a physician through the app: sign in
// with the one-time code, mark a new result reviewed in the in-basket,
// find a Synthea patient, review the summary, edit the demographics,
// record vitals, add a problem and resolve it, record an allergy and an
// immunization, prescribe, write and sign a note, order a lab, upload a
// document, book an appointment, page the visits, and find the patient
// among the recent ones on Home.
func TestBrowserClinicianWalk(t *testing.T) {
	chromium(t)
	e := newEnv(t)
	w := &walker{t: t, ctx: browser(t, 1366, 900), dir: screenshotDir(t)}
	base := e.srv.URL
	// A new high potassium for the in-basket.
	e.post(map[string]any{"resourceType": "Observation", "status": "final",
		"category": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}}}},
		"code":     map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "2823-3"}}, "text": "Potassium (walk)"},
		"subject":  map[string]any{"reference": "Patient/" + e.patient("Reinger")}, "effectiveDateTime": time.Now().UTC().Format(time.RFC3339),
		"valueQuantity": map[string]any{"value": 6.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}})

	w.run("open", chromedp.Navigate(base+"/app/"), chromedp.WaitVisible(css("#username")))
	w.shot("01-sign-in")
	w.run("password", chromedp.SendKeys(css("#username"), testUser), chromedp.SendKeys(css("#password"), testPassword))
	w.nav("password", chromedp.Submit(css("#password")))
	w.run("code step", chromedp.WaitVisible(css("#code")))
	w.expect("code step", "main", "Signing in as "+testUser, "One-time code")
	w.shot("02-one-time-code")
	w.run("code", chromedp.SendKeys(css("#code"), e.totp(0)))
	w.nav("code", chromedp.Submit(css("#code")))
	w.run("home", chromedp.WaitVisible(css("#recent-h")))
	w.expect("home", "main", "Recently viewed patients", "No patients viewed yet")
	w.expect("home", ".who", testUser, "physician")

	// The in-basket: the new potassium, flagged; mark it reviewed.
	w.expect("in-basket", "#main", "Results to review", "Potassium (walk)", "6.4 mmol/L", "Reinger")
	w.shot("20-inbox")
	w.nav("mark reviewed", chromedp.Click(css(`button[aria-label^="Mark reviewed: Potassium (walk)"]`)))
	w.run("reviewed", chromedp.WaitVisible(css(".flash")))
	w.expect("reviewed", ".flash", "Result marked reviewed")
	if strings.Contains(w.text("#main"), "Potassium (walk)") {
		t.Error("the reviewed result is still in the in-basket")
	}

	// Find the patient.
	w.nav("search page", chromedp.Click(css(`a[href="/app/patients"]`)))
	w.run("search", chromedp.WaitVisible(css("#s-name")), chromedp.SendKeys(css("#s-name"), "Reinger"))
	w.nav("search", chromedp.Submit(css("#s-name")))
	w.run("results", chromedp.WaitVisible(css("#results-h")))
	w.expect("search", "#results-h", "1 patient found")
	w.expect("search", "table.results", "Reinger", "1992-12-25", "Male")
	w.shot("03-search")

	// The summary.
	w.nav("open chart", chromedp.Click(css("table.results a")))
	w.run("chart", chromedp.WaitVisible(css(".banner")))
	w.expect("banner", ".banner", "Reinger", "Male", "1992-12-25", "MRN", "No known allergies", "PCP")
	if mrn := w.text(".b-facts"); !strings.Contains(mrn, "MRN") || strings.Contains(mrn, "MRNnone") {
		t.Errorf("banner has no MRN: %q", mrn)
	}
	w.expect("summary", "#main", "Active problems", "Medications", "Latest vitals", "Recent lab results", "Immunizations",
		"Upcoming appointments", "Blood pressure", "Weight", "Hemoglobin")
	w.shot("04-summary")

	// Edit the demographics: a mobile number, an e-mail, the language.
	w.nav("demographics tab", chromedp.Click(css(`nav.tabs a[href$="/demographics"]`)))
	w.run("demographics", chromedp.WaitVisible(css("#d-family")))
	if v := w.value("#d-family"); v != "Reinger" {
		t.Errorf("demographics form: family %q", v)
	}
	w.run("edit demographics", chromedp.SendKeys(css("#d-mobile"), "617-555-0123"), chromedp.SendKeys(css("#d-email"), "bill.reinger@example.org"),
		chromedp.SetValue(css("#d-lang"), "es"))
	w.nav("save demographics", chromedp.Submit(css("#d-mobile")))
	w.run("saved", chromedp.WaitVisible(css(".flash")))
	w.expect("demographics saved", ".flash", "Demographics saved")
	if m, l := w.value("#d-mobile"), w.value("#d-lang"); m != "617-555-0123" || l != "es" {
		t.Errorf("after saving: mobile %q, language %q", m, l)
	}
	w.shot("21-demographics")

	// Record vitals; the BMI preview and the stored BMI.
	w.nav("vitals tab", chromedp.Click(css(`nav.tabs a[href$="/vitals"]`)))
	w.run("vitals", chromedp.WaitVisible(css("#flow-h")))
	w.run("vitals form", chromedp.Click(css("#vitals-entry summary")), chromedp.WaitVisible(css("#v-sys")),
		chromedp.SendKeys(css("#v-sys"), "128"), chromedp.SendKeys(css("#v-dia"), "82"), chromedp.SendKeys(css("#v-hr"), "72"),
		chromedp.SendKeys(css("#v-rr"), "16"), chromedp.SendKeys(css("#v-temp"), "37.1"), chromedp.SendKeys(css("#v-spo2"), "98"),
		chromedp.SendKeys(css("#v-height"), "180"), chromedp.SendKeys(css("#v-weight"), "82"))
	w.expect("bmi preview", "#v-bmi", "25.3 kg/m²")
	w.shot("05-vitals-entry")
	w.nav("save vitals", chromedp.Submit(css("#v-sys")))
	w.run("saved", chromedp.WaitVisible(css(".flash")))
	w.expect("vitals saved", ".flash", "Vital signs saved.")
	w.expect("flowsheet", "table.flowsheet", "128/82", "72", "16", "37.1", "98", "180", "82", "25.3")
	w.expect("charts", "#main", "Trends", "Blood pressure (mmHg)")
	w.shot("06-vitals-flowsheet")

	// Add a problem, then resolve it.
	w.nav("problems tab", chromedp.Click(css(`nav.tabs a[href$="/problems"]`)))
	w.run("problems", chromedp.WaitVisible(css("#active-h")),
		chromedp.Click(css("details.entry summary")), chromedp.WaitVisible(css("#p-code")),
		chromedp.SendKeys(css("#p-code"), "e11.9"), chromedp.SendKeys(css("#p-text"), "Type 2 diabetes mellitus without complications"),
		chromedp.SendKeys(css("#p-onset"), "03142021"))
	w.nav("save problem", chromedp.Submit(css("#p-code")))
	w.run("saved", chromedp.WaitVisible(css(".flash")))
	w.expect("problem added", "#main", "Problem added", "Type 2 diabetes mellitus without complications", "ICD-10-CM E11.9")
	w.shot("07-problems")
	w.nav("resolve", chromedp.Click(css(`button[aria-label="Resolve Type 2 diabetes mellitus without complications"]`)))
	w.run("resolved", chromedp.WaitVisible(css(".flash")))
	w.expect("problem resolved", ".flash", "Problem marked resolved")
	w.expect("resolved list", "#inactive-h", "Resolved and inactive")

	// Record an allergy: the banner shows it at once.
	w.nav("allergies tab", chromedp.Click(css(`nav.tabs a[href$="/allergies"]`)))
	w.run("allergies", chromedp.WaitVisible(css("details.entry")),
		chromedp.Click(css("details.entry summary")), chromedp.WaitVisible(css("#a-substance")),
		chromedp.SendKeys(css("#a-substance"), "Penicillin V"), chromedp.SendKeys(css("#a-reaction"), "Hives"),
		chromedp.SetValue(css("#a-severity"), "moderate"), chromedp.SetValue(css("#a-crit"), "high"))
	w.nav("save allergy", chromedp.Submit(css("#a-substance")))
	w.run("saved", chromedp.WaitVisible(css(".flash")))
	w.expect("allergy recorded", ".flash", "Allergy recorded")
	w.expect("banner allergy", ".b-allergies", "Penicillin V", "Hives", "high risk")
	w.expect("allergy table", "table.list", "Penicillin V", "Hives", "moderate", "medication")
	w.shot("08-allergies")

	// Record a flu shot given here.
	w.nav("immunizations tab", chromedp.Click(css(`nav.tabs a[href$="/immunizations"]`)))
	w.run("immunizations", chromedp.WaitVisible(css("#imm-h")), chromedp.Click(css("#new-imm summary")), chromedp.WaitVisible(css("#i-vaccine")),
		chromedp.SetValue(css("#i-vaccine"), "150"), chromedp.SendKeys(css("#i-lot"), "FL2025-118"),
		chromedp.SetValue(css("#i-site"), "LD"), chromedp.SetValue(css("#i-route"), "IM"))
	w.nav("record immunization", chromedp.Submit(css("#i-lot")))
	w.run("saved", chromedp.WaitVisible(css(".flash")))
	w.expect("immunization recorded", ".flash", "Immunization recorded")
	w.expect("immunization list", "table.immunizations", "Influenza, injectable, quadrivalent, preservative free", "150", "FL2025-118",
		"Left deltoid · Injection, intramuscular", "Given here")
	w.shot("22-immunizations")

	// Prescribe amoxicillin: the penicillin allergy stops it until the
	// warning is acknowledged with a reason.
	w.nav("medications tab", chromedp.Click(css(`nav.tabs a[href$="/medications"]`)))
	w.run("medications", chromedp.WaitVisible(css("#active-h")))
	w.expect("medications", "#main", "Loratadine 5 MG Chewable Tablet")
	w.run("prescribe form", chromedp.Click(css("#prescribe summary")), chromedp.WaitVisible(css("#m-text")),
		chromedp.SendKeys(css("#m-text"), "Amoxicillin 500 MG Oral Capsule"), chromedp.SendKeys(css("#m-rxcui"), "308182"),
		chromedp.SendKeys(css("#m-dose"), "500"), chromedp.SetValue(css("#m-dose-unit"), "mg"), chromedp.SetValue(css("#m-freq"), "TID"),
		chromedp.SendKeys(css("#m-qty"), "30"), chromedp.SetValue(css("#m-qty-unit"), "capsule"), chromedp.SendKeys(css("#m-days"), "10"),
		chromedp.SendKeys(css("#m-pharmacy-text"), "Main Street Pharmacy"))
	w.nav("check", chromedp.Submit(css("#m-text")))
	w.run("warning", chromedp.WaitVisible(css(".warnings")))
	w.expect("allergy warning", ".warnings", "1 warning for this prescription", "Penicillin V (Hives)", "amoxicillin is one of the penicillins")
	w.shot("13-prescribe-warning")
	w.run("acknowledge", chromedp.Click(css("#m-override")), chromedp.SendKeys(css("#m-reason"), "Tolerated amoxicillin in 2022"))
	w.nav("prescribe", chromedp.Submit(css("#m-reason")))
	w.run("saved", chromedp.WaitVisible(css(".flash")))
	w.expect("prescribed", ".flash", "Prescription saved")
	w.expect("medication list", "table.meds", "Amoxicillin 500 MG Oral Capsule", "RxNorm 308182", "500 mg oral three times daily", "30 capsule",
		"Main Street Pharmacy", "1 warning overridden")
	w.shot("14-medications")

	// Write a SOAP note: save a draft, sign it, add an addendum.
	w.nav("notes tab", chromedp.Click(css(`nav.tabs a[href$="/notes"]`)))
	w.run("notes", chromedp.WaitVisible(css("#notes-h")), chromedp.Click(css("#new-note summary")), chromedp.WaitVisible(css("#n-s0")),
		chromedp.SendKeys(css("#n-title"), "Follow-up: penicillin allergy"),
		chromedp.SendKeys(css("#n-s0"), "Hives after penicillin V last week, resolved."),
		chromedp.SendKeys(css("#n-s1"), "BP 128/82, HR 72. Skin clear."))
	w.nav("save draft", chromedp.Click(css(`button[value="draft"]`)))
	w.run("draft", chromedp.WaitVisible(css(".flash")))
	w.expect("draft saved", "#main", "Draft saved", "Draft", "Follow-up: penicillin allergy")
	w.run("finish note", chromedp.SendKeys(css("#n-s2"), "Penicillin allergy (hives)."),
		chromedp.SendKeys(css("#n-s3"), "Allergy recorded; amoxicillin prescribed after review."))
	w.shot("15-note-draft")
	w.nav("sign", chromedp.Click(css(`button[value="sign"]`)))
	w.run("signed", chromedp.WaitVisible(css(".note-text")))
	w.expect("note signed", ".flash", "Note signed")
	w.expect("signed note", "#main", "Signed by", "Subjective:", "Hives after penicillin V last week", "Plan:", "amoxicillin prescribed after review")
	w.run("addendum", chromedp.Click(css("details.entry summary")), chromedp.WaitVisible(css("#n-addendum")),
		chromedp.SendKeys(css("#n-addendum"), "Patient reports the rash was mild."))
	w.nav("sign addendum", chromedp.Submit(css("#n-addendum")))
	w.run("addendum signed", chromedp.WaitVisible(css(".addendum-text")))
	w.expect("addendum", "#main", "Addendum signed", "Addenda (1)", "Patient reports the rash was mild.")
	w.shot("16-note-signed")

	// Order a lab test.
	w.nav("orders tab", chromedp.Click(css(`nav.tabs a[href$="/orders"]`)))
	w.run("orders", chromedp.WaitVisible(css("#open-h")), chromedp.Click(css("#new-order summary")), chromedp.WaitVisible(css("#o-catalog")),
		chromedp.SetValue(css("#o-catalog"), "a1c"), chromedp.SendKeys(css("#o-reason"), "Screening, BMI 25.3"))
	w.nav("sign order", chromedp.Click(css(`#new-order button[value="sign"]`)))
	w.run("ordered", chromedp.WaitVisible(css(".flash")))
	w.expect("order", ".flash", "Order signed and sent")
	w.expect("open orders", "table.orders", "Hemoglobin A1c", "LOINC 4548-4", "Lab", "routine", "Sent", "Screening, BMI 25.3")
	w.shot("17-orders")

	// Upload a PDF.
	pdf := filepath.Join(t.TempDir(), "outside-records.pdf")
	if err := os.WriteFile(pdf, galleryPDF, 0o644); err != nil {
		t.Fatal(err)
	}
	w.nav("documents tab", chromedp.Click(css(`nav.tabs a[href$="/documents"]`)))
	w.run("documents", chromedp.WaitVisible(css("#docs-h")), chromedp.Click(css("#upload summary")), chromedp.WaitVisible(css("#d-file")),
		chromedp.SetValue(css("#d-kind"), "outside"), chromedp.SetUploadFiles(css("#d-file"), []string{pdf}))
	w.nav("upload", chromedp.Submit(css("#d-file")))
	w.run("uploaded", chromedp.WaitVisible(css(".flash")))
	w.expect("document uploaded", ".flash", "Document uploaded")
	w.expect("document list", "table.documents", "outside-records.pdf", "application/pdf", "Outside records")
	w.shot("23-documents")

	// Book a follow-up from the summary, for tomorrow at 10:00.
	tomorrow := time.Now().AddDate(0, 0, 1).Format("2006-01-02")
	w.nav("summary tab", chromedp.Click(css(`nav.tabs a:first-child`)))
	w.run("summary", chromedp.WaitVisible(css("#appt-h")))
	w.nav("book link", chromedp.Click(css("#appt-h a.h-action")))
	w.run("schedule", chromedp.WaitVisible(css("#b-patient")))
	w.expect("booking form", "#book", "Book an appointment with", "Reinger")
	w.run("booking", chromedp.SetValue(css("#b-date"), tomorrow), chromedp.SetValue(css("#b-time"), "10:00"),
		chromedp.SetValue(css("#b-min"), "30"), chromedp.SendKeys(css("#b-desc"), "Follow-up: allergy and HbA1c"))
	w.nav("book", chromedp.Submit(css("#b-desc")))
	w.run("booked", chromedp.WaitVisible(css(".flash")))
	w.expect("booked", ".flash", "Appointment booked")
	w.expect("day view", "table.day", "10:00–10:30", "Reinger, Bill", "Follow-up: allergy and HbA1c", "Booked")
	w.shot("18-schedule-day")
	// The same time again is refused.
	w.run("double booking", chromedp.Click(css("#book summary")), chromedp.WaitVisible(css("#b-patient")),
		chromedp.SetValue(css("#b-patient"), e.patient("Reinger")), chromedp.SetValue(css("#b-date"), tomorrow),
		chromedp.SetValue(css("#b-time"), "10:15"), chromedp.SendKeys(css("#b-desc"), "Second booking"))
	w.nav("book again", chromedp.Submit(css("#b-desc")))
	w.run("refused", chromedp.WaitVisible(css(".form-error")))
	w.expect("double booking refused", ".form-error", "already booked from 10:00 to 10:30")
	w.nav("week view", chromedp.Click(css(`.cal-nav a:last-child`)))
	w.run("week", chromedp.WaitVisible(css(".week")))
	w.expect("week view", ".week", "Follow-up: allergy and HbA1c")
	w.shot("19-schedule-week")
	w.nav("back to the chart", chromedp.Click(css(`.week a[href^="/app/patients/"]`)))
	w.run("chart again", chromedp.WaitVisible(css(".banner")))

	// Visits.
	w.nav("visits tab", chromedp.Click(css(`nav.tabs a[href$="/visits"]`)))
	w.run("visits", chromedp.WaitVisible(css("ol.timeline")))
	w.expect("visits", "#main", "12 visits, newest first", "Outpatient")
	w.shot("09-visits")

	// Home lists the patient among the recent ones.
	w.nav("home link", chromedp.Click(css(`.mainnav a[href="/app/"]`)))
	w.run("home", chromedp.WaitVisible(css("#recent-h")))
	w.expect("recent", "#main", "Reinger")
	w.shot("10-home")

	// The chart on a tablet, portrait.
	w.run("tablet", chromedp.EmulateViewport(820, 1180), chromedp.Navigate(base+"/app/patients/"+e.patient("Reinger")),
		chromedp.WaitVisible(css(".banner")))
	w.shot("11-summary-tablet")

	// Sign out.
	w.run("laptop", chromedp.EmulateViewport(1366, 900))
	w.nav("sign out", chromedp.Click(css("#logout-form button")))
	w.run("signed out", chromedp.WaitVisible(css("#username")))
	w.expect("signed out", ".notice", "You have signed out")

	// Test 27 (45 CFR 170.315(d)(7)): after sign-out the browser keeps
	// no patient data: nothing in localStorage, sessionStorage, Cache
	// Storage or IndexedDB names the patient, and the chart is not
	// shown again from the browser's cache.
	residue, err := chromedp.Run(w.ctx, chromedp.Evaluate[string](`(async () => {
		const out = {local: Object.assign({}, localStorage), session: Object.assign({}, sessionStorage), caches: [], idb: []};
		if (self.caches) { out.caches = await caches.keys(); }
		if (indexedDB.databases) { out.idb = (await indexedDB.databases()).map(d => d.name); }
		return JSON.stringify(out);
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("reading the browser's storage: %v", err)
	}
	phi := []string{"Reinger", "Bill", e.patient("Reinger"), "Penicillin", "amoxicillin", "HbA1c"}
	found := 0
	for _, s := range phi {
		if strings.Contains(strings.ToLower(residue), strings.ToLower(s)) {
			found++
			t.Errorf("after sign-out the browser's storage holds %q: %s", s, residue)
		}
	}
	t.Logf("test 27: patient data left in browser storage after sign-out: %d / %d strings (storage: %s)", found, len(phi), residue)
	w.nav("the chart after sign-out", chromedp.Navigate(base+"/app/patients/"+e.patient("Reinger")))
	w.run("sent to sign in", chromedp.WaitVisible(css("#username")))
	if got := w.text("body"); strings.Contains(got, "Reinger") {
		t.Errorf("after sign-out the chart is shown: %q", got)
	}
}

// TestBrowserIdleLogoff: the warning shows before the idle limit, "Stay
// signed in" keeps the session, and without activity the page signs out.
func TestBrowserIdleLogoff(t *testing.T) {
	chromium(t)
	e := newEnv(t)
	e.app.opts.IdleTimeout = 40 * time.Second // warn at 10 s, sign out at 10 s of idleness
	w := &walker{t: t, ctx: browser(t, 1366, 900), dir: screenshotDir(t)}
	w.run("sign in", chromedp.Navigate(e.srv.URL+"/app/login"), chromedp.WaitVisible(css("#username")),
		chromedp.SendKeys(css("#username"), testUser), chromedp.SendKeys(css("#password"), testPassword),
		chromedp.Submit(css("#password")), chromedp.WaitVisible(css("#code")),
		chromedp.SendKeys(css("#code"), e.totp(0)), chromedp.Submit(css("#code")), chromedp.WaitVisible(css("#recent-h")))
	w.run("warning", chromedp.WaitVisible(css("#idle-warning")))
	w.expect("warning", "#idle-warning", "Are you still there?", "signed out in")
	w.shot("12-idle-warning")
	w.run("stay", chromedp.Click(css("#idle-stay")), chromedp.WaitNotVisible(css("#idle-warning")))
	start := time.Now()
	w.run("signed out", chromedp.WaitVisible(css("#username")))
	w.expect("signed out", ".notice", "signed out after")
	if d := time.Since(start); d < 5*time.Second {
		t.Errorf("signed out %v after choosing to stay, want about 10 s", d)
	}
}
