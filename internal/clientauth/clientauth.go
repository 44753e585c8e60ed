// Package clientauth is the client side of SMART Backend Services
// (hl7.org/fhir/smart-app-launch/backend-services.html), for Hale's own
// programs that call a FHIR server over HTTP — `hale bench`, `hale import
// --url`, `hale token` and the end-to-end tests: it keeps a client's
// private key, signs the client assertion (private_key_jwt, RFC 7523,
// ES384 or RS384), obtains access tokens with client_credentials and
// sends them with every request, renewing them before they expire.
package clientauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

var b64 = base64.RawURLEncoding

// Key is a client's private key: EC P-384 signs ES384, RSA signs RS384
// (the two algorithms SMART Backend Services servers must support). Kid
// is the RFC 7638 thumbprint of the public key, which is also the kid
// PublicJWKS registers.
type Key struct {
	Signer crypto.Signer
	Alg    string
	Kid    string
}

// NewKey makes an EC P-384 key and writes it to path as a PKCS #8 PEM
// file readable by the owner only. An existing file is not overwritten.
func NewKey(path string) (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return keyOf(priv)
}

// LoadKey reads a PEM private key: PKCS #8, SEC 1 ("EC PRIVATE KEY") or
// PKCS #1 ("RSA PRIVATE KEY").
func LoadKey(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: not a PEM file", path)
	}
	var k any
	switch block.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	key, err := keyOf(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return key, nil
}

func keyOf(s crypto.Signer) (*Key, error) {
	k := &Key{Signer: s}
	switch p := s.Public().(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P384() {
			return nil, errors.New("EC keys must be P-384 (ES384)")
		}
		k.Alg = "ES384"
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return nil, errors.New("RSA keys must have at least 2048 bits")
		}
		k.Alg = "RS384"
	default:
		return nil, errors.New("only EC P-384 and RSA keys are supported")
	}
	jwk := k.publicJWK()
	// RFC 7638: the required members in lexicographic order, no spaces.
	var canon string
	if jwk["kty"] == "EC" {
		canon = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, jwk["crv"], jwk["x"], jwk["y"])
	} else {
		canon = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, jwk["e"], jwk["n"])
	}
	sum := sha256.Sum256([]byte(canon))
	k.Kid = b64.EncodeToString(sum[:])
	return k, nil
}

func (k *Key) publicJWK() map[string]string {
	switch p := k.Signer.Public().(type) {
	case *ecdsa.PublicKey:
		b, _ := p.Bytes() // uncompressed point: 0x04 || X || Y
		n := (len(b) - 1) / 2
		return map[string]string{"kty": "EC", "crv": "P-384", "x": b64.EncodeToString(b[1 : 1+n]), "y": b64.EncodeToString(b[1+n:])}
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "n": b64.EncodeToString(p.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(p.E)).Bytes())}
	}
	return nil
}

// PublicJWKS is the JWK Set to register the key with (`hale client add
// --jwks`).
func (k *Key) PublicJWKS() []byte {
	jwk := k.publicJWK()
	jwk["kid"], jwk["alg"], jwk["use"] = k.Kid, k.Alg, "sig"
	b, _ := json.Marshal(map[string]any{"keys": []any{jwk}})
	return b
}

// Assertion signs a client assertion for tokenURL: iss = sub = clientID,
// aud = tokenURL, a fresh jti, exp four minutes ahead (servers accept at
// most five).
func (k *Key) Assertion(clientID, tokenURL string, now time.Time) (string, error) {
	var jti [16]byte
	rand.Read(jti[:])
	header, _ := json.Marshal(map[string]string{"alg": k.Alg, "kid": k.Kid, "typ": "JWT"})
	claims, _ := json.Marshal(map[string]any{"iss": clientID, "sub": clientID, "aud": tokenURL,
		"jti": b64.EncodeToString(jti[:]), "iat": now.Unix(), "exp": now.Add(4 * time.Minute).Unix()})
	input := b64.EncodeToString(header) + "." + b64.EncodeToString(claims)
	h := crypto.SHA384.New()
	h.Write([]byte(input))
	digest := h.Sum(nil)
	var sig []byte
	switch s := k.Signer.(type) {
	case *ecdsa.PrivateKey:
		r, ss, err := ecdsa.Sign(rand.Reader, s, digest)
		if err != nil {
			return "", err
		}
		sig = make([]byte, 96) // JWS: R || S, each 48 bytes (RFC 7518 §3.4)
		r.FillBytes(sig[:48])
		ss.FillBytes(sig[48:])
	default:
		var err error
		sig, err = k.Signer.Sign(rand.Reader, digest, crypto.SHA384)
		if err != nil {
			return "", err
		}
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// Source obtains and renews access tokens for one client. Safe for
// concurrent use.
type Source struct {
	// Base is the FHIR base URL; the token endpoint is read from its
	// .well-known/smart-configuration, else taken to be <origin>/auth/token
	// (Hale's).
	Base     string
	ClientID string
	Key      *Key
	// Scope asked for; the server narrows it to the registration.
	// Default "system/*.cruds".
	Scope string
	// TokenURL skips discovery.
	TokenURL string
	// HTTP is the client used for discovery and the token endpoint
	// (default http.DefaultClient).
	HTTP *http.Client

	mu    sync.Mutex
	token string
	until time.Time
}

// Token returns a token valid for at least another 30 seconds.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && time.Now().Before(s.until) {
		return s.token, nil
	}
	hc := s.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	if s.TokenURL == "" {
		u, err := discover(ctx, hc, s.Base)
		if err != nil {
			return "", err
		}
		s.TokenURL = u
	}
	assertion, err := s.Key.Assertion(s.ClientID, s.TokenURL, time.Now())
	if err != nil {
		return "", err
	}
	scope := s.Scope
	if scope == "" {
		scope = "system/*.cruds"
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, "POST", s.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tr struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		if tr.Error != "" {
			return "", fmt.Errorf("token endpoint %s: %d %s: %s", s.TokenURL, resp.StatusCode, tr.Error, tr.Description)
		}
		return "", fmt.Errorf("token endpoint %s: %s: %.200s", s.TokenURL, resp.Status, body)
	}
	if tr.ExpiresIn <= 0 {
		tr.ExpiresIn = 300
	}
	s.token = tr.AccessToken
	s.until = time.Now().Add(time.Duration(tr.ExpiresIn)*time.Second - 30*time.Second)
	return s.token, nil
}

// discover reads the token endpoint from the SMART configuration
// (SMART App Launch, "Conformance"), falling back to Hale's.
func discover(ctx context.Context, hc *http.Client, base string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("FHIR base URL %q: expected http(s)://host/path", base)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u.String()+"/.well-known/smart-configuration", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	if resp, err := hc.Do(req); err == nil {
		var conf struct {
			TokenEndpoint string `json:"token_endpoint"`
		}
		if resp.StatusCode == http.StatusOK {
			json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&conf)
		}
		resp.Body.Close()
		if conf.TokenEndpoint != "" {
			return conf.TokenEndpoint, nil
		}
	}
	return u.Scheme + "://" + u.Host + "/auth/token", nil
}

// TokenFunc is where a Transport gets its token.
type TokenFunc func(ctx context.Context) (string, error)

// Static is a TokenFunc for a token given once (--token).
func Static(token string) TokenFunc {
	return func(context.Context) (string, error) { return token, nil }
}

// Transport adds Authorization: Bearer to every request sent through
// base (default http.DefaultTransport).
func Transport(token TokenFunc, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{token: token, base: base}
}

type transport struct {
	token TokenFunc
	base  http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok, err := t.token(req.Context())
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return t.base.RoundTrip(r)
}
