package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/hale-ehr/hale"
)

// testSearchWriteOrder: with WriteOrder, an unsorted search of one type
// whose conditions cannot drive from an index returns the resources in
// the order they were created: an update or a delete and re-creation
// keeps a resource's place. Any other search keeps its own order (a
// selective condition, a sort, several types: type and id), and a
// cursor of one order does not fit the other.
func testSearchWriteOrder(t *testing.T, s hale.Store) {
	ctx := context.Background()
	code := func(c string) hale.Index { return hale.Index{Tokens: []hale.TokenValue{tok("code", "s", c)}} }
	for _, id := range []string{"m", "c", "x", "a", "k", "b"} {
		c := "bp"
		if id == "a" || id == "b" {
			c = "hr"
		}
		putIdx(t, s, "Observation", id, code(c))
	}
	putIdx(t, s, "Patient", "p", hale.Index{})
	idx := code("bp")
	mustPut(t, s, version("Observation", "c", 2, 2), &idx) // updated: keeps its place
	mustPut(t, s, deletion("Observation", "x", 2, 2), nil)
	mustPut(t, s, deletion("Observation", "k", 2, 2), nil)
	mustPut(t, s, version("Observation", "k", 3, 3), &idx) // re-created: keeps its place

	obs := func(ids ...string) []string { return refs("Observation", ids...) }
	wo := func(q hale.Query) hale.Query { q.WriteOrder = true; return q }
	bp := clause("code", hale.TypeToken, codeV("bp"))
	all := []int{1, 2, 3}
	runSearchCases(t, s, []searchCase{
		{name: "whole type", q: wo(query("Observation")), want: obs("m", "c", "a", "k", "b"), pageSizes: all},
		{name: "whole type without WriteOrder: by id", q: query("Observation"), want: obs("a", "b", "c", "k", "m")},
		{name: ":not", q: wo(query("Observation", not(bp))), want: obs("a", "b"), pageSizes: all},
		{name: ":missing false", q: wo(query("Observation", missing("code", hale.TypeToken, false))),
			want: obs("m", "c", "a", "k", "b"), pageSizes: all},
		{name: "system|: a condition that does not drive", pageSizes: all,
			q: wo(query("Observation", clause("code", hale.TypeToken, anyCodeV("s")))), want: obs("m", "c", "a", "k", "b")},
		{name: "a selective condition: by id", q: wo(query("Observation", bp)), want: obs("c", "k", "m"), pageSizes: all},
		{name: "_lastUpdated: by id", pageSizes: all,
			q:    wo(query("Observation", hale.Clause{Param: "_lastUpdated", Type: hale.TypeLastUpdated, Values: []hale.Value{dateV("ge", "2024")}})),
			want: obs("a", "b", "c", "k", "m")},
		{name: "sorted: by the sort", pageSizes: all,
			q:    hale.Query{Types: []string{"Observation"}, WriteOrder: true, Sort: []hale.SortKey{{Param: "_id", Type: hale.TypeID, Desc: true}}},
			want: obs("m", "k", "c", "b", "a")},
		{name: "two types: by type and id", q: hale.Query{Types: []string{"Observation", "Patient"}, WriteOrder: true},
			want: append(obs("a", "b", "c", "k", "m"), "Patient/p")},
	})

	// A cursor of one order does not fit the other.
	mustView(t, s, func(r hale.Reader) error {
		sr := searcher(t, r)
		q := wo(query("Observation"))
		q.Count = 2
		res, err := sr.Search(ctx, &q)
		if err != nil || res.Next == nil {
			t.Fatalf("first page in write order: %v, next %v", err, res)
		}
		byID := query("Observation")
		byID.Count, byID.After = 2, res.Next
		if _, err := sr.Search(ctx, &byID); !hale.IsKind(err, hale.KindInvalid) {
			t.Errorf("a write-order cursor on a search by id: err = %v, want kind invalid", err)
		}
		byID.After = nil
		if res, err = sr.Search(ctx, &byID); err != nil || res.Next == nil {
			t.Fatalf("first page by id: %v", err)
		}
		q.After = res.Next
		if _, err := sr.Search(ctx, &q); !hale.IsKind(err, hale.KindInvalid) {
			t.Errorf("an id cursor on a search in write order: err = %v, want kind invalid", err)
		}
		return nil
	})
}

// testSearchWriteOrderWhileWriting pages through a type in write order
// while other transactions create resources, update ones already read
// and ones not read yet, delete and re-create them: every resource that
// exists from the start to the end comes exactly once, none twice, in
// the order they were created.
func testSearchWriteOrderWhileWriting(t *testing.T, s hale.Store) {
	ctx := context.Background()
	const n = 40
	created := map[string]int{} // id → creation rank
	rank := 0
	next := map[string]int64{} // id → the next version number
	write := func(id string, deleted bool) {
		v := next[id]
		if v == 0 {
			v = 1
			created[id] = rank
			rank++
		}
		next[id] = v + 1
		if deleted {
			mustPut(t, s, deletion("Observation", id, v, float64(v)), nil)
			return
		}
		mustPut(t, s, version("Observation", id, v, float64(v)), &hale.Index{Tokens: []hale.TokenValue{tok("code", "s", "bp")}})
	}
	var start []string
	for i := range n {
		id := fmt.Sprintf("o%02d", (i*17)%n) // creation order is not id order
		write(id, false)
		start = append(start, id)
	}
	added := 0
	for _, size := range []int{1, 3, 10} {
		q := hale.Query{Types: []string{"Observation"}, WriteOrder: true}
		var got []string
		page := 0
		for {
			var res *hale.SearchResult
			mustView(t, s, func(r hale.Reader) (err error) {
				q.Count = size
				res, err = searcher(t, r).Search(ctx, &q)
				return err
			})
			for _, v := range res.Versions {
				got = append(got, v.ID)
			}
			if res.Next == nil {
				break
			}
			if page++; page > 1000 {
				t.Fatalf("pages of %d: more than 1,000 pages", size)
			}
			q.After = res.Next
			if page > 12 {
				continue // else pages of 1 would never reach the end
			}
			// Update one already read and one not read yet (the last
			// created of the start), create one, delete and re-create
			// one already read, delete a new one.
			write(got[len(got)-1], false)
			write(start[n-1], false)
			added++
			fresh := fmt.Sprintf("new%03d", added)
			write(fresh, false)
			write(got[0], true)
			write(got[0], false)
			if added%3 == 0 {
				write(fresh, true)
			}
		}
		name := fmt.Sprintf("pages of %d", size)
		count := map[string]int{}
		for i, id := range got {
			if count[id]++; count[id] == 2 {
				t.Errorf("%s: %s twice", name, id)
			}
			if i > 0 && created[got[i-1]] >= created[id] {
				t.Errorf("%s: %s (created %d) after %s (created %d)", name, id, created[id], got[i-1], created[got[i-1]])
			}
		}
		for _, id := range start {
			if count[id] == 0 {
				t.Errorf("%s: %s, there from the start, never came", name, id)
			}
		}
	}
}
