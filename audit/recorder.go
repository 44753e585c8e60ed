package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/search"
)

// Options tune a Recorder. The zero value is usable.
type Options struct {
	// Node names this Hale in AuditEvent.source.site; default "hale".
	Node string
	Now  hale.Now
	Log  *slog.Logger
	// Params finds the patients of the resources an access touched
	// (their Patient compartment's reference parameters); default the
	// built-in parameters.
	Params *search.Registry
	// Key signs the chain's checkpoints; nil leaves them unsigned (and
	// verification then cannot detect a truncated tail).
	Key ed25519.PrivateKey

	// FlushInterval is the longest a queued record waits before its batch
	// is written; default 100 ms. BatchSize is the most records one write
	// transaction takes; default 1024. QueueSize bounds the records waiting
	// (Audit blocks when it is full); default 8192.
	FlushInterval time.Duration
	BatchSize     int
	QueueSize     int
	// SealInterval is how often written records are chained (PostgreSQL)
	// and the head signed; default 1 s.
	SealInterval time.Duration
}

// Recorder is the audit trail's writer: a hale.AuditSink for the FHIR core
// and the functions other surfaces call (Login, PermissionChange,
// BreakGlass). Start it with Run; Close flushes it.
type Recorder struct {
	store hale.Store
	chain hale.AuditStore
	opts  Options

	mu       sync.RWMutex // held for reading while enqueueing; Close takes it to close queue
	closed   bool
	queue    chan *item
	done     chan struct{} // closed when the writer has drained the queue
	ended    chan struct{} // closed when Run returns: all written and sealed
	stop     chan struct{} // closed when Close's deadline passed: stop retrying
	stopOnce sync.Once
}

var _ hale.AuditSink = (*Recorder)(nil)

// ErrClosed is returned by Audit after Close.
var ErrClosed = errors.New("audit: recorder closed")

// item is one record waiting in the queue: an Event, or an Access whose
// Event (and patients) the writer works out off the request's path.
type item struct {
	e        *Event
	access   *hale.Access
	who      *hale.Principal
	purposes []string
	// The break-the-glass grants, referrals and consents in force for
	// the request: an access to one of their patients says so.
	btg     []hale.BreakGlass
	bases   []hale.Basis
	flushed chan struct{} // a Flush mark: closed once what came before is written
}

// New returns a Recorder writing to store, which must keep the audit chain
// (hale.AuditStore).
func New(store hale.Store, opts Options) (*Recorder, error) {
	chain, ok := store.(hale.AuditStore)
	if !ok {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: "audit.New", Message: store.Engine() + " store keeps no audit chain"}
	}
	if opts.Node == "" {
		opts.Node = "hale"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Params == nil {
		opts.Params = search.NewRegistry()
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 100 * time.Millisecond
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1024
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	if opts.SealInterval <= 0 {
		opts.SealInterval = time.Second
	}
	return &Recorder{
		store: store, chain: chain, opts: opts,
		queue: make(chan *item, opts.QueueSize),
		done:  make(chan struct{}),
		ended: make(chan struct{}),
		stop:  make(chan struct{}),
	}, nil
}

// AuditTx records a successful write in its own transaction.
func (r *Recorder) AuditTx(ctx context.Context, tx hale.Tx, a *hale.Access) error {
	return put(ctx, tx, r.records([]*Event{r.event(r.newItem(ctx, a))}))
}

// Audit queues the record of an access; see hale.AuditSink.
func (r *Recorder) Audit(ctx context.Context, a *hale.Access) error {
	return r.enqueue(ctx, r.newItem(ctx, a))
}

// Record queues e. Who and Purposes default to the context's principal
// and purpose of use; Time to now.
func (r *Recorder) Record(ctx context.Context, e *Event) error {
	if e.Who == nil {
		e.Who = hale.PrincipalFrom(ctx)
	}
	if e.Purposes == nil {
		e.Purposes = hale.PurposeOfUseFrom(ctx)
	}
	if e.Time.IsZero() {
		e.Time = r.opts.Now()
	}
	return r.enqueue(ctx, &item{e: e})
}

// Login records a login attempt (DICOM 110114 User Authentication, 110122
// Login): who is the account as far as it is known (for a failure, Name is
// the user name tried and Subject may be empty), err why it failed. The
// account is also the event's object (entity, role 13).
func (r *Recorder) Login(ctx context.Context, who hale.Principal, err error) error {
	if who.Subject == "" {
		who.Subject = "unknown:" + who.Name
	}
	var he *hale.Error
	if err != nil && !errors.As(err, &he) {
		// auth's refusals (wrong credentials, a lockout) are plain
		// errors: the login was refused (outcome 4), the server did not
		// fail (8, which only a hale.Error of kind internal means).
		err = &hale.Error{Kind: hale.KindUnauthorized, Op: "auth.Login", Message: err.Error(), Err: err}
	}
	return r.Record(ctx, &Event{Type: [2]string{sysDICOM, "110114"}, Display: "User Authentication",
		Subtype: [2]string{sysDICOM, "110122"}, Action: "E", Err: err, Who: &who,
		Target: [2]string{SystemPrincipal, who.Subject}})
}

// Logout records the end of a session (DICOM 110123 Logout).
func (r *Recorder) Logout(ctx context.Context, who hale.Principal) error {
	return r.Record(ctx, &Event{Type: [2]string{sysDICOM, "110114"}, Display: "User Authentication",
		Subtype: [2]string{sysDICOM, "110123"}, Action: "E", Who: &who})
}

// PermissionChange records a change of an account's privileges (roles,
// organizations, scopes; DICOM 110136 Security Roles Changed) by the
// context's principal: target is the account's Subject, detail what
// changed.
func (r *Recorder) PermissionChange(ctx context.Context, target, detail string, err error) error {
	return r.Record(ctx, &Event{Type: [2]string{sysDICOM, "110136"}, Display: "Security Roles Changed",
		Action: "U", Err: err, Detail: detail, Target: [2]string{SystemPrincipal, target}})
}

// BreakGlass records the start of an emergency access to a patient by the
// context's principal (DICOM 110113 Security Alert, purpose of use BTG),
// with the reason given. The accesses made under it carry BTG too
// (hale.WithPurposeOfUse).
func (r *Recorder) BreakGlass(ctx context.Context, patientID, reason string, err error) error {
	return r.Record(ctx, &Event{Type: [2]string{sysDICOM, "110113"}, Display: "Security Alert",
		Action: "E", Err: err, Detail: "break-the-glass: " + reason, Patients: []string{patientID},
		Purposes: append([]string{"BTG"}, hale.PurposeOfUseFrom(ctx)...)})
}

func (r *Recorder) newItem(ctx context.Context, a *hale.Access) *item {
	c := *a
	if c.Time.IsZero() {
		c.Time = r.opts.Now()
	}
	return &item{access: &c, who: hale.PrincipalFrom(ctx), purposes: hale.PurposeOfUseFrom(ctx),
		btg: hale.BreakGlassFrom(ctx), bases: hale.BasesFrom(ctx)}
}

// event turns a queued item into its Event.
func (r *Recorder) event(it *item) *Event {
	if it.e != nil {
		return it.e
	}
	e := restEvent(it.access)
	for _, p := range patientsOf(r.opts.Params, it.access) {
		if !contains(e.Patients, p) {
			e.Patients = append(e.Patients, p)
		}
	}
	e.Who, e.Purposes = it.who, it.purposes
	e.markBases(it.btg, it.bases)
	return e
}

// markBases adds to e, for each of its patients reached through
// break-the-glass, a referral or a consent, the purpose of use (BTG, or
// the basis's) and the referral or consent itself.
func (e *Event) markBases(btg []hale.BreakGlass, bases []hale.Basis) {
	if len(btg) == 0 && len(bases) == 0 {
		return
	}
	purposes := slices.Clone(e.Purposes)
	add := func(codes ...string) {
		for _, c := range codes {
			if !slices.Contains(purposes, c) {
				purposes = append(purposes, c)
			}
		}
	}
	for _, p := range e.Patients {
		for _, g := range btg {
			if g.Patient == p {
				add("BTG")
			}
		}
		for _, b := range bases {
			if b.Patient == p {
				add(b.Purposes...)
				if !slices.Contains(e.Bases, b.Reference) {
					e.Bases = append(e.Bases, b.Reference)
				}
			}
		}
	}
	e.Purposes = purposes
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// enqueue waits for room in the queue: back-pressure, never a drop.
func (r *Recorder) enqueue(ctx context.Context, it *item) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return ErrClosed
	}
	select {
	case r.queue <- it:
		return nil
	default:
	}
	select {
	case r.queue <- it:
		return nil
	case <-ctx.Done():
		return &hale.Error{Kind: hale.KindInternal, Op: "audit.Record", Message: "audit queue full", Err: ctx.Err()}
	}
}

// records returns the stored form of events, each with a new id.
func (r *Recorder) records(events []*Event) []*hale.AuditRecord {
	recs := make([]*hale.AuditRecord, len(events))
	for i, e := range events {
		recs[i] = e.record(r.opts.Node, newID())
	}
	return recs
}

// put appends recs to the audit trail in tx.
func put(ctx context.Context, tx hale.Tx, recs []*hale.AuditRecord) error {
	tx = hale.Unscoped(tx) // the caller may not write AuditEvents; the system does
	atx, ok := tx.(hale.AuditTx)
	if !ok {
		return &hale.Error{Kind: hale.KindInternal, Op: "audit.put", Message: "the store's transactions keep no audit trail"}
	}
	return atx.AppendAudit(ctx, recs)
}

// newID returns a new AuditEvent id: 48 bits of Unix milliseconds and a
// 16-bit counter, then 64 random bits, as 32 hex digits. Ids that follow
// the write order keep the id index append-mostly (a random id would
// land on a random page of a large trail's index), and stay unguessable.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[8:]); err != nil {
		panic(err)
	}
	idClock.mu.Lock()
	v := uint64(time.Now().UnixMilli()) << 16
	if v <= idClock.last {
		v = idClock.last + 1
	}
	idClock.last = v
	idClock.mu.Unlock()
	binary.BigEndian.PutUint64(b[:8], v)
	return hex.EncodeToString(b[:])
}

var idClock struct {
	mu   sync.Mutex
	last uint64
}

// Run writes queued records in batches and seals the chain until Close;
// it returns after the last records are written and sealed. Run it once,
// in its own goroutine.
func (r *Recorder) Run() {
	defer close(r.ended)
	sealerDone := make(chan struct{})
	go func() {
		defer close(sealerDone)
		r.sealLoop()
	}()
	r.writeLoop()
	close(r.done)
	<-sealerDone
}

// writeLoop takes records off the queue in batches, in two stages that
// run side by side: this goroutine works out each batch's events and
// writes their JSON (CPU), while a second one writes the previous batch
// to the database (its inserts, commit and fsync), so neither waits for
// the other.
func (r *Recorder) writeLoop() {
	type written struct {
		recs  []*hale.AuditRecord
		marks []chan struct{} // Flush marks released once recs are written
	}
	out := make(chan written, 1)
	dbDone := make(chan struct{})
	go func() {
		defer close(dbDone)
		for w := range out {
			if len(w.recs) > 0 {
				r.write(w.recs)
			}
			for _, m := range w.marks {
				close(m)
			}
		}
	}()
	tick := time.NewTicker(r.opts.FlushInterval)
	defer tick.Stop()
	var batch []*item
	var marks []chan struct{}
	send := func() {
		if len(batch) == 0 && len(marks) == 0 {
			return
		}
		events := make([]*Event, len(batch))
		for i, it := range batch {
			events[i] = r.event(it)
		}
		out <- written{recs: r.records(events), marks: marks}
		batch, marks = nil, nil
	}
	for {
		select {
		case it, ok := <-r.queue:
			if !ok {
				send()
				close(out)
				<-dbDone
				return
			}
			if it.flushed != nil {
				marks = append(marks, it.flushed)
				send()
				continue
			}
			batch = append(batch, it)
			if len(batch) >= r.opts.BatchSize {
				send()
			}
		case <-tick.C:
			send()
		}
	}
}

// write appends a batch in one transaction, retrying while the database
// fails; it gives up only when Close's deadline has passed (and says so).
func (r *Recorder) write(recs []*hale.AuditRecord) {
	ctx := context.Background()
	pause := 50 * time.Millisecond
	for {
		err := r.store.Update(ctx, func(tx hale.Tx) error { return put(ctx, tx, recs) })
		if err == nil {
			return
		}
		r.opts.Log.Error("audit: writing records failed; retrying", "records", len(recs), "err", err)
		select {
		case <-r.stop:
			r.opts.Log.Error("audit: records lost at shutdown", "records", len(recs), "err", err)
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

func (r *Recorder) sealLoop() {
	tick := time.NewTicker(r.opts.SealInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			r.SealAll(context.Background())
			return
		case <-tick.C:
		}
		if err := r.SealAll(context.Background()); err != nil {
			r.opts.Log.Error("audit: sealing failed", "err", err)
		}
	}
}

// sealBatch is how many records one sealing transaction chains.
const sealBatch = 1000

// SealAll chains every record written so far.
func (r *Recorder) SealAll(ctx context.Context) error {
	return Seal(ctx, r.chain, r.opts.Key, r.opts.Now)
}

// Seal chains every queued record of chain, signing checkpoints with key
// (nil: unsigned). `hale audit verify` calls it before checking.
func Seal(ctx context.Context, chain hale.AuditStore, key ed25519.PrivateKey, now hale.Now) error {
	var sign func(hale.AuditCheckpoint) []byte
	if key != nil {
		sign = func(c hale.AuditCheckpoint) []byte { return ed25519.Sign(key, hale.AuditCheckpointMessage(c)) }
	}
	for {
		n, err := chain.SealAudit(ctx, sealBatch, now(), sign)
		if err != nil || n < sealBatch {
			return err
		}
	}
}

// Close stops accepting records, writes and seals those queued, and
// returns when done or when ctx ends (then records still queued are lost,
// and logged as lost). Run must be running.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	select {
	case <-r.ended:
		return nil
	case <-ctx.Done():
		r.stopOnce.Do(func() { close(r.stop) })
		<-r.ended
		return ctx.Err()
	}
}

// Flush returns once every record queued before it is written (not yet
// sealed); for tests and for surfaces that want their reads on disk before
// answering.
func (r *Recorder) Flush(ctx context.Context) error {
	mark := &item{flushed: make(chan struct{})}
	if err := r.enqueue(ctx, mark); err != nil {
		return err
	}
	select {
	case <-mark.flushed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
