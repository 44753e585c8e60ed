package postgres_test

import (
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/storetest"
)

func TestAudit(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) hale.Store { return pgtest.Open(t) })
}
