package strategy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/tasks/taskstest"
	"github.com/ponder-rlm/ponder/traces/tracetest"
)

// gsm8kItem returns the i-th GSM8K test problem.
func gsm8kItem(t *testing.T, i int) tasks.Item {
	t.Helper()
	return taskstest.Load(t, "gsm8k", i+1)[i]
}

// planner is a scripted policy for decompose: the plan prompt gets plan,
// a sub-question gets "\boxed{N}" with N = 10 × (its number), compose
// prompts restate the last sub-answer plus one, and whole-problem solve
// prompts get \boxed{42}.
func planner(plan string) core.Policy {
	return core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		text := `\boxed{42}`
		if _, _, ok := tasks.ParseDecomposePrompt(req.Messages); ok {
			text = plan
		} else if _, subs, ok := tasks.ParseComposePrompt(req.Messages); ok {
			var n int
			fmt.Sscan(subs[len(subs)-1].Answer, &n)
			text = fmt.Sprintf(`So the answer is \boxed{%d}.`, n+1)
		} else if id, ok := tasks.Identify(req.Messages); ok {
			if _, prior, _, ok := tasks.ParseSubProblem(id.Problem); ok {
				text = fmt.Sprintf(`\boxed{%d}`, 10*(len(prior)+1))
			}
		}
		c := core.Completion{PromptTokens: 10, CompletionTokens: 5}
		for range max(req.N, 1) {
			c.Choices = append(c.Choices, core.Choice{Text: text})
		}
		return c, nil
	})
}

// chain returns the nodes of a chain in order from the root.
func chain(t *testing.T, s *core.Structure) []core.Node {
	t.Helper()
	var out []core.Node
	for id := core.NodeID(0); ; {
		n := s.MustNode(id)
		out = append(out, n)
		if len(n.Children) == 0 {
			return out
		}
		if len(n.Children) > 1 {
			t.Fatalf("node %d has %d children in a chain", id, len(n.Children))
		}
		id = n.Children[0]
	}
}

func TestDecomposeSolvesEachSubQuestionAsANestedSearch(t *testing.T) {
	t.Parallel()
	it := gsm8kItem(t, 2) // four reference steps: the simulator asks three sub-questions
	m := &meter{Policy: simPolicy(t, sim.Options{Seed: 4})}
	res, err := newEngine(m).Solve(t.Context(), core.Task{Problem: it.Problem, Pack: "gsm8k", Truth: it.Truth, Strategy: "decompose",
		Params: core.Params{"sub_strategy": "self-consistency", "sub_params": `{"k": 3}`}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopDone || res.Answer == "" {
		t.Fatalf("stopped %s with %q (%s)", res.Stopped, res.Answer, res.Error)
	}
	nodes := chain(t, res.Trace.Structure)
	plan, final := nodes[1], nodes[len(nodes)-1]
	subs := nodes[2 : len(nodes)-1]
	qs, _ := plan.Meta["sub_questions"].([]string)
	if plan.Meta["role"] != "plan" || len(qs) < 2 || len(subs) != len(qs) {
		t.Fatalf("plan %q lists %d sub-questions; the chain has %d sub-problems", plan.Content, len(qs), len(subs))
	}
	if final.Meta["role"] != "compose" || !final.Terminal || final.Answer != res.Answer {
		t.Fatalf("last node %+v is not the composed answer %q", final, res.Answer)
	}
	if _, ok := final.Scores[core.ScoreVerifier]; !ok {
		t.Errorf("the final answer was not verified against the truth: %v", final.Scores)
	}
	total := plan.Usage.LLMCalls + final.Usage.LLMCalls
	scoped := map[core.NodeID]int{}
	for _, e := range res.Trace.Events {
		if len(e.Scope) == 1 && e.Op == core.OpLLMCall {
			scoped[e.Scope[0]]++
		}
	}
	var prior []string
	for i, n := range subs {
		if n.Kind != core.KindSubProblem || n.Content != qs[i] || n.Sub == nil {
			t.Fatalf("node %d: kind %s, content %q, sub %v; want sub-question %q with its nested search", n.ID, n.Kind, n.Content, n.Sub != nil, qs[i])
		}
		// The nested search's problem is the sub-question with the
		// answers before it.
		root := n.Sub.MustNode(0)
		if !strings.HasSuffix(root.Content, qs[i]) {
			t.Errorf("sub-search %d poses %q", i+1, root.Content)
		}
		for _, a := range prior {
			if !strings.Contains(root.Content, "Answer: "+a) {
				t.Errorf("sub-search %d does not see the earlier answer %s:\n%s", i+1, a, root.Content)
			}
		}
		a, _ := n.Meta["sub_answer"].(string)
		prior = append(prior, a)
		if n.Usage.LLMCalls != 3 || n.Sub.Len() != 4 || scoped[n.ID] != 3 {
			t.Errorf("sub-problem %d: %d calls, %d nested nodes, %d scoped llm_call events; want 3, 4 (root + 3 samples), 3",
				n.ID, n.Usage.LLMCalls, n.Sub.Len(), scoped[n.ID])
		}
		total += n.Usage.LLMCalls
	}
	// Every call of every nested search counts in the run's usage.
	if res.Usage.LLMCalls != total || res.Usage.LLMCalls != m.calls.Load() {
		t.Fatalf("usage %d calls; the nodes account for %d, the policy answered %d", res.Usage.LLMCalls, total, m.calls.Load())
	}
	b, err := json.Marshal(res.Trace)
	if err != nil {
		t.Fatal(err)
	}
	if err := tracetest.Validate(t, b); err != nil {
		t.Errorf("trace: %v", err)
	}
}

func TestDecomposeCarvesEachSubBudgetFromTheRun(t *testing.T) {
	t.Parallel()
	it := gsm8kItem(t, 2)
	pol := simPolicy(t, sim.Options{Seed: 2})
	for _, tc := range []struct {
		name      string
		params    core.Params
		limit     int64
		subBudget int64 // 0: an even share
	}{
		{"even shares", core.Params{"sub_strategy": "self-consistency", "sub_params": `{"k": 8}`}, 12, 0},
		{"sub_budget", core.Params{"sub_strategy": "self-consistency", "sub_params": `{"k": 8}`, "sub_budget": 2}, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := &meter{Policy: pol}
			res, err := newEngine(m).Solve(t.Context(), core.Task{Problem: it.Problem, Pack: "gsm8k", Strategy: "decompose",
				Params: tc.params, Limits: core.Limits{LLMCalls: tc.limit}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Stopped != core.StopDone || res.Answer == "" {
				t.Fatalf("stopped %s with %q (%s); each sub-search stops on its share, the run goes on", res.Stopped, res.Answer, res.Error)
			}
			nodes := chain(t, res.Trace.Structure)
			subs := nodes[2 : len(nodes)-1]
			used := nodes[1].Usage.LLMCalls // the plan
			for i, n := range subs {
				share := tc.subBudget
				if share == 0 {
					share = (tc.limit - used - 1) / int64(len(subs)-i) // one call kept for compose
				}
				if n.Usage.LLMCalls < 1 || n.Usage.LLMCalls > share {
					t.Errorf("sub-problem %d used %d calls; its share is %d", i+1, n.Usage.LLMCalls, share)
				}
				if n.Meta["sub_stopped"] != string(core.StopBudget) {
					t.Errorf("sub-problem %d stopped %v; 8 samples do not fit its share of %d", i+1, n.Meta["sub_stopped"], share)
				}
				used += n.Usage.LLMCalls
			}
			used += nodes[len(nodes)-1].Usage.LLMCalls
			if res.Usage.LLMCalls != used || used != m.calls.Load() || (tc.limit > 0 && used > tc.limit) {
				t.Fatalf("usage %d, nodes %d, policy %d, limit %d", res.Usage.LLMCalls, used, m.calls.Load(), tc.limit)
			}
		})
	}
}

func TestDecomposeAnswersSoFarWhenTheBudgetEnds(t *testing.T) {
	t.Parallel()
	pol := planner("1. What is a?\n2. What is b?")
	for _, tc := range []struct {
		limit  int64
		answer string
	}{
		// plan, sub 1, sub 2, then no call for compose: the last
		// sub-question's answer stands.
		{3, "20"},
		// plan, sub 1: the problem's question is not answered yet.
		{2, ""},
	} {
		m := &meter{Policy: pol}
		res, err := newEngine(m).Solve(t.Context(), core.Task{Problem: "What is a + b?", Strategy: "decompose", Limits: core.Limits{LLMCalls: tc.limit}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stopped != core.StopBudget || res.Answer != tc.answer || m.calls.Load() != tc.limit {
			t.Errorf("limit %d: stopped %s with %q after %d calls; want budget with %q", tc.limit, res.Stopped, res.Answer, m.calls.Load(), tc.answer)
		}
	}
	// Cancelled during the last sub-question: the answer it found so far
	// stands.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mu sync.Mutex
	lastCalls := 0
	base := planner("1. What is a?\n2. What is b?")
	cancelling := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		if id, ok := tasks.Identify(req.Messages); ok {
			if _, prior, _, ok := tasks.ParseSubProblem(id.Problem); ok && len(prior) == 1 {
				mu.Lock()
				lastCalls++
				first := lastCalls == 1
				mu.Unlock()
				if !first {
					cancel()
					<-ctx.Done()
					return core.Completion{}, ctx.Err()
				}
			}
		}
		return base.Complete(ctx, req)
	})
	res, err := newEngine(cancelling).Solve(ctx, core.Task{Problem: "What is a + b?", Strategy: "decompose",
		Params: core.Params{"sub_strategy": "self-consistency", "sub_params": `{"k": 2}`}})
	if err != nil || res.Stopped != core.StopCancelled || res.Answer != "20" {
		t.Fatalf("cancelled in the last sub-question: stopped %s with %q (%v); want cancelled with 20", res.Stopped, res.Answer, err)
	}
	// With the budget for it, compose answers.
	res, err = newEngine(planner("1. What is a?\n2. What is b?")).Solve(t.Context(), core.Task{Problem: "What is a + b?", Strategy: "decompose"})
	if err != nil || res.Stopped != core.StopDone || res.Answer != "21" || res.Usage.LLMCalls != 4 {
		t.Fatalf("stopped %s with %q after %d calls (%v); want done with 21 after 4", res.Stopped, res.Answer, res.Usage.LLMCalls, err)
	}
	// final=last makes no compose call.
	res, err = newEngine(planner("1. What is a?\n2. What is b?")).Solve(t.Context(), core.Task{Problem: "What is a + b?", Strategy: "decompose",
		Params: core.Params{"final": "last"}})
	if err != nil || res.Stopped != core.StopDone || res.Answer != "20" || res.Usage.LLMCalls != 3 {
		t.Fatalf("final=last: stopped %s with %q after %d calls (%v); want done with 20 after 3", res.Stopped, res.Answer, res.Usage.LLMCalls, err)
	}
}

func TestDecomposeSolvesTheWholeProblemWhenThePlanListsNothing(t *testing.T) {
	t.Parallel()
	m := &meter{Policy: planner("This problem is simple enough to solve directly.")}
	res, err := newEngine(m).Solve(t.Context(), core.Task{Problem: "What is 6 * 7?", Strategy: "decompose",
		Params: core.Params{"sub_strategy": "self-consistency", "sub_params": `{"k": 2}`}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopDone || res.Answer != "42" || m.calls.Load() != 3 {
		t.Fatalf("stopped %s with %q after %d calls; want 42 after the plan and 2 samples", res.Stopped, res.Answer, m.calls.Load())
	}
	nodes := chain(t, res.Trace.Structure)
	if len(nodes) != 3 || nodes[1].Meta["fallback"] != true || nodes[2].Kind != core.KindSubProblem ||
		nodes[2].Sub == nil || nodes[2].Sub.MustNode(0).Content != "What is 6 * 7?" || !nodes[2].Terminal {
		t.Fatalf("want problem → plan (fallback) → the whole problem as a sub-problem, got %+v", nodes)
	}
	fallback := false
	for _, e := range res.Trace.Events {
		ok := e.Get("fallback") != nil
		fallback = fallback || (e.Op == core.OpInfo && ok)
	}
	if !fallback {
		t.Fatal("the trace does not say why the whole problem was solved")
	}
}

func TestDecomposeNestsOneDecompositionInAnother(t *testing.T) {
	t.Parallel()
	m := &meter{Policy: planner("1. What is a?\n2. What is b?")}
	res, err := newEngine(m).Solve(t.Context(), core.Task{Problem: "What is a + b?", Strategy: "decompose",
		Params: core.Params{"sub_strategy": "decompose", "sub_params": `{"final": "last"}`}})
	if err != nil {
		t.Fatal(err)
	}
	// plan + 2 × (plan + 2 subs) + compose.
	if res.Stopped != core.StopDone || res.Usage.LLMCalls != 8 || m.calls.Load() != 8 {
		t.Fatalf("stopped %s (%s) after %d calls; want done after 8", res.Stopped, res.Error, res.Usage.LLMCalls)
	}
	inner := chain(t, res.Trace.Structure)[2].Sub
	if inner == nil || len(chain(t, inner)) != 5 || chain(t, inner)[2].Sub == nil {
		t.Fatal("the sub-question's decomposition is not nested in its node")
	}
	deep := 0
	for _, e := range res.Trace.Events {
		if len(e.Scope) == 2 && e.Op == core.OpLLMCall {
			deep++
		}
	}
	if deep != 4 {
		t.Fatalf("%d llm calls scoped two levels deep, want 4", deep)
	}
}

func TestDecomposeRejectsBadParametersBeforeAnyLLMCall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		params core.Params
		want   string
	}{
		{core.Params{"max_subproblems": 0}, `"max_subproblems"`},
		{core.Params{"sub_budget": -1}, `"sub_budget"`},
		{core.Params{"final": "vote"}, `"final"`},
		{core.Params{"sub_strategy": ""}, `"sub_strategy"`},
		{core.Params{"sub_params": "[1]"}, `"sub_params"`},
		{core.Params{"sub_params": "{k: 2"}, `"sub_params"`},
		{core.Params{"verifier": "{nope"}, `"verifier"`},
		{core.Params{"sub_strategy": "decompose", "sub_params": `{"sub_strategy": "decompose"}`}, "nested more than 2 levels"},
		{core.Params{"sub_strategy": "decompose", "sub_params": `{"max_subproblems": 99}`}, `"max_subproblems"`},
		{core.Params{"sub_strategy": "nosuch"}, `"sub_strategy"`},
		{core.Params{"sub_strategy": "self-consistency", "sub_params": `{"k": 0}`}, `"sub_params"`},
		{core.Params{"sub_strategy": "cot", "sub_params": `{"beam_width": 2}`}, `"sub_params"`},
		{core.Params{"verifier": "nosuch"}, `"verifier"`},
		{core.Params{"sub_strategy": "decompose", "sub_params": `{"sub_strategy": "nosuch"}`}, `"sub_params"`},
		{core.Params{"sub_strategy": "decompose", "sub_params": `{"verifier": "nosuch"}`}, `"verifier"`},
	} {
		m := &meter{Policy: planner("1. a?")}
		res, err := newEngine(m).Solve(t.Context(), core.Task{Problem: "What is a?", Strategy: "decompose", Params: tc.params})
		if !errors.Is(err, core.ErrInvalidTask) {
			t.Errorf("%v: err %v (stopped %q), want an invalid task", tc.params, err, res.Stopped)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || m.calls.Load() != 0 {
			t.Errorf("%v: %q after %d calls; want %s and no call", tc.params, err, m.calls.Load(), tc.want)
		}
	}
}

func TestDecomposeStopsPromptlyWhenCancelled(t *testing.T) {
	t.Parallel()
	res := solveUntilCancelled(t, planner("1. a?\n2. b?\n3. c?\n4. d?"), core.Task{Problem: "What is a + b + c + d?",
		Strategy: "decompose", Params: core.Params{"sub_strategy": "self-consistency", "sub_params": `{"k": 64}`}})
	// No sub-question was started after the one that was cut short.
	for _, n := range res.Trace.Structure.Nodes() {
		if n.Kind == core.KindSubProblem && n.Meta["sub_question"] == 4 {
			t.Fatal("the last sub-question was started after the cancellation")
		}
	}
}
