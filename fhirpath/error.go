package fhirpath

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hale-ehr/hale"
)

// Error classes, as the FHIRPath test suite names them.
const (
	ClassSyntax    = "syntax"    // the expression does not parse
	ClassSemantic  = "semantic"  // it parses but cannot mean anything (unknown function, wrong arity, bad type name)
	ClassExecution = "execution" // evaluation failed (e.g. a singleton expected, incompatible operands)
)

// Error is a FHIRPath error with its position in the expression. Its
// Unwrap gives a *hale.Error of kind invalid (or, for a failure of the
// Resolver, that failure), so hale.ErrorKind sees KindInvalid.
type Error struct {
	Expr  string // the expression
	Pos   int    // byte offset in Expr; -1 when not known
	Class string // ClassSyntax, ClassSemantic or ClassExecution
	Msg   string
	Err   error // cause, e.g. a Resolver error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("fhirpath: ")
	b.WriteString(e.Class)
	b.WriteString(" error")
	if e.Pos >= 0 {
		line, col := e.LineCol()
		fmt.Fprintf(&b, " at %d:%d", line, col)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// LineCol returns the 1-based line and column (in bytes) of Pos.
func (e *Error) LineCol() (line, col int) {
	if e.Pos < 0 {
		return 0, 0
	}
	p := min(e.Pos, len(e.Expr))
	line = 1 + strings.Count(e.Expr[:p], "\n")
	col = p - strings.LastIndexByte(e.Expr[:p], '\n')
	return line, col
}

// Unwrap returns the cause, or a *hale.Error of KindInvalid.
func (e *Error) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return &hale.Error{Kind: hale.KindInvalid, Op: "fhirpath", Message: e.Error()}
}

// errorf returns an execution error without a position; the evaluator adds
// the position of the node it was raised under.
func errorf(format string, args ...any) *Error {
	return &Error{Pos: -1, Class: ClassExecution, Msg: fmt.Sprintf(format, args...)}
}

// at gives err the position pos of expr if it has none yet.
func at(err error, expr string, pos int) error {
	var e *Error
	if errors.As(err, &e) {
		if e.Pos < 0 {
			e.Pos = pos
		}
		if e.Expr == "" {
			e.Expr = expr
		}
		return err
	}
	return &Error{Expr: expr, Pos: pos, Class: ClassExecution, Msg: "evaluation failed", Err: err}
}
