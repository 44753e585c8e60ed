package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/sqlite"
	"github.com/hale-ehr/hale/storetest"
)

// TestRecords runs the records conformance suite; with several handles
// they are separate Opens of one file, as `hale serve` and `hale user
// add` are.
func TestRecords(t *testing.T) {
	storetest.RunRecords(t, func(t *testing.T, n int) []hale.Store {
		path := filepath.Join(t.TempDir(), "hale.db")
		var out []hale.Store
		for range n {
			s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			out = append(out, s)
		}
		return out
	})
}
