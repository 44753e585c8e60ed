package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/rest"
)

// breakGlassAudit is what the break-the-glass endpoint tells the audit
// trail (audit.Recorder.BreakGlass).
type breakGlassAudit interface {
	BreakGlass(ctx context.Context, patientID, reason string, err error) error
}

// serveBreakGlass is POST /access/break-glass: a physician or nurse
// asks for emergency access to a patient outside their organizations
// and care teams (45 CFR 170.315(d)(6); docs/security.md, "Who may see
// what"). The form or JSON body gives patient (the Patient id), reason
// (required) and minutes (default 60, at most 240). The grant is kept in
// the database, every node honours it until it expires, every access
// under it is audited with purposeOfUse BTG, the request itself is
// audited as a security alert, and the patient's organization is told
// with a Communication addressed to it (its privacy officer's in-basket).
func (s *server) serveBreakGlass(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := hale.PrincipalFrom(ctx)
	var in struct {
		Patient string `json:"patient"`
		Reason  string `json:"reason"`
		Minutes int    `json:"minutes"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil {
			writeOutcome(w, http.StatusBadRequest, "invalid", "the body is not a JSON object with patient, reason and minutes")
			return
		}
	} else {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeOutcome(w, http.StatusBadRequest, "invalid", "the form cannot be read")
			return
		}
		in.Patient, in.Reason = r.PostForm.Get("patient"), r.PostForm.Get("reason")
		if m := r.PostForm.Get("minutes"); m != "" {
			n, err := strconv.Atoi(m)
			if err != nil {
				writeOutcome(w, http.StatusBadRequest, "invalid", "minutes must be a whole number")
				return
			}
			in.Minutes = n
		}
	}
	in.Patient = strings.TrimPrefix(in.Patient, "Patient/")
	if in.Patient == "" {
		writeOutcome(w, http.StatusBadRequest, "required", "patient is required")
		return
	}
	g, err := s.policy.BreakGlass(ctx, s.store, p, in.Patient, in.Reason, time.Duration(in.Minutes)*time.Minute)
	if s.btgAudit != nil {
		// The accesses made under the grant are audited one by one
		// (purposeOfUse BTG) whatever happens to this record of the
		// request itself; a failure to record it is logged.
		if aerr := s.btgAudit.BreakGlass(ctx, in.Patient, in.Reason, err); aerr != nil {
			s.log.Error("audit: recording break-the-glass", "err", aerr)
		}
	}
	if err != nil {
		issue := hale.ErrorIssues(err)[0]
		writeOutcome(w, rest.HTTPStatus(err), issue.Code, issue.Diagnostics)
		return
	}
	if err := s.notifyBreakGlass(ctx, p, g); err != nil {
		s.log.Error("break-the-glass: notifying the patient's organization", "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"patient": "Patient/" + g.Patient, "reason": g.Reason,
		"start": g.Start.Format(time.RFC3339), "expires": g.Expires.Format(time.RFC3339)})
}

// notifyBreakGlass writes a Communication to the patient's managing
// organization saying who broke the glass, why and until when. Hale
// writes it on its own account (the clinician may not be allowed to
// write to that organization).
func (s *server) notifyBreakGlass(ctx context.Context, p *hale.Principal, g hale.BreakGlass) error {
	var org string
	err := s.store.View(ctx, func(r hale.Reader) error {
		v, err := r.Current(ctx, "Patient", g.Patient)
		if err != nil {
			return err
		}
		var pat struct {
			ManagingOrganization struct{ Reference string } `json:"managingOrganization"`
		}
		if err := json.Unmarshal(v.Data, &pat); err != nil {
			return err
		}
		org = pat.ManagingOrganization.Reference
		return nil
	})
	if err != nil {
		return err
	}
	who := p.Name
	if who == "" {
		who = p.Subject
	}
	msg := fmt.Sprintf("Break-the-glass: %s (%s) opened the record of Patient/%s until %s. Reason: %s",
		who, p.Role, g.Patient, g.Expires.Format(time.RFC3339), g.Reason)
	c := map[string]any{
		"resourceType": "Communication",
		"status":       "completed",
		"priority":     "urgent",
		"category":     []any{map[string]any{"text": "break-the-glass notification"}},
		"subject":      map[string]any{"reference": "Patient/" + g.Patient},
		"sent":         g.Start.Format(time.RFC3339),
		"payload":      []any{map[string]any{"contentString": msg}},
	}
	if strings.HasPrefix(org, "Organization/") {
		c["recipient"] = []any{map[string]any{"reference": org}}
	}
	if strings.HasPrefix(p.FHIRUser, "Practitioner/") {
		c["sender"] = map[string]any{"reference": p.FHIRUser}
	}
	sys := hale.WithPrincipal(ctx, &hale.Principal{Subject: "system/hale", Name: "Hale", Role: hale.RoleSystem,
		Scopes: []string{"system/Communication.c"}, Address: p.Address})
	_, err = s.fhir.Do(sys, &rest.Request{Method: "POST", Type: "Communication", Resource: c, Return: rest.ReturnMinimal})
	return err
}
