// Package evaluator holds Ponder's built-in evaluators: value models, process
// and outcome reward models, and programmatic verifiers, all behind
// core.Evaluator. Register adds them to a core.Registry by name.
package evaluator

import (
	"context"
	"errors"
	"fmt"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// Register adds the built-in evaluators to reg.
func Register(reg *core.Registry) {
	for _, f := range builtins {
		reg.RegisterEvaluator(f())
	}
	for _, f := range composites {
		reg.RegisterEvaluator(f(reg))
	}
}

var builtins = []func() core.EvaluatorSpec{judgeSpec, verifierSpec}

// composites are evaluators built from others by name (combine.go): they
// look their parts up in the registry they are registered in.
var composites []func(reg *core.Registry) core.EvaluatorSpec

// Judge is an LLM-as-judge outcome reward model: it asks the run's policy to
// grade the path and maps its 1-10 score onto [-1, 1].
type Judge struct {
	Temperature float64
}

var _ core.Evaluator = Judge{}

func judgeSpec() core.EvaluatorSpec {
	return core.EvaluatorSpec{
		Name:    "judge",
		Summary: "LLM-as-judge: the policy grades the solution from 1 to 10, mapped onto [-1, 1] (an outcome reward)",
		Params: []core.ParamSpec{{Name: "temperature", Type: core.ParamFloat, Default: 0.0,
			Description: "temperature of the grading call", Min: core.Bound(0), Max: core.Bound(2)}},
		New: func(p core.Params) (core.Evaluator, error) { return Judge{Temperature: p.Float("temperature")}, nil },
	}
}

// PathFree implements core.PathFree.
func (Judge) PathFree() bool { return true }

// PathFree implements core.PathFree.
func (Verifier) PathFree() bool { return true }

// Evaluate implements core.Evaluator.
func (j Judge) Evaluate(ctx context.Context, req core.EvalRequest) (core.Evaluation, error) {
	if req.Policy == nil {
		return core.Evaluation{}, errors.New("judge: no policy to ask")
	}
	t := j.Temperature
	c, err := req.Policy.Complete(ctx, core.CompletionRequest{
		Messages: tasks.JudgePrompt(req.Task.Problem, PathSteps(req)), N: 1, Temperature: &t,
		MaxTokens: 256, Purpose: "judge",
	})
	if err != nil {
		return core.Evaluation{}, err
	}
	if len(c.Choices) == 0 {
		return core.Evaluation{}, fmt.Errorf("judge: %w: no choices", core.ErrLLMBadResponse)
	}
	s, ok := tasks.ParseJudgeScore(c.Choices[0].Text)
	if !ok {
		return core.Evaluation{}, fmt.Errorf("judge: reply has no \"Score: N\" with N in 1..10")
	}
	return core.Evaluation{Score: s, Kind: core.ScoreORM}, nil
}

// Verifier checks a final answer with the task pack's verifier against the
// task's ground truth: 1 when right, -1 when wrong. It is not applicable
// without an answer, a verifying pack or (for packs that need one) a truth.
type Verifier struct {
	Pack core.Pack
}

func verifierSpec() core.EvaluatorSpec {
	return core.EvaluatorSpec{
		Name:    "verifier",
		Summary: "programmatic check of the final answer by the task pack (exact numeric answer, Game of 24, unit tests): 1 right, -1 wrong",
		New:     func(core.Params) (core.Evaluator, error) { return Verifier{}, nil },
	}
}

// Evaluate implements core.Evaluator.
func (v Verifier) Evaluate(ctx context.Context, req core.EvalRequest) (core.Evaluation, error) {
	pack := v.Pack
	if pack == nil {
		p, err := tasks.Get(req.Task.Pack)
		if err != nil {
			return core.Evaluation{}, err
		}
		pack = p
	}
	ver, ok := pack.(core.Verifier)
	last, has := req.LastNode()
	if !ok || !has {
		return core.Evaluation{}, core.ErrNotApplicable
	}
	if last.Answer == "" {
		return core.Evaluation{}, core.ErrNotApplicable
	}
	correct, applicable := ver.Verify(req.Task.Problem, last.Answer, req.Task.Truth)
	if !applicable {
		return core.Evaluation{}, core.ErrNotApplicable
	}
	score := -1.0
	if correct {
		score = 1
	}
	return core.Evaluation{Score: score, Kind: core.ScoreVerifier, Correct: &correct}, nil
}
