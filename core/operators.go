package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
)

// The operators of the blueprint. Each is a function over an Env's
// structure that records itself in the trace, so strategies are written as
// compositions of them.

// Steps returns the contents of the path to id, without the root problem.
func Steps(path []Node) []string {
	var out []string
	for _, n := range path {
		if n.Kind == KindProblem {
			continue
		}
		out = append(out, n.Content)
	}
	return out
}

// MetaWhole is the Meta key (true) of a node that holds a whole solution
// by itself (Generate with Whole), not one step of a path.
const MetaWhole = "whole"

// GenerateOptions tune Generate.
type GenerateOptions struct {
	// Prompt builds the request's messages from the path to the parent;
	// default: the pack's StepPrompt (or SolvePrompt when Whole is set).
	Prompt func(path []Node) []Message
	// Whole asks for complete solutions instead of single steps; the
	// nodes get Meta MetaWhole.
	Whole       bool
	Temperature *float64
	MaxTokens   int
	Stop        []string
	Purpose     string
	// Seed fixes the request's seed (default: derived from parent and call).
	Seed *int64
}

// Generate asks the policy for k continuations of parent and adds them as
// children. A child whose text holds a final answer is an answer node
// (terminal). It returns the new nodes' ids; with an error, those added
// before it.
func Generate(ctx context.Context, env *Env, parent NodeID, k int, o GenerateOptions) ([]NodeID, error) {
	var msgs []Message
	switch {
	case o.Prompt != nil:
		path := env.Structure.Path(parent)
		if path == nil {
			return nil, fmt.Errorf("generate: node %d does not exist", parent)
		}
		msgs = o.Prompt(path)
	case o.Whole:
		if _, ok := env.Structure.Node(parent); !ok {
			return nil, fmt.Errorf("generate: node %d does not exist", parent)
		}
		msgs = env.Pack.SolvePrompt(env.Task.Problem)
	default:
		steps, ok := env.Structure.StepsTo(parent)
		if !ok {
			return nil, fmt.Errorf("generate: node %d does not exist", parent)
		}
		if len(env.Task.Steps) > 0 {
			steps = append(append([]string(nil), env.Task.Steps...), steps...)
		}
		msgs = env.Pack.StepPrompt(env.Task.Problem, steps)
	}
	purpose := o.Purpose
	if purpose == "" {
		purpose = OpGenerate
	}
	seed := o.Seed
	if seed == nil {
		s := env.NextSeed()
		seed = &s
	}
	c, err := env.Complete(ctx, CompletionRequest{
		Messages: msgs, N: k, Temperature: o.Temperature, MaxTokens: o.MaxTokens,
		Stop: o.Stop, Seed: seed, Purpose: purpose,
	})
	if err != nil {
		return nil, fmt.Errorf("generate from node %d: %w", parent, err)
	}
	per := Usage{LLMCalls: 1, PromptTokens: c.PromptTokens / int64(max(1, len(c.Choices))), CompletionTokens: c.CompletionTokens / int64(max(1, len(c.Choices)))}
	ids := make([]NodeID, 0, len(c.Choices))
	for _, ch := range c.Choices {
		n := Node{Kind: KindStep, Content: ch.Text, Usage: per}
		if a, ok := env.Pack.ExtractAnswer(ch.Text); ok {
			n.Kind, n.Answer, n.Terminal = KindAnswer, a, true
		}
		if ch.Logprob != nil {
			n.Meta = map[string]any{"logprob": *ch.Logprob}
		}
		if o.Whole {
			// A whole solution answers the solve prompt, not the step
			// prompt: readers of the trace (ponder export's paths and
			// prompts) must not take it for one step.
			if n.Meta == nil {
				n.Meta = map[string]any{}
			}
			n.Meta[MetaWhole] = true
		}
		n.LLMCall = c.TraceSeq
		id, err := env.addNode([]NodeID{parent}, n, true)
		if err != nil {
			return ids, fmt.Errorf("generate from node %d: %w", parent, err)
		}
		ids = append(ids, id)
	}
	env.Tracer.emit(Event{Op: OpGenerate, Nodes: append([]NodeID{parent}, ids...), Data: &GenerateData{K: k}})
	return ids, nil
}

// Refine asks the policy to improve node id given feedback, and adds the
// revision as a child of id (a revision continues the reasoning it
// revises, in chains, trees and graphs alike).
func Refine(ctx context.Context, env *Env, id NodeID, msgs []Message) (NodeID, error) {
	c, err := env.Complete(ctx, CompletionRequest{Messages: msgs, N: 1, Seed: ptr(env.NextSeed()), Purpose: OpRefine})
	if err != nil {
		return 0, fmt.Errorf("refine node %d: %w", id, err)
	}
	if len(c.Choices) == 0 {
		return 0, fmt.Errorf("refine node %d: %w: no choices", id, ErrLLMBadResponse)
	}
	n := Node{Kind: KindStep, Content: c.Choices[0].Text, Meta: map[string]any{"refines": int(id)}, LLMCall: c.TraceSeq,
		Usage: Usage{LLMCalls: 1, PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens}}
	if a, ok := env.Pack.ExtractAnswer(n.Content); ok {
		n.Kind, n.Answer, n.Terminal = KindAnswer, a, true
	}
	nid, err := env.addNode([]NodeID{id}, n, true)
	if err != nil {
		return 0, fmt.Errorf("refine node %d: %w", id, err)
	}
	env.Tracer.Record(OpRefine, []NodeID{id, nid}, nil)
	return nid, nil
}

// Aggregate asks the policy to merge ids into one node whose parents are
// all of them (a graph structure is required for more than one parent).
func Aggregate(ctx context.Context, env *Env, ids []NodeID, msgs []Message) (NodeID, error) {
	c, err := env.Complete(ctx, CompletionRequest{Messages: msgs, N: 1, Seed: ptr(env.NextSeed()), Purpose: OpAggregate})
	if err != nil {
		return 0, fmt.Errorf("aggregate %v: %w", ids, err)
	}
	if len(c.Choices) == 0 {
		return 0, fmt.Errorf("aggregate %v: %w: no choices", ids, ErrLLMBadResponse)
	}
	n := Node{Kind: KindAggregate, Content: c.Choices[0].Text, LLMCall: c.TraceSeq,
		Usage: Usage{LLMCalls: 1, PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens}}
	if a, ok := env.Pack.ExtractAnswer(n.Content); ok {
		n.Answer, n.Terminal = a, true
	}
	nid, err := env.addNode(ids, n, true)
	if err != nil {
		return 0, fmt.Errorf("aggregate %v: %w", ids, err)
	}
	env.Tracer.Record(OpAggregate, append(append([]NodeID(nil), ids...), nid), nil)
	return nid, nil
}

// Prune marks nodes as dropped: they stay in the structure (and the trace)
// but strategies no longer expand them. Its prune event, which lists them,
// is the change (no update event repeats it); ids that do not exist are
// left out.
func Prune(env *Env, ids ...NodeID) {
	if pruned := env.Structure.setPruned(ids); len(pruned) > 0 {
		env.Tracer.Record(OpPrune, pruned, nil)
	}
}

// Restructure returns the path to leaf as a new chain structure: the
// blueprint's tree → chain transformation, used to hand a found solution to
// a chain-shaped consumer (refinement, export).
func Restructure(env *Env, leaf NodeID) (*Structure, error) {
	path := env.Structure.Path(leaf)
	if path == nil {
		return nil, fmt.Errorf("restructure: node %d does not exist", leaf)
	}
	ch := NewStructure(Chain, path[0].Content, nil)
	prev := NodeID(0)
	for _, n := range path[1:] {
		n.Sub = nil
		id, err := ch.Add([]NodeID{prev}, n)
		if err != nil {
			return nil, fmt.Errorf("restructure: %w", err)
		}
		prev = id
	}
	env.Tracer.Record(OpRestructure, []NodeID{leaf}, map[string]any{"to": string(Chain), "length": len(path)})
	return ch, nil
}

// Select returns the candidate with the highest score; ties go to the
// lowest id, so selection is deterministic. It fails on no candidates.
func Select(env *Env, candidates []NodeID, score func(Node) float64) (NodeID, error) {
	if len(candidates) == 0 {
		return 0, errors.New("select: no candidates")
	}
	best, bestScore := NodeID(-1), math.Inf(-1)
	for _, id := range candidates {
		n, ok := env.Structure.Node(id)
		if !ok {
			continue
		}
		s := score(n)
		if s > bestScore || (s == bestScore && (best < 0 || id < best)) {
			best, bestScore = id, s
		}
	}
	if best < 0 {
		return 0, errors.New("select: no candidate exists")
	}
	env.Tracer.Record(OpSelect, []NodeID{best}, map[string]any{"score": finite(bestScore), "of": len(candidates)})
	return best, nil
}

// Backtrack returns the nearest ancestor of id that is not pruned (the root
// when none is), for depth-first strategies that abandon a branch.
func Backtrack(env *Env, id NodeID) NodeID {
	n, ok := env.Structure.Node(id)
	for ok && len(n.Parents) > 0 {
		n, ok = env.Structure.Node(n.Parents[0])
		if ok && !n.Pruned {
			break
		}
	}
	to := NodeID(0)
	if ok {
		to = n.ID
	}
	env.Tracer.Record(OpBacktrack, []NodeID{id, to}, nil)
	return to
}

// ErrUnscored is wrapped when an evaluator fails or returns garbage; the
// node is marked unscored and the search may go on.
var ErrUnscored = errors.New("node left unscored")

// Evaluate scores node id with ev and stores the score in the node under the
// evaluation's kind. An evaluator error or a score outside [-1, 1] leaves
// the node unscored (Meta "eval_error") and returns an error wrapping
// ErrUnscored, unless the cause was the budget or the context.
func Evaluate(ctx context.Context, env *Env, ev Evaluator, id NodeID) (Evaluation, error) {
	// The evaluator's LLM calls are listed in the evaluate event, so a
	// viewer can show the prompt that scored the node.
	one := &evaluation{rec: callRecorder{env: env}, node: [1]NodeID{id}}
	rec := &one.rec
	rec.calls = one.seqs[:0]
	req := EvalRequest{Task: env.Task, Policy: rec}
	if IsPathFree(ev) {
		steps, last, ok := env.Structure.stepsAndNode(id)
		if !ok {
			return Evaluation{}, fmt.Errorf("evaluate: node %d does not exist", id)
		}
		req.Steps, req.Last = steps, &last
	} else if req.Path = env.Structure.Path(id); req.Path == nil {
		return Evaluation{}, fmt.Errorf("evaluate: node %d does not exist", id)
	}
	e, err := ev.Evaluate(ctx, req)
	rec.mu.Lock()
	seqs := rec.calls
	rec.mu.Unlock()
	if err == nil && (math.IsNaN(e.Score) || e.Score < -1 || e.Score > 1) {
		err = fmt.Errorf("score %v is outside [-1, 1]", e.Score)
	}
	if err != nil {
		if errors.Is(err, ErrBudgetExhausted) || ctx.Err() != nil {
			return Evaluation{}, err
		}
		msg := err.Error()
		_ = env.Structure.Update(id, func(n *Node) {
			if n.Meta == nil {
				n.Meta = map[string]any{}
			}
			n.Meta["eval_error"] = msg
		})
		env.Tracer.emit(Event{Op: OpEvaluate, Nodes: one.node[:], Data: &EvaluationFailure{Error: msg, LLMCalls: seqs}})
		if !errors.Is(err, ErrNotApplicable) {
			env.failures.evaluation(err)
		}
		return Evaluation{}, fmt.Errorf("evaluate node %d: %w: %v", id, ErrUnscored, err)
	}
	if e.Kind == "" {
		e.Kind = ScoreValue
	}
	_ = env.Structure.setScore(id, e.Kind, e.Score, e.Detail)
	data := &one.data
	*data = EvaluationData{Kind: e.Kind, Score: e.Score, Detail: e.Detail, LLMCalls: seqs}
	if e.Correct != nil {
		data.Correct = ptr(*e.Correct)
	}
	env.Tracer.emit(Event{Op: OpEvaluate, Nodes: one.node[:], Data: data})
	return e, nil
}

// evaluation is what Evaluate keeps of one scoring, allocated in one piece
// (a search scores nearly every node it makes): the recorder of its LLM
// calls, with room for the one call most evaluators make, and its event's
// node list and data.
type evaluation struct {
	rec  callRecorder
	seqs [1]int64
	node [1]NodeID
	data EvaluationData
}

// callRecorder is the metered policy that notes the trace seqs of its
// calls.
type callRecorder struct {
	env   *Env
	mu    sync.Mutex
	calls []int64
}

func (r *callRecorder) Complete(ctx context.Context, req CompletionRequest) (Completion, error) {
	c, err := r.env.Complete(ctx, req)
	if c.TraceSeq > 0 {
		r.mu.Lock()
		r.calls = append(r.calls, c.TraceSeq)
		r.mu.Unlock()
	}
	return c, err
}

// EvaluateAll scores ids concurrently (the limiter bounds LLM calls; see
// ForEach) and returns the evaluations in order; unscored nodes have ok
// false. It returns an error only for the budget or the context.
func EvaluateAll(ctx context.Context, env *Env, ev Evaluator, ids []NodeID) ([]Evaluation, []bool, error) {
	evs := make([]Evaluation, len(ids))
	oks := make([]bool, len(ids))
	errs := make([]error, len(ids))
	one := func(i int) {
		e, err := Evaluate(ctx, env, ev, ids[i])
		evs[i], oks[i] = e, err == nil
		if err != nil && !errors.Is(err, ErrUnscored) {
			errs[i] = err
		}
	}
	env.ForEach(len(ids), 1, one)
	return evs, oks, errors.Join(errs...)
}

// ForEach runs fn(0) … fn(n-1): concurrently while the LLM calls left can
// pay need calls for each, else one after the other in order. Left to the
// goroutines, which of them the budget cut off would depend on which one
// reserved first, and a run with the same seed could end with another
// answer. (A job that makes more than need calls can still be cut off at
// a place that depends on timing.)
func (e *Env) ForEach(n int, need int64, fn func(i int)) {
	serial := n <= 1
	if !serial {
		left := e.Budget.Remaining()
		serial = left >= 0 && left < int64(n)*need
	}
	if serial {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	for i := range n {
		if i == n-1 {
			fn(i) // the caller's goroutine takes the last: one goroutine fewer to start
			break
		}
		wg.Go(func() { fn(i) })
	}
	wg.Wait()
}

func finite(f float64) any {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil
	}
	return f
}
