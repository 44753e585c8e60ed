package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
)

// Home (recently viewed patients) and patient search.

// patientRow is a patient in a list.
type patientRow struct {
	ID, Name, Sex, BirthDate, Age, MRN, Phone, City string
}

func (a *App) patientRow(p resource) patientRow {
	return patientRow{
		ID: str(p, "id"), Name: humanName(p), Sex: sexLabel(str(p, "gender")),
		BirthDate: str(p, "birthDate"), Age: age(str(p, "birthDate"), a.now().In(a.loc)),
		MRN: mrn(p), Phone: phone(p), City: str(p, "address", "0", "city"),
	}
}

// recentKind is the record kind of a user's recently viewed patients:
// key the user's Principal.Subject, data a JSON array of patient ids,
// newest first. Only ids are kept; names are read through the FHIR core
// when shown, so a patient the user may no longer see disappears.
const recentKind = "web-recent"

const recentMax = 10

func (a *App) recentIDs(ctx context.Context, u *user) ([]string, *hale.Record) {
	if a.rec == nil {
		return nil, nil
	}
	r, err := a.rec.GetRecord(ctx, recentKind, u.Subject)
	if err != nil {
		return nil, nil
	}
	var ids []string
	json.Unmarshal(r.Data, &ids)
	return ids, r
}

// noteRecent puts patient first in the user's recent list. Losing a race
// with another tab is harmless: that tab's write stands.
func (a *App) noteRecent(ctx context.Context, u *user, patient string) {
	if a.rec == nil {
		return
	}
	ids, r := a.recentIDs(ctx, u)
	if len(ids) > 0 && ids[0] == patient {
		return
	}
	ids = slices.DeleteFunc(ids, func(s string) bool { return s == patient })
	ids = append([]string{patient}, ids...)
	if len(ids) > recentMax {
		ids = ids[:recentMax]
	}
	data, _ := json.Marshal(ids)
	nr := &hale.Record{Kind: recentKind, Key: u.Subject, Data: data}
	if r != nil {
		nr.Version = r.Version
	}
	if err := a.rec.PutRecord(ctx, nr); err != nil && !hale.IsKind(err, hale.KindConflict) {
		a.log.Warn("web: recent patients not saved", "err", err)
	}
}

type homeView struct {
	Recent    []patientRow
	Today     []apptRow
	HasToday  bool
	Inbox     *inboxView
	CanReview bool
}

func (a *App) serveHome(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	v := &homeView{}
	if ids, _ := a.recentIDs(ctx, u); len(ids) > 0 {
		b, err := a.search(ctx, "Patient", url.Values{"_id": {strings.Join(ids, ",")}, "_count": {"20"}})
		if err != nil {
			a.errorPage(w, r, u, 0, "", err)
			return
		}
		byID := map[string]resource{}
		for _, p := range b.Matches {
			byID[str(p, "id")] = p
		}
		for _, id := range ids {
			if p, ok := byID[id]; ok {
				v.Recent = append(v.Recent, a.patientRow(p))
			}
		}
	}
	if strings.HasPrefix(u.FHIRUser, "Practitioner/") {
		v.HasToday = true
		day := a.now().In(a.loc).Format(dateFmt)
		b, err := a.search(ctx, "Appointment", url.Values{"actor": {u.FHIRUser}, "date": {day}, "_sort": {"date"}, "_count": {"50"},
			"_include": {"Appointment:patient"}})
		if err == nil {
			v.Today = a.apptRows(b.Matches, b.Included)
		}
		in, err := a.inbox(ctx, u)
		if err != nil {
			a.errorPage(w, r, u, 0, "", err)
			return
		}
		v.Inbox, v.CanReview = in, u.can("Task", 'c')
	}
	a.render(w, r, u, "home", &page{Title: "Home", Nav: "home", Flash: flash(r)}, v)
}

type searchView struct {
	Name, BirthDate, Identifier, Phone string
	Searched                           bool
	Error                              string
	Results                            []patientRow
	More                               bool
}

var (
	usDate    = regexp.MustCompile(`^(\d{1,2})/(\d{1,2})/(\d{4})$`)
	isoDate   = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	hasDigit  = regexp.MustCompile(`\d`)
	onlyDigit = regexp.MustCompile(`\D`)
)

// serveSearch finds patients by name, birth date, identifier (MRN or
// any other) and phone; the criteria given must all match.
func (a *App) serveSearch(w http.ResponseWriter, r *http.Request, u *user) {
	ctx, cancel := deadline(r.Context())
	defer cancel()
	q := r.URL.Query()
	v := &searchView{Name: strings.TrimSpace(q.Get("name")), BirthDate: strings.TrimSpace(q.Get("birthdate")),
		Identifier: strings.TrimSpace(q.Get("identifier")), Phone: strings.TrimSpace(q.Get("phone"))}
	// The header's quick search: digits are an identifier, else a name.
	if quick := strings.TrimSpace(q.Get("q")); quick != "" {
		if hasDigit.MatchString(quick) && !strings.Contains(quick, " ") {
			v.Identifier = quick
		} else {
			v.Name = quick
		}
	}
	fq := url.Values{"_count": {"50"}, "_sort": {"family,given"}}
	if v.Name != "" {
		// Each word must match a part of the name (given or family).
		for _, w := range strings.Fields(strings.ReplaceAll(v.Name, ",", " ")) {
			fq.Add("name", w)
		}
	}
	if v.BirthDate != "" {
		d := v.BirthDate
		if m := usDate.FindStringSubmatch(d); m != nil {
			d = m[3] + "-" + pad2(m[1]) + "-" + pad2(m[2])
		}
		if _, err := time.Parse(dateFmt, d); err != nil || !isoDate.MatchString(d) {
			v.Error = "Birth date must be a date such as 1980-04-23 (or 04/23/1980)."
		}
		fq.Set("birthdate", d)
	}
	if v.Identifier != "" {
		fq.Set("identifier", v.Identifier)
	}
	if v.Phone != "" {
		// Numbers are stored as written; try the typed form and the
		// usual US forms of its digits.
		alts := []string{v.Phone}
		if d := onlyDigit.ReplaceAllString(v.Phone, ""); len(d) == 10 {
			alts = append(alts, d, d[:3]+"-"+d[3:6]+"-"+d[6:], "("+d[:3]+") "+d[3:6]+"-"+d[6:])
		}
		fq.Set("phone", strings.Join(slices.Compact(alts), ","))
	}
	if len(fq) > 2 && v.Error == "" {
		v.Searched = true
		b, err := a.search(ctx, "Patient", fq)
		if err != nil {
			v.Error = a.userMessage(err)
		} else {
			for _, p := range b.Matches {
				v.Results = append(v.Results, a.patientRow(p))
			}
			v.More = b.Next != ""
		}
	}
	a.render(w, r, u, "search", &page{Title: "Find a patient", Nav: "search"}, v)
}

func pad2(s string) string {
	if len(s) == 1 {
		return "0" + s
	}
	return s
}
