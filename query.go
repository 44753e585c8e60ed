package hale

import "context"

// This file is the search part of the storage contract (search.html). The
// FHIR core (package search) turns a search URL into a Query; each engine
// compiles the Query to SQL with every value bound as a parameter and
// every column and parameter name taken from the registry, never from the
// request.

// DateValue is a date, dateTime, instant or Period search value, stored as
// the range its precision covers: "2020-03" is [2020-03-01T00:00:00Z,
// 2020-04-01T00:00:00Z), so Lo is inclusive and Hi exclusive. Both are unix
// microseconds UTC; an open Period end is MaxTime, an open start MinTime.
type DateValue struct {
	Param  string
	Group  int // see TokenValue.Group
	Lo, Hi int64
}

// MinTime and MaxTime bound open date ranges (unix microseconds).
const (
	MinTime int64 = -62135596800000000 // 0001-01-01T00:00:00Z
	MaxTime int64 = 253402300800000000 // 10000-01-01T00:00:00Z
)

// NumberValue is a number search value. Lo and Hi are the range its
// precision implies ("100" is [99.5, 100.5)), Value the value itself.
type NumberValue struct {
	Param         string
	Group         int
	Value, Lo, Hi float64
}

// QuantityValue is a Quantity search value (also Money, Duration, Age,
// SampledData's origin). CanonCode/CanonLo/CanonHi give the value in UCUM
// canonical units ("g", "m", "s", …) when the unit converts; CanonCode is
// "" otherwise.
type QuantityValue struct {
	Param            string
	Group            int
	System, Code     string // unit system and code
	Unit             string // human unit, matched when no code is given
	Value, Lo, Hi    float64
	CanonCode        string
	CanonLo, CanonHi float64
}

// URIValue is a uri, url or canonical search value.
type URIValue struct {
	Param string
	Group int
	URI   string
}

// ParamType is a search parameter type (search.html#ptypes), plus the
// special handling of _id and _lastUpdated, which live on the resource row.
type ParamType string

const (
	TypeNumber      ParamType = "number"
	TypeDate        ParamType = "date"
	TypeString      ParamType = "string"
	TypeToken       ParamType = "token"
	TypeReference   ParamType = "reference"
	TypeComposite   ParamType = "composite"
	TypeQuantity    ParamType = "quantity"
	TypeURI         ParamType = "uri"
	TypeID          ParamType = "_id"          // resource.id
	TypeLastUpdated ParamType = "_lastUpdated" // resource.last_updated
	// TypeResourceType compares the resource type (Value.Code), as _id
	// compares the id. No search parameter has it: package access uses
	// it to give each type of a multi-type search its own restriction
	// ("type is not T, or the restriction of T holds").
	TypeResourceType ParamType = "_type"
)

// Query is a parsed search: resources of Types that satisfy every Clause.
type Query struct {
	// Types are the resource types searched: one for a type search; for a
	// system search the _type list, or nil for every type.
	Types []string
	Where []Clause
	// Sort orders the results; the engine always adds type and id as
	// final keys so the order is total and paging is stable.
	Sort []SortKey
	// WriteOrder, for a Query without Sort, lets the engine return the
	// results in the order the resources were created (their first
	// version's Seq) rather than by type and id, where that is its
	// cheaper plan: a search of one type whose conditions cannot narrow
	// the matches through an index (none, or only :missing, :not,
	// :contains and the like), as a paged download is. The spec leaves
	// the order of an unsorted search to the server (search.html#sort).
	// A resource's place in this order never changes, so paging skips
	// and repeats nothing while others write. Which order a page used is
	// in its Cursor; the same Query always picks the same one.
	WriteOrder bool
	// Count is the page size; 0 returns no resources (a count-only search).
	Count int
	// After continues a previous page: only results after this position
	// of the sort order.
	After *Cursor
	// Total asks for the number of all matches (Bundle.total).
	Total bool
}

// Clause is one search condition. Its Values are alternatives (comma,
// OR); a Query's Clauses must all hold (repeated parameters, AND).
type Clause struct {
	Param string    // parameter code as indexed, e.g. "code", "subject", "code:text"
	Type  ParamType // how Values compare and which index holds the values
	// Missing, when set, replaces Values: true matches resources with no
	// value for Param, false resources with at least one (:missing).
	Missing *bool
	// Not negates the clause: resources with no value matching any of
	// Values (token :not, prefix ne applies per value instead).
	Not bool
	// Modifier refines the comparison: string "exact"/"contains", uri
	// "below"/"above"; "" otherwise (other modifiers are resolved into
	// Params and Values by the core before the store sees them).
	Modifier string
	Values   []Value
	// Chain, for a reference parameter, matches resources whose reference
	// points to a resource of Chain.Type that satisfies Chain.Where
	// (subject:Patient.name=x). Values is empty when Chain is set.
	Chain *Chain
	// Has matches resources referred to, through parameter Has.Param, by
	// a resource of type Has.Type that satisfies Has.Where (_has).
	Has *Has
	// Components, for a composite parameter, are the component clauses
	// that must hold on values of one composite element (the same Group).
	// For a composite clause Values is empty; each alternative is one
	// element of Composite.
	Composite [][]Clause
	// Or, when set, makes the clause hold when any of its clauses holds;
	// the other fields are then unused. Compartment searches use it
	// (Patient/1/Observation: subject or performer refers to Patient/1).
	Or []Clause
	// Types, when set, limits the clause to resources of these types: it
	// does not hold for others. A search over many types uses it for a
	// parameter only some of them define (a Patient compartment over
	// every type: "performer" is a compartment parameter of Observation
	// and Procedure, not of the other 60 types), so the store probes its
	// index for those types only.
	Types []string
}

// Chain is the target side of a chained reference parameter.
type Chain struct {
	Type  string // target resource type; "" for any type the reference allows
	Where []Clause
}

// Has is the source side of a reverse chain (_has:Type:param:...).
type Has struct {
	Type  string // the referring resource type
	Param string // its reference parameter
	Where []Clause
}

// Value is one alternative of a Clause; which fields count depends on
// the clause's Type.
type Value struct {
	// Prefix for number, date and quantity: eq ne gt lt ge le sa eb ap.
	Prefix string

	// Token: see MatchValue for the forms. String and URI: Code.
	System   string
	Code     string
	NoSystem bool
	AnyCode  bool

	// Date: the searched range [Lo, Hi) in unix microseconds.
	Lo, Hi int64

	// Number and quantity: the searched number and its precision range.
	Number, NumberLo, NumberHi float64
	// Quantity unit: System|Code as in the search, and the canonical form
	// when it converts (CanonCode "" otherwise).
	CanonCode                    string
	CanonNumberLo, CanonNumberHi float64

	// Reference.
	TargetType, TargetID, URL string
}

// SortKey is one _sort key.
type SortKey struct {
	Param string
	Type  ParamType
	Desc  bool
}

// Cursor is a position in a sorted result: the sort key values of the
// last resource of a page (as the engine encoded them) and its type and id.
type Cursor struct {
	Keys []string
	Type string
	ID   string
}

// SearchResult is one page of a search.
type SearchResult struct {
	Versions []Version // current versions, in sort order
	Total    int64     // all matches, when Query.Total; else -1
	Next     *Cursor   // where the next page starts; nil on the last page
}

// Searcher is implemented by a Reader that can run a Query.
type Searcher interface {
	Search(ctx context.Context, q *Query) (*SearchResult, error)
}

// Reindexer is implemented by a Tx that can replace the index rows of a
// resource's current version without writing a new version: `hale
// reindex` uses it after search parameters change.
type Reindexer interface {
	Reindex(ctx context.Context, typ, id string, idx *Index) error
}
