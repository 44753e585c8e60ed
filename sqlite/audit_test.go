package sqlite_test

import (
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
	"github.com/hale-ehr/hale/storetest"
)

func TestAudit(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) hale.Store { return sqlitetest.Open(t) })
}
