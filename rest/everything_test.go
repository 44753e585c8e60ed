package rest_test

import (
	"sort"
	"strings"
	"testing"
)

func TestEverything(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		seedSearch(t, c)
		r := c.do("GET", "/Patient/p1/$everything", nil).want(t, 200)
		match, inc := ids(r, "match"), ids(r, "include")
		sort.Strings(match)
		sort.Strings(inc)
		if strings.Join(match, ",") != "Observation/o0,Observation/o1,Observation/o2,Patient/p1" || strings.Join(inc, ",") != "Organization/acme,Practitioner/smith" {
			t.Errorf("$everything: match %v include %v", match, inc)
		}
		if r.body["total"] != float64(4) {
			t.Errorf("total %v", r.body["total"])
		}
		// Paged, the total is given when asked for, not otherwise (it
		// costs a second query).
		if r := c.do("GET", "/Patient/p1/$everything?_count=2", nil).want(t, 200); r.body["total"] != nil {
			t.Errorf("paged without _total: total %v", r.body["total"])
		}
		if r := c.do("GET", "/Patient/p1/$everything?_count=2&_total=accurate", nil).want(t, 200); r.body["total"] != float64(4) {
			t.Errorf("paged with _total=accurate: total %v, want 4", r.body["total"])
		}
		r = c.do("GET", "/Patient/p1/$everything?_type=Observation", nil).want(t, 200)
		if got := ids(r, "match"); len(got) != 3 || got[0][:12] != "Observation/" {
			t.Errorf("_type: %v", got)
		}
		// Paging: every resource once across pages.
		var all []string
		next := "/Patient/p1/$everything?_count=2"
		for page := 0; next != ""; page++ {
			r := c.do("GET", next, nil).want(t, 200)
			all = append(all, ids(r, "match")...)
			next = ""
			for _, l := range get(r.body, "link").([]any) {
				if get(l, "relation") == "next" {
					next = strings.TrimPrefix(str(get(l, "url")), c.base)
				}
			}
			if page > 5 {
				t.Fatal("paging does not end")
			}
		}
		if len(all) != 4 {
			t.Errorf("paged $everything: %v", all)
		}
		r = c.do("GET", "/Patient/p1/$everything?_since=2999-01-01T00:00:00Z", nil).want(t, 200)
		if len(entries(r)) != 0 {
			t.Errorf("_since in the future: %v", ids(r, "match"))
		}
		c.do("GET", "/Patient/nope/$everything", nil).want(t, 404).outcome(t)
		c.do("GET", "/Patient/p1/$everything?_since=yesterday", nil).want(t, 400).outcome(t)
		c.do("GET", "/Observation/o1/$everything", nil).want(t, 404)
	})
}
