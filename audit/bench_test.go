package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/rest"
)

// BenchmarkAuditedRead measures what auditing costs a read: Patient reads
// by id through rest.Service.Do at 1, 8 and 32 concurrent clients (the
// read shape of issue 5's workload), b.N reads without the audit trail,
// then b.N reads with the Recorder, on the same store. The audited time
// includes writing and chaining every record (the benchmark waits for the
// last flush and seal), so the records are not merely queued. It reports
// both rates and their ratio (audited / plain; the goal is at least 0.5).
//
//	go test ./audit -run '^$' -bench AuditedRead -benchtime 2s
func BenchmarkAuditedRead(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, clients := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/clients=%d", engine, clients), func(b *testing.B) {
				s, _ := openEngineB(b, engine)
				plain := rest.NewService(s)
				audited, rec := newServiceB(b, s)
				ctx := hale.WithPrincipal(context.Background(), &hale.Principal{Subject: "user/b", Name: "Dr B",
					FHIRUser: "Practitioner/b", Address: "192.0.2.1"})
				var ids []string
				for i := range 100 {
					r, err := plain.Do(ctx, &rest.Request{Method: "POST", Type: "Patient",
						Body: []byte(fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"Bench%d"}]}`, i))})
					if err != nil {
						b.Fatal(err)
					}
					var p map[string]any
					json.Unmarshal(r.Body, &p)
					ids = append(ids, p["id"].(string))
				}
				run := func(svc *rest.Service) time.Duration {
					var next atomic.Int64
					var wg sync.WaitGroup
					start := time.Now()
					for range clients {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for {
								i := next.Add(1)
								if i > int64(b.N) {
									return
								}
								req := &rest.Request{Method: "GET", Type: "Patient", ID: ids[i%int64(len(ids))]}
								if _, err := svc.Do(ctx, req); err != nil {
									b.Error(err)
									return
								}
							}
						}()
					}
					wg.Wait()
					return time.Since(start)
				}
				b.ResetTimer()
				cpu0 := cpuTime()
				tPlain := run(plain)
				cpu1 := cpuTime()
				tAudited := run(audited)
				start := time.Now()
				if err := rec.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				if err := rec.SealAll(ctx); err != nil {
					b.Fatal(err)
				}
				tAudited += time.Since(start)
				cpu2 := cpuTime()
				b.StopTimer()
				plainRate := float64(b.N) / tPlain.Seconds()
				auditedRate := float64(b.N) / tAudited.Seconds()
				b.ReportMetric(0, "ns/op")
				b.ReportMetric(plainRate, "plain-reads/s")
				b.ReportMetric(auditedRate, "audited-reads/s")
				b.ReportMetric(auditedRate/plainRate, "ratio")
				// This process's CPU time per read (all threads; with
				// PostgreSQL the server's is not included): steadier than
				// the rates on a shared machine.
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "plain-cpu-µs/read")
				b.ReportMetric(float64((cpu2-cpu1).Microseconds())/float64(b.N), "audited-cpu-µs/read")
			})
		}
	}
}

// cpuTime is the CPU time this process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
