package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strings"

	"github.com/hale-ehr/hale/internal/sqlsearch"
)

// The fixed statements, prepared once at Open. Parsing SQL is a third of
// the CPU time of a Put otherwise; database/sql keeps each statement
// prepared on every connection that has run it. History and Find build
// their SQL per call and are not prepared, and neither are searches.

// versionColumns is the column list scanVersion reads, in order.
const versionColumns = "v.seq, v.type, v.id, v.version, v.last_updated, v.method, v.deleted, v.data"

const (
	sqlSnapshot = "SELECT count(*) FROM schema_migrations"
	sqlCurrent  = "SELECT " + versionColumns +
		" FROM resource r JOIN resource_version v ON v.seq = r.seq WHERE r.type = ? AND r.id = ?"
	sqlVersion = "SELECT " + versionColumns +
		" FROM resource_version v WHERE v.type = ? AND v.id = ? AND v.version = ?"
	sqlCountAll = "SELECT count(*) FROM resource WHERE deleted = 0"
	sqlCount    = "SELECT count(*) FROM resource WHERE deleted = 0 AND type = ?"

	sqlCurrentVersion = "SELECT version FROM resource WHERE type = ? AND id = ?"
	sqlInsertVersion  = `INSERT INTO resource_version (type, id, version, last_updated, method, deleted, data)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (type, id, version) DO NOTHING RETURNING seq`
	sqlPointResource = `INSERT INTO resource (type, id, version, seq, deleted, last_updated, first_seq)
		VALUES (?, ?, ?, ?, ?, ?, ?4)
		ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, seq = excluded.seq,
			deleted = excluded.deleted, last_updated = excluded.last_updated`
)

// insertTables are the tables Put inserts index rows into, with their
// columns; flush writes them with the statements insertSQL names.
var insertTables = [...]struct {
	name string
	cols int
	list string
}{
	tabToken:     {"idx_token", 6, "type, id, param, grp, system, code"},
	tabString:    {"idx_string", 6, "type, id, param, grp, norm, exact"},
	tabReference: {"idx_reference", 7, "type, id, param, grp, target_type, target_id, url"},
	tabDate:      {"idx_date", 6, "type, id, param, grp, lo, hi"},
	tabNumber:    {"idx_number", 7, "type, id, param, grp, value, lo, hi"},
	tabQuantity: {"idx_quantity", 14, "type, id, param, grp, system, code, unit, value, lo, hi, " +
		"canon_code, canon_lo, canon_hi, canon_value"},
	tabURI:      {"idx_uri", 5, "type, id, param, grp, uri"},
	tabSortText: {sqlsearch.SortTextTable, 5, "type, id, param, lo, hi"},
	tabSortInt:  {sqlsearch.SortIntTable, 5, "type, id, param, lo, hi"},
	tabSortReal: {sqlsearch.SortRealTable, 5, "type, id, param, lo, hi"},
	tabText:     {sqlsearch.TextTable, 5, "type, id, param, grp, norm"},
}

const (
	tabToken = iota
	tabString
	tabReference
	tabDate
	tabNumber
	tabQuantity
	tabURI
	tabSortText
	tabSortInt
	tabSortReal
	tabText
)

// maxRowsPerInsert is the most rows one INSERT writes; flush uses the
// statements for 1, 2, 4, … maxRowsPerInsert rows, all prepared at Open.
const maxRowsPerInsert = 64

// insertSQLs[table][k] is the INSERT of 2^k rows into insertTables[table].
var insertSQLs = func() (qs [len(insertTables)][]string) {
	for t, tab := range insertTables {
		row := "(" + strings.TrimSuffix(strings.Repeat("?, ", tab.cols), ", ") + ")"
		for k := 1; k <= maxRowsPerInsert; k *= 2 {
			qs[t] = append(qs[t], "INSERT INTO "+tab.name+" ("+tab.list+") VALUES "+
				strings.TrimSuffix(strings.Repeat(row+", ", k), ", "))
		}
	}
	return qs
}()

// insertSQL is the INSERT of k rows (a power of two) into table.
func insertSQL(table, k int) string {
	return insertSQLs[table][bits.TrailingZeros(uint(k))]
}

// indexTables are the search index tables, each holding the rows of the
// current version of each live resource (and, beside them, the sort-key
// tables sqlsearch.SortTables).
var indexTables = []string{"idx_token", "idx_string", "idx_reference", "idx_date", "idx_number", "idx_quantity", "idx_uri", sqlsearch.TextTable}

var sqlDeleteIndex = func() []string {
	var qs []string
	for _, t := range append(indexTables, sqlsearch.SortTables...) {
		qs = append(qs, "DELETE FROM "+t+" WHERE type = ? AND id = ?")
	}
	return qs
}()

// readStatements run on both databases; writeStatements on the writer.
var (
	readStatements  = []string{sqlSnapshot, sqlCurrent, sqlVersion, sqlCountAll, sqlCount, sqlAuditRead}
	writeStatements = func() []string {
		qs := append([]string{sqlCurrentVersion, sqlInsertVersion, sqlPointResource}, sqlDeleteIndex...)
		for _, t := range insertSQLs {
			qs = append(qs, t...)
		}
		return append(qs, auditWriteStatements...)
	}()
)

// statements are one database handle's prepared statements by SQL text.
// They are prepared eagerly: preparing on the writer while a transaction
// holds its only connection would wait forever.
type statements map[string]*sql.Stmt

func prepare(ctx context.Context, db *sql.DB, queries ...[]string) (statements, error) {
	st := statements{}
	for _, qs := range queries {
		for _, q := range qs {
			s, err := db.PrepareContext(ctx, q)
			if err != nil {
				st.close()
				return nil, fmt.Errorf("prepare %q: %w", q, err)
			}
			st[q] = s
		}
	}
	return st, nil
}

func (st statements) close() {
	for _, s := range st {
		s.Close()
	}
}

// stmt returns the prepared statement for query in r's transaction.
func (r *reader) stmt(ctx context.Context, query string) *sql.Stmt {
	s, ok := r.st[query]
	if !ok {
		panic("sqlite: statement not prepared: " + query)
	}
	return r.q.StmtContext(ctx, s)
}

func (r *reader) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return r.stmt(ctx, query).QueryRowContext(ctx, args...)
}

func (r *reader) exec(ctx context.Context, query string, args ...any) error {
	_, err := r.stmt(ctx, query).ExecContext(ctx, args...)
	return err
}
