package export

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/eval"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/standard"
	"github.com/ponder-rlm/ponder/tasks"
)

// solveOnSim runs task with the built-in strategies on the simulator and
// returns its trace, with the truth in its meta as `ponder eval` keeps it.
func solveOnSim(t *testing.T, opts sim.Options, task core.Task, truth string) *core.Trace {
	t.Helper()
	c := config.Default().LLM
	c.BaseURL = simtest.Start(t, opts)
	c.MaxRetries = 0
	c.Timeout = 10 * time.Second
	pol, err := llm.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := core.NewEngine(pol, standard.Registry(), &core.EngineOptions{Concurrency: 4, Packs: eval.Packs(standard.Packs)})
	res, err := eng.Solve(t.Context(), task)
	if err != nil {
		t.Fatal(err)
	}
	if truth != "" {
		res.Trace.Meta = map[string]any{"truth": truth}
	}
	// Exported traces are files: what export reads is what JSON keeps.
	b, err := json.Marshal(res.Trace)
	if err != nil {
		t.Fatal(err)
	}
	var tr core.Trace
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	return &tr
}

// lines exports tr in format and decodes the lines.
func lines[T any](t *testing.T, tr *core.Trace, format string) []T {
	t.Helper()
	out, _ := write[T](t, []Source{{Trace: tr}}, format)
	return out
}

// GoT's first thoughts and refine's first sample are whole solutions
// (core.Generate with Whole): a pair of them continues the solve prompt,
// and PRM splits each into its steps with outcome labels. They were
// exported as single steps after the step prompt ("Write only the next
// step…"), whole solutions as chosen and rejected. Traces written before
// core.MetaWhole are exported the same way.
func TestWholeSolutionsOfSearches(t *testing.T) {
	t.Parallel()
	// Outside the simulator's data the truth is the sum of the numbers.
	const problem, truth = "Tom has 3 apples and buys 4 more. How many apples does he have now?", "7"
	solve, err := eval.Packs(tasks.Get)("gsm8k")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		strategy string
		pairs    bool // whether the root has whole solutions to pair
	}{{"got", true}, {"refine", false}} {
		t.Run(tc.strategy, func(t *testing.T) {
			t.Parallel()
			tr := solveOnSim(t, sim.Options{Seed: 3, Accuracy: 0.5, DataDir: sim.NoData},
				core.Task{Problem: problem, Pack: "gsm8k", Strategy: tc.strategy, Seed: 1, Limits: core.Limits{LLMCalls: 30}}, truth)
			whole := map[int]string{}
			for _, n := range tr.Structure.Nodes() {
				if len(n.Parents) == 1 && n.Parents[0] == 0 {
					if w, _ := n.Meta[core.MetaWhole].(bool); w {
						whole[int(n.ID)] = n.Content
					}
				}
			}
			if len(whole) == 0 {
				t.Fatalf("%s made no whole solution below the root: the test needs another search", tc.strategy)
			}
			check := func(t *testing.T, tr *core.Trace) {
				prm := 0
				for _, l := range lines[PRMLine](t, tr, PRM) {
					content, ok := whole[l.Node]
					if !ok || l.Scope != nil {
						continue
					}
					prm++
					if want := tasks.SolutionSteps(content); l.LabelSource != "outcome" || !slices.Equal(l.Steps, want) || len(l.Labels) != len(want) {
						t.Errorf("prm line of whole solution %d: %s steps %q labels %v; want outcome and steps %q", l.Node, l.LabelSource, l.Steps, l.Labels, want)
					}
				}
				if prm == 0 {
					t.Errorf("no prm line for the whole solutions %v", whole)
				}
				dpo := 0
				for _, l := range lines[DPOLine](t, tr, DPO) {
					if _, ok := whole[l.ChosenNode]; !ok || l.ChosenScope != nil {
						continue
					}
					dpo++
					if want := solve.SolvePrompt(problem); !cmp.Equal(l.Prompt, want) || len(l.Steps) != 0 {
						t.Errorf("dpo pair %d/%d of whole solutions: prompt %q after steps %q; want the solve prompt %q",
							l.ChosenNode, l.RejectedNode, l.Prompt[len(l.Prompt)-1].Content, l.Steps, want[len(want)-1].Content)
					}
				}
				if tc.pairs && dpo == 0 {
					t.Errorf("no dpo pair of whole solutions (need right and wrong ones among %v: change the seed)", whole)
				}
			}
			check(t, tr)
			t.Run("unmarked trace", func(t *testing.T) { check(t, withoutWholeMarks(t, tr)) })
		})
	}
}

// withoutWholeMarks returns tr as written before core.MetaWhole existed.
func withoutWholeMarks(t *testing.T, tr *core.Trace) *core.Trace {
	t.Helper()
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, n := range doc["structure"].(map[string]any)["nodes"].([]any) {
		if meta, ok := n.(map[string]any)["meta"].(map[string]any); ok {
			delete(meta, core.MetaWhole)
		}
	}
	if b, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	var old core.Trace
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	return &old
}

// MCTS with step_strategy=beam solves each step with a nested beam search
// that continues the path to the step's parent: its nodes are exported as
// steps after that path (with scope naming the nested structure), its
// answers are labeled and count for the steps above them, and its first
// steps pair with the outer siblings in dpo. Export read only the top
// structure, and left the nested searches' answers out.
func TestNestedSearchesAreExported(t *testing.T) {
	t.Parallel()
	tr := solveOnSim(t, sim.Options{Seed: 1}, core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "mcts",
		Params: core.Params{"step_strategy": "beam", "parallel": 1}, Seed: 1, Limits: core.Limits{LLMCalls: 40}}, "")

	// What the trace says, read here without export's graft: the steps of
	// every nested node (the path to its owner's parent, then its own path
	// in the nested structure) and the answers to label.
	top := tr.Structure.Nodes()
	topPath := func(id core.NodeID) []string {
		var rev []string
		for n := top[id]; n.Kind != core.KindProblem; n = top[n.Parents[0]] {
			rev = append(rev, strings.TrimSpace(n.Content))
		}
		slices.Reverse(rev)
		return rev
	}
	type key struct{ owner, node int }
	want := map[key][]string{}
	answers := 0
	for _, n := range top {
		if n.Answer != "" && n.Kind != core.KindProblem {
			answers++
		}
		best, _ := n.Meta["sub_best"].(float64)
		if n.Sub == nil || best == 0 {
			continue
		}
		sub := n.Sub.Nodes()
		for _, m := range sub[1:] {
			var rev []string
			for c := m; c.Kind != core.KindProblem; c = sub[c.Parents[0]] {
				rev = append(rev, strings.TrimSpace(c.Content))
			}
			slices.Reverse(rev)
			want[key{int(n.ID), int(m.ID)}] = append(topPath(n.Parents[0]), rev...)
			if m.Answer != "" && int(m.ID) != int(best) { // the best first step is n itself
				answers++
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("the search made no nested beam search: the test needs another one")
	}

	check := func(format string, node int, scope []int, steps []string) bool {
		t.Helper()
		if len(scope) == 0 {
			return false
		}
		w, ok := want[key{scope[0], node}]
		if len(scope) != 1 || !ok || !slices.Equal(steps, w) {
			t.Errorf("%s line of node %d in scope %v: steps %q, want %q", format, node, scope, steps, w)
		}
		return true
	}
	nested := map[string]int{}
	for _, l := range lines[SFTLine](t, tr, SFT) {
		if check(SFT, l.Node, l.Scope, strings.Split(strings.TrimSuffix(l.Completion, "\n\\boxed{"+l.Answer+"}"), "\n")) {
			nested[SFT]++
		}
	}
	for _, l := range lines[PRMLine](t, tr, PRM) {
		if check(PRM, l.Node, l.Scope, l.Steps) {
			nested[PRM]++
			if last := l.Labels[len(l.Labels)-1]; last == nil || (*last == 1) != l.Outcome {
				t.Errorf("prm line of nested node %d: last label %v, outcome %v", l.Node, last, l.Outcome)
			}
		}
	}
	for _, l := range lines[ValueLine](t, tr, Value) {
		if check(Value, l.Node, l.Scope, l.Steps) {
			nested[Value]++
		}
	}
	for _, l := range lines[DPOLine](t, tr, DPO) {
		for _, side := range []struct {
			node  int
			scope []int
			text  string
		}{{l.ChosenNode, l.ChosenScope, l.Chosen}, {l.RejectedNode, l.RejectedScope, l.Rejected}} {
			if check(DPO, side.node, side.scope, append(slices.Clone(l.Steps), side.text)) {
				nested[DPO]++
			}
		}
	}
	for _, f := range Formats() {
		if nested[f] == 0 {
			t.Errorf("%s: no line of a nested search's node", f)
		}
	}
	var buf bytes.Buffer
	st, err := Write(context.Background(), &buf, []Source{{Trace: tr}}, Options{Format: Value})
	if err != nil || st.Labeled != answers || st.Unlabeled != 0 {
		t.Errorf("%d answers labeled, %d unlabeled, %v; want the %d answers of the search and its nested searches", st.Labeled, st.Unlabeled, err, answers)
	}
}
