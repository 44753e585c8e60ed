package web

import (
	"crypto/sha256"
	"encoding/base64"
)

// reprDigest is the Repr-Digest field (RFC 9530) of b: its SHA-256.
func reprDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}
