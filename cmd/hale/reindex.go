package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/rest"
)

// reindex implements `hale reindex`: it recomputes the search index rows
// of every current resource (or of the types given) with the search
// parameters in force, including custom SearchParameter resources. It
// works on the data folder or database while `hale serve` runs: each
// batch is its own short transaction, and a resource written meanwhile is
// indexed by that write anyway.
func reindex(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	// --type is reindex's own flag; the rest (--data, --database, …) are
	// the server's settings, read as `hale serve` reads them.
	var types string
	var storeArgs []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimPrefix(args[i], "-")
		switch {
		case a == "-type" || a == "type":
			if i+1 == len(args) {
				return fmt.Errorf("--type needs a value")
			}
			types = args[i+1]
			i++
		case strings.HasPrefix(a, "-type=") || strings.HasPrefix(a, "type="):
			_, types, _ = strings.Cut(a, "=")
		default:
			storeArgs = append(storeArgs, args[i])
		}
	}
	cfg, err := LoadConfig("hale reindex", storeArgs, getenv)
	if err != nil {
		return err
	}
	store, where, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	svc := rest.NewService(store)
	if err := svc.LoadSearchParameters(ctx); err != nil {
		return err
	}
	list := fhir.ResourceTypes()
	if types != "" {
		list = nil
		for _, t := range strings.Split(types, ",") {
			if !fhir.IsResourceType(t) {
				return fmt.Errorf("--type: unknown resource type %q", t)
			}
			list = append(list, t)
		}
	}
	start, total := time.Now(), 0
	for _, t := range list {
		n, err := reindexType(ctx, svc, t)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		if n > 0 {
			fmt.Fprintf(out, "%s: %d resources reindexed\n", t, n)
		}
		total += n
	}
	fmt.Fprintf(out, "reindexed %d resources in %s (%s)\n", total, time.Since(start).Round(time.Millisecond), where)
	return nil
}

func reindexType(ctx context.Context, svc *rest.Service, typ string) (int, error) {
	n := 0
	var after *hale.Cursor
	for {
		var page *hale.SearchResult
		err := svc.Store.View(ctx, func(r hale.Reader) error {
			sr, ok := r.(hale.Searcher)
			if !ok {
				return fmt.Errorf("the store cannot search")
			}
			var err error
			page, err = sr.Search(ctx, &hale.Query{Types: []string{typ}, Count: 500, After: after})
			return err
		})
		if err != nil {
			return n, err
		}
		if len(page.Versions) == 0 {
			return n, nil
		}
		err = svc.Store.Update(ctx, func(tx hale.Tx) error {
			ri, ok := tx.(hale.Reindexer)
			if !ok {
				return fmt.Errorf("the store cannot reindex")
			}
			for _, v := range page.Versions {
				res, err := fhir.Decode(v.Data)
				if err != nil {
					return err
				}
				if err := ri.Reindex(ctx, v.Type, v.ID, svc.Params.Extract(v.Type, res)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += len(page.Versions)
		if page.Next == nil {
			return n, nil
		}
		after = page.Next
	}
}
