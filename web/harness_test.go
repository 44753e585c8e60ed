package web

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/demo"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite"
)

// env is Hale in-process: SQLite, the demo patients, a physician with a
// second factor, the app on an httptest server.
type env struct {
	t        testing.TB
	store    hale.Store
	loader   *rest.Service // no access control: test set-up only
	fhir     *rest.Service // what the app uses
	auth     *auth.Service
	app      *App
	srv      *httptest.Server
	seed     []byte // the physician's TOTP seed
	patients []string
	orgs     []string
	prac     string
}

const (
	testUser     = "dr.house"
	testPassword = "correct horse battery staple"
)

var testArgon2 = auth.Argon2Params{Memory: 256, Time: 1, Threads: 1}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/hale.db", sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newEnvOn(t, st)
}

// newEnvOn is newEnv on the store st (PostgreSQL for the tests that
// depend on the engine's concurrency).
func newEnvOn(t testing.TB, st hale.Store) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, store: st, loader: rest.NewService(st)}
	e.loader.Log = quietLog()
	bundles, err := demo.Bundles()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bundles {
		if _, err := e.loader.Do(ctx, &rest.Request{Method: "POST", Body: b.Data, Return: rest.ReturnMinimal}); err != nil {
			t.Fatalf("%s: %v", b.Name, err)
		}
	}
	st.View(ctx, func(r hale.Reader) error {
		e.patients, _ = r.Find(ctx, "Patient", nil, 0)
		e.orgs, _ = r.Find(ctx, "Organization", nil, 0)
		pr, _ := r.Find(ctx, "Practitioner", nil, 1)
		e.prac = "Practitioner/" + pr[0]
		return nil
	})
	e.start()
	return e
}

// start wires the FHIR core with access control, auth and the app.
func (e *env) start() {
	t := e.t
	ctx := context.Background()
	e.fhir = rest.NewService(e.store)
	e.fhir.Log = quietLog()
	pol := access.NewPolicy()
	pol.Params = e.fhir.Params
	e.fhir.Access = pol.Access
	var err error
	e.auth, err = auth.New(ctx, auth.Options{Records: e.store.(hale.Records), SecretKey: make([]byte, 32),
		Issuer: "http://hale.test/auth", Audience: "http://hale.test/fhir", Argon2: testArgon2,
		UserLockout: auth.Lockout{Threshold: 50, Base: time.Second, Max: time.Second, Window: time.Hour}, RatePerMinute: 10000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if e.seed == nil {
		c, err := e.auth.AddUser(ctx, auth.NewUser{Username: testUser, Password: testPassword, Role: hale.RolePhysician,
			FHIRUser: e.prac, Organizations: e.orgs})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(c.ProvisioningURI)
		e.seed, err = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(u.Query().Get("secret")))
		if err != nil {
			t.Fatal(err)
		}
	}
	e.app, err = New(Options{FHIR: e.fhir, Auth: e.auth, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/app/", e.app)
	mux.Handle("/app", e.app)
	mux.Handle("/auth/", e.auth.Handler())
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
}

// totp is the current code of the physician (RFC 6238, SHA-1, 6 digits,
// 30 s), at offset steps from now.
func (e *env) totp(offset int) string { return totpOf(e.seed, offset) }

// addUser adds a user of role in the demo organizations and returns
// their TOTP seed.
func (e *env) addUser(username string, role hale.Role) []byte {
	e.t.Helper()
	c, err := e.auth.AddUser(context.Background(), auth.NewUser{Username: username, Password: testPassword, Role: role, Organizations: e.orgs})
	if err != nil {
		e.t.Fatal(err)
	}
	u, _ := url.Parse(c.ProvisioningURI)
	seed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(u.Query().Get("secret")))
	if err != nil {
		e.t.Fatal(err)
	}
	return seed
}

func totpOf(seed []byte, offset int) string {
	step := time.Now().Unix()/30 + int64(offset)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, seed)
	m.Write(msg[:])
	sum := m.Sum(nil)
	o := sum[len(sum)-1] & 15
	v := binary.BigEndian.Uint32(sum[o:o+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1000000)
}

// patient returns a demo patient by family name.
func (e *env) patient(family string) string {
	b, err := e.loader.Do(context.Background(), &rest.Request{Method: "GET", Type: "Patient", Query: url.Values{"family": {family}}})
	if err != nil {
		e.t.Fatal(err)
	}
	raw, _ := body(b)
	var bun struct {
		Entry []struct {
			Resource struct {
				ID string `json:"id"`
			} `json:"resource"`
		} `json:"entry"`
	}
	json.Unmarshal(raw, &bun)
	if len(bun.Entry) == 0 {
		e.t.Fatalf("no patient %s", family)
	}
	return bun.Entry[0].Resource.ID
}

// client is a browser without JavaScript: a cookie jar, redirects
// followed.
type client struct {
	e    *env
	http *http.Client
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, http: &http.Client{Jar: jar}}
}

var (
	tokenRE  = regexp.MustCompile(`name="token" value="([^"]+)"`)
	ticketRE = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
	csrfRE   = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

func (c *client) get(path string) (int, string) {
	c.e.t.Helper()
	resp, err := c.http.Get(c.e.srv.URL + path)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (c *client) post(path string, form url.Values) (int, string) {
	c.e.t.Helper()
	req, _ := http.NewRequest("POST", c.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.e.srv.URL)
	resp, err := c.http.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// login signs in with password and code; it returns the Home page.
func (c *client) login() string { return c.loginAs(testUser, c.e.seed) }

// loginAs signs in as username (password testPassword, TOTP seed).
func (c *client) loginAs(username string, seed []byte) string {
	c.e.t.Helper()
	_, page := c.get("/app/login")
	tok := tokenRE.FindStringSubmatch(page)[1]
	_, page = c.post("/app/login", url.Values{"token": {tok}, "username": {username}, "password": {testPassword}})
	m := ticketRE.FindStringSubmatch(page)
	if m == nil && strings.Contains(page, "Recently viewed patients") {
		return page // a role without a second factor
	}
	if m == nil {
		c.e.t.Fatalf("no code step after the password:\n%s", page)
	}
	tok = tokenRE.FindStringSubmatch(page)[1]
	status, page := c.post("/app/login", url.Values{"token": {tok}, "step": {"code"}, "ticket": {m[1]}, "code": {totpOf(seed, 0)}})
	if status != 200 || !strings.Contains(page, "Recently viewed patients") {
		c.e.t.Fatalf("login: %d\n%s", status, page)
	}
	return page
}

// csrf is the form token on page.
func csrf(t testing.TB, page string) string {
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf token in page")
	}
	return m[1]
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newPost(u string, form url.Values) (*http.Request, error) {
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err == nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req, err
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func putJSON(t testing.TB, svc *rest.Service, typ, id string, r map[string]any) {
	t.Helper()
	b, _ := json.Marshal(r)
	if _, err := svc.Do(context.Background(), &rest.Request{Method: "PUT", Type: typ, ID: id, Body: b}); err != nil {
		t.Fatal(err)
	}
}
