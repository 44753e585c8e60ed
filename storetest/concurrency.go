package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/hale-ehr/hale"
)

// testConcurrentConditionalCreate is the conditional create of the FHIR
// layer: 32 requests at once each Lock "conditional:Patient", search for
// the identifier and create the patient (each under its own new id) only
// when the search found none. Exactly one may create.
func testConcurrentConditionalCreate(t *testing.T, s hale.Store) {
	const n = 32
	ctx := context.Background()
	identifier := one(match("identifier", hale.MatchToken, sysCode("urn:test", "once")))
	idx := &hale.Index{Tokens: []hale.TokenValue{tok("identifier", "urn:test", "once")}}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(ctx, func(tx hale.Tx) error {
				if err := tx.Lock(ctx, "conditional:Patient"); err != nil {
					return err
				}
				found, err := tx.Find(ctx, "Patient", identifier, 2)
				if err != nil || len(found) > 0 {
					return err
				}
				return tx.Put(ctx, version("Patient", fmt.Sprintf("c%02d", i), 1, 1), idx)
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	mustView(t, s, func(r hale.Reader) error {
		found, err := r.Find(ctx, "Patient", identifier, 0)
		if err != nil {
			return err
		}
		if len(found) != 1 {
			t.Errorf("%d concurrent conditional creates made %v, want exactly one", n, found)
		}
		if c, err := r.Count(ctx, "Patient"); err != nil || c != 1 {
			t.Errorf("Count = %d, %v; want 1", c, err)
		}
		return nil
	})
}

// testConcurrentUpdates is the read-modify-write of a FHIR update: 16
// requests at once read the current version (creating version 1 when
// there is none) and Put the next. Every request must succeed and the
// history must be versions 1..16 without a gap or a duplicate.
func testConcurrentUpdates(t *testing.T, s hale.Store) {
	const n = 16
	ctx := context.Background()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(ctx, func(tx hale.Tx) error {
				next := int64(1)
				cur, err := tx.Current(ctx, "Patient", "u")
				switch {
				case err == nil:
					next = cur.VersionID + 1
				case !hale.IsKind(err, hale.KindNotFound):
					return err
				}
				return tx.Put(ctx, version("Patient", "u", next, float64(next)),
					&hale.Index{Tokens: []hale.TokenValue{tok("writer", "", fmt.Sprint(i))}})
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	mustView(t, s, func(r hale.Reader) error {
		vs, err := r.History(ctx, hale.HistoryQuery{Type: "Patient", ID: "u"})
		if err != nil {
			return err
		}
		var want []string
		for v := n; v >= 1; v-- {
			want = append(want, fmt.Sprintf("Patient/u/%d", v))
		}
		if !equal(labels(vs), want) {
			t.Errorf("history = %v, want %v", labels(vs), want)
		}
		// Each Put replaced the index rows: only the last writer's is left.
		hits := 0
		for i := range n {
			found, err := r.Find(ctx, "Patient", one(match("writer", hale.MatchToken, code(fmt.Sprint(i)))), 0)
			if err != nil {
				return err
			}
			hits += len(found)
		}
		if hits != 1 {
			t.Errorf("%d writers' index rows left, want 1", hits)
		}
		return nil
	})
}
