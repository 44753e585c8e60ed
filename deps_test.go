package hale_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the layout honest (docs/architecture.md):
// the domain package imports no adapter, engines do not know the FHIR
// core, and the FHIR core does not know which engine it runs on.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/hale-ehr/hale"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// allowed lists, per package, the module packages it may import.
	allowed := map[string][]string{
		"":          {},
		"fhir":      {""},
		"search":    {"", "fhir", "fhirpath", "ucum"},
		"sqlite":    {"", "internal/sqlsearch"},
		"postgres":  {"", "internal/sqlsearch"},
		"storetest": {""},
		"rest":      {"", "fhir", "fhirpath", "search", "invariant"},
		// Access control knows the FHIR definitions and search, not the
		// FHIR core that uses it nor any engine.
		"access":              {"", "fhir", "search"},
		"invariant":           {"", "fhir", "fhirpath"},
		"fhirpath":            {"", "fhir", "ucum"},
		"demo":                {},
		"ucum":                {},
		"synth":               {"fhir"},
		"internal/sharedtest": {},
		"auth":                {""},
		// HTTP hardening (headers, CORS, CSRF, rate limits, TLS).
		"internal/httpsec": {""},
		// The client side of SMART Backend Services (hale token, import, bench).
		"internal/clientauth": {},
		// The audit trail builds AuditEvents (fhir) and indexes them (search).
		"audit": {"", "fhir", "search"},
		// The clinician app reaches the data only through the FHIR core
		// (rest) with the user's Principal; auth signs users in; access
		// only for the role table (what to hide), search only for ids.
		"web": {"", "rest", "auth", "access", "search"},

		// The SQL compiler of Search, which both engines share.
		"internal/sqlsearch": {""},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], mod), "/")
		ok, ruled := allowed[pkg]
		if !ruled {
			continue // cmd, tests, generators: wiring may import anything
		}
		for _, imp := range fields[1:] {
			if imp != mod && !strings.HasPrefix(imp, mod+"/") {
				continue
			}
			dep := strings.TrimPrefix(strings.TrimPrefix(imp, mod), "/")
			permitted := false
			for _, a := range ok {
				permitted = permitted || dep == a
			}
			if !permitted {
				t.Errorf("package %q imports %q, which the layout forbids", "hale/"+pkg, "hale/"+dep)
			}
		}
	}
}
