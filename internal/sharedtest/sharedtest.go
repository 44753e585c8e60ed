// Package sharedtest finds the shared, read-only material tests use: the
// official FHIR definitions and the test corpora in ../shared beside the
// project (or $HALE_SHARED).
package sharedtest

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the folder sub of the shared material: $HALE_SHARED/sub,
// else ../../shared/sub from the package under test. When it is missing
// the test is skipped, except under CI=true, where it fails.
func Dir(tb testing.TB, sub string) string {
	tb.Helper()
	root := os.Getenv("HALE_SHARED")
	if root == "" {
		root = filepath.Join("..", "..", "shared")
	}
	dir := filepath.Join(root, sub)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("shared material %s is missing (CI=true): %v", dir, err)
		}
		tb.Skipf("shared material %s is missing", dir)
	}
	return dir
}
