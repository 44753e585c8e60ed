// Package demo holds the synthetic demo patients `hale serve` loads on
// first run, so a new user sees data at once.
package demo

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
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
		if data, err = manage(data); err != nil {
			return nil, err
		}
		out = append(out, Bundle{Name: name, Data: data})
	}
	return out, nil
}

// manage sets the patient's managingOrganization to the bundle's first
// Organization (the practice Synthea's encounters name as service
// provider) when it has none. Access control shows a clinician the
// patients of their organizations (docs/security.md), so a demo user of
// those organizations sees the demo patients.
func manage(data []byte) ([]byte, error) {
	var b map[string]any
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, err
	}
	entries, _ := b["entry"].([]any)
	var patient map[string]any
	var org string
	for _, e := range entries {
		e, _ := e.(map[string]any)
		r, _ := e["resource"].(map[string]any)
		switch r["resourceType"] {
		case "Patient":
			if patient == nil {
				patient = r
			}
		case "Organization":
			if org == "" {
				org, _ = e["fullUrl"].(string)
			}
		}
	}
	if patient == nil || org == "" || patient["managingOrganization"] != nil {
		return data, nil
	}
	patient["managingOrganization"] = map[string]any{"reference": org}
	return json.Marshal(b)
}
