package server

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/llm/sim"
)

// Each solve's progress goes out on its own POST stream, as MCP
// 2025-06-18 wants of a POST stream's messages (they relate to its
// request): six solves at once on one session each with its own token got
// one another's progress (request 1's stream carried tok1, tok3, tok1),
// as mcp-go hands a session's notifications to whichever stream takes
// them first.
func TestProgressGoesOutOnItsRequestsStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 20 * time.Millisecond}})
	c := e.rpc(t)
	ctx := ctxTimeout(t, 60*time.Second)
	const n = 6
	var wg sync.WaitGroup
	got := make([][]string, n)
	results := make([]bool, n)
	for i := range n {
		msgs := c.streamCall(ctx, 700+i, "solve", map[string]any{"problem": gsm8kProblem, "strategy": "self-consistency",
			"params": map[string]any{"k": 8}, "budget": map[string]any{"llm_calls": 8}}, fmt.Sprintf("tok%d", i+1))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				if m["method"] == "notifications/progress" {
					got[i] = append(got[i], fmt.Sprint(m["params"].(map[string]any)["progressToken"]))
				}
				if m["id"] == float64(700+i) && m["result"] != nil {
					results[i] = true
				}
			}
		}()
	}
	wg.Wait()
	for i := range n {
		want := fmt.Sprintf("tok%d", i+1)
		if !results[i] {
			t.Errorf("request %d: no result", i+1)
		}
		if len(got[i]) == 0 {
			t.Errorf("request %d's stream carried no progress", i+1)
		}
		for _, tok := range got[i] {
			if tok != want {
				t.Errorf("request %d's stream carried progress for %s: %v", i+1, tok, got[i])
				break
			}
		}
	}
}
