package fhirpath

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Item is one element of a Collection: a node of a FHIR resource (with its
// FHIR type and location) or a System value computed by the expression.
type Item struct {
	val any            // FHIR items: the JSON node; System items: bool, string, int64, Decimal, Date, DateTime, Time, Quantity
	typ *nodeType      // FHIR type; nil for System values and untyped JSON
	ext map[string]any // a primitive's companion element (_name): id, extension
	loc *loc
}

// Collection is the result of an expression: an ordered list of items.
type Collection []Item

type loc struct {
	parent *loc
	name   string
	index  int // -1 for a single element
}

func (l *loc) appendTo(b []byte) []byte {
	if l == nil {
		return b
	}
	b = l.parent.appendTo(b)
	if l.parent != nil {
		b = append(b, '.')
	}
	b = append(b, l.name...)
	if l.index >= 0 {
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(l.index), 10)
		b = append(b, ']')
	}
	return b
}

// Location returns where the item is in the resource, as a FHIRPath
// expression in the form validation messages use, e.g.
// "Patient.name[0].given[1]"; "" for a computed value.
func (it Item) Location() string { return string(it.loc.appendTo(nil)) }

// NewItem returns an item for a value: a resource (map with resourceType),
// any other JSON node (untyped), or a System value (bool, string, int64,
// int, Decimal, Date, DateTime, Time, Quantity).
func NewItem(v any) Item {
	switch x := v.(type) {
	case Item:
		return x
	case int:
		return Item{val: int64(x)}
	case map[string]any:
		if rt, ok := x["resourceType"].(string); ok {
			if nt := typeOf(rt); nt != nil && nt.kind == ntResource {
				return Item{val: x, typ: nt, loc: &nt.root}
			}
		}
	}
	return Item{val: v}
}

// Raw returns the JSON node of a FHIR item (map[string]any, string,
// json.Number, bool; nil for a primitive that has only extensions), or the
// System value of a computed one.
func (it Item) Raw() any { return it.val }

// IsFHIR reports whether the item has a FHIR type (from the definitions).
func (it Item) IsFHIR() bool { return it.typ != nil }

// Type returns the item's type as namespace and name: ("FHIR",
// "HumanName"), ("FHIR", "date"), ("System", "Integer").
func (it Item) Type() (namespace, name string) {
	if it.typ != nil {
		return "FHIR", it.typ.name
	}
	k := it.kind()
	if k == sysNone {
		if _, ok := it.val.(typeInfo); ok {
			return "System", "SimpleTypeInfo"
		}
		return "System", "Any"
	}
	return "System", sysNames[k]
}

// TypeName returns "FHIR.HumanName", "System.String", ….
func (it Item) TypeName() string {
	if it.typ != nil {
		return it.typ.fullName() // precomputed: Check asks for every element
	}
	ns, n := it.Type()
	return ns + "." + n
}

// kind is the System type of the item's value (sysNone for complex ones).
func (it Item) kind() sysKind {
	if it.typ != nil {
		if it.typ.kind == ntPrimitive {
			return it.typ.system
		}
		return sysNone
	}
	switch v := it.val.(type) {
	case bool:
		return sysBoolean
	case string:
		return sysString
	case int64:
		return sysInteger
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			return sysDecimal
		}
		return sysInteger
	case Decimal:
		return sysDecimal
	case Date:
		return sysDate
	case DateTime:
		return sysDateTime
	case Time:
		return sysTime
	case Quantity:
		return sysQuantity
	}
	return sysNone
}

// value is an item's System value, unboxed.
type value struct {
	k sysKind
	b bool
	i int64
	s string
	d Decimal
	t DateTime
	q Quantity
}

// sys converts the item to its System value; ok is false for complex
// items (other than quantities) and for primitives without a value.
func (it Item) sys() (v value, ok bool) {
	k := it.kind()
	if k == sysNone {
		if it.typ != nil && it.typ.qty {
			if q, ok := fhirQuantity(it.val); ok {
				return value{k: sysQuantity, q: q}, true
			}
		}
		return v, false
	}
	v.k = k
	switch x := it.val.(type) {
	case nil:
		return v, false
	case bool:
		v.b = x
		return v, k == sysBoolean
	case string:
		switch k {
		case sysString:
			v.s = x
		case sysDate:
			d, ok := ParseDate(x)
			v.t = DateTime(d)
			return v, ok
		case sysDateTime:
			d, ok := ParseDateTime(x, true)
			v.t = d
			return v, ok
		case sysTime:
			t, ok := ParseTime(x, true)
			v.t = DateTime(t)
			return v, ok
		case sysDecimal:
			d, ok := ParseDecimal(x)
			v.d = d
			return v, ok
		case sysInteger:
			n, err := strconv.ParseInt(x, 10, 64)
			v.i = n
			return v, err == nil
		default:
			return v, false
		}
	case json.Number:
		if k == sysInteger {
			n, err := strconv.ParseInt(string(x), 10, 64)
			if err != nil {
				d, ok := ParseDecimal(string(x))
				if n, ok2 := d.Int64(); ok && ok2 {
					v.i = n
					return v, true
				}
				return v, false
			}
			v.i = n
			return v, true
		}
		d, ok := ParseDecimal(string(x))
		v.k, v.d = sysDecimal, d
		return v, ok
	case int64:
		v.i = x
	case Decimal:
		v.d = x
	case Date:
		v.t = DateTime(x)
	case DateTime:
		v.t = x
	case Time:
		v.t = DateTime(x)
	case Quantity:
		v.q = x
	default:
		return v, false
	}
	return v, true
}

const ucumSystem = "http://unitsofmeasure.org"

// fhirQuantity converts a FHIR Quantity (or Age, Duration, …) to a System
// Quantity: the UCUM code when the system is UCUM, else the unit.
func fhirQuantity(v any) (Quantity, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return Quantity{}, false
	}
	n, ok := m["value"].(json.Number)
	if !ok {
		return Quantity{}, false
	}
	d, ok := ParseDecimal(string(n))
	if !ok {
		return Quantity{}, false
	}
	unit, _ := m["unit"].(string)
	if code, _ := m["code"].(string); code != "" && (m["system"] == ucumSystem || unit == "") {
		unit = code
	}
	if unit == "" {
		unit = "1"
	}
	return Quantity{Value: d, Unit: unit}, true
}

// item returns v as a System item.
func (v value) item() Item {
	switch v.k {
	case sysBoolean:
		return boolItem(v.b)
	case sysString:
		return Item{val: v.s}
	case sysInteger:
		return Item{val: v.i}
	case sysDecimal:
		return Item{val: v.d}
	case sysDate:
		return Item{val: Date(v.t)}
	case sysDateTime:
		return Item{val: v.t}
	case sysTime:
		return Item{val: Time(v.t)}
	case sysQuantity:
		return Item{val: v.q}
	}
	return Item{}
}

var (
	trueItem  = Item{val: true}
	falseItem = Item{val: false}
	trueColl  = Collection{trueItem}
	falseColl = Collection{falseItem}
)

func boolItem(b bool) Item {
	if b {
		return trueItem
	}
	return falseItem
}

func boolColl(b bool) Collection {
	if b {
		return trueColl
	}
	return falseColl
}

// Value returns the item's System value: bool, string, int64, Decimal,
// Date, DateTime, Time or Quantity (a FHIR Quantity converts to one); for
// other complex items the JSON node; nil for a primitive without value.
func (it Item) Value() any {
	if v, ok := it.sys(); ok {
		switch v.k {
		case sysBoolean:
			return v.b
		case sysString:
			return v.s
		case sysInteger:
			return v.i
		case sysDecimal:
			return v.d
		case sysDate:
			return Date(v.t)
		case sysDateTime:
			return v.t
		case sysTime:
			return Time(v.t)
		case sysQuantity:
			if it.typ != nil {
				return it.val
			}
			return v.q
		}
	}
	if it.kind() != sysNone {
		return nil
	}
	return it.val
}

// JSON returns the item as JSON output shows it: FHIR nodes as their
// JSON; dates, dateTimes and times as FHIRPath literals ("@2015-02-04",
// "@T14:34"); System quantities as {"value", "unit"}; integers and
// decimals as json.Number.
func (it Item) JSON() any {
	switch it.kind() {
	case sysDate, sysDateTime:
		if s, ok := it.val.(string); ok {
			return "@" + s
		}
	case sysTime:
		if s, ok := it.val.(string); ok {
			return "@T" + s
		}
	}
	if it.typ != nil {
		if it.val == nil && it.ext != nil {
			return map[string]any{"_": it.ext}
		}
		return it.val
	}
	switch v := it.val.(type) {
	case int64:
		return json.Number(strconv.FormatInt(v, 10))
	case Decimal:
		return json.Number(v.String())
	case Date:
		return "@" + v.String()
	case DateTime:
		s := v.String()
		if v.Precision <= PrecisionDay {
			s += "T"
		}
		return "@" + s
	case Time:
		return "@T" + v.String()
	case Quantity:
		return map[string]any{"value": json.Number(v.Value.String()), "unit": v.Unit}
	case typeInfo:
		return map[string]any{"namespace": v.namespace, "name": v.name}
	}
	return it.val
}

// String returns the item as FHIRPath toString() renders it, or its
// JSON for complex items.
func (it Item) String() string {
	if s, ok := toStringValue(it); ok {
		return s
	}
	b, _ := json.Marshal(it.JSON())
	return string(b)
}

// typeInfo is the value type() returns (SimpleTypeInfo/ClassInfo).
type typeInfo struct{ namespace, name string }
