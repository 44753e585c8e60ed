package postgres_test

import (
	"context"
	"testing"

	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/storetest"
	"github.com/jackc/pgx/v5"
)

// The raw benchmarks are the floor BenchmarkPut and BenchmarkPut100 are
// measured against: the same bytes inserted into a bare table, one
// transaction per iteration, no versions, pointer or index rows.

func BenchmarkRawInsert(b *testing.B)    { benchRaw(b, 1) }
func BenchmarkRawInsert100(b *testing.B) { benchRaw(b, 100) }

func benchRaw(b *testing.B, perTx int) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.Schema(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE raw (seq BIGSERIAL PRIMARY KEY, data BYTEA NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	data, _ := storetest.BenchResource("raw")
	for b.Loop() {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for range perTx {
				if _, err := tx.Exec(ctx, "INSERT INTO raw (data) VALUES ($1)", data); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perTx)/b.Elapsed().Seconds(), "resources/s")
}
