package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Secrets Hale must be able to read back — TOTP seeds and its own private
// signing keys — are sealed with AES-256-GCM under a key that is NOT in
// the database: a copy of the database (a backup, a dump, a stolen
// replica) then reveals none of them, which is what ONC 170.315(d)(12)
// and test D25 ask. The key comes from configuration (HALE_SECRET_KEY,
// for nodes sharing a PostgreSQL database: every node must be given the
// same one) or from the file secret.key in the data folder, created on
// first use with mode 0600 (single node; back it up apart from the
// database). Passwords, session ids, tokens and one-time codes are not
// sealed but hashed, since Hale never needs them back.

// SecretKeySize is the size of the sealing key: AES-256.
const SecretKeySize = 32

// Sealer encrypts and decrypts small secrets with AES-256-GCM, binding
// each to a context string (its record kind and key) so that a sealed
// value moved to another record does not open.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("secret key: %d bytes, want %d", len(key), SecretKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// ParseSecretKey decodes a key given in configuration: 32 bytes in
// standard or URL-safe base64.
func ParseSecretKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == SecretKeySize {
			return k, nil
		}
	}
	return nil, errors.New("secret key: expected 32 bytes in base64 (openssl rand -base64 32)")
}

// LoadSecretKeyFile reads the key from path (base64), creating the file
// with a new random key, mode 0600, when it does not exist.
func LoadSecretKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseSecretKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	k := make([]byte, SecretKeySize)
	rand.Read(k)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadSecretKeyFile(path) // another process created it first
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return k, f.Close()
}

// Seal encrypts plain, bound to context, as nonce‖ciphertext‖tag.
func (s *Sealer) Seal(plain []byte, context string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, []byte(context))
}

// Open decrypts what Seal returned for the same context.
func (s *Sealer) Open(sealed []byte, context string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(context))
	if err != nil {
		return nil, errors.New("sealed value does not open with this secret key")
	}
	return plain, nil
}
