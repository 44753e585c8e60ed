package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hale-ehr/hale/postgres/pgtest"
)

// TestFirstRun: `hale serve` on an empty data folder creates it, loads the
// demo patients once, and serves them; a restart keeps them and loads
// nothing more.
func TestFirstRun(t *testing.T) {
	data := t.TempDir() + "/hale-data"
	p := start(t, "--data", data)
	if !strings.HasSuffix(p.base, "/fhir") || !strings.Contains(p.logs.String(), "loaded demo patients") {
		t.Fatalf("start-up log:\n%s", p.logs)
	}
	code, body := get(t, p.base+"/Patient")
	var b struct{ Total int }
	json.Unmarshal(body, &b)
	if code != 200 || b.Total != 5 {
		t.Fatalf("demo patients: %d total %d: %.300s", code, b.Total, body)
	}
	code, body = get(t, p.base+"/Observation?_count=1")
	json.Unmarshal(body, &b)
	if code != 200 || b.Total < 100 {
		t.Errorf("demo observations: %d total %d", code, b.Total)
	}
	p.kill()

	p = start(t, "--data", data)
	if strings.Contains(p.logs.String(), "loaded demo patients") {
		t.Errorf("demo loaded again on restart")
	}
	_, body = get(t, p.base+"/Patient")
	json.Unmarshal(body, &b)
	if b.Total != 5 {
		t.Errorf("after restart: %d patients", b.Total)
	}
}

// TestNoDemo: --no-demo starts empty.
func TestNoDemo(t *testing.T) {
	p := start(t, "--data", t.TempDir(), "--no-demo")
	_, body := get(t, p.base+"/Patient")
	var b struct{ Total int }
	json.Unmarshal(body, &b)
	if b.Total != 0 {
		t.Errorf("--no-demo loaded %d patients", b.Total)
	}
}

// TestFirstRunPostgres: with --database the demo patients go into
// PostgreSQL, and a second node on the same database sees them.
func TestFirstRunPostgres(t *testing.T) {
	url := pgtest.Schema(t)
	p := start(t, "--database", url)
	q := start(t, "--database", url) // a second node sharing the database
	for _, node := range []*proc{p, q} {
		_, body := get(t, node.base+"/Patient")
		var b struct{ Total int }
		json.Unmarshal(body, &b)
		if b.Total != 5 {
			t.Errorf("%s: %d patients, want 5", node.base, b.Total)
		}
	}
}
