package search_test

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/search"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
)

// The correctness oracle (issue 4): a large generated set of searches over
// Synthea data is run through the store's index and, independently, by
// brute force — every stored resource's values come from FHIRPath
// (search.Extract) and each clause is matched in plain Go below — and the
// two result sets must be identical.

// doc is one stored resource as the brute force sees it.
type doc struct {
	typ, id string
	lu      int64 // lastUpdated, unix µs
	idx     *hale.Index
}

type world struct {
	docs  []*doc
	byKey map[string]*doc
}

var oracleNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func loadWorld(t *testing.T, store hale.Store, files []string) *world {
	svc := rest.NewService(store)
	ctx := context.Background()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Do(ctx, &rest.Request{Method: "POST", Body: data, Return: rest.ReturnMinimal}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	w := &world{byKey: map[string]*doc{}}
	err := store.View(ctx, func(r hale.Reader) error {
		sr := r.(hale.Searcher)
		for _, typ := range fhir.ResourceTypes() {
			res, err := sr.Search(ctx, &hale.Query{Types: []string{typ}, Count: 1 << 20})
			if err != nil {
				return err
			}
			for _, v := range res.Versions {
				m, err := fhir.Decode(v.Data)
				if err != nil {
					return err
				}
				d := &doc{typ: v.Type, id: v.ID, lu: v.LastUpdated.UnixMicro(), idx: search.Extract(v.Type, m)}
				w.docs = append(w.docs, d)
				w.byKey[d.typ+"/"+d.id] = d
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// --- brute-force matching ---

func (w *world) matches(d *doc, where []hale.Clause) bool {
	for _, c := range where {
		if !w.clause(d, c) {
			return false
		}
	}
	return true
}

func (w *world) clause(d *doc, c hale.Clause) bool {
	switch {
	case c.Or != nil:
		return slices.ContainsFunc(c.Or, func(o hale.Clause) bool { return w.clause(d, o) })
	case c.Has != nil:
		for _, s := range w.docs {
			if s.typ != c.Has.Type || !w.matches(s, c.Has.Where) {
				continue
			}
			for _, r := range s.idx.References {
				if r.Param == c.Has.Param && r.Group == 0 && r.TargetType == d.typ && r.TargetID == d.id {
					return true
				}
			}
		}
		return false
	case c.Chain != nil:
		for _, r := range d.idx.References {
			if r.Param != c.Param || r.Group != 0 || r.TargetID == "" || c.Chain.Type != "" && r.TargetType != c.Chain.Type {
				continue
			}
			if t := w.byKey[r.TargetType+"/"+r.TargetID]; t != nil && w.matches(t, c.Chain.Where) {
				return true
			}
		}
		return false
	case c.Composite != nil:
		for _, alt := range c.Composite {
			groups := map[int]bool{}
			for _, g := range allGroups(d.idx) {
				groups[g] = true
			}
			for g := range groups {
				if g > 0 && slices.IndexFunc(alt, func(cc hale.Clause) bool { return !anyRow(d, cc, g) }) < 0 {
					return true
				}
			}
		}
		return false
	case c.Type == hale.TypeID:
		return slices.ContainsFunc(c.Values, func(v hale.Value) bool { return v.Code == d.id })
	case c.Type == hale.TypeLastUpdated:
		return slices.ContainsFunc(c.Values, func(v hale.Value) bool { return dateMatch(v, d.lu, d.lu+1) })
	case c.Missing != nil:
		return !hasRows(d, c) == *c.Missing
	}
	m := anyRow(d, c, 0)
	if c.Not {
		return !m
	}
	return m
}

func allGroups(idx *hale.Index) []int {
	var out []int
	for _, r := range idx.Tokens {
		out = append(out, r.Group)
	}
	for _, r := range idx.Quantities {
		out = append(out, r.Group)
	}
	for _, r := range idx.Dates {
		out = append(out, r.Group)
	}
	for _, r := range idx.Strings {
		out = append(out, r.Group)
	}
	for _, r := range idx.References {
		out = append(out, r.Group)
	}
	for _, r := range idx.Numbers {
		out = append(out, r.Group)
	}
	for _, r := range idx.URIs {
		out = append(out, r.Group)
	}
	return out
}

func hasRows(d *doc, c hale.Clause) bool {
	return anyRowFunc(d, c, -1, func(hale.Value, any) bool { return true }, []hale.Value{{}})
}

func anyRow(d *doc, c hale.Clause, group int) bool {
	return anyRowFunc(d, c, group, func(v hale.Value, row any) bool { return rowMatch(c, v, row) }, c.Values)
}

// anyRowFunc reports whether a row of d for c's parameter (in group, or
// any group when group < 0) satisfies f for one of values.
func anyRowFunc(d *doc, c hale.Clause, group int, f func(hale.Value, any) bool, values []hale.Value) bool {
	try := func(param string, g int, row any) bool {
		if param != c.Param || group >= 0 && g != group {
			return false
		}
		return slices.ContainsFunc(values, func(v hale.Value) bool { return f(v, row) })
	}
	switch c.Type {
	case hale.TypeToken:
		return slices.ContainsFunc(d.idx.Tokens, func(r hale.TokenValue) bool { return try(r.Param, r.Group, r) })
	case hale.TypeString:
		return slices.ContainsFunc(d.idx.Strings, func(r hale.StringValue) bool { return try(r.Param, r.Group, r) })
	case hale.TypeReference:
		return slices.ContainsFunc(d.idx.References, func(r hale.ReferenceValue) bool { return try(r.Param, r.Group, r) })
	case hale.TypeDate:
		return slices.ContainsFunc(d.idx.Dates, func(r hale.DateValue) bool { return try(r.Param, r.Group, r) })
	case hale.TypeNumber:
		return slices.ContainsFunc(d.idx.Numbers, func(r hale.NumberValue) bool { return try(r.Param, r.Group, r) })
	case hale.TypeQuantity:
		return slices.ContainsFunc(d.idx.Quantities, func(r hale.QuantityValue) bool { return try(r.Param, r.Group, r) })
	case hale.TypeURI:
		return slices.ContainsFunc(d.idx.URIs, func(r hale.URIValue) bool { return try(r.Param, r.Group, r) })
	}
	return false
}

func rowMatch(c hale.Clause, v hale.Value, row any) bool {
	switch r := row.(type) {
	case hale.TokenValue:
		switch {
		case v.AnyCode:
			return r.System == v.System
		case v.NoSystem:
			return r.System == "" && r.Code == v.Code
		case v.System != "":
			return r.System == v.System && r.Code == v.Code
		}
		return r.Code == v.Code
	case hale.StringValue:
		switch c.Modifier {
		case "exact":
			return r.Exact == v.Code
		case "contains":
			return strings.Contains(r.Norm, v.Code)
		}
		return strings.HasPrefix(r.Norm, v.Code)
	case hale.URIValue:
		switch c.Modifier {
		case "below":
			return strings.HasPrefix(r.URI, v.Code)
		case "above":
			return strings.HasPrefix(v.Code, r.URI)
		}
		return r.URI == v.Code
	case hale.ReferenceValue:
		switch {
		case v.URL != "":
			return r.URL == v.URL
		case v.TargetType == "":
			return r.TargetID == v.TargetID
		}
		return r.TargetType == v.TargetType && r.TargetID == v.TargetID
	case hale.DateValue:
		return dateMatch(v, r.Lo, r.Hi)
	case hale.NumberValue:
		return numberMatch(v.Prefix, r.Value, v.Number, v.NumberLo, v.NumberHi)
	case hale.QuantityValue:
		if v.CanonCode != "" {
			if r.CanonCode != v.CanonCode {
				return false
			}
			// The row's canonical value is the middle of its canonical range.
			cv := (r.CanonLo + r.CanonHi) / 2
			cn := (v.CanonNumberLo + v.CanonNumberHi) / 2
			return numberMatch(v.Prefix, cv, cn, v.CanonNumberLo, v.CanonNumberHi)
		}
		switch {
		case v.System != "" && v.Code != "":
			if r.System != v.System || r.Code != v.Code {
				return false
			}
		case v.Code != "":
			if r.Code != v.Code && r.Unit != v.Code {
				return false
			}
		}
		return numberMatch(v.Prefix, r.Value, v.Number, v.NumberLo, v.NumberHi)
	}
	return false
}

func dateMatch(v hale.Value, tlo, thi int64) bool {
	lo, hi := v.Lo, v.Hi
	eq := lo <= tlo && thi <= hi
	switch v.Prefix {
	case "", "eq":
		return eq
	case "ne":
		return !eq
	case "gt":
		return thi > hi
	case "lt":
		return tlo < lo
	case "ge":
		return thi > hi || eq
	case "le":
		return tlo < lo || eq
	case "sa":
		return tlo >= hi
	case "eb":
		return thi <= lo
	case "ap":
		return tlo < hi && thi > lo
	}
	return false
}

func numberMatch(prefix string, x, n, lo, hi float64) bool {
	switch prefix {
	case "", "eq":
		return lo <= x && x < hi
	case "ne":
		return !(lo <= x && x < hi)
	case "gt", "sa":
		return x > n
	case "lt", "eb":
		return x < n
	case "ge":
		return x >= n
	case "le":
		return x <= n
	case "ap":
		return lo <= x && x <= hi
	}
	return false
}

// --- query generation ---

func fmtDate(us int64, precision int) string {
	t := time.UnixMicro(us).UTC()
	switch precision {
	case 0:
		return t.Format("2006")
	case 1:
		return t.Format("2006-01")
	case 2:
		return t.Format("2006-01-02")
	}
	return t.Format("2006-01-02T15:04:05Z")
}

func fmtNum(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%g", f)
}

// generate builds the searches: for every type and parameter with data,
// values taken from the data with each modifier and prefix.
func (w *world) generate() []string {
	type key struct{ typ, param string }
	seen := map[string]bool{}
	var out []string
	add := func(typ string, q url.Values) {
		s := typ + "?" + q.Encode()
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	one := func(typ, name, value string) { add(typ, url.Values{name: {value}}) }
	count := map[key]int{}
	const perParam = 3
	take := func(typ, param string) bool {
		k := key{typ, param}
		count[k]++
		return count[k] <= perParam
	}
	prefixes := []string{"", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}
	for _, d := range w.docs {
		for _, r := range d.idx.Tokens {
			if strings.Contains(r.Param, "#") || strings.Contains(r.Param, ":") || !take(d.typ, "t:"+r.Param) {
				continue
			}
			one(d.typ, r.Param, r.Code)
			if r.System != "" {
				one(d.typ, r.Param, r.System+"|"+r.Code)
				one(d.typ, r.Param, r.System+"|")
				one(d.typ, r.Param+":not", r.System+"|"+r.Code)
			} else {
				one(d.typ, r.Param, "|"+r.Code)
			}
			one(d.typ, r.Param+":missing", "true")
			one(d.typ, r.Param+":missing", "false")
		}
		for _, r := range d.idx.Strings {
			if strings.Contains(r.Param, "#") || !take(d.typ, "s:"+r.Param) {
				continue
			}
			name := r.Param
			if name == "_text" || name == "_content" {
				if words := strings.Fields(r.Norm); len(words) > 1 {
					one(d.typ, name, words[len(words)/2])
				}
				continue
			}
			if base, ok := strings.CutSuffix(name, ":text"); ok {
				one(d.typ, base+":text", r.Exact[:min(4, len(r.Exact))])
				continue
			}
			one(d.typ, name, r.Exact[:min(3, len(r.Exact))])
			one(d.typ, name+":exact", r.Exact)
			if len(r.Norm) > 4 {
				one(d.typ, name+":contains", r.Norm[1:4])
			}
			one(d.typ, name+":missing", "true")
		}
		for _, r := range d.idx.References {
			if strings.Contains(r.Param, "#") || r.TargetID == "" || !take(d.typ, "r:"+r.Param) {
				continue
			}
			one(d.typ, r.Param, r.TargetType+"/"+r.TargetID)
			one(d.typ, r.Param+":"+r.TargetType, r.TargetID)
			one(d.typ, r.Param+":missing", "false")
			// Chains and reverse chains through the target's strings.
			if t := w.byKey[r.TargetType+"/"+r.TargetID]; t != nil {
				for _, s := range t.idx.Strings {
					if !strings.Contains(s.Param, ":") && !strings.Contains(s.Param, "#") {
						one(d.typ, r.Param+":"+r.TargetType+"."+s.Param, s.Exact[:min(3, len(s.Exact))])
						break
					}
				}
				for _, tk := range d.idx.Tokens {
					if tk.System != "" && !strings.Contains(tk.Param, "#") && !strings.Contains(tk.Param, ":") {
						one(t.typ, "_has:"+d.typ+":"+r.Param+":"+tk.Param, tk.System+"|"+tk.Code)
						break
					}
				}
				// Three levels: Observation?subject:Patient.organization.name=…
				for _, r2 := range t.idx.References {
					if u := w.byKey[r2.TargetType+"/"+r2.TargetID]; u != nil && r2.Group == 0 {
						for _, s := range u.idx.Strings {
							if !strings.Contains(s.Param, ":") && !strings.Contains(s.Param, "#") {
								one(d.typ, r.Param+":"+r.TargetType+"."+r2.Param+":"+r2.TargetType+"."+s.Param, s.Exact[:min(3, len(s.Exact))])
								break
							}
						}
						break
					}
				}
			}
		}
		for _, r := range d.idx.Dates {
			if strings.Contains(r.Param, "#") || !take(d.typ, "d:"+r.Param) || r.Lo <= hale.MinTime {
				continue
			}
			for p := 0; p < 4; p++ {
				for _, pre := range prefixes {
					one(d.typ, r.Param, pre+fmtDate(r.Lo, p))
				}
			}
			one(d.typ, r.Param+":missing", "true")
		}
		for _, r := range d.idx.Quantities {
			if strings.Contains(r.Param, "#") || !take(d.typ, "q:"+r.Param) {
				continue
			}
			for _, pre := range prefixes {
				one(d.typ, r.Param, pre+fmtNum(r.Value))
				if r.Code != "" {
					one(d.typ, r.Param, pre+fmtNum(r.Value)+"|"+r.System+"|"+r.Code)
					one(d.typ, r.Param, pre+fmtNum(r.Value)+"||"+r.Code)
				}
			}
		}
		for _, r := range d.idx.Numbers {
			if strings.Contains(r.Param, "#") || !take(d.typ, "n:"+r.Param) {
				continue
			}
			for _, pre := range prefixes {
				one(d.typ, r.Param, pre+fmtNum(r.Value))
			}
		}
		for _, r := range d.idx.URIs {
			if strings.Contains(r.Param, "#") || !take(d.typ, "u:"+r.Param) {
				continue
			}
			one(d.typ, r.Param, r.URI)
			if i := strings.LastIndex(r.URI, "/"); i > 8 {
				one(d.typ, r.Param+":below", r.URI[:i])
			}
			one(d.typ, r.Param+":above", r.URI+"/x")
		}
		// Composites: the first component's token with the second's value.
		groups := map[string]map[int][]string{}
		for _, r := range d.idx.Tokens {
			if p, i, ok := strings.Cut(r.Param, "#"); ok && i == "0" && r.System != "" {
				if groups[p] == nil {
					groups[p] = map[int][]string{}
				}
				groups[p][r.Group] = append(groups[p][r.Group], r.System+"|"+r.Code)
			}
		}
		for _, r := range d.idx.Quantities {
			if p, i, ok := strings.Cut(r.Param, "#"); ok && i == "1" && take(d.typ, "c:"+p) {
				for _, code := range groups[p][r.Group] {
					for _, pre := range []string{"", "gt", "lt"} {
						one(d.typ, p, code+"$"+pre+fmtNum(r.Value))
					}
				}
			}
		}
		for _, r := range d.idx.Tokens {
			if p, i, ok := strings.Cut(r.Param, "#"); ok && i == "1" && take(d.typ, "c:"+p) {
				for _, code := range groups[p][r.Group] {
					one(d.typ, p, code+"$"+r.System+"|"+r.Code)
				}
			}
		}
	}
	for _, typ := range []string{"Patient", "Observation", "Encounter", "Condition"} {
		one(typ, "_lastUpdated", "ge2020")
		one(typ, "_lastUpdated", "lt"+oracleNow.Format("2006"))
	}
	sort.Strings(out)
	return out
}

// TestOracle compares every generated search on both engines.
func TestOracle(t *testing.T) {
	root := os.Getenv("HALE_SHARED")
	if root == "" {
		root = filepath.Join("..", "..", "shared")
	}
	files, _ := filepath.Glob(filepath.Join(root, "testdata", "synthea", "set-a", "*.json"))
	if len(files) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("Synthea fixtures missing (CI=true)")
		}
		t.Skip("Synthea fixtures missing")
	}
	files = files[:8]
	for _, engine := range []struct {
		name string
		open func(testing.TB) hale.Store
	}{
		{"sqlite", func(tb testing.TB) hale.Store { return sqlitetest.Open(tb) }},
		{"postgres", func(tb testing.TB) hale.Store { return pgtest.Open(tb) }},
	} {
		t.Run(engine.name, func(t *testing.T) {
			store := engine.open(t)
			w := loadWorld(t, store, files)
			queries := w.generate()
			ctx := context.Background()
			opt := search.Options{DefaultCount: 1 << 20, MaxCount: 1 << 20, Now: func() time.Time { return oracleNow }}
			compared, nonEmpty, failed := 0, 0, 0
			err := store.View(ctx, func(r hale.Reader) error {
				for _, qs := range queries {
					typ, raw, _ := strings.Cut(qs, "?")
					vals, _ := url.ParseQuery(raw)
					req, err := search.ParseRequest([]string{typ}, vals, opt)
					if err != nil {
						t.Errorf("%s: %v", qs, err)
						continue
					}
					if len(req.Ignored) > 0 {
						t.Errorf("%s: ignored %v", qs, req.Ignored)
						continue
					}
					res, err := r.(hale.Searcher).Search(ctx, &req.Query)
					if err != nil {
						t.Errorf("%s: %v", qs, err)
						continue
					}
					var got, want []string
					for _, v := range res.Versions {
						got = append(got, v.ID)
					}
					for _, d := range w.docs {
						if d.typ == typ && w.matches(d, req.Query.Where) {
							want = append(want, d.id)
						}
					}
					sort.Strings(got)
					sort.Strings(want)
					compared++
					if len(want) > 0 {
						nonEmpty++
					}
					if !slices.Equal(got, want) || res.Total != int64(len(want)) {
						failed++
						if failed <= 25 {
							t.Errorf("%s: index %d (total %d), brute force %d", qs, len(got), res.Total, len(want))
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// Compartment searches (an OR of the compartment's parameters),
			// as rest builds them for Patient/[id]/[type].
			err = store.View(ctx, func(r hale.Reader) error {
				for _, p := range w.docs {
					if p.typ != "Patient" {
						continue
					}
					for _, typ := range []string{"Observation", "Encounter", "Condition", "Claim", "ExplanationOfBenefit", "Procedure"} {
						var or []hale.Clause
						for _, param := range fhir.CompartmentParams("Patient", typ) {
							or = append(or, hale.Clause{Param: param, Type: hale.TypeReference, Values: []hale.Value{{TargetType: "Patient", TargetID: p.id}}})
						}
						q := &hale.Query{Types: []string{typ}, Where: []hale.Clause{{Or: or}}, Count: 1 << 20, Total: true}
						res, err := r.(hale.Searcher).Search(ctx, q)
						if err != nil {
							return err
						}
						var got, want []string
						for _, v := range res.Versions {
							got = append(got, v.ID)
						}
						for _, d := range w.docs {
							if d.typ == typ && w.matches(d, q.Where) {
								want = append(want, d.id)
							}
						}
						sort.Strings(got)
						sort.Strings(want)
						compared++
						if len(want) > 0 {
							nonEmpty++
						}
						if !slices.Equal(got, want) {
							failed++
							t.Errorf("Patient/%s/%s: index %d, brute force %d", p.id, typ, len(got), len(want))
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d resources; %d searches compared (%d with matches), %d differ", engine.name, len(w.docs), compared, nonEmpty, failed)
			if compared < 1000 {
				t.Errorf("only %d searches generated", compared)
			}
		})
	}
}
