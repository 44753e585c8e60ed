package rest

import (
	"github.com/hale-ehr/hale"
)

// outcome builds an OperationOutcome resource (operationoutcome.html) from
// issues.
func outcome(issues []hale.Issue) obj {
	list := make([]any, 0, len(issues))
	for _, is := range issues {
		sev := is.Severity
		if sev == "" {
			sev = "error"
		}
		code := is.Code
		if code == "" {
			code = "processing"
		}
		o := obj{{"severity", sev}, {"code", code}}
		if is.Diagnostics != "" {
			o = append(o, kv{"diagnostics", is.Diagnostics})
		}
		if len(is.Expression) > 0 {
			o = append(o, kv{"expression", is.Expression})
		}
		list = append(list, o)
	}
	return obj{{"resourceType", "OperationOutcome"}, {"issue", list}}
}

// info is an OperationOutcome with one information issue, for
// Prefer: return=OperationOutcome and successful deletes.
func info(msg string) obj {
	return outcome([]hale.Issue{{Severity: "information", Code: "informational", Diagnostics: msg}})
}
