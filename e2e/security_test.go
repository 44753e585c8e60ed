package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var demoLoginLine = regexp.MustCompile(`demo login   username (\S+), password (\S+)`)

// TestDemoAndAuthentication: the binary's FHIR API refuses anonymous
// callers; the demo login printed on the first start works without a
// second factor (demo mode) and is never printed or logged again; `hale
// token` gets a working token for the demo client.
func TestDemoAndAuthentication(t *testing.T) {
	data := t.TempDir()
	p := start(t, "--data", data)
	m := demoLoginLine.FindStringSubmatch(p.logs.String())
	if m == nil || !strings.Contains(p.logs.String(), "second factor is OFF because this is demo mode") {
		t.Fatalf("no demo login printed:\n%s", p.logs)
	}
	user, password := m[1], m[2]
	for _, line := range strings.Split(p.logs.String(), "\n") {
		if strings.Contains(line, password) && strings.HasPrefix(line, "time=") {
			t.Errorf("the demo password is in a log record: %s", line)
		}
	}

	// Anonymous: 401 on data, the public routes answer.
	served, n := 0, 0
	for _, path := range []string{"/Patient", "/Observation?_count=1", "/Patient/x/$everything", "/$export", "/_history", "/metadata/../Patient"} {
		n++
		r, err := http.Get(p.base + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 401 || r.Header.Get("WWW-Authenticate") == "" || r.Header.Get("Cache-Control") != "no-store" {
			served++
			t.Errorf("anonymous %s: %d", path, r.StatusCode)
		}
	}
	t.Logf("anonymous FHIR requests served by the binary: %d / %d", served, n)
	origin := strings.TrimSuffix(p.base, "/fhir")
	for _, path := range []string{"/fhir/metadata", "/healthz", "/", "/auth/jwks", "/static/hale.css"} {
		r, err := http.Get(origin + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 || r.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("public %s: %d", path, r.StatusCode)
		}
	}

	// The demo login: a session cookie, no code needed, reads data.
	form := url.Values{"username": {user}, "password": {password}}
	req, _ := http.NewRequest("POST", origin+"/auth/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 || len(r.Cookies()) != 1 {
		t.Fatalf("demo login: %d", r.StatusCode)
	}
	session := r.Cookies()[0]
	countPatients := func(c *http.Cookie) (int, int) {
		req, _ := http.NewRequest("GET", p.base+"/Patient?_summary=count", nil)
		req.AddCookie(c)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var b struct{ Total int }
		json.NewDecoder(r.Body).Decode(&b)
		return r.StatusCode, b.Total
	}
	// The demo physician belongs to the demo practices, which manage the
	// demo patients (access policy): all five are in reach.
	if status, n := countPatients(session); status != 200 || n != 5 {
		t.Errorf("the demo physician's session: %d, %d patients, want 200 and 5", status, n)
	}
	// A nurse of another organization sees none of them: the store each
	// request gets is scoped to its caller.
	cmd := exec.Command(haleBin, "user", "add", "--data", data, "--username", "nurse2", "--role", "nurse",
		"--organization", "elsewhere", "--password-stdin")
	cmd.Env = append(os.Environ(), "HALE_CONFIG=")
	cmd.Stdin = strings.NewReader("a long nurse password 2\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hale user add: %v\n%s", err, out)
	}
	form2 := url.Values{"username": {"nurse2"}, "password": {"a long nurse password 2"}}
	req, _ = http.NewRequest("POST", origin+"/auth/login", strings.NewReader(form2.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	if r, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 || len(r.Cookies()) != 1 {
		t.Fatalf("nurse login: %d", r.StatusCode)
	}
	if status, n := countPatients(r.Cookies()[0]); status != 200 || n != 0 {
		t.Errorf("a nurse of another organization: %d, %d patients, want 200 and 0", status, n)
	}
	// SMART discovery is served, publicly.
	r, err = http.Get(p.base + "/.well-known/smart-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		Methods               []string `json:"code_challenge_methods_supported"`
	}
	json.NewDecoder(r.Body).Decode(&conf)
	r.Body.Close()
	if r.StatusCode != 200 || conf.AuthorizationEndpoint == "" || len(conf.Methods) != 1 || conf.Methods[0] != "S256" {
		t.Errorf("smart-configuration: %d %+v", r.StatusCode, conf)
	}

	// `hale token` with nothing but the data folder.
	tok := runHale(t, "token", "--data", data)
	req, _ = http.NewRequest("GET", p.base+"/Patient", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if r, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	var b struct{ Total int }
	json.NewDecoder(r.Body).Decode(&b)
	r.Body.Close()
	if r.StatusCode != 200 || b.Total != 5 {
		t.Errorf("with hale token: %d, %d patients", r.StatusCode, b.Total)
	}

	// A restart prints nothing of it again.
	p.kill()
	p = start(t, "--data", data)
	if strings.Contains(p.logs.String(), password) || strings.Contains(p.logs.String(), "demo login") {
		t.Errorf("the demo login was printed again:\n%s", p.logs)
	}
	// Outside demo mode the demo account cannot log in.
	p.kill()
	p = start(t, "--data", data, "--no-demo")
	origin = strings.TrimSuffix(p.base, "/fhir")
	req, _ = http.NewRequest("POST", origin+"/auth/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 401 {
		t.Errorf("demo login with --no-demo: %d", r.StatusCode)
	}
}

// TestTLSSelfSigned (test 28 against the binary): --tls-self-signed serves
// HTTPS with a certificate in the data folder; TLS 1.0 and 1.1
// handshakes fail, 1.2 and 1.3 succeed; HSTS is sent; `hale token` trusts
// the data folder's certificate.
func TestTLSSelfSigned(t *testing.T) {
	data := t.TempDir()
	p := start(t, "--data", data, "--tls-self-signed")
	if !strings.HasPrefix(p.base, "https://") {
		t.Fatalf("base %s", p.base)
	}
	pem, err := os.ReadFile(filepath.Join(data, "tls", "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	u, _ := url.Parse(p.base)
	accepted, n := 0, 0
	for range 5 {
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
			n++
			c, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: pool, MinVersion: v, MaxVersion: v, ServerName: "127.0.0.1",
				CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}})
			if err == nil {
				accepted++
				c.Close()
			}
		}
	}
	t.Logf("TLS 1.0/1.1 handshakes accepted: %d / %d", accepted, n)
	if accepted != 0 {
		t.Errorf("old TLS accepted")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	tok := runHale(t, "token", "--data", data)
	req, _ := http.NewRequest("GET", p.base+"/Patient", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	r, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 || r.TLS == nil || r.TLS.Version < tls.VersionTLS12 || !strings.HasPrefix(r.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("HTTPS request: %d HSTS %q", r.StatusCode, r.Header.Get("Strict-Transport-Security"))
	}
}
