package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

// RunAudit runs the conformance tests of the audit store (hale.AuditStore,
// hale.AuditTx, hale.AuditReader; audit.go) against stores made by open,
// which must implement them. Each engine's audit_test.go runs it.
func RunAudit(t *testing.T, open func(t *testing.T) hale.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s hale.Store, as hale.AuditStore)
	}{
		{"AppendCommitsWithTx", testAuditAppendTx},
		{"SealChains", testAuditSeal},
		{"ConcurrentWritersAndSealers", testAuditConcurrent},
		{"Search", testAuditSearch},
		{"PagingWhileAppending", testAuditPagingStable},
		{"LargeBatch", testAuditLargeBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			as, ok := s.(hale.AuditStore)
			if !ok {
				t.Fatalf("%s store does not implement hale.AuditStore", s.Engine())
			}
			tc.fn(t, s, as)
		})
	}
}

var at0 = time.Date(2025, 4, 1, 8, 0, 0, 0, time.UTC)

const (
	sysRest = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	sysInt  = "http://hl7.org/fhir/restful-interaction"
	sysDCM  = "http://dicom.nema.org/resources/ontology/DCM"
)

// auditRecord is a record with id, recorded at0 plus minutes, and
// entities (in any order, maybe repeated: AppendAudit stores them
// distinct).
func auditRecord(id string, minutes int, entities ...string) *hale.AuditRecord {
	return &hale.AuditRecord{ID: id, Recorded: at0.Add(time.Duration(minutes) * time.Minute),
		Type: sysRest + "|rest", Subtype: sysInt + "|read", Action: "R", Outcome: "0",
		Agent: "user/u1", AgentRef: "Practitioner/p1", Entities: entities,
		Data: []byte(`{"resourceType":"AuditEvent","id":"` + id + `"}`)}
}

// appendAudit appends recs in one transaction that then returns fail.
func appendAudit(ctx context.Context, s hale.Store, fail error, recs ...*hale.AuditRecord) error {
	return s.Update(ctx, func(tx hale.Tx) error {
		atx, ok := tx.(hale.AuditTx)
		if !ok {
			return errors.New("the store's Tx does not implement hale.AuditTx")
		}
		if err := atx.AppendAudit(ctx, recs); err != nil {
			return err
		}
		return fail
	})
}

func mustAppend(t *testing.T, s hale.Store, recs ...*hale.AuditRecord) {
	t.Helper()
	if err := appendAudit(context.Background(), s, nil, recs...); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
}

// testSign is the conformance tests' "signature": a copy of the message.
func testSign(c hale.AuditCheckpoint) []byte { return hale.AuditCheckpointMessage(c) }

// sealAll calls SealAudit with limit until it chains fewer than limit.
func sealAll(t *testing.T, as hale.AuditStore, limit int, sign func(hale.AuditCheckpoint) []byte) {
	t.Helper()
	for {
		n, err := as.SealAudit(context.Background(), limit, at0, sign)
		if err != nil {
			t.Fatalf("SealAudit: %v", err)
		}
		if n > limit {
			t.Fatalf("SealAudit(%d) chained %d", limit, n)
		}
		if n < limit {
			return
		}
	}
}

// checkChain reads the whole chain and checks that it is 1…n without
// gaps, that every link's hash is right and that each covers its record.
func checkChain(t *testing.T, as hale.AuditStore) []hale.AuditLink {
	t.Helper()
	var links []hale.AuditLink
	var prev []byte
	err := as.ScanAudit(context.Background(), func(l *hale.AuditLink) error {
		if l.N != int64(len(links))+1 {
			return fmt.Errorf("link %d after %d links", l.N, len(links))
		}
		if l.Record == nil || l.Record.Seq != l.Seq {
			return fmt.Errorf("link %d: record seq %d not returned", l.N, l.Seq)
		}
		if want := hale.AuditHash(prev, l.N, l.Record); !bytes.Equal(l.Hash, want) {
			return fmt.Errorf("link %d: hash %x, want %x", l.N, l.Hash, want)
		}
		prev = l.Hash
		links = append(links, *l)
		return nil
	})
	if err != nil {
		t.Fatalf("ScanAudit: %v", err)
	}
	return links
}

// sameRecord reports how got differs from want (Seq, columns, data and,
// when withEntities, the entities sorted and distinct).
func sameRecord(got, want *hale.AuditRecord, withEntities bool) error {
	g, w := *got, *want
	if !withEntities {
		g.Entities, w.Entities = nil, nil
	} else {
		w.Entities = slices.Compact(slices.Sorted(slices.Values(w.Entities)))
		if len(w.Entities) == 0 {
			w.Entities = nil
		}
		if len(g.Entities) == 0 {
			g.Entities = nil
		}
	}
	if !g.Recorded.Equal(w.Recorded) || g.Recorded.Location() != time.UTC {
		return fmt.Errorf("recorded %v, want %v (UTC)", g.Recorded, w.Recorded)
	}
	g.Recorded, w.Recorded = time.Time{}, time.Time{}
	if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) || string(g.Data) != string(w.Data) {
		return fmt.Errorf("record\n got %+v %s\nwant %+v %s", g, g.Data, w, w.Data)
	}
	return nil
}

func testAuditAppendTx(t *testing.T, s hale.Store, as hale.AuditStore) {
	ctx := context.Background()
	if err := appendAudit(ctx, s, errors.New("abort"), auditRecord("rolled-back", 0, "Patient/p1")); err == nil {
		t.Fatal("the aborted transaction succeeded")
	}
	sealAll(t, as, 100, testSign)
	if n, err := as.AuditQueued(ctx); err != nil || n != 0 {
		t.Fatalf("AuditQueued after a rollback = %d, %v; want 0", n, err)
	}
	if links := checkChain(t, as); len(links) != 0 {
		t.Fatalf("%d links after a rollback, want 0", len(links))
	}
	err := s.View(ctx, func(r hale.Reader) error {
		_, err := r.(hale.AuditReader).AuditEvent(ctx, "rolled-back")
		return err
	})
	if !hale.IsKind(err, hale.KindNotFound) {
		t.Fatalf("AuditEvent of a rolled-back record: %v, want KindNotFound", err)
	}
	a1, a2 := auditRecord("a1", 1, "Patient/p1", "Observation/o1", "Patient/p1"), auditRecord("a2", 2)
	a2.Subtype, a2.AgentRef, a2.Outcome = "", "", "4"
	mustAppend(t, s, a1, a2)
	a3 := auditRecord("a3", 3, "Patient/p2")
	a3.Recorded = a3.Recorded.Add(1234 * time.Microsecond)
	mustAppend(t, s, a3)
	if !(a1.Seq > 0 && a2.Seq > a1.Seq && a3.Seq > a2.Seq) {
		t.Fatalf("seqs %d, %d, %d: want increasing, set by AppendAudit", a1.Seq, a2.Seq, a3.Seq)
	}
	err = s.View(ctx, func(r hale.Reader) error {
		for _, want := range []*hale.AuditRecord{a1, a2, a3} {
			got, err := r.(hale.AuditReader).AuditEvent(ctx, want.ID)
			if err != nil {
				return err
			}
			if err := sameRecord(got, want, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every record is chained or queued.
	queued, err := as.AuditQueued(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if links := checkChain(t, as); int64(len(links))+queued != 3 {
		t.Fatalf("%d links and %d queued, want 3 records in all", len(links), queued)
	}
	if stray, err := as.AuditUnchained(ctx); err != nil || len(stray) != 0 {
		t.Fatalf("AuditUnchained = %v, %v; want none", stray, err)
	}
}

func testAuditSeal(t *testing.T, s hale.Store, as hale.AuditStore) {
	ctx := context.Background()
	if n, err := as.SealAudit(ctx, 100, at0, testSign); err != nil || n != 0 {
		t.Fatalf("SealAudit on an empty store = %d, %v; want 0", n, err)
	}
	if cps, err := as.AuditCheckpoints(ctx); err != nil || len(cps) != 0 {
		t.Fatalf("an empty seal wrote checkpoints: %v, %v", cps, err)
	}
	var want []*hale.AuditRecord
	for i := range 5 {
		r := auditRecord(fmt.Sprintf("e%d", i), i, "Patient/p9", fmt.Sprintf("Observation/o%d", i), "Patient/p1")
		want = append(want, r)
		mustAppend(t, s, r)
	}
	sealAll(t, as, 3, testSign)
	links := checkChain(t, as)
	if len(links) != 5 {
		t.Fatalf("%d links, want 5", len(links))
	}
	for i, l := range links {
		if err := sameRecord(l.Record, want[i], true); err != nil {
			t.Errorf("link %d: %v", l.N, err)
		}
	}
	if n, err := as.AuditQueued(ctx); err != nil || n != 0 {
		t.Fatalf("AuditQueued after sealing = %d, %v; want 0", n, err)
	}
	cps, err := as.AuditCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) == 0 || cps[len(cps)-1].N != 5 {
		t.Fatalf("checkpoints %+v, want the last at the head, 5", cps)
	}
	for _, cp := range cps {
		if !bytes.Equal(cp.Hash, links[cp.N-1].Hash) {
			t.Errorf("checkpoint %d: hash is not link %d's", cp.N, cp.N)
		}
		if !cp.Time.Equal(at0) {
			t.Errorf("checkpoint %d: time %v", cp.N, cp.Time)
		}
		if !bytes.Equal(cp.Signature, hale.AuditCheckpointMessage(cp)) {
			t.Errorf("checkpoint %d: signature not the one sign returned", cp.N)
		}
	}
	// Nothing new: no new checkpoint. Without sign: none either; the
	// next signed seal covers the head.
	sealAll(t, as, 100, testSign)
	mustAppend(t, s, auditRecord("e5", 5))
	sealAll(t, as, 100, nil)
	if got, _ := as.AuditCheckpoints(ctx); len(got) != len(cps) {
		t.Errorf("%d checkpoints after an idle and an unsigned seal, want %d", len(got), len(cps))
	}
	if got := checkChain(t, as); len(got) != 6 {
		t.Errorf("%d links, want 6", len(got))
	}
	sealAll(t, as, 100, testSign)
	if got, _ := as.AuditCheckpoints(ctx); len(got) != len(cps)+1 || got[len(got)-1].N != 6 {
		t.Errorf("checkpoints %+v, want one more, at 6", got)
	}
}

// testAuditConcurrent appends records from several goroutines while two
// sealers run: every committed record ends up in the chain exactly once,
// and the chain has no gap and no broken link.
func testAuditConcurrent(t *testing.T, s hale.Store, as hale.AuditStore) {
	ctx := context.Background()
	const writers, each = 4, 15
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, writers+2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := auditRecord(fmt.Sprintf("w%d-%d", w, i), i, fmt.Sprintf("Patient/p%d", w))
				if err := appendAudit(ctx, s, nil, r); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var sealers sync.WaitGroup
	for range 2 {
		sealers.Add(1)
		go func() {
			defer sealers.Done()
			for {
				if _, err := as.SealAudit(ctx, 7, at0, testSign); err != nil {
					errs <- err
					return
				}
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	sealers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sealAll(t, as, 1000, testSign)
	links := checkChain(t, as)
	seen := map[int64]bool{}
	for _, l := range links {
		if seen[l.Seq] {
			t.Errorf("seq %d chained twice", l.Seq)
		}
		seen[l.Seq] = true
	}
	if len(links) != writers*each {
		t.Fatalf("%d links, want %d", len(links), writers*each)
	}
	cps, err := as.AuditCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range cps {
		if !bytes.Equal(cp.Hash, links[cp.N-1].Hash) {
			t.Errorf("checkpoint %d does not match the chain", cp.N)
		}
	}
}

// auditFixture is 40 records with varied columns; several share a time
// (the seq breaks the tie).
func auditFixture() []*hale.AuditRecord {
	var recs []*hale.AuditRecord
	for i := range 40 {
		r := auditRecord(fmt.Sprintf("r%02d", i), i/2*10, fmt.Sprintf("Patient/p%d", i%4))
		switch i % 5 {
		case 0:
			r.Subtype, r.Action = sysInt+"|search-type", "E"
			r.Entities = append(r.Entities, "Patient/p9")
		case 1:
			r.Type, r.Subtype, r.Action = sysDCM+"|110114", sysDCM+"|110122", "E"
			r.Entities = nil
		case 2:
			r.Subtype, r.Action = sysInt+"|update", "U"
			r.Entities = append(r.Entities, fmt.Sprintf("Observation/o%d", i))
		}
		if i%7 == 3 {
			r.Outcome = "4"
		}
		if i%3 == 1 {
			r.Agent, r.AgentRef = "user/u2", ""
		}
		recs = append(recs, r)
	}
	return recs
}

// matches is the reference semantics of an AuditCondition.
func matches(r *hale.AuditRecord, c hale.AuditCondition) bool {
	us := r.Recorded.UnixMicro()
	switch c.Field {
	case hale.AuditRecorded:
		return slices.ContainsFunc(c.Ranges, func(g hale.AuditRange) bool { return (us >= g.Lo && us < g.Hi) != g.Not })
	case hale.AuditEntity:
		return slices.ContainsFunc(c.Values, func(v string) bool { return slices.Contains(r.Entities, v) })
	}
	col := map[hale.AuditField]string{hale.AuditID: r.ID, hale.AuditAgent: r.Agent, hale.AuditAgentRef: r.AgentRef,
		hale.AuditAction: r.Action, hale.AuditOutcome: r.Outcome, hale.AuditType: r.Type, hale.AuditSubtype: r.Subtype}[c.Field]
	return slices.ContainsFunc(c.Values, func(v string) bool {
		if c.Field != hale.AuditType && c.Field != hale.AuditSubtype {
			return col == v
		}
		sys, code, hasSys := bytes.Cut([]byte(v), []byte("|"))
		colSys, colCode, _ := bytes.Cut([]byte(col), []byte("|"))
		switch {
		case !hasSys:
			return col != "" && string(colCode) == v
		case len(code) == 0:
			return col != "" && bytes.Equal(colSys, sys)
		}
		return col == v
	})
}

// expected returns the ids q should find among recs, in q's order.
func expected(recs []*hale.AuditRecord, q *hale.AuditQuery) []string {
	var out []*hale.AuditRecord
	for _, r := range recs {
		if !slices.ContainsFunc(q.Where, func(c hale.AuditCondition) bool { return !matches(r, c) }) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *hale.AuditRecord) int {
		c := a.Recorded.Compare(b.Recorded)
		if c == 0 {
			c = int(a.Seq - b.Seq)
		}
		if q.Desc {
			return -c
		}
		return c
	})
	var ids []string
	for _, r := range out {
		ids = append(ids, r.ID)
	}
	return ids
}

// searchAll follows q's pages (Count per page) and returns the ids.
func searchAll(t *testing.T, s hale.Store, q hale.AuditQuery) ([]string, int64) {
	t.Helper()
	ctx := context.Background()
	var ids []string
	total := int64(-1)
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("more than 100 pages")
		}
		var page *hale.AuditPage
		err := s.View(ctx, func(r hale.Reader) error {
			var err error
			page, err = r.(hale.AuditReader).SearchAudit(ctx, &q)
			return err
		})
		if err != nil {
			t.Fatalf("SearchAudit(%+v): %v", q, err)
		}
		if pages == 0 {
			total = page.Total
		}
		if len(page.Records) > q.Count {
			t.Fatalf("page of %d records, Count %d", len(page.Records), q.Count)
		}
		for _, r := range page.Records {
			if len(r.Data) == 0 {
				t.Fatalf("record %s without data", r.ID)
			}
			ids = append(ids, r.ID)
		}
		if page.Next == nil {
			return ids, total
		}
		q.After = page.Next
	}
}

func testAuditSearch(t *testing.T, s hale.Store, as hale.AuditStore) {
	recs := auditFixture()
	mustAppend(t, s, recs[:20]...)
	mustAppend(t, s, recs[20:]...)
	min := func(m int) int64 { return at0.Add(time.Duration(m) * time.Minute).UnixMicro() }
	cond := func(f hale.AuditField, vs ...string) hale.AuditCondition {
		return hale.AuditCondition{Field: f, Values: vs}
	}
	rng := func(lo, hi int64, not bool) hale.AuditCondition {
		return hale.AuditCondition{Field: hale.AuditRecorded, Ranges: []hale.AuditRange{{Lo: lo, Hi: hi, Not: not}}}
	}
	tests := []struct {
		name  string
		where []hale.AuditCondition
		min   int // matches expected at least (the fixture's sanity)
	}{
		{"all", nil, 40},
		{"id", []hale.AuditCondition{cond(hale.AuditID, "r03", "r17", "nope")}, 2},
		{"patient", []hale.AuditCondition{cond(hale.AuditEntity, "Patient/p1")}, 5},
		{"patient or patient", []hale.AuditCondition{cond(hale.AuditEntity, "Patient/p1", "Patient/p2")}, 10},
		{"two patients", []hale.AuditCondition{cond(hale.AuditEntity, "Patient/p0"), cond(hale.AuditEntity, "Patient/p9")}, 2},
		{"resource", []hale.AuditCondition{cond(hale.AuditEntity, "Observation/o12")}, 1},
		{"no such entity", []hale.AuditCondition{cond(hale.AuditEntity, "Patient/zz")}, 0},
		{"agent", []hale.AuditCondition{cond(hale.AuditAgent, "user/u2")}, 10},
		{"agent ref", []hale.AuditCondition{cond(hale.AuditAgentRef, "Practitioner/p1")}, 20},
		{"action", []hale.AuditCondition{cond(hale.AuditAction, "U", "C")}, 8},
		{"outcome", []hale.AuditCondition{cond(hale.AuditOutcome, "4")}, 5},
		{"type code", []hale.AuditCondition{cond(hale.AuditType, "110114")}, 8},
		{"type system|code", []hale.AuditCondition{cond(hale.AuditType, sysRest+"|rest")}, 30},
		{"type wrong system", []hale.AuditCondition{cond(hale.AuditType, sysDCM+"|rest")}, 0},
		{"subtype system|", []hale.AuditCondition{cond(hale.AuditSubtype, sysInt+"|")}, 30},
		{"subtype codes", []hale.AuditCondition{cond(hale.AuditSubtype, "read", "110122")}, 20},
		{"subtype prefix of a code", []hale.AuditCondition{cond(hale.AuditSubtype, "ead")}, 0},
		{"date range", []hale.AuditCondition{rng(min(30), min(80), false)}, 10},
		{"date open start", []hale.AuditCondition{rng(hale.MinTime, min(30), false)}, 6},
		{"date open end", []hale.AuditCondition{rng(min(150), hale.MaxTime, false)}, 10},
		{"date not", []hale.AuditCondition{rng(min(30), min(80), true)}, 30},
		{"date ranges or", []hale.AuditCondition{{Field: hale.AuditRecorded, Ranges: []hale.AuditRange{{Lo: min(0), Hi: min(10)}, {Lo: min(190), Hi: hale.MaxTime}}}}, 4},
		{"patient and dates", []hale.AuditCondition{cond(hale.AuditEntity, "Patient/p1"), rng(min(20), min(120), false), rng(min(50), hale.MaxTime, false)}, 2},
		{"patient agent action", []hale.AuditCondition{cond(hale.AuditEntity, "Patient/p2"), cond(hale.AuditAgent, "user/u1"), cond(hale.AuditAction, "R", "U")}, 2},
		{"no values", []hale.AuditCondition{cond(hale.AuditAgent)}, 0},
	}
	for _, tc := range tests {
		for _, desc := range []bool{false, true} {
			for _, count := range []int{1000, 3} {
				q := hale.AuditQuery{Where: tc.where, Desc: desc, Count: count, Total: true}
				want := expected(recs, &q)
				if len(want) < tc.min {
					t.Fatalf("%s: the fixture gives %d matches, want at least %d", tc.name, len(want), tc.min)
				}
				got, total := searchAll(t, s, q)
				if !slices.Equal(got, want) {
					t.Errorf("%s (desc %v, count %d):\n got %v\nwant %v", tc.name, desc, count, got, want)
				}
				if total != int64(len(want)) {
					t.Errorf("%s: Total %d, want %d", tc.name, total, len(want))
				}
			}
		}
		// Count 0: the total alone.
		q := hale.AuditQuery{Where: tc.where}
		err := s.View(context.Background(), func(r hale.Reader) error {
			page, err := r.(hale.AuditReader).SearchAudit(context.Background(), &q)
			if err == nil && (len(page.Records) != 0 || page.Total != int64(len(expected(recs, &q)))) {
				err = fmt.Errorf("Count 0: %d records, total %d", len(page.Records), page.Total)
			}
			return err
		})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// testAuditPagingStable pages through a patient's records, newest first
// and oldest first, while records are appended between the pages: every
// record that existed when paging began comes exactly once, in order.
func testAuditPagingStable(t *testing.T, s hale.Store, as hale.AuditStore) {
	recs := auditFixture()
	mustAppend(t, s, recs...)
	for _, desc := range []bool{true, false} {
		for _, where := range [][]hale.AuditCondition{nil, {{Field: hale.AuditEntity, Values: []string{"Patient/p1"}}}} {
			q := hale.AuditQuery{Where: where, Desc: desc, Count: 4}
			want := expected(recs, &q)
			var got []string
			extra := 0
			for pages := 0; pages < 50; pages++ {
				var page *hale.AuditPage
				err := s.View(context.Background(), func(r hale.Reader) error {
					var err error
					page, err = r.(hale.AuditReader).SearchAudit(context.Background(), &q)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range page.Records {
					got = append(got, r.ID)
				}
				if page.Next == nil {
					break
				}
				q.After = page.Next
				// New records, later than all others (the trail grows
				// at the end), and one at the very start's time.
				extra++
				mustAppend(t, s, auditRecord(fmt.Sprintf("new-%v-%d-%d", desc, len(where), extra), 1000+extra, "Patient/p1"),
					auditRecord(fmt.Sprintf("old-%v-%d-%d", desc, len(where), extra), 0, "Patient/p1"))
			}
			seen := map[string]bool{}
			var old []string
			for _, id := range got {
				if seen[id] {
					t.Fatalf("desc %v, %v: %s came twice", desc, where, id)
				}
				seen[id] = true
				if id[0] == 'r' {
					old = append(old, id)
				}
			}
			if !slices.Equal(old, want) {
				t.Errorf("desc %v, %v: the records present at the start came as\n%v\nwant\n%v", desc, where, old, want)
			}
		}
	}
}

// testAuditLargeBatch appends 450 records in one transaction, one of them
// naming 1,500 entities (a search page's patients): beyond any one
// statement's size.
func testAuditLargeBatch(t *testing.T, s hale.Store, as hale.AuditStore) {
	var recs []*hale.AuditRecord
	for i := range 450 {
		recs = append(recs, auditRecord(fmt.Sprintf("b%03d", i), i, fmt.Sprintf("Patient/p%d", i%7)))
	}
	for i := range 1500 {
		recs[200].Entities = append(recs[200].Entities, fmt.Sprintf("Observation/o%d", i))
	}
	mustAppend(t, s, recs...)
	sealAll(t, as, 100, testSign)
	links := checkChain(t, as)
	if len(links) != len(recs) {
		t.Fatalf("%d links, want %d", len(links), len(recs))
	}
	for i, l := range links {
		if err := sameRecord(l.Record, recs[i], true); err != nil {
			t.Fatalf("link %d: %v", l.N, err)
		}
	}
	for _, c := range []hale.AuditCondition{
		{Field: hale.AuditEntity, Values: []string{"Observation/o1499"}},
		{Field: hale.AuditEntity, Values: []string{"Patient/p4"}},
	} {
		q := hale.AuditQuery{Where: []hale.AuditCondition{c}, Count: 1000, Total: true}
		got, total := searchAll(t, s, q)
		if want := expected(recs, &q); !slices.Equal(got, want) || total != int64(len(want)) {
			t.Errorf("%v: %d records (total %d), want %d", c.Values, len(got), total, len(want))
		}
	}
}
