package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// viewTx is a View's transaction, begun in the round trip of its first
// statement: BEGIN and that statement go to the server as one pipelined
// batch. A read by id is then two round trips (BEGIN with the read, and
// the ROLLBACK that ends it) instead of three. The snapshot is taken at
// the first statement, as PostgreSQL takes it anyway; everything the
// View reads comes from it.
//
// Only the methods reader uses are implemented (Exec, Query, QueryRow,
// SendBatch); the embedded pgx.Tx is nil, so any other would panic
// rather than run outside the transaction.
type viewTx struct {
	pgx.Tx
	conn  *pgxpool.Conn
	begun bool
}

// viewBeginSQL starts a View's transaction.
const viewBeginSQL = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

// begin sends BEGIN in front of b's statements and consumes its result,
// so the caller reads b's results only.
func (v *viewTx) begin(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	all := &pgx.Batch{}
	all.Queue(viewBeginSQL)
	for _, q := range b.QueuedQueries {
		all.Queue(q.SQL, q.Arguments...)
	}
	v.begun = true
	br := v.conn.SendBatch(ctx, all)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return errBatch{br, err}
	}
	return br
}

func (v *viewTx) one(ctx context.Context, sql string, args []any) pgx.BatchResults {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	return v.begin(ctx, b)
}

func (v *viewTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if v.begun {
		return v.conn.Exec(ctx, sql, args...)
	}
	br := v.one(ctx, sql, args)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (v *viewTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if v.begun {
		return v.conn.Query(ctx, sql, args...)
	}
	br := v.one(ctx, sql, args)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (v *viewTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if v.begun {
		return v.conn.QueryRow(ctx, sql, args...)
	}
	br := v.one(ctx, sql, args)
	return batchRow{br.QueryRow(), br}
}

func (v *viewTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if v.begun {
		return v.conn.SendBatch(ctx, b)
	}
	return v.begin(ctx, b)
}

// end rolls the transaction back, if it was begun, and returns the
// connection to the pool (which closes a connection left in a
// transaction, so one whose ROLLBACK failed is not reused).
func (v *viewTx) end(ctx context.Context) {
	if v.begun {
		v.conn.Exec(ctx, "ROLLBACK")
	}
	v.conn.Release()
}

// batchRows are the rows of a View's first query; closing them ends the
// batch it came in.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.err = r.br.Close()
		r.br = nil
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}
