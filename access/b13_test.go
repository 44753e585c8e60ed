package access_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
)

// snapshot is B's resources of typ (and B's Patient) with their
// versions, as the store has them.
func (w *world) snapshot(typ string) string {
	var parts []string
	for _, path := range []string{"Patient/" + w.B + "/" + typ + "?_count=1000", "Patient?_id=" + w.B} {
		b := mustJSON(w.t, w.baseDo("GET", path, nil))
		for _, e := range entriesOf(b) {
			parts = append(parts, fmt.Sprint(get(e, "resource", "resourceType"), "/", get(e, "resource", "id"), "/", get(e, "resource", "meta", "versionId")))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func (w *world) count(typ string) int {
	b := mustJSON(w.t, w.baseDo("GET", typ+"?_summary=count", nil))
	n, _ := b["total"].(float64)
	return int(n)
}

// TestWriteIDOR is B13: with a caller who may write A's record, every way
// of writing to B's: creating into B's compartment, moving A's resource
// to B, updating, patching and deleting B's by id, conditional update
// and delete whose criteria match B, update as create with a B body,
// and transactions mixing A and B (which must leave A untouched too).
func TestWriteIDOR(t *testing.T) {
	engines(t, func(t *testing.T, w *world) {
		w.clinicians()
		w.who["smart-a"] = &hale.Principal{Subject: "user/drA", Role: hale.RolePhysician, FHIRUser: "Practitioner/" + w.drA,
			Organizations: []string{w.orgA}, Patient: w.A, Client: "app", Scopes: []string{"patient/*.*"}}
		for _, who := range []string{"drA", "smart-a"} {
			writes, touched, partial, transactions, ownWrites, ownTried := 0, 0, 0, 0, 0, 0
			for _, typ := range w.types() {
				a, b := w.res[w.A][typ][0], w.res[w.B][typ][0]
				bRes := mustJSON(t, w.baseDo("GET", typ+"/"+b, nil))
				aRes := mustJSON(t, w.baseDo("GET", typ+"/"+a, nil))
				moved := retarget(aRes, w.B).(map[string]any)
				intoB := retarget(w.examples[typ], w.B).(map[string]any)
				patch := `[{"op":"add","path":"/language","value":"en"}]`
				vectors := []vector{
					{"create into B", "POST", typ, intoB},
					{"move A's to B", "PUT", typ + "/" + a, moved},
					{"update B's", "PUT", typ + "/" + b, bRes},
					{"patch B's", "PATCH", typ + "/" + b, patch},
					{"delete B's", "DELETE", typ + "/" + b, nil},
					{"conditional delete", "DELETE", typ + "?_id=" + b, nil},
					{"conditional update", "PUT", typ + "?_id=" + b, intoB},
					{"update as create", "PUT", typ + "/new-" + b[:8], withID(intoB, "new-"+b[:8])},
					{"transaction A+B", "POST", "", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
						map[string]any{"resource": w.examples[typ], "request": map[string]any{"method": "POST", "url": typ}},
						map[string]any{"resource": bRes, "request": map[string]any{"method": "PUT", "url": typ + "/" + b}},
					}}},
					{"batch B", "POST", "", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
						map[string]any{"resource": bRes, "request": map[string]any{"method": "PUT", "url": typ + "/" + b}},
						map[string]any{"request": map[string]any{"method": "DELETE", "url": typ + "/" + b}},
					}}},
				}
				for _, v := range vectors {
					before, nA := w.snapshot(typ), w.count(typ)
					r := w.do(who, v.method, v.path, v.body)
					writes++
					if after := w.snapshot(typ); after != before {
						touched++
						t.Errorf("%s %s as %s (%d): B's record changed:\nbefore %s\nafter  %s\n%s", typ, v.name, who, r.status, before, after, r.raw)
					}
					if v.name == "transaction A+B" {
						transactions++
						if n := w.count(typ); n != nA {
							partial++
							t.Errorf("%s transaction as %s: %d → %d resources; it committed in part", typ, who, nA, n)
						}
					}
				}
				// Positive control: the same caller may update A's own
				// resource where the role permits updates.
				if w.who[who].Role == hale.RolePhysician && roleUpdates(typ) {
					ownTried++
					if r := w.do(who, "PUT", typ+"/"+a, aRes); r.status == 200 {
						ownWrites++
					} else {
						t.Errorf("%s: %s could not update A's own %s/%s: %d %s", who, who, typ, a, r.status, r.raw)
					}
				}
			}
			fmt.Printf("B13 write-side IDOR (%s, %s): writes that touch B: %d / %d; transactions committed in part: %d / %d; A's own updates accepted: %d / %d\n",
				w.store.Engine(), who, touched, writes, partial, transactions, ownWrites, ownTried)
		}
		// A physician of A cannot grant themselves B through a care team
		// or by moving B to their organization.
		ct := map[string]any{"resourceType": "CareTeam", "subject": map[string]any{"reference": "Patient/" + w.B},
			"participant": []any{map[string]any{"member": map[string]any{"reference": "Practitioner/" + w.drA}}}}
		if r := w.do("drA", "POST", "CareTeam", ct); r.status != 403 {
			t.Errorf("self-granting CareTeam for B: %d %s", r.status, r.raw)
		}
		if r := w.do("drA", "GET", "Patient/"+w.B, nil); r.status != 404 {
			t.Errorf("B readable after the CareTeam attempt: %d", r.status)
		}
		p := mustJSON(t, w.baseDo("GET", "Patient/"+w.B, nil))
		p["managingOrganization"] = map[string]any{"reference": "Organization/" + w.orgA}
		if r := w.do("drA", "PUT", "Patient/"+w.B, p); r.status != 403 && r.status != 404 {
			t.Errorf("moving B to A's organization: %d %s", r.status, r.raw)
		}
	})
}

// roleUpdates reports whether a physician may update typ (docs/security.md).
func roleUpdates(typ string) bool {
	switch typ {
	case "AuditEvent", "Group", "Provenance", "Account", "ChargeItem", "Claim", "ClaimResponse", "Coverage",
		"CoverageEligibilityRequest", "CoverageEligibilityResponse", "EnrollmentRequest", "ExplanationOfBenefit", "Invoice":
		return false
	}
	return true
}

func withID(res map[string]any, id string) map[string]any {
	out := map[string]any{}
	for k, v := range res {
		out[k] = v
	}
	out["id"] = id
	return out
}
