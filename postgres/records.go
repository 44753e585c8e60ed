package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/jackc/pgx/v5"
)

// The records part of the contract (hale.Records, records.go), on the
// table of migration 0005, shared by every node on the database. Each
// write is one statement whose version guard (in the WHERE clause, or ON
// CONFLICT DO NOTHING for a create) makes it a compare-and-swap: under
// READ COMMITTED a concurrent UPDATE of the same row waits for the first
// and then re-checks the guard against the committed version, so exactly
// one of several writers expecting the same version wins.

var _ hale.Records = (*Store)(nil)

// GetRecord returns kind/key; KindNotFound when there is none.
func (s *Store) GetRecord(ctx context.Context, kind, key string) (*hale.Record, error) {
	const op = "postgres.GetRecord"
	r := hale.Record{Kind: kind, Key: key}
	var expires *int64
	var updated int64
	err := s.pool.QueryRow(ctx, "SELECT version, data, expires, updated FROM record WHERE kind = $1 AND key = $2",
		kind, key).Scan(&r.Version, &r.Data, &expires, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, recordNotFound(op, kind, key)
	}
	if err != nil {
		return nil, internal(op, err)
	}
	r.Updated = micros(updated)
	if expires != nil {
		r.Expires = micros(*expires)
	}
	return &r, nil
}

func recordNotFound(op, kind, key string) error {
	return &hale.Error{Kind: hale.KindNotFound, Op: op, Message: "record " + kind + "/" + key + " not found"}
}

func recordConflict(op, kind, key string) error {
	return &hale.Error{Kind: hale.KindConflict, Op: op, Message: "record " + kind + "/" + key + " changed or exists"}
}

// checkRecordKey refuses kinds and keys the contract does not accept
// (and NUL, which PostgreSQL text cannot hold).
func checkRecordKey(op, kind, key string) error {
	if kind == "" || key == "" || len(kind) > hale.MaxRecordKey || len(key) > hale.MaxRecordKey ||
		strings.ContainsRune(kind, 0) || strings.ContainsRune(key, 0) {
		return &hale.Error{Kind: hale.KindInvalid, Op: op, Message: "record kind and key must be 1 to 200 bytes"}
	}
	return nil
}

// PutRecord creates (Version 0) or replaces version r.Version of a record.
func (s *Store) PutRecord(ctx context.Context, r *hale.Record) error {
	const op = "postgres.PutRecord"
	if err := checkRecordKey(op, r.Kind, r.Key); err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	var (
		n   int64
		err error
	)
	if r.Version == 0 {
		tag, e := s.pool.Exec(ctx, `INSERT INTO record (kind, key, version, data, expires, updated)
			VALUES ($1, $2, 1, $3, $4, $5) ON CONFLICT (kind, key) DO NOTHING`,
			r.Kind, r.Key, nonNil(r.Data), nullTime(r.Expires), now.UnixMicro())
		n, err = tag.RowsAffected(), e
	} else {
		tag, e := s.pool.Exec(ctx, `UPDATE record SET version = version + 1, data = $1, expires = $2, updated = $3
			WHERE kind = $4 AND key = $5 AND version = $6`,
			nonNil(r.Data), nullTime(r.Expires), now.UnixMicro(), r.Kind, r.Key, r.Version)
		n, err = tag.RowsAffected(), e
	}
	if err != nil {
		return internal(op, err)
	}
	if n == 0 {
		return recordConflict(op, r.Kind, r.Key)
	}
	r.Version++
	r.Updated = now
	if r.Data == nil {
		r.Data = []byte{}
	}
	return nil
}

// DeleteRecord deletes kind/key, at any version (0) or at version only.
func (s *Store) DeleteRecord(ctx context.Context, kind, key string, version int64) error {
	const op = "postgres.DeleteRecord"
	tag, err := s.pool.Exec(ctx, "DELETE FROM record WHERE kind = $1 AND key = $2 AND ($3 = 0 OR version = $3)",
		kind, key, version)
	if err != nil {
		return internal(op, err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	if _, err := s.GetRecord(ctx, kind, key); err != nil {
		return err
	}
	return recordConflict(op, kind, key)
}

// ListRecords returns a page of kind's records with keys starting with
// prefix, after after, in key order (COLLATE "C": byte order).
func (s *Store) ListRecords(ctx context.Context, kind, prefix, after string, limit int) ([]hale.Record, error) {
	const op = "postgres.ListRecords"
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT key, version, data, expires, updated FROM record
		WHERE kind = $1 AND key >= $2 AND key > $3 ORDER BY key LIMIT $4`, kind, prefix, after, limit)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []hale.Record
	for rows.Next() {
		r := hale.Record{Kind: kind}
		var expires *int64
		var updated int64
		if err := rows.Scan(&r.Key, &r.Version, &r.Data, &expires, &updated); err != nil {
			return nil, internal(op, err)
		}
		if !strings.HasPrefix(r.Key, prefix) {
			break
		}
		r.Updated = micros(updated)
		if expires != nil {
			r.Expires = micros(*expires)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, internal(op, err)
	}
	return out, nil
}

// DeleteExpiredRecords deletes the records that expired by now.
func (s *Store) DeleteExpiredRecords(ctx context.Context, now time.Time) (int, error) {
	const op = "postgres.DeleteExpiredRecords"
	tag, err := s.pool.Exec(ctx, "DELETE FROM record WHERE expires IS NOT NULL AND expires <= $1", now.UnixMicro())
	if err != nil {
		return 0, internal(op, err)
	}
	return int(tag.RowsAffected()), nil
}
