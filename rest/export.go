package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// This file is the Bulk Data Access 2.0 export (Bulk Data IG STU 2,
// hl7.org/fhir/uv/bulkdata/export.html): the kick-off at system, Patient
// and Group level, the status endpoint (polling, manifest, cancel) and the
// output files, over HTTP; and ExportPlan, which turns a job's parameters
// into the searches the export runner (package export) streams. The job
// itself lives in the database (hale.JobStore), so any node can answer
// about it and serve its files.
//
//	GET|POST [base]/$export, [base]/Patient/$export, [base]/Group/[id]/$export
//	         (Prefer: respond-async) → 202, Content-Location: [base]/$export-status/[job]
//	GET      [base]/$export-status/[job] → 202 X-Progress, Retry-After | 200 manifest | 4xx/5xx OperationOutcome
//	DELETE   [base]/$export-status/[job] → 202; the job and its files are gone
//	GET      [base]/$export-file/[job]/[name] → 200 application/fhir+ndjson
//
// docs/export.md explains the design.

// JobKindExport is hale.Job.Kind of a Bulk Data export.
const JobKindExport = "export"

// exportUnclaimedTTL is how long a job nobody ran is kept (no worker on
// any node); a finished job expires after the runner's TTL instead.
const exportUnclaimedTTL = 7 * 24 * time.Hour

// exportBatch is how many patients one search of a Group (or patient
// list) export names: the values of one clause, so the SQL stays small.
const exportBatch = 100

// exportRequester returns the id of the principal making a Bulk Data
// request, which the kick-off stores in hale.Job.Owner.
//
// It is the Subject of the Principal in the request's context ("" without
// one: a server without access control, where anyone who knows a job's
// URL, 128 random bits, may poll, cancel and download it). exportAllowed
// limits status, cancel and file requests to the principal that kicked
// the export off, which the IG allows ("A server MAY additionally restrict
// Bulk Data Status Request and Bulk Data Output File Requests by limiting
// them to the client that originated the export").
func exportRequester(r *http.Request) string {
	if p := hale.PrincipalFrom(r.Context()); p != nil {
		return p.Subject
	}
	return ""
}

// exportAllowed reports whether who may see job j. A job of someone else
// is answered as not found, so its existence does not leak.
func exportAllowed(j *hale.Job, who string) bool { return j.Owner == who }

// exportParams are an export job's parameters (hale.Job.Params), checked
// and resolved at kick-off: the plan is a pure function of them.
type exportParams struct {
	Level string `json:"level"` // "system", "patient" or "group"
	Group string `json:"group,omitempty"`
	// Patients limits a Patient or Group export to these patients' compartments
	// (a Group's members, or the POST patient parameter); empty at Patient level
	// means every patient, at Group level none.
	Patients    []string            `json:"patients,omitempty"`
	Types       []string            `json:"types"`
	Since       int64               `json:"since,omitempty"` // µs; 0 for none
	TypeFilters map[string][]string `json:"typeFilters,omitempty"`
	Elements    []string            `json:"elements,omitempty"`
	// Warnings are the parameters ignored under Prefer: handling=lenient;
	// each becomes an OperationOutcome in the manifest's error file.
	Warnings []string `json:"warnings,omitempty"`
	// Principal is the caller who kicked the export off, when the
	// Service has access control: the runner reads the data through a
	// store scoped to it (export.Runner.Access), so an export holds
	// exactly what its owner may search ("the FHIR server SHALL limit
	// the data returned to only those FHIR resources for which the
	// client is authorized", export.html "Privacy and Security
	// Considerations").
	Principal *hale.Principal `json:"principal,omitempty"`
}

// serveExport answers the Bulk Data endpoints and reports whether path
// was one of them.
func (s *Service) serveExport(w http.ResponseWriter, r *http.Request, prefix string) bool {
	path := strings.Trim(strings.TrimPrefix(r.URL.Path, prefix), "/")
	seg := strings.Split(path, "/")
	var err error
	interaction, typ := "", ""
	switch {
	case seg[len(seg)-1] == "$export":
		err = s.exportKickoff(w, r, prefix, seg[:len(seg)-1])
		interaction = "export"
		if len(seg) > 1 {
			typ = seg[0]
		}
	case seg[0] == "$export-status" && len(seg) == 2:
		err = s.exportStatus(w, r, prefix, seg[1])
	case seg[0] == "$export-file" && len(seg) == 3:
		err = s.exportFile(w, r, seg[1], seg[2])
		interaction = "export-file"
	default:
		return false
	}
	// A kick-off and a file download are disclosures of patient data:
	// audited like every access (a status poll discloses nothing).
	if interaction != "" && s.Audit != nil && hale.PrincipalFrom(r.Context()) != nil {
		a := &hale.Access{Interaction: interaction, Type: typ, Query: r.URL.RawQuery, Err: err}
		if interaction == "export-file" {
			a.ID = seg[1] + "/" + seg[2]
		}
		if aerr := s.Audit.Audit(r.Context(), a); aerr != nil {
			// The answer (a file) may be on its way already.
			s.Log.Error("audit: recording an export access", "err", aerr)
		}
	}
	if err != nil {
		s.writeError(w, r, err, format{})
	}
	return true
}

func (s *Service) jobStore() (hale.JobStore, error) {
	js, ok := s.Store.(hale.JobStore)
	if !ok {
		return nil, hale.Errorf(hale.KindNotSupported, "this store cannot keep export jobs")
	}
	return js, nil
}

// exportKickoff implements the Bulk Data Kick-off Request
// (export.html#bulk-data-kick-off-request): it checks every parameter,
// resolves a Group's members, stores a queued job and answers 202 with
// the status URL in Content-Location.
func (s *Service) exportKickoff(w http.ResponseWriter, r *http.Request, prefix string, at []string) error {
	ctx, store, err := s.scoped(r.Context())
	if err != nil {
		return err
	}
	p := exportParams{}
	if s.Access != nil {
		p.Principal = hale.PrincipalFrom(ctx)
	}
	switch {
	case len(at) == 0 || len(at) == 1 && at[0] == "":
		p.Level = "system"
	case len(at) == 1 && at[0] == "Patient":
		p.Level = "patient"
	case len(at) == 2 && at[0] == "Group":
		p.Level, p.Group = "group", at[1]
		if !search.ValidID(p.Group) {
			return hale.Errorf(hale.KindInvalid, "invalid id %q", p.Group)
		}
	default:
		return hale.Errorf(hale.KindNotFound, "$export is defined at [base]/$export, [base]/Patient/$export and [base]/Group/[id]/$export")
	}
	if r.Method != "GET" && r.Method != "POST" {
		return hale.Errorf(hale.KindMethodNotAllowed, "$export takes GET or POST")
	}
	if _, err := negotiate(r, r.URL.Query()); err != nil {
		return err
	}
	var async, lenient bool
	for _, v := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch strings.TrimSpace(k) {
			case "respond-async":
				async = true
			case "handling":
				lenient = strings.TrimSpace(val) == "lenient"
			}
		}
	}
	if !async {
		return hale.Errorf(hale.KindInvalid, "$export runs asynchronously: send Prefer: respond-async")
	}
	q := r.URL.Query()
	var patientRefs []string
	if r.Method == "POST" {
		var err error
		if patientRefs, err = s.exportParameters(w, r, q); err != nil {
			return err
		}
	}
	js, err := s.jobStore()
	if err != nil {
		return err
	}
	if err := s.checkExport(ctx, store, &p, q, patientRefs, lenient); err != nil {
		return err
	}
	params, err := json.Marshal(&p)
	if err != nil {
		return &hale.Error{Kind: hale.KindInternal, Op: "rest.export", Err: err}
	}
	base := s.base(r, prefix)
	request := base + "/" + strings.Join(append(at, "$export"), "/")
	if len(at) == 1 && at[0] == "" {
		request = base + "/$export"
	}
	if r.URL.RawQuery != "" {
		request += "?" + r.URL.RawQuery
	}
	created := s.now()
	j := &hale.Job{ID: newID(), Kind: JobKindExport, Owner: exportRequester(r), Request: request, Params: params,
		Created: created, Expires: created.Add(exportUnclaimedTTL), Progress: "queued"}
	if err := js.CreateJob(r.Context(), j); err != nil {
		return err
	}
	if s.ExportQueued != nil {
		s.ExportQueued()
	}
	w.Header().Set("Content-Location", base+"/$export-status/"+j.ID)
	body, _ := marshal(info("export queued; poll the Content-Location for its status"))
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(http.StatusAccepted)
	w.Write(body)
	return nil
}

// exportParameters reads a POST kick-off's Parameters resource into q (the
// parameters a GET would have in its query) and returns the patient
// references.
func (s *Service) exportParameters(w http.ResponseWriter, r *http.Request, q url.Values) ([]string, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxBodyBytes))
	if err != nil {
		return nil, hale.Errorf(hale.KindTooLarge, "the request body is larger than the limit of %d bytes", s.MaxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/fhir+json" && mt != "application/json" {
		return nil, hale.Errorf(hale.KindUnsupportedMediaType, "POST $export takes a Parameters resource as application/fhir+json")
	}
	res, err := fhir.Decode(body)
	if err != nil {
		return nil, err
	}
	if res["resourceType"] != "Parameters" {
		return nil, hale.Errorf(hale.KindInvalid, "POST $export takes a Parameters resource, not %v", res["resourceType"])
	}
	var patients []string
	list, _ := res["parameter"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		name, _ := m["name"].(string)
		if name == "patient" {
			ref, _ := m["valueReference"].(map[string]any)
			s, _ := ref["reference"].(string)
			if s == "" {
				return nil, hale.Errorf(hale.KindInvalid, "parameter patient: expected a valueReference with a reference")
			}
			patients = append(patients, s)
			continue
		}
		var value string
		for _, k := range []string{"valueString", "valueInstant", "valueCode", "valueDateTime", "valueUri"} {
			if v, ok := m[k].(string); ok {
				value = v
				break
			}
		}
		if name == "" || value == "" {
			return nil, hale.Errorf(hale.KindInvalid, "parameter %q: expected a name and a string, instant or code value", name)
		}
		q.Add(name, value)
	}
	return patients, nil
}

// checkExport validates the kick-off parameters (export.html "Query
// Parameters") into p. A parameter Hale does not support is an error,
// or, with Prefer: handling=lenient, ignored and reported in the
// manifest's error file, as the IG says for each of them.
func (s *Service) checkExport(ctx context.Context, store hale.Store, p *exportParams, q url.Values, patientRefs []string, lenient bool) error {
	unsupported := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		if lenient {
			p.Warnings = append(p.Warnings, msg)
			return nil
		}
		return hale.Errorf(hale.KindInvalid, "%s (send Prefer: handling=lenient to have it ignored)", msg)
	}
	for k := range q {
		switch k {
		case "_outputFormat", "_since", "_type", "_typeFilter", "_elements", "_format", "_pretty":
		case "includeAssociatedData":
			if err := unsupported("includeAssociatedData is not supported"); err != nil {
				return err
			}
		case "patient":
			return hale.Errorf(hale.KindInvalid, "patient is a POST parameter (a Parameters resource with valueReference)")
		default:
			if err := unsupported("unknown $export parameter %q", k); err != nil {
				return err
			}
		}
	}
	switch f := q.Get("_outputFormat"); f {
	case "", "application/fhir+ndjson", "application/ndjson", "ndjson":
	default:
		return hale.Errorf(hale.KindInvalid, "_outputFormat %q: Hale writes application/fhir+ndjson (also ndjson, application/ndjson)", f)
	}
	if v := q.Get("_since"); v != "" {
		lo, _, ok := search.DateRange(v)
		if !ok || len(v) <= 10 {
			return hale.Errorf(hale.KindInvalid, "_since must be an instant such as 2024-05-01T00:00:00Z, not %q", v)
		}
		p.Since = lo
	}

	// Types: the requested ones, or everything the level covers.
	scope := fhir.ResourceTypes()
	if p.Level != "system" {
		scope = compartmentTypes("Patient")
	}
	if vs := splitValues(q["_type"]); len(vs) > 0 {
		for _, t := range vs {
			switch {
			case !fhir.IsResourceType(t):
				if err := unsupported("_type: unknown resource type %q", t); err != nil {
					return err
				}
			case !slices.Contains(scope, t):
				if err := unsupported("_type: %s resources are not in the Patient compartment", t); err != nil {
					return err
				}
			case !slices.Contains(p.Types, t):
				p.Types = append(p.Types, t)
			}
		}
	} else {
		p.Types = scope
	}

	// _typeFilter: FHIR search queries, one resource type each; several
	// for one type are alternatives (export.html#_typefilter-experimental-query-parameter).
	for _, f := range splitTypeFilters(q["_typeFilter"]) {
		typ, query, _ := strings.Cut(f, "?")
		if !fhir.IsResourceType(typ) {
			return hale.Errorf(hale.KindInvalid, "_typeFilter %q: expected [ResourceType]?[search parameters]", f)
		}
		if !slices.Contains(p.Types, typ) {
			if err := unsupported("_typeFilter %q: %s is not exported", f, typ); err != nil {
				return err
			}
			continue
		}
		where, ignored, err := s.typeFilter(typ, query)
		if err != nil {
			return hale.Errorf(hale.KindInvalid, "_typeFilter %q: %s", f, err.Error())
		}
		if len(ignored) > 0 {
			if err := unsupported("_typeFilter %q: unsupported search parameters %s", f, strings.Join(ignored, ", ")); err != nil {
				return err
			}
		}
		if where != nil || len(ignored) > 0 {
			if p.TypeFilters == nil {
				p.TypeFilters = map[string][]string{}
			}
			p.TypeFilters[typ] = append(p.TypeFilters[typ], query)
		}
	}

	// _elements: [type.]element, root elements only.
	for _, e := range splitValues(q["_elements"]) {
		typ, el, qualified := strings.Cut(e, ".")
		if !qualified {
			typ, el = "", e
		}
		if el == "" || strings.Contains(el, ".") || qualified && !fhir.IsResourceType(typ) {
			return hale.Errorf(hale.KindInvalid, "_elements %q: expected [ResourceType.]element, a root element", e)
		}
		p.Elements = append(p.Elements, e)
	}

	if p.Level == "system" {
		if len(patientRefs) > 0 {
			return hale.Errorf(hale.KindInvalid, "the patient parameter does not apply to a system-level export")
		}
		return nil
	}
	return store.View(ctx, func(r hale.Reader) error { return p.resolvePatients(ctx, r, patientRefs) })
}

// resolvePatients sets p.Patients: the Group's members (Patient entities of
// Group.member that are not inactive), narrowed to the patient parameter
// when it is given, whose patients must exist (and be members).
func (p *exportParams) resolvePatients(ctx context.Context, r hale.Reader, refs []string) error {
	var requested []string
	for _, ref := range refs {
		typ, id, ok := search.ParseLocalReference(ref)
		if !ok || typ != "Patient" {
			return hale.Errorf(hale.KindInvalid, "patient %q: expected a reference Patient/[id]", ref)
		}
		v, err := r.Current(ctx, "Patient", id)
		if hale.IsKind(err, hale.KindNotFound) || err == nil && v.Deleted {
			return hale.Errorf(hale.KindInvalid, "patient %q: no such patient", ref)
		}
		if err != nil {
			return err
		}
		if !slices.Contains(requested, id) {
			requested = append(requested, id)
		}
	}
	if p.Level == "patient" {
		p.Patients = requested
		return nil
	}
	g, err := r.Current(ctx, "Group", p.Group)
	if hale.IsKind(err, hale.KindNotFound) {
		return hale.Errorf(hale.KindNotFound, "Group/%s not found", p.Group)
	}
	if err != nil {
		return err
	}
	if g.Deleted {
		return hale.Errorf(hale.KindGone, "Group/%s was deleted", p.Group)
	}
	res, err := fhir.Decode(g.Data)
	if err != nil {
		return &hale.Error{Kind: hale.KindInternal, Op: "rest.export", Err: err}
	}
	var members []string
	list, _ := res["member"].([]any)
	for _, m := range list {
		mm, _ := m.(map[string]any)
		if inactive, _ := mm["inactive"].(bool); inactive {
			continue
		}
		ref, _ := mm["entity"].(map[string]any)["reference"].(string)
		if typ, id, ok := search.ParseLocalReference(ref); ok && typ == "Patient" && !slices.Contains(members, id) {
			members = append(members, id)
		}
	}
	if len(refs) == 0 {
		p.Patients = members
		return nil
	}
	for _, id := range requested {
		if !slices.Contains(members, id) {
			return hale.Errorf(hale.KindInvalid, "patient Patient/%s is not a member of Group/%s", id, p.Group)
		}
	}
	p.Patients = requested
	return nil
}

// typeFilter parses one _typeFilter query for typ into its clauses and
// the parameters search did not apply. Result parameters are errors: the
// IG says they SHALL NOT be used.
func (s *Service) typeFilter(typ, query string) ([]hale.Clause, []string, error) {
	vals, err := url.ParseQuery(query)
	if err != nil {
		return nil, nil, err
	}
	for k := range vals {
		switch k {
		case "_include", "_revinclude", "_sort", "_count", "_elements", "_summary", "_total", "_contained",
			"_containedType", "_cursor", "_offset", "_type":
			return nil, nil, fmt.Errorf("the search result parameter %s cannot filter an export", k)
		}
	}
	parsed, err := search.ParseRequest([]string{typ}, vals, search.Options{Now: s.Now, Registry: s.Params, DefaultCount: 1, MaxCount: 1})
	if err != nil {
		return nil, nil, err
	}
	return parsed.Query.Where, parsed.Ignored, nil
}

// splitValues splits comma-separated values of a repeated parameter.
func splitValues(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

// splitTypeFilters splits _typeFilter values at the commas between
// queries; a comma inside a query (status=active,completed) is kept,
// because the text after it does not start a new Type?… query.
func splitTypeFilters(vs []string) []string {
	var out []string
	for _, v := range vs {
		start := len(out)
		for _, x := range strings.Split(v, ",") {
			typ, _, isQuery := strings.Cut(x, "?")
			if (!isQuery || !fhir.IsResourceType(typ)) && len(out) > start {
				out[len(out)-1] += "," + x
				continue
			}
			out = append(out, x)
		}
	}
	return out
}

// ExportPlan is what an export job runs, built from its parameters by
// ExportPlan: for each resource type in turn, the searches whose results
// are exported, each resource once.
type ExportPlan struct {
	// TransactionTime is the manifest's transactionTime, the kick-off
	// time: resources changed after it are left out (export.html: "The
	// response SHOULD NOT include any resources modified after this
	// instant").
	TransactionTime time.Time
	Types           []ExportType
	// Elements, when set, returns the subset of a stored resource that
	// _elements asks for, tagged SUBSETTED; nil writes the stored bytes.
	Elements func(typ string, data []byte) ([]byte, error)
	// Outcomes are OperationOutcome resources (JSON) for the manifest's
	// error file: the parameters ignored under handling=lenient.
	Outcomes [][]byte
	// Principal is who kicked the export off, when the Service has
	// access control (nil otherwise): the runner must read through a
	// store scoped to it.
	Principal *hale.Principal
}

// ExportType is one resource type of an export.
type ExportType struct {
	Type string
	// Queries are alternatives: a resource of Type is exported when it
	// matches the clauses of any of them. Each is run in id order (the
	// default order of a Query), so the runner merges them and drops
	// duplicates without remembering ids. None: nothing is exported.
	Queries [][]hale.Clause
}

// ExportPlan turns the parameters of an export job into its plan. It is a
// pure function of the job, so a node resuming the job computes the same
// plan. Returns KindInvalid when the parameters no longer parse (a
// search parameter a _typeFilter used was removed).
func (s *Service) ExportPlan(j *hale.Job) (*ExportPlan, error) {
	var p exportParams
	if err := json.Unmarshal(j.Params, &p); err != nil {
		return nil, &hale.Error{Kind: hale.KindInvalid, Op: "rest.ExportPlan", Message: "malformed export parameters", Err: err}
	}
	plan := &ExportPlan{TransactionTime: j.Created, Principal: p.Principal}
	var since []hale.Clause
	if p.Since != 0 {
		since = []hale.Clause{{Param: "_lastUpdated", Type: hale.TypeLastUpdated, Values: []hale.Value{{Prefix: "ge", Lo: p.Since, Hi: p.Since + 1}}}}
	}
	for _, typ := range p.Types {
		// The population: every resource of the type (system level), the
		// compartments of every patient, or of the listed patients.
		var scopes [][]hale.Clause
		switch {
		case p.Level == "system" || p.Level == "patient" && p.Patients == nil && typ == "Patient":
			scopes = [][]hale.Clause{nil}
		case p.Level == "patient" && p.Patients == nil:
			scopes = [][]hale.Clause{{anyPatientClause(typ)}}
		default:
			for batch := range slices.Chunk(p.Patients, exportBatch) {
				c, err := patientsClause(typ, batch)
				if err != nil {
					return nil, err
				}
				scopes = append(scopes, []hale.Clause{c})
			}
		}
		filters := [][]hale.Clause{nil}
		if fs := p.TypeFilters[typ]; len(fs) > 0 {
			filters = nil
			for _, f := range fs {
				where, _, err := s.typeFilter(typ, f)
				if err != nil {
					return nil, &hale.Error{Kind: hale.KindInvalid, Op: "rest.ExportPlan", Message: fmt.Sprintf("_typeFilter %s?%s: %v", typ, f, err)}
				}
				filters = append(filters, where)
			}
		}
		et := ExportType{Type: typ}
		for _, scope := range scopes {
			for _, filter := range filters {
				et.Queries = append(et.Queries, slices.Concat(scope, filter, since))
			}
		}
		plan.Types = append(plan.Types, et)
	}
	if len(p.Elements) > 0 {
		plan.Elements = func(typ string, data []byte) ([]byte, error) {
			var elems []string
			for _, e := range p.Elements {
				if t, el, ok := strings.Cut(e, "."); !ok {
					elems = append(elems, e)
				} else if t == typ {
					elems = append(elems, el)
				}
			}
			if len(elems) == 0 { // only other types' elements were named
				return data, nil
			}
			res, err := fhir.Decode(data)
			if err != nil {
				return nil, err
			}
			return fhir.Marshal(summarize(res, "", elems))
		}
	}
	for _, w := range p.Warnings {
		o, _ := marshal(outcome([]hale.Issue{{Severity: "warning", Code: "not-supported", Diagnostics: w + "; ignored (Prefer: handling=lenient)"}}))
		plan.Outcomes = append(plan.Outcomes, o)
	}
	return plan, nil
}

// anyPatientClause selects resources of typ in some patient's compartment:
// one of the compartment's reference parameters (compartmentClause's) points
// at a Patient that exists.
func anyPatientClause(typ string) hale.Clause {
	var or []hale.Clause
	for _, p := range fhir.CompartmentParams("Patient", typ) {
		if p != "{def}" {
			or = append(or, hale.Clause{Param: p, Type: hale.TypeReference, Chain: &hale.Chain{Type: "Patient"}})
		}
	}
	return hale.Clause{Or: or}
}

// patientsClause selects resources of typ in the compartment of any of
// ids: compartmentClause for one patient, widened to the batch.
func patientsClause(typ string, ids []string) (hale.Clause, error) {
	if typ == "Patient" {
		c := hale.Clause{Param: "_id", Type: hale.TypeID}
		for _, id := range ids {
			c.Values = append(c.Values, hale.Value{Code: id})
		}
		return c, nil
	}
	c, err := compartmentClause(&Compartment{Type: "Patient", ID: ids[0]}, typ)
	if err != nil {
		return c, err
	}
	refs := make([]hale.Value, len(ids))
	for i, id := range ids {
		refs[i] = hale.Value{TargetType: "Patient", TargetID: id}
	}
	for i := range c.Or {
		c.Or[i].Values = refs
	}
	return c, nil
}

// exportStatus implements the Bulk Data Status Request
// (export.html#bulk-data-status-request) and, for DELETE, the Bulk Data
// Delete Request (export.html#bulk-data-delete-request).
func (s *Service) exportStatus(w http.ResponseWriter, r *http.Request, prefix, id string) error {
	if _, _, err := s.scoped(r.Context()); err != nil {
		return err // with access control, only an authenticated caller may ask
	}
	js, err := s.jobStore()
	if err != nil {
		return err
	}
	j, err := js.GetJob(r.Context(), id)
	if err == nil && (j.Kind != JobKindExport || !exportAllowed(j, exportRequester(r))) {
		err = hale.Errorf(hale.KindNotFound, "no export %s", id)
	}
	if hale.IsKind(err, hale.KindNotFound) {
		return hale.Errorf(hale.KindNotFound, "no export %s: it never existed, was cancelled, or expired", id)
	}
	if err != nil {
		return err
	}
	switch r.Method {
	case "DELETE":
		if err := js.CancelJob(r.Context(), id); err != nil {
			return err
		}
		body, _ := marshal(info("export " + id + " cancelled; its files are deleted"))
		w.Header().Set("Content-Type", fhirJSON)
		w.WriteHeader(http.StatusAccepted)
		w.Write(body)
		return nil
	case "GET", "HEAD":
	default:
		return hale.Errorf(hale.KindMethodNotAllowed, "the status of an export takes GET or DELETE")
	}
	h := w.Header()
	switch j.Status {
	case hale.JobQueued, hale.JobRunning:
		// Poll about ten times over what the export took so far.
		wait := min(max(s.now().Sub(j.Created)/10, time.Second), 30*time.Second)
		h.Set("X-Progress", truncate(j.Progress, 99))
		h.Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
		w.WriteHeader(http.StatusAccepted)
		return nil
	case hale.JobFailed:
		// Not an error of this request: the job's own message, which the
		// runner wrote for the client, in a 500.
		body, _ := marshal(outcome([]hale.Issue{{Severity: "fatal", Code: "exception", Diagnostics: "the export failed: " + j.Error}}))
		h.Set("Content-Type", fhirJSON)
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(body)
		return nil
	}
	files, err := js.ListFiles(r.Context(), id)
	if err != nil {
		return err
	}
	base := s.base(r, prefix)
	output, errs := []any{}, []any{}
	for _, f := range files {
		item := obj{{"type", f.Type}, {"url", base + "/$export-file/" + id + "/" + f.Name}, {"count", f.Count}}
		if f.Type == "OperationOutcome" && strings.HasPrefix(f.Name, "error") {
			errs = append(errs, item)
		} else {
			output = append(output, item)
		}
	}
	manifest := obj{
		{"transactionTime", instant(j.Created)},
		{"request", j.Request},
		{"requiresAccessToken", true},
		{"output", output},
		{"error", errs},
	}
	body, err := marshal(manifest)
	if err != nil {
		return &hale.Error{Kind: hale.KindInternal, Op: "rest.export", Err: err}
	}
	if !j.Expires.IsZero() {
		h.Set("Expires", j.Expires.UTC().Format(http.TimeFormat))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != "HEAD" {
		w.Write(body)
	}
	return nil
}

// exportFile implements the Bulk Data Output File Request
// (export.html#bulk-data-output-file-request): the file's NDJSON, read from
// the database chunk by chunk, from whichever node wrote it.
func (s *Service) exportFile(w http.ResponseWriter, r *http.Request, id, name string) error {
	if _, _, err := s.scoped(r.Context()); err != nil {
		return err
	}
	if r.Method != "GET" && r.Method != "HEAD" {
		return hale.Errorf(hale.KindMethodNotAllowed, "an export file takes GET")
	}
	js, err := s.jobStore()
	if err != nil {
		return err
	}
	notFound := hale.Errorf(hale.KindNotFound, "no file %s in export %s: it never existed, was cancelled, or expired", name, id)
	j, err := js.GetJob(r.Context(), id)
	if hale.IsKind(err, hale.KindNotFound) || err == nil && (j.Kind != JobKindExport || j.Status != hale.JobDone || !exportAllowed(j, exportRequester(r))) {
		return notFound
	}
	if err != nil {
		return err
	}
	files, err := js.ListFiles(r.Context(), id)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(files, func(f hale.JobFile) bool { return f.Name == name })
	if i < 0 {
		return notFound
	}
	f := &files[i]
	h := w.Header()
	h.Set("Content-Type", "application/fhir+ndjson")
	h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
	if !j.Expires.IsZero() {
		h.Set("Expires", j.Expires.UTC().Format(http.TimeFormat))
	}
	if r.Method == "HEAD" {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	// Headers go out with the first chunk; an error after that can only
	// cut the response short (Content-Length tells the client).
	cw := &countingWriter{w: w}
	if err := js.ReadFile(r.Context(), id, f, cw); err != nil {
		if cw.n == 0 {
			h.Del("Content-Length")
			h.Set("Content-Type", fhirJSON)
			return err
		}
		s.Log.Warn("export file cut short", "job", id, "file", name, "err", err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
