package core_test

import (
	"context"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// instantPolicy answers at once with fixed short steps: the engine's own cost
// is all that is measured.
var instantPolicy = core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	c := core.Completion{PromptTokens: 20, CompletionTokens: int64(4 * req.N), Choices: make([]core.Choice, req.N)}
	for i := range c.Choices {
		c.Choices[i].Text = "add the two numbers"
	}
	return c, nil
})

// BenchmarkEngineExpansion measures node expansions per second through the
// whole engine (budget, limiter, structure, tracer, operators) with an
// instant in-process policy: each Generate adds 4 children to a node of a
// breadth-first tree.
func BenchmarkEngineExpansion(b *testing.B) {
	reg := core.NewRegistry()
	const perRun = 4096
	reg.RegisterStrategy(core.StrategySpec{Name: "bfs", New: func(core.Params) (core.Strategy, error) {
		return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			frontier := []core.NodeID{0}
			for env.Structure.Len() < perRun {
				next := frontier[0]
				frontier = frontier[1:]
				ids, err := core.Generate(ctx, env, next, 4, core.GenerateOptions{})
				if err != nil {
					return core.Outcome{}, err
				}
				frontier = append(frontier, ids...)
			}
			return core.Outcome{}, nil
		}), nil
	}})
	eng := core.NewEngine(instantPolicy, reg, &core.EngineOptions{DefaultStrategy: "bfs"})
	b.ReportAllocs()
	b.ResetTimer()
	nodes := 0
	for i := 0; i < b.N; i++ {
		res, err := eng.Solve(context.Background(), core.Task{Problem: "What is 2 + 2?"})
		if err != nil || res.Stopped != core.StopDone {
			b.Fatalf("%v %s %s", err, res.Stopped, res.Error)
		}
		nodes += int(res.Usage.Nodes)
	}
	b.ReportMetric(float64(nodes)/b.Elapsed().Seconds(), "nodes/s")
}
