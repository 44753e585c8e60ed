package hale

import (
	"context"
	"io"
	"time"
)

// This file is the jobs part of the storage contract: long-running work
// that outlives the request that asked for it, kept in the database so
// that it survives a restart and, on an engine several nodes share, any
// node can run it and any node can answer about it. The first kind is the
// Bulk Data export (hl7.org/fhir/uv/bulkdata/export.html); the contract
// knows nothing of FHIR, and its Params and Checkpoint are the kind's own
// bytes.
//
// A job's life: CreateJob (queued) → ClaimJob by a worker, which gets a
// lease until a time (running) → UpdateJob as it goes, renewing the lease
// and recording a checkpoint and the files finished since the last one →
// UpdateJob with JobDone or JobFailed and the time it Expires →
// DeleteExpired. A worker that dies stops renewing its lease; once the
// lease has run out, another worker's ClaimJob takes the job over and
// resumes from its last checkpoint. Every claim increments Claims, and a
// write carrying an older Claims is refused, so a worker that lost its
// lease (paused, partitioned) can never write over its successor.
// CancelJob deletes a job and its files at any point.

// JobStatus is where a job is in its life.
type JobStatus string

const (
	JobQueued  JobStatus = "queued"  // created, not claimed yet
	JobRunning JobStatus = "running" // claimed; LeaseUntil says until when
	JobDone    JobStatus = "done"    // finished; its files can be read until Expires
	JobFailed  JobStatus = "failed"  // gave up; Error says why
)

// Job is one unit of background work.
type Job struct {
	ID   string // chosen by the creator: unguessable, it is part of URLs
	Kind string // what runs it, e.g. "export"

	// Owner is the id of the principal that asked for the job, "" when
	// the request was not authenticated. Whoever reports on the job or
	// serves its files compares it with the caller's (the Bulk Data IG
	// lets a server restrict status and file requests to the client that
	// started the export).
	Owner string
	// Request is the request that created the job, as the client sent it
	// (for an export, the kick-off URL).
	Request string
	// Params are the kind's parameters, as the creator encoded them.
	Params []byte

	Status  JobStatus
	Created time.Time // kick-off time
	Updated time.Time // last UpdateJob or claim
	// Expires is when DeleteExpired may remove the job and its files;
	// zero for never. A job whose lease is still running is never
	// removed.
	Expires time.Time

	Progress   string // short text for humans ("40% (2 of 5 types)")
	Checkpoint []byte // the kind's resume position, written with UpdateJob
	Error      string // for JobFailed: a message that may be shown to the client

	Node       string    // the worker holding (or that last held) the lease
	LeaseUntil time.Time // the lease runs out at this time
	Claims     int       // how many times the job was claimed; identifies the lease
}

// JobFile is one output file of a job, stored in the database in chunks
// (WriteChunk) so that any node can serve it. It becomes visible, and
// counts as written, only when an UpdateJob adds it.
type JobFile struct {
	Name   string // unique within the job; part of its URL
	Type   string // what the file holds (for an export, the resource type of its lines)
	Count  int64  // records (lines)
	Size   int64  // bytes
	Chunks int    // chunks 0 … Chunks-1 written with WriteChunk under ChunkKey
	// ChunkKey is the key its chunks were written under: unique for
	// each attempt at writing the file, so that chunks of an attempt
	// that never completed cannot mix with a later one.
	ChunkKey string
	Seq      int // order of the file within the job (manifest order)
}

// JobStore is implemented by a Store that keeps jobs (both engines do).
// Times are stored with microsecond precision.
type JobStore interface {
	// CreateJob stores j as a new queued job. Returns KindConflict if a
	// job with j.ID exists.
	CreateJob(ctx context.Context, j *Job) error

	// GetJob returns a job. Returns KindNotFound when there is none
	// (never created, cancelled or expired).
	GetJob(ctx context.Context, id string) (*Job, error)

	// ClaimJob takes the oldest job of kind that is queued, or running
	// with a lease that ran out by now, for node: it becomes running
	// with LeaseUntil now+lease, Claims one more, and the chunks of files
	// that no UpdateJob added (an interrupted attempt's) are deleted.
	// Concurrent claims on any number of nodes never take the same job.
	// Returns nil, nil when there is nothing to claim.
	ClaimJob(ctx context.Context, kind, node string, now time.Time, lease time.Duration) (*Job, error)

	// UpdateJob writes j's Status, Updated, Expires, Progress, Checkpoint,
	// Error and LeaseUntil, and adds files, in one transaction, provided
	// the job is still under the claim j.Claims. Returns KindConflict
	// when another claim took the job over, KindNotFound when the job is
	// gone (cancelled or expired); nothing is written then.
	UpdateJob(ctx context.Context, j *Job, files ...JobFile) error

	// WriteChunk stores chunk n of the file being written under key, for
	// the job under the claim j.Claims. Errors as UpdateJob.
	WriteChunk(ctx context.Context, j *Job, key string, n int, data []byte) error

	// CancelJob deletes a job and its files, whatever its status. A
	// worker running it finds out at its next write (KindNotFound).
	// Returns KindNotFound when there is no such job.
	CancelJob(ctx context.Context, id string) error

	// ListFiles returns the files UpdateJob added to a job, in Seq order.
	ListFiles(ctx context.Context, jobID string) ([]JobFile, error)

	// ReadFile writes the content of a file of the job to w, chunk by
	// chunk, without holding a transaction open while w blocks. Returns
	// KindNotFound when the job or the file is gone.
	ReadFile(ctx context.Context, jobID string, f *JobFile, w io.Writer) error

	// DeleteExpired deletes the jobs (and their files) whose Expires is
	// set and not after now, except those running under a lease that has
	// not run out, and returns how many it deleted.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}
