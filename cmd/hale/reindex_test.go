package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/rest"
	"github.com/hale-ehr/hale/sqlite"
)

// TestReindex: a SearchParameter added after the data is searchable for
// the old resources once `hale reindex` has run.
func TestReindex(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	open := func() (*rest.Service, func()) {
		s, err := sqlite.Open(ctx, filepath.Join(dir, "hale.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		svc := rest.NewService(s)
		if err := svc.LoadSearchParameters(ctx); err != nil {
			t.Fatal(err)
		}
		return svc, func() { s.Close() }
	}
	do := func(svc *rest.Service, method, typ, id, body string) {
		t.Helper()
		if _, err := svc.Do(ctx, &rest.Request{Method: method, Type: typ, ID: id, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(svc *rest.Service, query string) int64 {
		t.Helper()
		var n int64
		svc.Store.View(ctx, func(r hale.Reader) error {
			q := &hale.Query{Types: []string{"Patient"}, Total: true, Where: []hale.Clause{{Param: "nickname", Type: hale.TypeString, Values: []hale.Value{{Code: query}}}}}
			res, err := r.(hale.Searcher).Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			n = res.Total
			return nil
		})
		return n
	}

	svc, closeStore := open()
	do(svc, "PUT", "Patient", "old", `{"resourceType":"Patient","id":"old","name":[{"use":"nickname","given":["Bobby"]}]}`)
	do(svc, "PUT", "SearchParameter", "nickname", `{"resourceType":"SearchParameter","id":"nickname","url":"http://example.org/sp/nickname","name":"nickname","status":"active","description":"x","code":"nickname","base":["Patient"],"type":"string","expression":"Patient.name.where(use='nickname').given"}`)
	do(svc, "PUT", "Patient", "new", `{"resourceType":"Patient","id":"new","name":[{"use":"nickname","given":["Bobbie"]}]}`)
	if n := count(svc, "bob"); n != 1 {
		t.Fatalf("before reindex: %d matches, want 1 (only the patient written after the parameter)", n)
	}
	closeStore()

	var out bytes.Buffer
	if err := run(ctx, []string{"reindex", "--data", dir, "--type", "Patient"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("reindex: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "Patient: 2 resources reindexed") {
		t.Errorf("output: %s", out.String())
	}
	svc, closeStore = open()
	defer closeStore()
	if n := count(svc, "bob"); n != 2 {
		t.Errorf("after reindex: %d matches, want 2", n)
	}
	if err := run(ctx, []string{"reindex", "--data", dir, "--type", "Nope"}, func(string) string { return "" }, &out, &out); err == nil {
		t.Errorf("unknown type accepted")
	}
}
