// Command game24 is an example Ponder evaluator plugin: a Game of 24
// verifier. It reads the expression in a final answer, checks that it uses
// each of the problem's four numbers exactly once, and evaluates it with
// exact rational arithmetic (so 8 / (3 - 8 / 3) is exactly 24). It scores a
// correct answer 1 and a wrong one -1, and is not applicable to steps
// without a final answer.
package main

import (
	"context"

	"github.com/ponder-rlm/ponder/sdk"
)

// Verifier is the evaluator.
type Verifier struct{}

// Evaluate implements sdk.Evaluator.
func (Verifier) Evaluate(_ context.Context, req sdk.EvalRequest) (sdk.Evaluation, error) {
	if len(req.Path) == 0 {
		return sdk.Evaluation{}, sdk.ErrNotApplicable
	}
	last := req.Path[len(req.Path)-1]
	expr := last.Answer
	if expr == "" {
		return sdk.Evaluation{}, sdk.ErrNotApplicable
	}
	nums, err := Numbers(req.Task.Problem)
	if err != nil {
		return sdk.Evaluation{}, sdk.ErrNotApplicable
	}
	ok, detail := Check(nums, expr, req.Params.Int("target"))
	score := -1.0
	if ok {
		score = 1
	}
	return sdk.Evaluation{Score: score, Kind: "verifier", Correct: &ok, Detail: detail}, nil
}

func main() {
	sdk.Serve(sdk.Plugin{
		Name:    "game24-verifier",
		Version: "1.0.0",
		Summary: "Game of 24 verifier: checks the final expression uses the four numbers once and equals 24 exactly (1 right, -1 wrong)",
		Params: []sdk.ParamSpec{{Name: "target", Type: "int", Default: int64(24),
			Description: "the value the expression must reach"}},
		Evaluator: Verifier{},
	})
}
