package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hale-ehr/hale/internal/clientauth"
)

// clientFlags are how a command that calls a FHIR server over HTTP (hale
// import --url, hale bench --url, hale token) authenticates: a token
// given as is, or a backend-services client whose key signs assertions
// for tokens that are renewed as they expire.
type clientFlags struct {
	token, clientID, clientKey, scope string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.token, "token", "", "access token to send (Authorization: Bearer)")
	fs.StringVar(&c.clientID, "client-id", "", "backend-services client id (with --client-key): get tokens with its key")
	fs.StringVar(&c.clientKey, "client-key", "", "PEM private key file of --client-id (EC P-384 or RSA)")
	fs.StringVar(&c.scope, "scope", "", "scopes to ask for (default system/*.cruds, narrowed to the client's registration)")
}

// source returns the token source of the flags for the FHIR base, or nil
// when none was given.
func (c *clientFlags) source(base string, hc *http.Client) (clientauth.TokenFunc, error) {
	switch {
	case c.token != "" && c.clientID != "":
		return nil, errors.New("--token and --client-id: give one")
	case c.token != "":
		return clientauth.Static(c.token), nil
	case c.clientID == "" && c.clientKey == "":
		return nil, nil
	case c.clientID == "" || c.clientKey == "":
		return nil, errors.New("--client-id and --client-key go together")
	}
	key, err := clientauth.LoadKey(c.clientKey)
	if err != nil {
		return nil, err
	}
	src := &clientauth.Source{Base: base, ClientID: c.clientID, Key: key, Scope: c.scope, HTTP: hc}
	return src.Token, nil
}

// client returns hc (nil: a default client) sending the flags' token,
// or hc itself when no credentials were given.
func (c *clientFlags) client(base string, hc *http.Client) (*http.Client, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	tok, err := c.source(base, hc)
	if err != nil || tok == nil {
		return hc, err
	}
	out := *hc
	out.Transport = clientauth.Transport(tok, hc.Transport)
	return &out, nil
}

const tokenUsage = `Usage: hale token [--url FHIR_BASE] [--client-id ID --client-key FILE] [--scope SCOPES]
                  [--data DIR]

Prints an access token of a SMART Backend Services client (client_credentials
with a signed assertion), valid for 5 minutes, for Authorization: Bearer.
Without --client-id it uses the demo client that hale serve made in the data
folder on its first start (demo-client.json), and that server's FHIR base URL.
A self-signed certificate of the data folder (--tls-self-signed) is trusted.
`

// tokenCommand implements `hale token`.
func tokenCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hale token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	base := fs.String("url", "", "")
	var cf clientFlags
	cf.register(fs)
	storeArgs, err := parseFlags(fs, args, tokenUsage, stdout)
	if err != nil {
		return err
	}
	if cf.token != "" {
		return errors.New("hale token: --token does not apply")
	}
	cfg, err := LoadConfig("hale token", storeArgs, getenv)
	if err != nil {
		return err
	}
	if cf.clientID == "" {
		var d demoClient
		data, err := os.ReadFile(filepath.Join(cfg.Data, demoClientFile))
		if err != nil {
			return fmt.Errorf("hale token: no --client-id, and no demo client in %s: %v", cfg.Data, err)
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return fmt.Errorf("hale token: %s: %v", demoClientFile, err)
		}
		cf.clientID, cf.clientKey = d.ClientID, d.KeyFile
		if *base == "" {
			*base = d.FHIRBase
		}
	}
	if *base == "" {
		*base = cfg.BaseURL
	}
	if *base == "" {
		*base = cfg.scheme() + "://" + cfg.Addr + "/fhir"
	}
	hc, err := dataFolderClient(cfg)
	if err != nil {
		return err
	}
	tok, err := cf.source(*base, hc)
	if err != nil {
		return fmt.Errorf("hale token: %v", err)
	}
	t, err := tok(ctx)
	if err != nil {
		return fmt.Errorf("hale token: %v", err)
	}
	fmt.Fprintln(stdout, t)
	return nil
}

// dataFolderClient is an HTTP client that also trusts the data folder's
// self-signed certificate, if there is one.
func dataFolderClient(cfg Config) (*http.Client, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	pem, err := os.ReadFile(filepath.Join(cfg.Data, "tls", "tls.crt"))
	if errors.Is(err, os.ErrNotExist) {
		return hc, nil
	}
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM(pem)
	hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return hc, nil
}
