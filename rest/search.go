package rest

import (
	"context"

	"github.com/hale-ehr/hale"
)

// search implements search (search.html) at type, system and compartment
// level; see searchset.go.
func (s *Service) search(ctx context.Context, r hale.Reader, req *Request) (*Response, error) {
	sr, ok := r.(hale.Searcher)
	if !ok {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: "rest.search", Message: "the store cannot search"}
	}
	return s.searchset(ctx, r, sr, req)
}
