package web

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"unicode"
)

// The prescribing check: a new prescription against the patient's active
// allergies and active medications, with the knowledge of
// drugknowledge.go. Every warning must be acknowledged before the
// prescription is saved; the acknowledgement is recorded as a
// DetectedIssue (with its mitigation) that the MedicationRequest names.

const systemRxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm"

// medWarning is one finding of the check.
type medWarning struct {
	Kind     string // allergy, interaction, duplicate
	Severity string // high, moderate (DetectedIssue.severity)
	Text     string // what the prescriber reads
	Source   string // where the fact comes from
	With     string // the implicated record: AllergyIntolerance/… or MedicationRequest/…
}

// issueCode is the v3 ActCode of a warning's kind (DetectedIssue.code).
func (w medWarning) issueCode() (code, display string) {
	switch w.Kind {
	case "allergy":
		return "ALGY", "Allergy Alert"
	case "interaction":
		return "DRG", "Drug Interaction Alert"
	}
	return "DUPTHPY", "Duplicate Therapy Alert"
}

var (
	byRxCUI = map[string]ingredient{}
	byName  []ingredient // longest names first, so "penicillin v" wins over a shorter one
)

func init() {
	add := func(c drugClass) {
		for _, i := range c.Members {
			if _, ok := byRxCUI[i.RxCUI]; !ok {
				byRxCUI[i.RxCUI] = i
				byName = append(byName, i)
			}
		}
	}
	for _, x := range interactions {
		add(x.Object)
		add(x.Precip)
	}
	for _, c := range allergyClasses {
		add(c.drugClass)
	}
	slices.SortFunc(byName, func(a, b ingredient) int { return len(b.Name) - len(a.Name) })
}

// words is s in lower case with every run of non-letters and non-digits
// made one space, padded, so that " name " finds whole words.
func words(s string) string {
	var b strings.Builder
	b.WriteByte(' ')
	space := true
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
			space = false
		} else if !space {
			b.WriteByte(' ')
			space = true
		}
	}
	if !space {
		b.WriteByte(' ')
	}
	return b.String()
}

// ingredientsOf is what the table knows of a medication
// (CodeableConcept): ingredients by RxNorm code and by name.
func ingredientsOf(cc any) []ingredient {
	var out []ingredient
	seen := map[string]bool{}
	addIng := func(i ingredient) {
		if !seen[i.Name] {
			seen[i.Name] = true
			out = append(out, i)
		}
	}
	var text []string
	text = append(text, str(cc, "text"))
	for _, c := range list(cc, "coding") {
		if str(c, "system") == systemRxNorm {
			if i, ok := byRxCUI[str(c, "code")]; ok {
				addIng(i)
			}
		}
		text = append(text, str(c, "display"))
	}
	w := words(strings.Join(text, " "))
	for _, i := range byName {
		if strings.Contains(w, " "+i.Name+" ") {
			addIng(i)
		}
	}
	return out
}

func inClass(c drugClass, i ingredient) bool {
	return slices.ContainsFunc(c.Members, func(m ingredient) bool { return m.Name == i.Name })
}

// activeMed is a current prescription the check compares against.
type activeMed struct {
	Ref, Name string
	Concept   any
}

// checkPrescription returns the warnings for prescribing the medication
// med (a CodeableConcept) to a patient with these active allergies and
// medications.
func (a *App) checkPrescription(med any, allergies []resource, meds []activeMed) []medWarning {
	var out []medWarning
	newIngs := ingredientsOf(med)
	medName := conceptText(med)
	medWords := words(medName)
	for _, al := range allergies {
		row := a.allergyRow(al)
		if !row.Active {
			continue
		}
		ref := "AllergyIntolerance/" + str(al, "id")
		subst := get(al, "code")
		alWords := words(conceptText(subst))
		alIngs := ingredientsOf(subst)
		var covered, related []string // class names the allergy covers
		for _, c := range allergyClasses {
			named := slices.ContainsFunc(c.Names, func(n string) bool { return strings.Contains(alWords, " "+n+" ") })
			member := slices.ContainsFunc(alIngs, func(i ingredient) bool { return inClass(c.drugClass, i) })
			if named || member {
				covered = append(covered, c.Name)
				related = append(related, c.Related...)
			}
		}
		what := row.Substance
		if row.Reaction != "" {
			what += " (" + row.Reaction + ")"
		}
		found := false
		for _, ni := range newIngs {
			if slices.ContainsFunc(alIngs, func(i ingredient) bool { return i.Name == ni.Name }) {
				out = append(out, medWarning{Kind: "allergy", Severity: "high", With: ref,
					Text: "Allergy recorded to " + what + ": " + medName + " contains " + ni.Name + ".", Source: "the patient's allergy list"})
				found = true
				break
			}
			for _, c := range allergyClasses {
				if !inClass(c.drugClass, ni) {
					continue
				}
				switch {
				case slices.Contains(covered, c.Name):
					out = append(out, medWarning{Kind: "allergy", Severity: "high", With: ref,
						Text: "Allergy recorded to " + what + ": " + ni.Name + " is one of the " + c.Name + ".", Source: "drug class table (docs/web.md)"})
					found = true
				case slices.Contains(related, c.Name):
					out = append(out, medWarning{Kind: "allergy", Severity: "moderate", With: ref,
						Text: "Allergy recorded to " + what + ": " + ni.Name + " is one of the " + c.Name + ", a class with known cross-reactivity.", Source: "drug class table (docs/web.md)"})
					found = true
				}
			}
			if found {
				break
			}
		}
		// A substance the table does not know, named in the drug's name.
		if !found && len(strings.TrimSpace(alWords)) >= 4 && strings.Contains(medWords, alWords) {
			out = append(out, medWarning{Kind: "allergy", Severity: "high", With: ref,
				Text: "Allergy recorded to " + what + ", which the name " + medName + " contains.", Source: "the patient's allergy list"})
		}
	}
	for _, m := range meds {
		otherIngs := ingredientsOf(m.Concept)
		dup := false
		for _, ni := range newIngs {
			if slices.ContainsFunc(otherIngs, func(i ingredient) bool { return i.Name == ni.Name }) {
				out = append(out, medWarning{Kind: "duplicate", Severity: "moderate", With: m.Ref,
					Text: "Already prescribed: " + m.Name + " (also " + ni.Name + ").", Source: "the patient's medication list"})
				dup = true
				break
			}
		}
		if !dup && len(newIngs) == 0 && len(otherIngs) == 0 && drugStem(m.Name) != "" && drugStem(m.Name) == drugStem(medName) {
			out = append(out, medWarning{Kind: "duplicate", Severity: "moderate", With: m.Ref,
				Text: "Already prescribed: " + m.Name + ".", Source: "the patient's medication list"})
		}
		for _, x := range interactions {
			for _, ni := range newIngs {
				for _, oi := range otherIngs {
					if ni.Name == oi.Name {
						continue
					}
					if inClass(x.Object, ni) && inClass(x.Precip, oi) || inClass(x.Object, oi) && inClass(x.Precip, ni) {
						out = append(out, medWarning{Kind: "interaction", Severity: "high", With: m.Ref,
							Text:   "Interaction with " + m.Name + ": " + ni.Name + " + " + oi.Name + ", " + x.Why + ".",
							Source: "ONC high-priority drug–drug interactions, pair " + itoa(x.ONCRow) + " (Phansalkar 2012)"})
						goto nextMed
					}
				}
			}
		}
	nextMed:
	}
	slices.SortStableFunc(out, func(a, b medWarning) int {
		if a.Severity != b.Severity {
			if a.Severity == "high" {
				return -1
			}
			return 1
		}
		return 0
	})
	return out
}

// drugStem is a drug name up to its first digit ("Loratadine 10 MG Oral
// Tablet" → "loratadine"): two prescriptions with the same stem are
// taken to be the same drug when the table knows neither.
func drugStem(name string) string {
	w := words(name)
	if i := strings.IndexFunc(w, unicode.IsDigit); i >= 0 {
		w = w[:i]
	}
	w = strings.TrimSpace(w)
	if len(w) < 4 {
		return ""
	}
	return w
}

// warningsKey is a fingerprint of a set of warnings: an acknowledgement
// holds only for the warnings the prescriber saw. If anything changed
// meanwhile (an allergy recorded in another tab), the page asks again.
func warningsKey(ws []medWarning) string {
	h := sha256.New()
	for _, w := range ws {
		h.Write([]byte(w.Kind + "\x00" + w.With + "\x00" + w.Text + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
