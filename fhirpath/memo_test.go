package fhirpath

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hale-ehr/hale/fhir"
)

// plain compiles expr without the memoization and rewrites of memo.go.
func plain(tb testing.TB, expr string) *Expression {
	tb.Helper()
	n, err := parse(expr)
	if err != nil {
		tb.Fatalf("%s: %v", expr, err)
	}
	return &Expression{src: expr, root: n}
}

// sameResult compares two evaluation results item by item: type,
// location and rendering.
func sameResult(a, b Collection) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].TypeName() != b[i].TypeName() || a[i].Location() != b[i].Location() || a[i].String() != b[i].String() {
			return false
		}
	}
	return true
}

// memoCases exercise lambdas whose arguments do and do not depend on the
// item being iterated.
var memoCases = []string{
	"name.where(given.count() > %resource.name.count() - 1)",
	"name.select(given.skip(1))",
	"name.where($index = 1).family",
	"name.select(given.where($this = %resource.name.first().given.first()))",
	"contained.where(('#' + id in %resource.descendants().reference).not())",
	"identifier.where(iif(system.exists(), system, 'x') = 'x')",
	"(1 | 2 | 3).select($this + (1 | 2).count())",
	"(1 | 2 | 3).where($this > (%resource.name.count() + $index))",
	"name.select(%resource.name.given.count() + given.count())",
	"name.all(%resource.name.exists())",
	"name.exists(given.exists() and %resource.id.exists())",
	"descendants().where(%resource.descendants().count() > 3).count()",
	"children().where(children().count() > 1).count()",
	"name.select(given).sort($this)",
	"(3 | 1 | 2).sort(-$this).select($this * (10 | 20).count())",
	"(1 | 2 | 3).aggregate($this + $total, 0)",
	"name.select(given.trace('g').count())",
	"identifier.select(%resource.identifier[0].value)",
	"identifier.select(%resource.identifier[$index].value)",
}

// TestMemoizationKeepsResults evaluates every R4 invariant of each
// resource type and the cases above on example and Synthea resources,
// with and without memoization, and requires the same results; and it
// checks children().count() against the items children() builds on
// every node.
func TestMemoizationKeepsResults(t *testing.T) {
	dir := sharedDir(t, "testdata/fhirpath-tests/r4/input")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var resources []map[string]any
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := fhir.Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		resources = append(resources, res)
	}
	resources = append(resources, syntheaSample(t, 300)...)
	ctx := context.Background()
	all := MustParse("descendants()")
	countFast := MustParse("children().count()")
	countSlow := plain(t, "children().count()")
	n := 0
	for _, res := range resources {
		rt := res["resourceType"].(string)
		exprs := append([]string(nil), memoCases...)
		for _, c := range fhir.Invariants(rt) {
			if c.Path == rt && c.Expression != "" {
				exprs = append(exprs, c.Expression)
			}
		}
		env := &Env{Resource: res, RootResource: res}
		for _, src := range exprs {
			fast, err1 := MustParse(src).Evaluate(ctx, res, env)
			slow, err2 := plain(t, src).Evaluate(ctx, res, env)
			if (err1 == nil) != (err2 == nil) || !sameResult(fast, slow) {
				t.Errorf("%s on %s/%v: memoized %v (%v), plain %v (%v)", src, rt, res["id"], fast, err1, slow, err2)
			}
			n++
		}
		items, _ := all.Evaluate(ctx, res, env)
		for _, it := range items {
			a, _ := countFast.Evaluate(ctx, it, env)
			b, _ := countSlow.Evaluate(ctx, it, env)
			if !sameResult(a, b) {
				t.Errorf("%s: children().count() = %v, children() has %v items", it.Location(), a, b)
			}
		}
	}
	t.Logf("%d evaluations compared", n)
}

// TestMemoizationPlan checks which sub-expressions are cached: those
// inside a lambda that do not depend on the lambda's item, nothing with
// a side effect.
func TestMemoizationPlan(t *testing.T) {
	for _, tc := range []struct {
		expr  string
		slots int
	}{
		{"name.where(given.count() > %resource.name.count())", 1},
		{"name.where(given = $this.given)", 0},
		{"name.where($index > %resource.name.count())", 1},
		{"name.select(given.skip(%resource.name.count()))", 1},
		{"name.select(given.skip(count()))", 0},
		{"%resource.name.count()", 0},                         // not inside a lambda: evaluated once anyway
		{"name.where(%resource.name.trace('x').exists())", 1}, // %resource.name; trace() runs per item
		{"name.where(%resource.name.exists() and %resource.id.exists())", 1},
		{"contained.where(('#' + id in (%resource.descendants().reference | %resource.descendants().as(uri))).not())", 1},
		{"(1 | 2).aggregate($this + $total, %resource.id.count())", 0},
	} {
		if got := MustParse(tc.expr).slots; got != tc.slots {
			t.Errorf("%s: %d cached sub-expressions, want %d", tc.expr, got, tc.slots)
		}
	}
}
