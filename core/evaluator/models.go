package evaluator

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/tasks"
)

// Prompted reward models: the run's own policy asked, with a fixed prompt of
// package tasks, how good a path is. Their calls go through
// EvalRequest.Policy, so they are metered, limited and traced like the
// policy's own.

func init() {
	builtins = append(builtins, valueSpec, prmSpec, ormSpec)
}

// ErrGarbage is wrapped when a reward model's reply holds no score: the
// node is left unscored (core.Evaluate) and the search goes on.
var ErrGarbage = errors.New("reply holds no score")

// Value is an LLM value model: it asks how likely the partial solution is
// to reach a correct answer and maps the reply onto [-1, 1] (the pack's own
// value prompt when it has one, Game of 24's sure/likely/impossible; else
// "Score: N" from 1 to 10). With Samples > 1 the scores are averaged.
type Value struct {
	Temperature float64
	Samples     int
}

// PRM is a process reward model by prompting: it rates only the last step
// of the path, given the steps before it, on [-1, 1].
type PRM struct {
	Temperature float64
	Samples     int
}

// ORM is an outcome reward model by prompting: it grades a final answer
// (the judge prompt) and does not apply to paths without one.
type ORM struct {
	Temperature float64
	Samples     int
}

var (
	_ core.Evaluator = Value{}
	_ core.Evaluator = PRM{}
	_ core.Evaluator = ORM{}
)

func modelParams(what string) []core.ParamSpec {
	return []core.ParamSpec{
		{Name: "temperature", Type: core.ParamFloat, Default: 0.0, Description: "temperature of the " + what + " calls",
			Min: core.Bound(0), Max: core.Bound(2)},
		{Name: "samples", Type: core.ParamInt, Default: int64(1), Description: "replies averaged per evaluation (raise temperature with samples > 1)",
			Min: core.Bound(1), Max: core.Bound(32)},
	}
}

func checkSamples(p core.Params) (float64, int, error) {
	t, n := p.Float("temperature"), p.Int("samples")
	if n > 1 && t == 0 {
		return 0, 0, fmt.Errorf("%w \"samples\": %d samples at temperature 0 are the same reply: set temperature (e.g. 0.7) or samples=1", core.ErrInvalidParam, n)
	}
	return t, max(n, 1), nil
}

func valueSpec() core.EvaluatorSpec {
	return core.EvaluatorSpec{
		Name: "value",
		Summary: "LLM value model: how likely the partial solution is to reach a correct answer, on [-1, 1] " +
			"(the pack's value prompt, e.g. Game of 24's sure/likely/impossible, else Score 1-10)",
		Params: modelParams("value"),
		New: func(p core.Params) (core.Evaluator, error) {
			t, n, err := checkSamples(p)
			return Value{Temperature: t, Samples: n}, err
		},
	}
}

func prmSpec() core.EvaluatorSpec {
	return core.EvaluatorSpec{
		Name:    "prm",
		Summary: "process reward model by prompting: rates the last step of the path (correct, making progress) on [-1, 1]",
		Params:  modelParams("PRM"),
		New: func(p core.Params) (core.Evaluator, error) {
			t, n, err := checkSamples(p)
			return PRM{Temperature: t, Samples: n}, err
		},
	}
}

func ormSpec() core.EvaluatorSpec {
	return core.EvaluatorSpec{
		Name:    "orm",
		Summary: "outcome reward model by prompting: grades a final answer on [-1, 1]; not applicable to paths without one",
		Params:  modelParams("ORM"),
		New: func(p core.Params) (core.Evaluator, error) {
			t, n, err := checkSamples(p)
			return ORM{Temperature: t, Samples: n}, err
		},
	}
}

// PathFree implements core.PathFree: the prompted models read only the
// steps and the last node.
func (Value) PathFree() bool { return true }

// PathFree implements core.PathFree.
func (PRM) PathFree() bool { return true }

// PathFree implements core.PathFree.
func (ORM) PathFree() bool { return true }

// Evaluate implements core.Evaluator.
func (v Value) Evaluate(ctx context.Context, req core.EvalRequest) (core.Evaluation, error) {
	pack := packOf(req.Task.Pack)
	msgs := tasks.ValuePrompt(pack, req.Task.Problem, PathSteps(req))
	return ask(ctx, req, msgs, v.Samples, v.Temperature, "value", core.ScoreValue,
		func(s string) (float64, bool) { return tasks.ParseValue(pack, s) })
}

// Evaluate implements core.Evaluator.
func (p PRM) Evaluate(ctx context.Context, req core.EvalRequest) (core.Evaluation, error) {
	steps := PathSteps(req)
	if len(steps) == 0 {
		return core.Evaluation{}, core.ErrNotApplicable
	}
	return ask(ctx, req, tasks.PRMPrompt(req.Task.Problem, steps), p.Samples, p.Temperature, "prm", core.ScorePRM, tasks.ParseScore)
}

// Evaluate implements core.Evaluator.
func (o ORM) Evaluate(ctx context.Context, req core.EvalRequest) (core.Evaluation, error) {
	if last, ok := req.LastNode(); !ok || last.Answer == "" {
		return core.Evaluation{}, core.ErrNotApplicable
	}
	return ask(ctx, req, tasks.JudgePrompt(req.Task.Problem, PathSteps(req)), o.Samples, o.Temperature, "orm", core.ScoreORM, tasks.ParseScore)
}

// PathSteps are the steps a reward model sees: the task's earlier steps
// (a nested search continues after them) and the path's, without the root.
func PathSteps(req core.EvalRequest) []string {
	steps := req.PathSteps()
	if len(req.Task.Steps) == 0 {
		return steps
	}
	return append(append([]string(nil), req.Task.Steps...), steps...)
}

// packOf finds the task's pack; a pack this build does not know (a plugin's)
// is posed with the generic prompts.
func packOf(name string) core.Pack {
	if p, err := tasks.Get(name); err == nil {
		return p
	}
	return core.GenericPack{}
}

// ask sends one request for n samples and averages the scores parse reads.
// Samples without a score are skipped; none at all is ErrGarbage.
func ask(ctx context.Context, req core.EvalRequest, msgs []core.Message, n int, temp float64, purpose, kind string,
	parse func(string) (float64, bool)) (core.Evaluation, error) {
	if req.Policy == nil {
		return core.Evaluation{}, fmt.Errorf("%s: no policy to ask", purpose)
	}
	n = max(n, 1)
	// The seed follows the prompt, so the same state gets the same rating
	// in every run with the same task seed.
	// The request points at both; one allocation holds them.
	knobs := &struct {
		temp float64
		seed int64
	}{temp, promptSeed(req.Task.Seed, msgs)}
	c, err := req.Policy.Complete(ctx, core.CompletionRequest{Messages: msgs, N: n, Temperature: &knobs.temp,
		MaxTokens: 256, Seed: &knobs.seed, Purpose: purpose})
	if err != nil {
		return core.Evaluation{}, err
	}
	sum, got := 0.0, 0
	var bad string
	for _, ch := range c.Choices {
		if s, ok := parse(ch.Text); ok {
			sum += s
			got++
		} else if bad == "" {
			bad = ch.Text
		}
	}
	if got == 0 {
		if len(c.Choices) == 0 {
			return core.Evaluation{}, fmt.Errorf("%s: %w: no choices", purpose, core.ErrLLMBadResponse)
		}
		return core.Evaluation{}, fmt.Errorf("%s: %w: %q", purpose, ErrGarbage, text.Clip(text.OneLine(bad), 80))
	}
	e := core.Evaluation{Score: sum / float64(got), Kind: kind}
	if got > 1 {
		e.Detail = fmt.Sprintf("mean of %d %s samples", got, purpose)
	}
	return e, nil
}

// promptSeed is the seed of a reward model's request: it follows the
// prompt, so the same state gets the same rating in every run with the same
// task seed. It is FNV-1a over "<taskSeed>|" and each message's role and content, each
// followed by a zero byte, written out so that hashing a long prompt
// allocates nothing.
func promptSeed(taskSeed int64, msgs []core.Message) int64 {
	var num [20]byte
	h := uint64(fnvOffset)
	for _, b := range strconv.AppendInt(num[:0], taskSeed, 10) {
		h = fnvByte(h, b)
	}
	h = fnvByte(h, '|')
	for _, m := range msgs {
		h = fnvString(h, m.Role)
		h = fnvByte(h, 0)
		h = fnvString(h, m.Content)
		h = fnvByte(h, 0)
	}
	return int64(h >> 1)
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvByte(h uint64, b byte) uint64 { return (h ^ uint64(b)) * fnvPrime }

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
}
