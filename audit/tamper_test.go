package audit_test

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/audit"
	"github.com/hale-ehr/hale/postgres"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/sqlite"
	"github.com/jackc/pgx/v5"
)

// attacker runs SQL directly on the database, as someone with database
// access and no Hale key would: constraints and the immutability triggers
// are switched off on its connection.
type attacker interface {
	exec(t testing.TB, query string, args ...any)
	ints(t *testing.T, query string, args ...any) []int64
	data(t *testing.T, seq int64) []byte
}

func (a sqliteAttacker) data(t *testing.T, seq int64) []byte {
	var b []byte
	if err := a.db.QueryRow("SELECT data FROM audit_event WHERE seq = ?", seq).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (a pgAttacker) data(t *testing.T, seq int64) []byte {
	var b []byte
	if err := a.conn.QueryRow(context.Background(), "SELECT data FROM audit_event WHERE seq = $1", seq).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

type sqliteAttacker struct{ db *sql.DB }

func (a sqliteAttacker) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := a.db.Exec(q, args...); err != nil {
		t.Fatalf("attack %q: %v", q, err)
	}
}

func (a sqliteAttacker) ints(t *testing.T, q string, args ...any) []int64 {
	t.Helper()
	rows, err := a.db.Query(q, args...)
	if err != nil {
		t.Fatalf("%q: %v", q, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		rows.Scan(&n)
		out = append(out, n)
	}
	return out
}

type pgAttacker struct{ conn *pgx.Conn }

// pgSQL turns ? placeholders into $n.
func pgSQL(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (a pgAttacker) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := a.conn.Exec(context.Background(), pgSQL(q), args...); err != nil {
		t.Fatalf("attack %q: %v", q, err)
	}
}

func (a pgAttacker) ints(t *testing.T, q string, args ...any) []int64 {
	t.Helper()
	rows, err := a.conn.Query(context.Background(), pgSQL(q), args...)
	if err != nil {
		t.Fatalf("%q: %v", q, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// openEngine opens a fresh store of the engine and an attacker on the same
// database.
func openEngine(t *testing.T, engine string) (hale.Store, attacker) { return openEngineB(t, engine) }

func openEngineB(t testing.TB, engine string) (hale.Store, attacker) {
	t.Helper()
	ctx := context.Background()
	if engine == "sqlite" {
		path := filepath.Join(t.TempDir(), "hale.db")
		s, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		a := sqliteAttacker{db}
		for _, tbl := range []string{"audit_event", "audit_entity", "audit_chain", "audit_checkpoint"} {
			a.exec(t, "DROP TRIGGER "+tbl+"_no_update")
			a.exec(t, "DROP TRIGGER "+tbl+"_no_delete")
		}
		a.exec(t, "PRAGMA foreign_keys = OFF")
		return s, a
	}
	url := pgtest.Schema(t)
	s, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	a := pgAttacker{conn}
	// Replica mode skips foreign keys and ordinary triggers.
	a.exec(t, "SET session_replication_role = replica")
	return s, a
}

// fill records n audit events (of several kinds) and seals them.
func fill(t *testing.T, s hale.Store, key ed25519.PrivateKey, n int) {
	t.Helper()
	ctx := hale.WithPrincipal(context.Background(), &hale.Principal{Subject: "user/u1", Name: "dr one", Role: hale.RolePhysician, Address: "10.0.0.7"})
	rec, err := audit.New(s, audit.Options{Key: key, Node: "node-a", SealInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	go rec.Run()
	for i := range n {
		switch i % 3 {
		case 0:
			err = rec.Audit(ctx, &hale.Access{Interaction: "read", Type: "Patient", ID: fmt.Sprintf("p%d", i)})
		case 1:
			err = rec.Login(ctx, hale.Principal{Name: "mallory", Address: "10.0.0.9"}, hale.Errorf(hale.KindUnauthorized, "wrong password"))
		default:
			err = rec.Audit(ctx, &hale.Access{Interaction: "search-type", Type: "Observation", Query: "subject=Patient/p1"})
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%7 == 6 {
			// Several seals, so several checkpoints.
			if err := rec.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := rec.SealAll(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := rec.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// deleteRecord removes an audit record: its entity rows and its row.
func deleteRecord(t *testing.T, a attacker, seq int64) {
	t.Helper()
	a.exec(t, "DELETE FROM audit_entity WHERE seq = ?", seq)
	a.exec(t, "DELETE FROM audit_event WHERE seq = ?", seq)
}

// mutation is one direct change of the database; it returns a short
// description.
type mutation func(t *testing.T, a attacker, rng *rand.Rand, links, head int64, lastHash []byte) string

var mutations = []struct {
	kind string
	fn   mutation
}{
	{"edit", func(t *testing.T, a attacker, rng *rand.Rand, links, head int64, _ []byte) string {
		n := 1 + rng.Int64N(links)
		seq := a.ints(t, "SELECT seq FROM audit_chain WHERE n = ?", n)[0]
		switch rng.IntN(6) {
		case 0: // change the outcome of the stored AuditEvent
			edited := strings.Replace(string(a.data(t, seq)), `"outcome":"`, `"outcome":"1`, 1)
			a.exec(t, "UPDATE audit_event SET data = ? WHERE seq = ?", []byte(edited), seq)
			return fmt.Sprintf("edit the data of link %d", n)
		case 1:
			a.exec(t, "UPDATE audit_event SET recorded = recorded + 1000000 WHERE seq = ?", seq)
			a.exec(t, "UPDATE audit_entity SET recorded = recorded + 1000000 WHERE seq = ?", seq)
			return fmt.Sprintf("edit the time of link %d (and of its entity rows)", n)
		case 2:
			a.exec(t, "UPDATE audit_chain SET hash = ? WHERE n = ?", make([]byte, 32), n)
			return fmt.Sprintf("overwrite the hash of link %d", n)
		case 3: // hide it from the user's report
			a.exec(t, "UPDATE audit_event SET agent = 'user/someone-else' WHERE seq = ?", seq)
			return fmt.Sprintf("edit the agent column of link %d", n)
		default: // hide it from the patient's report
			seqs := a.ints(t, "SELECT DISTINCT seq FROM audit_entity ORDER BY seq")
			seq = seqs[rng.IntN(len(seqs))]
			n = a.ints(t, "SELECT n FROM audit_chain WHERE seq = ?", seq)[0]
			if rng.IntN(2) == 0 {
				a.exec(t, "DELETE FROM audit_entity WHERE seq = ?", seq)
				return fmt.Sprintf("delete the entity rows of link %d", n)
			}
			a.exec(t, "UPDATE audit_entity SET recorded = recorded - 1000000 WHERE seq = ?", seq)
			return fmt.Sprintf("move the entity rows of link %d in time", n)
		}
	}},
	{"delete", func(t *testing.T, a attacker, rng *rand.Rand, links, head int64, _ []byte) string {
		n := 1 + rng.Int64N(links-1) // not the last: that is truncation
		seq := a.ints(t, "SELECT seq FROM audit_chain WHERE n = ?", n)[0]
		a.exec(t, "DELETE FROM audit_chain WHERE n = ?", n)
		deleteRecord(t, a, seq)
		if rng.IntN(2) == 0 {
			// Close the gap: renumber the links after it.
			a.exec(t, "UPDATE audit_chain SET n = -(n - 1) WHERE n > ?", n)
			a.exec(t, "UPDATE audit_chain SET n = -n WHERE n < 0")
			return fmt.Sprintf("delete link %d and renumber", n)
		}
		return fmt.Sprintf("delete link %d", n)
	}},
	{"insert", func(t *testing.T, a attacker, rng *rand.Rand, links, head int64, lastHash []byte) string {
		r := &hale.AuditRecord{ID: "forged", Recorded: time.UnixMicro(1000).UTC(), Type: "x|rest", Action: "R", Outcome: "0",
			Agent: "user/u1", Data: []byte(`{"resourceType":"AuditEvent","id":"forged","action":"R","outcome":"0"}`)}
		a.exec(t, "INSERT INTO audit_event (id, recorded, type, subtype, action, outcome, agent, agent_ref, data) VALUES (?, ?, ?, '', ?, ?, ?, '', ?)",
			r.ID, r.Recorded.UnixMicro(), r.Type, r.Action, r.Outcome, r.Agent, r.Data)
		r.Seq = a.ints(t, "SELECT seq FROM audit_event WHERE id = 'forged'")[0]
		switch rng.IntN(3) {
		case 0:
			return "insert an audit record outside the chain"
		case 1: // append a link with a correct hash: the formula is public
			a.exec(t, "INSERT INTO audit_chain (n, seq, hash) VALUES (?, ?, ?)", head+1, r.Seq, hale.AuditHash(lastHash, head+1, r))
			return "append a forged link with a correct hash"
		default:
			n := 1 + rng.Int64N(links)
			a.exec(t, "UPDATE audit_chain SET n = -(n + 1) WHERE n >= ?", n)
			a.exec(t, "UPDATE audit_chain SET n = -n WHERE n < 0")
			a.exec(t, "INSERT INTO audit_chain (n, seq, hash) VALUES (?, ?, ?)", n, r.Seq, make([]byte, 32))
			return fmt.Sprintf("insert a forged link at %d", n)
		}
	}},
	{"reorder", func(t *testing.T, a attacker, rng *rand.Rand, links, head int64, _ []byte) string {
		i := 1 + rng.Int64N(links-1)
		j := i + 1 + rng.Int64N(links-i)
		si := a.ints(t, "SELECT seq FROM audit_chain WHERE n = ?", i)[0]
		sj := a.ints(t, "SELECT seq FROM audit_chain WHERE n = ?", j)[0]
		a.exec(t, "UPDATE audit_chain SET seq = -1 WHERE n = ?", i)
		a.exec(t, "UPDATE audit_chain SET seq = ? WHERE n = ?", si, j)
		a.exec(t, "UPDATE audit_chain SET seq = ? WHERE n = ?", sj, i)
		return fmt.Sprintf("swap the records of links %d and %d", i, j)
	}},
	{"truncate", func(t *testing.T, a attacker, rng *rand.Rand, links, head int64, _ []byte) string {
		k := 1 + rng.Int64N(min(5, links-1))
		for _, seq := range a.ints(t, "SELECT seq FROM audit_chain WHERE n > ?", head-k) {
			deleteRecord(t, a, seq)
		}
		a.exec(t, "DELETE FROM audit_chain WHERE n > ?", head-k)
		if rng.IntN(2) == 0 {
			// Roll back the checkpoints too: only an anchor kept
			// outside the database shows this.
			a.exec(t, "DELETE FROM audit_checkpoint WHERE n > ?", head-k)
			return fmt.Sprintf("truncate the last %d links and their checkpoints", k)
		}
		return fmt.Sprintf("truncate the last %d links", k)
	}},
}

// TestTamperMatrix is D22 of the security test list: 50 random direct
// database mutations per engine (edit, delete, insert, reorder, truncate
// tail) on a sealed, signed chain; hale audit verify must report each.
// The anchor is the head checkpoint as the sealer logged it.
func TestTamperMatrix(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			key := ed25519.NewKeyFromSeed(make([]byte, 32))
			pub := key.Public().(ed25519.PublicKey)
			rng := rand.New(rand.NewPCG(22, 50))
			const trials = 50
			detected, withoutAnchor := 0, 0
			for i := range trials {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					s, a := openEngine(t, engine)
					fill(t, s, key, 20)
					chain := s.(hale.AuditStore)
					ctx := context.Background()
					before, err := audit.Verify(ctx, chain, pub)
					if err != nil {
						t.Fatal(err)
					}
					if !before.OK() || before.Links != 20 {
						t.Fatalf("trial %d: the untouched chain fails verification: %+v", i, before)
					}
					anchor := audit.Anchor{N: before.Links, Hash: before.Head}
					m := mutations[i%len(mutations)]
					what := m.fn(t, a, rng, before.Links, before.Links, before.Head)
					res, err := audit.Verify(ctx, chain, pub, anchor)
					if err != nil {
						t.Fatal(err)
					}
					if !res.OK() {
						detected++
					} else {
						t.Errorf("trial %d (%s): %s not detected", i, m.kind, what)
					}
					if res, _ := audit.Verify(ctx, chain, pub); !res.OK() {
						withoutAnchor++
					}
					if i < len(mutations) || !res.OK() && testing.Verbose() {
						t.Logf("trial %d: %s → %s", i, what, res.Problems[0])
					}
				})
			}
			t.Logf("%s: tampered audit rows detected: %d / %d (without the external anchor: %d / %d)", engine, detected, trials, withoutAnchor, trials)
		})
	}
}

type ed25519PublicKey = ed25519.PublicKey

func testKey() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(make([]byte, 32)) }

// TestEntityRowTamper: the rows the per-patient report reads
// (audit_entity) are covered by the chain too: removing one (hiding an
// access from a patient's report), adding one (inventing an access),
// pointing one at another patient or moving it in time is detected, on
// both engines.
func TestEntityRowTamper(t *testing.T) {
	attacks := []struct{ what, sql string }{
		{"delete an entity row", "DELETE FROM audit_entity WHERE seq = (SELECT min(seq) FROM audit_entity)"},
		{"add an entity row", "INSERT INTO audit_entity (seq, ref, recorded) SELECT seq, 'Patient/victim', recorded FROM audit_event WHERE seq = 3"},
		{"point an entity row at another patient", "UPDATE audit_entity SET ref = 'Patient/other' WHERE seq = (SELECT min(seq) FROM audit_entity)"},
		{"move an entity row in time", "UPDATE audit_entity SET recorded = recorded - 3600000000 WHERE seq = (SELECT max(seq) FROM audit_entity)"},
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			key := ed25519.NewKeyFromSeed(make([]byte, 32))
			detected := 0
			for _, at := range attacks {
				s, a := openEngine(t, engine)
				fill(t, s, key, 9)
				a.exec(t, at.sql)
				res, err := audit.Verify(context.Background(), s.(hale.AuditStore), key.Public().(ed25519.PublicKey))
				if err != nil {
					t.Fatal(err)
				}
				if res.OK() {
					t.Errorf("%s: not detected", at.what)
					continue
				}
				detected++
				t.Logf("%s → %s", at.what, res.Problems[0])
			}
			t.Logf("%s: entity-row tampering detected: %d / %d", engine, detected, len(attacks))
		})
	}
}
