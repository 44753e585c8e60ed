// Command hale is the Hale EHR: one binary that serves the FHIR API (and,
// as they arrive, the clinician app and the patient portal) on embedded
// SQLite or on PostgreSQL.
//
//	hale serve [flags]     run the server (hale serve -h for the flags)
//	hale token             print an access token for the API
//	hale fhirpath EXPR FILE evaluate a FHIRPath expression against a resource
//	hale version           print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `Hale: an open-source electronic health record on FHIR R4.

Usage:
  hale serve [flags]   run Hale (embedded SQLite in ./hale-data by default)
  hale fhirpath 'EXPRESSION' FILE.json
                       evaluate FHIRPath against a resource; print the result as JSON
  hale bench [--url URL [--token T | --client-id ID --client-key FILE]] [--database URL] [--out FILE]
                       measure a FHIR server (default: a fresh Hale) with a fixed workload
  hale generate --patients N [--seed S] (--out DIR | --data DIR | --database URL)
                       generate a deterministic synthetic population (hale generate -h)
  hale import [--data DIR | --database URL | --url URL [--token T | --client-id ID --client-key FILE]] PATH…
                       import FHIR Bundles, NDJSON, folders and .zip files (hale import -h)
  hale reindex [--type T,…] [--data DIR | --database URL]
                       recompute the search index (after adding SearchParameters)
  hale user add --username NAME --role ROLE --password-stdin [--organization ID] [--fhir-user Practitioner/ID]
                       create a user account (prints the TOTP enrolment URI for admins and physicians)
  hale user role --username NAME --role ROLE [--organization ID]
                       change a user's role (and organizations); recorded in the audit trail
  hale user reset --username NAME [--base URL]
                       print a one-time password-reset link (<base>/app/reset?code=…, 24 h)
  hale client add --name NAME --scope SCOPES (--jwks FILE | --new-key FILE | --public) [--redirect-uri URI]…
                       register a SMART client (backend services without --redirect-uri, a SMART
                       app with; --public for an app without keys, PKCE only); prints its id
  hale token [--url URL] [--client-id ID --client-key FILE]
                       print a backend-services access token (default: the demo client of the data folder)
  hale audit verify [--anchor N:HASH]… [--data DIR | --database URL]
                       check the audit trail's hash chain and signed checkpoints
  hale audit report --patient ID [--since DATE] [--data DIR | --database URL]
                       who accessed a patient's record, newest first
  hale gallery --out DIR [--html]
                       draw every screen of the clinician app with fixture data to PNG (needs chromium)
  hale version         print the version

Run "hale serve -h" for the settings.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hale:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		cfg, err := LoadConfig("hale serve", args[1:], getenv)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stderr)
	case "fhirpath":
		return fhirpathCommand(ctx, args[1:], stdout, stderr)
	case "bench":
		return benchCmd(ctx, args[1:], stdout, stderr)
	case "generate":
		return generateCommand(ctx, args[1:], getenv, stdout, stderr)
	case "import":
		return importCommand(ctx, args[1:], getenv, stdout, stderr)
	case "reindex":
		return reindex(ctx, args[1:], getenv, stdout)
	case "user":
		return userCommand(ctx, args[1:], getenv, os.Stdin, stdout)
	case "client":
		return clientCommand(ctx, args[1:], getenv, stdout)
	case "audit":
		return auditCommand(ctx, args[1:], getenv, stdout)
	case "token":
		return tokenCommand(ctx, args[1:], getenv, stdout)
	case "gallery":
		return galleryCommand(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "hale", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
