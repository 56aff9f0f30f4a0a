package strategy_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// TestResultSaysWhetherThePackAcceptsTheAnswer: a strategy that never asks
// the verifier (cot here) still tells the user when the pack's own check
// rejects its answer, and the trace keeps the verdict.
func TestResultSaysWhetherThePackAcceptsTheAnswer(t *testing.T) {
	yes, no := true, false
	for _, c := range []struct {
		name, pack, problem, truth, reply string
		want                              *bool
	}{
		{"game24 right", "game24", "4 9 10 13", "", `\boxed{(10 - 4) * (13 - 9)}`, &yes},
		{"game24 wrong", "game24", "4 9 10 13", "", `\boxed{(10 - 4) * (13 - 10)}`, &no},
		{"gsm8k against its truth", "gsm8k", "What is 6 * 12?", "72", `\boxed{72}`, &yes},
		{"gsm8k wrong", "gsm8k", "What is 6 * 12?", "72", `\boxed{70}`, &no},
		{"gsm8k with no truth", "gsm8k", "What is 6 * 12?", "", `\boxed{70}`, nil},
		{"generic pack", "generic", "What is 6 * 12?", "72", `\boxed{70}`, nil},
		{"no answer", "game24", "4 9 10 13", "", "I do not know.", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			pol := core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
				return core.Completion{Choices: []core.Choice{{Text: c.reply}}}, nil
			})
			res, err := newEngine(pol).Solve(context.Background(), core.Task{Problem: c.problem, Pack: c.pack, Truth: c.truth, Strategy: "cot"})
			if err != nil || res.Stopped != core.StopDone {
				t.Fatalf("solve: %v %s %s", err, res.Stopped, res.Error)
			}
			if got := fmtBool(res.Verified); got != fmtBool(c.want) {
				t.Fatalf("verified %s, want %s (answer %q)", got, fmtBool(c.want), res.Answer)
			}
			if fmtBool(res.Trace.Verified) != fmtBool(c.want) {
				t.Errorf("trace verified %s, want %s", fmtBool(res.Trace.Verified), fmtBool(c.want))
			}
			warned := strings.Contains(strings.Join(res.Warnings, "\n"), "the answer is wrong: ")
			if warned != (c.want != nil && !*c.want) {
				t.Errorf("warnings %q: a rejected answer, and only one, says it is wrong", res.Warnings)
			}
		})
	}
}

func fmtBool(b *bool) string {
	switch {
	case b == nil:
		return "nil"
	case *b:
		return "true"
	}
	return "false"
}

// A problem the Game of 24 pack cannot read is refused before the search:
// forced onto "Use 4 9 10 13 to make 24", a search answered "70" with
// nothing checked and no warning.
func TestGame24PackRefusesAProblemItCannotRead(t *testing.T) {
	t.Parallel()
	pol := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{Choices: []core.Choice{{Text: `\boxed{70}`}}}, nil
	})
	eng := newEngine(pol)
	_, err := eng.Solve(context.Background(), core.Task{Problem: "Use 4 9 10 13 to make 24", Pack: "game24", Strategy: "cot"})
	if !errors.Is(err, core.ErrInvalidTask) || !strings.Contains(err.Error(), `the game24 pack cannot pose this problem: a Game of 24 puzzle is its four numbers`) {
		t.Errorf("solve: %v; want an invalid task", err)
	}
	if err := eng.Validate(core.Task{Problem: "Use 4 9 10 13 to make 24", Pack: "game24"}); !errors.Is(err, core.ErrInvalidTask) {
		t.Errorf("validate: %v; want an invalid task", err)
	}
	if res, err := eng.Solve(context.Background(), core.Task{Problem: " 4 9 10 13 ", Pack: "game24", Strategy: "cot"}); err != nil || res.Verified == nil {
		t.Errorf("four numbers: %v, verified %v", err, res.Verified)
	}
}
