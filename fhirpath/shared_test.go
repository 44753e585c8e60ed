package fhirpath

import (
	"os"
	"path/filepath"
	"testing"
)

// sharedDir returns a folder of the shared, read-only test material
// ($HALE_SHARED, else ../../shared from this package). Tests that need it
// skip when it is absent, except under CI=true, where they fail.
func sharedDir(tb testing.TB, sub string) string {
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
