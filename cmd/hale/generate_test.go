package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/sqlite"
)

func runGenerate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := func(string) string { return "" }
	err := run(context.Background(), append([]string{"generate"}, args...), env, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

// TestGenerateNDJSON: `hale generate --out` writes one NDJSON file per
// type whose lines are valid resources, the same bytes every time.
func TestGenerateNDJSON(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	out, err := runGenerate(t, "--patients", "12", "--seed", "5", "--out", a, "--progress-every", "0")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "generated 12 patients") || !strings.Contains(out, "Observation") {
		t.Errorf("summary:\n%s", out)
	}
	if _, err := runGenerate(t, "--patients=12", "--seed=5", "--out="+b, "--workers", "1"); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"Patient", "Encounter", "Condition", "Observation", "MedicationRequest", "Immunization", "Procedure", "DiagnosticReport", "Organization", "Practitioner"} {
		data, err := os.ReadFile(filepath.Join(a, typ+".ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		again, _ := os.ReadFile(filepath.Join(b, typ+".ndjson"))
		if !bytes.Equal(data, again) {
			t.Errorf("%s.ndjson differs between two runs", typ)
		}
		lines := 0
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines++
			res, err := fhir.Decode(sc.Bytes())
			if err != nil {
				t.Fatalf("%s line %d: %v", typ, lines, err)
			}
			if res["resourceType"] != typ {
				t.Fatalf("%s line %d is a %v", typ, lines, res["resourceType"])
			}
			if issues := fhir.Validate(res); len(issues) > 0 {
				t.Fatalf("%s line %d: %v", typ, lines, issues[0].Diagnostics)
			}
		}
		if lines == 0 || typ == "Patient" && lines != 12 {
			t.Errorf("%s.ndjson: %d lines", typ, lines)
		}
	}

	// --gzip writes the same content compressed.
	c := filepath.Join(dir, "c")
	if _, err := runGenerate(t, "--patients", "12", "--seed", "5", "--out", c, "--gzip"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(c, "Patient.ndjson.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var unzipped bytes.Buffer
	unzipped.ReadFrom(zr)
	plain, _ := os.ReadFile(filepath.Join(a, "Patient.ndjson"))
	if !bytes.Equal(unzipped.Bytes(), plain) {
		t.Error("Patient.ndjson.gz does not hold Patient.ndjson")
	}
}

// TestGenerateStore: without --out the population goes through the FHIR
// core into the data folder, with the generator's ids.
func TestGenerateStore(t *testing.T) {
	dir := t.TempDir()
	out, err := runGenerate(t, "--patients", "3", "--seed", "8", "--data", dir, "--batch", "2", "--sqlite-synchronous", "NORMAL")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "hale.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var patients, practitioners int64
	err = s.View(ctx, func(r hale.Reader) error {
		if _, err := r.Current(ctx, "Patient", "syn8-2"); err != nil {
			return err
		}
		patients, _ = r.Count(ctx, "Patient")
		practitioners, _ = r.Count(ctx, "Practitioner")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if patients != 3 || practitioners == 0 {
		t.Errorf("%d patients, %d practitioners in the store", patients, practitioners)
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--seed", "1", "--out", t.TempDir()},                              // no --patients
		{"--patients", "0", "--out", t.TempDir()},                          // not positive
		{"--patients", "2", "--out", t.TempDir(), "--data", t.TempDir()},   // two targets
		{"--patients", "2", "--out", t.TempDir(), "--start", "2020-13-01"}, // bad date
		{"--patients", "2", "--out", t.TempDir(), "--frobnicate"},          // unknown flag
		{"--patients", "2", "--data", t.TempDir(), "--gzip"},               // gzip without --out
		{"--patients", "2", "--out", t.TempDir(), "--batch", "0"},          // batch
		{"--patients", "2", "--out", t.TempDir(), "extra"},                 // stray argument
	} {
		if out, err := runGenerate(t, args...); err == nil {
			t.Errorf("%v: no error\n%s", args, out)
		}
	}
}
