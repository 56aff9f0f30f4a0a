package core

import (
	"context"
	"errors"
	"testing"
	"time"
)

// waitUntil polls cond for up to two seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// acquireInto takes a slot with acquire in a goroutine of its own and then
// sends name on order.
func acquireInto(order chan<- string, name string, acquire func() error) {
	go func() {
		if acquire() == nil {
			order <- name
		}
	}()
}

// A speculative request takes a slot only when nobody else waits for one:
// the regular request that waits gets the freed slot first, and the
// speculative one the next.
func TestLimiterServesSpeculativeRequestsLast(t *testing.T) {
	t.Parallel()
	l := NewLimiter(1)
	ctx := t.Context()
	if err := l.AcquireIdle(ctx, nil); err != nil { // a free slot, nobody waiting: taken at once
		t.Fatal(err)
	}
	order := make(chan string, 2)
	acquireInto(order, "speculative", func() error { return l.AcquireIdle(ctx, nil) })
	waitUntil(t, "the speculative request waits", func() bool { return l.idleWaiting.Load() == 1 })
	acquireInto(order, "regular", func() error { return l.Acquire(ctx) })
	waitUntil(t, "the regular request waits", func() bool { return l.waiting.Load() == 1 })
	l.Release()
	if got := <-order; got != "regular" {
		t.Fatalf("the freed slot went to the %s request", got)
	}
	select {
	case got := <-order:
		t.Fatalf("the %s request got a slot while the regular one holds the only one", got)
	case <-time.After(20 * time.Millisecond):
	}
	l.Release()
	if got := <-order; got != "speculative" {
		t.Fatalf("second slot went to the %s request", got)
	}
	l.Release()
}

// A speculative request that gives up takes no slot.
func TestLimiterSpeculativeRequestCanBeCancelled(t *testing.T) {
	t.Parallel()
	l := NewLimiter(1)
	if err := l.Acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- l.AcquireIdle(ctx, nil) }()
	waitUntil(t, "the speculative request waits", func() bool { return l.idleWaiting.Load() == 1 })
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("cancelled speculative request returned %v", err)
	}
	l.Release()
	if err := l.AcquireIdle(t.Context(), nil); err != nil { // the slot is free again
		t.Fatal(err)
	}
	l.Release()
}

// A speculative request confirmed while it waits waits like any other:
// it gets the next slot before a speculative one.
func TestLimiterConfirmedSpeculationWaitsAsRegular(t *testing.T) {
	t.Parallel()
	l := NewLimiter(1)
	ctx := t.Context()
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 2)
	acquireInto(order, "speculative", func() error { return l.AcquireIdle(ctx, nil) })
	waitUntil(t, "the speculative request waits", func() bool { return l.idleWaiting.Load() == 1 })
	confirmed := make(chan struct{})
	acquireInto(order, "confirmed", func() error { return l.AcquireIdle(ctx, confirmed) })
	waitUntil(t, "both speculative requests wait", func() bool { return l.idleWaiting.Load() == 2 })
	close(confirmed)
	waitUntil(t, "the confirmed request waits as a regular one", func() bool { return l.waiting.Load() == 1 })
	l.Release()
	if got := <-order; got != "confirmed" {
		t.Fatalf("the freed slot went to the %s request", got)
	}
	l.Release()
	if got := <-order; got != "speculative" {
		t.Fatalf("the second slot went to the %s request", got)
	}
	l.Release()
}

// A speculative request is charged to the budget only once it has a slot:
// while it waits, the needed requests of its run can still use the budget.
func TestSpeculativeCallsAreChargedOnceTheyHaveASlot(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	pol := PolicyFunc(func(ctx context.Context, req CompletionRequest) (Completion, error) {
		if req.Purpose == "hold" {
			<-release
		}
		return Completion{Choices: []Choice{{Text: "ok"}}}, nil
	})
	type result struct {
		who string
		err error
	}
	results := make(chan result, 3)
	var eng *Engine
	reg := NewRegistry()
	reg.RegisterStrategy(StrategySpec{Name: "spec", New: func(Params) (Strategy, error) {
		return StrategyFunc(func(ctx context.Context, env *Env) (Outcome, error) {
			call := func(who string, ctx context.Context, purpose string) {
				_, err := env.Complete(ctx, CompletionRequest{Purpose: purpose})
				results <- result{who, err}
			}
			go call("held", ctx, "hold") // takes the only slot and 1 of the 2 calls
			waitUntil(t, "the first call holds the slot", func() bool { return len(eng.limiter.sem) == 1 })
			go call("speculative", NewSpeculation().Context(ctx), "spec")
			waitUntil(t, "the speculative call waits", func() bool { return eng.limiter.idleWaiting.Load() == 1 })
			go call("needed", ctx, "need") // the second call: the budget is still there for it
			waitUntil(t, "the needed call is charged", func() bool { return env.Budget.Used().LLMCalls == 2 })
			close(release)
			got := map[string]error{}
			for range 3 {
				r := <-results
				got[r.who] = r.err
			}
			if got["held"] != nil || got["needed"] != nil {
				t.Errorf("needed calls failed: %v", got)
			}
			if !errors.Is(got["speculative"], ErrBudgetExhausted) {
				t.Errorf("speculative call, with the budget spent when it got a slot: %v", got["speculative"])
			}
			return Outcome{}, nil
		}), nil
	}})
	eng = NewEngine(pol, reg, &EngineOptions{Concurrency: 1})
	res, err := eng.Solve(t.Context(), Task{Problem: "p", Strategy: "spec", Limits: Limits{LLMCalls: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Usage.LLMCalls != 2 {
		t.Errorf("%d calls charged, want the 2 that were made", res.Usage.LLMCalls)
	}
}
