// Package postgres is Hale's PostgreSQL storage engine: a hale.Store that
// several Hale nodes can share, for installations that outgrow one file.
//
// The driver is github.com/jackc/pgx/v5 through its native API and its
// pool (pgxpool), not database/sql: pgx is the maintained PostgreSQL
// driver for Go, its native API caches prepared statements per
// connection, pipelines several statements in one round trip (pgx.Batch,
// used by Put and Current), binds Go slices as arrays (the index rows of
// a Put go in one INSERT … unnest per table) and exposes the SQLSTATE
// codes Update's retry needs.
//
// Concurrency: Update runs READ COMMITTED. Current inside Update locks the
// resource's row (SELECT … FOR UPDATE), so two read-modify-write
// transactions on one resource take turns; Lock is a transaction-scoped
// advisory lock; and Update runs fn again, a bounded number of times,
// when the transaction lost a race (serialization failure, deadlock, a
// unique violation, or a Put that found its version created meanwhile).
// The process keeps no state beside the pool, so any number of nodes may
// share the database. docs/database.md describes the schema.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options tune Open. The zero value is the recommended configuration.
type Options struct {
	// MaxConns is the size of the connection pool; default pgxpool's,
	// max(4, number of CPUs). A pool_max_conns parameter in the URL is
	// used when MaxConns is 0.
	MaxConns int32
	// Now is the clock: it stamps applied migrations and versions Put
	// without a LastUpdated. Default time.Now.
	Now hale.Now
	// AllowUnsafeDurability lets Open start on a server that runs with
	// fsync, synchronous_commit or full_page_writes off, where an
	// acknowledged write can be lost. For throwaway test servers only.
	AllowUnsafeDurability bool
}

// Store is a hale.Store backed by a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	now  hale.Now
}

var _ hale.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a DSN;
// search_path and other run-time parameters may be given in it), checks
// the server's durability settings, applies pending migrations and
// returns the store. It fails if the database holds a migration this
// binary does not know, that is, a newer schema.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	const op = "postgres.Open"
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in the URL it quotes.
		return nil, &hale.Error{Kind: hale.KindInternal, Op: op, Message: "invalid PostgreSQL URL", Err: err}
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, internal(op, err)
	}
	s := &Store{pool: pool, now: now}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, internal(op, err)
	}
	if !opts.AllowUnsafeDurability {
		if err := s.checkDurability(ctx); err != nil {
			pool.Close()
			return nil, err
		}
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// checkDurability refuses a server on which a commit PostgreSQL
// acknowledged could be lost or corrupted by a crash.
func (s *Store) checkDurability(ctx context.Context) error {
	const op = "postgres.Open"
	var fsync, syncCommit, fullPages string
	err := s.pool.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit'), "+
		"current_setting('full_page_writes')").Scan(&fsync, &syncCommit, &fullPages)
	if err != nil {
		return internal(op, err)
	}
	var bad []string
	if fsync != "on" {
		bad = append(bad, "fsync="+fsync)
	}
	if syncCommit == "off" {
		bad = append(bad, "synchronous_commit="+syncCommit)
	}
	if fullPages != "on" {
		bad = append(bad, "full_page_writes="+fullPages)
	}
	if len(bad) > 0 {
		return &hale.Error{Kind: hale.KindInternal, Op: op, Message: "unsafe PostgreSQL settings, " +
			"acknowledged writes could be lost: " + strings.Join(bad, ", ")}
	}
	return nil
}

// Engine returns "postgres".
func (s *Store) Engine() string { return "postgres" }

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// viewBegin starts a REPEATABLE READ, READ ONLY transaction and, in the
// same round trip, takes its snapshot (PostgreSQL takes it at the first
// query, not at BEGIN), so a View sees nothing committed after it began.
const viewBegin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1"

// View runs fn in a read-only transaction on one snapshot.
// Its transaction begins with its first statement (viewTx).
func (s *Store) View(ctx context.Context, fn func(hale.Reader) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return internal("postgres.View", err)
	}
	v := &viewTx{conn: conn}
	defer v.end(context.WithoutCancel(ctx))
	return fn(&reader{tx: v})
}

// maxAttempts bounds how often Update runs fn.
const maxAttempts = 10

// Update runs fn in a READ COMMITTED transaction and commits. When the
// transaction lost a race it rolls back and runs fn again, at most
// maxAttempts times in all, after a short random pause; see retryable.
// An error or panic from fn rolls back; fn's error is returned as is.
func (s *Store) Update(ctx context.Context, fn func(hale.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.update(ctx, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		// Full jitter: up to 1, 2, 4 … ms, at most 32 ms.
		pause := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt-1, 5)))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

func (s *Store) update(ctx context.Context, fn func(hale.Tx) error) error {
	const op = "postgres.Update"
	pgTx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return internal(op, err)
	}
	// Rolls back on an error or a panic; a no-op after Commit.
	defer pgTx.Rollback(context.WithoutCancel(ctx))
	d := &deferringTx{Tx: pgTx}
	if err := fn(&tx{reader: reader{tx: d}, now: s.now, locked: map[string]bool{}, defer_: d}); err != nil {
		return err
	}
	if err := d.flush(ctx); err != nil {
		return internal(op, err)
	}
	if err := pgTx.Commit(ctx); err != nil {
		return internal(op, err)
	}
	return nil
}

// errRace marks a Put conflict caused by a concurrent transaction (it
// created the version after this one looked), which running fn again
// resolves.
var errRace = errors.New("version written by a concurrent transaction")

// retryable reports whether err means the transaction lost a race that
// running it again can win: serialization_failure (40001),
// deadlock_detected (40P01), unique_violation (23505, e.g. two creates
// of the same new id in fn's own SQL) or a Put that met errRace.
func retryable(err error) bool {
	if errors.Is(err, errRace) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01", "23505":
			return true
		}
	}
	return false
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

// conflict is Put's KindConflict error; cause is errRace when running
// the transaction again can succeed.
func conflict(v *hale.Version, current int64, cause error) error {
	msg := fmt.Sprintf("%s/%s version %d already exists", v.Type, v.ID, v.VersionID)
	if current > 0 {
		msg = fmt.Sprintf("%s/%s version %d conflicts with the current version %d", v.Type, v.ID, v.VersionID, current)
	}
	return &hale.Error{Kind: hale.KindConflict, Op: "postgres.Put", Message: msg, Err: cause}
}

// Analyze does what autovacuum would do after a bulk load (hale import,
// a benchmark's ingest), at once, on the tables of Hale's schema:
// VACUUM, which marks the pages just written all-visible so that
// index-only scans stop visiting the table (a code search of 1,920
// Observations spent 31 of its 63 ms fetching heap pages for rows an
// index already held), and ANALYZE, so that searches are planned on what
// the tables now hold rather than on an empty database's estimates
// (which chose scans that made a chained search 60 ms instead of 6).
func (s *Store) Analyze(ctx context.Context) error {
	const op = "postgres.Analyze"
	rows, err := s.pool.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
	if err != nil {
		return internal(op, err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return internal(op, err)
	}
	for _, t := range tables {
		if _, err := s.pool.Exec(ctx, "VACUUM (ANALYZE) "+pgx.Identifier{t}.Sanitize()); err != nil {
			return internal(op, err)
		}
	}
	return nil
}
