package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/hale-ehr/hale/storetest"
)

// The raw benchmarks are the physical limit BenchmarkPut and
// BenchmarkPut100 are measured against: the same bytes inserted into a
// bare table, with the engine's PRAGMAs (WAL, synchronous=FULL) and one
// BEGIN IMMEDIATE … COMMIT per transaction, but no versions, pointer or
// index rows.

func BenchmarkRawInsert(b *testing.B)    { benchRaw(b, 1) }
func BenchmarkRawInsert100(b *testing.B) { benchRaw(b, 100) }

func benchRaw(b *testing.B, perTx int) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "raw.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_pragma=busy_timeout(5000)"+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE raw (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	data, _ := storetest.BenchResource("raw")
	for b.Loop() {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for range perTx {
			if _, err := tx.ExecContext(ctx, "INSERT INTO raw (data) VALUES (?)", data); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perTx)/b.Elapsed().Seconds(), "resources/s")
}
