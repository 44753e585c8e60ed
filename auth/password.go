package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Passwords are hashed with argon2id (RFC 9106) and stored in the PHC
// string format, $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>
// (base64 without padding), so the parameters travel with each hash and
// can be raised later without invalidating stored ones.
// golang.org/x/crypto/argon2 is the Go project's own implementation; the
// standard library has none.

// Argon2Params are the cost parameters of new hashes.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultArgon2 is RFC 9106 §4's second recommended option (64 MiB, 3
// passes), with 2 lanes: about 100 ms on one core of a small server.
var DefaultArgon2 = Argon2Params{Memory: 64 * 1024, Time: 3, Threads: 2}

const (
	saltLen = 16
	hashLen = 32
	// Limits on what a stored hash may ask for, so that a corrupted
	// record cannot make one login allocate gigabytes.
	maxArgonMemory = 1 << 20 // 1 GiB
	maxArgonTime   = 20
)

// MinPasswordLength is the shortest password accepted (NIST SP 800-63B
// §5.1.1.2: at least 8; Hale asks for 12).
const MinPasswordLength = 12

// MaxPasswordLength bounds the work one login can cause.
const MaxPasswordLength = 256

// checkPassword refuses passwords too short or too long.
func checkPassword(pw string) error {
	if n := len([]rune(pw)); n < MinPasswordLength || len(pw) > MaxPasswordLength {
		return fmt.Errorf("password must be %d to %d characters", MinPasswordLength, MaxPasswordLength)
	}
	return nil
}

// hashPassword returns the PHC string of pw under p.
func hashPassword(pw string, p Argon2Params) string {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	h := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, hashLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(h))
}

var errBadHash = errors.New("malformed password hash")

// verifyPassword reports whether pw matches the PHC string phc, comparing
// in constant time.
func verifyPassword(pw, phc string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, errBadHash
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory == 0 || p.Memory > maxArgonMemory || p.Time == 0 || p.Time > maxArgonTime || p.Threads == 0 {
		return false, errBadHash
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(want) < 16 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
