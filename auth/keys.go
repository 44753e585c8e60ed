package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"sort"
	"time"

	"github.com/hale-ehr/hale"
)

// Hale's signing keys. It generates them itself, stores them in Records
// (the private key sealed, seal.go), publishes the public halves at
// /auth/jwks, and rotates them: a key signs for KeyRotation, then a new
// one takes over and the old one stays in the JWKS, still verifying,
// until every token it signed has expired (retireGrace), when its record
// expires.
//
// Two algorithms, each with its own keys, pinned per key:
//   - ES256 (ECDSA P-256) for Hale's access tokens: they are verified on
//     every API request, by Hale itself (others use introspection or the
//     JWKS), and ES256 gives short tokens (64-byte signatures, against
//     256 for RSA-2048) and fast signing, with an asymmetric key, so that
//     publishing the JWKS lets a gateway verify tokens without holding a
//     secret that could mint them.
//   - RS256 (RSA 2048) for OpenID Connect id tokens, which SMART App
//     Launch requires clients to accept (RS256 is the one algorithm every
//     client library supports).
//
// Several nodes may rotate at once: the record signing-current/<alg>
// names the current kid and is moved by compare-and-swap, so one new key
// wins and the others' are deleted.

// retireGrace is how long a rotated-out key keeps verifying: longer than
// any token it signed lives.
const retireGrace = 24 * time.Hour

type keyRecord struct {
	Kid     string    `json:"kid"`
	Alg     string    `json:"alg"`
	Sealed  []byte    `json:"sealed"` // PKCS #8 DER, sealed
	Public  JWK       `json:"public"`
	Created time.Time `json:"created"`
}

type currentKey struct {
	Kid   string    `json:"kid"`
	Since time.Time `json:"since"`
}

// signingKey is a private key ready to sign.
type signingKey struct {
	kid, alg string
	key      crypto.Signer
	until    time.Time // rotate after this
}

// cachedKey is a public key by kid; until is when to look again (the
// record may be swept).
type cachedKey struct {
	alg   string
	key   crypto.PublicKey
	until time.Time
}

// signer returns the current key for alg, creating or rotating it when
// due.
func (s *Service) signer(ctx context.Context, alg string) (*signingKey, error) {
	now := s.now()
	s.mu.Lock()
	k := s.current[alg]
	s.mu.Unlock()
	if k != nil && now.Before(k.until) {
		return k, nil
	}
	for range 5 {
		var cur currentKey
		r, err := s.getJSON(ctx, kindCurrentKey, alg, &cur)
		var version int64
		switch {
		case hale.IsKind(err, hale.KindNotFound):
		case err != nil:
			return nil, err
		default:
			version = r.Version
			if now.Before(cur.Since.Add(s.opts.KeyRotation)) {
				k, err := s.loadSigningKey(ctx, cur.Kid, cur.Since)
				if err != nil {
					return nil, err
				}
				s.mu.Lock()
				s.current[alg] = k
				s.mu.Unlock()
				return k, nil
			}
		}
		// None yet, or due for rotation: make one and try to install it.
		kr, err := s.newKey(ctx, alg)
		if err != nil {
			return nil, err
		}
		_, err = s.putJSON(ctx, kindCurrentKey, alg, version, time.Time{}, currentKey{Kid: kr.Kid, Since: kr.Created})
		if hale.IsKind(err, hale.KindConflict) {
			s.rec.DeleteRecord(ctx, kindKey, kr.Kid, 0) // another node's won
			continue
		}
		if err != nil {
			return nil, err
		}
		if version > 0 {
			s.retireKey(ctx, cur.Kid)
		}
	}
	return nil, errors.New("auth: signing key rotation contended")
}

// newKey generates and stores a key for alg.
func (s *Service) newKey(ctx context.Context, alg string) (*keyRecord, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, errors.New("auth: no key type for " + alg)
	}
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	kid := randomID()
	pub, err := publicJWK(priv.Public(), kid, alg)
	if err != nil {
		return nil, err
	}
	kr := &keyRecord{Kid: kid, Alg: alg, Sealed: s.seal.Seal(der, kindKey+"/"+kid), Public: pub, Created: s.now().UTC()}
	if _, err := s.putJSON(ctx, kindKey, kid, 0, time.Time{}, kr); err != nil {
		return nil, err
	}
	return kr, nil
}

// retireKey sets a rotated-out key to expire after the grace period.
func (s *Service) retireKey(ctx context.Context, kid string) {
	var kr keyRecord
	r, err := s.getJSON(ctx, kindKey, kid, &kr)
	if err != nil {
		return
	}
	if _, err := s.putJSON(ctx, kindKey, kid, r.Version, s.now().Add(retireGrace), &kr); err != nil {
		s.log.Warn("retiring a signing key", "kid", kid, "err", err)
	}
}

func (s *Service) loadSigningKey(ctx context.Context, kid string, since time.Time) (*signingKey, error) {
	var kr keyRecord
	if _, err := s.getJSON(ctx, kindKey, kid, &kr); err != nil {
		return nil, err
	}
	der, err := s.seal.Open(kr.Sealed, kindKey+"/"+kid)
	if err != nil {
		return nil, err
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, errors.New("auth: stored key cannot sign")
	}
	return &signingKey{kid: kid, alg: kr.Alg, key: signer, until: since.Add(s.opts.KeyRotation)}, nil
}

// publicKey returns Hale's key kid if it exists, is for alg and has not
// expired.
func (s *Service) publicKey(ctx context.Context, kid, alg string) (crypto.PublicKey, error) {
	now := s.now()
	s.mu.Lock()
	c, ok := s.pubKeys[kid]
	s.mu.Unlock()
	if !ok || !now.Before(c.until) {
		var kr keyRecord
		r, err := s.getJSON(ctx, kindKey, kid, &kr)
		if err != nil {
			return nil, err
		}
		if !r.Expires.IsZero() && !r.Expires.After(now) {
			return nil, &hale.Error{Kind: hale.KindNotFound, Op: "auth.publicKey", Message: "key retired"}
		}
		pub, err := kr.Public.publicKey()
		if err != nil {
			return nil, err
		}
		// Cache for a minute, and never past the key's expiry.
		until := now.Add(time.Minute)
		if !r.Expires.IsZero() && r.Expires.Before(until) {
			until = r.Expires
		}
		c = cachedKey{alg: kr.Alg, key: pub, until: until}
		s.mu.Lock()
		if len(s.pubKeys) > 100 {
			clear(s.pubKeys)
		}
		s.pubKeys[kid] = c
		s.mu.Unlock()
	}
	if c.alg != alg {
		return nil, &hale.Error{Kind: hale.KindNotFound, Op: "auth.publicKey", Message: "key is for another algorithm"}
	}
	return c.key, nil
}

// JWKS returns the public keys that verify Hale's tokens: the current
// ones (created now if there are none yet) and those rotated out but
// still within their grace period.
func (s *Service) JWKS(ctx context.Context) (*JWKS, error) {
	for _, alg := range []string{ES256, RS256} {
		if _, err := s.signer(ctx, alg); err != nil {
			return nil, err
		}
	}
	now := s.now()
	out := &JWKS{Keys: []JWK{}}
	after := ""
	for {
		page, err := s.rec.ListRecords(ctx, kindKey, "", after, 100)
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			var kr keyRecord
			if r.Expires.IsZero() || r.Expires.After(now) {
				if s.decode(r, &kr) == nil {
					out.Keys = append(out.Keys, kr.Public)
				}
			}
			after = r.Key
		}
		if len(page) < 100 {
			break
		}
	}
	sort.SliceStable(out.Keys, func(i, j int) bool { return out.Keys[i].Alg < out.Keys[j].Alg })
	return out, nil
}
