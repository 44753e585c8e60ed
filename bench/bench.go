// Package bench is Hale's benchmark harness (`hale bench`): a fixed,
// documented workload run against any FHIR base URL — Hale or another
// server — over HTTP, so one run can measure both. It prints a table and
// writes JSON.
//
// The workload, in order:
//
//  1. ingest: POST the transaction bundles (Synthea patients) again and
//     again for Ingest, from 2 clients; resources/s.
//  2. read: GET resources by id at 1, 8 and 32 clients; requests/s and
//     p50/p95/p99 latency.
//  3. search: the shapes other servers publish — count by code; code and
//     date; code and a list of patients; patient birth date; a chained
//     search — at 8 clients.
//  4. $everything on the ingested patients at 1 client.
//  5. $export of everything (when the server's CapabilityStatement lists
//     it): resources/s until complete.
//
// It also measures this machine's limits with the same bytes — a raw
// SQLite insert of the resources and a raw JSON decode — and prints the
// ingest rate as a ratio of them.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure a run.
type Options struct {
	BaseURL string        // FHIR base, e.g. http://127.0.0.1:8080/fhir
	Bundles [][]byte      // transaction bundles to ingest
	Ingest  time.Duration // how long to ingest (at least one pass)
	// IngestClients is how many clients post bundles at once; 0 means 4:
	// two cannot keep a 2-core server busy, since each alternates between
	// sending and parsing a bundle and waiting for its commit.
	IngestClients int
	Phase         time.Duration // how long each read/search phase runs
	// ExportTimeout bounds the $export phase (default 10 minutes).
	ExportTimeout time.Duration
	Client        *http.Client
	Log           io.Writer // progress lines; nil for none
	// AfterIngest, when set, runs between the ingest and the other
	// phases: for a fresh PostgreSQL, the ANALYZE autovacuum would run
	// within a minute of the load.
	AfterIngest func(context.Context) error
}

// Result is one measured line.
type Result struct {
	Name     string  `json:"name"`
	Clients  int     `json:"clients"`
	Count    int64   `json:"count"`             // requests (or resources, for rates of resources)
	Rate     float64 `json:"rate"`              // per second
	Unit     string  `json:"unit"`              // "resources/s" or "req/s"
	P50      float64 `json:"p50_ms,omitempty"`  // latency percentiles, ms
	P95      float64 `json:"p95_ms,omitempty"`  //
	P99      float64 `json:"p99_ms,omitempty"`  //
	Errors   int64   `json:"errors"`            // failed requests
	Note     string  `json:"note,omitempty"`    //
	Matches  int64   `json:"matches,omitempty"` // search: matches of the last answer
	Skipped  bool    `json:"skipped,omitempty"` // not run (unsupported)
	Ratio    float64 `json:"ratio,omitempty"`   // ingest: fraction of the raw limit
	RawLimit float64 `json:"raw_limit,omitempty"`
	// CPUPerItem is the CPU time (user and system) this process used per
	// resource ingested, in µs: with no --url, the measured Hale and the
	// load generator together. It stays meaningful when other work
	// shares the machine, as wall-clock rates do not. A PostgreSQL
	// server's own CPU is not in it.
	CPUPerItem float64 `json:"cpu_us_per_item,omitempty"`
}

// Report is a whole run.
type Report struct {
	BaseURL string    `json:"base_url"`
	Started time.Time `json:"started"`
	Results []Result  `json:"results"`
	Limits  Limits    `json:"limits"`
}

// Run runs the workload.
func Run(ctx context.Context, opt Options) (*Report, error) {
	if opt.Client == nil {
		opt.Client = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	}
	if opt.Phase == 0 {
		opt.Phase = 5 * time.Second
	}
	if opt.ExportTimeout == 0 {
		opt.ExportTimeout = 10 * time.Minute
	}
	r := &runner{opt: opt, rep: &Report{BaseURL: opt.BaseURL, Started: time.Now().UTC()}}
	if err := r.ingest(ctx); err != nil {
		return nil, err
	}
	if len(r.ids) == 0 {
		return nil, fmt.Errorf("ingest stored nothing; is %s a FHIR server?", opt.BaseURL)
	}
	if opt.AfterIngest != nil {
		if err := opt.AfterIngest(ctx); err != nil {
			return nil, err
		}
	}
	for _, clients := range []int{1, 8, 32} {
		r.read(ctx, clients)
	}
	r.searches(ctx)
	r.everything(ctx)
	r.export(ctx)
	lim, err := MeasureLimits(opt.Bundles)
	if err != nil {
		return nil, err
	}
	r.rep.Limits = lim
	for i := range r.rep.Results {
		if res := &r.rep.Results[i]; res.Name == "ingest" && lim.SQLiteInsertPerSec > 0 {
			res.RawLimit = lim.SQLiteInsertPerSec
			res.Ratio = res.Rate / lim.SQLiteInsertPerSec
		}
	}
	return r.rep, nil
}

type runner struct {
	opt      Options
	rep      *Report
	mu       sync.Mutex
	ids      []string // Type/id of everything ingested
	patients []string // Patient ids
}

func (r *runner) logf(format string, args ...any) {
	if r.opt.Log != nil {
		fmt.Fprintf(r.opt.Log, format+"\n", args...)
	}
}

func (r *runner) do(ctx context.Context, method, path string, body []byte, headers ...string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, r.opt.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	resp, err := r.opt.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// ingest posts the bundles from IngestClients clients until Ingest has passed (at
// least once each), and records what was created.
func (r *runner) ingest(ctx context.Context) error {
	var resources, errs atomic.Int64
	var lat latencies
	cpu0 := processCPU()
	start := time.Now()
	next := atomic.Int64{}
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	clients := r.opt.IngestClients
	if clients <= 0 {
		clients = 4
	}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if int(i) >= len(r.opt.Bundles) && time.Since(start) >= r.opt.Ingest {
					return
				}
				b := r.opt.Bundles[int(i)%len(r.opt.Bundles)]
				t0 := time.Now()
				code, body, err := r.do(ctx, "POST", "", b, "Prefer", "return=minimal")
				lat.add(time.Since(t0))
				if err != nil || code != 200 {
					errs.Add(1)
					errOnce.Do(func() { firstErr = fmt.Errorf("ingest: status %d: %v %.300s", code, err, body) })
					if int(i) < len(r.opt.Bundles) {
						continue
					}
					return
				}
				resources.Add(int64(r.record(body)))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	res := Result{Name: "ingest", Clients: clients, Count: resources.Load(), Rate: float64(resources.Load()) / el, Unit: "resources/s", Errors: errs.Load(),
		Note: fmt.Sprintf("%d transaction bundles", next.Load())}
	if n := resources.Load(); n > 0 {
		res.CPUPerItem = float64((processCPU() - cpu0).Microseconds()) / float64(n)
	}
	res.P50, res.P95, res.P99 = lat.percentiles()
	r.rep.Results = append(r.rep.Results, res)
	r.logf("ingest: %d resources, %.0f resources/s", res.Count, res.Rate)
	if resources.Load() == 0 && firstErr != nil {
		return firstErr
	}
	return nil
}

// record notes the ids a transaction-response created; returns how many.
func (r *runner) record(body []byte) int {
	var b struct {
		Entry []struct {
			Response struct{ Location string } `json:"response"`
		} `json:"entry"`
	}
	if json.Unmarshal(body, &b) != nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range b.Entry {
		parts := strings.Split(e.Response.Location, "/")
		if len(parts) < 2 {
			continue
		}
		r.ids = append(r.ids, parts[0]+"/"+parts[1])
		if parts[0] == "Patient" {
			r.patients = append(r.patients, parts[1])
		}
	}
	return len(b.Entry)
}

// load runs fn from clients goroutines for Phase and records a result.
func (r *runner) load(ctx context.Context, name string, clients int, fn func(i int) (path string)) Result {
	var count, errs, matches atomic.Int64
	var lat latencies
	deadline := time.Now().Add(r.opt.Phase)
	start := time.Now()
	var wg sync.WaitGroup
	var seq atomic.Int64
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				path := fn(int(seq.Add(1)))
				t0 := time.Now()
				code, body, err := r.do(ctx, "GET", path, nil)
				lat.add(time.Since(t0))
				count.Add(1)
				if err != nil || code != 200 {
					errs.Add(1)
					continue
				}
				if name != "read" {
					var b struct{ Total *int64 }
					if json.Unmarshal(body, &b) == nil && b.Total != nil {
						matches.Store(*b.Total)
					}
				}
			}
		}()
	}
	wg.Wait()
	res := Result{Name: name, Clients: clients, Count: count.Load(), Rate: float64(count.Load()) / time.Since(start).Seconds(), Unit: "req/s",
		Errors: errs.Load(), Matches: matches.Load()}
	res.P50, res.P95, res.P99 = lat.percentiles()
	r.rep.Results = append(r.rep.Results, res)
	r.logf("%s (%d clients): %.0f req/s, p50 %.2f ms, p99 %.2f ms", name, clients, res.Rate, res.P50, res.P99)
	return res
}

func (r *runner) read(ctx context.Context, clients int) {
	r.load(ctx, "read", clients, func(i int) string { return "/" + r.ids[(i*7919)%len(r.ids)] })
}

func (r *runner) searches(ctx context.Context) {
	code := "http://loinc.org|8302-2" // body height: every Synthea patient has it
	pats := r.patients
	list := func(i int) string {
		n := min(len(pats), 5)
		var ids []string
		for k := 0; k < n; k++ {
			ids = append(ids, "Patient/"+pats[(i+k)%len(pats)])
		}
		return strings.Join(ids, ",")
	}
	q := url.QueryEscape
	shapes := []struct {
		name string
		path func(i int) string
	}{
		{"search: count by code", func(int) string { return "/Observation?_summary=count&code=" + q(code) }},
		{"search: code and date", func(int) string { return "/Observation?_count=50&code=" + q(code) + "&date=ge2015-01-01" }},
		{"search: code and patients", func(i int) string { return "/Observation?_count=50&code=" + q(code) + "&subject=" + q(list(i)) }},
		{"search: patient birth date", func(int) string { return "/Patient?_count=50&birthdate=ge1970-01-01" }},
		{"search: chained", func(int) string { return "/Observation?_count=50&subject:Patient.name=a" }},
	}
	for _, s := range shapes {
		r.load(ctx, s.name, 8, s.path)
	}
}

func (r *runner) everything(ctx context.Context) {
	if len(r.patients) == 0 {
		return
	}
	r.load(ctx, "$everything", 1, func(i int) string { return "/Patient/" + r.patients[i%len(r.patients)] + "/$everything?_count=1000" })
}

// export runs a system $export if the server says it has one.
func (r *runner) export(ctx context.Context) {
	code, body, err := r.do(ctx, "GET", "/metadata", nil)
	if err != nil || code != 200 || !bytes.Contains(body, []byte(`"export"`)) {
		r.rep.Results = append(r.rep.Results, Result{Name: "$export", Unit: "resources/s", Skipped: true, Note: "the server does not list $export"})
		r.logf("$export: skipped (not in the CapabilityStatement)")
		return
	}
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, "GET", r.opt.BaseURL+"/$export", nil)
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "respond-async")
	resp, err := r.opt.Client.Do(req)
	if err != nil {
		r.rep.Results = append(r.rep.Results, Result{Name: "$export", Unit: "resources/s", Errors: 1, Note: err.Error()})
		return
	}
	resp.Body.Close()
	status := resp.Header.Get("Content-Location")
	var manifest struct {
		Output []struct{ URL string } `json:"output"`
	}
	// Poll every 20 ms: the export of a bench's data ends in about a
	// second, and a coarser poll would measure the poll (a status
	// request is one small read).
	const pause = 20 * time.Millisecond
	for status != "" {
		time.Sleep(pause)
		req, _ := http.NewRequestWithContext(ctx, "GET", status, nil)
		resp, err := r.opt.Client.Do(req)
		if err != nil {
			break
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			json.Unmarshal(data, &manifest)
			break
		}
		if resp.StatusCode != 202 {
			break
		}
		if time.Since(start) > r.opt.ExportTimeout {
			r.rep.Results = append(r.rep.Results, Result{Name: "$export", Unit: "resources/s", Errors: 1,
				Note: fmt.Sprintf("not complete after %s", r.opt.ExportTimeout)})
			r.logf("$export: not complete after %s", r.opt.ExportTimeout)
			return
		}
	}
	ready := time.Since(start)
	// Download the files two at a time, as Bulk Data clients do.
	var n atomic.Int64
	var wg sync.WaitGroup
	files := make(chan string)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range files {
				req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
				resp, err := r.opt.Client.Do(req)
				if err != nil {
					continue
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				n.Add(int64(bytes.Count(data, []byte("\n"))))
			}
		}()
	}
	for _, o := range manifest.Output {
		files <- o.URL
	}
	close(files)
	wg.Wait()
	total := time.Since(start)
	res := Result{Name: "$export", Clients: 1, Count: n.Load(), Rate: float64(n.Load()) / total.Seconds(), Unit: "resources/s",
		Note: fmt.Sprintf("kick-off to manifest %d ms, download %d ms, %d files", ready.Milliseconds(), (total - ready).Milliseconds(), len(manifest.Output))}
	r.rep.Results = append(r.rep.Results, res)
	r.logf("$export: %d resources, %.0f resources/s (%s)", n.Load(), res.Rate, res.Note)
}

// latencies collects durations.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) percentiles() (p50, p95, p99 float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0, 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(l.d)))) - 1
		return float64(l.d[max(0, i)].Microseconds()) / 1000
	}
	return at(0.50), at(0.95), at(0.99)
}

// Table writes the report as a text table.
func (rep *Report) Table(w io.Writer) {
	fmt.Fprintf(w, "Hale bench against %s (%s)\n\n", rep.BaseURL, rep.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "%-28s %7s %10s %14s %9s %9s %9s %7s\n", "workload", "clients", "count", "rate", "p50 ms", "p95 ms", "p99 ms", "errors")
	for _, r := range rep.Results {
		if r.Skipped {
			fmt.Fprintf(w, "%-28s %s\n", r.Name, "skipped: "+r.Note)
			continue
		}
		fmt.Fprintf(w, "%-28s %7d %10d %9.0f %-4s %9.2f %9.2f %9.2f %7d\n", r.Name, r.Clients, r.Count, r.Rate, shortUnit(r.Unit), r.P50, r.P95, r.P99, r.Errors)
	}
	l := rep.Limits
	fmt.Fprintf(w, "\nThis machine's limits with the same resources (%d resources, %.1f MB):\n", l.Resources, float64(l.Bytes)/1e6)
	fmt.Fprintf(w, "  raw JSON decode:                %10.0f resources/s (%.0f MB/s)\n", l.JSONDecodePerSec, l.JSONDecodeMBPerSec)
	fmt.Fprintf(w, "  raw SQLite insert, 1 per commit: %9.0f resources/s\n", l.SQLiteInsertOnePerSec)
	fmt.Fprintf(w, "  raw SQLite insert, batched:     %10.0f resources/s\n", l.SQLiteInsertPerSec)
	for _, r := range rep.Results {
		if r.Name == "ingest" && r.Ratio > 0 {
			fmt.Fprintf(w, "  ingest = %.1f%% of the raw batched SQLite insert rate\n", 100*r.Ratio)
		}
		if r.Name == "ingest" && r.CPUPerItem > 0 {
			fmt.Fprintf(w, "  ingest CPU of this process: %.0f µs per resource (%.0f resources/s per core)\n", r.CPUPerItem, 1e6/r.CPUPerItem)
		}
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func shortUnit(u string) string {
	if u == "resources/s" {
		return "res/s"
	}
	return u
}
