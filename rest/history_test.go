package rest_test

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestHistory(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		a := c.create(t, "Patient", patientJane)
		c.do("PUT", "/Patient/"+a, `{"resourceType":"Patient","id":"`+a+`","active":true}`).want(t, 200)
		time.Sleep(20 * time.Millisecond)
		mid := time.Now().UTC()
		time.Sleep(20 * time.Millisecond)
		b := c.create(t, "Patient", patientJane)
		o := c.create(t, "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`)

		inst := c.do("GET", "/Patient/"+a+"/_history", nil).want(t, 200)
		if inst.body["type"] != "history" || len(entries(inst)) != 2 {
			t.Fatalf("instance history: %s", inst.raw)
		}
		if get(entries(inst)[0], "resource", "meta", "versionId") != "2" || get(entries(inst)[1], "request", "method") != "POST" {
			t.Errorf("newest first, with requests: %s", inst.raw)
		}
		if get(entries(inst)[0], "response", "etag") != `W/"2"` {
			t.Errorf("entry response: %s", inst.raw)
		}
		typ := c.do("GET", "/Patient/_history", nil).want(t, 200)
		if len(entries(typ)) != 3 {
			t.Errorf("type history has %d entries, want 3", len(entries(typ)))
		}
		sys := c.do("GET", "/_history", nil).want(t, 200)
		if len(entries(sys)) != 4 || get(entries(sys)[0], "resource", "id") != o {
			t.Errorf("system history: %d entries", len(entries(sys)))
		}
		since := c.do("GET", "/_history?_since="+url.QueryEscape(mid.Format(time.RFC3339Nano)), nil).want(t, 200)
		if len(entries(since)) != 2 {
			t.Errorf("_since: %d entries, want 2 (%s)", len(entries(since)), since.raw)
		}
		// _at: the version of a that was current at mid is version 2.
		at := c.do("GET", "/Patient/"+a+"/_history?_at="+url.QueryEscape(mid.Format(time.RFC3339Nano)), nil).want(t, 200)
		if len(entries(at)) != 1 || get(entries(at)[0], "resource", "meta", "versionId") != "2" {
			t.Errorf("_at: %s", at.raw)
		}
		c.do("GET", "/_history?_since=yesterday", nil).want(t, 400).outcome(t)
		c.do("GET", "/_history?_count=-1", nil).want(t, 400)
		c.do("GET", "/Patient/nope/_history", nil).want(t, 404)
		_ = b
	})
}

func TestHistoryPaging(t *testing.T) {
	engines(t, func(t *testing.T, c *client) {
		id := c.create(t, "Patient", patientJane)
		for i := 0; i < 6; i++ {
			c.do("PUT", "/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`"}`).want(t, 200)
		}
		// Versions 7..1, three per page; a write between pages does not
		// shift the pages.
		var seen []string
		next := "/Patient/" + id + "/_history?_count=3"
		for page := 0; next != ""; page++ {
			r := c.do("GET", next, nil).want(t, 200)
			for _, e := range entries(r) {
				seen = append(seen, str(get(e, "resource", "meta", "versionId")))
			}
			next = ""
			for _, l := range get(r.body, "link").([]any) {
				if get(l, "relation") == "next" {
					next = strings.TrimPrefix(str(get(l, "url")), c.base)
				}
			}
			if page == 0 {
				c.do("PUT", "/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`"}`).want(t, 200)
			}
			if page > 5 {
				t.Fatal("paging does not end")
			}
		}
		if strings.Join(seen, ",") != "7,6,5,4,3,2,1" {
			t.Errorf("pages gave versions %v", seen)
		}
	})
}

func entries(r *resp) []any {
	e, _ := r.body["entry"].([]any)
	return e
}
