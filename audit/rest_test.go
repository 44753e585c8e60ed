package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/audit"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/invariant"
	"github.com/hale-ehr/hale/rest"
)

func newService(t *testing.T, s hale.Store) (*rest.Service, *audit.Recorder) {
	return newServiceB(t, s)
}

func newServiceB(t testing.TB, s hale.Store) (*rest.Service, *audit.Recorder) {
	t.Helper()
	svc := rest.NewService(s)
	rec, err := audit.New(s, audit.Options{Node: "node-a", Params: svc.Params, Key: testKey()})
	if err != nil {
		t.Fatal(err)
	}
	svc.Audit = rec
	go rec.Run()
	t.Cleanup(func() { rec.Close(context.Background()) })
	return svc, rec
}

func do(t *testing.T, ctx context.Context, svc *rest.Service, method, path, query string, body string) (*rest.Response, error) {
	t.Helper()
	req := &rest.Request{Method: method, RawQuery: query, Base: "http://x/fhir"}
	req.Query, _ = url.ParseQuery(query)
	if body != "" {
		req.Body = []byte(body)
	}
	typ, id, _ := cut(path)
	req.Type, req.ID = typ, id
	if i, op, ok := cut(id); ok {
		req.ID, req.Op = i, op
	}
	return svc.Do(ctx, req)
}

func cut(p string) (string, string, bool) {
	for i := range p {
		if p[i] == '/' {
			return p[:i], p[i+1:], true
		}
	}
	return p, "", false
}

func auditEvents(t *testing.T, svc *rest.Service, query string) []map[string]any {
	t.Helper()
	resp, err := do(t, context.Background(), svc, "GET", "AuditEvent", query, "")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(resp.Object)
	var b struct {
		Entry []struct{ Resource map[string]any }
	}
	json.Unmarshal(data, &b)
	var out []map[string]any
	for _, e := range b.Entry {
		out = append(out, e.Resource)
	}
	return out
}

// TestCompleteness is D21 for what the FHIR core records: N mixed actions
// through rest.Service (create, read, vread, update, patch, search,
// delete, history, failed reads) by a principal → N AuditEvents, each
// valid FHIR R4 with UTC time, who, the patient, action, object, source
// address and outcome.
func TestCompleteness(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s, _ := openEngine(t, engine)
			svc, rec := newService(t, s)
			p := &hale.Principal{Subject: "user/nurse1", Name: "N. Urse", Role: hale.RoleNurse, FHIRUser: "Practitioner/pr1", Address: "192.0.2.10"}
			ctx := hale.WithPrincipal(context.Background(), p)
			actions := 0
			var patients []string
			for i := range 5 {
				r, err := do(t, ctx, svc, "POST", "Patient", "", `{"resourceType":"Patient","name":[{"family":"Test`+fmt.Sprint(i)+`"}]}`)
				if err != nil {
					t.Fatal(err)
				}
				actions++
				var m map[string]any
				json.Unmarshal(r.Body, &m)
				patients = append(patients, m["id"].(string))
			}
			for i := range 60 {
				pid := patients[i%len(patients)]
				var err error
				switch i % 6 {
				case 0:
					_, err = do(t, ctx, svc, "POST", "Observation", "", `{"resourceType":"Observation","status":"final","code":{"text":"hr"},"subject":{"reference":"Patient/`+pid+`"}}`)
				case 1:
					_, err = do(t, ctx, svc, "GET", "Patient/"+pid, "", "")
				case 2:
					_, err = do(t, ctx, svc, "GET", "Observation", "subject=Patient/"+pid, "")
				case 3:
					_, err = do(t, ctx, svc, "PUT", "Patient/"+pid, "", `{"resourceType":"Patient","id":"`+pid+`","active":true}`)
				case 4:
					_, err = do(t, ctx, svc, "GET", "Patient/does-not-exist", "", "")
					if err == nil {
						t.Fatal("read of a missing patient succeeded")
					}
					err = nil
				case 5:
					_, err = do(t, ctx, svc, "GET", "Patient/"+pid+"/_history", "", "")
				}
				if err != nil {
					t.Fatal(err)
				}
				actions++
			}
			if _, err := do(t, ctx, svc, "DELETE", "Patient/"+patients[0], "", ""); err != nil {
				t.Fatal(err)
			}
			actions++
			if err := rec.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			events := auditEvents(t, svc, "_count=1000&_sort=date")
			if len(events) != actions {
				t.Fatalf("AuditEvents produced: %d / %d", len(events), actions)
			}
			missing, invalid := 0, 0
			for _, ev := range events {
				if issues := fhir.Validate(ev); len(issues) > 0 {
					invalid++
					t.Errorf("invalid AuditEvent: %v", issues[0].Diagnostics)
				} else if issues := invariant.Check(context.Background(), ev); len(issues) > 0 {
					invalid++
					t.Errorf("AuditEvent fails %v", issues[0].Diagnostics)
				}
				b, _ := json.Marshal(ev)
				var e struct {
					Recorded string
					Action   string
					Outcome  string
					Subtype  []struct{ Code string }
					Agent    []struct {
						AltID   string `json:"altId"`
						Network struct{ Address string }
						Who     struct{ Reference string }
					}
					Entity []struct {
						What  struct{ Reference string }
						Role  struct{ Code string }
						Query string
					}
				}
				json.Unmarshal(b, &e)
				rec, err := time.Parse(time.RFC3339, e.Recorded)
				hasPatient, hasObject := false, false
				for _, en := range e.Entity {
					hasPatient = hasPatient || en.Role.Code == "1"
					hasObject = hasObject || en.What.Reference != "" || en.Query != ""
				}
				// Every action here is about a patient, except reading one that does not exist.
				wantPatient := e.Outcome == "0"
				bad := err != nil || rec.Location() != time.UTC || e.Recorded[len(e.Recorded)-1] != 'Z' ||
					len(e.Agent) == 0 || e.Agent[0].AltID != "user/nurse1" || e.Agent[0].Who.Reference != "Practitioner/pr1" ||
					e.Agent[0].Network.Address != "192.0.2.10" || e.Action == "" || e.Outcome == "" || len(e.Subtype) == 0 ||
					!hasObject || wantPatient && !hasPatient
				if bad {
					missing++
					t.Errorf("AuditEvent missing fields: %s", b)
				}
			}
			// The patient's access report is a FHIR search.
			report := auditEvents(t, svc, "entity=Patient/"+patients[1])
			t.Logf("%s: AuditEvents produced: %d / %d; events missing any of {UTC time, user, patient, action, object, source address, outcome}: %d; invalid FHIR R4: %d; Patient/%s access report: %d events",
				engine, len(events), actions, missing, invalid, patients[1], len(report))
			if len(report) < 10 {
				t.Errorf("the access report of Patient/%s has %d events", patients[1], len(report))
			}
			// And the chain covers them all, and the two searches of the audit.
			if err := rec.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := rec.SealAll(ctx); err != nil {
				t.Fatal(err)
			}
			res, err := audit.Verify(ctx, s.(hale.AuditStore), testKey().Public().(ed25519PublicKey))
			if err != nil || !res.OK() || res.Links != int64(actions)+2 {
				t.Fatalf("verify: %+v, %v", res, err)
			}
		})
	}
}

// TestNoChangeThroughAPI: every create, update, patch and delete of an
// AuditEvent answers 405 with an OperationOutcome, alone and inside
// transaction and batch bundles, and changes nothing.
func TestNoChangeThroughAPI(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s, _ := openEngine(t, engine)
			svc, rec := newService(t, s)
			ctx := context.Background()
			if _, err := do(t, ctx, svc, "GET", "Patient", "", ""); err != nil {
				t.Fatal(err)
			}
			rec.Flush(ctx)
			evs := auditEvents(t, svc, "")
			if len(evs) != 1 {
				t.Fatalf("%d AuditEvents, want 1", len(evs))
			}
			id := evs[0]["id"].(string)
			body, _ := json.Marshal(evs[0])
			tries := []struct{ method, path, body string }{
				{"POST", "AuditEvent", string(body)},
				{"PUT", "AuditEvent/" + id, string(body)},
				{"PUT", "AuditEvent/new-one", `{"resourceType":"AuditEvent","id":"new-one"}`},
				{"DELETE", "AuditEvent/" + id, ""},
				{"PATCH", "AuditEvent/" + id, `[{"op":"replace","path":"/outcome","value":"4"}]`},
				{"DELETE", "AuditEvent", ""},
			}
			refused, total := 0, 0
			for _, tr := range tries {
				req := &rest.Request{Method: tr.method, Body: []byte(tr.body), Patch: tr.method == "PATCH", Base: "http://x/fhir"}
				req.Type, req.ID, _ = cut(tr.path)
				if tr.path == "AuditEvent" && tr.method == "DELETE" {
					req.RawQuery, req.Query = "_id="+id, url.Values{"_id": {id}}
				}
				_, err := svc.Do(ctx, req)
				total++
				if hale.ErrorKind(err) == hale.KindMethodNotAllowed {
					refused++
				} else {
					t.Errorf("%s %s: %v, want 405", tr.method, tr.path, err)
				}
			}
			for _, bt := range []string{"transaction", "batch"} {
				b := `{"resourceType":"Bundle","type":"` + bt + `","entry":[{"request":{"method":"DELETE","url":"AuditEvent/` + id + `"}}]}`
				resp, err := svc.Do(ctx, &rest.Request{Method: "POST", Body: []byte(b), Base: "http://x/fhir"})
				total++
				switch {
				case bt == "transaction" && hale.ErrorKind(err) == hale.KindMethodNotAllowed:
					refused++
				case bt == "batch" && err == nil:
					data, _ := json.Marshal(resp.Object)
					if json.Valid(data) && contains(string(data), `"405 Method Not Allowed"`) {
						refused++
					} else {
						t.Errorf("batch delete: %s", data)
					}
				default:
					t.Errorf("%s delete of an AuditEvent: %v", bt, err)
				}
			}
			after, err := do(t, ctx, svc, "GET", "AuditEvent/"+id, "", "")
			if err != nil || string(after.Body) != string(mustJSON(t, s, id)) {
				t.Fatalf("the AuditEvent changed: %v", err)
			}
			t.Logf("%s: AuditEvent update/delete attempts answered 405: %d / %d", engine, refused, total)
		})
	}
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func mustJSON(t *testing.T, s hale.Store, id string) []byte {
	var data []byte
	err := s.View(context.Background(), func(r hale.Reader) error {
		rec, err := r.(hale.AuditReader).AuditEvent(context.Background(), id)
		if err == nil {
			data = rec.Data
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestOtherEvents: the events other surfaces record (login, logout,
// permission change, break-the-glass, export) are valid FHIR R4 and carry
// who, when, from where, outcome and, for break-the-glass, purpose BTG.
func TestOtherEvents(t *testing.T) {
	s, _ := openEngine(t, "sqlite")
	svc, rec := newService(t, s)
	admin := &hale.Principal{Subject: "user/admin1", Name: "admin", Role: hale.RoleAdmin, Address: "192.0.2.1"}
	ctx := hale.WithPrincipal(context.Background(), admin)
	steps := []error{
		rec.Login(ctx, hale.Principal{Subject: "user/u2", Name: "u2", Address: "192.0.2.2"}, nil),
		rec.Login(ctx, hale.Principal{Name: "nobody", Address: "192.0.2.3"}, hale.Errorf(hale.KindUnauthorized, "wrong password")),
		rec.Logout(ctx, hale.Principal{Subject: "user/u2", Name: "u2", Address: "192.0.2.2"}),
		rec.PermissionChange(ctx, "user/u2", "role nurse → physician", nil),
		rec.BreakGlass(ctx, "p1", "unconscious patient in the ED", nil),
		rec.Audit(hale.WithPurposeOfUse(ctx, "BTG"), &hale.Access{Interaction: "read", Type: "Patient", ID: "p1"}),
		rec.Audit(ctx, &hale.Access{Interaction: "export", Query: "_type=Patient", Patients: []string{"p1"}}),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	rec.Flush(ctx)
	evs := auditEvents(t, svc, "_count=100")
	if len(evs) != len(steps) {
		t.Fatalf("%d events, want %d", len(evs), len(steps))
	}
	btg := 0
	for _, ev := range evs {
		if issues := fhir.Validate(ev); len(issues) > 0 {
			t.Errorf("invalid AuditEvent %v: %s", ev["type"], issues[0].Diagnostics)
		} else if issues := invariant.Check(context.Background(), ev); len(issues) > 0 {
			t.Errorf("AuditEvent %v fails %s", ev["type"], issues[0].Diagnostics)
		}
		b, _ := json.Marshal(ev)
		if contains(string(b), `"code":"BTG"`) {
			btg++
		}
		if !contains(string(b), `"address":"192.0.2.`) || ev["recorded"] == nil || ev["outcome"] == nil {
			t.Errorf("event lacks address, time or outcome: %s", b)
		}
	}
	if btg != 2 {
		t.Errorf("%d events carry purpose of use BTG, want 2", btg)
	}
	if evs := auditEvents(t, svc, "outcome=4"); len(evs) != 1 {
		t.Errorf("%d failed events, want 1 (the failed login)", len(evs))
	}
}

// auditBundle runs an AuditEvent search (or history) through the FHIR core
// and returns the bundle's entries, total and next link's query.
func auditBundle(t *testing.T, svc *rest.Service, path, query string) (ids []string, total float64, next string, err error) {
	t.Helper()
	var resp *rest.Response
	if parts := strings.Split(path, "/"); len(parts) == 3 && parts[2] == "AuditEvent" {
		// A compartment search: [base]/Patient/1/AuditEvent.
		req := &rest.Request{Method: "GET", Type: "AuditEvent", Compartment: &rest.Compartment{Type: parts[0], ID: parts[1]}, RawQuery: query, Base: "http://x/fhir"}
		req.Query, _ = url.ParseQuery(query)
		resp, err = svc.Do(context.Background(), req)
	} else if typ, ok := strings.CutSuffix(path, "/_history"); ok && !strings.Contains(typ, "/") {
		req := &rest.Request{Method: "GET", Type: typ, Op: "_history", RawQuery: query, Base: "http://x/fhir"}
		req.Query, _ = url.ParseQuery(query)
		resp, err = svc.Do(context.Background(), req)
	} else {
		resp, err = do(t, context.Background(), svc, "GET", path, query, "")
	}
	if err != nil {
		return nil, -1, "", err
	}
	data, _ := json.Marshal(resp.Object)
	var b struct {
		Total *float64
		Link  []struct{ Relation, URL string }
		Entry []struct {
			Resource struct{ ID string }
			Request  struct{ Method string }
		}
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	for _, e := range b.Entry {
		ids = append(ids, e.Resource.ID)
	}
	total = -1
	if b.Total != nil {
		total = *b.Total
	}
	for _, l := range b.Link {
		if l.Relation == "next" {
			u, _ := url.Parse(l.URL)
			next = u.RawQuery
		}
	}
	return ids, total, next, nil
}

// TestAuditEventSearch: AuditEvent read, vread, history and search through
// the FHIR core, answered from the audit store, on both engines: every
// supported parameter finds what the stored AuditEvents say it should,
// paging follows next links, and anything else is a 400.
func TestAuditEventSearch(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s, _ := openEngine(t, engine)
			svc, rec := newService(t, s)
			a := hale.WithPrincipal(context.Background(), &hale.Principal{Subject: "user/a", FHIRUser: "Practitioner/pa", Address: "192.0.2.1"})
			b := hale.WithPrincipal(context.Background(), &hale.Principal{Subject: "user/b", FHIRUser: "Practitioner/pb", Address: "192.0.2.2"})
			var pids []string
			for i := range 2 {
				r, err := do(t, a, svc, "POST", "Patient", "", `{"resourceType":"Patient","name":[{"family":"S`+fmt.Sprint(i)+`"}]}`)
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				json.Unmarshal(r.Body, &m)
				pids = append(pids, m["id"].(string))
			}
			p1, p2 := pids[0], pids[1]
			steps := []struct {
				ctx         context.Context
				path, query string
			}{
				{a, "Patient/" + p1, ""}, {a, "Patient/" + p1, ""}, {b, "Patient/" + p2, ""}, {a, "Patient/" + p1, ""},
				{b, "Observation", "subject=Patient/" + p2}, {b, "Patient/nope", ""}, {b, "Patient/" + p2, ""},
			}
			for _, st := range steps {
				do(t, st.ctx, svc, "GET", st.path, st.query, "")
				time.Sleep(2 * time.Millisecond) // distinct recorded times
			}
			rec.Login(b, hale.Principal{Name: "mallory", Address: "192.0.2.9"}, hale.Errorf(hale.KindUnauthorized, "wrong password"))
			if err := rec.Flush(a); err != nil {
				t.Fatal(err)
			}
			// The reference: every event, decoded, oldest first.
			all := auditEvents(t, svc, "_count=1000")
			if len(all) != 2+len(steps)+1 {
				t.Fatalf("%d events, want %d", len(all), 2+len(steps)+1)
			}
			type ev struct {
				id, recorded, agent, ref, subtype, action, outcome, typ string
				entities                                                []string
			}
			var evs []ev
			for _, m := range all {
				data, _ := json.Marshal(m)
				var e struct {
					ID, Recorded, Action, Outcome string
					Type                          struct{ Code string }
					Subtype                       []struct{ Code string }
					Agent                         []struct {
						Who struct {
							Reference  string
							Identifier struct{ Value string }
						}
					}
					Entity []struct{ What struct{ Reference string } }
				}
				json.Unmarshal(data, &e)
				x := ev{id: e.ID, recorded: e.Recorded, agent: e.Agent[0].Who.Identifier.Value, ref: e.Agent[0].Who.Reference,
					action: e.Action, outcome: e.Outcome, typ: e.Type.Code}
				if len(e.Subtype) > 0 {
					x.subtype = e.Subtype[0].Code
				}
				for _, en := range e.Entity {
					x.entities = append(x.entities, en.What.Reference)
				}
				evs = append(evs, x)
			}
			for i := 1; i < len(evs); i++ {
				if evs[i].recorded < evs[i-1].recorded {
					t.Fatalf("default order is not by date: %s before %s", evs[i-1].recorded, evs[i].recorded)
				}
			}
			where := func(f func(ev) bool) []string {
				var ids []string
				for _, e := range evs {
					if f(e) {
						ids = append(ids, e.id)
					}
				}
				return ids
			}
			names := func(ref string) func(ev) bool { return func(e ev) bool { return slices.Contains(e.entities, ref) } }
			mid := evs[len(evs)/2].recorded
			cases := []struct {
				query string
				want  []string
			}{
				{"patient=" + p1, where(names("Patient/" + p1))},
				{"patient=Patient/" + p1, where(names("Patient/" + p1))},
				{"patient:Patient=" + p1, where(names("Patient/" + p1))},
				{"entity=Patient/" + p2, where(names("Patient/" + p2))},
				{"entity:Patient=" + p2, where(names("Patient/" + p2))},
				{"entity=http://x/fhir/Patient/" + p2, where(names("Patient/" + p2))},
				{"patient=" + p1 + "," + p2, where(func(e ev) bool { return names("Patient/"+p1)(e) || names("Patient/"+p2)(e) })},
				{"altid=user/b", where(func(e ev) bool { return e.agent == "user/b" })},
				{"agent:identifier=urn:hale:principal|user/b", where(func(e ev) bool { return e.agent == "user/b" })},
				{"agent=Practitioner/pa", where(func(e ev) bool { return e.ref == "Practitioner/pa" })},
				{"subtype=read", where(func(e ev) bool { return e.subtype == "read" })},
				{"subtype=http://hl7.org/fhir/restful-interaction|read", where(func(e ev) bool { return e.subtype == "read" })},
				{"subtype=http://hl7.org/fhir/restful-interaction|", where(func(e ev) bool { return e.typ == "rest" })},
				{"type=110114", where(func(e ev) bool { return e.typ == "110114" })},
				{"action=C,E", where(func(e ev) bool { return e.action == "C" || e.action == "E" })},
				{"outcome=4", where(func(e ev) bool { return e.outcome == "4" })},
				{"_id=" + evs[2].id + "," + evs[4].id, []string{evs[2].id, evs[4].id}},
				{"date=ge" + mid, where(func(e ev) bool { return e.recorded >= mid })},
				{"date=lt" + mid, where(func(e ev) bool { return e.recorded < mid })},
				{"date=" + mid, where(func(e ev) bool { return e.recorded == mid })},
				{"date=ne" + mid, where(func(e ev) bool { return e.recorded != mid })},
				{"date=gt" + mid[:10] + "&date=lt2999", nil},
				{"date=" + mid[:10], where(func(e ev) bool { return true })},
				{"patient=" + p1 + "&altid=user/a&subtype=read&date=le" + evs[len(evs)-1].recorded, where(func(e ev) bool {
					return names("Patient/"+p1)(e) && e.agent == "user/a" && e.subtype == "read"
				})},
			}
			for _, c := range cases {
				got, _, _, err := auditBundle(t, svc, "AuditEvent", c.query+"&_count=1000")
				if err != nil {
					t.Errorf("%s: %v", c.query, err)
					continue
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("%s:\n got %v\nwant %v", c.query, got, c.want)
				}
			}
			if len(where(names("Patient/"+p1))) < 4 {
				t.Fatalf("fixture: Patient/%s named by %d events", p1, len(where(names("Patient/"+p1))))
			}
			// Paging, newest first, with the total; the compartment form.
			for _, path := range []string{"AuditEvent", "Patient/" + p1 + "/AuditEvent"} {
				var got []string
				q := "_sort=-date&_count=2&_total=accurate"
				if path == "AuditEvent" {
					q += "&patient=" + p1
				}
				for pages := 0; q != ""; pages++ {
					ids, total, next, err := auditBundle(t, svc, path, q)
					if err != nil || pages > 20 {
						t.Fatalf("%s?%s: %v", path, q, err)
					}
					if pages == 0 && int(total) != len(where(names("Patient/"+p1))) {
						t.Errorf("%s: total %v, want %d", path, total, len(where(names("Patient/"+p1))))
					}
					got = append(got, ids...)
					q = next
				}
				want := where(names("Patient/" + p1))
				slices.Reverse(want)
				if !slices.Equal(got, want) {
					t.Errorf("%s, pages of 2, newest first:\n got %v\nwant %v", path, got, want)
				}
			}
			if ids, total, _, err := auditBundle(t, svc, "AuditEvent", "_summary=count&altid=user/b"); err != nil || len(ids) != 0 || int(total) != len(where(func(e ev) bool { return e.agent == "user/b" })) {
				t.Errorf("_summary=count: %d entries, total %v, %v", len(ids), total, err)
			}
			// Read, vread, history.
			id := evs[3].id
			r, err := do(t, a, svc, "GET", "AuditEvent/"+id, "", "")
			if err != nil || !strings.Contains(string(r.Body), `"id":"`+id+`"`) || r.ETag != `W/"1"` {
				t.Errorf("read AuditEvent/%s: %v", id, err)
			}
			if _, err := svc.Do(a, &rest.Request{Method: "GET", Type: "AuditEvent", ID: id, Op: "_history", VersionID: "1"}); err != nil {
				t.Errorf("vread 1: %v", err)
			}
			if _, err := svc.Do(a, &rest.Request{Method: "GET", Type: "AuditEvent", ID: id, Op: "_history", VersionID: "2"}); hale.ErrorKind(err) != hale.KindNotFound {
				t.Errorf("vread 2: %v, want not found", err)
			}
			if _, err := do(t, a, svc, "GET", "AuditEvent/nope", "", ""); hale.ErrorKind(err) != hale.KindNotFound {
				t.Errorf("read of a missing AuditEvent: %v, want not found", err)
			}
			if ids, _, _, err := auditBundle(t, svc, "AuditEvent/"+id+"/_history", ""); err != nil || !slices.Equal(ids, []string{id}) {
				t.Errorf("instance history: %v, %v", ids, err)
			}
			var hist []string
			for q := "_count=3"; q != ""; {
				ids, _, next, err := auditBundle(t, svc, "AuditEvent/_history", q)
				if err != nil || len(hist) > 100 {
					t.Fatalf("type history: %v", err)
				}
				hist, q = append(hist, ids...), next
			}
			if len(hist) < len(evs) || hist[len(hist)-1] != evs[0].id {
				t.Errorf("type history, newest first, has %d entries ending %s; want at least %d ending %s", len(hist), hist[len(hist)-1], len(evs), evs[0].id)
			}
			// Everything else is a 400 that says what is supported.
			bad := []string{"name=x", "_include=AuditEvent:agent", "date=ap2025", "date=2025-13", "_sort=outcome", "patient=Observation/1",
				"entity=123", "_cursor=garbage", "_summary=true", "_elements=id", "agent:identifier=urn:other|x", "patient=", "subtype=|read", "outcome:not=0"}
			for _, q := range bad {
				_, _, _, err := auditBundle(t, svc, "AuditEvent", q)
				if hale.ErrorKind(err) != hale.KindInvalid {
					t.Errorf("%s: %v, want 400", q, err)
				} else if q == "name=x" && !strings.Contains(err.Error(), "supported: _id, date, patient") {
					t.Errorf("%s: %v does not list the supported parameters", q, err)
				}
			}
			t.Logf("%s: AuditEvent searches checked: %d, rejected with 400: %d", engine, len(cases)+3, len(bad))
		})
	}
}

// TestAuditEventCapability: the CapabilityStatement states what AuditEvent
// supports: no write interaction, and exactly the search parameters the
// audit store answers.
func TestAuditEventCapability(t *testing.T) {
	s, _ := openEngine(t, "sqlite")
	svc := rest.NewService(s)
	r, err := svc.Do(context.Background(), &rest.Request{Method: "GET", Op: "metadata"})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(r.Object)
	var cs struct {
		Rest []struct {
			Resource []struct {
				Type        string
				Interaction []struct{ Code string }
				SearchParam []struct{ Name string }
			}
		}
	}
	json.Unmarshal(data, &cs)
	for _, res := range cs.Rest[0].Resource {
		if res.Type != "AuditEvent" {
			continue
		}
		var codes, params []string
		for _, i := range res.Interaction {
			codes = append(codes, i.Code)
		}
		for _, p := range res.SearchParam {
			params = append(params, p.Name)
		}
		if want := []string{"read", "vread", "history-instance", "history-type", "search-type"}; !slices.Equal(codes, want) {
			t.Errorf("AuditEvent interactions %v, want %v", codes, want)
		}
		if want := []string{"_id", "date", "patient", "entity", "agent", "altid", "action", "type", "subtype", "outcome"}; !slices.Equal(params, want) {
			t.Errorf("AuditEvent search parameters %v, want %v", params, want)
		}
		return
	}
	t.Fatal("no AuditEvent in the CapabilityStatement")
}

// TestTransactionAudit: a transaction bundle's writes are recorded
// together, up to 50 resources to an AuditEvent per interaction, and
// every resource it wrote is named by exactly one of them, with the
// patients they belong to; its reads are recorded too; a failed
// transaction is one failure record and names nothing it would have
// written.
func TestTransactionAudit(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			s, _ := openEngine(t, engine)
			svc, rec := newService(t, s)
			p := &hale.Principal{Subject: "user/doc1", Name: "D. Octor", Role: hale.RolePhysician, FHIRUser: "Practitioner/pr1", Address: "192.0.2.11"}
			ctx := hale.WithPrincipal(context.Background(), p)
			if _, err := do(t, ctx, svc, "PUT", "Patient/upd", "", `{"resourceType":"Patient","id":"upd"}`); err != nil {
				t.Fatal(err)
			}
			// Two patients, 120 observations between them, an update and a read.
			var entries []string
			entries = append(entries, `{"fullUrl":"urn:uuid:11111111-1111-4111-8111-111111111111","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}`,
				`{"fullUrl":"urn:uuid:22222222-2222-4222-8222-222222222222","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}`,
				`{"resource":{"resourceType":"Patient","id":"upd","active":true},"request":{"method":"PUT","url":"Patient/upd"}}`,
				`{"request":{"method":"GET","url":"Patient/upd"}}`)
			for i := range 120 {
				subj := []string{"11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"}[i%2]
				entries = append(entries, `{"resource":{"resourceType":"Observation","status":"final","code":{"text":"hr"},"subject":{"reference":"urn:uuid:`+subj+`"}},"request":{"method":"POST","url":"Observation"}}`)
			}
			resp, err := do(t, ctx, svc, "POST", "", "", `{"resourceType":"Bundle","type":"transaction","entry":[`+strings.Join(entries, ",")+`]}`)
			if err != nil {
				t.Fatal(err)
			}
			var bundle struct {
				Entry []struct{ Response struct{ Location string } }
			}
			body := resp.Body
			if body == nil {
				body, _ = json.Marshal(resp.Object)
			}
			json.Unmarshal(body, &bundle)
			written := map[string]int{}
			var pats []string
			for i, e := range bundle.Entry {
				if i == 3 {
					continue // the read
				}
				ref, _, _ := strings.Cut(e.Response.Location, "/_history/")
				written[ref] = 0
				if i < 2 {
					pats = append(pats, ref)
				}
			}
			if len(written) != 123 {
				t.Fatalf("%d resources written, want 123", len(written))
			}
			// A transaction that fails writes nothing and is one failure record.
			bad := `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"resource":{"resourceType":"Patient","gender":"sometimes"},"request":{"method":"POST","url":"Patient"}}]}`
			if _, err := do(t, ctx, svc, "POST", "", "", bad); err == nil {
				t.Fatal("an invalid transaction succeeded")
			}
			if err := rec.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			events := auditEvents(t, svc, "_count=1000&_sort=date")
			counts := map[string]int{} // subtype → events
			failed := 0
			for _, ev := range events {
				b, _ := json.Marshal(ev)
				var e struct {
					Outcome string
					Subtype []struct{ Code string }
					Entity  []struct {
						What struct{ Reference string }
						Role struct{ Code string }
					}
				}
				json.Unmarshal(b, &e)
				if e.Outcome != "0" {
					failed++
					if len(e.Entity) != 0 || e.Subtype[0].Code != "transaction" {
						t.Errorf("the failed transaction's record: %s", b)
					}
					continue
				}
				sub := e.Subtype[0].Code
				counts[sub]++
				// A written Patient is named in the patient role (as are
				// the patients of written Observations), anything else as
				// a domain resource.
				var objects, patients []string
				for _, en := range e.Entity {
					if en.Role.Code == "1" {
						patients = append(patients, en.What.Reference)
					} else {
						objects = append(objects, en.What.Reference)
					}
				}
				if len(objects) > 50 {
					t.Errorf("a %s AuditEvent names %d resources, want at most 50", sub, len(objects))
				}
				if sub == "create" {
					for _, pt := range patients {
						if slices.Contains(pats, pt) && written[pt] == 0 {
							written[pt] = 1 // named at least once
						}
					}
					for _, o := range objects {
						written[o]++
						if strings.HasPrefix(o, "Observation/") && len(patients) == 0 {
							t.Errorf("a create AuditEvent names Observations but no patient: %s", b)
						}
					}
					for _, pt := range patients {
						if !slices.Contains(pats, pt) {
							t.Errorf("create names patient %s, not one of the bundle's", pt)
						}
					}
				}
				if sub == "update" && slices.Contains(patients, "Patient/upd") {
					written["Patient/upd"]++
				}
			}
			// The setup PUT and the bundle's PUT are both updates of Patient/upd.
			written["Patient/upd"]--
			for ref, n := range written {
				if n != 1 {
					t.Errorf("%s is named by %d AuditEvents, want 1", ref, n)
				}
			}
			// 122 creates in 3 events, 1 update (+ the setup one), 1 read.
			if counts["create"] != 3 || counts["update"] != 2 || counts["read"] != 1 || failed != 1 {
				t.Errorf("events by interaction %v, failed %d; want create 3, update 2, read 1, failed 1", counts, failed)
			}
			t.Logf("%s: a transaction of 122 creates, 1 update and 1 read → %d AuditEvents (%v)", engine, len(events)-2, counts)
			// Each written Observation is found by its entity.
			for ref := range written {
				if strings.HasPrefix(ref, "Observation/") {
					if got := auditEvents(t, svc, "entity="+ref); len(got) != 1 {
						t.Errorf("entity=%s finds %d AuditEvents, want 1", ref, len(got))
					}
					break
				}
			}
		})
	}
}
