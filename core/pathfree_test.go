package core_test

import (
	"context"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// recordingEvaluator notes the request it got and scores by path length.
type recordingEvaluator struct {
	pathFree bool
	got      *core.EvalRequest
}

func (r recordingEvaluator) PathFree() bool { return r.pathFree }

func (r recordingEvaluator) Evaluate(ctx context.Context, req core.EvalRequest) (core.Evaluation, error) {
	*r.got = req
	last, _ := req.LastNode()
	return core.Evaluation{Score: float64(len(req.PathSteps())) / 10, Kind: last.Content}, nil
}

// A path-free evaluator gets the steps and the last node instead of a copy
// of the path, and scores the same.
func TestEvaluateSparesThePathForPathFreeEvaluators(t *testing.T) {
	t.Parallel()
	for _, pathFree := range []bool{false, true} {
		var got core.EvalRequest
		ev := recordingEvaluator{pathFree: pathFree, got: &got}
		reg := core.NewRegistry()
		var e core.Evaluation
		reg.RegisterStrategy(core.StrategySpec{Name: "chain3", New: func(core.Params) (core.Strategy, error) {
			return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
				parent := core.NodeID(0)
				for _, step := range []string{"one", "two", "three"} {
					id, err := env.AddNode([]core.NodeID{parent}, core.Node{Content: step})
					if err != nil {
						return core.Outcome{}, err
					}
					parent = id
				}
				var err error
				e, err = core.Evaluate(ctx, env, ev, parent)
				return core.Outcome{}, err
			}), nil
		}})
		res, err := core.NewEngine(instantPolicy, reg, &core.EngineOptions{DefaultStrategy: "chain3"}).Solve(t.Context(), core.Task{Problem: "p"})
		if err != nil || res.Stopped != core.StopDone {
			t.Fatalf("path-free %v: %v %s %s", pathFree, err, res.Stopped, res.Error)
		}
		if e.Score != 0.3 || e.Kind != "three" {
			t.Errorf("path-free %v: evaluation %+v, want score 0.3 of node \"three\"", pathFree, e)
		}
		if pathFree != (got.Path == nil) || pathFree != (got.Last != nil) {
			t.Errorf("path-free %v: got a path of %d nodes and last %v", pathFree, len(got.Path), got.Last)
		}
		if len(got.PathSteps()) != 3 || got.PathSteps()[0] != "one" {
			t.Errorf("path-free %v: steps %q", pathFree, got.PathSteps())
		}
		if n := res.Trace.Structure.MustNode(3); n.Scores["three"] != 0.3 {
			t.Errorf("path-free %v: node scores %v", pathFree, n.Scores)
		}
	}
}
