// Package synth generates a deterministic synthetic patient population as
// FHIR R4 resources: patients with chronic conditions and the medications
// that treat them, vitals and laboratory results that trend over years,
// encounters, immunizations, allergies and procedures, all linked by
// references. It is for demos and benchmarks; every person, identifier and
// value is made up. docs/generate.md describes the model.
//
// Patient i's resources depend only on the seed, i and the simulation
// window, so the population is generated patient by patient, in parallel,
// without holding it in memory, and the same seed always gives the same
// resources in the same order.
package synth

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"
)

// DefaultEnd is the end of the default simulation window. It is a fixed
// date, not the clock, so that output does not change from day to day.
var DefaultEnd = time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)

// DefaultYears is the length of the default simulation window.
const DefaultYears = 15

// BlockSize is how many patients share one pool of Organizations and
// Practitioners.
const BlockSize = 1000

// Options configure a population.
type Options struct {
	Patients int   // how many patients
	Seed     int64 // the same seed gives the same population

	// Start and End bound the simulated record (default: the 15 years
	// before DefaultEnd). Patients are born before or during the window;
	// nothing is dated after End.
	Start, End time.Time

	// Workers is how many goroutines generate patients (default
	// GOMAXPROCS). It does not change the output.
	Workers int
}

func (o Options) withDefaults() (Options, error) {
	if o.Patients < 0 {
		return o, errors.New("synth: Patients must not be negative")
	}
	if o.End.IsZero() {
		o.End = DefaultEnd
	}
	if o.Start.IsZero() {
		o.Start = o.End.AddDate(-DefaultYears, 0, 0)
	}
	o.Start, o.End = o.Start.UTC(), o.End.UTC()
	if !o.Start.Before(o.End.AddDate(-1, 0, 0)) {
		return o, fmt.Errorf("synth: the window %s to %s must be at least a year long", o.Start.Format(time.DateOnly), o.End.Format(time.DateOnly))
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o, nil
}

// Resource is one generated resource.
type Resource struct {
	Type string         // resource type, e.g. "Observation"
	ID   string         // its logical id
	Body map[string]any // the resource, in the generic tree fhir.Marshal takes
}

// Generator makes the resources of one population.
type Generator struct {
	opt    Options
	prefix string // id prefix derived from the seed
	heavy  int    // patient i is heavy when i%heavyEvery == heavy
}

// heavyEvery: one patient in this many has 500+ encounters (dialysis).
const heavyEvery = 200

// New returns a generator for opt.
func New(opt Options) (*Generator, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	// The id prefix keeps populations of different seeds apart in one
	// store; "m" marks a negative seed (ids allow only [A-Za-z0-9.-]).
	p := "syn" + strconv.FormatInt(opt.Seed, 10)
	if opt.Seed < 0 {
		p = "synm" + strconv.FormatUint(uint64(-opt.Seed), 10)
	}
	return &Generator{
		opt:    opt,
		prefix: p,
		// Below 50 so that every population of 50 or more has one.
		heavy: int(mix(uint64(opt.Seed)^0x5eed) % 50),
	}, nil
}

// Options returns the options in force, defaults filled in.
func (g *Generator) Options() Options { return g.opt }

// PatientID returns the logical id of patient i.
func (g *Generator) PatientID(i int) string { return g.prefix + "-" + strconv.Itoa(i) }

// Heavy reports whether patient i is one of the heavy users (a dialysis
// patient with 500+ encounters).
func (g *Generator) Heavy(i int) bool { return i%heavyEvery == g.heavy }

// Patient returns the resources patient i brings into the stream: when i
// starts a block of BlockSize patients, the block's Organizations and
// Practitioners come first, then the Patient and everything in the
// record, in date order (Encounter first, then what it produced).
func (g *Generator) Patient(i int) []Resource {
	var out []Resource
	if i%BlockSize == 0 {
		out = g.pool(i / BlockSize)
	}
	return simulate(g, i, out)
}

// Generate streams the population to emit in a fixed order: patient by
// patient (see Generator.Patient), the same order for the same seed
// whatever opt.Workers is. It stops at the first error emit returns, or
// when ctx is done.
func Generate(ctx context.Context, opt Options, emit func(resourceType string, res map[string]any) error) error {
	g, err := New(opt)
	if err != nil {
		return err
	}
	return Run(ctx, g, func(i int) []Resource { return g.Patient(i) }, func(i int, rs []Resource) error {
		for _, r := range rs {
			if err := emit(r.Type, r.Body); err != nil {
				return err
			}
		}
		return nil
	})
}

// Run calls build for every patient index on g's workers and consume with
// the results in index order, one at a time; at most a few patients per
// worker are in memory at once. build must depend only on i for the order
// to be deterministic.
func Run[T any](ctx context.Context, g *Generator, build func(i int) T, consume func(i int, v T) error) error {
	n, workers := g.opt.Patients, g.opt.Workers
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		i   int
		out chan T
	}
	jobs := make(chan job)
	order := make(chan job, workers*4)
	go func() {
		defer close(order)
		defer close(jobs)
		for i := 0; i < n; i++ {
			j := job{i, make(chan T, 1)}
			select {
			case order <- j:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < workers; w++ {
		go func() {
			for j := range jobs {
				j.out <- build(j.i)
			}
		}()
	}
	for j := range order {
		var v T
		select {
		case v = <-j.out:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := consume(j.i, v); err != nil {
			return err
		}
	}
	return ctx.Err()
}
