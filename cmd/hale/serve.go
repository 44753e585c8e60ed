package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/audit"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/demo"
	"github.com/hale-ehr/hale/export"
	"github.com/hale-ehr/hale/internal/httpsec"
	"github.com/hale-ehr/hale/postgres"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/search"
	"github.com/hale-ehr/hale/sqlite"
	"github.com/hale-ehr/hale/web"
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

	c, err := newCore(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	defer c.close()

	// Demo data is loaded before access control is switched on.
	demoLoaded := false
	if !cfg.NoDemo {
		if demoLoaded, err = loadDemo(ctx, c.svc, log); err != nil {
			return fmt.Errorf("loading demo data: %w", err)
		}
	}

	var tlsConf *tls.Config
	if cfg.TLS() {
		if tlsConf, err = serverTLS(cfg, time.Now()); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	base := cfg.BaseURL
	if base == "" {
		base = cfg.scheme() + "://" + ln.Addr().String() + "/fhir"
	}
	s, err := c.server(ctx, cfg, base)
	if err != nil {
		ln.Close()
		return err
	}
	if demoLoaded {
		if err := demoCredentials(ctx, cfg, store, s.auth, base, logOut); err != nil {
			log.Warn("demo login and client not created", "err", err)
		}
	}
	srv := &http.Server{
		Handler:           s.handler(),
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("Hale is running", "fhir_base", base, "database", where, "version", version, "tls", tlsConf != nil)

	errc := make(chan error, 1)
	go func() {
		if tlsConf != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
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

// core is the FHIR core of a node with its audit trail: what hale serve
// (and hale bench's fresh Hale, which must measure the same thing) runs
// on the store before the HTTP server is put around it.
type core struct {
	store hale.Store
	svc   *rest.Service
	rec   *audit.Recorder
	log   *slog.Logger
}

// newCore builds the FHIR core on store, starts its audit recorder and
// loads the search parameters (reloading them every 30 s, for those
// written on other nodes).
func newCore(ctx context.Context, cfg Config, store hale.Store, log *slog.Logger) (*core, error) {
	svc := rest.NewService(store)
	svc.Log = log
	svc.BaseURL = cfg.BaseURL
	svc.MaxBodyBytes = cfg.MaxBodyBytes
	svc.DefaultCount, svc.MaxCount = int(cfg.SearchCount), int(cfg.SearchMaxCount)
	svc.Version = version
	// The audit trail (docs/security.md): every access is recorded.
	rec, err := newAuditRecorder(cfg, store, svc, log)
	if err != nil {
		return nil, err
	}
	svc.Audit = rec
	go rec.Run()
	c := &core{store: store, svc: svc, rec: rec, log: log}
	if err := svc.LoadSearchParameters(ctx); err != nil {
		c.close()
		return nil, fmt.Errorf("loading search parameters: %w", err)
	}
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
	return c, nil
}

// close writes and seals the audit records still queued.
func (c *core) close() {
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.rec.Close(closeCtx); err != nil {
		c.log.Error("audit: closing the recorder", "err", err)
	}
}

// server switches access control on and builds the rest of the node for
// the FHIR base: this node's export runner, authentication, the web app
// and the HTTP surface (server.go).
func (c *core) server(ctx context.Context, cfg Config, base string) (*server, error) {
	store, svc, rec, log := c.store, c.svc, c.rec, c.log
	// Access control (package access): every request's store is scoped
	// to its caller.
	records, ok := store.(hale.Records)
	if !ok {
		return nil, errors.New("the store keeps no records (hale.Records)")
	}
	policy := &access.Policy{Params: svc.Params, Grants: access.RecordGrants{Store: records}, Now: time.Now}
	scope := func(ctx context.Context, base hale.Store, p *hale.Principal) (hale.Store, error) {
		return policy.Scope(ctx, base, p)
	}

	// This node's Bulk Data export worker (package export): it claims
	// export jobs from the database, so with PostgreSQL the nodes share
	// them, and it deletes expired jobs and files. A job reads what the
	// principal that asked for it may.
	exports := export.New(store, svc)
	exports.Log = log
	exports.Access = func(ctx context.Context, p *hale.Principal, st hale.Store) (hale.Store, error) {
		return scope(ctx, st, p)
	}
	svc.ExportQueued = exports.Wake
	go exports.Run(ctx)

	// Authentication (package auth) and the HTTP hardening (httpsec):
	// every route but the public ones needs a caller (server.go).
	authSvc, err := authService(ctx, cfg, store, base, func(o *auth.Options) {
		o.DemoMode = !cfg.NoDemo
		o.Audit = rec
		o.Log = log
		// SMART apps: the patient picker searches what the user may
		// see; an app is granted no more than the user's role allows.
		o.Patients = auth.StorePatients{Store: store, Scope: scope, Fold: search.Fold}
		o.Roles = access.SMARTRoles{}
	})
	if err != nil {
		return nil, fmt.Errorf("authentication: %w", err)
	}
	sec, err := securityPolicy(cfg)
	if err != nil {
		return nil, err
	}
	go sweepAuth(ctx, authSvc, log)

	svc.Access = policy.Access
	conf := authSvc.Configuration()
	svc.OAuth = &rest.OAuthURIs{Authorize: conf.AuthorizationEndpoint, Token: conf.TokenEndpoint,
		Revoke: conf.RevocationEndpoint, Introspect: conf.IntrospectionEndpoint}
	// The clinician web app (package web) reads and writes through svc,
	// so with the caller's scoped store, as the API does.
	app, err := web.New(web.Options{FHIR: svc, Auth: authSvc, Log: log, IdleTimeout: authSvc.IdleTimeout(),
		LoginKey: authSvc.DeriveKey("web sign-in")})
	if err != nil {
		return nil, fmt.Errorf("web app: %w", err)
	}
	return &server{fhir: svc, auth: authSvc, sec: sec, store: store, log: log, policy: policy, btgAudit: rec,
		SMARTConfiguration: authSvc.SMARTConfigurationHandler(), app: app}, nil
}

// serverTLS is the TLS configuration of cfg: the certificate files, or a
// self-signed certificate in the data folder for the listen host,
// localhost and the loopback addresses.
func serverTLS(cfg Config, now time.Time) (*tls.Config, error) {
	cert, key := cfg.TLSCert, cfg.TLSKey
	if cfg.TLSSelfSigned {
		hosts := []string{"localhost", "127.0.0.1", "::1"}
		if h, _, err := net.SplitHostPort(cfg.Addr); err == nil && h != "" && !slices.Contains(hosts, h) && h != "0.0.0.0" && h != "::" {
			hosts = append(hosts, h)
		}
		if u, err := url.Parse(cfg.BaseURL); err == nil && u.Hostname() != "" && !slices.Contains(hosts, u.Hostname()) {
			hosts = append(hosts, u.Hostname())
		}
		var err error
		if cert, key, err = httpsec.SelfSigned(filepath.Join(cfg.Data, "tls"), hosts, now); err != nil {
			return nil, fmt.Errorf("self-signed certificate: %w", err)
		}
	}
	return httpsec.TLSConfig(cert, key)
}

// sweepAuth deletes expired sessions, grants, assertion ids, counters and
// retired keys every five minutes.
func sweepAuth(ctx context.Context, svc *auth.Service, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := svc.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				log.Warn("auth: sweeping expired records", "err", err)
			} else if n > 0 {
				log.Debug("auth: expired records deleted", "records", n)
			}
		}
	}
}

// loadDemo posts the demo patients' transaction bundles through the FHIR
// core when the database is empty, and reports whether it did.
func loadDemo(ctx context.Context, svc *rest.Service, log *slog.Logger) (bool, error) {
	var n int64
	err := svc.Store.View(ctx, func(r hale.Reader) error {
		var err error
		n, err = r.Count(ctx, "")
		return err
	})
	if err != nil || n > 0 {
		return false, err
	}
	bundles, err := demo.Bundles()
	if err != nil {
		return false, err
	}
	start := time.Now()
	for _, b := range bundles {
		req := &rest.Request{Method: "POST", Body: b.Data, Base: "", Return: rest.ReturnMinimal}
		if _, err := svc.Do(ctx, req); err != nil {
			return false, fmt.Errorf("%s: %w", b.Name, err)
		}
	}
	log.Info("loaded demo patients", "patients", len(bundles), "seconds", time.Since(start).Seconds())
	return true, nil
}
