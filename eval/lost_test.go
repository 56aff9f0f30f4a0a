package eval

import (
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// Calls the search gave up on are no failures of the LLM, whether the
// trace says so in the cancelled field or (traces written before it) only
// in the error's text.
func TestCountLLMLossLeavesOutCallsTheSearchGaveUp(t *testing.T) {
	t.Parallel()
	call := func(d any) core.Event { return core.Event{Op: core.OpLLMCall, Data: d} }
	tr := &core.Trace{Events: []core.Event{
		call(&core.LLMCallData{Purpose: "generate", N: 4}),
		call(&core.LLMCallFailure{Purpose: "generate", N: 2, Error: "upstream said 500"}),
		call(&core.LLMCallFailure{Purpose: "value", N: 1, Error: "request abandoned", Cancelled: true}),
		call(map[string]any{"purpose": "value", "n": 3.0, "error": "llm call (value): context deadline exceeded"}),
		call(map[string]any{"purpose": "value", "n": 1.0, "error": "connection reset", "cancelled": false}),
		call(map[string]any{"purpose": "value", "n": 5.0, "error": "stopped", "cancelled": true}),
		{Op: core.OpInfo},
	}}
	got := countLLMLoss(tr)
	if got.ok != 4 || got.failed != 3 || got.first != "upstream said 500" {
		t.Errorf("countLLMLoss = %+v, want 4 answered, 3 failed, the first failure's error", got)
	}
}
