package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

// RunRecords runs the conformance tests of hale.Records (records.go).
// open returns n handles on one new, empty database (n separately opened
// stores, as n processes or nodes would have), closed when the test
// ends; each must implement hale.Records.
func RunRecords(t *testing.T, open func(t *testing.T, n int) []hale.Store) {
	tests := []struct {
		name    string
		handles int
		fn      func(t *testing.T, s []hale.Records)
	}{
		{"CreateGet", 1, testRecordCreateGet},
		{"CompareAndSwap", 1, testRecordCAS},
		{"Delete", 1, testRecordDelete},
		{"List", 1, testRecordList},
		{"DeleteExpired", 1, testRecordDeleteExpired},
		{"BadKeys", 1, testRecordBadKeys},
		{"ConcurrentCAS", 2, testRecordConcurrentCAS},
		{"ConcurrentCreate", 2, testRecordConcurrentCreate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var rs []hale.Records
			for _, s := range open(t, tc.handles) {
				r, ok := s.(hale.Records)
				if !ok {
					t.Fatalf("%s store does not implement hale.Records", s.Engine())
				}
				rs = append(rs, r)
			}
			tc.fn(t, rs)
		})
	}
}

func mustPutRecord(t *testing.T, s hale.Records, r *hale.Record) {
	t.Helper()
	if err := s.PutRecord(context.Background(), r); err != nil {
		t.Fatalf("PutRecord %s/%s at %d: %v", r.Kind, r.Key, r.Version, err)
	}
}

func testRecordCreateGet(t *testing.T, rs []hale.Records) {
	s, ctx := rs[0], context.Background()
	_, err := s.GetRecord(ctx, "user", "u1")
	wantKind(t, "Get before Put", err, hale.KindNotFound)

	r := &hale.Record{Kind: "user", Key: "u1", Data: []byte(`{"name":"a"}`), Expires: jt0.Add(time.Hour)}
	mustPutRecord(t, s, r)
	if r.Version != 1 || r.Updated.IsZero() {
		t.Fatalf("after create: version %d updated %v, want 1 and a time", r.Version, r.Updated)
	}
	got, err := s.GetRecord(ctx, "user", "u1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != "user" || got.Key != "u1" || got.Version != 1 || !bytes.Equal(got.Data, r.Data) ||
		!got.Expires.Equal(r.Expires) || !got.Updated.Equal(r.Updated) {
		t.Fatalf("got %+v, want %+v", got, r)
	}
	// Another kind is another namespace.
	_, err = s.GetRecord(ctx, "session", "u1")
	wantKind(t, "Get in another kind", err, hale.KindNotFound)

	// Create-if-absent refuses an existing record and changes nothing.
	dup := &hale.Record{Kind: "user", Key: "u1", Data: []byte("other")}
	wantKind(t, "second create", s.PutRecord(ctx, dup), hale.KindConflict)
	got, _ = s.GetRecord(ctx, "user", "u1")
	if got.Version != 1 || string(got.Data) != `{"name":"a"}` {
		t.Fatalf("a refused create changed the record: %+v", got)
	}

	// No expiry and empty data round-trip.
	r2 := &hale.Record{Kind: "user", Key: "u2"}
	mustPutRecord(t, s, r2)
	got, _ = s.GetRecord(ctx, "user", "u2")
	if !got.Expires.IsZero() || got.Data == nil || len(got.Data) != 0 {
		t.Fatalf("u2: expires %v data %q, want zero and empty", got.Expires, got.Data)
	}
}

func testRecordCAS(t *testing.T, rs []hale.Records) {
	s, ctx := rs[0], context.Background()
	r := &hale.Record{Kind: "lock", Key: "alice", Data: []byte("1")}
	mustPutRecord(t, s, r)
	r.Data = []byte("2")
	mustPutRecord(t, s, r) // replaces version 1
	if r.Version != 2 {
		t.Fatalf("version %d after replace, want 2", r.Version)
	}
	stale := &hale.Record{Kind: "lock", Key: "alice", Version: 1, Data: []byte("stale")}
	wantKind(t, "replace of an old version", s.PutRecord(ctx, stale), hale.KindConflict)
	future := &hale.Record{Kind: "lock", Key: "alice", Version: 3, Data: []byte("future")}
	wantKind(t, "replace of a version not there yet", s.PutRecord(ctx, future), hale.KindConflict)
	absent := &hale.Record{Kind: "lock", Key: "bob", Version: 1, Data: []byte("x")}
	wantKind(t, "replace of an absent record", s.PutRecord(ctx, absent), hale.KindConflict)
	if _, err := s.GetRecord(ctx, "lock", "bob"); !hale.IsKind(err, hale.KindNotFound) {
		t.Fatalf("a refused replace created the record: %v", err)
	}
	got, _ := s.GetRecord(ctx, "lock", "alice")
	if got.Version != 2 || string(got.Data) != "2" {
		t.Fatalf("got version %d data %q, want 2 and \"2\"", got.Version, got.Data)
	}
	// Expires can be cleared by a replace.
	got.Expires = time.Time{}
	mustPutRecord(t, s, got)
	got, _ = s.GetRecord(ctx, "lock", "alice")
	if got.Version != 3 || !got.Expires.IsZero() {
		t.Fatalf("got %+v, want version 3 without expiry", got)
	}
}

func testRecordDelete(t *testing.T, rs []hale.Records) {
	s, ctx := rs[0], context.Background()
	wantKind(t, "delete of nothing", s.DeleteRecord(ctx, "reset", "c1", 0), hale.KindNotFound)
	r := &hale.Record{Kind: "reset", Key: "c1", Data: []byte("u1")}
	mustPutRecord(t, s, r)
	wantKind(t, "delete at another version", s.DeleteRecord(ctx, "reset", "c1", 2), hale.KindConflict)
	if err := s.DeleteRecord(ctx, "reset", "c1", 1); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "second delete", s.DeleteRecord(ctx, "reset", "c1", 1), hale.KindNotFound)
	_, err := s.GetRecord(ctx, "reset", "c1")
	wantKind(t, "Get after delete", err, hale.KindNotFound)
	// Deleted, the key can be created again, at version 1.
	r = &hale.Record{Kind: "reset", Key: "c1"}
	mustPutRecord(t, s, r)
	if r.Version != 1 {
		t.Fatalf("re-created at version %d", r.Version)
	}
	if err := s.DeleteRecord(ctx, "reset", "c1", 0); err != nil {
		t.Fatal(err)
	}
}

func testRecordList(t *testing.T, rs []hale.Records) {
	s, ctx := rs[0], context.Background()
	keys := []string{"a/1", "a/2", "a/3", "a0", "b/1", "é/1", "A/1"}
	for _, k := range keys {
		mustPutRecord(t, s, &hale.Record{Kind: "session", Key: k, Data: []byte(k)})
	}
	mustPutRecord(t, s, &hale.Record{Kind: "other", Key: "a/9"})
	list := func(prefix, after string, limit int) string {
		t.Helper()
		page, err := s.ListRecords(ctx, "session", prefix, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range page {
			if string(r.Data) != r.Key || r.Kind != "session" || r.Version != 1 {
				t.Fatalf("listed %+v", r)
			}
			out = append(out, r.Key)
		}
		return fmt.Sprint(out)
	}
	for _, c := range []struct {
		prefix, after string
		limit         int
		want          string
	}{
		{"", "", 0, "[A/1 a/1 a/2 a/3 a0 b/1 é/1]"}, // byte order
		{"a/", "", 10, "[a/1 a/2 a/3]"},
		{"a/", "", 2, "[a/1 a/2]"},
		{"a/", "a/2", 2, "[a/3]"},
		{"a/", "a/3", 2, "[]"},
		{"a", "", 10, "[a/1 a/2 a/3 a0]"},
		{"", "a0", 10, "[b/1 é/1]"},
		{"c", "", 10, "[]"},
		{"é", "", 10, "[é/1]"},
	} {
		if got := list(c.prefix, c.after, c.limit); got != c.want {
			t.Errorf("ListRecords(prefix %q, after %q, limit %d) = %s, want %s", c.prefix, c.after, c.limit, got, c.want)
		}
	}
}

func testRecordDeleteExpired(t *testing.T, rs []hale.Records) {
	s, ctx := rs[0], context.Background()
	mustPutRecord(t, s, &hale.Record{Kind: "jti", Key: "old", Expires: jt0})
	mustPutRecord(t, s, &hale.Record{Kind: "jti", Key: "new", Expires: jt0.Add(time.Minute)})
	mustPutRecord(t, s, &hale.Record{Kind: "jti", Key: "never"})
	// Expired but not swept: still there (readers compare Expires).
	if _, err := s.GetRecord(ctx, "jti", "old"); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpiredRecords(ctx, jt0)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredRecords at expiry: %d, %v; want 1", n, err)
	}
	_, err = s.GetRecord(ctx, "jti", "old")
	wantKind(t, "Get after sweep", err, hale.KindNotFound)
	n, err = s.DeleteExpiredRecords(ctx, jt0.Add(time.Minute-time.Microsecond))
	if err != nil || n != 0 {
		t.Fatalf("DeleteExpiredRecords before expiry: %d, %v; want 0", n, err)
	}
	n, _ = s.DeleteExpiredRecords(ctx, jt0.Add(24*time.Hour))
	if n != 1 {
		t.Fatalf("swept %d, want 1 (never-expiring records stay)", n)
	}
	if _, err := s.GetRecord(ctx, "jti", "never"); err != nil {
		t.Fatal(err)
	}
}

func testRecordBadKeys(t *testing.T, rs []hale.Records) {
	s, ctx := rs[0], context.Background()
	long := string(bytes.Repeat([]byte("k"), hale.MaxRecordKey+1))
	for _, r := range []*hale.Record{{Kind: "", Key: "k"}, {Kind: "k", Key: ""}, {Kind: "k", Key: long}, {Kind: long, Key: "k"}} {
		wantKind(t, fmt.Sprintf("PutRecord(%.10q, %.10q)", r.Kind, r.Key), s.PutRecord(ctx, r), hale.KindInvalid)
	}
	mustPutRecord(t, s, &hale.Record{Kind: "k", Key: long[:hale.MaxRecordKey]})
}

// testRecordConcurrentCAS: workers on two handles (two processes or
// nodes) increment one counter by read-modify-write, retrying when they
// lose; every increment must count exactly once, and of the writers
// racing for one version exactly one wins.
func testRecordConcurrentCAS(t *testing.T, rs []hale.Records) {
	ctx := context.Background()
	mustPutRecord(t, rs[0], &hale.Record{Kind: "counter", Key: "c", Data: []byte("0")})
	const workers, each = 8, 10
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		wins   = map[int64]int{} // version written → winners
		errs   = make(chan error, workers)
		losses int
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := rs[w%len(rs)]
			for range each {
				for {
					r, err := s.GetRecord(ctx, "counter", "c")
					if err != nil {
						errs <- err
						return
					}
					var n int
					fmt.Sscan(string(r.Data), &n)
					r.Data = []byte(fmt.Sprint(n + 1))
					err = s.PutRecord(ctx, r)
					if hale.IsKind(err, hale.KindConflict) {
						mu.Lock()
						losses++
						mu.Unlock()
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					wins[r.Version]++
					mu.Unlock()
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, _ := rs[1].GetRecord(ctx, "counter", "c")
	if string(got.Data) != fmt.Sprint(workers*each) || got.Version != workers*each+1 {
		t.Fatalf("counter %s at version %d, want %d at %d", got.Data, got.Version, workers*each, workers*each+1)
	}
	for v, n := range wins {
		if n != 1 {
			t.Errorf("version %d written by %d winners", v, n)
		}
	}
	t.Logf("concurrent compare-and-swap: %d increments, %d lost races retried, double wins: 0", workers*each, losses)
}

// testRecordConcurrentCreate: many creators of one key (a jti, a one-time
// code) on two handles; exactly one wins.
func testRecordConcurrentCreate(t *testing.T, rs []hale.Records) {
	ctx := context.Background()
	const creators = 16
	var wg sync.WaitGroup
	results := make(chan error, creators)
	for i := range creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- rs[i%len(rs)].PutRecord(ctx, &hale.Record{Kind: "jti", Key: "once", Data: []byte(fmt.Sprint(i))})
		}()
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !hale.IsKind(err, hale.KindConflict):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creators of one key won, want exactly 1", won)
	}
}
