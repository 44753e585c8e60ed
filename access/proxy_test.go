package access_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/export"
)

func binary(securityContext string) map[string]any {
	b := map[string]any{"resourceType": "Binary", "contentType": "text/plain", "data": "aGVsbG8="}
	if securityContext != "" {
		b["securityContext"] = refTo(securityContext)
	}
	return b
}

func group(manager string, members ...string) map[string]any {
	g := map[string]any{"resourceType": "Group", "type": "person", "actual": true}
	if manager != "" {
		g["managingEntity"] = refTo(manager)
	}
	var ms []any
	for _, m := range members {
		ms = append(ms, map[string]any{"entity": refTo(m)})
	}
	if ms != nil {
		g["member"] = ms
	}
	return g
}

// docFor is a DocumentReference of patient whose attachment is url.
func docFor(patient, url string) map[string]any {
	return map[string]any{"resourceType": "DocumentReference", "status": "current", "subject": refTo("Patient/" + patient),
		"content": []any{map[string]any{"attachment": map[string]any{"contentType": "text/plain", "url": url}}}}
}

// TestBinaryGroup: Binary and Group for callers other than
// backend-services clients. A Binary is visible when its securityContext
// is, or a visible DocumentReference points to it; a Group when the
// caller's organization manages it and every member is visible. What is
// hidden answers exactly like what does not exist; neither type is
// searchable; a Group export exports only the members the caller sees
// when it runs.
func TestBinaryGroup(t *testing.T) {
	engines(t, func(t *testing.T, w *world) {
		w.clinicians()
		w.patientApps()
		A, B := w.A, w.B
		docA := w.res[A]["DocumentReference"][0]
		obsB := w.res[B]["Observation"][0]
		// Binaries of A: by securityContext (the patient, a document),
		// and through a DocumentReference of A pointing to it.
		binA := []string{w.create("Binary", binary("Patient/"+A)), w.create("Binary", binary("DocumentReference/"+docA))}
		pointed := w.create("Binary", binary(""))
		w.create("DocumentReference", docFor(A, "Binary/"+pointed))
		binA = append(binA, pointed)
		// Binaries of B, and one that stands for nothing.
		binB := []string{w.create("Binary", binary("Patient/"+B)), w.create("Binary", binary("Observation/"+obsB))}
		pointedB := w.create("Binary", binary(""))
		w.create("DocumentReference", docFor(B, "Binary/"+pointedB))
		binB = append(binB, pointedB, w.create("Binary", binary("")))

		gA := w.create("Group", group("Organization/"+w.orgA, "Patient/"+A))
		gAPrac := w.create("Group", group("Organization/"+w.orgA, "Patient/"+A, "Practitioner/"+w.drB))
		gDr := w.create("Group", group("Practitioner/"+w.drA, "Patient/"+A))
		hiddenGroups := map[string]string{
			"members A and B":         w.create("Group", group("Organization/"+w.orgA, "Patient/"+A, "Patient/"+B)),
			"no managing entity":      w.create("Group", group("", "Patient/"+A)),
			"managed by B":            w.create("Group", group("Organization/"+w.orgB, "Patient/"+A)),
			"a member Group of B":     w.create("Group", group("Organization/"+w.orgA, "Group/"+w.res[B]["Group"][0])),
			"a missing member":        w.create("Group", group("Organization/"+w.orgA, "Patient/"+A, "Patient/"+missing)),
			"a member of another org": w.create("Group", group("Organization/"+w.orgA, "Patient/"+B)),
		}

		reads, readOK := 0, 0
		expect := func(who, path string, want int) {
			t.Helper()
			reads++
			if r := w.do(who, "GET", path, nil); r.status != want {
				t.Errorf("%s GET %s: %d, want %d: %s", who, path, r.status, want, r.raw)
			} else {
				readOK++
			}
		}
		for _, who := range []string{"drA", "nurseA", "a-app"} {
			for _, id := range binA {
				expect(who, "Binary/"+id, 200)
			}
		}
		for _, id := range binA {
			expect("b-app", "Binary/"+id, 404)
		}
		for _, who := range []string{"drA", "nurseA"} {
			for _, id := range []string{gA, gAPrac} {
				expect(who, "Group/"+id, 200)
			}
		}
		expect("drA", "Group/"+gDr, 200)
		expect("nurseA", "Group/"+gDr, 404) // managed by drA, not by the organization
		expect("a-app", "Group/"+gA, 404)   // patients read no Group
		expect("drB", "Group/"+gA, 404)

		// Hidden answers like missing: read, vread, history, search.
		pairs, distinguishable := 0, 0
		compare := func(who, name, pathHidden, pathNone string, ids ...string) {
			t.Helper()
			pairs++
			sh, nh := normalize(w.do(who, "GET", pathHidden, nil), ids...)
			sn, nn := normalize(w.do(who, "GET", pathNone, nil), ids...)
			if sh != sn || !reflect.DeepEqual(nh, nn) {
				distinguishable++
				t.Errorf("%s as %s: hidden and missing differ: %d %v / %d %v", name, who, sh, nh, sn, nn)
			}
		}
		hidden := map[string]string{}
		for i, id := range binB {
			hidden[fmt.Sprintf("Binary of B #%d", i)] = "Binary/" + id
		}
		for name, id := range hiddenGroups {
			hidden["Group with "+name] = "Group/" + id
		}
		for _, who := range []string{"drA", "a-app"} {
			for name, ref := range hidden {
				typ, id, _ := strings.Cut(ref, "/")
				for _, v := range []string{"%s/%s", "%s/%s/_history/1", "%s/%s/_history", "%s?_id=%s&_total=accurate"} {
					compare(who, name+" "+v, fmt.Sprintf(v, typ, id), fmt.Sprintf(v, typ, missing), id, missing)
				}
			}
		}
		// Not searchable: A's own Binary and Group are not found by a
		// search either.
		for _, p := range []string{"Binary?_id=" + binA[0], "Group?_id=" + gA, "Group?member=Patient/" + A} {
			if r := w.do("drA", "GET", p, nil); len(r.resources()) != 0 {
				t.Errorf("drA searched %s: %v", p, r.resources())
			}
		}

		// Writes: a Binary must stand for what the writer sees.
		writes, writesOK := 0, 0
		write := func(name, method, path string, body any, want int) {
			t.Helper()
			writes++
			if r := w.do("drA", method, path, body); r.status != want {
				t.Errorf("drA %s: %d, want %d: %s", name, r.status, want, r.raw)
			} else {
				writesOK++
			}
		}
		write("creates a Binary of A", "POST", "Binary", binary("Patient/"+A), 201)
		write("creates a Binary of B", "POST", "Binary", binary("Patient/"+B), 403)
		write("creates a Binary of nothing", "POST", "Binary", binary(""), 403)
		moved := binary("Patient/" + B)
		moved["id"] = binA[0]
		write("moves A's Binary to B", "PUT", "Binary/"+binA[0], moved, 403)
		stolen := binary("Patient/" + A)
		stolen["id"] = binB[0]
		// As for an id that does not exist: update as create is refused,
		// a delete does nothing.
		write("takes B's Binary", "PUT", "Binary/"+binB[0], stolen, 403)
		write("deletes B's Binary", "DELETE", "Binary/"+binB[0], nil, 204)
		if r := w.baseDo("GET", "Binary/"+binB[0], nil); r.Status != 200 {
			t.Errorf("B's Binary after drA's attempts: %d", r.Status)
		}
		write("deletes A's Binary", "DELETE", "Binary/"+binA[0], nil, 204)
		expect("drA", "Binary/"+binA[0], 410)
		expect("b-app", "Binary/"+binA[0], 404)
		write("creates a Group", "POST", "Group", group("Organization/"+w.orgA, "Patient/"+A), 403)

		// Group export: a Group drA may not read is not found; one whose
		// member becomes hidden before the job runs exports the rest.
		if r := w.do("drA", "GET", "Group/"+hiddenGroups["members A and B"]+"/$export", nil, "Prefer: respond-async"); r.status != 404 {
			t.Errorf("export of a Group with a hidden member: %d, want 404", r.status)
		}
		prA := w.create("PractitionerRole", map[string]any{"resourceType": "PractitionerRole",
			"practitioner": refTo("Practitioner/" + w.drA), "organization": refTo("Organization/" + w.orgA)})
		sr := w.post("drA", referral(A, "PractitionerRole/"+prA, "Practitioner/"+w.drB))
		gBA := w.create("Group", group("Organization/"+w.orgB, "Patient/"+B, "Patient/"+A))
		r := w.do("drB", "GET", "Group/"+gBA+"/$export", nil, "Prefer: respond-async")
		if r.status != 202 {
			t.Fatalf("drB's export of his Group with A on a referral: %d %s", r.status, r.raw)
		}
		status := r.header.Get("Content-Location")
		w.setStatus("drA", "ServiceRequest", sr, "completed")
		lines, ofA, ofB := w.runExport(t, "drB", status)
		fmt.Printf("Binary and Group (%s): reads as expected %d / %d; hidden/missing pairs distinguishable: %d / %d; writes as expected %d / %d; Group export after A's referral ended: %d lines, %d of A, %d of B\n",
			w.store.Engine(), readOK, reads, distinguishable, pairs, writesOK, writes, lines, ofA, ofB)
		if ofA != 0 || ofB == 0 {
			t.Errorf("Group export after the referral ended: %d resources of A, %d of B", ofA, ofB)
		}
	})
}

// runExport runs the queued export jobs and reads the files of the job
// at status as who: the lines, and how many are A's and B's.
func (w *world) runExport(t *testing.T, who, status string) (lines, ofA, ofB int) {
	runner := export.New(w.store, w.svc)
	runner.Access = func(ctx context.Context, p *hale.Principal, s hale.Store) (hale.Store, error) {
		return w.pol.Scope(ctx, s, p)
	}
	if ran, err := runner.RunOnce(context.Background()); !ran || err != nil {
		t.Fatalf("runner: ran %v, %v", ran, err)
	}
	m := w.do(who, "GET", status, nil)
	if m.status != 200 {
		t.Fatalf("manifest: %d %s", m.status, m.raw)
	}
	inA := map[string]bool{}
	for typ, ids := range w.res[w.A] {
		for _, id := range ids {
			inA[typ+"/"+id] = true
		}
	}
	outputs, _ := m.body["output"].([]any)
	for _, o := range outputs {
		f := w.do(who, "GET", get(o, "url").(string), nil, "Accept: application/fhir+ndjson")
		for _, line := range strings.Split(strings.TrimSpace(string(f.raw)), "\n") {
			if line == "" {
				continue
			}
			var res map[string]any
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatal(err)
			}
			lines++
			ref := fmt.Sprint(res["resourceType"], "/", res["id"])
			if inA[ref] {
				ofA++
			}
			if w.inB[ref] {
				ofB++
			}
		}
	}
	return lines, ofA, ofB
}
