package fhir

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hale-ehr/hale"
)

// Namespaces of the FHIR XML format (xml.html#namespaces). FHIR elements are
// in fhirNS; the narrative is XHTML in xhtmlNS; xsi attributes such as
// xsi:schemaLocation may appear and carry no content.
const (
	fhirNS  = "http://hl7.org/fhir"
	xhtmlNS = "http://www.w3.org/1999/xhtml"
	xmlNS   = "http://www.w3.org/XML/1998/namespace"
	xsiNS   = "http://www.w3.org/2001/XMLSchema-instance"
)

// DecodeXML parses a resource in the FHIR XML format
// (https://hl7.org/fhir/R4/xml.html) into the tree Decode returns for the
// same resource in FHIR JSON (https://hl7.org/fhir/R4/json.html), so the
// rest of Hale never sees XML:
//
//   - the root element names the resource: it becomes "resourceType";
//   - the definitions decide what is an array: an element whose maximum
//     cardinality is above 1 becomes a JSON array even when it occurs once;
//   - a primitive's value attribute becomes a bool (boolean), a
//     json.Number keeping the lexical form (integer, decimal, positiveInt,
//     unsignedInt: "1.50" stays "1.50") or a string (every other type);
//   - a primitive's id attribute and extension children become the "_name"
//     companion; for a repeating primitive the two arrays are aligned with
//     nulls, and an array holding only nulls is left out (json.html#primitive);
//   - choice elements keep their XML name (valueQuantity), which is the
//     JSON name too;
//   - the id attribute of a complex element becomes its "id", the url
//     attribute of an extension its "url"; a resource's id is an element;
//   - a resource inside contained, Bundle.entry.resource,
//     Parameters.parameter.resource (or any other Resource-typed element)
//     is wrapped in an element named after its type: <contained><Patient>…
//   - the narrative div (in the XHTML namespace) becomes a string holding
//     the XHTML element, its xmlns included. When the div declares the
//     XHTML namespace itself and uses no prefix declared outside it, the
//     string is the div byte for byte as written in the document (its
//     character references and line ends included: an XHTML parser reads
//     the same content from it); otherwise the div is serialised again
//     with xmlns="http://www.w3.org/1999/xhtml" on the div;
//   - comments, processing instructions and xsi attributes are ignored.
//
// Element order is not checked (xml.html requires the documented order,
// but the tree JSON gives has none). Attribute values are normalised as
// XML 1.0 requires: a literal tab, carriage return or newline becomes a
// space, a character reference (&#xA;) keeps its character.
//
// The error is a *hale.Error of KindInvalid, with the line, the column and
// the location of the offending element (e.g. Patient.name[1].given[0]),
// for malformed XML, a document type declaration (xml.html: entities are a
// security risk and FHIR does not use them), a root that is not a FHIR
// resource, an element outside the FHIR namespace, an unknown element or
// attribute, text content in a FHIR element, a value attribute on a
// complex element, a primitive without value or extension, a non-repeating
// element that occurs twice, a boolean or number value that is not one,
// and nesting deeper than 256 elements.
func DecodeXML(data []byte) (map[string]any, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	r := &xmlReader{data: data, dec: xml.NewDecoder(bytes.NewReader(data))}
	r.dec.Strict = true
	r.ns = append(r.ns, nsBinding{"xml", xmlNS})
	root, err := r.prolog()
	if err != nil {
		return nil, err
	}
	m, err := r.resource(root)
	if err != nil {
		return nil, err
	}
	for {
		tok, err := r.token()
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.CharData:
			if !isXMLSpace(tok) {
				return nil, r.errorf("text after the root element")
			}
		case xml.StartElement, xml.EndElement:
			return nil, r.errorf("content after the root element")
		}
	}
}

type nsBinding struct{ prefix, uri string }

// xmlReader decodes one document. It reads raw tokens and resolves
// namespaces itself, so it knows the prefixes as written (to keep a
// narrative div verbatim) and checks that end tags match.
type xmlReader struct {
	data  []byte
	dec   *xml.Decoder
	ns    []nsBinding // in-scope namespace declarations, innermost last
	loc   []byte      // location of the current element, e.g. Patient.name[0]
	tok   int64       // offset of the current token, for errors
	depth int
}

// element is a start tag with its namespace resolved.
type element struct {
	raw    xml.Name // as written: Space is the prefix
	space  string   // namespace URI
	attrs  []xml.Attr
	nsMark int // len(r.ns) before the tag's own declarations
}

func (el *element) local() string { return el.raw.Local }

func (r *xmlReader) errorf(format string, args ...any) error {
	line, col := lineCol(r.data, int(r.tok))
	msg := fmt.Sprintf(format, args...)
	e := hale.Errorf(hale.KindInvalid, "invalid FHIR XML at line %d, column %d: ", line, col)
	if len(r.loc) > 0 {
		e.Message += string(r.loc) + ": "
		e.Issues = []hale.Issue{{Severity: "error", Code: "structure", Diagnostics: e.Message + msg, Expression: []string{string(r.loc)}}}
	}
	e.Message += msg
	e.Op = "fhir.DecodeXML"
	return e
}

func lineCol(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	line = 1 + bytes.Count(data[:off], []byte{'\n'})
	col = off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}

// token returns the next raw token; syntax errors become KindInvalid.
func (r *xmlReader) token() (xml.Token, error) {
	r.tok = r.dec.InputOffset()
	tok, err := r.dec.RawToken()
	if err == io.EOF {
		return nil, err
	}
	if err != nil {
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			r.tok = r.dec.InputOffset()
			return nil, r.errorf("%s", strings.TrimPrefix(se.Msg, "xml: "))
		}
		return nil, r.errorf("%s", strings.TrimPrefix(err.Error(), "xml: "))
	}
	if d, ok := tok.(xml.Directive); ok {
		if bytes.HasPrefix(d, []byte("DOCTYPE")) {
			return nil, r.errorf("a document type declaration is not allowed in FHIR XML")
		}
		return nil, r.errorf("unexpected <!%s>", firstWord(d))
	}
	return tok, nil
}

func firstWord(b []byte) string {
	if i := bytes.IndexAny(b, " \t\r\n"); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// next returns the next start or end tag of FHIR content, skipping
// comments, processing instructions and white space; other text is an
// error. A start tag's namespace declarations are pushed on r.ns.
func (r *xmlReader) next() (xml.Token, *element, error) {
	for {
		tok, err := r.token()
		if err == io.EOF {
			return nil, nil, r.errorf("unexpected end of document")
		}
		if err != nil {
			return nil, nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			el, err := r.start(t)
			return tok, el, err // tok, not t: boxing t again would allocate
		case xml.EndElement:
			return tok, nil, nil
		case xml.CharData:
			if !isXMLSpace(t) {
				return nil, nil, r.errorf("unexpected text %q: FHIR elements hold their values in value attributes", abbrev(string(t)))
			}
		}
	}
}

// start pushes the namespace declarations of t, normalises its
// attribute values and resolves its namespace.
func (r *xmlReader) start(t xml.StartElement) (*element, error) {
	el := &element{raw: t.Name, attrs: t.Attr, nsMark: len(r.ns)}
	if r.needsAttrNormalising() {
		if err := r.normaliseAttrs(el.attrs); err != nil {
			return nil, err
		}
	}
	for _, a := range el.attrs {
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			r.ns = append(r.ns, nsBinding{"", a.Value})
		case a.Name.Space == "xmlns":
			if a.Value == "" {
				return nil, r.errorf("namespace prefix %s bound to an empty URI", a.Name.Local)
			}
			r.ns = append(r.ns, nsBinding{a.Name.Local, a.Value})
		}
	}
	uri, ok := r.resolve(t.Name.Space)
	if !ok {
		return nil, r.errorf("unbound namespace prefix %q", t.Name.Space)
	}
	el.space = uri
	return el, nil
}

// end pops the namespace declarations of el and checks that t closes it.
func (r *xmlReader) end(el *element, t xml.EndElement) error {
	r.ns = r.ns[:el.nsMark]
	if t.Name != el.raw {
		return r.errorf("element <%s> closed by </%s>", qname(el.raw), qname(t.Name))
	}
	return nil
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// resolve returns the namespace URI bound to prefix.
func (r *xmlReader) resolve(prefix string) (string, bool) {
	for i := len(r.ns) - 1; i >= 0; i-- {
		if r.ns[i].prefix == prefix {
			return r.ns[i].uri, true
		}
	}
	return "", prefix == ""
}

// attrSpace resolves the namespace of an attribute (an unprefixed
// attribute has none).
func (r *xmlReader) attrSpace(a xml.Attr) (string, bool) {
	if a.Name.Space == "" {
		return "", true
	}
	return r.resolve(a.Name.Space)
}

// isDecl reports whether a is a namespace declaration.
func isDecl(a xml.Attr) bool {
	return a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns"
}

// needsAttrNormalising reports whether the start tag just read holds a
// literal tab, carriage return or newline inside an attribute value, which
// XML 1.0 §3.3.3 turns into a space but encoding/xml keeps.
func (r *xmlReader) needsAttrNormalising() bool {
	raw := r.data[r.tok:r.dec.InputOffset()]
	var quote byte
	for _, c := range raw {
		switch {
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case c == quote:
			quote = 0
		case quote != 0 && (c == '\t' || c == '\n' || c == '\r'):
			return true
		}
	}
	return false
}

// normaliseAttrs re-reads the attribute values of the current start tag
// from the document, applying attribute-value normalisation (XML 1.0
// §3.3.3). encoding/xml returns the attributes in document order and has
// already checked the syntax.
func (r *xmlReader) normaliseAttrs(attrs []xml.Attr) error {
	raw := r.data[r.tok:r.dec.InputOffset()]
	i := 0
	for _, a := range attrs {
		open := -1
		for ; i < len(raw); i++ {
			if raw[i] == '"' || raw[i] == '\'' {
				open = i
				break
			}
		}
		if open < 0 {
			return r.errorf("malformed attribute %s", qname(a.Name))
		}
		closing := bytes.IndexByte(raw[open+1:], raw[open])
		if closing < 0 {
			return r.errorf("malformed attribute %s", qname(a.Name))
		}
		v, ok := attrValue(raw[open+1 : open+1+closing])
		if !ok {
			return r.errorf("malformed attribute %s", qname(a.Name))
		}
		attrs[0].Value, attrs = v, attrs[1:]
		i = open + closing + 2
	}
	return nil
}

// attrValue normalises a raw attribute value: white space characters
// become spaces (CR LF one space), references are replaced.
func attrValue(raw []byte) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '\r':
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			b.WriteByte(' ')
		case '\n', '\t':
			b.WriteByte(' ')
		case '&':
			semi := bytes.IndexByte(raw[i:], ';')
			if semi < 0 {
				return "", false
			}
			ref := string(raw[i+1 : i+semi])
			i += semi
			switch ref {
			case "lt":
				b.WriteByte('<')
			case "gt":
				b.WriteByte('>')
			case "amp":
				b.WriteByte('&')
			case "apos":
				b.WriteByte('\'')
			case "quot":
				b.WriteByte('"')
			default:
				var n uint64
				var err error
				switch {
				case strings.HasPrefix(ref, "#x"):
					n, err = strconv.ParseUint(ref[2:], 16, 32)
				case strings.HasPrefix(ref, "#"):
					n, err = strconv.ParseUint(ref[1:], 10, 32)
				default:
					return "", false
				}
				if err != nil || !utf8.ValidRune(rune(n)) {
					return "", false
				}
				b.WriteRune(rune(n))
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func isXMLSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

func abbrev(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// prolog reads up to the root element: the XML declaration, comments,
// processing instructions and white space.
func (r *xmlReader) prolog() (*element, error) {
	for {
		tok, err := r.token()
		if err == io.EOF {
			return nil, r.errorf("empty document")
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return r.start(t)
		case xml.EndElement:
			return nil, r.errorf("unexpected </%s>", qname(t.Name))
		case xml.CharData:
			if !isXMLSpace(t) {
				return nil, r.errorf("text before the root element")
			}
		}
	}
}

// push appends s to the location and returns the length to pop back to.
func (r *xmlReader) push(s string) int {
	n := len(r.loc)
	if n > 0 {
		r.loc = append(r.loc, '.')
	}
	r.loc = append(r.loc, s...)
	return n
}

func (r *xmlReader) pushIndex(i int) {
	r.loc = append(r.loc, '[')
	r.loc = strconv.AppendInt(r.loc, int64(i), 10)
	r.loc = append(r.loc, ']')
}

// resource decodes the element el, whose name is a resource type.
func (r *xmlReader) resource(el *element) (map[string]any, error) {
	if el.space != fhirNS {
		return nil, r.errorf("element <%s> is in namespace %q, not %s", el.local(), el.space, fhirNS)
	}
	rt := el.local()
	t := defs().types[rt]
	if t == nil || t.Kind != KindResource || t.Abstract {
		return nil, r.errorf("<%s> is not a FHIR resource type", rt)
	}
	if err := r.ignoreAttrs(el, "resource"); err != nil {
		return nil, err
	}
	m := map[string]any{"resourceType": rt}
	n := len(r.loc)
	if n == 0 {
		r.loc = append(r.loc, rt...)
	}
	if err := r.content(t, rt, m, true, el); err != nil {
		return nil, err
	}
	r.loc = r.loc[:n]
	return m, nil
}

// ignoreAttrs rejects every attribute of el but namespace declarations
// and xsi attributes.
func (r *xmlReader) ignoreAttrs(el *element, what string) error {
	for _, a := range el.attrs {
		if isDecl(a) {
			continue
		}
		if sp, _ := r.attrSpace(a); sp == xsiNS {
			continue
		}
		return r.errorf("unexpected attribute %s on a %s element <%s>", qname(a.Name), what, el.local())
	}
	return nil
}

// repeatedPrim tracks a repeating primitive of one object, to align its
// values and companions (json.html#primitive).
type repeatedPrim struct {
	name                string
	values, companions  []any
	anyValue, anyCompan bool
}

// content decodes the children of el, the element at path within t,
// into m, up to el's end tag.
func (r *xmlReader) content(t *TypeDef, path string, m map[string]any, isResource bool, el *element) error {
	r.depth++
	if r.depth > maxDepth {
		return r.errorf("nesting deeper than %d", maxDepth)
	}
	defer func() { r.depth-- }()
	cs := t.childrenOf(path)
	var prims []*repeatedPrim
	for {
		tok, child, err := r.next()
		if err != nil {
			return err
		}
		if end, ok := tok.(xml.EndElement); ok {
			if err := r.end(el, end); err != nil {
				return err
			}
			break
		}
		name := child.local()
		c, known := choice{}, false
		if cs != nil {
			c, known = cs.byName[name]
		}
		if !known || child.space != fhirNS && !(c.code == "xhtml" && child.space == xhtmlNS) {
			if known || child.space != fhirNS {
				return r.errorf("element <%s> in namespace %q is not allowed here", name, child.space)
			}
			return r.errorf("unknown element <%s>", name)
		}
		n := r.push(name)
		if !isResource && name == "id" {
			return r.errorf("an element's id is an attribute in XML, not an <id> element")
		}
		if name == "url" && t == extensionType() && path == "Extension" {
			return r.errorf("an extension's url is an attribute in XML, not a <url> element")
		}
		repeats := c.el.Repeats()
		if !repeats {
			if _, dup := m[name]; dup {
				return r.errorf("element <%s> occurs more than once", name)
			}
			if _, dup := m["_"+name]; dup {
				return r.errorf("element <%s> occurs more than once", name)
			}
		}
		if repeats {
			if a, ok := m[name].([]any); ok {
				r.pushIndex(len(a))
			} else {
				var rp *repeatedPrim
				for _, p := range prims {
					if p.name == name {
						rp = p
					}
				}
				if rp != nil {
					r.pushIndex(len(rp.values))
				} else {
					r.pushIndex(0)
				}
			}
		}
		code := c.code
		nt := defs().types[code]
		switch {
		case code == "xhtml":
			if child.space != xhtmlNS || name != "div" {
				return r.errorf("the narrative <div> must be in the XHTML namespace %s", xhtmlNS)
			}
			s, err := r.xhtml(child)
			if err != nil {
				return err
			}
			m[name] = s
		case nt != nil && nt.Kind == KindPrimitive:
			v, comp, err := r.primitive(child, code)
			if err != nil {
				return err
			}
			if !repeats {
				if v != nil {
					m[name] = v
				}
				if comp != nil {
					m["_"+name] = comp
				}
				break
			}
			var rp *repeatedPrim
			for _, p := range prims {
				if p.name == name {
					rp = p
				}
			}
			if rp == nil {
				rp = &repeatedPrim{name: name}
				prims = append(prims, rp)
			}
			rp.values = append(rp.values, v)
			rp.anyValue = rp.anyValue || v != nil
			if comp != nil {
				rp.companions = append(rp.companions, comp)
				rp.anyCompan = true
			} else {
				rp.companions = append(rp.companions, nil)
			}
		case code == "Resource" || nt != nil && nt.Kind == KindResource:
			res, err := r.wrapped(child)
			if err != nil {
				return err
			}
			add(m, name, res, repeats)
		default:
			ct, cpath := t, c.el.Path
			if t.childrenOf(cpath) == nil {
				if nt == nil || nt.Kind != KindComplex {
					return r.errorf("element <%s> has no definition to decode it by", name)
				}
				ct, cpath = nt, nt.Name
			}
			sub := map[string]any{}
			if err := r.complexAttrs(child, ct, cpath, sub); err != nil {
				return err
			}
			if err := r.content(ct, cpath, sub, false, child); err != nil {
				return err
			}
			add(m, name, sub, repeats)
		}
		r.loc = r.loc[:n]
	}
	for _, p := range prims {
		if p.anyValue {
			m[p.name] = p.values
		}
		if p.anyCompan {
			m["_"+p.name] = p.companions
		}
	}
	return nil
}

func add(m map[string]any, name string, v any, repeats bool) {
	if !repeats {
		m[name] = v
		return
	}
	a, _ := m[name].([]any)
	m[name] = append(a, v)
}

// complexAttrs reads the attributes of a complex element: id, and url
// for an extension (xml.html: "a few properties are represented as
// attributes").
func (r *xmlReader) complexAttrs(el *element, t *TypeDef, path string, m map[string]any) error {
	isExt := t == extensionType() && path == "Extension"
	for _, a := range el.attrs {
		if isDecl(a) {
			continue
		}
		sp, ok := r.attrSpace(a)
		switch {
		case !ok:
			return r.errorf("unbound namespace prefix %q", a.Name.Space)
		case sp == xsiNS:
			continue
		case sp != "":
			return r.errorf("unexpected attribute %s", qname(a.Name))
		case a.Name.Local == "id":
			m["id"] = a.Value
		case a.Name.Local == "url" && isExt:
			m["url"] = a.Value
		case a.Name.Local == "value":
			return r.errorf("a value attribute is not allowed on <%s>, a complex element", el.local())
		default:
			return r.errorf("unexpected attribute %s on <%s>", a.Name.Local, el.local())
		}
	}
	return nil
}

// primitive decodes a primitive element: the value attribute, and the id
// attribute and extensions that form its "_name" companion.
func (r *xmlReader) primitive(el *element, code string) (value any, companion map[string]any, err error) {
	hasValue := false
	for _, a := range el.attrs {
		if isDecl(a) {
			continue
		}
		sp, ok := r.attrSpace(a)
		switch {
		case !ok:
			return nil, nil, r.errorf("unbound namespace prefix %q", a.Name.Space)
		case sp == xsiNS:
			continue
		case sp != "":
			return nil, nil, r.errorf("unexpected attribute %s", qname(a.Name))
		case a.Name.Local == "value":
			if hasValue {
				return nil, nil, r.errorf("duplicate value attribute")
			}
			hasValue = true
			value, err = r.primitiveValue(code, a.Value)
			if err != nil {
				return nil, nil, err
			}
		case a.Name.Local == "id":
			if companion == nil {
				companion = map[string]any{}
			}
			companion["id"] = a.Value
		default:
			return nil, nil, r.errorf("unexpected attribute %s on <%s>", a.Name.Local, el.local())
		}
	}
	et := extensionType()
	var exts []any
	for {
		tok, child, err := r.next()
		if err != nil {
			return nil, nil, err
		}
		if end, ok := tok.(xml.EndElement); ok {
			if err := r.end(el, end); err != nil {
				return nil, nil, err
			}
			break
		}
		if child.space != fhirNS || child.local() != "extension" {
			return nil, nil, r.errorf("element <%s> is not allowed in <%s>, a primitive (only extension is)", child.local(), el.local())
		}
		n := r.push("extension")
		r.pushIndex(len(exts))
		ext := map[string]any{}
		if err := r.complexAttrs(child, et, "Extension", ext); err != nil {
			return nil, nil, err
		}
		if err := r.content(et, "Extension", ext, false, child); err != nil {
			return nil, nil, err
		}
		exts = append(exts, ext)
		r.loc = r.loc[:n]
	}
	if exts != nil {
		if companion == nil {
			companion = map[string]any{}
		}
		companion["extension"] = exts
	}
	if !hasValue && companion == nil {
		return nil, nil, r.errorf("<%s> has neither a value attribute nor extensions", el.local())
	}
	return value, companion, nil
}

// primitiveValue converts a value attribute to the JSON type of the
// primitive (json.html#primitive): boolean → bool; integer, decimal,
// positiveInt and unsignedInt → json.Number as written; others → string.
func (r *xmlReader) primitiveValue(code, s string) (any, error) {
	switch code {
	case "boolean":
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, r.errorf("boolean value %q is not true or false", abbrev(s))
	case "integer", "decimal", "positiveInt", "unsignedInt":
		if !validNumber(s) {
			return nil, r.errorf("%s value %q is not a number", code, abbrev(s))
		}
		return json.Number(s), nil
	}
	return s, nil
}

// wrapped decodes a Resource-typed element: one child element named after
// the resource type (xml.html: contained resources and Bundle entries).
func (r *xmlReader) wrapped(el *element) (map[string]any, error) {
	if err := r.ignoreAttrs(el, "resource container"); err != nil {
		return nil, err
	}
	var res map[string]any
	for {
		tok, child, err := r.next()
		if err != nil {
			return nil, err
		}
		if end, ok := tok.(xml.EndElement); ok {
			if err := r.end(el, end); err != nil {
				return nil, err
			}
			break
		}
		if res != nil {
			return nil, r.errorf("<%s> holds more than one resource", el.local())
		}
		r.depth++
		res, err = r.resource(child)
		r.depth--
		if err != nil {
			return nil, err
		}
	}
	if res == nil {
		return nil, r.errorf("<%s> holds no resource", el.local())
	}
	return res, nil
}

// xhtml reads the narrative div el and returns it as a string: the bytes
// of the document when the div is self-contained (it declares the XHTML
// namespace itself and every prefix it uses is declared inside it),
// otherwise a fresh serialisation.
func (r *xmlReader) xhtml(el *element) (string, error) {
	startOff := r.tok
	verbatim := el.raw.Space == ""
	if verbatim {
		own := false
		for _, a := range el.attrs {
			if a.Name.Space == "" && a.Name.Local == "xmlns" {
				own = a.Value == xhtmlNS
			}
		}
		verbatim = own
	}
	base := el.nsMark
	check := func(prefix string) {
		if prefix == "" || prefix == "xml" || prefix == "xmlns" {
			return
		}
		for i := len(r.ns) - 1; i >= 0; i-- {
			if r.ns[i].prefix == prefix {
				if i < base {
					verbatim = false
				}
				return
			}
		}
	}
	stack := []*element{el}
	for _, a := range el.attrs {
		check(a.Name.Space)
	}
	for len(stack) > 0 {
		tok, err := r.token()
		if err == io.EOF {
			return "", r.errorf("unexpected end of document in the narrative")
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) > maxDepth {
				return "", r.errorf("narrative nested deeper than %d", maxDepth)
			}
			child, err := r.start(t)
			if err != nil {
				return "", err
			}
			check(t.Name.Space)
			for _, a := range child.attrs {
				if !isDecl(a) {
					if _, ok := r.attrSpace(a); !ok {
						return "", r.errorf("unbound namespace prefix %q", a.Name.Space)
					}
					check(a.Name.Space)
				}
			}
			stack = append(stack, child)
		case xml.EndElement:
			if err := r.end(stack[len(stack)-1], t); err != nil {
				return "", err
			}
			stack = stack[:len(stack)-1]
		}
	}
	raw := r.data[startOff:r.dec.InputOffset()]
	if verbatim {
		return string(raw), nil
	}
	s, err := serializeXHTML(raw, r.ns[:base:base]) // the outer bindings, intact again
	if err != nil {
		return "", r.errorf("narrative: %v", err)
	}
	return s, nil
}

// serializeXHTML writes the narrative div raw (a well-formed element,
// read with the outer namespace bindings in scope) as a self-contained
// element: every element whose namespace differs from its parent's
// declares it as the default namespace, prefixed attributes get their
// own declarations, and text and attribute values are escaped afresh.
func serializeXHTML(raw []byte, outer []nsBinding) (string, error) {
	r := &xmlReader{data: raw, dec: xml.NewDecoder(bytes.NewReader(raw)), ns: outer}
	r.dec.Strict = true
	type frame struct {
		el    *element
		space string
	}
	var stack []frame
	b := make([]byte, 0, len(raw)+len(xhtmlNS))
	open := false // a start tag awaits its '>'
	flush := func() {
		if open {
			b = append(b, '>')
			open = false
		}
	}
	for {
		tok, err := r.token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			flush()
			el, err := r.start(t)
			if err != nil {
				return "", err
			}
			b = append(b, '<')
			b = append(b, t.Name.Local...)
			if len(stack) == 0 || stack[len(stack)-1].space != el.space {
				b = append(b, ` xmlns="`...)
				b = appendXMLAttr(b, el.space)
				b = append(b, '"')
			}
			k := 0
			for _, a := range el.attrs {
				if isDecl(a) {
					continue
				}
				sp, ok := r.attrSpace(a)
				switch {
				case !ok:
					return "", fmt.Errorf("unbound namespace prefix %q", a.Name.Space)
				case sp == "":
					b = append(b, ' ')
				case sp == xmlNS:
					b = append(b, " xml:"...)
				default:
					p := "a" + strconv.Itoa(k)
					k++
					b = append(b, " xmlns:"+p+`="`...)
					b = appendXMLAttr(b, sp)
					b = append(b, `" `+p+":"...)
				}
				b = append(b, a.Name.Local...)
				b = append(b, `="`...)
				b = appendXMLAttr(b, a.Value)
				b = append(b, '"')
			}
			stack = append(stack, frame{el, el.space})
			open = true
		case xml.EndElement:
			if len(stack) == 0 {
				return "", fmt.Errorf("unexpected </%s>", qname(t.Name))
			}
			top := stack[len(stack)-1]
			if err := r.end(top.el, t); err != nil {
				return "", err
			}
			stack = stack[:len(stack)-1]
			if open {
				b = append(b, "/>"...)
				open = false
			} else {
				b = append(b, "</"...)
				b = append(b, t.Name.Local...)
				b = append(b, '>')
			}
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			flush()
			b = appendXMLText(b, string(t))
		case xml.Comment:
			if len(stack) == 0 {
				continue
			}
			flush()
			b = append(b, "<!--"...)
			b = append(b, t...)
			b = append(b, "-->"...)
		}
	}
	return string(b), nil
}

// appendXMLText appends s escaped as element content.
func appendXMLText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '\r':
			b = append(b, "&#xD;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendXMLAttr appends s escaped as a double-quoted attribute value; tab,
// newline and carriage return become character references so that
// attribute-value normalisation (XML 1.0 §3.3.3) keeps them.
func appendXMLAttr(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&quot;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	return append(b, s[start:]...)
}

// validXMLText reports whether s is valid UTF-8 made only of characters
// XML 1.0 can carry (its Char production); JSON strings may hold others,
// such as U+0001, which no XML document can represent.
func validXMLText(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF || r >= 0xD800 && r <= 0xDFFF {
			return false
		}
		i += size
	}
	return true
}

// MarshalXML writes a resource in the FHIR XML format
// (https://hl7.org/fhir/R4/xml.html), the reverse of DecodeXML: the root
// element is named after resourceType and declares the FHIR namespace;
// elements follow the order of the definitions (xml.html: "elements must
// always appear in the order documented"); a primitive is an element with
// a value attribute, its "_name" companion (json.html#primitive) merged in
// as an id attribute and extension children, repeating primitives paired
// item by item; an element's "id" and an extension's "url" are attributes;
// contained and other Resource-typed elements wrap an element named after
// the resource type; the narrative div string is written as it is, raw
// XHTML. The output starts with an XML declaration and has no indentation.
//
// It returns a *hale.Error of KindInvalid, naming the element's location,
// for what XML cannot carry: a missing or unknown resourceType, a property
// the definitions do not know, a value of the wrong shape for its element
// (an object for a primitive, a string for a complex element), a null
// outside a primitive's aligned arrays, a string with characters XML 1.0
// excludes (such as U+0001), an invalid json.Number, and a narrative that
// is not one well-formed XHTML div element.
func MarshalXML(res map[string]any) ([]byte, error) {
	w := &xmlWriter{buf: make([]byte, 0, 2048)}
	w.buf = append(w.buf, `<?xml version="1.0" encoding="UTF-8"?>`...)
	if err := w.resource(res, true); err != nil {
		return nil, err
	}
	return w.buf, nil
}

type xmlWriter struct {
	buf []byte
	loc []byte
}

func (w *xmlWriter) errorf(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	e := &hale.Error{Kind: hale.KindInvalid, Op: "fhir.MarshalXML", Message: msg}
	if len(w.loc) > 0 {
		e.Message = string(w.loc) + ": " + msg
		e.Issues = []hale.Issue{{Severity: "error", Code: "structure", Diagnostics: "cannot write as XML: " + e.Message, Expression: []string{string(w.loc)}}}
	}
	return e
}

func (w *xmlWriter) push(s string) int {
	n := len(w.loc)
	if n > 0 {
		w.loc = append(w.loc, '.')
	}
	w.loc = append(w.loc, s...)
	return n
}

func (w *xmlWriter) resource(m map[string]any, root bool) error {
	rt, _ := m["resourceType"].(string)
	t := defs().types[rt]
	if t == nil || t.Kind != KindResource || t.Abstract {
		if rt == "" {
			return w.errorf("missing resourceType")
		}
		return w.errorf("unknown resourceType %q", rt)
	}
	n := len(w.loc)
	if n == 0 {
		w.loc = append(w.loc, rt...)
	}
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, rt...)
	if root {
		w.buf = append(w.buf, ` xmlns="`+fhirNS+`"`...)
	}
	w.buf = append(w.buf, '>')
	if err := w.children(t, rt, m, true); err != nil {
		return err
	}
	w.buf = append(w.buf, "</"...)
	w.buf = append(w.buf, rt...)
	w.buf = append(w.buf, '>')
	w.loc = w.loc[:n]
	return nil
}

// children writes the child elements of m, the element at path within t,
// in definition order.
func (w *xmlWriter) children(t *TypeDef, path string, m map[string]any, isResource bool) error {
	cs := t.childrenOf(path)
	isExt := t == extensionType() && path == "Extension"
	type named struct {
		name string
		pos  int
	}
	names := make([]named, 0, len(m))
	for k := range m {
		name := k
		if len(k) > 1 && k[0] == '_' {
			name = k[1:]
			if _, both := m[name]; both {
				continue // listed once, under its value
			}
		}
		switch {
		case isResource && k == "resourceType":
			continue
		case !isResource && k == "id", isExt && k == "url":
			continue // attributes
		case !isResource && k == "_id", isExt && k == "_url":
			return w.errorf("%q: an XML attribute cannot carry extensions", k)
		}
		pos := -1
		if cs != nil {
			if p, ok := cs.order[name]; ok {
				pos = p
			}
		}
		if pos < 0 {
			n := w.push(k)
			err := w.errorf("unknown element %q", k)
			w.loc = w.loc[:n]
			return err
		}
		names = append(names, named{name, pos})
	}
	// insertion sort: objects are small
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && (names[j].pos < names[j-1].pos || names[j].pos == names[j-1].pos && names[j].name < names[j-1].name); j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
	for _, nm := range names {
		c := cs.byName[nm.name]
		n := w.push(nm.name)
		if err := w.element(t, c, nm.name, m[nm.name], m["_"+nm.name]); err != nil {
			return err
		}
		w.loc = w.loc[:n]
	}
	return nil
}

// element writes the element name (c: its definition and type), with
// value v and, for a primitive, companion comp.
func (w *xmlWriter) element(t *TypeDef, c choice, name string, v, comp any) error {
	code := c.code
	nt := defs().types[code]
	if code != "xhtml" && nt != nil && nt.Kind == KindPrimitive {
		vs, vArr := v.([]any)
		cs, cArr := comp.([]any)
		if !vArr && !cArr {
			return w.primitive(name, code, v, comp)
		}
		if v != nil && !vArr || comp != nil && !cArr {
			return w.errorf("%q and %q must both be arrays", name, "_"+name)
		}
		if v != nil && comp != nil && len(vs) != len(cs) {
			return w.errorf("%q and %q have different lengths", name, "_"+name)
		}
		for i := 0; i < max(len(vs), len(cs)); i++ {
			var vi, ci any
			if i < len(vs) {
				vi = vs[i]
			}
			if i < len(cs) {
				ci = cs[i]
			}
			n := len(w.loc)
			w.loc = append(w.loc, '[')
			w.loc = strconv.AppendInt(w.loc, int64(i), 10)
			w.loc = append(w.loc, ']')
			if err := w.primitive(name, code, vi, ci); err != nil {
				return err
			}
			w.loc = w.loc[:n]
		}
		return nil
	}
	if comp != nil {
		return w.errorf("%q: only primitive elements have a _ companion", "_"+name)
	}
	if a, ok := v.([]any); ok {
		for i, x := range a {
			n := len(w.loc)
			w.loc = append(w.loc, '[')
			w.loc = strconv.AppendInt(w.loc, int64(i), 10)
			w.loc = append(w.loc, ']')
			if err := w.single(t, c, name, x); err != nil {
				return err
			}
			w.loc = w.loc[:n]
		}
		return nil
	}
	return w.single(t, c, name, v)
}

// single writes one value of a non-primitive element.
func (w *xmlWriter) single(t *TypeDef, c choice, name string, v any) error {
	code := c.code
	if code == "xhtml" {
		s, ok := v.(string)
		if !ok {
			return w.errorf("the narrative must be a string")
		}
		if err := checkXHTMLDiv(s); err != nil {
			return w.errorf("the narrative is not one well-formed XHTML div: %v", err)
		}
		w.buf = append(w.buf, s...)
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return w.errorf("null value")
		}
		return w.errorf("value must be an object")
	}
	nt := defs().types[code]
	if code == "Resource" || nt != nil && nt.Kind == KindResource {
		w.open(name)
		w.buf = append(w.buf, '>')
		if err := w.resource(m, false); err != nil {
			return err
		}
		w.close(name)
		return nil
	}
	ct, cpath := t, c.el.Path
	if t.childrenOf(cpath) == nil {
		if nt == nil || nt.Kind != KindComplex {
			return w.errorf("element %q has no definition to write it by", name)
		}
		ct, cpath = nt, nt.Name
	}
	w.open(name)
	if id, ok := m["id"]; ok {
		if err := w.attr("id", id); err != nil {
			return err
		}
	}
	if ct == extensionType() && cpath == "Extension" {
		if u, ok := m["url"]; ok {
			if err := w.attr("url", u); err != nil {
				return err
			}
		}
	}
	w.buf = append(w.buf, '>')
	mark := len(w.buf)
	if err := w.children(ct, cpath, m, false); err != nil {
		return err
	}
	if len(w.buf) == mark {
		w.buf = append(w.buf[:mark-1], "/>"...)
		return nil
	}
	w.close(name)
	return nil
}

func (w *xmlWriter) open(name string) {
	w.buf = append(w.buf, '<')
	w.buf = append(w.buf, name...)
}

func (w *xmlWriter) close(name string) {
	w.buf = append(w.buf, "</"...)
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, '>')
}

// attr writes name="v" for a primitive JSON value v.
func (w *xmlWriter) attr(name string, v any) error {
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, name...)
	w.buf = append(w.buf, `="`...)
	switch x := v.(type) {
	case string:
		if !validXMLText(x) {
			return w.errorf("string %q holds characters XML cannot represent", abbrev(x))
		}
		w.buf = appendXMLAttr(w.buf, x)
	case bool:
		w.buf = strconv.AppendBool(w.buf, x)
	case json.Number:
		if !validNumber(string(x)) {
			return w.errorf("invalid number %q", string(x))
		}
		w.buf = append(w.buf, x...)
	case float64:
		w.buf = strconv.AppendFloat(w.buf, x, 'g', -1, 64)
	case int:
		w.buf = strconv.AppendInt(w.buf, int64(x), 10)
	case int64:
		w.buf = strconv.AppendInt(w.buf, x, 10)
	case nil:
		return w.errorf("null value")
	default:
		return w.errorf("a %T cannot be an XML attribute value", v)
	}
	w.buf = append(w.buf, '"')
	return nil
}

// primitive writes one primitive element: value v (nil: none) and
// companion comp (nil: none) holding id and extension.
func (w *xmlWriter) primitive(name, code string, v, comp any) error {
	if v == nil && comp == nil {
		return w.errorf("null value without a companion in %q", "_"+name)
	}
	var cm map[string]any
	if comp != nil {
		var ok bool
		if cm, ok = comp.(map[string]any); !ok {
			return w.errorf("%q must hold an object", "_"+name)
		}
		for k := range cm {
			if k != "id" && k != "extension" {
				return w.errorf("unknown element %q in %q", k, "_"+name)
			}
		}
	}
	w.open(name)
	if id, ok := cm["id"]; ok {
		if err := w.attr("id", id); err != nil {
			return err
		}
	}
	if v != nil {
		switch v.(type) {
		case map[string]any, []any:
			return w.errorf("a %s value must not be an object or array", code)
		}
		if err := w.attr("value", v); err != nil {
			return err
		}
	}
	ext, ok := cm["extension"]
	if !ok {
		w.buf = append(w.buf, "/>"...)
		return nil
	}
	w.buf = append(w.buf, '>')
	exts, ok := ext.([]any)
	if !ok {
		return w.errorf("%q.extension must be an array", "_"+name)
	}
	et := extensionType()
	c := choice{el: defs().types["Element"].Element("Element.extension"), code: "Extension"}
	n := w.push("extension")
	for i, x := range exts {
		m := len(w.loc)
		w.loc = append(w.loc, '[')
		w.loc = strconv.AppendInt(w.loc, int64(i), 10)
		w.loc = append(w.loc, ']')
		if err := w.single(et, c, "extension", x); err != nil {
			return err
		}
		w.loc = w.loc[:m]
	}
	w.loc = w.loc[:n]
	w.close(name)
	return nil
}

// checkXHTMLDiv checks that s is one well-formed element, a div in the
// XHTML namespace with every prefix it uses declared inside it
// (narrative.html: the div element with its xmlns), by reading it as
// DecodeXML reads a narrative.
func checkXHTMLDiv(s string) error {
	if !validXMLText(s) {
		return errors.New("it holds characters XML cannot represent")
	}
	data := []byte(s)
	r := &xmlReader{data: data, dec: xml.NewDecoder(bytes.NewReader(data)), ns: []nsBinding{{"xml", xmlNS}}}
	r.dec.Strict = true
	tok, err := r.token()
	if err == io.EOF {
		return errors.New("it is empty")
	}
	if err != nil {
		return xmlCause(err)
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return errors.New("it does not start with <div")
	}
	el, err := r.start(start)
	if err != nil {
		return xmlCause(err)
	}
	if el.space != xhtmlNS || el.local() != "div" {
		return fmt.Errorf("the root is <%s> in namespace %q", el.local(), el.space)
	}
	if _, err := r.xhtml(el); err != nil {
		return xmlCause(err)
	}
	for {
		tok, err := r.token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return xmlCause(err)
		}
		if cd, ok := tok.(xml.CharData); !ok || !isXMLSpace(cd) {
			return errors.New("it has content after the div")
		}
	}
}

// xmlCause returns the message of a DecodeXML error without its prefix.
func xmlCause(err error) error {
	var he *hale.Error
	if errors.As(err, &he) {
		msg := he.Message
		if _, after, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "invalid FHIR XML") {
			msg = after
		}
		return errors.New(msg)
	}
	return err
}
