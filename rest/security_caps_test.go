package rest

import (
	"encoding/json"
	"testing"

	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
)

// TestCapabilitySecurity: with OAuth set the CapabilityStatement declares
// SMART on FHIR with its endpoints (oauth-uris), and stays valid R4;
// without it, it declares no security.
func TestCapabilitySecurity(t *testing.T) {
	s := NewService(sqlitetest.Open(t))
	if s.security() != nil {
		t.Fatal("security without OAuth")
	}
	s.OAuth = &OAuthURIs{Authorize: "http://h/auth/authorize", Token: "http://h/auth/token",
		Revoke: "http://h/auth/revoke", Introspect: "http://h/auth/introspect"}
	data, err := marshal(s.capabilityStatement("http://h/fhir"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := fhir.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if issues := fhir.Validate(res); len(issues) > 0 {
		t.Fatalf("invalid CapabilityStatement: %v", issues)
	}
	var cs struct {
		Rest []struct {
			Security struct {
				Extension []struct {
					URL       string
					Extension []struct {
						URL      string `json:"url"`
						ValueURI string `json:"valueUri"`
					} `json:"extension"`
				}
				Service []struct{ Coding []struct{ Code string } }
			}
		}
	}
	json.Unmarshal(data, &cs)
	sec := cs.Rest[0].Security
	if len(sec.Service) != 1 || sec.Service[0].Coding[0].Code != "SMART-on-FHIR" {
		t.Errorf("service: %+v", sec.Service)
	}
	got := map[string]string{}
	for _, e := range sec.Extension[0].Extension {
		got[e.URL] = e.ValueURI
	}
	if got["token"] != "http://h/auth/token" || got["authorize"] != "http://h/auth/authorize" || len(got) != 4 {
		t.Errorf("oauth-uris: %v", got)
	}
}
