package eval

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/eval/mathequiv"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/tasks"
)

// Grade is the verdict on one answer.
type Grade struct {
	Correct bool   `json:"correct"`
	Detail  string `json:"detail,omitempty"`
}

// Grader grades answers to a dataset's items. An error means the answer
// could not be graded (the sandbox failed), not that it is wrong.
type Grader interface {
	Grade(ctx context.Context, it Item, answer string) (Grade, error)
}

// GraderFunc adapts a function to Grader.
type GraderFunc func(ctx context.Context, it Item, answer string) (Grade, error)

// Grade calls f.
func (f GraderFunc) Grade(ctx context.Context, it Item, answer string) (Grade, error) {
	return f(ctx, it, answer)
}

// GraderOptions give graders what they need from outside.
type GraderOptions struct {
	// UnitTests returns the unit-test verifier (core/evaluator's unittest,
	// with the python sandbox) for a HumanEval entry point. Nil: the
	// humaneval grader fails with ErrNoSandbox.
	UnitTests func(entryPoint string) (core.Evaluator, error)
}

// ErrNoSandbox is returned when HumanEval is graded without a sandbox.
var ErrNoSandbox = errors.New("humaneval needs the python sandbox to run the unit tests (bubblewrap and python3: " +
	"`bash scripts/deps.sh`, then check `ponder tools list`)")

var graders = map[string]func(GraderOptions) Grader{
	"gsm8k":     func(GraderOptions) Grader { return GraderFunc(gradeGSM8K) },
	"math":      func(GraderOptions) Grader { return GraderFunc(gradeMATH) },
	"game24":    func(GraderOptions) Grader { return GraderFunc(gradeGame24) },
	"exact":     func(GraderOptions) Grader { return GraderFunc(gradeExact) },
	"humaneval": func(o GraderOptions) Grader { return unitTestGrader{o.UnitTests} },
}

// NewGrader returns the named grader: gsm8k (the number must equal the
// integer truth), math (mathequiv.Equal), game24 (the expression uses the
// four numbers once each and makes exactly 24), humaneval (the program
// passes the item's unit tests in the sandbox), exact (the same text,
// ignoring case and surrounding space).
func NewGrader(name string, o *GraderOptions) (Grader, error) {
	f, ok := graders[name]
	if !ok {
		return nil, fmt.Errorf("unknown grader %q (known: %s)", name, strings.Join(Graders(), ", "))
	}
	var opts GraderOptions
	if o != nil {
		opts = *o
	}
	return f(opts), nil
}

var noAnswer = Grade{Detail: "no answer"}

func gradeGSM8K(_ context.Context, it Item, answer string) (Grade, error) {
	if strings.TrimSpace(answer) == "" {
		return noAnswer, nil
	}
	want, ok := numberValue(it.Truth)
	if !ok {
		return Grade{}, fmt.Errorf("truth %q is not a number", it.Truth)
	}
	got, ok := numberValue(answer)
	if !ok {
		return Grade{Detail: fmt.Sprintf("answer %q is not a number", text.Clip(strings.TrimSpace(answer), 80))}, nil
	}
	if got.Cmp(want) != 0 {
		return Grade{Detail: "want " + want.RatString() + ", got " + got.RatString()}, nil
	}
	return Grade{Correct: true}, nil
}

// numberValue reads a GSM8K answer as an exact number: "$1,000.00",
// "18 dollars", "x = 18", "\boxed{72}" (tasks.ParseNumber). An answer
// with several numbers ("12 - 4 = 8" aside, whose right side counts) has
// none: grading "2 hours and 30 minutes" as 2 would be a guess.
func numberValue(s string) (*big.Rat, bool) {
	n, ok := tasks.ParseNumber(s)
	if !ok {
		return nil, false
	}
	return new(big.Rat).SetString(n)
}

func gradeMATH(_ context.Context, it Item, answer string) (Grade, error) {
	if strings.TrimSpace(answer) == "" {
		return noAnswer, nil
	}
	if mathequiv.Equal(answer, it.Truth) {
		return Grade{Correct: true}, nil
	}
	return Grade{Detail: "want " + text.Clip(strings.TrimSpace(it.Truth), 80)}, nil
}

func gradeGame24(_ context.Context, it Item, answer string) (Grade, error) {
	if strings.TrimSpace(answer) == "" {
		return noAnswer, nil
	}
	if err := tasks.Check24(it.Problem, answer); err != nil {
		return Grade{Detail: err.Error()}, nil
	}
	return Grade{Correct: true}, nil
}

func gradeExact(_ context.Context, it Item, answer string) (Grade, error) {
	if strings.TrimSpace(answer) == "" {
		return noAnswer, nil
	}
	if strings.EqualFold(strings.TrimSpace(answer), strings.TrimSpace(it.Truth)) {
		return Grade{Correct: true}, nil
	}
	return Grade{Detail: "want " + text.Clip(strings.TrimSpace(it.Truth), 80)}, nil
}

// unitTestGrader runs a program with the item's tests (Extra["test"],
// calling check(Extra["entry_point"])) through the unit-test verifier.
type unitTestGrader struct {
	unitTests func(entryPoint string) (core.Evaluator, error)
}

func (u unitTestGrader) Grade(ctx context.Context, it Item, answer string) (Grade, error) {
	if u.unitTests == nil {
		return Grade{}, ErrNoSandbox
	}
	if strings.TrimSpace(answer) == "" {
		return noAnswer, nil
	}
	tests, entry := it.Extra["test"], it.Extra["entry_point"]
	if tests == "" {
		return Grade{}, fmt.Errorf("item %s has no unit tests", it.ID)
	}
	ev, err := u.unitTests(entry)
	if err != nil {
		return Grade{}, err
	}
	content := "```python\n" + answer + "\n```"
	res, err := ev.Evaluate(ctx, core.EvalRequest{
		Task: core.Task{Problem: it.Problem, Pack: "humaneval", Truth: tests},
		Path: []core.Node{{Kind: core.KindAnswer, Content: content, Answer: answer, Terminal: true}},
	})
	switch {
	case errors.Is(err, evaluator.ErrNoSandbox):
		return Grade{}, ErrNoSandbox
	case errors.Is(err, core.ErrNotApplicable):
		return Grade{Detail: "no program in the answer"}, nil
	case err != nil:
		return Grade{}, fmt.Errorf("run unit tests: %w", err)
	}
	if res.Correct == nil {
		return Grade{}, fmt.Errorf("run unit tests: no verdict")
	}
	return Grade{Correct: *res.Correct, Detail: res.Detail}, nil
}
