package core_test

import (
	"errors"
	"sync"
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
