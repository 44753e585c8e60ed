// Package pgtest gives tests a fresh PostgreSQL store in a schema of its
// own, so tests are isolated from each other and may run in parallel.
//
// The server is the one HALE_TEST_POSTGRES names (default
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable). When it
// cannot be reached the test is skipped, or fails when CI=true, so a
// missing database never passes silently in CI.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/hale-ehr/hale/postgres"
	"github.com/jackc/pgx/v5"
)

// DefaultURL is the server used when HALE_TEST_POSTGRES is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// maxConns keeps each test's pool small: tests run in parallel against
// one server whose max_connections is usually 100.
const maxConns = 8

// URL returns the server's URL from HALE_TEST_POSTGRES or DefaultURL.
func URL() string {
	if u := os.Getenv("HALE_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultURL
}

// Open creates a schema with a random name, opens a store on it and, when
// the test ends, closes the store and drops the schema.
func Open(tb testing.TB) *postgres.Store {
	tb.Helper()
	return OpenOptions(tb, postgres.Options{})
}

// OpenOptions is Open with explicit options; MaxConns defaults to 8.
func OpenOptions(tb testing.TB, opts postgres.Options) *postgres.Store {
	tb.Helper()
	schemaURL := Schema(tb)
	if opts.MaxConns == 0 {
		opts.MaxConns = maxConns
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, schemaURL, opts)
	if err != nil {
		tb.Fatalf("pgtest: open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// Schema creates an empty schema with a random name, drops it (with
// everything in it) when the test ends, and returns the server's URL
// with search_path set to that schema.
func Schema(tb testing.TB) string {
	tb.Helper()
	base := URL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("pgtest: PostgreSQL unreachable (CI=true, so this fails): %v", err)
		}
		tb.Skipf("pgtest: PostgreSQL unreachable, skipping (set HALE_TEST_POSTGRES): %v", err)
	}
	defer conn.Close(ctx)
	var b [8]byte
	rand.Read(b[:])
	schema := "hale_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("pgtest: create schema: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	u, err := withSearchPath(base, schema)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return u
}

// withSearchPath adds search_path=schema to a postgres:// URL; pgx sends
// parameters it does not know to the server as run-time settings.
func withSearchPath(base, schema string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
