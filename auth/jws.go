package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// This file is the minimal JWS (RFC 7515, compact serialization) and JWK
// (RFC 7517) Hale needs, written on the standard library rather than
// with a JOSE library. The surface is small — four algorithms (RS256,
// ES256 to sign; RS384, ES384 to verify client assertions), RSA and EC
// public keys — and writing it keeps every decision in sight: the
// verifier is handed the one algorithm and key it may use (pinned by
// the caller from its own registry), never reads key material or key
// URLs from the token (jwk, jku, x5u, x5c are refused, as is crit), and
// refuses "none" and every HMAC algorithm by construction, since it has
// no code for them (RFC 8725 §3.1, §3.2; CVE-2015-2951, CVE-2016-10555,
// CVE-2018-0114). A general library would bring JWE, HMAC and header
// key resolution that Hale must then be careful never to reach.

// Algorithms Hale knows.
const (
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256: SMART id tokens
	RS384 = "RS384" // client assertions (SMART Backend Services)
	ES256 = "ES256" // ECDSA P-256 with SHA-256: Hale's access tokens
	ES384 = "ES384" // client assertions (SMART Backend Services)
)

var b64 = base64.RawURLEncoding

// jwsHeader is the protected header of a compact JWS. Unknown members are
// kept in Extra so the verifier can refuse the dangerous ones.
type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
}

// errJWS is what every verification failure wraps; the detail is for logs
// and error_description, never a hint about keys.
var errJWS = errors.New("invalid JWS")

func jwsError(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errJWS, fmt.Sprintf(format, a...))
}

// forbiddenHeaders are header members Hale never honours: keys or key
// locations supplied by the token itself, and extensions it would have to
// understand (crit). A token carrying one is refused outright.
var forbiddenHeaders = []string{"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64", "zip", "enc"}

// parsedJWS is a compact JWS split and decoded, not yet verified.
type parsedJWS struct {
	header  jwsHeader
	payload []byte
	signed  []byte // ASCII(header "." payload): the signing input
	sig     []byte
}

// maxJWS bounds what is parsed at all.
const maxJWS = 16 << 10

// parseJWS splits and decodes a compact JWS, refusing malformed input and
// forbidden header members. It does not verify the signature.
func parseJWS(token string) (*parsedJWS, error) {
	if len(token) > maxJWS {
		return nil, jwsError("too long")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, jwsError("not a compact JWS (three parts)")
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, jwsError("header is not base64url")
	}
	var raw map[string]json.RawMessage
	if err := strictJSON(hb, &raw); err != nil {
		return nil, jwsError("header is not a JSON object")
	}
	for _, k := range forbiddenHeaders {
		if _, ok := raw[k]; ok {
			return nil, jwsError("header member %q is not accepted", k)
		}
	}
	var h jwsHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, jwsError("header: %v", err)
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, jwsError("payload is not base64url")
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) == 0 {
		return nil, jwsError("missing or malformed signature")
	}
	return &parsedJWS{header: h, payload: payload, signed: []byte(parts[0] + "." + parts[1]), sig: sig}, nil
}

// strictJSON decodes exactly one JSON value, refusing trailing data.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// verify checks p's signature with key under alg, which the caller chose
// from its own registry; the header's alg must equal it.
func (p *parsedJWS) verify(alg string, key crypto.PublicKey) error {
	if p.header.Alg != alg {
		return jwsError("algorithm %q is not the key's (%s)", p.header.Alg, alg)
	}
	switch alg {
	case RS256, RS384:
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			return jwsError("key type does not match %s", alg)
		}
		h, sum := hashFor(alg, p.signed)
		if err := rsa.VerifyPKCS1v15(pub, h, sum, p.sig); err != nil {
			return jwsError("bad signature")
		}
		return nil
	case ES256, ES384:
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok || pub.Curve != curveFor(alg) {
			return jwsError("key type does not match %s", alg)
		}
		size := (pub.Curve.Params().BitSize + 7) / 8
		if len(p.sig) != 2*size {
			return jwsError("bad signature")
		}
		r := new(big.Int).SetBytes(p.sig[:size])
		s := new(big.Int).SetBytes(p.sig[size:])
		_, sum := hashFor(alg, p.signed)
		if !ecdsa.Verify(pub, sum, r, s) {
			return jwsError("bad signature")
		}
		return nil
	}
	return jwsError("algorithm %q is not accepted", alg)
}

func hashFor(alg string, data []byte) (crypto.Hash, []byte) {
	switch alg {
	case RS384, ES384:
		s := sha512.Sum384(data)
		return crypto.SHA384, s[:]
	}
	s := sha256.Sum256(data)
	return crypto.SHA256, s[:]
}

func curveFor(alg string) elliptic.Curve {
	if alg == ES384 {
		return elliptic.P384()
	}
	return elliptic.P256()
}

// signJWS returns the compact JWS of claims, signed with key under alg
// with the header kid.
func signJWS(alg, kid string, key crypto.Signer, claims any) (string, error) {
	hb, err := json.Marshal(jwsHeader{Alg: alg, Kid: kid, Typ: "JWT"})
	if err != nil {
		return "", err
	}
	pb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(hb) + "." + b64.EncodeToString(pb)
	h, sum := hashFor(alg, []byte(input))
	var sig []byte
	switch alg {
	case RS256, RS384:
		sig, err = key.Sign(rand.Reader, sum, h)
	case ES256, ES384:
		priv, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return "", fmt.Errorf("sign %s: not an EC key", alg)
		}
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, priv, sum)
		if err == nil {
			size := (priv.Curve.Params().BitSize + 7) / 8
			sig = make([]byte, 2*size)
			r.FillBytes(sig[:size])
			s.FillBytes(sig[size:])
		}
	default:
		return "", fmt.Errorf("sign: algorithm %q not supported", alg)
	}
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// JWK is one JSON Web Key (RFC 7517) as Hale reads and publishes them:
// public RSA and EC keys only.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	// KeyOps, when present, must include "verify" for a client key.
	KeyOps []string `json:"key_ops,omitempty"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
	// D and the other private members must never be present in a
	// registered client key: a client that sends its private key is
	// refused at registration.
	D string `json:"d,omitempty"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// minRSABits is the smallest RSA modulus accepted anywhere.
const minRSABits = 2048

// publicKey returns the key j describes, checking it is well formed and
// strong enough.
func (j *JWK) publicKey() (crypto.PublicKey, error) {
	if j.D != "" {
		return nil, errors.New("a private key was given (member d); register the public key only")
	}
	switch j.Kty {
	case "RSA":
		nb, err1 := b64.DecodeString(j.N)
		eb, err2 := b64.DecodeString(j.E)
		if err1 != nil || err2 != nil || len(nb) == 0 || len(eb) == 0 || len(eb) > 4 {
			return nil, errors.New("RSA key: malformed n or e")
		}
		n := new(big.Int).SetBytes(nb)
		e := int(new(big.Int).SetBytes(eb).Int64())
		if n.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key: %d bits, at least %d needed", n.BitLen(), minRSABits)
		}
		if e < 3 || e%2 == 0 {
			return nil, errors.New("RSA key: bad exponent")
		}
		return &rsa.PublicKey{N: n, E: e}, nil
	case "EC":
		var c elliptic.Curve
		switch j.Crv {
		case "P-256":
			c = elliptic.P256()
		case "P-384":
			c = elliptic.P384()
		default:
			return nil, fmt.Errorf("EC key: curve %q not supported", j.Crv)
		}
		size := (c.Params().BitSize + 7) / 8
		xb, err1 := b64.DecodeString(j.X)
		yb, err2 := b64.DecodeString(j.Y)
		if err1 != nil || err2 != nil || len(xb) != size || len(yb) != size {
			return nil, errors.New("EC key: malformed x or y")
		}
		// ParseUncompressedPublicKey checks that the point is on the curve.
		uncompressed := append(append([]byte{4}, xb...), yb...)
		pub, err := ecdsa.ParseUncompressedPublicKey(c, uncompressed)
		if err != nil {
			return nil, errors.New("EC key: not a point on the curve")
		}
		return pub, nil
	}
	return nil, fmt.Errorf("key type %q not supported", j.Kty)
}

// publicJWK describes a public key as a JWK with kid, use sig and alg.
func publicJWK(pub crypto.PublicKey, kid, alg string) (JWK, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return JWK{Kty: "RSA", Kid: kid, Use: "sig", Alg: alg, N: b64.EncodeToString(k.N.Bytes()),
			E: b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())}, nil
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		raw, err := k.Bytes()
		if err != nil {
			return JWK{}, err
		}
		return JWK{Kty: "EC", Kid: kid, Use: "sig", Alg: alg, Crv: k.Curve.Params().Name,
			X: b64.EncodeToString(raw[1 : 1+size]), Y: b64.EncodeToString(raw[1+size:])}, nil
	}
	return JWK{}, fmt.Errorf("unsupported public key %T", pub)
}
