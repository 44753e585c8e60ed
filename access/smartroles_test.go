package access_test

import (
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
)

// TestSMARTRoles: the scopes a role's apps may get say exactly what the
// role table allows.
func TestSMARTRoles(t *testing.T) {
	for _, role := range hale.Roles {
		scopes := access.SMARTRoles{}.RoleScopes(role)
		if len(scopes) == 0 {
			t.Errorf("%s: no scopes", role)
		}
		for _, s := range scopes {
			ctx, rest, _ := strings.Cut(s, "/")
			typ, letters, _ := strings.Cut(rest, ".")
			if (role == hale.RolePatient) != (ctx == "patient") {
				t.Errorf("%s: %s", role, s)
			}
			for _, l := range "cruds" {
				if strings.ContainsRune(letters, l) != access.RoleAllows(role, typ, byte(l)) {
					t.Errorf("%s: %s disagrees with RoleAllows on %c", role, s, l)
				}
			}
		}
	}
	if s := (access.SMARTRoles{}).RoleScopes(hale.RoleSystem); s != nil {
		t.Errorf("system: %v", s)
	}
}
