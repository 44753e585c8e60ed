package importer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// run is the state of one import.
type run struct {
	opts     Options
	start    time.Time
	cutoff   time.Time // versions last modified before it predate the run
	progress *progress

	mu   sync.Mutex // guards sum and seen, and orders the lines on Log
	sum  Summary
	seen map[string]string // Type/id → the version this run wrote or found
}

func newRun(opts Options, total int64) *run {
	r := &run{opts: opts, start: opts.Now(), seen: map[string]string{}}
	// Servers report lastModified to the millisecond. The run writes
	// nothing until the next millisecond begins, so a version stamped
	// before that millisecond was there before the run, and one stamped
	// in or after it was not: a re-run started in the millisecond the
	// previous one ended still tells the two apart.
	r.cutoff = r.start.Truncate(time.Millisecond).Add(time.Millisecond)
	if d := r.cutoff.Sub(r.opts.Now()); d > 0 {
		time.Sleep(d)
	}
	r.progress = newProgress(r, total)
	return r
}

func (r *run) summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sum
	s.Elapsed = r.opts.Now().Sub(r.start)
	return s
}

// report writes one problem line.
func (r *run) report(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress.clear()
	fmt.Fprintf(r.opts.Log, format+"\n", args...)
}

func (r *run) failed(at Position, msg string) {
	r.mu.Lock()
	r.sum.Failed++
	r.mu.Unlock()
	r.report("%s: %s", at, msg)
}

func (r *run) fileFailed(file string, bytes int64, msg string) {
	r.mu.Lock()
	r.sum.FailedFiles++
	r.mu.Unlock()
	r.progress.add(bytes)
	r.report("%s: %s", file, msg)
}

func (r *run) fileRead() {
	r.mu.Lock()
	r.sum.Files++
	r.mu.Unlock()
}

func (r *run) fileSkipped(file string, bytes int64) {
	r.mu.Lock()
	r.sum.SkippedFiles++
	r.mu.Unlock()
	r.progress.add(bytes)
}

// fileSkippedRead skips a file already counted as read.
func (r *run) fileSkippedRead(file string, bytes int64) {
	r.mu.Lock()
	r.sum.Files--
	r.mu.Unlock()
	r.fileSkipped(file, bytes)
}

// write sends one unit: a bundle as it is, or a batch of items as a
// transaction (writeItems). A non-nil error stops the import.
func (r *run) write(ctx context.Context, t Target, u unit) error {
	defer r.progress.add(u.bytes)
	if u.raw != nil {
		res, err := t.Send(ctx, u.raw)
		var refused *Refused
		switch {
		case errors.As(err, &refused):
			entries, _ := u.raw["entry"].([]any)
			r.mu.Lock()
			r.sum.Failed += len(entries)
			r.mu.Unlock()
			r.report("%s: the Bundle was refused: %s", u.rawAt.File, refused.Outcome)
			return nil
		case err != nil:
			return err
		}
		for i, x := range res {
			at := u.rawAt
			at.Entry = i
			r.result(&item{at: at}, x)
		}
		return nil
	}
	return r.writeItems(ctx, t, u.items)
}

// writeItems sends items as one transaction. When the server refuses it,
// each half is sent again on its own, down to single resources, whose
// refusal is reported: one bad resource costs a few more transactions,
// and the others are stored with a transaction's semantics (conditional
// references resolved) and few commits.
func (r *run) writeItems(ctx context.Context, t Target, items []*item) error {
	res, err := t.Send(ctx, bundle("transaction", items))
	var refused *Refused
	switch {
	case errors.As(err, &refused) && len(items) > 1:
		h := len(items) / 2
		if err := r.writeItems(ctx, t, items[:h]); err != nil {
			return err
		}
		return r.writeItems(ctx, t, items[h:])
	case errors.As(err, &refused):
		r.failed(items[0].at, ref(items[0])+entryless(refused.Outcome, items[0].typ))
		return nil
	case err != nil:
		return err
	case len(res) != len(items):
		return fmt.Errorf("the server answered %d entries for %d", len(res), len(items))
	}
	for i, it := range items {
		r.result(it, res[i])
	}
	return nil
}

// entryless removes from an outcome about the only entry of a transaction
// what names that entry (Hale's "Bundle.entry[0]: ",
// "Bundle.entry[0].resource.x"): the report names the file and line.
func entryless(text, typ string) string {
	text = entryPrefix.ReplaceAllString(text, "")
	return strings.ReplaceAll(text, "Bundle.entry[0].resource", typ)
}

var entryPrefix = regexp.MustCompile(`Bundle\.entry\[0\]( \([A-Z]+ [^)]*\))?: `)

func ref(it *item) string {
	if it.typ == "" {
		return ""
	}
	return it.typ + "/" + it.id + ": "
}

// result counts one entry's answer. A 200 is an update unless the version
// it answers with was written before this run's cutoff or was already
// answered in this run: then the server found the content unchanged.
func (r *run) result(it *item, x Result) {
	switch {
	case x.Status == 201:
		r.mu.Lock()
		r.sum.Created++
		r.seen[versionKey(x.Location)] = x.Location
		r.mu.Unlock()
	case x.Status/100 == 2:
		key := versionKey(x.Location)
		r.mu.Lock()
		if x.Location != "" && (r.seen[key] == x.Location || !x.LastModified.IsZero() && x.LastModified.Before(r.cutoff)) {
			r.sum.Unchanged++
		} else {
			r.sum.Updated++
		}
		r.seen[key] = x.Location
		r.mu.Unlock()
	default:
		msg := x.Outcome
		if msg == "" {
			msg = fmt.Sprintf("status %d", x.Status)
		}
		r.failed(it.at, ref(it)+msg)
	}
}

// versionKey is Type/id of a Location Type/id/_history/n.
func versionKey(loc string) string {
	k, _, _ := strings.Cut(loc, "/_history/")
	return k
}

// bundle builds a batch or transaction of PUT Type/id entries.
func bundle(typ string, items []*item) map[string]any {
	entries := make([]any, len(items))
	for i, it := range items {
		entries[i] = map[string]any{
			"resource": it.res,
			"request":  map[string]any{"method": "PUT", "url": it.typ + "/" + it.id},
		}
	}
	return map[string]any{"resourceType": "Bundle", "type": typ, "entry": entries}
}
