package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/sqlite"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
)

func TestOpenCreatesPrivateFileAndDirs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "hale.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("database file mode %v, want 0600", perm)
	}
}

func TestOpenSynchronous(t *testing.T) {
	for _, sync := range []string{"", "FULL", "full", "NORMAL"} {
		sqlitetest.OpenOptions(t, sqlite.Options{Synchronous: sync})
	}
	for _, sync := range []string{"OFF", "EXTRA", "FULL; DROP TABLE resource"} {
		_, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "hale.db"), sqlite.Options{Synchronous: sync})
		if err == nil {
			t.Errorf("Open with Synchronous %q succeeded, want an error", sync)
		}
	}
}

// TestReopen: data survives Close, and Open does not apply a migration twice.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hale.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := &hale.Version{Type: "Patient", ID: "p1", VersionID: 1, LastUpdated: time.Now(), Method: "POST", Data: []byte("{}")}
	if err := s.Update(ctx, func(tx hale.Tx) error { return tx.Put(ctx, v, nil) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = sqlite.Open(ctx, path, sqlite.Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.View(ctx, func(r hale.Reader) error { _, err := r.Current(ctx, "Patient", "p1"); return err }); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesNewerSchema: a database migrated by a newer hale (it
// records a migration this binary lacks) is not touched.
func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hale.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 0)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err == nil || !strings.Contains(err.Error(), "newer hale") {
		t.Fatalf("Open of a newer schema: err = %v, want a refusal naming a newer hale", err)
	}
}

// TestNowStampsPut: a version Put without LastUpdated gets the store's clock.
func TestNowStampsPut(t *testing.T) {
	ctx := context.Background()
	fixed := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	s := sqlitetest.OpenOptions(t, sqlite.Options{Now: func() time.Time { return fixed }})
	v := &hale.Version{Type: "Patient", ID: "p1", VersionID: 1, Method: "POST", Data: []byte("{}")}
	if err := s.Update(ctx, func(tx hale.Tx) error { return tx.Put(ctx, v, nil) }); err != nil {
		t.Fatal(err)
	}
	var got *hale.Version
	s.View(ctx, func(r hale.Reader) (err error) { got, err = r.Current(ctx, "Patient", "p1"); return err })
	if !v.LastUpdated.Equal(fixed) || got == nil || !got.LastUpdated.Equal(fixed) {
		t.Errorf("LastUpdated = %v, stored %v; want %v", v.LastUpdated, got, fixed)
	}
}
