package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"time"
)

// TOTP, RFC 6238 over HOTP (RFC 4226): HMAC-SHA-1, 6 digits, 30-second
// steps — the parameters every authenticator app supports. A code is
// accepted for the current step and one step either side (clock drift,
// RFC 6238 §5.2), and never twice: the user record keeps the last step a
// code was accepted for, and a code must be for a later step.

const (
	totpStep   = 30 * time.Second
	totpDigits = 6
	totpSkew   = 1 // steps either side
	totpSecret = 20
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newTOTPSecret returns a random 160-bit seed (RFC 4226 §4 recommends 160).
func newTOTPSecret() []byte {
	k := make([]byte, totpSecret)
	rand.Read(k)
	return k
}

// hotp is RFC 4226 §5.3: dynamic truncation of HMAC-SHA-1(key, counter).
func hotp(key []byte, counter uint64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", totpDigits, bin%1_000_000)
}

// totpStepAt is the RFC 6238 time step T at t.
func totpStepAt(t time.Time) int64 { return t.Unix() / int64(totpStep/time.Second) }

// matchTOTP returns the step code is valid for at now, within the skew,
// that is later than last; ok false if there is none.
func matchTOTP(key []byte, code string, now time.Time, last int64) (step int64, ok bool) {
	if len(code) != totpDigits {
		return 0, false
	}
	cur := totpStepAt(now)
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		if s <= last {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(hotp(key, uint64(s))), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// TOTPCode is the code an authenticator shows at t for a base32 secret;
// for tests and tools.
func TOTPCode(secretBase32 string, t time.Time) (string, error) {
	key, err := b32.DecodeString(secretBase32)
	if err != nil {
		return "", err
	}
	return hotp(key, uint64(totpStepAt(t))), nil
}

// provisioningURI is the otpauth:// URI authenticator apps read (as a QR
// code) to enrol the seed.
func provisioningURI(issuer, account string, key []byte) string {
	q := url.Values{}
	q.Set("secret", b32.EncodeToString(key))
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(totpDigits))
	q.Set("period", fmt.Sprint(int(totpStep/time.Second)))
	return "otpauth://totp/" + url.PathEscape(issuer+":"+account) + "?" + q.Encode()
}
