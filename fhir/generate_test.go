package fhir

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestGenerateUpToDate regenerates the definitions from the official files
// into a temporary directory and fails if the output differs from the
// committed files: CI fails when regenerating changes anything.
func TestGenerateUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerating takes a few seconds")
	}
	src := defsDir(t)
	abs, err := filepath.Abs(src)
	if err != nil {
		t.Fatal(err)
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			t.Skip("no go command to run the generator")
		}
	}
	out := t.TempDir()
	cmd := exec.Command(goBin, "run", "./internal/gen", "-shared", abs, "-out", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator failed: %v\n%s", err, msg)
	}
	for _, f := range []string{filepath.Join("defs", "r4.json"), "resourcetypes_gen.go"} {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is out of date: run go generate ./fhir and commit the result", f)
		}
	}
}
