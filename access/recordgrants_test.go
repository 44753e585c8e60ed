package access_test

import (
	"context"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/sqlite"
)

// TestRecordGrants: grants kept in the database are seen by another
// handle on the same database (another node), only for their subject,
// only while in force.
func TestRecordGrants(t *testing.T) {
	run := func(t *testing.T, a, b hale.Records) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		g1 := hale.BreakGlass{Subject: "user/dr", Patient: "p1", Reason: "unconscious in ED", Start: t0, Expires: t0.Add(time.Hour)}
		g2 := hale.BreakGlass{Subject: "user/dr", Patient: "p2", Reason: "transfer", Start: t0.Add(30 * time.Minute), Expires: t0.Add(2 * time.Hour)}
		other := hale.BreakGlass{Subject: "user/dr2", Patient: "p1", Reason: "x", Start: t0, Expires: t0.Add(time.Hour)}
		for _, g := range []hale.BreakGlass{g1, g2, other} {
			if err := (access.RecordGrants{Store: a}).Add(ctx, g); err != nil {
				t.Fatal(err)
			}
		}
		node2 := access.RecordGrants{Store: b}
		for _, c := range []struct {
			at   time.Duration
			want []string
		}{{-time.Minute, nil}, {0, []string{"p1"}}, {45 * time.Minute, []string{"p1", "p2"}}, {time.Hour, []string{"p2"}}, {2 * time.Hour, nil}} {
			got, err := node2.Active(ctx, "user/dr", t0.Add(c.at))
			if err != nil {
				t.Fatal(err)
			}
			var ps []string
			for _, g := range got {
				ps = append(ps, g.Patient)
				if g.Subject != "user/dr" || g.Reason == "" {
					t.Errorf("grant %+v", g)
				}
			}
			if len(ps) != len(c.want) || (len(ps) > 0 && (ps[0] != c.want[0] || ps[len(ps)-1] != c.want[len(c.want)-1])) {
				t.Errorf("at t0%+v: patients %v, want %v", c.at, ps, c.want)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		path := t.TempDir() + "/h.db"
		a, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		run(t, a, b)
	})
	t.Run("postgres", func(t *testing.T) {
		a := pgtest.Open(t)
		run(t, a, a)
	})
}
