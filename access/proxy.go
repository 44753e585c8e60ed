package access

import (
	"context"
	"slices"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
	"github.com/hale-ehr/hale/search"
)

// Binary and Group hold no reference to a patient a search could follow,
// yet they are patient data: a Binary is a document's bytes, a Group a
// list of patients. For every caller but a backend-services client they
// are visible through what they stand for (docs/security.md, "Binary and
// Group"), judged per resource when it is read (rule.proxy), and never
// searched:
//
//   - a Binary when the caller may read the resource its securityContext
//     names (the FHIR element's very purpose), or a DocumentReference whose
//     content.attachment.url is "Binary/<id>";
//   - a Group when it is managed by the caller (managingEntity their
//     FHIRUser or one of their organizations) and the caller may read every
//     member: a Group visible through one member would show the others.
//
// Interactions are the role's (a physician may update a Binary they may
// see); a Binary written must stand for something the caller may read,
// so that it is visible after the write.

// noID is an id no resource has (it is not a valid id).
const noID = "#"

// maxGroupMembers bounds the members checked; a larger Group is hidden.
const maxGroupMembers = 10000

// proxyCurrent is Current for a proxy type. The steps do not depend on
// whether the resource exists, so a hidden one and a missing id cost the
// same queries.
func (rd *reader) proxyCurrent(ctx context.Context, typ, id string) (*hale.Version, error) {
	v, err := rd.r.Current(ctx, typ, id)
	missing := hale.IsKind(err, hale.KindNotFound)
	if err != nil && !missing {
		return nil, err
	}
	var res map[string]any
	if !missing {
		live, err := rd.lastLive(ctx, v)
		if err != nil {
			return nil, err
		}
		if live != nil {
			if res, err = decode(live); err != nil {
				return nil, err
			}
		}
	}
	ok, err := rd.proxyVisible(ctx, typ, id, res)
	if err != nil {
		return nil, err
	}
	if missing || res == nil || !ok {
		return nil, notFound(typ, id)
	}
	return v, nil
}

// proxyVisible reports whether the caller may see typ/id, a Binary or a
// Group whose (last live) content is res; res nil: none.
func (rd *reader) proxyVisible(ctx context.Context, typ, id string, res map[string]any) (bool, error) {
	switch typ {
	case "Binary":
		return rd.binaryVisible(ctx, id, res)
	case "Group":
		return rd.groupVisible(ctx, res)
	}
	return false, nil
}

// binaryVisible: a DocumentReference the caller may read points to
// Binary/id, or the caller may read the Binary's securityContext.
func (rd *reader) binaryVisible(ctx context.Context, id string, res map[string]any) (bool, error) {
	if r := rd.s.rule("DocumentReference", Read); !r.deny && !r.proxy {
		sr, ok := rd.r.(hale.Searcher)
		if !ok {
			return false, &hale.Error{Kind: hale.KindInternal, Op: "access.binaryVisible", Message: "the store cannot search"}
		}
		q := hale.Query{Types: []string{"DocumentReference"}, Count: 1, Where: slices.Concat([]hale.Clause{
			{Param: "location", Type: hale.TypeURI, Values: []hale.Value{{Code: "Binary/" + id}}}}, r.where)}
		found, err := sr.Search(ctx, &q)
		if err != nil {
			return false, err
		}
		if len(found.Versions) > 0 {
			return true, nil
		}
	}
	t, tid, ok := localRef(res["securityContext"])
	if !ok || t == "Binary" || t == "Group" {
		// Nothing to judge by (a proxy of a proxy is not followed), or
		// no Binary: the same work as for a read of a hidden one.
		_, err := rd.readable(ctx, "Patient", noID)
		return false, err
	}
	return rd.readable(ctx, t, tid)
}

// groupVisible: the Group is managed by the caller and every member is
// one they may read.
func (rd *reader) groupVisible(ctx context.Context, res map[string]any) (bool, error) {
	if res == nil {
		return false, nil
	}
	mine, _ := actors(rd.s.p)
	t, id, ok := localRef(res["managingEntity"])
	if !ok || !slices.ContainsFunc(mine, func(v hale.Value) bool { return v.TargetType == t && v.TargetID == id }) {
		return false, nil
	}
	members, _ := res["member"].([]any)
	if len(members) > maxGroupMembers {
		return false, nil
	}
	var patients []string
	for _, m := range members {
		mm, _ := m.(map[string]any)
		t, id, ok := localRef(mm["entity"])
		switch {
		case !ok:
			// An absolute URL or an identifier: nothing of this store.
		case t == "Patient":
			if !slices.Contains(patients, id) {
				patients = append(patients, id)
			}
		case t == "Group" || t == "Binary":
			return false, nil
		default:
			if ok, err := rd.readable(ctx, t, id); err != nil || !ok {
				return false, err
			}
		}
	}
	if len(patients) == 0 {
		return true, nil
	}
	r := rd.s.rule("Patient", Read)
	if r.deny || r.proxy {
		return false, nil
	}
	sr, ok := rd.r.(hale.Searcher)
	if !ok {
		return false, &hale.Error{Kind: hale.KindInternal, Op: "access.groupVisible", Message: "the store cannot search"}
	}
	for chunk := range slices.Chunk(patients, 500) {
		in := hale.Clause{Param: "_id", Type: hale.TypeID}
		for _, id := range chunk {
			in.Values = append(in.Values, hale.Value{Code: id})
		}
		res, err := sr.Search(ctx, &hale.Query{Types: []string{"Patient"}, Total: true, Where: slices.Concat([]hale.Clause{in}, r.where)})
		if err != nil {
			return false, err
		}
		if res.Total != int64(len(chunk)) {
			return false, nil
		}
	}
	return true, nil
}

// readable reports whether the caller may read the live resource typ/id.
func (rd *reader) readable(ctx context.Context, typ, id string) (bool, error) {
	v, err := rd.Current(ctx, typ, id)
	if hale.IsKind(err, hale.KindNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !v.Deleted, nil
}

// localRef returns the type and id of a Reference value "Type/id".
func localRef(v any) (typ, id string, ok bool) {
	m, _ := v.(map[string]any)
	s, _ := m["reference"].(string)
	return search.ParseLocalReference(s)
}

// decode reads a stored version's JSON.
func decode(v *hale.Version) (map[string]any, error) {
	res, err := fhir.Decode(v.Data)
	if err != nil {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: "access.decode", Err: err}
	}
	return res, nil
}
