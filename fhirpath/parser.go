package fhirpath

import (
	"strconv"
	"strings"
)

// The parser is a precedence-climbing parser for the grammar of
// http://hl7.org/fhirpath/N1/grammar.html. Operator precedence, from
// loosest to tightest (http://hl7.org/fhirpath/N1/#operator-precedence):
//
//	implies; or xor; and; in contains; = ~ != !~; < > <= >=; |; is as;
//	+ - &; * / div mod; unary + -; . and [] (invocation, indexer)

var binaryPrec = map[string]int{
	"implies": 1,
	"or":      2, "xor": 2,
	"and": 3,
	"in":  4, "contains": 4,
	"=": 5, "~": 5, "!=": 5, "!~": 5,
	"<": 6, ">": 6, "<=": 6, ">=": 6,
	"|":  7,
	"is": 8, "as": 8,
	"+": 9, "-": 9, "&": 9,
	"*": 10, "/": 10, "div": 10, "mod": 10,
}

type parser struct {
	src   string
	toks  []token
	i     int
	depth int
}

func parse(src string) (node, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks}
	if p.peek().kind == tEOF {
		return nil, syntaxErr(src, 0, "empty expression")
	}
	n, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, syntaxErr(src, t.pos, "unexpected %s", describe(t))
	}
	return n, nil
}

func describe(t token) string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tString:
		return "string '" + t.text + "'"
	}
	return "'" + t.text + "'"
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) take() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}

func (p *parser) expect(s string) error {
	t := p.peek()
	if t.kind != tPunct || t.text != s {
		return syntaxErr(p.src, t.pos, "expected '%s', found %s", s, describe(t))
	}
	p.i++
	return nil
}

// binaryOp returns the operator at the current token, if any.
func (p *parser) binaryOp() (string, int, bool) {
	t := p.peek()
	if t.kind != tPunct && t.kind != tIdent {
		return "", 0, false
	}
	prec, ok := binaryPrec[t.text]
	return t.text, prec, ok
}

const maxDepth = 200

func (p *parser) expr(minPrec int) (node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxDepth {
		return nil, syntaxErr(p.src, p.peek().pos, "expression nested too deeply")
	}
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		op, prec, ok := p.binaryOp()
		if !ok || prec < minPrec {
			return left, nil
		}
		opTok := p.take()
		if op == "is" || op == "as" {
			ts, err := p.typeSpecifier()
			if err != nil {
				return nil, err
			}
			left = &typeOpNode{p: opTok.pos, op: op, x: left, ts: ts}
			continue
		}
		right, err := p.expr(prec + 1)
		if err != nil {
			return nil, err
		}
		left = newBinary(opTok.pos, op, left, right)
	}
}

func (p *parser) unary() (node, error) {
	if p.isPunct("+") || p.isPunct("-") {
		t := p.take()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxDepth {
			return nil, syntaxErr(p.src, t.pos, "expression nested too deeply")
		}
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		if t.text == "+" {
			return &unaryNode{p: t.pos, x: x}, nil
		}
		if lit, ok := x.(*litNode); ok && len(lit.v) == 1 {
			if v, ok := lit.v[0].sys(); ok {
				switch v.k {
				case sysInteger:
					return &litNode{p: t.pos, v: Collection{{val: -v.i}}}, nil
				case sysDecimal:
					return &litNode{p: t.pos, v: Collection{{val: v.d.Neg()}}}, nil
				case sysQuantity:
					return &litNode{p: t.pos, v: Collection{{val: Quantity{Value: v.q.Value.Neg(), Unit: v.q.Unit}}}}, nil
				}
			}
		}
		return &unaryNode{p: t.pos, neg: true, x: x}, nil
	}
	return p.postfix()
}

func (p *parser) postfix() (node, error) {
	n, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isPunct("."):
			p.take()
			n, err = p.invocation(n)
			if err != nil {
				return nil, err
			}
		case p.isPunct("["):
			t := p.take()
			idx, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			n = &indexerNode{p: t.pos, target: n, idx: idx}
		default:
			return n, nil
		}
	}
}

func (p *parser) term() (node, error) {
	t := p.peek()
	switch t.kind {
	case tNumber:
		p.take()
		return p.number(t)
	case tString:
		p.take()
		return &litNode{p: t.pos, v: Collection{{val: t.text}}}, nil
	case tDate:
		p.take()
		d, _ := ParseDate(t.text)
		return &litNode{p: t.pos, v: Collection{{val: d}}}, nil
	case tDateTime:
		p.take()
		d, _ := ParseDateTime(t.text, true)
		return &litNode{p: t.pos, v: Collection{{val: d}}}, nil
	case tTime:
		p.take()
		d, _ := ParseTime(t.text, true)
		return &litNode{p: t.pos, v: Collection{{val: d}}}, nil
	case tSpecial:
		p.take()
		return &specialNode{p: t.pos, name: t.text}, nil
	case tExt:
		p.take()
		return &varNode{p: t.pos, name: t.text}, nil
	case tIdent:
		if (t.text == "true" || t.text == "false") && !(p.toks[p.i+1].kind == tPunct && p.toks[p.i+1].text == "(") {
			p.take()
			return &litNode{p: t.pos, v: boolColl(t.text == "true")}, nil
		}
		return p.invocation(nil)
	case tDelim:
		return p.invocation(nil)
	case tPunct:
		switch t.text {
		case "(":
			p.take()
			n, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			return n, nil
		case "{":
			p.take()
			if err := p.expect("}"); err != nil {
				return nil, err
			}
			return &litNode{p: t.pos}, nil
		}
	}
	return nil, syntaxErr(p.src, t.pos, "unexpected %s", describe(t))
}

// number reads an integer, a decimal or a quantity (number followed by a
// unit string or a calendar duration keyword).
func (p *parser) number(t token) (node, error) {
	next := p.peek()
	isDec := strings.Contains(t.text, ".")
	if next.kind == tString || (next.kind == tIdent && isCalendarKeyword(next.text)) {
		p.take()
		d, ok := ParseDecimal(t.text)
		if !ok {
			return nil, syntaxErr(p.src, t.pos, "bad number %s", t.text)
		}
		if next.kind == tString {
			if _, ok := parseUnit(next.text); !ok && !validUnitSyntax(next.text) {
				return nil, syntaxErr(p.src, next.pos, "bad unit '%s'", next.text)
			}
		}
		return &litNode{p: t.pos, v: Collection{{val: Quantity{Value: d, Unit: next.text}}}}, nil
	}
	if isDec {
		d, ok := ParseDecimal(t.text)
		if !ok {
			return nil, syntaxErr(p.src, t.pos, "bad number %s", t.text)
		}
		return &litNode{p: t.pos, v: Collection{{val: d}}}, nil
	}
	n, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil {
		d, ok := ParseDecimal(t.text)
		if !ok {
			return nil, syntaxErr(p.src, t.pos, "bad number %s", t.text)
		}
		return &litNode{p: t.pos, v: Collection{{val: d}}}, nil
	}
	return &litNode{p: t.pos, v: Collection{{val: n}}}, nil
}

// validUnitSyntax accepts unit strings Hale does not convert but that are
// plausible UCUM (printable ASCII, no spaces).
func validUnitSyntax(u string) bool {
	if u == "" {
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] > '~' {
			return false
		}
	}
	return true
}

func (p *parser) identifier() (token, error) {
	t := p.peek()
	if t.kind != tIdent && t.kind != tDelim {
		return t, syntaxErr(p.src, t.pos, "expected an identifier, found %s", describe(t))
	}
	return p.take(), nil
}

// invocation parses a member name or function call applied to target (nil:
// the input of the expression).
func (p *parser) invocation(target node) (node, error) {
	t := p.peek()
	if t.kind == tSpecial {
		p.take()
		return &chainNode{target: target, next: &specialNode{p: t.pos, name: t.text}}, nil
	}
	id, err := p.identifier()
	if err != nil {
		return nil, err
	}
	if id.kind == tIdent && p.isPunct("(") {
		return p.function(target, id)
	}
	return &memberNode{p: id.pos, target: target, name: id.text}, nil
}

func (p *parser) function(target node, id token) (node, error) {
	p.take() // (
	fn := functions[id.text]
	if fn == nil {
		return nil, &Error{Expr: p.src, Pos: id.pos, Class: ClassSemantic, Msg: "unknown function " + id.text + "()"}
	}
	n := &funcNode{p: id.pos, target: target, name: id.text, fn: fn}
	if !p.isPunct(")") {
		for {
			if fn.typeArg && len(n.args) == 0 {
				ts, err := p.typeSpecifier()
				if err != nil {
					return nil, err
				}
				n.ts = ts
				n.args = append(n.args, &litNode{p: id.pos})
			} else {
				a, err := p.expr(0)
				if err != nil {
					return nil, err
				}
				n.args = append(n.args, a)
			}
			if !p.isPunct(",") {
				break
			}
			p.take()
		}
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	if len(n.args) < fn.min || len(n.args) > fn.max {
		return nil, &Error{Expr: p.src, Pos: id.pos, Class: ClassSemantic, Msg: "wrong number of arguments to " + id.text + "()"}
	}
	return n, nil
}

// typeSpecifier parses a (qualified) type name, checking that an
// unqualified one names a FHIR or System type.
func (p *parser) typeSpecifier() (typeSpec, error) {
	id, err := p.identifier()
	if err != nil {
		return typeSpec{}, err
	}
	ts := typeSpec{name: id.text}
	if p.isPunct(".") && (p.toks[p.i+1].kind == tIdent || p.toks[p.i+1].kind == tDelim) && (id.text == "FHIR" || id.text == "System") {
		p.take()
		n, _ := p.identifier()
		ts = typeSpec{ns: id.text, name: n.text}
	}
	// An unknown name is no match for is (R4's dom-r4b tests for R4B
	// types) and an error for as and ofType, raised when they run.
	ts.unknown = ts.ns == "" && typeOf(ts.name) == nil && systemKind(ts.name) == sysNone && ts.name != "Any"
	return ts, nil
}

// typeSpec is a type named in is, as or ofType.
type typeSpec struct {
	ns, name string
	unknown  bool
}

func (ts typeSpec) check() error {
	if ts.unknown {
		return &Error{Pos: -1, Class: ClassExecution, Msg: "unknown type " + ts.name}
	}
	return nil
}

func (ts typeSpec) String() string {
	if ts.ns == "" {
		return ts.name
	}
	return ts.ns + "." + ts.name
}

func systemKind(name string) sysKind {
	for k, n := range sysNames {
		if n == name && n != "" {
			return sysKind(k)
		}
	}
	return sysNone
}
