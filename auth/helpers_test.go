package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
)

// fakeClock is the tests' clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// engines runs fn on a fresh store of each engine (PostgreSQL skips
// without a server, except with CI=true).
func engines(t *testing.T, fn func(t *testing.T, st hale.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqlitetest.Open(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, pgtest.Open(t)) })
}

// testArgon2 keeps tests fast; the PHC string carries the parameters, so
// verification takes the same path as production.
var testArgon2 = Argon2Params{Memory: 256, Time: 1, Threads: 1}

type testEnv struct {
	svc   *Service
	clock *fakeClock
	store hale.Store
	logs  *bytes.Buffer
	key   []byte
}

const (
	testIssuer   = "https://ehr.example/auth"
	testAudience = "https://ehr.example/fhir"
	testTokenURL = "https://ehr.example/auth/token"
)

func newEnv(t *testing.T, st hale.Store) *testEnv {
	t.Helper()
	e := &testEnv{clock: newClock(), store: st, logs: &bytes.Buffer{}, key: bytes.Repeat([]byte{7}, 32)}
	svc, err := New(context.Background(), Options{
		Records: st.(hale.Records), SecretKey: e.key, Issuer: testIssuer, Audience: testAudience,
		Now: e.clock.Now, Argon2: testArgon2, RatePerMinute: 1 << 20, Burst: 1 << 20,
		Log: slog.New(slog.NewTextHandler(&syncWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func httptestServer(e *testEnv) *httptest.Server { return httptest.NewServer(e.svc.Handler()) }

func marshalPKCS8(k crypto.Signer) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(k) }
