package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/audit"
	"github.com/hale-ehr/hale/rest"
)

// auditKeyPath is the checkpoint signing key of the audit chain: in the
// data folder, also with PostgreSQL (every node sharing a database needs
// the same key file; docs/security.md "Audit trail").
func auditKeyPath(cfg Config) string { return filepath.Join(cfg.Data, "audit.key") }

// newAuditRecorder returns the recorder `hale serve` runs, creating the
// signing key on first start.
func newAuditRecorder(cfg Config, store hale.Store, svc *rest.Service, log *slog.Logger) (*audit.Recorder, error) {
	key, err := audit.LoadKey(auditKeyPath(cfg), true)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	node, _ := os.Hostname()
	return audit.New(store, audit.Options{Node: node, Log: log, Params: svc.Params, Key: key})
}

// auditCommand implements `hale audit verify` and `hale audit report`.
func auditCommand(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	if len(args) == 0 || (args[0] != "verify" && args[0] != "report") {
		return errors.New("usage: hale audit verify [--anchor N:HASH]… | hale audit report --patient ID [--since DATE]; with --data DIR or --database URL")
	}
	sub := args[0]
	var anchors []audit.Anchor
	var patient, since string
	var storeArgs []string
	for i := 1; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if name != "anchor" && name != "patient" && name != "since" {
			storeArgs = append(storeArgs, args[i])
			continue
		}
		if !hasVal {
			if i+1 == len(args) {
				return fmt.Errorf("--%s needs a value", name)
			}
			val = args[i+1]
			i++
		}
		switch name {
		case "anchor":
			a, err := audit.ParseAnchor(val)
			if err != nil {
				return err
			}
			anchors = append(anchors, a)
		case "patient":
			patient = val
		case "since":
			since = val
		}
	}
	cfg, err := LoadConfig("hale audit "+sub, storeArgs, getenv)
	if err != nil {
		return err
	}
	store, where, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if sub == "report" {
		return auditReport(ctx, store, patient, since, out)
	}
	return auditVerify(ctx, cfg, store, where, anchors, out)
}

func auditVerify(ctx context.Context, cfg Config, store hale.Store, where string, anchors []audit.Anchor, out io.Writer) error {
	chain, ok := store.(hale.AuditStore)
	if !ok {
		return errors.New("this store keeps no audit chain")
	}
	key, err := audit.LoadKey(auditKeyPath(cfg), false)
	if err != nil {
		return fmt.Errorf("audit key (needed to check the checkpoints): %w", err)
	}
	// Seal what is queued first, so that every record written so far is
	// covered (the sealer of a running server takes its turn).
	if err := audit.Seal(ctx, chain, key, time.Now); err != nil {
		return err
	}
	res, err := audit.Verify(ctx, chain, key.Public().(ed25519.PublicKey), anchors...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "audit chain in %s: %d records, %d signed checkpoints, %d anchors, %d records still queued\n",
		where, res.Links, res.Checkpoints, len(anchors), res.Queued)
	if res.OK() {
		fmt.Fprintf(out, "OK: every link, hash and checkpoint signature is intact\n")
		if res.Links > 0 {
			fmt.Fprintf(out, "head (keep it outside the database; pass it later as --anchor): %d:%s\n", res.Links, hex.EncodeToString(res.Head))
		}
		return nil
	}
	for _, p := range res.Problems {
		fmt.Fprintln(out, "BROKEN:", p)
	}
	return fmt.Errorf("the audit trail was tampered with: %d problems, the first: %s", len(res.Problems), res.Problems[0])
}

// auditReport prints who accessed a patient's record, newest first: the
// FHIR search AuditEvent?entity=Patient/ID&_sort=-date through the FHIR
// core, following next links.
func auditReport(ctx context.Context, store hale.Store, patient, since string, out io.Writer) error {
	if patient == "" {
		return errors.New("hale audit report needs --patient ID")
	}
	svc := rest.NewService(store)
	q := url.Values{"entity": {"Patient/" + patient}, "_sort": {"-date"}, "_count": {"500"}}
	if since != "" {
		q.Set("date", "ge"+since)
	}
	fmt.Fprintf(out, "%-24s %-6s %-22s %-28s %-16s %-8s %s\n", "recorded (UTC)", "action", "what", "who", "from", "outcome", "purpose")
	n := 0
	for {
		resp, err := svc.Do(ctx, &rest.Request{Method: "GET", Type: "AuditEvent", Query: q, RawQuery: q.Encode()})
		if err != nil {
			return err
		}
		data, err := json.Marshal(resp.Object)
		if err != nil {
			return err
		}
		var b struct {
			Link  []struct{ Relation, URL string }
			Entry []struct{ Resource auditEvent }
		}
		if err := json.Unmarshal(data, &b); err != nil {
			return err
		}
		for _, e := range b.Entry {
			fmt.Fprintln(out, e.Resource.line())
			n++
		}
		next := ""
		for _, l := range b.Link {
			if l.Relation == "next" {
				next = l.URL
			}
		}
		if next == "" {
			break
		}
		u, err := url.Parse(next)
		if err != nil {
			return err
		}
		q = u.Query()
	}
	fmt.Fprintf(out, "%d accesses to Patient/%s\n", n, patient)
	return nil
}

type coding struct{ System, Code, Display string }

type auditEvent struct {
	Type     coding
	Subtype  []coding
	Action   string
	Recorded string
	Outcome  string
	Agent    []struct {
		AltID     string `json:"altId"`
		Name      string
		Requestor bool
		Network   struct{ Address string }
		Who       struct {
			Reference  string
			Identifier struct{ Value string }
		}
		PurposeOfUse []struct{ Coding []coding } `json:"purposeOfUse"`
	}
	Entity []struct {
		What  struct{ Reference string }
		Role  coding
		Query string
	}
}

func (e *auditEvent) line() string {
	what := e.Type.Display
	if len(e.Subtype) > 0 {
		what = e.Subtype[0].Code
	}
	for _, en := range e.Entity {
		switch {
		case en.Role.Code == "4":
			what += " " + en.What.Reference
		case en.Role.Code == "24":
			q, _ := base64.StdEncoding.DecodeString(en.Query)
			what += " " + string(q)
		}
	}
	who, from, purpose := "", "", ""
	for _, a := range e.Agent {
		if !a.Requestor {
			continue
		}
		who = a.Who.Identifier.Value
		if a.Name != "" {
			who += " (" + a.Name + ")"
		}
		from = a.Network.Address
		for _, p := range a.PurposeOfUse {
			for _, c := range p.Coding {
				purpose += c.Code + " "
			}
		}
	}
	outcome := map[string]string{"0": "success", "4": "failed", "8": "error", "12": "error"}[e.Outcome]
	return fmt.Sprintf("%-24s %-6s %-22s %-28s %-16s %-8s %s", e.Recorded, e.Action, what, who, from, outcome, strings.TrimSpace(purpose))
}
