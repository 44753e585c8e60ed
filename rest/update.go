package rest

import (
	"context"
	"net/http"

	"github.com/hale-ehr/hale"
)

// update implements update, create-on-update for client-chosen ids, and
// conditional update (http.html#update, http.html#cond-update).
//
// The body's id must equal the URL's. A new resource answers 201, a new
// version of an existing one 200. With If-Match the update applies only
// to that version (412 otherwise).
func (s *Service) update(ctx context.Context, tx hale.Tx, req *Request) (*Response, error) {
	res, err := decodeResource(req)
	if err != nil {
		return nil, err
	}
	bodyID, _ := res["id"].(string)
	if req.ID == "" {
		// Conditional update: PUT [type]?[search]
		if req.RawQuery == "" {
			return nil, hale.Errorf(hale.KindInvalid, "PUT needs an id ([base]/%s/[id]) or search criteria ([base]/%s?[criteria])", req.Type, req.Type)
		}
		ids, err := s.resolve(ctx, tx, req.Type, req.RawQuery)
		if err != nil {
			return nil, err
		}
		switch len(ids) {
		case 0:
			if bodyID == "" {
				bodyID = newID()
			}
			req.ID = bodyID
		case 1:
			if bodyID != "" && bodyID != ids[0] {
				return nil, hale.Errorf(hale.KindInvalid, "the body's id %q differs from the resource %s/%s the criteria match", bodyID, req.Type, ids[0])
			}
			req.ID = ids[0]
		default:
			return nil, hale.Errorf(hale.KindPreconditionFailed, "conditional update criteria %q match more than one %s", req.RawQuery, req.Type)
		}
	} else {
		switch {
		case bodyID == "":
			return nil, hale.Errorf(hale.KindInvalid, "the resource has no id; an update must carry the id %q of its URL", req.ID)
		case bodyID != req.ID:
			return nil, hale.Errorf(hale.KindInvalid, "the resource's id %q does not match the id %q in the URL", bodyID, req.ID)
		}
	}
	cur, err := current(ctx, tx, req.Type, req.ID)
	if err != nil {
		return nil, err
	}
	if err := checkIfMatch(req, cur); err != nil {
		return nil, err
	}
	v, err := s.put(ctx, tx, req.Type, req.ID, res, cur, "PUT")
	if err != nil {
		return nil, err
	}
	status := http.StatusOK
	if cur == nil || cur.Deleted {
		status = http.StatusCreated
	}
	return versionResponse(status, v), nil
}
