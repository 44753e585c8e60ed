package sqlsearch

import (
	"strings"
	"unicode/utf8"

	"github.com/hale-ehr/hale"
)

// value writes the condition one value of cl puts on index row a.
// search.html#prefix for the prefixes, #modifiers for the modifiers.
func (c *compiler) value(a string, cl hale.Clause, v hale.Value) error {
	w := c.w
	switch cl.Type {
	case hale.TypeToken:
		switch {
		case v.AnyCode && v.NoSystem:
			w.SQL(a, ".system = ''")
		case v.AnyCode:
			w.SQL(a, ".system = ")
			w.Arg(v.System)
		case v.NoSystem:
			w.SQL(a, ".code = ")
			w.Arg(v.Code)
			w.SQL(" AND ", a, ".system = ''")
		case v.System != "":
			w.SQL(a, ".code = ")
			w.Arg(v.Code)
			w.SQL(" AND ", a, ".system = ")
			w.Arg(v.System)
		default:
			w.SQL(a, ".code = ")
			w.Arg(v.Code)
		}
	case hale.TypeString:
		switch cl.Modifier {
		case "exact":
			w.SQL(a, ".exact = ")
			w.Arg(v.Code)
		case "contains":
			c.d.Contains(w, a+".norm", v.Code)
		default:
			c.d.NormPrefix(w, a+".norm", v.Code)
		}
	case hale.TypeURI:
		switch cl.Modifier {
		case "below":
			Range(w, a+".uri", v.Code)
		case "above":
			c.d.StartsWith(w, v.Code, a+".uri")
		default:
			w.SQL(a, ".uri = ")
			w.Arg(v.Code)
		}
	case hale.TypeReference:
		switch {
		case v.URL != "":
			// An absolute URL or canonical (search gives no other URL
			// values) never names a local target, so its rows have
			// target_id '': the literal lets both engines use the partial
			// index idx_reference_url (migration 0010). A URL without ':'
			// could be a local reference as written; it is checked on the
			// rows of the parameter.
			if strings.Contains(v.URL, ":") {
				w.SQL(a, ".target_id = '' AND ")
			}
			w.SQL(a, ".url = ")
			w.Arg(v.URL)
		case v.TargetType != "":
			w.SQL(a, ".target_id = ")
			w.Arg(v.TargetID)
			w.SQL(" AND ", a, ".target_type = ")
			w.Arg(v.TargetType)
		case v.TargetID != "":
			w.SQL(a, ".target_id = ")
			w.Arg(v.TargetID)
		default:
			w.SQL("1 = 0")
		}
	case hale.TypeDate:
		return c.dateCond(rangeCols{lo: a + ".lo", hi: a + ".hi"}, v)
	case hale.TypeNumber:
		return c.numberCond(a+".value", v.Prefix, v.Number, v.NumberLo, v.NumberHi)
	case hale.TypeQuantity:
		switch {
		case v.CanonCode != "":
			// Compare in canonical units. The precision range converts
			// with the value, so its middle is the canonical number.
			w.SQL(a, ".canon_code = ")
			w.Arg(v.CanonCode)
			w.SQL(" AND ")
			mid := v.CanonNumberLo + (v.CanonNumberHi-v.CanonNumberLo)/2
			return c.numberCond(a+".canon_value", v.Prefix, mid, v.CanonNumberLo, v.CanonNumberHi)
		case v.System != "" && v.Code != "":
			w.SQL(a, ".code = ")
			w.Arg(v.Code)
			w.SQL(" AND ", a, ".system = ")
			w.Arg(v.System)
			w.SQL(" AND ")
		case v.Code != "":
			w.SQL("(", a, ".code = ")
			w.Arg(v.Code)
			w.SQL(" OR ", a, ".unit = ")
			w.Arg(v.Code)
			w.SQL(") AND ")
		}
		return c.numberCond(a+".value", v.Prefix, v.Number, v.NumberLo, v.NumberHi)
	default:
		return invalid("parameter %q: cannot search values of type %q", cl.Param, cl.Type)
	}
	return nil
}

// rangeCols names a target range [lo, hi). For a point (the resource's
// last_updated) hi is lo+1, so a comparison of hi is rewritten on lo and
// stays an index range.
type rangeCols struct {
	lo, hi string
	point  bool
}

// hiCmp writes "hi op x" for op ">" or "<=".
func (c *compiler) hiCmp(rc rangeCols, op string, x int64) {
	if !rc.point {
		c.w.SQL(rc.hi, " ", op, " ")
		c.w.Arg(x)
		return
	}
	// lo+1 > x ⇔ lo >= x; lo+1 <= x ⇔ lo < x (integers).
	if op == ">" {
		c.w.SQL(rc.lo, " >= ")
	} else {
		c.w.SQL(rc.lo, " < ")
	}
	c.w.Arg(x)
}

func (c *compiler) loCmp(rc rangeCols, op string, x int64) {
	c.w.SQL(rc.lo, " ", op, " ")
	c.w.Arg(x)
}

// dateCond writes a date prefix's condition: the target range
// [lo, hi) against the searched range [v.Lo, v.Hi).
func (c *compiler) dateCond(rc rangeCols, v hale.Value) error {
	eq := func() {
		c.w.SQL("(")
		c.loCmp(rc, ">=", v.Lo)
		c.w.SQL(" AND ")
		c.hiCmp(rc, "<=", v.Hi)
		c.w.SQL(")")
	}
	c.w.SQL("(")
	switch v.Prefix {
	case "", "eq":
		eq()
	case "ne":
		c.w.SQL("NOT ")
		eq()
	case "gt":
		c.hiCmp(rc, ">", v.Hi)
	case "lt":
		c.loCmp(rc, "<", v.Lo)
	case "ge":
		c.hiCmp(rc, ">", v.Hi)
		c.w.SQL(" OR ")
		eq()
	case "le":
		c.loCmp(rc, "<", v.Lo)
		c.w.SQL(" OR ")
		eq()
	case "sa":
		c.loCmp(rc, ">=", v.Hi)
	case "eb":
		c.hiCmp(rc, "<=", v.Lo)
	case "ap":
		c.loCmp(rc, "<", v.Hi)
		c.w.SQL(" AND ")
		c.hiCmp(rc, ">", v.Lo)
	default:
		return invalid("unknown prefix %q", v.Prefix)
	}
	c.w.SQL(")")
	return nil
}

// numberCond writes a number prefix's condition on col: n is the
// searched number and [lo, hi) its precision range.
func (c *compiler) numberCond(col, prefix string, n, lo, hi float64) error {
	cmp := func(op string, x float64) {
		c.w.SQL(col, " ", op, " ")
		c.w.Arg(x)
	}
	c.w.SQL("(")
	switch prefix {
	case "", "eq":
		cmp(">=", lo)
		c.w.SQL(" AND ")
		cmp("<", hi)
	case "ne":
		c.w.SQL("NOT (")
		cmp(">=", lo)
		c.w.SQL(" AND ")
		cmp("<", hi)
		c.w.SQL(")")
	case "gt", "sa":
		cmp(">", n)
	case "lt", "eb":
		cmp("<", n)
	case "ge":
		cmp(">=", n)
	case "le":
		cmp("<=", n)
	case "ap":
		cmp(">=", lo)
		c.w.SQL(" AND ")
		cmp("<=", hi)
	default:
		return invalid("unknown prefix %q", prefix)
	}
	c.w.SQL(")")
	return nil
}

// Range writes "col starts with p" as the range [p, PrefixEnd(p)), so
// that the index serves it and % and _ in p are plain characters.
func Range(w *Writer, col, p string) {
	w.SQL("(", col, " >= ")
	w.Arg(p)
	if end, ok := PrefixEnd(p); ok {
		w.SQL(" AND ", col, " < ")
		w.Arg(end)
	}
	w.SQL(")")
}

// PrefixEnd returns the smallest string greater than every string that
// starts with p, so that "starts with p" is the range [p, end) in byte
// order (SQLite's BINARY, PostgreSQL's "C" collation). UTF-8 byte order
// is code point order, so it is p with its last code point incremented
// (dropping trailing U+10FFFF). ok is false when no such bound exists (p
// empty or all U+10FFFF): the range is open.
func PrefixEnd(p string) (end string, ok bool) {
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		if r == utf8.MaxRune || r == utf8.RuneError && size == 1 {
			continue
		}
		r++
		if r >= 0xD800 && r <= 0xDFFF { // surrogates are not encodable
			r = 0xE000
		}
		return p + string(r), true
	}
	return "", false
}
