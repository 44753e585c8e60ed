package postgres_test

import (
	"context"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/postgres"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/storetest"
	"github.com/jackc/pgx/v5"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) hale.Store { return pgtest.Open(t) })
}

func BenchmarkPut(b *testing.B)     { storetest.BenchPut(b, pgtest.Open(b)) }
func BenchmarkPut100(b *testing.B)  { storetest.BenchPut100(b, pgtest.Open(b)) }
func BenchmarkCurrent(b *testing.B) { storetest.BenchCurrent(b, pgtest.Open(b)) }

// BenchmarkSearch: storetest.BenchSearch on 200,000 Observations. After
// the load it runs VACUUM ANALYZE on the schema's tables, as autovacuum
// would soon after such a load: planner statistics, and the visibility
// map that lets a count be an index-only scan.
func BenchmarkSearch(b *testing.B) {
	ctx := context.Background()
	url := pgtest.Schema(b)
	s, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 8})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	storetest.BenchSearch(b, s, func(b *testing.B) {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, table := range []string{"resource", "resource_version", "idx_token", "idx_string", "idx_reference",
			"idx_date", "idx_number", "idx_quantity", "idx_uri", "idx_sort_text", "idx_sort_int", "idx_sort_real", "idx_text"} {
			if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
				b.Fatal(err)
			}
		}
	})
}
