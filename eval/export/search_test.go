package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"slices"
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
	tr := res.Trace
	if truth != "" {
		tr.Meta = map[string]any{"truth": truth}
	}
	return tr
}

// lines exports tr in format and decodes the lines.
func lines[T any](t *testing.T, tr *core.Trace, format string) []T {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Write(context.Background(), &buf, []Source{{Trace: tr}}, Options{Format: format}); err != nil {
		t.Fatal(err)
	}
	var out []T
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, v)
	}
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
					if !ok {
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
					if _, ok := whole[l.ChosenNode]; !ok {
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
