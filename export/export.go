// Package export runs Bulk Data export jobs (Bulk Data Access IG STU 2,
// hl7.org/fhir/uv/bulkdata/export.html) in the background: a Runner per
// node claims queued jobs from the database (hale.JobStore), streams the
// resources the FHIR core's plan selects (rest.Service.ExportPlan) page by
// page with the store's keyset search, and writes them as NDJSON files
// into the database, in parts, with a checkpoint after each part.
//
// A job is claimed under a lease that the runner renews as it writes. When
// a node dies (or is stopped) mid-job, its lease runs out and a runner on
// any node (the same one after a restart) claims the job and resumes
// after the last committed part: every resource is written exactly once,
// because a part's file and the checkpoint after it are committed in one
// transaction, chunks of an unfinished part are discarded at the next
// claim, and a runner that lost its lease can no longer write.
//
// docs/export.md explains the design and gives the throughput.
package export

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/rest"
)

// Planner turns an export job into the searches to run; *rest.Service is
// one (ExportPlan). The FHIR semantics of the export (levels,
// compartments, _typeFilter, _since, _elements) live there; this package
// only streams.
type Planner interface {
	ExportPlan(j *hale.Job) (*rest.ExportPlan, error)
}

// Runner runs export jobs on one node. Fill in Store and Planner (or use
// New) and call Run.
type Runner struct {
	// Store keeps the jobs (it must implement hale.JobStore) and the
	// resources (its readers must implement hale.Searcher).
	Store   hale.Store
	Planner Planner
	// Node names this node in the jobs it claims (hostname and a random
	// suffix by default).
	Node string
	// Lease is how long a claim lasts without renewal: the time another
	// node waits before taking over the job of a node that died. The
	// runner renews it whenever half of it has passed. Default 1 minute.
	Lease time.Duration
	// Poll is how often an idle runner looks for a job. Default 1 s.
	Poll time.Duration
	// TTL is how long a finished (or failed) job and its files are kept.
	// Default 24 hours.
	TTL time.Duration
	// PartSize is the number of resources in one output file, which is
	// also how much a resumed job may have to redo. Default 50,000.
	PartSize int
	// ChunkSize is the size in bytes of the pieces a file is stored in.
	// Default 4 MiB.
	ChunkSize int
	// PageSize is the number of resources one search returns. Default 2,000.
	PageSize int
	// MaxClaims fails a job claimed this many times without finishing (a
	// job that crashes every node that runs it). Default 5.
	MaxClaims int
	Now       hale.Now
	Log       *slog.Logger
	// Access, when set, scopes the store the runner reads resources from
	// to the principal that kicked the job off (rest.ExportPlan.Principal,
	// recorded at kick-off), so an export holds what its owner may
	// search and nothing more: access.Policy.Scope, wrapped by the server
	// to also refuse a principal whose session was revoked since. A job
	// without a principal then fails. Jobs and files are always kept in
	// Store itself.
	Access func(ctx context.Context, p *hale.Principal, store hale.Store) (hale.Store, error)
	// OnPart, when set, is called after each file of a job is committed,
	// with the job as it now stands. (Progress reporting; tests use it to
	// stop a runner part-way through.)
	OnPart func(j *hale.Job, f hale.JobFile)

	wake     chan struct{} // Wake: a job was queued on this node
	wakeOnce sync.Once
}

// Wake tells an idle runner that a job was just queued, so that it looks
// now rather than at its next Poll (the kick-off on this node calls it;
// other nodes find the job when they poll).
func (r *Runner) Wake() {
	select {
	case r.wakeChan() <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (r *Runner) wakeChan() chan struct{} {
	r.wakeOnce.Do(func() { r.wake = make(chan struct{}, 1) })
	return r.wake
}

// New returns a Runner with the defaults.
func New(store hale.Store, planner Planner) *Runner {
	host, _ := os.Hostname()
	return &Runner{
		Store: store, Planner: planner,
		Node:  host + "-" + randomHex(4),
		Lease: time.Minute, Poll: time.Second, TTL: 24 * time.Hour,
		PartSize: 50000, ChunkSize: 4 << 20, PageSize: 2000, MaxClaims: 5,
		Now: time.Now, Log: slog.Default(),
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sweepEvery is how often Run deletes expired jobs.
const sweepEvery = time.Minute

// Run claims and runs jobs until ctx is done, and deletes expired jobs
// and their files every minute. It returns ctx's error.
func (r *Runner) Run(ctx context.Context) error {
	var swept time.Time
	for {
		if now := r.Now(); now.Sub(swept) >= sweepEvery {
			if n, err := r.jobs().DeleteExpired(ctx, now); err != nil && ctx.Err() == nil {
				r.Log.Warn("export: deleting expired jobs", "err", err)
			} else if n > 0 {
				r.Log.Info("export: deleted expired jobs", "jobs", n)
			}
			swept = now
		}
		ran, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Warn("export: claiming a job", "err", err)
		}
		if ran {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wakeChan():
		case <-time.After(r.Poll):
		}
	}
}

func (r *Runner) jobs() hale.JobStore { return r.Store.(hale.JobStore) }

// RunOnce claims one job and runs it to its end (or until the lease is
// lost, the job is cancelled, or ctx is done). It reports whether there
// was a job. An error is returned only for a failed claim; what happens
// to the job is logged and recorded in it.
func (r *Runner) RunOnce(ctx context.Context) (bool, error) {
	js := r.jobs()
	j, err := js.ClaimJob(ctx, rest.JobKindExport, r.Node, r.Now(), r.Lease)
	if err != nil || j == nil {
		return false, err
	}
	log := r.Log.With("job", j.ID, "claim", j.Claims)
	if j.Claims > r.MaxClaims {
		r.fail(ctx, j, fmt.Sprintf("the export was interrupted %d times; giving up", j.Claims-1))
		return true, nil
	}
	start := time.Now()
	err = r.run(ctx, j)
	switch {
	case err == nil:
		log.Info("export: done", "progress", j.Progress, "seconds", time.Since(start).Seconds())
	case hale.IsKind(err, hale.KindNotFound):
		log.Info("export: cancelled while running")
	case hale.IsKind(err, hale.KindConflict):
		log.Warn("export: lease lost to another node", "err", err)
	case ctx.Err() != nil:
		log.Info("export: stopped; another claim resumes it when the lease runs out", "until", j.LeaseUntil)
	case hale.IsKind(err, hale.KindInvalid):
		r.fail(ctx, j, hale.ErrorIssues(err)[0].Diagnostics)
	default:
		// Left claimed: when the lease runs out a runner tries again,
		// from the last checkpoint, up to MaxClaims times.
		log.Error("export: failed; will be retried", "err", err)
	}
	return true, nil
}

// fail records that j failed, with a message for the client.
func (r *Runner) fail(ctx context.Context, j *hale.Job, msg string) {
	now := r.Now()
	j.Status, j.Error, j.Progress = hale.JobFailed, msg, "failed"
	j.Updated, j.Expires, j.LeaseUntil = now, now.Add(r.TTL), now
	if err := r.jobs().UpdateJob(ctx, j); err != nil {
		r.Log.Warn("export: recording a failure", "job", j.ID, "err", err)
	}
}

// checkpoint is where a job stands after its last committed file
// (hale.Job.Checkpoint): resources of plan.Types[Type] with ids after
// After remain, then every later type.
type checkpoint struct {
	Type  int    `json:"type"`
	After string `json:"after,omitempty"`
	Part  int    `json:"part"`  // files of this type so far
	Seq   int    `json:"seq"`   // files of the job so far
	Count int64  `json:"count"` // resources in them
}

// run exports j from its checkpoint to the end.
func (r *Runner) run(ctx context.Context, j *hale.Job) error {
	plan, err := r.Planner.ExportPlan(j)
	if err != nil {
		return err
	}
	data := r.Store
	if r.Access != nil {
		if plan.Principal == nil {
			return &hale.Error{Kind: hale.KindForbidden, Op: "export.run", Message: "the export has no owner to run it for"}
		}
		if data, err = r.Access(ctx, plan.Principal, r.Store); err != nil {
			return err
		}
	}
	var cp checkpoint
	if len(j.Checkpoint) > 0 {
		if err := json.Unmarshal(j.Checkpoint, &cp); err != nil {
			return &hale.Error{Kind: hale.KindInvalid, Op: "export.run", Message: "unreadable checkpoint", Err: err}
		}
	}
	w := &fileWriter{r: r, ctx: ctx, j: j}
	for ti := cp.Type; ti < len(plan.Types); ti++ {
		et := plan.Types[ti]
		if ti != cp.Type {
			cp.After, cp.Part = "", 0
		}
		j.Progress = fmt.Sprintf("%d resources exported; now %s (type %d of %d)", cp.Count, et.Type, ti+1, len(plan.Types))
		m := newMerge(r, data, et, cp.After)
		var last string
		for {
			v, err := m.next(ctx)
			if err != nil {
				return err
			}
			if v == nil {
				break
			}
			if v.LastUpdated.After(plan.TransactionTime) {
				continue // changed after the kick-off: the next export's
			}
			data := v.Data
			if plan.Elements != nil {
				if data, err = plan.Elements(v.Type, data); err != nil {
					return &hale.Error{Kind: hale.KindInternal, Op: "export.elements", Err: err}
				}
			}
			if err := w.add(data); err != nil {
				return err
			}
			last = v.ID
			if w.count >= int64(r.PartSize) {
				next := cp
				next.After, next.Part, next.Seq, next.Count = last, cp.Part+1, cp.Seq+1, cp.Count+w.count
				if err := w.commit(et.Type, fmt.Sprintf("%s-%d.ndjson", et.Type, next.Part), next); err != nil {
					return err
				}
				cp = next
			}
		}
		if w.count > 0 {
			next := checkpoint{Type: ti + 1, Seq: cp.Seq + 1, Count: cp.Count + w.count}
			if err := w.commit(et.Type, fmt.Sprintf("%s-%d.ndjson", et.Type, cp.Part+1), next); err != nil {
				return err
			}
			cp = next
		}
	}
	// The error file: OperationOutcomes of what was ignored.
	var files []hale.JobFile
	if len(plan.Outcomes) > 0 && w.count == 0 {
		for _, o := range plan.Outcomes {
			if err := w.add(o); err != nil {
				return err
			}
		}
		f, err := w.finish("OperationOutcome", "error-1.ndjson", cp.Seq+1)
		if err != nil {
			return err
		}
		files = append(files, f)
	}
	now := r.Now()
	j.Status, j.Progress = hale.JobDone, fmt.Sprintf("done: %d resources in %d files", cp.Count, cp.Seq)
	j.Updated, j.Expires, j.LeaseUntil = now, now.Add(r.TTL), now
	return r.jobs().UpdateJob(ctx, j, files...)
}

// fileWriter collects the NDJSON lines of one file in chunks and writes
// each full chunk to the store as it fills, in the background while the
// next chunk is being read (one write at a time, so chunks are written in
// order and at most two are in memory).
type fileWriter struct {
	r     *Runner
	ctx   context.Context
	j     *hale.Job
	key   string // chunk key of the file being written; "" before its first line
	buf   *bytes.Buffer
	spare *bytes.Buffer // the buffer of the write in flight
	done  chan error    // the write in flight; nil when none
	n     int           // chunks written or in flight
	count int64
	size  int64
}

// add appends one resource as a line. A resource's stored JSON is
// compact, but a line must not contain a newline, so anything else is
// compacted first.
func (w *fileWriter) add(data []byte) error {
	if w.buf == nil {
		w.buf, w.spare = new(bytes.Buffer), new(bytes.Buffer)
		w.buf.Grow(w.r.ChunkSize + 64<<10)
	}
	if w.key == "" {
		w.key = randomHex(8)
	}
	if bytes.IndexByte(data, '\n') >= 0 {
		if err := json.Compact(w.buf, data); err != nil {
			return &hale.Error{Kind: hale.KindInternal, Op: "export.add", Err: err}
		}
	} else {
		w.buf.Write(data)
	}
	w.buf.WriteByte('\n')
	w.count++
	if w.buf.Len() >= w.r.ChunkSize {
		return w.flush()
	}
	return nil
}

// flush waits for the write in flight, starts writing the buffered chunk,
// and renews the lease when half of it has passed.
func (w *fileWriter) flush() error {
	if w.buf == nil || w.buf.Len() == 0 {
		return nil
	}
	if err := w.wait(); err != nil {
		return err
	}
	js := w.r.jobs()
	if now := w.r.Now(); now.After(w.j.LeaseUntil.Add(-w.r.Lease / 2)) {
		w.j.Updated, w.j.LeaseUntil = now, now.Add(w.r.Lease)
		if err := js.UpdateJob(w.ctx, w.j); err != nil {
			return err
		}
	}
	j, key, n, data := *w.j, w.key, w.n, w.buf.Bytes()
	w.size += int64(len(data))
	w.n++
	w.buf, w.spare = w.spare, w.buf
	w.buf.Reset()
	w.done = make(chan error, 1)
	go func() { w.done <- js.WriteChunk(w.ctx, &j, key, n, data) }()
	return nil
}

// wait waits for the write in flight.
func (w *fileWriter) wait() error {
	if w.done == nil {
		return nil
	}
	err := <-w.done
	w.done = nil
	return err
}

// finish writes the last chunk and returns the file, ready to be added,
// and starts a new one.
func (w *fileWriter) finish(typ, name string, seq int) (hale.JobFile, error) {
	if err := w.flush(); err != nil {
		return hale.JobFile{}, err
	}
	if err := w.wait(); err != nil {
		return hale.JobFile{}, err
	}
	f := hale.JobFile{Name: name, Type: typ, Count: w.count, Size: w.size, Chunks: w.n, ChunkKey: w.key, Seq: seq}
	w.key, w.n, w.count, w.size = "", 0, 0, 0
	return f, nil
}

// commit finishes the file and adds it to the job together with the
// checkpoint after it, in one transaction, renewing the lease.
func (w *fileWriter) commit(typ, name string, next checkpoint) error {
	f, err := w.finish(typ, name, next.Seq)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(next)
	prev := w.j.Checkpoint
	now := w.r.Now()
	w.j.Checkpoint, w.j.Updated, w.j.LeaseUntil = data, now, now.Add(w.r.Lease)
	if err := w.r.jobs().UpdateJob(w.ctx, w.j, f); err != nil {
		w.j.Checkpoint = prev
		return err
	}
	if w.r.OnPart != nil {
		w.r.OnPart(w.j, f)
	}
	return nil
}

// merge yields the resources of one ExportType in id order, each once,
// from its queries: each is paged in id order with a keyset cursor, and
// the smallest head is taken, so alternatives that overlap (two
// _typeFilters, a resource in two patients' compartments) are merged
// without remembering what was written.
type merge struct {
	r       *Runner
	store   hale.Store // the resources, as the job's owner may search them
	streams []*stream
}

type stream struct {
	q     hale.Query
	buf   []hale.Version
	done  bool
	ahead chan page // the next page, being read while this one is written; nil when none
}

// page is the answer to one search of a stream.
type page struct {
	versions []hale.Version
	next     *hale.Cursor
	err      error
}

func newMerge(r *Runner, store hale.Store, et rest.ExportType, after string) *merge {
	m := &merge{r: r, store: store}
	page := max(r.PageSize/max(len(et.Queries), 1), 100)
	for _, where := range et.Queries {
		st := &stream{q: hale.Query{Types: []string{et.Type}, Where: where, Count: page}}
		if after != "" {
			st.q.After = &hale.Cursor{Type: et.Type, ID: after}
		}
		m.streams = append(m.streams, st)
	}
	return m
}

// next returns the next resource, or nil at the end.
func (m *merge) next(ctx context.Context) (*hale.Version, error) {
	var head *stream
	for _, st := range m.streams {
		if len(st.buf) == 0 && !st.done {
			if err := m.fill(ctx, st); err != nil {
				return nil, err
			}
		}
		if len(st.buf) > 0 && (head == nil || st.buf[0].ID < head.buf[0].ID) {
			head = st
		}
	}
	if head == nil {
		return nil, nil
	}
	v := &head.buf[0]
	for _, st := range m.streams {
		if len(st.buf) > 0 && st.buf[0].ID == v.ID {
			st.buf = st.buf[1:]
		}
	}
	return v, nil
}

// fill moves the stream to its next page, and starts reading the one
// after it in the background: reading and writing overlap.
func (m *merge) fill(ctx context.Context, st *stream) error {
	var p page
	if st.ahead != nil {
		p, st.ahead = <-st.ahead, nil
	} else {
		p = m.read(ctx, st.q)
	}
	if p.err != nil {
		return p.err
	}
	st.buf = p.versions
	if p.next == nil || len(p.versions) == 0 {
		st.done = true
		return nil
	}
	st.q.After = p.next
	q := st.q
	st.ahead = make(chan page, 1)
	go func() { st.ahead <- m.read(ctx, q) }()
	return nil
}

// read runs one search in its own read transaction.
func (m *merge) read(ctx context.Context, q hale.Query) page {
	var p page
	p.err = m.store.View(ctx, func(rd hale.Reader) error {
		sr, ok := rd.(hale.Searcher)
		if !ok {
			return errors.New("export: the store cannot search")
		}
		res, err := sr.Search(ctx, &q)
		if err != nil {
			return err
		}
		p.versions, p.next = res.Versions, res.Next
		return nil
	})
	return p
}
