package access

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hale-ehr/hale"
)

// Grants keeps break-the-glass grants. The server backs it with the
// database so that every node honours a grant and the grant outlives a
// restart; MemoryGrants is for tests and single-process tools.
type Grants interface {
	// Add records g. Returns an error only when it could not be kept.
	Add(ctx context.Context, g hale.BreakGlass) error
	// Active returns the grants of subject in force at now
	// (Start <= now < Expires).
	Active(ctx context.Context, subject string, now time.Time) ([]hale.BreakGlass, error)
}

// MemoryGrants is Grants in memory, safe for concurrent use. It is
// meant for tests: grants vanish with the process and are not shared
// between nodes.
type MemoryGrants struct {
	mu     sync.Mutex
	grants []hale.BreakGlass
}

// Add implements Grants.
func (m *MemoryGrants) Add(ctx context.Context, g hale.BreakGlass) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grants = append(m.grants, g)
	return nil
}

// Active implements Grants.
func (m *MemoryGrants) Active(ctx context.Context, subject string, now time.Time) ([]hale.BreakGlass, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []hale.BreakGlass
	for _, g := range m.grants {
		if g.Subject == subject && !now.Before(g.Start) && now.Before(g.Expires) {
			out = append(out, g)
		}
	}
	return slices.Clip(out), nil
}
