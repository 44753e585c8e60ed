package postgres_test

import (
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) hale.Store { return pgtest.Open(t) })
}

func BenchmarkPut(b *testing.B)     { storetest.BenchPut(b, pgtest.Open(b)) }
func BenchmarkPut100(b *testing.B)  { storetest.BenchPut100(b, pgtest.Open(b)) }
func BenchmarkCurrent(b *testing.B) { storetest.BenchCurrent(b, pgtest.Open(b)) }
