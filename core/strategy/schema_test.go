package strategy_test

import (
	"encoding/json"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/traces/tracetest"
)

// TestSearchTracesMatchTheSchema checks the traces of the searches,
// nested ones included, against docs/trace.schema.json.
func TestSearchTracesMatchTheSchema(t *testing.T) {
	t.Parallel()
	eng := newEngine(simPolicy(t, sim.Options{Seed: 2}))
	for _, task := range []core.Task{
		{Strategy: "mcts", Params: core.Params{"parallel": 2, "step_strategy": "beam", "step_params": `{"beam_width": 1, "expansions": 2, "max_depth": 1}`}},
		{Strategy: "beam"}, {Strategy: "tot-bfs"}, {Strategy: "tot-dfs"}, {Strategy: "got"}, {Strategy: "refine"},
	} {
		task.Problem, task.Pack = "4 9 10 13", "game24"
		res, err := eng.Solve(t.Context(), task)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(res.Trace)
		if err != nil {
			t.Fatal(err)
		}
		if err := tracetest.Validate(t, b); err != nil {
			t.Errorf("%s trace: %v", task.Strategy, err)
		}
	}
}
