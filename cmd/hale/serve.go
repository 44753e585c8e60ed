package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/demo"
	"github.com/hale-ehr/hale/export"
	"github.com/hale-ehr/hale/postgres"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite"
)

// openStore opens the configured engine: PostgreSQL when a database URL
// is set, else SQLite in the data folder.
func openStore(ctx context.Context, cfg Config) (hale.Store, string, error) {
	if cfg.Database != "" {
		s, err := postgres.Open(ctx, cfg.Database, postgres.Options{})
		return s, "PostgreSQL", err
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, "", err
	}
	path := filepath.Join(cfg.Data, "hale.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{Synchronous: cfg.SQLiteSynchronous})
	return s, "SQLite " + path, err
}

func serve(ctx context.Context, cfg Config, logOut io.Writer) error {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))

	store, where, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer store.Close()

	svc := rest.NewService(store)
	svc.Log = log
	svc.BaseURL = cfg.BaseURL
	svc.MaxBodyBytes = cfg.MaxBodyBytes
	svc.DefaultCount, svc.MaxCount = int(cfg.SearchCount), int(cfg.SearchMaxCount)
	svc.Version = version

	if err := svc.LoadSearchParameters(ctx); err != nil {
		return fmt.Errorf("loading search parameters: %w", err)
	}
	// Nodes sharing a database learn of SearchParameters written on
	// other nodes within half a minute.
	go func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := svc.LoadSearchParameters(ctx); err != nil && ctx.Err() == nil {
					log.Warn("reloading search parameters", "err", err)
				}
			}
		}
	}()

	// This node's Bulk Data export worker (package export): it claims
	// export jobs from the database, so with PostgreSQL the nodes share
	// them, and it deletes expired jobs and files.
	exports := export.New(store, svc)
	exports.Log = log
	go exports.Run(ctx)

	if !cfg.NoDemo {
		if err := loadDemo(ctx, svc, log); err != nil {
			return fmt.Errorf("loading demo data: %w", err)
		}
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	base := cfg.BaseURL
	if base == "" {
		base = "http://" + ln.Addr().String() + "/fhir"
	}
	srv := &http.Server{
		Handler:           rest.LogRequests(log, routes(svc)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("Hale is running", "fhir_base", base, "database", where, "version", version)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// routes is the route table of the whole server.
func routes(svc *rest.Service) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/fhir/", svc.Handler("/fhir"))
	mux.Handle("/fhir", svc.Handler("/fhir"))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hale</title></head>
<body><h1>Hale</h1><p>The FHIR R4 API is at <a href="/fhir/metadata">/fhir</a>.
Try <a href="/fhir/Patient">/fhir/Patient</a>.</p></body></html>`)
	})
	return mux
}

// loadDemo posts the demo patients' transaction bundles through the FHIR
// core when the database is empty.
func loadDemo(ctx context.Context, svc *rest.Service, log *slog.Logger) error {
	var n int64
	err := svc.Store.View(ctx, func(r hale.Reader) error {
		var err error
		n, err = r.Count(ctx, "")
		return err
	})
	if err != nil || n > 0 {
		return err
	}
	bundles, err := demo.Bundles()
	if err != nil {
		return err
	}
	start := time.Now()
	for _, b := range bundles {
		req := &rest.Request{Method: "POST", Body: b.Data, Base: "", Return: rest.ReturnMinimal}
		if _, err := svc.Do(ctx, req); err != nil {
			return fmt.Errorf("%s: %w", b.Name, err)
		}
	}
	log.Info("loaded demo patients", "patients", len(bundles), "seconds", time.Since(start).Seconds())
	return nil
}
