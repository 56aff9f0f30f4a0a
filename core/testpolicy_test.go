package core_test

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/ponder-rlm/ponder/core"
)

// countingPolicy answers every request with reply(i) for choice i and counts
// the samples it produced.
type countingPolicy struct {
	calls atomic.Int64
	reply func(req core.CompletionRequest, i int) string
	err   error
}

func (p *countingPolicy) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	if err := ctx.Err(); err != nil {
		return core.Completion{}, err
	}
	if p.err != nil {
		return core.Completion{}, p.err
	}
	n := max(req.N, 1)
	p.calls.Add(int64(n))
	c := core.Completion{PromptTokens: 10, CompletionTokens: int64(5 * n)}
	for i := 0; i < n; i++ {
		text := fmt.Sprintf("step %d", i)
		if p.reply != nil {
			text = p.reply(req, i)
		}
		c.Choices = append(c.Choices, core.Choice{Text: text})
	}
	return c, nil
}
