// Package invariant checks FHIR invariants (constraints with a FHIRPath
// expression, conformance-rules.html#constraints) on a resource: those its
// StructureDefinition declares on the resource and its backbone elements,
// and those of every data type the resource uses (ele-1 on every element,
// ext-1 on extensions, per-1 on Periods, …), including contained and
// Bundle-entry resources.
//
// Only constraints of severity error are enforced; warnings and best
// practices are not checked on write.
package invariant

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/fhirpath"
)

// rule is one compiled error-severity constraint.
type rule struct {
	c    fhir.Constraint
	expr *fhirpath.Expression
	// rel is the path from the owning type's root to the constrained
	// element ("contact" for Patient.contact; nil for the root itself).
	rel *fhirpath.Expression
}

type typeRules struct {
	root  []rule // on the type (or resource) itself
	inner []rule // on elements inside it, reached through rel
}

var (
	mu    sync.Mutex
	cache = map[string]*typeRules{}
	// Failed compiles are counted, not fatal: an invariant Hale cannot
	// evaluate is skipped rather than blocking every write.
	skipped []string
	// evalErrors counts invariant evaluations that failed with an error;
	// tests require it to stay zero over the official examples.
	evalErrors  atomic.Int64
	lastEvalErr atomic.Value // string
)

// rulesFor returns the rules of a type, with those of its base types for
// data types (Age has qty-3 from Quantity and ele-1 from Element).
func rulesFor(typeName string) *typeRules {
	mu.Lock()
	defer mu.Unlock()
	if r, ok := cache[typeName]; ok {
		return r
	}
	r := &typeRules{}
	seen := map[string]bool{}
	for t := typeName; t != "" && !seen[t]; {
		seen[t] = true
		td := fhir.TypeDefinition(t)
		if td == nil {
			break
		}
		for _, c := range fhir.Invariants(t) {
			if c.Severity != "error" || c.Expression == "" {
				continue
			}
			e, err := fhirpath.Compile(c.Expression)
			if err != nil {
				skipped = append(skipped, c.Key)
				continue
			}
			ru := rule{c: c, expr: e}
			if c.Path == t {
				r.root = append(r.root, ru)
				continue
			}
			rel := strings.ReplaceAll(strings.TrimPrefix(c.Path, t+"."), "[x]", "")
			if ru.rel, err = fhirpath.Compile(rel); err != nil {
				skipped = append(skipped, c.Key)
				continue
			}
			r.inner = append(r.inner, ru)
		}
		// Resources do not inherit Element's constraints; data types do,
		// and a resource's own definition already lists dom-* and the like.
		if td.Kind == fhir.KindResource {
			break
		}
		t = td.Base
	}
	cache[typeName] = r
	return r
}

var descendants = fhirpath.MustParse("descendants()")

// Check evaluates every error-severity invariant that applies to res and
// returns one issue per failure, with the constraint key, its text and
// the location of the element. An invariant that fails to evaluate is not
// reported (a gap in Hale's FHIRPath must not block writes); tests keep
// that set empty for the official examples.
func Check(ctx context.Context, res map[string]any) []hale.Issue {
	env := &fhirpath.Env{Resource: res, RootResource: res}
	root := fhirpath.Collection{fhirpath.NewItem(res)}
	all, err := descendants.Evaluate(ctx, res, env)
	if err != nil {
		return nil
	}
	var issues []hale.Issue
	check := func(rules []rule, items fhirpath.Collection, env *fhirpath.Env) {
		for _, ru := range rules {
			for _, it := range items {
				ok, err := ru.expr.EvaluateBool(ctx, it, env)
				if err != nil {
					evalErrors.Add(1)
					lastEvalErr.Store(ru.c.Key + ": " + err.Error())
					continue
				}
				if ok == nil || *ok {
					continue
				}
				loc := it.Location()
				issues = append(issues, hale.Issue{
					Severity:    "error",
					Code:        "invariant",
					Diagnostics: "Constraint " + ru.c.Key + " failed: " + ru.c.Human,
					Expression:  []string{loc},
				})
			}
		}
	}
	apply := func(typeName string, items fhirpath.Collection, env *fhirpath.Env) {
		r := rulesFor(typeName)
		check(r.root, items, env)
		for _, ru := range r.inner {
			for _, it := range items {
				sub, err := ru.rel.Evaluate(ctx, it, env)
				if err != nil {
					evalErrors.Add(1)
					lastEvalErr.Store(ru.c.Key + " (path): " + err.Error())
					continue
				}
				check([]rule{ru}, sub, env)
			}
		}
	}
	rt, _ := res["resourceType"].(string)
	apply(rt, root, env)

	// Group the descendants by type so each type's rules run once over
	// all its items.
	byType := map[string]fhirpath.Collection{}
	var order []string
	for _, it := range all {
		name := strings.TrimPrefix(it.TypeName(), "FHIR.")
		if name == "" || strings.HasPrefix(name, "System.") {
			continue
		}
		if td := fhir.TypeDefinition(name); td != nil && td.Kind == fhir.KindResource {
			// A contained or Bundle-entry resource: its own invariants,
			// with %resource bound to it.
			if m, ok := it.Raw().(map[string]any); ok {
				inner := &fhirpath.Env{Resource: m, RootResource: res}
				apply(name, fhirpath.Collection{it}, inner)
			}
			continue
		}
		if _, ok := byType[name]; !ok {
			order = append(order, name)
		}
		byType[name] = append(byType[name], it)
	}
	for _, name := range order {
		apply(name, byType[name], env)
	}
	return issues
}
