// Package e2e drives the real hale binary over HTTP: first run, restarts,
// and a SIGKILL in the middle of a write load.
package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var haleBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hale-e2e")
	if err != nil {
		panic(err)
	}
	haleBin = filepath.Join(dir, "hale")
	build := exec.Command("go", "build", "-o", haleBin, "../cmd/hale")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building hale:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running hale serve.
type proc struct {
	cmd  *exec.Cmd
	base string // FHIR base URL
	logs *strings.Builder
}

var runningLine = regexp.MustCompile(`msg="Hale is running" fhir_base=(\S+)`)

// The demo client hale serve prints on its first start with demo data.
var (
	demoClientLine = regexp.MustCompile(`demo client  id ([0-9a-f]+) `)
	demoKeyLine    = regexp.MustCompile(`private key (\S+)`)
)

// creds are a backend-services client's id and key file.
type creds struct{ id, key string }

var (
	credsMu sync.Mutex
	// clients holds the client of each data folder or database the
	// tests run hale on (its --data or --database value).
	clients = map[string]creds{}
	// tokens holds an access token per server host:port; the tests'
	// HTTP client sends it (authTransport).
	tokens = map[string]string{}
)

// storeKey is the --database value of args, else the --data one.
func storeKey(args []string) string {
	var data, db string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--data":
			data = args[i+1]
		case "--database":
			db = args[i+1]
		}
	}
	if db != "" {
		return db
	}
	return data
}

// start runs `hale serve` with args on a free port, waits until it logs
// its FHIR base URL and gets an access token for it: from the demo client
// it printed, or, with --no-demo, from a client registered beforehand
// with `hale client add --new-key`.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	key := storeKey(args)
	credsMu.Lock()
	c, known := clients[key]
	credsMu.Unlock()
	if !known && slices.Contains(args, "--no-demo") {
		c = registerClient(t, args)
		known = true
	}
	cmd := exec.Command(haleBin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "HALE_CONFIG=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: &strings.Builder{}}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.logs.WriteString(line + "\n")
			if m := runningLine.FindStringSubmatch(line); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case base, ok := <-found:
		if !ok {
			t.Fatalf("hale exited before it was ready:\n%s", p.logs)
		}
		p.base = base
	case <-time.After(60 * time.Second):
		t.Fatalf("hale did not start within 60s:\n%s", p.logs)
	}
	if !known {
		id := demoClientLine.FindStringSubmatch(p.logs.String())
		kf := demoKeyLine.FindStringSubmatch(p.logs.String())
		if id == nil || kf == nil {
			t.Fatalf("no demo client printed and none registered:\n%s", p.logs)
		}
		c = creds{id: id[1], key: kf[1]}
		credsMu.Lock()
		clients[key] = c
		credsMu.Unlock()
	}
	tokArgs := []string{"token", "--url", p.base, "--client-id", c.id, "--client-key", c.key}
	if i := slices.Index(args, "--data"); i >= 0 && i+1 < len(args) {
		tokArgs = append(tokArgs, "--data", args[i+1]) // trusts its self-signed certificate
	}
	tok := runHale(t, tokArgs...)
	u, _ := url.Parse(p.base)
	credsMu.Lock()
	tokens[u.Host] = tok
	credsMu.Unlock()
	return p
}

// registerClient runs `hale client add --new-key` on the storage of args.
func registerClient(t *testing.T, args []string) creds {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "client.pem")
	add := []string{"client", "add", "--name", "e2e", "--scope", "system/*.cruds", "--new-key", keyFile}
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--data" || args[i] == "--database" {
			add = append(add, args[i], args[i+1])
		}
	}
	c := creds{id: runHale(t, add...), key: keyFile}
	credsMu.Lock()
	clients[storeKey(args)] = c
	credsMu.Unlock()
	return c
}

// runHale runs a hale command and returns its standard output, trimmed.
func runHale(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(haleBin, args...)
	cmd.Env = append(os.Environ(), "HALE_CONFIG=")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hale %v: %v\n%s", args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// authTransport sends the token of the server a request goes to.
type authTransport struct{}

func (authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	credsMu.Lock()
	tok := tokens[req.URL.Host]
	credsMu.Unlock()
	if tok != "" && req.Header.Get("Authorization") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// client is the tests' HTTP client: it authenticates to every server
// they started.
var client = &http.Client{Transport: authTransport{}, Timeout: 60 * time.Second}

// kill ends the process with SIGKILL, as a power cut or OOM kill would.
func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	r, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b
}
