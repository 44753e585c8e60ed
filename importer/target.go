package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/rest"
)

// Target is a FHIR server the import writes to.
type Target interface {
	// Send processes one batch or transaction Bundle (http.html#transaction)
	// and returns its response entries, in request order. A Bundle the
	// server refuses as a whole is a *Refused error; any other error
	// stops the import.
	Send(ctx context.Context, bundle map[string]any) ([]Result, error)
}

// Result is the response of one Bundle entry.
type Result struct {
	Status       int       // 201 created, 200 updated or unchanged, else failed
	Location     string    // Type/id/_history/n
	LastModified time.Time // of the version the entry answered with
	Outcome      string    // the OperationOutcome's text, for a failure
}

// Refused is a Bundle the server refused as a whole, with the
// OperationOutcome's text.
type Refused struct {
	Status  int
	Outcome string
}

func (e *Refused) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Outcome) }

// ServiceTarget writes through the FHIR core into its store, as POST
// [base] would, with rest.SkipUnchanged so that a resource whose content
// is already stored adds no version.
func ServiceTarget(svc *rest.Service) Target { return serviceTarget{svc} }

type serviceTarget struct{ svc *rest.Service }

func (t serviceTarget) Send(ctx context.Context, bundle map[string]any) ([]Result, error) {
	resp, err := t.svc.Do(rest.SkipUnchanged(ctx), &rest.Request{Method: "POST", Resource: bundle, Return: rest.ReturnMinimal})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var he *hale.Error
		if errors.As(err, &he) {
			return nil, &Refused{Status: 0, Outcome: issuesText(he)}
		}
		return nil, err
	}
	data, err := json.Marshal(resp.Object)
	if err != nil {
		return nil, err
	}
	return parseResponse(data)
}

// issuesText is an error's OperationOutcome as one line.
func issuesText(he *hale.Error) string {
	if he.Kind == hale.KindInternal {
		return "error exception: " + he.Error() // a command-line tool shows the cause
	}
	issues := hale.ErrorIssues(he)
	if len(issues) == 0 {
		return he.Error()
	}
	parts := make([]string, 0, len(issues))
	for _, is := range issues {
		parts = append(parts, issueText(is.Severity, is.Code, is.Diagnostics, is.Expression))
	}
	return strings.Join(parts, "; ")
}

func issueText(severity, code, diagnostics string, expression []string) string {
	if severity == "" {
		severity = "error"
	}
	s := severity + " " + code + ": " + diagnostics
	if len(expression) > 0 {
		s += " (at " + strings.Join(expression, ", ") + ")"
	}
	return s
}

// HTTPTarget writes to the FHIR server whose base URL is base
// ("http://host/fhir") with POST [base], as JSON.
func HTTPTarget(base string, client *http.Client) *HTTP {
	if client == nil {
		client = http.DefaultClient
	}
	return &HTTP{Base: strings.TrimSuffix(base, "/"), Client: client}
}

// HTTP is a Target reached over HTTP.
type HTTP struct {
	Base   string
	Client *http.Client
}

// Check reads the server's CapabilityStatement, so a wrong URL fails
// before anything is read.
func (t *HTTP) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, "GET", t.Base+"/metadata", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := t.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var cs struct{ ResourceType string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&cs); err != nil || resp.StatusCode != 200 || cs.ResourceType != "CapabilityStatement" {
		return fmt.Errorf("%s/metadata: %s, not a FHIR CapabilityStatement; is %s a FHIR base URL?", t.Base, resp.Status, t.Base)
	}
	return nil
}

func (t *HTTP) Send(ctx context.Context, bundle map[string]any) ([]Result, error) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(bundle); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", t.Base, &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Prefer", "return=minimal")
	resp, err := t.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return parseResponse(data)
	}
	if text, ok := outcomeText(data); ok {
		return nil, &Refused{Status: resp.StatusCode, Outcome: text}
	}
	return nil, fmt.Errorf("POST %s: %s: %.200s", t.Base, resp.Status, data)
}

type wireOutcome struct {
	ResourceType string
	Issue        []struct {
		Severity, Code, Diagnostics string
		Expression                  []string
	}
}

// outcomeText is an OperationOutcome's issues as one line.
func outcomeText(data []byte) (string, bool) {
	var oo wireOutcome
	if json.Unmarshal(data, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return "", false
	}
	parts := make([]string, 0, len(oo.Issue))
	for _, is := range oo.Issue {
		parts = append(parts, issueText(is.Severity, is.Code, is.Diagnostics, is.Expression))
	}
	return strings.Join(parts, "; "), true
}

// parseResponse reads a batch-response or transaction-response Bundle.
func parseResponse(data []byte) ([]Result, error) {
	var b struct {
		ResourceType string
		Entry        []struct {
			Response struct {
				Status, Location, LastModified string
				Outcome                        json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(data, &b); err != nil || b.ResourceType != "Bundle" {
		return nil, fmt.Errorf("the answer is not a response Bundle: %.200s", data)
	}
	out := make([]Result, len(b.Entry))
	for i, e := range b.Entry {
		r := &out[i]
		code, _, _ := strings.Cut(strings.TrimSpace(e.Response.Status), " ")
		r.Status, _ = strconv.Atoi(code)
		r.Location = e.Response.Location
		if e.Response.LastModified != "" {
			r.LastModified, _ = time.Parse(time.RFC3339Nano, e.Response.LastModified)
		}
		if len(e.Response.Outcome) > 0 {
			r.Outcome, _ = outcomeText(e.Response.Outcome)
		}
	}
	return out, nil
}
