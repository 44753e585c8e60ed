package benchmarks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/postgres"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite"
	"github.com/jackc/pgx/v5"
)

// dataVersion names the loaded data in the caches (the SQLite file, the
// PostgreSQL schema). Bump it when what the FHIR core writes for the
// same bundles changes (new index rows, a new migration's backfill that
// is not enough), so that a run never measures a stale index.
const dataVersion = 5 // 5: composites without a component have no rows; migrations renumbered

// synthea holds the patient bundles: 63 Synthea transaction bundles, each
// one patient's whole record with urn:uuid references between entries.
const synthea = "/work/shared/testdata/synthea"

// BenchmarkScale is the scale issue's benchmark. With HALE_BENCH_SCALE=1
// it loads the Synthea bundles again and again (each POSTed as a
// transaction through rest.Service.Do, which gives every entry a new id)
// until HALE_BENCH_PATIENTS patients (default 1,000, about 280,000
// resources), on each engine, and measures, through rest.Service.Do and
// the bundle's JSON encoding:
//
//   - Ingest: the load itself, resources per second (figures of the run
//     that built the cache when it is reused).
//   - CountCode: Observation?code=<the most common LOINC>&_summary=count.
//   - PatientCodeDate: Observation?patient=X&code=Y&date=ge2015-01-01.
//   - NameSmi: Patient?name=smi (no match in these patients), and
//     NameSch: Patient?name=sch (some).
//   - Chain: Observation?subject:Patient.name=<a family name>.
//   - RevInclude: Patient?_id=X&_revinclude=Observation:subject.
//   - Paging, PagingSorted: 100,000 Observations with _count=1000
//     following the next links, unsorted and with _sort=date.
//
// The data is cached between runs: the SQLite file in os.TempDir(), the
// PostgreSQL schema hale_scale_v<dataVersion>_<patients> in the test
// database. HALE_BENCH_FRESH=1 loads again.
func BenchmarkScale(b *testing.B) {
	if os.Getenv("HALE_BENCH_SCALE") == "" {
		b.Skip("set HALE_BENCH_SCALE=1 to load about 280,000 resources per engine (docs/database.md, Search at scale)")
	}
	patients := 1000
	if v := os.Getenv("HALE_BENCH_PATIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("HALE_BENCH_PATIENTS=%q: want a positive number", v)
		}
		patients = n
	}
	data := readBundles(b)
	copies := (patients + len(data.bundles) - 1) / len(data.bundles)
	fresh := os.Getenv("HALE_BENCH_FRESH") != ""
	name := fmt.Sprintf("hale_scale_v%d_%d", dataVersion, patients)

	b.Run("sqlite", func(b *testing.B) {
		path := filepath.Join(os.TempDir(), name+".db")
		if fresh {
			for _, p := range []string{path, path + "-wal", path + "-shm", path + ".loaded"} {
				os.Remove(p)
			}
		}
		s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		stats := loadOnce(b, s, data, copies, fileMarker(path+".loaded"), nil)
		run(b, s, data, stats)
	})

	b.Run("postgres", func(b *testing.B) {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, pgtest.URL())
		if err != nil {
			b.Skipf("no PostgreSQL: %v", err)
		}
		defer conn.Close(ctx)
		if fresh {
			if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+name); err != nil {
			b.Fatal(err)
		}
		u, err := url.Parse(pgtest.URL())
		if err != nil {
			b.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", name)
		u.RawQuery = q.Encode()
		s, err := postgres.Open(ctx, u.String(), postgres.Options{MaxConns: 8})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		analyze := func() {
			// What autovacuum does soon after a load: planner
			// statistics and the visibility map (index-only counts).
			rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = $1", name)
			if err != nil {
				b.Fatal(err)
			}
			tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				b.Fatal(err)
			}
			for _, t := range tables {
				if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+name+"."+t); err != nil {
					b.Fatal(err)
				}
			}
		}
		stats := loadOnce(b, s, data, copies, pgMarker{conn: conn, schema: name}, analyze)
		run(b, s, data, stats)
	})
}

// bundles are the Synthea transaction bundles and what the benchmark
// picks from them.
type bundles struct {
	bundles   [][]byte
	resources int    // entries in all bundles
	code      string // the most common Observation LOINC code
}

func readBundles(b *testing.B) *bundles {
	var files []string
	for _, set := range []string{"set-a", "set-b"} {
		fs, err := filepath.Glob(filepath.Join(synthea, set, "*.json"))
		if err != nil || len(fs) == 0 {
			b.Skipf("no Synthea bundles in %s/%s", synthea, set)
		}
		files = append(files, fs...)
	}
	out := &bundles{}
	codes := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		var bundle struct {
			Entry []struct {
				Resource struct {
					ResourceType string `json:"resourceType"`
					Code         struct {
						Coding []struct{ System, Code string }
					}
				}
			}
		}
		if err := json.Unmarshal(data, &bundle); err != nil {
			b.Fatalf("%s: %v", f, err)
		}
		out.bundles = append(out.bundles, data)
		out.resources += len(bundle.Entry)
		for _, e := range bundle.Entry {
			if e.Resource.ResourceType == "Observation" {
				for _, c := range e.Resource.Code.Coding {
					if c.System == "http://loinc.org" {
						codes[c.Code]++
					}
				}
			}
		}
	}
	for c, n := range codes {
		if out.code == "" || n > codes[out.code] || n == codes[out.code] && c < out.code {
			out.code = c
		}
	}
	return out
}

// loadStats describe the load that built the data.
type loadStats struct {
	Resources int64   `json:"resources"`
	Patients  int     `json:"patients"`
	Seconds   float64 `json:"seconds"`
	Cached    bool    `json:"-"`
}

// marker records that a load finished, and its figures.
type marker interface {
	get() (*loadStats, error) // nil when no load finished
	set(loadStats) error
}

type fileMarker string

func (m fileMarker) get() (*loadStats, error) {
	data, err := os.ReadFile(string(m))
	if os.IsNotExist(err) {
		return nil, nil
	}
	var st loadStats
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	return &st, err
}

func (m fileMarker) set(st loadStats) error {
	data, _ := json.Marshal(st)
	return os.WriteFile(string(m), data, 0o600)
}

type pgMarker struct {
	conn   *pgx.Conn
	schema string
}

func (m pgMarker) get() (*loadStats, error) {
	var data []byte
	err := m.conn.QueryRow(context.Background(), "SELECT stats FROM "+m.schema+".scale_loaded").Scan(&data)
	if err != nil {
		return nil, nil // no table yet: not loaded
	}
	var st loadStats
	return &st, json.Unmarshal(data, &st)
}

func (m pgMarker) set(st loadStats) error {
	data, _ := json.Marshal(st)
	ctx := context.Background()
	if _, err := m.conn.Exec(ctx, "CREATE TABLE "+m.schema+".scale_loaded (stats BYTEA NOT NULL)"); err != nil {
		return err
	}
	_, err := m.conn.Exec(ctx, "INSERT INTO "+m.schema+".scale_loaded (stats) VALUES ($1)", data)
	return err
}

// loadOnce loads copies of every bundle into s, unless the marker says
// an earlier run did, then runs after (if not nil) once.
func loadOnce(b *testing.B, s hale.Store, data *bundles, copies int, m marker, after func()) loadStats {
	st, err := m.get()
	if err != nil {
		b.Fatal(err)
	}
	if st != nil {
		st.Cached = true
		b.Logf("%s: using the data loaded earlier: %d resources, %d patients (ingest %.0f resources/s)",
			s.Engine(), st.Resources, st.Patients, float64(st.Resources)/st.Seconds)
		return *st
	}
	var n int64
	err = s.View(context.Background(), func(r hale.Reader) (err error) { n, err = r.Count(context.Background(), ""); return err })
	if err != nil {
		b.Fatal(err)
	}
	if n > 0 {
		b.Fatalf("%s: the cache holds %d resources from an unfinished load; run with HALE_BENCH_FRESH=1", s.Engine(), n)
	}
	svc := rest.NewService(s)
	ctx := context.Background()
	start := time.Now()
	for c := range copies {
		for _, bundle := range data.bundles {
			if _, err := svc.Do(ctx, &rest.Request{Method: "POST", Body: bundle, Return: rest.ReturnMinimal,
				Base: "http://bench.example/fhir"}); err != nil {
				b.Fatalf("copy %d: %v", c, err)
			}
		}
		b.Logf("%s: copy %d of %d loaded, %v", s.Engine(), c+1, copies, time.Since(start).Round(time.Second))
	}
	loaded := loadStats{Resources: int64(copies * data.resources), Patients: copies * len(data.bundles),
		Seconds: time.Since(start).Seconds()}
	if after != nil {
		after()
	}
	if err := m.set(loaded); err != nil {
		b.Fatal(err)
	}
	return loaded
}

// patient is one loaded Patient, for the patient-scoped searches.
type patient struct{ id, family string }

func patientsOf(b *testing.B, s hale.Store) []patient {
	ctx := context.Background()
	var out []patient
	q := &hale.Query{Types: []string{"Patient"}, Count: 1000}
	for {
		var res *hale.SearchResult
		err := s.View(ctx, func(r hale.Reader) (err error) {
			res, err = r.(hale.Searcher).Search(ctx, q)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range res.Versions {
			var p struct {
				Name []struct{ Family string }
			}
			if err := json.Unmarshal(v.Data, &p); err != nil {
				b.Fatal(err)
			}
			family := ""
			if len(p.Name) > 0 {
				family = p.Name[0].Family
			}
			out = append(out, patient{id: v.ID, family: family})
		}
		if res.Next == nil {
			return out
		}
		q.After = res.Next
	}
}

// searchResult is what the benchmark reads back from a searchset.
type searchResult struct {
	Total *int64 `json:"total"`
	Link  []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		Search struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

func (r *searchResult) next() string {
	for _, l := range r.Link {
		if l.Relation == "next" {
			u, err := url.Parse(l.URL)
			if err == nil {
				return u.Query().Get("_cursor")
			}
		}
	}
	return ""
}

// search runs one search through the FHIR core and encodes the bundle as
// the HTTP adapter would; it returns the time both took (not the
// benchmark's own decoding of the answer) and the decoded answer.
func search(b *testing.B, svc *rest.Service, typ string, q url.Values) (time.Duration, *searchResult) {
	ctx := context.Background()
	start := time.Now()
	resp, err := svc.Do(ctx, &rest.Request{Method: "GET", Type: typ, Query: q, Base: "http://bench.example/fhir"})
	if err != nil {
		b.Fatalf("%s?%s: %v", typ, q.Encode(), err)
	}
	data, err := resp.JSON()
	if err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	var res searchResult
	if err := json.Unmarshal(data, &res); err != nil {
		b.Fatal(err)
	}
	return took, &res
}

func run(b *testing.B, s hale.Store, data *bundles, stats loadStats) {
	svc := rest.NewService(s)
	pats := patientsOf(b, s)
	if len(pats) == 0 {
		b.Fatal("no patients loaded")
	}
	b.Logf("%s: %d patients; the most common Observation code is %s", s.Engine(), len(pats), data.code)

	b.Run("Ingest", func(b *testing.B) {
		b.ReportMetric(float64(stats.Resources)/stats.Seconds, "resources/s")
		b.ReportMetric(float64(stats.Resources), "resources")
		b.ReportMetric(stats.Seconds, "s")
	})

	b.Run("CountCode", func(b *testing.B) {
		var counted int64
		var took time.Duration
		for b.Loop() {
			t, res := search(b, svc, "Observation", url.Values{"code": {"http://loinc.org|" + data.code}, "_summary": {"count"}})
			took += t
			counted += *res.Total
		}
		b.ReportMetric(float64(counted)/took.Seconds(), "matches/s")
		b.ReportMetric(float64(counted)/float64(b.N), "matches/op")
	})

	// latency runs one search per iteration with a new argument each time
	// and reports p50 and p95.
	latency := func(typ string, args func(i int) url.Values) func(b *testing.B) {
		return func(b *testing.B) {
			var lat latencies
			var entries, total int64
			i := 0
			for b.Loop() {
				i++
				t, res := search(b, svc, typ, args(i))
				lat = append(lat, t)
				entries += int64(len(res.Entry))
				if res.Total != nil {
					total += *res.Total
				}
			}
			lat.report(b)
			b.ReportMetric(float64(entries)/float64(b.N), "entries/op")
			b.ReportMetric(float64(total)/float64(b.N), "total/op")
		}
	}
	pick := func(i int) patient { return pats[i*7919%len(pats)] }
	b.Run("PatientCodeDate", latency("Observation", func(i int) url.Values {
		return url.Values{"patient": {"Patient/" + pick(i).id}, "code": {"http://loinc.org|" + data.code},
			"date": {"ge2015-01-01"}}
	}))
	b.Run("NameSmi", latency("Patient", func(int) url.Values { return url.Values{"name": {"smi"}} }))
	// No Synthea patient's name starts with "smi"; "sch" (Schultz,
	// Schmitt, …) has matches.
	b.Run("NameSch", latency("Patient", func(int) url.Values { return url.Values{"name": {"sch"}} }))
	b.Run("Chain", latency("Observation", func(i int) url.Values {
		return url.Values{"subject:Patient.name": {pick(i).family}}
	}))
	b.Run("RevInclude", latency("Patient", func(i int) url.Values {
		return url.Values{"_id": {pick(i).id}, "_revinclude": {"Observation:subject"}}
	}))

	paging := func(sort string) func(b *testing.B) {
		return func(b *testing.B) {
			const want, size = 100_000, 1000
			var took time.Duration
			var got int
			for b.Loop() {
				cursor := ""
				for n := 0; n < want; {
					q := url.Values{"_count": {strconv.Itoa(size)}}
					if sort != "" {
						q.Set("_sort", sort)
					}
					if cursor != "" {
						q.Set("_cursor", cursor)
					}
					t, res := search(b, svc, "Observation", q)
					took += t
					n += len(res.Entry)
					got += len(res.Entry)
					if cursor = res.next(); cursor == "" {
						break
					}
				}
			}
			b.ReportMetric(float64(got)/took.Seconds(), "resources/s")
			b.ReportMetric(float64(got)/float64(b.N), "resources/op")
		}
	}
	b.Run("Paging", paging(""))
	b.Run("PagingSorted", paging("date"))
}

// latencies are the durations of a benchmark's iterations.
type latencies []time.Duration

// report adds the median and the 95th percentile, in milliseconds.
func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	at := func(p float64) float64 {
		return float64(l[min(len(l)-1, int(p*float64(len(l))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.95), "p95-ms")
}
