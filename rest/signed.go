package rest

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/hale-ehr/hale"
)

// A signed clinical document is immutable (docs/security.md, "Signed
// notes"). Once the current version of a DocumentReference has docStatus
// final or amended, or that of a Composition has status final or amended
// (https://hl7.org/fhir/R4/valueset-composition-status.html: "final: …
// any further updates would be a new version", which here must be a new
// resource that relatesTo the signed one), an update or patch (also in a
// transaction or batch) may change only:
//
//   - meta (tags, security labels; not clinical content);
//   - status of a DocumentReference: current → superseded or
//     entered-in-error, superseded → entered-in-error
//     (https://hl7.org/fhir/R4/valueset-document-reference-status.html);
//   - docStatus of a DocumentReference, or status of a Composition:
//     → entered-in-error;
//   - relatesTo: entries may be added, none changed or removed (an
//     addendum is its own DocumentReference that relatesTo "appends" the
//     signed note, written by create, so the signed note itself needs no
//     change; adding a link on it is allowed for other writers).
//
// Everything else (content, description, author, authenticator, subject,
// date, type, category, context, section, text, extensions, …) must stay
// as it is; otherwise the write is refused with 422 and an
// OperationOutcome (code business-rule) naming the elements. A
// preliminary (draft) document is not affected. Deleting is not covered
// by this rule (access policy decides who may delete).

// signedStatus is the element that marks a document signed, by type.
var signedStatus = map[string]string{"DocumentReference": "docStatus", "Composition": "status"}

// checkSigned refuses a write of res over prev when prev is a signed
// document and res changes more than the rule above allows.
func checkSigned(typ string, prev *hale.Version, res map[string]any) error {
	field, ok := signedStatus[typ]
	if !ok || prev == nil || prev.Deleted {
		return nil
	}
	var old map[string]any
	if err := json.Unmarshal(prev.Data, &old); err != nil {
		return nil // the stored version is ours; nothing to hold against
	}
	if s, _ := old[field].(string); s != "final" && s != "amended" {
		return nil
	}
	var bad []string
	// The status elements: unchanged or to an allowed end state.
	statusMoves := map[string]func(from, to string) bool{
		field: func(from, to string) bool { return to == from || to == "entered-in-error" },
	}
	if typ == "DocumentReference" {
		statusMoves["status"] = func(from, to string) bool {
			return to == from || to == "entered-in-error" || from == "current" && to == "superseded"
		}
	}
	for el, ok := range statusMoves {
		from, _ := old[el].(string)
		to, _ := res[el].(string)
		if !ok(from, to) {
			bad = append(bad, el)
		}
	}
	// relatesTo: additions only.
	oldRel, _ := old["relatesTo"].([]any)
	newRel, _ := res["relatesTo"].([]any)
	for _, r := range oldRel {
		if !slices.ContainsFunc(newRel, func(n any) bool { return reflect.DeepEqual(jsonNorm(n), jsonNorm(r)) }) {
			bad = append(bad, "relatesTo")
			break
		}
	}
	// Everything else: equal.
	skip := map[string]bool{"id": true, "meta": true, "relatesTo": true, "status": true, field: true}
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range res {
		keys[k] = true
	}
	for k := range keys {
		if !skip[k] && !reflect.DeepEqual(jsonNorm(old[k]), jsonNorm(res[k])) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	bad = slices.Compact(bad)
	expr := make([]string, len(bad))
	for i, b := range bad {
		expr[i] = typ + "." + b
	}
	msg := typ + "/" + prev.ID + " is signed (" + field + " " + old[field].(string) + ") and cannot be changed: " +
		strings.Join(bad, ", ") + " may not be altered. A signed document may only be marked entered-in-error" +
		" (or, for a DocumentReference, superseded) or gain relatesTo links; correct it with a new document (an addendum) that relatesTo it."
	return &hale.Error{Kind: hale.KindUnprocessable, Op: "rest.put", Message: msg,
		Issues: []hale.Issue{{Severity: "error", Code: "business-rule", Diagnostics: msg, Expression: expr}}}
}

// jsonNorm gives v the shape json.Unmarshal gives it (numbers as
// float64, []any, map[string]any), so a resource decoded from a request
// compares equal to the same resource read back from the store.
func jsonNorm(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}
