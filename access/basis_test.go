package access_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/audit"
)

// ref is a FHIR Reference.
func refTo(s string) map[string]any { return map[string]any{"reference": s} }

// referral is an order for patient about, from requester to performers.
func referral(about, requester string, performers ...string) map[string]any {
	var perf []any
	for _, p := range performers {
		perf = append(perf, refTo(p))
	}
	return map[string]any{"resourceType": "ServiceRequest", "status": "active", "intent": "order",
		"code":    map[string]any{"text": "cardiology consult"},
		"subject": refTo("Patient/" + about), "requester": refTo(requester), "performer": perf,
		"authoredOn": "2025-03-01"}
}

// consent is a privacy consent of patient about with the given provision.
func consent(about string, provision map[string]any) map[string]any {
	return map[string]any{"resourceType": "Consent", "status": "active",
		"scope":      map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
		"category":   []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
		"patient":    refTo("Patient/" + about),
		"policyRule": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}}},
		"provision":  provision}
}

func permit(actor string, period map[string]any) map[string]any {
	p := map[string]any{"type": "permit", "actor": []any{map[string]any{
		"role":      map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}}},
		"reference": refTo(actor)}}}
	if period != nil {
		p["period"] = period
	}
	return p
}

// setStatus changes the status of typ/id as who, through the API.
func (w *world) setStatus(who, typ, id, status string) {
	w.t.Helper()
	cur := mustJSON(w.t, w.baseDo("GET", typ+"/"+id, nil))
	cur["status"] = status
	if r := w.do(who, "PUT", typ+"/"+id, cur); r.status != 200 {
		w.t.Fatalf("%s sets %s/%s to %s: %d %s", who, typ, id, status, r.status, r.raw)
	}
}

// post creates a resource as who through the API and returns its id.
func (w *world) post(who string, res map[string]any) string {
	w.t.Helper()
	r := w.do(who, "POST", res["resourceType"].(string), res)
	if r.status != 201 {
		w.t.Fatalf("%s creates %s: %d %s", who, res["resourceType"], r.status, r.raw)
	}
	return r.body["id"].(string)
}

// TestReferralConsent: a physician (drB) and the front desk of
// organization B reach patient A of organization A only on a recorded
// basis: a referral from A or A's consent, in force, naming them; the
// access ends when the basis does (at the next request); what they may
// write on it is limited; searches count only what they may see; and
// every access on a basis is audited with it.
func TestReferralConsent(t *testing.T) {
	engines(t, func(t *testing.T, w *world) {
		w.clinicians()
		rec, err := audit.New(w.store, audit.Options{Params: w.base.Params, Now: w.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		go rec.Run()
		t.Cleanup(func() { rec.Close(context.Background()) })
		w.svc.Audit = rec

		w.who["frontdeskB"] = &hale.Principal{Subject: "user/fdB", Role: hale.RoleFrontDesk, Organizations: []string{w.orgB}}
		prA := w.create("PractitionerRole", map[string]any{"resourceType": "PractitionerRole",
			"practitioner": refTo("Practitioner/" + w.drA), "organization": refTo("Organization/" + w.orgA)})
		prB := w.create("PractitionerRole", map[string]any{"resourceType": "PractitionerRole",
			"practitioner": refTo("Practitioner/" + w.drB), "organization": refTo("Organization/" + w.orgB)})
		// C: another patient of A, whom no basis names.
		C := w.create("Patient", map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Cee"}},
			"managingOrganization": refTo("Organization/" + w.orgA)})
		for range 3 {
			w.create("Observation", map[string]any{"resourceType": "Observation", "status": "final",
				"code": map[string]any{"text": "c"}, "subject": refTo("Patient/" + C)})
		}
		inA := map[string]bool{}
		for typ, ids := range w.res[w.A] {
			for _, id := range ids {
				inA[typ+"/"+id] = true
			}
		}
		A := w.A
		paths := map[string][]string{
			"drB": {"Patient/" + A, "Patient/" + A + "/$everything", "Observation?subject=Patient/" + A,
				"Patient/" + A + "/Condition", "Encounter?patient=" + A},
			"frontdeskB": {"Patient/" + A, "Patient?_id=" + A, "Encounter?patient=" + A},
		}
		cases, right := 0, 0
		check := func(name, who string, want bool) {
			t.Helper()
			n := 0
			for _, p := range paths[who] {
				r := w.do(who, "GET", p, nil)
				if slices.ContainsFunc(r.resources(), func(ref string) bool { return inA[ref] }) {
					n++
				}
			}
			cases++
			switch {
			case n != 0 && n != len(paths[who]):
				t.Errorf("%s: %s reached A in %d of %d requests", name, who, n, len(paths[who]))
			case (n > 0) != want:
				t.Errorf("%s: %s reaches A: %v, want %v", name, who, n > 0, want)
			default:
				right++
			}
		}
		basisOf := func(who string) []hale.Basis {
			w.btgMu.Lock()
			defer w.btgMu.Unlock()
			return w.bases[w.who[who].Subject]
		}

		check("no basis", "drB", false)
		// drB cannot refer A to himself (A is not his to write about),
		// and a referral that does not come from A's organization,
		// written behind the API's back, is no basis.
		if r := w.do("drB", "POST", "ServiceRequest", referral(A, "Practitioner/"+w.drB, "Practitioner/"+w.drB)); r.status != 403 {
			t.Errorf("drB refers A to himself: %d, want 403", r.status)
		}
		w.create("ServiceRequest", referral(A, "Practitioner/"+w.drB, "Practitioner/"+w.drB))
		w.create("ServiceRequest", referral(A, "Organization/"+w.orgB, "Organization/"+w.orgB))
		check("referrals not from A's organization", "drB", false)

		// A referral from A's physician (through their PractitionerRole).
		sr := w.post("drA", referral(A, "PractitionerRole/"+prA, "Practitioner/"+w.drB))
		check("referral to drB", "drB", true)
		if b := basisOf("drB"); !slices.ContainsFunc(b, func(b hale.Basis) bool {
			return b.Patient == A && b.Reference == "ServiceRequest/"+sr && slices.Equal(b.Purposes, []string{"TREAT"})
		}) {
			t.Errorf("the request's bases: %+v, want ServiceRequest/%s for A", b, sr)
		}
		check("referral names drB, not the front desk", "frontdeskB", false)

		// Searches count only what drB sees: A's and B's, never C's.
		all := 0 // A's and B's
		for _, p := range []string{A, w.B} {
			all += int(mustJSON(t, w.baseDo("GET", "Patient/"+p+"/Observation?_summary=count", nil))["total"].(float64))
		}
		r := w.do("drB", "GET", "Observation?_total=accurate&_count=7", nil)
		total, _ := r.body["total"].(float64)
		seen, pages, leakedC := 0, 0, 0
		for {
			pages++
			for _, e := range entriesOf(r.body) {
				seen++
				if get(e, "resource", "subject", "reference") == "Patient/"+C {
					leakedC++
				}
			}
			next := link(r.body, "next")
			if next == "" || pages > 100 {
				break
			}
			r = w.do("drB", "GET", next, nil)
		}
		if int(total) != all || seen != all || leakedC != 0 {
			t.Errorf("drB's Observation search: total %v, %d paged, %d of C; want %d and none of C", total, seen, leakedC, all)
		}
		if r := w.do("drB", "GET", "Patient?_total=accurate&_count=1000", nil); slices.Contains(r.resources(), "Patient/"+C) ||
			!slices.Contains(r.resources(), "Patient/"+A) || r.body["total"] != float64(2) {
			t.Errorf("drB's Patient search: %v (total %v), want A and B", r.resources(), r.body["total"])
		}

		// What drB may write on the referral: A's chart as the role
		// allows, not what decides who sees A, no deletes.
		aObs := w.res[A]["Observation"][0]
		writes := []struct {
			name, method, path string
			body               any
			want               int
		}{
			{"consult Observation", "POST", "Observation", map[string]any{"resourceType": "Observation", "status": "final",
				"code": map[string]any{"text": "echo"}, "subject": refTo("Patient/" + A)}, 201},
			{"order with himself as requester", "POST", "ServiceRequest", referral(A, "Practitioner/"+w.drB, "Organization/"+w.orgB), 201},
			{"update A's Patient", "PUT", "Patient/" + A, mustJSON(t, w.baseDo("GET", "Patient/"+A, nil)), 403},
			{"CareTeam naming himself", "POST", "CareTeam", map[string]any{"resourceType": "CareTeam", "subject": refTo("Patient/" + A),
				"participant": []any{map[string]any{"member": refTo("Practitioner/" + w.drB)}}}, 403},
			{"Consent for himself", "POST", "Consent", consent(A, permit("Practitioner/"+w.drB, nil)), 403},
			{"referral in A's name", "POST", "ServiceRequest", referral(A, "PractitionerRole/"+prA, "Practitioner/"+w.drB), 403},
			{"delete A's Observation", "DELETE", "Observation/" + aObs, nil, 403},
		}
		writesRight := 0
		for _, c := range writes {
			if r := w.do("drB", c.method, c.path, c.body); r.status != c.want {
				t.Errorf("drB on the referral: %s: %d, want %d: %s", c.name, r.status, c.want, r.raw)
			} else {
				writesRight++
			}
		}

		// Completing the referral ends it at the next request.
		w.setStatus("drA", "ServiceRequest", sr, "completed")
		check("referral completed", "drB", false)

		// A referral to drB's PractitionerRole for 5–10 March.
		sr2 := w.post("drA", withPeriod(referral(A, "Organization/"+w.orgA, "PractitionerRole/"+prB), "2025-03-05", "2025-03-10"))
		check("referral not begun", "drB", false)
		w.clock.advance(5 * 24 * time.Hour) // 6 March
		check("referral to drB's role, in its period", "drB", true)
		w.clock.advance(5 * 24 * time.Hour) // 11 March
		check("referral's period over", "drB", false)
		w.setStatus("drA", "ServiceRequest", sr2, "revoked")

		// A referral to organization B, for today: its front desk too.
		sr3 := w.post("drA", withDay(referral(A, "Practitioner/"+w.drA, "Organization/"+w.orgB), "2025-03-11"))
		check("referral to organization B (front desk)", "frontdeskB", true)
		check("referral to organization B (physician)", "drB", true)
		w.setStatus("drA", "ServiceRequest", sr3, "revoked")
		check("referral revoked", "frontdeskB", false)
		draft := referral(A, "Organization/"+w.orgA, "Practitioner/"+w.drB)
		draft["status"] = "draft"
		w.post("drA", draft)
		check("draft referral", "drB", false)

		// Consents.
		march := map[string]any{"start": "2025-03-01", "end": "2025-03-31"}
		c1 := w.post("drA", consent(A, permit("Practitioner/"+w.drB, march)))
		check("consent naming drB", "drB", true)
		if b := basisOf("drB"); !slices.ContainsFunc(b, func(b hale.Basis) bool { return b.Reference == "Consent/"+c1 && b.Patient == A }) {
			t.Errorf("the request's bases: %+v, want Consent/%s", b, c1)
		}
		// The audit trail: drB's reads of A name the consent and the
		// purpose of use; a read of B (drB's own patient) names neither.
		w.do("drB", "GET", "Patient/"+w.B, nil)
		if err := rec.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		audited, marked := 0, 0
		for _, a := range w.auditRecords("Consent/" + c1) {
			if a.agent == "user/drB" {
				audited++
				if slices.Contains(a.purposes, "TREAT") {
					marked++
				}
			}
		}
		if audited == 0 || marked != audited {
			t.Errorf("drB's accesses audited under Consent/%s: %d, with purposeOfUse TREAT: %d", c1, audited, marked)
		}
		ownRead := 0
		for _, a := range w.auditRecords("Patient/" + w.B) {
			if a.agent == "user/drB" && slices.Equal(a.entities, []string{"Patient/" + w.B}) {
				ownRead++
				if len(a.purposes) > 0 {
					t.Errorf("drB's read of his own patient B is audited with purposes %v", a.purposes)
				}
			}
		}
		if ownRead == 0 {
			t.Error("drB's read of B was not audited")
		}
		w.setStatus("drA", "Consent", c1, "inactive")
		check("consent withdrawn", "drB", false)

		deny := permit("Practitioner/"+w.drB, nil)
		deny["type"] = "deny"
		cd := w.post("drA", consent(A, deny))
		check("consent denying drB", "drB", false)
		w.setStatus("drA", "Consent", cd, "inactive")
		exception := permit("Practitioner/"+w.drB, nil)
		exception["provision"] = []any{map[string]any{"type": "deny", "class": []any{map[string]any{"system": "http://hl7.org/fhir/resource-types", "code": "DocumentReference"}}}}
		ce := w.post("drA", consent(A, exception))
		check("consent with an exception", "drB", false)
		w.setStatus("drA", "Consent", ce, "inactive")
		co := w.post("drA", consent(A, permit("Practitioner/"+w.drA, nil)))
		check("consent naming another", "drB", false)
		w.setStatus("drA", "Consent", co, "inactive")

		c2 := w.post("drA", consent(A, permit("PractitionerRole/"+prB, map[string]any{"end": "2025-03-12"})))
		check("consent naming drB's role", "drB", true)
		w.clock.advance(2 * 24 * time.Hour) // 13 March
		check("consent's period over", "drB", false)
		w.setStatus("drA", "Consent", c2, "inactive")

		purpose := permit("Organization/"+w.orgB, nil)
		purpose["purpose"] = []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ETREAT"}}
		c3 := w.post("drA", consent(A, purpose))
		check("consent naming organization B (front desk)", "frontdeskB", true)
		if b := basisOf("frontdeskB"); len(b) != 1 || b[0].Reference != "Consent/"+c3 || !slices.Equal(b[0].Purposes, []string{"ETREAT"}) {
			t.Errorf("the front desk's bases: %+v, want Consent/%s for ETREAT", b, c3)
		}
		w.setStatus("drA", "Consent", c3, "inactive")
		check("consent withdrawn (front desk)", "frontdeskB", false)

		// Another node sharing the database: it learns of a withdrawn
		// consent within basesTTL (250 ms).
		node2 := &access.Policy{Params: w.base.Params, Grants: w.grants, Now: w.clock.Now}
		c4 := w.post("drA", consent(A, permit("Practitioner/"+w.drB, nil)))
		bases2 := func() int {
			s, err := node2.Scope(context.Background(), w.store, w.who["drB"])
			if err != nil {
				t.Fatal(err)
			}
			return len(s.Bases())
		}
		if n := bases2(); n != 1 {
			t.Fatalf("node 2: drB's bases with a consent: %d", n)
		}
		w.setStatus("drA", "Consent", c4, "inactive")
		start := time.Now()
		for bases2() != 0 && time.Since(start) < 2*time.Second {
			time.Sleep(5 * time.Millisecond)
		}
		lag := time.Since(start)
		if lag > time.Second {
			t.Errorf("node 2 still honours the withdrawn consent after %v", lag)
		}

		fmt.Printf("referrals and consents (%s): access as expected in %d / %d cases; drB's writes on a referral as expected: %d / %d; C's Observations returned: %d; audited under the consent: %d / %d with purposeOfUse; withdrawal seen by another node after %v\n",
			w.store.Engine(), right, cases, writesRight, len(writes), leakedC, marked, audited, lag.Round(time.Millisecond))
	})
}

func withPeriod(res map[string]any, start, end string) map[string]any {
	res["occurrencePeriod"] = map[string]any{"start": start, "end": end}
	return res
}

func withDay(res map[string]any, day string) map[string]any {
	res["occurrenceDateTime"] = day
	return res
}

// auditRecord is what TestReferralConsent reads of an AuditEvent.
type auditRecord struct {
	agent              string
	entities, purposes []string
}

// auditRecords returns the audit records naming entity.
func (w *world) auditRecords(entity string) []auditRecord {
	w.t.Helper()
	var out []auditRecord
	err := w.store.View(context.Background(), func(r hale.Reader) error {
		page, err := r.(hale.AuditReader).SearchAudit(context.Background(), &hale.AuditQuery{Count: 1000,
			Where: []hale.AuditCondition{{Field: hale.AuditEntity, Values: []string{entity}}}})
		if err != nil {
			return err
		}
		for _, rec := range page.Records {
			var ev struct {
				Agent []struct {
					AltID        string `json:"altId"`
					PurposeOfUse []struct {
						Coding []struct{ Code string }
					}
				}
				Entity []struct {
					What struct{ Reference string }
				}
			}
			if err := json.Unmarshal(rec.Data, &ev); err != nil {
				return err
			}
			var a auditRecord
			if len(ev.Agent) > 0 {
				a.agent = ev.Agent[0].AltID
				for _, p := range ev.Agent[0].PurposeOfUse {
					for _, c := range p.Coding {
						a.purposes = append(a.purposes, c.Code)
					}
				}
			}
			for _, e := range ev.Entity {
				if e.What.Reference != "" {
					a.entities = append(a.entities, e.What.Reference)
				}
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}
