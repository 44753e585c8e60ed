// Package sqlite is Hale's embedded storage engine: a hale.Store in one
// SQLite database file, the default for a single-node installation.
//
// The driver is modernc.org/sqlite, SQLite translated to pure Go. It is
// slower than the cgo driver (mattn/go-sqlite3) but lets hale build and
// cross-compile as one static binary without a C toolchain, which is what
// a zero-configuration EHR download needs; the database file format is
// the same either way.
//
// Durability: the database runs in WAL mode with synchronous=FULL, so a
// commit that Update acknowledged survives a power loss, not only a crash
// of the process. Open verifies those settings and refuses to start
// without them.
//
// Concurrency: exactly one writer connection, on which every Update runs
// as BEGIN IMMEDIATE, so write transactions are serialised inside the
// process and never fail with SQLITE_BUSY against each other; and a pool
// of query_only reader connections on which View runs, each View in its
// own read transaction, a consistent WAL snapshot that writers do not
// block. docs/database.md describes the schema.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Options tune Open. The zero value is the recommended configuration.
type Options struct {
	// Synchronous is the synchronous PRAGMA of the writer: "FULL" (the
	// default; every commit is fsynced and survives power loss) or
	// "NORMAL" (commits survive a crash of hale but the last ones may be
	// lost on power loss or an OS crash). Nothing else is accepted.
	Synchronous string
	// ReadConns is the size of the reader pool used by View; default
	// max(4, GOMAXPROCS).
	ReadConns int
	// Now is the clock: it stamps applied migrations and versions Put
	// without a LastUpdated. Default time.Now.
	Now hale.Now
}

// busyTimeout is how long a connection waits for a lock held by another
// process (a backup tool, the sqlite3 shell) before failing.
const busyTimeout = 5 * time.Second

// Store is a hale.Store backed by one SQLite database file.
type Store struct {
	write *sql.DB // exactly one connection: every Update
	read  *sql.DB // query_only connections: every View
	wst   statements
	rst   statements
	now   hale.Now
	path  string

	ckpt     *sql.DB       // one connection: background WAL checkpoints
	stopCkpt chan struct{} // closed by Close
	ckptDone chan struct{} // closed when the checkpointer has stopped
}

var _ hale.Store = (*Store)(nil)

// Open opens (creating it and its parent directories if needed) the
// database at path, checks the durability settings, applies pending
// migrations and returns the store. It fails if the database holds a
// migration this binary does not know, that is, a newer schema.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	const op = "sqlite.Open"
	sync := strings.ToUpper(opts.Synchronous)
	switch sync {
	case "":
		sync = "FULL"
	case "FULL", "NORMAL":
	default:
		return nil, &hale.Error{Kind: hale.KindInternal, Op: op,
			Message: fmt.Sprintf("synchronous must be FULL or NORMAL, not %q", opts.Synchronous)}
	}
	readConns := opts.ReadConns
	if readConns <= 0 {
		readConns = max(4, runtime.GOMAXPROCS(0))
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, internal(op, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, internal(op, err)
	}
	// Create the file ourselves so it is private to the user hale runs
	// as; SQLite gives the -wal and -shm files the same permissions.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, internal(op, err)
	}
	f.Close()

	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous("+sync+")")
	// A 64 MiB page cache per connection keeps the index B-trees of a
	// busy database in memory; the default (2 MiB) made every transaction
	// re-read index pages from the WAL with a syscall each.
	common.Add("_pragma", "cache_size(-65536)")
	common.Add("_pragma", "temp_store(MEMORY)")

	w := url.Values{"_txlock": {"immediate"}}
	r := url.Values{}
	for k, v := range common {
		w[k] = append(w[k], v...)
		r[k] = append(r[k], v...)
	}
	w.Add("_pragma", "journal_mode(WAL)")
	// Checkpoints run on a connection of their own (checkpointer), off
	// the writer's path; the writer checkpoints itself only if the WAL
	// passes checkpointFallback pages, should that goroutine fall behind.
	w.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", checkpointFallback))
	r.Add("_pragma", "query_only(1)")

	s := &Store{now: now, path: abs}
	// The writer opens first so the file is in WAL mode before any reader.
	if s.write, err = sql.Open("sqlite", dsn(abs, w)); err != nil {
		return nil, internal(op, err)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxLifetime(0)
	s.write.SetConnMaxIdleTime(0)
	if s.read, err = sql.Open("sqlite", dsn(abs, r)); err != nil {
		s.write.Close()
		return nil, internal(op, err)
	}
	s.read.SetMaxOpenConns(readConns)
	s.read.SetMaxIdleConns(readConns)
	s.read.SetConnMaxLifetime(0)
	s.read.SetConnMaxIdleTime(0)

	if s.ckpt, err = sql.Open("sqlite", dsn(abs, common)); err != nil {
		s.Close()
		return nil, internal(op, err)
	}
	s.ckpt.SetMaxOpenConns(1)
	s.ckpt.SetMaxIdleConns(1)
	s.ckpt.SetConnMaxLifetime(0)
	s.ckpt.SetConnMaxIdleTime(0)

	if err := s.checkSettings(ctx, sync); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.wst, err = prepare(ctx, s.write, readStatements, writeStatements); err == nil {
		s.rst, err = prepare(ctx, s.read, readStatements)
	}
	if err != nil {
		s.Close()
		return nil, internal(op, err)
	}
	s.stopCkpt, s.ckptDone = make(chan struct{}), make(chan struct{})
	go s.checkpointer()
	return s, nil
}

// checkpointEvery is how often the checkpointer copies committed WAL
// frames into the database file; checkpointFallback (pages) is the WAL
// size at which the writer does it itself (SQLite's default is 1000).
const (
	checkpointEvery    = 250 * time.Millisecond
	checkpointFallback = 20000
)

// checkpointer runs passive checkpoints in the background. With SQLite's
// automatic checkpoint the commit that crosses 1000 WAL pages copies
// them into the database and fsyncs it while holding the write lock:
// about a fifth of a large write's time. A passive checkpoint never
// waits for readers or the writer, so running it here moves that work to
// another core and batches it.
func (s *Store) checkpointer() {
	defer close(s.ckptDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stopCkpt:
			return
		case <-t.C:
			// Errors (SQLITE_BUSY while another process checkpoints)
			// are harmless: the next tick tries again.
			s.ckpt.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

// dsn builds the driver's connection string: an SQLite URI, so that any
// character may appear in the path, followed by the driver's parameters.
func dsn(abs string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	return u.String() + "?" + q.Encode()
}

// checkSettings verifies that the writer really runs with the durability
// settings Hale relies on: a driver or build that silently ignored a
// PRAGMA would otherwise lose acknowledged writes.
func (s *Store) checkSettings(ctx context.Context, sync string) error {
	const op = "sqlite.Open"
	wantSync := map[string]int{"NORMAL": 1, "FULL": 2}[sync]
	var (
		journal        string
		syncMode, fk   int
		busy, readOnly int
	)
	if err := s.write.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&journal); err != nil {
		return internal(op, err)
	}
	if err := s.write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil {
		return internal(op, err)
	}
	if err := s.write.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return internal(op, err)
	}
	if err := s.write.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil {
		return internal(op, err)
	}
	if err := s.read.QueryRowContext(ctx, "PRAGMA query_only").Scan(&readOnly); err != nil {
		return internal(op, err)
	}
	var bad []string
	if !strings.EqualFold(journal, "wal") {
		bad = append(bad, "journal_mode="+journal+" (want wal)")
	}
	if syncMode != wantSync {
		bad = append(bad, fmt.Sprintf("synchronous=%d (want %d, %s)", syncMode, wantSync, sync))
	}
	if fk != 1 {
		bad = append(bad, "foreign_keys off")
	}
	if busy <= 0 {
		bad = append(bad, "busy_timeout unset")
	}
	if readOnly != 1 {
		bad = append(bad, "reader connections not query_only")
	}
	if len(bad) > 0 {
		return &hale.Error{Kind: hale.KindInternal, Op: op,
			Message: s.path + ": unsafe database settings: " + strings.Join(bad, ", ")}
	}
	return nil
}

// Engine returns "sqlite".
func (s *Store) Engine() string { return "sqlite" }

// Close closes every connection. The WAL is checkpointed by the last
// connection to close.
func (s *Store) Close() error {
	if s.stopCkpt != nil {
		close(s.stopCkpt)
		<-s.ckptDone
		s.stopCkpt = nil
	}
	s.rst.close()
	s.wst.close()
	var errs []error
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	if s.write != nil {
		errs = append(errs, s.write.Close())
	}
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return internal("sqlite.Close", err)
	}
	return nil
}

// View runs fn in a read transaction on a reader connection. The WAL
// snapshot is taken before fn runs, so fn sees no commit that happened
// after View was called, and writers proceed meanwhile.
func (s *Store) View(ctx context.Context, fn func(hale.Reader) error) error {
	const op = "sqlite.View"
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return internal(op, err)
	}
	defer tx.Rollback()
	r := &reader{q: tx, st: s.rst}
	// SQLite starts the read transaction (fixes the snapshot) at the first
	// read, not at BEGIN: read now.
	var n int
	if err := r.queryRow(ctx, sqlSnapshot).Scan(&n); err != nil {
		return internal(op, err)
	}
	return fn(r)
}

// Update runs fn in a write transaction (BEGIN IMMEDIATE) on the single
// writer connection; concurrent Updates wait for it in turn (so fn must
// not call Update itself: it would wait for its own transaction). An
// error or panic from fn rolls back; fn's error is returned as is.
func (s *Store) Update(ctx context.Context, fn func(hale.Tx) error) error {
	const op = "sqlite.Update"
	sqlTx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return internal(op, err)
	}
	done := false
	defer func() {
		if !done {
			sqlTx.Rollback()
		}
	}()
	t := &tx{reader: reader{q: sqlTx, st: s.wst}, now: s.now}
	t.beforeQuery = t.flush
	if err := fn(t); err != nil {
		return err
	}
	if err := t.flush(ctx); err != nil {
		return internal(op, err)
	}
	done = true
	if err := sqlTx.Commit(); err != nil {
		return internal(op, err)
	}
	return nil
}

// internal wraps a database error as a KindInternal *hale.Error, leaving
// errors that already carry a kind alone.
func internal(op string, err error) error {
	var he *hale.Error
	if errors.As(err, &he) {
		return err
	}
	return &hale.Error{Kind: hale.KindInternal, Op: op, Message: "database error", Err: err}
}
