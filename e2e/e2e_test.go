// Package e2e drives the real hale binary over HTTP: first run, restarts,
// and a SIGKILL in the middle of a write load.
package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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

// start runs `hale serve` with args on a free port and waits until it
// logs its FHIR base URL.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
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
	return p
}

// kill ends the process with SIGKILL, as a power cut or OOM kill would.
func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b
}
