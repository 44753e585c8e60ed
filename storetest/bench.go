package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

// BenchResource returns the resource the benchmarks write: a Patient of
// about 2 KB of JSON, and its seven index rows (three tokens, three
// strings, one reference).
func BenchResource(id string) ([]byte, *hale.Index) {
	narrative := strings.Repeat("Allergic to penicillin; lives alone; prefers morning visits. ", 24)
	data := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"meta":{"versionId":"1","lastUpdated":"2024-03-01T12:00:00Z"},`+
		`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">%s</div>"},`+
		`"identifier":[{"system":"urn:oid:1.2.36.146.595.217.0.1","value":"MRN-%s"}],"active":true,`+
		`"name":[{"use":"official","family":"Chalmers","given":["Peter","James"]}],"gender":"male",`+
		`"birthDate":"1974-12-25","address":[{"line":["534 Erewhon St"],"city":"PleasantVille","postalCode":"3999"}],`+
		`"generalPractitioner":[{"reference":"Practitioner/gp1"}]}`, id, narrative, id)
	return []byte(data), &hale.Index{
		Tokens: []hale.TokenValue{
			tok("identifier", "urn:oid:1.2.36.146.595.217.0.1", "MRN-"+id),
			tok("gender", "http://hl7.org/fhir/administrative-gender", "male"),
			tok("active", "", "true"),
		},
		Strings: []hale.StringValue{
			str("family", "chalmers", "Chalmers"),
			str("given", "peter", "Peter"),
			str("given", "james", "James"),
		},
		References: []hale.ReferenceValue{ref("general-practitioner", "Practitioner", "gp1", "Practitioner/gp1")},
	}
}

func benchVersion(id string) (*hale.Version, *hale.Index) {
	data, idx := BenchResource(id)
	return &hale.Version{Type: "Patient", ID: id, VersionID: 1, LastUpdated: time.Now().UTC(),
		Method: "POST", Data: data}, idx
}

func reportRate(b *testing.B, perOp int) {
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "resources/s")
}

// BenchPut measures a create: one Update that Puts one new resource.
func BenchPut(b *testing.B, s hale.Store) {
	ctx := context.Background()
	n := 0
	for b.Loop() {
		n++
		v, idx := benchVersion(fmt.Sprintf("put-%d", n))
		if err := s.Update(ctx, func(tx hale.Tx) error { return tx.Put(ctx, v, idx) }); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, 1)
}

// BenchPut100 measures a batch: one Update that Puts 100 new resources.
func BenchPut100(b *testing.B, s hale.Store) {
	ctx := context.Background()
	n := 0
	for b.Loop() {
		err := s.Update(ctx, func(tx hale.Tx) error {
			for range 100 {
				n++
				v, idx := benchVersion(fmt.Sprintf("put100-%d", n))
				if err := tx.Put(ctx, v, idx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, 100)
}

// BenchCurrent measures a read by id: one View with one Current, over a
// store of 1,000 resources.
func BenchCurrent(b *testing.B, s hale.Store) {
	ctx := context.Background()
	const stored = 1000
	err := s.Update(ctx, func(tx hale.Tx) error {
		for i := range stored {
			v, idx := benchVersion(fmt.Sprintf("cur-%d", i))
			if err := tx.Put(ctx, v, idx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		id := fmt.Sprintf("cur-%d", n*7919%stored)
		n++
		err := s.View(ctx, func(r hale.Reader) error {
			_, err := r.Current(ctx, "Patient", id)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, 1)
}

// The search benchmarks run on one data set built with Put in
// transactions of 1,000: 1,000 Patients (250 family names, four
// Patients each) and 200,000 Observations (20,000 with -short), each
// with six index rows: one of 50 LOINC codes, a subject among the
// Patients, a dateTime in 2015–2024, a Quantity, a status and a
// category. Every Patient has about 200 Observations, about 4 of each
// code; every code about 4,000.
const (
	benchPatients     = 1000
	benchObservations = 200_000
	benchCodes        = 50
	benchFamilies     = 250
)

// benchCode is the n-th of the 50 synthetic LOINC-style codes.
func benchCode(n int) string { return fmt.Sprintf("%d-%d", 10000+n*37, n%10) }

// BenchSearch builds the data set in s and runs the search benchmarks
// on it as sub-benchmarks. prepare, if not nil, runs once after the load
// (the PostgreSQL engine uses it for VACUUM ANALYZE, which autovacuum
// does soon after such a load in production).
//
//   - CountCode: Observation?code=X&_summary=count (Count 0, Total),
//     reported as matching resources counted per second.
//   - PatientCodeDate: Observation?subject=Patient/N&code=X&date=ge2020-01-01,
//     a page of 50 with the Total; p50 and p95 latency.
//   - Chain: Observation?subject:Patient.family=X (about 800 matches),
//     a page of 50 with the Total; p50 and p95 latency.
//   - Paging: 100,000 Observations in pages of 1,000 (each page its own
//     View, as separate requests), following Next; resources per second.
//   - PagingSorted: the same, sorted by date.
func BenchSearch(b *testing.B, s hale.Store, prepare func(b *testing.B)) {
	ctx := context.Background()
	n := benchObservations
	if testing.Short() {
		n = 20_000
	}
	start := time.Now()
	LoadSearchData(b, s, n)
	b.Logf("loaded %d Patients and %d Observations in %v", benchPatients, n, time.Since(start).Round(time.Millisecond))
	if prepare != nil {
		prepare(b)
	}
	search := func(b *testing.B, q *hale.Query) *hale.SearchResult {
		var res *hale.SearchResult
		err := s.View(ctx, func(r hale.Reader) (err error) {
			res, err = r.(hale.Searcher).Search(ctx, q)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		return res
	}
	code := func(n int) hale.Clause {
		return hale.Clause{Param: "code", Type: hale.TypeToken,
			Values: []hale.Value{{System: "http://loinc.org", Code: benchCode(n % benchCodes)}}}
	}

	b.Run("CountCode", func(b *testing.B) {
		var counted int64
		i := 0
		for b.Loop() {
			i++
			res := search(b, &hale.Query{Types: []string{"Observation"}, Where: []hale.Clause{code(i)}, Total: true})
			counted += res.Total
		}
		b.ReportMetric(float64(counted)/b.Elapsed().Seconds(), "matches/s")
		b.ReportMetric(float64(counted)/float64(b.N), "matches/op")
	})

	geLo, geHi := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC).UnixMicro()
	b.Run("PatientCodeDate", func(b *testing.B) {
		var lat latencies
		var found int
		i := 0
		for b.Loop() {
			i++
			t := time.Now()
			res := search(b, &hale.Query{Types: []string{"Observation"}, Count: 50, Total: true, Where: []hale.Clause{
				{Param: "subject", Type: hale.TypeReference,
					Values: []hale.Value{{TargetType: "Patient", TargetID: benchPatientID(i * 7919 % benchPatients)}}},
				code(i),
				{Param: "date", Type: hale.TypeDate, Values: []hale.Value{{Prefix: "ge", Lo: geLo, Hi: geHi}}},
			}})
			lat = append(lat, time.Since(t))
			found += len(res.Versions)
		}
		lat.report(b)
		b.ReportMetric(float64(found)/float64(b.N), "results/op")
	})

	b.Run("Chain", func(b *testing.B) {
		var lat latencies
		var total int64
		i := 0
		for b.Loop() {
			i++
			t := time.Now()
			res := search(b, &hale.Query{Types: []string{"Observation"}, Count: 50, Total: true, Where: []hale.Clause{{
				Param: "subject", Type: hale.TypeReference, Chain: &hale.Chain{Type: "Patient", Where: []hale.Clause{{
					Param: "family", Type: hale.TypeString, Values: []hale.Value{{Code: benchFamily(i * 31 % benchFamilies)}}}}}}}})
			lat = append(lat, time.Since(t))
			total += res.Total
		}
		lat.report(b)
		b.ReportMetric(float64(total)/float64(b.N), "matches/op")
	})

	paging := func(sort []hale.SortKey) func(b *testing.B) {
		return func(b *testing.B) {
			const want, size = 100_000, 1000
			pages := min(want, n) / size
			for b.Loop() {
				q := &hale.Query{Types: []string{"Observation"}, Count: size, Sort: sort}
				got := 0
				for range pages {
					res := search(b, q)
					got += len(res.Versions)
					q.After = res.Next
				}
				if got != pages*size {
					b.Fatalf("paged %d resources, want %d", got, pages*size)
				}
			}
			reportRate(b, pages*size)
		}
	}
	b.Run("Paging", paging(nil))
	b.Run("PagingSorted", paging([]hale.SortKey{{Param: "date", Type: hale.TypeDate}}))
}

func benchPatientID(n int) string { return fmt.Sprintf("pat%04d", n) }
func benchFamily(n int) string    { return fmt.Sprintf("family%03d", n) }

// LoadSearchData writes the search benchmarks' data set (see
// BenchSearch) with the given number of Observations.
func LoadSearchData(b testing.TB, s hale.Store, observations int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 1000
	put := func(from, to int, fn func(i int) (*hale.Version, *hale.Index)) {
		for lo := from; lo < to; lo += batch {
			err := s.Update(ctx, func(tx hale.Tx) error {
				for i := lo; i < min(lo+batch, to); i++ {
					v, idx := fn(i)
					if err := tx.Put(ctx, v, idx); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	put(0, benchPatients, func(i int) (*hale.Version, *hale.Index) {
		id, family := benchPatientID(i), benchFamily(i%benchFamilies)
		data := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"meta":{"versionId":"1"},"name":[{"family":%q}]}`, id, family)
		return &hale.Version{Type: "Patient", ID: id, VersionID: 1, LastUpdated: now, Method: "POST", Data: []byte(data)},
			&hale.Index{Strings: []hale.StringValue{{Param: "family", Norm: family, Exact: family}}}
	})
	from := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	span := now.Sub(from)
	put(0, observations, func(i int) (*hale.Version, *hale.Index) {
		id := fmt.Sprintf("obs%06d", i)
		patient := benchPatientID(i % benchPatients)
		code := benchCode(rng.IntN(benchCodes))
		when := from.Add(time.Duration(rng.Int64N(int64(span))).Truncate(time.Second))
		value := float64(rng.IntN(2000)) / 10
		data := fmt.Sprintf(`{"resourceType":"Observation","id":%q,"meta":{"versionId":"1"},"status":"final",`+
			`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],`+
			`"code":{"coding":[{"system":"http://loinc.org","code":%q}]},"subject":{"reference":"Patient/%s"},`+
			`"effectiveDateTime":%q,"valueQuantity":{"value":%g,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}`,
			id, code, patient, when.Format(time.RFC3339), value)
		return &hale.Version{Type: "Observation", ID: id, VersionID: 1, LastUpdated: now, Method: "POST", Data: []byte(data)},
			&hale.Index{
				Tokens: []hale.TokenValue{
					{Param: "code", System: "http://loinc.org", Code: code},
					{Param: "status", System: "http://hl7.org/fhir/observation-status", Code: "final"},
					{Param: "category", System: "http://terminology.hl7.org/CodeSystem/observation-category", Code: "vital-signs"},
				},
				References: []hale.ReferenceValue{{Param: "subject", TargetType: "Patient", TargetID: patient, URL: "Patient/" + patient}},
				Dates:      []hale.DateValue{{Param: "date", Lo: when.UnixMicro(), Hi: when.Add(time.Second).UnixMicro()}},
				Quantities: []hale.QuantityValue{{Param: "value-quantity", System: "http://unitsofmeasure.org", Code: "mm[Hg]",
					Unit: "mmHg", Value: value, Lo: value - 0.05, Hi: value + 0.05}},
			}
	})
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
