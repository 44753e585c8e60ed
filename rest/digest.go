package rest

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"

	"github.com/hale-ehr/hale"
)

// Integrity of exchanged documents (ONC 45 CFR 170.315(d)(8); HIPAA
// 164.312(c)(1) and (e)(2)(i)): HTTP message digests, RFC 9530 "Digest
// Fields". docs/security.md, "Integrity of exchanged documents".
//
//   - A request whose body carries Content-Digest or Repr-Digest with a
//     sha-256 or sha-512 digest is checked against the bytes received;
//     a mismatch is a 400 and nothing is stored. (Hale takes no content
//     coding, so the content and the representation are the same bytes.)
//   - A Binary read as its native content, and a document the web app
//     sends, carry Repr-Digest and Content-Digest (sha-256). Any other
//     answer carries them when the request asks with Want-Repr-Digest or
//     Want-Content-Digest.

// Digest field names (RFC 9530 §2, §3, §4).
const (
	hdrContentDigest     = "Content-Digest"
	hdrReprDigest        = "Repr-Digest"
	hdrWantContentDigest = "Want-Content-Digest"
	hdrWantReprDigest    = "Want-Repr-Digest"
)

// digestAlgorithms are the algorithms Hale computes and verifies: the
// "active" ones of the Hash Algorithms for HTTP Digest Fields registry.
// The deprecated ones (md5, sha, unixsum, unixcksum, adler, crc32c) are
// not collision resistant and are not accepted as proof of integrity.
var digestAlgorithms = map[string]func() hash.Hash{"sha-256": sha256.New, "sha-512": sha512.New}

// DigestValue is the value of a Repr-Digest or Content-Digest field for
// data: sha-256=:<base64>:.
func DigestValue(data []byte) string { return digestField("sha-256", data) }

func digestField(alg string, data []byte) string {
	h := digestAlgorithms[alg]()
	h.Write(data)
	return alg + "=:" + base64.StdEncoding.EncodeToString(h.Sum(nil)) + ":"
}

// VerifyDigests checks the Content-Digest and Repr-Digest fields of a
// request against its body: every sha-256 or sha-512 digest they carry
// must match. A field that is malformed, or that carries only other
// algorithms, is refused too: a sender that asked for a check must not
// believe it happened. Returns nil when there is no digest field, else
// KindInvalid naming the field.
func VerifyDigests(h http.Header, body []byte) error {
	for _, name := range []string{hdrContentDigest, hdrReprDigest} {
		values := h.Values(name)
		if len(values) == 0 {
			continue
		}
		digests, err := parseDigests(strings.Join(values, ","))
		if err != nil {
			return digestError(name, err.Error())
		}
		checked := 0
		for alg, want := range digests {
			newHash, ok := digestAlgorithms[alg]
			if !ok {
				continue
			}
			hh := newHash()
			hh.Write(body)
			if subtle.ConstantTimeCompare(hh.Sum(nil), want) != 1 {
				return digestError(name, fmt.Sprintf("the %s digest does not match the %d bytes received: the body was altered or truncated on the way; nothing was stored", alg, len(body)))
			}
			checked++
		}
		if checked == 0 {
			return digestError(name, "no sha-256 or sha-512 digest to check (the algorithms Hale verifies); nothing was stored")
		}
	}
	return nil
}

func digestError(field, msg string) error {
	return &hale.Error{Kind: hale.KindInvalid, Op: "rest.digest", Message: field + ": " + msg,
		Issues: []hale.Issue{{Severity: "error", Code: "invalid", Diagnostics: field + ": " + msg}}}
}

// parseDigests reads a digest field, an RFC 8941 Dictionary whose members
// are byte sequences (sha-256=:…:), parameters ignored. Keys are
// returned as sent; a key given twice keeps its last value (RFC 8941
// §4.2.2).
func parseDigests(v string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, member := range strings.Split(v, ",") {
		member = strings.Trim(member, " \t")
		if member == "" {
			return nil, fmt.Errorf("an empty member (expected sha-256=:<base64>:)")
		}
		key, val, ok := strings.Cut(member, "=")
		if !ok || !validDictKey(key) {
			return nil, fmt.Errorf("%q is not a digest (expected sha-256=:<base64>:)", member)
		}
		val, _, _ = strings.Cut(val, ";") // parameters
		if len(val) < 2 || val[0] != ':' || val[len(val)-1] != ':' {
			return nil, fmt.Errorf("the %s value is not a byte sequence (:<base64>:)", key)
		}
		b64 := val[1 : len(val)-1]
		sum, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			// RFC 8941 §3.3.5: parsers should accept missing padding.
			if sum, err = base64.RawStdEncoding.DecodeString(b64); err != nil {
				return nil, fmt.Errorf("the %s value is not base64", key)
			}
		}
		out[key] = sum
	}
	return out, nil
}

// validDictKey: lcalpha or "*", then lcalpha, digits, "_", "-", ".", "*"
// (RFC 8941 §3.1.2).
func validDictKey(k string) bool {
	if k == "" || !(k[0] >= 'a' && k[0] <= 'z' || k[0] == '*') {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("_-.*", c) >= 0) {
			return false
		}
	}
	return true
}

// wantedDigest returns the algorithm a Want-…-Digest field prefers among
// those Hale computes ("" when it asks for none): the highest weight
// above 0, sha-256 on a tie (RFC 9530 §4).
func wantedDigest(v string) string {
	best, bestW := "", 0
	for _, member := range strings.Split(v, ",") {
		key, val, _ := strings.Cut(strings.Trim(member, " \t"), "=")
		val, _, _ = strings.Cut(val, ";")
		w, err := strconv.Atoi(val)
		if _, ok := digestAlgorithms[key]; !ok || err != nil || w < 1 || w > 10 {
			continue
		}
		if w > bestW || w == bestW && key == "sha-256" {
			best, bestW = key, w
		}
	}
	return best
}

// setDigests sets Repr-Digest and Content-Digest of an answer whose body
// is data: always when always is set (native documents), otherwise as
// the request's Want- fields ask. HEAD answers carry no content, so no
// Content-Digest.
func setDigests(w http.ResponseWriter, r *http.Request, data []byte, always bool) {
	h := w.Header()
	for _, f := range [][2]string{{hdrReprDigest, hdrWantReprDigest}, {hdrContentDigest, hdrWantContentDigest}} {
		if f[0] == hdrContentDigest && r.Method == http.MethodHead {
			continue
		}
		alg := wantedDigest(strings.Join(r.Header.Values(f[1]), ","))
		if alg == "" && always {
			alg = "sha-256"
		}
		if alg != "" {
			h.Set(f[0], digestField(alg, data))
		}
	}
}
