package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/jackc/pgx/v5"
)

// Migrations are append-only: a released file is never edited, a change
// to the schema is a new file with the next number.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string // file name, e.g. "0001_initial.sql"
	sql     string
}

// migrations returns the embedded migrations in order, checking that they
// are numbered 1, 2, 3, … without gaps or duplicates.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, p := range names {
		name := path.Base(p)
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a number and _", name)
		}
		b, err := migrationFiles.ReadFile(p)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrateLock is the advisory lock the migration holds: one per schema,
// so that nodes starting together on one schema take turns, while
// separate schemas (parallel tests) do not wait for each other.
const migrateLock = "SELECT pg_advisory_xact_lock(hashtextextended('hale.migrate:' || coalesce(current_schema(), ''), 0))"

// migrate applies the pending migrations in one transaction (PostgreSQL
// DDL is transactional) under migrateLock, recording each in
// schema_migrations. It refuses a database that records a migration this
// binary does not have.
func (s *Store) migrate(ctx context.Context) error {
	const op = "postgres.migrate"
	ms, err := migrations()
	if err != nil {
		return internal(op, err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return internal(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, migrateLock); err != nil {
		return internal(op, err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at BIGINT  NOT NULL -- unix microseconds, UTC
	)`); err != nil {
		return internal(op, err)
	}
	rows, err := tx.Query(ctx, "SELECT version, name FROM schema_migrations")
	if err != nil {
		return internal(op, err)
	}
	applied := map[int]string{}
	var (
		v    int
		name string
	)
	if _, err := pgx.ForEachRow(rows, []any{&v, &name}, func() error { applied[v] = name; return nil }); err != nil {
		return internal(op, err)
	}
	if err := checkApplied(applied, ms); err != nil {
		return &hale.Error{Kind: hale.KindInternal, Op: op, Message: err.Error()}
	}
	for _, m := range ms {
		if _, ok := applied[m.version]; ok {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return internal(op, fmt.Errorf("%s: %w", m.name, err))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
			m.version, m.name, s.now().UnixMicro()); err != nil {
			return internal(op, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return internal(op, err)
	}
	return nil
}

// checkApplied reports a recorded migration the binary does not know: the
// schema is newer than the code, and running would risk corrupting it.
func checkApplied(applied map[int]string, known []migration) error {
	versions := make([]int, 0, len(applied))
	for v := range applied {
		versions = append(versions, v)
	}
	sort.Ints(versions)
	for _, v := range versions {
		if v < 1 || v > len(known) {
			return fmt.Errorf("the database has schema migration %d (%s), which this hale binary does not know "+
				"(it knows 1 to %d): it was written by a newer hale; run that version or restore a backup",
				v, applied[v], len(known))
		}
		if m := known[v-1]; applied[v] != m.name {
			return fmt.Errorf("the database's schema migration %d is %s, this hale binary's is %s", v, applied[v], m.name)
		}
	}
	return nil
}
