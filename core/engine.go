package core

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/internal/text"
)

// Task is one request to reason: the problem, how to search, and with what.
type Task struct {
	Problem string `json:"problem"`
	Pack    string `json:"pack,omitempty"`  // task pack: generic, gsm8k, math, game24, ...
	Truth   string `json:"truth,omitempty"` // ground truth, when known (evaluation)
	// Steps are steps already taken: a search continues after them (a
	// nested search that solves one step of an outer path).
	Steps    []string `json:"steps,omitempty"`
	Strategy string   `json:"strategy,omitempty"` // default: the engine's default strategy
	Params   Params   `json:"params,omitempty"`
	Limits   Limits   `json:"limits,omitempty"`
	// Tools names the tools a search may call (none when empty).
	Tools      []string `json:"tools,omitempty"`
	Collection string   `json:"collection,omitempty"`
	Session    string   `json:"session,omitempty"`
	Model      string   `json:"model,omitempty"` // upstream model override
	Seed       int64    `json:"seed,omitempty"`
}

// StopReason says why a run ended.
type StopReason string

// Stop reasons.
const (
	StopDone      StopReason = "done"
	StopBudget    StopReason = "budget"
	StopTimeout   StopReason = "timeout"
	StopCancelled StopReason = "cancelled"
	StopError     StopReason = "error"
	StopRunning   StopReason = "running" // only in live traces
)

// Result is what Solve returns.
type Result struct {
	TraceID  string     `json:"trace_id"`
	Answer   string     `json:"answer"`
	Strategy string     `json:"strategy"`
	BestPath []Node     `json:"best_path"`
	Score    *float64   `json:"score,omitempty"`
	Usage    Usage      `json:"usage"`
	Stopped  StopReason `json:"stopped_reason"`
	Error    string     `json:"error,omitempty"`
	// Warnings say what failed without stopping the search (evaluations
	// that left their nodes unscored, LLM requests that failed), which
	// the answer may be the worse for, and why a search that ended by
	// itself found no answer (Outcome.Note).
	Warnings []string `json:"warnings,omitempty"`
	// Verified is the pack's check of the answer: true or false when the
	// pack can check it (Game of 24 always, GSM8K and MATH against
	// Task.Truth), nil when it cannot or there is no answer. A rejected
	// answer also has a warning, so that every reader is told.
	Verified *bool `json:"verified,omitempty"`
	// failed counts the failed evaluations and LLM requests, and the
	// requests that came back short, behind Warnings, for the log.
	failed failureCounts
	// Err is the error behind Error, for errors.Is (an LLM that rate
	// limits, say); nil when the run did not stop on one.
	Err error `json:"-"`
	// Trace is the full run; nil only when the task was rejected before
	// the search began.
	Trace *Trace `json:"-"`
}

// EngineOptions configure an Engine. The zero value is valid.
type EngineOptions struct {
	// Concurrency bounds concurrent LLM requests across all runs (default 8).
	Concurrency int
	// Limiter, when set, is used instead of a new one of Concurrency slots.
	Limiter *Limiter
	// DefaultStrategy is used when a task names none (default "cot").
	DefaultStrategy string
	// DefaultLimits apply to fields a task leaves zero.
	DefaultLimits Limits
	// Packs resolves task packs by name. Nil means only the generic pack.
	Packs func(name string) (Pack, error)
	// Tools are the tools tasks may allow.
	Tools Toolbox
	// Retriever grounds tasks that name a collection.
	Retriever Retriever
	// RecordPrompts keeps full prompts and responses in traces.
	RecordPrompts bool
	// OnStart is called when a run begins (live trace viewers, sessions);
	// OnEnd when its trace is final (trace stores). Both must not block.
	OnStart func(id string, task Task, tr *Tracer)
	OnEnd   func(t *Trace)
	Logger  zerolog.Logger
}

// Engine runs tasks. It is safe for concurrent use.
type Engine struct {
	policy  Policy
	reg     *Registry
	opts    EngineOptions
	limiter *Limiter
}

// NewEngine returns an engine that asks policy and finds strategies in reg.
func NewEngine(policy Policy, reg *Registry, opts *EngineOptions) *Engine {
	var o EngineOptions
	if opts != nil {
		o = *opts
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.DefaultStrategy == "" {
		o.DefaultStrategy = "cot"
	}
	lim := o.Limiter
	if lim == nil {
		lim = NewLimiter(o.Concurrency)
	}
	return &Engine{policy: policy, reg: reg, opts: o, limiter: lim}
}

// Registry returns the engine's registry.
func (e *Engine) Registry() *Registry { return e.reg }

// DefaultStrategy is the strategy of a task that names none.
func (e *Engine) DefaultStrategy() string { return e.opts.DefaultStrategy }

// Limiter returns the engine's LLM concurrency limiter.
func (e *Engine) Limiter() *Limiter { return e.limiter }

// Tools returns the engine's toolbox (may be nil).
func (e *Engine) Tools() Toolbox { return e.opts.Tools }

// ErrInvalidTask is wrapped by errors that reject a task before it runs.
var ErrInvalidTask = errors.New("invalid task")

// prepared is a validated task ready to run.
type prepared struct {
	task     Task
	spec     StrategySpec
	strategy Strategy
	pack     Pack
	params   Params
}

// Prepare validates a task without running it: strategy and parameters,
// budget, pack and tools. Solve calls it first, so a bad task is rejected
// before any LLM call.
func (e *Engine) prepare(t Task) (*prepared, error) {
	t.Problem = strings.TrimSpace(t.Problem)
	if t.Problem == "" {
		return nil, fmt.Errorf("%w: the problem is empty", ErrInvalidTask)
	}
	if t.Strategy == "" {
		t.Strategy = e.opts.DefaultStrategy
	}
	if t.Pack == "" {
		t.Pack = "generic"
	}
	// A tool named twice is offered once (the command line's
	// --tools python,python listed it twice to the model, under two wire
	// names).
	var seen []string
	for _, name := range t.Tools {
		if !slices.Contains(seen, name) {
			seen = append(seen, name)
		}
	}
	t.Tools = seen
	t.Limits = mergeLimits(t.Limits, e.opts.DefaultLimits)
	if err := t.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidTask, err)
	}
	spec, err := e.reg.Strategy(t.Strategy)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidTask, err)
	}
	params, err := Resolve(spec.Params, t.Params)
	if err != nil {
		return nil, fmt.Errorf("%w: strategy %s: %w", ErrInvalidTask, spec.Name, err)
	}
	strat, err := spec.New(params)
	if err != nil {
		return nil, fmt.Errorf("%w: strategy %s: %w", ErrInvalidTask, spec.Name, err)
	}
	pack, err := e.pack(t.Pack)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidTask, err)
	}
	if c, ok := strat.(Checker); ok {
		if err := c.Check(Preflight{Task: t, Pack: pack, engine: e}); err != nil {
			return nil, fmt.Errorf("%w: strategy %s: %w", ErrInvalidTask, spec.Name, err)
		}
	}
	for _, name := range t.Tools {
		if e.opts.Tools == nil {
			return nil, fmt.Errorf("%w: tool %q: no tools are configured", ErrInvalidTask, name)
		}
		if _, ok := e.opts.Tools.Tool(name); !ok {
			var known []string
			for _, spec := range e.opts.Tools.Specs() {
				known = append(known, spec.Name)
			}
			return nil, fmt.Errorf("%w: unknown tool %q (known: %s; a tool named in tools.disabled is not offered)", ErrInvalidTask, name, text.Clip(strings.Join(known, ", "), 300))
		}
	}
	if t.Collection != "" && e.opts.Retriever == nil {
		return nil, fmt.Errorf("%w: collection %q: no document store is configured", ErrInvalidTask, t.Collection)
	}
	return &prepared{task: t, spec: spec, strategy: strat, pack: pack, params: params}, nil
}

// Validate reports whether t would be accepted by Solve.
func (e *Engine) Validate(t Task) error {
	_, err := e.prepareTop(t)
	return err
}

// prepareTop prepares a task asked for by a user, not a nested search:
// its problem must also be one its pack can read (ProblemChecker). A
// nested search's problem is a step or a sub-question, in the pack's
// terms or not.
func (e *Engine) prepareTop(t Task) (*prepared, error) {
	p, err := e.prepare(t)
	if err != nil {
		return nil, err
	}
	if c, ok := p.pack.(ProblemChecker); ok {
		if err := c.CheckProblem(p.task.Problem); err != nil {
			return nil, fmt.Errorf("%w: the %s pack cannot pose this problem: %v", ErrInvalidTask, p.pack.Name(), err)
		}
	}
	return p, nil
}

func (e *Engine) pack(name string) (Pack, error) {
	if e.opts.Packs != nil {
		return e.opts.Packs(name)
	}
	if name == "generic" {
		return GenericPack{}, nil
	}
	return nil, fmt.Errorf("unknown task pack %q", name)
}

func mergeLimits(l, d Limits) Limits {
	if l.LLMCalls == 0 {
		l.LLMCalls = d.LLMCalls
	}
	if l.Tokens == 0 {
		l.Tokens = d.Tokens
	}
	if l.PromptTokens == 0 {
		l.PromptTokens = d.PromptTokens
	}
	if l.OutputTokens == 0 {
		l.OutputTokens = d.OutputTokens
	}
	if l.ToolCalls == 0 {
		l.ToolCalls = d.ToolCalls
	}
	if l.WallTime == 0 {
		l.WallTime = d.WallTime
	}
	if l.Nodes == 0 {
		l.Nodes = d.Nodes
	}
	if l.Depth == 0 {
		l.Depth = d.Depth
	}
	return l
}

// Solve runs t to completion, to the end of its budget, or until ctx ends.
// A task that cannot run (unknown strategy, bad parameter, empty problem)
// returns an error wrapping ErrInvalidTask and no LLM call is made. Every
// other failure (LLM faults, budget, timeout, cancellation) is reported in
// the Result with the best answer found so far, and a nil error.
func (e *Engine) Solve(ctx context.Context, t Task) (Result, error) {
	p, err := e.prepareTop(t)
	if err != nil {
		return Result{}, err
	}
	tr := NewTracer(e.opts.RecordPrompts)
	id := NewTraceID()
	budget := NewBudget(p.task.Limits)
	tr.log.usage = budget.Used
	if e.opts.OnStart != nil {
		e.opts.OnStart(id, p.task, tr)
	}
	started := time.Now()
	res, trace := e.run(ctx, p, budget, tr, nil)
	res.TraceID = id
	trace.ID = id
	trace.Started = started
	tr.Close()
	trace.Events = tr.closedEvents()
	if e.opts.OnEnd != nil {
		e.opts.OnEnd(trace)
	}
	res.Trace = trace
	if res.failed != (failureCounts{}) { // not for a strategy's note alone
		// Counts only: the errors can quote the model's replies.
		e.opts.Logger.Warn().Str("trace", id).Int("failed_evaluations", res.failed.evals).Int("failed_llm_requests", res.failed.requests).
			Int("short_llm_requests", res.failed.short).
			Msg("solve went on past failures (the result's warnings say which)")
	}
	e.opts.Logger.Info().Str("trace", id).Str("strategy", p.spec.Name).Str("stopped", string(res.Stopped)).
		Int64("llm_calls", res.Usage.LLMCalls).Float64("wall_ms", res.Usage.WallMS).Msg("solve finished")
	return res, nil
}

// run executes a prepared task on a budget and tracer; parentEnv is set for
// nested searches.
func (e *Engine) run(ctx context.Context, p *prepared, budget *Budget, tr *Tracer, parentEnv *Env) (Result, *Trace) {
	if d, ok := budget.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d)
		defer cancel()
	}
	kind := Tree
	if k, ok := strategyShapes.Load(p.spec.Name); ok {
		kind = k.(StructureKind)
	}
	st := NewStructure(kind, p.task.Problem, tr)
	env := &Env{
		Task:      p.task,
		Params:    p.params,
		Structure: st,
		Pack:      p.pack,
		Budget:    budget,
		Tracer:    tr,
		engine:    e,
		parent:    parentEnv,
		Logger:    e.opts.Logger.With().Str("strategy", p.spec.Name).Logger(),
	}
	if parentEnv != nil {
		env.queue, env.failures = parentEnv.queue, parentEnv.failures
	} else {
		env.queue, env.failures = make(chan struct{}, e.limiter.Slots()), &failureLog{}
	}
	// The structure's kind, for Replay: a nested got is a graph.
	tr.Record(OpStart, nil, map[string]any{"strategy": p.spec.Name, "pack": p.pack.Name(), "kind": string(kind)})
	out, runErr := groundAndRun(ctx, p.strategy, env) // grounds on Task.Collection first (ground.go)
	res := Result{Strategy: p.spec.Name, Answer: out.Answer, Score: out.Score}
	if out.Best > 0 {
		res.BestPath = st.Path(out.Best)
	}
	res.Stopped, res.Error = classify(ctx, runErr)
	if res.Error != "" && runErr != nil {
		res.Err = runErr
	}
	res.Usage = budget.Used()
	if failed := env.llmErr.Load(); failed != nil && res.Stopped == StopBudget && res.Answer == "" && !spent(budget.Limits(), res.Usage) {
		// The budget looked spent while calls were in flight, and they
		// failed (failed calls are refunded): the LLM stopped the search,
		// and nothing was found.
		res.Stopped, res.Error, res.Err = StopError, (*failed).Error(), *failed
	}
	if parentEnv == nil {
		res.Warnings, res.failed = env.failures.warnings(res.Stopped == StopError)
	}
	if out.Note != "" {
		res.Warnings = append(res.Warnings, out.Note)
	} else if parentEnv == nil && res.Stopped == StopDone && res.Answer == "" {
		// A strategy that ends by itself without an answer and says
		// nothing (cot, self-consistency, a plugin's) left "done" and an
		// empty answer unexplained.
		res.Warnings = append(res.Warnings, fmt.Sprintf("no answer: the search ended without one: no reply held a final answer the %s pack could read", p.pack.Name()))
	}
	if parentEnv == nil {
		res.Verified = verify(p.pack, p.task, res.Answer)
		if res.Verified != nil && !*res.Verified {
			res.Warnings = append(res.Warnings, rejectedWarning(p.pack, p.task))
		}
	}
	tr.Record(OpEnd, nil, map[string]any{"stopped": string(res.Stopped), "answer": res.Answer})
	trace := &Trace{
		Schema:    TraceSchema,
		Problem:   p.task.Problem,
		Pack:      p.pack.Name(),
		Strategy:  p.spec.Name,
		Params:    jsonSafe(p.params),
		Limits:    p.task.Limits,
		Ended:     time.Now(),
		Status:    res.Stopped,
		Error:     res.Error,
		Warnings:  res.Warnings,
		Verified:  res.Verified,
		Answer:    res.Answer,
		Usage:     res.Usage,
		Structure: st,
	}
	for _, n := range res.BestPath {
		trace.BestPath = append(trace.BestPath, n.ID)
	}
	return res, trace
}

// verify checks a search's answer with its pack, which costs no LLM call:
// a strategy that never asks the verifier (cot, refine, got's default
// graph) or ends with only rejected answers would otherwise hand the user
// an answer Ponder knows to be wrong without a word.
func verify(pack Pack, task Task, answer string) *bool {
	v, ok := pack.(Verifier)
	if !ok || answer == "" {
		return nil
	}
	correct, applicable := v.Verify(task.Problem, answer, task.Truth)
	if !applicable {
		return nil
	}
	return &correct
}

// WrongAnswerWarning begins the warning of a result whose answer the task
// pack's check rejects (Result.Verified false), for readers that grade
// answers themselves (the eval harness) and leave it out.
const WrongAnswerWarning = "the answer is wrong: "

// rejectedWarning says that the pack's check rejects the answer, and
// against what.
func rejectedWarning(pack Pack, task Task) string {
	if task.Truth != "" {
		return fmt.Sprintf(WrongAnswerWarning+"by the %s pack's check it differs from the task's truth", pack.Name())
	}
	return fmt.Sprintf(WrongAnswerWarning+"the %s pack's check rejects it", pack.Name())
}

// jsonSafe turns durations into strings so params round-trip through JSON.
func jsonSafe(p Params) Params {
	out := make(Params, len(p))
	for k, v := range p {
		if d, ok := v.(time.Duration); ok {
			out[k] = d.String()
			continue
		}
		out[k] = v
	}
	return out
}

func safeRun(ctx context.Context, s Strategy, env *Env) (out Outcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			env.Logger.Error().Str("panic", fmt.Sprint(r)).Str("stack", string(debug.Stack())).Msg("strategy panicked")
			err = fmt.Errorf("strategy panicked: %v", r)
		}
	}()
	return s.Run(ctx, env)
}

// classify maps a strategy's error to a stop reason. The context is checked
// first: a search cancelled mid-call reports "cancelled", not the LLM error
// the cancellation caused.
// spent reports whether u may have reached a limit of l (a depth limit
// counts as reached: usage does not say how deep the search went).
func spent(l Limits, u Usage) bool {
	return l.LLMCalls > 0 && u.LLMCalls >= l.LLMCalls ||
		l.Tokens > 0 && u.PromptTokens+u.CompletionTokens >= l.Tokens ||
		l.PromptTokens > 0 && u.PromptTokens >= l.PromptTokens ||
		l.OutputTokens > 0 && u.CompletionTokens >= l.OutputTokens ||
		l.ToolCalls > 0 && u.ToolCalls >= l.ToolCalls ||
		l.Nodes > 0 && u.Nodes >= l.Nodes ||
		l.Depth > 0
}

func classify(ctx context.Context, err error) (StopReason, string) {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return StopCancelled, "cancelled"
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return StopTimeout, "wall time limit reached"
	case err == nil:
		return StopDone, ""
	case errors.Is(err, ErrBudgetExhausted):
		return StopBudget, err.Error()
	case errors.Is(err, context.Canceled):
		return StopCancelled, "cancelled"
	case errors.Is(err, context.DeadlineExceeded):
		return StopTimeout, err.Error()
	default:
		return StopError, err.Error()
	}
}

// strategyShapes lets a strategy ask for a graph or chain structure instead
// of the default tree (see SetShape).
var strategyShapes sync.Map

// SetShape declares the structure kind a strategy grows. Call it from the
// package that registers the strategy.
func SetShape(strategy string, k StructureKind) { strategyShapes.Store(strategy, k) }

// WithPolicy returns an engine that asks p instead of the engine's policy
// and shares everything else (registry, limiter, options): for requests
// that bring their own model, such as an MCP client's sampling.
func (e *Engine) WithPolicy(p Policy) *Engine {
	c := *e
	c.policy = p
	return &c
}

// HasPolicy reports whether the engine has a policy to ask.
func (e *Engine) HasPolicy() bool { return e.policy != nil }

// WithOnStart returns an engine that also calls f when a run starts, after
// EngineOptions.OnStart, and shares everything else: for a request that
// follows its own run live, such as a server streaming search progress.
func (e *Engine) WithOnStart(f func(id string, task Task, tr *Tracer)) *Engine {
	c := *e
	if prev := e.opts.OnStart; prev != nil {
		c.opts.OnStart = func(id string, t Task, tr *Tracer) { prev(id, t, tr); f(id, t, tr) }
	} else {
		c.opts.OnStart = f
	}
	return &c
}
