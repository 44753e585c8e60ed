package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/search"
)

// Appointments: a day and a week calendar per provider; book,
// reschedule, cancel, check in (Appointment,
// https://hl7.org/fhir/R4/appointment.html).
//
// No double booking: a provider's appointments may not overlap. The
// FHIR core enforces it for every write of an Appointment, from this app
// or through the API (rest/booking.go: a per-practitioner transaction
// lock, then a search of the practitioner's appointments in the write's
// transaction), so the app writes the appointment and, when the core
// refuses it (rest.DoubleBooking), says with whom the time is taken, if
// the user may see that appointment (TestDoubleBooking).

// activeAppointment are the statuses in which an appointment can still
// be rescheduled or cancelled from the calendar.
var activeAppointment = []string{"proposed", "pending", "booked", "arrived", "checked-in", "waitlist"}

var durations = []int{10, 15, 20, 30, 45, 60, 90, 120}

type calAppt struct {
	ID, Version, Time, End, Date, Patient, PatientID, Description, Status string
	Minutes                                                               int
	Active, CanCheckIn                                                    bool
}

type calDay struct {
	Date, Label string
	Today       bool
	Appts       []calAppt
	Hours       []calHour // day view
}

type calHour struct {
	Label string
	Appts []calAppt
}

type pracOption struct{ Ref, Name string }

type bookForm struct {
	Patient, Date, Time, Minutes, Description string
}

type scheduleView struct {
	View, Date, Practitioner, PractitionerName string
	Prev, Next, Today, Other                   string // links
	Days                                       []calDay
	Practitioners                              []pracOption
	Patients                                   []patientRow
	Form                                       bookForm
	Errors                                     map[string]string
	Error                                      string
	Durations                                  []int
	CanBook, CanEdit                           bool
}

func (a *App) scheduleURL(prac, date, view string, extra ...string) string {
	q := url.Values{"practitioner": {prac}, "date": {date}, "view": {view}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return Prefix + "/schedule?" + q.Encode()
}

func (a *App) serveSchedule(w http.ResponseWriter, r *http.Request, u *user) {
	q := r.URL.Query()
	v := &scheduleView{Form: bookForm{Patient: q.Get("patient"), Minutes: "20", Date: q.Get("date")}}
	a.schedulePage(w, r, u, v, http.StatusOK)
}

// schedulePage draws the calendar of v (or the request's) provider for
// the day or the week of the date.
func (a *App) schedulePage(w http.ResponseWriter, r *http.Request, u *user, v *scheduleView, status int) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		q = r.PostForm
	}
	v.View = q.Get("view")
	if v.View != "week" {
		v.View = "day"
	}
	v.Practitioner = q.Get("practitioner")
	if v.Practitioner == "" && strings.HasPrefix(u.FHIRUser, "Practitioner/") {
		v.Practitioner = u.FHIRUser
	}
	now := a.now().In(a.loc)
	day, err := time.ParseInLocation(dateFmt, q.Get("date"), a.loc)
	if err != nil {
		day = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, a.loc)
	}
	v.Date = day.Format(dateFmt)
	if v.Form.Date == "" {
		v.Form.Date = v.Date
	}
	from, days := day, 1
	if v.View == "week" {
		from = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7)) // Monday
		days = 7
	}
	to := from.AddDate(0, 0, days)
	var pracs, appts, recent *bundle
	tasks := []func() error{
		func() (err error) {
			pracs, err = a.search(ctx, "Practitioner", url.Values{"_count": {"200"}, "_sort": {"family"}})
			return err
		},
		func() error {
			ids, _ := a.recentIDs(ctx, u)
			if p := v.Form.Patient; p != "" && search.ValidID(p) && !slices.Contains(ids, p) {
				ids = append([]string{p}, ids...)
			}
			if len(ids) == 0 {
				recent = &bundle{}
				return nil
			}
			var err error
			recent, err = a.search(ctx, "Patient", url.Values{"_id": {strings.Join(ids, ",")}, "_count": {"20"}})
			return err
		},
	}
	if _, pid, ok := search.ParseLocalReference(v.Practitioner); ok && search.ValidID(pid) {
		tasks = append(tasks, func() (err error) {
			appts, err = a.search(ctx, "Appointment", url.Values{"actor": {v.Practitioner},
				"date":  {"ge" + from.UTC().Format(time.RFC3339), "lt" + to.UTC().Format(time.RFC3339)},
				"_sort": {"date"}, "_count": {"500"}, "_include": {"Appointment:patient"}})
			return err
		})
	} else {
		v.Practitioner = ""
	}
	if err := parallel(tasks...); err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	for _, p := range pracs.Matches {
		ref := "Practitioner/" + str(p, "id")
		v.Practitioners = append(v.Practitioners, pracOption{Ref: ref, Name: practitionerName(p)})
		if ref == v.Practitioner {
			v.PractitionerName = practitionerName(p)
		}
	}
	for _, p := range recent.Matches {
		v.Patients = append(v.Patients, a.patientRow(p))
	}
	v.CanBook, v.CanEdit = u.can("Appointment", 'c'), u.can("Appointment", 'u')
	names := map[string]string{}
	if appts != nil {
		for _, inc := range appts.Included {
			names["Patient/"+str(inc, "id")] = humanName(inc)
		}
	}
	for i := 0; i < days; i++ {
		d := from.AddDate(0, 0, i)
		cd := calDay{Date: d.Format(dateFmt), Label: d.Format("Mon 2 Jan"), Today: d.Format(dateFmt) == now.Format(dateFmt)}
		if appts != nil {
			for _, ap := range appts.Matches {
				st, ok := fhirTime(str(ap, "start"))
				if !ok || st.In(a.loc).Format(dateFmt) != cd.Date {
					continue
				}
				cd.Appts = append(cd.Appts, a.calAppt(ap, names, now))
			}
		}
		if v.View == "day" {
			for h := 7; h < 20; h++ {
				hr := calHour{Label: strconv.Itoa(h) + ":00"}
				for _, ap := range cd.Appts {
					if hh, _ := strconv.Atoi(strings.Split(ap.Time, ":")[0]); hh == h || h == 7 && hh < 7 || h == 19 && hh > 19 {
						hr.Appts = append(hr.Appts, ap)
					}
				}
				cd.Hours = append(cd.Hours, hr)
			}
		}
		v.Days = append(v.Days, cd)
	}
	step := 1
	if v.View == "week" {
		step = 7
	}
	other := map[string]string{"day": "week", "week": "day"}[v.View]
	v.Prev = a.scheduleURL(v.Practitioner, day.AddDate(0, 0, -step).Format(dateFmt), v.View)
	v.Next = a.scheduleURL(v.Practitioner, day.AddDate(0, 0, step).Format(dateFmt), v.View)
	v.Today = a.scheduleURL(v.Practitioner, now.Format(dateFmt), v.View)
	v.Other = a.scheduleURL(v.Practitioner, v.Date, other)
	v.Durations = durations
	w.WriteHeader(status)
	a.render(w, r, u, "schedule", &page{Title: "Schedule", Nav: "schedule", Flash: flash(r)}, v)
}

func (a *App) calAppt(ap resource, names map[string]string, now time.Time) calAppt {
	c := calAppt{ID: str(ap, "id"), Version: str(ap, "meta", "versionId"), Description: str(ap, "description"), Status: str(ap, "status")}
	if c.Description == "" {
		c.Description = conceptText(get(ap, "serviceType", "0"))
	}
	st, _ := fhirTime(str(ap, "start"))
	en, ok := fhirTime(str(ap, "end"))
	c.Time, c.Date = st.In(a.loc).Format("15:04"), st.In(a.loc).Format(dateFmt)
	if ok {
		c.End = en.In(a.loc).Format("15:04")
		c.Minutes = int(en.Sub(st).Minutes())
	}
	for _, pt := range list(ap, "participant") {
		if id := refID(get(pt, "actor"), "Patient"); id != "" {
			c.PatientID, c.Patient = id, names["Patient/"+id]
			if c.Patient == "" {
				c.Patient = str(pt, "actor", "display")
			}
		}
	}
	c.Active = slices.Contains(activeAppointment, c.Status)
	c.CanCheckIn = c.Status == "booked" && c.Date == now.Format(dateFmt)
	return c
}

// errOverlap is a booking refused because the provider is busy.
type errOverlap struct{ with string }

func (e *errOverlap) Error() string { return e.with }

// slotFor reads and checks the time of a booking form.
func (a *App) slotFor(f url.Values, errs map[string]string) (start, end time.Time) {
	var err error
	start, err = time.ParseInLocation(dateFmt+" 15:04", f.Get("date")+" "+f.Get("time"), a.loc)
	if err != nil {
		errs["time"] = "Give the date and the time (e.g. 2025-03-14 and 09:30)."
		return
	}
	if start.Minute()%5 != 0 {
		errs["time"] = "Appointments start on a multiple of 5 minutes."
	}
	if start.Before(a.now().Add(-5 * time.Minute)) {
		errs["time"] = "The time is in the past."
	}
	m, err := strconv.Atoi(f.Get("minutes"))
	if err != nil || !slices.Contains(durations, m) {
		errs["minutes"] = "Choose a length."
		return
	}
	return start, start.Add(time.Duration(m) * time.Minute)
}

// book writes ap (new when it has no id, else a reschedule at version
// apVersion) for the provider prac. The core refuses an overlap with
// another appointment of the provider (rest.DoubleBooking); the refusal
// becomes an *errOverlap naming the other appointment's time and, when
// the user may see it, its patient.
func (a *App) book(ctx context.Context, prac string, ap resource, apVersion string) error {
	var err error
	if str(ap, "id") == "" {
		_, err = a.create(ctx, ap)
	} else {
		err = a.update(ctx, ap, apVersion)
	}
	var db *rest.DoubleBooking
	if !errors.As(err, &db) {
		return err
	}
	who := ""
	if near, serr := a.search(ctx, "Appointment", url.Values{"actor": {prac}, "date": {"eq" + db.Start.UTC().Format(time.RFC3339)},
		"_count": {"20"}, "_include": {"Appointment:patient"}}); serr == nil {
		for _, other := range near.Matches {
			if !rest.HoldsTime(str(other, "status")) || str(other, "id") == str(ap, "id") {
				continue
			}
			for _, pt := range list(other, "participant") {
				for _, inc := range near.Included {
					if str(pt, "actor", "reference") == "Patient/"+str(inc, "id") {
						who = " with " + humanName(inc)
					}
				}
			}
		}
	}
	start, end := db.Start.In(a.loc), db.End.In(a.loc)
	return &errOverlap{"The provider is already booked from " + start.Format("15:04") + " to " + end.Format("15:04") +
		" on " + start.Format(dateFmt) + who + ". Choose another time."}
}

func (a *App) postBooking(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	f := r.PostForm
	form := bookForm{Patient: f.Get("patient"), Date: f.Get("date"), Time: f.Get("time"), Minutes: f.Get("minutes"), Description: strings.TrimSpace(f.Get("description"))}
	prac := f.Get("practitioner")
	errs := map[string]string{}
	if t, pid, ok := search.ParseLocalReference(prac); !ok || t != "Practitioner" || !search.ValidID(pid) {
		errs["practitioner"] = "Choose the provider."
	}
	if !search.ValidID(form.Patient) {
		errs["patient"] = "Choose the patient (open their chart first to find them here)."
	}
	if form.Description == "" {
		errs["description"] = "Say what the visit is for (e.g. Follow-up: hypertension)."
	} else if len(form.Description) > 200 {
		errs["description"] = "The description is limited to 200 characters."
	}
	start, end := a.slotFor(f, errs)
	if len(errs) == 0 {
		// The patient must be one the user can see.
		if _, _, err := a.read(ctx, "Patient", form.Patient); err != nil {
			errs["patient"] = "No such patient, or you do not have access to them."
		}
	}
	if len(errs) > 0 {
		a.schedulePage(w, r, u, &scheduleView{Form: form, Errors: errs, Error: "The appointment was not booked: correct the fields marked below."}, http.StatusBadRequest)
		return
	}
	m, _ := strconv.Atoi(form.Minutes)
	ap := resource{
		"resourceType":    "Appointment",
		"status":          "booked",
		"description":     form.Description,
		"start":           start.UTC().Format(time.RFC3339),
		"end":             end.UTC().Format(time.RFC3339),
		"minutesDuration": m,
		"created":         a.now().UTC().Format(dateFmt),
		"participant": []any{
			map[string]any{"actor": map[string]any{"reference": "Patient/" + form.Patient}, "required": "required", "status": "accepted"},
			map[string]any{"actor": map[string]any{"reference": prac}, "required": "required", "status": "accepted",
				"type": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PPRF", "display": "primary performer"}}}}},
		},
	}
	if err := a.book(ctx, prac, ap, ""); err != nil {
		a.bookingFailed(w, r, u, &scheduleView{Form: form}, err)
		return
	}
	http.Redirect(w, r, a.scheduleURL(prac, start.In(a.loc).Format(dateFmt), r.PostForm.Get("view"), "saved", "booked"), http.StatusSeeOther)
}

func (a *App) bookingFailed(w http.ResponseWriter, r *http.Request, u *user, v *scheduleView, err error) {
	var ov *errOverlap
	if errors.As(err, &ov) {
		v.Error = ov.with
		a.schedulePage(w, r, u, v, http.StatusConflict)
		return
	}
	v.Error = a.userMessage(err)
	st, _ := a.describe(err)
	a.schedulePage(w, r, u, v, st)
}

// changeAppointment reads an appointment for a change from the calendar:
// it must have the provider the page showed, and be at the version shown.
func (a *App) changeAppointment(ctx context.Context, r *http.Request) (resource, string, string, error) {
	aid := r.PathValue("aid")
	if !search.ValidID(aid) {
		return nil, "", "", errNotFound
	}
	ap, version, err := a.read(ctx, "Appointment", aid)
	if err != nil {
		return nil, "", "", err
	}
	prac := r.PostForm.Get("practitioner")
	found := false
	for _, pt := range list(ap, "participant") {
		if str(pt, "actor", "reference") == prac {
			found = true
		}
	}
	if !found || prac == "" {
		return nil, "", "", errNotFound
	}
	if v := r.PostForm.Get("version"); v != version {
		return nil, "", "", errChanged
	}
	return ap, version, prac, nil
}

func (a *App) rescheduleAppointment(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	ap, version, prac, err := a.changeAppointment(ctx, r)
	if err != nil {
		a.errorPage(w, r, u, 0, "", err)
		return
	}
	if s := str(ap, "status"); s != "booked" && s != "pending" && s != "proposed" {
		a.errorPage(w, r, u, http.StatusConflict, "An appointment that is "+s+" cannot be rescheduled.")
		return
	}
	errs := map[string]string{}
	start, end := a.slotFor(r.PostForm, errs)
	if len(errs) > 0 {
		msg := ""
		for _, m := range errs {
			msg = m
		}
		a.schedulePage(w, r, u, &scheduleView{Error: "Not rescheduled: " + msg}, http.StatusBadRequest)
		return
	}
	ap["start"], ap["end"] = start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339)
	ap["minutesDuration"] = int(end.Sub(start).Minutes())
	if err := a.book(ctx, prac, ap, version); err != nil {
		a.bookingFailed(w, r, u, &scheduleView{}, err)
		return
	}
	http.Redirect(w, r, a.scheduleURL(prac, start.In(a.loc).Format(dateFmt), r.PostForm.Get("view"), "saved", "rescheduled"), http.StatusSeeOther)
}

// setAppointmentStatus cancels or checks in (no overlap can arise, so no
// Schedule lock; If-Match on the appointment).
func (a *App) setAppointmentStatus(to string) handler {
	return func(w http.ResponseWriter, r *http.Request, u *user) {
		ctx, cancel := deadline(r.Context())
		defer cancel()
		ap, version, prac, err := a.changeAppointment(ctx, r)
		if err != nil {
			a.errorPage(w, r, u, 0, "", err)
			return
		}
		from := str(ap, "status")
		switch {
		case to == "cancelled" && !slices.Contains([]string{"proposed", "pending", "booked", "waitlist"}, from),
			to == "checked-in" && from != "booked":
			a.errorPage(w, r, u, http.StatusConflict, "An appointment that is "+from+" cannot be "+map[string]string{"cancelled": "cancelled", "checked-in": "checked in"}[to]+".")
			return
		}
		ap["status"] = to
		if to == "cancelled" {
			reason := strings.TrimSpace(r.PostForm.Get("reason"))
			if reason == "" {
				reason = "Cancelled"
			}
			if len(reason) > 200 {
				reason = reason[:200]
			}
			ap["cancelationReason"] = map[string]any{"text": reason}
		}
		if err := a.update(ctx, ap, version); err != nil {
			a.errorPage(w, r, u, 0, "", err)
			return
		}
		st, _ := fhirTime(str(ap, "start"))
		http.Redirect(w, r, a.scheduleURL(prac, st.In(a.loc).Format(dateFmt), r.PostForm.Get("view"), "saved", to), http.StatusSeeOther)
	}
}
