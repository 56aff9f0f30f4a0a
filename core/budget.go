package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBudgetExhausted is returned (wrapped) by every metered operation once a
// limit of the run's Budget is reached. Strategies stop on it and return the
// best answer found so far.
var ErrBudgetExhausted = errors.New("budget exhausted")

// Usage counts what a run spent. LLMCalls counts generated samples: a request
// with n = 8 counts 8, as 8 requests with n = 1 would, so that compute is
// comparable whether or not the server supports n.
type Usage struct {
	LLMCalls         int64   `json:"llm_calls"`
	Requests         int64   `json:"requests"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	ToolCalls        int64   `json:"tool_calls"`
	Nodes            int64   `json:"nodes"`
	WallMS           float64 `json:"wall_ms"`
}

// Add returns u + v (WallMS is not summed: it is a duration, not a count).
func (u Usage) Add(v Usage) Usage {
	u.LLMCalls += v.LLMCalls
	u.Requests += v.Requests
	u.PromptTokens += v.PromptTokens
	u.CompletionTokens += v.CompletionTokens
	u.ToolCalls += v.ToolCalls
	u.Nodes += v.Nodes
	return u
}

// Limits bound a run's test-time compute. A zero field means no limit.
type Limits struct {
	LLMCalls     int64         `json:"llm_calls,omitempty"`
	Tokens       int64         `json:"tokens,omitempty"` // prompt + completion
	PromptTokens int64         `json:"prompt_tokens,omitempty"`
	OutputTokens int64         `json:"completion_tokens,omitempty"`
	ToolCalls    int64         `json:"tool_calls,omitempty"`
	WallTime     time.Duration `json:"wall_time,omitempty"`
	Nodes        int64         `json:"nodes,omitempty"`
	Depth        int           `json:"depth,omitempty"`
}

// Validate rejects negative limits.
func (l Limits) Validate() error {
	switch {
	case l.LLMCalls < 0:
		return fmt.Errorf("budget: llm calls must be positive, got %d", l.LLMCalls)
	case l.Tokens < 0 || l.PromptTokens < 0 || l.OutputTokens < 0:
		return fmt.Errorf("budget: token limits must be positive")
	case l.ToolCalls < 0:
		return fmt.Errorf("budget: tool calls must be positive, got %d", l.ToolCalls)
	case l.WallTime < 0:
		return fmt.Errorf("budget: wall time must be positive, got %s", l.WallTime)
	case l.Nodes < 0:
		return fmt.Errorf("budget: nodes must be positive, got %d", l.Nodes)
	case l.Depth < 0:
		return fmt.Errorf("budget: depth must be positive, got %d", l.Depth)
	}
	return nil
}

// Budget meters a run against its Limits. A child budget (Carve) charges
// every use to its ancestors too, so nested sub-searches share the parent's
// budget. It is safe for concurrent use.
type Budget struct {
	parent *Budget
	// lineage is the root first, ending with this budget: the order locks
	// are taken in. It never changes, so it is built once.
	lineage []*Budget
	limits  Limits
	start   time.Time
	// tokenLimited: a token limit bounds it or an ancestor, which
	// CheckTokens must look at before a request goes out.
	tokenLimited bool

	mu   sync.Mutex
	used Usage
}

// NewBudget returns a budget bounded by l.
func NewBudget(l Limits) *Budget {
	b := &Budget{limits: l, start: time.Now(), tokenLimited: l.tokenLimited()}
	b.lineage = []*Budget{b}
	return b
}

// Carve returns a child budget bounded by l and by what is left of b.
func (b *Budget) Carve(l Limits) *Budget {
	c := &Budget{parent: b, limits: l, start: time.Now(), tokenLimited: b.tokenLimited || l.tokenLimited()}
	c.lineage = append(append(make([]*Budget, 0, len(b.chain())+1), b.chain()...), c)
	return c
}

// Limits returns the limits b was created with.
func (b *Budget) Limits() Limits { return b.limits }

// Used returns what b (and its children) spent so far.
func (b *Budget) Used() Usage {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.used
	u.WallMS = float64(time.Since(b.start).Microseconds()) / 1000
	return u
}

// Remaining returns how many more LLM calls b allows (-1: unlimited).
func (b *Budget) Remaining() int64 {
	return b.remaining(func(l Limits, u Usage) (int64, int64) { return l.LLMCalls, u.LLMCalls })
}

// RemainingToolCalls returns how many more tool calls b allows (-1:
// unlimited).
func (b *Budget) RemainingToolCalls() int64 {
	return b.remaining(func(l Limits, u Usage) (int64, int64) { return l.ToolCalls, u.ToolCalls })
}

// remaining is the least that b and its ancestors have left of the limit
// and use that of picks (a limit of 0 is none; -1: unlimited).
func (b *Budget) remaining(of func(Limits, Usage) (limit, used int64)) int64 {
	rem := int64(-1)
	for cur := b; cur != nil; cur = cur.parent {
		cur.mu.Lock()
		if limit, used := of(cur.limits, cur.used); limit > 0 {
			if r := max(limit-used, 0); rem < 0 || r < rem {
				rem = r
			}
		}
		cur.mu.Unlock()
	}
	return rem
}

// Deadline returns the earliest wall-time deadline of b and its ancestors.
func (b *Budget) Deadline() (time.Time, bool) {
	var d time.Time
	for cur := b; cur != nil; cur = cur.parent {
		if cur.limits.WallTime > 0 {
			t := cur.start.Add(cur.limits.WallTime)
			if d.IsZero() || t.Before(d) {
				d = t
			}
		}
	}
	return d, !d.IsZero()
}

// ReserveCalls charges n LLM calls, or fails with ErrBudgetExhausted and
// charges nothing when any ancestor's call or token limit is reached.
func (b *Budget) ReserveCalls(n int64) error {
	chain := b.chain()
	for _, c := range chain {
		c.mu.Lock()
	}
	defer func() {
		for _, c := range chain {
			c.mu.Unlock()
		}
	}()
	for _, c := range chain {
		if l, u := c.limits, c.used; l.LLMCalls > 0 && u.LLMCalls+n > l.LLMCalls {
			return fmt.Errorf("%w: %d of %d llm calls used", ErrBudgetExhausted, u.LLMCalls, l.LLMCalls)
		}
		if err := c.tokensSpentLocked(); err != nil {
			return err
		}
	}
	for _, c := range chain {
		c.used.LLMCalls += n
		c.used.Requests++
	}
	return nil
}

// CheckTokens fails with ErrBudgetExhausted when any ancestor's token
// limit is reached. A request's tokens are known only once it returns, so
// ReserveCalls checks them when a request is charged and CheckTokens again
// when it is about to go out: requests that waited for an LLM slot behind
// others would else all be sent on a spent token budget.
func (b *Budget) CheckTokens() error {
	if !b.tokenLimited {
		return nil
	}
	for cur := b; cur != nil; cur = cur.parent {
		cur.mu.Lock()
		err := cur.tokensSpentLocked()
		cur.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// tokensSpentLocked says which token limit of b is reached, if any.
func (b *Budget) tokensSpentLocked() error {
	l, u := b.limits, b.used
	switch {
	case l.Tokens > 0 && u.PromptTokens+u.CompletionTokens >= l.Tokens:
		return fmt.Errorf("%w: %d of %d tokens used", ErrBudgetExhausted, u.PromptTokens+u.CompletionTokens, l.Tokens)
	case l.PromptTokens > 0 && u.PromptTokens >= l.PromptTokens:
		return fmt.Errorf("%w: %d of %d prompt tokens used", ErrBudgetExhausted, u.PromptTokens, l.PromptTokens)
	case l.OutputTokens > 0 && u.CompletionTokens >= l.OutputTokens:
		return fmt.Errorf("%w: %d of %d completion tokens used", ErrBudgetExhausted, u.CompletionTokens, l.OutputTokens)
	}
	return nil
}

func (l Limits) tokenLimited() bool { return l.Tokens > 0 || l.PromptTokens > 0 || l.OutputTokens > 0 }

// RefundCalls gives back n of the calls reserved for a request that was
// served with fewer samples than it asked for.
func (b *Budget) RefundCalls(n int64) { b.refund(n, 0) }

// RefundRequest gives back a request and its n calls: it never reached
// the model, or the model failed it.
func (b *Budget) RefundRequest(n int64) { b.refund(n, 1) }

func (b *Budget) refund(calls, requests int64) {
	for cur := b; cur != nil; cur = cur.parent {
		cur.mu.Lock()
		cur.used.LLMCalls -= calls
		cur.used.Requests -= requests
		cur.mu.Unlock()
	}
}

// AddTokens records tokens reported by the model.
func (b *Budget) AddTokens(prompt, completion int64) {
	for cur := b; cur != nil; cur = cur.parent {
		cur.mu.Lock()
		cur.used.PromptTokens += prompt
		cur.used.CompletionTokens += completion
		cur.mu.Unlock()
	}
}

// ReserveToolCall charges one tool call.
func (b *Budget) ReserveToolCall() error {
	return b.reserve(func(l Limits, u *Usage) error {
		if l.ToolCalls > 0 && u.ToolCalls+1 > l.ToolCalls {
			return fmt.Errorf("%w: %d of %d tool calls used", ErrBudgetExhausted, u.ToolCalls, l.ToolCalls)
		}
		return nil
	}, func(u *Usage) { u.ToolCalls++ })
}

// ReserveNode charges one new node at the given depth.
func (b *Budget) ReserveNode(depth int) error {
	return b.reserve(func(l Limits, u *Usage) error {
		if l.Nodes > 0 && u.Nodes+1 > l.Nodes {
			return fmt.Errorf("%w: %d of %d nodes used", ErrBudgetExhausted, u.Nodes, l.Nodes)
		}
		if l.Depth > 0 && depth > l.Depth {
			return fmt.Errorf("%w: depth %d exceeds the limit of %d", ErrBudgetExhausted, depth, l.Depth)
		}
		return nil
	}, func(u *Usage) { u.Nodes++ })
}

func (b *Budget) reserve(check func(Limits, *Usage) error, charge func(*Usage)) error {
	chain := b.chain()
	for _, c := range chain {
		c.mu.Lock()
	}
	defer func() {
		for _, c := range chain {
			c.mu.Unlock()
		}
	}()
	for _, c := range chain {
		if err := check(c.limits, &c.used); err != nil {
			return err
		}
	}
	for _, c := range chain {
		charge(&c.used)
	}
	return nil
}

// chain returns b and its ancestors, root first, so locks are always taken
// in the same order.
func (b *Budget) chain() []*Budget {
	if b.lineage == nil {
		return []*Budget{b} // a zero Budget: NewBudget and Carve set lineage
	}
	return b.lineage
}

// Limiter bounds how many LLM requests run at once and measures how busy its
// slots were, for utilisation benchmarks. Speculative requests
// (AcquireIdle) take a slot only when no other request waits for one.
type Limiter struct {
	sem chan struct{}
	// waiting counts the requests blocked in Acquire; idleWaiting those
	// blocked in AcquireIdle, which wait on freed (closed at a release).
	waiting, idleWaiting atomic.Int64

	mu       sync.Mutex
	inUse    int
	busy     time.Duration // integral of slots in use over time
	lastMark time.Time
	freed    chan struct{}
}

// NewLimiter returns a limiter with n slots (n < 1 means 1).
func NewLimiter(n int) *Limiter {
	if n < 1 {
		n = 1
	}
	return &Limiter{sem: make(chan struct{}, n), lastMark: time.Now()}
}

// Slots is the number of concurrent requests allowed.
func (l *Limiter) Slots() int { return cap(l.sem) }

// Acquire waits for a free slot or for ctx to end.
func (l *Limiter) Acquire(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
		l.mark(+1)
		return nil
	default:
	}
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	select {
	case l.sem <- struct{}{}:
		l.mark(+1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AcquireIdle is Acquire for a speculative request: it takes a slot only
// when one is free and no Acquire waits, so that work that may be thrown
// away never delays work that will not. Once confirmed is closed (the
// work is needed after all) it waits as Acquire does.
func (l *Limiter) AcquireIdle(ctx context.Context, confirmed <-chan struct{}) error {
	l.idleWaiting.Add(1)
	defer l.idleWaiting.Add(-1)
	for {
		l.mu.Lock()
		if l.freed == nil {
			l.freed = make(chan struct{})
		}
		freed := l.freed
		l.mu.Unlock()
		// Try after taking the channel: a release after this try closes
		// it, so none is missed.
		if l.waiting.Load() == 0 {
			select {
			case l.sem <- struct{}{}:
				l.mark(+1)
				return nil
			default:
			}
		}
		select {
		case <-freed:
		case <-confirmed:
			return l.Acquire(ctx)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release frees a slot taken by Acquire or AcquireIdle.
func (l *Limiter) Release() {
	l.mark(-1)
	<-l.sem
	if l.idleWaiting.Load() > 0 {
		l.mu.Lock()
		if l.freed != nil {
			close(l.freed)
			l.freed = nil
		}
		l.mu.Unlock()
	}
}

func (l *Limiter) mark(delta int) {
	l.mu.Lock()
	now := time.Now()
	l.busy += time.Duration(l.inUse) * now.Sub(l.lastMark)
	l.lastMark = now
	l.inUse += delta
	l.mu.Unlock()
}

// BusyTime returns the total slot-time spent in requests so far: with every
// slot busy for a second it grows by Slots() seconds.
func (l *Limiter) BusyTime() time.Duration {
	l.mark(0)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.busy
}
