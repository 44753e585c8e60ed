package fhir

// The definitions are generated from the official R4 files; see
// internal/gen. Set HALE_FHIR_DEFS to point at another copy of them.
//go:generate go run ./internal/gen -out .
