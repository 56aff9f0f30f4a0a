package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
)

// evalFunc is an Evaluator from a function.
type evalFunc func(context.Context, core.EvalRequest) (core.Evaluation, error)

func (f evalFunc) Evaluate(ctx context.Context, r core.EvalRequest) (core.Evaluation, error) {
	return f(ctx, r)
}

// callsAndScores makes every kind of llm_call and evaluate event: a call
// that succeeds, one that fails, an evaluation that asks the LLM and is
// checked, one without a verdict, and one that fails.
type callsAndScores struct{}

func (callsAndScores) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	ids, err := core.Generate(ctx, env, 0, 2, core.GenerateOptions{})
	if err != nil {
		return core.Outcome{}, err
	}
	right := true
	asks := evalFunc(func(ctx context.Context, r core.EvalRequest) (core.Evaluation, error) {
		if _, err := r.Policy.Complete(ctx, core.CompletionRequest{Messages: []core.Message{{Role: "user", Content: "rate"}}, Purpose: "value"}); err != nil {
			return core.Evaluation{}, err
		}
		return core.Evaluation{Score: 0.25, Kind: core.ScoreVerifier, Correct: &right}, nil
	})
	plain := evalFunc(func(context.Context, core.EvalRequest) (core.Evaluation, error) {
		return core.Evaluation{Score: 0}, nil
	})
	fails := evalFunc(func(context.Context, core.EvalRequest) (core.Evaluation, error) {
		return core.Evaluation{}, errors.New("judge said nothing")
	})
	_, _ = core.Evaluate(ctx, env, asks, ids[0])
	_, _ = core.Evaluate(ctx, env, plain, ids[1])
	_, _ = core.Evaluate(ctx, env, fails, ids[1])
	_, _ = env.Complete(ctx, core.CompletionRequest{Purpose: "fail-me", Messages: []core.Message{{Role: "user", Content: "x"}}})
	// A request the search gives up on (its context ends mid-call).
	given, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	_, _ = env.Complete(given, core.CompletionRequest{Purpose: "hang", Messages: []core.Message{{Role: "user", Content: "x"}}})
	env.Tracer.Record(core.OpInfo, nil, nil)
	return core.Outcome{Best: ids[0]}, nil
}

// failing fails the requests whose purpose is "fail-me", answers those
// whose purpose is "hang" only when their context ends, and reports no
// tokens (estimated ones, it says, for "value" calls).
type failing struct{}

func (failing) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	switch req.Purpose {
	case "fail-me":
		return core.Completion{}, errors.New("rate limited")
	case "hang":
		<-ctx.Done()
		return core.Completion{}, ctx.Err()
	}
	c := core.Completion{TokensEstimated: req.Purpose == "value"}
	for i := 0; i < max(req.N, 1); i++ {
		c.Choices = append(c.Choices, core.Choice{Text: "a step"})
	}
	return c, nil
}

// llm_call, evaluate and generate events carry typed data; what Get reads of it, and
// what JSON holds, are the keys and values the trace format documents
// (docs/trace.md), the same as a map would hold.
func TestTypedEventDataReadsAndWritesAsDocumented(t *testing.T) {
	for _, prompts := range []bool{false, true} {
		reg := testRegistry()
		reg.RegisterStrategy(core.StrategySpec{Name: "calls", New: func(core.Params) (core.Strategy, error) { return callsAndScores{}, nil }})
		eng := core.NewEngine(failing{}, reg, &core.EngineOptions{RecordPrompts: prompts})
		res, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "calls"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(res.Trace)
		if err != nil {
			t.Fatal(err)
		}
		var back core.Trace
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		var calls, evals []map[string]any
		var callSeqs []int64
		for i, e := range res.Trace.Events {
			// JSON holds what Get reads, key for key.
			decoded, _ := back.Events[i].Data.(map[string]any)
			read := map[string]any{}
			for k := range decoded {
				if v := e.Get(k); v != nil {
					read[k] = v
				}
			}
			if decoded == nil {
				if e.Data != nil {
					t.Errorf("event %d (%s): data %v written as none", e.Seq, e.Op, e.Data)
				}
			} else if got, want := canonical(t, read), canonical(t, decoded); got != want {
				t.Errorf("event %d (%s): Get reads %s, JSON holds %s", e.Seq, e.Op, got, want)
			}
			switch e.Op {
			case core.OpLLMCall:
				calls = append(calls, decoded)
				callSeqs = append(callSeqs, e.Seq)
			case core.OpEvaluate:
				evals = append(evals, decoded)
			case core.OpGenerate:
				if got := canonical(t, decoded); got != `{"k":2}` || e.Get("k") != 2 {
					t.Errorf("generate event data %s (Get reads k = %v), want {\"k\":2}", got, e.Get("k"))
				}
			}
		}
		if len(calls) != 4 || len(evals) != 3 {
			t.Fatalf("prompts %v: %d llm_call and %d evaluate events, want 4 and 3", prompts, len(calls), len(evals))
		}
		want := []string{"completion_tokens", "ms", "n", "prompt_tokens", "purpose"}
		if prompts {
			want = []string{"completion_tokens", "messages", "ms", "n", "prompt_tokens", "purpose", "responses"}
		}
		if got := keys(calls[0]); !reflect.DeepEqual(got, want) || calls[0]["purpose"] != "generate" || calls[0]["n"] != 2.0 ||
			calls[0]["prompt_tokens"] != 0.0 {
			t.Errorf("prompts %v: generate call data %v, want keys %v", prompts, calls[0], want)
		}
		if got := keys(calls[2]); !reflect.DeepEqual(got, []string{"error", "ms", "n", "purpose"}) || calls[2]["error"] != "rate limited" {
			t.Errorf("failed call data %v", calls[2])
		}
		if got := keys(calls[3]); !reflect.DeepEqual(got, []string{"cancelled", "error", "ms", "n", "purpose"}) || calls[3]["cancelled"] != true {
			t.Errorf("given-up call data %v", calls[3])
		}
		if got := keys(evals[0]); !reflect.DeepEqual(got, []string{"correct", "kind", "llm_calls", "score"}) ||
			evals[0]["kind"] != core.ScoreVerifier || evals[0]["score"] != 0.25 || evals[0]["correct"] != true ||
			canonical(t, evals[0]["llm_calls"]) != canonical(t, []int64{callSeqs[1]}) || calls[1]["purpose"] != "value" ||
			calls[1]["tokens_estimated"] != true {
			t.Errorf("checked evaluation: data %v (its call: %v, seq %d)", evals[0], calls[1], callSeqs[1])
		}
		if got := keys(evals[1]); !reflect.DeepEqual(got, []string{"kind", "score"}) || evals[1]["kind"] != core.ScoreValue || evals[1]["score"] != 0.0 {
			t.Errorf("evaluation without a verdict: data %v", evals[1])
		}
		if got := keys(evals[2]); !reflect.DeepEqual(got, []string{"error"}) || evals[2]["error"] != "judge said nothing" {
			t.Errorf("failed evaluation: data %v", evals[2])
		}
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// canonical is v as JSON with every object's keys sorted.
func canonical(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(generic)
	return string(b)
}

// MCTS's select events carry SelectData: JSON and Get hold what a map of
// the same keys held, and in_flight only when more than one expansion of
// the node is in flight.
func TestSelectDataReadsAndWritesAsAMap(t *testing.T) {
	for _, tc := range []struct {
		d    core.SelectData
		want string
	}{
		{core.SelectData{Iteration: 7, Depth: 2}, `{"depth":2,"iteration":7}`},
		{core.SelectData{Iteration: 9, Depth: 1, InFlight: 3}, `{"depth":1,"in_flight":3,"iteration":9}`},
	} {
		tr := core.NewTracer(false)
		tr.RecordSelect(4, tc.d)
		ev := tr.Since(0)
		if len(ev) != 1 || ev[0].Op != core.OpSelect || !slices.Equal(ev[0].Nodes, []core.NodeID{4}) {
			t.Fatalf("recorded %+v, want one select event on node 4", ev)
		}
		b, err := json.Marshal(ev[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%+v written as %s, want %s", tc.d, b, tc.want)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"depth", "in_flight", "iteration", "other"} {
			got, inJSON := ev[0].Get(k), m[k]
			if (got == nil) != (inJSON == nil) || (got != nil && float64(got.(int)) != inJSON.(float64)) {
				t.Errorf("%+v: Get(%q) = %v, JSON holds %v", tc.d, k, got, inJSON)
			}
		}
	}
}

// scoreFive generates five steps and scores them with EvaluateAll, with an
// evaluator that holds back the early nodes before its call: run
// concurrently, the late nodes would reserve the calls left first.
type scoreFive struct{ scored *[]core.NodeID }

func (s scoreFive) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	ids, err := core.Generate(ctx, env, 0, 5, core.GenerateOptions{})
	if err != nil {
		return core.Outcome{}, err
	}
	var mu sync.Mutex
	slowFirst := evalFunc(func(ctx context.Context, r core.EvalRequest) (core.Evaluation, error) {
		last, _ := r.LastNode()
		time.Sleep(time.Duration(len(ids)-slices.Index(ids, last.ID)) * 15 * time.Millisecond)
		if _, err := r.Policy.Complete(ctx, core.CompletionRequest{Messages: []core.Message{{Role: "user", Content: "rate"}}, Purpose: "value"}); err != nil {
			return core.Evaluation{}, err
		}
		mu.Lock()
		*s.scored = append(*s.scored, last.ID)
		mu.Unlock()
		return core.Evaluation{Score: 0.5}, nil
	})
	_, _, err = core.EvaluateAll(ctx, env, slowFirst, ids)
	return core.Outcome{Best: ids[0]}, err
}

// When the budget cannot pay for every node, EvaluateAll scores the nodes
// in order, so which ones the budget cuts off does not depend on timing.
func TestEvaluateAllCutsOffInOrder(t *testing.T) {
	t.Parallel()
	var scored []core.NodeID
	reg := testRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "score-five", New: func(core.Params) (core.Strategy, error) { return scoreFive{&scored}, nil }})
	eng := core.NewEngine(failing{}, reg, nil)
	// Five samples in one request, then three scorings of five.
	res, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "score-five", Limits: core.Limits{LLMCalls: 8}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(scored, []core.NodeID{1, 2, 3}) || res.Stopped != core.StopBudget {
		t.Fatalf("scored %v (stopped %s), want the first three nodes, 1 2 3, in order, and a budget stop", scored, res.Stopped)
	}
}
