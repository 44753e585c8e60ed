package sqlite_test

import (
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
	"github.com/hale-ehr/hale/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) hale.Store { return sqlitetest.Open(t) })
}

func BenchmarkPut(b *testing.B)     { storetest.BenchPut(b, sqlitetest.Open(b)) }
func BenchmarkPut100(b *testing.B)  { storetest.BenchPut100(b, sqlitetest.Open(b)) }
func BenchmarkCurrent(b *testing.B) { storetest.BenchCurrent(b, sqlitetest.Open(b)) }

// BenchmarkSearch: storetest.BenchSearch on 200,000 Observations (about
// half a minute to load).
func BenchmarkSearch(b *testing.B) { storetest.BenchSearch(b, sqlitetest.Open(b), nil) }
