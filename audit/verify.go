package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hale-ehr/hale"
)

// Result is what Verify checked and what it found.
type Result struct {
	Links       int64  // links in the chain
	Head        []byte // the last link's hash
	Checkpoints int    // checkpoints checked
	Signed      bool   // signatures were checked against a key
	Queued      int64  // records written but not sealed yet (not covered)
	// Problems are the breaks found, first the one nearest the start
	// of the chain; empty when the chain is intact.
	Problems []string
}

// OK reports whether no break was found.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// Anchor is a checkpoint kept outside the database (a log line, a copy
// of an earlier verification): the chain must still reach link N with
// this hash.
type Anchor struct {
	N    int64
	Hash []byte
}

// ParseAnchor reads "N:HEXHASH".
func ParseAnchor(s string) (Anchor, error) {
	n, h, ok := strings.Cut(s, ":")
	var a Anchor
	if _, err := fmt.Sscan(n, &a.N); !ok || err != nil || a.N < 1 {
		return a, fmt.Errorf("anchor %q: want N:SHA256HEX", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return a, fmt.Errorf("anchor %q: want N:SHA256HEX", s)
	}
	a.Hash = b
	return a, nil
}

// Verify checks the whole audit chain of store: links numbered 1, 2, 3 …
// without gaps, each one's hash recomputed over its record's stored
// columns, its entity rows and the previous link (an edited, deleted,
// inserted or reordered record breaks it, and so does an entity row
// removed, added or moved in time, which would hide an access from a
// patient's report), every checkpoint's signature (when pub is given) and
// its match with the chain (a chain shorter than a checkpoint was
// truncated), links after the last signed checkpoint (appended without
// the key), every record being in the chain or queued for it, and anchors
// kept outside the database. It reads one snapshot; seal first (Seal) to cover
// the records still queued.
func Verify(ctx context.Context, chain hale.AuditStore, pub ed25519.PublicKey, anchors ...Anchor) (*Result, error) {
	res := &Result{Signed: pub != nil}
	problem := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }
	cps, err := chain.AuditCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	want := map[int64][]byte{} // link n → hash a checkpoint or anchor states
	for _, cp := range cps {
		want[cp.N] = nil
	}
	for _, a := range anchors {
		want[a.N] = nil
	}
	var prev []byte
	next := int64(1)
	err = chain.ScanAudit(ctx, func(l *hale.AuditLink) error {
		switch {
		case l.N > next:
			problem("links %d to %d are missing (deleted or truncated)", next, l.N-1)
		case l.N < next:
			problem("link %d appears out of order after link %d", l.N, next-1)
		}
		name := fmt.Sprintf("link %d (seq %d)", l.N, l.Seq)
		switch {
		case l.Record == nil:
			problem("%s: its audit record is missing (deleted)", name)
		default:
			name = fmt.Sprintf("link %d (AuditEvent/%s, seq %d)", l.N, l.Record.ID, l.Seq)
			if h := hale.AuditHash(prev, l.N, l.Record); !bytes.Equal(h, l.Hash) {
				problem("%s: hash mismatch: the record, its position or the link before it was changed", name)
			}
		}
		if _, ok := want[l.N]; ok {
			want[l.N] = l.Hash
		}
		prev, next = l.Hash, l.N+1
		res.Links++
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Head = prev
	head := next - 1
	lastSigned := int64(0)
	for _, cp := range cps {
		res.Checkpoints++
		if pub != nil && !ed25519.Verify(pub, hale.AuditCheckpointMessage(cp), cp.Signature) {
			problem("checkpoint at link %d: bad signature (forged or changed)", cp.N)
			continue
		}
		switch h := want[cp.N]; {
		case cp.N > head:
			problem("checkpoint at link %d, but the chain ends at link %d: truncated", cp.N, head)
		case !bytes.Equal(h, cp.Hash):
			problem("checkpoint at link %d does not match the chain (rewritten)", cp.N)
		default:
			lastSigned = max(lastSigned, cp.N)
		}
	}
	if pub != nil && head > lastSigned {
		problem("links %d to %d are not covered by a signed checkpoint (appended without the key, or checkpoints deleted)", lastSigned+1, head)
	}
	for _, a := range anchors {
		switch h := want[a.N]; {
		case a.N > head:
			problem("anchor at link %d, but the chain ends at link %d: truncated", a.N, head)
		case !bytes.Equal(h, a.Hash):
			problem("anchor at link %d does not match the chain (rewritten)", a.N)
		}
	}
	stray, err := chain.AuditUnchained(ctx)
	if err != nil {
		return nil, err
	}
	for _, seq := range stray {
		problem("audit record seq %d is in no link and not queued: inserted outside the audit trail", seq)
	}
	if res.Queued, err = chain.AuditQueued(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// LoadKey reads the checkpoint signing key at path (an Ed25519 seed, hex),
// creating it, readable by this user only, when it does not exist and
// create is set.
func LoadKey(path string, create bool) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(hex.EncodeToString(seed) + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if err != nil {
		return nil, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: not an audit key (64 hex digits)", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
