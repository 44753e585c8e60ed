package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/fhirpath"
)

const fhirpathUsage = `Usage: hale fhirpath 'EXPRESSION' FILE

Evaluates a FHIRPath expression against a FHIR resource (FILE is FHIR JSON,
or FHIR XML when it ends in .xml; "-" reads JSON from standard input) and
prints the result collection as a JSON array: FHIR values as their JSON,
dates, dateTimes and times as FHIRPath literals ("@2015-02-04"), System
quantities as {"value", "unit"}. An invalid expression or a failed
evaluation prints the error with its position and exits non-zero.
`

// fhirpathCommand is "hale fhirpath EXPRESSION FILE".
func fhirpathCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, fhirpathUsage)
		return nil
	}
	if len(args) != 2 {
		fmt.Fprint(stderr, fhirpathUsage)
		return errors.New("fhirpath: want an expression and a file")
	}
	expr, file := args[0], args[1]
	e, err := fhirpath.Parse(expr)
	if err != nil {
		showPosition(stderr, expr, err)
		return err
	}
	var data []byte
	if file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return fmt.Errorf("fhirpath: %w", err)
	}
	var res map[string]any
	if strings.HasSuffix(file, ".xml") {
		res, err = fhir.DecodeXML(data)
	} else {
		res, err = fhir.Decode(data)
	}
	if err != nil {
		return fmt.Errorf("fhirpath: %s: %w", file, err)
	}
	r, err := e.Evaluate(ctx, res, &fhirpath.Env{Resource: res})
	if err != nil {
		showPosition(stderr, expr, err)
		return err
	}
	out := make([]any, len(r))
	for i, it := range r {
		out[i] = it.JSON()
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("fhirpath: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", b)
	return err
}

// showPosition prints the expression with a caret under the error's
// position.
func showPosition(w io.Writer, expr string, err error) {
	var fe *fhirpath.Error
	if !errors.As(err, &fe) || fe.Pos < 0 || strings.Contains(expr, "\n") {
		return
	}
	fmt.Fprintf(w, "  %s\n  %s^\n", expr, strings.Repeat(" ", fe.Pos))
}
