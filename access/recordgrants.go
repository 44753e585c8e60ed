package access

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hale-ehr/hale"
)

// RecordGrants is Grants in the database (hale.Records, kind
// "breakglass"), so that every node honours a grant at once and grants
// outlive a restart. Keys are "<subject> <start, RFC 3339 nanoseconds>
// <patient>": Active lists one subject's grants by key prefix. A grant's
// record expires when the grant does, so DeleteExpiredRecords sweeps it;
// the audit trail, not this table, is the lasting account of it.
type RecordGrants struct {
	Store hale.Records
}

const grantKind = "breakglass"

// Add implements Grants.
func (g RecordGrants) Add(ctx context.Context, b hale.BreakGlass) error {
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	key := fmt.Sprintf("%s %s %s", b.Subject, b.Start.UTC().Format(time.RFC3339Nano), b.Patient)
	if len(key) > hale.MaxRecordKey {
		return hale.Errorf(hale.KindInvalid, "break-the-glass grant key too long")
	}
	return g.Store.PutRecord(ctx, &hale.Record{Kind: grantKind, Key: key, Data: data, Expires: b.Expires})
}

// Active implements Grants.
func (g RecordGrants) Active(ctx context.Context, subject string, now time.Time) ([]hale.BreakGlass, error) {
	var out []hale.BreakGlass
	after := ""
	for {
		rs, err := g.Store.ListRecords(ctx, grantKind, subject+" ", after, 100)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			var b hale.BreakGlass
			if err := json.Unmarshal(r.Data, &b); err != nil {
				return nil, fmt.Errorf("break-the-glass grant %q: %w", r.Key, err)
			}
			if b.Subject == subject && !now.Before(b.Start) && now.Before(b.Expires) {
				out = append(out, b)
			}
		}
		if len(rs) < 100 {
			return out, nil
		}
		after = rs[len(rs)-1].Key
	}
}
