package rest

import (
	"net/http"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
)

// capabilities implements the capabilities interaction
// (http.html#capabilities): a CapabilityStatement that states exactly what
// this server implements, no more.
func (s *Service) capabilities(req *Request) (*Response, error) {
	return &Response{Status: http.StatusOK, Object: s.capabilityStatement(req.Base)}, nil
}

func (s *Service) capabilityStatement(base string) obj {
	var resourceCaps []any
	declarable := declarableTypes()
	for _, t := range fhir.ResourceTypes() {
		if !declarable[t] {
			continue
		}
		if t == "AuditEvent" {
			resourceCaps = append(resourceCaps, auditCapability())
			continue
		}
		var params []any
		params = append(params, obj{{"name", "_id"}, {"type", "token"}, {"documentation", "logical id"}},
			obj{{"name", "_lastUpdated"}, {"type", "date"}, {"documentation", "when the resource last changed"}})
		for _, p := range s.Params.SupportedParams(t) {
			if p.Code == "_id" {
				continue
			}
			po := obj{{"name", p.Code}}
			if p.URL != "" {
				po = append(po, kv{"definition", p.URL})
			}
			po = append(po, kv{"type", p.Type})
			params = append(params, po)
		}
		var includes []any
		for _, p := range s.Params.ReferenceParams(t) {
			includes = append(includes, t+":"+p)
		}
		rc := obj{
			{"type", t},
			{"interaction", []any{
				obj{{"code", "read"}}, obj{{"code", "vread"}}, obj{{"code", "update"}}, obj{{"code", "patch"}},
				obj{{"code", "delete"}}, obj{{"code", "history-instance"}}, obj{{"code", "history-type"}},
				obj{{"code", "create"}}, obj{{"code", "search-type"}},
			}},
			{"versioning", "versioned-update"},
			{"readHistory", true},
			{"updateCreate", true},
			{"conditionalCreate", true},
			{"conditionalRead", "full-support"},
			{"conditionalUpdate", true},
			{"conditionalDelete", "single"},
			{"referencePolicy", []any{"literal", "logical"}},
		}
		if len(includes) > 0 { // FHIR allows no empty arrays
			rc = append(rc, kv{"searchInclude", includes})
		}
		rc = append(rc, kv{"searchRevInclude", []any{"*"}}, kv{"searchParam", params}, kv{"operation", s.operations(t)})
		resourceCaps = append(resourceCaps, rc)
	}
	restCaps := obj{
		{"mode", "server"},
		{"documentation", "Search supports every parameter listed per resource (R4 core and US Core), with modifiers, prefixes, chains, _has, composites, _sort, _count with cursor paging, _total, _summary, _elements, _include and _revinclude (:iterate); unknown parameters are ignored and reported (400 with Prefer: handling=strict)."},
	}
	if sec := s.security(); sec != nil {
		restCaps = append(restCaps, kv{"security", sec})
	}
	restCaps = append(restCaps,
		kv{"resource", resourceCaps},
		kv{"interaction", []any{obj{{"code", "transaction"}}, obj{{"code", "batch"}}, obj{{"code", "history-system"}}, obj{{"code", "search-system"}}}},
		kv{"compartment", []any{"http://hl7.org/fhir/CompartmentDefinition/patient"}},
		kv{"operation", s.systemOperations()})
	return obj{
		{"resourceType", "CapabilityStatement"},
		{"status", "active"},
		{"date", instant(s.now())},
		{"publisher", "Hale"},
		{"kind", "instance"},
		{"software", obj{{"name", "Hale"}, {"version", s.Version}}},
		{"implementation", obj{{"description", "Hale EHR FHIR R4 server"}, {"url", base}}},
		{"fhirVersion", "4.0.1"},
		{"format", []any{"application/fhir+json", "json", "application/fhir+xml", "xml"}},
		{"patchFormat", []any{"application/json-patch+json"}},
		{"rest", []any{restCaps}},
	}
}

// security is CapabilityStatement.rest.security when the server requires
// authentication (Service.OAuth set): SMART on FHIR, with the OAuth
// endpoints in the oauth-uris extension (SMART App Launch, "Conformance").
func (s *Service) security() obj {
	o := s.OAuth
	if o == nil {
		return nil
	}
	var uris []any
	for _, u := range []struct{ name, url string }{{"authorize", o.Authorize}, {"token", o.Token},
		{"revoke", o.Revoke}, {"introspect", o.Introspect}} {
		if u.url != "" {
			uris = append(uris, obj{{"url", u.name}, {"valueUri", u.url}})
		}
	}
	sec := obj{}
	if len(uris) > 0 {
		sec = append(sec, kv{"extension", []any{obj{
			{"url", "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"},
			{"extension", uris}}}})
	}
	return append(sec,
		kv{"cors", true},
		kv{"service", []any{obj{{"coding", []any{obj{
			{"system", "http://terminology.hl7.org/CodeSystem/restful-security-service"},
			{"code", "SMART-on-FHIR"}}}}}}},
		kv{"description", "Every request but the CapabilityStatement needs an access token (SMART App Launch or Backend Services) or a signed-in session; see /.well-known/smart-configuration."})
}

// operations lists the $operations a resource type supports.
func (s *Service) operations(typ string) []any {
	ops := []any{obj{{"name", "validate"}, {"definition", "http://hl7.org/fhir/OperationDefinition/Resource-validate"}}}
	if typ == "Patient" {
		ops = append(ops, obj{{"name", "everything"}, {"definition", "http://hl7.org/fhir/OperationDefinition/Patient-everything"}})
	}
	// Bulk Data export at Patient and Group level (export.go).
	if _, ok := s.Store.(hale.JobStore); ok && (typ == "Patient" || typ == "Group") {
		ops = append(ops, obj{{"name", "export"}, {"definition", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/" + strings.ToLower(typ) + "-export"}})
	}
	return ops
}

// systemOperations lists the $operations at the system level: the Bulk
// Data system export (export.go) when the store keeps jobs.
func (s *Service) systemOperations() any {
	if _, ok := s.Store.(hale.JobStore); !ok {
		return nil
	}
	return []any{obj{{"name", "export"}, {"definition", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}}}
}

// declarableTypes are the types CapabilityStatement.rest.resource.type may
// name (the required value set resource-types): the definitions Hale is
// built from also hold SubscriptionStatus, which R4's value set lacks.
func declarableTypes() map[string]bool {
	codes, ok := fhir.ValueSetCodes("http://hl7.org/fhir/ValueSet/resource-types")
	out := map[string]bool{}
	for _, t := range fhir.ResourceTypes() {
		out[t] = !ok
	}
	for _, c := range codes {
		out[c.Code] = true
	}
	return out
}
