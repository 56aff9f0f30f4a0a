package strategy_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/core/strategy"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/tasks"
)

// MCTS on a Game of 24 puzzle against the simulator: the answer is checked
// exactly, and every node carries its visits and value.
func Example_mcts() {
	srv, _ := sim.New(sim.Options{Seed: 3})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	pol, _ := llm.New(config.LLM{BaseURL: ts.URL + "/v1", Model: "sim", Concurrency: 8, Timeout: time.Minute, N: "auto"}, nil)

	reg := core.NewRegistry()
	strategy.Register(reg)
	evaluator.Register(reg)
	eng := core.NewEngine(pol, reg, &core.EngineOptions{Packs: tasks.Get})
	res, err := eng.Solve(context.Background(), core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "mcts",
		Params: core.Params{"parallel": 1}, Seed: 7})
	if err != nil {
		fmt.Println(err)
		return
	}
	root := res.Trace.Structure.MustNode(0)
	fmt.Println(res.Stopped, tasks.Check24("4 9 10 13", res.Answer) == nil, root.Visits > 0)
	// Output: done true true
}

// A Graph of Thoughts graph is data; it is checked before any LLM call.
func ExampleParseGraph() {
	_, err := strategy.ParseGraph(`
- {id: a, op: generate, k: 3}
- {id: b, op: score, from: [a, c]}
- {id: c, op: keep_best, keep: 1, from: [b]}
`)
	fmt.Println(err)
	g, _ := strategy.ParseGraph(strategy.DefaultGraph)
	for _, op := range g.Ops {
		fmt.Print(op.Op, " ")
	}
	fmt.Println()
	// Output:
	// the operations b, c form a cycle
	// generate score keep_best aggregate refine score keep_best
}
