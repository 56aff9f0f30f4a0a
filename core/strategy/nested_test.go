package strategy_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// decompose plans and solves the whole problem afresh, ignoring the outer
// path: as a step_strategy its plan reply became the step ("1. How much
// profit did he make?"). It is rejected before any call, like the other
// whole-solution strategies.
func TestStepStrategyRejectsDecompose(t *testing.T) {
	t.Parallel()
	checkRejections(t, []rejection{
		{"beam", core.Params{"step_strategy": "decompose"}, []string{`"step_strategy"`, "whole solutions"}},
		{"mcts", core.Params{"step_strategy": "decompose", "step_params": `{"sub_strategy": "cot"}`}, []string{`"step_strategy"`, "whole solutions"}},
	})
}

// game24Path answers Game of 24 step prompts for 4 9 10 13 along one
// solution; the first expand request gets a step with wrong arithmetic,
// which the step checker prunes.
func game24Path() (core.Policy, *atomic.Int64) {
	var expands atomic.Int64
	steps := []string{"13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)\n\\boxed{(10 - 4) * (13 - 9)}"}
	return core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		id, _ := tasks.Identify(req.Messages)
		first := req.Purpose == "expand" && expands.Add(1) == 1
		var c core.Completion
		for range max(req.N, 1) {
			text := steps[min(len(id.Steps), len(steps)-1)]
			if first {
				text = "4 + 9 = 14 (left: 10 13 14)"
			}
			c.Choices = append(c.Choices, core.Choice{Text: text})
		}
		return c, nil
	}), &expands
}

// A nested search that spends its own step_budget without finding a step
// is one dead child, not the end of the outer run: the outer run still has
// calls left, its other children go on, and it finds the answer.
func TestStepBudgetSpentByOneNestedSearchDoesNotStopTheRun(t *testing.T) {
	t.Parallel()
	for _, outer := range []string{"beam", "mcts"} {
		t.Run(outer, func(t *testing.T) {
			t.Parallel()
			pol, expands := game24Path()
			params := core.Params{"step_strategy": "beam", "step_budget": 1,
				"step_params": `{"beam_width": 1, "expansions": 1, "max_depth": 1, "evaluator": "none", "passes": 2}`}
			if outer == "beam" {
				params["beam_width"], params["expansions"], params["evaluator"] = 1, 2, "none"
			} else {
				params["children"], params["parallel"] = 2, 1
			}
			res, err := newEngine(pol).Solve(t.Context(), core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: outer,
				Params: params, Limits: core.Limits{LLMCalls: 50}})
			if err != nil {
				t.Fatal(err)
			}
			if expands.Load() < 2 {
				t.Fatalf("%d expand calls: the scripted bad step was never asked for", expands.Load())
			}
			if res.Stopped == core.StopBudget || res.Answer != "(10 - 4) * (13 - 9)" {
				t.Fatalf("stopped %s (%s) with answer %q after %d of 50 calls; want the answer", res.Stopped, res.Error, res.Answer, res.Usage.LLMCalls)
			}
		})
	}
}

// A step_budget smaller than the nested search's first request (beam
// samples its expansions in one request) stops the run before any call,
// and the error says that step_budget is the limit, not the run's budget.
func TestStepBudgetTooSmallForOneRequestIsNamed(t *testing.T) {
	t.Parallel()
	pol := &meter{Policy: stepper("Score: 5")}
	res, err := newEngine(pol).Solve(t.Context(), core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "mcts",
		Params: core.Params{"step_strategy": "beam", "step_budget": 2, "step_params": `{"beam_width": 1, "expansions": 4, "max_depth": 1}`},
		Limits: core.Limits{LLMCalls: 50}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopBudget || !strings.Contains(res.Error, "step_budget 2 is too small") || pol.calls.Load() != 0 {
		t.Fatalf("stopped %s after %d calls: %q; want budget, no call, and step_budget named", res.Stopped, pol.calls.Load(), res.Error)
	}
}

// A step search ends at its max_depth without an answer, which beam took
// for a failed pass: the documented best-of-4 step (beam 1 × 4 at depth 1)
// ran pass after pass, sampling up to 40 steps for each child. It makes
// one pass: 4 sampled steps and their 4 PRM scores.
func TestStepSearchesMakeOnePass(t *testing.T) {
	t.Parallel()
	for _, nested := range []string{"beam", "tot-bfs"} {
		params := `{"beam_width": 1, "expansions": 4, "max_depth": 1}`
		if nested == "tot-bfs" {
			params = `{"breadth": 1, "samples": 4, "max_depth": 1, "generate": "sample", "evaluator": "prm"}`
		}
		res, err := newEngine(stepper("Score: 5")).Solve(t.Context(), core.Task{Problem: "What is 17 * 23?", Pack: "generic",
			Strategy: "mcts", Params: core.Params{"parallel": 1, "iterations": 1, "children": 2, "stop_on": "none",
				"evaluator": "none", "step_strategy": nested, "step_params": params}})
		if err != nil {
			t.Fatal(err)
		}
		subs := 0
		for _, n := range res.Trace.Structure.Nodes() {
			if n.Kind == core.KindSubProblem {
				subs++
				if n.Usage.LLMCalls != 8 {
					t.Errorf("%s: nested search of node %d made %d calls, want 4 steps and 4 scores", nested, n.ID, n.Usage.LLMCalls)
				}
			}
		}
		if subs != 2 {
			t.Fatalf("%s: %d sub-problem nodes, want 2: %s", nested, subs, res.Error)
		}
	}
}

// While MCTS's first expansion is in flight, its idle simulations expanded
// the same node again (up to 4 at once) to fill their LLM slots; with a
// nested step search an expansion is many calls, several at once, and the
// documented example spent its whole budget of 64 calls at the root and
// found no answer. Nested expansions of a node are never in flight twice.
func TestMCTSDoesNotExpandANodeTwiceAtOnceWithNestedSteps(t *testing.T) {
	t.Parallel()
	slow := stepper("Score: 5")
	pol := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		time.Sleep(2 * time.Millisecond) // the other simulations meet the expansion in flight
		return slow.Complete(ctx, req)
	})
	res, err := newEngine(pol).Solve(t.Context(), core.Task{Problem: "What is 17 * 23?", Pack: "generic",
		Strategy: "mcts", Params: core.Params{"parallel": 8, "iterations": 6, "children": 2, "stop_on": "none",
			"step_strategy": "beam", "step_params": `{"beam_width": 1, "expansions": 4, "max_depth": 1}`}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Trace.Events {
		if d, ok := e.Data.(*core.SelectData); ok && len(e.Scope) == 0 && d.InFlight > 1 {
			t.Fatalf("node %v selected with %d expansions in flight (iteration %d)", e.Nodes, d.InFlight, d.Iteration)
		}
	}
}
