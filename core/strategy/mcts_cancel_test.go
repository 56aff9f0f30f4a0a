package strategy_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// Parallel MCTS cancelled (Ctrl-C, --timeout) while one expansion's two
// answers are being valued and another expansion is still generating
// returns an answer it found: it returned none, though the trace held
// both (an expansion cancelled in its generation stops the search first,
// and the answers whose valuation the stop cancelled were dropped).
func TestMCTSCancelledWhileValuingKeepsTheAnswersFound(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var depth1 atomic.Int64
	var valuing, generating sync.WaitGroup
	valuing.Add(1)
	generating.Add(1)
	var vOnce, gOnce sync.Once
	go func() { valuing.Wait(); generating.Wait(); cancel() }()
	pol := core.PolicyFunc(func(c context.Context, req core.CompletionRequest) (core.Completion, error) {
		id, _ := tasks.Identify(req.Messages)
		if id.Kind == tasks.KindValue {
			if len(id.Steps) < 2 {
				return core.Completion{Choices: []core.Choice{{Text: "Score: 6"}}}, nil
			}
			vOnce.Do(valuing.Done)
			<-c.Done()
			time.Sleep(50 * time.Millisecond) // the reply to the cancelled request comes back late
			return core.Completion{}, c.Err()
		}
		var out core.Completion
		switch len(id.Steps) {
		case 0:
			for i := 0; i < max(req.N, 1); i++ {
				out.Choices = append(out.Choices, core.Choice{Text: fmt.Sprintf("step 1.%d", i)})
			}
		default:
			if depth1.Add(1) > 1 {
				gOnce.Do(generating.Done)
				<-c.Done()
				return core.Completion{}, c.Err()
			}
			for i := 0; i < max(req.N, 1); i++ {
				out.Choices = append(out.Choices, core.Choice{Text: fmt.Sprintf("so \\boxed{%d}", 42+i)})
			}
		}
		return out, nil
	})
	res, err := newEngine(pol).Solve(ctx, core.Task{Problem: "q", Strategy: "mcts", Params: core.Params{"parallel": 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopCancelled || (res.Answer != "42" && res.Answer != "43") {
		t.Fatalf("stopped %s, answer %q; want cancelled with 42 or 43, the answers found", res.Stopped, res.Answer)
	}
}
