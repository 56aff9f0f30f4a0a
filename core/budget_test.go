package core_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
)

func TestBudgetReserveCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		limits  core.Limits
		reserve []int64
		tokens  [2]int64 // added after the first reservation
		wantErr []bool
	}{
		{"unlimited", core.Limits{}, []int64{5, 100}, [2]int64{}, []bool{false, false}},
		{"calls fit exactly", core.Limits{LLMCalls: 8}, []int64{4, 4, 1}, [2]int64{}, []bool{false, false, true}},
		{"n larger than what is left", core.Limits{LLMCalls: 8}, []int64{5, 4, 3}, [2]int64{}, []bool{false, true, false}},
		{"tokens exhausted", core.Limits{Tokens: 100}, []int64{1, 1}, [2]int64{60, 40}, []bool{false, true}},
		{"completion tokens exhausted", core.Limits{OutputTokens: 10}, []int64{1, 1}, [2]int64{0, 10}, []bool{false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := core.NewBudget(tt.limits)
			for i, n := range tt.reserve {
				err := b.ReserveCalls(n)
				if (err != nil) != tt.wantErr[i] {
					t.Fatalf("reserve #%d (%d): err = %v, want error %v", i, n, err, tt.wantErr[i])
				}
				if err != nil && !errors.Is(err, core.ErrBudgetExhausted) {
					t.Fatalf("error %v does not wrap ErrBudgetExhausted", err)
				}
				if i == 0 {
					b.AddTokens(tt.tokens[0], tt.tokens[1])
				}
			}
		})
	}
}

func TestBudgetCarveChargesParent(t *testing.T) {
	t.Parallel()
	parent := core.NewBudget(core.Limits{LLMCalls: 10})
	child := parent.Carve(core.Limits{LLMCalls: 6})
	if err := child.ReserveCalls(6); err != nil {
		t.Fatal(err)
	}
	if err := child.ReserveCalls(1); !errors.Is(err, core.ErrBudgetExhausted) {
		t.Fatalf("child over its own limit: err = %v", err)
	}
	if got := parent.Used().LLMCalls; got != 6 {
		t.Fatalf("parent used %d calls, want 6 charged by the child", got)
	}
	sibling := parent.Carve(core.Limits{})
	if err := sibling.ReserveCalls(5); !errors.Is(err, core.ErrBudgetExhausted) {
		t.Fatalf("sibling may not exceed the parent's remaining 4 calls: err = %v", err)
	}
	if err := sibling.ReserveCalls(4); err != nil {
		t.Fatal(err)
	}
	if r := parent.Remaining(); r != 0 {
		t.Fatalf("parent remaining = %d, want 0", r)
	}
	child.RefundCalls(2)
	if got := parent.Used().LLMCalls; got != 8 {
		t.Fatalf("after refund parent used %d, want 8", got)
	}
}

func TestBudgetConcurrentReservationsNeverOverspend(t *testing.T) {
	t.Parallel()
	b := core.NewBudget(core.Limits{LLMCalls: 100})
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				if b.ReserveCalls(1) == nil {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if granted != 100 || b.Used().LLMCalls != 100 {
		t.Fatalf("granted %d, used %d; want exactly 100", granted, b.Used().LLMCalls)
	}
}

func TestBudgetNodesAndDepth(t *testing.T) {
	t.Parallel()
	b := core.NewBudget(core.Limits{Nodes: 2, Depth: 3})
	if err := b.ReserveNode(4); !errors.Is(err, core.ErrBudgetExhausted) {
		t.Fatalf("depth 4 over limit 3: err = %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := b.ReserveNode(1); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.ReserveNode(1); !errors.Is(err, core.ErrBudgetExhausted) {
		t.Fatalf("third node over limit 2: err = %v", err)
	}
}

func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	for _, l := range []core.Limits{{LLMCalls: -1}, {Tokens: -5}, {WallTime: -time.Second}, {Depth: -1}, {Nodes: -2}, {ToolCalls: -1}} {
		if err := l.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted a negative limit", l)
		}
	}
	if err := (core.Limits{LLMCalls: 3, WallTime: time.Second}).Validate(); err != nil {
		t.Errorf("valid limits rejected: %v", err)
	}
}

func TestLimiterBoundsConcurrencyAndMeasuresBusyTime(t *testing.T) {
	t.Parallel()
	l := core.NewLimiter(2)
	ctx := t.Context()
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := contextWithTimeout(t, 20*time.Millisecond)
	defer cancel()
	if err := l.Acquire(cctx); err == nil {
		t.Fatal("third acquire on two slots succeeded")
	}
	time.Sleep(10 * time.Millisecond)
	l.Release()
	l.Release()
	if busy := l.BusyTime(); busy < 2*30*time.Millisecond {
		t.Fatalf("busy time %v, want at least 2 slots × ~30ms", busy)
	}
}

// A duration parameter is a time.Duration once given, and its default the
// string the spec shows.
func TestParamsDuration(t *testing.T) {
	t.Parallel()
	specs := []core.ParamSpec{{Name: "timeout", Type: core.ParamDuration, Default: "10s"}}
	for _, tc := range []struct {
		in   core.Params
		want time.Duration
	}{
		{nil, 10 * time.Second},
		{core.Params{"timeout": "250ms"}, 250 * time.Millisecond},
		{core.Params{"timeout": 2.5}, 2500 * time.Millisecond},
	} {
		p, err := core.Resolve(specs, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Duration("timeout"); got != tc.want {
			t.Errorf("Duration of %v = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := (core.Params{}).Duration("missing"); got != 0 {
		t.Errorf("a missing duration is %v, want 0", got)
	}
}

// burst makes n LLM calls at once and stops at the first budget error.
type burst struct{ n int }

func (b burst) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	errs := make([]error, b.n)
	env.ForEach(b.n, 1, func(i int) {
		_, errs[i] = env.Complete(ctx, core.CompletionRequest{Messages: []core.Message{{Role: "user", Content: "x"}}, Purpose: "sample"})
	})
	return core.Outcome{}, errors.Join(errs...)
}

// A token budget is checked when a request goes out, not only when it is
// charged: with one LLM slot, 8 requests charged at once all went out one
// after the other on a budget the first had spent (14 times over).
func TestTokenBudgetStopsRequestsThatWaitedForASlot(t *testing.T) {
	t.Parallel()
	var sent atomic.Int64
	pol := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		sent.Add(1)
		time.Sleep(time.Millisecond) // the others wait for the slot meanwhile
		return core.Completion{PromptTokens: 11, CompletionTokens: 7, Choices: []core.Choice{{Text: "a"}}}, nil
	})
	for _, c := range []struct {
		name   string
		limits core.Limits
	}{
		{"tokens", core.Limits{Tokens: 10}},
		{"prompt tokens", core.Limits{PromptTokens: 10}},
		{"completion tokens", core.Limits{OutputTokens: 5}},
	} {
		sent.Store(0)
		reg := core.NewRegistry()
		reg.RegisterStrategy(core.StrategySpec{Name: "burst", New: func(core.Params) (core.Strategy, error) { return burst{n: 8}, nil }})
		eng := core.NewEngine(pol, reg, &core.EngineOptions{Concurrency: 1})
		res, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "burst", Limits: c.limits})
		if err != nil {
			t.Fatal(err)
		}
		if n := sent.Load(); n != 1 || res.Stopped != core.StopBudget || res.Usage.LLMCalls != 1 {
			t.Errorf("%s: %d requests sent, %d calls charged, stopped %s; want 1, 1, budget", c.name, n, res.Usage.LLMCalls, res.Stopped)
		}
	}
}

// billed is a failed call the model spent tokens on.
type billed struct{ prompt, completion int64 }

func (b billed) Error() string                            { return "cut off while reasoning" }
func (b billed) BilledTokens() (prompt, completion int64) { return b.prompt, b.completion }

// A call that fails after the model spent tokens (a reply cut off while it
// reasoned) counts them against the token budget: they were lost, and a
// reasoning model cut off again and again ran on a spent budget.
func TestFailedCallsTokensAreCharged(t *testing.T) {
	t.Parallel()
	var sent atomic.Int64
	pol := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		sent.Add(1)
		return core.Completion{}, fmt.Errorf("llm bad response: %w", billed{prompt: 9, completion: 512})
	})
	reg := core.NewRegistry()
	reg.RegisterStrategy(core.StrategySpec{Name: "burst", New: func(core.Params) (core.Strategy, error) { return burst{n: 8}, nil }})
	eng := core.NewEngine(pol, reg, &core.EngineOptions{Concurrency: 1})
	res, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "burst", Limits: core.Limits{Tokens: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if n := sent.Load(); n != 2 || res.Usage.PromptTokens != 18 || res.Usage.CompletionTokens != 1024 || res.Usage.LLMCalls != 0 {
		t.Errorf("%d requests sent, usage %+v; want 2 (the second passes the budget), 18+1024 tokens, no calls (failed ones are refunded)", n, res.Usage)
	}
	// The trace's events account for those tokens too: a live run's usage
	// is counted from them.
	var prompt, completion int64
	for _, e := range res.Trace.Events {
		if e.Op == core.OpLLMCall && e.Get("error") != nil {
			p, _ := e.Get("prompt_tokens").(int64)
			c, _ := e.Get("completion_tokens").(int64)
			prompt, completion = prompt+p, completion+c
		}
	}
	if prompt != res.Usage.PromptTokens || completion != res.Usage.CompletionTokens {
		t.Errorf("failed llm_call events bill %d+%d tokens, usage %d+%d", prompt, completion, res.Usage.PromptTokens, res.Usage.CompletionTokens)
	}
}
