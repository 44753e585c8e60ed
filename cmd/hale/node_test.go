package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/internal/clientauth"
	"github.com/hale-ehr/hale/postgres/pgtest"
)

// testNode is a Hale node assembled as `hale serve` assembles it (serve.go:
// newCore, then core.server: audit recorder, access policy, auth with the
// recorder, export runner, web app, every middleware), with the default
// configuration, serving real HTTP on a loopback port. Clients connect
// from addresses of their own in 127.0.0.0/8, so the audit's source
// addresses are the ones the kernel saw.
type testNode struct {
	t         *testing.T
	ctx       context.Context
	cfg       Config
	store     hale.Store
	core      *core
	srv       *server
	origin    string   // http://127.0.0.1:port
	base      string   // the FHIR base
	storeArgs []string // --data DIR [--database URL]: the CLI on the same data
}

func startNode(t *testing.T, engine string) *testNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := DefaultConfig()
	cfg.Data = t.TempDir()
	cfg.NoDemo = true
	n := &testNode{t: t, ctx: ctx, storeArgs: []string{"--data", cfg.Data}}
	if engine == "postgres" {
		cfg.Database = pgtest.Schema(t)
		n.storeArgs = append(n.storeArgs, "--database", cfg.Database)
	}
	cfg.Addr = "127.0.0.1:0"
	n.cfg = cfg
	store, _, err := openStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.store = store
	c, err := newCore(ctx, cfg, store, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	n.core = c
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.origin = "http://" + ln.Addr().String()
	n.base = n.origin + "/fhir"
	if n.srv, err = c.server(ctx, cfg, n.base); err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: n.srv.handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		hs.Close()
		cancel()
		c.close()
		store.Close()
	})
	return n
}

// cli runs `hale <args…> --data … [--database …]` in this process, on the
// node's data while it serves.
func (n *testNode) cli(stdin string, args ...string) string {
	n.t.Helper()
	var out bytes.Buffer
	getenv := func(string) string { return "" }
	args = append(args, n.storeArgs...)
	var err error
	switch args[0] {
	case "user":
		err = userCommand(n.ctx, args[1:], getenv, strings.NewReader(stdin), &out)
	default:
		n.t.Fatalf("cli: %v", args)
	}
	if err != nil {
		n.t.Fatalf("hale %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// actor is one caller: its own source address, and its credentials.
type actor struct {
	n       *testNode
	addr    string // 127.0.0.x
	subject string // its Principal.Subject, as the audit names it
	http    *http.Client
	hdr     http.Header // Authorization, or Cookie and Origin
}

func (n *testNode) actor(addr string) *actor {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 5 * time.Second}
	return &actor{n: n, addr: addr, hdr: http.Header{},
		http: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// backend makes a the backend-services client: a system/*.cruds client
// registered on the node, holding a token.
func (a *actor) backend() *actor {
	a.n.t.Helper()
	key, err := clientauth.NewKey(filepath.Join(a.n.t.TempDir(), "client.pem"))
	if err != nil {
		a.n.t.Fatal(err)
	}
	c, err := a.n.srv.auth.AddClient(a.n.ctx, auth.NewClient{Name: "evidence", Scopes: []string{"system/*.cruds"}, JWKS: key.PublicJWKS()})
	if err != nil {
		a.n.t.Fatal(err)
	}
	src := &clientauth.Source{Base: a.n.base, ClientID: c.ID, Key: key, HTTP: a.http}
	tok, err := src.Token(a.n.ctx)
	if err != nil {
		a.n.t.Fatal(err)
	}
	a.subject = "client/" + c.ID
	a.hdr.Set("Authorization", "Bearer "+tok)
	return a
}

// login signs in through POST /auth/login and keeps the session cookie
// on success; it returns the status.
func (a *actor) login(username, password, code string) int {
	a.n.t.Helper()
	form := url.Values{"username": {username}, "password": {password}}
	if code != "" {
		form.Set("code", code)
	}
	st, h, _ := a.send("POST", "/auth/login", []byte(form.Encode()), false, "Content-Type", "application/x-www-form-urlencoded", "Origin", a.n.origin)
	if st == 200 {
		for _, c := range (&http.Response{Header: h}).Cookies() {
			if c.Name == auth.SessionCookie {
				a.hdr.Set("Cookie", c.Name+"="+c.Value)
				a.hdr.Set("Origin", a.n.origin)
			}
		}
	}
	return st
}

// do sends a request with a's credentials; headers are name, value pairs.
func (a *actor) do(method, path string, body []byte, headers ...string) (int, http.Header, []byte) {
	a.n.t.Helper()
	return a.send(method, path, body, true, headers...)
}

func (a *actor) send(method, path string, body []byte, creds bool, headers ...string) (int, http.Header, []byte) {
	a.n.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = a.n.origin + path
	}
	req, err := http.NewRequestWithContext(a.n.ctx, method, u, rd)
	if err != nil {
		a.n.t.Fatal(err)
	}
	if creds {
		for k, v := range a.hdr {
			req.Header[k] = v
		}
	}
	if body != nil && !strings.HasPrefix(path, "/auth/") {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := a.http.Do(req)
	if err != nil {
		a.n.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 500 {
		a.n.t.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return res.StatusCode, res.Header, b
}
