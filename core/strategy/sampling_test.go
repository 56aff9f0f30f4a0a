package strategy_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/core/strategy"
	"github.com/ponder-rlm/ponder/tasks"
)

// scripted answers sample requests by seed: answers[seed % len] is boxed;
// judge requests get "Score: N" from judge(answerOfPath).
type scripted struct {
	answers []string
	judge   func(answer string) int
	calls   atomic.Int64
	seedOf  func(seed int64) int // maps a request seed to a sample index
}

func (s *scripted) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	s.calls.Add(int64(req.N))
	sys := req.Messages[0].Content
	if sys == tasks.JudgeSystem {
		p, _ := tasks.ParsePrompt(req.Messages)
		last := p.Steps[len(p.Steps)-1]
		a, _ := core.ExtractAnswer(last)
		return core.Completion{Choices: []core.Choice{{Text: fmt.Sprintf("Looks fine.\nScore: %d", s.judge(a))}}}, nil
	}
	var c core.Completion
	for i := 0; i < req.N; i++ {
		idx := int(*req.Seed) + i
		if s.seedOf != nil {
			idx = s.seedOf(*req.Seed) + i
		}
		c.Choices = append(c.Choices, core.Choice{Text: fmt.Sprintf("work...\nso \\boxed{%s}", s.answers[idx%len(s.answers)])})
	}
	return c, nil
}

func newEngine(p core.Policy) *core.Engine {
	reg := core.NewRegistry()
	strategy.Register(reg)
	evaluator.Register(reg)
	return core.NewEngine(p, reg, &core.EngineOptions{Packs: tasks.Get})
}

// seedIndex recovers the sample index from env.Seed(i) by brute force over
// small i, so the scripted policy can answer by sample order.
func seedIndex(task core.Task) func(int64) int {
	env := &core.Env{Task: task}
	table := map[int64]int{}
	for i := 0; i < 256; i++ {
		table[env.Seed(int64(i))] = i
	}
	return func(seed int64) int { return table[seed] }
}

func TestSelfConsistencyMajorityAndTies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answers []string
		k       int
		per     string
		want    string
	}{
		{"clear majority", []string{"5", "7", "7", "3", "7", "5"}, 6, "1", "7"},
		{"equivalent forms vote together", []string{"1,000", "999", "1000.0", "998"}, 4, "2", "1000"},
		{"tie goes to the answer sampled first", []string{"4", "9", "9", "4"}, 4, "1", "4"},
		{"tie order independent of batching", []string{"9", "4", "4", "9"}, 4, "3", "9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			task := core.Task{Problem: "q", Pack: "gsm8k", Strategy: "self-consistency",
				Params: core.Params{"k": tt.k, "per_request": tt.per}}
			pol := &scripted{answers: tt.answers, seedOf: seedIndex(task)}
			res, err := newEngine(pol).Solve(t.Context(), task)
			if err != nil {
				t.Fatal(err)
			}
			if res.Answer != tt.want || res.Stopped != core.StopDone {
				t.Fatalf("answer %q (%s), want %q", res.Answer, res.Stopped, tt.want)
			}
			if res.Usage.LLMCalls != int64(tt.k) {
				t.Fatalf("usage %d calls, want %d", res.Usage.LLMCalls, tt.k)
			}
		})
	}
}

func TestSelfConsistencyAnytimeOnBudget(t *testing.T) {
	t.Parallel()
	task := core.Task{Problem: "q", Pack: "gsm8k", Strategy: "self-consistency",
		Params: core.Params{"k": 16}, Limits: core.Limits{LLMCalls: 5}}
	pol := &scripted{answers: []string{"3"}, seedOf: seedIndex(task)}
	res, err := newEngine(pol).Solve(t.Context(), task)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopBudget || res.Answer != "3" || pol.calls.Load() != 5 {
		t.Fatalf("stopped %s answer %q after %d calls; want budget, 3, 5", res.Stopped, res.Answer, pol.calls.Load())
	}
}

func TestBestOfNPicksTheJudgesFavourite(t *testing.T) {
	t.Parallel()
	task := core.Task{Problem: "q", Pack: "gsm8k", Strategy: "best-of-n", Params: core.Params{"n": 4}}
	pol := &scripted{answers: []string{"5", "5", "8", "5"}, seedOf: seedIndex(task),
		judge: func(a string) int {
			if a == "8" {
				return 9
			}
			return 3
		}}
	res, err := newEngine(pol).Solve(t.Context(), task)
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "8" {
		t.Fatalf("answer %q, want the judged-best 8 over the majority 5", res.Answer)
	}
	if res.Usage.LLMCalls != 8 { // 4 samples + 4 judgements
		t.Fatalf("usage %d calls, want 8", res.Usage.LLMCalls)
	}
	if s := res.BestPath[len(res.BestPath)-1].Scores[core.ScoreORM]; s <= 0.5 {
		t.Fatalf("best node ORM score %v", s)
	}
}

func TestBestOfNSurvivesGarbageFromTheJudge(t *testing.T) {
	t.Parallel()
	task := core.Task{Problem: "q", Pack: "gsm8k", Strategy: "best-of-n", Params: core.Params{"n": 3}}
	base := &scripted{answers: []string{"2", "6", "6"}, seedOf: seedIndex(task)}
	pol := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		if req.Messages[0].Content == tasks.JudgeSystem {
			return core.Completion{Choices: []core.Choice{{Text: "I refuse to grade."}}}, nil
		}
		return base.Complete(ctx, req)
	})
	res, err := newEngine(pol).Solve(t.Context(), task)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopDone || res.Answer != "6" {
		t.Fatalf("stopped %s answer %q; want done and the majority 6 when nothing is scored", res.Stopped, res.Answer)
	}
	unscored := 0
	for _, n := range res.Trace.Structure.Nodes() {
		if _, ok := n.Meta["eval_error"]; ok {
			unscored++
		}
	}
	if unscored != 3 {
		t.Fatalf("%d nodes marked unscored, want 3", unscored)
	}
}

func TestCoTOneCall(t *testing.T) {
	t.Parallel()
	pol := &scripted{answers: []string{"12"}}
	res, err := newEngine(pol).Solve(t.Context(), core.Task{Problem: "q", Pack: "gsm8k", Strategy: "cot"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "12" || res.Usage.LLMCalls != 1 || !strings.Contains(res.BestPath[1].Content, "boxed") {
		t.Fatalf("cot result %+v", res)
	}
}

// Under a call budget smaller than k, the first samples get the calls, so
// the answer does not depend on which request reserved its call first.
func TestSamplingUnderASmallBudgetTakesTheFirstSamples(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		strategy string
		params   core.Params
	}{
		{"self-consistency", core.Params{"k": 16}},
		{"self-consistency", core.Params{"k": 16, "per_request": 2}},
		{"best-of-n", core.Params{"n": 16}},
	} {
		for run := 0; run < 5; run++ {
			task := core.Task{Problem: "What is 6 times 7?", Strategy: c.strategy, Params: c.params, Seed: 3, Limits: core.Limits{LLMCalls: 3}}
			pol := &scripted{answers: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16"},
				judge: func(string) int { return 5 }, seedOf: seedIndex(task)}
			res, err := newEngine(pol).Solve(t.Context(), task)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range res.Trace.Events {
				if n.Op == core.OpNode && n.Node != nil && n.Node.Answer != "" {
					got = append(got, n.Node.Answer)
				}
			}
			slices.Sort(got)
			if res.Stopped != core.StopBudget || !slices.Equal(got, []string{"1", "2", "3"}) {
				t.Fatalf("%s %v, run %d: stopped %s with samples %v; want the budget to stop it with samples 1, 2 and 3 (the first three)",
					c.strategy, c.params, run, res.Stopped, got)
			}
		}
	}
}

// With the LLM down, sampling under a budget smaller than k stops on the
// LLM's error: the budget did not stop it (no call was spent).
func TestSamplingUnderASmallBudgetWithTheLLMDown(t *testing.T) {
	t.Parallel()
	down := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{}, fmt.Errorf("%w: answered 500", core.ErrLLMUnavailable)
	})
	for _, c := range []struct {
		strategy string
		params   core.Params
	}{
		{"self-consistency", core.Params{"k": 8}},
		{"best-of-n", core.Params{"n": 8}},
	} {
		res, err := newEngine(down).Solve(t.Context(), core.Task{Problem: "What is 6 times 7?", Strategy: c.strategy, Params: c.params,
			Limits: core.Limits{LLMCalls: 5}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stopped != core.StopError || !strings.Contains(res.Error, "answered 500") {
			t.Errorf("%s: stopped %s (%s); want the LLM's error", c.strategy, res.Stopped, res.Error)
		}
	}
}
