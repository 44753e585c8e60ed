package rest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/export"
	"github.com/hale-ehr/hale/postgres"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
	"github.com/jackc/pgx/v5"
)

// Bulk Data Access 2.0 $export (hl7.org/fhir/uv/bulkdata/export.html), on
// both engines, through HTTP: kick-off, polling, manifest, files, cancel,
// a job taken over by a second runner after the first stopped part-way,
// and expiry.

// startRunner runs an export runner against c's store until the test
// ends; mod adjusts it before it starts.
func startRunner(t *testing.T, c *client, mod func(r *export.Runner)) *export.Runner {
	t.Helper()
	r := export.New(c.store, c.svc)
	r.Poll = 10 * time.Millisecond
	r.Node = "node-" + t.Name()
	if mod != nil {
		mod(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// exportSeed writes three patients with Observations (codes A and B), a
// Condition and an Encounter each, a Practitioner and an Organization
// (outside the Patient compartment), and Group g1 of p1 and p2.
func exportSeed(t *testing.T, c *client) {
	t.Helper()
	put := func(typ, id, body string) {
		t.Helper()
		c.do("PUT", "/"+typ+"/"+id, body).want(t, 201)
	}
	put("Practitioner", "dr1", `{"resourceType":"Practitioner","id":"dr1","name":[{"family":"Who"}]}`)
	put("Organization", "org1", `{"resourceType":"Organization","id":"org1","name":"General"}`)
	for _, p := range []string{"p1", "p2", "p3"} {
		put("Patient", p, fmt.Sprintf(`{"resourceType":"Patient","id":%q,"gender":"female","birthDate":"1970-01-01","name":[{"family":"F%s"}],"managingOrganization":{"reference":"Organization/org1"}}`, p, p))
		for i, code := range []string{"A", "A", "B", "B"} {
			put("Observation", fmt.Sprintf("%s-o%d", p, i), fmt.Sprintf(`{"resourceType":"Observation","id":"%s-o%d","status":"final","code":{"coding":[{"system":"http://loinc.org","code":%q}]},"subject":{"reference":"Patient/%s"},"performer":[{"reference":"Practitioner/dr1"}]}`, p, i, code, p))
		}
		put("Condition", p+"-c", fmt.Sprintf(`{"resourceType":"Condition","id":"%s-c","subject":{"reference":"Patient/%s"}}`, p, p))
		put("Encounter", p+"-e", fmt.Sprintf(`{"resourceType":"Encounter","id":"%s-e","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/%s"}}`, p, p))
	}
	put("Group", "g1", `{"resourceType":"Group","id":"g1","type":"person","actual":true,"member":[{"entity":{"reference":"Patient/p1"}},{"entity":{"reference":"Patient/p2"}},{"entity":{"reference":"Patient/p3"},"inactive":true}]}`)
}

// kickoff starts an export and returns the status URL.
func kickoff(t testing.TB, c *client, method, path string, body any, headers ...string) string {
	t.Helper()
	r := c.do(method, path, body, append([]string{"Prefer: respond-async", "Accept: application/fhir+json"}, headers...)...).want(t, 202)
	loc := r.header.Get("Content-Location")
	if !strings.HasPrefix(loc, c.base+"/$export-status/") {
		t.Fatalf("Content-Location %q, want %s/$export-status/[job]", loc, c.base)
	}
	return loc
}

// poll waits for the export at status to finish and returns the manifest.
func poll(t testing.TB, c *client, status string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r := c.do("GET", strings.TrimPrefix(status, c.base), nil, "Accept: application/json")
		switch r.status {
		case 202:
			if r.header.Get("X-Progress") == "" || r.header.Get("Retry-After") == "" {
				t.Fatalf("202 without X-Progress and Retry-After: %v", r.header)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		case 200:
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("manifest Content-Type %q, want application/json", ct)
			}
			if _, err := http.ParseTime(r.header.Get("Expires")); err != nil {
				t.Errorf("manifest Expires %q: %v", r.header.Get("Expires"), err)
			}
			if err := json.Unmarshal(r.raw, &r.body); err != nil {
				t.Fatal(err)
			}
			return r.body
		default:
			t.Fatalf("status %d: %s", r.status, r.raw)
		}
	}
	t.Fatal("export did not finish within a minute")
	return nil
}

// fetch downloads an export file (an absolute URL or a path under the
// base) as the client of the IG does, with Accept: application/fhir+ndjson;
// the body is left undecoded (it is not one JSON document).
func fetch(t testing.TB, c *client, u string) *resp {
	t.Helper()
	if !strings.HasPrefix(u, "http") {
		u = c.base + u
	}
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/fhir+ndjson")
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Body.Close()
	raw, err := io.ReadAll(hr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &resp{status: hr.StatusCode, header: hr.Header, raw: raw}
}

// exported downloads every output file of a manifest and returns the
// lines by "Type/id", failing on a duplicate, a line whose type is not its
// file's, or a count that does not match.
func exported(t *testing.T, c *client, manifest map[string]any) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, o := range get(manifest, "output").([]any) {
		typ, u := str(get(o, "type")), str(get(o, "url"))
		r := fetch(t, c, u).want(t, 200)
		if ct := r.header.Get("Content-Type"); ct != "application/fhir+ndjson" {
			t.Errorf("%s: Content-Type %q", u, ct)
		}
		sc := bufio.NewScanner(bytes.NewReader(r.raw))
		sc.Buffer(nil, 16<<20)
		n := 0
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s line %d: %v", u, n+1, err)
			}
			if m["resourceType"] != typ {
				t.Fatalf("%s: a %v in a file of %s", u, m["resourceType"], typ)
			}
			key := typ + "/" + str(m["id"])
			if _, dup := out[key]; dup {
				t.Fatalf("%s exported twice", key)
			}
			out[key] = slices.Clone(sc.Bytes())
			n++
		}
		if want := get(o, "count"); want != float64(n) {
			t.Errorf("%s: %d lines, manifest count %v", u, n, want)
		}
	}
	return out
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// stored returns the stored bytes of every current resource of types.
func stored(t *testing.T, c *client, types ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := c.store.View(t.Context(), func(r hale.Reader) error {
		res, err := r.(hale.Searcher).Search(t.Context(), &hale.Query{Types: types, Count: 100000})
		if err != nil {
			return err
		}
		for _, v := range res.Versions {
			out[v.Type+"/"+v.ID] = v.Data
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantKeys(t *testing.T, got map[string][]byte, want ...string) {
	t.Helper()
	slices.Sort(want)
	if g := keys(got); !slices.Equal(g, want) {
		t.Fatalf("exported %v,\nwant %v", g, want)
	}
}

func TestExportSystem(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		exportSeed(t, c)
		startRunner(t, c, nil)
		before := time.Now().Add(-time.Second)
		status := kickoff(t, c, "GET", "/$export", nil)
		m := poll(t, c, status)

		tt, err := time.Parse(time.RFC3339, str(m["transactionTime"]))
		if err != nil || tt.Before(before) || tt.After(time.Now()) {
			t.Errorf("transactionTime %v (%v)", m["transactionTime"], err)
		}
		if m["request"] != c.base+"/$export" || m["requiresAccessToken"] != true {
			t.Errorf("manifest request %v, requiresAccessToken %v", m["request"], m["requiresAccessToken"])
		}
		if errs, ok := m["error"].([]any); !ok || len(errs) != 0 {
			t.Errorf("manifest error = %v, want []", m["error"])
		}
		got := exported(t, c, m)
		want := stored(t, c)
		if len(got) != len(want) || len(got) != 2+3*7+1 {
			t.Fatalf("exported %d resources, the store has %d", len(got), len(want))
		}
		for k, data := range want {
			if !bytes.Equal(got[k], data) {
				t.Errorf("%s: exported %s\nstored %s", k, got[k], data)
			}
		}
		// A file of one type: Observation-1.ndjson with all twelve.
		var obs []any
		for _, o := range m["output"].([]any) {
			if get(o, "type") == "Observation" {
				obs = append(obs, o)
			}
		}
		if len(obs) != 1 || get(obs[0], "count") != float64(12) || !strings.HasSuffix(str(get(obs[0], "url")), "/Observation-1.ndjson") {
			t.Errorf("Observation outputs %v", obs)
		}
		// Resources written after the kick-off belong to the next export.
		c.do("PUT", "/Patient/late", `{"resourceType":"Patient","id":"late"}`).want(t, 201)
		if _, ok := exported(t, c, poll(t, c, status))["Patient/late"]; ok {
			t.Error("a patient written after transactionTime is in the export")
		}
	})
}

func TestExportKickoffErrors(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		exportSeed(t, c)
		for _, tc := range []struct {
			method, path string
			body         any
			headers      []string
			status       int
			says         string
		}{
			{"GET", "/$export", nil, []string{"Accept: application/fhir+json"}, 400, "respond-async"},
			{"GET", "/$export?_outputFormat=text/csv", nil, nil, 400, "_outputFormat"},
			{"GET", "/$export?_type=Nope", nil, nil, 400, "Nope"},
			{"GET", "/$export?_since=2020", nil, nil, 400, "instant"},
			{"GET", "/$export?_until=2020-01-01T00:00:00Z", nil, nil, 400, "_until"},
			{"GET", "/$export?includeAssociatedData=LatestProvenanceResources", nil, nil, 400, "includeAssociatedData"},
			{"GET", "/$export?_typeFilter=" + url.QueryEscape("Observation?code=A&_sort=date"), nil, nil, 400, "_sort"},
			{"GET", "/$export?_typeFilter=" + url.QueryEscape("Observation?nonsense=1"), nil, nil, 400, "nonsense"},
			{"GET", "/$export?_typeFilter=" + url.QueryEscape("Observation?date=notadate"), nil, nil, 400, "date"},
			{"GET", "/$export?_elements=Patient.name.given", nil, nil, 400, "root element"},
			{"GET", "/Patient/$export?_type=Practitioner", nil, nil, 400, "Patient compartment"},
			{"GET", "/Observation/$export", nil, nil, 404, "$export"},
			{"GET", "/Patient/p1/$export", nil, nil, 404, "$export"},
			{"GET", "/Group/nope/$export", nil, nil, 404, "Group/nope"},
			{"PUT", "/$export", nil, nil, 405, "GET or POST"},
			{"POST", "/$export", `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/p1"}}]}`, nil, 400, "system-level"},
			{"POST", "/Group/g1/$export", `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/p3"}}]}`, nil, 400, "not a member"},
			{"POST", "/Patient/$export", `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/zz"}}]}`, nil, 400, "no such patient"},
			{"POST", "/Patient/$export", `{"resourceType":"Patient"}`, nil, 400, "Parameters"},
			{"GET", "/$export-status/nope", nil, nil, 404, "nope"},
			{"GET", "/$export-file/nope/Patient-1.ndjson", nil, nil, 404, "nope"},
		} {
			h := tc.headers
			if h == nil {
				h = []string{"Prefer: respond-async"}
			}
			r := c.do(tc.method, tc.path, tc.body, h...).want(t, tc.status)
			if says := r.outcome(t); !strings.Contains(says, tc.says) {
				t.Errorf("%s %s: outcome %q does not mention %q", tc.method, tc.path, says, tc.says)
			}
		}
		if n := jobCount(t, c); n != 0 {
			t.Errorf("%d jobs created by failed kick-offs", n)
		}
	})
}

// jobCount counts export jobs by trying their status pages: the test has
// no other way in; it reads the store instead.
func jobCount(t *testing.T, c *client) int {
	t.Helper()
	n := 0
	// Claim with a far future clock: a claimable job means one was created.
	js := c.store.(hale.JobStore)
	for {
		j, err := js.ClaimJob(t.Context(), "export", "counter", time.Now().Add(1000*time.Hour), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if j == nil {
			return n
		}
		n++
	}
}

func TestExportLenient(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		exportSeed(t, c)
		startRunner(t, c, nil)
		status := kickoff(t, c, "GET", "/Patient/$export?_type=Patient,Practitioner&includeAssociatedData=LatestProvenanceResources",
			nil, "Prefer: respond-async, handling=lenient")
		m := poll(t, c, status)
		wantKeys(t, exported(t, c, m), "Patient/p1", "Patient/p2", "Patient/p3")
		errs, _ := m["error"].([]any)
		if len(errs) != 1 || get(errs[0], "type") != "OperationOutcome" || get(errs[0], "count") != float64(2) {
			t.Fatalf("manifest error = %v, want one file of two OperationOutcomes", m["error"])
		}
		r := fetch(t, c, str(get(errs[0], "url"))).want(t, 200)
		if !strings.Contains(string(r.raw), "Practitioner") || !strings.Contains(string(r.raw), "includeAssociatedData") ||
			strings.Count(string(r.raw), "\n") != 2 || !strings.Contains(string(r.raw), `"resourceType":"OperationOutcome"`) {
			t.Errorf("error file: %s", r.raw)
		}
	})
}

func TestExportPatientLevel(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		exportSeed(t, c)
		startRunner(t, c, nil)
		// Every patient's compartment (the Group too: Group.member is a
		// compartment parameter); nothing outside it.
		got := exported(t, c, poll(t, c, kickoff(t, c, "GET", "/Patient/$export", nil)))
		want := []string{"Group/g1"}
		for _, p := range []string{"p1", "p2", "p3"} {
			want = append(want, "Patient/"+p, "Condition/"+p+"-c", "Encounter/"+p+"-e")
			for i := range 4 {
				want = append(want, fmt.Sprintf("Observation/%s-o%d", p, i))
			}
		}
		wantKeys(t, got, want...)

		// _type, and a patient list (POST).
		got = exported(t, c, poll(t, c, kickoff(t, c, "POST", "/Patient/$export",
			`{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient,Condition"},
			 {"name":"patient","valueReference":{"reference":"Patient/p3"}}]}`)))
		wantKeys(t, got, "Patient/p3", "Condition/p3-c")
	})
}

func TestExportGroup(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		exportSeed(t, c)
		startRunner(t, c, nil)
		// The active members p1 and p2 (p3 is inactive).
		m := poll(t, c, kickoff(t, c, "GET", "/Group/g1/$export?_type=Patient,Encounter", nil))
		if m["request"] != c.base+"/Group/g1/$export?_type=Patient,Encounter" {
			t.Errorf("request %v", m["request"])
		}
		wantKeys(t, exported(t, c, m), "Patient/p1", "Patient/p2", "Encounter/p1-e", "Encounter/p2-e")

		// The patient parameter narrows the group.
		got := exported(t, c, poll(t, c, kickoff(t, c, "POST", "/Group/g1/$export",
			`{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/p2"}},
			 {"name":"_typeFilter","valueString":"Observation?code=B"}]}`)))
		wantKeys(t, got, "Patient/p2", "Condition/p2-c", "Encounter/p2-e", "Observation/p2-o2", "Observation/p2-o3", "Group/g1")

		// An empty group exports nothing.
		c.do("PUT", "/Group/empty", `{"resourceType":"Group","id":"empty","type":"person","actual":true}`).want(t, 201)
		m = poll(t, c, kickoff(t, c, "GET", "/Group/empty/$export", nil))
		if out := m["output"].([]any); len(out) != 0 {
			t.Errorf("empty group output %v", out)
		}
	})
}

func TestExportFilters(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		exportSeed(t, c)
		startRunner(t, c, nil)
		// _typeFilter: two overlapping alternatives, each resource once.
		f := url.QueryEscape("Observation?code=A") + "," + url.QueryEscape("Observation?subject=Patient/p1")
		got := exported(t, c, poll(t, c, kickoff(t, c, "GET", "/$export?_type=Observation,Practitioner&_typeFilter="+f, nil)))
		wantKeys(t, got, "Practitioner/dr1",
			"Observation/p1-o0", "Observation/p1-o1", "Observation/p1-o2", "Observation/p1-o3",
			"Observation/p2-o0", "Observation/p2-o1", "Observation/p3-o0", "Observation/p3-o1")

		// A comma inside a filter's value stays in the filter.
		got = exported(t, c, poll(t, c, kickoff(t, c, "GET", "/$export?_type=Observation&_typeFilter="+
			url.QueryEscape("Observation?_id=p1-o0,p2-o3"), nil)))
		wantKeys(t, got, "Observation/p1-o0", "Observation/p2-o3")

		// _since: only what changed at or after the instant.
		time.Sleep(5 * time.Millisecond)
		since := time.Now().UTC()
		time.Sleep(5 * time.Millisecond)
		c.do("PUT", "/Observation/p2-o1", `{"resourceType":"Observation","id":"p2-o1","status":"amended","code":{"text":"x"},"subject":{"reference":"Patient/p2"}}`).want(t, 200)
		got = exported(t, c, poll(t, c, kickoff(t, c, "GET", "/$export?_since="+since.Format("2006-01-02T15:04:05.000Z"), nil)))
		wantKeys(t, got, "Observation/p2-o1")

		// _elements: Patient.gender for patients; "status" for every type.
		got = exported(t, c, poll(t, c, kickoff(t, c, "GET", "/$export?_type=Patient,Encounter,Practitioner&_elements=Patient.gender,status", nil)))
		var p map[string]any
		json.Unmarshal(got["Patient/p1"], &p)
		if p["gender"] != "female" || p["birthDate"] != nil || p["name"] != nil || p["status"] != nil {
			t.Errorf("Patient with _elements=Patient.gender,status: %s", got["Patient/p1"])
		}
		if tag := get(p, "meta", "tag", 0, "code"); tag != "SUBSETTED" {
			t.Errorf("subset Patient not tagged SUBSETTED: %s", got["Patient/p1"])
		}
		var e map[string]any
		json.Unmarshal(got["Encounter/p1-e"], &e)
		if e["status"] != "finished" || e["class"] == nil /* mandatory */ || e["subject"] != nil {
			t.Errorf("Encounter with _elements=status: %s", got["Encounter/p1-e"])
		}
		var dr map[string]any
		json.Unmarshal(got["Practitioner/dr1"], &dr)
		if dr["name"] != nil {
			t.Errorf("Practitioner with _elements=status: %s", got["Practitioner/dr1"])
		}
	})
}

func TestExportCancel(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		exportSeed(t, c)
		// Cancelled before any runner saw it.
		status := kickoff(t, c, "GET", "/$export", nil)
		path := strings.TrimPrefix(status, c.base)
		r := c.do("DELETE", path, nil).want(t, 202)
		if !strings.Contains(r.outcome(t), "cancelled") {
			t.Errorf("DELETE answered %s", r.raw)
		}
		c.do("GET", path, nil).want(t, 404).outcome(t)
		c.do("DELETE", path, nil).want(t, 404)
		if n := jobCount(t, c); n != 0 {
			t.Fatalf("%d jobs after cancel", n)
		}

		// Cancelled while running, after its first file: the runner
		// stops at its next write and leaves nothing behind.
		var once sync.Once
		cancelled := make(chan struct{})
		startRunner(t, c, func(r *export.Runner) {
			r.PartSize = 2
			r.OnPart = func(j *hale.Job, f hale.JobFile) {
				once.Do(func() {
					c.do("DELETE", "/$export-status/"+j.ID, nil).want(t, 202)
					close(cancelled)
				})
			}
		})
		status = kickoff(t, c, "GET", "/$export", nil)
		<-cancelled
		path = strings.TrimPrefix(status, c.base)
		id := path[strings.LastIndex(path, "/")+1:]
		time.Sleep(100 * time.Millisecond)
		c.do("GET", path, nil).want(t, 404)
		fetch(t, c, "/$export-file/"+id+"/Patient-1.ndjson").want(t, 404)
		if files, err := c.store.(hale.JobStore).ListFiles(t.Context(), id); err != nil || len(files) != 0 {
			t.Errorf("files of a cancelled job: %v, %v", files, err)
		}

		// Done, then deleted: the files go too.
		status = kickoff(t, c, "GET", "/$export?_type=Patient", nil)
		m := poll(t, c, status)
		file := str(get(m, "output", 0, "url"))
		fetch(t, c, file).want(t, 200)
		c.do("DELETE", strings.TrimPrefix(status, c.base), nil).want(t, 202)
		fetch(t, c, file).want(t, 404)
	})
}

// TestExportRestart: a runner that stops after its first file (a node that
// died: no clean-up, its lease still running) leaves the job running; a
// second runner, on another node, takes it over once the lease has run
// out and finishes it from the checkpoint, with no resource missing or
// written twice.
func TestExportRestart(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		exportSeed(t, c)
		status := kickoff(t, c, "GET", "/$export?_type=Observation,Patient,Encounter", nil)
		path := strings.TrimPrefix(status, c.base)
		id := path[strings.LastIndex(path, "/")+1:]

		ctx, stop := context.WithCancel(t.Context())
		first := export.New(c.store, c.svc)
		first.Node, first.PartSize, first.ChunkSize, first.Lease = "node-a", 5, 100, time.Hour
		first.OnPart = func(*hale.Job, hale.JobFile) { stop() }
		if ran, err := first.RunOnce(ctx); !ran || err != nil {
			t.Fatalf("first runner: ran %v, %v", ran, err)
		}
		js := c.store.(hale.JobStore)
		j, err := js.GetJob(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		files, _ := js.ListFiles(t.Context(), id)
		if j.Status != hale.JobRunning || j.Node != "node-a" || len(files) != 1 || files[0].Count != 5 {
			t.Fatalf("after the first runner stopped: job %s on %s, files %+v", j.Status, j.Node, files)
		}
		c.do("GET", path, nil).want(t, 202)

		// While node-a's lease runs, nobody else takes the job.
		second := export.New(c.store, c.svc)
		second.Node, second.PartSize, second.ChunkSize = "node-b", 5, 100
		if ran, err := second.RunOnce(t.Context()); ran || err != nil {
			t.Fatalf("second runner took a leased job: %v, %v", ran, err)
		}
		// An hour later node-a's lease has run out.
		second.Now = func() time.Time { return time.Now().Add(time.Hour + time.Minute) }
		if ran, err := second.RunOnce(t.Context()); !ran || err != nil {
			t.Fatalf("second runner: ran %v, %v", ran, err)
		}
		j, _ = js.GetJob(t.Context(), id)
		if j.Status != hale.JobDone || j.Node != "node-b" || j.Claims != 2 {
			t.Fatalf("job %s on %s after %d claims, want done on node-b after 2", j.Status, j.Node, j.Claims)
		}
		m := poll(t, c, status)
		got := exported(t, c, m)
		want := stored(t, c, "Observation", "Patient", "Encounter")
		wantKeys(t, got, keys(want)...)
		for k := range want {
			if !bytes.Equal(got[k], want[k]) {
				t.Errorf("%s differs from the stored resource", k)
			}
		}
		var names []string
		for _, o := range m["output"].([]any) {
			u := str(get(o, "url"))
			names = append(names, u[strings.LastIndex(u, "/")+1:]+fmt.Sprintf("=%v", get(o, "count")))
		}
		wantNames := []string{"Observation-1.ndjson=5", "Observation-2.ndjson=5", "Observation-3.ndjson=2",
			"Patient-1.ndjson=3", "Encounter-1.ndjson=3"}
		if !slices.Equal(names, wantNames) {
			t.Errorf("files %v, want %v", names, wantNames)
		}
	})
}

func TestExportExpiry(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		exportSeed(t, c)
		startRunner(t, c, func(r *export.Runner) { r.TTL = 2 * time.Hour })
		status := kickoff(t, c, "GET", "/$export?_type=Patient", nil)
		m := poll(t, c, status)
		r := c.do("GET", strings.TrimPrefix(status, c.base), nil).want(t, 200)
		exp, err := http.ParseTime(r.header.Get("Expires"))
		if err != nil || exp.Before(time.Now().Add(time.Hour)) || exp.After(time.Now().Add(2*time.Hour+time.Minute)) {
			t.Errorf("Expires %q, want in about 2 hours", r.header.Get("Expires"))
		}
		file := str(get(m, "output", 0, "url"))
		fetch(t, c, file).want(t, 200)

		// A runner whose clock is three hours on sweeps it away.
		startRunner(t, c, func(r *export.Runner) {
			r.Node = "later"
			r.Now = func() time.Time { return time.Now().Add(3 * time.Hour) }
		})
		deadline := time.Now().Add(10 * time.Second)
		for c.do("GET", strings.TrimPrefix(status, c.base), nil).status != 404 {
			if time.Now().After(deadline) {
				t.Fatal("the expired export is still there")
			}
			time.Sleep(20 * time.Millisecond)
		}
		fetch(t, c, file).want(t, 404)
	})
}

func TestExportCapabilities(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		r := c.do("GET", "/metadata", nil).want(t, 200)
		if get(r.body, "rest", 0, "operation", 0, "name") != "export" {
			t.Errorf("no system $export in %v", get(r.body, "rest", 0, "operation"))
		}
		for _, rc := range get(r.body, "rest", 0, "resource").([]any) {
			typ := get(rc, "type")
			has := strings.Contains(fmt.Sprint(get(rc, "operation")), "export")
			if has != (typ == "Patient" || typ == "Group") {
				t.Errorf("%v lists $export: %v", typ, has)
			}
		}
	})
}

// BenchmarkExportRate measures the export rate on a large store: the
// Synthea bundles of the shared corpus posted as transactions (through
// rest.Service.Do) over and over until the store holds
// $HALE_EXPORT_BENCH resources (default 20,000), then system exports
// (runner time, and kick-off to last byte downloaded) and Patient-level
// exports, on both engines, reported as metrics:
//
//	HALE_EXPORT_BENCH=100000 go test -run '^$' -bench ExportRate -benchtime 1x -timeout 60m ./rest
func BenchmarkExportRate(b *testing.B) {
	target, _ := strconv.Atoi(os.Getenv("HALE_EXPORT_BENCH"))
	if target <= 0 {
		target = 20000
	}
	t := b
	dir := sharedDir(t, "testdata/synthea")
	var bundles [][]byte
	for _, set := range []string{"set-a", "set-b"} {
		files, _ := filepath.Glob(filepath.Join(dir, set, "*.json"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			bundles = append(bundles, data)
		}
	}
	run := func(t *testing.B, store hale.Store, vacuum func()) {
		c := newClient(t, store)
		ctx := t.Context()
		start := time.Now()
		for stored := c.count(t, ""); stored < int64(target); {
			var wg sync.WaitGroup
			next := make(chan []byte)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for b := range next {
						if _, err := c.svc.Do(ctx, &rest.Request{Method: "POST", Body: b, Return: rest.ReturnMinimal}); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			for _, b := range bundles {
				next <- b
			}
			close(next)
			wg.Wait()
			stored = c.count(t, "")
			t.Logf("loaded %d resources (%.0f s)", stored, time.Since(start).Seconds())
		}
		if vacuum != nil {
			vacuum()
		}
		for _, tc := range []struct{ name, path string }{
			{"system", "/$export"},
			{"system", "/$export"},
			{"system", "/$export"},
			{"patient", "/Patient/$export"},
			{"patient", "/Patient/$export"},
		} {
			status := kickoff(t, c, "GET", tc.path, nil)
			r := export.New(c.store, c.svc)
			begin := time.Now()
			if ran, err := r.RunOnce(ctx); !ran || err != nil {
				t.Fatalf("RunOnce: %v %v", ran, err)
			}
			runTime := time.Since(begin)
			m := poll(t, c, status)
			var n, size int64
			for _, o := range m["output"].([]any) {
				f := fetch(t, c, str(get(o, "url"))).want(t, 200)
				n += int64(bytes.Count(f.raw, []byte("\n")))
				size += int64(len(f.raw))
			}
			total := time.Since(begin)
			t.Logf("%s %s export: %d resources (%.0f MB) in %d files; runner %.2f s = %.0f resources/s; with download %.2f s = %.0f resources/s",
				store.Engine(), tc.name, n, float64(size)/1e6, len(m["output"].([]any)), runTime.Seconds(), float64(n)/runTime.Seconds(),
				total.Seconds(), float64(n)/total.Seconds())
			t.ReportMetric(float64(n)/runTime.Seconds(), tc.name+"-runner-resources/s")
			t.ReportMetric(float64(n)/total.Seconds(), tc.name+"-resources/s")
		}
	}
	t.Run("sqlite", func(t *testing.B) {
		// HALE_EXPORT_BENCH_DB keeps the loaded database in a file, to
		// measure again without loading again.
		if path := os.Getenv("HALE_EXPORT_BENCH_DB"); path != "" {
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			run(t, s, nil)
			return
		}
		run(t, sqlitetest.Open(t), nil)
	})
	t.Run("postgres", func(t *testing.B) {
		u := pgtest.Schema(t)
		s, err := postgres.Open(t.Context(), u, postgres.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		run(t, s, func() {
			conn, err := pgx.Connect(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(t.Context())
			if _, err := conn.Exec(t.Context(), "VACUUM ANALYZE"); err != nil {
				t.Fatal(err)
			}
		})
	})
}
