package auth

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/hale-ehr/hale"
)

// The patient picker of a clinician's standalone launch ("launch/patient",
// SMART App Launch 2.x "Scopes and Launch Context") and the check of a
// launch's patient go through a PatientFinder, so that the access-control
// package decides which patients a user sees.

// PatientChoice is a patient as the picker shows it.
type PatientChoice struct {
	ID        string
	Name      string
	BirthDate string
	Gender    string
}

// PatientFinder finds patients as a user may see them.
type PatientFinder interface {
	// FindPatients returns up to limit patients p may see whose name
	// matches text (FHIR string search: starts a name part, case and
	// accents ignored).
	FindPatients(ctx context.Context, p *hale.Principal, text string, limit int) ([]PatientChoice, error)
	// Patient returns patient id if it exists and p may see it;
	// KindNotFound otherwise (the two look the same).
	Patient(ctx context.Context, p *hale.Principal, id string) (*PatientChoice, error)
}

// StorePatients is a PatientFinder over a store. With Scope set it runs
// on the store Scope returns for the user (the access-control package's
// store handle); without, every patient is visible to every user, which
// is only right for tests and single-clinician installations.
type StorePatients struct {
	Store hale.Store
	Scope func(ctx context.Context, base hale.Store, p *hale.Principal) (hale.Store, error)
	// Fold normalises search text as the index does (search.Fold);
	// default lower case.
	Fold func(string) string
}

func (sp StorePatients) store(ctx context.Context, p *hale.Principal) (hale.Store, error) {
	if sp.Scope == nil {
		return sp.Store, nil
	}
	return sp.Scope(ctx, sp.Store, p)
}

// FindPatients implements PatientFinder with a Patient?name= search.
func (sp StorePatients) FindPatients(ctx context.Context, p *hale.Principal, text string, limit int) ([]PatientChoice, error) {
	fold := sp.Fold
	if fold == nil {
		fold = func(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
	}
	text = fold(text)
	if text == "" {
		return nil, nil
	}
	st, err := sp.store(ctx, p)
	if err != nil {
		return nil, err
	}
	var out []PatientChoice
	err = st.View(ctx, func(r hale.Reader) error {
		sr, ok := r.(hale.Searcher)
		if !ok {
			return &hale.Error{Kind: hale.KindInternal, Op: "auth.FindPatients", Message: "the store cannot search"}
		}
		res, err := sr.Search(ctx, &hale.Query{Types: []string{"Patient"}, Count: limit,
			Where: []hale.Clause{{Param: "name", Type: hale.TypeString, Values: []hale.Value{{Code: text}}}}})
		if err != nil {
			return err
		}
		for _, v := range res.Versions {
			out = append(out, patientChoice(v))
		}
		return nil
	})
	return out, err
}

// Patient implements PatientFinder with a read.
func (sp StorePatients) Patient(ctx context.Context, p *hale.Principal, id string) (*PatientChoice, error) {
	notFound := &hale.Error{Kind: hale.KindNotFound, Op: "auth.Patient", Message: "no such patient"}
	if !fhirIDRE.MatchString(id) {
		return nil, notFound
	}
	st, err := sp.store(ctx, p)
	if err != nil {
		return nil, err
	}
	var out *PatientChoice
	err = st.View(ctx, func(r hale.Reader) error {
		v, err := r.Current(ctx, "Patient", id)
		if hale.IsKind(err, hale.KindNotFound) || hale.IsKind(err, hale.KindForbidden) || err == nil && v.Deleted {
			return notFound
		}
		if err != nil {
			return err
		}
		c := patientChoice(*v)
		out = &c
		return nil
	})
	return out, err
}

// patientChoice reads the few elements the picker shows.
func patientChoice(v hale.Version) PatientChoice {
	var pt struct {
		Name []struct {
			Text   string   `json:"text"`
			Family string   `json:"family"`
			Given  []string `json:"given"`
		} `json:"name"`
		BirthDate string `json:"birthDate"`
		Gender    string `json:"gender"`
	}
	json.Unmarshal(v.Data, &pt)
	c := PatientChoice{ID: v.ID, BirthDate: pt.BirthDate, Gender: pt.Gender}
	if len(pt.Name) > 0 {
		n := pt.Name[0]
		c.Name = n.Text
		if c.Name == "" {
			c.Name = strings.TrimSpace(strings.Join(n.Given, " ") + " " + n.Family)
		}
	}
	if c.Name == "" {
		c.Name = "Patient/" + v.ID
	}
	return c
}
