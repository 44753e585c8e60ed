package importer_test

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"github.com/hale-ehr/hale/internal/sharedtest"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/importer"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
)

// engines runs fn on a fresh SQLite store and a fresh PostgreSQL schema.
func engines(t *testing.T, fn func(t *testing.T, store hale.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, sqlitetest.Open(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, pgtest.Open(t))
	})
}

// Fixtures: one file per format. Every resource has a distinct identity;
// wantTypes counts them.
const (
	// A Synthea-style transaction: POSTs with urn:uuid fullUrls, resources
	// that carry ids (kept) and one that does not (gets its fullUrl's uuid).
	transaction = `{"resourceType":"Bundle","type":"transaction","entry":[
  {"fullUrl":"urn:uuid:6a1e7c56-0b4e-4f7e-9c1a-1f2b3c4d5e6f",
   "resource":{"resourceType":"Patient","id":"6a1e7c56-0b4e-4f7e-9c1a-1f2b3c4d5e6f","name":[{"family":"Tx"}]},
   "request":{"method":"POST","url":"Patient"}},
  {"fullUrl":"urn:uuid:0c9d8e7f-1111-2222-3333-444455556666",
   "resource":{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},
               "subject":{"reference":"urn:uuid:6a1e7c56-0b4e-4f7e-9c1a-1f2b3c4d5e6f"}},
   "request":{"method":"POST","url":"Encounter"}},
  {"fullUrl":"urn:uuid:aaaabbbb-1111-2222-3333-444455556666",
   "resource":{"resourceType":"Observation","id":"tx-obs","status":"final","code":{"text":"x"},
               "subject":{"reference":"urn:uuid:6a1e7c56-0b4e-4f7e-9c1a-1f2b3c4d5e6f"},
               "encounter":{"reference":"urn:uuid:0c9d8e7f-1111-2222-3333-444455556666"}},
   "request":{"method":"POST","url":"Observation"}}
]}`
	batch = `{"resourceType":"Bundle","type":"batch","entry":[
  {"resource":{"resourceType":"Patient","id":"batch-1","name":[{"family":"Batch"}]},"request":{"method":"PUT","url":"Patient/batch-1"}},
  {"resource":{"resourceType":"Organization","name":"Batch Org"},"request":{"method":"PUT","url":"Organization/batch-org"}}
]}`
	collection = `{"resourceType":"Bundle","type":"collection","entry":[
  {"fullUrl":"http://other.example/fhir/Patient/coll-1","resource":{"resourceType":"Patient","id":"coll-1"}},
  {"fullUrl":"http://other.example/fhir/Observation/coll-obs","resource":{"resourceType":"Observation","status":"final","code":{"text":"y"},
   "subject":{"reference":"http://other.example/fhir/Patient/coll-1"}}}
]}`
	searchset = `{"resourceType":"Bundle","type":"searchset","total":1,"entry":[
  {"fullUrl":"http://other.example/fhir/Patient/ss-1","resource":{"resourceType":"Patient","id":"ss-1"},"search":{"mode":"match"}},
  {"resource":{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"informational"}]},"search":{"mode":"outcome"}}
]}`
	single = `{"resourceType":"Practitioner","name":[{"family":"NoId"}]}`
	ndjson = `{"resourceType":"Patient","id":"nd-1"}
{"resourceType":"Patient","id":"nd-2"}

{"resourceType":"Condition","id":"nd-cond","subject":{"reference":"Patient/nd-1"}}
`
	ndjsonGz = `{"resourceType":"Patient","id":"gz-1"}
{"resourceType":"Procedure","id":"gz-proc","status":"completed","subject":{"reference":"Patient/gz-1"}}
`
	zipped = `{"resourceType":"Patient","id":"zip-1"}
`
)

var wantTypes = map[string]int64{
	"Patient":      1 + 1 + 1 + 1 + 2 + 1 + 1 + 1, // tx, batch, coll, ss, nd×2, gz, zip, zip json
	"Encounter":    1,
	"Observation":  2,
	"Organization": 1,
	"Practitioner": 1,
	"Condition":    1,
	"Procedure":    1,
}

func total(m map[string]int64) (n int) {
	for _, v := range m {
		n += int(v)
	}
	return n
}

// writeFixtures writes every format into dir and returns dir.
func writeFixtures(t testing.TB, dir string) string {
	t.Helper()
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("transaction.json", []byte(transaction))
	write("batch.json", []byte(batch))
	write("sub/collection.json", []byte(collection))
	write("sub/searchset.json", []byte(searchset))
	write("single.json", []byte(single))
	write("Patient.ndjson", []byte(ndjson))
	write("bulk/Procedure.ndjson.gz", gz(t, ndjsonGz))
	write("archive.zip", zipOf(t, map[string]string{
		"data/Patient.000.ndjson": zipped,
		"data/one.json":           `{"resourceType":"Patient","id":"zip-2"}`,
		"README.txt":              "not FHIR",
	}))
	write("README.md", []byte("# not FHIR: skipped in a folder"))
	write("package.json", []byte(`{"name":"not-fhir"}`))
	write("bulk/log.ndjson", []byte(`{"exportId":"x","eventId":"kickoff"}`+"\n"))
	return dir
}

func gz(t testing.TB, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zipOf(t testing.TB, files map[string]string) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, s := range files {
		f, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(s))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// counts returns the number of current resources of each type in want,
// and the number of versions in the store.
func counts(t testing.TB, store hale.Store, want map[string]int64) (map[string]int64, int) {
	t.Helper()
	ctx := context.Background()
	got := map[string]int64{}
	versions := 0
	err := store.View(ctx, func(r hale.Reader) error {
		for typ := range want {
			n, err := r.Count(ctx, typ)
			if err != nil {
				return err
			}
			got[typ] = n
		}
		vs, err := r.History(ctx, hale.HistoryQuery{})
		versions = len(vs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, versions
}

func read(t testing.TB, store hale.Store, typ, id string) string {
	t.Helper()
	var data []byte
	err := store.View(context.Background(), func(r hale.Reader) error {
		v, err := r.Current(context.Background(), typ, id)
		if err == nil {
			data = v.Data
		}
		return err
	})
	if err != nil {
		t.Fatalf("%s/%s: %v", typ, id, err)
	}
	return string(data)
}

// TestFormats: every format, from a folder (with files of other kinds in
// it, skipped), into both engines; references to fullUrls become Type/id;
// a second run writes nothing and adds no version.
func TestFormats(t *testing.T) {
	dir := writeFixtures(t, t.TempDir())
	engines(t, func(t *testing.T, store hale.Store) {
		target := importer.ServiceTarget(rest.NewService(store))
		var log bytes.Buffer
		sum, err := importer.Run(t.Context(), target, []string{dir}, importer.Options{Log: &log, Batch: 4})
		if err != nil || sum.Err() != nil {
			t.Fatalf("import: %v %v\n%s", err, sum.Err(), log.String())
		}
		n := total(wantTypes)
		if sum.Created != n || sum.Updated != 0 || sum.Unchanged != 0 || sum.Failed != 0 {
			t.Errorf("summary %s; want %d created", sum, n)
		}
		// 8 FHIR files and 2 in the archive; README.md, package.json,
		// log.ndjson and the archive's README.txt are skipped.
		if sum.Files != 9 || sum.SkippedFiles != 4 || sum.FailedFiles != 0 {
			t.Errorf("files: %d read, %d skipped, %d failed; want 9, 4, 0 (%s)", sum.Files, sum.SkippedFiles, sum.FailedFiles, log.String())
		}
		got, versions := counts(t, store, wantTypes)
		for typ, n := range wantTypes {
			if got[typ] != n {
				t.Errorf("%s: %d stored, want %d", typ, got[typ], n)
			}
		}
		// The transaction's ids are kept (the resource's own, else the
		// fullUrl's uuid) and its references rewritten.
		obs := read(t, store, "Observation", "tx-obs")
		if !strings.Contains(obs, `"reference":"Patient/6a1e7c56-0b4e-4f7e-9c1a-1f2b3c4d5e6f"`) ||
			!strings.Contains(obs, `"reference":"Encounter/0c9d8e7f-1111-2222-3333-444455556666"`) {
			t.Errorf("transaction references not rewritten: %s", obs)
		}
		read(t, store, "Organization", "batch-org") // a PUT keeps its URL's id
		if coll := read(t, store, "Observation", "coll-obs"); !strings.Contains(coll, `"reference":"Patient/coll-1"`) {
			t.Errorf("collection reference not rewritten: %s", coll)
		}

		// Again: nothing written, no new version.
		log.Reset()
		again, err := importer.Run(t.Context(), target, []string{dir}, importer.Options{Log: &log, Batch: 4})
		if err != nil || again.Err() != nil {
			t.Fatalf("second import: %v %v\n%s", err, again.Err(), log.String())
		}
		if again.Written() != 0 || again.Unchanged != n {
			t.Errorf("second run: %s; want %d unchanged and nothing written", again, n)
		}
		got2, versions2 := counts(t, store, wantTypes)
		if versions2 != versions || versions != n {
			t.Errorf("versions: %d after the first run, %d after the second; want %d", versions, versions2, n)
		}
		for typ := range wantTypes {
			if got2[typ] != got[typ] {
				t.Errorf("%s: %d after the second run, %d before", typ, got2[typ], got[typ])
			}
		}
	})
}

// TestContentID: a resource without id gets the same id in every run.
func TestContentID(t *testing.T) {
	store := sqlitetest.Open(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "p.ndjson")
	os.WriteFile(path, []byte(`{"resourceType":"Practitioner","name":[{"family":"A"}]}`+"\n"+`{"resourceType":"Practitioner","name":[{"family":"B"}]}`+"\n"), 0o600)
	for run := 0; run < 2; run++ {
		if _, err := importer.Run(t.Context(), importer.ServiceTarget(rest.NewService(store)), []string{path}, importer.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if got, versions := counts(t, store, map[string]int64{"Practitioner": 2}); got["Practitioner"] != 2 || versions != 2 {
		t.Errorf("%d Practitioners in %d versions after two runs; want 2 in 2", got["Practitioner"], versions)
	}
}

// TestBadInput: bad files and bad resources are reported with file, line
// and the OperationOutcome's text, and everything else is stored.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"broken.json": "{\"resourceType\": \"Patient\",\n \"id\": }",
		"bad.ndjson": `{"resourceType":"Patient","id":"ok-1"}
{"resourceType":"Patient","id":"bad-gender","gender":"sometimes"}
{not json
{"resourceType":"Nope","id":"x"}
{"resourceType":"Patient","id":"ok-2"}
`,
		"bundle.json": `{"resourceType":"Bundle","type":"transaction","entry":[
  {"resource":{"resourceType":"Patient","id":"ok-3"},"request":{"method":"PUT","url":"Patient/ok-3"}},
  {"resource":{"resourceType":"Patient","id":"bad-date","birthDate":"yesterday"},
   "request":{"method":"PUT","url":"Patient/bad-date"}},
  {"resource":{"resourceType":"Patient","id":"ok-4"},"request":{"method":"PUT","url":"Patient/ok-4"}}
]}`,
		"notes.txt":    "hello",
		"message.json": `{"resourceType":"Bundle","type":"message","entry":[]}`,
	}
	var paths []string
	for name, s := range files {
		os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600)
		paths = append(paths, filepath.Join(dir, name))
	}
	engines(t, func(t *testing.T, store hale.Store) {
		var log bytes.Buffer
		sum, err := importer.Run(t.Context(), importer.ServiceTarget(rest.NewService(store)), paths, importer.Options{Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Created != 4 || sum.Failed != 4 || sum.FailedFiles != 3 || sum.Err() == nil {
			t.Errorf("summary %s (err %v); want 4 created, 4 resources and 3 files failed\n%s", sum, sum.Err(), log.String())
		}
		got, _ := counts(t, store, map[string]int64{"Patient": 4})
		if got["Patient"] != 4 {
			t.Errorf("%d patients stored, want ok-1 … ok-4", got["Patient"])
		}
		for _, want := range []string{
			`broken\.json: .*line 2`,
			`bad\.ndjson:2: Patient/bad-gender: error .*sometimes`,
			`bad\.ndjson:3: .*invalid JSON at column 2`,
			`bad\.ndjson:4: unknown resourceType "Nope"`,
			`bundle\.json:3: Bundle\.entry\[1\]: Patient/bad-date: error .*yesterday`,
			`notes\.txt: unknown format`,
			`message\.json: a Bundle of type "message" is not imported`,
		} {
			if !regexp.MustCompile(want).MatchString(log.String()) {
				t.Errorf("no report matching %s in\n%s", want, log.String())
			}
		}
	})
}

// TestPassThrough: a transaction with entries that are not a create or
// update (here a delete) is sent as it is.
func TestPassThrough(t *testing.T) {
	store := sqlitetest.Open(t)
	svc := rest.NewService(store)
	svc.Do(t.Context(), &rest.Request{Method: "PUT", Type: "Patient", ID: "gone", Body: []byte(`{"resourceType":"Patient","id":"gone"}`)})
	path := filepath.Join(t.TempDir(), "tx.json")
	os.WriteFile(path, []byte(`{"resourceType":"Bundle","type":"transaction","entry":[
  {"request":{"method":"DELETE","url":"Patient/gone"}},
  {"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=x|1"}}
]}`), 0o600)
	var log bytes.Buffer
	sum, err := importer.Run(t.Context(), importer.ServiceTarget(svc), []string{path}, importer.Options{Log: &log})
	if err != nil || sum.Err() != nil {
		t.Fatalf("%v %v %s", err, sum.Err(), log.String())
	}
	if got, _ := counts(t, store, map[string]int64{"Patient": 1}); got["Patient"] != 1 {
		t.Errorf("%d patients; want the created one (the other deleted)", got["Patient"])
	}
}

// TestHTTP: --url mode against a FHIR server over HTTP, with the same
// reporting. A server that skips unchanged updates (here Hale's core with
// rest.SkipUnchanged, as HAPI FHIR by default) gets no new version on a
// re-run; one that does not gets a version per resource, but no duplicate.
func TestHTTP(t *testing.T) {
	dir := writeFixtures(t, t.TempDir())
	for _, skip := range []bool{true, false} {
		store := sqlitetest.Open(t)
		h := rest.NewService(store).Handler("/fhir")
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if skip {
				r = r.WithContext(rest.SkipUnchanged(r.Context()))
			}
			h.ServeHTTP(w, r)
		}))
		defer srv.Close()
		target := importer.HTTPTarget(srv.URL+"/fhir", nil)
		if err := target.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := importer.HTTPTarget(srv.URL+"/nope", nil).Check(t.Context()); err == nil {
			t.Errorf("a URL that is not a FHIR base passed the check")
		}
		n := total(wantTypes)
		for run := 0; run < 2; run++ {
			var log bytes.Buffer
			sum, err := importer.Run(t.Context(), target, []string{dir}, importer.Options{Log: &log, Batch: 3})
			if err != nil || sum.Err() != nil {
				t.Fatalf("run %d: %v %v\n%s", run, err, sum.Err(), log.String())
			}
			switch {
			case run == 0 && sum.Created != n,
				run == 1 && skip && sum.Unchanged != n,
				run == 1 && !skip && sum.Updated != n:
				t.Errorf("skip=%v run %d: %s", skip, run, sum)
			}
		}
		got, versions := counts(t, store, wantTypes)
		if want := map[bool]int{true: n, false: 2 * n}[skip]; versions != want || total(got) != n {
			t.Errorf("skip=%v: %d resources in %d versions; want %d in %d", skip, total(got), versions, n, want)
		}
	}

	// A bad resource is reported from the batch-response's outcome.
	store := sqlitetest.Open(t)
	srv := httptest.NewServer(rest.NewService(store).Handler("/fhir"))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "bad.ndjson")
	os.WriteFile(path, []byte(`{"resourceType":"Patient","id":"a"}`+"\n"+`{"resourceType":"Patient","id":"b","gender":"sometimes"}`+"\n"), 0o600)
	var log bytes.Buffer
	sum, err := importer.Run(t.Context(), importer.HTTPTarget(srv.URL+"/fhir", nil), []string{path}, importer.Options{Log: &log})
	if err != nil || sum.Created != 1 || sum.Failed != 1 || !strings.Contains(log.String(), "bad.ndjson:2: Patient/b: error") {
		t.Errorf("%v %s\n%s", err, sum, log.String())
	}

	// An unreachable server stops the import with an error.
	srv.Close()
	if _, err := importer.Run(t.Context(), importer.HTTPTarget(srv.URL+"/fhir", nil), []string{path}, importer.Options{}); err == nil {
		t.Errorf("no error from a closed server")
	}
}

// TestProgressLines: off a terminal, progress is plain lines.
func TestProgressLines(t *testing.T) {
	dir := writeFixtures(t, t.TempDir())
	var log bytes.Buffer
	_, err := importer.Run(t.Context(), importer.ServiceTarget(rest.NewService(sqlitetest.Open(t))), []string{dir}, importer.Options{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	last := regexp.MustCompile(`(?m)^progress: 16 resources, [0-9,]+/s, 100%, ETA 0s$`)
	if !last.MatchString(log.String()) || strings.Contains(log.String(), "\r") {
		t.Errorf("progress output:\n%q", log.String())
	}
}

// sharedDir returns a folder of ../shared (or $HALE_SHARED); tests that
// need it skip when it is absent, except under CI=true.
func sharedDir(tb testing.TB, sub string) string {
	tb.Helper()
	return sharedtest.Dir(tb, sub)
}

// TestSynthea: ten Synthea transaction bundles of set-a and the Bulk
// Data NDJSON export (with -short two bundles and the smaller NDJSON
// files), on both engines. Every entry is stored under its own id (the
// Organizations and Practitioners several patients share once), the
// export's conditional references (Practitioner?identifier=…) resolve,
// and a second run writes nothing.
func TestSynthea(t *testing.T) {
	dir := sharedDir(t, "testdata/synthea")
	bundles, _ := filepath.Glob(filepath.Join(dir, "set-a", "*.json"))
	bulk, _ := filepath.Glob(filepath.Join(dir, "bulk-ndjson-10-patients", "*.000.ndjson"))
	paths := []string{filepath.Join(dir, "bulk-ndjson-10-patients")}
	wantFiles, wantSkipped := len(bulk), 1 // log.ndjson, the bulk client's log, is not FHIR
	bundles = bundles[:10]                 // the whole corpus is docs/import.md's measurement
	if testing.Short() {
		bundles = bundles[:2]
		bulk = slices.DeleteFunc(bulk, func(f string) bool {
			st, err := os.Stat(f)
			return err != nil || st.Size() > 300<<10
		})
		paths, wantFiles, wantSkipped = bulk, len(bulk), 0
	}
	paths = append(paths, bundles...)
	wantFiles += len(bundles)
	want := entries(t, bundles) + lines(t, bulk)
	engines(t, func(t *testing.T, store hale.Store) {
		target := importer.ServiceTarget(rest.NewService(store))
		var log bytes.Buffer
		sum, err := importer.Run(t.Context(), target, paths, importer.Options{Log: &log})
		if err != nil || sum.Err() != nil {
			t.Fatalf("%v %v\n%.2000s", err, sum.Err(), log.String())
		}
		t.Logf("%s", sum)
		if sum.SkippedFiles != wantSkipped || sum.Files != wantFiles {
			t.Errorf("files: %s; want %d read, %d skipped", sum, wantFiles, wantSkipped)
		}
		var stored int
		err = store.View(t.Context(), func(r hale.Reader) error {
			n, err := r.Count(t.Context(), "")
			stored = int(n)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if stored != sum.Created || sum.Created+sum.Unchanged != want {
			t.Errorf("%d resources stored; summary %s; want %d handled", stored, sum, want)
		}
		again, err := importer.Run(t.Context(), target, paths, importer.Options{})
		if err != nil || again.Written() != 0 || again.Unchanged != want {
			t.Errorf("second run: %v %s", err, again)
		}
	})
}

// lines counts the non-empty lines of files.
func lines(t *testing.T, files []string) int {
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(l)) > 0 {
				n++
			}
		}
	}
	return n
}

// entries counts the entries of Bundle files.
func entries(t *testing.T, files []string) int {
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var b struct{ Entry []json.RawMessage }
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		n += len(b.Entry)
	}
	return n
}
