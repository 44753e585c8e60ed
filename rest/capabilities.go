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
	for _, t := range fhir.ResourceTypes() {
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
		includes := []any{}
		for _, p := range s.Params.ReferenceParams(t) {
			includes = append(includes, t+":"+p)
		}
		resourceCaps = append(resourceCaps, obj{
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
			{"searchInclude", includes},
			{"searchRevInclude", []any{"*"}},
			{"searchParam", params},
			{"operation", s.operations(t)},
		})
	}
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
		{"rest", []any{obj{
			{"mode", "server"},
			{"documentation", "Search supports every parameter listed per resource (R4 core and US Core), with modifiers, prefixes, chains, _has, composites, _sort, _count with cursor paging, _total, _summary, _elements, _include and _revinclude (:iterate); unknown parameters are ignored and reported (400 with Prefer: handling=strict)."},
			{"resource", resourceCaps},
			{"interaction", []any{obj{{"code", "transaction"}}, obj{{"code", "batch"}}, obj{{"code", "history-system"}}, obj{{"code", "search-system"}}}},
			{"compartment", []any{"http://hl7.org/fhir/CompartmentDefinition/patient"}},
			{"operation", s.systemOperations()},
		}}},
	}
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
