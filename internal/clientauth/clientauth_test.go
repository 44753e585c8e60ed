package clientauth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/auth"
	"github.com/hale-ehr/hale/internal/clientauth"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
)

// TestAgainstHale: keys made or loaded here register with Hale's auth
// service, their assertions get tokens, and the transport's requests
// pass Hale's guard.
func TestAgainstHale(t *testing.T) {
	ctx := context.Background()
	store := sqlitetest.Open(t)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String() + "/fhir"
	svc, err := auth.New(ctx, auth.Options{Records: store, SecretKey: make([]byte, 32),
		Issuer: strings.TrimSuffix(base, "/fhir") + "/auth", Audience: base})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", svc.Handler())
	mux.HandleFunc("/fhir/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(hale.PrincipalFrom(r.Context()).Subject))
	})
	srv.Config.Handler = svc.Middleware(auth.PublicRoutes, mux)
	srv.Start()
	defer srv.Close()

	dir := t.TempDir()
	ec, err := clientauth.NewKey(filepath.Join(dir, "ec.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clientauth.NewKey(filepath.Join(dir, "ec.pem")); err == nil {
		t.Error("NewKey overwrote a key file")
	}
	if st, _ := os.Stat(filepath.Join(dir, "ec.pem")); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", st.Mode().Perm())
	}
	loaded, err := clientauth.LoadKey(filepath.Join(dir, "ec.pem"))
	if err != nil || loaded.Kid != ec.Kid || loaded.Alg != "ES384" {
		t.Fatalf("reloaded key: %+v %v", loaded, err)
	}
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	os.WriteFile(filepath.Join(dir, "rsa.pem"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}), 0o600)
	rsaKey, err := clientauth.LoadKey(filepath.Join(dir, "rsa.pem"))
	if err != nil || rsaKey.Alg != "RS384" {
		t.Fatalf("RSA key: %+v %v", rsaKey, err)
	}

	for _, k := range []*clientauth.Key{loaded, rsaKey} {
		c, err := svc.AddClient(ctx, auth.NewClient{Name: "c", Scopes: []string{"system/*.rs"}, JWKS: k.PublicJWKS()})
		if err != nil {
			t.Fatalf("%s: register: %v", k.Alg, err)
		}
		src := &clientauth.Source{Base: base, ClientID: c.ID, Key: k}
		hc := &http.Client{Transport: clientauth.Transport(src.Token, nil)}
		for range 3 { // one token, reused
			r, err := hc.Get(base + "/Patient")
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if r.StatusCode != 200 {
				t.Fatalf("%s: %d", k.Alg, r.StatusCode)
			}
		}
		// Another client's id with this key: refused.
		bad := &clientauth.Source{Base: base, ClientID: "nobody", Key: k}
		if _, err := bad.Token(ctx); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("%s: unknown client: %v", k.Alg, err)
		}
	}
}
