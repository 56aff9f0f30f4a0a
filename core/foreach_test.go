package core_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
)

// fiveCalls makes five one-call jobs through Env.ForEach, the early ones
// held back before their call: run concurrently, the late jobs would take
// the calls left first.
type fiveCalls struct{ done *[]int }

func (f fiveCalls) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	var mu sync.Mutex
	var errs [5]error
	env.ForEach(5, 1, func(i int) {
		time.Sleep(time.Duration(5-i) * 15 * time.Millisecond)
		if _, errs[i] = env.Complete(ctx, core.CompletionRequest{Messages: []core.Message{{Role: "user", Content: "x"}}}); errs[i] == nil {
			mu.Lock()
			*f.done = append(*f.done, i)
			mu.Unlock()
		}
	})
	return core.Outcome{}, errors.Join(errs[:]...)
}

// When the calls left cannot pay for every job, ForEach runs them in order,
// so which ones the budget cuts off does not depend on timing; with enough
// calls they run at once.
func TestForEachCutsOffInOrder(t *testing.T) {
	t.Parallel()
	answer := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{Choices: []core.Choice{{Text: "ok"}}}, nil
	})
	for _, tc := range []struct {
		calls int64
		want  []int
	}{
		{3, []int{0, 1, 2}},
		{5, []int{0, 1, 2, 3, 4}}, // all paid for (run at once: any order)
	} {
		var done []int
		reg := core.NewRegistry()
		reg.RegisterStrategy(core.StrategySpec{Name: "five", New: func(core.Params) (core.Strategy, error) { return fiveCalls{&done}, nil }})
		eng := core.NewEngine(answer, reg, nil)
		if _, err := eng.Solve(t.Context(), core.Task{Problem: "p", Strategy: "five", Limits: core.Limits{LLMCalls: tc.calls}}); err != nil {
			t.Fatal(err)
		}
		if tc.calls == 5 {
			slices.Sort(done)
		}
		if !slices.Equal(done, tc.want) {
			t.Errorf("%d calls: jobs %v got theirs, want %v", tc.calls, done, tc.want)
		}
	}
}
