package rest_test

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// seedSearch stores a small world: two patients, an organization, a
// practitioner, and observations with dates, quantities and codes.
func seedSearch(t *testing.T, c *client) {
	t.Helper()
	c.do("PUT", "/Organization/acme", `{"resourceType":"Organization","id":"acme","name":"Acme Clinic"}`).want(t, 201)
	c.do("PUT", "/Practitioner/smith", `{"resourceType":"Practitioner","id":"smith","name":[{"family":"Smith"}]}`).want(t, 201)
	c.do("PUT", "/Patient/p1", `{"resourceType":"Patient","id":"p1","name":[{"family":"Alpha"}],"birthDate":"1970-05-01","managingOrganization":{"reference":"Organization/acme"},"generalPractitioner":[{"reference":"Practitioner/smith"}]}`).want(t, 201)
	c.do("PUT", "/Patient/p2", `{"resourceType":"Patient","id":"p2","name":[{"family":"Beta"}],"birthDate":"1990-01-01"}`).want(t, 201)
	for i, o := range []struct{ patient, code, date, value, unit string }{
		{"p1", "8867-4", "2020-01-10T10:00:00Z", "72", "/min"},
		{"p1", "8867-4", "2021-06-01T10:00:00Z", "90", "/min"},
		{"p1", "29463-7", "2021-06-01T10:00:00Z", "70000", "g"},
		{"p2", "8867-4", "2022-03-03T10:00:00Z", "60", "/min"},
		{"p2", "29463-7", "2022-03-03T10:00:00Z", "80", "kg"},
	} {
		body := fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final","code":{"coding":[{"system":"http://loinc.org","code":%q}]},"subject":{"reference":"Patient/%s"},"performer":[{"reference":"Practitioner/smith"}],"effectiveDateTime":%q,"valueQuantity":{"value":%s,"unit":%q,"system":"http://unitsofmeasure.org","code":%q}}`,
			i, o.code, o.patient, o.date, o.value, o.unit, o.unit)
		c.do("PUT", fmt.Sprintf("/Observation/o%d", i), body).want(t, 201)
	}
}

func ids(r *resp, mode string) []string {
	var out []string
	for _, e := range entries(r) {
		if get(e, "search", "mode") == mode {
			out = append(out, str(get(e, "resource", "resourceType"))+"/"+str(get(e, "resource", "id")))
		}
	}
	return out
}

func TestSearchTypes(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		seedSearch(t, c)
		for _, tc := range []struct {
			query string
			want  string
		}{
			{"Observation?code=http://loinc.org|8867-4&_sort=_id", "Observation/o0,Observation/o1,Observation/o3"},
			{"Observation?date=2021&_sort=_id", "Observation/o1,Observation/o2"},
			{"Observation?date=ge2021-06-01&_sort=_id", "Observation/o1,Observation/o2,Observation/o3,Observation/o4"},
			{"Observation?date=lt2021&_sort=_id", "Observation/o0"},
			{"Observation?value-quantity=gt75|http://unitsofmeasure.org|kg&_sort=_id", "Observation/o4"},
			{"Observation?value-quantity=70|http://unitsofmeasure.org|kg", "Observation/o2"}, // 70000 g
			{"Observation?value-quantity=lt80|http://unitsofmeasure.org|/min&_sort=_id", "Observation/o0,Observation/o3"},
			{"Patient?birthdate=lt1980", "Patient/p1"},
			{"Observation?subject:Patient.name=beta&_sort=_id", "Observation/o3,Observation/o4"},
			{"Observation?subject:Patient.organization.name=acme&_sort=_id", "Observation/o0,Observation/o1,Observation/o2"},
			{"Patient?_has:Observation:subject:code=29463-7&_sort=_id", "Patient/p1,Patient/p2"},
			{"Patient?_has:Observation:subject:value-quantity=gt85|http://unitsofmeasure.org|/min", "Patient/p1"},
			{"Observation?code-value-quantity=http://loinc.org|8867-4$gt80&_sort=_id", "Observation/o1"},
			{"Observation?code:missing=false&subject=Patient/p2&_sort=_id", "Observation/o3,Observation/o4"},
			{"Patient?general-practitioner:missing=true", "Patient/p2"},
			{"Observation?_sort=-date,_id&_count=2", "Observation/o3,Observation/o4"},
			{"Patient/p1/Observation?_sort=_id", "Observation/o0,Observation/o1,Observation/o2"},
		} {
			path, q, _ := strings.Cut(tc.query, "?")
			v, _ := url.ParseQuery(q)
			r := c.do("GET", "/"+path+"?"+v.Encode(), nil).want(t, 200)
			if got := strings.Join(ids(r, "match"), ","); got != tc.want {
				t.Errorf("%s: got %s, want %s", tc.query, got, tc.want)
			}
		}
	})
}

func TestSearchResultParams(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		seedSearch(t, c)
		r := c.do("GET", "/Observation?subject=Patient/p1&_include=Observation:subject&_include=Observation:performer&_sort=_id", nil).want(t, 200)
		if inc := strings.Join(ids(r, "include"), ","); inc != "Patient/p1,Practitioner/smith" {
			t.Errorf("_include: %s", inc)
		}
		r = c.do("GET", "/Patient?_id=p1&_revinclude=Observation:subject&_include:iterate=Patient:organization", nil).want(t, 200)
		if n := len(ids(r, "include")); n != 4 { // three observations and the organization
			t.Errorf("_revinclude: %v", ids(r, "include"))
		}
		r = c.do("GET", "/Observation?_include=Observation:subject&_revinclude:iterate=Observation:subject&_id=o0", nil).want(t, 200)
		if n := len(ids(r, "include")); n != 3 { // p1 and its two other observations
			t.Errorf("_include + _revinclude:iterate: %v", ids(r, "include"))
		}
		r = c.do("GET", "/Observation?_summary=count", nil).want(t, 200)
		if r.body["total"] != float64(5) || len(entries(r)) != 0 {
			t.Errorf("_summary=count: %s", r.raw)
		}
		r = c.do("GET", "/Patient?_id=p1&_elements=birthDate", nil).want(t, 200)
		res := get(entries(r)[0], "resource")
		if get(res, "birthDate") == nil || get(res, "name") != nil || get(res, "meta", "tag", 0, "code") != "SUBSETTED" {
			t.Errorf("_elements: %v", res)
		}
		r = c.do("GET", "/Patient?_id=p1&_summary=true", nil).want(t, 200)
		if res := get(entries(r)[0], "resource"); get(res, "name") == nil || get(res, "text") != nil {
			t.Errorf("_summary=true: %v", res)
		}
		r = c.do("GET", "/?_type=Patient,Organization&_sort=_id", nil).want(t, 200)
		if got := strings.Join(ids(r, "match"), ","); got != "Organization/acme,Patient/p1,Patient/p2" {
			t.Errorf("system search: %s", got)
		}
		r = c.do("GET", "/Patient/p1/*?_sort=_id", nil).want(t, 200)
		if n := len(ids(r, "match")); n != 3 { // its three observations
			t.Errorf("Patient/p1/*: %v", ids(r, "match"))
		}
		c.do("PUT", "/List/l1", `{"resourceType":"List","id":"l1","status":"current","mode":"working","entry":[{"item":{"reference":"Observation/o1"}},{"item":{"reference":"Patient/p2"}}]}`).want(t, 201)
		r = c.do("GET", "/Observation?_list=l1", nil).want(t, 200)
		if got := strings.Join(ids(r, "match"), ","); got != "Observation/o1" {
			t.Errorf("_list: %s", got)
		}
		r = c.do("GET", "/Observation?_text=heart", nil).want(t, 200)
		c.do("PUT", "/Patient/p3", `{"resourceType":"Patient","id":"p3","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">Allergic to <b>peanuts</b></div>"}}`).want(t, 201)
		r = c.do("GET", "/Patient?_text=PEANUT", nil).want(t, 200)
		if got := strings.Join(ids(r, "match"), ","); got != "Patient/p3" {
			t.Errorf("_text: %s", got)
		}
		r = c.do("GET", "/Patient?_content=alpha", nil).want(t, 200)
		if got := strings.Join(ids(r, "match"), ","); got != "Patient/p1" {
			t.Errorf("_content: %s", got)
		}
		c.do("GET", "/Observation?date=notadate", nil).want(t, 400).outcome(t)
		c.do("GET", "/Observation?_cursor=garbage", nil).want(t, 400).outcome(t)
	})
}

// TestSearchPaging: next links walk every match once, in order, even when
// new matches are written between pages.
func TestSearchPaging(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		for i := 0; i < 25; i++ {
			c.do("PUT", fmt.Sprintf("/Patient/p%02d", i), fmt.Sprintf(`{"resourceType":"Patient","id":"p%02d","gender":"female"}`, i)).want(t, 201)
		}
		var seen []string
		next := "/Patient?gender=female&_count=10&_sort=_id"
		for page := 0; next != ""; page++ {
			r := c.do("GET", next, nil).want(t, 200)
			seen = append(seen, ids(r, "match")...)
			next = ""
			for _, l := range get(r.body, "link").([]any) {
				if get(l, "relation") == "next" {
					next = strings.TrimPrefix(str(get(l, "url")), c.base)
				}
			}
			if page == 0 {
				c.do("PUT", "/Patient/p00a", `{"resourceType":"Patient","id":"p00a","gender":"female"}`).want(t, 201) // sorts into page 1
			}
			if page > 5 {
				t.Fatal("paging does not end")
			}
		}
		if len(seen) != 25 || seen[0] != "Patient/p00" || seen[24] != "Patient/p24" {
			t.Errorf("paged %d: %v", len(seen), seen)
		}
	})
}

// TestSearchPagingWriteOrder: without _sort, a type's resources come in
// the order they were created; the next links walk every resource once
// while others update resources already paged past and not yet reached
// (they keep their place) and create new ones (they come at the end).
func TestSearchPagingWriteOrder(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		var want []string
		for i := 0; i < 25; i++ {
			id := fmt.Sprintf("w%02d", (i*7)%25) // created out of id order
			c.do("PUT", "/Patient/"+id, fmt.Sprintf(`{"resourceType":"Patient","id":%q,"gender":"female"}`, id)).want(t, 201)
			want = append(want, "Patient/"+id)
		}
		var seen []string
		var first url.Values
		next := "/Patient?_count=10"
		for page := 0; next != ""; page++ {
			r := c.do("GET", next, nil).want(t, 200)
			seen = append(seen, ids(r, "match")...)
			// Every page has the total the first page counted.
			if r.body["total"] != float64(25) {
				t.Errorf("page %d: total %v, want 25", page, r.body["total"])
			}
			next = ""
			for _, l := range get(r.body, "link").([]any) {
				if get(l, "relation") == "next" {
					next = strings.TrimPrefix(str(get(l, "url")), c.base)
				}
			}
			if page == 0 {
				u, err := url.Parse(next)
				if err != nil {
					t.Fatal(err)
				}
				first = u.Query()
				for _, id := range []string{"w00", "w24"} { // read already, and not yet
					c.do("PUT", "/Patient/"+id, fmt.Sprintf(`{"resourceType":"Patient","id":%q,"gender":"male"}`, id)).want(t, 200)
				}
				c.do("PUT", "/Patient/a00", `{"resourceType":"Patient","id":"a00"}`).want(t, 201)
			}
			if page > 5 {
				t.Fatal("paging does not end")
			}
		}
		want = append(want, "Patient/a00")
		if !slices.Equal(seen, want) {
			t.Errorf("paged:\n got %v\nwant %v", seen, want)
		}
		// The cursor of a page in write order does not fit a sorted search.
		if first == nil {
			t.Fatal("no next link on the first page")
		}
		c.do("GET", "/Patient?_count=10&_sort=_id&_cursor="+url.QueryEscape(first.Get("_cursor")), nil).want(t, 400).outcome(t)
		// A new search counts again; a cursor with a negative total is refused.
		if r := c.do("GET", "/Patient?_count=10", nil).want(t, 200); r.body["total"] != float64(26) {
			t.Errorf("a new search: total %v, want 26", r.body["total"])
		}
		bad := base64.RawURLEncoding.EncodeToString([]byte(`{"Keys":["@1"],"Type":"Patient","ID":"w00","Total":-5}`))
		c.do("GET", "/Patient?_count=10&_cursor="+bad, nil).want(t, 400).outcome(t)
	})
}

// TestCustomSearchParameter: an active SearchParameter makes its
// expression searchable for new writes; a bad one is refused.
func TestCustomSearchParameter(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		sp := `{"resourceType":"SearchParameter","id":"nickname","url":"http://example.org/SearchParameter/patient-nickname","name":"nickname","status":"active","description":"nickname","code":"nickname","base":["Patient"],"type":"string","expression":"Patient.name.where(use='nickname').given"}`
		c.do("PUT", "/SearchParameter/nickname", sp).want(t, 201)
		c.do("PUT", "/Patient/n1", `{"resourceType":"Patient","id":"n1","name":[{"use":"official","given":["Robert"]},{"use":"nickname","given":["Bobby"]}]}`).want(t, 201)
		r := c.do("GET", "/Patient?nickname=bob", nil, "Prefer: handling=strict").want(t, 200)
		if got := strings.Join(ids(r, "match"), ","); got != "Patient/n1" {
			t.Errorf("custom parameter: %s", got)
		}
		bad := strings.Replace(sp, `Patient.name.where(use='nickname').given`, `Patient.name.where(`, 1)
		c.do("PUT", "/SearchParameter/nickname", bad).want(t, 422).outcome(t)
		taken := strings.Replace(sp, `"code":"nickname"`, `"code":"family"`, 1)
		c.do("PUT", "/SearchParameter/other", strings.Replace(taken, `"id":"nickname"`, `"id":"other"`, 1)).want(t, 201) // stored, not used
		c.do("DELETE", "/SearchParameter/nickname", nil).want(t, 204)
		c.do("GET", "/Patient?nickname=bob", nil, "Prefer: handling=strict").want(t, 400)
	})
}
