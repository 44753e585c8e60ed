package access_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/access"
	"github.com/hale-ehr/hale/demo"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/internal/sharedtest"
	"github.com/hale-ehr/hale/postgres/pgtest"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite/sqlitetest"
)

// engines runs fn once per storage engine, each with a fresh world: the
// rules become SQL, so every figure is checked on SQLite and PostgreSQL.
func engines(t *testing.T, fn func(t *testing.T, w *world)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, newWorld(t, sqlitetest.Open(t)))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, newWorld(t, pgtest.Open(t)))
	})
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// world is a Hale with access control, two organizations and two demo
// patients: A (organization orgA) and B (orgB), each with a resource of
// every Patient-compartment type the official examples provide.
type world struct {
	t      testing.TB
	store  hale.Store
	base   *rest.Service // no access control: loads fixtures, looks behind the curtain
	svc    *rest.Service // access-controlled, behind srv
	pol    *access.Policy
	grants *access.MemoryGrants
	clock  *clock
	srv    *httptest.Server
	who    map[string]*hale.Principal

	// btg records, per principal, the break-the-glass grants the context
	// of its last request carried (what the audit hook sees).
	btgMu sync.Mutex
	btg   map[string][]hale.BreakGlass
	bases map[string][]hale.Basis // the referrals and consents, likewise

	orgA, orgB, drA, drB string
	A, B                 string
	// res lists the resources of each patient's compartment by type
	// ("Observation" → ids), the patient included.
	res map[string]map[string][]string
	// inB holds "Type/id" of everything in B's compartment.
	inB map[string]bool
	// examples are the example resources used, by type, retargeted at A.
	examples map[string]map[string]any
}

func newWorld(t testing.TB, store hale.Store) *world {
	w := &world{t: t, store: store, who: map[string]*hale.Principal{}, btg: map[string][]hale.BreakGlass{}, bases: map[string][]hale.Basis{},
		clock: &clock{now: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}, grants: &access.MemoryGrants{}}
	w.base = rest.NewService(store)
	w.svc = rest.NewService(store)
	w.svc.Params = w.base.Params
	w.pol = &access.Policy{Params: w.base.Params, Grants: w.grants, Now: w.clock.Now}
	w.svc.Access = func(ctx context.Context, s hale.Store) (context.Context, hale.Store, error) {
		ctx, st, err := w.pol.Access(ctx, s)
		if p := hale.PrincipalFrom(ctx); err == nil && p != nil {
			// What an audit hook would see of this request.
			w.btgMu.Lock()
			w.btg[p.Subject] = hale.BreakGlassFrom(ctx)
			w.bases[p.Subject] = hale.BasesFrom(ctx)
			w.btgMu.Unlock()
		}
		return ctx, st, err
	}
	h := w.svc.Handler("/fhir")
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if p := w.who[r.Header.Get("X-Who")]; p != nil {
			r = r.WithContext(hale.WithPrincipal(r.Context(), p))
		}
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(w.srv.Close)
	w.load()
	return w
}

// baseDo runs a request without access control.
func (w *world) baseDo(method, path string, body any) *rest.Response {
	w.t.Helper()
	req := &rest.Request{Method: method, Base: "http://test/fhir"}
	p, q, _ := strings.Cut(path, "?")
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if segs[0] != "" {
		req.Type = segs[0]
	}
	if len(segs) > 1 {
		req.ID = segs[1]
	}
	if len(segs) > 2 {
		req.Type, req.ID = segs[2], ""
		req.Compartment = &rest.Compartment{Type: segs[0], ID: segs[1]}
		if segs[2] == "*" {
			req.Type = ""
		}
	}
	req.RawQuery = q
	req.Query, _ = url.ParseQuery(q)
	switch b := body.(type) {
	case nil:
	case []byte:
		req.Body = b
	default:
		req.Body, _ = json.Marshal(b)
	}
	resp, err := w.base.Do(context.Background(), req)
	if err != nil {
		w.t.Fatalf("%s %s (no access control): %v", method, path, err)
	}
	return resp
}

func (w *world) load() {
	t := w.t
	bundles, err := demo.Bundles()
	if err != nil {
		t.Fatal(err)
	}
	w.orgA = w.create("Organization", map[string]any{"resourceType": "Organization", "name": "Clinic A"})
	w.orgB = w.create("Organization", map[string]any{"resourceType": "Organization", "name": "Clinic B"})
	w.drA = w.create("Practitioner", map[string]any{"resourceType": "Practitioner", "name": []any{map[string]any{"family": "Aston"}}})
	w.drB = w.create("Practitioner", map[string]any{"resourceType": "Practitioner", "name": []any{map[string]any{"family": "Bell"}}})
	ids := make([]string, 2)
	for i := range ids {
		resp := w.baseDo("POST", "", bundles[i].Data)
		out := mustJSON(t, resp)
		loc, _ := get(out, "entry", 0, "response", "location").(string)
		ids[i] = strings.Split(loc, "/")[1]
	}
	w.A, w.B = ids[0], ids[1]
	for id, org := range map[string]string{w.A: w.orgA, w.B: w.orgB} {
		p := mustJSON(t, w.baseDo("GET", "Patient/"+id, nil))
		p["managingOrganization"] = map[string]any{"reference": "Organization/" + org}
		w.baseDo("PUT", "Patient/"+id, p)
	}
	w.loadExamples()
	// A resource of A that points at B's data: includes, $everything and
	// reference following must not cross it. It points at ids that do
	// not exist as well, so that B's hidden resources and missing ones
	// can be compared (B12).
	bObs := w.compartment(w.B)["Observation"][0]
	w.create("Observation", map[string]any{"resourceType": "Observation", "status": "final",
		"code":      map[string]any{"text": "bridge"},
		"subject":   map[string]any{"reference": "Patient/" + w.A},
		"focus":     []any{map[string]any{"reference": "Patient/" + w.B}, map[string]any{"reference": "Patient/" + missing}},
		"hasMember": []any{map[string]any{"reference": "Observation/" + bObs}, map[string]any{"reference": "Observation/" + missing}},
	})
	w.res = map[string]map[string][]string{w.A: w.compartment(w.A), w.B: w.compartment(w.B)}
	w.inB = map[string]bool{}
	for typ, ids := range w.res[w.B] {
		for _, id := range ids {
			w.inB[typ+"/"+id] = true
		}
	}
}

// compartment lists what the store holds in Patient/id's compartment.
func (w *world) compartment(id string) map[string][]string {
	out := map[string][]string{"Patient": {id}}
	for _, typ := range fhir.ResourceTypes() {
		if typ == "Patient" || len(fhir.CompartmentParams("Patient", typ)) == 0 {
			continue
		}
		// Type by type: the compartment of one type is exact, while
		// Patient/[id]/* takes the union of every type's parameters.
		b := mustJSON(w.t, w.baseDo("GET", "Patient/"+id+"/"+typ+"?_count=1000", nil))
		for _, e := range entriesOf(b) {
			out[typ] = append(out[typ], get(e, "resource", "id").(string))
		}
	}
	return out
}

func (w *world) create(typ string, res map[string]any) string {
	w.t.Helper()
	resp := w.baseDo("POST", typ, res)
	return strings.Split(resp.Location, "/")[1]
}

// missing is an id no resource has.
const missing = "nonexistent-0001"

var patientRef = regexp.MustCompile(`^Patient/[A-Za-z0-9\-.]{1,64}$`)

// retarget returns a copy of an example resource with every reference to
// a Patient pointing at Patient/id and without id, meta and text.
func retarget(v any, id string) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if s, ok := e.(string); ok && k == "reference" && patientRef.MatchString(s) {
				out[k] = "Patient/" + id
				continue
			}
			out[k] = retarget(e, id)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = retarget(e, id)
		}
		return out
	}
	return v
}

// loadExamples stores, for A and for B, one official example of every
// Patient-compartment type that refers to a Patient in a compartment
// parameter, and keeps the examples of other types the role tests use.
func (w *world) loadExamples() {
	dir := sharedtest.Dir(w.t, filepath.Join("testdata", "fhir-examples", "r4-core-4.0.1"))
	w.examples = map[string]map[string]any{}
	for _, typ := range fhir.ResourceTypes() {
		if typ == "Patient" || typ == "Bundle" || typ == "Binary" || typ == "Parameters" || typ == "OperationOutcome" {
			continue
		}
		inCompartment := len(fhir.CompartmentParams("Patient", typ)) > 0
		files, _ := filepath.Glob(filepath.Join(dir, typ+"-*.json"))
		sort.Strings(files)
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				w.t.Fatal(err)
			}
			ex, err := fhir.Decode(data)
			if err != nil || ex["resourceType"] != typ {
				continue
			}
			delete(ex, "id")
			delete(ex, "meta")
			delete(ex, "text")
			a := retarget(ex, w.A).(map[string]any)
			b := retarget(ex, w.B).(map[string]any)
			if typ == "Group" {
				// A Group is visible to the clinicians of the
				// organization that manages it (proxy.go).
				a["managingEntity"] = map[string]any{"reference": "Organization/" + w.orgA}
				b["managingEntity"] = map[string]any{"reference": "Organization/" + w.orgB}
			}
			if !inCompartment {
				if w.tryCreate(typ, a) != "" {
					w.examples[typ] = a
					break
				}
				continue
			}
			id := w.tryCreate(typ, a)
			if id == "" || !w.inCompartment(w.A, typ, id) {
				continue
			}
			if w.tryCreate(typ, b) == "" {
				continue
			}
			w.examples[typ] = a
			break
		}
	}
}

func (w *world) tryCreate(typ string, res map[string]any) string {
	body, _ := json.Marshal(res)
	resp, err := w.base.Do(context.Background(), &rest.Request{Method: "POST", Type: typ, Body: body, Base: "http://test/fhir"})
	if err != nil {
		return ""
	}
	return strings.Split(resp.Location, "/")[1]
}

func (w *world) inCompartment(patient, typ, id string) bool {
	b := mustJSON(w.t, w.baseDo("GET", "Patient/"+patient+"/"+typ+"?_id="+id, nil))
	return len(entriesOf(b)) == 1
}

// types returns the types of B's compartment other than Patient, sorted.
func (w *world) types() []string {
	var out []string
	for typ := range w.res[w.B] {
		if typ != "Patient" && len(w.res[w.A][typ]) > 0 {
			out = append(out, typ)
		}
	}
	sort.Strings(out)
	return out
}

// resp is an HTTP answer.
type resp struct {
	header http.Header
	status int
	raw    []byte
	body   map[string]any
}

// do sends a request as principal who ("" for none).
func (w *world) do(who, method, path string, body any, headers ...string) *resp {
	w.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	u := path
	if !strings.HasPrefix(u, "http") {
		u = w.srv.URL + "/fhir/" + strings.TrimPrefix(path, "/")
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
		if method == "PATCH" {
			req.Header.Set("Content-Type", "application/json-patch+json")
		}
	}
	if who != "" {
		req.Header.Set("X-Who", who)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer hr.Body.Close()
	raw, _ := io.ReadAll(hr.Body)
	r := &resp{status: hr.StatusCode, raw: raw, header: hr.Header}
	if len(raw) > 0 {
		json.Unmarshal(raw, &r.body)
	}
	if r.status >= 500 {
		w.t.Errorf("%s %s as %s: server error %d: %s", method, path, who, r.status, raw)
	}
	return r
}

// resources returns "Type/id" of every resource an answer carries: the
// resource itself, or a Bundle's entries (with batch responses').
func (r *resp) resources() []string {
	var out []string
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		if m == nil {
			return
		}
		typ, _ := m["resourceType"].(string)
		id, _ := m["id"].(string)
		if typ == "Bundle" {
			for _, e := range entriesOf(m) {
				em, _ := e.(map[string]any)
				res, _ := em["resource"].(map[string]any)
				walk(res)
				oc, _ := get(em, "response", "outcome").(map[string]any)
				walk(oc)
			}
			return
		}
		if typ != "" && typ != "OperationOutcome" {
			out = append(out, typ+"/"+id)
		}
	}
	walk(r.body)
	return out
}

func entriesOf(b map[string]any) []any {
	e, _ := b["entry"].([]any)
	return e
}

func mustJSON(t testing.TB, r *rest.Response) map[string]any {
	t.Helper()
	var data []byte
	if r.Body != nil {
		data = r.Body
	} else {
		var err error
		if data, err = json.Marshal(r.Object); err != nil {
			t.Fatal(err)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return m
}

// get walks a decoded JSON value by keys and indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	if v == nil {
		return map[string]any(nil)
	}
	return v
}

func sqlitetestOpen(t testing.TB) hale.Store { return sqlitetest.Open(t) }

func pgtestOpen(t testing.TB) hale.Store { return pgtest.Open(t) }
