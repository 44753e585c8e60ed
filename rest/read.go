package rest

import (
	"context"
	"net/http"
	"strconv"

	"github.com/hale-ehr/hale"
)

// readCurrent implements read (http.html#read): 404 for a resource that
// never existed, 410 for a deleted one, and 304 Not Modified when the
// client's If-None-Match or If-Modified-Since shows it already has the
// current version (http.html#cread).
func (s *Service) readCurrent(ctx context.Context, r hale.Reader, req *Request) (*Response, error) {
	v, err := r.Current(ctx, req.Type, req.ID)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, hale.Errorf(hale.KindNotFound, "%s/%s not found", req.Type, req.ID)
	}
	if err != nil {
		return nil, err
	}
	if v.Deleted {
		return nil, hale.Errorf(hale.KindGone, "%s/%s was deleted (version %d)", req.Type, req.ID, v.VersionID)
	}
	if notModified(req, v) {
		return &Response{Status: http.StatusNotModified, ETag: etag(v.VersionID), LastModified: v.LastUpdated}, nil
	}
	return versionResponse(http.StatusOK, v), nil
}

func notModified(req *Request, v *hale.Version) bool {
	if req.IfNoneMatch != "" {
		if req.IfNoneMatch == "*" {
			return true
		}
		n, ok := parseETag(req.IfNoneMatch)
		return ok && n == v.VersionID
	}
	if !req.IfModifiedSince.IsZero() {
		// HTTP dates have whole seconds.
		return !v.LastUpdated.Truncate(1e9).After(req.IfModifiedSince)
	}
	return false
}

// vread implements vread (http.html#vread). A version that records a
// delete answers 410.
func (s *Service) vread(ctx context.Context, r hale.Reader, req *Request) (*Response, error) {
	n, _ := strconv.ParseInt(req.VersionID, 10, 64)
	v, err := r.Version(ctx, req.Type, req.ID, n)
	if hale.IsKind(err, hale.KindNotFound) {
		return nil, hale.Errorf(hale.KindNotFound, "version %s of %s/%s not found", req.VersionID, req.Type, req.ID)
	}
	if err != nil {
		return nil, err
	}
	if v.Deleted {
		return nil, hale.Errorf(hale.KindGone, "version %d of %s/%s records its deletion", v.VersionID, req.Type, req.ID)
	}
	return versionResponse(http.StatusOK, v), nil
}
