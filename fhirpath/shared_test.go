package fhirpath

import (
	"github.com/hale-ehr/hale/internal/sharedtest"
	"testing"
)

// sharedDir returns a folder of the shared, read-only test material
// ($HALE_SHARED, else ../../shared from this package). Tests that need it
// skip when it is absent, except under CI=true, where they fail.
func sharedDir(tb testing.TB, sub string) string {
	tb.Helper()
	return sharedtest.Dir(tb, sub)
}
