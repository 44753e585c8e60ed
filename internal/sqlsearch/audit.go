package sqlsearch

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// This file is the audit store's search (hale.AuditReader, audit.go) for
// both engines: a hale.AuditQuery over the columns of audit_event and the
// rows of audit_entity (migration 0006). It is small on purpose: an exact
// match on a few columns, a date range, and one order, (recorded, seq),
// either way, paged by keyset so that pages stay stable while records are
// appended. docs/database.md shows the SQL.

// AuditColumns is the column list ScanAuditRecord reads (alias e is
// audit_event).
const AuditColumns = "e.seq, e.id, e.recorded, e.type, e.subtype, e.action, e.outcome, e.agent, e.agent_ref, e.data"

// ScanAuditRecord scans the AuditColumns of one row.
func ScanAuditRecord(scan func(dest ...any) error) (*hale.AuditRecord, error) {
	var r hale.AuditRecord
	var recorded int64
	if err := scan(&r.Seq, &r.ID, &recorded, &r.Type, &r.Subtype, &r.Action, &r.Outcome, &r.Agent, &r.AgentRef, &r.Data); err != nil {
		return nil, err
	}
	r.Recorded = time.UnixMicro(recorded).UTC()
	return &r, nil
}

// AuditLinkColumns is the column list ScanAuditLink reads: the link (c is
// audit_chain), the record it covers (e, LEFT JOINed: NULL when missing),
// and entities, an expression each engine writes that gives the refs of
// the record's audit_entity rows with the record's own time as a JSON
// array of strings.
func AuditLinkColumns(entities string) string {
	return "c.n, c.seq, c.hash, e.seq, e.id, e.recorded, e.type, e.subtype, e.action, e.outcome, e.agent, e.agent_ref, e.data, " + entities
}

// ScanAuditLink scans the AuditLinkColumns of one row.
func ScanAuditLink(scan func(dest ...any) error) (*hale.AuditLink, error) {
	var (
		l                                            hale.AuditLink
		seq, recorded                                sql.NullInt64
		id, typ, subtype, action, outcome, agent, ar sql.NullString
		data                                         []byte
		entities                                     sql.NullString
	)
	if err := scan(&l.N, &l.Seq, &l.Hash, &seq, &id, &recorded, &typ, &subtype, &action, &outcome, &agent, &ar, &data, &entities); err != nil {
		return nil, err
	}
	if !seq.Valid {
		return &l, nil
	}
	r := &hale.AuditRecord{Seq: seq.Int64, ID: id.String, Recorded: time.UnixMicro(recorded.Int64).UTC(),
		Type: typ.String, Subtype: subtype.String, Action: action.String, Outcome: outcome.String,
		Agent: agent.String, AgentRef: ar.String, Data: data}
	if entities.Valid && entities.String != "" {
		if err := json.Unmarshal([]byte(entities.String), &r.Entities); err != nil {
			return nil, fmt.Errorf("entities of audit record %d: %w", r.Seq, err)
		}
	}
	slices.Sort(r.Entities)
	l.Record = r
	return &l, nil
}

// AuditEntities returns the entity references of r as AppendAudit stores
// them: distinct, sorted.
func AuditEntities(r *hale.AuditRecord) []string {
	ents := slices.Clone(r.Entities)
	slices.Sort(ents)
	return slices.Compact(ents)
}

// ReadAudit returns the record with id. Returns KindNotFound.
func ReadAudit(ctx context.Context, d Dialect, query Querier, id string) (*hale.AuditRecord, error) {
	w := &Writer{d: d}
	w.SQL("SELECT ", AuditColumns, " FROM audit_event e WHERE e.id = ")
	w.Arg(id)
	var rec *hale.AuditRecord
	err := query(ctx, w.statement(), func(scan func(...any) error) error {
		var err error
		rec, err = ScanAuditRecord(scan)
		return err
	})
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, &hale.Error{Kind: hale.KindNotFound, Op: "sqlsearch.ReadAudit", Message: "AuditEvent/" + id + " not found"}
	}
	return rec, nil
}

// SearchAudit runs q. Returns KindInvalid for a condition it does not
// know.
func SearchAudit(ctx context.Context, d Dialect, query Querier, q *hale.AuditQuery) (*hale.AuditPage, error) {
	page := &hale.AuditPage{Total: -1}
	if q.Count > 0 {
		st, err := CompileAudit(d, q, false)
		if err != nil {
			return nil, err
		}
		nkeys := len(auditTextKeys(q))
		var keys [][]string // each record's text sort keys
		err = query(ctx, st, func(scan func(...any) error) error {
			if nkeys == 0 {
				r, err := ScanAuditRecord(scan)
				if err == nil {
					page.Records = append(page.Records, *r)
				}
				return err
			}
			vals := make([]string, nkeys)
			r, err := ScanAuditRecord(func(dest ...any) error {
				for i := range vals {
					dest = append(dest, &vals[i])
				}
				return scan(dest...)
			})
			if err == nil {
				page.Records = append(page.Records, *r)
				keys = append(keys, vals)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(page.Records) > q.Count {
			page.Records = page.Records[:q.Count]
			last := page.Records[q.Count-1]
			page.Next = &hale.AuditCursor{Recorded: last.Recorded.UnixMicro(), Seq: last.Seq}
			if nkeys > 0 {
				page.Next.Keys = keys[q.Count-1]
			}
		}
	}
	if q.Total || q.Count <= 0 {
		st, err := CompileAudit(d, q, true)
		if err != nil {
			return nil, err
		}
		err = query(ctx, st, func(scan func(...any) error) error { return scan(&page.Total) })
		if err != nil {
			return nil, err
		}
	}
	return page, nil
}

// CompileAudit returns the statement of one page of q (Count+1 rows, to
// know whether there is a next page) or, with count, of the number of
// matches (cursor and Count ignored).
//
// The rows come from one index range: when a condition names exactly one
// entity, from audit_entity_find (ref, recorded, seq), the per-patient
// report; otherwise from audit_event_recorded (recorded, seq), or
// audit_event_agent when the planner prefers it. The other conditions
// filter those rows.
func CompileAudit(d Dialect, q *hale.AuditQuery, count bool) (Statement, error) {
	w := &Writer{d: d}
	drive := slices.IndexFunc(q.Where, func(c hale.AuditCondition) bool {
		return c.Field == hale.AuditEntity && len(c.Values) == 1
	})
	key := "e" // the alias whose (recorded, seq) orders the rows
	if count {
		w.SQL("SELECT count(*)")
	} else {
		w.SQL("SELECT ", AuditColumns)
		// A sorted page also selects its text keys' values: the next
		// page's cursor holds those of its last record.
		for _, k := range auditTextKeys(q) {
			w.SQL(", ")
			if err := auditSortExpr(w, "e", k.Field); err != nil {
				return Statement{}, err
			}
		}
	}
	if drive >= 0 {
		key = "x"
		w.SQL(" FROM audit_entity x JOIN audit_event e ON e.seq = x.seq AND e.recorded = x.recorded WHERE x.ref = ")
		w.Arg(q.Where[drive].Values[0])
	} else {
		w.SQL(" FROM audit_event e WHERE 1 = 1")
	}
	for i, c := range q.Where {
		if i == drive {
			continue
		}
		w.SQL(" AND ")
		if err := auditCondition(w, key, c); err != nil {
			return Statement{}, err
		}
	}
	if count {
		return w.statement(), nil
	}
	if len(q.Sort) > 0 {
		if err := auditSorted(w, key, q); err != nil {
			return Statement{}, err
		}
		w.SQL(" LIMIT ")
		w.Arg(int64(q.Count) + 1)
		return w.statement(), nil
	}
	cmp, dir := ">", ""
	if q.Desc {
		cmp, dir = "<", " DESC"
	}
	if q.After != nil {
		w.SQL(" AND (", key, ".recorded, ", key, ".seq) ", cmp, " (")
		w.Arg(q.After.Recorded)
		w.SQL(", ")
		w.Arg(q.After.Seq)
		w.SQL(")")
	}
	w.SQL(" ORDER BY ", key, ".recorded", dir, ", ", key, ".seq", dir, " LIMIT ")
	w.Arg(int64(q.Count) + 1)
	return w.statement(), nil
}

// auditSortKeys returns q's order as keys: its Sort, then (Recorded,
// Seq) in the direction of the time (its Sort key, else Desc).
func auditSortKeys(q *hale.AuditQuery) []hale.AuditSort {
	keys := slices.Clone(q.Sort)
	i := slices.IndexFunc(keys, func(k hale.AuditSort) bool { return k.Field == hale.AuditRecorded })
	if i < 0 {
		keys = append(keys, hale.AuditSort{Field: hale.AuditRecorded, Desc: q.Desc})
		i = len(keys) - 1
	}
	return append(keys, hale.AuditSort{Field: auditSeq, Desc: keys[i].Desc})
}

// auditTextKeys are q's Sort keys other than the time.
func auditTextKeys(q *hale.AuditQuery) []hale.AuditSort {
	var out []hale.AuditSort
	for _, k := range q.Sort {
		if k.Field != hale.AuditRecorded {
			out = append(out, k)
		}
	}
	return out
}

// auditSeq is the last key of every order: the write order.
const auditSeq hale.AuditField = -1

// auditSortExpr writes the SQL value a sort key compares.
func auditSortExpr(w *Writer, key string, f hale.AuditField) error {
	switch f {
	case hale.AuditRecorded:
		w.SQL(key, ".recorded")
	case auditSeq:
		w.SQL(key, ".seq")
	case hale.AuditPatient, hale.AuditEntity:
		// The first entity reference (of a patient), by the primary key
		// (seq, ref) of audit_entity: one index probe per record.
		w.SQL("COALESCE((SELECT min(y.ref) FROM audit_entity y WHERE y.seq = e.seq AND y.recorded = e.recorded")
		if f == hale.AuditPatient {
			w.SQL(" AND y.ref >= 'Patient/' AND y.ref < 'Patient0'")
		}
		w.SQL("), '')")
	case hale.AuditAddress:
		w.SQL("COALESCE(")
		w.d.JSONText(w, "e.data", "agent", "0", "network", "address")
		w.SQL(", '')")
	default:
		col, ok := auditColumns[f]
		if !ok {
			return &hale.Error{Kind: hale.KindInvalid, Op: "sqlsearch.SearchAudit", Message: fmt.Sprintf("cannot sort by audit field %d", f)}
		}
		w.SQL(col)
	}
	return nil
}

// auditSorted writes the rest of a sorted page's statement: the cursor's
// condition (the rows after it in the order, key by key) and ORDER BY.
func auditSorted(w *Writer, key string, q *hale.AuditQuery) error {
	keys := auditSortKeys(q)
	if a := q.After; a != nil {
		// The cursor's value of each key: the text keys in order, then
		// the time and the seq.
		var vals []any
		texts := a.Keys
		for _, k := range keys {
			switch k.Field {
			case hale.AuditRecorded:
				vals = append(vals, a.Recorded)
			case auditSeq:
				vals = append(vals, a.Seq)
			default:
				if len(texts) == 0 {
					return &hale.Error{Kind: hale.KindInvalid, Op: "sqlsearch.SearchAudit", Message: "the paging cursor does not fit the sort"}
				}
				vals = append(vals, texts[0])
				texts = texts[1:]
			}
		}
		if len(texts) != 0 {
			return &hale.Error{Kind: hale.KindInvalid, Op: "sqlsearch.SearchAudit", Message: "the paging cursor does not fit the sort"}
		}
		// (k1 after v1) OR (k1 = v1 AND k2 after v2) OR …
		w.SQL(" AND (")
		for i := range keys {
			if i > 0 {
				w.SQL(" OR ")
			}
			w.SQL("(")
			for j := 0; j < i; j++ {
				if err := auditSortExpr(w, key, keys[j].Field); err != nil {
					return err
				}
				w.SQL(" = ")
				w.Arg(vals[j])
				w.SQL(" AND ")
			}
			if err := auditSortExpr(w, key, keys[i].Field); err != nil {
				return err
			}
			if keys[i].Desc {
				w.SQL(" < ")
			} else {
				w.SQL(" > ")
			}
			w.Arg(vals[i])
			w.SQL(")")
		}
		w.SQL(")")
	}
	w.SQL(" ORDER BY ")
	for i, k := range keys {
		if i > 0 {
			w.SQL(", ")
		}
		if err := auditSortExpr(w, key, k.Field); err != nil {
			return err
		}
		if k.Desc {
			w.SQL(" DESC")
		}
	}
	return nil
}

// auditColumns are the audit_event columns of the exact-match fields.
var auditColumns = map[hale.AuditField]string{
	hale.AuditID: "e.id", hale.AuditAgent: "e.agent", hale.AuditAgentRef: "e.agent_ref",
	hale.AuditAction: "e.action", hale.AuditOutcome: "e.outcome",
	hale.AuditType: "e.type", hale.AuditSubtype: "e.subtype",
}

func auditCondition(w *Writer, key string, c hale.AuditCondition) error {
	if c.Field == hale.AuditRecorded {
		if len(c.Ranges) == 0 {
			w.SQL("(1 = 0)")
			return nil
		}
		w.SQL("(")
		for i, r := range c.Ranges {
			if i > 0 {
				w.SQL(" OR ")
			}
			if r.Not {
				w.SQL("NOT ")
			}
			w.SQL("(1 = 1")
			if r.Lo > hale.MinTime {
				w.SQL(" AND ", key, ".recorded >= ")
				w.Arg(r.Lo)
			}
			if r.Hi < hale.MaxTime {
				w.SQL(" AND ", key, ".recorded < ")
				w.Arg(r.Hi)
			}
			w.SQL(")")
		}
		w.SQL(")")
		return nil
	}
	if len(c.Values) == 0 {
		w.SQL("(1 = 0)")
		return nil
	}
	if c.Field == hale.AuditEntity {
		w.SQL("EXISTS (SELECT 1 FROM audit_entity y WHERE y.seq = e.seq AND y.recorded = e.recorded AND ")
		in(w, "y.ref", c.Values)
		w.SQL(")")
		return nil
	}
	col, ok := auditColumns[c.Field]
	if !ok {
		return &hale.Error{Kind: hale.KindInvalid, Op: "sqlsearch.SearchAudit", Message: fmt.Sprintf("unknown audit field %d", c.Field)}
	}
	if c.Field != hale.AuditType && c.Field != hale.AuditSubtype {
		in(w, col, c.Values)
		return nil
	}
	// A token stored as system|code.
	w.SQL("(")
	for i, v := range c.Values {
		if i > 0 {
			w.SQL(" OR ")
		}
		system, code, hasSystem := strings.Cut(v, "|")
		switch {
		case !hasSystem: // any system: the column ends with |code
			w.SQL("substr(", col, ", length(", col, ") - length(CAST(")
			w.Arg("|" + v)
			w.SQL(" AS TEXT)) + 1) = ")
			w.Arg("|" + v)
		case code == "": // any code of the system
			Range(w, col, system+"|")
		default:
			w.SQL(col, " = ")
			w.Arg(v)
		}
	}
	w.SQL(")")
	return nil
}

// in writes "col is one of values".
func in(w *Writer, col string, values []string) {
	if len(values) == 1 {
		w.SQL(col, " = ")
		w.Arg(values[0])
		return
	}
	w.SQL(col, " IN (")
	for i, v := range values {
		if i > 0 {
			w.SQL(", ")
		}
		w.Arg(v)
	}
	w.SQL(")")
}
