package hale

import (
	"context"
	"time"
)

// This file is the records part of the storage contract: a small keyed
// store for what is not FHIR and must still be shared by every process
// on the same data folder or database — accounts, SMART clients, signing
// keys, sessions, token grants, authorization codes, used assertion ids
// (jti), lockout counters. Keeping them in the database (rather than in a
// process's memory) is what lets `hale user add` work while `hale serve`
// runs, lets several nodes share one PostgreSQL database, and makes a
// revocation on one node take effect on all of them at once.
//
// Records are optimistic: each has a Version that every write checks, so
// a read-modify-write (a lockout counter, a refresh-token rotation, a
// one-time code) loses cleanly to a concurrent one instead of
// overwriting it.

// Record is one keyed value. Kind is the namespace ("user", "session",
// "client", …), Key is unique within the kind; Data is the owner's own
// bytes (usually JSON), never looked into by the store.
type Record struct {
	Kind    string
	Key     string
	Version int64  // 1 when created, one more on each write
	Data    []byte // never nil once stored
	// Expires is when DeleteExpiredRecords may remove the record; zero
	// for never. The store does not hide a record that has expired but
	// was not swept yet: readers compare Expires with their own clock.
	Expires time.Time
	// Updated is when the record was last written, by the store's clock.
	Updated time.Time
}

// Records is implemented by a Store that keeps records (both engines
// do). Kinds and keys are 1 to 200 bytes each; times are stored with
// microsecond precision.
type Records interface {
	// GetRecord returns the record kind/key. Returns KindNotFound when
	// there is none.
	GetRecord(ctx context.Context, kind, key string) (*Record, error)

	// PutRecord writes r if r.Version is the version stored now: 0 means
	// "create, the record must not exist", n > 0 means "replace version
	// n" (compare-and-swap). On success r.Version and r.Updated are the
	// new ones. Returns KindConflict, writing nothing, when the record
	// exists (create) or is absent or at another version (replace); of
	// any number of concurrent writers expecting the same version,
	// exactly one succeeds.
	PutRecord(ctx context.Context, r *Record) error

	// DeleteRecord deletes kind/key: whatever version it is at when
	// version is 0, only version n otherwise. Returns KindNotFound when
	// there is no such record, KindConflict when it is at another
	// version; of concurrent deletes of one version exactly one succeeds
	// (a one-time code is spent by deleting it).
	DeleteRecord(ctx context.Context, kind, key string, version int64) error

	// ListRecords returns up to limit records of kind whose key starts
	// with prefix and sorts after after (byte order), in key order; the
	// next page starts after the last key returned. limit <= 0 means 100.
	ListRecords(ctx context.Context, kind, prefix, after string, limit int) ([]Record, error)

	// DeleteExpiredRecords deletes the records whose Expires is set and
	// not after now and returns how many it deleted.
	DeleteExpiredRecords(ctx context.Context, now time.Time) (int, error)
}

// MaxRecordKey is the longest Kind or Key a Records store accepts (in
// bytes; both must be non-empty).
const MaxRecordKey = 200
