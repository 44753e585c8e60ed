// Package hale holds the vocabulary every other package of the Hale EHR
// shares: the storage contract (Store, Reader, Tx), the stored form of a
// resource version (Version), the search index rows the FHIR core computes
// for each write (Index), and the error type with its kinds (error.go).
//
// Adapters are named after what they depend on: sqlite/ and postgres/
// implement Store, rest/ speaks HTTP, cmd/hale wires them. They import this
// package, not each other.
package hale

import (
	"context"
	"time"
)

// Version is one stored version of one resource.
//
// A delete is stored as a version too (Deleted true, Data nil), so history
// keeps every version and a read after a delete can answer 410 Gone.
type Version struct {
	Type        string    // resource type, e.g. "Patient"
	ID          string    // logical id
	VersionID   int64     // 1, 2, 3, … (meta.versionId)
	LastUpdated time.Time // meta.lastUpdated, UTC
	Deleted     bool      // true for the version a delete wrote
	Method      string    // interaction that wrote it: POST, PUT, PATCH or DELETE
	Data        []byte    // the resource as FHIR JSON, id and meta included; nil when Deleted
	Seq         int64     // global write order, assigned by the store in Put
}

// Index is the set of search values the FHIR core extracted from one
// resource version. The store keeps exactly these rows for the current
// version of each resource and replaces them on every write.
type Index struct {
	Tokens     []TokenValue
	Strings    []StringValue
	References []ReferenceValue
	Dates      []DateValue     // query.go
	Numbers    []NumberValue   // query.go
	Quantities []QuantityValue // query.go
	URIs       []URIValue      // query.go
}

// TokenValue is one token search value (code, identifier, boolean, …).
// For identifiers System is Identifier.system and Code Identifier.value.
//
// The core also stores derived rows under modified parameter names:
// "code:text" string rows (CodeableConcept.text and Coding.display),
// "identifier:of-type" token rows (System: the type's system, Code: the
// type's code, "|", the identifier's value) and "subject:identifier" token
// rows (Reference.identifier). Components of a composite parameter are
// stored as rows named "<composite>#<n>" (n = 0, 1, …) whose Group ties
// together the components of one composite element.
type TokenValue struct {
	Param  string // search parameter code, e.g. "identifier"
	Group  int    // composite element number, 1-based; 0 outside composites
	System string // may be empty
	Code   string
}

// StringValue is one string search value. Norm is the value folded for
// the default string match (lower case, accents removed, whitespace
// collapsed); Exact is the value as written, for :exact.
type StringValue struct {
	Param string
	Group int
	Norm  string
	Exact string
}

// ReferenceValue is one reference search value. For a relative or
// server-local reference TargetType and TargetID are set; URL always holds
// the reference as written (for absolute and canonical references).
type ReferenceValue struct {
	Param      string
	Group      int
	TargetType string
	TargetID   string
	URL        string
}

// MatchKind says how a Match compares.
type MatchKind int

const (
	// MatchID compares the logical id (the _id parameter).
	MatchID MatchKind = iota
	// MatchToken compares TokenValue rows; see MatchValue for the forms.
	MatchToken
	// MatchString: the folded value starts with the folded argument.
	MatchString
	// MatchStringExact: the value equals the argument exactly.
	MatchStringExact
	// MatchStringContains: the folded value contains the folded argument.
	MatchStringContains
	// MatchReference: TargetType/TargetID equal (TargetType may be empty for
	// "any type"), or URL equals when URL is set.
	MatchReference
)

// Match is one condition of a store search. The Values of one Match are
// alternatives (OR); the Matches of one search must all hold (AND).
type Match struct {
	Param  string
	Kind   MatchKind
	Values []MatchValue
}

// MatchValue is one alternative of a Match.
//
// For MatchToken: Code alone matches any system ("code"); System and Code
// match both ("system|code"); NoSystem with Code matches rows without a
// system ("|code"); System alone with AnyCode matches any code in that
// system ("system|").
//
// For MatchString* and MatchID the argument is Code. For MatchReference it
// is TargetType+TargetID, or URL.
type MatchValue struct {
	System     string
	Code       string
	NoSystem   bool
	AnyCode    bool
	TargetType string
	TargetID   string
	URL        string
}

// HistoryQuery selects versions for the history interactions.
// http.html#history
type HistoryQuery struct {
	Type string // "" for system history
	ID   string // "" for type (or system) history

	// Since keeps versions with LastUpdated >= Since (the _since parameter).
	Since time.Time
	// AtStart/AtEnd keep versions that were current at some moment of
	// [AtStart, AtEnd] (the _at parameter, widened to its precision).
	AtStart, AtEnd time.Time
	// BeforeSeq keeps versions with Seq < BeforeSeq; the paging cursor.
	BeforeSeq int64
	// Limit is the most versions to return; 0 means no limit.
	Limit int
}

// Reader reads the store. Results are newest first where order matters.
type Reader interface {
	// Current returns the current version of a resource, which is a
	// Deleted version when the resource was deleted.
	// Returns a KindNotFound error when the resource never existed.
	Current(ctx context.Context, typ, id string) (*Version, error)

	// Version returns one version. Returns KindNotFound when it does not exist.
	Version(ctx context.Context, typ, id string, versionID int64) (*Version, error)

	// History returns versions matching q, ordered by Seq descending.
	History(ctx context.Context, q HistoryQuery) ([]Version, error)

	// Find returns the ids of the current, not deleted resources of type typ
	// that satisfy every Match, in id order, at most limit of them
	// (limit <= 0: all).
	Find(ctx context.Context, typ string, matches []Match, limit int) ([]string, error)

	// Count returns how many current, not deleted resources of type typ
	// exist ("" counts every type).
	Count(ctx context.Context, typ string) (int64, error)
}

// Tx is a write transaction. Reads through a Tx see its own writes, and
// Current through a Tx locks the resource's row where the engine needs it
// so two transactions cannot both write version n+1.
type Tx interface {
	Reader

	// Put stores v as the newest version of its resource, makes it
	// current and replaces the resource's index rows with idx (nil idx:
	// none, as for a delete). It sets v.Seq.
	// Returns KindConflict if version v.VersionID already exists.
	Put(ctx context.Context, v *Version, idx *Index) error

	// Lock takes a lock named key that is held until the transaction
	// ends. Conditional interactions lock "conditional:<Type>" so that
	// concurrent identical conditional creates serialise.
	Lock(ctx context.Context, key string) error
}

// Store is the storage contract every engine (sqlite, postgres)
// implements and storetest checks.
type Store interface {
	// View runs fn in a read-only transaction with a consistent snapshot,
	// taken no later than fn's first read: nothing committed after it is
	// seen.
	View(ctx context.Context, fn func(Reader) error) error

	// Update runs fn in one write transaction: everything fn writes is
	// committed together or not at all. The engine may run fn again if the
	// transaction hit a transient conflict, so fn must have no effects
	// outside tx. An error from fn rolls back and is returned as is.
	Update(ctx context.Context, fn func(Tx) error) error

	// Engine names the engine ("sqlite", "postgres").
	Engine() string

	Close() error
}

// Now is the clock type; packages take one instead of calling time.Now so
// tests can fix time.
type Now func() time.Time
