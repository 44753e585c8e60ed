package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/postgres"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestConcurrentOpen: nodes starting together on an empty schema migrate
// it once (the advisory lock), and all of them start.
func TestConcurrentOpen(t *testing.T) {
	url := pgtest.Schema(t)
	const nodes = 4
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 2})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
}

// TestOpenRefusesNewerSchema: a database migrated by a newer hale (it
// records a migration this binary lacks) is not touched.
func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 0)"); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Open(ctx, url, postgres.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer hale") {
		t.Fatalf("Open of a newer schema: err = %v, want a refusal naming a newer hale", err)
	}
}

// TestUpdateRetries: Update runs fn again after a transient failure, at
// most ten times in all, and never after another error.
func TestUpdateRetries(t *testing.T) {
	s := pgtest.Open(t)
	ctx := context.Background()
	cases := []struct {
		name      string
		fail      error // returned by fn while calls < failCalls
		failCalls int
		wantCalls int
		wantErr   bool
	}{
		{"serialization failure once", &pgconn.PgError{Code: "40001"}, 1, 2, false},
		{"deadlock twice", &pgconn.PgError{Code: "40P01"}, 2, 3, false},
		{"unique violation once", &pgconn.PgError{Code: "23505"}, 1, 2, false},
		{"always failing", &pgconn.PgError{Code: "40001"}, 100, 10, true},
		{"other database error", &pgconn.PgError{Code: "42P01"}, 100, 1, true},
		{"fn's own error", errors.New("no"), 100, 1, true},
	}
	for _, c := range cases {
		calls := 0
		err := s.Update(ctx, func(hale.Tx) error {
			calls++
			if calls <= c.failCalls {
				return c.fail
			}
			return nil
		})
		if calls != c.wantCalls || (err != nil) != c.wantErr {
			t.Errorf("%s: fn ran %d times, err %v; want %d times, error %v", c.name, calls, err, c.wantCalls, c.wantErr)
		}
		if c.wantErr && err != c.fail {
			t.Errorf("%s: err = %v, want fn's error as is", c.name, err)
		}
	}
}

// TestPutConflictRetries: a Put conflict is retried when a concurrent
// writer may have caused it (the resource was not read with Current),
// and not when the transaction held the resource's row locked.
func TestPutConflictRetries(t *testing.T) {
	s := pgtest.Open(t)
	ctx := context.Background()
	v := func(n int64) *hale.Version {
		return &hale.Version{Type: "Patient", ID: "p", VersionID: n, LastUpdated: time.Now(), Method: "PUT", Data: []byte("{}")}
	}
	if err := s.Update(ctx, func(tx hale.Tx) error { return tx.Put(ctx, v(1), nil) }); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err := s.Update(ctx, func(tx hale.Tx) error {
		calls++
		if _, err := tx.Current(ctx, "Patient", "p"); err != nil {
			return err
		}
		return tx.Put(ctx, v(1), nil)
	})
	if !hale.IsKind(err, hale.KindConflict) || calls != 1 {
		t.Errorf("stale Put after Current: fn ran %d times, err %v; want once, a conflict", calls, err)
	}
	calls = 0
	err = s.Update(ctx, func(tx hale.Tx) error { calls++; return tx.Put(ctx, v(1), nil) })
	if !hale.IsKind(err, hale.KindConflict) || calls != 10 {
		t.Errorf("blind stale Put: fn ran %d times, err %v; want 10 times, a conflict", calls, err)
	}
}

// TestOpenRefusesUnsafeDurability: a session with synchronous_commit off
// could lose acknowledged writes; Open refuses it unless told otherwise.
func TestOpenRefusesUnsafeDurability(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t) + "&synchronous_commit=off"
	_, err := postgres.Open(ctx, url, postgres.Options{})
	if err == nil || !strings.Contains(err.Error(), "synchronous_commit=off") {
		t.Fatalf("Open with synchronous_commit=off: err = %v, want a refusal", err)
	}
	s, err := postgres.Open(ctx, url, postgres.Options{AllowUnsafeDurability: true})
	if err != nil {
		t.Fatalf("Open with AllowUnsafeDurability: %v", err)
	}
	s.Close()
}

func TestOpenBadURLHidesPassword(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://hale:s3cret@127.0.0.1:notaport/x", postgres.Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open of a bad URL: err = %v, want an error without the password", err)
	}
}
