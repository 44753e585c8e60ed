package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/jackc/pgx/v5"
)

// The jobs part of the contract (hale.JobStore, jobs.go), on the tables of
// migration 0004. Any number of nodes share the jobs: ClaimJob picks a
// row with FOR UPDATE SKIP LOCKED, so concurrent claims never wait for
// each other nor take the same job, and every later write of a worker is
// guarded by the claim number it got.

var _ hale.JobStore = (*Store)(nil)

const jobColumns = "id, kind, owner, request, params, status, created, updated, expires, " +
	"progress, checkpoint, error, node, lease_until, claims"

func scanJob(row pgx.Row) (*hale.Job, error) {
	var (
		j                            hale.Job
		status                       string
		created, updated, leaseUntil int64
		expires                      *int64
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
	if expires != nil {
		j.Expires = micros(*expires)
	}
	return &j, nil
}

func micros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullTime is t in microseconds, or NULL for the zero time.
func nullTime(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	us := t.UnixMicro()
	return &us
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func jobNotFound(op, id string) error {
	return &hale.Error{Kind: hale.KindNotFound, Op: op, Message: fmt.Sprintf("job %s not found", id)}
}

// jobTx runs fn in a READ COMMITTED transaction.
func (s *Store) jobTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return internal(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return internal(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return internal(op, err)
	}
	return nil
}

// CreateJob stores j as a new queued job. Returns KindConflict if the id
// is taken.
func (s *Store) CreateJob(ctx context.Context, j *hale.Job) error {
	const op = "postgres.CreateJob"
	tag, err := s.pool.Exec(ctx, `INSERT INTO job (id, kind, owner, request, params, status, created, updated,
		expires, progress, checkpoint, error) VALUES ($1, $2, $3, $4, $5, 'queued', $6, $6, $7, $8, $9, '')
		ON CONFLICT (id) DO NOTHING`,
		j.ID, j.Kind, j.Owner, j.Request, nonNil(j.Params), j.Created.UnixMicro(), nullTime(j.Expires), j.Progress, j.Checkpoint)
	if err != nil {
		return internal(op, err)
	}
	if tag.RowsAffected() == 0 {
		return &hale.Error{Kind: hale.KindConflict, Op: op, Message: fmt.Sprintf("job %s exists", j.ID)}
	}
	j.Status, j.Updated = hale.JobQueued, j.Created
	return nil
}

// GetJob returns a job; KindNotFound when there is none.
func (s *Store) GetJob(ctx context.Context, id string) (*hale.Job, error) {
	const op = "postgres.GetJob"
	j, err := scanJob(s.pool.QueryRow(ctx, "SELECT "+jobColumns+" FROM job WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, jobNotFound(op, id)
	}
	if err != nil {
		return nil, internal(op, err)
	}
	return j, nil
}

// ClaimJob takes the oldest claimable job of kind for node (hale.JobStore):
// one UPDATE of the row a FOR UPDATE SKIP LOCKED subquery picked, so a
// job another node is claiming at the same moment is passed over rather
// than waited for.
func (s *Store) ClaimJob(ctx context.Context, kind, node string, now time.Time, lease time.Duration) (*hale.Job, error) {
	const op = "postgres.ClaimJob"
	var claimed *hale.Job
	err := s.jobTx(ctx, op, func(tx pgx.Tx) error {
		j, err := scanJob(tx.QueryRow(ctx, `UPDATE job SET status = 'running', node = $1, lease_until = $2,
			claims = claims + 1, updated = $3
			WHERE id = (SELECT id FROM job WHERE kind = $4
			            AND (status = 'queued' OR status = 'running' AND lease_until <= $3)
			            ORDER BY created, id LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING `+jobColumns,
			node, now.Add(lease).UnixMicro(), now.UnixMicro(), kind))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		// Chunks of files that were never added: an interrupted attempt's.
		if _, err := tx.Exec(ctx, `DELETE FROM job_chunk c WHERE c.job_id = $1 AND NOT EXISTS
			(SELECT 1 FROM job_file f WHERE f.job_id = c.job_id AND f.chunk_key = c.chunk_key)`, j.ID); err != nil {
			return err
		}
		claimed = j
		return nil
	})
	return claimed, err
}

// checkClaim reports, after a guarded write touched no row, why: the job
// is gone (KindNotFound) or claimed again since (KindConflict).
func (s *Store) checkClaim(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, op string, j *hale.Job) error {
	var claims int
	err := q.QueryRow(ctx, "SELECT claims FROM job WHERE id = $1", j.ID).Scan(&claims)
	if errors.Is(err, pgx.ErrNoRows) {
		return jobNotFound(op, j.ID)
	}
	if err != nil {
		return internal(op, err)
	}
	return &hale.Error{Kind: hale.KindConflict, Op: op,
		Message: fmt.Sprintf("job %s was claimed again (claim %d, this worker's %d)", j.ID, claims, j.Claims)}
}

// UpdateJob writes j's progress fields and adds files under the claim
// j.Claims (hale.JobStore). The UPDATE's row lock makes a concurrent
// claim wait for the commit, or this update see the new claim number.
func (s *Store) UpdateJob(ctx context.Context, j *hale.Job, files ...hale.JobFile) error {
	const op = "postgres.UpdateJob"
	return s.jobTx(ctx, op, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE job SET status = $1, updated = $2, expires = $3, progress = $4,
			checkpoint = $5, error = $6, lease_until = $7 WHERE id = $8 AND claims = $9`,
			string(j.Status), j.Updated.UnixMicro(), nullTime(j.Expires), j.Progress, j.Checkpoint, j.Error,
			j.LeaseUntil.UnixMicro(), j.ID, j.Claims)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return s.checkClaim(ctx, tx, op, j)
		}
		if len(files) == 0 {
			return nil
		}
		b := &pgx.Batch{}
		for _, f := range files {
			b.Queue(`INSERT INTO job_file (job_id, name, type, count, size, chunks, chunk_key, seq)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				j.ID, f.Name, f.Type, f.Count, f.Size, f.Chunks, f.ChunkKey, f.Seq)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// WriteChunk stores one chunk of a file being written (hale.JobStore).
func (s *Store) WriteChunk(ctx context.Context, j *hale.Job, key string, n int, data []byte) error {
	const op = "postgres.WriteChunk"
	tag, err := s.pool.Exec(ctx, `INSERT INTO job_chunk (job_id, chunk_key, n, data)
		SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM job WHERE id = $1 AND claims = $5)`,
		j.ID, key, n, nonNil(data), j.Claims)
	if err != nil {
		return internal(op, err)
	}
	if tag.RowsAffected() == 0 {
		return s.checkClaim(ctx, s.pool, op, j)
	}
	return nil
}

// CancelJob deletes a job and, by cascade, its files and chunks.
func (s *Store) CancelJob(ctx context.Context, id string) error {
	const op = "postgres.CancelJob"
	tag, err := s.pool.Exec(ctx, "DELETE FROM job WHERE id = $1", id)
	if err != nil {
		return internal(op, err)
	}
	if tag.RowsAffected() == 0 {
		return jobNotFound(op, id)
	}
	return nil
}

// ListFiles returns a job's added files in Seq order.
func (s *Store) ListFiles(ctx context.Context, jobID string) ([]hale.JobFile, error) {
	const op = "postgres.ListFiles"
	rows, err := s.pool.Query(ctx, `SELECT name, type, count, size, chunks, chunk_key, seq
		FROM job_file WHERE job_id = $1 ORDER BY seq, name`, jobID)
	if err != nil {
		return nil, internal(op, err)
	}
	var out []hale.JobFile
	var f hale.JobFile
	_, err = pgx.ForEachRow(rows, []any{&f.Name, &f.Type, &f.Count, &f.Size, &f.Chunks, &f.ChunkKey, &f.Seq},
		func() error { out = append(out, f); return nil })
	if err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// ReadFile writes a file's chunks to w, one short query per chunk, so no
// transaction stays open while w waits for a slow client.
func (s *Store) ReadFile(ctx context.Context, jobID string, f *hale.JobFile, w io.Writer) error {
	const op = "postgres.ReadFile"
	var data []byte
	for n := range f.Chunks {
		err := s.pool.QueryRow(ctx, "SELECT data FROM job_chunk WHERE job_id = $1 AND chunk_key = $2 AND n = $3",
			jobID, f.ChunkKey, n).Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
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
	const op = "postgres.DeleteExpired"
	tag, err := s.pool.Exec(ctx, `DELETE FROM job WHERE expires IS NOT NULL AND expires <= $1
		AND NOT (status = 'running' AND lease_until > $1)`, now.UnixMicro())
	if err != nil {
		return 0, internal(op, err)
	}
	return int(tag.RowsAffected()), nil
}
