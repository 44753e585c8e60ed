package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite"
	"github.com/hale-ehr/hale/synth"
)

// BenchmarkChart measures the server time to render the chart summary
// and the first page of the visit timeline, for a typical synthetic
// patient and for one with 500+ encounters (hale generate's dialysis
// patient), on SQLite, through the FHIR core with access control, as a
// signed-in physician sees them (docs/web.md has the figures):
//
//	go test ./web -run '^$' -bench Chart -benchtime 50x
func BenchmarkChart(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir()+"/hale.db", sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	loader := rest.NewService(st)
	loader.Log = quietLog()
	g, err := synth.New(synth.Options{Patients: 200, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	typical, heavy := -1, -1
	for i := 1; i < 200 && (typical < 0 || heavy < 0); i++ {
		if g.Heavy(i) && heavy < 0 {
			heavy = i
		} else if !g.Heavy(i) && typical < 0 {
			typical = i
		}
	}
	encounters := map[string]int{}
	for _, i := range []int{0, typical, heavy} {
		var entries []any
		for _, r := range g.Patient(i) {
			if r.Type == "Encounter" {
				encounters[g.PatientID(i)]++
			}
			entries = append(entries, map[string]any{"resource": r.Body, "request": map[string]any{"method": "PUT", "url": r.Type + "/" + r.ID}})
		}
		body, _ := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries})
		if _, err := loader.Do(ctx, &rest.Request{Method: "POST", Body: body, Return: rest.ReturnMinimal}); err != nil {
			b.Fatal(err)
		}
	}
	var orgs []string
	st.View(ctx, func(r hale.Reader) error { orgs, err = r.Find(ctx, "Organization", nil, 0); return err })
	svc := rest.NewService(st)
	svc.Log = quietLog()
	pol := access.NewPolicy()
	pol.Params = svc.Params
	svc.Access = pol.Access
	authSvc, err := auth.New(ctx, auth.Options{Records: st, SecretKey: make([]byte, 32), Issuer: "http://h/auth", Audience: "http://h/fhir", Argon2: testArgon2})
	if err != nil {
		b.Fatal(err)
	}
	app, err := New(Options{FHIR: svc, Auth: authSvc, Log: quietLog()})
	if err != nil {
		b.Fatal(err)
	}
	p := &hale.Principal{Subject: "user/bench", Name: "bench", Role: hale.RolePhysician, Organizations: orgs}
	for _, c := range []struct {
		name string
		i    int
	}{{"typical", typical}, {"500+encounters", heavy}} {
		id := g.PatientID(c.i)
		for _, screen := range []string{"summary", "visits"} {
			path := "/app/patients/" + id
			if screen == "visits" {
				path += "/visits"
			}
			b.Run(c.name+"/"+screen, func(b *testing.B) {
				var total time.Duration
				for b.Loop() {
					req := httptest.NewRequest("GET", path, nil)
					req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: "bench"})
					req = req.WithContext(hale.WithPrincipal(req.Context(), p))
					rec := httptest.NewRecorder()
					start := time.Now()
					app.ServeHTTP(rec, req)
					total += time.Since(start)
					if rec.Code != 200 {
						b.Fatalf("%s: %d", path, rec.Code)
					}
				}
				b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/page")
				b.ReportMetric(float64(encounters[id]), "encounters")
			})
		}
	}
}
