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
	"time"

	"github.com/hale-ehr/hale/bench"
	"github.com/hale-ehr/hale/demo"
	"github.com/hale-ehr/hale/export"
	"github.com/hale-ehr/hale/rest"
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
	phase := fs.Duration("phase", 5*time.Second, "how long each read and search phase runs")
	out := fs.String("out", "", "also write the report as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
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
		svc := rest.NewService(store)
		svc.Log = discardLogger()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		exports := export.New(store, svc)
		exports.Log = svc.Log
		go exports.Run(ctx)
		srv := &http.Server{Handler: routes(svc)}
		go srv.Serve(ln)
		defer srv.Close()
		base = "http://" + ln.Addr().String() + "/fhir"
		fmt.Fprintf(stderr, "measuring a fresh Hale on %s\n", where)
	}
	rep, err := bench.Run(ctx, bench.Options{BaseURL: base, Bundles: data, Ingest: *ingest, Phase: *phase, Log: stderr})
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
