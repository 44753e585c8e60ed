// Package sqlitetest gives tests a fresh SQLite store.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hale-ehr/hale/sqlite"
)

// Open opens a new, empty store in a file under tb.TempDir, with the
// production settings (WAL, synchronous=FULL), and closes it when the
// test ends.
func Open(tb testing.TB) *sqlite.Store {
	tb.Helper()
	return OpenOptions(tb, sqlite.Options{})
}

// OpenOptions is Open with explicit options.
func OpenOptions(tb testing.TB, opts sqlite.Options) *sqlite.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "hale.db")
	s, err := sqlite.Open(context.Background(), path, opts)
	if err != nil {
		tb.Fatalf("sqlitetest: open %s: %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("sqlitetest: close: %v", err)
		}
	})
	return s
}
