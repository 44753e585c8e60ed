package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/hale-ehr/hale"
)

// maxDepth bounds the nesting of a decoded document.
const maxDepth = 256

// Decode parses FHIR JSON into the generic tree used across Hale:
// map[string]any, []any, string, json.Number (so decimals keep their
// precision), bool and nil.
//
// It rejects malformed JSON, invalid UTF-8, trailing data, a top level that
// is not an object, duplicate keys in an object (FHIR JSON forbids them)
// and nesting deeper than 256. The error is a *hale.Error of KindInvalid
// whose message gives the line and column.
func Decode(data []byte) (map[string]any, error) {
	d := &decoder{data: data}
	d.skipSpace()
	if d.pos >= len(d.data) {
		return nil, d.errorf("empty document")
	}
	if d.data[d.pos] != '{' {
		return nil, d.errorf("a FHIR resource must be a JSON object")
	}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos < len(d.data) {
		return nil, d.errorf("unexpected data after the top-level object")
	}
	return v.(map[string]any), nil
}

type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) errorf(format string, args ...any) error {
	line, col := 1, 1
	for i := 0; i < d.pos && i < len(d.data); i++ {
		if d.data[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	msg := fmt.Sprintf(format, args...)
	e := hale.Errorf(hale.KindInvalid, "invalid JSON at line %d, column %d (offset %d): %s", line, col, d.pos, msg)
	e.Op = "fhir.Decode"
	return e
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, d.errorf("nesting deeper than %d", maxDepth)
	}
	d.skipSpace()
	if d.pos >= len(d.data) {
		return nil, d.errorf("unexpected end of input")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		return d.string()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	default:
		return nil, d.errorf("unexpected character %q", c)
	}
}

func (d *decoder) literal(lit string) error {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(lit)) {
		return d.errorf("invalid literal, expected %s", lit)
	}
	d.pos += len(lit)
	return nil
}

func (d *decoder) object(depth int) (any, error) {
	d.pos++ // {
	m := map[string]any{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return m, nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, d.errorf("expected a string for an object key")
		}
		keyPos := d.pos
		k, err := d.string()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			d.pos = keyPos
			return nil, d.errorf("duplicate key %q", k)
		}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, d.errorf("expected ':' after object key")
		}
		d.pos++
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.errorf("unexpected end of input in object")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return m, nil
		default:
			return nil, d.errorf("expected ',' or '}' in object")
		}
	}
}

func (d *decoder) array(depth int) (any, error) {
	d.pos++ // [
	a := []any{}
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return a, nil
	}
	for {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.errorf("unexpected end of input in array")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return a, nil
		default:
			return nil, d.errorf("expected ',' or ']' in array")
		}
	}
}

func (d *decoder) number() (any, error) {
	start := d.pos
	p := d.pos
	digits := func() int {
		n := 0
		for p < len(d.data) && d.data[p] >= '0' && d.data[p] <= '9' {
			p++
			n++
		}
		return n
	}
	if d.data[p] == '-' {
		p++
	}
	if p < len(d.data) && d.data[p] == '0' {
		p++
	} else if digits() == 0 {
		d.pos = p
		return nil, d.errorf("invalid number")
	}
	if p < len(d.data) && d.data[p] == '.' {
		p++
		if digits() == 0 {
			d.pos = p
			return nil, d.errorf("invalid number")
		}
	}
	if p < len(d.data) && (d.data[p] == 'e' || d.data[p] == 'E') {
		p++
		if p < len(d.data) && (d.data[p] == '+' || d.data[p] == '-') {
			p++
		}
		if digits() == 0 {
			d.pos = p
			return nil, d.errorf("invalid number")
		}
	}
	d.pos = p
	return json.Number(d.data[start:p]), nil
}

func (d *decoder) string() (string, error) {
	d.pos++ // opening quote
	start := d.pos
	// fast path: no escapes, ASCII or valid UTF-8
	for p := start; p < len(d.data); p++ {
		c := d.data[p]
		if c == '"' {
			s := d.data[start:p]
			if !utf8.Valid(s) {
				return "", d.errorf("invalid UTF-8 in string")
			}
			d.pos = p + 1
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			d.pos = p
			return "", d.errorf("control character in string")
		}
	}
	var b []byte
	p := start
	for {
		if p >= len(d.data) {
			d.pos = p
			return "", d.errorf("unterminated string")
		}
		c := d.data[p]
		switch {
		case c == '"':
			d.pos = p + 1
			if !utf8.Valid(b) {
				return "", d.errorf("invalid UTF-8 in string")
			}
			return string(b), nil
		case c < 0x20:
			d.pos = p
			return "", d.errorf("control character in string")
		case c != '\\':
			b = append(b, c)
			p++
			continue
		}
		p++
		if p >= len(d.data) {
			d.pos = p
			return "", d.errorf("unterminated string")
		}
		switch e := d.data[p]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(d.data, p+1)
			if !ok {
				d.pos = p
				return "", d.errorf("invalid \\u escape")
			}
			p += 4
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(-1), false
				if p+2 < len(d.data) && d.data[p+1] == '\\' && d.data[p+2] == 'u' {
					r2, ok2 = hex4(d.data, p+3)
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					p += 6
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			d.pos = p
			return "", d.errorf("invalid escape \\%c", e)
		}
		p++
	}
}

func hex4(data []byte, p int) (rune, bool) {
	if p+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[p : p+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// Marshal encodes a resource as FHIR JSON: resourceType first, then the
// elements in StructureDefinition order (id and meta come first that way;
// an extension's url, an XML attribute, comes first as in the
// specification's own examples),
// a primitive's "_x" companion right after "x", and unknown keys last,
// sorted. Nested objects are ordered by their own definitions; contained
// resources, Bundle.entry.resource and Parameters.parameter.resource by
// their own resourceType. Strings are not HTML-escaped (narratives keep
// their <, > and &); json.Number values are written verbatim.
//
// Besides the decoded tree Marshal accepts the other Go numbers, strings
// and []string; other values are encoded with encoding/json. It returns a
// *hale.Error of KindInvalid for an invalid json.Number.
func Marshal(res map[string]any) ([]byte, error) {
	e := &encoder{buf: make([]byte, 0, 1024)}
	if err := e.resource(res); err != nil {
		return nil, err
	}
	return e.buf, nil
}

func extensionType() *TypeDef { return defs().types["Extension"] }

type encoder struct {
	buf []byte
}

func (e *encoder) resource(m map[string]any) error {
	rt, _ := m["resourceType"].(string)
	t := defs().types[rt]
	if t == nil || t.Kind != KindResource {
		return e.object(nil, "", m, true)
	}
	return e.object(t, t.Name, m, true)
}

type keyPos struct {
	key string
	pos int // element position; -1 for unknown
	sub int // 0 for x, 1 for _x
}

// object writes m as the element at path of type t (nil t: unknown
// structure, keys sorted).
func (e *encoder) object(t *TypeDef, path string, m map[string]any, isResource bool) error {
	var cs *childSet
	if t != nil {
		cs = t.childrenOf(path)
	}
	keys := make([]keyPos, 0, len(m))
	for k := range m {
		kp := keyPos{key: k, pos: math.MaxInt}
		name := k
		if len(k) > 1 && k[0] == '_' {
			name, kp.sub = k[1:], 1
		}
		switch {
		case isResource && k == "resourceType":
			kp.pos = -1
		case t == extensionType() && k == "url":
			kp.pos = -1 // an XML attribute: written first, as the spec's examples do
		case cs != nil:
			if p, ok := cs.order[name]; ok {
				kp.pos = p
			}
		}
		keys = append(keys, kp)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.pos != b.pos {
			return a.pos < b.pos
		}
		an, bn := a.key[a.sub:], b.key[b.sub:]
		if an != bn {
			return an < bn
		}
		return a.sub < b.sub
	})
	e.buf = append(e.buf, '{')
	for i, kp := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, kp.key)
		e.buf = append(e.buf, ':')
		var el *ElementDef
		code := ""
		et := t
		switch {
		case cs != nil && kp.sub == 0 && kp.pos >= 0 && kp.pos != math.MaxInt:
			c := cs.byName[kp.key]
			el, code = c.el, c.code
		case kp.sub == 1:
			// a primitive's id and extension, ordered as in Element
			et = defs().types["Element"]
			el, code = et.Elements[0], "Element"
		}
		if err := e.elementValue(et, el, code, m[kp.key]); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

// elementValue writes v, the value of element el (nil: unknown) of type
// code within t.
func (e *encoder) elementValue(t *TypeDef, el *ElementDef, code string, v any) error {
	if a, ok := v.([]any); ok {
		e.buf = append(e.buf, '[')
		for i, x := range a {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.elementValue(t, el, code, x); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok || el == nil {
		return e.value(v)
	}
	if code == "" && len(el.Types) == 0 && el.ContentRef == "" {
		return e.object(nil, "", m, false)
	}
	switch {
	case code == "Resource":
		return e.resource(m)
	case t.childrenOf(el.Path) != nil:
		return e.object(t, el.Path, m, false)
	}
	if nt := defs().types[code]; nt != nil {
		if nt.Kind == KindResource {
			return e.resource(m) // e.g. Bundle.entry.response.outcome
		}
		return e.object(nt, nt.Name, m, false)
	}
	return e.object(nil, "", m, false)
}

// value writes a value of unknown structure, object keys sorted.
func (e *encoder) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case string:
		e.buf = appendString(e.buf, x)
	case json.Number:
		if !validNumber(string(x)) {
			return &hale.Error{Kind: hale.KindInvalid, Op: "fhir.Marshal", Message: fmt.Sprintf("invalid number %q", string(x))}
		}
		e.buf = append(e.buf, x...)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return &hale.Error{Kind: hale.KindInvalid, Op: "fhir.Marshal", Message: "invalid number"}
		}
		e.buf = strconv.AppendFloat(e.buf, x, 'g', -1, 64)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case []any:
		e.buf = append(e.buf, '[')
		for i, y := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.value(y); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
	case []string:
		e.buf = append(e.buf, '[')
		for i, y := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = appendString(e.buf, y)
		}
		e.buf = append(e.buf, ']')
	case map[string]any:
		if _, ok := x["resourceType"].(string); ok {
			return e.resource(x)
		}
		return e.object(nil, "", x, false)
	default:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			return &hale.Error{Kind: hale.KindInvalid, Op: "fhir.Marshal", Message: "value cannot be encoded as JSON", Err: err}
		}
		e.buf = append(e.buf, bytes.TrimRight(b.Bytes(), "\n")...)
	}
	return nil
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	d := decoder{data: []byte(s)}
	if s == "" || !(s[0] == '-' || s[0] >= '0' && s[0] <= '9') {
		return false
	}
	_, err := d.number()
	return err == nil && d.pos == len(s)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string without HTML escaping.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendString appends s to b as a JSON string, escaped exactly as
// Marshal escapes strings (no HTML escaping; invalid UTF-8 becomes
// U+FFFD), for code that writes FHIR JSON of a fixed shape itself.
func AppendString(b []byte, s string) []byte { return appendString(b, s) }
