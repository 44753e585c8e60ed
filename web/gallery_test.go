package web

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hale-ehr/hale/demo"
	"github.com/hale-ehr/hale/sqlite"
)

// galleryScreens are the screens Gallery draws, in order.
var galleryScreens = []string{
	"01-sign-in", "02-one-time-code", "03-search", "04-search-results", "05-summary", "06-vitals", "08-problems", "10-allergies", "12-visits",
	"07-vitals-errors", "09-problems-errors", "11-allergies-errors", "13-home", "14-not-found", "15-medications", "16-prescribe-interaction",
	"17-prescribe-errors", "18-notes", "19-note-draft", "20-note-signed", "21-notes-list", "22-orders", "23-orders-errors", "24-schedule-day",
	"25-schedule-double-booking", "26-schedule-week", "27-register", "28-register-duplicate", "29-demographics", "30-demographics-conflict",
	"31-demographics-errors", "32-immunizations", "33-immunizations-errors", "34-procedures", "35-procedures-errors", "36-family-social-history",
	"37-family-history-errors", "38-documents", "39-documents-errors", "40-labs",
}

// runGallery runs Gallery on a fresh SQLite store with the demo
// patients.
func runGallery(t *testing.T, dir, chromium string) []string {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gallery.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bundles, err := demo.Bundles()
	if err != nil {
		t.Fatal(err)
	}
	var data [][]byte
	for _, b := range bundles {
		data = append(data, b.Data)
	}
	files, err := Gallery(context.Background(), GalleryOptions{Store: st, Bundles: data, Dir: dir, Chromium: chromium})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestGalleryPages: every screen is drawn, each shows what it is for
// (the new screens checked by their content), and none is an error page
// it should not be.
func TestGalleryPages(t *testing.T) {
	dir := t.TempDir()
	files := runGallery(t, dir, "")
	if len(files) != len(galleryScreens) {
		t.Fatalf("%d screens, want %d", len(files), len(galleryScreens))
	}
	for i, f := range files {
		if filepath.Base(f) != galleryScreens[i]+".html" {
			t.Errorf("screen %d is %s, want %s.html", i, filepath.Base(f), galleryScreens[i])
		}
	}
	want := map[string][]string{
		"13-home":                    {"Potassium", "Call the patient about the potassium result", "refill of my lisinopril"},
		"29-demographics":            {"Save demographics", "Kihn", "Social Security Number", "•••-••-"},
		"30-demographics-conflict":   {"Someone else saved this patient", "Kihn-Becker", "617-555-0177"},
		"31-demographics-errors":     {"The changes were not saved", "not plausible", "Five digits"},
		"32-immunizations":           {"Influenza, injectable, quadrivalent, preservative free", "FL2025-118", "Patient objection"},
		"33-immunizations-errors":    {"CVX code is 1 to 3 digits", "cannot be in the future", "reason it was not given"},
		"34-procedures":              {"Appendectomy", "1994-07", "Patient declined"},
		"35-procedures-errors":       {"6 to 18 digits", "Name the procedure", "a month (2015-06)"},
		"36-family-social-history":   {"Mother", "Myocardial infarction", "ICD-10-CM I21.9", "Ex-smoker"},
		"37-family-history-errors":   {"Choose the relative", "Name the condition", "0 to 120"},
		"38-documents":               {"discharge-summary-2024.pdf", "knee-xray.png", "Consent to treatment", "Revoked"},
		"39-documents-errors":        {"only PDF, PNG and JPEG"},
		"25-schedule-double-booking": {"already booked from 09:00 to 09:30"},
	}
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		page := string(b)
		name := galleryScreens[i]
		if strings.Contains(page, "Something went wrong") || (strings.Contains(page, "error-message") && name != "14-not-found") {
			t.Errorf("%s is an error page", name)
		}
		if !strings.Contains(page, `href="static/app.css`) {
			t.Errorf("%s does not use the copied stylesheet", name)
		}
		for _, w := range want[name] {
			if !strings.Contains(page, w) {
				t.Errorf("%s does not show %q", name, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "static", "app.css")); err != nil {
		t.Errorf("static files not copied: %v", err)
	}
}
