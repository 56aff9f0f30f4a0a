package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Env is what a strategy works with during one run: the task, its
// structure, the metered policy, evaluators, tools, retriever, budget and
// tracer. Strategies call its methods rather than the underlying parts, so
// every call is budgeted, limited and traced.
type Env struct {
	Task      Task
	Params    Params
	Structure *Structure
	Pack      Pack
	Budget    *Budget
	Tracer    *Tracer
	Logger    zerolog.Logger

	engine *Engine
	parent *Env
	// queue bounds this run's requests waiting for or holding the engine's
	// limiter; nested searches share their parent's.
	queue chan struct{}
	seeds atomic.Int64
	// llmErr is the last LLM call that failed in this run or a search
	// nested in it (see Engine.run).
	llmErr atomic.Pointer[error]
	// failures counts what failed without stopping the run, shared with
	// the searches nested in it (Result.Warnings).
	failures *failureLog
}

// Policy returns the metered policy: calls through it are charged, limited
// and traced like Complete.
func (e *Env) Policy() Policy { return PolicyFunc(e.Complete) }

// Complete sends req to the policy, charged to the budget, within the LLM
// concurrency limit, recorded in the trace.
func (e *Env) Complete(ctx context.Context, req CompletionRequest) (Completion, error) {
	if req.N < 1 {
		req.N = 1
	}
	if err := ctx.Err(); err != nil {
		return Completion{}, err
	}
	if req.Model == "" {
		req.Model = e.Task.Model
	}
	queued, err := e.acquire(ctx, int64(req.N))
	if err != nil {
		return Completion{}, err
	}
	start := time.Now()
	c, err := e.engine.policy.Complete(ctx, req)
	// Before the slot goes: the request waiting for it checks the token
	// budget with these tokens counted.
	var billedPrompt, billedCompletion int64
	if err == nil {
		e.Budget.AddTokens(c.PromptTokens, c.CompletionTokens)
	} else if p, c, ok := billedTokens(err); ok {
		billedPrompt, billedCompletion = p, c
		e.Budget.AddTokens(p, c)
	}
	e.engine.limiter.Release()
	if queued {
		e.dequeue()
	}
	ms := float64(time.Since(start).Microseconds()) / 1000
	if err != nil {
		if ctx.Err() == nil {
			e.Budget.RefundRequest(int64(req.N))
		}
		// else: the request was sent and then given up on our side (the run
		// stopped, or a search no longer needed it); the endpoint may have
		// served and billed it, so it stays charged and a budget is never
		// overdrawn by requests whose replies were thrown away.
		e.Tracer.emit(Event{Op: OpLLMCall, Data: &LLMCallFailure{Purpose: req.Purpose, N: req.N, MS: ms, Error: err.Error(), Cancelled: ctx.Err() != nil,
			PromptTokens: billedPrompt, CompletionTokens: billedCompletion}})
		// A variable of its own: storing the address of err would move
		// err to the heap on every call, failed or not.
		failed := fmt.Errorf("llm call (%s): %w", req.Purpose, err)
		if ctx.Err() == nil {
			for env := e; env != nil; env = env.parent {
				env.llmErr.Store(&failed)
			}
			e.failures.llmRequest(failed)
		}
		return Completion{}, failed
	}
	if got := len(c.Choices); got < req.N {
		e.Budget.RefundCalls(int64(req.N - got))
	}
	if c.Note != "" {
		e.failures.shortRequest(c.Note)
	}
	data := &LLMCallData{Purpose: req.Purpose, N: req.N, MS: ms, PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens, Model: c.Model,
		TokensEstimated: c.TokensEstimated}
	if e.Tracer.RecordPrompts() {
		data.Messages = req.Messages
		data.Responses = make([]string, len(c.Choices))
		for i, ch := range c.Choices {
			data.Responses[i] = ch.Text
		}
	}
	c.TraceSeq = e.Tracer.emit(Event{Op: OpLLMCall, Data: data})
	return c, nil
}

// billedTokens returns the tokens a failed call's error says the model
// spent (see Policy).
func billedTokens(err error) (prompt, completion int64, ok bool) {
	var b interface {
		BilledTokens() (prompt, completion int64)
	}
	if !errors.As(err, &b) {
		return 0, 0, false
	}
	prompt, completion = b.BilledTokens()
	return max(prompt, 0), max(completion, 0), true
}

// acquire charges n calls to the budget and takes an LLM slot; the caller
// releases the slot and then, when the request was queued, dequeues it.
func (e *Env) acquire(ctx context.Context, n int64) (queued bool, err error) {
	if spec := speculative(ctx); spec != nil {
		// A speculative request takes only a slot nobody waits for, so it
		// needs no place in the run's queue (where it would hold back its
		// own run's other requests), and it is charged once it has the
		// slot: waiting, it would hold budget that needed requests may
		// want.
		if e.engine.policy == nil {
			return false, fmt.Errorf("%w: no LLM is configured", ErrLLMUnavailable)
		}
		if err := e.engine.limiter.AcquireIdle(ctx, spec.confirmed); err != nil {
			return false, err
		}
		if err := e.Budget.ReserveCalls(n); err != nil {
			e.engine.limiter.Release()
			return false, err
		}
		return false, nil
	}
	if err := e.Budget.ReserveCalls(n); err != nil {
		return false, err
	}
	if e.engine.policy == nil {
		e.Budget.RefundRequest(n)
		return false, fmt.Errorf("%w: no LLM is configured", ErrLLMUnavailable)
	}
	// A run queues for the engine-wide limiter with at most as many
	// requests as the limiter has slots: the limiter serves waiters in
	// order, so a search that wants 1000 samples cannot starve the runs that
	// arrive after it.
	if err := e.enqueue(ctx); err != nil {
		e.Budget.RefundRequest(n)
		return false, err
	}
	if err := e.engine.limiter.Acquire(ctx); err != nil {
		e.dequeue()
		e.Budget.RefundRequest(n)
		return false, err
	}
	if err := e.Budget.CheckTokens(); err != nil {
		// Tokens reported while this request waited for its slot.
		e.engine.limiter.Release()
		e.dequeue()
		e.Budget.RefundRequest(n)
		return false, err
	}
	return true, nil
}

type speculationKey struct{}

// Speculation marks LLM calls as speculative until it is confirmed: work a
// search starts before it knows it will need it (beam's overlapped passes).
// A speculative call (Env.Complete) takes an LLM slot only when one is free
// and no other request waits for one, so it fills slots that would idle
// and never delays another request, of its own run or of others. Once
// confirmed, its calls, those waiting included, wait like any other.
type Speculation struct {
	once      sync.Once
	confirmed chan struct{}
}

// NewSpeculation returns an unconfirmed speculation.
func NewSpeculation() *Speculation { return &Speculation{confirmed: make(chan struct{})} }

// Context returns ctx with the calls made through it marked speculative.
func (s *Speculation) Context(ctx context.Context) context.Context {
	return context.WithValue(ctx, speculationKey{}, s)
}

// Confirm ends the speculation: the work is needed.
func (s *Speculation) Confirm() { s.once.Do(func() { close(s.confirmed) }) }

// speculative returns the unconfirmed speculation of ctx, if any.
func speculative(ctx context.Context) *Speculation {
	s, _ := ctx.Value(speculationKey{}).(*Speculation)
	if s == nil {
		return nil
	}
	select {
	case <-s.confirmed:
		return nil
	default:
		return s
	}
}

func (e *Env) enqueue(ctx context.Context) error {
	if e.queue == nil {
		return nil
	}
	select {
	case e.queue <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Env) dequeue() {
	if e.queue != nil {
		<-e.queue
	}
}

// Seed returns a seed derived from the task's seed and parts (a node id, a
// sample index), so that samples differ from each other but a run with the
// same seed asks the same questions.
//
// It is FNV-1a over the little-endian bytes of the task's seed and parts,
// written out because it runs for every request of a search.
func (e *Env) Seed(parts ...int64) int64 {
	h := fnvInt64(fnvOffset64, e.Task.Seed)
	for _, v := range parts {
		h = fnvInt64(h, v)
	}
	return int64(h >> 1)
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnvInt64(h uint64, v int64) uint64 {
	for i := 0; i < 8; i++ {
		h = (h ^ uint64(byte(v>>(8*i)))) * fnvPrime64
	}
	return h
}

// NextSeed returns a fresh seed (for samples whose order does not matter).
func (e *Env) NextSeed() int64 { return e.Seed(-1, e.seeds.Add(1)) }

// Evaluator builds the named evaluator with params.
func (e *Env) Evaluator(name string, p Params) (Evaluator, error) {
	return e.engine.reg.Evaluator(name, p)
}

// AddNode charges a node to the budget and adds it to the structure.
func (e *Env) AddNode(parents []NodeID, n Node) (NodeID, error) {
	return e.addNode(parents, n, false)
}

// addNode is AddNode; owned hands n's maps over to the structure.
func (e *Env) addNode(parents []NodeID, n Node, owned bool) (NodeID, error) {
	depth := 0
	for _, p := range parents {
		if pn, ok := e.Structure.Node(p); ok && pn.Depth+1 > depth {
			depth = pn.Depth + 1
		}
	}
	if err := e.Budget.ReserveNode(depth); err != nil {
		return 0, err
	}
	return e.Structure.add(parents, n, owned)
}

// Tools returns the specs of the tools this task may call.
func (e *Env) Tools() []ToolSpec {
	var out []ToolSpec
	tb := e.engine.opts.Tools
	if tb == nil {
		return nil
	}
	for _, name := range e.Task.Tools {
		if t, ok := tb.Tool(name); ok {
			out = append(out, t.Spec())
		}
	}
	return out
}

// CallTool runs a tool the task allows, charged and traced. A tool that ran
// and failed returns a result with IsError; the error is for calls that
// could not run (not allowed, budget, cancelled).
func (e *Env) CallTool(ctx context.Context, call ToolCall) (ToolResult, error) {
	allowed := false
	for _, name := range e.Task.Tools {
		allowed = allowed || name == call.Name
	}
	tb := e.engine.opts.Tools
	if !allowed || tb == nil {
		return ToolResult{}, fmt.Errorf("tool %q is not allowed for this task", call.Name)
	}
	t, ok := tb.Tool(call.Name)
	if !ok {
		return ToolResult{}, fmt.Errorf("unknown tool %q", call.Name)
	}
	if err := e.Budget.ReserveToolCall(); err != nil {
		return ToolResult{}, err
	}
	start := time.Now()
	res, err := t.Call(ctx, call.Arguments)
	data := map[string]any{"tool": call.Name, "args": json.RawMessage(call.Arguments), "ms": float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		data["error"] = err.Error()
	} else {
		data["is_error"] = res.IsError
		data["result"] = res.Text
	}
	e.Tracer.Record(OpToolCall, nil, data)
	if err != nil {
		return ToolResult{}, fmt.Errorf("tool %s: %w", call.Name, err)
	}
	return res, nil
}

// CloseToolSession ends the named session of every tool the task allows
// that keeps sessions (SessionTool). A strategy that names a session for
// its run closes it when the run ends, so the processes it holds stop
// with the run.
func (e *Env) CloseToolSession(name string) {
	tb := e.engine.opts.Tools
	if tb == nil || name == "" {
		return
	}
	for _, n := range e.Task.Tools {
		if t, ok := tb.Tool(n); ok {
			if st, ok := t.(SessionTool); ok {
				st.CloseSession(name)
			}
		}
	}
}

// Retrieve asks the retriever for chunks of the task's collection (unless
// req names another), traced.
func (e *Env) Retrieve(ctx context.Context, req RetrieveRequest) ([]Chunk, error) {
	r := e.engine.opts.Retriever
	if r == nil {
		return nil, fmt.Errorf("retrieve: no document store is configured")
	}
	if req.Collection == "" {
		req.Collection = e.Task.Collection
	}
	start := time.Now()
	chunks, err := r.Retrieve(ctx, req)
	data := map[string]any{"query": req.Query, "collection": req.Collection, "k": req.K, "ms": float64(time.Since(start).Microseconds()) / 1000}
	if err != nil {
		data["error"] = err.Error()
	} else {
		data["chunks"] = len(chunks)
	}
	e.Tracer.Record(OpRetrieve, nil, data)
	if err != nil {
		return nil, fmt.Errorf("retrieve from %q: %w", req.Collection, err)
	}
	return chunks, nil
}

// ValidateSub reports whether SolveSub would accept sub, without running
// it. (Built-in strategies check their nested searches earlier, in their
// Check, when the engine validates the task.)
func (e *Env) ValidateSub(sub Task) error {
	return Preflight{Task: e.Task, engine: e.engine}.ValidateSub(sub)
}

// SolveSub solves sub as a nested search owned by node: its structure
// becomes node's Sub, its budget is carved from this run's (sub.Limits
// bound it further), and its events are recorded in this run's trace under
// node's scope.
func (e *Env) SolveSub(ctx context.Context, node NodeID, sub Task) (Result, error) {
	sub = inherit(sub, e.Task)
	if sub.Seed == 0 {
		sub.Seed = e.Seed(int64(node), -7)
	}
	p, err := e.engine.prepare(sub)
	if err != nil {
		return Result{}, err
	}
	budget := e.Budget.Carve(sub.Limits)
	tr := e.Tracer.Scope(node)
	e.Tracer.Record(OpSubSearch, []NodeID{node}, map[string]any{"strategy": p.spec.Name})
	res, trace := e.engine.run(ctx, p, budget, tr, e)
	if err := e.Structure.Update(node, func(n *Node) {
		n.Sub = trace.Structure
		if n.Meta == nil {
			n.Meta = map[string]any{}
		}
		n.Meta["sub_strategy"] = p.spec.Name
		n.Meta["sub_stopped"] = string(res.Stopped)
		n.Usage = n.Usage.Add(res.Usage)
	}); err != nil {
		return res, err
	}
	return res, nil
}
