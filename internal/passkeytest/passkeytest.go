// Package passkeytest is a software WebAuthn authenticator for tests: it
// makes ES256 credentials and answers navigator.credentials.create and
// .get options with the JSON a browser would send, built by hand from the
// WebAuthn Level 2 specification (w3.org/TR/webauthn-2): "none"
// attestation (§8.7), authenticator data (§6.1), attested credential data
// (§6.5.1), COSE_Key (RFC 8152 §13.1.1), assertion signatures over
// authenticatorData ‖ SHA-256(clientDataJSON) (§6.3.3). It encodes the
// little CBOR it needs itself, so a test does not depend on the decoder
// it checks.
package passkeytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Authenticator flags (§6.1).
const (
	FlagUP byte = 0x01 // user present
	FlagUV byte = 0x04 // user verified
	FlagBE byte = 0x08 // backup eligible
	FlagBS byte = 0x10 // backed up
	FlagAT byte = 0x40 // attested credential data included
)

var b64 = base64.RawURLEncoding

// Credential is one key pair the authenticator holds.
type Credential struct {
	ID         []byte
	Key        *ecdsa.PrivateKey
	RPID       string
	UserHandle []byte
	Counter    uint32
}

// Authenticator holds credentials. Flags are set on every response
// (default UP|UV); Step is how much the signature counter moves per
// assertion (default 1; 0 keeps it at zero, as synced passkeys do).
type Authenticator struct {
	Credentials []*Credential
	Flags       byte
	Step        uint32
}

// New returns an authenticator that verifies its user.
func New() *Authenticator { return &Authenticator{Flags: FlagUP | FlagUV, Step: 1} }

// creationOptions is what the authenticator reads of
// PublicKeyCredentialCreationOptions.
type creationOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Exclude []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
	} `json:"publicKey"`
}

// requestOptions is what it reads of PublicKeyCredentialRequestOptions.
type requestOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		Allow     []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
	} `json:"publicKey"`
}

// Create makes a new credential for the options (JSON, as the server
// sent them) and returns the registration response JSON a browser would
// post, as from origin.
func (a *Authenticator) Create(options []byte, origin string) ([]byte, *Credential, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, nil, err
	}
	for _, ex := range o.PublicKey.Exclude {
		for _, c := range a.Credentials {
			if ex.ID == b64.EncodeToString(c.ID) {
				return nil, nil, errors.New("passkeytest: a credential of the exclude list is here (InvalidStateError)")
			}
		}
	}
	user, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("user.id: %w", err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id := make([]byte, 32)
	rand.Read(id)
	c := &Credential{ID: id, Key: key, RPID: o.PublicKey.RP.ID, UserHandle: user}
	a.Credentials = append(a.Credentials, c)
	resp, err := a.Attest(c, o.PublicKey.Challenge, origin, "webauthn.create")
	return resp, c, err
}

// Attest builds a registration response for c with "none" attestation.
func (a *Authenticator) Attest(c *Credential, challenge, origin, typ string) ([]byte, error) {
	cdj := ClientData(typ, challenge, origin)
	var authData bytes.Buffer
	rp := sha256.Sum256([]byte(c.RPID))
	authData.Write(rp[:])
	authData.WriteByte(a.Flags | FlagAT)
	binary.Write(&authData, binary.BigEndian, c.Counter)
	authData.Write(make([]byte, 16)) // AAGUID: none
	binary.Write(&authData, binary.BigEndian, uint16(len(c.ID)))
	authData.Write(c.ID)
	authData.Write(COSEKey(&c.Key.PublicKey))
	var att bytes.Buffer
	cborMapHeader(&att, 3)
	cborText(&att, "fmt")
	cborText(&att, "none")
	cborText(&att, "attStmt")
	cborMapHeader(&att, 0)
	cborText(&att, "authData")
	cborBytes(&att, authData.Bytes())
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cdj),
			"attestationObject": b64.EncodeToString(att.Bytes()),
			"transports":        []string{"internal"},
		},
	})
}

// Get answers request options (JSON) with the first credential they
// allow (or any for the RP, for a discoverable request), moving its
// counter by Step, as from origin.
func (a *Authenticator) Get(options []byte, origin string) ([]byte, *Credential, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, nil, err
	}
	for _, c := range a.Credentials {
		if c.RPID != o.PublicKey.RPID {
			continue
		}
		ok := len(o.PublicKey.Allow) == 0
		for _, al := range o.PublicKey.Allow {
			ok = ok || al.ID == b64.EncodeToString(c.ID)
		}
		if ok {
			c.Counter += a.Step
			resp, err := a.Assert(c, c.Key, o.PublicKey.Challenge, origin, c.Counter)
			return resp, c, err
		}
	}
	return nil, nil, errors.New("passkeytest: no credential for these options (NotAllowedError)")
}

// Assert builds an assertion response for credential c signed by key
// (c.Key, or another to forge), with counter, over challenge (base64url)
// as from origin.
func (a *Authenticator) Assert(c *Credential, key *ecdsa.PrivateKey, challenge, origin string, counter uint32) ([]byte, error) {
	cdj := ClientData("webauthn.get", challenge, origin)
	var authData bytes.Buffer
	rp := sha256.Sum256([]byte(c.RPID))
	authData.Write(rp[:])
	authData.WriteByte(a.Flags)
	binary.Write(&authData, binary.BigEndian, counter)
	cdh := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(slicesClone(authData.Bytes()), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cdj),
			"authenticatorData": b64.EncodeToString(authData.Bytes()),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(c.UserHandle),
		},
	})
}

// Challenge returns the challenge (base64url) of creation or request
// options.
func Challenge(options []byte) string {
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
		} `json:"publicKey"`
	}
	json.Unmarshal(options, &o)
	return o.PublicKey.Challenge
}

// ClientData is the collected client data (§5.8.1) a browser would make.
func ClientData(typ, challenge, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": origin, "crossOrigin": false})
	return b
}

// COSEKey encodes an EC P-256 public key as a COSE_Key for ES256:
// {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}.
func COSEKey(pub *ecdsa.PublicKey) []byte {
	raw, _ := pub.Bytes() // 0x04 ‖ x ‖ y
	var b bytes.Buffer
	cborMapHeader(&b, 5)
	cborInt(&b, 1)
	cborInt(&b, 2)
	cborInt(&b, 3)
	cborInt(&b, -7)
	cborInt(&b, -1)
	cborInt(&b, 1)
	cborInt(&b, -2)
	cborBytes(&b, raw[1:33])
	cborInt(&b, -3)
	cborBytes(&b, raw[33:65])
	return b.Bytes()
}

// The CBOR (RFC 8949) needed: small maps, text and byte strings, ints.

func cborHead(b *bytes.Buffer, major byte, n uint64) {
	switch {
	case n < 24:
		b.WriteByte(major<<5 | byte(n))
	case n < 1<<8:
		b.WriteByte(major<<5 | 24)
		b.WriteByte(byte(n))
	case n < 1<<16:
		b.WriteByte(major<<5 | 25)
		binary.Write(b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(major<<5 | 26)
		binary.Write(b, binary.BigEndian, uint32(n))
	}
}

func cborInt(b *bytes.Buffer, v int64) {
	if v >= 0 {
		cborHead(b, 0, uint64(v))
	} else {
		cborHead(b, 1, uint64(-1-v))
	}
}

func cborBytes(b *bytes.Buffer, p []byte)  { cborHead(b, 2, uint64(len(p))); b.Write(p) }
func cborText(b *bytes.Buffer, s string)   { cborHead(b, 3, uint64(len(s))); b.WriteString(s) }
func cborMapHeader(b *bytes.Buffer, n int) { cborHead(b, 5, uint64(n)) }

func slicesClone(p []byte) []byte { return append([]byte(nil), p...) }
