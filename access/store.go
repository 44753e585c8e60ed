package access

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// This file is the scoped store itself: every Reader and Tx method of
// the contract, with the Principal's rules applied.
//
//   - Search: the rules become clauses of the Query, for the searched
//     types and for the targets of every chain and _has, so the
//     database never returns, counts or pages past a hidden row.
//   - Current: the database is asked whether the resource matches the
//     rule (a search on its _id plus the rule); a hidden one is
//     KindNotFound, as if it did not exist.
//   - Version, History, and a deleted resource: the rule is evaluated on
//     the version's own content (its index rows, computed as on write),
//     since only current versions have rows in the database.
//   - Put: the resource before the write (pre-image) must be one the
//     caller may update or delete, and the resource after it
//     (post-image) one they may create or update, so nothing can be
//     moved out of or into what the caller may touch.

// View implements hale.Store.
func (s *Store) View(ctx context.Context, fn func(hale.Reader) error) error {
	return s.base.View(ctx, func(r hale.Reader) error { return fn(&reader{s: s, r: r}) })
}

// Update implements hale.Store. A transaction whose entries break a rule
// fails as a whole: the check's error rolls it back.
//
// A committed write that can change referrals or consents (decidesBases)
// clears the policy's cache of them, so that on this node it applies to
// the next request.
func (s *Store) Update(ctx context.Context, fn func(hale.Tx) error) error {
	var bases bool
	err := s.base.Update(ctx, func(t hale.Tx) error {
		x := &tx{reader: reader{s: s, r: t}, t: t}
		err := fn(x)
		bases = x.bases
		return err
	})
	if bases {
		s.pol.basesCache.clear() // also after a failure: the commit's outcome may be unknown
	}
	return err
}

// Engine implements hale.Store.
func (s *Store) Engine() string { return s.base.Engine() }

// Close does nothing: the scoped store borrows its base.
func (s *Store) Close() error { return nil }

type reader struct {
	s *Store
	r hale.Reader
}

func notFound(typ, id string) error {
	return hale.Errorf(hale.KindNotFound, "%s/%s not found", typ, id)
}

// Current implements hale.Reader: KindNotFound for a resource the
// caller may not read, exactly as for one that never existed.
//
// Every read costs the same two queries, so that the answer's timing
// does not tell a hidden resource from a missing id (TestHiddenTiming):
// the version by primary key, then the rule evaluated on an existing row
// (a search on its id plus the rule). For a live resource that row is
// the resource itself, and the search returns it when it is visible; for
// a missing id (or a deleted resource, judged by its last live version)
// it is a decoy, another resource of the type, so that the database does
// the same work as for a hidden one: the rule's subqueries run only when
// there is a row to test.
func (rd *reader) Current(ctx context.Context, typ, id string) (*hale.Version, error) {
	r := rd.s.rule(typ, Read)
	switch {
	case r.deny:
		return nil, notFound(typ, id)
	case r.all():
		return rd.r.Current(ctx, typ, id)
	case r.proxy:
		return rd.proxyCurrent(ctx, typ, id)
	}
	cur, err := rd.r.Current(ctx, typ, id)
	missing := hale.IsKind(err, hale.KindNotFound)
	if err != nil && !missing {
		return nil, err
	}
	if !missing && !cur.Deleted {
		v, err := rd.find(ctx, typ, id, r.where)
		if err != nil || v != nil {
			return v, err
		}
		rd.s.pol.decoys.Store(typ, id) // hidden: a decoy for missing ids
		return nil, notFound(typ, id)
	}
	decoy, err := rd.decoy(ctx, typ)
	if err != nil {
		return nil, err
	}
	if _, err := rd.find(ctx, typ, decoy, r.where); err != nil {
		return nil, err
	}
	if missing {
		return nil, notFound(typ, id)
	}
	ok, err := rd.visible(ctx, cur, Read, false)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, notFound(typ, id)
	}
	return cur, nil
}

// decoy returns the id of a resource of typ that a missing id's read
// evaluates the rule on: the last one found hidden, or any one. ""
// when the type has none (then there is nothing to hide).
func (rd *reader) decoy(ctx context.Context, typ string) (string, error) {
	if id, ok := rd.s.pol.decoys.Load(typ); ok {
		return id.(string), nil
	}
	sr, ok := rd.r.(hale.Searcher)
	if !ok {
		return "", &hale.Error{Kind: hale.KindInternal, Op: "access.decoy", Message: "the store cannot search"}
	}
	res, err := sr.Search(ctx, &hale.Query{Types: []string{typ}, Count: 1})
	if err != nil || len(res.Versions) == 0 {
		return "", err
	}
	rd.s.pol.decoys.Store(typ, res.Versions[0].ID)
	return res.Versions[0].ID, nil
}

// find returns the live resource typ/id if it satisfies where, else nil.
func (rd *reader) find(ctx context.Context, typ, id string, where []hale.Clause) (*hale.Version, error) {
	sr, ok := rd.r.(hale.Searcher)
	if !ok {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: "access.find", Message: "the store cannot search"}
	}
	q := hale.Query{Types: []string{typ}, Count: 1,
		Where: slices.Concat([]hale.Clause{{Param: "_id", Type: hale.TypeID, Values: []hale.Value{{Code: id}}}}, where)}
	res, err := sr.Search(ctx, &q)
	if err != nil || len(res.Versions) == 0 {
		return nil, err
	}
	return &res.Versions[0], nil
}

// Version implements hale.Reader.
func (rd *reader) Version(ctx context.Context, typ, id string, n int64) (*hale.Version, error) {
	v, err := rd.r.Version(ctx, typ, id, n)
	if err != nil {
		return nil, err
	}
	ok, err := rd.visible(ctx, v, Read, false)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, hale.Errorf(hale.KindNotFound, "version %d of %s/%s not found", n, typ, id)
	}
	return v, nil
}

// maxHistoryScan bounds the versions one History call examines for a
// caller who sees only some of them; the page may then be short.
const maxHistoryScan = 20000

// History implements hale.Reader: only versions the caller may read.
// Instance history needs Read, type and system history Search.
func (rd *reader) History(ctx context.Context, q hale.HistoryQuery) ([]hale.Version, error) {
	l := byte(Search)
	if q.ID != "" {
		l = Read
	}
	if q.Type != "" {
		switch r := rd.s.rule(q.Type, l); {
		case r.deny || l == Search && r.proxy:
			return nil, nil
		case r.all():
			return rd.r.History(ctx, q)
		}
	} else if rd.s.unrestricted(l) {
		return rd.r.History(ctx, q)
	}
	var out []hale.Version
	hq := q
	if hq.Limit <= 0 || hq.Limit > 500 {
		hq.Limit = 500
	}
	for scanned := 0; scanned < maxHistoryScan; {
		batch, err := rd.r.History(ctx, hq)
		if err != nil {
			return nil, err
		}
		for i := range batch {
			ok, err := rd.visible(ctx, &batch[i], l, false)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, batch[i])
				if q.Limit > 0 && len(out) == q.Limit {
					return out, nil
				}
			}
		}
		scanned += len(batch)
		if len(batch) < hq.Limit {
			break
		}
		hq.BeforeSeq = batch[len(batch)-1].Seq
	}
	return out, nil
}

// Find implements hale.Reader through Search, so the rules apply.
func (rd *reader) Find(ctx context.Context, typ string, matches []hale.Match, limit int) ([]string, error) {
	q := &hale.Query{Types: []string{typ}, Count: limit}
	if limit <= 0 {
		q.Count = 1 << 30
	}
	for _, m := range matches {
		cl := hale.Clause{Param: m.Param}
		switch m.Kind {
		case hale.MatchID:
			cl.Type = hale.TypeID
		case hale.MatchToken:
			cl.Type = hale.TypeToken
		case hale.MatchString:
			cl.Type = hale.TypeString
		case hale.MatchStringExact:
			cl.Type, cl.Modifier = hale.TypeString, "exact"
		case hale.MatchStringContains:
			cl.Type, cl.Modifier = hale.TypeString, "contains"
		case hale.MatchReference:
			cl.Type = hale.TypeReference
		}
		for _, v := range m.Values {
			cl.Values = append(cl.Values, hale.Value{System: v.System, Code: v.Code, NoSystem: v.NoSystem,
				AnyCode: v.AnyCode, TargetType: v.TargetType, TargetID: v.TargetID, URL: v.URL})
		}
		q.Where = append(q.Where, cl)
	}
	res, err := rd.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(res.Versions))
	for i, v := range res.Versions {
		ids[i] = v.ID
	}
	return ids, nil
}

// Count implements hale.Reader: the resources the caller may search.
func (rd *reader) Count(ctx context.Context, typ string) (int64, error) {
	q := &hale.Query{Total: true}
	if typ != "" {
		q.Types = []string{typ}
	}
	res, err := rd.Search(ctx, q)
	if err != nil {
		return 0, err
	}
	return res.Total, nil
}

// Search implements hale.Searcher with the caller's rules added to q.
func (rd *reader) Search(ctx context.Context, q *hale.Query) (*hale.SearchResult, error) {
	sr, ok := rd.r.(hale.Searcher)
	if !ok {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: "access.Search", Message: "the store cannot search"}
	}
	nq, err := rd.s.restrict(q)
	if err != nil {
		return nil, err
	}
	if nq == nil {
		res := &hale.SearchResult{Total: -1}
		if q.Total {
			res.Total = 0
		}
		return res, nil
	}
	return sr.Search(ctx, nq)
}

// restrict returns q with the caller's rules as clauses, or nil when the
// caller may search none of its types.
func (s *Store) restrict(q *hale.Query) (*hale.Query, error) {
	if slices.ContainsFunc(q.Where, func(c hale.Clause) bool { return c.Param == "_contained" }) && !s.unrestricted(Search) {
		// The clauses of a contained search apply to contained
		// resources, not to their containers the rules are about.
		return nil, hale.Errorf(hale.KindForbidden, "searching contained resources (_contained) is not available to this caller")
	}
	types := q.Types
	if len(types) == 0 {
		types = fhir.ResourceTypes()
	}
	kept, extra := s.typesRule(types, Search)
	if len(kept) == 0 {
		return nil, nil
	}
	nq := *q
	if len(q.Types) > 0 || len(kept) < len(types) {
		nq.Types = kept
	}
	nq.Where = append(s.rewrite(q.Where), extra...)
	return &nq, nil
}

// typesRule returns the types of types the caller may use with l, and
// the clauses that hold each one to its rule: the rule itself when all
// kept types share it, else, per group of types S sharing a rule, "the
// type is not in S, or the rule's clause holds", for each clause.
func (s *Store) typesRule(types []string, l byte) (kept []string, extra []hale.Clause) {
	type group struct {
		where []hale.Clause
		types []string
	}
	var groups []*group
	byKey := map[string]*group{}
	open := false // some kept type is unrestricted
	for _, t := range types {
		r := s.rule(t, l)
		switch {
		case r.deny || r.proxy: // proxies are judged per resource, never searched
			continue
		case r.all():
			open = true
		default:
			key, _ := json.Marshal(r.where)
			g := byKey[string(key)]
			if g == nil {
				g = &group{where: r.where}
				byKey[string(key)] = g
				groups = append(groups, g)
			}
			g.types = append(g.types, t)
		}
		kept = append(kept, t)
	}
	if len(groups) == 1 && !open {
		return kept, slices.Clone(groups[0].where)
	}
	for _, g := range groups {
		other := hale.Clause{Param: "_type", Type: hale.TypeResourceType, Not: true}
		for _, t := range g.types {
			other.Values = append(other.Values, hale.Value{Code: t})
		}
		for _, c := range g.where {
			extra = append(extra, hale.Clause{Or: slices.Concat([]hale.Clause{other}, alternatives(c))})
		}
	}
	return kept, extra
}

// rewrite copies clauses, restricting the targets of chains and the
// sources of _has to what the caller may search, so a predicate over
// hidden resources matches nothing (the _has oracle of HAPI FHIR #6065).
func (s *Store) rewrite(cls []hale.Clause) []hale.Clause {
	if cls == nil {
		return nil
	}
	out := make([]hale.Clause, len(cls))
	for i, c := range cls {
		if c.Or != nil {
			c.Or = s.rewrite(c.Or)
		}
		if c.Chain != nil {
			ch := *c.Chain
			ch.Where = append(s.rewrite(ch.Where), s.targetRule(ch.Type)...)
			c.Chain = &ch
		}
		if c.Has != nil {
			h := *c.Has
			h.Where = append(s.rewrite(h.Where), s.targetRule(h.Type)...)
			c.Has = &h
		}
		out[i] = c
	}
	return out
}

// targetRule is the restriction of a chain's or _has's other side: of
// typ, or of any type when typ is "".
func (s *Store) targetRule(typ string) []hale.Clause {
	if typ != "" {
		r := s.rule(typ, Search)
		if r.deny || r.proxy {
			return []hale.Clause{nothing()}
		}
		return r.where
	}
	all := fhir.ResourceTypes()
	kept, extra := s.typesRule(all, Search)
	if len(kept) == 0 {
		return []hale.Clause{nothing()}
	}
	if len(kept) < len(all) {
		in := hale.Clause{Param: "_type", Type: hale.TypeResourceType}
		for _, t := range kept {
			in.Values = append(in.Values, hale.Value{Code: t})
		}
		extra = append(extra, in)
	}
	return extra
}

// unrestricted reports whether the caller may use l on every resource
// of every type.
func (s *Store) unrestricted(l byte) bool {
	for _, t := range fhir.ResourceTypes() {
		if !s.rule(t, l).all() {
			return false
		}
	}
	return true
}

// visible reports whether the caller may use l on version v. current
// says v is the resource's current version, so the database can answer
// for a live one.
func (rd *reader) visible(ctx context.Context, v *hale.Version, l byte, current bool) (bool, error) {
	r := rd.s.rule(v.Type, l)
	switch {
	case r.deny:
		return false, nil
	case r.all():
		return true, nil
	case current && !v.Deleted && !r.proxy:
		return rd.matches(ctx, v.Type, v.ID, r.where)
	}
	// A deleted resource is judged by its last live version.
	live, err := rd.lastLive(ctx, v)
	if err != nil || live == nil {
		return false, err
	}
	res, err := fhir.Decode(live.Data)
	if err != nil {
		return false, &hale.Error{Kind: hale.KindInternal, Op: "access.visible", Err: err}
	}
	if r.proxy {
		return rd.proxyVisible(ctx, v.Type, v.ID, res)
	}
	return rd.holdsAll(ctx, v.Type, v.ID, rd.s.pol.Params.Extract(v.Type, res), r.where)
}

// lastLive returns v, or for a deletion the version before it that was
// live; nil when there is none.
func (rd *reader) lastLive(ctx context.Context, v *hale.Version) (*hale.Version, error) {
	live := v
	for live.Deleted {
		if live.VersionID <= 1 {
			return nil, nil
		}
		prev, err := rd.r.Version(ctx, v.Type, v.ID, live.VersionID-1)
		if hale.IsKind(err, hale.KindNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		live = prev
	}
	return live, nil
}

// matches asks the database whether typ/id is a live resource that
// satisfies where.
func (rd *reader) matches(ctx context.Context, typ, id string, where []hale.Clause) (bool, error) {
	sr, ok := rd.r.(hale.Searcher)
	if !ok {
		return false, &hale.Error{Kind: hale.KindInternal, Op: "access.matches", Message: "the store cannot search"}
	}
	q := hale.Query{Types: []string{typ}, Count: 1,
		Where: slices.Concat([]hale.Clause{{Param: "_id", Type: hale.TypeID, Values: []hale.Value{{Code: id}}}}, where)}
	res, err := sr.Search(ctx, &q)
	if err != nil {
		return false, err
	}
	return len(res.Versions) > 0, nil
}

// holdsAll evaluates the clauses of a rule on a resource's index rows.
// It understands the shapes rules are made of (references, chains to a
// patient, _has, _id, _type, tokens, strings, URIs, :missing); a clause of
// another shape does not hold, which hides rather than shows.
func (rd *reader) holdsAll(ctx context.Context, typ, id string, idx *hale.Index, where []hale.Clause) (bool, error) {
	for _, c := range where {
		ok, err := rd.holds(ctx, typ, id, idx, c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func (rd *reader) holds(ctx context.Context, typ, id string, idx *hale.Index, c hale.Clause) (bool, error) {
	switch {
	case c.Or != nil:
		for _, alt := range c.Or {
			ok, err := rd.holds(ctx, typ, id, idx, alt)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case c.Has != nil:
		// Resources of Has.Type that refer to this one and satisfy
		// Has.Where, as the database has them now.
		sr, ok := rd.r.(hale.Searcher)
		if !ok {
			return false, nil
		}
		q := hale.Query{Types: []string{c.Has.Type}, Count: 1,
			Where: slices.Concat([]hale.Clause{ref(c.Has.Param, typ, id)}, c.Has.Where)}
		res, err := sr.Search(ctx, &q)
		if err != nil {
			return false, err
		}
		return (len(res.Versions) > 0) != c.Not, nil
	case c.Chain != nil:
		for _, r := range idx.References {
			if r.Param != c.Param || r.TargetID == "" || c.Chain.Type != "" && r.TargetType != c.Chain.Type {
				continue
			}
			ok, err := rd.matches(ctx, r.TargetType, r.TargetID, c.Chain.Where)
			if err != nil {
				return false, err
			}
			if ok {
				return !c.Not, nil
			}
		}
		return c.Not, nil
	case c.Type == hale.TypeID:
		return slices.ContainsFunc(c.Values, func(v hale.Value) bool { return v.Code == id }) != c.Not, nil
	case c.Type == hale.TypeResourceType:
		return slices.ContainsFunc(c.Values, func(v hale.Value) bool { return v.Code == typ }) != c.Not, nil
	case c.Missing != nil:
		return !present(idx, c) == *c.Missing, nil
	case len(c.Composite) > 0 || c.Modifier != "" && c.Type != hale.TypeString:
		return false, nil
	}
	found := false
	switch c.Type {
	case hale.TypeReference:
		for _, r := range idx.References {
			found = found || r.Param == c.Param && slices.ContainsFunc(c.Values, func(v hale.Value) bool {
				if v.URL != "" {
					return r.URL == v.URL
				}
				return r.TargetID == v.TargetID && (v.TargetType == "" || r.TargetType == v.TargetType)
			})
		}
	case hale.TypeToken:
		for _, t := range idx.Tokens {
			found = found || t.Param == c.Param && slices.ContainsFunc(c.Values, func(v hale.Value) bool {
				switch {
				case v.AnyCode:
					return t.System == v.System
				case v.NoSystem:
					return t.System == "" && t.Code == v.Code
				case v.System != "":
					return t.System == v.System && t.Code == v.Code
				}
				return t.Code == v.Code
			})
		}
	case hale.TypeString:
		for _, sv := range idx.Strings {
			found = found || sv.Param == c.Param && slices.ContainsFunc(c.Values, func(v hale.Value) bool {
				switch c.Modifier {
				case "exact":
					return sv.Exact == v.Code
				case "contains":
					return strings.Contains(sv.Norm, search.Fold(v.Code))
				case "":
					return strings.HasPrefix(sv.Norm, search.Fold(v.Code))
				}
				return false
			})
		}
	case hale.TypeURI:
		for _, u := range idx.URIs {
			found = found || u.Param == c.Param && slices.ContainsFunc(c.Values, func(v hale.Value) bool { return u.URI == v.Code })
		}
	default:
		return false, nil
	}
	return found != c.Not, nil
}

// present reports whether idx has a row for c's parameter.
func present(idx *hale.Index, c hale.Clause) bool {
	switch c.Type {
	case hale.TypeReference:
		return slices.ContainsFunc(idx.References, func(r hale.ReferenceValue) bool { return r.Param == c.Param })
	case hale.TypeToken:
		return slices.ContainsFunc(idx.Tokens, func(r hale.TokenValue) bool { return r.Param == c.Param })
	case hale.TypeString:
		return slices.ContainsFunc(idx.Strings, func(r hale.StringValue) bool { return r.Param == c.Param })
	case hale.TypeDate:
		return slices.ContainsFunc(idx.Dates, func(r hale.DateValue) bool { return r.Param == c.Param })
	case hale.TypeURI:
		return slices.ContainsFunc(idx.URIs, func(r hale.URIValue) bool { return r.Param == c.Param })
	}
	return false
}

// tx is a scoped write transaction.
type tx struct {
	reader
	t hale.Tx
	// bases: the transaction wrote a type that decides referrals or
	// consents.
	bases bool
}

// Unwrap returns the unscoped transaction, for what the system itself
// writes in the caller's transaction, such as its AuditEvent
// (hale.Unscoped).
func (x *tx) Unwrap() hale.Tx { return x.t }

// Lock implements hale.Tx.
func (x *tx) Lock(ctx context.Context, key string) error { return x.t.Lock(ctx, key) }

// Put implements hale.Tx after checking the write against the rules.
func (x *tx) Put(ctx context.Context, v *hale.Version, idx *hale.Index) error {
	if err := x.check(ctx, v, idx); err != nil {
		return err
	}
	x.bases = x.bases || decidesBases(v.Type)
	return x.t.Put(ctx, v, idx)
}

var verbs = map[byte]string{Create: "create", Read: "read", Update: "update", Delete: "delete", Search: "search"}

func (x *tx) check(ctx context.Context, v *hale.Version, idx *hale.Index) error {
	cur, err := x.t.Current(ctx, v.Type, v.ID)
	if hale.IsKind(err, hale.KindNotFound) {
		cur, err = nil, nil
	}
	if err != nil {
		return err
	}
	live := cur != nil && !cur.Deleted
	s := x.s
	switch {
	case v.Deleted:
		if !live {
			return nil
		}
		return x.pre(ctx, cur, Delete)
	case v.Method == "PUT" && (!live || v.VersionID != cur.VersionID+1):
		// Update as create: the client chose the id. For a caller who
		// sees only part of a type, the answer would tell whether a
		// hidden resource has that id, so it is refused whatever the
		// id; such callers create with POST.
		if !s.rule(v.Type, Create).all() || !s.rule(v.Type, Read).all() {
			return &hale.Error{Kind: hale.KindForbidden, Op: "access", Message: "creating a " + v.Type +
				" with a client-chosen id (update as create) is not allowed for this caller; create it with POST"}
		}
		return x.post(ctx, v, idx, Create)
	case live:
		if v.VersionID != cur.VersionID+1 {
			return notFound(v.Type, v.ID) // not the version the caller could have read
		}
		if err := x.pre(ctx, cur, Update); err != nil {
			return err
		}
		return x.post(ctx, v, idx, Update)
	}
	return x.post(ctx, v, idx, Create)
}

// pre checks the current version cur before an update or delete: a
// resource the caller cannot read is not found; one they can read but
// not change is forbidden.
func (x *tx) pre(ctx context.Context, cur *hale.Version, l byte) error {
	ok, err := x.visible(ctx, cur, l, true)
	if err != nil || ok {
		return err
	}
	if ok, err := x.visible(ctx, cur, Read, true); err != nil || !ok {
		if err != nil {
			return err
		}
		return notFound(cur.Type, cur.ID)
	}
	return &hale.Error{Kind: hale.KindForbidden, Op: "access",
		Message: "you may not " + verbs[l] + " " + cur.Type + "/" + cur.ID}
}

// post checks the resource a write would store: it must be one the
// caller may create (or update), judged on its index rows before they
// are written, so a write cannot grant its own access (a CareTeam
// naming oneself for a hidden patient).
func (x *tx) post(ctx context.Context, v *hale.Version, idx *hale.Index, l byte) error {
	r := x.s.rule(v.Type, l)
	if r.deny {
		return &hale.Error{Kind: hale.KindForbidden, Op: "access", Message: "you may not " + verbs[l] + " " + v.Type + " resources"}
	}
	if r.all() {
		return nil
	}
	if idx == nil {
		idx = &hale.Index{}
	}
	var ok bool
	var err error
	if r.proxy {
		var res map[string]any
		if res, err = fhir.Decode(v.Data); err != nil {
			return &hale.Error{Kind: hale.KindInternal, Op: "access.post", Err: err}
		}
		ok, err = x.proxyVisible(ctx, v.Type, v.ID, res)
	} else {
		ok, err = x.holdsAll(ctx, v.Type, v.ID, idx, r.where)
	}
	if err != nil || ok {
		return err
	}
	return &hale.Error{Kind: hale.KindForbidden, Op: "access",
		Message: "you may not " + verbs[l] + " this " + v.Type + ": it would be outside the records you may " + verbs[l]}
}
