package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/synth"
)

const generateUsage = `Usage: hale generate --patients N [--seed S] (--out DIR | --data DIR | --database URL) [flags]

Generates a deterministic synthetic population (package synth): patients
with chronic conditions and their medications, vitals and labs over years,
encounters, immunizations, allergies, procedures and lab reports, and one
patient in 200 on dialysis with 500+ encounters. The same seed always gives
the same resources with the same ids. See docs/generate.md.

With --out it writes Bulk Data NDJSON, one file per resource type
(Patient.ndjson, …). Otherwise it writes into the data folder (--data) or
PostgreSQL database (--database) through the FHIR core, every resource with
its own id (PUT Type/id), one transaction per --batch patients.

Flags:
  --patients N           how many patients (required)
  --seed S               the seed (default 1)
  --out DIR              write NDJSON files into DIR instead of a database
  --gzip                 with --out: write .ndjson.gz files
  --start, --end DATE    the simulated window (default: the 15 years to 2025-01-01)
  --data DIR             data folder of the embedded SQLite database ($HALE_DATA)
  --database URL         PostgreSQL URL ($HALE_DATABASE)
  --batch N              patients per transaction (default 1)
  --writers N            transactions in flight (default 1 on SQLite, the CPUs on PostgreSQL)
  --workers N            patients generated at once (default: the number of CPUs)
  --progress-every D     period of the progress lines on stderr (default 2s; 0: none)
and the other settings of "hale serve" (--config, --sqlite-synchronous).
`

// generateCommand implements `hale generate`.
func generateCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hale generate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	patients := fs.Int("patients", 0, "")
	seed := fs.Int64("seed", 1, "")
	out := fs.String("out", "", "")
	gz := fs.Bool("gzip", false, "")
	start := fs.String("start", "", "")
	end := fs.String("end", "", "")
	batch := fs.Int("batch", 1, "")
	writers := fs.Int("writers", 0, "")
	workers := fs.Int("workers", 0, "")
	every := fs.Duration("progress-every", 2*time.Second, "")

	// Flags that are not generate's own are the server's settings.
	takesValue := map[string]bool{"config": true}
	var probe Config
	for _, s := range settings(&probe) {
		_, isBool := s.ptr.(*bool)
		takesValue[s.flag] = !isBool
	}
	var own, storeArgs []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			fmt.Fprint(stderr, generateUsage)
			return fmt.Errorf("hale generate: unexpected argument %q", a)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		dst := &storeArgs
		switch {
		case name == "h" || name == "help":
			fmt.Fprint(stdout, generateUsage)
			return flag.ErrHelp
		case f != nil:
			dst = &own
		case takesValue[name] || name == "no-demo":
		default:
			fmt.Fprint(stderr, generateUsage)
			return fmt.Errorf("hale generate: unknown flag %s", a)
		}
		*dst = append(*dst, a)
		isBool := f != nil && f.Name == "gzip"
		if !hasValue && !isBool && (f != nil || takesValue[name]) && i+1 < len(args) {
			i++
			*dst = append(*dst, args[i])
		}
	}
	if err := fs.Parse(own); err != nil {
		return fmt.Errorf("hale generate: %v", err)
	}
	if *patients <= 0 {
		fmt.Fprint(stderr, generateUsage)
		return errors.New("hale generate: --patients must be a positive number")
	}
	opt := synth.Options{Patients: *patients, Seed: *seed, Workers: *workers}
	for _, d := range []struct {
		flag, v string
		t       *time.Time
	}{{"start", *start, &opt.Start}, {"end", *end, &opt.End}} {
		if d.v == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, d.v)
		if err != nil {
			return fmt.Errorf("hale generate: --%s %q: expected YYYY-MM-DD", d.flag, d.v)
		}
		*d.t = t
	}
	if *batch < 1 {
		return errors.New("hale generate: --batch must be at least 1")
	}

	prog := &progress{w: stderr, every: *every, total: *patients, start: time.Now()}
	if *out != "" {
		if len(storeArgs) > 0 {
			return fmt.Errorf("hale generate: --out writes files; %s does not apply", storeArgs[0])
		}
		stats, err := synth.WriteNDJSON(ctx, opt, *out, synth.NDJSONOptions{Gzip: *gz, Progress: prog.update})
		if err != nil {
			return err
		}
		printSummary(stdout, stats, time.Since(prog.start), "NDJSON files in "+*out)
		return nil
	}
	if *gz {
		return errors.New("hale generate: --gzip applies to --out only")
	}

	cfg, err := LoadConfig("hale generate", storeArgs, getenv)
	if err != nil {
		return err
	}
	store, where, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer store.Close()
	svc := rest.NewService(store)
	svc.Version = version
	if err := svc.LoadSearchParameters(ctx); err != nil {
		return err
	}
	n := *writers
	if n <= 0 {
		n = 1
		if cfg.Database != "" {
			n = runtime.GOMAXPROCS(0)
		}
	}
	stats, err := generateIntoStore(ctx, svc, opt, *batch, n, prog.update)
	if err != nil {
		return err
	}
	printSummary(stdout, stats, time.Since(prog.start), where)
	return nil
}

// generateIntoStore writes the population through the FHIR core: a
// transaction Bundle of PUT entries per batch of patients, so ids are the
// generator's and references hold. Patients are generated on opt.Workers
// goroutines and written by `writers` goroutines.
func generateIntoStore(ctx context.Context, svc *rest.Service, opt synth.Options, batch, writers int, progress func(patients, resources int)) (*synth.Stats, error) {
	g, err := synth.New(opt)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type job struct {
		entries   []any
		patients  int
		resources int
	}
	jobs := make(chan job, writers)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		doneP    atomic.Int64
		doneR    atomic.Int64
		progMu   sync.Mutex
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				bundle := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": j.entries}
				if _, err := svc.Do(ctx, &rest.Request{Method: "POST", Resource: bundle, Return: rest.ReturnMinimal}); err != nil {
					fail(err)
					continue
				}
				p, r := doneP.Add(int64(j.patients)), doneR.Add(int64(j.resources))
				if progress != nil {
					progMu.Lock()
					progress(int(p), int(r))
					progMu.Unlock()
				}
			}
		}()
	}

	stats := synth.NewStats()
	var cur job
	send := func() error {
		if cur.patients == 0 {
			return nil
		}
		select {
		case jobs <- cur:
		case <-ctx.Done():
			return ctx.Err()
		}
		cur = job{}
		return nil
	}
	err = synth.Run(ctx, g, g.Patient, func(i int, rs []synth.Resource) error {
		stats.Add(rs)
		for _, r := range rs {
			cur.entries = append(cur.entries, map[string]any{
				"resource": r.Body,
				"request":  map[string]any{"method": "PUT", "url": r.Type + "/" + r.ID},
			})
		}
		cur.patients++
		cur.resources += len(rs)
		if cur.patients >= batch {
			return send()
		}
		return nil
	})
	if err == nil {
		err = send()
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err != nil {
		return nil, err
	}
	return stats, nil
}

// progress prints a line every so often while the population is written.
type progress struct {
	w     io.Writer
	every time.Duration
	total int
	start time.Time
	last  time.Time
}

func (p *progress) update(patients, resources int) {
	if p.every <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < p.every && patients < p.total {
		return
	}
	p.last = now
	s := now.Sub(p.start).Seconds()
	fmt.Fprintf(p.w, "generate: %d/%d patients, %d resources, %.0f patients/s, %.0f resources/s\n",
		patients, p.total, resources, float64(patients)/s, float64(resources)/s)
}

func printSummary(w io.Writer, s *synth.Stats, took time.Duration, where string) {
	sec := took.Seconds()
	fmt.Fprintf(w, "generated %d patients, %d resources in %s (%.0f patients/s, %.0f resources/s) into %s\n",
		s.Patients, s.Resources, took.Round(time.Millisecond), float64(s.Patients)/sec, float64(s.Resources)/sec, where)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, t := range s.Types() {
		fmt.Fprintf(tw, "%s\t%d\t\n", t, s.ByType[t])
	}
	tw.Flush()
	fmt.Fprintf(w, "%d patients with 500+ encounters (most: %d)\n", s.Heavy, s.MaxEncounters)
}
