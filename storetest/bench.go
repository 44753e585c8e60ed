package storetest

import (
	"context"
	"fmt"
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
