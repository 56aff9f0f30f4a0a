package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/traces/tracetest"
)

// chainStrategy grows a chain of single steps until a step states an answer
// or the budget ends, remembering the deepest node as its best so far.
type chainStrategy struct{ maxSteps int }

func (c chainStrategy) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	cur, best := core.NodeID(0), core.Outcome{}
	for i := 0; i < c.maxSteps; i++ {
		ids, err := core.Generate(ctx, env, cur, 1, core.GenerateOptions{})
		if err != nil {
			return best, err
		}
		cur = ids[0]
		n := env.Structure.MustNode(cur)
		best = core.Outcome{Best: cur, Answer: n.Answer}
		if n.Terminal {
			return best, nil
		}
	}
	return best, nil
}

type panicStrategy struct{}

func (panicStrategy) Run(context.Context, *core.Env) (core.Outcome, error) { panic("boom") }

func testRegistry() *core.Registry {
	reg := core.NewRegistry()
	reg.RegisterStrategy(core.StrategySpec{
		Name: "chain", Summary: "test chain",
		Params: []core.ParamSpec{{Name: "steps", Type: core.ParamInt, Default: int64(3), Min: core.Bound(1)}},
		New:    func(p core.Params) (core.Strategy, error) { return chainStrategy{maxSteps: p.Int("steps")}, nil },
	})
	reg.RegisterStrategy(core.StrategySpec{Name: "panic", New: func(core.Params) (core.Strategy, error) { return panicStrategy{}, nil }})
	return reg
}

func answerAfter(k int) func(core.CompletionRequest, int) string {
	return func(req core.CompletionRequest, _ int) string {
		steps := strings.Count(req.Messages[len(req.Messages)-1].Content, "\nStep ")
		if steps+1 >= k {
			return "so the total is \\boxed{42}"
		}
		return fmt.Sprintf("intermediate step %d", steps+1)
	}
}

func TestSolveRejectsBadTasksBeforeAnyLLMCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		task core.Task
		want string
	}{
		{"empty problem", core.Task{Problem: "  ", Strategy: "chain"}, "problem is empty"},
		{"unknown strategy", core.Task{Problem: "p", Strategy: "nope"}, `strategy "nope"`},
		{"unknown parameter", core.Task{Problem: "p", Strategy: "chain", Params: core.Params{"stepz": "2"}}, `unknown parameter "stepz"`},
		{"parameter out of range", core.Task{Problem: "p", Strategy: "chain", Params: core.Params{"steps": "0"}}, `"steps"`},
		{"parameter of wrong type", core.Task{Problem: "p", Strategy: "chain", Params: core.Params{"steps": "two"}}, "want an integer"},
		{"negative budget", core.Task{Problem: "p", Strategy: "chain", Limits: core.Limits{LLMCalls: -1}}, "llm calls"},
		{"unknown pack", core.Task{Problem: "p", Strategy: "chain", Pack: "chess"}, "chess"},
		{"unknown tool", core.Task{Problem: "p", Strategy: "chain", Tools: []string{"python"}}, "python"},
		{"collection without a store", core.Task{Problem: "p", Strategy: "chain", Collection: "docs"}, "no document store"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pol := &countingPolicy{}
			eng := core.NewEngine(pol, testRegistry(), nil)
			_, err := eng.Solve(t.Context(), tt.task)
			if !errors.Is(err, core.ErrInvalidTask) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidTask mentioning %q", err, tt.want)
			}
			if pol.calls.Load() != 0 {
				t.Fatalf("%d LLM calls made for a rejected task", pol.calls.Load())
			}
		})
	}
}

func TestSolveStopsOnBudgetWithBestSoFar(t *testing.T) {
	t.Parallel()
	pol := &countingPolicy{reply: answerAfter(10)}
	eng := core.NewEngine(pol, testRegistry(), nil)
	res, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "chain", Params: core.Params{"steps": 20}, Limits: core.Limits{LLMCalls: 4}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopBudget {
		t.Fatalf("stopped = %s, want budget", res.Stopped)
	}
	if res.Usage.LLMCalls != 4 || pol.calls.Load() != 4 {
		t.Fatalf("usage %d calls, policy saw %d; want 4 and 4", res.Usage.LLMCalls, pol.calls.Load())
	}
	if len(res.BestPath) != 5 { // root + 4 steps
		t.Fatalf("best path has %d nodes, want the root and 4 steps", len(res.BestPath))
	}
}

func TestSolveFinishesWithAnswer(t *testing.T) {
	t.Parallel()
	pol := &countingPolicy{reply: answerAfter(3)}
	eng := core.NewEngine(pol, testRegistry(), nil)
	res, err := eng.Solve(t.Context(), core.Task{Problem: "What is 6*7?", Strategy: "chain", Params: core.Params{"steps": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopDone || res.Answer != "42" {
		t.Fatalf("stopped %s answer %q, want done and 42", res.Stopped, res.Answer)
	}
	if res.Usage.LLMCalls != 3 || res.Usage.PromptTokens != 30 || res.Usage.CompletionTokens != 15 {
		t.Fatalf("usage = %+v", res.Usage)
	}
}

func TestSolveReportsLLMFailure(t *testing.T) {
	t.Parallel()
	pol := &countingPolicy{err: fmt.Errorf("%w: 401 from http://x/v1", core.ErrLLMAuth)}
	eng := core.NewEngine(pol, testRegistry(), nil)
	res, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "chain"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopError || !strings.Contains(res.Error, "credentials") {
		t.Fatalf("stopped %s error %q, want error naming the credentials", res.Stopped, res.Error)
	}
	if res.Usage.LLMCalls != 0 {
		t.Fatalf("failed calls charged: %+v", res.Usage)
	}
}

func TestSolveCancelled(t *testing.T) {
	t.Parallel()
	var started atomic.Bool
	slow := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		if started.Swap(true) {
			<-ctx.Done()
			return core.Completion{}, ctx.Err()
		}
		return core.Completion{Choices: []core.Choice{{Text: "first step"}}}, nil
	})
	eng := core.NewEngine(slow, testRegistry(), nil)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	res, err := eng.Solve(ctx, core.Task{Problem: "p", Strategy: "chain"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopCancelled || len(res.BestPath) != 2 {
		t.Fatalf("stopped %s with best path of %d nodes; want cancelled with the first step kept", res.Stopped, len(res.BestPath))
	}
}

func TestSolveTimeout(t *testing.T) {
	t.Parallel()
	hang := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		<-ctx.Done()
		return core.Completion{}, ctx.Err()
	})
	eng := core.NewEngine(hang, testRegistry(), nil)
	res, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "chain", Limits: core.Limits{WallTime: 30 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopTimeout {
		t.Fatalf("stopped = %s, want timeout", res.Stopped)
	}
}

func TestSolveRecoversFromStrategyPanic(t *testing.T) {
	t.Parallel()
	eng := core.NewEngine(&countingPolicy{}, testRegistry(), nil)
	res, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "panic"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopError || !strings.Contains(res.Error, "boom") {
		t.Fatalf("stopped %s error %q", res.Stopped, res.Error)
	}
}

// TestTraceMatchesSchema checks a real trace, nested sub-search included,
// against docs/trace.schema.json.
func TestTraceMatchesSchema(t *testing.T) {
	t.Parallel()
	reg := testRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "nested", New: func(core.Params) (core.Strategy, error) {
		return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			id, err := env.AddNode([]core.NodeID{0}, core.Node{Kind: core.KindSubProblem, Content: "sub-problem"})
			if err != nil {
				return core.Outcome{}, err
			}
			sub, err := env.SolveSub(ctx, id, core.Task{Problem: "sub-problem", Strategy: "chain"})
			if err != nil {
				return core.Outcome{}, err
			}
			_ = env.Structure.Update(id, func(n *core.Node) { n.Answer = sub.Answer; n.Terminal = true })
			return core.Outcome{Answer: sub.Answer, Best: id}, nil
		}), nil
	}})
	pol := &countingPolicy{reply: answerAfter(2)}
	eng := core.NewEngine(pol, reg, &core.EngineOptions{RecordPrompts: true})
	res, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "nested", Limits: core.Limits{LLMCalls: 10}})
	if err != nil || res.Stopped != core.StopDone {
		t.Fatalf("solve: %v %s %s", err, res.Stopped, res.Error)
	}
	if res.Answer != "42" || res.Usage.LLMCalls != 2 {
		t.Fatalf("answer %q usage %+v: nested calls must count in the parent", res.Answer, res.Usage)
	}
	b, err := json.Marshal(res.Trace)
	if err != nil {
		t.Fatal(err)
	}
	if err := tracetest.Validate(t, b); err != nil {
		t.Fatalf("trace does not match docs/trace.schema.json: %v", err)
	}
	var back core.Trace
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	nodes := back.Structure.Nodes()
	if len(nodes) != 2 || nodes[1].Sub == nil || nodes[1].Sub.Len() != 3 {
		t.Fatalf("round-tripped structure lost the nested sub-structure: %+v", nodes)
	}
	scoped := 0
	for _, e := range back.Events {
		if len(e.Scope) == 1 && e.Scope[0] == 1 {
			scoped++
		}
	}
	if scoped == 0 {
		t.Fatal("no events recorded in the nested scope")
	}
	replayed, err := core.Replay(core.Tree, back.Events)
	if err != nil {
		t.Fatal(err)
	}
	if sub := replayed.MustNode(1).Sub; sub == nil || sub.Len() != 3 {
		t.Fatalf("replay lost the nested structure: %+v", replayed.Nodes())
	}
}

func TestReplayRebuildsTheStructureFromEvents(t *testing.T) {
	t.Parallel()
	pol := &countingPolicy{reply: answerAfter(4)}
	eng := core.NewEngine(pol, testRegistry(), nil)
	res, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "chain", Params: core.Params{"steps": 6}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := core.Replay(core.Tree, res.Trace.Events)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(res.Trace.Structure)
	gotJSON, _ := json.Marshal(got)
	if string(want) != string(gotJSON) {
		t.Fatalf("replayed structure differs:\n got %s\nwant %s", gotJSON, want)
	}
}

// TestBigSearchDoesNotStarveOthers: a run that wants many more calls than
// there are LLM slots must not make a later run wait for all of them. The
// policy records the order it served requests in; the small run's one call
// must come after only a few of the big run's 400.
func TestBigSearchDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var order []string
	pol := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		who := "small"
		if strings.Contains(req.Messages[len(req.Messages)-1].Content, "big") {
			who = "big"
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		order = append(order, who)
		mu.Unlock()
		return core.Completion{Choices: []core.Choice{{Text: `\boxed{1}`}}}, nil
	})
	reg := testRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "many", New: func(core.Params) (core.Strategy, error) {
		return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			var wg sync.WaitGroup
			for i := 0; i < 400; i++ {
				wg.Add(1)
				go func() { defer wg.Done(); _, _ = core.Generate(ctx, env, 0, 1, core.GenerateOptions{Whole: true}) }()
			}
			wg.Wait()
			return core.Outcome{}, nil
		}), nil
	}})
	const slots = 2
	eng := core.NewEngine(pol, reg, &core.EngineOptions{Concurrency: slots})
	bigStarted := make(chan struct{})
	bigDone := make(chan struct{})
	go func() {
		defer close(bigDone)
		_, _ = eng.Solve(context.Background(), core.Task{Problem: "big", Strategy: "many", Limits: core.Limits{Nodes: 1000}})
	}()
	go func() {
		for {
			mu.Lock()
			n := len(order)
			mu.Unlock()
			if n >= 4 {
				close(bigStarted)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	<-bigStarted
	small, err := eng.Solve(t.Context(), core.Task{Problem: "small", Strategy: "chain", Params: core.Params{"steps": 1}})
	<-bigDone
	if err != nil || small.Stopped != core.StopDone {
		t.Fatalf("small run: %v %s", err, small.Stopped)
	}
	mu.Lock()
	defer mu.Unlock()
	at := -1
	for i, who := range order {
		if who == "small" {
			at = i
			break
		}
	}
	// Before it: what the big run had served and queued (at most its own
	// share of the limiter's queue: a few times the slots).
	if at < 0 || at > 4+4*slots {
		t.Fatalf("the small run's call was served after %d of the big run's calls (of %d)", at, len(order))
	}
}

// budgetSeenWhileFailing makes calls n at once, as a search with calls in
// flight does, and stops on the budget error one of them met; then it
// answers "found" if answer is set.
type budgetSeenWhileFailing struct {
	n      int
	answer bool
}

func (s budgetSeenWhileFailing) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	errs := make([]error, s.n)
	var wg sync.WaitGroup
	for i := range s.n {
		wg.Go(func() {
			_, errs[i] = env.Complete(ctx, core.CompletionRequest{Messages: []core.Message{{Role: "user", Content: "x"}}, Purpose: "step"})
		})
	}
	wg.Wait()
	out := core.Outcome{}
	if s.answer {
		out.Answer = "found"
	}
	for _, err := range errs {
		if errors.Is(err, core.ErrBudgetExhausted) {
			return out, err
		}
	}
	return out, fmt.Errorf("%w: no call met the budget", core.ErrBudgetExhausted)
}

// A run whose calls failed, and which saw the budget spent only while they
// were in flight (failed calls are refunded), stops on the LLM's error; a
// run that spent its budget, or found an answer, stops on the budget.
func TestBudgetSeenWhileCallsFailedIsTheLLMsError(t *testing.T) {
	t.Parallel()
	down := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		time.Sleep(5 * time.Millisecond) // so that the calls are in flight together
		return core.Completion{}, fmt.Errorf("%w: answered 500", core.ErrLLMUnavailable)
	})
	up := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		time.Sleep(5 * time.Millisecond)
		return core.Completion{Choices: []core.Choice{{Text: "a step"}}}, nil
	})
	for _, c := range []struct {
		name   string
		policy core.Policy
		answer bool
		want   core.StopReason
	}{
		{"calls failed, nothing found", down, false, core.StopError},
		{"calls failed, an answer found", down, true, core.StopBudget},
		{"budget spent", up, false, core.StopBudget},
	} {
		reg := testRegistry()
		reg.RegisterStrategy(core.StrategySpec{Name: "burst", New: func(core.Params) (core.Strategy, error) {
			return budgetSeenWhileFailing{n: 6, answer: c.answer}, nil
		}})
		res, err := core.NewEngine(c.policy, reg, nil).Solve(t.Context(), core.Task{Problem: "p", Strategy: "burst", Limits: core.Limits{LLMCalls: 4}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stopped != c.want || (c.want == core.StopError) != errors.Is(res.Err, core.ErrLLMUnavailable) {
			t.Errorf("%s: stopped %s (%s, Err %v); want %s", c.name, res.Stopped, res.Error, res.Err, c.want)
		}
	}
}

// oneCall makes one LLM call and returns what it met.
type oneCall struct{}

func (oneCall) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	_, err := env.Complete(ctx, core.CompletionRequest{Messages: []core.Message{{Role: "user", Content: "x"}}, Purpose: "step"})
	return core.Outcome{}, err
}

// A request the model failed is given back, call and request; one the run
// gave up on after sending it stays charged (the endpoint may have served
// and billed it), so budgets are not overdrawn by replies thrown away.
func TestFailedAndAbandonedRequestsAreCharged(t *testing.T) {
	t.Parallel()
	reg := testRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "one", New: func(core.Params) (core.Strategy, error) { return oneCall{}, nil }})
	failed := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{}, fmt.Errorf("%w: answered 500", core.ErrLLMUnavailable)
	})
	res, err := core.NewEngine(failed, reg, nil).Solve(t.Context(), core.Task{Problem: "p", Strategy: "one"})
	if err != nil || res.Usage.LLMCalls != 0 || res.Usage.Requests != 0 {
		t.Errorf("failed request: %v, usage %+v; want nothing charged", err, res.Usage)
	}
	sent := make(chan struct{})
	inFlight := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		close(sent)
		<-ctx.Done()
		return core.Completion{}, ctx.Err()
	})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-sent; cancel() }()
	res, err = core.NewEngine(inFlight, reg, nil).Solve(ctx, core.Task{Problem: "p", Strategy: "one"})
	if err != nil || res.Stopped != core.StopCancelled || res.Usage.LLMCalls != 1 || res.Usage.Requests != 1 {
		t.Errorf("abandoned request: %v, stopped %s, usage %+v; want it charged", err, res.Stopped, res.Usage)
	}
}
