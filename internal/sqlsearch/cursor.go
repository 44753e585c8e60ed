package sqlsearch

import (
	"fmt"
	"math"
	"strconv"

	"github.com/hale-ehr/hale"
)

// keyKind is the SQL type of a sort key, which fixes how its value is
// written into a Cursor and bound again when paging on.
type keyKind int

const (
	keyText keyKind = iota
	keyInt
	keyFloat
	keyWrite // resource.first_seq, the one key of a page in write order
)

// A cursor key is "-" for a resource without a value (NULL), or "=" and
// the value: text as is, integers in decimal, floats in the shortest
// form that reads back exactly. The key of a page in write order is "@"
// and the number, so that its cursor fits no sorted search, nor a
// sorted search's cursor a search in write order.
const (
	nullKey  = "-"
	valueKey = "="
	writeKey = "@"
)

type cursorKey struct {
	null  bool
	value any
}

func encodeCursor(kinds []keyKind, keys []any, typ, id string) (*hale.Cursor, error) {
	cur := &hale.Cursor{Type: typ, ID: id, Keys: make([]string, len(kinds))}
	for i, k := range kinds {
		s, err := encodeKey(k, keys[i])
		if err != nil {
			return nil, err
		}
		cur.Keys[i] = s
	}
	return cur, nil
}

func encodeKey(k keyKind, v any) (string, error) {
	if v == nil {
		return nullKey, nil
	}
	switch k {
	case keyText:
		switch x := v.(type) {
		case string:
			return valueKey + x, nil
		case []byte:
			return valueKey + string(x), nil
		}
	case keyInt:
		switch x := v.(type) {
		case int64:
			return valueKey + strconv.FormatInt(x, 10), nil
		case float64:
			return valueKey + strconv.FormatInt(int64(x), 10), nil
		}
	case keyWrite:
		if x, ok := v.(int64); ok {
			return writeKey + strconv.FormatInt(x, 10), nil
		}
	case keyFloat:
		switch x := v.(type) {
		case float64:
			return valueKey + strconv.FormatFloat(x, 'g', -1, 64), nil
		case int64:
			return valueKey + strconv.FormatInt(x, 10), nil
		}
	}
	return "", fmt.Errorf("sqlsearch: sort key of kind %d has a value of type %T", k, v)
}

// decodeCursor parses the keys of cur for sort. Returns KindInvalid when
// the cursor does not fit the sort (it came from another search, or was
// altered).
func decodeCursor(sort []hale.SortKey, cur *hale.Cursor) ([]cursorKey, error) {
	if len(cur.Keys) != len(sort) || cur.Type == "" || cur.ID == "" {
		return nil, invalid("the paging cursor does not belong to this search")
	}
	out := make([]cursorKey, len(sort))
	for i, s := range cur.Keys {
		if s == nullKey {
			out[i].null = true
			continue
		}
		if len(s) == 0 || s[:1] != valueKey {
			return nil, invalid("the paging cursor does not belong to this search")
		}
		s = s[1:]
		switch kindOf(sort[i]) {
		case keyText:
			out[i].value = s
		case keyInt:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, invalid("the paging cursor does not belong to this search")
			}
			out[i].value = n
		case keyFloat:
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, invalid("the paging cursor does not belong to this search")
			}
			out[i].value = f
		}
	}
	return out, nil
}

// kindOf is the kind of a sort key's values (see compiler.sortKey).
func kindOf(k hale.SortKey) keyKind {
	switch k.Type {
	case hale.TypeLastUpdated, hale.TypeDate:
		return keyInt
	case hale.TypeNumber, hale.TypeQuantity:
		return keyFloat
	}
	return keyText
}
