package rest_test

import (
	"net/url"
	"sync"
	"testing"
)

func TestConditionalCreate(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		cond := "If-None-Exist: identifier=http://example.org/mrn|MRN-1"
		r1 := c.do("POST", "/Patient", patientJane, cond).want(t, 201)
		r2 := c.do("POST", "/Patient", patientJane, cond).want(t, 200)
		if r1.body["id"] != r2.body["id"] {
			t.Errorf("conditional create made a second resource")
		}
		c.do("POST", "/Patient", patientJane) // a second MRN-1, unconditionally
		c.do("POST", "/Patient", patientJane, cond).want(t, 412).outcome(t)
		c.do("POST", "/Patient", patientJane, "If-None-Exist: unknownparam=1").want(t, 400).outcome(t)
		c.do("POST", "/Patient", patientJane, "If-None-Exist: family=doe&gender=female").want(t, 412)
		c.do("POST", "/Patient", patientJane, "If-None-Exist: _id="+str(r1.body["id"])).want(t, 200)
		if n := c.count(t, "Patient"); n != 2 {
			t.Errorf("%d patients, want 2", n)
		}
	})
}

// TestConditionalCreateConcurrent: 32 parallel identical conditional
// creates leave exactly one resource.
func TestConditionalCreateConcurrent(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		var wg sync.WaitGroup
		codes := make(chan int, 32)
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := c.do("POST", "/Patient", patientJane, "If-None-Exist: identifier=http://example.org/mrn|MRN-1")
				codes <- r.status
			}()
		}
		wg.Wait()
		close(codes)
		created := 0
		for code := range codes {
			switch code {
			case 201:
				created++
			case 200:
			default:
				t.Errorf("status %d", code)
			}
		}
		if created != 1 || c.count(t, "Patient") != 1 {
			t.Errorf("created %d, stored %d; want exactly one", created, c.count(t, "Patient"))
		}
	})
}

func TestConditionalUpdate(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		q := "/Patient?identifier=" + url.QueryEscape("http://example.org/mrn|MRN-1")
		r := c.do("PUT", q, patientJane).want(t, 201) // no match: create
		id := str(r.body["id"])
		r = c.do("PUT", q, patientJane).want(t, 200) // one match: update it
		if r.body["id"] != id || get(r.body, "meta", "versionId") != "2" {
			t.Errorf("conditional update: %s", r.raw)
		}
		withOtherID := `{"resourceType":"Patient","id":"other","identifier":[{"system":"http://example.org/mrn","value":"MRN-1"}]}`
		c.do("PUT", q, withOtherID).want(t, 400).outcome(t)
		c.create(t, "Patient", patientJane)
		c.do("PUT", q, patientJane).want(t, 412).outcome(t)
		c.do("PUT", "/Patient?bogus=1", patientJane).want(t, 400)
	})
}

func TestConditionalDelete(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		q := "/Patient?identifier=" + url.QueryEscape("http://example.org/mrn|MRN-1")
		c.do("DELETE", q, nil).want(t, 204) // nothing matches
		id := c.create(t, "Patient", patientJane)
		c.do("DELETE", q, nil).want(t, 204)
		c.do("GET", "/Patient/"+id, nil).want(t, 410)
		c.create(t, "Patient", patientJane)
		c.create(t, "Patient", patientJane)
		c.do("DELETE", q, nil).want(t, 412).outcome(t)
		if n := c.count(t, "Patient"); n != 2 {
			t.Errorf("a refused conditional delete deleted something: %d left", n)
		}
	})
}

func TestSearchBasic(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		id := c.create(t, "Patient", patientJane)
		c.create(t, "Patient", `{"resourceType":"Patient","name":[{"family":"Müller"}],"gender":"male"}`)
		for _, tc := range []struct {
			query string
			want  int
		}{
			{"", 2},
			{"?_id=" + id, 1},
			{"?family=doe", 1},
			{"?family=MULLER", 1}, // accent- and case-insensitive
			{"?family:exact=Doe", 1},
			{"?family:exact=doe", 0},
			{"?family:contains=ll", 1},
			{"?gender=male,female", 2},
			{"?gender=female&family=mu", 0},
			{"?identifier=http://example.org/mrn|MRN-1", 1},
			{"?identifier=|MRN-1", 0},
			{"?identifier=http://example.org/mrn|", 1},
		} {
			r := c.do("GET", "/Patient"+tc.query, nil).want(t, 200)
			if got := int(r.body["total"].(float64)); got != tc.want {
				t.Errorf("%s: total %d, want %d", tc.query, got, tc.want)
			}
		}
		r := c.do("GET", "/Patient?unknown=1", nil).want(t, 200)
		if last := entries(r)[len(entries(r))-1]; get(last, "search", "mode") != "outcome" {
			t.Errorf("ignored parameter not reported: %s", r.raw)
		}
		c.do("GET", "/Patient?unknown=1", nil, "Prefer: handling=strict").want(t, 400)
		c.do("POST", "/Patient/_search", "family=doe", "Content-Type: application/x-www-form-urlencoded").want(t, 200)
	})
}
