package core

import (
	"context"
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
	go func() {
		if l.AcquireIdle(ctx, nil) == nil {
			order <- "speculative"
		}
	}()
	waitUntil(t, "the speculative request waits", func() bool { return l.idleWaiting.Load() == 1 })
	go func() {
		if l.Acquire(ctx) == nil {
			order <- "regular"
		}
	}()
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
	go func() {
		if l.AcquireIdle(ctx, nil) == nil {
			order <- "speculative"
		}
	}()
	waitUntil(t, "the speculative request waits", func() bool { return l.idleWaiting.Load() == 1 })
	confirmed := make(chan struct{})
	go func() {
		if l.AcquireIdle(ctx, confirmed) == nil {
			order <- "confirmed"
		}
	}()
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
