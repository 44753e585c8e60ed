package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hale-ehr/hale"
)

// The jobs part of the contract (hale.JobStore, jobs.go), on the tables of
// migration 0004. Writes go through the single writer connection (BEGIN
// IMMEDIATE), so a claim's SELECT and UPDATE cannot interleave with
// another claim, in this process or another one on the same file; reads
// go through the reader pool.

var _ hale.JobStore = (*Store)(nil)

const jobColumns = "id, kind, owner, request, params, status, created, updated, expires, " +
	"progress, checkpoint, error, node, lease_until, claims"

func scanJob(row interface{ Scan(...any) error }) (*hale.Job, error) {
	var (
		j                            hale.Job
		status                       string
		created, updated, leaseUntil int64
		expires                      sql.NullInt64
	)
	err := row.Scan(&j.ID, &j.Kind, &j.Owner, &j.Request, &j.Params, &status, &created, &updated, &expires,
		&j.Progress, &j.Checkpoint, &j.Error, &j.Node, &leaseUntil, &j.Claims)
	if err != nil {
		return nil, err
	}
	j.Status = hale.JobStatus(status)
	j.Created = micros(created)
	j.Updated = micros(updated)
	j.LeaseUntil = micros(leaseUntil)
	if expires.Valid {
		j.Expires = micros(expires.Int64)
	}
	return &j, nil
}

func micros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullTime is t in microseconds, or NULL for the zero time.
func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// jobTx runs fn in a write transaction on the writer connection.
func (s *Store) jobTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return internal(op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return internal(op, err)
	}
	if err := tx.Commit(); err != nil {
		return internal(op, err)
	}
	return nil
}

// CreateJob stores j as a new queued job. Returns KindConflict if the id
// is taken.
func (s *Store) CreateJob(ctx context.Context, j *hale.Job) error {
	const op = "sqlite.CreateJob"
	return s.jobTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO job (id, kind, owner, request, params, status, created, updated,
			expires, progress, checkpoint, error) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, '')
			ON CONFLICT (id) DO NOTHING`,
			j.ID, j.Kind, j.Owner, j.Request, nonNil(j.Params), j.Created.UnixMicro(), j.Created.UnixMicro(),
			nullTime(j.Expires), j.Progress, j.Checkpoint)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &hale.Error{Kind: hale.KindConflict, Op: op, Message: fmt.Sprintf("job %s exists", j.ID)}
		}
		j.Status, j.Updated = hale.JobQueued, j.Created
		return nil
	})
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// GetJob returns a job; KindNotFound when there is none.
func (s *Store) GetJob(ctx context.Context, id string) (*hale.Job, error) {
	const op = "sqlite.GetJob"
	j, err := scanJob(s.read.QueryRowContext(ctx, "SELECT "+jobColumns+" FROM job WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, jobNotFound(op, id)
	}
	if err != nil {
		return nil, internal(op, err)
	}
	return j, nil
}

func jobNotFound(op, id string) error {
	return &hale.Error{Kind: hale.KindNotFound, Op: op, Message: fmt.Sprintf("job %s not found", id)}
}

// ClaimJob takes the oldest claimable job of kind for node (hale.JobStore).
func (s *Store) ClaimJob(ctx context.Context, kind, node string, now time.Time, lease time.Duration) (*hale.Job, error) {
	const op = "sqlite.ClaimJob"
	var claimed *hale.Job
	err := s.jobTx(ctx, op, func(tx *sql.Tx) error {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM job WHERE kind = ?
			AND (status = 'queued' OR status = 'running' AND lease_until <= ?) ORDER BY created, id LIMIT 1`,
			kind, now.UnixMicro()).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		j, err := scanJob(tx.QueryRowContext(ctx, `UPDATE job SET status = 'running', node = ?, lease_until = ?,
			claims = claims + 1, updated = ? WHERE id = ? RETURNING `+jobColumns,
			node, now.Add(lease).UnixMicro(), now.UnixMicro(), id))
		if err != nil {
			return err
		}
		// Chunks of files that were never added: an interrupted attempt's.
		if _, err := tx.ExecContext(ctx, `DELETE FROM job_chunk WHERE job_id = ? AND chunk_key NOT IN
			(SELECT chunk_key FROM job_file WHERE job_id = ?)`, id, id); err != nil {
			return err
		}
		claimed = j
		return nil
	})
	return claimed, err
}

// checkClaim reports, after a guarded write touched no row, why: the job
// is gone (KindNotFound) or claimed again since (KindConflict).
func checkClaim(ctx context.Context, tx *sql.Tx, op string, j *hale.Job) error {
	var claims int
	err := tx.QueryRowContext(ctx, "SELECT claims FROM job WHERE id = ?", j.ID).Scan(&claims)
	if errors.Is(err, sql.ErrNoRows) {
		return jobNotFound(op, j.ID)
	}
	if err != nil {
		return err
	}
	return &hale.Error{Kind: hale.KindConflict, Op: op,
		Message: fmt.Sprintf("job %s was claimed again (claim %d, this worker's %d)", j.ID, claims, j.Claims)}
}

// UpdateJob writes j's progress fields and adds files under the claim
// j.Claims (hale.JobStore).
func (s *Store) UpdateJob(ctx context.Context, j *hale.Job, files ...hale.JobFile) error {
	const op = "sqlite.UpdateJob"
	return s.jobTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE job SET status = ?, updated = ?, expires = ?, progress = ?,
			checkpoint = ?, error = ?, lease_until = ? WHERE id = ? AND claims = ?`,
			string(j.Status), j.Updated.UnixMicro(), nullTime(j.Expires), j.Progress, j.Checkpoint, j.Error,
			j.LeaseUntil.UnixMicro(), j.ID, j.Claims)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return checkClaim(ctx, tx, op, j)
		}
		for _, f := range files {
			if _, err := tx.ExecContext(ctx, `INSERT INTO job_file (job_id, name, type, count, size, chunks,
				chunk_key, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				j.ID, f.Name, f.Type, f.Count, f.Size, f.Chunks, f.ChunkKey, f.Seq); err != nil {
				return err
			}
		}
		return nil
	})
}

// WriteChunk stores one chunk of a file being written (hale.JobStore).
func (s *Store) WriteChunk(ctx context.Context, j *hale.Job, key string, n int, data []byte) error {
	const op = "sqlite.WriteChunk"
	return s.jobTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO job_chunk (job_id, chunk_key, n, data)
			SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM job WHERE id = ? AND claims = ?)`,
			j.ID, key, n, nonNil(data), j.ID, j.Claims)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return checkClaim(ctx, tx, op, j)
		}
		return nil
	})
}

// CancelJob deletes a job and, by cascade, its files and chunks.
func (s *Store) CancelJob(ctx context.Context, id string) error {
	const op = "sqlite.CancelJob"
	return s.jobTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM job WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return jobNotFound(op, id)
		}
		return nil
	})
}

// ListFiles returns a job's added files in Seq order.
func (s *Store) ListFiles(ctx context.Context, jobID string) ([]hale.JobFile, error) {
	const op = "sqlite.ListFiles"
	rows, err := s.read.QueryContext(ctx, `SELECT name, type, count, size, chunks, chunk_key, seq
		FROM job_file WHERE job_id = ? ORDER BY seq, name`, jobID)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []hale.JobFile
	for rows.Next() {
		var f hale.JobFile
		if err := rows.Scan(&f.Name, &f.Type, &f.Count, &f.Size, &f.Chunks, &f.ChunkKey, &f.Seq); err != nil {
			return nil, internal(op, err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// ReadFile writes a file's chunks to w, one short read per chunk, so no
// read transaction stays open while w waits for a slow client.
func (s *Store) ReadFile(ctx context.Context, jobID string, f *hale.JobFile, w io.Writer) error {
	const op = "sqlite.ReadFile"
	var data []byte
	for n := range f.Chunks {
		err := s.read.QueryRowContext(ctx, "SELECT data FROM job_chunk WHERE job_id = ? AND chunk_key = ? AND n = ?",
			jobID, f.ChunkKey, n).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			return &hale.Error{Kind: hale.KindNotFound, Op: op, Message: fmt.Sprintf("file %s of job %s not found", f.Name, jobID)}
		}
		if err != nil {
			return internal(op, err)
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// DeleteExpired deletes expired jobs that no live lease protects.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	const op = "sqlite.DeleteExpired"
	var deleted int
	err := s.jobTx(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM job WHERE expires IS NOT NULL AND expires <= ?
			AND NOT (status = 'running' AND lease_until > ?)`, now.UnixMicro(), now.UnixMicro())
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		deleted = int(n)
		return nil
	})
	return deleted, err
}
