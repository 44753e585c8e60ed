package auth

import (
	"context"
	"math"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hale-ehr/hale"
)

// Lockout is the backoff after failed logins. After Threshold failures in
// a row the key (a username, or a client address) is locked for Base,
// and each further failure doubles the lock, up to Max. Locked attempts
// are refused without checking the password, so guessing stops there;
// the counter is forgotten after Window without failures, and a success
// clears a username's counter. Counters live in hale.Records, so every
// node and process sees the same ones.
type Lockout struct {
	Threshold int
	Base, Max time.Duration
	Window    time.Duration
}

// The defaults: 5 failures per username (then 30 s, 1 min, 2 min … up to
// 1 h), 20 per address (a clinic behind one NAT shares it).
var (
	DefaultUserLockout    = Lockout{Threshold: 5, Base: 30 * time.Second, Max: time.Hour, Window: 24 * time.Hour}
	DefaultAddressLockout = Lockout{Threshold: 20, Base: 30 * time.Second, Max: time.Hour, Window: 24 * time.Hour}
)

type lockState struct {
	Failures int       `json:"failures"`
	Until    time.Time `json:"until,omitzero"`
}

// lockedUntil returns when key's lock ends, or the zero time if it is not
// locked at now.
func (s *Service) lockedUntil(ctx context.Context, key string) (time.Time, error) {
	var st lockState
	r, err := s.getJSON(ctx, kindLock, key, &st)
	if hale.IsKind(err, hale.KindNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	now := s.now()
	if !r.Expires.IsZero() && !r.Expires.After(now) {
		return time.Time{}, nil // forgotten
	}
	if st.Until.After(now) {
		return st.Until, nil
	}
	return time.Time{}, nil
}

// recordFailure counts a failure for key under policy l (compare-and-swap,
// retried on a lost race).
func (s *Service) recordFailure(ctx context.Context, key string, l Lockout) error {
	for range 20 {
		now := s.now()
		var st lockState
		r, err := s.getJSON(ctx, kindLock, key, &st)
		var version int64
		switch {
		case hale.IsKind(err, hale.KindNotFound):
		case err != nil:
			return err
		default:
			version = r.Version
			if !r.Expires.IsZero() && !r.Expires.After(now) {
				st = lockState{} // expired: start again
			}
		}
		st.Failures++
		if st.Failures >= l.Threshold {
			exp := min(st.Failures-l.Threshold, 30)
			d := time.Duration(float64(l.Base) * math.Pow(2, float64(exp)))
			if d > l.Max || d <= 0 {
				d = l.Max
			}
			st.Until = now.Add(d)
		}
		_, err = s.putJSON(ctx, kindLock, key, version, now.Add(l.Window), st)
		if !hale.IsKind(err, hale.KindConflict) {
			return err
		}
	}
	return &hale.Error{Kind: hale.KindInternal, Op: "auth.recordFailure", Message: "lockout counter contended"}
}

// clearFailures forgets key's failures.
func (s *Service) clearFailures(ctx context.Context, key string) error {
	err := s.rec.DeleteRecord(ctx, kindLock, key, 0)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil
	}
	return err
}

func userLockKey(username string) string { return "user:" + normUsername(username) }
func addrLockKey(addr string) string     { return "ip:" + addr }

// ClientAddress is the host part of a request's RemoteAddr. Proxy headers
// are not trusted (a forged X-Forwarded-For would dodge the lockout).
func ClientAddress(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// limiter is a token bucket per client address, for the login and token
// endpoints of this node: rate per minute, up to burst at once. It is the
// one piece of per-node memory: it protects this node's CPU (argon2,
// signature checks) rather than an account, which the lockout does.
type limiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	now     hale.Now
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(perMinute, burst int, now hale.Now) *limiter {
	return &limiter{rate: float64(perMinute) / 60, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for key; when there is none it returns false and
// how long until there will be one.
func (l *limiter) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.sweep) > time.Minute { // forget full buckets
		for k, b := range l.buckets {
			if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}
