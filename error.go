package hale

import (
	"errors"
	"fmt"
)

// Kind classifies an error; the edges (FHIR HTTP, web pages) map a Kind to
// a status code once, in one place.
type Kind int

const (
	KindInternal             Kind = iota // 500: a bug or an unavailable dependency
	KindInvalid                          // 400: malformed request or resource
	KindUnprocessable                    // 422: well-formed but fails validation rules
	KindNotFound                         // 404
	KindGone                             // 410: deleted
	KindConflict                         // 409: version or id conflict
	KindPreconditionFailed               // 412: If-Match failed, or a conditional matched several
	KindForbidden                        // 403
	KindUnauthorized                     // 401
	KindTooLarge                         // 413
	KindNotAcceptable                    // 406: asked for a format we do not produce
	KindUnsupportedMediaType             // 415: sent a format we do not read
	KindMethodNotAllowed                 // 405
	KindNotSupported                     // 501: an interaction Hale does not implement
)

var kindNames = [...]string{
	KindInternal:             "internal",
	KindInvalid:              "invalid",
	KindUnprocessable:        "unprocessable",
	KindNotFound:             "not-found",
	KindGone:                 "gone",
	KindConflict:             "conflict",
	KindPreconditionFailed:   "precondition-failed",
	KindForbidden:            "forbidden",
	KindUnauthorized:         "unauthorized",
	KindTooLarge:             "too-large",
	KindNotAcceptable:        "not-acceptable",
	KindUnsupportedMediaType: "unsupported-media-type",
	KindMethodNotAllowed:     "method-not-allowed",
	KindNotSupported:         "not-supported",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Issue is one OperationOutcome.issue.
type Issue struct {
	Severity    string   // fatal | error | warning | information
	Code        string   // IssueType code: invalid, structure, required, value, invariant, not-found, …
	Diagnostics string   // human-readable text
	Expression  []string // FHIRPath location(s), e.g. "Patient.name[0].given[1]"
}

// Error is Hale's error: a Kind for the edge to map, the operation that
// failed, a message a user may read, and optional OperationOutcome issues.
type Error struct {
	Kind    Kind
	Op      string  // e.g. "rest.create"
	Message string  // safe to show a client
	Issues  []Issue // when set, the outcome's issues; otherwise one built from Message
	Err     error   // wrapped cause; logged, never shown to a client
}

func (e *Error) Error() string {
	s := e.Message
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k with a formatted message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// ErrorKind returns the Kind of the first *Error in err's chain, and
// KindInternal for any other non-nil error.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsKind reports whether err has kind k.
func IsKind(err error, k Kind) bool { return err != nil && ErrorKind(err) == k }

// ErrorIssues returns the OperationOutcome issues for err: its own issues if
// it has any, else one issue built from its message. Internal errors get a
// generic message; their detail belongs in the log.
func ErrorIssues(err error) []Issue {
	var e *Error
	if !errors.As(err, &e) || e.Kind == KindInternal {
		return []Issue{{Severity: "error", Code: "exception", Diagnostics: "internal error"}}
	}
	if len(e.Issues) > 0 {
		return e.Issues
	}
	return []Issue{{Severity: "error", Code: issueCode(e.Kind), Diagnostics: e.Message}}
}

func issueCode(k Kind) string {
	switch k {
	case KindInvalid, KindUnprocessable:
		return "invalid"
	case KindNotFound, KindGone:
		return "not-found"
	case KindConflict, KindPreconditionFailed:
		return "conflict"
	case KindForbidden:
		return "forbidden"
	case KindUnauthorized:
		return "login"
	case KindTooLarge:
		return "too-costly"
	case KindNotSupported, KindNotAcceptable, KindUnsupportedMediaType, KindMethodNotAllowed:
		return "not-supported"
	}
	return "exception"
}
