package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/bench"
	"github.com/hale-ehr/hale/demo"
	"github.com/hale-ehr/hale/internal/clientauth"
)

// benchCmd implements `hale bench`: the benchmark workload (package
// bench) against a FHIR server given by --url, or against a fresh Hale
// started in this process on a temporary SQLite folder (or on the
// PostgreSQL database given by --database).
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hale bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("url", "", "FHIR base URL of the server to measure (default: a fresh Hale in this process)")
	database := fs.String("database", "", "with no --url: run the fresh Hale on this PostgreSQL database (it must be empty)")
	bundles := fs.String("bundles", "", "folder of transaction bundles (*.json) to ingest (default: the five demo patients)")
	ingest := fs.Duration("ingest", 20*time.Second, "how long to ingest")
	ingestClients := fs.Int("ingest-clients", 4, "how many clients post bundles at once")
	phase := fs.Duration("phase", 5*time.Second, "how long each read and search phase runs")
	out := fs.String("out", "", "also write the report as JSON to this file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (with no --url: the measured Hale too) to this file")
	var cf clientFlags
	cf.register(fs) // with --url: how to authenticate to it
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	httpClient := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var data [][]byte
	if *bundles != "" {
		files, _ := filepath.Glob(filepath.Join(*bundles, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			data = append(data, b)
		}
		if len(data) == 0 {
			return fmt.Errorf("--bundles %s: no *.json files", *bundles)
		}
	} else {
		demos, err := demo.Bundles()
		if err != nil {
			return err
		}
		for _, d := range demos {
			data = append(data, d.Data)
		}
	}
	base := *target
	var afterIngest func(context.Context) error
	if base == "" {
		cfg := DefaultConfig()
		cfg.NoDemo = true
		cfg.Database = *database
		dir, err := os.MkdirTemp("", "hale-bench-data")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.Data = dir
		store, where, err := openStore(ctx, cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		afterIngest = analyzer(store)
		// The node as hale serve assembles it (serve.go): audit trail,
		// access control, authentication, headers, CORS, cross-site
		// checks, export runner; without the per-caller rate limit,
		// which would measure itself.
		log := discardLogger()
		c, err := newCore(ctx, cfg, store, log)
		if err != nil {
			return err
		}
		defer c.close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		base = "http://" + ln.Addr().String() + "/fhir"
		cfg.RateLimit = 0
		s, err := c.server(ctx, cfg, base)
		if err != nil {
			ln.Close()
			return err
		}
		authSvc := s.auth
		srv := &http.Server{Handler: s.handler()}
		go srv.Serve(ln)
		defer srv.Close()
		// A backend-services client of its own, whose tokens the
		// workload sends (and renews).
		key, err := clientauth.NewKey(filepath.Join(dir, "bench-client.pem"))
		if err != nil {
			return err
		}
		client, err := authSvc.AddClient(ctx, auth.NewClient{Name: "hale bench", Scopes: []string{"system/*.cruds"}, JWKS: key.PublicJWKS()})
		if err != nil {
			return err
		}
		src := &clientauth.Source{Base: base, ClientID: client.ID, Key: key}
		httpClient.Transport = clientauth.Transport(src.Token, httpClient.Transport)
		fmt.Fprintf(stderr, "measuring a fresh Hale on %s\n", where)
	} else {
		var err error
		if httpClient, err = cf.client(base, httpClient); err != nil {
			return err
		}
	}
	rep, err := bench.Run(ctx, bench.Options{BaseURL: base, Client: httpClient, Bundles: data, Ingest: *ingest, IngestClients: *ingestClients, Phase: *phase, Log: stderr,
		AfterIngest: afterIngest})
	if err != nil {
		return err
	}
	rep.Table(stdout)
	if *out != "" {
		js, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out, js, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// analyzer returns what refreshes store's planner statistics after a bulk
// load (PostgreSQL's ANALYZE), or nil for an engine without them.
func analyzer(store hale.Store) func(context.Context) error {
	if a, ok := store.(interface{ Analyze(context.Context) error }); ok {
		return a.Analyze
	}
	return nil
}
