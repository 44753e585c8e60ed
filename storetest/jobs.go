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

// RunJobs runs the conformance tests of hale.JobStore (jobs.go) against
// stores made by open, which must implement it. It is separate from Run so
// that each engine's jobs_test.go runs it.
func RunJobs(t *testing.T, open func(t *testing.T) hale.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s hale.JobStore)
	}{
		{"CreateGet", testJobCreateGet},
		{"Claim", testJobClaim},
		{"LeaseTakeover", testJobLeaseTakeover},
		{"ConcurrentClaims", testJobConcurrentClaims},
		{"Files", testJobFiles},
		{"InterruptedFileDiscarded", testJobInterruptedFile},
		{"Cancel", testJobCancel},
		{"DeleteExpired", testJobDeleteExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			js, ok := s.(hale.JobStore)
			if !ok {
				t.Fatalf("%s store does not implement hale.JobStore", s.Engine())
			}
			tc.fn(t, js)
		})
	}
}

// jt0 is the jobs tests' clock: a fixed instant with microseconds.
var jt0 = time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)

func newJob(id string, created time.Time) *hale.Job {
	return &hale.Job{ID: id, Kind: "export", Owner: "client-1", Request: "https://ehr.example/fhir/$export?_type=Patient",
		Params: []byte(`{"types":["Patient"]}`), Created: created}
}

func mustCreate(t *testing.T, s hale.JobStore, j *hale.Job) {
	t.Helper()
	if err := s.CreateJob(context.Background(), j); err != nil {
		t.Fatalf("CreateJob %s: %v", j.ID, err)
	}
}

func mustClaim(t *testing.T, s hale.JobStore, node string, now time.Time, lease time.Duration) *hale.Job {
	t.Helper()
	j, err := s.ClaimJob(context.Background(), "export", node, now, lease)
	if err != nil {
		t.Fatalf("ClaimJob: %v", err)
	}
	return j
}

func wantKind(t *testing.T, what string, err error, k hale.Kind) {
	t.Helper()
	if !hale.IsKind(err, k) {
		t.Fatalf("%s: got %v, want kind %v", what, err, k)
	}
}

func testJobCreateGet(t *testing.T, s hale.JobStore) {
	ctx := context.Background()
	j := newJob("job1", jt0)
	j.Expires = jt0.Add(48 * time.Hour)
	mustCreate(t, s, j)
	got, err := s.GetJob(ctx, "job1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "job1" || got.Kind != "export" || got.Owner != "client-1" || got.Request != j.Request ||
		!bytes.Equal(got.Params, j.Params) || got.Status != hale.JobQueued || !got.Created.Equal(jt0) ||
		!got.Expires.Equal(j.Expires) || got.Claims != 0 || got.Checkpoint != nil || got.Node != "" {
		t.Fatalf("GetJob = %+v, want what was created: %+v", got, j)
	}
	wantKind(t, "CreateJob of an existing id", s.CreateJob(ctx, newJob("job1", jt0)), hale.KindConflict)
	_, err = s.GetJob(ctx, "nope")
	wantKind(t, "GetJob of an unknown id", err, hale.KindNotFound)

	// A job without Expires is never scheduled for deletion.
	mustCreate(t, s, newJob("job2", jt0))
	if got, _ := s.GetJob(ctx, "job2"); got == nil || !got.Expires.IsZero() {
		t.Fatalf("job2 Expires = %v, want zero", got)
	}
}

func testJobClaim(t *testing.T, s hale.JobStore) {
	ctx := context.Background()
	if j := mustClaim(t, s, "n1", jt0, time.Minute); j != nil {
		t.Fatalf("claim on an empty store = %+v, want nil", j)
	}
	mustCreate(t, s, newJob("later", jt0.Add(time.Second)))
	mustCreate(t, s, newJob("first", jt0))
	other := newJob("import1", jt0.Add(-time.Hour))
	other.Kind = "import"
	mustCreate(t, s, other)

	now := jt0.Add(time.Minute)
	j := mustClaim(t, s, "n1", now, 30*time.Second)
	if j == nil || j.ID != "first" || j.Status != hale.JobRunning || j.Node != "n1" || j.Claims != 1 ||
		!j.LeaseUntil.Equal(now.Add(30*time.Second)) || !j.Updated.Equal(now) {
		t.Fatalf("first claim = %+v, want job first, running on n1 under claim 1", j)
	}
	if j2 := mustClaim(t, s, "n2", now, 30*time.Second); j2 == nil || j2.ID != "later" {
		t.Fatalf("second claim = %+v, want job later", j2)
	}
	if j3 := mustClaim(t, s, "n3", now.Add(29*time.Second), 30*time.Second); j3 != nil {
		t.Fatalf("claim while every lease holds = %+v, want nil (the import job is another kind)", j3)
	}

	// Progress, checkpoint and lease renewal.
	j.Progress, j.Checkpoint = "50%", []byte(`{"step":3}`)
	j.Updated, j.LeaseUntil = now.Add(10*time.Second), now.Add(70*time.Second)
	if err := s.UpdateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetJob(ctx, "first")
	if err != nil {
		t.Fatal(err)
	}
	if got.Progress != "50%" || string(got.Checkpoint) != `{"step":3}` || !got.LeaseUntil.Equal(j.LeaseUntil) {
		t.Fatalf("after UpdateJob: %+v", got)
	}
	// The renewed lease keeps the job past the first lease's end.
	if j3 := mustClaim(t, s, "n3", now.Add(60*time.Second), 30*time.Second); j3 != nil && j3.ID == "first" {
		t.Fatalf("claimed a job whose lease was renewed: %+v", j3)
	}

	// Done jobs are never claimed again.
	j.Status, j.Expires = hale.JobDone, now.Add(24*time.Hour)
	if err := s.UpdateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if j4 := mustClaim(t, s, "n4", now.Add(time.Hour), time.Minute); j4 != nil && j4.ID == "first" {
		t.Fatalf("claimed a done job: %+v", j4)
	}
	if got, _ := s.GetJob(ctx, "first"); got.Status != hale.JobDone || !got.Expires.Equal(j.Expires) {
		t.Fatalf("done job = %+v", got)
	}
}

func testJobLeaseTakeover(t *testing.T, s hale.JobStore) {
	ctx := context.Background()
	mustCreate(t, s, newJob("j", jt0))
	a := mustClaim(t, s, "node-a", jt0, time.Minute)
	a.Checkpoint, a.Updated = []byte("part-1"), jt0.Add(time.Second)
	if err := s.WriteChunk(ctx, a, "a-key", 0, []byte("line\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateJob(ctx, a, hale.JobFile{Name: "f1", Type: "Patient", Count: 1, Size: 5, Chunks: 1, ChunkKey: "a-key", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	// node-a dies; its lease runs out; node-b takes over.
	b := mustClaim(t, s, "node-b", jt0.Add(time.Minute), time.Minute)
	if b == nil || b.ID != "j" || b.Claims != 2 || b.Node != "node-b" || string(b.Checkpoint) != "part-1" {
		t.Fatalf("takeover claim = %+v, want job j under claim 2 with node-a's checkpoint", b)
	}
	// node-a wakes up: every write under its old claim is refused.
	a.Checkpoint = []byte("part-2")
	wantKind(t, "UpdateJob under a lost lease", s.UpdateJob(ctx, a), hale.KindConflict)
	wantKind(t, "WriteChunk under a lost lease", s.WriteChunk(ctx, a, "a-key2", 0, []byte("x")), hale.KindConflict)
	files, err := s.ListFiles(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Name != "f1" {
		t.Fatalf("files after takeover = %+v, want node-a's committed f1 only", files)
	}
	if got, _ := s.GetJob(ctx, "j"); string(got.Checkpoint) != "part-1" {
		t.Fatalf("checkpoint = %q, want part-1 (the lost lease's write refused)", got.Checkpoint)
	}
	b.Checkpoint = []byte("part-2")
	if err := s.UpdateJob(ctx, b); err != nil {
		t.Fatalf("UpdateJob under the new claim: %v", err)
	}
}

func testJobConcurrentClaims(t *testing.T, s hale.JobStore) {
	const jobs, workers = 20, 8
	for i := range jobs {
		mustCreate(t, s, newJob(fmt.Sprintf("j%02d", i), jt0.Add(time.Duration(i)*time.Millisecond)))
	}
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
		errs    = make(chan error, workers)
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, err := s.ClaimJob(context.Background(), "export", fmt.Sprintf("node%d", w), jt0.Add(time.Second), time.Hour)
				if err != nil {
					errs <- err
					return
				}
				if j == nil {
					return
				}
				mu.Lock()
				claimed[j.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimed) != jobs {
		t.Fatalf("%d jobs claimed, want %d", len(claimed), jobs)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %s claimed %d times", id, n)
		}
	}
}

func testJobFiles(t *testing.T, s hale.JobStore) {
	ctx := context.Background()
	mustCreate(t, s, newJob("j", jt0))
	j := mustClaim(t, s, "n", jt0, time.Minute)
	// Three chunks, one of 4 MiB with every byte value.
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	chunks := [][]byte{[]byte(`{"resourceType":"Patient","id":"a"}` + "\n"), big, []byte(`{"resourceType":"Patient","id":"b"}` + "\n")}
	var want []byte
	for n, c := range chunks {
		if err := s.WriteChunk(ctx, j, "k1", n, c); err != nil {
			t.Fatal(err)
		}
		want = append(want, c...)
	}
	f1 := hale.JobFile{Name: "Patient-1.ndjson", Type: "Patient", Count: 2, Size: int64(len(want)), Chunks: 3, ChunkKey: "k1", Seq: 2}
	if err := s.WriteChunk(ctx, j, "k0", 0, []byte("{}\n")); err != nil {
		t.Fatal(err)
	}
	f0 := hale.JobFile{Name: "Observation-1.ndjson", Type: "Observation", Count: 1, Size: 3, Chunks: 1, ChunkKey: "k0", Seq: 1}
	j.Checkpoint = []byte("after two files")
	if err := s.UpdateJob(ctx, j, f1, f0); err != nil {
		t.Fatal(err)
	}
	files, err := s.ListFiles(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0] != f0 || files[1] != f1 {
		t.Fatalf("ListFiles = %+v, want [%+v %+v] (Seq order)", files, f0, f1)
	}
	var buf bytes.Buffer
	if err := s.ReadFile(ctx, "j", &files[1], &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("ReadFile returned %d bytes, not the %d written", buf.Len(), len(want))
	}
	// The same name twice in one job is an error, and writes nothing.
	if err := s.UpdateJob(ctx, j, f0); err == nil {
		t.Fatal("adding a file name twice succeeded")
	}
	if files, _ := s.ListFiles(ctx, "j"); len(files) != 2 {
		t.Fatalf("after a failed UpdateJob: %d files, want 2", len(files))
	}
	if files, err := s.ListFiles(ctx, "other"); err != nil || len(files) != 0 {
		t.Fatalf("ListFiles of an unknown job = %v, %v; want none", files, err)
	}
}

func testJobInterruptedFile(t *testing.T, s hale.JobStore) {
	ctx := context.Background()
	mustCreate(t, s, newJob("j", jt0))
	a := mustClaim(t, s, "a", jt0, time.Second)
	if err := s.WriteChunk(ctx, a, "kept", 0, []byte("kept\n")); err != nil {
		t.Fatal(err)
	}
	kept := hale.JobFile{Name: "kept", Type: "Patient", Count: 1, Size: 5, Chunks: 1, ChunkKey: "kept", Seq: 1}
	if err := s.UpdateJob(ctx, a, kept); err != nil {
		t.Fatal(err)
	}
	// a writes half a file and dies.
	if err := s.WriteChunk(ctx, a, "half", 0, []byte("half\n")); err != nil {
		t.Fatal(err)
	}
	if b := mustClaim(t, s, "b", jt0.Add(2*time.Second), time.Minute); b == nil {
		t.Fatal("no takeover")
	}
	half := hale.JobFile{Name: "half", Chunks: 1, ChunkKey: "half"}
	err := s.ReadFile(ctx, "j", &half, &bytes.Buffer{})
	wantKind(t, "reading a chunk of an interrupted attempt after the takeover", err, hale.KindNotFound)
	var buf bytes.Buffer
	if err := s.ReadFile(ctx, "j", &kept, &buf); err != nil || buf.String() != "kept\n" {
		t.Fatalf("the committed file after the takeover: %q, %v", buf.String(), err)
	}
}

func testJobCancel(t *testing.T, s hale.JobStore) {
	ctx := context.Background()
	mustCreate(t, s, newJob("j", jt0))
	mustCreate(t, s, newJob("other", jt0.Add(time.Second)))
	j := mustClaim(t, s, "n", jt0, time.Minute)
	if err := s.WriteChunk(ctx, j, "k", 0, []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	f := hale.JobFile{Name: "f", Type: "Patient", Count: 1, Size: 2, Chunks: 1, ChunkKey: "k", Seq: 1}
	if err := s.UpdateJob(ctx, j, f); err != nil {
		t.Fatal(err)
	}
	if err := s.CancelJob(ctx, "j"); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetJob(ctx, "j")
	wantKind(t, "GetJob after cancel", err, hale.KindNotFound)
	if files, err := s.ListFiles(ctx, "j"); err != nil || len(files) != 0 {
		t.Fatalf("files after cancel: %v, %v", files, err)
	}
	wantKind(t, "ReadFile after cancel", s.ReadFile(ctx, "j", &f, &bytes.Buffer{}), hale.KindNotFound)
	wantKind(t, "UpdateJob of the running worker after cancel", s.UpdateJob(ctx, j), hale.KindNotFound)
	wantKind(t, "WriteChunk of the running worker after cancel", s.WriteChunk(ctx, j, "k2", 0, []byte("y")), hale.KindNotFound)
	wantKind(t, "CancelJob twice", s.CancelJob(ctx, "j"), hale.KindNotFound)
	if _, err := s.GetJob(ctx, "other"); err != nil {
		t.Fatalf("another job after cancel: %v", err)
	}
}

func testJobDeleteExpired(t *testing.T, s hale.JobStore) {
	ctx := context.Background()
	now := jt0.Add(48 * time.Hour)
	expired := newJob("expired", jt0)
	expired.Expires = now.Add(-time.Second)
	atNow := newJob("at-now", jt0)
	atNow.Expires = now
	future := newJob("future", jt0)
	future.Expires = now.Add(time.Second)
	never := newJob("never", jt0)
	leased := newJob("leased", jt0.Add(-time.Hour)) // oldest: claimed first
	leased.Expires = now.Add(-time.Hour)
	lapsed := newJob("lapsed", jt0.Add(-time.Minute))
	lapsed.Expires = now.Add(-time.Hour)
	for _, j := range []*hale.Job{expired, atNow, future, never, leased, lapsed} {
		mustCreate(t, s, j)
	}
	if err := s.WriteChunk(ctx, mustClaim(t, s, "n", now.Add(-time.Minute), 2*time.Minute), "k", 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	mustClaim(t, s, "n", now.Add(-time.Minute), 30*time.Second) // lapsed: its lease ran out before now
	n, err := s.DeleteExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("DeleteExpired deleted %d jobs, want 3 (expired, at-now, lapsed)", n)
	}
	for id, want := range map[string]bool{"expired": false, "at-now": false, "lapsed": false, "future": true, "never": true, "leased": true} {
		_, err := s.GetJob(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("job %s kept = %v, want %v (err %v)", id, got, want, err)
		}
	}
}
