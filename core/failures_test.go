package core_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/traces/tracetest"
)

// picky scores a node by its step: "error" fails, "nan" is no score,
// "n/a" is not applicable (not a failure), anything else scores 0.5.
type picky struct{}

func (picky) Evaluate(_ context.Context, req core.EvalRequest) (core.Evaluation, error) {
	last, _ := req.LastNode()
	switch last.Content {
	case "error":
		return core.Evaluation{}, errors.New("reward model said no")
	case "nan":
		return core.Evaluation{Score: math.NaN()}, nil
	case "n/a":
		return core.Evaluation{}, core.ErrNotApplicable
	}
	return core.Evaluation{Score: 0.5}, nil
}

// scoreSteps adds a child of the root per step, scores each with picky, and
// (with nested) does the same in a search nested in the first child.
type scoreSteps struct {
	steps  []string
	nested bool
	call   bool // make one LLM call first
}

func (s scoreSteps) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	if s.call {
		// A failed request the search goes on past.
		_, _ = env.Complete(ctx, core.CompletionRequest{Messages: []core.Message{{Role: "user", Content: "x"}}, Purpose: "step"})
	}
	var first core.NodeID
	for _, step := range s.steps {
		id, err := env.AddNode([]core.NodeID{0}, core.Node{Kind: core.KindStep, Content: step})
		if err != nil {
			return core.Outcome{}, err
		}
		if first == 0 {
			first = id
		}
		if _, err := core.Evaluate(ctx, env, picky{}, id); err != nil && !errors.Is(err, core.ErrUnscored) {
			return core.Outcome{}, err
		}
	}
	if s.nested {
		if _, err := env.SolveSub(ctx, first, core.Task{Problem: "sub", Strategy: "score-nested"}); err != nil {
			return core.Outcome{}, err
		}
	}
	return core.Outcome{Best: first, Answer: "42"}, nil
}

// A search goes on past evaluations that fail and LLM requests that fail;
// its result says so (before, only the nodes' eval_error in the trace did,
// and a run whose reward model failed on every node read "done").
func TestResultWarnsOfFailuresTheSearchWentOnPast(t *testing.T) {
	t.Parallel()
	failing := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{}, errors.New("upstream hiccup")
	})
	// short says it left a sample out (an LLM client drops samples cut
	// off while a reasoning model thought).
	short := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{Choices: []core.Choice{{Text: "x"}}, Note: "1 of 2 samples were cut off"}, nil
	})
	for _, c := range []struct {
		name   string
		s      scoreSteps
		policy core.Policy
		want   []string
	}{
		{"all scored", scoreSteps{steps: []string{"a", "b"}}, nil, nil},
		{"not applicable is no failure", scoreSteps{steps: []string{"n/a", "b"}}, nil, nil},
		{"one failure", scoreSteps{steps: []string{"error", "b"}}, nil,
			[]string{"1 evaluation failed and left 1 node unscored; the first: reward model said no"}},
		{"failures of a nested search count", scoreSteps{steps: []string{"a", "error", "nan"}, nested: true}, nil,
			[]string{"4 evaluations failed and left 4 nodes unscored; the first: reward model said no"}},
		{"a failed request", scoreSteps{steps: []string{"a"}, call: true}, failing,
			[]string{"1 LLM request failed; the first: llm call (step): upstream hiccup"}},
		{"a request that came back short", scoreSteps{steps: []string{"a"}, call: true}, short,
			[]string{"1 LLM request came back with fewer samples than asked; the first: 1 of 2 samples were cut off"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := core.NewRegistry()
			reg.RegisterStrategy(core.StrategySpec{Name: "score", New: func(core.Params) (core.Strategy, error) { return c.s, nil }})
			nested := c.s
			nested.nested, nested.call = false, false
			reg.RegisterStrategy(core.StrategySpec{Name: "score-nested", New: func(core.Params) (core.Strategy, error) { return nested, nil }})
			res, err := core.NewEngine(c.policy, reg, nil).Solve(t.Context(), core.Task{Problem: "p", Strategy: "score"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Stopped != core.StopDone || strings.Join(res.Warnings, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("stopped %s, warnings %q; want done, %q", res.Stopped, res.Warnings, c.want)
			}
			// The trace keeps them, as the result's record, and stays valid.
			if strings.Join(res.Trace.Warnings, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("trace warnings %q, want %q", res.Trace.Warnings, c.want)
			}
			b, err := json.Marshal(res.Trace)
			if err != nil {
				t.Fatal(err)
			}
			if err := tracetest.Validate(t, b); err != nil {
				t.Errorf("trace with warnings: %v", err)
			}
		})
	}
}

// failOnCall makes one LLM call and stops on its error.
type failOnCall struct{}

func (failOnCall) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	_, err := env.Complete(ctx, core.CompletionRequest{Messages: []core.Message{{Role: "user", Content: "x"}}, Purpose: "step"})
	return core.Outcome{}, err
}

// A search that stops on a failed request says why in its error, not
// again in a warning.
func TestFailedRequestThatStoppedTheSearchIsNoWarning(t *testing.T) {
	t.Parallel()
	failing := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{}, errors.New("upstream hiccup")
	})
	reg := core.NewRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "fail", New: func(core.Params) (core.Strategy, error) { return failOnCall{}, nil }})
	res, err := core.NewEngine(failing, reg, nil).Solve(t.Context(), core.Task{Problem: "p", Strategy: "fail"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopError || !strings.Contains(res.Error, "upstream hiccup") || len(res.Warnings) != 0 {
		t.Errorf("stopped %s, error %q, warnings %q; want error, the hiccup, none", res.Stopped, res.Error, res.Warnings)
	}
}

// The log's warning is for failures a search went on past, not for a
// strategy's note on why it found no answer ("solve went on past failures"
// with no failures, on stderr during eval).
func TestNoteAloneLogsNoFailures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		s    core.Strategy
		warn bool
	}{
		{core.StrategyFunc(func(context.Context, *core.Env) (core.Outcome, error) {
			return core.Outcome{Note: "no answer: every path was pruned"}, nil
		}), false},
		{scoreSteps{steps: []string{"error"}}, true},
	} {
		reg := core.NewRegistry()
		reg.RegisterStrategy(core.StrategySpec{Name: "s", New: func(core.Params) (core.Strategy, error) { return c.s, nil }})
		var log bytes.Buffer
		res, err := core.NewEngine(nil, reg, &core.EngineOptions{Logger: zerolog.New(&log)}).Solve(t.Context(), core.Task{Problem: "p", Strategy: "s"})
		if err != nil || len(res.Warnings) != 1 {
			t.Fatalf("warnings %q, %v", res.Warnings, err)
		}
		if got := strings.Contains(log.String(), "went on past failures"); got != c.warn {
			t.Errorf("warning %q: logged a failure warning %v, want %v:\n%s", res.Warnings[0], got, c.warn, log.String())
		}
	}
}
