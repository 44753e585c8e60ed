package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// The records part of the contract (hale.Records, records.go), on the
// table of migration 0005. Writes are single statements on the writer
// connection, whose version guard in the WHERE clause (or ON CONFLICT DO
// NOTHING for a create) makes a compare-and-swap: SQLite runs one write
// at a time, in this process or any other on the same file.

var _ hale.Records = (*Store)(nil)

// GetRecord returns kind/key; KindNotFound when there is none.
func (s *Store) GetRecord(ctx context.Context, kind, key string) (*hale.Record, error) {
	const op = "sqlite.GetRecord"
	r := hale.Record{Kind: kind, Key: key}
	var expires sql.NullInt64
	var updated int64
	err := s.read.QueryRowContext(ctx, "SELECT version, data, expires, updated FROM record WHERE kind = ? AND key = ?",
		kind, key).Scan(&r.Version, &r.Data, &expires, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, recordNotFound(op, kind, key)
	}
	if err != nil {
		return nil, internal(op, err)
	}
	r.Updated = micros(updated)
	if expires.Valid {
		r.Expires = micros(expires.Int64)
	}
	if r.Data == nil {
		r.Data = []byte{} // the driver reads an empty BLOB as nil
	}
	return &r, nil
}

func recordNotFound(op, kind, key string) error {
	return &hale.Error{Kind: hale.KindNotFound, Op: op, Message: "record " + kind + "/" + key + " not found"}
}

func recordConflict(op, kind, key string) error {
	return &hale.Error{Kind: hale.KindConflict, Op: op, Message: "record " + kind + "/" + key + " changed or exists"}
}

// checkRecordKey refuses kinds and keys the contract does not accept.
func checkRecordKey(op, kind, key string) error {
	if kind == "" || key == "" || len(kind) > hale.MaxRecordKey || len(key) > hale.MaxRecordKey {
		return &hale.Error{Kind: hale.KindInvalid, Op: op, Message: "record kind and key must be 1 to 200 bytes"}
	}
	return nil
}

// PutRecord creates (Version 0) or replaces version r.Version of a record.
func (s *Store) PutRecord(ctx context.Context, r *hale.Record) error {
	const op = "sqlite.PutRecord"
	if err := checkRecordKey(op, r.Kind, r.Key); err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	var (
		res sql.Result
		err error
	)
	if r.Version == 0 {
		res, err = s.write.ExecContext(ctx, `INSERT INTO record (kind, key, version, data, expires, updated)
			VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (kind, key) DO NOTHING`,
			r.Kind, r.Key, nonNil(r.Data), nullTime(r.Expires), now.UnixMicro())
	} else {
		res, err = s.write.ExecContext(ctx, `UPDATE record SET version = version + 1, data = ?, expires = ?, updated = ?
			WHERE kind = ? AND key = ? AND version = ?`,
			nonNil(r.Data), nullTime(r.Expires), now.UnixMicro(), r.Kind, r.Key, r.Version)
	}
	if err != nil {
		return internal(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
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
	const op = "sqlite.DeleteRecord"
	res, err := s.write.ExecContext(ctx, "DELETE FROM record WHERE kind = ? AND key = ? AND (? = 0 OR version = ?)",
		kind, key, version, version)
	if err != nil {
		return internal(op, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	if _, err := s.GetRecord(ctx, kind, key); err != nil {
		return err // not found (or a database error)
	}
	return recordConflict(op, kind, key)
}

// ListRecords returns a page of kind's records with keys starting with
// prefix, after after, in key order.
func (s *Store) ListRecords(ctx context.Context, kind, prefix, after string, limit int) ([]hale.Record, error) {
	const op = "sqlite.ListRecords"
	if limit <= 0 {
		limit = 100
	}
	// Keys compare as bytes (BINARY collation): every key starting with
	// prefix is >= prefix, and they are contiguous in key order.
	rows, err := s.read.QueryContext(ctx, `SELECT key, version, data, expires, updated FROM record
		WHERE kind = ? AND key >= ? AND key > ? ORDER BY key LIMIT ?`, kind, prefix, after, limit)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []hale.Record
	for rows.Next() && len(out) < limit {
		r := hale.Record{Kind: kind}
		var expires sql.NullInt64
		var updated int64
		if err := rows.Scan(&r.Key, &r.Version, &r.Data, &expires, &updated); err != nil {
			return nil, internal(op, err)
		}
		if !strings.HasPrefix(r.Key, prefix) {
			break // past the prefix's range
		}
		r.Updated = micros(updated)
		if expires.Valid {
			r.Expires = micros(expires.Int64)
		}
		if r.Data == nil {
			r.Data = []byte{}
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
	const op = "sqlite.DeleteExpiredRecords"
	res, err := s.write.ExecContext(ctx, "DELETE FROM record WHERE expires IS NOT NULL AND expires <= ?", now.UnixMicro())
	if err != nil {
		return 0, internal(op, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
