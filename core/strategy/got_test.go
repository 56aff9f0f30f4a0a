package strategy_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// gotScript writes whole solutions boxing 1, 2, 3, … in sample order and
// critiques with one issue, recording which solution each critique read.
type gotScript struct {
	mu        sync.Mutex
	critiqued []string
}

func (g *gotScript) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	id, _ := tasks.Identify(req.Messages)
	var c core.Completion
	for i := range max(req.N, 1) {
		text := fmt.Sprintf("so \\boxed{%d}", i+1)
		if id.Kind == tasks.KindCritique {
			g.mu.Lock()
			g.critiqued = append(g.critiqued, strings.Join(id.Steps, " "))
			g.mu.Unlock()
			text = "- The final answer is wrong."
		}
		c.Choices = append(c.Choices, core.Choice{Text: text})
	}
	return c, nil
}

// A generate asking for more samples than the calls left used to get
// none (a request is paid for whole): the run stopped with no answer and
// unspent calls. It asks for the samples that fit, as self-consistency
// does.
func TestGoTGenerateAsksForWhatTheBudgetCanPay(t *testing.T) {
	t.Parallel()
	m := &meter{Policy: &gotScript{}}
	res, err := newEngine(m).Solve(t.Context(), core.Task{Problem: "What is 17 * 23?", Pack: "generic", Strategy: "got",
		Params: core.Params{"graph": `[{"id": "a", "op": "generate", "k": 8}]`}, Limits: core.Limits{LLMCalls: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopBudget || res.Answer == "" || m.calls.Load() != 5 || res.Usage.LLMCalls != 5 {
		t.Fatalf("stopped %s with %q after %d calls (usage %d), want an answer from the 5 samples the budget pays for: %s",
			res.Stopped, res.Answer, m.calls.Load(), res.Usage.LLMCalls, res.Error)
	}
}

// When the calls left cannot refine every input, the inputs are refined
// in their order (keep_best's: the best first), not in whichever order
// their goroutines reserved calls: the same seed and budget gave another
// run.
func TestGoTRefinesInputsInOrderUnderABudget(t *testing.T) {
	t.Parallel()
	for range 10 {
		g := &gotScript{}
		res, err := newEngine(g).Solve(t.Context(), core.Task{Problem: "What is 17 * 23?", Pack: "generic", Strategy: "got",
			Params: core.Params{"graph": `[{"id": "a", "op": "generate", "k": 4}, {"id": "r", "op": "refine", "from": ["a"]}]`},
			Limits: core.Limits{LLMCalls: 5}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stopped != core.StopBudget {
			t.Fatalf("stopped %s: %s", res.Stopped, res.Error)
		}
		if len(g.critiqued) != 1 || !strings.Contains(g.critiqued[0], `\boxed{1}`) {
			t.Fatalf("critiqued %q, want the first input alone", g.critiqued)
		}
	}
}

// Over MCP and the OpenAI API parameters are JSON: an evaluator given as
// the object the docs show ({"name": ..., "params": {...}}), not as its
// text, was refused ("want a string, got map[string]interface {}"), in a
// GoT graph's score operation too.
func TestEvaluatorsGivenAsJSONObjects(t *testing.T) {
	t.Parallel()
	value := map[string]any{"name": "value", "params": map[string]any{"samples": 2, "temperature": 0.7}}
	bogus := map[string]any{"name": "value", "params": map[string]any{"bogus": 1}}
	graph := func(ev any) any {
		return []any{map[string]any{"id": "a", "op": "generate", "k": 2},
			map[string]any{"id": "s", "op": "score", "from": []any{"a"}, "evaluator": ev}}
	}
	checkRejections(t, []rejection{
		{"tot-bfs", core.Params{"evaluator": bogus}, []string{`"evaluator"`, `"bogus"`}},
		{"beam", core.Params{"verifier": bogus}, []string{`"verifier"`, `"bogus"`}},
		{"got", core.Params{"graph": graph(bogus)}, []string{"graph operation s", `"bogus"`}},
	})
	for _, task := range []core.Task{
		{Strategy: "tot-bfs", Params: core.Params{"evaluator": value, "max_depth": 1, "passes": 1}},
		{Strategy: "best-of-n", Params: core.Params{"evaluator": value, "n": 2}},
		{Strategy: "got", Params: core.Params{"graph": graph(value)}},
	} {
		m := &meter{Policy: &gotScript{}}
		task.Problem, task.Pack = "What is 17 * 23?", "generic"
		res, err := newEngine(m).Solve(t.Context(), task)
		if err != nil {
			t.Fatalf("%s: %v", task.Strategy, err)
		}
		var samples int
		for _, e := range res.Trace.Events {
			if d, ok := e.Data.(*core.LLMCallData); ok && d.Purpose == "value" && d.N == 2 {
				samples++
			}
		}
		if samples == 0 {
			t.Errorf("%s: no value call with 2 samples: the evaluator's params were not used", task.Strategy)
		}
	}
}

// best-of-n whose scorings the budget cut off said so once per scoring
// ("budget exhausted: 8 of 8 llm calls used" eight times, one per line).
func TestBestOfNSaysOnceThatTheBudgetCutItsScoringsOff(t *testing.T) {
	t.Parallel()
	res, err := newEngine(&gotScript{}).Solve(t.Context(), core.Task{Problem: "What is 17 * 23?", Pack: "generic",
		Strategy: "best-of-n", Params: core.Params{"n": 4}, Limits: core.Limits{LLMCalls: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopBudget || res.Answer == "" || strings.Count(res.Error, "budget exhausted") != 1 {
		t.Fatalf("stopped %s with %q, error %q: want the best so far and the budget named once", res.Stopped, res.Answer, res.Error)
	}
}
