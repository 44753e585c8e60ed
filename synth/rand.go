package synth

// rng is a small deterministic generator (SplitMix64). It does not use
// math/rand, whose derived methods may change between Go releases, nor any
// math function with assembly variants: a seed gives the same population
// with every Go release on a given architecture.
type rng struct{ s uint64 }

// mix is the SplitMix64 finaliser, used to derive independent streams.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// newRNG returns the stream for one (seed, kind, index) triple: patient i
// and pool block b get streams that do not depend on any other patient.
func newRNG(seed int64, kind, index uint64) *rng {
	return &rng{s: mix(uint64(seed)^0x9e3779b97f4a7c15) ^ mix(kind*0x632be59bd9b4e019+index+1)}
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix(r.s)
}

// float returns a uniform number in [0, 1).
func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// intn returns a uniform integer in [0, n).
func (r *rng) intn(n int) int {
	if n <= 1 {
		return 0
	}
	return int(r.next() % uint64(n))
}

// between returns a uniform number in [a, b).
func (r *rng) between(a, b float64) float64 { return a + (b-a)*r.float() }

// chance reports true with probability p.
func (r *rng) chance(p float64) bool { return r.float() < p }

// normal approximates a normal deviate by the Irwin–Hall sum of twelve
// uniforms (bounded to ±6 sd, which keeps values physiological).
func (r *rng) normal(mean, sd float64) float64 {
	s := 0.0
	for i := 0; i < 12; i++ {
		s += r.float()
	}
	return mean + sd*(s-6)
}

// pick returns an index with probability proportional to its weight.
func (r *rng) pick(weights ...float64) int {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	x := r.float() * total
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}

// poisson draws a Poisson count with mean lambda (Knuth's method with a
// product of uniforms, fine for the small means used here).
func (r *rng) poisson(lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	l := expNeg(lambda)
	k, p := 0, 1.0
	for {
		p *= r.float()
		if p <= l {
			return k
		}
		k++
	}
}

// expNeg computes e^-x for small x by squaring a Taylor series.
func expNeg(x float64) float64 {
	n := 0
	for x > 0.5 {
		x /= 2
		n++
	}
	// e^-x, |x| <= 0.5: 10 terms are exact to double precision.
	term, sum := 1.0, 1.0
	for i := 1; i <= 12; i++ {
		term *= -x / float64(i)
		sum += term
	}
	for ; n > 0; n-- {
		sum *= sum
	}
	return sum
}
