package rest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
)

// The benchmarks measure the FHIR core end to end without HTTP: decode,
// validate, encode, index and a durable commit. Run with
//
//	go test ./rest -run '^$' -bench . -benchtime 2s
//
// Each reports resources/s; compare with the store-level benchmarks in
// storetest (raw Put, and a bare SQLite insert of the same bytes).

// benchObservation is a typical vital-sign Observation (~1 KB).
const benchObservation = `{"resourceType":"Observation","status":"final",
 "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs","display":"vital-signs"}]}],
 "code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}],"text":"Heart rate"},
 "subject":{"reference":"Patient/bench"},"encounter":{"reference":"Encounter/bench"},
 "effectiveDateTime":"2019-03-04T10:15:00-05:00","issued":"2019-03-04T10:15:00.000-05:00",
 "valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`

func benchEngines(b *testing.B, fn func(b *testing.B, svc *rest.Service)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, rest.NewService(sqlitetest.Open(b))) })
	b.Run("postgres", func(b *testing.B) { fn(b, rest.NewService(pgtest.Open(b))) })
}

func mustDo(b *testing.B, svc *rest.Service, req *rest.Request) *rest.Response {
	resp, err := svc.Do(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	return resp
}

func BenchmarkCreate(b *testing.B) {
	benchEngines(b, func(b *testing.B, svc *rest.Service) {
		body := []byte(benchObservation)
		for b.Loop() {
			mustDo(b, svc, &rest.Request{Method: "POST", Type: "Observation", Body: body})
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
	})
}

func BenchmarkRead(b *testing.B) {
	benchEngines(b, func(b *testing.B, svc *rest.Service) {
		var ids []string
		for i := 0; i < 1000; i++ {
			r := mustDo(b, svc, &rest.Request{Method: "POST", Type: "Observation", Body: []byte(benchObservation)})
			ids = append(ids, strings.Split(r.Location, "/")[1])
		}
		i := 0
		for b.Loop() {
			mustDo(b, svc, &rest.Request{Method: "GET", Type: "Observation", ID: ids[i%len(ids)]})
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
	})
}

func BenchmarkUpdate(b *testing.B) {
	benchEngines(b, func(b *testing.B, svc *rest.Service) {
		body := []byte(strings.Replace(benchObservation, `"resourceType":"Observation",`, `"resourceType":"Observation","id":"obs-1",`, 1))
		for b.Loop() {
			mustDo(b, svc, &rest.Request{Method: "PUT", Type: "Observation", ID: "obs-1", Body: body})
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "resources/s")
	})
}

// BenchmarkTransaction100 posts transaction bundles of one Patient and 99
// Observations that reference it by urn:uuid.
func BenchmarkTransaction100(b *testing.B) {
	var e []string
	e = append(e, `{"fullUrl":"urn:uuid:6d2d2a4e-0000-4000-8000-000000000000","resource":{"resourceType":"Patient","name":[{"family":"Bench"}]},"request":{"method":"POST","url":"Patient"}}`)
	obs := strings.Replace(benchObservation, "Patient/bench", "urn:uuid:6d2d2a4e-0000-4000-8000-000000000000", 1)
	for i := 1; i < 100; i++ {
		e = append(e, fmt.Sprintf(`{"fullUrl":"urn:uuid:6d2d2a4e-0000-4000-8000-%012d","resource":%s,"request":{"method":"POST","url":"Observation"}}`, i, obs))
	}
	bundle := []byte(`{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(e, ",") + `]}`)
	benchEngines(b, func(b *testing.B, svc *rest.Service) {
		for b.Loop() {
			mustDo(b, svc, &rest.Request{Method: "POST", Body: bundle, Return: rest.ReturnMinimal})
		}
		b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "resources/s")
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/bundle")
	})
}

// BenchmarkSyntheaIngest posts the Synthea set-a patient bundles (real
// shapes: ~18 index rows per resource) as transactions, one at a time.
// Besides the wall rate it reports this process's CPU time per resource,
// which stays meaningful when other work shares the machine (the
// PostgreSQL server's own CPU is not in it).
func BenchmarkSyntheaIngest(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(sharedDir(b, "testdata/synthea/set-a"), "*.json"))
	if len(files) > 12 {
		files = files[:12]
	}
	var bundles [][]byte
	entries := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		bundles = append(bundles, data)
		entries += strings.Count(string(data), `"request"`)
	}
	benchEngines(b, func(b *testing.B, svc *rest.Service) {
		cpu0, n := cpuTime(), 0
		for b.Loop() {
			// Each pass posts the same bundles; Synthea's entries are
			// conditional-free POSTs, so each pass stores new resources.
			for _, bundle := range bundles {
				mustDo(b, svc, &rest.Request{Method: "POST", Body: bundle, Return: rest.ReturnMinimal})
			}
			n += entries
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "resources/s")
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/resource")
	})
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
