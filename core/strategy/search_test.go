package strategy_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/core/strategy"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/tasks"
)

// meter wraps a policy: it counts samples, measures how many requests were
// in flight at once, and may add a delay.
type meter struct {
	core.Policy
	delay                 time.Duration
	calls, inflight, peak atomic.Int64
}

func (m *meter) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	now := m.inflight.Add(1)
	defer m.inflight.Add(-1)
	for {
		p := m.peak.Load()
		if now <= p || m.peak.CompareAndSwap(p, now) {
			break
		}
	}
	if m.delay > 0 {
		select {
		case <-time.After(m.delay):
		case <-ctx.Done():
			return core.Completion{}, ctx.Err()
		}
	}
	c, err := m.Policy.Complete(ctx, req)
	m.calls.Add(int64(len(c.Choices)))
	return c, err
}

// simPolicy is an llm client of a simulator started for the test.
func simPolicy(t testing.TB, opts sim.Options) core.Policy {
	t.Helper()
	c, err := llm.New(config.LLM{BaseURL: simtest.Start(t, opts), Model: "sim", Concurrency: 64, Timeout: time.Minute, N: "auto"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stepper writes "step N" until the third step, which boxes 42; value,
// PRM and judge prompts get reply.
func stepper(reply string) core.Policy {
	return core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		id, _ := tasks.Identify(req.Messages)
		var c core.Completion
		for i := 0; i < max(req.N, 1); i++ {
			text := fmt.Sprintf("step %d.%d", len(id.Steps)+1, i)
			switch {
			case id.Kind == tasks.KindValue || id.Kind == tasks.KindPRM || id.Kind == tasks.KindJudge:
				text = reply
			case len(id.Steps) >= 2:
				text = fmt.Sprintf("so \\boxed{%d}", 42+i)
			}
			c.Choices = append(c.Choices, core.Choice{Text: text})
		}
		return c, nil
	})
}

// rejection is parameters of a strategy that make a task invalid, and
// what the error must say.
type rejection struct {
	strategy string
	params   core.Params
	want     []string
}

// checkRejections solves each case on Game of 24 with a policy that counts
// its calls: each must be an invalid task, whose error says every want,
// before any LLM call.
func checkRejections(t *testing.T, cases []rejection) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.strategy+" "+fmt.Sprint(tt.params), func(t *testing.T) {
			t.Parallel()
			pol := &meter{Policy: stepper("Score: 5")}
			_, err := newEngine(pol).Solve(t.Context(), core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: tt.strategy, Params: tt.params})
			if !errors.Is(err, core.ErrInvalidTask) {
				t.Fatalf("err = %v, want an invalid task", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %s", err, w)
				}
			}
			if pol.calls.Load() != 0 {
				t.Fatalf("%d LLM calls before the rejection", pol.calls.Load())
			}
		})
	}
}

func TestInvalidParametersAreRejectedBeforeAnyLLMCall(t *testing.T) {
	t.Parallel()
	tests := []rejection{
		{"beam", core.Params{"beam_width": -1}, []string{`"beam_width"`, "at least 1"}},
		{"beam", core.Params{"expansions": 0}, []string{`"expansions"`}},
		{"beam", core.Params{"aggregate": "max"}, []string{`"aggregate"`, "want one of"}},
		{"beam", core.Params{"evaluator": "{nope"}, []string{`"evaluator"`}},
		{"beam", core.Params{"expansions": 3, "temperature": 0}, []string{`"temperature"`}},
		{"mcts", core.Params{"c1": -0.5}, []string{`"c1"`, "at least 0"}},
		{"mcts", core.Params{"c2": 0}, []string{`"c2"`}},
		{"mcts", core.Params{"final": "best"}, []string{`"final"`, "x1, max-visits, max-q"}},
		{"mcts", core.Params{"stop_on": "never"}, []string{`"stop_on"`}},
		{"mcts", core.Params{"value_min": 1, "value_max": -1}, []string{`"value_max"`}},
		{"mcts", core.Params{"gamma": 1.5}, []string{`"gamma"`}},
		{"mcts", core.Params{"parallel": 0}, []string{`"parallel"`}},
		{"mcts", core.Params{"step_strategy": "cot"}, []string{`"step_strategy"`, "whole solutions"}},
		{"mcts", core.Params{"step_params": `{"k": 2}`}, []string{`"step_params"`, "step_strategy"}},
		{"mcts", core.Params{"step_strategy": "beam", "step_params": "[1]"}, []string{`"step_params"`, "JSON object"}},
		{"tot-bfs", core.Params{"breadth": 0}, []string{`"breadth"`}},
		{"tot-dfs", core.Params{"threshold": 2}, []string{`"threshold"`}},
		{"refine", core.Params{"rounds": 0}, []string{`"rounds"`}},
		{"got", core.Params{"graph": "operations:\n  - {id: a, op: generate}\n  - {id: b, op: score, from: [c]}\n  - {id: c, op: refine, from: [b]}"},
			[]string{`"graph"`, "cycle", "b, c"}},
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate"}, {"id": "b", "op": "summon", "from": ["a"]}]`}, []string{`"graph"`, `unknown operation "summon"`}},
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate"}, {"id": "b", "op": "score", "from": ["x"]}]`}, []string{`takes from "x"`}},
		{"got", core.Params{"graph": `[{"id": "a", "op": "score"}]`}, []string{"needs inputs"}},
		// Field errors in the graph's words, not Go's ("Go struct field
		// GraphOp.operations.k of type int").
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate", "k": 0.5}]`}, []string{`"graph"`, "operations.k: want an integer, got 0.5"}},
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate", "k": "many"}]`}, []string{"operations.k: want an integer, got a string"}},
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate"}, {"id": "b", "op": "score", "from": "a"}]`}, []string{"operations.from: want a list, got a string"}},
		{"got", core.Params{"graph": "operations: [{id: a, op: generate, n: 2}]"}, []string{`"graph"`, `unknown field "false" (YAML reads the keys n, no`}},
		{"got", core.Params{"graph": "{{{"}, []string{`"graph"`, "not JSON or YAML"}},
	}
	checkRejections(t, tests)
}

// tree checks invariants of a finished search tree and returns its nodes.
func expanded(s *core.Structure) (nodes []core.Node, expandedCount int) {
	nodes = s.Nodes()
	for _, n := range nodes {
		if len(n.Children) > 0 {
			expandedCount++
		}
	}
	return nodes, expandedCount
}

func TestMCTSSolvesGame24SequentiallyAndDeterministically(t *testing.T) {
	t.Parallel()
	pol := simPolicy(t, sim.Options{Seed: 3})
	task := core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "mcts", Params: core.Params{"parallel": 1}, Seed: 7,
		Limits: core.Limits{LLMCalls: 200}}
	res, err := newEngine(pol).Solve(t.Context(), task)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopDone || tasks.Check24(task.Problem, res.Answer) != nil {
		t.Fatalf("stopped %s with %q (%s); want a checked solution", res.Stopped, res.Answer, res.Error)
	}
	nodes, _ := expanded(res.Trace.Structure)
	root := nodes[0]
	// x1: every expansion backs up to the root once and adds at most 2
	// children (repeated steps are pruned), which start at N = 1. A node
	// opened again when the tree ran out (widen) takes 2 more.
	selects, widened := 0, map[core.NodeID]int{}
	for _, e := range res.Trace.Events {
		if e.Op == core.OpSelect && e.Get("terminal") == nil && len(e.Scope) == 0 {
			selects++
		}
		if e.Get("widen") != nil {
			widened[e.Nodes[0]]++
		}
	}
	if root.Visits != selects {
		t.Errorf("root visits %d, want one per expansion (%d)", root.Visits, selects)
	}
	for _, n := range nodes[1:] {
		if n.Pruned {
			continue // a repeated step
		}
		if n.Visits < 1 {
			t.Errorf("node %d has %d visits; children start at 1", n.ID, n.Visits)
		}
		kept := 0
		for _, c := range n.Children {
			if !res.Trace.Structure.MustNode(c).Pruned {
				kept++
			}
		}
		if kept > 2*(1+widened[n.ID]) {
			t.Errorf("node %d has %d children, want at most 2 per expansion", n.ID, kept)
		}
		if len(n.Children) == 0 && n.Visits != 1 {
			t.Errorf("leaf %d has %d visits, want 1", n.ID, n.Visits)
		}
	}
	last := res.BestPath[len(res.BestPath)-1]
	if last.Scores[core.ScoreVerifier] != 1 || last.Value != 1 || res.Score == nil || *res.Score != 1 {
		t.Errorf("answer node %+v: want verifier 1 and Q 1", last)
	}
	// The trace alone redraws the tree with its values, visits and scores.
	replayed, err := core.Replay(res.Trace.Structure.Kind(), res.Trace.Events)
	if err != nil {
		t.Fatal(err)
	}
	scored := 0
	for _, n := range nodes {
		r := replayed.MustNode(n.ID)
		if r.Visits != n.Visits || r.Value != n.Value {
			t.Fatalf("replayed node %d: N %d Q %v, want N %d Q %v", n.ID, r.Visits, r.Value, n.Visits, n.Value)
		}
		if !maps.Equal(r.Scores, n.Scores) || r.Meta["eval_detail"] != n.Meta["eval_detail"] {
			t.Fatalf("replayed node %d: scores %v (%v), want %v (%v)", n.ID, r.Scores, r.Meta["eval_detail"], n.Scores, n.Meta["eval_detail"])
		}
		scored += len(n.Scores)
	}
	if scored == 0 {
		t.Fatal("no node was scored")
	}
	// Same seed, same search.
	again, err := newEngine(pol).Solve(t.Context(), task)
	if err != nil {
		t.Fatal(err)
	}
	if again.Answer != res.Answer || again.Usage.LLMCalls != res.Usage.LLMCalls || again.Usage.Nodes != res.Usage.Nodes {
		t.Fatalf("rerun: %q after %d calls and %d nodes, first run %q after %d and %d", again.Answer, again.Usage.LLMCalls,
			again.Usage.Nodes, res.Answer, res.Usage.LLMCalls, res.Usage.Nodes)
	}
}

func TestMCTSParallelSimulationsKeepSlotsBusy(t *testing.T) {
	t.Parallel()
	// Steps never end: the search runs its 40 iterations.
	pol := &meter{Policy: core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		var c core.Completion
		for i := 0; i < req.N; i++ {
			text := fmt.Sprintf("keep going %d", *req.Seed%1000+int64(i))
			if req.Purpose == "value" {
				text = fmt.Sprintf("Score: %d", 1+(*req.Seed+int64(i))%10)
			}
			c.Choices = append(c.Choices, core.Choice{Text: text})
		}
		return c, nil
	}), delay: 10 * time.Millisecond}
	eng := core.NewEngine(pol, standardRegistry(), &core.EngineOptions{Packs: tasks.Get, Concurrency: 8})
	// widen=false keeps x1's shape: every node is expanded once.
	res, err := eng.Solve(t.Context(), core.Task{Problem: "q", Strategy: "mcts", Params: core.Params{"iterations": 40, "parallel": 8, "widen": false}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopDone {
		t.Fatalf("stopped %s: %s", res.Stopped, res.Error)
	}
	if p := pol.peak.Load(); p < 6 {
		t.Errorf("at most %d requests in flight; want parallel simulations to fill most of the 8 slots", p)
	}
	nodes, exp := expanded(res.Trace.Structure)
	if exp != 40 {
		t.Errorf("%d nodes expanded, want 40", exp)
	}
	// Virtual loss spreads the simulations, but no leaf is expanded twice
	// and the visit counts add up.
	sum := 0
	for _, n := range nodes {
		if c := len(n.Children); c != 0 && c != 2 {
			t.Errorf("node %d has %d children: expanded twice?", n.ID, c)
		}
		if n.ID != 0 && len(n.Parents) > 0 && n.Parents[0] == 0 {
			sum += n.Visits
		}
	}
	if root := nodes[0]; root.Visits != 40 || sum != 40+2-1 {
		t.Errorf("root N %d (want 40), children of the root sum to N %d (want 41: each backup through them, plus their own start at 1, minus the root's first expansion)", root.Visits, sum)
	}
}

func bestNode(s *core.Structure) (core.Node, bool) {
	for _, n := range s.Nodes() {
		if n.Answer != "" {
			return n, true
		}
	}
	return core.Node{}, false
}

func standardRegistry() *core.Registry {
	reg := core.NewRegistry()
	strategy.Register(reg)
	evaluator.Register(reg)
	return reg
}

func TestSearchesStopOnTheBudgetWithTheBestSoFar(t *testing.T) {
	t.Parallel()
	pol := simPolicy(t, sim.Options{Seed: 5})
	for _, s := range []string{"mcts", "beam", "tot-bfs", "tot-dfs", "got", "refine"} {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			m := &meter{Policy: pol}
			res, err := newEngine(m).Solve(t.Context(), core.Task{Problem: "1 1 1 1", Pack: "game24", Strategy: s, Limits: core.Limits{LLMCalls: 9}})
			if err != nil {
				t.Fatal(err)
			}
			// 1 1 1 1 cannot make 24: the tree searches run out of budget
			// (tot-dfs may prune everything first; got and refine end early).
			switch {
			case s == "mcts" || s == "beam" || s == "tot-bfs":
				if res.Stopped != core.StopBudget {
					t.Errorf("stopped %s (%s), want budget", res.Stopped, res.Error)
				}
			case res.Stopped != core.StopBudget && res.Stopped != core.StopDone:
				t.Errorf("stopped %s (%s), want budget or done", res.Stopped, res.Error)
			}
			if _, ok := bestNode(res.Trace.Structure); ok && res.Answer == "" {
				t.Error("answers were found but none was returned")
			}
			if res.Usage.LLMCalls > 9 || m.calls.Load() > 9 {
				t.Errorf("%d calls charged, %d made; the budget is 9", res.Usage.LLMCalls, m.calls.Load())
			}
		})
	}
}

func TestSearchesGoOnWhenTheEvaluatorReturnsGarbage(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"mcts", "beam", "tot-bfs", "tot-dfs"} {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			params := core.Params{}
			if s == "tot-dfs" {
				params["threshold"] = -1.0 // unscored candidates rank last but are still explored
			}
			if s == "mcts" {
				// Sequential, so that what 60 calls reach does not depend on
				// timing (under -race, parallel simulations sometimes spent
				// them before reaching an answer).
				params["parallel"] = 1
			}
			res, err := newEngine(stepper("I would rather not say.")).Solve(t.Context(),
				core.Task{Problem: "q", Pack: "generic", Strategy: s, Params: params, Limits: core.Limits{LLMCalls: 60}})
			if err != nil {
				t.Fatal(err)
			}
			checkAnsweredDespiteUnscored(t, res)
		})
	}
}

// checkAnsweredDespiteUnscored checks that a search whose evaluator failed
// still returned an answer, and that it marked unscored (eval_error, no
// score) at least one node.
func checkAnsweredDespiteUnscored(t *testing.T, res core.Result) {
	t.Helper()
	if res.Answer == "" || (res.Stopped != core.StopDone && res.Stopped != core.StopBudget) {
		t.Fatalf("stopped %s with %q (%s); want an answer despite the evaluator", res.Stopped, res.Answer, res.Error)
	}
	unscored := 0
	for _, n := range res.Trace.Structure.Nodes() {
		if _, ok := n.Meta["eval_error"]; ok {
			unscored++
			if sc, scored := n.Score(); scored {
				t.Errorf("node %d has a score (%v) and an eval_error", n.ID, sc)
			}
		}
	}
	if unscored == 0 {
		t.Fatal("no node was marked unscored")
	}
}

func TestBeamKeepsTheBestAndRunsConcurrently(t *testing.T) {
	t.Parallel()
	m := &meter{Policy: simPolicy(t, sim.Options{Seed: 2}), delay: 5 * time.Millisecond}
	problem := "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"
	res, err := newEngine(m).Solve(t.Context(), core.Task{Problem: problem, Pack: "gsm8k", Strategy: "beam",
		Params: core.Params{"beam_width": 3, "expansions": 3, "stop_on_correct": false}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopDone || res.Answer == "" {
		t.Fatalf("stopped %s with %q: %s", res.Stopped, res.Answer, res.Error)
	}
	// At every depth the beam keeps at most 3 unfinished paths, and only
	// kept paths are expanded.
	kept := map[int]int{}
	for _, n := range res.Trace.Structure.Nodes() {
		if n.ID != 0 && !n.Pruned && !n.Terminal {
			kept[n.Depth]++
		}
		if n.Pruned && len(n.Children) > 0 {
			t.Errorf("pruned node %d was expanded", n.ID)
		}
		if n.ID != 0 && !n.Terminal && len(n.Children) > 0 && len(n.Children) != 3 {
			t.Errorf("node %d has %d children, want 3", n.ID, len(n.Children))
		}
		if n.ID != 0 && n.Meta["eval_error"] == nil && !n.Pruned {
			if _, ok := n.Scores[core.ScorePRM]; !ok && !n.Terminal {
				t.Errorf("step %d has no PRM score", n.ID)
			}
		}
	}
	for d, k := range kept {
		if k > 3 {
			t.Errorf("%d paths kept at depth %d, beam width 3", k, d)
		}
	}
	if m.peak.Load() < 3 {
		t.Errorf("at most %d requests in flight; expansions and scorings should overlap", m.peak.Load())
	}
}

func TestToTBFSGame24UsesProposeAndValuePrompts(t *testing.T) {
	t.Parallel()
	res, err := newEngine(simPolicy(t, sim.Options{Seed: 4})).Solve(t.Context(), core.Task{Problem: "4 9 10 13", Pack: "game24",
		Strategy: "tot-bfs", Params: core.Params{"breadth": 3, "max_depth": 4, "passes": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopDone || tasks.Check24("4 9 10 13", res.Answer) != nil {
		t.Fatalf("stopped %s with %q (%s), want a checked solution", res.Stopped, res.Answer, res.Error)
	}
	purposes := map[string]int{}
	for _, e := range res.Trace.Events {
		if e.Op == core.OpLLMCall {
			purposes[e.Get("purpose").(string)]++
		}
	}
	if purposes["propose"] == 0 || purposes["value"] == 0 {
		t.Fatalf("LLM calls by purpose %v, want propose and value calls", purposes)
	}
	expandedAt := map[int]int{}
	for _, n := range res.Trace.Structure.Nodes() {
		if len(n.Children) > 0 {
			expandedAt[n.Depth]++
		}
	}
	for d, k := range expandedAt {
		if k > 3 {
			t.Errorf("%d states expanded at depth %d, breadth 3", k, d)
		}
	}
}

func TestToTDFSBacktracksFromDeadEnds(t *testing.T) {
	t.Parallel()
	// Steps are valued 1..10 by their sample index: the best first, and
	// answers are wrong until the verifier... there is none: the first
	// answer at or above the threshold is accepted.
	pol := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		id, _ := tasks.Identify(req.Messages)
		var c core.Completion
		for i := 0; i < req.N; i++ {
			text := fmt.Sprintf("step %d.%d", len(id.Steps)+1, i)
			switch {
			case id.Kind == tasks.KindValue:
				last := id.Steps[len(id.Steps)-1]
				score := 9
				if strings.HasPrefix(last, "step 1.0") {
					score = 2 // the first branch is a dead end below the threshold
				}
				text = fmt.Sprintf("Score: %d", score)
			case len(id.Steps) >= 1:
				text = "so \\boxed{7}"
			}
			c.Choices = append(c.Choices, core.Choice{Text: text})
		}
		return c, nil
	})
	res, err := newEngine(pol).Solve(t.Context(), core.Task{Problem: "q", Strategy: "tot-dfs", Params: core.Params{"samples": 2, "threshold": 0.0}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "7" || res.Stopped != core.StopDone {
		t.Fatalf("stopped %s with %q", res.Stopped, res.Answer)
	}
	pruned := 0
	for _, n := range res.Trace.Structure.Nodes() {
		if n.Pruned && strings.HasPrefix(n.Content, "step 1.0") {
			pruned++
		}
	}
	if pruned != 1 {
		t.Fatalf("the dead end below the threshold was not pruned")
	}
}

func TestGoTRunsAGraphGivenAsYAML(t *testing.T) {
	t.Parallel()
	graph := `
operations:
  - {id: a, op: generate, k: 3}
  - {id: b, op: generate, k: 2}
  - {id: rate, op: score, from: [a, b]}
  - {id: best, op: keep_best, keep: 3, from: [rate]}
  - {id: merge, op: aggregate, from: [best]}
  - {id: fix, op: improve, from: [merge], rounds: 2}
  - {id: check, op: keep_valid, from: [fix, best]}
`
	m := &meter{Policy: simPolicy(t, sim.Options{Seed: 6})}
	res, err := newEngine(m).Solve(t.Context(), core.Task{Problem: "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
		Pack: "gsm8k", Truth: "72", Strategy: "got", Params: core.Params{"graph": graph}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopDone || res.Answer == "" {
		t.Fatalf("stopped %s with %q: %s", res.Stopped, res.Answer, res.Error)
	}
	if res.Trace.Structure.Kind() != core.Graph {
		t.Fatalf("structure is a %s, want a graph", res.Trace.Structure.Kind())
	}
	// Operations ran after their inputs; the merge has several parents.
	done := map[string]int{}
	for i, e := range res.Trace.Events {
		if op, ok := e.Get("graph_op").(string); ok && e.Op == core.OpInfo {
			done[op] = i
		}
	}
	order := [][2]string{{"a", "rate"}, {"b", "rate"}, {"rate", "best"}, {"best", "merge"}, {"merge", "fix"}, {"fix", "check"}, {"best", "check"}}
	for _, o := range order {
		if done[o[0]] >= done[o[1]] {
			t.Errorf("%s finished after %s", o[0], o[1])
		}
	}
	merged := false
	for _, n := range res.Trace.Structure.Nodes() {
		if n.Kind == core.KindAggregate && len(n.Parents) == 3 {
			merged = true
		}
	}
	if !merged {
		t.Error("no aggregate node with the 3 best thoughts as parents")
	}
	if res.Usage.LLMCalls != m.calls.Load() {
		t.Errorf("usage %d calls, the policy answered %d", res.Usage.LLMCalls, m.calls.Load())
	}
}

func TestRefineStopsWhenTheCriticIsSatisfied(t *testing.T) {
	t.Parallel()
	critiques := 0
	pol := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		id, _ := tasks.Identify(req.Messages)
		text := "1 + 1 = 3\n\\boxed{3}"
		switch id.Kind {
		case tasks.KindCritique:
			critiques++
			text = tasks.NoIssues
			if strings.Contains(strings.Join(id.Steps, "\n"), "= 3") {
				text = "- Step 1: 1 + 1 is 2, not 3."
			}
		case tasks.KindRevise:
			text = "1 + 1 = 2\n\\boxed{2}"
		}
		return core.Completion{Choices: []core.Choice{{Text: text}}}, nil
	})
	res, err := newEngine(pol).Solve(t.Context(), core.Task{Problem: "What is 1 + 1?", Strategy: "refine", Params: core.Params{"rounds": 5}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "2" || critiques != 2 || res.Usage.LLMCalls != 4 {
		t.Fatalf("answer %q after %d critiques and %d calls; want 2 after 2 critiques (solve, critique, revise, critique)", res.Answer, critiques, res.Usage.LLMCalls)
	}
	if res.Trace.Structure.Kind() != core.Chain || len(res.BestPath) != 3 {
		t.Fatalf("a %s with best path of %d nodes, want a chain problem → solution → revision", res.Trace.Structure.Kind(), len(res.BestPath))
	}
	if c, _ := res.BestPath[1].Meta["critique"].(string); !strings.Contains(c, "not 3") {
		t.Errorf("first solution's critique %q", c)
	}
	if c, _ := res.BestPath[2].Meta["critique"].(string); c != tasks.NoIssues {
		t.Errorf("revision's critique %q, want %s", c, tasks.NoIssues)
	}
}

func TestNestedStepSearchesAreCarvedAndTraced(t *testing.T) {
	t.Parallel()
	m := &meter{Policy: simPolicy(t, sim.Options{Seed: 9})}
	res, err := newEngine(m).Solve(t.Context(), core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "mcts",
		Params: core.Params{"parallel": 2, "iterations": 6, "stop_on": "none", "step_strategy": "beam",
			"step_params": `{"beam_width": 1, "expansions": 2, "max_depth": 1, "evaluator": "value"}`, "step_budget": 4}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopDone {
		t.Fatalf("stopped %s: %s", res.Stopped, res.Error)
	}
	subs := 0
	for _, n := range res.Trace.Structure.Nodes() {
		if n.Kind != core.KindSubProblem || n.Pruned {
			continue
		}
		subs++
		if n.Sub == nil || n.Sub.Len() < 2 {
			t.Errorf("sub-problem node %d has no nested structure", n.ID)
		}
		if n.Usage.LLMCalls < 1 || n.Usage.LLMCalls > 4 {
			t.Errorf("nested search of node %d used %d calls; its budget is 4", n.ID, n.Usage.LLMCalls)
		}
		if strings.HasPrefix(n.Content, "(next step") {
			t.Errorf("node %d kept its placeholder: %q", n.ID, n.Content)
		}
	}
	if subs == 0 {
		t.Fatal("no sub-problem nodes")
	}
	scoped := 0
	for _, e := range res.Trace.Events {
		if len(e.Scope) > 0 {
			scoped++
		}
	}
	if scoped == 0 {
		t.Fatal("no events of the nested searches in the trace")
	}
	// Every call of every nested search counts in the run's usage.
	if res.Usage.LLMCalls != m.calls.Load() {
		t.Fatalf("usage %d calls, the policy answered %d", res.Usage.LLMCalls, m.calls.Load())
	}
}

func TestMCTSRolloutsMixIntoQ(t *testing.T) {
	t.Parallel()
	res, err := newEngine(simPolicy(t, sim.Options{Seed: 11})).Solve(t.Context(), core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "mcts",
		Params: core.Params{"parallel": 1, "rollouts": 2, "alpha": 0.5, "iterations": 3, "stop_on": "none"}})
	if err != nil {
		t.Fatal(err)
	}
	mixed := 0
	for _, n := range res.Trace.Structure.Nodes() {
		rs, ok := n.Meta["rollout_rewards"].([]float64)
		if !ok || n.Terminal {
			continue
		}
		mean := 0.0
		for _, r := range rs {
			mean += r
		}
		mean /= float64(len(rs))
		if len(n.Children) == 0 { // not yet backed up: Q is the mix
			want := 0.5*n.Scores[core.ScoreValue] + 0.5*mean
			if d := n.Value - want; d > 1e-9 || d < -1e-9 {
				t.Errorf("node %d: Q %v, want (1 − α)·%v + α·%v = %v", n.ID, n.Value, n.Scores[core.ScoreValue], mean, want)
			}
		}
		mixed++
	}
	if mixed == 0 {
		t.Fatal("no node carries rollout rewards")
	}
	rollouts := 0
	for _, e := range res.Trace.Events {
		if e.Op == core.OpLLMCall && e.Get("purpose") == "rollout" {
			rollouts++
		}
	}
	if rollouts == 0 {
		t.Fatal("no rollout calls in the trace")
	}
}

func TestSearchesStopPromptlyWhenCancelled(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"mcts", "beam", "tot-bfs", "got"} {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			solveUntilCancelled(t, stepper("Score: 6"), core.Task{Problem: "q", Strategy: s, Params: map[string]core.Params{
				"mcts": {"stop_on": "none"}, "beam": {"max_depth": 50}, "tot-bfs": {"max_depth": 50}, "got": nil}[s]})
		})
	}
}

// solveUntilCancelled solves task with pol answering after 20 ms under a
// 70 ms deadline, and checks that the search stops for it, promptly.
func solveUntilCancelled(t *testing.T, pol core.Policy, task core.Task) core.Result {
	t.Helper()
	m := &meter{Policy: pol, delay: 20 * time.Millisecond}
	ctx, cancel := context.WithTimeout(t.Context(), 70*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := newEngine(m).Solve(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopCancelled && res.Stopped != core.StopTimeout {
		t.Fatalf("stopped %s (%s), want cancelled or timeout", res.Stopped, res.Error)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v to stop", d)
	}
	return res
}

// On a tree with one leaf to expand at a time (every sample repeats the
// same step), idle simulations expand that leaf again instead of leaving
// their LLM slots idle; with widen=false they wait, as in x1.
func TestMCTSIdleSimulationsExpandABusyLeafAgain(t *testing.T) {
	t.Parallel()
	for _, widen := range []bool{false, true} {
		var inflight, peak atomic.Int64
		pol := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
			id, _ := tasks.Identify(req.Messages)
			text := fmt.Sprintf("step %d", len(id.Steps)+1)
			if req.Purpose == "value" {
				text = "Score: 5"
			} else {
				now := inflight.Add(1)
				defer inflight.Add(-1)
				for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
				}
			}
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return core.Completion{}, ctx.Err()
			}
			c := core.Completion{}
			for i := 0; i < req.N; i++ {
				c.Choices = append(c.Choices, core.Choice{Text: text})
			}
			return c, nil
		})
		eng := core.NewEngine(pol, standardRegistry(), &core.EngineOptions{Packs: tasks.Get, Concurrency: 8})
		res, err := eng.Solve(t.Context(), core.Task{Problem: "q", Strategy: "mcts",
			Params: core.Params{"iterations": 30, "parallel": 8, "max_depth": 6, "widen": widen, "stop_on": "none"}})
		if err != nil || res.Stopped == core.StopError {
			t.Fatalf("widen %v: %v %s", widen, err, res.Error)
		}
		got := peak.Load()
		if !widen && got != 1 {
			t.Errorf("widen=false: %d expansions in flight at once, want 1 (a leaf is expanded once at a time)", got)
		}
		if widen && got < 2 {
			t.Errorf("widen=true: at most %d expansion in flight; idle simulations should expand the busy leaf again", got)
		}
		// Expansions in flight at once do not add the same step twice.
		nodes := res.Trace.Structure.Nodes()
		for _, n := range nodes {
			kept := 0
			for _, c := range n.Children {
				if !nodes[c].Pruned {
					kept++
				}
			}
			if kept > 1 {
				t.Errorf("widen %v: node %d keeps %d children, but every sample repeats one step", widen, n.ID, kept)
			}
		}
	}
}

// A spent budget stops MCTS from starting expansions, but the calls in
// flight were charged when they went out: they finish and count, so a
// search uses its whole budget (less what one request for the children of
// an expansion could not fit).
func TestParallelMCTSSpendsItsWholeBudget(t *testing.T) {
	t.Parallel()
	pol := &meter{Policy: stepper("Score: 5"), delay: 5 * time.Millisecond}
	res, err := newEngine(pol).Solve(t.Context(), core.Task{Problem: "What is 6 times 7?", Strategy: "mcts",
		Params: core.Params{"parallel": 8, "iterations": 1000, "stop_on": "none"}, Limits: core.Limits{LLMCalls: 40}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopBudget || res.Usage.LLMCalls < 39 || res.Usage.LLMCalls > 40 || pol.calls.Load() != res.Usage.LLMCalls {
		t.Errorf("stopped %s (%s) with %d calls counted and %d answered; want budget, 39 or 40 calls, all answered",
			res.Stopped, res.Error, res.Usage.LLMCalls, pol.calls.Load())
	}
}

// When every call fails, parallel MCTS stops on the LLM's error, not on a
// budget that only looked spent while the failing calls were in flight.
func TestParallelMCTSWithTheLLMDownStopsOnTheLLMError(t *testing.T) {
	t.Parallel()
	down := &meter{Policy: core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{}, fmt.Errorf("%w: answered 500", core.ErrLLMUnavailable)
	}), delay: 2 * time.Millisecond}
	for run := 0; run < 5; run++ {
		res, err := newEngine(down).Solve(t.Context(), core.Task{Problem: "What is 6 times 7?", Strategy: "mcts",
			Params: core.Params{"parallel": 8}, Limits: core.Limits{LLMCalls: 5}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stopped != core.StopError || !strings.Contains(res.Error, "answered 500") || res.Usage.LLMCalls != 0 {
			t.Fatalf("run %d: stopped %s (%s) with %d calls counted; want the LLM's error and no call", run, res.Stopped, res.Error, res.Usage.LLMCalls)
		}
	}
}
