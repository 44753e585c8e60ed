package rest

import (
	"context"
	"net/http"

	"github.com/hale-ehr/hale"
)

// delete implements delete and conditional delete (http.html#delete,
// http.html#cdelete). Deleting writes a delete version: history keeps
// every version and a later read answers 410 Gone. Deleting something
// that does not exist or is already deleted succeeds and writes nothing.
// A conditional delete whose criteria match several resources is 412.
func (s *Service) delete(ctx context.Context, tx hale.Tx, req *Request) (*Response, error) {
	if req.ID == "" {
		if req.RawQuery == "" {
			return nil, hale.Errorf(hale.KindInvalid, "DELETE needs an id ([base]/%s/[id]) or search criteria ([base]/%s?[criteria])", req.Type, req.Type)
		}
		ids, err := s.resolve(ctx, tx, req.Type, req.RawQuery)
		if err != nil {
			return nil, err
		}
		switch len(ids) {
		case 0:
			return &Response{Status: http.StatusNoContent, Outcome: "no resource matched; nothing was deleted"}, nil
		case 1:
			req.ID = ids[0]
		default:
			return nil, hale.Errorf(hale.KindPreconditionFailed, "conditional delete criteria %q match more than one %s", req.RawQuery, req.Type)
		}
	}
	cur, err := current(ctx, tx, req.Type, req.ID)
	if err != nil {
		return nil, err
	}
	if err := checkIfMatch(req, cur); err != nil {
		return nil, err
	}
	if cur == nil || cur.Deleted {
		return &Response{Status: http.StatusNoContent, Outcome: req.Type + "/" + req.ID + " does not exist; nothing was deleted"}, nil
	}
	v, err := s.remove(ctx, tx, cur)
	if err != nil {
		return nil, err
	}
	return &Response{Status: http.StatusNoContent, ETag: etag(v.VersionID), LastModified: v.LastUpdated,
		Outcome: "deleted " + v.Type + "/" + v.ID + " (version " + itoa(v.VersionID) + ")"}, nil
}
