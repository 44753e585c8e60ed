// Package benchmarks holds benchmarks that need a large data set and
// run only on request: BenchmarkScale loads about 1,000 Synthea patients
// (about 280,000 resources) through the FHIR core on each engine and
// measures the searches of the scale issue through the FHIR core too.
// docs/database.md ("Search at scale") has the command and the figures.
//
// (bench/ is something else: `hale bench`, a fixed workload against any
// FHIR server over HTTP.)
package benchmarks
