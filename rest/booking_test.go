package rest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale"
)

// appt is an Appointment of patient pat with practitioner prac from
// start to end ("2031-06-03T10:00:00Z"); extra participant fields for
// the practitioner (e.g. "status":"declined") replace "accepted".
func appt(status, pat, prac, start, end string, pracStatus ...string) map[string]any {
	ps := "accepted"
	if len(pracStatus) > 0 {
		ps = pracStatus[0]
	}
	a := map[string]any{
		"resourceType": "Appointment", "status": status, "description": "Visit",
		"participant": []any{
			map[string]any{"actor": map[string]any{"reference": "Patient/" + pat}, "status": "accepted"},
			map[string]any{"actor": map[string]any{"reference": "Practitioner/" + prac}, "status": ps},
		},
	}
	if start != "" {
		a["start"], a["end"] = start, end
	}
	return a
}

const day = "2031-06-03T"

// TestDoubleBookingREST: an Appointment written through the FHIR API
// that would overlap another of the same practitioner is refused with
// 409 and an OperationOutcome, by create, update, patch, transaction and
// batch; what does not hold time (proposed, declined, cancelled, another
// practitioner, back-to-back) is accepted.
func TestDoubleBookingREST(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		pat := c.create(t, "Patient", patientJane)
		prac := c.create(t, "Practitioner", `{"resourceType":"Practitioner","name":[{"family":"Lee"}]}`)
		prac2 := c.create(t, "Practitioner", `{"resourceType":"Practitioner","name":[{"family":"Kim"}]}`)

		first := c.do("POST", "/Appointment", appt("booked", pat, prac, day+"10:00:00Z", day+"10:30:00Z")).want(t, 201)
		refused := c.do("POST", "/Appointment", appt("booked", pat, prac, day+"10:15:00Z", day+"10:45:00Z")).want(t, 409)
		out := refused.outcome(t)
		for _, want := range []string{"business-rule", "Practitioner/" + prac + " is already booked from 2031-06-03T10:00:00Z to 2031-06-03T10:30:00Z", "Appointment.participant[1].actor"} {
			if !strings.Contains(out, want) {
				t.Errorf("outcome %q does not say %q", out, want)
			}
		}
		// Every status that holds time is refused; the others are not.
		for _, st := range []string{"pending", "arrived", "checked-in"} {
			c.do("POST", "/Appointment", appt(st, pat, prac, day+"10:29:00Z", day+"10:59:00Z")).want(t, 409)
		}
		proposed := c.do("POST", "/Appointment", appt("proposed", pat, prac, day+"10:10:00Z", day+"10:40:00Z")).want(t, 201)
		c.do("POST", "/Appointment", appt("waitlist", pat, prac, day+"10:10:00Z", day+"10:40:00Z")).want(t, 201)
		c.do("POST", "/Appointment", appt("cancelled", pat, prac, day+"10:10:00Z", day+"10:40:00Z")).want(t, 201)
		c.do("POST", "/Appointment", appt("booked", pat, prac, day+"10:10:00Z", day+"10:40:00Z", "declined")).want(t, 201)
		c.do("POST", "/Appointment", appt("booked", pat, prac2, day+"10:10:00Z", day+"10:40:00Z")).want(t, 201)
		c.do("POST", "/Appointment", appt("booked", pat, prac, day+"10:30:00Z", day+"11:00:00Z")).want(t, 201) // back-to-back
		c.do("POST", "/Appointment", appt("booked", pat, prac, day+"09:30:00Z", day+"10:00:00Z")).want(t, 201) // back-to-back before
		// Update: moving within its own time is no clash with itself;
		// a proposed appointment becoming booked at a taken time is.
		a := first.body
		a["end"] = day + "10:20:00Z"
		c.do("PUT", "/Appointment/"+str(a["id"]), a).want(t, 200)
		p := proposed.body
		p["status"] = "booked"
		c.do("PUT", "/Appointment/"+str(p["id"]), p).want(t, 409)
		// Patch, too.
		c.do("PATCH", "/Appointment/"+str(p["id"]), `[{"op":"replace","path":"/status","value":"booked"}]`, "Content-Type: application/json-patch+json").want(t, 409)
		// Cancel the first: its time is free (10:30 onwards is taken by the back-to-back one).
		a = c.do("GET", "/Appointment/"+str(a["id"]), nil).want(t, 200).body
		a["status"] = "cancelled"
		c.do("PUT", "/Appointment/"+str(a["id"]), a).want(t, 200)
		p = c.do("GET", "/Appointment/"+str(p["id"]), nil).want(t, 200).body
		p["status"], p["end"] = "booked", day+"10:30:00Z"
		c.do("PUT", "/Appointment/"+str(p["id"]), p).want(t, 200)

		// A long appointment that started the evening before still counts.
		c.do("POST", "/Appointment", appt("booked", pat, prac2, "2031-06-04T18:00:00Z", "2031-06-05T12:00:00Z")).want(t, 201)
		c.do("POST", "/Appointment", appt("booked", pat, prac2, "2031-06-05T09:00:00Z", "2031-06-05T09:30:00Z")).want(t, 409)

		// A transaction with two overlapping bookings: refused whole.
		before := c.count(t, "Appointment")
		tx := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
			map[string]any{"resource": appt("booked", pat, prac, "2031-06-06T10:00:00Z", "2031-06-06T10:30:00Z"), "request": map[string]any{"method": "POST", "url": "Appointment"}},
			map[string]any{"resource": appt("booked", pat, prac, "2031-06-06T10:20:00Z", "2031-06-06T10:50:00Z"), "request": map[string]any{"method": "POST", "url": "Appointment"}},
		}}
		if out := c.do("POST", "", tx).want(t, 409).outcome(t); !strings.Contains(out, "Bundle.entry[1]") || !strings.Contains(out, "already booked") {
			t.Errorf("transaction outcome: %s", out)
		}
		if n := c.count(t, "Appointment"); n != before {
			t.Errorf("a refused transaction stored %d appointments", n-before)
		}
		// A batch: the overlapping entry fails, the other is stored.
		tx["type"] = "batch"
		r := c.do("POST", "", tx).want(t, 200)
		if s0, s1 := str(get(r.body, "entry", 0, "response", "status")), str(get(r.body, "entry", 1, "response", "status")); !strings.HasPrefix(s0, "201") || !strings.HasPrefix(s1, "409") {
			t.Errorf("batch: %s and %s, want 201 and 409", s0, s1)
		}
	})
}

// TestDoubleBookingRESTConcurrent: of 16 concurrent creates of
// overlapping booked appointments of one practitioner through the FHIR
// API, exactly one is stored; 16 at distinct times are all stored.
func TestDoubleBookingRESTConcurrent(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		pat := c.create(t, "Patient", patientJane)
		prac := c.create(t, "Practitioner", `{"resourceType":"Practitioner","name":[{"family":"Lee"}]}`)
		const n = 16
		run := func(slot func(i int) (string, string)) map[int]int {
			codes := make(chan int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, e := slot(i)
					codes <- c.do("POST", "/Appointment", appt("booked", pat, prac, s, e)).status
				}()
			}
			wg.Wait()
			close(codes)
			got := map[int]int{}
			for code := range codes {
				got[code]++
			}
			return got
		}
		got := run(func(i int) (string, string) {
			return fmt.Sprintf("%s10:%02d:00Z", day, i%3*5), fmt.Sprintf("%s10:%02d:00Z", day, 30+i%3*5)
		})
		if got[201] != 1 || got[409] != n-1 || c.count(t, "Appointment") != 1 {
			t.Fatalf("overlapping: statuses %v, %d stored; want one 201, %d 409, 1 stored", got, c.count(t, "Appointment"), n-1)
		}
		got = run(func(i int) (string, string) {
			return fmt.Sprintf("2031-06-04T%02d:00:00Z", i), fmt.Sprintf("2031-06-04T%02d:30:00Z", i)
		})
		if got[201] != n || c.count(t, "Appointment") != n+1 {
			t.Fatalf("distinct times: statuses %v, %d stored; want all %d", got, c.count(t, "Appointment"), n)
		}
	})
}

// TestDoubleBookingLegacy: appointments that overlapped before the rule
// (written here straight into the store) can still be checked in or
// shortened, since that takes no new time; moving one later is checked.
func TestDoubleBookingLegacy(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		pat := c.create(t, "Patient", patientJane)
		prac := c.create(t, "Practitioner", `{"resourceType":"Practitioner","name":[{"family":"Lee"}]}`)
		c.do("POST", "/Appointment", appt("booked", pat, prac, day+"10:00:00Z", day+"10:30:00Z")).want(t, 201)
		legacy := appt("booked", pat, prac, day+"10:15:00Z", day+"10:45:00Z")
		legacy["id"], legacy["meta"] = "legacy-1", map[string]any{"versionId": "1", "lastUpdated": "2031-01-01T00:00:00.000Z"}
		data, _ := json.Marshal(legacy)
		err := c.store.Update(t.Context(), func(tx hale.Tx) error {
			return tx.Put(t.Context(), &hale.Version{Type: "Appointment", ID: "legacy-1", VersionID: 1, Method: "PUT",
				LastUpdated: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), Data: data}, c.svc.Params.Extract("Appointment", legacy))
		})
		if err != nil {
			t.Fatal(err)
		}
		a := c.do("GET", "/Appointment/legacy-1", nil).want(t, 200).body
		a["status"] = "checked-in"
		c.do("PUT", "/Appointment/legacy-1", a).want(t, 200)
		a = c.do("GET", "/Appointment/legacy-1", nil).want(t, 200).body
		a["end"] = day + "10:40:00Z"
		c.do("PUT", "/Appointment/legacy-1", a).want(t, 200)
		a = c.do("GET", "/Appointment/legacy-1", nil).want(t, 200).body
		a["start"] = day + "10:05:00Z" // earlier: new time, taken
		c.do("PUT", "/Appointment/legacy-1", a).want(t, 409)
	})
}
