package fhirpath

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The lexical structure follows http://hl7.org/fhirpath/N1/#lexical-elements
// and the grammar's tokens (http://hl7.org/fhirpath/N1/grammar.html).

type tokKind uint8

const (
	tEOF      tokKind = iota
	tIdent            // identifier or keyword
	tDelim            // `delimited identifier`
	tString           // 'string'
	tNumber           // 123, 1.5
	tDate             // @2015-02-04 (text without @)
	tDateTime         // @2015-02-04T14:34
	tTime             // @T14:34 (text without @T)
	tSpecial          // $this, $index, $total (text without $)
	tExt              // %name or %`name` or %'name' (text without %)
	tPunct            // operators and brackets
)

type token struct {
	kind tokKind
	text string // decoded text
	pos  int
}

type lexer struct {
	src  string
	pos  int
	toks []token
}

func syntaxErr(src string, pos int, format string, args ...any) *Error {
	e := errorf(format, args...)
	e.Class, e.Pos, e.Expr = ClassSyntax, pos, src
	return e
}

func lex(src string) ([]token, error) {
	l := &lexer{src: src}
	for {
		if err := l.skipSpace(); err != nil {
			return nil, err
		}
		if l.pos >= len(src) {
			l.toks = append(l.toks, token{kind: tEOF, pos: l.pos})
			return l.toks, nil
		}
		if err := l.next(); err != nil {
			return nil, err
		}
	}
}

func (l *lexer) skipSpace() error {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f':
			l.pos++
		case strings.HasPrefix(l.src[l.pos:], "//"):
			i := strings.IndexByte(l.src[l.pos:], '\n')
			if i < 0 {
				l.pos = len(l.src)
			} else {
				l.pos += i + 1
			}
		case strings.HasPrefix(l.src[l.pos:], "/*"):
			i := strings.Index(l.src[l.pos+2:], "*/")
			if i < 0 {
				return syntaxErr(l.src, l.pos, "unterminated comment")
			}
			l.pos += i + 4
		default:
			return nil
		}
	}
	return nil
}

func isIdentStart(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isIdentChar(c byte) bool  { return isIdentStart(c) || (c >= '0' && c <= '9') }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }

func (l *lexer) emit(k tokKind, text string, pos int) { l.toks = append(l.toks, token{k, text, pos}) }

func (l *lexer) next() error {
	src, start := l.src, l.pos
	c := src[l.pos]
	switch {
	case isIdentStart(c):
		for l.pos < len(src) && isIdentChar(src[l.pos]) {
			l.pos++
		}
		l.emit(tIdent, src[start:l.pos], start)
	case isDigit(c):
		for l.pos < len(src) && isDigit(src[l.pos]) {
			l.pos++
		}
		if l.pos+1 < len(src) && src[l.pos] == '.' && isDigit(src[l.pos+1]) {
			l.pos++
			for l.pos < len(src) && isDigit(src[l.pos]) {
				l.pos++
			}
		}
		l.emit(tNumber, src[start:l.pos], start)
	case c == '`' || c == '\'':
		s, err := l.quoted(c)
		if err != nil {
			return err
		}
		if c == '`' {
			l.emit(tDelim, s, start)
		} else {
			l.emit(tString, s, start)
		}
	case c == '@':
		return l.dateTime()
	case c == '$':
		l.pos++
		for l.pos < len(src) && isIdentChar(src[l.pos]) {
			l.pos++
		}
		name := src[start+1 : l.pos]
		if name != "this" && name != "index" && name != "total" {
			return syntaxErr(src, start, "unknown special variable $%s", name)
		}
		l.emit(tSpecial, name, start)
	case c == '%':
		l.pos++
		if l.pos >= len(src) {
			return syntaxErr(src, start, "missing name after %%")
		}
		switch d := src[l.pos]; {
		case d == '`' || d == '\'':
			s, err := l.quoted(d)
			if err != nil {
				return err
			}
			l.emit(tExt, s, start)
		case isIdentStart(d):
			b := l.pos
			for l.pos < len(src) && (isIdentChar(src[l.pos]) || src[l.pos] == '-') {
				l.pos++
			}
			l.emit(tExt, src[b:l.pos], start)
		default:
			return syntaxErr(src, start, "missing name after %%")
		}
	default:
		for _, op := range [...]string{"<=", ">=", "!=", "!~"} {
			if strings.HasPrefix(src[l.pos:], op) {
				l.pos += 2
				l.emit(tPunct, op, start)
				return nil
			}
		}
		if strings.IndexByte(".[](){},+-*/&|=<>~", c) >= 0 {
			l.pos++
			l.emit(tPunct, src[start:l.pos], start)
			return nil
		}
		r, _ := utf8.DecodeRuneInString(src[l.pos:])
		return syntaxErr(src, start, "unexpected character %q", r)
	}
	return nil
}

// quoted reads a '…' or `…` literal with FHIRPath escapes.
func (l *lexer) quoted(q byte) (string, error) {
	start := l.pos
	l.pos++
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == q {
			l.pos++
			return b.String(), nil
		}
		if c != '\\' {
			b.WriteByte(c)
			l.pos++
			continue
		}
		if l.pos+1 >= len(l.src) {
			break
		}
		e := l.src[l.pos+1]
		l.pos += 2
		switch e {
		case '\'', '"', '`', '\\', '/':
			b.WriteByte(e)
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			if l.pos+4 > len(l.src) {
				return "", syntaxErr(l.src, l.pos-2, "bad \\u escape")
			}
			n, err := strconv.ParseUint(l.src[l.pos:l.pos+4], 16, 32)
			if err != nil {
				return "", syntaxErr(l.src, l.pos-2, "bad \\u escape")
			}
			l.pos += 4
			b.WriteRune(rune(n))
		default:
			return "", syntaxErr(l.src, l.pos-2, "unknown escape \\%c", e)
		}
	}
	return "", syntaxErr(l.src, start, "unterminated %c literal", q)
}

// dateTime reads @date, @dateTime or @Ttime.
func (l *lexer) dateTime() error {
	src, start := l.src, l.pos
	l.pos++
	if l.pos < len(src) && src[l.pos] == 'T' {
		l.pos++
		b := l.pos
		l.timePart()
		if l.pos < len(src) && (src[l.pos] == 'Z' || l.tzAhead()) {
			return syntaxErr(src, start, "a time literal has no timezone")
		}
		text := src[b:l.pos]
		if _, ok := ParseTime(text, true); !ok {
			return syntaxErr(src, start, "bad time literal @T%s", text)
		}
		l.emit(tTime, text, start)
		return nil
	}
	b := l.pos
	l.digits(4)
	for _, n := range [2]int{2, 2} {
		if l.pos+n < len(src) && src[l.pos] == '-' && isDigit(src[l.pos+1]) {
			l.pos++
			l.digits(n)
		}
	}
	if l.pos < len(src) && src[l.pos] == 'T' {
		l.pos++
		if l.pos < len(src) && isDigit(src[l.pos]) {
			l.timePart()
			if l.pos < len(src) && src[l.pos] == 'Z' {
				l.pos++
			} else if l.tzAhead() {
				l.pos += 6
			}
		}
		text := src[b:l.pos]
		if _, ok := ParseDateTime(text, true); !ok {
			return syntaxErr(src, start, "bad dateTime literal @%s", text)
		}
		l.emit(tDateTime, text, start)
		return nil
	}
	text := src[b:l.pos]
	if _, ok := ParseDate(text); !ok {
		return syntaxErr(src, start, "bad date literal @%s", text)
	}
	l.emit(tDate, text, start)
	return nil
}

func (l *lexer) digits(n int) {
	for i := 0; i < n && l.pos < len(l.src) && isDigit(l.src[l.pos]); i++ {
		l.pos++
	}
}

func (l *lexer) timePart() {
	src := l.src
	l.digits(2)
	for i := 0; i < 2; i++ {
		if l.pos+1 < len(src) && src[l.pos] == ':' && isDigit(src[l.pos+1]) {
			l.pos++
			l.digits(2)
		}
	}
	if l.pos+1 < len(src) && src[l.pos] == '.' && isDigit(src[l.pos+1]) {
		l.pos++
		for l.pos < len(src) && isDigit(src[l.pos]) {
			l.pos++
		}
	}
}

// tzAhead reports whether a ±hh:mm offset follows.
func (l *lexer) tzAhead() bool {
	s := l.src[l.pos:]
	return len(s) >= 6 && (s[0] == '+' || s[0] == '-') && isDigit(s[1]) && isDigit(s[2]) && s[3] == ':' && isDigit(s[4]) && isDigit(s[5])
}
