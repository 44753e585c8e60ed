package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"
)

// TestTOTPVectors checks RFC 6238 Appendix B (SHA-1 seed
// "12345678901234567890"), truncated to 6 digits.
func TestTOTPVectors(t *testing.T) {
	key := []byte("12345678901234567890")
	for _, v := range []struct {
		unix int64
		code string
	}{{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"}} {
		if got := hotp(key, uint64(totpStepAt(time.Unix(v.unix, 0)))); got != v.code {
			t.Errorf("T=%d: %s, want %s", v.unix, got, v.code)
		}
	}
	now := time.Unix(1111111111, 0)
	step, ok := matchTOTP(key, "050471", now, 0)
	if !ok || step != totpStepAt(now) {
		t.Fatal("current code refused")
	}
	if _, ok := matchTOTP(key, "050471", now, step); ok {
		t.Error("a code was accepted twice (its step was already used)")
	}
	if _, ok := matchTOTP(key, "050471", now.Add(2*totpStep), 0); ok {
		t.Error("a code two steps old was accepted")
	}
	if _, ok := matchTOTP(key, "050471", now.Add(totpStep), 0); !ok {
		t.Error("a code one step old (drift) was refused")
	}
	for _, bad := range []string{"", "05047", "0504711", "abcdef"} {
		if _, ok := matchTOTP(key, bad, now, 0); ok {
			t.Errorf("code %q accepted", bad)
		}
	}
}

func TestPasswordHash(t *testing.T) {
	phc := hashPassword("correct horse battery", testArgon2)
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=256,t=1,p=1$") {
		t.Fatalf("PHC string %q", phc)
	}
	if ok, err := verifyPassword("correct horse battery", phc); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, _ := verifyPassword("correct horse batterY", phc); ok {
		t.Fatal("wrong password accepted")
	}
	if phc == hashPassword("correct horse battery", testArgon2) {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaA", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
		strings.Replace(phc, "v=19", "v=16", 1)} {
		if ok, err := verifyPassword("x", bad); ok || err == nil {
			t.Errorf("malformed hash %q: ok %v err %v", bad, ok, err)
		}
	}
	if DefaultArgon2.Memory < 19*1024 || DefaultArgon2.Time < 2 {
		t.Errorf("default argon2id parameters %+v below OWASP's minimum (19 MiB, t=2)", DefaultArgon2)
	}
}

func TestJWSRoundTrip(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	claims := map[string]any{"iss": "x", "n": 1}
	cases := []struct {
		alg string
		key crypto.Signer
	}{{RS256, rsaKey}, {RS384, rsaKey}, {ES256, p256}, {ES384, p384}}
	for _, c := range cases {
		tok, err := signJWS(c.alg, "k1", c.key, claims)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseJWS(tok)
		if err != nil {
			t.Fatal(err)
		}
		pub := c.key.Public()
		if err := p.verify(c.alg, pub); err != nil {
			t.Errorf("%s: own signature refused: %v", c.alg, err)
		}
		// The verifier's algorithm is pinned: the same token under
		// another algorithm is refused.
		for _, other := range []string{RS256, RS384, ES256, ES384, "none", "HS256"} {
			if other != c.alg && p.verify(other, pub) == nil {
				t.Errorf("%s token verified as %s", c.alg, other)
			}
		}
		// A flipped signature byte is refused.
		p.sig[len(p.sig)/2] ^= 1
		if p.verify(c.alg, pub) == nil {
			t.Errorf("%s: flipped signature accepted", c.alg)
		}
		// The JWK form round-trips.
		j, err := publicJWK(pub, "k1", c.alg)
		if err != nil {
			t.Fatal(err)
		}
		back, err := j.publicKey()
		if err != nil {
			t.Fatalf("%s: JWK: %v", c.alg, err)
		}
		if eq, ok := back.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(pub) {
			t.Errorf("%s: JWK round trip changed the key", c.alg)
		}
	}
	for _, h := range []string{`{"alg":"RS384","jwk":{}}`, `{"alg":"RS384","jku":"https://x"}`, `{"alg":"RS384","x5u":"https://x"}`,
		`{"alg":"RS384","crit":["exp"]}`, `{"alg":"RS384","x5c":[]}`, `[1]`, `{"alg":"RS384"} x`} {
		tok := b64.EncodeToString([]byte(h)) + ".e30.c2ln"
		if _, err := parseJWS(tok); err == nil {
			t.Errorf("header %s accepted", h)
		}
	}
	for _, tok := range []string{"", "a.b", "a.b.c.d", "e30.e30.", "e30.e30.!!", strings.Repeat("a", maxJWS+1)} {
		if _, err := parseJWS(tok); err == nil {
			t.Errorf("token %.20q accepted", tok)
		}
	}
}

func TestScopes(t *testing.T) {
	for _, c := range []struct {
		req, reg string
		want     string // "" for nothing
	}{
		{"system/Patient.rs", "system/*.rs", "system/Patient.rs"},
		{"system/Patient.read", "system/*.read", "system/Patient.read"},
		{"system/*.read", "system/Patient.rs", "system/Patient.read"},
		{"system/Patient.cruds", "system/Patient.rs", "system/Patient.rs"},
		{"system/Patient.*", "system/Patient.read", "system/Patient.rs"},
		{"system/Patient.rs", "system/Observation.rs", ""},
		{"system/Patient.c", "system/Patient.rs", ""},
		{"patient/Patient.rs", "system/*.rs", ""},
		{"system/Observation.rs?category=vital-signs", "system/Observation.rs", "system/Observation.rs?category=vital-signs"},
		{"system/Observation.rs", "system/Observation.rs?category=vital-signs", "system/Observation.rs?category=vital-signs"},
		{"system/Observation.rs?category=laboratory", "system/Observation.rs?category=vital-signs", ""},
		{"system/Patient.sr", "system/*.rs", ""}, // wrong letter order
		{"system/Patient.rr", "system/*.rs", ""},
		{"system/patient.rs", "system/*.rs", ""},
		{"openid", "system/*.rs", ""},
		{"system/Patient.write", "system/*.cruds", "system/Patient.write"},
	} {
		got := narrowScopes([]string{c.req}, []string{c.reg}, "system")
		want := []string{}
		if c.want != "" {
			want = []string{c.want}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("narrow(%q to %q) = %q, want %q", c.req, c.reg, got, want)
		}
	}
}
