// Package fhir holds Hale's model of FHIR R4 (4.0.1): the official
// definitions, generated into defs/r4.json by internal/gen and embedded;
// the FHIR JSON codec (Decode, Marshal); and structural validation
// (Validate).
//
// Definitions load lazily, once, on first use (about 40 ms). They give:
//
//   - types: TypeDefinition, TypeNames, Element, TypeDef.Children and
//     TypeDef.Child for navigating elements (a FHIRPath engine's type
//     model), Invariants for the FHIRPath constraints, ValueSetCodes for
//     the expanded required value sets;
//   - resource types: IsResourceType, ResourceTypes;
//   - search: SearchParams, LookupSearchParam (core R4 plus US Core), and
//     CompartmentParams for the Patient compartment.
//
// The tree every function works on is the one Decode returns:
// map[string]any, []any, string, json.Number, bool and nil.
//
// Errors are *hale.Error values: Decode and Marshal return KindInvalid;
// Validate returns OperationOutcome issues (hale.Issue) instead of an error.
package fhir
