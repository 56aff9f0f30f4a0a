package server

import (
	"context"
	"errors"
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
