package search

import (
	"maps"

	"github.com/hale-ehr/hale"
)

// Contained resources (search.html#contained) are indexed with their
// container, under parameter names a normal search never uses, so that
// only a search with _contained=true or both sees them:
//
//   - each contained resource of type T at position k (1-based) of the
//     container's contained list has a token row named "#T" whose Code is
//     its id and whose Group is k<<16 (ContainedGroupShift): it says the
//     contained resource exists;
//   - each of its own index rows (Extract on the contained resource) is
//     stored as a row of the container, named "#T.<param>", with Group
//     k<<16 | its own group (a composite element's number, below 1<<16).
//
// The rows belong to the container's (type, id), so Put replaces them with
// its other rows and a delete removes them. internal/sqlsearch reads them
// for a Query with a "_contained" clause (see ParseRequest); docs/search.md
// and docs/database.md describe the design.
const (
	// ContainedPrefix starts the parameter names of contained rows. It is
	// FHIR's mark of a local reference ("#med1"); no search parameter
	// code starts with it (composite components have it after their
	// name, "x#0").
	ContainedPrefix = "#"
	// ContainedGroupShift places a contained resource's position above
	// the composite group numbers in a row's Group.
	ContainedGroupShift = 16
	// maxContained bounds the contained resources indexed per container,
	// so that (k+1)<<16, the end of the last one's groups, fits the
	// engines' 32-bit grp column.
	maxContained = 1<<(31-ContainedGroupShift) - 2
)

// ContainedParam is the name of contained type typ's rows for param
// ("" for the row that says such a contained resource exists).
func ContainedParam(typ, param string) string {
	if param == "" {
		return ContainedPrefix + typ
	}
	return ContainedPrefix + typ + "." + param
}

// addContained adds to idx the rows of the resources res contains.
func (r *Registry) addContained(idx *hale.Index, res map[string]any) {
	list, _ := res["contained"].([]any)
	for i, item := range list {
		if i >= maxContained {
			return
		}
		c, ok := item.(map[string]any)
		if !ok {
			continue
		}
		typ, _ := c["resourceType"].(string)
		id, _ := c["id"].(string)
		if typ == "" || id == "" || len(id) > MaxTokenLen {
			continue
		}
		// A contained resource contains nothing (dom-2); should one, its
		// own contained list is not indexed.
		c = maps.Clone(c)
		delete(c, "contained")
		sub := r.Extract(typ, c)
		g := (i + 1) << ContainedGroupShift
		idx.Tokens = append(idx.Tokens, hale.TokenValue{Param: ContainedParam(typ, ""), Group: g, Code: id})
		for _, x := range sub.Tokens {
			x.Param, x.Group = ContainedParam(typ, x.Param), g|x.Group
			idx.Tokens = append(idx.Tokens, x)
		}
		for _, x := range sub.Strings {
			x.Param, x.Group = ContainedParam(typ, x.Param), g|x.Group
			idx.Strings = append(idx.Strings, x)
		}
		for _, x := range sub.References {
			x.Param, x.Group = ContainedParam(typ, x.Param), g|x.Group
			idx.References = append(idx.References, x)
		}
		for _, x := range sub.Dates {
			x.Param, x.Group = ContainedParam(typ, x.Param), g|x.Group
			idx.Dates = append(idx.Dates, x)
		}
		for _, x := range sub.Numbers {
			x.Param, x.Group = ContainedParam(typ, x.Param), g|x.Group
			idx.Numbers = append(idx.Numbers, x)
		}
		for _, x := range sub.Quantities {
			x.Param, x.Group = ContainedParam(typ, x.Param), g|x.Group
			idx.Quantities = append(idx.Quantities, x)
		}
		for _, x := range sub.URIs {
			x.Param, x.Group = ContainedParam(typ, x.Param), g|x.Group
			idx.URIs = append(idx.URIs, x)
		}
	}
}
