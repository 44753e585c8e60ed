package rest

import (
	"net/http"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
)

// validate implements $validate (resource-operation-validate.html): the
// same checks as a create or update, answered as an OperationOutcome,
// writing nothing. The body is the resource, or a Parameters resource
// with a "resource" parameter. The answer is 200 with the issues found
// (an "All OK" information issue when there are none); a body that cannot
// be read at all is a 400.
func (s *Service) validate(req *Request) (*Response, error) {
	if req.Method != "POST" {
		return nil, hale.Errorf(hale.KindMethodNotAllowed, "$validate is invoked with POST")
	}
	if req.Type == "" {
		return nil, hale.Errorf(hale.KindNotFound, "$validate is defined on a resource type: [base]/[type]/$validate")
	}
	res, err := fhir.Decode(req.Body)
	if err != nil {
		return nil, err
	}
	if res["resourceType"] == "Parameters" && req.Type != "Parameters" {
		params, _ := res["parameter"].([]any)
		res = nil
		for _, p := range params {
			pm, _ := p.(map[string]any)
			if pm["name"] == "resource" {
				res, _ = pm["resource"].(map[string]any)
			}
		}
		if res == nil {
			return nil, hale.Errorf(hale.KindInvalid, "the Parameters body has no \"resource\" parameter")
		}
	}
	vreq := *req
	vreq.Resource = res
	var issues []hale.Issue
	if _, err := decodeResource(&vreq); err != nil {
		issues = hale.ErrorIssues(err)
	} else if id, _ := res["id"].(string); req.ID != "" && id != req.ID {
		issues = []hale.Issue{{Severity: "error", Code: "invalid", Diagnostics: "the resource's id does not match the id in the URL"}}
	}
	if len(issues) == 0 {
		issues = []hale.Issue{{Severity: "information", Code: "informational", Diagnostics: "All OK"}}
	}
	return &Response{Status: http.StatusOK, Object: outcome(issues)}, nil
}
