package rest

import (
	"context"
	"net/http"

	"github.com/hale-ehr/hale"
)

// create implements create and conditional create (http.html#create,
// http.html#ccreate). The server assigns the id; an id in the body is
// ignored as the spec asks. With If-None-Exist: no match creates, one match
// answers 200 with the match and writes nothing, several answer 412.
func (s *Service) create(ctx context.Context, tx hale.Tx, req *Request) (*Response, error) {
	res, err := decodeResource(req)
	if err != nil {
		return nil, err
	}
	if req.IfNoneExist != "" {
		ids, err := s.resolve(ctx, tx, req.Type, req.IfNoneExist)
		if err != nil {
			return nil, err
		}
		switch len(ids) {
		case 0:
		case 1:
			v, err := tx.Current(ctx, req.Type, ids[0])
			if err != nil {
				return nil, err
			}
			return versionResponse(http.StatusOK, v), nil
		default:
			return nil, hale.Errorf(hale.KindPreconditionFailed, "If-None-Exist %q matches more than one %s", req.IfNoneExist, req.Type)
		}
	}
	v, err := s.put(ctx, tx, req.Type, newID(), res, nil, "POST")
	if err != nil {
		return nil, err
	}
	return versionResponse(http.StatusCreated, v), nil
}
