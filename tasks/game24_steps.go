package tasks

import (
	"errors"
	"strings"
)

// StepState is what a program can tell about the state a path of steps
// reaches, without asking a model.
type StepState struct {
	// Key names the sub-problem left: two paths with the same key face the
	// same problem from here on (Game of 24: the numbers left), so a search
	// expands and values it once.
	Key string
	// Done reports that no choice is left: the steps determine the final
	// answer (Game of 24: one number is left).
	Done bool
	// Answer is the answer the steps determine when Done ("" when they
	// determine none). It is checked like any other answer: the pack's
	// verifier decides whether it is right.
	Answer string
}

// StepChecker is implemented by packs whose steps a program can check, as a
// real deployment can: Game of 24 moves are exact arithmetic on the numbers
// left. Step-level searches use it to drop illegal steps, to merge paths that
// reach the same state and to finish paths whose steps determine the answer,
// all without LLM calls. It never says whether a state can still succeed:
// that is the value model's job.
type StepChecker interface {
	// CheckSteps replays steps (the path so far, without the problem) and
	// returns the state they reach. An error names the first illegal step;
	// ErrNotCheckable means the problem is not one the pack can check.
	CheckSteps(problem string, steps []string) (StepState, error)
}

// ErrNotCheckable is returned by CheckSteps for problems outside the pack's
// checker (Game of 24: a problem that is not four numbers).
var ErrNotCheckable = errors.New("problem cannot be checked step by step")

var _ StepChecker = Game24{}

// CheckSteps implements StepChecker: the moves are replayed with exact
// rational arithmetic (Game24Play). The key is the numbers left; one number
// left means the steps are done and their answer is the expression the
// moves built (right exactly when that number is 24). A step with a final
// answer ends the path: done, with that answer.
func (Game24) CheckSteps(problem string, steps []string) (StepState, error) {
	if _, ok := Game24Numbers(problem); !ok {
		return StepState{}, ErrNotCheckable
	}
	for i, s := range steps {
		if _, ok := ParseMove(s); ok {
			continue
		}
		if a, ok := (Game24{}).ExtractAnswer(s); ok {
			if _, err := Game24Play(problem, steps[:i]); err != nil {
				return StepState{}, err
			}
			return StepState{Key: "answer: " + (Game24{}).Normalize(a), Done: true, Answer: a}, nil
		}
	}
	st, err := Game24Play(problem, steps)
	if err != nil {
		return StepState{}, err
	}
	out := StepState{Key: "left: " + FormatNumbers(st.Nums)}
	if len(st.Nums) == 1 {
		out.Done, out.Answer = true, strings.TrimSpace(st.Exprs[0])
	}
	return out, nil
}
