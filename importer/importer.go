// Package importer loads FHIR data into a FHIR server: Bundles
// (transaction, batch, collection, searchset), single resources, Bulk Data
// NDJSON (.ndjson, .ndjson.gz), folders and .zip files of them.
//
// Every resource is written as an update-as-create (PUT Type/id) so that
// importing the same files again writes the same ids: with a target that
// skips unchanged updates (rest.SkipUnchanged, HAPI FHIR) a re-run adds no
// version. Resources are grouped into transaction Bundles of Options.Batch
// entries; a transaction that fails is split in halves and sent again,
// down to single resources, so that a bad resource is reported (file,
// line, OperationOutcome) and the others are stored. Resources with
// conditional references (Practitioner?identifier=…, as in Synthea's Bulk
// Data export) are written last, once their targets are stored. Files are
// read and decoded in parallel, and several transactions are in flight at
// once.
//
// The target is a Target: ServiceTarget writes through the FHIR core
// (rest.Service) into a store, HTTPTarget through any FHIR server's API.
// docs/import.md describes the command built on it, `hale import`.
package importer

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options tune Run. The zero value works.
type Options struct {
	// Batch is the most resources per transaction; default 500.
	Batch int
	// Workers decode files in parallel; default GOMAXPROCS.
	Workers int
	// Writers is how many batches are sent at once; default GOMAXPROCS.
	Writers int
	// Log receives problems as they are found and the progress display;
	// nil discards them.
	Log io.Writer
	// Terminal draws a one-line progress bar on Log (a terminal) instead
	// of a plain line every Every.
	Terminal bool
	// Every is the period of the progress display; default 10s for plain
	// lines, 200ms for the bar; negative for no display.
	Every time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Summary counts what an import did.
type Summary struct {
	Files        int // files (and archive members) read
	SkippedFiles int // files in folders and archives that are not FHIR data
	FailedFiles  int // files that could not be read at all
	Created      int // resources that did not exist
	Updated      int // resources written as a new version
	Unchanged    int // resources already stored with the same content
	Failed       int // resources refused or not decodable
	Elapsed      time.Duration
}

// Written is the number of resources stored (created or updated).
func (s Summary) Written() int { return s.Created + s.Updated }

// Rate is the resources handled (stored or unchanged) per second.
func (s Summary) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Written()+s.Unchanged) / s.Elapsed.Seconds()
}

func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s files", group(int64(s.Files)))
	if s.SkippedFiles > 0 {
		fmt.Fprintf(&b, " (%s skipped: not FHIR data)", group(int64(s.SkippedFiles)))
	}
	if s.FailedFiles > 0 {
		fmt.Fprintf(&b, ", %s unreadable", group(int64(s.FailedFiles)))
	}
	fmt.Fprintf(&b, "; %s resources written (%s created, %s updated), %s unchanged, %s failed; %s, %s resources/s",
		group(int64(s.Written())), group(int64(s.Created)), group(int64(s.Updated)), group(int64(s.Unchanged)),
		group(int64(s.Failed)), s.Elapsed.Round(time.Millisecond), group(int64(s.Rate()+0.5)))
	return b.String()
}

// Err is nil when nothing failed, else an error saying how much did.
func (s Summary) Err() error {
	if s.Failed == 0 && s.FailedFiles == 0 {
		return nil
	}
	return fmt.Errorf("%d resources and %d files failed", s.Failed, s.FailedFiles)
}

// item is one resource on its way to the target.
type item struct {
	at    Position
	typ   string
	id    string
	res   map[string]any
	cond  []string // types its conditional references search
	bytes int64    // input bytes credited to the progress when it is done
}

// Position locates a resource or a problem in the input.
type Position struct {
	File  string // path; a member of an archive is "archive.zip:member"
	Line  int    // 1-based line; 0 when unknown
	Entry int    // Bundle.entry index; -1 outside bundles
}

func (p Position) String() string {
	s := p.File
	if p.Line > 0 {
		s += ":" + strconv.Itoa(p.Line)
	}
	if p.Entry >= 0 {
		s += ": Bundle.entry[" + strconv.Itoa(p.Entry) + "]"
	}
	return s
}

// unit is what the writers send: a batch of items as one transaction, or
// a bundle that must go as it is (it holds entries that cannot become a
// PUT: deletes, conditional interactions, patches, reads).
type unit struct {
	items []*item
	raw   map[string]any // a bundle passed through; items then empty
	rawAt Position
	bytes int64
}

// Run imports the files and folders in paths into t and returns what it
// did. Problems with single files and resources are reported on
// opts.Log and counted, and the import carries on; Run returns an error
// only when the import cannot go on (the target is unreachable, ctx is
// done). Summary.Err tells whether anything failed.
func Run(ctx context.Context, t Target, paths []string, opts Options) (Summary, error) {
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Writers <= 0 {
		opts.Writers = runtime.GOMAXPROCS(0)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	srcs, total, err := plan(paths)
	if err != nil {
		return Summary{}, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	r := newRun(opts, total)
	r.progress.start()

	jobs := make(chan job, opts.Workers)
	items := make(chan *item, opts.Batch)

	// One goroutine walks the inputs and cuts them into jobs (a whole
	// JSON file, a chunk of NDJSON lines); decoders turn jobs into items
	// in parallel; one goroutine groups the items into transactions, and
	// writers send them.
	go func() {
		defer close(jobs)
		r.read(ctx, srcs, jobs)
	}()
	var deferred []*item
	r.writeAll(ctx, cancel, t, func(units chan<- unit) {
		var dec sync.WaitGroup
		for range opts.Workers {
			dec.Go(func() {
				for j := range jobs {
					r.decode(j, items, units)
				}
			})
		}
		go func() {
			dec.Wait()
			close(items)
		}()
		deferred = r.batch(items, units, opts.Batch)
	})

	// Resources with conditional references (Patient?identifier=…) go
	// last, once what they point at is stored, in layers: those pointing
	// only at types with nothing left to write first.
	for len(deferred) > 0 && ctx.Err() == nil {
		pending := map[string]bool{}
		for _, it := range deferred {
			pending[it.typ] = true
		}
		var ready, later []*item
		for _, it := range deferred {
			blocked := false
			for _, typ := range it.cond {
				blocked = blocked || typ != it.typ && pending[typ]
			}
			if blocked {
				later = append(later, it)
			} else {
				ready = append(ready, it)
			}
		}
		if len(ready) == 0 { // a cycle: send them all
			ready, later = later, nil
		}
		r.writeAll(ctx, cancel, t, func(units chan<- unit) {
			in := make(chan *item)
			go func() {
				defer close(in)
				for _, it := range ready {
					it.cond = nil
					in <- it
				}
			}()
			r.batch(in, units, opts.Batch)
		})
		deferred = later
	}

	r.progress.stop()
	sum := r.summary()
	if err := context.Cause(ctx); err != nil {
		return sum, err
	}
	return sum, nil
}

// batch groups items into units of at most n, and returns the items
// with conditional references, which must wait. Two writes of one
// resource never share a transaction (the FHIR core refuses that): the
// second starts a new one.
func (r *run) batch(items <-chan *item, units chan<- unit, n int) (deferred []*item) {
	var cur []*item
	var bytes int64
	keys := map[string]bool{}
	flush := func() {
		if len(cur) > 0 {
			units <- unit{items: cur, bytes: bytes}
		}
		cur, bytes = nil, 0
		clear(keys)
	}
	for it := range items {
		if len(it.cond) > 0 {
			deferred = append(deferred, it)
			continue
		}
		key := it.typ + "/" + it.id
		if keys[key] {
			flush()
		}
		keys[key] = true
		cur = append(cur, it)
		bytes += it.bytes
		if len(cur) == n {
			flush()
		}
	}
	flush()
	return deferred
}

// writeAll runs the writers on the units produce sends, until it returns
// and they are written. An error from a writer cancels the import.
func (r *run) writeAll(ctx context.Context, cancel context.CancelCauseFunc, t Target, produce func(chan<- unit)) {
	units := make(chan unit, r.opts.Writers)
	var wr sync.WaitGroup
	for range r.opts.Writers {
		wr.Go(func() {
			for u := range units {
				if ctx.Err() != nil {
					continue // drain
				}
				if err := r.write(ctx, t, u); err != nil {
					cancel(err)
				}
			}
		})
	}
	produce(units)
	close(units)
	wr.Wait()
}
