package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/search"
)

// No double booking (issue 7): an Appointment that holds a practitioner's
// time may not overlap another such Appointment of the same practitioner,
// whoever writes it (the clinician app, the FHIR API, a transaction or
// batch entry, a PATCH). Every write of an Appointment goes through put,
// which calls checkBooking in the write's transaction:
//
//  1. for each practitioner the appointment holds (a participant whose
//     actor is a local Practitioner reference and whose status is not
//     declined), in id order, take the transaction lock
//     "booking:Practitioner/<id>" (SQLite: the single writer already
//     serialises; PostgreSQL: a transaction-scoped advisory lock, and
//     READ COMMITTED means the search below, a later statement, sees
//     every booking committed before the lock was granted);
//  2. search, in the unscoped store (the check must see the appointments
//     the writer may not read, or a clerk of one clinic could double-book
//     a practitioner who also works for another), the practitioner's
//     appointments that hold time and start between bookingLookback
//     before the new start and the new end;
//  3. refuse (409, OperationOutcome code business-rule) when one other
//     than the appointment itself overlaps [start, end).
//
// An update is checked only for the practitioners whose time it takes
// anew (checkBooking).
//
// Two concurrent overlapping bookings therefore take turns on the lock
// and the second sees the first. The refusal names the times, not the
// other appointment or its patient (the writer may not be allowed to see
// them).
//
// Limits: an appointment longer than bookingLookback is not found by one
// that starts more than bookingLookback after its start; references to
// a practitioner by absolute URL or through a PractitionerRole are not
// checked.

// holdingStatuses are the Appointment statuses that hold the
// participants' time (appointmentstatus): a proposed or waitlisted
// appointment is a request, not a booking; cancelled, noshow, fulfilled
// and entered-in-error ones free the time.
var holdingStatuses = []string{"pending", "booked", "arrived", "checked-in"}

// HoldsTime reports whether an Appointment in status holds its
// practitioners' time, so that another may not overlap it.
func HoldsTime(status string) bool { return slices.Contains(holdingStatuses, status) }

// HoldingStatuses returns the statuses for which HoldsTime is true.
func HoldingStatuses() []string { return slices.Clone(holdingStatuses) }

// bookingLookback is how long before a new appointment's start the check
// looks for appointments that may still be running.
const bookingLookback = 24 * time.Hour

const opBooking = "rest.booking"

// DoubleBooking is the cause (hale.Error.Err) of the KindConflict error
// that refuses an Appointment overlapping another of the same
// practitioner: who, and the other appointment's time. Find it with
// errors.As.
type DoubleBooking struct {
	Practitioner string // "Practitioner/<id>"
	Start, End   time.Time
}

func (d *DoubleBooking) Error() string {
	return fmt.Sprintf("%s is already booked from %s to %s", d.Practitioner, d.Start.UTC().Format(time.RFC3339), d.End.UTC().Format(time.RFC3339))
}

// IsDoubleBooking reports whether err refuses an Appointment that
// overlaps another of the same practitioner.
func IsDoubleBooking(err error) bool {
	var d *DoubleBooking
	return errors.As(err, &d)
}

// checkBooking refuses res, Appointment/id about to be written as the
// next version after prev (nil for a new one), when it takes time of a
// practitioner who is already booked then (see the comment above). Time
// the previous version already held for the same practitioner is not
// taken again: checking in, or shortening, an appointment that overlaps
// one written before this rule existed is not refused.
func (s *Service) checkBooking(ctx context.Context, tx hale.Tx, id string, res map[string]any, prev *hale.Version) error {
	status, _ := res["status"].(string)
	if !HoldsTime(status) {
		return nil
	}
	start, end, ok := appointmentTimes(res)
	if !ok {
		return nil
	}
	var old map[string]any
	if prev != nil && !prev.Deleted {
		if err := json.Unmarshal(prev.Data, &old); err != nil {
			return &hale.Error{Kind: hale.KindInternal, Op: opBooking, Err: err}
		}
		st, _ := old["status"].(string)
		os, oe, ok := appointmentTimes(old)
		if !HoldsTime(st) || !ok || os.After(start) || oe.Before(end) {
			old = nil // the new version takes time the old one did not hold
		}
	}
	pracs := map[string]int{} // Practitioner id → participant index
	for i, p := range asList(res["participant"]) {
		if pid, ok := heldPractitioner(p); ok && (old == nil || !holds(old, pid)) {
			if _, seen := pracs[pid]; !seen {
				pracs[pid] = i
			}
		}
	}
	ids := make([]string, 0, len(pracs))
	for id := range pracs {
		ids = append(ids, id)
	}
	slices.Sort(ids) // one lock order, so two bookings cannot deadlock
	base := hale.Unscoped(tx)
	for _, pid := range ids {
		ref := "Practitioner/" + pid
		if err := tx.Lock(ctx, "booking:"+ref); err != nil {
			return err
		}
		q := url.Values{
			"actor":  {ref},
			"status": {strings.Join(holdingStatuses, ",")},
			"date":   {"ge" + start.Add(-bookingLookback).UTC().Format(time.RFC3339), "lt" + end.UTC().Format(time.RFC3339Nano)},
		}
		other, err := s.overlapping(ctx, base, q, id, pid, start, end)
		if err != nil {
			return err
		}
		if other != nil {
			d := &DoubleBooking{Practitioner: ref, Start: other[0], End: other[1]}
			msg := d.Error() + ": an appointment that holds a practitioner's time (status " + strings.Join(holdingStatuses, ", ") +
				") may not overlap another of the same practitioner"
			return &hale.Error{Kind: hale.KindConflict, Op: opBooking, Message: msg, Err: d, Issues: []hale.Issue{{Severity: "error", Code: "business-rule",
				Diagnostics: msg, Expression: []string{fmt.Sprintf("Appointment.participant[%d].actor", pracs[pid])}}}}
		}
	}
	return nil
}

// overlapping returns the times of an appointment of practitioner pid
// matching q, other than Appointment/self, that overlaps [start, end), or
// nil.
func (s *Service) overlapping(ctx context.Context, r hale.Reader, q url.Values, self, pid string, start, end time.Time) (*[2]time.Time, error) {
	sr, ok := r.(hale.Searcher)
	if !ok {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: opBooking, Message: "the store cannot search"}
	}
	pr, err := search.ParseRequest([]string{"Appointment"}, q, search.Options{DefaultCount: 500, MaxCount: 500, Registry: s.Params})
	if err != nil {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: opBooking, Err: err}
	}
	query := &pr.Query
	for {
		page, err := sr.Search(ctx, query)
		if err != nil {
			return nil, err
		}
		for _, v := range page.Versions {
			if v.ID == self {
				continue
			}
			var other map[string]any
			if err := json.Unmarshal(v.Data, &other); err != nil {
				return nil, &hale.Error{Kind: hale.KindInternal, Op: opBooking, Err: err}
			}
			st, _ := other["status"].(string)
			os, oe, ok := appointmentTimes(other)
			if !ok || !HoldsTime(st) || !holds(other, pid) {
				continue
			}
			if os.Before(end) && oe.After(start) {
				return &[2]time.Time{os, oe}, nil
			}
		}
		if page.Next == nil {
			return nil, nil
		}
		query.After = page.Next
	}
}

// holds reports whether appointment ap holds practitioner pid's time.
func holds(ap map[string]any, pid string) bool {
	for _, p := range asList(ap["participant"]) {
		if id, ok := heldPractitioner(p); ok && id == pid {
			return true
		}
	}
	return false
}

// heldPractitioner is the id of the Practitioner a participant names,
// unless the participant declined.
func heldPractitioner(p any) (string, bool) {
	m, _ := p.(map[string]any)
	if st, _ := m["status"].(string); st == "declined" {
		return "", false
	}
	actor, _ := m["actor"].(map[string]any)
	ref, _ := actor["reference"].(string)
	typ, id, ok := search.ParseLocalReference(ref)
	if !ok || typ != "Practitioner" {
		return "", false
	}
	return id, true
}

// appointmentTimes is an appointment's [start, end): end, else start +
// minutesDuration, else one minute.
func appointmentTimes(ap map[string]any) (start, end time.Time, ok bool) {
	s, _ := ap["start"].(string)
	st, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return start, end, false
	}
	if e, _ := ap["end"].(string); e != "" {
		if en, err := time.Parse(time.RFC3339Nano, e); err == nil {
			return st, en, true
		}
	}
	minutes := 1.0
	switch m := ap["minutesDuration"].(type) {
	case float64: // decoded by encoding/json
		minutes = max(m, minutes)
	case json.Number: // decoded by fhir.Decode
		if f, err := m.Float64(); err == nil {
			minutes = max(f, minutes)
		}
	}
	return st, st.Add(time.Duration(minutes * float64(time.Minute))), true
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
