package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hale-ehr/hale/audit"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/postgres/pgtest"
)

// hale serve's audit recorder hears account changes (passkeys added or
// removed, apps revoked) as well as logins.
var _ auth.AccountAudit = (*audit.Recorder)(nil)

// TestUserAndClientAdd runs `hale user add` and `hale client add` on a
// data folder (and a PostgreSQL database) that a running server holds
// open, then reads the results back through a service on the server's
// handle.
func TestUserAndClientAdd(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			storeArgs := []string{"--data", dir}
			if engine == "postgres" {
				storeArgs = append(storeArgs, "--database", pgtest.Schema(t))
			}
			getenv := func(string) string { return "" }
			cfg, err := LoadConfig("test", storeArgs, getenv)
			if err != nil {
				t.Fatal(err)
			}
			server, _, err := openStore(ctx, cfg) // the running server's handle
			if err != nil {
				t.Fatal(err)
			}
			defer server.Close()

			var out bytes.Buffer
			args := append([]string{"add", "--username", "admin1", "--role", "admin", "--password-stdin", "--organization", "org1"}, storeArgs...)
			if err := userCommand(ctx, args, getenv, strings.NewReader("a long admin password\n"), &out); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "user admin1 created") || !strings.Contains(out.String(), "otpauth://totp/Hale:admin1?") {
				t.Fatalf("output: %s", out.String())
			}
			out.Reset()
			args = append([]string{"add", "--username", "nurse1", "--role", "nurse", "--password-stdin", "--fhir-user", "Practitioner/7"}, storeArgs...)
			if err := userCommand(ctx, args, getenv, strings.NewReader("a long nurse password"), &out); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out.String(), "otpauth") {
				t.Errorf("a nurse got an MFA seed: %s", out.String())
			}
			// Mistakes are refused with a message.
			args = append([]string{"add", "--username", "x2", "--role", "nurse", "--password-stdin"}, storeArgs...)
			if err := userCommand(ctx, args, getenv, strings.NewReader("short\n"), &out); err == nil || !strings.Contains(err.Error(), "password") {
				t.Errorf("short password: %v", err)
			}
			if err := userCommand(ctx, []string{"add", "--username", "x3", "--role", "nurse"}, getenv, strings.NewReader(""), &out); err == nil {
				t.Error("no --password-stdin accepted")
			}

			key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			raw, _ := key.PublicKey.Bytes()
			enc := base64.RawURLEncoding
			jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-384", "kid": "k1",
				"x": enc.EncodeToString(raw[1:49]), "y": enc.EncodeToString(raw[49:])}}})
			file := filepath.Join(t.TempDir(), "jwks.json")
			os.WriteFile(file, jwks, 0o600)
			out.Reset()
			args = append([]string{"add", "--name", "Exporter", "--scope", "system/*.rs", "--jwks", file}, storeArgs...)
			if err := clientCommand(ctx, args, getenv, &out); err != nil {
				t.Fatal(err)
			}
			id := strings.TrimSpace(out.String())
			if len(id) != 32 {
				t.Fatalf("client id %q", id)
			}
			args = append([]string{"add", "--name", "Bad", "--scope", "patient/*.rs", "--jwks", file}, storeArgs...)
			if err := clientCommand(ctx, args, getenv, &out); err == nil {
				t.Error("a backend client with patient/ scopes was registered")
			}

			// A public SMART app: redirect URIs, no keys.
			out.Reset()
			args = append([]string{"add", "--name", "Growth Chart", "--public", "--redirect-uri", "https://app.example/cb",
				"--scope", "launch/patient patient/*.rs offline_access"}, storeArgs...)
			if err := clientCommand(ctx, args, getenv, &out); err != nil {
				t.Fatal(err)
			}
			appID := strings.TrimSpace(out.String())
			for _, bad := range [][]string{
				{"add", "--name", "P", "--public", "--scope", "patient/*.rs"},                                                           // no redirect URI
				{"add", "--name", "P", "--public", "--jwks", file, "--redirect-uri", "https://a.example/cb", "--scope", "patient/*.rs"}, // keys
				{"add", "--name", "P", "--redirect-uri", "https://a.example/cb", "--scope", "patient/*.rs"},                             // neither
				{"add", "--name", "P", "--public", "--redirect-uri", "https://a.example/cb", "--scope", "system/*.rs"},
			} {
				if err := clientCommand(ctx, append(bad, storeArgs...), getenv, &out); err == nil {
					t.Errorf("registered: %v", bad)
				}
			}

			// The server sees both at once.
			svc, err := authService(ctx, cfg, server, "")
			if err != nil {
				t.Fatal(err)
			}
			u, err := svc.UserByName(ctx, "ADMIN1")
			if err != nil || u.Role != "admin" || len(u.Organizations) != 1 {
				t.Fatalf("user %+v %v", u, err)
			}
			c, err := svc.Client(ctx, id)
			if err != nil || c.Name != "Exporter" {
				t.Fatalf("client %+v %v", c, err)
			}
			if c, err := svc.Client(ctx, appID); err != nil || !c.Public || len(c.RedirectURIs) != 1 {
				t.Fatalf("public app %+v %v", c, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "secret.key")); err != nil {
				t.Errorf("secret.key: %v", err)
			}
		})
	}
}

// TestUserReset runs `hale user reset` and spends the printed code as the
// reset page does: once only; an unknown user is an error.
func TestUserReset(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			ctx := context.Background()
			storeArgs := []string{"--data", t.TempDir()}
			if engine == "postgres" {
				storeArgs = append(storeArgs, "--database", pgtest.Schema(t))
			}
			getenv := func(string) string { return "" }
			var out bytes.Buffer
			if err := userCommand(ctx, append([]string{"add", "--username", "nurse1", "--role", "nurse", "--password-stdin"}, storeArgs...),
				getenv, strings.NewReader("a long nurse password\n"), &out); err != nil {
				t.Fatal(err)
			}
			link := func(args ...string) string {
				t.Helper()
				out.Reset()
				if err := userCommand(ctx, append(append([]string{"reset", "--username", "nurse1"}, args...), storeArgs...), getenv, nil, &out); err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimSpace(out.String()), "\n")
				return lines[len(lines)-1]
			}
			l := link("--base", "https://ehr.example.org/")
			prefix := "https://ehr.example.org/app/reset?code="
			if !strings.HasPrefix(l, prefix) || len(l) < len(prefix)+20 {
				t.Fatalf("link %q", l)
			}
			if l2 := link("--base-url", "https://proxy.example/fhir"); !strings.HasPrefix(l2, "https://proxy.example/app/reset?code=") {
				t.Errorf("link from base_url: %q", l2)
			}
			if err := userCommand(ctx, append([]string{"reset", "--username", "nobody"}, storeArgs...), getenv, nil, &out); err == nil ||
				!strings.Contains(err.Error(), "no user") {
				t.Errorf("unknown user: %v", err)
			}
			if err := userCommand(ctx, append([]string{"reset", "--username", "nurse1", "--base", "ftp://x"}, storeArgs...), getenv, nil, &out); err == nil {
				t.Error("an ftp base was accepted")
			}

			cfg, err := LoadConfig("test", storeArgs, getenv)
			if err != nil {
				t.Fatal(err)
			}
			store, _, err := openStore(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			svc, err := authService(ctx, cfg, store, "")
			if err != nil {
				t.Fatal(err)
			}
			code := strings.TrimPrefix(l, prefix)
			if err := svc.ResetPassword(ctx, code, "the new nurse password"); err != nil {
				t.Fatalf("reset: %v", err)
			}
			if err := svc.ResetPassword(ctx, code, "another nurse password"); err == nil {
				t.Fatal("the code worked twice")
			}
			if _, err := svc.Login(ctx, "nurse1", "the new nurse password", "", "127.0.0.1"); err != nil {
				t.Fatalf("login with the new password: %v", err)
			}
		})
	}
}
