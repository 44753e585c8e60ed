package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/rest"
)

// The gallery: every screen of the app drawn with fixture data, as HTML
// files and, with chromium, PNG screenshots, for review. `hale gallery
// --out DIR` and the tests (TestGalleryPages, cmd/hale TestGalleryCommand) run
// Gallery.

// GalleryOptions configure Gallery.
type GalleryOptions struct {
	// Store is a throwaway store (it gets users, sessions and fixtures);
	// it must keep records (hale.Records), as the SQLite engine does.
	Store hale.Store
	// Bundles are FHIR transaction Bundles loaded first: the demo
	// patients (demo.Bundles). The screens show the patient named Kihn
	// when there is one, else the first patient.
	Bundles [][]byte
	// Dir receives NN-screen.html, static/ and, with Chromium,
	// NN-screen.png.
	Dir string
	// Chromium is the browser that draws the PNGs (FindChromium); ""
	// writes the HTML only.
	Chromium string
	// Width and Height are the browser window (default 1366×900); a PNG
	// is as tall as its page.
	Width, Height int
	Log           *slog.Logger
}

// FindChromium returns the path of a Chromium (or Chrome) to draw
// screenshots with: $HALE_CHROMIUM when set (and then only it), else
// the usual Debian and Chrome paths, else "chromium" on the PATH.
func FindChromium(getenv func(string) string) (string, error) {
	if p := getenv("HALE_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("HALE_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium is not installed (Debian: apt-get install chromium; or set HALE_CHROMIUM to the browser's path)")
}

// Gallery draws every screen into opts.Dir and returns the files written
// (the PNGs with Chromium, else the HTML pages), in screen order.
func Gallery(ctx context.Context, opts GalleryOptions) ([]string, error) {
	if opts.Store == nil || opts.Dir == "" {
		return nil, errors.New("gallery: Store and Dir are required")
	}
	recs, ok := opts.Store.(hale.Records)
	if !ok {
		return nil, errors.New("gallery: the store keeps no records (users and sessions)")
	}
	if opts.Width == 0 {
		opts.Width, opts.Height = 1366, 900
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "static"), 0o755); err != nil {
		return nil, err
	}
	g := &gallery{ctx: ctx, dir: dir, log: opts.Log}
	if err := g.setUp(opts.Store, recs, opts.Bundles); err != nil {
		return nil, err
	}
	defer g.srv.Close()
	g.screens()
	if g.err != nil {
		return nil, g.err
	}
	err = fs.WalkDir(staticFiles, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFiles.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), b, 0o644)
	})
	if err != nil || opts.Chromium == "" {
		return g.pages, err
	}
	// Two browsers at a time: each is mostly waiting for itself.
	pngs := make([]string, len(g.pages))
	errs := make([]error, len(g.pages))
	work := make(chan int)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				p := g.pages[i]
				pngs[i] = strings.TrimSuffix(p, ".html") + ".png"
				if err := screenshot(ctx, opts.Chromium, p, pngs[i], opts.Width, opts.Height); err != nil {
					errs[i] = fmt.Errorf("gallery: %s: %w", filepath.Base(p), err)
				}
			}
		}()
	}
	for i := range g.pages {
		work <- i
	}
	close(work)
	wg.Wait()
	return pngs, errors.Join(errs...)
}

// gallery is one run: Hale in-process on a loopback port, signed in as a
// physician (and a front-desk clerk for registration).
type gallery struct {
	ctx     context.Context
	dir     string
	log     *slog.Logger
	app     *App
	loader  *rest.Service // set-up only: no access control
	srv     *http.Server
	base    string
	doc     *http.Client
	desk    *http.Client
	docCode func() string // the physician's one-time code now
	prac    string
	patient string
	pages   []string
	err     error
}

const galleryPassword = "gallery password, not a secret"

func (g *gallery) setUp(store hale.Store, recs hale.Records, bundles [][]byte) error {
	ctx := g.ctx
	g.loader = rest.NewService(store)
	g.loader.Log = g.log
	for i, b := range bundles {
		if _, err := g.loader.Do(ctx, &rest.Request{Method: "POST", Body: b, Return: rest.ReturnMinimal}); err != nil {
			return fmt.Errorf("gallery: bundle %d: %w", i+1, err)
		}
	}
	var orgs, pracs, pats []string
	err := store.View(ctx, func(r hale.Reader) (err error) {
		if orgs, err = r.Find(ctx, "Organization", nil, 0); err != nil {
			return err
		}
		if pracs, err = r.Find(ctx, "Practitioner", nil, 1); err != nil {
			return err
		}
		pats, err = r.Find(ctx, "Patient", nil, 1)
		return err
	})
	if err != nil {
		return err
	}
	if len(pracs) == 0 || len(pats) == 0 {
		return errors.New("gallery: the fixtures have no Practitioner or no Patient")
	}
	g.prac, g.patient = "Practitioner/"+pracs[0], pats[0]
	if b, err := g.search("Patient", url.Values{"family": {"Kihn"}}); err == nil && len(b.Matches) > 0 {
		g.patient = str(b.Matches[0], "id")
	}
	svc := rest.NewService(store)
	svc.Log = g.log
	pol := access.NewPolicy()
	pol.Params = svc.Params
	svc.Access = pol.Access
	key := make([]byte, 32)
	rand.Read(key)
	as, err := auth.New(ctx, auth.Options{Records: recs, SecretKey: key, Issuer: "http://hale.gallery/auth", Audience: "http://hale.gallery/fhir",
		Argon2: auth.Argon2Params{Memory: 256, Time: 1, Threads: 1}, RatePerMinute: 100000, Burst: 10000})
	if err != nil {
		return err
	}
	created, err := as.AddUser(ctx, auth.NewUser{Username: "dr.house", Password: galleryPassword, Role: hale.RolePhysician, FHIRUser: g.prac, Organizations: orgs})
	if err != nil {
		return err
	}
	u, err := url.Parse(created.ProvisioningURI)
	if err != nil {
		return err
	}
	secret := u.Query().Get("secret")
	g.docCode = func() string { c, _ := auth.TOTPCode(secret, time.Now()); return c }
	if _, err := as.AddUser(ctx, auth.NewUser{Username: "front.desk", Password: galleryPassword, Role: hale.RoleFrontDesk, Organizations: orgs}); err != nil {
		return err
	}
	if g.app, err = New(Options{FHIR: svc, Auth: as, Log: g.log}); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/app/", g.app)
	mux.Handle("/app", g.app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	g.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go g.srv.Serve(ln)
	g.base = "http://" + ln.Addr().String()
	g.doc, g.desk = newBrowserless(), newBrowserless()
	return nil
}

func newBrowserless() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 60 * time.Second}
}

// search runs a search without access control (set-up only).
func (g *gallery) search(typ string, q url.Values) (*bundle, error) {
	resp, err := g.loader.Do(g.ctx, &rest.Request{Method: "GET", Type: typ, Query: q, RawQuery: q.Encode()})
	if err != nil {
		return nil, err
	}
	b, err := body(resp)
	if err != nil {
		return nil, err
	}
	var raw struct {
		Entry []struct{ Resource map[string]any }
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := &bundle{}
	for _, e := range raw.Entry {
		out.Matches = append(out.Matches, e.Resource)
	}
	return out, nil
}

// fixture writes r without access control.
func (g *gallery) fixture(r map[string]any) map[string]any {
	if g.err != nil {
		return nil
	}
	b, _ := json.Marshal(r)
	typ, _ := r["resourceType"].(string)
	req := &rest.Request{Method: "POST", Type: typ, Body: b}
	if id, _ := r["id"].(string); id != "" {
		req.Method, req.ID = "PUT", id
	}
	resp, err := g.loader.Do(g.ctx, req)
	if err != nil {
		g.err = fmt.Errorf("gallery: fixture %s: %w", typ, err)
		return nil
	}
	var out map[string]any
	json.Unmarshal(resp.Body, &out)
	return out
}

// do sends a request as client c and returns the page.
func (g *gallery) do(c *http.Client, req *http.Request) string {
	if g.err != nil {
		return ""
	}
	resp, err := c.Do(req.WithContext(g.ctx))
	if err != nil {
		g.err = fmt.Errorf("gallery: %s %s: %w", req.Method, req.URL.Path, err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		g.err = fmt.Errorf("gallery: %s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	return string(b)
}

func (g *gallery) get(c *http.Client, path string) string {
	req, _ := http.NewRequest("GET", g.base+path, nil)
	return g.do(c, req)
}

func (g *gallery) post(c *http.Client, path string, form url.Values) string {
	req, _ := http.NewRequest("POST", g.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", g.base)
	return g.do(c, req)
}

// upload posts a file as the documents form does.
func (g *gallery) upload(c *http.Client, path, csrf, kind, name, contentType string, data []byte) string {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", csrf)
	mw.WriteField("kind", kind)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{`form-data; name="file"; filename="` + name + `"`}
	h["Content-Type"] = []string{contentType}
	w, _ := mw.CreatePart(h)
	w.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", g.base+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", g.base)
	return g.do(c, req)
}

var (
	galleryToken  = regexp.MustCompile(`name="token" value="([^"]+)"`)
	galleryTicket = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
	galleryCSRF   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	galleryAddend = regexp.MustCompile(`/notes/([A-Za-z0-9.-]+)/addenda`)
	galleryVer    = regexp.MustCompile(`name="version" value="(\d+)"`)
)

func first(re *regexp.Regexp, page string) string {
	if m := re.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}

// save writes a page under name, its asset URLs made relative.
func (g *gallery) save(name, page string) {
	if g.err != nil {
		return
	}
	if !strings.Contains(page, "</html>") {
		g.err = fmt.Errorf("gallery: %s: not a page", name)
		return
	}
	for file := range g.app.assets {
		page = strings.ReplaceAll(page, g.app.asset(file), "static/"+file)
	}
	p := filepath.Join(g.dir, name+".html")
	if err := os.WriteFile(p, []byte(page), 0o644); err != nil {
		g.err = err
		return
	}
	g.pages = append(g.pages, p)
}

// login signs c in as username and returns Home; save names the two
// sign-in screens to keep (the physician's).
func (g *gallery) login(c *http.Client, username string, save bool) string {
	page := g.get(c, "/app/login")
	if save {
		g.save("01-sign-in", page)
	}
	page = g.post(c, "/app/login", url.Values{"token": {first(galleryToken, page)}, "username": {username}, "password": {galleryPassword}})
	ticket := first(galleryTicket, page)
	if ticket == "" {
		return page // no second factor
	}
	if save {
		g.save("02-one-time-code", page)
	}
	return g.post(c, "/app/login", url.Values{"token": {first(galleryToken, page)}, "step": {"code"}, "ticket": {ticket}, "code": {g.docCode()}})
}

// screens walks the app and saves every screen.
func (g *gallery) screens() {
	id, now := g.patient, time.Now()
	ref := func(s string) map[string]any { return map[string]any{"reference": s} }
	lab := map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}}}
	g.fixture(map[string]any{"resourceType": "Flag", "status": "active", "code": map[string]any{"text": "Fall risk: assist when walking"}, "subject": ref("Patient/" + id)})
	g.fixture(map[string]any{"resourceType": "Observation", "status": "final", "category": []any{lab},
		"code":    map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium [Moles/volume] in Serum or Plasma"}}},
		"subject": ref("Patient/" + id), "effectiveDateTime": now.Add(-2 * time.Hour).UTC().Format(time.RFC3339),
		"valueQuantity":  map[string]any{"value": 6.6, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
		"referenceRange": []any{map[string]any{"low": map[string]any{"value": 3.5, "unit": "mmol/L"}, "high": map[string]any{"value": 5.1, "unit": "mmol/L"}}},
		"interpretation": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "HH"}}}}})
	g.fixture(map[string]any{"resourceType": "Appointment", "status": "booked", "description": "Follow-up: hypertension",
		"start": now.Add(time.Hour).UTC().Format(time.RFC3339), "end": now.Add(90 * time.Minute).UTC().Format(time.RFC3339), "participant": []any{
			map[string]any{"actor": ref("Patient/" + id), "status": "accepted"}, map[string]any{"actor": ref(g.prac), "status": "accepted"}}})
	g.fixture(map[string]any{"resourceType": "Task", "status": "requested", "intent": "order", "description": "Call the patient about the potassium result",
		"for": ref("Patient/" + id), "owner": ref(g.prac), "authoredOn": now.UTC().Format(time.RFC3339)})
	g.fixture(map[string]any{"resourceType": "Communication", "status": "completed", "subject": ref("Patient/" + id), "recipient": []any{ref(g.prac)},
		"sender": ref("Patient/" + id), "sent": now.Add(-time.Hour).UTC().Format(time.RFC3339),
		"payload": []any{map[string]any{"contentString": "Could I get a refill of my lisinopril before Friday?"}}})

	d := g.doc
	home := g.login(d, "dr.house", true)
	tok := first(galleryCSRF, home)
	g.save("03-search", g.get(d, "/app/patients"))
	g.save("04-search-results", g.get(d, "/app/patients?name=Kihn"))
	chart := "/app/patients/" + id
	for _, s := range []struct{ name, path string }{
		{"05-summary", ""}, {"06-vitals", "/vitals"}, {"08-problems", "/problems"}, {"10-allergies", "/allergies"}, {"12-visits", "/visits"},
	} {
		g.save(s.name, g.get(d, chart+s.path))
	}
	g.save("07-vitals-errors", g.post(d, chart+"/vitals", url.Values{"csrf": {tok}, "systolic": {"80"}, "diastolic": {"120"}, "hr": {"abc"}, "taken": {"2024-01-01T10:00"}}))
	g.save("09-problems-errors", g.post(d, chart+"/problems", url.Values{"csrf": {tok}, "system": {"icd10"}, "code": {"12345"}}))
	g.save("11-allergies-errors", g.post(d, chart+"/allergies", url.Values{"csrf": {tok}, "type": {"allergy"}, "category": {"food"}, "criticality": {"low"}}))
	g.save("13-home", g.get(d, "/app/"))
	g.save("14-not-found", g.get(d, "/app/patients/no-such-patient"))
	g.post(d, chart+"/allergies", url.Values{"csrf": {tok}, "substance": {"Penicillin"}, "type": {"allergy"}, "category": {"medication"},
		"criticality": {"high"}, "reaction": {"Anaphylaxis"}})
	rx := func(text string, kv ...string) url.Values {
		f := url.Values{"csrf": {tok}, "text": {text}, "dose": {"1"}, "dose_unit": {"tablet"}, "route": {"26643006"}, "frequency": {"QD"},
			"quantity": {"30"}, "quantity_unit": {"tablet"}, "refills": {"2"}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	g.post(d, chart+"/medications", rx("Sertraline 50 MG Oral Tablet", "rxcui", "312941", "dose", "50", "dose_unit", "mg"))
	g.save("15-medications", g.get(d, chart+"/medications"))
	g.save("16-prescribe-interaction", g.post(d, chart+"/medications", rx("Phenelzine 15 MG Oral Tablet", "dose", "15", "dose_unit", "mg")))
	g.save("17-prescribe-errors", g.post(d, chart+"/medications", rx("Amoxicillin 500 MG Oral Capsule", "dose", "500", "dose_unit", "mg", "frequency", "TID", "refills", "x")))
	g.save("18-notes", g.get(d, chart+"/notes?template=progress"))
	g.save("19-note-draft", g.post(d, chart+"/notes", url.Values{"csrf": {tok}, "template": {"soap"}, "action": {"draft"}, "title": {"Annual review"},
		"s0": {"Feels well. No chest pain."}, "s1": {"BP 142/91."}}))
	page := g.post(d, chart+"/notes", url.Values{"csrf": {tok}, "template": {"soap"}, "action": {"sign"}, "title": {"Hypertension follow-up"},
		"s0": {"Home readings 135-145/85-95."}, "s1": {"BP 142/91, HR 70."}, "s2": {"Hypertension, not at goal."}, "s3": {"Start lisinopril 10 mg daily; recheck in 4 weeks."}})
	if nid := first(galleryAddend, page); nid != "" {
		page = g.post(d, chart+"/notes/"+nid+"/addenda", url.Values{"csrf": {tok}, "text": {"Potassium 4.2 on the same day."}})
	}
	g.save("20-note-signed", page)
	g.save("21-notes-list", g.get(d, chart+"/notes"))
	for _, o := range []url.Values{
		{"catalog": {"lipid"}, "priority": {"routine"}, "reason": {"Hypertension"}, "action": {"sign"}},
		{"catalog": {"cxr"}, "priority": {"stat"}, "reason": {"Cough, fever"}, "action": {"sign"}},
		{"catalog": {"other"}, "category": {"lab"}, "system": {"loinc"}, "code": {"2160-0"}, "text": {"Creatinine"}, "priority": {"routine"}, "action": {"draft"}},
	} {
		o.Set("csrf", tok)
		g.post(d, chart+"/orders", o)
	}
	g.save("22-orders", g.get(d, chart+"/orders"))
	g.save("23-orders-errors", g.post(d, chart+"/orders", url.Values{"csrf": {tok}, "catalog": {"other"}, "system": {"loinc"}, "code": {"12"}, "priority": {"routine"}}))
	day := now.AddDate(0, 0, 1).Format(dateFmt)
	book := func(at, minutes, what string) url.Values {
		return url.Values{"csrf": {tok}, "practitioner": {g.prac}, "patient": {id}, "date": {day}, "time": {at}, "minutes": {minutes}, "description": {what}, "view": {"day"}}
	}
	for _, b := range []struct{ at, min, what string }{{"09:00", "30", "Annual physical"}, {"09:30", "15", "Blood pressure check"}, {"11:00", "60", "New patient visit"}} {
		g.post(d, "/app/schedule/appointments", book(b.at, b.min, b.what))
	}
	g.save("24-schedule-day", g.get(d, "/app/schedule?date="+day))
	g.save("25-schedule-double-booking", g.post(d, "/app/schedule/appointments", book("09:10", "20", "Double booking")))
	g.save("26-schedule-week", g.get(d, "/app/schedule?view=week&date="+day))

	f := g.desk
	ftok := first(galleryCSRF, g.login(f, "front.desk", false))
	g.save("27-register", g.get(f, "/app/patients/new"))
	reg := url.Values{"csrf": {ftok}, "family": {"Kihn"}, "given": {"Rufus"}, "birthdate": {"1976-09-16"}, "gender": {"male"}, "language": {"en"},
		"phone": {"617-555-0142"}}
	g.save("28-register-duplicate", g.post(f, "/app/patients/new", reg))

	// Demographics: the form, a concurrent change, bad values.
	g.save("29-demographics", g.get(d, chart+"/demographics"))
	form := g.demographicsForm(d, id)
	form.Set("email", "rufus.kihn@example.org")
	form.Set("family", "Kihn-Baker")
	if p := g.fixtureRead("Patient", id); p != nil {
		p["telecom"] = append(list(p, "telecom"), map[string]any{"system": "phone", "value": "617-555-0177", "use": "mobile"})
		p["name"].([]any)[0].(map[string]any)["family"] = "Kihn-Becker"
		g.fixture(p)
	}
	g.save("30-demographics-conflict", g.post(d, chart+"/demographics", form))
	bad := g.demographicsForm(d, id)
	bad.Set("birthdate", "2999-01-01")
	bad.Set("zip", "ABCDE")
	bad.Set("email", "not an address")
	g.save("31-demographics-errors", g.post(d, chart+"/demographics", bad))

	// Immunizations, procedures, family and social history.
	g.post(d, chart+"/immunizations", url.Values{"csrf": {tok}, "given": {"here"}, "vaccine": {"150"}, "date": {now.Format(dateFmt)},
		"lot": {"FL2025-118"}, "site": {"LD"}, "route": {"IM"}})
	g.post(d, chart+"/immunizations", url.Values{"csrf": {tok}, "given": {"not-done"}, "vaccine": {"187"}, "date": {now.Format(dateFmt)}, "reason": {"PATOBJ"}})
	g.save("32-immunizations", g.get(d, chart+"/immunizations"))
	g.save("33-immunizations-errors", g.post(d, chart+"/immunizations", url.Values{"csrf": {tok}, "given": {"not-done"}, "vaccine": {"other"},
		"other_code": {"1234"}, "date": {"2999-01-01"}}))
	g.post(d, chart+"/procedures", url.Values{"csrf": {tok}, "catalog": {"appendectomy"}, "date": {"1994-07"}, "status": {"completed"}, "category": {"387713003"}})
	g.post(d, chart+"/procedures", url.Values{"csrf": {tok}, "catalog": {"colonoscopy"}, "status": {"not-done"}, "reason": {"Patient declined"}, "category": {"103693007"}})
	g.save("34-procedures", g.get(d, chart+"/procedures"))
	g.save("35-procedures-errors", g.post(d, chart+"/procedures", url.Values{"csrf": {tok}, "catalog": {"other"}, "code": {"123"}, "date": {"06/1994"},
		"status": {"completed"}}))
	for _, fh := range []url.Values{
		{"relationship": {"MTH"}, "text": {"Type 2 diabetes mellitus"}, "system": {"snomed"}, "code": {"44054006"}, "onset": {"52"}},
		{"relationship": {"FTH"}, "text": {"Myocardial infarction"}, "system": {"icd10"}, "code": {"I21.9"}, "onset": {"61"}, "death": {"yes"}},
		{"relationship": {"SIS"}, "text": {"Asthma"}, "system": {"snomed"}, "onset": {"9"}},
	} {
		fh.Set("csrf", tok)
		g.post(d, chart+"/history", fh)
	}
	g.post(d, chart+"/smoking", url.Values{"csrf": {tok}, "status": {"8517006"}, "back": {"history"}})
	g.save("36-family-social-history", g.get(d, chart+"/history"))
	g.save("37-family-history-errors", g.post(d, chart+"/history", url.Values{"csrf": {tok}, "relationship": {""}, "text": {""}, "onset": {"200"}}))

	// Documents and consents: two uploads, a consent signed, another
	// signed and revoked.
	docs := chart + "/documents"
	g.upload(d, docs, tok, "outside", "discharge-summary-2024.pdf", "application/pdf", galleryPDF)
	g.upload(d, docs, tok, "imaging", "knee-xray.png", "image/png", galleryPNG())
	g.post(d, chart+"/consents", url.Values{"csrf": {tok}, "scope": {"treatment"}, "agree": {"yes"}, "name": {"Rufus Kihn"}})
	page = g.post(d, chart+"/consents", url.Values{"csrf": {tok}, "scope": {"patient-privacy"}, "agree": {"yes"}, "name": {"Rufus Kihn"}})
	if m := regexp.MustCompile(`/consents/([A-Za-z0-9.-]+)/revoke"><input type="hidden" name="csrf" value="[^"]+"><input type="hidden" name="version" value="(\d+)"`).FindStringSubmatch(page); m != nil {
		g.post(d, chart+"/consents/"+m[1]+"/revoke", url.Values{"csrf": {tok}, "version": {m[2]}})
	}
	g.save("38-documents", g.get(d, docs))
	g.save("39-documents-errors", g.upload(d, docs, tok, "outside", "notes.pdf", "application/pdf", []byte("<html><script>alert(1)</script></html>")))
	g.save("40-labs", g.get(d, chart+"/labs?code=2823-3"))
}

// demographicsForm is the demographics form of patient id as the page
// fills it.
func (g *gallery) demographicsForm(c *http.Client, id string) url.Values {
	page := g.get(c, "/app/patients/"+id+"/demographics")
	f := url.Values{"csrf": {first(galleryCSRF, page)}, "version": {first(galleryVer, page)}}
	for _, m := range regexp.MustCompile(`<input id="d-[a-z]+" name="([a-z_]+)"(?: type="[a-z]+")? value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		f.Set(m[1], htmlText(m[2]))
	}
	for _, m := range regexp.MustCompile(`name="race" value="([^"]+)" checked`).FindAllStringSubmatch(page, -1) {
		f.Add("race", m[1])
	}
	for _, sel := range []string{"gender", "language", "ethnicity"} {
		if m := regexp.MustCompile(`name="` + sel + `">(?:[^<]|<option[^>]*>[^<]*</option>)*?<option value="([^"]*)" selected`).FindStringSubmatch(page); m != nil {
			f.Set(sel, m[1])
		}
	}
	return f
}

// htmlText undoes html/template's escaping of an attribute value.
func htmlText(s string) string {
	return strings.NewReplacer("&#39;", "'", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&quot;", `"`, "&#43;", "+").Replace(s)
}

// fixtureRead reads typ/id without access control.
func (g *gallery) fixtureRead(typ, id string) map[string]any {
	if g.err != nil {
		return nil
	}
	resp, err := g.loader.Do(g.ctx, &rest.Request{Method: "GET", Type: typ, ID: id})
	if err != nil {
		g.err = err
		return nil
	}
	var out map[string]any
	json.Unmarshal(resp.Body, &out)
	return out
}

// galleryPDF is a one-page PDF with a line of text.
var galleryPDF = []byte("%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
	"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj\n" +
	"4 0 obj<</Length 58>>stream\nBT /F1 18 Tf 72 720 Td (Discharge summary, synthetic) Tj ET\nendstream endobj\n" +
	"5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")

// galleryPNG is a small grey image.
func galleryPNG() []byte {
	img := image.NewGray(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = uint8(60 + i%120)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// screenshot draws the page file into out with chromium in a window
// width wide and tall enough for most pages, then crops the empty
// background below the page (so the PNG is as tall as the page, and at
// least height).
func screenshot(ctx context.Context, chromium, page, out string, width, height int) error {
	profile, err := os.MkdirTemp("", "hale-gallery-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)
	const tall = 6000
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--no-first-run", "--hide-scrollbars", "--user-data-dir="+profile,
		fmt.Sprintf("--window-size=%d,%d", width, tall), "--screenshot="+out, "file://"+page)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("chromium: %w: %s", err, lastLine(b))
	}
	f, err := os.Open(out)
	if err != nil {
		return fmt.Errorf("chromium wrote no screenshot: %w", err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("chromium's screenshot: %w", err)
	}
	b := img.Bounds()
	bg := img.At(b.Min.X, b.Max.Y-1)
	bottom := b.Max.Y
	for y := b.Max.Y - 1; y >= b.Min.Y; y-- {
		blank := true
		for x := b.Min.X; x < b.Max.X && blank; x++ {
			blank = sameColor(img.At(x, y), bg)
		}
		if !blank {
			break
		}
		bottom = y
	}
	bottom = min(b.Max.Y, max(bottom+16, b.Min.Y+height))
	sub, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	})
	if !ok {
		return nil
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, sub.SubImage(image.Rect(b.Min.X, b.Min.Y, b.Max.X, bottom))); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

func sameColor(a, b color.Color) bool {
	r1, g1, b1, a1 := a.RGBA()
	r2, g2, b2, a2 := b.RGBA()
	return r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
