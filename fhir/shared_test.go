package fhir

import (
	"github.com/hale-ehr/hale/internal/sharedtest"
	"os"
	"testing"
)

// sharedDir returns a folder of the shared, read-only material (the
// official definitions and test corpora, ../../shared from this package,
// or $HALE_SHARED). Tests that need it skip when it is absent, except
// under CI=true, where they fail.
func sharedDir(tb testing.TB, sub string) string {
	tb.Helper()
	return sharedtest.Dir(tb, sub)
}

// defsDir returns the folder of the official R4 definition files:
// $HALE_FHIR_DEFS, else the shared fhir-r4 folder.
func defsDir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("HALE_FHIR_DEFS"); d != "" {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	return sharedDir(tb, "fhir-r4")
}
