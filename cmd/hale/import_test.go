package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/sqlite"
)

// importFixtures writes a folder with a transaction bundle, a collection
// and an NDJSON file of n Patients; it holds n+4 resources.
func importFixtures(t testing.TB, n int) string {
	t.Helper()
	dir := t.TempDir()
	tx := `{"resourceType":"Bundle","type":"transaction","entry":[
 {"fullUrl":"urn:uuid:11111111-2222-3333-4444-555555555555","resource":{"resourceType":"Patient","id":"11111111-2222-3333-4444-555555555555"},"request":{"method":"POST","url":"Patient"}},
 {"fullUrl":"urn:uuid:99999999-2222-3333-4444-555555555555","resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:11111111-2222-3333-4444-555555555555"}},"request":{"method":"POST","url":"Observation"}}]}`
	coll := `{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Organization","id":"org","name":"O"}},{"resource":{"resourceType":"Practitioner","id":"pr"}}]}`
	var nd strings.Builder
	for i := range n {
		fmt.Fprintf(&nd, `{"resourceType":"Patient","id":"nd-%d","name":[{"family":"F%d"}]}`+"\n", i, i)
	}
	for name, s := range map[string]string{"tx.json": tx, "coll.json": coll, "Patient.ndjson": nd.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func noEnv(string) string { return "" }

var summaryRE = regexp.MustCompile(`(\d+) files; ([\d,]+) resources written \(([\d,]+) created, ([\d,]+) updated\), ([\d,]+) unchanged, ([\d,]+) failed`)

// importRun runs `hale import args…` and returns the summary's counts:
// files, written, created, updated, unchanged, failed.
func importRun(t *testing.T, wantErr bool, args ...string) (counts []string, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(t.Context(), append([]string{"import"}, args...), noEnv, &out, &errb)
	if (err != nil) != wantErr {
		t.Fatalf("hale import %v: error %v\nstdout: %s\nstderr: %s", args, err, out.String(), errb.String())
	}
	m := summaryRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no summary in %q (stderr %s)", out.String(), errb.String())
	}
	return m[1:], out.String(), errb.String()
}

func versionCount(t *testing.T, s hale.Store) int {
	t.Helper()
	var n int
	err := s.View(t.Context(), func(r hale.Reader) error {
		vs, err := r.History(t.Context(), hale.HistoryQuery{})
		n = len(vs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestImportCommand: `hale import` into a data folder, a PostgreSQL
// database and a server over HTTP; a second run writes nothing.
func TestImportCommand(t *testing.T) {
	fixtures := importFixtures(t, 50)
	const n = 54

	t.Run("data", func(t *testing.T) {
		dir := t.TempDir()
		c, _, stderr := importRun(t, false, "--data", dir, fixtures, "--progress", "lines", "--batch", "20")
		if strings.Join(c, " ") != "3 54 54 0 0 0" {
			t.Errorf("first run: %v", c)
		}
		if !regexp.MustCompile(`(?m)^progress: 54 resources, [\d,]+/s, 100%, ETA 0s$`).MatchString(stderr) {
			t.Errorf("progress lines: %q", stderr)
		}
		c, _, _ = importRun(t, false, fixtures, "--data="+dir)
		if strings.Join(c, " ") != "3 0 0 0 54 0" {
			t.Errorf("second run: %v", c)
		}
		s, err := sqlite.Open(t.Context(), filepath.Join(dir, "hale.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if v := versionCount(t, s); v != n {
			t.Errorf("%d versions after two runs, want %d", v, n)
		}
		// Every write was audited, with the import as the actor: each
		// resource written is named by a record of the import (a
		// transaction's writes share records, up to 50 to one).
		err = s.View(t.Context(), func(r hale.Reader) error {
			page, err := r.(hale.AuditReader).SearchAudit(t.Context(), &hale.AuditQuery{Count: 1000,
				Where: []hale.AuditCondition{{Field: hale.AuditAgent, Values: []string{"system/hale-import"}}}})
			if err != nil {
				return err
			}
			named := map[string]bool{}
			for _, rec := range page.Records {
				var e struct {
					Entity []struct{ What struct{ Reference string } }
				}
				json.Unmarshal(rec.Data, &e)
				for _, en := range e.Entity {
					named[en.What.Reference] = true
				}
			}
			vs, err := r.History(t.Context(), hale.HistoryQuery{})
			if err != nil {
				return err
			}
			missing := 0
			for _, v := range vs {
				if !named[v.Type+"/"+v.ID] {
					missing++
				}
			}
			if missing > 0 || len(vs) != n {
				t.Errorf("%d of %d resources written are named by no audit record of the import (%d records)", missing, len(vs), len(page.Records))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("database", func(t *testing.T) {
		url := pgtest.Schema(t)
		importRun(t, false, "--database", url, fixtures)
		c, _, _ := importRun(t, false, "--database", url, fixtures)
		if strings.Join(c, " ") != "3 0 0 0 54 0" {
			t.Errorf("second run: %v", c)
		}
	})

	t.Run("url", func(t *testing.T) {
		srv := startTestServer(t, DefaultConfig())
		var errb bytes.Buffer
		if err := run(t.Context(), []string{"import", "--url", srv.URL + "/fhir", fixtures}, noEnv, io.Discard, &errb); err == nil {
			t.Errorf("an import without credentials was accepted")
		}
		c, out, _ := importRun(t, false, "--url", srv.URL+"/fhir", "--token", srv.token, fixtures)
		if strings.Join(c, " ") != "3 54 54 0 0 0" || !strings.Contains(out, "imported into "+srv.URL+"/fhir") {
			t.Errorf("first run: %v %s", c, out)
		}
		if err := run(t.Context(), []string{"import", "--url", srv.URL + "/nothere", "--token", srv.token, fixtures}, noEnv, io.Discard, &errb); err == nil {
			t.Errorf("a URL that is not a FHIR base was accepted")
		}
		if err := run(t.Context(), []string{"import", "--url", srv.URL + "/fhir", "--data", "x", fixtures}, noEnv, io.Discard, &errb); err == nil {
			t.Errorf("--url with --data was accepted")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(t.TempDir(), "bad.ndjson")
		os.WriteFile(bad, []byte(`{"resourceType":"Patient","id":"fine"}`+"\n"+`{"resourceType":"Patient","id":"no good"}`+"\n"), 0o600)
		c, _, stderr := importRun(t, true, "--data", dir, fixtures, bad)
		if strings.Join(c, " ") != "4 55 55 0 0 1" || !strings.Contains(stderr, "bad.ndjson:2: Patient/no good: ") {
			t.Errorf("counts %v, stderr:\n%s", c, stderr)
		}
	})

	t.Run("usage", func(t *testing.T) {
		var errb bytes.Buffer
		if err := run(t.Context(), []string{"import", "--data", t.TempDir()}, noEnv, io.Discard, &errb); err == nil || !strings.Contains(errb.String(), "Usage: hale import") {
			t.Errorf("no paths: %v %s", err, errb.String())
		}
		if err := run(t.Context(), []string{"import", "--bogus", fixtures}, noEnv, io.Discard, &errb); err == nil {
			t.Errorf("unknown flag accepted")
		}
	})
}

func sqliteStore(t *testing.T) hale.Store {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "hale.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestImportBesideServe: `hale import --data DIR` while `hale serve` runs
// on DIR in another process, which keeps answering and writing meanwhile
// (SQLite in WAL mode; each process waits for the other's write lock).
func TestImportBesideServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// A backend-services client, registered on the data folder, whose
	// token the writers below send.
	keyFile := filepath.Join(t.TempDir(), "client.pem")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"client", "add", "--name", "writer", "--scope", "system/*.cruds", "--new-key", keyFile, "--data", dir}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	clientID := strings.TrimSpace(out.String())
	cmd := exec.Command(os.Args[0], "-test.run=^$") // TestMain runs hale serve (main_test.go)
	cmd.Env = append(os.Environ(), "HALE_IMPORT_TEST_SERVE=1", "HALE_DATA="+dir, "HALE_ADDR="+addr, "HALE_NO_DEMO=true", "HALE_LOG_LEVEL=warn")
	var serverLog bytes.Buffer
	cmd.Stdout, cmd.Stderr = &serverLog, &serverLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", serverLog.String())
		}
	}()
	base := "http://" + addr + "/fhir"
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/metadata")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i == 200 {
			t.Fatalf("the server did not start: %v\n%s", err, serverLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	out.Reset()
	if err := run(t.Context(), []string{"token", "--url", base, "--client-id", clientID, "--client-key", keyFile, "--data", dir}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out.String())

	// Clients write to the server all through the import.
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	live, failures := 0, []string{}
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			body := fmt.Sprintf(`{"resourceType":"Patient","id":"live-%d"}`, i)
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/Patient/live-%d", base, i), strings.NewReader(body))
			req.Header.Set("Content-Type", "application/fhir+json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			mu.Lock()
			if err != nil {
				failures = append(failures, err.Error())
			} else if resp.StatusCode != 201 {
				failures = append(failures, resp.Status)
			} else {
				live++
			}
			mu.Unlock()
			if resp != nil {
				resp.Body.Close()
			}
		}
	})
	const n = 3000
	c, _, _ := importRun(t, false, "--data", dir, importFixtures(t, n), "--batch", "500")
	close(done)
	wg.Wait()
	if c[1] != fmt.Sprint(n+4) && c[1] != fmt.Sprintf("%d,%03d", (n+4)/1000, (n+4)%1000) {
		t.Errorf("import wrote %s resources, want %d", c[1], n+4)
	}
	if len(failures) > 0 || live == 0 {
		t.Errorf("%d writes to the server during the import, %d failed: %v", live, len(failures), failures)
	}

	// The server sees everything: what it wrote and what was imported.
	req, _ := http.NewRequest("GET", base+"/Patient?_summary=count", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct{ Total int }
	json.NewDecoder(resp.Body).Decode(&b)
	if want := n + 1 + live; b.Total != want {
		t.Errorf("the server counts %d patients, want %d (%d imported, %d written by it)", b.Total, want, n+1, live)
	}
	t.Logf("%d server writes during the import of %d resources", live, n+4)
}
