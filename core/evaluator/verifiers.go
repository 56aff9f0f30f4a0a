package evaluator

import (
	"context"
	"math/big"
	"regexp"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// Programmatic verifiers: no LLM call, a verdict of 1 (right) or -1
// (wrong) with Correct set, ErrNotApplicable when they cannot tell.

func init() {
	builtins = append(builtins, exactSpec, game24Spec)
}

// Exact checks the path's final answer against the task's ground truth:
// both read as numbers are compared exactly as rationals (1,000 = 1000.0 =
// 2000/2 = \frac{2000}{2}); otherwise their normal forms under the task's
// pack are compared. It needs an answer and a truth.
type Exact struct{}

// Game24Check checks a Game of 24 expression with exact rational
// arithmetic: each of the problem's four numbers used once, value exactly
// 24. It needs no truth; it does not apply to problems that are not four
// numbers.
type Game24Check struct{}

var (
	_ core.Evaluator = Exact{}
	_ core.Evaluator = Game24Check{}
)

func exactSpec() core.EvaluatorSpec {
	return core.EvaluatorSpec{
		Name: "exact",
		Summary: "exact answer check against the task's truth: numbers compared as exact rationals, other answers by " +
			"the pack's normal form; 1 right, -1 wrong, not applicable without a truth",
		New: func(core.Params) (core.Evaluator, error) { return Exact{}, nil },
	}
}

func game24Spec() core.EvaluatorSpec {
	return core.EvaluatorSpec{
		Name: "game24",
		Summary: "Game of 24 checker with exact rational arithmetic: the expression uses each of the four numbers once " +
			"and equals 24; 1 right, -1 wrong; needs no truth",
		New: func(core.Params) (core.Evaluator, error) { return Game24Check{}, nil },
	}
}

func verdict(ok bool, detail string) core.Evaluation {
	s := -1.0
	if ok {
		s = 1
	}
	return core.Evaluation{Score: s, Kind: core.ScoreVerifier, Correct: &ok, Detail: detail}
}

func lastAnswer(req core.EvalRequest) string {
	last, ok := req.LastNode()
	if !ok {
		return ""
	}
	return strings.TrimSpace(last.Answer)
}

// PathFree implements core.PathFree.
func (Exact) PathFree() bool { return true }

// PathFree implements core.PathFree.
func (Game24Check) PathFree() bool { return true }

// Evaluate implements core.Evaluator.
func (Exact) Evaluate(_ context.Context, req core.EvalRequest) (core.Evaluation, error) {
	a, truth := lastAnswer(req), strings.TrimSpace(req.Task.Truth)
	if a == "" || truth == "" {
		return core.Evaluation{}, core.ErrNotApplicable
	}
	return verdict(SameAnswer(packOf(req.Task.Pack), a, truth), ""), nil
}

// SameAnswer reports whether answer equals truth: exactly as numbers when
// both are numbers, else by the pack's normal form.
func SameAnswer(pack core.Pack, answer, truth string) bool {
	x, okx := ExactNumber(answer)
	y, oky := ExactNumber(truth)
	if okx && oky {
		return x.Cmp(y) == 0
	}
	if pack == nil {
		pack = core.GenericPack{}
	}
	return pack.Normalize(answer) == pack.Normalize(truth)
}

var (
	fracRe  = regexp.MustCompile(`^(-?)\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$`)
	plainRe = regexp.MustCompile(`^-?\d+(?:\.\d+)?(?:/\d+)?$`)
	groupRe = regexp.MustCompile(`^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$`)
)

// ExactNumber reads an answer that is a number, and nothing else, as an
// exact rational: "1,000", "$12.50", "-3/4", "\frac{3}{4}", "50%" is not a
// number (it is 50 percent of something).
func ExactNumber(s string) (*big.Rat, bool) {
	s = strings.TrimSpace(s)
	if b, ok := core.ExtractBoxed(s); ok {
		s = b
	}
	s = strings.Trim(s, "$ ")
	s = strings.TrimSuffix(s, ".")
	s = strings.ReplaceAll(s, `\!`, "")
	if m := fracRe.FindStringSubmatch(strings.ReplaceAll(s, " ", "")); m != nil {
		r, ok := new(big.Rat).SetString(m[2] + "/" + m[3])
		if !ok {
			return nil, false // a zero denominator
		}
		if m[1] == "-" {
			r.Neg(r)
		}
		return r, true
	}
	if groupRe.MatchString(s) {
		s = strings.ReplaceAll(s, ",", "")
	}
	if !plainRe.MatchString(s) {
		return nil, false
	}
	return new(big.Rat).SetString(s) // fails on a zero denominator
}

// Evaluate implements core.Evaluator.
func (Game24Check) Evaluate(_ context.Context, req core.EvalRequest) (core.Evaluation, error) {
	a := lastAnswer(req)
	if a == "" {
		return core.Evaluation{}, core.ErrNotApplicable
	}
	if _, ok := tasks.Game24Numbers(req.Task.Problem); !ok {
		return core.Evaluation{}, core.ErrNotApplicable
	}
	if err := tasks.Check24(req.Task.Problem, a); err != nil {
		return verdict(false, err.Error()), nil
	}
	return verdict(true, "uses each number once and equals 24"), nil
}
