package main

import (
	"crypto/ed25519"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/audit"
	"github.com/hale-ehr/hale/auth"
)

// expectEvent is what the audit trail must hold for one action: one
// AuditEvent with these values (agent is the Principal.Subject, address
// the source address the server saw, patient the Patient id it must
// name, "" when no patient applies; purpose a purposeOfUse code it must
// carry).
type expectEvent struct {
	typ, subtype, action, outcome string
	agent, address, patient       string
	purpose                       string
}

// auditedEvent is a stored AuditEvent, decoded.
type auditedEvent struct {
	ID, Recorded, Action, Outcome string
	Type                          struct{ System, Code string }
	Subtype                       []struct{ System, Code string }
	Agent                         []struct {
		AltID string `json:"altId"`
		Who   struct {
			Reference  string
			Identifier struct{ Value string }
		}
		Network      struct{ Address string }
		PurposeOfUse []struct{ Coding []struct{ Code string } }
	}
	Entity []struct {
		What struct {
			Reference  string
			Identifier struct{ Value string }
		}
		Role  struct{ Code string }
		Query string
	}
	raw string
}

func (e *auditedEvent) subtype() string {
	if len(e.Subtype) == 0 {
		return ""
	}
	return e.Subtype[0].Code
}

func (e *auditedEvent) names(patient string) bool {
	return slices.ContainsFunc(e.Entity, func(en struct {
		What struct {
			Reference  string
			Identifier struct{ Value string }
		}
		Role  struct{ Code string }
		Query string
	}) bool {
		return en.Role.Code == "1" && en.What.Reference == "Patient/"+patient
	})
}

func (e *auditedEvent) matches(x expectEvent) bool {
	if e.Type.Code != x.typ || e.subtype() != x.subtype || e.Action != x.action || e.Outcome != x.outcome || len(e.Agent) == 0 ||
		e.Agent[0].Who.Identifier.Value != x.agent || e.Agent[0].Network.Address != x.address {
		return false
	}
	if x.patient != "" && !e.names(x.patient) {
		return false
	}
	if x.purpose != "" && !slices.ContainsFunc(e.Agent[0].PurposeOfUse, func(p struct{ Coding []struct{ Code string } }) bool {
		return len(p.Coding) > 0 && p.Coding[0].Code == x.purpose
	}) {
		return false
	}
	return true
}

// TestAuditCompleteness500 is D21 of the security test list at full size,
// on both engines: 500 scripted actions of every kind the list names,
// through the HTTP server as `hale serve` builds it and the CLI on its
// data folder or database, by callers each connecting from their own
// address. Every action's AuditEvent(s) must be in the trail with who,
// when (UTC), from where, what, which patient and the outcome; then the
// (d)(3) report (AuditEvent searched for a period) must come back in the
// right order sorted by each element.
func TestAuditCompleteness500(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { testAuditCompleteness(t, engine) })
	}
}

func testAuditCompleteness(t *testing.T, engine string) {
	const N = 500
	n := startNode(t, engine)
	ctx := n.ctx
	start := time.Now().UTC().Truncate(time.Millisecond)
	time.Sleep(2 * time.Millisecond)

	var expected []expectEvent
	actions := map[string]int{} // by kind
	act := func(kind string, evs ...expectEvent) {
		actions[kind]++
		expected = append(expected, evs...)
	}
	total := func() int {
		s := 0
		for _, v := range actions {
			s += v
		}
		return s
	}
	const cli, cliAddr = "system/hale-cli", "local"
	rest := func(sub, action, outcome, agent, addr, patient string) expectEvent {
		return expectEvent{typ: "rest", subtype: sub, action: action, outcome: outcome, agent: agent, address: addr, patient: patient}
	}
	id := func(h map[string][]string, body []byte) string {
		loc := strings.TrimPrefix(strings.Join(h["Location"], ""), n.base+"/")
		parts := strings.Split(loc, "/")
		if len(parts) < 2 {
			t.Fatalf("no Location: %s", body)
		}
		return parts[1]
	}

	// The backend-services client creates the organizations and patients.
	sys := n.actor("127.0.0.2").backend()
	mustCreate := func(a *actor, typ, body, patient string) string {
		t.Helper()
		st, h, b := a.do("POST", "/fhir/"+typ, []byte(body))
		if st != 201 {
			t.Fatalf("create %s: %d %s", typ, st, b)
		}
		newID := id(h, b)
		if typ == "Patient" {
			patient = newID
		}
		act("create", rest("create", "C", "0", a.subject, a.addr, patient))
		return newID
	}
	orgA := mustCreate(sys, "Organization", `{"resourceType":"Organization","name":"Clinic A"}`, "")
	orgB := mustCreate(sys, "Organization", `{"resourceType":"Organization","name":"Clinic B"}`, "")
	var pats []string
	for i := range 10 {
		pats = append(pats, mustCreate(sys, "Patient", fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"Audit%d"}],"managingOrganization":{"reference":"Organization/%s"}}`, i, orgA), ""))
	}

	// Accounts, through the CLI while the server runs: each is a grant
	// of privileges.
	userIDs := map[string]string{}
	idRE := regexp.MustCompile(`created: id (\S+),`)
	var docSeed string
	for _, u := range []struct{ name, role, org string }{
		{"doc", "physician", orgA}, {"nurse1", "nurse", orgA}, {"nurse2", "nurse", orgA}, {"nurse3", "nurse", orgA}, {"nurseb", "nurse", orgB},
	} {
		out := n.cli("a long password for "+u.name+"\n", "user", "add", "--username", u.name, "--role", u.role, "--password-stdin",
			"--organization", u.org, "--fhir-user", "Practitioner/"+u.name)
		m := idRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("user add: %s", out)
		}
		userIDs[u.name] = "user/" + m[1]
		if i := strings.Index(out, "otpauth://"); i >= 0 {
			pu, _ := url.Parse(strings.TrimSpace(out[i:]))
			docSeed = pu.Query().Get("secret")
		}
		act("privilege change", expectEvent{typ: "110136", action: "U", outcome: "0", agent: cli, address: cliAddr})
	}

	// Logins through the real login endpoint: the physician with a
	// one-time code, the nurses, and failures from another address.
	doc := n.actor("127.0.0.3")
	code, _ := auth.TOTPCode(docSeed, time.Now())
	if st := doc.login("doc", "a long password for doc", code); st != 200 {
		t.Fatalf("physician login: %d", st)
	}
	doc.subject = userIDs["doc"]
	act("login success", expectEvent{typ: "110114", subtype: "110122", action: "E", outcome: "0", agent: doc.subject, address: doc.addr})
	nurses := []*actor{n.actor("127.0.0.4"), n.actor("127.0.0.5"), n.actor("127.0.0.6")}
	for i, nu := range nurses {
		name := fmt.Sprintf("nurse%d", i+1)
		for range 3 { // each signs in three times (three sessions)
			if st := nu.login(name, "a long password for "+name, ""); st != 200 {
				t.Fatalf("%s login: %d", name, st)
			}
			nu.subject = userIDs[name]
			act("login success", expectEvent{typ: "110114", subtype: "110122", action: "E", outcome: "0", agent: nu.subject, address: nu.addr})
		}
	}
	nurseB := n.actor("127.0.0.8")
	if st := nurseB.login("nurseb", "a long password for nurseb", ""); st != 200 {
		t.Fatalf("nurseb login: %d", st)
	}
	nurseB.subject = userIDs["nurseb"]
	act("login success", expectEvent{typ: "110114", subtype: "110122", action: "E", outcome: "0", agent: nurseB.subject, address: nurseB.addr})
	mallory := n.actor("127.0.0.9")
	failLogin := func(i int) {
		name, subject := fmt.Sprintf("intruder%d", i), fmt.Sprintf("unknown:intruder%d", i)
		if i%3 == 0 { // a real account, the wrong password
			name, subject = "nurse3", userIDs["nurse3"]
		}
		if st := mallory.login(name, "not the password", ""); st != 401 {
			t.Fatalf("failed login answered %d", st)
		}
		act("login failure", expectEvent{typ: "110114", subtype: "110122", action: "E", outcome: "4", agent: subject, address: mallory.addr})
	}
	for i := range 4 {
		failLogin(i + 1)
	}

	// The mixed workload: the physician's CRUD, searches, history and
	// $everything; the nurses' reads and searches; more failed logins;
	// and, at fixed points, a privilege change, break-the-glass, a bulk
	// export and a document download.
	var obs string // the physician's current Observation
	var obsPat string
	fails := 4
	for step := 1; total() < N; step++ {
		p := pats[step%len(pats)]
		switch k := step % 14; {
		case k == 0 && fails < 12:
			fails++
			failLogin(fails)
		case k == 1 || obs == "":
			obs = mustCreate(doc, "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"pulse"},"valueQuantity":{"value":72},"subject":{"reference":"Patient/`+p+`"}}`, p)
			obsPat = p
		case k == 2:
			if st, _, b := doc.do("GET", "/fhir/Observation/"+obs, nil); st != 200 {
				t.Fatalf("read: %d %s", st, b)
			}
			act("read", rest("read", "R", "0", doc.subject, doc.addr, obsPat))
		case k == 3:
			body := `{"resourceType":"Observation","id":"` + obs + `","status":"amended","code":{"text":"pulse"},"valueQuantity":{"value":74},"subject":{"reference":"Patient/` + obsPat + `"}}`
			if st, _, b := doc.do("PUT", "/fhir/Observation/"+obs, []byte(body)); st != 200 {
				t.Fatalf("update: %d %s", st, b)
			}
			act("update", rest("update", "U", "0", doc.subject, doc.addr, obsPat))
		case k == 4:
			if st, _, b := doc.do("PATCH", "/fhir/Observation/"+obs, []byte(`[{"op":"replace","path":"/valueQuantity/value","value":76}]`), "Content-Type", "application/json-patch+json"); st != 200 {
				t.Fatalf("patch: %d %s", st, b)
			}
			act("patch", rest("patch", "U", "0", doc.subject, doc.addr, obsPat))
		case k == 5:
			if st, _, b := doc.do("GET", "/fhir/Observation?subject=Patient/"+p, nil); st != 200 {
				t.Fatalf("search: %d %s", st, b)
			}
			act("search", rest("search-type", "E", "0", doc.subject, doc.addr, p))
		case k == 6:
			if st, _, b := doc.do("GET", "/fhir/Patient/"+p+"/_history", nil); st != 200 {
				t.Fatalf("history: %d %s", st, b)
			}
			act("history", rest("history-instance", "R", "0", doc.subject, doc.addr, p))
		case k == 7:
			if st, _, b := doc.do("GET", "/fhir/Patient/"+p+"/$everything", nil); st != 200 {
				t.Fatalf("$everything: %d %s", st, b)
			}
			act("$everything", rest("operation", "E", "0", doc.subject, doc.addr, p))
		case k == 8:
			if st, _, b := doc.do("GET", "/fhir/Observation/"+obs+"/_history/1", nil); st != 200 {
				t.Fatalf("vread: %d %s", st, b)
			}
			act("read", rest("vread", "R", "0", doc.subject, doc.addr, obsPat))
		case k == 9:
			if st, _, b := doc.do("DELETE", "/fhir/Observation/"+obs, nil); st != 200 && st != 204 {
				t.Fatalf("delete: %d %s", st, b)
			}
			act("delete", rest("delete", "D", "0", doc.subject, doc.addr, obsPat))
			obs = ""
		case k == 10:
			if st, _, _ := doc.do("GET", "/fhir/Observation/does-not-exist", nil); st != 404 {
				t.Fatalf("read of a missing resource: %d", st)
			}
			act("read (failed)", rest("read", "R", "4", doc.subject, doc.addr, ""))
		case k == 11 || k == 13:
			nu := nurses[step%2] // nurse1 and nurse2 (nurse2 until its role changes)
			if step > 150 {
				nu = nurses[0]
			}
			if st, _, b := nu.do("GET", "/fhir/Patient/"+p, nil); st != 200 {
				t.Fatalf("nurse read: %d %s", st, b)
			}
			act("read", rest("read", "R", "0", nu.subject, nu.addr, p))
		default:
			nu := nurses[2]
			if st, _, b := nu.do("GET", "/fhir/Condition?patient="+p+"&_count=5", nil); st != 200 {
				t.Fatalf("nurse search: %d %s", st, b)
			}
			act("search", rest("search-type", "E", "0", nu.subject, nu.addr, p))
		}
		if step == 150 {
			// A privilege change through the CLI while the server runs.
			n.cli("", "user", "role", "--username", "nurse2", "--role", "frontdesk")
			act("privilege change", expectEvent{typ: "110136", action: "U", outcome: "0", agent: cli, address: cliAddr})
		}
		if step == 200 {
			breakTheGlass(t, n, nurseB, pats[3], act)
		}
		if step == 300 {
			bulkExport(t, n, sys, act)
		}
		if step == 350 {
			documentDownload(t, n, doc, pats[5], act)
		}
	}
	t.Logf("%s: audit setting changes: none possible — Hale has no setting that turns the audit trail off or changes what it records (docs/security.md, \"Audit trail\")", engine)

	// Everything the actions recorded, from the store (not through the
	// audit's own search, which the report below checks).
	if err := n.core.rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	end := time.Now().UTC()
	time.Sleep(2 * time.Millisecond)
	var events []*auditedEvent
	err := n.store.View(ctx, func(r hale.Reader) error {
		page, err := r.(hale.AuditReader).SearchAudit(ctx, &hale.AuditQuery{Count: 100000, Where: []hale.AuditCondition{
			{Field: hale.AuditRecorded, Ranges: []hale.AuditRange{{Lo: start.UnixMicro(), Hi: end.UnixMicro() + 1}}}}})
		if err != nil {
			return err
		}
		for _, rec := range page.Records {
			e := &auditedEvent{raw: string(rec.Data)}
			if err := json.Unmarshal(rec.Data, e); err != nil {
				return err
			}
			events = append(events, e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Each expected event matched to one stored event.
	used := make([]bool, len(events))
	produced := 0
	for _, x := range expected {
		i := -1
		for j, e := range events {
			if !used[j] && e.matches(x) {
				i = j
				break
			}
		}
		if i < 0 {
			t.Errorf("no AuditEvent for %+v", x)
			continue
		}
		used[i] = true
		produced++
	}
	for i, e := range events {
		if !used[i] {
			t.Errorf("an AuditEvent no action explains: %s", e.raw)
		}
	}
	// Every event carries the elements of 170.210(e) / ASTM E2147.
	missing := 0
	for _, e := range events {
		at, err := time.Parse(time.RFC3339Nano, e.Recorded)
		object := slices.ContainsFunc(e.Entity, func(en struct {
			What struct {
				Reference  string
				Identifier struct{ Value string }
			}
			Role  struct{ Code string }
			Query string
		}) bool {
			return en.What.Reference != "" || en.What.Identifier.Value != "" || en.Query != ""
		})
		if err != nil || at.Location() != time.UTC || !strings.HasSuffix(e.Recorded, "Z") || len(e.Agent) == 0 ||
			e.Agent[0].Who.Identifier.Value == "" || e.Agent[0].Who.Identifier.Value == "anonymous" || e.Agent[0].AltID == "" ||
			e.Agent[0].Network.Address == "" || e.Action == "" || e.Outcome == "" || !object {
			missing++
			t.Errorf("AuditEvent lacks an element: %s", e.raw)
		}
	}
	kinds := make([]string, 0, len(actions))
	for k, v := range actions {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(kinds)
	t.Logf("%s: actions: %d (%s)", engine, total(), strings.Join(kinds, ", "))
	t.Logf("%s: AuditEvents produced: %d / %d expected (%d in the trail for the period); events missing any of {UTC time, user id, patient id when applicable, action, object, source address, outcome}: %d",
		engine, produced, len(expected), len(events), missing)
	if total() != N || produced != len(expected) || len(events) != len(expected) || missing != 0 {
		t.Errorf("%s: actions %d, produced %d / %d, in trail %d, missing elements %d", engine, total(), produced, len(expected), len(events), missing)
	}

	// The reads made under break-the-glass: how many say so.
	btgReads, btgPurpose := 0, 0
	for _, e := range events {
		if e.Agent[0].Who.Identifier.Value == nurseB.subject && e.subtype() == "read" && e.Outcome == "0" {
			btgReads++
			if strings.Contains(e.raw, `"code":"BTG"`) {
				btgPurpose++
			}
		}
	}
	t.Logf("%s: reads under break-the-glass whose AuditEvent carries purposeOfUse BTG: %d / %d", engine, btgPurpose, btgReads)
	if btgReads != 3 || btgPurpose != btgReads {
		t.Errorf("%s: reads under break-the-glass: %d, with purpose BTG: %d; want 3 and 3", engine, btgReads, btgPurpose)
	}

	// (d)(3): the report for a period, sorted by each element.
	checkReport(t, engine, n, sys, events)

	// The chain covers it all.
	if err := n.core.rec.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	key, err := audit.LoadKey(auditKeyPath(n.cfg), false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := audit.Verify(ctx, n.store.(hale.AuditStore), key.Public().(ed25519.PublicKey))
	if err != nil || !res.OK() {
		t.Errorf("%s: audit verify: %+v %v", engine, res, err)
	}
}

// breakTheGlass: a nurse of another organization is refused the patient,
// asks without a reason (refused, recorded), with one (a security alert
// and the notice to the patient's organization), then reads the record
// under it (purpose of use BTG).
func breakTheGlass(t *testing.T, n *testNode, nb *actor, patient string, act func(string, ...expectEvent)) {
	t.Helper()
	if st, _, _ := nb.do("GET", "/fhir/Patient/"+patient, nil); st != 404 {
		t.Fatalf("another organization's patient: %d, want 404", st)
	}
	act("read (refused)", expectEvent{typ: "rest", subtype: "read", action: "R", outcome: "4", agent: nb.subject, address: nb.addr, patient: patient})
	form := []string{"Content-Type", "application/x-www-form-urlencoded"}
	if st, _, _ := nb.do("POST", "/access/break-glass", []byte("patient="+patient), form...); st != 400 {
		t.Fatalf("break-the-glass without a reason: %d", st)
	}
	act("break-the-glass (refused)", expectEvent{typ: "110113", action: "E", outcome: "4", agent: nb.subject, address: nb.addr, patient: patient, purpose: "BTG"})
	if st, _, b := nb.do("POST", "/access/break-glass", []byte("patient="+patient+"&reason=unconscious+in+the+ED&minutes=30"), form...); st != 200 {
		t.Fatalf("break-the-glass: %d %s", st, b)
	}
	act("break-the-glass",
		expectEvent{typ: "110113", action: "E", outcome: "0", agent: nb.subject, address: nb.addr, patient: patient, purpose: "BTG"},
		// Hale's notice to the patient's organization.
		expectEvent{typ: "rest", subtype: "create", action: "C", outcome: "0", agent: "system/hale", address: nb.addr, patient: patient})
	for range 3 {
		if st, _, b := nb.do("GET", "/fhir/Patient/"+patient, nil); st != 200 {
			t.Fatalf("read under break-the-glass: %d %s", st, b)
		}
		act("read (break-the-glass)", expectEvent{typ: "rest", subtype: "read", action: "R", outcome: "0", agent: nb.subject, address: nb.addr, patient: patient, purpose: "BTG"})
	}
}

// bulkExport: a Bulk Data kick-off, status polls (which disclose nothing
// and are not recorded) and each file's download.
func bulkExport(t *testing.T, n *testNode, sys *actor, act func(string, ...expectEvent)) {
	t.Helper()
	st, h, b := sys.do("GET", "/fhir/Patient/$export?_type=Patient,Observation", nil, "Prefer", "respond-async", "Accept", "application/fhir+json")
	if st != 202 {
		t.Fatalf("export kick-off: %d %s", st, b)
	}
	act("export kick-off", expectEvent{typ: "110106", action: "E", outcome: "0", agent: sys.subject, address: sys.addr})
	status := h.Get("Content-Location")
	var manifest struct{ Output []struct{ URL string } }
	for deadline := time.Now().Add(60 * time.Second); ; {
		st, _, b = sys.do("GET", status, nil)
		if st == 200 {
			json.Unmarshal(b, &manifest)
			break
		}
		if st != 202 || time.Now().After(deadline) {
			t.Fatalf("export status: %d %s", st, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(manifest.Output) == 0 {
		t.Fatal("export: no files")
	}
	for _, o := range manifest.Output {
		if st, _, b := sys.do("GET", o.URL, nil, "Accept", "application/fhir+ndjson"); st != 200 || len(b) == 0 {
			t.Fatalf("export file: %d", st)
		}
		act("export file download", expectEvent{typ: "110106", action: "R", outcome: "0", agent: sys.subject, address: sys.addr})
	}
}

// documentDownload: the physician files a PDF (with its SHA-1) and
// downloads it from the clinician app: the core records the read of the
// DocumentReference, the app the download (an export of a copy).
func documentDownload(t *testing.T, n *testNode, doc *actor, patient string, act func(string, ...expectEvent)) {
	t.Helper()
	pdf := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	sum := sha1.Sum(pdf)
	body := `{"resourceType":"DocumentReference","status":"current","subject":{"reference":"Patient/` + patient + `"},` +
		`"category":[{"coding":[{"system":"https://hale-ehr.org/fhir/CodeSystem/document-category","code":"uploaded"}]}],` +
		`"content":[{"attachment":{"contentType":"application/pdf","data":"` + base64.StdEncoding.EncodeToString(pdf) +
		`","hash":"` + base64.StdEncoding.EncodeToString(sum[:]) + `","title":"referral.pdf"}}]}`
	st, h, b := doc.do("POST", "/fhir/DocumentReference", []byte(body))
	if st != 201 {
		t.Fatalf("document: %d %s", st, b)
	}
	did := strings.Split(strings.TrimPrefix(h.Get("Location"), n.base+"/"), "/")[1]
	act("create", expectEvent{typ: "rest", subtype: "create", action: "C", outcome: "0", agent: doc.subject, address: doc.addr, patient: patient})
	st, _, got := doc.do("GET", "/app/patients/"+patient+"/documents/"+did+"/content?download", nil)
	if st != 200 || string(got) != string(pdf) {
		t.Fatalf("download: %d", st)
	}
	act("document download",
		expectEvent{typ: "rest", subtype: "read", action: "R", outcome: "0", agent: doc.subject, address: doc.addr, patient: patient},
		expectEvent{typ: "110106", action: "R", outcome: "0", agent: doc.subject, address: doc.addr, patient: patient})
}

// checkReport is (d)(3): AuditEvent searched for a period in the middle
// of the run, sorted by each element (and a few combinations), in pages
// of 40, must list exactly the period's events, in the order their
// values say; ties by time, then write order.
func checkReport(t *testing.T, engine string, n *testNode, sys *actor, events []*auditedEvent) {
	t.Helper()
	lo, hi := events[len(events)/5].Recorded, events[4*len(events)/5].Recorded
	var period []int // indexes into events, which are in (recorded, seq) order
	for i, e := range events {
		if e.Recorded >= lo && e.Recorded <= hi {
			period = append(period, i)
		}
	}
	value := func(e *auditedEvent, key string) string {
		first := func(prefix string) string {
			out := ""
			for _, en := range e.Entity {
				r := en.What.Reference
				if r != "" && strings.HasPrefix(r, prefix) && (out == "" || r < out) {
					out = r
				}
			}
			return out
		}
		switch key {
		case "altid":
			return e.Agent[0].Who.Identifier.Value
		case "agent":
			return e.Agent[0].Who.Reference
		case "patient":
			return first("Patient/")
		case "entity":
			return first("")
		case "action":
			return e.Action
		case "outcome":
			return e.Outcome
		case "type":
			return e.Type.System + "|" + e.Type.Code
		case "subtype":
			if len(e.Subtype) == 0 {
				return ""
			}
			return e.Subtype[0].System + "|" + e.Subtype[0].Code
		case "address":
			return e.Agent[0].Network.Address
		}
		t.Fatalf("key %s", key)
		return ""
	}
	sorts := []string{"date", "-date", "altid", "-altid", "agent", "patient", "-patient", "entity", "action", "-action",
		"subtype", "type", "outcome", "-outcome", "address", "-address", "patient,-date", "altid,action,-date", "-outcome,address"}
	errors, checked := 0, 0
	for _, spec := range sorts {
		want := slices.Clone(period)
		keys := strings.Split(spec, ",")
		slices.SortStableFunc(want, func(a, b int) int {
			dateDesc := false
			for _, k := range keys {
				name, desc := strings.CutPrefix(k, "-")
				c := 0
				if name == "date" {
					c, dateDesc = a-b, desc
				} else {
					c = strings.Compare(value(events[a], name), value(events[b], name))
				}
				if desc {
					c = -c
				}
				if c != 0 {
					return c
				}
			}
			if dateDesc {
				return b - a
			}
			return a - b
		})
		var got []string
		next := "/fhir/AuditEvent?date=ge" + lo + "&date=le" + hi + "&_sort=" + spec + "&_count=40"
		for pages := 0; next != ""; pages++ {
			st, _, b := sys.do("GET", next, nil)
			var bundle struct {
				Link  []struct{ Relation, URL string }
				Entry []struct{ Resource struct{ ID string } }
			}
			if st != 200 || json.Unmarshal(b, &bundle) != nil || pages > 100 {
				t.Fatalf("report _sort=%s: %d %.300s", spec, st, b)
			}
			next = ""
			for _, e := range bundle.Entry {
				got = append(got, e.Resource.ID)
			}
			for _, l := range bundle.Link {
				if l.Relation == "next" {
					next = l.URL
				}
			}
		}
		bad := 0
		for i := range max(len(got), len(want)) {
			if i >= len(got) || i >= len(want) || got[i] != events[want[i]].ID {
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("report sorted by %s: %d of %d positions wrong", spec, bad, len(want))
		}
		errors += bad
		checked++
	}
	t.Logf("%s: (d)(3) report for the period %s … %s (%d of %d events), sorted by %d keys in pages of 40: ordering errors: %d",
		engine, lo, hi, len(period), len(events), checked, errors)
	if len(period) < len(events)/2 {
		t.Errorf("the period holds %d events of %d", len(period), len(events))
	}
}
