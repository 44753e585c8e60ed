package fhirpath

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Expression is a compiled FHIRPath expression. It is immutable and safe
// for concurrent use.
type Expression struct {
	src   string
	root  node
	slots int // cacheNodes in root (memo.go)
}

// String returns the expression's source text.
func (e *Expression) String() string { return e.src }

// Parse compiles expr. A syntax error, an unknown function, a wrong number
// of arguments or an unknown type name is an *Error (ClassSyntax or
// ClassSemantic) with the position in expr; it unwraps to a *hale.Error of
// KindInvalid.
func Parse(expr string) (*Expression, error) {
	n, err := parse(expr)
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.Expr = expr
		}
		return nil, err
	}
	n, slots := memoize(n)
	return &Expression{src: expr, root: n, slots: slots}, nil
}

// MustParse is Parse for expressions known to be valid; it panics on an
// error.
func MustParse(expr string) *Expression {
	e, err := Parse(expr)
	if err != nil {
		panic(err)
	}
	return e
}

// CacheSize is how many compiled expressions Compile keeps.
const CacheSize = 4096

var cache = newLRU(CacheSize)

// Compile is Parse with a bounded least-recently-used cache of compiled
// expressions, for callers that evaluate the same expressions (invariants,
// search parameters) again and again. Errors are not cached.
func Compile(expr string) (*Expression, error) {
	if e := cache.get(expr); e != nil {
		return e, nil
	}
	e, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	cache.put(expr, e)
	return e, nil
}

// Resolver finds the resource a reference points to, for resolve() outside
// a Bundle (typically backed by the store). It returns a nil map and a nil
// error when the reference does not resolve.
type Resolver interface {
	Resolve(ctx context.Context, reference string) (map[string]any, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ctx context.Context, reference string) (map[string]any, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, reference string) (map[string]any, error) {
	return f(ctx, reference)
}

// Env is the environment of an evaluation. The zero Env (or nil) is
// valid: %context is the input, %resource and %rootResource default to it.
type Env struct {
	// Resource and RootResource are %resource and %rootResource
	// (fhirpath.html#variables): the resource that contains the input
	// and, for a contained resource, the one that contains it. Values
	// are as for Evaluate's input.
	Resource, RootResource any
	// Vars holds further %name variables: a Collection, an Item, a
	// resource or JSON node, or a System value.
	Vars map[string]any
	// Resolver answers resolve() for references that are not found in
	// the enclosing Bundle or among contained resources.
	Resolver Resolver
	// Now is the clock of now(), today() and timeOfDay(); time.Now when
	// nil. It is read once per evaluation.
	Now func() time.Time
	// Trace receives trace() output; nil discards it.
	Trace func(name string, c Collection)
	// Strict makes a name that is not an element of the input's FHIR type
	// a semantic error (instead of an empty result) and refuses choice
	// elements named with their type suffix (valueQuantity).
	Strict bool
}

var zeroEnv Env

// Evaluate evaluates the expression against input: a resource or other
// node of a FHIR JSON tree (map[string]any from fhir.Decode), an Item, a
// Collection, or nil for no input. Items navigated from a resource carry
// their FHIR type and location.
//
// Evaluation errors are *Error values of ClassExecution (or
// ClassSemantic) with the position of the failing operator or function;
// an error from env.Resolver is wrapped and returned as the Error's cause.
// The result may share storage with the input and the expression: treat
// it as read-only.
func (e *Expression) Evaluate(ctx context.Context, input any, env *Env) (Collection, error) {
	if env == nil {
		env = &zeroEnv
	}
	c := ctxPool.Get().(*evalCtx)
	c.reset(ctx, env, e)
	in := c.collection(input, &c.inBuf)
	c.this, c.input = in, in
	r, err := e.root.eval(c, in)
	if len(r) > 0 && len(in) > 0 && &r[0] == &in[0] {
		r = append(Collection(nil), r...) // do not return the pooled buffer
	}
	if len(r) > 0 && len(c.resource) > 0 && &r[0] == &c.resource[0] {
		r = append(Collection(nil), r...)
	}
	ctxPool.Put(c)
	if err != nil {
		return nil, err
	}
	return r, nil
}

var ctxPool = sync.Pool{New: func() any { return new(evalCtx) }}

// EvaluateBool evaluates the expression as a condition (an invariant):
// the result is a pointer to the Boolean, or nil when the result is empty
// (unknown). A result that is not a single Boolean is treated as the
// specification's singleton evaluation does: one non-Boolean item is
// true; several items are an error.
func (e *Expression) EvaluateBool(ctx context.Context, input any, env *Env) (*bool, error) {
	r, err := e.Evaluate(ctx, input, env)
	if err != nil {
		return nil, err
	}
	b, known, err := toBool(r)
	if err != nil {
		return nil, at(err, e.src, 0)
	}
	if !known {
		return nil, nil
	}
	return &b, nil
}

// lru is a bounded cache of compiled expressions.
type lru struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[string]*list.Element
}

type lruEntry struct {
	key string
	e   *Expression
}

func newLRU(max int) *lru {
	return &lru{max: max, ll: list.New(), items: map[string]*list.Element{}}
}

func (c *lru) get(k string) *Expression {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*lruEntry).e
	}
	return nil
}

func (c *lru) put(k string, e *Expression) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		c.ll.MoveToFront(el)
		return
	}
	c.items[k] = c.ll.PushFront(&lruEntry{k, e})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*lruEntry).key)
	}
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
