package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Params are a strategy's or evaluator's parameters by name. Values from the
// command line arrive as strings; ParamSpecs.Resolve turns them into typed
// values (int64, float64, bool, string, time.Duration or raw JSON).
type Params map[string]any

// ParamType is the type of a parameter.
type ParamType string

// Parameter types.
const (
	ParamInt      ParamType = "int"
	ParamFloat    ParamType = "float"
	ParamBool     ParamType = "bool"
	ParamString   ParamType = "string"
	ParamDuration ParamType = "duration"
	ParamJSON     ParamType = "json" // structured data (a GoT graph), as JSON or YAML text
)

// ParamSpec documents and validates one parameter.
type ParamSpec struct {
	Name        string    `json:"name"`
	Type        ParamType `json:"type"`
	Default     any       `json:"default,omitempty"`
	Description string    `json:"description"`
	Min         *float64  `json:"min,omitempty"`
	Max         *float64  `json:"max,omitempty"`
	Enum        []string  `json:"enum,omitempty"`
}

// Bound returns a pointer to v, for ParamSpec.Min and Max.
func Bound(v float64) *float64 { return &v }

// ErrInvalidParam is wrapped by every parameter validation error.
var ErrInvalidParam = errors.New("invalid parameter")

// Resolve validates p against specs and returns typed values with defaults
// filled in. Unknown names, wrong types and out-of-range values are errors
// that name the parameter.
func Resolve(specs []ParamSpec, p Params) (Params, error) {
	byName := make(map[string]ParamSpec, len(specs))
	for _, s := range specs {
		byName[s.Name] = s
	}
	out := make(Params, len(specs))
	for _, s := range specs {
		if s.Default != nil {
			out[s.Name] = s.Default
		}
	}
	names := make([]string, 0, len(p))
	for k := range p {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		s, ok := byName[name]
		if !ok {
			known := make([]string, 0, len(specs))
			for _, s := range specs {
				known = append(known, s.Name)
			}
			return nil, fmt.Errorf("%w: unknown parameter %q (known: %s)", ErrInvalidParam, name, strings.Join(known, ", "))
		}
		v, err := s.convert(p[name])
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrInvalidParam, name, err)
		}
		out[name] = v
	}
	return out, nil
}

// describeValue names a parameter's value as its JSON reads, for errors:
// the user wrote JSON or a command line, not Go ("got 1", "got null", "got
// an object", never "got json.Number" or "got <nil>").
func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case bool, json.Number, float64, float32, int, int64, int32:
		return fmt.Sprint(x)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	switch reflect.ValueOf(v).Kind() {
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return fmt.Sprint(v)
}

func (s ParamSpec) convert(v any) (any, error) {
	var out any
	switch s.Type {
	case ParamInt:
		switch x := v.(type) {
		case string:
			i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("want an integer, got %q", x)
			}
			out = i
		case float64:
			if x != math.Trunc(x) {
				return nil, fmt.Errorf("want an integer, got %v", x)
			}
			out = int64(x)
		case int:
			out = int64(x)
		case int64:
			out = x
		case json.Number:
			i, err := x.Int64()
			if err != nil {
				return nil, fmt.Errorf("want an integer, got %v", x)
			}
			out = i
		default:
			return nil, fmt.Errorf("want an integer, got %s", describeValue(v))
		}
		if err := s.inRange(float64(out.(int64))); err != nil {
			return nil, err
		}
	case ParamFloat:
		var f float64
		switch x := v.(type) {
		case string:
			var err error
			f, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
			if err != nil {
				return nil, fmt.Errorf("want a number, got %q", x)
			}
		case float64:
			f = x
		case int:
			f = float64(x)
		case int64:
			f = float64(x)
		case json.Number:
			var err error
			if f, err = x.Float64(); err != nil {
				return nil, fmt.Errorf("want a number, got %v", x)
			}
		default:
			return nil, fmt.Errorf("want a number, got %s", describeValue(v))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("want a finite number, got %v", f)
		}
		if err := s.inRange(f); err != nil {
			return nil, err
		}
		out = f
	case ParamBool:
		switch x := v.(type) {
		case bool:
			out = x
		case string:
			b, err := strconv.ParseBool(x)
			if err != nil {
				return nil, fmt.Errorf("want true or false, got %q", x)
			}
			out = b
		default:
			return nil, fmt.Errorf("want true or false, got %s", describeValue(v))
		}
	case ParamDuration:
		switch x := v.(type) {
		case string:
			d, err := time.ParseDuration(x)
			if err != nil {
				return nil, fmt.Errorf("want a duration like 30s, got %q", x)
			}
			out = d
		case time.Duration:
			out = x
		case float64: // seconds, from JSON
			out = time.Duration(x * float64(time.Second))
		default:
			return nil, fmt.Errorf("want a duration, got %s", describeValue(v))
		}
		if out.(time.Duration) < 0 {
			return nil, fmt.Errorf("want a positive duration, got %v", out)
		}
	case ParamString:
		x, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %s", describeValue(v))
		}
		if len(s.Enum) > 0 {
			found := false
			for _, e := range s.Enum {
				found = found || e == x
			}
			if !found {
				return nil, fmt.Errorf("want one of %s, got %q", strings.Join(s.Enum, ", "), x)
			}
		}
		out = x
	case ParamJSON:
		switch x := v.(type) {
		case string:
			out = x
		default:
			b, err := json.Marshal(x)
			if err != nil {
				return nil, fmt.Errorf("want structured data: %v", err)
			}
			out = string(b)
		}
	default:
		return nil, fmt.Errorf("parameter has unknown type %q", s.Type)
	}
	return out, nil
}

func (s ParamSpec) inRange(f float64) error {
	if s.Min != nil && f < *s.Min {
		return fmt.Errorf("must be at least %v, got %v", *s.Min, f)
	}
	if s.Max != nil && f > *s.Max {
		return fmt.Errorf("must be at most %v, got %v", *s.Max, f)
	}
	return nil
}

// Int returns an int parameter resolved by Resolve (0 when absent).
func (p Params) Int(name string) int {
	switch x := p[name].(type) {
	case int64:
		return int(x)
	case int:
		return x
	case float64:
		return int(x)
	}
	return 0
}

// Float returns a float parameter (0 when absent).
func (p Params) Float(name string) float64 {
	switch x := p[name].(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case int:
		return float64(x)
	}
	return 0
}

// Bool returns a bool parameter.
func (p Params) Bool(name string) bool { b, _ := p[name].(bool); return b }

// String returns a string or JSON parameter.
func (p Params) String(name string) string { s, _ := p[name].(string); return s }

// Duration returns a duration parameter. A default is written as a string
// ("10s", so that it reads well in `ponder strategies`); Resolve leaves
// defaults as they are, so both forms are read here.
func (p Params) Duration(name string) time.Duration {
	switch v := p[name].(type) {
	case time.Duration:
		return v
	case string:
		d, _ := time.ParseDuration(v)
		return d
	}
	return 0
}

// Strategy grows a reasoning structure for env.Task and returns the best
// answer it found. On a budget, timeout or cancellation it returns the best
// answer so far together with the error.
type Strategy interface {
	Run(ctx context.Context, env *Env) (Outcome, error)
}

// Checker is a strategy whose parameters name what only the engine knows:
// evaluators, or the strategy that solves its nested steps. The engine
// calls Check when it validates the task, before the run starts, so that a
// wrong name makes the task invalid (ErrInvalidTask, before any LLM call,
// naming the parameter) instead of failing the run.
type Checker interface {
	Check(Preflight) error
}

// Preflight is what a Checker can ask about the task before it runs.
type Preflight struct {
	// Task is the task as it will run (its pack name resolved).
	Task   Task
	Pack   Pack
	engine *Engine
}

// Evaluator builds the registered evaluator name with parameters p, as
// Env.Evaluator will in the run.
func (p Preflight) Evaluator(name string, params Params) (Evaluator, error) {
	return p.engine.reg.Evaluator(name, params)
}

// Tool returns the spec of the engine's tool name, whether or not the task
// allows it (pal allows the tool it needs).
func (p Preflight) Tool(name string) (ToolSpec, bool) {
	if p.engine.opts.Tools == nil {
		return ToolSpec{}, false
	}
	t, ok := p.engine.opts.Tools.Tool(name)
	if !ok {
		return ToolSpec{}, false
	}
	return t.Spec(), true
}

// ValidateSub reports whether a nested search of sub would be accepted
// (Env.ValidateSub during the run).
func (p Preflight) ValidateSub(sub Task) error {
	_, err := p.engine.prepare(inherit(sub, p.Task))
	return err
}

// inherit gives a nested search what its task leaves unset of its
// parent's: the pack, the model, the tools and the document collection (a
// check without the tools refused react as a sub-strategy that would have
// run with them).
func inherit(sub, parent Task) Task {
	if sub.Pack == "" {
		sub.Pack = parent.Pack
	}
	if sub.Model == "" {
		sub.Model = parent.Model
	}
	if sub.Tools == nil {
		sub.Tools = parent.Tools
	}
	if sub.Collection == "" {
		sub.Collection = parent.Collection
	}
	return sub
}

// Outcome is what a strategy found.
type Outcome struct {
	Answer string `json:"answer"`
	// Best is the node whose path is the best solution (0 when none).
	Best  NodeID   `json:"best"`
	Score *float64 `json:"score,omitempty"`
	// Note says why a search that ended by itself has no answer (every
	// candidate pruned, say): it joins Result.Warnings.
	Note string `json:"note,omitempty"`
}

// StrategySpec registers a strategy by name.
type StrategySpec struct {
	Name    string      `json:"name"`
	Summary string      `json:"summary"`
	Params  []ParamSpec `json:"params"`
	// Source is "builtin" or the plugin that provides it.
	Source string `json:"source"`
	// New builds a strategy from resolved parameters; it validates them
	// further (relations between parameters) before any LLM call.
	New func(p Params) (Strategy, error) `json:"-"`
}

// EvaluatorSpec registers an evaluator by name.
type EvaluatorSpec struct {
	Name    string                            `json:"name"`
	Summary string                            `json:"summary"`
	Params  []ParamSpec                       `json:"params"`
	Source  string                            `json:"source"`
	New     func(p Params) (Evaluator, error) `json:"-"`
}

// Registry holds strategies and evaluators by name. Build one per server (or
// per test); registering a name twice panics.
type Registry struct {
	mu         sync.RWMutex
	strategies map[string]StrategySpec
	evaluators map[string]EvaluatorSpec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{strategies: map[string]StrategySpec{}, evaluators: map[string]EvaluatorSpec{}}
}

// ErrUnknown is wrapped when a strategy or evaluator name is not registered.
var ErrUnknown = errors.New("unknown name")

// RegisterStrategy adds s; a duplicate name panics.
func (r *Registry) RegisterStrategy(s StrategySpec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.strategies[s.Name]; dup {
		panic(fmt.Sprintf("core: strategy %q registered twice", s.Name))
	}
	if s.Source == "" {
		s.Source = "builtin"
	}
	r.strategies[s.Name] = s
}

// ReplaceStrategy adds or replaces s (plugins reloaded at run time).
func (r *Registry) ReplaceStrategy(s StrategySpec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.strategies[s.Name] = s
}

// RegisterEvaluator adds e; a duplicate name panics.
func (r *Registry) RegisterEvaluator(e EvaluatorSpec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.evaluators[e.Name]; dup {
		panic(fmt.Sprintf("core: evaluator %q registered twice", e.Name))
	}
	if e.Source == "" {
		e.Source = "builtin"
	}
	r.evaluators[e.Name] = e
}

// ReplaceEvaluator adds or replaces e.
func (r *Registry) ReplaceEvaluator(e EvaluatorSpec) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evaluators[e.Name] = e
}

// Strategy looks a strategy up by name.
func (r *Registry) Strategy(name string) (StrategySpec, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.strategies[name]
	if !ok {
		return StrategySpec{}, fmt.Errorf("%w: strategy %q (known: %s)", ErrUnknown, name, strings.Join(sortedKeys(r.strategies), ", "))
	}
	return s, nil
}

// Evaluator looks an evaluator up by name and builds it with p.
func (r *Registry) Evaluator(name string, p Params) (Evaluator, error) {
	r.mu.RLock()
	e, ok := r.evaluators[name]
	known := sortedKeys(r.evaluators)
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: evaluator %q (known: %s)", ErrUnknown, name, strings.Join(known, ", "))
	}
	rp, err := Resolve(e.Params, p)
	if err != nil {
		return nil, fmt.Errorf("evaluator %s: %w", name, err)
	}
	return e.New(rp)
}

// HasEvaluator reports whether name is registered.
func (r *Registry) HasEvaluator(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.evaluators[name]
	return ok
}

// Strategies lists registered strategies sorted by name.
func (r *Registry) Strategies() []StrategySpec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]StrategySpec, 0, len(r.strategies))
	for _, k := range sortedKeys(r.strategies) {
		out = append(out, r.strategies[k])
	}
	return out
}

// Evaluators lists registered evaluators sorted by name.
func (r *Registry) Evaluators() []EvaluatorSpec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]EvaluatorSpec, 0, len(r.evaluators))
	for _, k := range sortedKeys(r.evaluators) {
		out = append(out, r.evaluators[k])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// StrategyFunc adapts a function to Strategy.
type StrategyFunc func(ctx context.Context, env *Env) (Outcome, error)

// Run calls f.
func (f StrategyFunc) Run(ctx context.Context, env *Env) (Outcome, error) { return f(ctx, env) }
