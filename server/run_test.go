package server

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// scoreEval scores a node by its content, and fails for "bad".
type scoreEval map[string]core.Evaluation

func (s scoreEval) Evaluate(_ context.Context, r core.EvalRequest) (core.Evaluation, error) {
	last, _ := r.LastNode()
	e, ok := s[last.Content]
	if !ok {
		return core.Evaluation{}, errors.New("no score for " + last.Content)
	}
	return e, nil
}

// The progress of a run shows the best score its nodes have got, each
// node's score being its most authoritative one (a verifier's beats a
// value), from evaluate events.
func TestProgressFollowsTheBestScore(t *testing.T) {
	t.Parallel()
	wrong := false
	ev := scoreEval{
		"a": {Score: 0.9, Kind: core.ScoreValue},
		"b": {Score: 0.5, Kind: core.ScoreValue},
		"c": {Score: 0.95, Kind: core.ScoreValue},
	}
	// c's answer is checked first: its value estimate comes after and does
	// not count.
	verdict := scoreEval{"c": {Score: -1, Kind: core.ScoreVerifier, Correct: &wrong}}
	reg := core.NewRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "scores", New: func(core.Params) (core.Strategy, error) {
		return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			var ids []core.NodeID
			for _, c := range []string{"a", "b", "c", "bad"} {
				id, err := env.AddNode([]core.NodeID{0}, core.Node{Content: c})
				if err != nil {
					return core.Outcome{}, err
				}
				ids = append(ids, id)
			}
			_, _ = core.Evaluate(ctx, env, verdict, ids[2])
			for _, id := range ids {
				_, _ = core.Evaluate(ctx, env, ev, id)
			}
			return core.Outcome{}, nil
		}), nil
	}})
	var tr *core.Tracer
	eng := core.NewEngine(nil, reg, &core.EngineOptions{DefaultStrategy: "scores",
		OnStart: func(_ string, _ core.Task, t *core.Tracer) { tr = t }})
	if _, err := eng.Solve(t.Context(), core.Task{Problem: "p"}); err != nil {
		t.Fatal(err)
	}
	w := newWatcher(tr, 0)
	w.advance()
	if w.snap.BestScore == nil || *w.snap.BestScore != 0.9 {
		t.Fatalf("best score %v, want 0.9", deref(w.snap.BestScore))
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// What a client reads counts in English: one call is "1 LLM call", one
// node "1 node" (solve's text said "1 LLM calls", progress "1 nodes").
func TestCountsReadAsEnglish(t *testing.T) {
	t.Parallel()
	if got := (progress{Nodes: 1, LLMCalls: 1, Tokens: 1}).message(); got != "searching: 1 node, 1 LLM call, 1 token" {
		t.Fatalf("progress: %q", got)
	}
	if got := (progress{Nodes: 2, LLMCalls: 2, Tokens: 2, CallLimit: 5}).message(); got != "searching: 2 nodes, 2 of 5 LLM calls, 2 tokens" {
		t.Fatalf("progress: %q", got)
	}
	out := solveResult{StoppedReason: core.StopDone, Usage: core.Usage{LLMCalls: 1, PromptTokens: 1}}
	if got := out.text(); !strings.Contains(got, ", 1 LLM call, 1 token,") {
		t.Fatalf("solve's text: %q", got)
	}
}
