package strategy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// A search that ends by itself without an answer says why in its
// warnings: beam and mcts ended "done" with no answer and no word, as
// tree of thoughts did before it got its note. With the lowest threshold
// nothing is pruned, so tot-bfs does not suggest lowering it.
func TestSearchesWithoutAnAnswerSayWhy(t *testing.T) {
	t.Parallel()
	steps := core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
		c := core.Completion{}
		for i := 0; i < max(req.N, 1); i++ {
			text := "a step " + string(rune('a'+i))
			if req.Purpose != core.OpGenerate {
				text = "Score: 5"
			}
			c.Choices = append(c.Choices, core.Choice{Text: text})
		}
		return c, nil
	})
	for _, c := range []struct {
		strategy string
		params   core.Params
		want     string
	}{
		{"beam", core.Params{"max_depth": 1, "passes": 1}, "no answer: 1 pass ended without one (max_depth 1)"},
		{"beam", core.Params{"max_depth": 1, "passes": 2}, "no answer: 2 passes ended without one (max_depth 1)"},
		{"mcts", core.Params{"max_depth": 1, "iterations": 5}, "(max_depth 1) found none"},
		{"tot-bfs", core.Params{"max_depth": 1, "threshold": -1}, "no answer: every path reached max_depth 1 without one; a higher max_depth"},
	} {
		res, err := newEngine(steps).Solve(context.Background(), core.Task{Problem: "q", Strategy: c.strategy, Params: c.params})
		if err != nil || res.Stopped != core.StopDone || res.Answer != "" {
			t.Fatalf("%s: %v, stopped %s, answer %q", c.strategy, err, res.Stopped, res.Answer)
		}
		if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, c.want) || strings.Contains(w, "lower threshold") {
			t.Errorf("%s %v: warnings %q, want %q", c.strategy, c.params, res.Warnings, c.want)
		}
	}
}

// A strategy that ends without an answer and says nothing of why (cot,
// self-consistency) gets a warning saying so: "done" and an empty answer
// were all a client saw.
func TestSearchWithoutAnAnswerOrANoteIsWarned(t *testing.T) {
	t.Parallel()
	noAnswer := core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
		c := core.Completion{}
		for i := 0; i < max(req.N, 1); i++ {
			c.Choices = append(c.Choices, core.Choice{Text: "I am not sure."})
		}
		return c, nil
	})
	for _, s := range []string{"cot", "self-consistency"} {
		res, err := newEngine(noAnswer).Solve(context.Background(), core.Task{Problem: "What is 2+3?", Pack: "gsm8k", Strategy: s})
		if err != nil || res.Stopped != core.StopDone || res.Answer != "" {
			t.Fatalf("%s: %v, stopped %s, answer %q", s, err, res.Stopped, res.Answer)
		}
		if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, "no answer: the search ended without one: no reply held a final answer the gsm8k pack could read") {
			t.Errorf("%s: warnings %q", s, res.Warnings)
		}
	}
}
