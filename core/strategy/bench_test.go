package strategy_test

import (
	"context"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// instant answers at once: steps without answers, value and PRM replies
// with a score that varies with the step, so the search is exercised and
// only Ponder's own cost is measured.
var instant = core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	c := core.Completion{PromptTokens: 20, CompletionTokens: int64(4 * req.N), Choices: make([]core.Choice, req.N)}
	seed := int64(0)
	if req.Seed != nil {
		seed = *req.Seed
	}
	for i := range c.Choices {
		switch req.Purpose {
		case "value", "prm", "orm", "judge":
			c.Choices[i].Text = "Score: " + string(rune('1'+(seed+int64(i))%9&7))
		default:
			c.Choices[i].Text = "add the two numbers"
		}
	}
	return c, nil
})

func benchSearch(b *testing.B, strategy string, params core.Params) {
	eng := newEngine(instant)
	b.ReportAllocs()
	b.ResetTimer()
	nodes, expansions := 0, 0
	for i := 0; i < b.N; i++ {
		res, err := eng.Solve(context.Background(), core.Task{Problem: "What is 2 + 2?", Strategy: strategy, Params: params, Seed: int64(i)})
		if err != nil || (res.Stopped != core.StopDone) {
			b.Fatalf("%v %s %s", err, res.Stopped, res.Error)
		}
		nodes += int(res.Usage.Nodes)
		expansions += int(res.Usage.Requests) // 1 generate + children evaluations per expansion
	}
	b.ReportMetric(float64(nodes)/b.Elapsed().Seconds(), "nodes/s")
}

func BenchmarkMCTSExpansions(b *testing.B) {
	benchSearch(b, "mcts", core.Params{"iterations": 1000, "children": 3, "parallel": 1, "max_depth": 8})
}

func BenchmarkBeamExpansions(b *testing.B) {
	benchSearch(b, "beam", core.Params{"beam_width": 16, "expansions": 4, "max_depth": 8})
}
