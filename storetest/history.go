package storetest

import (
	"context"
	"testing"

	"github.com/hale-ehr/hale"
)

// historyFixture writes, in this order (seconds after t0):
//
//	1 Patient/a 1    2 Patient/b 1    3 Observation/o 1
//	4 Patient/a 2    5 Patient/a 3 (delete)    6 Observation/o 2
//
// and returns the versions in write order.
func historyFixture(t *testing.T, s hale.Store) []*hale.Version {
	return []*hale.Version{
		mustPut(t, s, version("Patient", "a", 1, 1), nil),
		mustPut(t, s, version("Patient", "b", 1, 2), nil),
		mustPut(t, s, version("Observation", "o", 1, 3), nil),
		mustPut(t, s, version("Patient", "a", 2, 4), nil),
		mustPut(t, s, deletion("Patient", "a", 3, 5), nil),
		mustPut(t, s, version("Observation", "o", 2, 6), nil),
	}
}

// historyCase is a query and the versions it must return, in order.
type historyCase struct {
	name string
	q    hale.HistoryQuery
	want []string
}

func runHistoryCases(t *testing.T, s hale.Store, cases []historyCase) {
	t.Helper()
	mustView(t, s, func(r hale.Reader) error {
		for _, c := range cases {
			got, err := r.History(context.Background(), c.q)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			if !equal(labels(got), c.want) {
				t.Errorf("%s: got %v, want %v", c.name, labels(got), c.want)
			}
		}
		return nil
	})
}

func testHistory(t *testing.T, s hale.Store) {
	vs := historyFixture(t, s)
	runHistoryCases(t, s, []historyCase{
		{"instance", hale.HistoryQuery{Type: "Patient", ID: "a"},
			[]string{"Patient/a/3", "Patient/a/2", "Patient/a/1"}},
		{"type", hale.HistoryQuery{Type: "Patient"},
			[]string{"Patient/a/3", "Patient/a/2", "Patient/b/1", "Patient/a/1"}},
		{"system", hale.HistoryQuery{},
			[]string{"Observation/o/2", "Patient/a/3", "Patient/a/2", "Observation/o/1", "Patient/b/1", "Patient/a/1"}},
		{"system since", hale.HistoryQuery{Since: at(4)},
			[]string{"Observation/o/2", "Patient/a/3", "Patient/a/2"}},
		{"type since", hale.HistoryQuery{Type: "Patient", Since: at(2)},
			[]string{"Patient/a/3", "Patient/a/2", "Patient/b/1"}},
		{"instance since", hale.HistoryQuery{Type: "Patient", ID: "a", Since: at(4.5)},
			[]string{"Patient/a/3"}},
		{"since after everything", hale.HistoryQuery{Since: at(7)}, nil},
		{"instance limit", hale.HistoryQuery{Type: "Patient", ID: "a", Limit: 1},
			[]string{"Patient/a/3"}},
		{"system limit", hale.HistoryQuery{Limit: 2},
			[]string{"Observation/o/2", "Patient/a/3"}},
		{"type limit above count", hale.HistoryQuery{Type: "Observation", Limit: 10},
			[]string{"Observation/o/2", "Observation/o/1"}},
		{"system before seq", hale.HistoryQuery{BeforeSeq: vs[3].Seq},
			[]string{"Observation/o/1", "Patient/b/1", "Patient/a/1"}},
		{"type before seq", hale.HistoryQuery{Type: "Patient", BeforeSeq: vs[4].Seq},
			[]string{"Patient/a/2", "Patient/b/1", "Patient/a/1"}},
		{"unknown type", hale.HistoryQuery{Type: "Encounter"}, nil},
	})
	// The delete is in the history as a version without data.
	mustView(t, s, func(r hale.Reader) error {
		got, err := r.History(context.Background(), hale.HistoryQuery{Type: "Patient", ID: "a", Limit: 1})
		if err != nil {
			return err
		}
		if len(got) == 1 {
			checkVersion(t, &got[0], vs[4])
		}
		return nil
	})
}

func testHistoryAt(t *testing.T, s hale.Store) {
	historyFixture(t, s)
	point := func(sec float64) hale.HistoryQuery { return hale.HistoryQuery{AtStart: at(sec), AtEnd: at(sec)} }
	runHistoryCases(t, s, []historyCase{
		{"before anything", point(0.5), nil},
		// At 4.5 s: a is at 2 (deleted at 5), b at 1, o at 1 (o/2 at 6).
		{"instant", point(4.5), []string{"Patient/a/2", "Observation/o/1", "Patient/b/1"}},
		// A version written exactly at the instant is current at it.
		{"instant on a write", point(4), []string{"Patient/a/2", "Observation/o/1", "Patient/b/1"}},
		// After the delete the deleted version is the current one.
		{"after the delete", point(5.5), []string{"Patient/a/3", "Observation/o/1", "Patient/b/1"}},
		{"after everything", point(10), []string{"Observation/o/2", "Patient/a/3", "Patient/b/1"}},
		// Every version current at some moment of [1.5 s, 4.5 s].
		{"period", hale.HistoryQuery{AtStart: at(1.5), AtEnd: at(4.5)},
			[]string{"Patient/a/2", "Observation/o/1", "Patient/b/1", "Patient/a/1"}},
		{"period type", hale.HistoryQuery{Type: "Patient", AtStart: at(1.5), AtEnd: at(4.5)},
			[]string{"Patient/a/2", "Patient/b/1", "Patient/a/1"}},
		{"period instance", hale.HistoryQuery{Type: "Patient", ID: "a", AtStart: at(4.5), AtEnd: at(5.5)},
			[]string{"Patient/a/3", "Patient/a/2"}},
		{"period with limit", hale.HistoryQuery{AtStart: at(1.5), AtEnd: at(4.5), Limit: 2},
			[]string{"Patient/a/2", "Observation/o/1"}},
	})
}

// testHistoryPaging walks the system history two versions at a time with
// the BeforeSeq cursor, while new versions are written between pages:
// the walk neither repeats nor skips a version.
func testHistoryPaging(t *testing.T, s hale.Store) {
	vs := historyFixture(t, s)
	var got []string
	var cursor int64
	for page := 0; ; page++ {
		var batch []hale.Version
		mustView(t, s, func(r hale.Reader) (err error) {
			batch, err = r.History(context.Background(), hale.HistoryQuery{BeforeSeq: cursor, Limit: 2})
			return err
		})
		if len(batch) == 0 {
			break
		}
		if len(batch) > 2 {
			t.Fatalf("page %d has %d versions, limit 2", page, len(batch))
		}
		got = append(got, labels(batch)...)
		cursor = batch[len(batch)-1].Seq
		// A write between pages lands above the cursor, out of the walk.
		mustPut(t, s, version("Encounter", "e", int64(page+1), float64(10+page)), nil)
	}
	want := make([]string, len(vs))
	for i, v := range vs {
		want[len(vs)-1-i] = label(*v)
	}
	if !equal(got, want) {
		t.Errorf("paged history = %v, want %v", got, want)
	}
}
