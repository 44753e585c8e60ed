package rest

import (
	"testing"
	"time"
)

// TestNewIDOrder: server-assigned ids are unique, 32 hex characters, and
// increase in the order they are made, even within one millisecond and
// when the clock steps back (rest.go idClock).
func TestNewIDOrder(t *testing.T) {
	prev := newID()
	seen := map[string]bool{prev: true}
	for i := 0; i < 100000; i++ {
		id := newID()
		if len(id) != 32 || seen[id] || id <= prev {
			t.Fatalf("id %d: %q after %q (len %d, seen %v)", i, id, prev, len(id), seen[id])
		}
		seen[id] = true
		prev = id
	}
	var c clock48
	now := time.Now()
	a := c.next(now)
	b := c.next(now.Add(-time.Hour))
	if b <= a {
		t.Fatalf("after the clock stepped back: %x not after %x", b, a)
	}
}
