package postgres_test

import (
	"context"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/postgres"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/storetest"
)

// TestRecords runs the records conformance suite; with several handles
// they are separate pools on one schema, as several nodes are.
func TestRecords(t *testing.T) {
	storetest.RunRecords(t, func(t *testing.T, n int) []hale.Store {
		url := pgtest.Schema(t)
		var out []hale.Store
		for range n {
			s, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			out = append(out, s)
		}
		return out
	})
}
