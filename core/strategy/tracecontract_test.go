package strategy_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm/sim"
)

// TestTracesKeepTheirContract checks what docs/trace.md promises of the
// traces of every built-in strategy, nested searches and runs stopped by
// the budget included: seqs without gaps, every node an event names exists
// in its scope, usage is what the events add up to (samples and requests
// of llm_call events that came back or that the search gave up, their
// tokens, tool calls, nodes less the roots) and what the result says.
// The events replay to the final structure (concurrent changes recorded
// their events out of order before).
func TestTracesKeepTheirContract(t *testing.T) {
	t.Parallel()
	eng := newEngine(simPolicy(t, sim.Options{Seed: 4}))
	gsm := "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?"
	tasks := []core.Task{
		{Strategy: "cot"}, {Strategy: "self-consistency"}, {Strategy: "best-of-n"}, {Strategy: "refine"},
		{Strategy: "got"}, {Strategy: "decompose", Params: core.Params{"sub_strategy": "mcts"}},
		{Strategy: "decompose", Params: core.Params{"sub_strategy": "got"}},
		{Strategy: "beam"}, {Strategy: "mcts", Params: core.Params{"parallel": 4}},
		{Strategy: "mcts", Pack: "game24", Params: core.Params{"step_strategy": "beam", "step_params": `{"beam_width": 1, "expansions": 2, "max_depth": 1}`}},
		{Strategy: "tot-bfs", Pack: "game24", Limits: core.Limits{LLMCalls: 20}},
		{Strategy: "tot-dfs", Pack: "game24"},
	}
	for i, task := range tasks {
		if task.Pack == "" {
			task.Pack, task.Problem = "gsm8k", gsm
		} else {
			task.Problem = "4 9 10 13"
		}
		t.Run(fmt.Sprintf("%d-%s", i, task.Strategy), func(t *testing.T) {
			res, err := eng.Solve(t.Context(), task)
			if err != nil {
				t.Fatal(err)
			}
			tr := res.Trace
			scopes := map[string]int{}
			var walk func(key string, s *core.Structure)
			walk = func(key string, s *core.Structure) {
				scopes[key] = s.Len()
				for _, n := range s.Nodes() {
					if n.Sub != nil {
						walk(fmt.Sprintf("%s%d/", key, n.ID), n.Sub)
					}
				}
			}
			walk("", tr.Structure)
			var sum core.Usage
			for i, e := range tr.Events {
				if e.Seq != int64(i+1) {
					t.Fatalf("event %d has seq %d", i, e.Seq)
				}
				key := ""
				for _, id := range e.Scope {
					key += fmt.Sprintf("%d/", id)
				}
				n, ok := scopes[key]
				if !ok {
					t.Fatalf("event %d (%s) is in scope %v, which the structure does not have", e.Seq, e.Op, e.Scope)
				}
				ids := append([]core.NodeID(nil), e.Nodes...)
				for _, st := range e.Stats {
					ids = append(ids, st.ID)
				}
				for _, id := range ids {
					if int(id) >= n {
						t.Errorf("event %d (%s) names node %d of a scope of %d nodes", e.Seq, e.Op, id, n)
					}
				}
				switch e.Op {
				case core.OpLLMCall:
					if e.Get("error") == nil || e.Get("cancelled") == true {
						sum.LLMCalls += int64(e.Get("n").(int))
						sum.Requests++
					}
					if p, ok := e.Get("prompt_tokens").(int64); ok {
						sum.PromptTokens += p
						sum.CompletionTokens += e.Get("completion_tokens").(int64)
					}
				case core.OpToolCall:
					sum.ToolCalls++
				case core.OpNode:
					if e.Node.ID != 0 {
						sum.Nodes++
					}
				}
			}
			sum.WallMS = tr.Usage.WallMS
			if sum != tr.Usage || tr.Usage != res.Usage {
				t.Errorf("usage: trace %+v, result %+v, events add up to %+v", tr.Usage, res.Usage, sum)
			}
			// The start events say each structure's kind (a got is a
			// graph, nested too): Replay is not told.
			rep, err := core.Replay(core.Tree, tr.Events)
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			if a, b := mustJSON(t, rep), mustJSON(t, tr.Structure); a != b {
				t.Errorf("the events replay to another structure than the final one")
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
