package rest

import (
	"bytes"
	"encoding/json"
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

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	for _, e := range o {
		if e.v == nil {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		if err := encode(&b, e.v); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// encode writes v without escaping <, > and & (narrative is XHTML).
func encode(b *bytes.Buffer, v any) error {
	if raw, ok := v.(json.RawMessage); ok {
		b.Write(raw)
		return nil
	}
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode adds a newline
	return nil
}

// marshal encodes v as compact JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
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
