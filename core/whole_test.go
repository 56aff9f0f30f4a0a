package core_test

import (
	"context"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// wholeAndStep generates two whole solutions and one step from the root.
type wholeAndStep struct{}

func (wholeAndStep) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	if _, err := core.Generate(ctx, env, 0, 2, core.GenerateOptions{Whole: true}); err != nil {
		return core.Outcome{}, err
	}
	ids, err := core.Generate(ctx, env, 0, 1, core.GenerateOptions{})
	if err != nil {
		return core.Outcome{}, err
	}
	return core.Outcome{Best: ids[0]}, nil
}

// A whole solution (Generate with Whole) says so in its node, final and as
// traced, and a step does not: ponder export reads the mark to prompt and
// label a whole solution as one (GoT's and refine's first solutions were
// exported as single steps after the step prompt).
func TestGenerateMarksWholeSolutions(t *testing.T) {
	t.Parallel()
	reg := core.NewRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "whole-and-step", New: func(core.Params) (core.Strategy, error) { return wholeAndStep{}, nil }})
	eng := core.NewEngine(&countingPolicy{}, reg, nil)
	res, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "whole-and-step"})
	if err != nil {
		t.Fatal(err)
	}
	trace := res.Trace
	replayed, err := core.Replay(trace.Structure.Kind(), trace.Events)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*core.Structure{"final": trace.Structure, "replayed": replayed} {
		var whole []bool
		for _, n := range s.Nodes()[1:] {
			w, _ := n.Meta[core.MetaWhole].(bool)
			whole = append(whole, w)
		}
		if len(whole) != 3 || !whole[0] || !whole[1] || whole[2] {
			t.Errorf("%s structure: whole marks %v, want [true true false] (two whole solutions, then a step)", name, whole)
		}
	}
}
