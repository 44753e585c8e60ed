package main

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestIntegrityDigest is D28 (ONC 170.315(d)(8)) through the HTTP server
// as `hale serve` builds it, on both engines: K documents exchanged with
// a SHA-256 digest verify round trip — uploaded as a Binary with
// Content-Digest, read back with Repr-Digest; filed as a DocumentReference
// with the SHA-1 hash of its inline data, downloaded from the clinician
// app with Repr-Digest — and for each document one random bit flipped in
// transit (in the body or in the digest of an upload, in the data or the
// hash of an attachment, or in a download) is detected: the server
// refuses the upload and stores nothing, or the recipient's check of
// Repr-Digest fails.
func TestIntegrityDigest(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { testIntegrityDigest(t, engine) })
	}
}

func testIntegrityDigest(t *testing.T, engine string) {
	const K = 50
	seed := uint64(20261122)
	rnd := rand.New(rand.NewPCG(seed, 6))
	n := startNode(t, engine)
	sys := n.actor("127.0.0.2").backend()
	create := func(typ, body string) string {
		st, h, b := sys.do("POST", "/fhir/"+typ, []byte(body))
		if st != 201 {
			t.Fatalf("create %s: %d %s", typ, st, b)
		}
		return strings.Split(strings.TrimPrefix(h.Get("Location"), n.base+"/"), "/")[1]
	}
	org := create("Organization", `{"resourceType":"Organization","name":"Clinic"}`)
	patient := create("Patient", `{"resourceType":"Patient","name":[{"family":"Digest"}],"managingOrganization":{"reference":"Organization/`+org+`"}}`)
	n.cli("a long nurse password\n", "user", "add", "--username", "nurse", "--role", "nurse", "--password-stdin", "--organization", org)
	nurse := n.actor("127.0.0.4")
	if st := nurse.login("nurse", "a long nurse password", ""); st != 200 {
		t.Fatalf("login: %d", st)
	}

	digest := func(b []byte) string {
		s := sha256.Sum256(b)
		return "sha-256=:" + base64.StdEncoding.EncodeToString(s[:]) + ":"
	}
	flip := func(b []byte) []byte {
		c := bytes.Clone(b)
		i := rnd.IntN(len(c) * 8)
		c[i/8] ^= 1 << (i % 8)
		return c
	}
	flipDigest := func(b []byte) string {
		s := sha256.Sum256(b)
		return "sha-256=:" + base64.StdEncoding.EncodeToString(flip(s[:])) + ":"
	}
	docRef := func(data, hash []byte) string {
		return `{"resourceType":"DocumentReference","status":"current","subject":{"reference":"Patient/` + patient + `"},` +
			`"content":[{"attachment":{"contentType":"application/pdf","data":"` + base64.StdEncoding.EncodeToString(data) +
			`","hash":"` + base64.StdEncoding.EncodeToString(hash) + `","title":"doc.pdf"}}]}`
	}
	count := func(typ string) int {
		_, _, b := sys.do("GET", "/fhir/"+typ+"?_summary=count", nil)
		var bundle struct{ Total int }
		json.Unmarshal(b, &bundle)
		return bundle.Total
	}

	verified, detected := 0, 0
	modes := []string{"upload body", "upload digest", "attachment data", "attachment hash", "download"}
	byMode := map[string]int{}
	binaries, docs := 0, 0
	for k := range K {
		doc := make([]byte, 1+rnd.IntN(64<<10))
		for i := range doc {
			doc[i] = byte(rnd.Uint32())
		}
		copy(doc, "%PDF-1.4\n")

		// The round trip: a Binary with Content-Digest, read back with
		// Repr-Digest; a DocumentReference with the SHA-1 of its data,
		// downloaded from the app with Repr-Digest.
		ok := true
		st, _, b := sys.do("POST", "/fhir/Binary", doc, "Content-Type", "application/pdf", "Content-Digest", digest(doc))
		if st != 201 {
			t.Errorf("document %d: upload answered %d %.200s", k, st, b)
			continue
		}
		binaries++
		var created struct{ ID string }
		json.Unmarshal(b, &created)
		st, h, got := sys.do("GET", "/fhir/Binary/"+created.ID, nil, "Accept", "application/pdf")
		if st != 200 || !bytes.Equal(got, doc) || h.Get("Repr-Digest") != digest(doc) || h.Get("Repr-Digest") != digest(got) || h.Get("Content-Digest") != digest(got) {
			t.Errorf("document %d: Binary read back: %d, %d bytes, Repr-Digest %s", k, st, len(got), h.Get("Repr-Digest"))
			ok = false
		}
		sum := sha1.Sum(doc)
		did := create("DocumentReference", docRef(doc, sum[:]))
		docs++
		st, h, got = nurse.do("GET", "/app/patients/"+patient+"/documents/"+did+"/content?download", nil)
		if st != 200 || !bytes.Equal(got, doc) || h.Get("Repr-Digest") != digest(got) {
			t.Errorf("document %d: download from the app: %d, %d bytes, Repr-Digest %s", k, st, len(got), h.Get("Repr-Digest"))
			ok = false
		}
		if ok {
			verified++
		}

		// One bit flipped in transit.
		mode := modes[k%len(modes)]
		byMode[mode]++
		caught := false
		switch mode {
		case "upload body":
			st, _, b = sys.do("POST", "/fhir/Binary", flip(doc), "Content-Type", "application/pdf", "Content-Digest", digest(doc))
			caught = st == 400 && strings.Contains(string(b), "Content-Digest: the sha-256 digest does not match")
		case "upload digest":
			st, _, b = sys.do("POST", "/fhir/Binary", doc, "Content-Type", "application/pdf", "Repr-Digest", flipDigest(doc))
			caught = st == 400 && strings.Contains(string(b), "Repr-Digest: the sha-256 digest does not match")
		case "attachment data":
			st, _, b = sys.do("POST", "/fhir/DocumentReference", []byte(docRef(flip(doc), sum[:])))
			caught = st == 400 && strings.Contains(string(b), "hash does not match its data")
		case "attachment hash":
			st, _, b = sys.do("POST", "/fhir/DocumentReference", []byte(docRef(doc, flip(sum[:]))))
			caught = st == 400 && strings.Contains(string(b), "hash does not match its data")
		case "download":
			// The recipient checks what it received against Repr-Digest.
			_, h, got = sys.do("GET", "/fhir/Binary/"+created.ID, nil)
			caught = h.Get("Repr-Digest") != "" && digest(flip(got)) != h.Get("Repr-Digest")
		}
		if caught {
			detected++
		} else {
			t.Errorf("document %d: a bit flipped in the %s went undetected (status %d)", k, mode, st)
		}
	}
	// Nothing refused was stored.
	if nb, nd := count("Binary"), count("DocumentReference"); nb != binaries || nd != docs {
		t.Errorf("stored %d Binaries and %d DocumentReferences, want %d and %d: a refused upload was kept", nb, nd, binaries, docs)
	}
	var modeCounts []string
	for _, m := range modes {
		modeCounts = append(modeCounts, fmt.Sprintf("%s %d", m, byMode[m]))
	}
	t.Logf("%s: documents exchanged with a SHA-256 digest, round trips verified: %d / %d; one-bit flips detected: %d / %d (%s; seed %d)",
		engine, verified, K, detected, K, strings.Join(modeCounts, ", "), seed)
	if verified != K || detected != K {
		t.Errorf("%s: verified %d / %d, detected %d / %d", engine, verified, K, detected, K)
	}
}
