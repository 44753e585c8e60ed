package bench

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale/demo"
	"github.com/hale-ehr/hale/export"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
)

// TestRun runs the whole workload briefly against an in-process Hale and
// checks every phase measured something without errors.
func TestRun(t *testing.T) {
	store := sqlitetest.Open(t)
	svc := rest.NewService(store)
	srv := httptest.NewServer(svc.Handler("/fhir"))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go export.New(store, svc).Run(ctx) // so $export completes
	demos, err := demo.Bundles()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{BaseURL: srv.URL + "/fhir", Bundles: [][]byte{demos[0].Data}, Ingest: 100 * time.Millisecond, Phase: 150 * time.Millisecond, ExportTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range rep.Results {
		names[r.Name] = true
		if r.Errors > 0 {
			t.Errorf("%s: %d errors", r.Name, r.Errors)
		}
		if !r.Skipped && (r.Count == 0 || r.Rate <= 0) {
			t.Errorf("%s measured nothing: %+v", r.Name, r)
		}
		if r.Name == "search: count by code" && r.Matches == 0 {
			t.Errorf("count by code found no matches")
		}
	}
	for _, want := range []string{"ingest", "read", "search: count by code", "search: chained", "$everything", "$export"} {
		if !names[want] {
			t.Errorf("no %q result", want)
		}
	}
	if rep.Limits.SQLiteInsertPerSec <= 0 || rep.Limits.JSONDecodePerSec <= 0 {
		t.Errorf("limits not measured: %+v", rep.Limits)
	}
	var b bytes.Buffer
	rep.Table(&b)
	if !strings.Contains(b.String(), "ingest =") {
		t.Errorf("table: %s", b.String())
	}
}
