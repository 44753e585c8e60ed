package synth

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/hale-ehr/hale/fhir"
)

// Stats describes a generated population.
type Stats struct {
	Patients  int
	Resources int
	ByType    map[string]int
	// Conditions counts patients with each condition in their record,
	// by SNOMED CT display.
	Conditions map[string]int
	// Heavy counts patients with 500 or more encounters; MaxEncounters
	// is the most any patient has.
	Heavy, MaxEncounters int
}

// NewStats returns empty Stats.
func NewStats() *Stats {
	return &Stats{ByType: map[string]int{}, Conditions: map[string]int{}}
}

// Add counts one patient's resources.
func (s *Stats) Add(rs []Resource) {
	encounters := 0
	seen := map[string]bool{}
	for _, r := range rs {
		s.Resources++
		s.ByType[r.Type]++
		switch r.Type {
		case "Patient":
			s.Patients++
		case "Encounter":
			encounters++
		case "Condition":
			cc, _ := r.Body["code"].(obj)
			if text, _ := cc["text"].(string); text != "" && !seen[text] {
				seen[text] = true
				s.Conditions[text]++
			}
		}
	}
	if encounters >= 500 {
		s.Heavy++
	}
	s.MaxEncounters = max(s.MaxEncounters, encounters)
}

// Types returns the resource types counted, sorted.
func (s *Stats) Types() []string {
	var ts []string
	for t := range s.ByType {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// encoded is one patient's resources marshalled, grouped by type in
// first-seen order.
type encoded struct {
	res   []Resource
	types []string
	lines map[string][]byte
	err   error
}

func encodePatient(g *Generator, i int) encoded {
	rs := g.Patient(i)
	enc := encoded{res: rs, lines: map[string][]byte{}}
	for _, r := range rs {
		b, err := fhir.Marshal(r.Body)
		if err != nil {
			enc.err = err
			return enc
		}
		if _, ok := enc.lines[r.Type]; !ok {
			enc.types = append(enc.types, r.Type)
		}
		enc.lines[r.Type] = append(append(enc.lines[r.Type], b...), '\n')
	}
	return enc
}

// NDJSONOptions configure WriteNDJSON.
type NDJSONOptions struct {
	Gzip bool // write Type.ndjson.gz instead of Type.ndjson
	// Progress, when set, is called after each patient with the running
	// totals (from one goroutine).
	Progress func(patients, resources int)
}

// WriteNDJSON generates the population into dir as Bulk Data-style
// NDJSON, one file per resource type (Patient.ndjson, Observation.ndjson,
// …), one resource per line, patients in order. Generation and encoding
// run on opt.Workers goroutines; the files are the same whatever the
// number.
func WriteNDJSON(ctx context.Context, opt Options, dir string, nopt NDJSONOptions) (*Stats, error) {
	g, err := New(opt)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	type sink struct {
		f  *os.File
		gz *gzip.Writer
		w  *bufio.Writer
	}
	sinks := map[string]*sink{}
	open := func(typ string) (*sink, error) {
		if s, ok := sinks[typ]; ok {
			return s, nil
		}
		name := typ + ".ndjson"
		if nopt.Gzip {
			name += ".gz"
		}
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		s := &sink{f: f}
		var w io.Writer = f
		if nopt.Gzip {
			s.gz = gzip.NewWriter(f)
			w = s.gz
		}
		s.w = bufio.NewWriterSize(w, 256<<10)
		sinks[typ] = s
		return s, nil
	}
	stats := NewStats()
	err = Run(ctx, g, func(i int) encoded { return encodePatient(g, i) }, func(i int, enc encoded) error {
		if enc.err != nil {
			return enc.err
		}
		for _, typ := range enc.types {
			s, err := open(typ)
			if err != nil {
				return err
			}
			if _, err := s.w.Write(enc.lines[typ]); err != nil {
				return err
			}
		}
		stats.Add(enc.res)
		if nopt.Progress != nil {
			nopt.Progress(stats.Patients, stats.Resources)
		}
		return nil
	})
	for _, s := range sinks {
		e := s.w.Flush()
		if s.gz != nil {
			e = errors.Join(e, s.gz.Close())
		}
		err = errors.Join(err, e, s.f.Close())
	}
	if err != nil {
		return nil, err
	}
	return stats, nil
}
