package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"testing"
)

// TestMain runs `hale serve` instead of the tests when the test binary
// is started as the server child of TestImportBesideServe
// (HALE_IMPORT_TEST_SERVE=1); otherwise it runs the tests.
func TestMain(m *testing.M) {
	if os.Getenv("HALE_IMPORT_TEST_SERVE") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		err := run(ctx, []string{"serve"}, os.Getenv, os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
