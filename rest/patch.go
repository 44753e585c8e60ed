package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/hale-ehr/hale"
	"github.com/hale-ehr/hale/fhir"
)

// patch implements patch (http.html#patch) with JSON Patch (RFC 6902)
// or, for a Parameters body, FHIRPath Patch (fhirpatch.go), also
// conditionally ([type]?[criteria]). The patched resource is validated
// like an update; it may not change resourceType or id.
func (s *Service) patch(ctx context.Context, tx hale.Tx, req *Request) (*Response, error) {
	var ops []patchOp
	var fp fhirPathPatch
	var err error
	if req.Patch {
		ops, err = parseJSONPatch(req.Body)
	} else {
		fp, err = parseFHIRPathPatch(req)
	}
	if err != nil {
		return nil, err
	}
	if req.ID == "" {
		if req.RawQuery == "" {
			return nil, hale.Errorf(hale.KindInvalid, "PATCH needs an id ([base]/%s/[id]) or search criteria", req.Type)
		}
		ids, err := s.resolve(ctx, tx, req.Type, req.RawQuery)
		if err != nil {
			return nil, err
		}
		switch len(ids) {
		case 0:
			return nil, hale.Errorf(hale.KindNotFound, "no %s matches %q", req.Type, req.RawQuery)
		case 1:
			req.ID = ids[0]
		default:
			return nil, hale.Errorf(hale.KindPreconditionFailed, "conditional patch criteria %q match more than one %s", req.RawQuery, req.Type)
		}
	}
	cur, err := current(ctx, tx, req.Type, req.ID)
	if err != nil {
		return nil, err
	}
	if err := checkIfMatch(req, cur); err != nil {
		return nil, err
	}
	switch {
	case cur == nil:
		return nil, hale.Errorf(hale.KindNotFound, "%s/%s not found", req.Type, req.ID)
	case cur.Deleted:
		return nil, hale.Errorf(hale.KindGone, "%s/%s was deleted", req.Type, req.ID)
	}
	doc, err := fhir.Decode(cur.Data)
	if err != nil {
		return nil, &hale.Error{Kind: hale.KindInternal, Op: "rest.patch", Err: err}
	}
	if err := fp.apply(ctx, doc); err != nil {
		return nil, err
	}
	var root any = doc
	for i, op := range ops {
		if root, err = op.apply(root); err != nil {
			return nil, hale.Errorf(hale.KindUnprocessable, "JSON Patch operation %d (%s %s): %v", i, op.Op, op.Path, err)
		}
	}
	res, ok := root.(map[string]any)
	if !ok || res["resourceType"] != req.Type || res["id"] != req.ID {
		return nil, hale.Errorf(hale.KindUnprocessable, "a patch may not change resourceType or id")
	}
	if err := validateResource(res); err != nil {
		if e, ok := err.(*hale.Error); ok {
			e.Kind = hale.KindUnprocessable // the patch, not the request, is at fault
		}
		return nil, err
	}
	v, err := s.put(ctx, tx, req.Type, req.ID, res, cur, "PATCH")
	if err != nil {
		return nil, err
	}
	return versionResponse(http.StatusOK, v), nil
}

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	From  string          `json:"from"`
	Value json.RawMessage `json:"value"`
	value any
}

func parseJSONPatch(body []byte) ([]patchOp, error) {
	var ops []patchOp
	if err := json.Unmarshal(body, &ops); err != nil {
		return nil, hale.Errorf(hale.KindInvalid, "the body is not a JSON Patch array: %v", err)
	}
	for i := range ops {
		op := &ops[i]
		switch op.Op {
		case "add", "replace", "test":
			if op.Value == nil {
				return nil, hale.Errorf(hale.KindInvalid, "JSON Patch operation %d (%s) has no value", i, op.Op)
			}
			dec := json.NewDecoder(strings.NewReader(string(op.Value)))
			dec.UseNumber()
			if err := dec.Decode(&op.value); err != nil {
				return nil, hale.Errorf(hale.KindInvalid, "JSON Patch operation %d: bad value: %v", i, err)
			}
		case "remove":
		case "move", "copy":
			if _, err := pointer(op.From); err != nil {
				return nil, hale.Errorf(hale.KindInvalid, "JSON Patch operation %d: from: %v", i, err)
			}
		default:
			return nil, hale.Errorf(hale.KindInvalid, "JSON Patch operation %d: unknown op %q", i, op.Op)
		}
		if _, err := pointer(op.Path); err != nil {
			return nil, hale.Errorf(hale.KindInvalid, "JSON Patch operation %d: path: %v", i, err)
		}
	}
	return ops, nil
}

// pointer splits an RFC 6901 JSON Pointer into unescaped tokens.
func pointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, errorString("a JSON Pointer starts with '/'")
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

func (op patchOp) apply(root any) (any, error) {
	path, _ := pointer(op.Path)
	switch op.Op {
	case "add":
		return add(root, path, deepCopy(op.value))
	case "remove":
		root, _, err := remove(root, path)
		return root, err
	case "replace":
		root, _, err := remove(root, path)
		if err != nil {
			return nil, err
		}
		return add(root, path, deepCopy(op.value))
	case "move":
		from, _ := pointer(op.From)
		if strings.HasPrefix(op.Path+"/", op.From+"/") && op.Path != op.From {
			return nil, errorString("cannot move a value into itself")
		}
		root, v, err := remove(root, from)
		if err != nil {
			return nil, err
		}
		return add(root, path, v)
	case "copy":
		from, _ := pointer(op.From)
		v, err := get(root, from)
		if err != nil {
			return nil, err
		}
		return add(root, path, deepCopy(v))
	case "test":
		v, err := get(root, path)
		if err != nil {
			return nil, err
		}
		if !reflect.DeepEqual(normalizeNumbers(v), normalizeNumbers(op.value)) {
			return nil, errorString("test failed: the value differs")
		}
		return root, nil
	}
	return nil, errorString("unknown op")
}

func get(root any, path []string) (any, error) {
	cur := root
	for _, t := range path {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[t]
			if !ok {
				return nil, errorString("no member " + strconv.Quote(t))
			}
			cur = v
		case []any:
			i, err := arrayIndex(t, len(c), false)
			if err != nil {
				return nil, err
			}
			cur = c[i]
		default:
			return nil, errorString("path goes through a primitive value")
		}
	}
	return cur, nil
}

func arrayIndex(t string, n int, forAdd bool) (int, error) {
	if forAdd && t == "-" {
		return n, nil
	}
	i, err := strconv.Atoi(t)
	if err != nil || i < 0 || (t != "0" && t[0] == '0') {
		return 0, errorString("bad array index " + strconv.Quote(t))
	}
	max := n - 1
	if forAdd {
		max = n
	}
	if i > max {
		return 0, errorString("array index " + t + " out of range")
	}
	return i, nil
}

// add sets the value at path and returns the (possibly new) root.
func add(root any, path []string, v any) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	parent, err := get(root, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	last := path[len(path)-1]
	switch p := parent.(type) {
	case map[string]any:
		p[last] = v
		return root, nil
	case []any:
		i, err := arrayIndex(last, len(p), true)
		if err != nil {
			return nil, err
		}
		p = append(p, nil)
		copy(p[i+1:], p[i:])
		p[i] = v
		return add(root, path[:len(path)-1], p) // store the grown slice
	}
	return nil, errorString("cannot add to a primitive value")
}

// remove deletes the value at path and returns the new root and the value.
func remove(root any, path []string) (any, any, error) {
	if len(path) == 0 {
		return nil, nil, errorString("cannot remove the whole resource")
	}
	parent, err := get(root, path[:len(path)-1])
	if err != nil {
		return nil, nil, err
	}
	last := path[len(path)-1]
	switch p := parent.(type) {
	case map[string]any:
		v, ok := p[last]
		if !ok {
			return nil, nil, errorString("no member " + strconv.Quote(last))
		}
		delete(p, last)
		return root, v, nil
	case []any:
		i, err := arrayIndex(last, len(p), false)
		if err != nil {
			return nil, nil, err
		}
		v := p[i]
		np := append(append([]any{}, p[:i]...), p[i+1:]...)
		root, err = setAt(root, path[:len(path)-1], np)
		return root, v, err
	}
	return nil, nil, errorString("cannot remove from a primitive value")
}

// setAt replaces the value at path (which must exist).
func setAt(root any, path []string, v any) (any, error) {
	if len(path) == 0 {
		return v, nil
	}
	parent, err := get(root, path[:len(path)-1])
	if err != nil {
		return nil, err
	}
	last := path[len(path)-1]
	switch p := parent.(type) {
	case map[string]any:
		p[last] = v
	case []any:
		i, err := arrayIndex(last, len(p), false)
		if err != nil {
			return nil, err
		}
		p[i] = v
	}
	return root, nil
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = deepCopy(e)
		}
		return a
	}
	return v
}

// normalizeNumbers makes 1.0 and 1 compare equal in "test" by turning
// json.Number into float64.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normalizeNumbers(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = normalizeNumbers(e)
		}
		return a
	}
	return v
}
