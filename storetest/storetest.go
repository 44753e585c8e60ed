// Package storetest is the conformance suite of the hale.Store contract.
// Every engine runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) hale.Store { return sqlitetest.Open(t) })
//	}
//
// The suite pins down what hale.go leaves to the engines in words: the
// exact round trip of a Version, KindNotFound and KindConflict, history
// order and filters, every form of Match, every form of a search Query
// (search.go), rollback, snapshot isolation, and the two concurrency
// guarantees the FHIR layer builds on (conditional create under Lock, and
// read-modify-write through Current).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

// Run runs every conformance test against stores made by open, which
// must return a new, empty store each time and close it at cleanup.
// Subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) hale.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s hale.Store)
	}{
		{"Engine", testEngine},
		{"PutCurrentVersion", testPutCurrentVersion},
		{"VersionsIncrement", testVersionsIncrement},
		{"Delete", testDelete},
		{"NotFound", testNotFound},
		{"PutConflict", testPutConflict},
		{"ConflictLeavesTxUsable", testConflictLeavesTxUsable},
		{"History", testHistory},
		{"HistoryAt", testHistoryAt},
		{"HistoryPaging", testHistoryPaging},
		{"Find", testFind},
		{"FindAfterWrites", testFindAfterWrites},
		{"FindOrderAndLimit", testFindOrderAndLimit},
		{"FindLongStrings", testFindLongStrings},
		{"Count", testCount},
		{"UpdateRollback", testUpdateRollback},
		{"UpdatePanicRollsBack", testUpdatePanicRollsBack},
		{"ViewSnapshot", testViewSnapshot},
		{"ReadOwnWrites", testReadOwnWrites},
		{"ConcurrentConditionalCreate", testConcurrentConditionalCreate},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"SearchToken", testSearchToken},
		{"SearchString", testSearchString},
		{"SearchURI", testSearchURI},
		{"SearchReference", testSearchReference},
		{"SearchID", testSearchID},
		{"SearchDate", testSearchDate},
		{"SearchLastUpdated", testSearchLastUpdated},
		{"SearchNumber", testSearchNumber},
		{"SearchQuantity", testSearchQuantity},
		{"SearchChain", testSearchChain},
		{"SearchHas", testSearchHas},
		{"SearchOr", testSearchOr},
		{"SearchComposite", testSearchComposite},
		{"SearchSort", testSearchSort},
		{"SearchPagingWhileWriting", testSearchPagingWhileWriting},
		{"SearchWriteOrder", testSearchWriteOrder},
		{"SearchWriteOrderWhileWriting", testSearchWriteOrderWhileWriting},
		{"SearchTotal", testSearchTotal},
		{"SearchTypes", testSearchTypes},
		{"SearchAfterWrites", testSearchAfterWrites},
		{"SearchInTx", testSearchInTx},
		{"SearchErrors", testSearchErrors},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// t0 is the suite's epoch; versions are written at t0 plus whole seconds.
var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// at returns t0 plus seconds.
func at(seconds float64) time.Time {
	return t0.Add(time.Duration(seconds * float64(time.Second)))
}

// version builds version n of typ/id written at t0+sec, with JSON data.
func version(typ, id string, n int64, sec float64) *hale.Version {
	data := fmt.Sprintf(`{"resourceType":%q,"id":%q,"meta":{"versionId":"%d"},"note":"Grüße\u00e9"}`+"\n", typ, id, n)
	method := "PUT"
	if n == 1 {
		method = "POST"
	}
	return &hale.Version{Type: typ, ID: id, VersionID: n, LastUpdated: at(sec), Method: method, Data: []byte(data)}
}

// deletion builds version n of typ/id as a delete written at t0+sec.
func deletion(typ, id string, n int64, sec float64) *hale.Version {
	return &hale.Version{Type: typ, ID: id, VersionID: n, LastUpdated: at(sec), Method: "DELETE", Deleted: true}
}

// mustPut stores v with idx in its own Update and returns v, whose Seq
// Put has set.
func mustPut(t testing.TB, s hale.Store, v *hale.Version, idx *hale.Index) *hale.Version {
	t.Helper()
	if err := s.Update(context.Background(), func(tx hale.Tx) error { return tx.Put(context.Background(), v, idx) }); err != nil {
		t.Fatalf("put %s/%s/%d: %v", v.Type, v.ID, v.VersionID, err)
	}
	if v.Seq <= 0 {
		t.Fatalf("put %s/%s/%d: Seq = %d, want > 0", v.Type, v.ID, v.VersionID, v.Seq)
	}
	return v
}

// mustView runs fn in a View and fails the test on an error.
func mustView(t testing.TB, s hale.Store, fn func(r hale.Reader) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

// current reads the current version through a View.
func current(t testing.TB, s hale.Store, typ, id string) *hale.Version {
	t.Helper()
	var v *hale.Version
	mustView(t, s, func(r hale.Reader) (err error) {
		v, err = r.Current(context.Background(), typ, id)
		return err
	})
	return v
}

// checkVersion compares every field of got with want.
func checkVersion(t testing.TB, got, want *hale.Version) {
	t.Helper()
	if got == nil {
		t.Fatalf("got no version, want %s", label(*want))
	}
	if got.Type != want.Type || got.ID != want.ID || got.VersionID != want.VersionID ||
		got.Deleted != want.Deleted || got.Method != want.Method || got.Seq != want.Seq {
		t.Errorf("got %+v\nwant %+v", brief(got), brief(want))
	}
	if !got.LastUpdated.Equal(want.LastUpdated) || got.LastUpdated.Location() != time.UTC {
		t.Errorf("%s: LastUpdated = %v, want %v in UTC", label(*want), got.LastUpdated, want.LastUpdated)
	}
	wantData := want.Data
	if want.Deleted {
		wantData = nil
	}
	if !bytes.Equal(got.Data, wantData) || (got.Data == nil) != (wantData == nil) {
		t.Errorf("%s: Data = %q, want %q", label(*want), got.Data, wantData)
	}
}

// brief is a Version without its data, for messages.
func brief(v *hale.Version) hale.Version { w := *v; w.Data = nil; return w }

// label names a version "Type/id/n".
func label(v hale.Version) string { return fmt.Sprintf("%s/%s/%d", v.Type, v.ID, v.VersionID) }

func labels(vs []hale.Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = label(v)
	}
	return out
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testEngine(t *testing.T, s hale.Store) {
	if s.Engine() == "" {
		t.Error("Engine() is empty")
	}
}

func testPutCurrentVersion(t *testing.T, s hale.Store) {
	v := version("Patient", "p1", 1, 1)
	// Microseconds survive the round trip (FHIR instants have at most
	// that precision in practice).
	v.LastUpdated = v.LastUpdated.Add(123456 * time.Microsecond)
	mustPut(t, s, v, nil)
	checkVersion(t, current(t, s, "Patient", "p1"), v)
	mustView(t, s, func(r hale.Reader) error {
		got, err := r.Version(context.Background(), "Patient", "p1", 1)
		if err != nil {
			return err
		}
		checkVersion(t, got, v)
		return nil
	})
	// A LastUpdated in another zone is the same instant, read back in UTC.
	w := version("Patient", "p1", 2, 2)
	w.LastUpdated = w.LastUpdated.In(time.FixedZone("X", 5*3600))
	mustPut(t, s, w, nil)
	checkVersion(t, current(t, s, "Patient", "p1"), w)
}

func testVersionsIncrement(t *testing.T, s hale.Store) {
	var vs []*hale.Version
	for n := int64(1); n <= 3; n++ {
		vs = append(vs, mustPut(t, s, version("Patient", "p1", n, float64(n)), nil))
	}
	for i := 1; i < len(vs); i++ {
		if vs[i].Seq <= vs[i-1].Seq {
			t.Errorf("Seq of version %d = %d, not above version %d's %d", i+1, vs[i].Seq, i, vs[i-1].Seq)
		}
	}
	checkVersion(t, current(t, s, "Patient", "p1"), vs[2])
	mustView(t, s, func(r hale.Reader) error {
		for _, want := range vs {
			got, err := r.Version(context.Background(), "Patient", "p1", want.VersionID)
			if err != nil {
				return err
			}
			checkVersion(t, got, want)
		}
		return nil
	})
}

func testDelete(t *testing.T, s hale.Store) {
	ctx := context.Background()
	idx := &hale.Index{Tokens: []hale.TokenValue{{Param: "gender", Code: "male"}}}
	v1 := mustPut(t, s, version("Patient", "p1", 1, 1), idx)
	// Data on a delete is ignored: a deleted version has none.
	del := deletion("Patient", "p1", 2, 2)
	del.Data = []byte(`{"ignored":true}`)
	mustPut(t, s, del, idx)
	got := current(t, s, "Patient", "p1")
	checkVersion(t, got, del)
	if got.Data != nil {
		t.Errorf("deleted version has Data %q", got.Data)
	}
	gender := []hale.Match{{Param: "gender", Kind: hale.MatchToken, Values: []hale.MatchValue{{Code: "male"}}}}
	mustView(t, s, func(r hale.Reader) error {
		old, err := r.Version(ctx, "Patient", "p1", 1)
		if err != nil {
			return err
		}
		checkVersion(t, old, v1)
		if ids, err := r.Find(ctx, "Patient", gender, 0); err != nil || len(ids) != 0 {
			t.Errorf("Find after delete = %v, %v; want none", ids, err)
		}
		if ids, err := r.Find(ctx, "Patient", nil, 0); err != nil || len(ids) != 0 {
			t.Errorf("Find all after delete = %v, %v; want none", ids, err)
		}
		if n, err := r.Count(ctx, "Patient"); err != nil || n != 0 {
			t.Errorf("Count after delete = %d, %v; want 0", n, err)
		}
		return nil
	})
	// A resource can be created again after a delete, as version 3.
	v3 := mustPut(t, s, version("Patient", "p1", 3, 3), idx)
	checkVersion(t, current(t, s, "Patient", "p1"), v3)
	mustView(t, s, func(r hale.Reader) error {
		if ids, err := r.Find(ctx, "Patient", gender, 0); err != nil || !equal(ids, []string{"p1"}) {
			t.Errorf("Find after re-create = %v, %v; want [p1]", ids, err)
		}
		return nil
	})
}

func testNotFound(t *testing.T, s hale.Store) {
	ctx := context.Background()
	mustPut(t, s, version("Patient", "p1", 1, 1), nil)
	check := func(r hale.Reader) error {
		if _, err := r.Current(ctx, "Patient", "nope"); !hale.IsKind(err, hale.KindNotFound) {
			t.Errorf("Current of a missing resource: err = %v, want kind not-found", err)
		}
		if _, err := r.Current(ctx, "Observation", "p1"); !hale.IsKind(err, hale.KindNotFound) {
			t.Errorf("Current with the wrong type: err = %v, want kind not-found", err)
		}
		if _, err := r.Version(ctx, "Patient", "p1", 2); !hale.IsKind(err, hale.KindNotFound) {
			t.Errorf("Version 2 of a resource at version 1: err = %v, want kind not-found", err)
		}
		if _, err := r.Version(ctx, "Patient", "nope", 1); !hale.IsKind(err, hale.KindNotFound) {
			t.Errorf("Version of a missing resource: err = %v, want kind not-found", err)
		}
		if vs, err := r.History(ctx, hale.HistoryQuery{Type: "Patient", ID: "nope"}); err != nil || len(vs) != 0 {
			t.Errorf("History of a missing resource = %v, %v; want none, no error", labels(vs), err)
		}
		return nil
	}
	mustView(t, s, check)
	if err := s.Update(ctx, func(tx hale.Tx) error { return check(tx) }); err != nil {
		t.Fatal(err)
	}
}

func testPutConflict(t *testing.T, s hale.Store) {
	ctx := context.Background()
	v1 := mustPut(t, s, version("Patient", "p1", 1, 1), nil)
	v2 := mustPut(t, s, version("Patient", "p1", 2, 2), nil)
	for _, n := range []int64{1, 2} {
		dup := version("Patient", "p1", n, 3)
		dup.Data = []byte(`{"resourceType":"Patient","id":"p1","dup":true}`)
		err := s.Update(ctx, func(tx hale.Tx) error { return tx.Put(ctx, dup, nil) })
		if !hale.IsKind(err, hale.KindConflict) {
			t.Errorf("Put of existing version %d: err = %v, want kind conflict", n, err)
		}
	}
	checkVersion(t, current(t, s, "Patient", "p1"), v2)
	mustView(t, s, func(r hale.Reader) error {
		got, err := r.Version(ctx, "Patient", "p1", 1)
		if err != nil {
			return err
		}
		checkVersion(t, got, v1)
		return nil
	})
}

// testConflictLeavesTxUsable: a conflict fails the Put, not the
// transaction, in every engine; fn may handle it and go on.
func testConflictLeavesTxUsable(t *testing.T, s hale.Store) {
	ctx := context.Background()
	mustPut(t, s, version("Patient", "p1", 1, 1), nil)
	other := version("Patient", "p2", 1, 2)
	err := s.Update(ctx, func(tx hale.Tx) error {
		if err := tx.Put(ctx, version("Patient", "p1", 1, 2), nil); !hale.IsKind(err, hale.KindConflict) {
			return fmt.Errorf("duplicate Put: err = %v, want kind conflict", err)
		}
		return tx.Put(ctx, other, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	checkVersion(t, current(t, s, "Patient", "p2"), other)
	if got := current(t, s, "Patient", "p1"); got.VersionID != 1 {
		t.Errorf("p1 at version %d, want 1", got.VersionID)
	}
}

func testCount(t *testing.T, s hale.Store) {
	ctx := context.Background()
	count := func(typ string) int64 {
		var n int64
		mustView(t, s, func(r hale.Reader) (err error) { n, err = r.Count(ctx, typ); return err })
		return n
	}
	if n := count(""); n != 0 {
		t.Errorf("Count of an empty store = %d", n)
	}
	mustPut(t, s, version("Patient", "p1", 1, 1), nil)
	mustPut(t, s, version("Patient", "p1", 2, 2), nil)
	mustPut(t, s, version("Patient", "p2", 1, 3), nil)
	mustPut(t, s, version("Observation", "o1", 1, 4), nil)
	mustPut(t, s, version("Observation", "o2", 1, 5), nil)
	mustPut(t, s, deletion("Observation", "o2", 2, 6), nil)
	for typ, want := range map[string]int64{"Patient": 2, "Observation": 1, "Encounter": 0, "": 3} {
		if n := count(typ); n != want {
			t.Errorf("Count(%q) = %d, want %d", typ, n, want)
		}
	}
}

var errSentinel = errors.New("storetest: fn failed")

func testUpdateRollback(t *testing.T, s hale.Store) {
	ctx := context.Background()
	mustPut(t, s, version("Patient", "p1", 1, 1), nil)
	idx := &hale.Index{Tokens: []hale.TokenValue{{Param: "gender", Code: "female"}}}
	err := s.Update(ctx, func(tx hale.Tx) error {
		if err := tx.Put(ctx, version("Patient", "p1", 2, 2), idx); err != nil {
			return err
		}
		if err := tx.Put(ctx, version("Patient", "p2", 1, 2), idx); err != nil {
			return err
		}
		return errSentinel
	})
	if err != errSentinel {
		t.Fatalf("Update returned %v, want fn's error as is", err)
	}
	if err := s.View(ctx, func(hale.Reader) error { return errSentinel }); err != errSentinel {
		t.Errorf("View returned %v, want fn's error as is", err)
	}
	mustView(t, s, func(r hale.Reader) error {
		if v, err := r.Current(ctx, "Patient", "p1"); err != nil || v.VersionID != 1 {
			t.Errorf("after rollback p1 = %v, %v; want version 1", v, err)
		}
		if _, err := r.Current(ctx, "Patient", "p2"); !hale.IsKind(err, hale.KindNotFound) {
			t.Errorf("after rollback p2: err = %v, want kind not-found", err)
		}
		if vs, err := r.History(ctx, hale.HistoryQuery{}); err != nil || len(vs) != 1 {
			t.Errorf("after rollback history = %v, %v; want only p1/1", labels(vs), err)
		}
		ids, err := r.Find(ctx, "Patient", []hale.Match{{Param: "gender", Kind: hale.MatchToken,
			Values: []hale.MatchValue{{Code: "female"}}}}, 0)
		if err != nil || len(ids) != 0 {
			t.Errorf("after rollback Find = %v, %v; want none", ids, err)
		}
		if n, err := r.Count(ctx, ""); err != nil || n != 1 {
			t.Errorf("after rollback Count = %d, %v; want 1", n, err)
		}
		return nil
	})
}

// testUpdatePanicRollsBack: a panic in fn propagates, rolls back, and
// leaves the store usable (an engine with one writer must release it).
func testUpdatePanicRollsBack(t *testing.T, s hale.Store) {
	ctx := context.Background()
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Update swallowed fn's panic")
			}
		}()
		s.Update(ctx, func(tx hale.Tx) error {
			if err := tx.Put(ctx, version("Patient", "p1", 1, 1), nil); err != nil {
				return err
			}
			panic("storetest: boom")
		})
	}()
	mustView(t, s, func(r hale.Reader) error {
		if _, err := r.Current(ctx, "Patient", "p1"); !hale.IsKind(err, hale.KindNotFound) {
			t.Errorf("after panic p1: err = %v, want kind not-found", err)
		}
		return nil
	})
	mustPut(t, s, version("Patient", "p1", 1, 2), nil)
}

// testViewSnapshot: a View sees the store as it was at its first read,
// whatever commits after it. (When a commit lands between View and the
// first read, either state is a consistent snapshot; PostgreSQL's takes
// the later one, saving a round trip: postgres/view.go.)
func testViewSnapshot(t *testing.T, s hale.Store) {
	ctx := context.Background()
	v1 := mustPut(t, s, version("Patient", "p1", 1, 1), nil)
	commit := func() {
		err := s.Update(ctx, func(tx hale.Tx) error {
			if err := tx.Put(ctx, version("Patient", "p1", 2, 2), nil); err != nil {
				return err
			}
			return tx.Put(ctx, version("Patient", "p2", 1, 2), nil)
		})
		if err != nil {
			t.Errorf("concurrent update: %v", err)
		}
	}
	mustView(t, s, func(r hale.Reader) error {
		if _, err := r.Version(ctx, "Patient", "p1", 1); err != nil {
			return err
		}
		// Run the commit on another goroutine, as a concurrent request would.
		done := make(chan struct{})
		go func() { defer close(done); commit() }()
		<-done
		got, err := r.Current(ctx, "Patient", "p1")
		if err != nil {
			return err
		}
		checkVersion(t, got, v1)
		if ids, err := r.Find(ctx, "Patient", nil, 0); err != nil || !equal(ids, []string{"p1"}) {
			t.Errorf("Find in the snapshot = %v, %v; want [p1]", ids, err)
		}
		if n, err := r.Count(ctx, "Patient"); err != nil || n != 1 {
			t.Errorf("Count in the snapshot = %d, %v; want 1", n, err)
		}
		if vs, err := r.History(ctx, hale.HistoryQuery{}); err != nil || len(vs) != 1 {
			t.Errorf("History in the snapshot = %v, %v; want [Patient/p1/1]", labels(vs), err)
		}
		return nil
	})
	if got := current(t, s, "Patient", "p1"); got.VersionID != 2 {
		t.Errorf("after the view p1 is at version %d, want 2", got.VersionID)
	}
}

// testReadOwnWrites: every read through a Tx sees the Tx's own writes.
func testReadOwnWrites(t *testing.T, s hale.Store) {
	ctx := context.Background()
	idx := &hale.Index{Strings: []hale.StringValue{{Param: "name", Norm: "eve", Exact: "Eve"}}}
	byName := []hale.Match{{Param: "name", Kind: hale.MatchString, Values: []hale.MatchValue{{Code: "ev"}}}}
	err := s.Update(ctx, func(tx hale.Tx) error {
		v1 := version("Patient", "p1", 1, 1)
		if err := tx.Put(ctx, v1, idx); err != nil {
			return err
		}
		got, err := tx.Current(ctx, "Patient", "p1")
		if err != nil {
			return err
		}
		checkVersion(t, got, v1)
		if got, err = tx.Version(ctx, "Patient", "p1", 1); err != nil {
			return err
		}
		checkVersion(t, got, v1)
		if ids, err := tx.Find(ctx, "Patient", byName, 0); err != nil || !equal(ids, []string{"p1"}) {
			t.Errorf("Find in the tx = %v, %v; want [p1]", ids, err)
		}
		if n, err := tx.Count(ctx, "Patient"); err != nil || n != 1 {
			t.Errorf("Count in the tx = %d, %v; want 1", n, err)
		}
		if vs, err := tx.History(ctx, hale.HistoryQuery{Type: "Patient", ID: "p1"}); err != nil || len(vs) != 1 {
			t.Errorf("History in the tx = %v, %v; want [Patient/p1/1]", labels(vs), err)
		}
		if err := tx.Put(ctx, deletion("Patient", "p1", 2, 2), nil); err != nil {
			return err
		}
		if got, err := tx.Current(ctx, "Patient", "p1"); err != nil || !got.Deleted {
			t.Errorf("Current after a delete in the tx = %+v, %v; want deleted", got, err)
		}
		if ids, err := tx.Find(ctx, "Patient", byName, 0); err != nil || len(ids) != 0 {
			t.Errorf("Find after a delete in the tx = %v, %v; want none", ids, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
