package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the driver Hale's SQLite engine uses
)

// Limits are this machine's raw rates for the bytes the ingest sends:
// the physical limit Hale's own ingest is compared with.
type Limits struct {
	Resources             int     `json:"resources"`
	Bytes                 int64   `json:"bytes"`
	JSONDecodePerSec      float64 `json:"json_decode_per_sec"`
	JSONDecodeMBPerSec    float64 `json:"json_decode_mb_per_sec"`
	SQLiteInsertPerSec    float64 `json:"sqlite_insert_per_sec"`     // 500 rows per transaction
	SQLiteInsertOnePerSec float64 `json:"sqlite_insert_one_per_sec"` // one row per transaction
}

// MeasureLimits decodes the bundles' resources and inserts their bytes
// into a bare SQLite table (WAL, synchronous=FULL, as Hale runs it).
func MeasureLimits(bundles [][]byte) (Limits, error) {
	var raws [][]byte
	for _, b := range bundles {
		var bundle struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(b, &bundle); err != nil {
			return Limits{}, err
		}
		for _, e := range bundle.Entry {
			raws = append(raws, e.Resource)
		}
	}
	var l Limits
	l.Resources = len(raws)
	for _, r := range raws {
		l.Bytes += int64(len(r))
	}
	if len(raws) == 0 {
		return l, nil
	}
	start := time.Now()
	n := 0
	for time.Since(start) < time.Second {
		for _, r := range raws {
			var v map[string]any
			if err := json.Unmarshal(r, &v); err != nil {
				return l, err
			}
		}
		n++
	}
	el := time.Since(start).Seconds()
	l.JSONDecodePerSec = float64(n*len(raws)) / el
	l.JSONDecodeMBPerSec = float64(int64(n)*l.Bytes) / el / 1e6

	dir, err := os.MkdirTemp("", "hale-bench")
	if err != nil {
		return l, err
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "raw.db")+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return l, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE r (seq INTEGER PRIMARY KEY, data BLOB)"); err != nil {
		return l, err
	}
	insert := func(batch int, d time.Duration) (float64, error) {
		start, rows := time.Now(), 0
		for time.Since(start) < d {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return 0, err
			}
			for i := 0; i < batch; i++ {
				if _, err := tx.ExecContext(ctx, "INSERT INTO r (data) VALUES (?)", raws[rows%len(raws)]); err != nil {
					tx.Rollback()
					return 0, err
				}
				rows++
			}
			if err := tx.Commit(); err != nil {
				return 0, err
			}
		}
		return float64(rows) / time.Since(start).Seconds(), nil
	}
	if l.SQLiteInsertPerSec, err = insert(500, 2*time.Second); err != nil {
		return l, fmt.Errorf("raw SQLite insert: %w", err)
	}
	if l.SQLiteInsertOnePerSec, err = insert(1, time.Second); err != nil {
		return l, fmt.Errorf("raw SQLite insert: %w", err)
	}
	return l, nil
}
