package auth

import (
	"encoding/json"
	"net/http"
	"strings"
)

// SMART discovery (SMART App Launch 2.x, conformance.html "Using
// .well-known"): the JSON document at <FHIR base>/.well-known/
// smart-configuration. It lists only what Hale does.

// SMARTConfiguration is the discovery document.
type SMARTConfiguration struct {
	Issuer                            string   `json:"issuer"`
	JWKSURI                           string   `json:"jwks_uri"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	IDTokenSigningAlgs                []string `json:"id_token_signing_alg_values_supported"`
	Capabilities                      []string `json:"capabilities"`
}

// authBase is where the auth endpoints live: the token URL's folder.
func (s *Service) authBase() string {
	return strings.TrimSuffix(s.opts.TokenURL, "/token")
}

// Configuration returns the discovery document.
func (s *Service) Configuration() *SMARTConfiguration {
	base := s.authBase()
	caps := []string{
		"launch-ehr", "launch-standalone", "authorize-post",
		"client-public", "client-confidential-asymmetric",
		"context-ehr-patient", "context-ehr-encounter", "context-standalone-patient",
		"context-banner", "permission-offline", "permission-online", "permission-patient", "permission-user",
		"permission-v1", "permission-v2", "sso-openid-connect",
	}
	if s.opts.SmartStyleURL != "" {
		caps = append(caps, "context-style")
	}
	return &SMARTConfiguration{
		Issuer:                            s.opts.Issuer,
		JWKSURI:                           base + "/jwks",
		AuthorizationEndpoint:             base + "/authorize",
		TokenEndpoint:                     s.opts.TokenURL,
		IntrospectionEndpoint:             base + "/introspect",
		RevocationEndpoint:                base + "/revoke",
		GrantTypesSupported:               []string{"authorization_code", "refresh_token", "client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"private_key_jwt", "none"},
		TokenEndpointAuthSigningAlgs:      []string{RS384, ES384},
		ScopesSupported: []string{
			ScopeOpenID, ScopeFHIRUser, ScopeLaunch, ScopeLaunchPatient, ScopeLaunchEncounter,
			ScopeOffline, ScopeOnline,
			"patient/*.cruds", "user/*.cruds", "system/*.cruds",
			"patient/*.rs", "user/*.rs", "system/*.rs",
			"patient/*.read", "user/*.read", "system/*.read",
			"patient/*.write", "user/*.write", "system/*.write",
			"patient/*.*", "user/*.*", "system/*.*",
		},
		ResponseTypesSupported:        []string{"code"},
		CodeChallengeMethodsSupported: []string{"S256"},
		IDTokenSigningAlgs:            []string{RS256},
		Capabilities:                  caps,
	}
}

// SMARTConfigurationHandler serves the discovery document; the server
// mounts it at GET <FHIR base>/.well-known/smart-configuration, a public
// route. Any origin may read it (it holds nothing private and no
// credentials are involved).
func (s *Service) SMARTConfigurationHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeOAuth(w, &OAuthError{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Description: "GET only"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		json.NewEncoder(w).Encode(s.Configuration())
	})
}
