package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/internal/clientauth"
)

// Demo mode: on the first start with the demo patients, `hale serve`
// makes a demo login and a ready backend-services client, so a new user
// can log in and call the API at once, and prints them once (not through
// the log, and never again).

const (
	demoUsername   = "demo"
	demoClientKey  = "demo-client.pem"  // in the data folder
	demoClientFile = "demo-client.json" // in the data folder: what `hale token` needs
	demoScope      = "system/*.cruds"
)

// demoClient is the content of demo-client.json.
type demoClient struct {
	ClientID string `json:"client_id"`
	KeyFile  string `json:"key_file"`
	FHIRBase string `json:"fhir_base"`
}

// demoCredentials creates the demo physician (password generated, no
// second factor: auth allows that in demo mode only) and the demo client
// (key written to the data folder), and prints both to out.
func demoCredentials(ctx context.Context, cfg Config, store hale.Store, svc *auth.Service, base string, out io.Writer) error {
	var practitioners, orgs []string
	err := store.View(ctx, func(r hale.Reader) error {
		var err error
		if practitioners, err = r.Find(ctx, "Practitioner", nil, 1); err != nil {
			return err
		}
		orgs, err = r.Find(ctx, "Organization", nil, 20)
		return err
	})
	if err != nil {
		return err
	}
	nu := auth.NewUser{Username: demoUsername, Password: randomPassword(), Role: hale.RolePhysician,
		Organizations: orgs, DemoNoMFA: true}
	if len(practitioners) > 0 {
		nu.FHIRUser = "Practitioner/" + practitioners[0]
	}
	if _, err := svc.AddUser(ctx, nu); err != nil {
		return fmt.Errorf("demo user: %w", err)
	}

	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return err
	}
	keyFile, err := filepath.Abs(filepath.Join(cfg.Data, demoClientKey))
	if err != nil {
		return err
	}
	key, err := clientauth.LoadKey(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = clientauth.NewKey(keyFile)
	}
	if err != nil {
		return fmt.Errorf("demo client key: %w", err)
	}
	c, err := svc.AddClient(ctx, auth.NewClient{Name: "Hale demo client", Scopes: []string{demoScope}, JWKS: key.PublicJWKS()})
	if err != nil {
		return fmt.Errorf("demo client: %w", err)
	}
	desc, _ := json.MarshalIndent(demoClient{ClientID: c.ID, KeyFile: keyFile, FHIRBase: base}, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.Data, demoClientFile), append(desc, '\n'), 0o600); err != nil {
		return err
	}

	fmt.Fprintf(out, `
Demo mode: five synthetic patients loaded. Shown once, here only (not logged, not stored):
  demo login   username %s, password %s
               role physician; its second factor is OFF because this is demo mode
               (it cannot log in when Hale runs with --no-demo)
  demo client  id %s (SMART Backend Services, scope %s)
               private key %s
  an access token for it (valid 5 minutes):  hale token --data %s
  e.g.  curl -H "Authorization: Bearer $(go run ./cmd/hale token --data %s)" %s/Patient

`, demoUsername, nu.Password, c.ID, demoScope, keyFile, cfg.Data, cfg.Data, base)
	return nil
}

// randomPassword is 120 random bits, base64url: 20 characters.
func randomPassword() string {
	b := make([]byte, 15)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
