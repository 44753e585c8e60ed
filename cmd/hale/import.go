package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/importer"
	"github.com/hale-ehr/hale/rest"
)

const importUsage = `Usage: hale import [flags] PATH…

Reads FHIR Bundles (transaction, batch, collection, searchset), single
resources (.json), Bulk Data NDJSON (.ndjson, .ndjson.gz), folders and .zip
files, and writes every resource with its own id (PUT Type/id), so running
it again adds nothing that is already there. It writes into the data folder
(--data) or PostgreSQL database (--database), also while "hale serve" runs
on it, or into any FHIR server (--url). Problems are reported with file and
line and the import carries on; the exit status is non-zero if anything
failed. See docs/import.md.

Flags:
  --url URL              FHIR base URL of a running server (http://host/fhir); with it:
  --token TOKEN          access token to send (Authorization: Bearer)
  --client-id ID         a SMART Backend Services client (hale client add): get and renew tokens
  --client-key FILE      with this PEM private key (EC P-384 or RSA)
  --scope SCOPES         scopes to ask for (default system/*.cruds)
  --data DIR             data folder of the embedded SQLite database ($HALE_DATA)
  --database URL         PostgreSQL URL ($HALE_DATABASE)
  --batch N              resources per transaction (default 500)
  --workers N            files decoded at once (default: the number of CPUs)
  --writers N            transactions in flight at once (default: the number of CPUs)
  --progress MODE        auto (a bar on a terminal, else lines), bar, lines or none
  --progress-every D     period of the progress lines (default 10s)
and the other settings of "hale serve" (--config, --sqlite-synchronous).
`

// importCommand implements `hale import`. Its own flags come from
// importFlags; the storage settings are the server's, read as `hale
// serve` reads them (defaults, config file, environment, flags).
func importCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hale import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("url", "", "")
	batch := fs.Int("batch", 500, "")
	workers := fs.Int("workers", 0, "")
	writers := fs.Int("writers", 0, "")
	progressMode := fs.String("progress", "auto", "")
	every := fs.Duration("progress-every", 0, "")
	var cf clientFlags
	cf.register(fs)

	// Paths and flags may come in any order; flags that are not import's
	// own go to LoadConfig.
	takesValue := map[string]bool{"config": true}
	var probe Config
	for _, s := range settings(&probe) {
		_, isBool := s.ptr.(*bool)
		takesValue[s.flag] = !isBool
	}
	var own, storeArgs, paths []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			paths = append(paths, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			paths = append(paths, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		dst := &storeArgs
		switch {
		case name == "h" || name == "help":
			fmt.Fprint(stdout, importUsage)
			return flag.ErrHelp
		case fs.Lookup(name) != nil:
			dst = &own
		case takesValue[name] || name == "no-demo":
		default:
			fmt.Fprint(stderr, importUsage)
			return fmt.Errorf("hale import: unknown flag %s", a)
		}
		*dst = append(*dst, a)
		if !hasValue && (dst == &own || takesValue[name]) && i+1 < len(args) {
			i++
			*dst = append(*dst, args[i])
		}
	}
	if err := fs.Parse(own); err != nil {
		return fmt.Errorf("hale import: %v", err)
	}
	if len(paths) == 0 {
		fmt.Fprint(stderr, importUsage)
		return fmt.Errorf("hale import: name the files or folders to import")
	}

	opts := importer.Options{Batch: *batch, Workers: *workers, Writers: *writers, Log: stderr, Every: *every}
	switch *progressMode {
	case "auto":
		opts.Terminal = isTerminal(stderr)
	case "bar":
		opts.Terminal = true
	case "lines":
	case "none":
		opts.Every = -1
	default:
		return fmt.Errorf("hale import: --progress %q: expected auto, bar, lines or none", *progressMode)
	}

	var target importer.Target
	var analyze func(context.Context) error // after a load into PostgreSQL: VACUUM (ANALYZE)
	where := *url
	if *url != "" {
		if len(storeArgs) > 0 {
			return fmt.Errorf("hale import: --url writes to a server; %s does not apply", storeArgs[0])
		}
		hc, err := cf.client(*url, nil)
		if err != nil {
			return fmt.Errorf("hale import: %v", err)
		}
		h := importer.HTTPTarget(*url, hc)
		if err := h.Check(ctx); err != nil {
			return err
		}
		target = h
	} else {
		if cf != (clientFlags{}) {
			return fmt.Errorf("hale import: --token, --client-id, --client-key and --scope go with --url")
		}
		cfg, err := LoadConfig("hale import", storeArgs, getenv)
		if err != nil {
			return err
		}
		store, name, err := openStore(ctx, cfg)
		if err != nil {
			return fmt.Errorf("opening the database: %w", err)
		}
		defer store.Close()
		svc := rest.NewService(store)
		svc.Version = version
		if err := svc.LoadSearchParameters(ctx); err != nil {
			return err
		}
		// Every write is audited, as through the server: the operator's
		// import is the actor (docs/security.md, "Audit trail").
		rec, err := newAuditRecorder(cfg, store, svc, discardLogger())
		if err != nil {
			return err
		}
		svc.Audit = rec
		go rec.Run()
		defer func() {
			closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			rec.Close(closeCtx)
		}()
		user := getenv("USER")
		if user == "" {
			user = "operator"
		}
		ctx = hale.WithPrincipal(ctx, &hale.Principal{Subject: "system/hale-import", Name: "hale import (" + user + ")",
			Role: hale.RoleSystem, Address: "local"})
		target, where = importer.ServiceTarget(svc), name
		analyze = analyzer(store)
	}

	sum, err := importer.Run(ctx, target, paths, opts)
	fmt.Fprintf(stdout, "imported into %s: %s\n", where, sum)
	if err != nil {
		return err
	}
	if analyze != nil {
		if err := analyze(ctx); err != nil {
			return err
		}
	}
	return sum.Err()
}

// isTerminal reports whether w is a terminal (a character device), where
// a redrawn progress bar makes sense. os.File.Stat is enough for that; no
// dependency is needed.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}
