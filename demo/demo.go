// Package demo holds the synthetic demo patients `hale serve` loads on
// first run, so a new user sees data at once.
package demo

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"io/fs"
	"sort"
)

//go:embed patients/*.json.gz
var patients embed.FS

// Bundle is one demo patient's transaction Bundle.
type Bundle struct {
	Name string // file name without .json.gz
	Data []byte // FHIR JSON
}

// Bundles returns the demo patients' transaction bundles in file order.
func Bundles() ([]Bundle, error) {
	names, err := fs.Glob(patients, "patients/*.json.gz")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Bundle, 0, len(names))
	for _, n := range names {
		gz, err := patients.ReadFile(n)
		if err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			return nil, err
		}
		name := n[len("patients/") : len(n)-len(".json.gz")]
		out = append(out, Bundle{Name: name, Data: data})
	}
	return out, nil
}
