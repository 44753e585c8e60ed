package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale/search"
)

// The in-basket on Home: what waits for the signed-in clinician.
//
//   - Results to review: final laboratory Observations
//     (https://hl7.org/fhir/R4/observation.html, category laboratory) and
//     DiagnosticReports (category LAB) of the patients the user may see,
//     newest first, abnormal ones flagged, that the user has not reviewed.
//     A review is recorded the FHIR way, as a completed Task
//     (https://hl7.org/fhir/R4/task.html) with code "review" (taskCodeSystem),
//     focus = the result, for = its patient, owner = the user's
//     Practitioner: who reviewed what and when is itself a record, kept in
//     the audit trail and visible to the API, and the result is unchanged.
//   - Open Tasks owned by the user's Practitioner.
//   - Patient messages: Communications whose recipient is the user's
//     Practitioner and that have no Communication.received yet; "Mark read"
//     sets received (the time the recipient took the message).

// taskCodeSystem is Hale's own code system for Task.code: R4's task-code
// (approve, fulfill, …) has no code for reviewing a result.
const taskCodeSystem = "https://hale-ehr.org/fhir/CodeSystem/task-code"

// inboxLimit bounds each list of the in-basket.
const inboxLimit = 50

type resultRow struct {
	Ref, Type, Test, Value, Date, Patient, PatientID, Flag, FlagText string
	Abnormal                                                         bool
	when                                                             string
}

type taskRow struct {
	Ref, Text, Status, Priority, Patient, PatientID, Date string
}

type messageRow struct {
	ID, Version, From, Patient, PatientID, Sent, Text string
}

type inboxView struct {
	Results  []resultRow
	Tasks    []taskRow
	Messages []messageRow
}

// openTaskStatuses are the Task statuses that still need the owner.
var openTaskStatuses = []string{"requested", "received", "accepted", "ready", "in-progress", "on-hold"}

// inbox loads the in-basket of u (a Practitioner user).
func (a *App) inbox(ctx context.Context, u *user) (*inboxView, error) {
	v := &inboxView{}
	var obs, drs, reviews, tasks, msgs *bundle
	err := parallel(
		func() (err error) {
			obs, err = a.search(ctx, "Observation", url.Values{"category": {"laboratory"}, "status": {"final"}, "_sort": {"-date"},
				"_count": {"200"}, "_include": {"Observation:patient"}})
			return err
		},
		func() (err error) {
			drs, err = a.search(ctx, "DiagnosticReport", url.Values{"category": {"LAB"}, "status": {"final"}, "_sort": {"-date"},
				"_count": {"200"}, "_include": {"DiagnosticReport:patient"}})
			return err
		},
		func() (err error) {
			reviews, err = a.search(ctx, "Task", url.Values{"owner": {u.FHIRUser}, "code": {taskCodeSystem + "|review"}, "_count": {"1000"}})
			return err
		},
		func() (err error) {
			tasks, err = a.search(ctx, "Task", url.Values{"owner": {u.FHIRUser}, "status": {strings.Join(openTaskStatuses, ",")},
				"_sort": {"-_lastUpdated"}, "_count": {"50"}, "_include": {"Task:patient"}})
			return err
		},
		func() (err error) {
			msgs, err = a.search(ctx, "Communication", url.Values{"recipient": {u.FHIRUser}, "_sort": {"-sent"}, "_count": {"200"},
				"_include": {"Communication:patient", "Communication:sender"}})
			return err
		},
	)
	if err != nil {
		return nil, err
	}
	reviewed := map[string]bool{}
	for _, t := range reviews.Matches {
		reviewed[str(t, "focus", "reference")] = true
	}
	names := map[string]string{}
	for _, b := range []*bundle{obs, drs, tasks, msgs} {
		for _, inc := range b.Included {
			ref := str(inc, "resourceType") + "/" + str(inc, "id")
			if str(inc, "resourceType") == "Practitioner" {
				names[ref] = practitionerName(inc)
			} else {
				names[ref] = humanName(inc)
			}
		}
	}
	for _, o := range obs.Matches {
		ref := "Observation/" + str(o, "id")
		if reviewed[ref] {
			continue
		}
		row := resultRow{Ref: ref, Type: "Result", Test: conceptText(get(o, "code")), when: str(o, "effectiveDateTime"),
			PatientID: refID(get(o, "subject"), "Patient")}
		if row.when == "" {
			row.when = str(o, "issued")
		}
		if q := obj(o, "valueQuantity"); q != nil {
			if n, ok := num(q, "value"); ok {
				row.Value = strings.TrimSpace(formatNumber(n, 4) + " " + str(q, "unit"))
			}
		} else if s := str(o, "valueString"); s != "" {
			row.Value = s
		} else if c := get(o, "valueCodeableConcept"); c != nil {
			row.Value = conceptText(c)
		}
		row.Flag, _, _ = labFlag(o)
		row.FlagText, row.Abnormal = flagText(row.Flag), row.Flag != flagNone
		v.Results = append(v.Results, row)
	}
	for _, d := range drs.Matches {
		ref := "DiagnosticReport/" + str(d, "id")
		if reviewed[ref] {
			continue
		}
		row := resultRow{Ref: ref, Type: "Report", Test: conceptText(get(d, "code")), when: str(d, "effectiveDateTime"),
			PatientID: refID(get(d, "subject"), "Patient"), Value: str(d, "conclusion")}
		if row.when == "" {
			row.when = str(d, "issued")
		}
		for _, c := range list(d, "conclusionCode") {
			for _, cd := range list(c, "coding") {
				if code := str(cd, "code"); code != "" && code != "N" {
					row.Abnormal, row.FlagText = true, "Abnormal"
				}
			}
		}
		v.Results = append(v.Results, row)
	}
	slices.SortStableFunc(v.Results, func(x, y resultRow) int {
		tx, _ := fhirTime(x.when)
		ty, _ := fhirTime(y.when)
		return ty.Compare(tx)
	})
	if len(v.Results) > inboxLimit {
		v.Results = v.Results[:inboxLimit]
	}
	for i := range v.Results {
		row := &v.Results[i]
		row.Date = a.showDateTime(row.when)
		if row.PatientID != "" {
			row.Patient = names["Patient/"+row.PatientID]
		}
	}
	for _, t := range tasks.Matches {
		row := taskRow{Ref: "Task/" + str(t, "id"), Text: str(t, "description"), Status: str(t, "status"), Priority: str(t, "priority"),
			PatientID: refID(get(t, "for"), "Patient"), Date: a.showDateTime(str(t, "authoredOn"))}
		if row.Text == "" {
			row.Text = conceptText(get(t, "code"))
		}
		if row.PatientID != "" {
			row.Patient = names["Patient/"+row.PatientID]
		}
		v.Tasks = append(v.Tasks, row)
	}
	for _, m := range msgs.Matches {
		if str(m, "received") != "" || len(v.Messages) >= inboxLimit {
			continue
		}
		row := messageRow{ID: str(m, "id"), Version: str(m, "meta", "versionId"), PatientID: refID(get(m, "subject"), "Patient"),
			Sent: a.showDateTime(str(m, "sent"))}
		sender := str(m, "sender", "reference")
		row.From = names[sender]
		if row.From == "" {
			row.From = str(m, "sender", "display")
		}
		if row.PatientID != "" {
			row.Patient = names["Patient/"+row.PatientID]
		}
		var texts []string
		for _, p := range list(m, "payload") {
			if s := str(p, "contentString"); s != "" {
				texts = append(texts, s)
			}
		}
		row.Text = strings.Join(texts, "\n")
		v.Messages = append(v.Messages, row)
	}
	return v, nil
}

// postReview records that the user reviewed a result (see above).
func (a *App) postReview(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	typ, id, _ := strings.Cut(r.PostForm.Get("result"), "/")
	if (typ != "Observation" && typ != "DiagnosticReport") || !search.ValidID(id) {
		a.errorPage(w, r, u, http.StatusBadRequest, "Choose a result to mark reviewed.")
		return
	}
	if !strings.HasPrefix(u.FHIRUser, "Practitioner/") {
		a.errorPage(w, r, u, http.StatusForbidden, "Only a practitioner's account can review results.")
		return
	}
	res, _, err := a.read(ctx, typ, id)
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	now := a.now().UTC().Format(time.RFC3339)
	task := resource{
		"resourceType":    "Task",
		"status":          "completed",
		"intent":          "order",
		"code":            map[string]any{"coding": []any{map[string]any{"system": taskCodeSystem, "code": "review", "display": "Review result"}}, "text": "Review result"},
		"description":     "Reviewed " + conceptText(get(res, "code")),
		"focus":           map[string]any{"reference": typ + "/" + id},
		"owner":           map[string]any{"reference": u.FHIRUser},
		"requester":       map[string]any{"reference": u.FHIRUser},
		"authoredOn":      now,
		"lastModified":    now,
		"executionPeriod": map[string]any{"start": now, "end": now},
	}
	if p := get(res, "subject", "reference"); p != nil {
		task["for"] = map[string]any{"reference": p}
	}
	if _, err := a.create(ctx, task); err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	http.Redirect(w, r, Prefix+"/?saved=reviewed", http.StatusSeeOther)
}

// postMessageRead marks a message read: Communication.received = now, at
// the version the page showed.
func (a *App) postMessageRead(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	id := r.PathValue("cid")
	if !search.ValidID(id) {
		a.errorPage(w, r, u, http.StatusNotFound, "Not found, or you do not have access to it.")
		return
	}
	res, version, err := a.read(ctx, "Communication", id)
	if err == nil && !slices.ContainsFunc(list(res, "recipient"), func(x any) bool { return str(x, "reference") == u.FHIRUser }) {
		err = errNotFound
	}
	if err == nil {
		if v := r.PostForm.Get("version"); v != "" && v != version {
			err = errChanged
		}
	}
	if err == nil && str(res, "received") == "" {
		res["received"] = a.now().UTC().Format(time.RFC3339)
		err = a.update(ctx, res, version)
	}
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	http.Redirect(w, r, Prefix+"/?saved=read", http.StatusSeeOther)
}
