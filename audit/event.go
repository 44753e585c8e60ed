// Package audit is Hale's tamper-evident audit trail (docs/security.md,
// "Audit trail"): every access to patient data becomes a FHIR R4
// AuditEvent (hl7.org/fhir/R4/auditevent.html, shaped after the IHE Basic
// Audit Log Patterns), stored once, append-only, in the store's audit
// trail (hale.AuditTx, with the columns the FHIR core's AuditEvent search
// reads) and linked into a hash chain (hale.AuditStore) that `hale audit
// verify` checks.
//
// Writes are recorded in their own transaction (Recorder.AuditTx); reads,
// searches, failed writes, logins and the other events go through a
// bounded queue that a background goroutine writes in batches
// (Recorder.Audit), and a sealer chains what was written (Recorder.Run).
package audit

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// Code systems of the AuditEvent elements (auditevent.html, terminologies).
const (
	sysEventType   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	sysInteraction = "http://hl7.org/fhir/restful-interaction"
	sysDICOM       = "http://dicom.nema.org/resources/ontology/DCM"
	sysEntityType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	sysObjectRole  = "http://terminology.hl7.org/CodeSystem/object-role"
	sysSourceType  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	sysActReason   = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	// SystemPrincipal is the identifier system of agent.who for
	// hale.Principal.Subject ("user/<id>", "client/<id>").
	SystemPrincipal = "urn:hale:principal"
	// SystemClient identifies a SMART client by its client id.
	SystemClient = "urn:hale:client"
)

// Outcome codes (AuditEvent.outcome, required binding).
const (
	OutcomeSuccess = "0"
	OutcomeMinor   = "4" // the request failed: the client's mistake, or refused
	OutcomeSerious = "8" // the server failed
)

// Event is one audit record before it becomes an AuditEvent: what
// happened, to what, with what outcome. The caller is the principal of
// the context it is recorded with.
type Event struct {
	Type    [2]string // system, code of AuditEvent.type
	Display string    // its display
	Subtype [2]string // system, code; empty for none
	Action  string    // C R U D E
	Time    time.Time
	Err     error  // nil: success
	Detail  string // outcomeDesc on success; the error's message otherwise

	Patients []string // patient ids
	// Bases are the resources that allowed an access to a patient of
	// another organization: a referral or a consent ("ServiceRequest/12",
	// "Consent/7"; hale.Basis).
	Bases []string
	// Entities are the resources touched ("Type/id" or
	// "Type/id/_history/n"), Query the query of a search (as sent).
	Entities []string
	Query    string
	// Target identifies a non-resource object (a user account whose
	// privileges changed): identifier system and value.
	Target [2]string

	Who      *hale.Principal // nil: anonymous
	Purposes []string        // purpose-of-use codes (v3 ActReason)
}

// interactionAction maps a FHIR interaction to AuditEvent.action.
var interactionAction = map[string]string{
	"create": "C", "read": "R", "vread": "R", "update": "U", "patch": "U", "delete": "D",
	"history-instance": "R", "history-type": "R", "history-system": "R",
	"search-type": "E", "search-system": "E", "search-compartment": "E", "everything": "E",
	"transaction": "E", "batch": "E",
}

// restEvent is the Event of one FHIR interaction.
func restEvent(a *hale.Access) *Event {
	e := &Event{Type: [2]string{sysEventType, "rest"}, Display: "RESTful Operation", Time: a.Time, Err: a.Err}
	action, ok := interactionAction[a.Interaction]
	switch {
	case ok && a.Interaction != "everything":
		e.Subtype = [2]string{sysInteraction, a.Interaction}
	case ok:
		e.Subtype = [2]string{sysInteraction, "operation"}
	case a.Interaction == "export":
		e.Type, e.Display, action = [2]string{sysDICOM, "110106"}, "Export", "E"
	case a.Interaction == "export-file" || a.Interaction == "download":
		// A bulk export file or a document downloaded from the app: a
		// copy of the record leaves Hale (DICOM 110106 Export).
		e.Type, e.Display, action = [2]string{sysDICOM, "110106"}, "Export", "R"
	default:
		e.Subtype, action = [2]string{sysInteraction, "operation"}, "E"
	}
	e.Action = action
	e.Patients = append(e.Patients, a.Patients...)
	if a.ID != "" && len(a.Versions) == 0 {
		e.Entities = append(e.Entities, a.Type+"/"+a.ID)
	}
	for _, v := range a.Versions {
		e.Entities = append(e.Entities, v.Type+"/"+v.ID)
	}
	if a.Query != "" || strings.HasPrefix(a.Interaction, "search") {
		e.Query = a.Type + "?" + a.Query
	}
	return e
}

// maxEntities bounds the entities of one AuditEvent: a search page of
// 1,000 resources names its patients and query, not each resource.
const maxEntities = 50

// patientsOf returns the ids of the patients whose compartment the
// access's versions are in: a Patient itself, or the patients its
// compartment parameters (subject, patient, …) refer to.
func patientsOf(reg *search.Registry, a *hale.Access) []string {
	var out []string
	add := func(id string) {
		if id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	fromIndex := func(v hale.Version, idx *hale.Index) {
		if v.Type == "Patient" {
			add(v.ID)
		}
		if idx == nil {
			return
		}
		params := fhir.CompartmentParams("Patient", v.Type)
		for _, r := range idx.References {
			if r.TargetType == "Patient" && slices.Contains(params, r.Param) {
				add(r.TargetID)
			}
		}
	}
	if len(a.Indexes) > 0 && len(a.Indexes) == len(a.Versions) {
		for i, v := range a.Versions {
			fromIndex(v, a.Indexes[i])
		}
		return out
	}
	if a.Index != nil && len(a.Versions) == 1 {
		fromIndex(a.Versions[0], a.Index)
		return out
	}
	for _, v := range a.Versions {
		if v.Type == "Patient" {
			add(strings.Split(v.ID, "#")[0])
			continue
		}
		params := fhir.CompartmentParams("Patient", v.Type)
		if len(params) == 0 || v.Data == nil {
			continue
		}
		res, err := fhir.Decode(v.Data)
		if err != nil {
			continue
		}
		for _, p := range params {
			if p == "{def}" {
				continue
			}
			for _, r := range reg.ReferenceTargets(v.Type, res, p) {
				if r.TargetType == "Patient" {
					add(r.TargetID)
				}
			}
		}
	}
	if a.Type == "Patient" && a.ID != "" {
		add(a.ID)
	}
	// A search is about the patients its criteria name, found or not.
	q, _ := url.ParseQuery(a.Query)
	for key, vals := range q {
		name, mod, _ := strings.Cut(key, ":")
		if name != "patient" && name != "subject" && !(name == "_id" && a.Type == "Patient") || mod != "" && mod != "Patient" {
			continue
		}
		for _, v := range vals {
			for _, ref := range strings.Split(v, ",") {
				id, isPatient := strings.CutPrefix(ref, "Patient/")
				if isPatient || (name != "subject" && !strings.Contains(ref, "/")) {
					if search.ValidID(id) {
						add(id)
					}
				}
			}
		}
	}
	return out
}

// record returns the stored form of e, recorded by node, with id: its
// AuditEvent (R4) JSON, written here element by element in the
// definitions' order (what fhir.Marshal would write for it, tested), and
// the columns the audit search reads, taken from the same values. Hale's
// own events are not run through validation on this path: the tests
// validate every kind of event instead.
func (e *Event) record(node, id string) *hale.AuditRecord {
	at := e.Time.UTC().Truncate(time.Millisecond)
	stamp := at.Format("2006-01-02T15:04:05.000Z")
	r := &hale.AuditRecord{ID: id, Recorded: at, Type: e.Type[0] + "|" + e.Type[1], Action: e.Action,
		Outcome: OutcomeSuccess, Agent: "anonymous"}
	if e.Subtype[1] != "" {
		r.Subtype = e.Subtype[0] + "|" + e.Subtype[1]
	}
	desc := e.Detail
	if e.Err != nil {
		r.Outcome = OutcomeMinor
		if hale.ErrorKind(e.Err) == hale.KindInternal {
			r.Outcome = OutcomeSerious
		}
		desc = hale.ErrorKind(e.Err).String() + ": " + errorMessage(e.Err)
	}
	if p := e.Who; p != nil {
		r.Agent, r.AgentRef = p.Subject, p.FHIRUser
	}

	w := &jsonWriter{b: make([]byte, 0, 2048)}
	w.open('{')
	w.field("resourceType", "AuditEvent")
	w.field("id", id)
	w.key("meta")
	w.open('{')
	w.field("versionId", "1")
	w.field("lastUpdated", stamp)
	w.close('}')
	w.key("type")
	w.coding(e.Type[0], e.Type[1], e.Display)
	if r.Subtype != "" {
		w.key("subtype")
		w.open('[')
		w.coding(e.Subtype[0], e.Subtype[1], "")
		w.close(']')
	}
	w.field("action", e.Action)
	w.field("recorded", stamp)
	w.field("outcome", r.Outcome)
	if desc != "" {
		w.field("outcomeDesc", desc)
	}
	w.key("agent")
	w.agents(e.Who, e.Purposes)
	w.key("source")
	w.open('{')
	w.field("site", node)
	w.key("observer")
	w.open('{')
	w.field("display", "Hale "+node)
	w.close('}')
	w.key("type")
	w.open('[')
	w.coding(sysSourceType, "4", "Application Server")
	w.close(']')
	w.close('}')

	var refs []string // entity.what references, in order, distinct
	for _, p := range e.Patients {
		if ref := "Patient/" + p; !slices.Contains(refs, ref) {
			refs = append(refs, ref)
		}
	}
	patients := len(refs)
	for _, ref := range e.Bases {
		if !slices.Contains(refs, ref) {
			refs = append(refs, ref)
		}
	}
	bases := len(refs)
	for _, ref := range e.Entities {
		if len(refs)-bases == maxEntities {
			break
		}
		if !slices.Contains(refs, ref) {
			refs = append(refs, ref)
		}
	}
	if len(refs) > 0 || e.Query != "" || e.Target[1] != "" {
		w.key("entity")
		w.open('[')
		for i, ref := range refs {
			w.open('{')
			w.key("what")
			w.open('{')
			w.field("reference", ref)
			w.close('}')
			switch {
			case i < patients:
				w.key("type")
				w.coding(sysEntityType, "1", "Person")
				w.key("role")
				w.coding(sysObjectRole, "1", "Patient")
			case i < bases:
				// The referral or consent the access was allowed on.
				w.key("type")
				w.coding(sysEntityType, "2", "System Object")
				w.key("role")
				w.coding(sysObjectRole, "13", "Security Resource")
			default:
				w.key("type")
				w.coding(sysEntityType, "2", "System Object")
				w.key("role")
				w.coding(sysObjectRole, "4", "Domain Resource")
			}
			w.close('}')
		}
		if e.Query != "" {
			w.open('{')
			w.key("type")
			w.coding(sysEntityType, "2", "System Object")
			w.key("role")
			w.coding(sysObjectRole, "24", "Query")
			w.field("query", base64.StdEncoding.EncodeToString([]byte(e.Query)))
			w.close('}')
		}
		if e.Target[1] != "" {
			w.open('{')
			w.key("what")
			w.open('{')
			w.key("identifier")
			w.open('{')
			w.field("system", e.Target[0])
			w.field("value", e.Target[1])
			w.close('}')
			w.close('}')
			w.key("type")
			w.coding(sysEntityType, "2", "System Object")
			w.key("role")
			w.coding(sysObjectRole, "13", "Security Resource")
			w.close('}')
		}
		w.close(']')
	}
	w.close('}')
	r.Entities, r.Data = refs, w.b
	return r
}

// agents writes AuditEvent.agent: the requestor (the principal, or
// anonymous) and, when a user acts through a SMART app, the app.
func (w *jsonWriter) agents(p *hale.Principal, purposes []string) {
	w.open('[')
	w.open('{')
	w.key("who")
	w.open('{')
	if p == nil {
		w.key("identifier")
		w.open('{')
		w.field("system", SystemPrincipal)
		w.field("value", "anonymous")
		w.close('}')
		w.field("display", "anonymous")
	} else {
		if p.FHIRUser != "" {
			w.field("reference", p.FHIRUser)
		}
		w.key("identifier")
		w.open('{')
		w.field("system", SystemPrincipal)
		w.field("value", p.Subject)
		w.close('}')
		if p.Name != "" {
			w.field("display", p.Name)
		}
	}
	w.close('}')
	if p != nil {
		w.field("altId", p.Subject)
		if p.Name != "" {
			w.field("name", p.Name)
		}
	}
	w.key("requestor")
	w.boolean(true)
	if p != nil && p.Address != "" {
		w.key("network")
		w.open('{')
		w.field("address", p.Address)
		w.field("type", "2")
		w.close('}')
	}
	if len(purposes) > 0 {
		w.key("purposeOfUse")
		w.open('[')
		for _, c := range purposes {
			w.open('{')
			w.key("coding")
			w.open('[')
			w.coding(sysActReason, c, "")
			w.close(']')
			w.close('}')
		}
		w.close(']')
	}
	w.close('}')
	if p != nil && p.Client != "" && p.Subject != "client/"+p.Client {
		// The SMART app the user acted through.
		w.open('{')
		w.key("who")
		w.open('{')
		w.key("identifier")
		w.open('{')
		w.field("system", SystemClient)
		w.field("value", p.Client)
		w.close('}')
		w.close('}')
		w.key("requestor")
		w.boolean(false)
		w.close('}')
	}
	w.close(']')
}

// jsonWriter appends JSON: open and close objects and arrays, keys and
// values; it puts the commas.
type jsonWriter struct {
	b     []byte
	comma bool // a value ended: the next one needs a comma
}

func (w *jsonWriter) sep() {
	if w.comma {
		w.b = append(w.b, ',')
	}
}

func (w *jsonWriter) key(k string) {
	w.sep()
	w.b = append(append(append(w.b, '"'), k...), '"', ':')
	w.comma = false
}

func (w *jsonWriter) str(s string) {
	w.sep()
	w.b = fhir.AppendString(w.b, s)
	w.comma = true
}

func (w *jsonWriter) boolean(v bool) {
	w.sep()
	w.b = strconv.AppendBool(w.b, v)
	w.comma = true
}

func (w *jsonWriter) open(c byte) {
	w.sep()
	w.b = append(w.b, c)
	w.comma = false
}

func (w *jsonWriter) close(c byte) {
	w.b = append(w.b, c)
	w.comma = true
}

func (w *jsonWriter) field(k, v string) {
	w.key(k)
	w.str(v)
}

func (w *jsonWriter) coding(system, code, display string) {
	w.open('{')
	w.field("system", system)
	w.field("code", code)
	if display != "" {
		w.field("display", display)
	}
	w.close('}')
}

func errorMessage(err error) string {
	if he, ok := err.(*hale.Error); ok && he.Kind != hale.KindInternal {
		return he.Message
	}
	return "internal error"
}
