package rest_test

import (
	"net/url"
	"strings"
	"testing"
)

// seedContained stores resources that contain others (search.html#contained):
// mr1 contains med1 (code A) and med2 (code B, form tablet), mr2 contains
// m (code B, form capsule), o1 contains a Patient named Hidden, and
// Medication/top is a resource of its own with code A.
func seedContained(t *testing.T, c *client) {
	t.Helper()
	const rx = "http://www.nlm.nih.gov/research/umls/rxnorm"
	const form = "http://snomed.info/sct"
	c.do("PUT", "/Patient/p1", `{"resourceType":"Patient","id":"p1","name":[{"family":"Visible"}]}`).want(t, 201)
	c.do("PUT", "/Medication/top", `{"resourceType":"Medication","id":"top","code":{"coding":[{"system":"`+rx+`","code":"A"}]}}`).want(t, 201)
	c.do("PUT", "/MedicationRequest/mr1", `{"resourceType":"MedicationRequest","id":"mr1","contained":[`+
		`{"resourceType":"Medication","id":"med1","code":{"coding":[{"system":"`+rx+`","code":"A"}]}},`+
		`{"resourceType":"Medication","id":"med2","code":{"coding":[{"system":"`+rx+`","code":"B"}]},"form":{"coding":[{"system":"`+form+`","code":"tablet"}]}}],`+
		`"status":"active","intent":"order","medicationReference":{"reference":"#med1"},"subject":{"reference":"Patient/p1"},"supportingInformation":[{"reference":"#med2"}]}`).want(t, 201)
	c.do("PUT", "/MedicationRequest/mr2", `{"resourceType":"MedicationRequest","id":"mr2","contained":[`+
		`{"resourceType":"Medication","id":"m","code":{"coding":[{"system":"`+rx+`","code":"B"}]},"form":{"coding":[{"system":"`+form+`","code":"capsule"}]}}],`+
		`"status":"active","intent":"order","medicationReference":{"reference":"#m"},"subject":{"reference":"Patient/p1"}}`).want(t, 201)
	c.do("PUT", "/Observation/o1", `{"resourceType":"Observation","id":"o1","contained":[`+
		`{"resourceType":"Patient","id":"pat","name":[{"family":"Hidden"}]}],`+
		`"status":"final","code":{"text":"note"},"subject":{"reference":"#pat"}}`).want(t, 201)
}

// fullURLs lists the fullUrls of a searchset's matches, without the base.
func fullURLs(c *client, r *resp) []string {
	var out []string
	for _, e := range entries(r) {
		if get(e, "search", "mode") == "match" {
			out = append(out, strings.TrimPrefix(str(get(e, "fullUrl")), c.base+"/"))
		}
	}
	return out
}

func TestSearchContained(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		seedContained(t, c)
		for _, tc := range []struct {
			query string
			want  string // the matches' fullUrls
			total int64
		}{
			// _contained=false, the default: contained resources are not matched.
			{"Medication?code=A", "Medication/top", 1},
			{"Medication?code=A&_contained=false", "Medication/top", 1},
			{"Patient?name=hidden", "", 0},
			{"Patient?name=visible", "Patient/p1", 1},
			// true: the containers of the matching contained resources.
			{"Medication?code=A&_contained=true", "MedicationRequest/mr1", 1},
			{"Medication?code=B&_contained=true", "MedicationRequest/mr1,MedicationRequest/mr2", 2},
			{"Patient?name=hidden&_contained=true", "Observation/o1", 1},
			{"Medication?_contained=true", "MedicationRequest/mr1,MedicationRequest/mr2", 2},
			// Every condition holds on one contained resource: med1 is A,
			// med2 is a tablet, no contained Medication is both.
			{"Medication?code=A&form=tablet&_contained=true", "", 0},
			{"Medication?code=B&form=tablet&_contained=true", "MedicationRequest/mr1", 1},
			// both: the resources of the type too.
			{"Medication?code=A&_contained=both", "Medication/top,MedicationRequest/mr1", 2},
			// _containedType=contained: the contained resources themselves.
			{"Medication?code=A&_contained=true&_containedType=contained", "MedicationRequest/mr1#med1", 1},
			{"Medication?code=B&_contained=true&_containedType=contained", "MedicationRequest/mr1#med2,MedicationRequest/mr2#m", 2},
			{"Medication?code=B&form=capsule&_contained=true&_containedType=contained", "MedicationRequest/mr2#m", 1},
			{"Medication?_id=med2&_contained=true&_containedType=contained", "MedicationRequest/mr1#med2", 1},
			{"Medication?code=A&_contained=both&_containedType=contained", "Medication/top,MedicationRequest/mr1#med1", 2},
			{"Medication?form:missing=true&_contained=true&_containedType=contained", "MedicationRequest/mr1#med1", 1},
			{"Medication?code:not=A&_contained=true&_containedType=contained", "MedicationRequest/mr1#med2,MedicationRequest/mr2#m", 2},
			{"Patient?name=hidden&_contained=true&_containedType=contained", "Observation/o1#pat", 1},
		} {
			path, q, _ := strings.Cut(tc.query, "?")
			v, _ := url.ParseQuery(q)
			r := c.do("GET", "/"+path+"?"+v.Encode(), nil).want(t, 200)
			if got := strings.Join(fullURLs(c, r), ","); got != tc.want {
				t.Errorf("%s: got %q, want %q", tc.query, got, tc.want)
			}
			if got, _ := r.body["total"].(float64); int64(got) != tc.total {
				t.Errorf("%s: total %v, want %d", tc.query, r.body["total"], tc.total)
			}
		}

		// The entry of a contained resource holds the contained resource.
		r := c.do("GET", "/Medication?code=B&form=tablet&_contained=true&_containedType=contained", nil).want(t, 200)
		if got := strings.Join(ids(r, "match"), ","); got != "Medication/med2" {
			t.Errorf("contained entry: resource %s, want Medication/med2", got)
		}

		// Paging through contained resources follows the next links.
		var paged []string
		next := "/Medication?_contained=true&_containedType=contained&_count=1"
		for next != "" && len(paged) < 10 {
			r := c.do("GET", next, nil).want(t, 200)
			paged = append(paged, fullURLs(c, r)...)
			next = ""
			links, _ := r.body["link"].([]any)
			for _, l := range links {
				if get(l, "relation") == "next" {
					next = strings.TrimPrefix(str(get(l, "url")), c.base)
				}
			}
		}
		if got := strings.Join(paged, ","); got != "MedicationRequest/mr1#med1,MedicationRequest/mr1#med2,MedicationRequest/mr2#m" {
			t.Errorf("paged contained resources: %s", got)
		}

		// A count only.
		r = c.do("GET", "/Medication?code=B&_contained=true&_containedType=contained&_summary=count", nil).want(t, 200)
		if got, _ := r.body["total"].(float64); got != 2 {
			t.Errorf("_summary=count: total %v, want 2", r.body["total"])
		}

		// The rows go with the container: replaced on update, gone on delete.
		c.do("DELETE", "/MedicationRequest/mr1", nil).want(t, 204)
		c.do("PUT", "/MedicationRequest/mr2", `{"resourceType":"MedicationRequest","id":"mr2","status":"active","intent":"order",`+
			`"medicationCodeableConcept":{"text":"none"},"subject":{"reference":"Patient/p1"}}`).want(t, 200)
		r = c.do("GET", "/Medication?_contained=true", nil).want(t, 200)
		if got := fullURLs(c, r); len(got) != 0 {
			t.Errorf("after the delete and the update: %v", got)
		}

		// Malformed values are errors.
		c.do("GET", "/Medication?_contained=yes", nil).want(t, 400)
		c.do("GET", "/Medication?_contained=true&_containedType=inside", nil).want(t, 400)
	})
}
