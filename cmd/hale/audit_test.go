package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/rest"
)

// TestAuditVerifyAndReport records accesses the way `hale serve` does,
// then runs `hale audit verify` and `hale audit report --patient` on the
// data folder (and PostgreSQL database), and, on SQLite, verify again
// after an edit of a stored record.
func TestAuditVerifyAndReport(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			storeArgs := []string{"--data", dir}
			if engine == "postgres" {
				storeArgs = append(storeArgs, "--database", pgtest.Schema(t))
			}
			getenv := func(string) string { return "" }
			cfg, err := LoadConfig("test", storeArgs, getenv)
			if err != nil {
				t.Fatal(err)
			}
			store, _, err := openStore(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			svc := rest.NewService(store)
			rec, err := newAuditRecorder(cfg, store, svc, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			svc.Audit = rec
			go rec.Run()
			nurse := hale.WithPrincipal(ctx, &hale.Principal{Subject: "user/nurse1", Name: "N. Urse", Address: "192.0.2.7"})
			r, err := svc.Do(nurse, &rest.Request{Method: "POST", Type: "Patient", Body: []byte(`{"resourceType":"Patient","name":[{"family":"Report"}]}`)})
			if err != nil {
				t.Fatal(err)
			}
			var p map[string]any
			json.Unmarshal(r.Body, &p)
			pid := p["id"].(string)
			for range 3 {
				if _, err := svc.Do(nurse, &rest.Request{Method: "GET", Type: "Patient", ID: pid}); err != nil {
					t.Fatal(err)
				}
			}
			svc.Do(nurse, &rest.Request{Method: "GET", Type: "Patient", ID: "someone-else"})
			if err := rec.Close(ctx); err != nil {
				t.Fatal(err)
			}

			var out bytes.Buffer
			if err := auditCommand(ctx, append([]string{"verify"}, storeArgs...), getenv, &out); err != nil {
				t.Fatalf("verify: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), ": 5 records,") || !strings.Contains(out.String(), "OK:") || !strings.Contains(out.String(), "head (keep it") {
				t.Errorf("verify printed:\n%s", out.String())
			}
			out.Reset()
			if err := auditCommand(ctx, append([]string{"report", "--patient", pid}, storeArgs...), getenv, &out); err != nil {
				t.Fatalf("report: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if !strings.HasSuffix(lines[len(lines)-1], fmt.Sprintf("4 accesses to Patient/%s", pid)) || len(lines) != 6 {
				t.Fatalf("report:\n%s", out.String())
			}
			for _, l := range lines[1:4] {
				if !strings.Contains(l, "read") || !strings.Contains(l, "user/nurse1 (N. Urse)") || !strings.Contains(l, "192.0.2.7") || !strings.Contains(l, "success") {
					t.Errorf("report line %q", l)
				}
			}
			if !strings.Contains(lines[4], "create") || lines[1] < lines[4] {
				t.Errorf("report, newest first, should end with the create:\n%s", out.String())
			}
			t.Logf("%s: hale audit report --patient:\n%s", engine, out.String())

			if engine != "sqlite" {
				return
			}
			db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "hale.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range []string{"DROP TRIGGER audit_event_no_update", "UPDATE audit_event SET outcome = '4' WHERE seq = 2"} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			out.Reset()
			err = auditCommand(ctx, append([]string{"verify"}, storeArgs...), getenv, &out)
			if err == nil || !strings.Contains(out.String(), "BROKEN: link 2") {
				t.Errorf("verify after an edit: %v\n%s", err, out.String())
			}
		})
	}
}
