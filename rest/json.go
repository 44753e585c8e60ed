package rest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// obj is a JSON object that keeps its keys in the order they were added,
// so the bundles and outcomes Hale writes read like the spec's examples
// (resourceType first). Values are anything encoding/json takes, including
// json.RawMessage for stored resources, which are embedded without being
// decoded again.
type obj []kv

type kv struct {
	k string
	v any
}

// MarshalJSON writes o as compact JSON without HTML escaping (see
// appendJSON).
func (o obj) MarshalJSON() ([]byte, error) {
	return appendJSON(nil, o)
}

// appendJSON appends v as compact JSON without escaping <, > and &
// (narrative is XHTML). Objects, lists, strings, numbers and booleans are
// written here directly; a json.RawMessage (a stored resource, which the
// core wrote as compact JSON with fhir.Marshal) is copied as is. Anything
// else goes through encoding/json.
//
// Writing the common shapes here matters for searchsets: through
// encoding/json, the bytes an obj's MarshalJSON returns are validated
// and compacted again at every level of nesting, so each resource of a
// bundle of a thousand was scanned two or three times more.
func appendJSON(b []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case json.RawMessage:
		if len(x) == 0 {
			return append(b, "null"...), nil
		}
		return append(b, x...), nil
	case obj:
		b = append(b, '{')
		first := true
		for _, e := range x {
			if e.v == nil {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, e.k)
			b = append(b, ':')
			if b, err = appendJSON(b, e.v); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []obj:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	}
	buf := bytes.NewBuffer(b)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil // Encode adds a newline
}

// appendString appends s as a JSON string. Printable ASCII without '"'
// or '\' is copied; any other string is written by encoding/json, so the
// escapes (control characters, U+2028, invalid UTF-8) are exactly its own.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.Encode(s) // a string always encodes
			return append(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// marshal encodes v as compact JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	return appendJSON(nil, v)
}

// cloneWithout returns a copy of q without the key name.
func cloneWithout(q map[string][]string, name string) map[string][]string {
	out := make(map[string][]string, len(q))
	for k, v := range q {
		if k != name {
			out[k] = v
		}
	}
	return out
}
