package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

func init() {
	builtins = append(builtins, decomposeSpec)
	core.SetShape("decompose", core.Chain)
}

// decompose is least-to-most problem solving (Zhou et al., 2023) with
// nested searches: one call breaks the problem into ordered sub-questions,
// each sub-question is a sub-problem node solved by a search of its own
// (sub_strategy, its budget carved from the run's) that sees the answers
// of the ones before it, and a last call answers the problem from the
// sub-answers. The chain is problem → plan → sub-question 1 → … → answer;
// each sub-problem node holds its search's structure (Node.Sub) and the
// search's events are in the run's trace under the node's scope.
type decompose struct {
	max       int
	sub       string
	subParams core.Params
	subBudget int64
	final     string
	temp      float64
	verifier  evalRef
	// nested is the decomposition that solves each sub-question when
	// sub_strategy is decompose itself.
	nested *decompose
}

// How decompose answers the problem once the sub-questions are answered.
const (
	FinalCompose = "compose" // one more call answers the problem from the sub-answers
	FinalLast    = "last"    // the last sub-question's answer is the answer
)

// maxDecomposeDepth bounds decompositions nested through sub_strategy:
// each level multiplies the calls by up to max_subproblems.
const maxDecomposeDepth = 2

func decomposeSpec() core.StrategySpec {
	return core.StrategySpec{
		Name: "decompose",
		Summary: "least-to-most: one call splits the problem into ordered sub-questions, each is solved by its own nested " +
			"search (sub_strategy) that sees the earlier answers, and a last call answers the problem from the sub-answers",
		Params: []core.ParamSpec{
			{Name: "max_subproblems", Type: core.ParamInt, Default: int64(4),
				Description: "most sub-questions solved; a longer plan keeps its first max_subproblems − 1 and its last (the problem's own question)",
				Min:         core.Bound(1), Max: core.Bound(16)},
			{Name: "sub_strategy", Type: core.ParamString, Default: "cot",
				Description: "strategy that solves each sub-question as a nested search (any strategy; decompose itself nests " +
					fmt.Sprint(maxDecomposeDepth) + " levels deep at most)"},
			{Name: "sub_params", Type: core.ParamJSON, Default: "", Description: `parameters of sub_strategy (JSON object, e.g. {"k": 5})`},
			{Name: "sub_budget", Type: core.ParamInt, Default: int64(0),
				Description: "most LLM calls of one sub-question's search (0: an even share of the calls the run has left, " +
					"keeping one for the final answer; unbounded when the run has no call limit)", Min: core.Bound(0)},
			{Name: "final", Type: core.ParamString, Default: FinalCompose,
				Description: "compose: one more call answers the problem from the sub-answers; last: the last sub-question's answer is the answer",
				Enum:        []string{FinalCompose, FinalLast}},
			{Name: "verifier", Type: core.ParamJSON, Default: "verifier",
				Description: `scores the final answer (the run's score): "verifier" (the pack's: Game of 24 needs no truth, GSM8K and MATH ` +
					`need the task's truth), any evaluator, or "none"`},
			{Name: "temperature", Type: core.ParamFloat, Default: 0.0, Description: "sampling temperature of the plan and compose calls",
				Min: core.Bound(0), Max: core.Bound(2)},
		},
		New: func(p core.Params) (core.Strategy, error) { return newDecompose(p, 1) },
	}
}

// newDecompose builds a decomposition at nesting level depth (1: the run's
// own), parsing nested decompositions in sub_params so that their
// parameters are checked before any LLM call.
func newDecompose(p core.Params, depth int) (*decompose, error) {
	d := &decompose{max: p.Int("max_subproblems"), sub: strings.TrimSpace(p.String("sub_strategy")),
		subBudget: int64(p.Int("sub_budget")), final: p.String("final"), temp: p.Float("temperature")}
	if d.sub == "" {
		return nil, fmt.Errorf("%w \"sub_strategy\": name a strategy (e.g. cot or self-consistency)", core.ErrInvalidParam)
	}
	if raw := strings.TrimSpace(p.String("sub_params")); raw != "" {
		if err := json.Unmarshal([]byte(raw), &d.subParams); err != nil || d.subParams == nil {
			return nil, fmt.Errorf("%w \"sub_params\": want a JSON object, got %s", core.ErrInvalidParam, raw)
		}
	}
	var err error
	if d.verifier, err = parseEvalRef("verifier", p.String("verifier")); err != nil {
		return nil, err
	}
	if d.sub == "decompose" {
		if depth >= maxDecomposeDepth {
			return nil, fmt.Errorf("%w \"sub_strategy\": decompose nested more than %d levels deep", core.ErrInvalidParam, maxDecomposeDepth)
		}
		rp, err := core.Resolve(decomposeSpec().Params, d.subParams)
		if err != nil {
			return nil, fmt.Errorf("%w \"sub_params\": nested decompose: %v", core.ErrInvalidParam, err)
		}
		if d.nested, err = newDecompose(rp, depth+1); err != nil {
			return nil, fmt.Errorf("%w \"sub_params\": nested decompose: %v", core.ErrInvalidParam, err)
		}
	}
	return d, nil
}

// Check rejects, at every nesting level, what needs the registry: unknown
// verifiers, sub-strategies and their parameters.
func (d *decompose) Check(p core.Preflight) error {
	problem := p.Task.Problem
	for lvl := d; lvl != nil; lvl = lvl.nested {
		if _, err := lvl.verifier.build(p); err != nil {
			if lvl != d {
				return fmt.Errorf("%w \"sub_params\": nested decompose: %v", core.ErrInvalidParam, err)
			}
			return err
		}
		name := "sub_strategy"
		if lvl != d {
			name = "sub_params" // the nested decompose's sub_strategy is in this level's sub_params
		}
		if err := p.ValidateSub(core.Task{Problem: problem, Strategy: lvl.sub, Params: lvl.subParams}); err != nil {
			// Blame the parameters when the strategy alone is fine.
			if len(lvl.subParams) > 0 && p.ValidateSub(core.Task{Problem: problem, Strategy: lvl.sub}) == nil {
				name = "sub_params"
			}
			return fmt.Errorf("%w %q: %v", core.ErrInvalidParam, name, err)
		}
	}
	return nil
}

func (d *decompose) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	ver, _ := d.verifier.build(env)

	// 1. The plan.
	seed := env.Seed(0)
	c, err := env.Complete(ctx, core.CompletionRequest{Messages: tasks.DecomposePrompt(env.Task.Problem, d.max), N: 1,
		Temperature: tempPtr(d.temp), Seed: &seed, Purpose: "decompose"})
	if err != nil {
		return core.Outcome{}, fmt.Errorf("decompose: plan: %w", err)
	}
	if len(c.Choices) == 0 {
		return core.Outcome{}, fmt.Errorf("decompose: plan: %w: no choices", core.ErrLLMBadResponse)
	}
	reply := c.Choices[0].Text
	questions := tasks.ParseSubQuestions(reply)
	meta := map[string]any{"role": "plan"}
	if len(questions) > d.max {
		meta["dropped"] = questions[d.max-1 : len(questions)-1]
		questions = append(questions[:d.max-1:d.max-1], questions[len(questions)-1])
	}
	if len(questions) > 0 {
		meta["sub_questions"] = questions
	}
	plan, err := env.AddNode([]core.NodeID{0}, core.Node{Kind: core.KindStep, Content: reply, Meta: meta, LLMCall: c.TraceSeq,
		Usage: core.Usage{LLMCalls: 1, PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens}})
	if err != nil {
		return core.Outcome{}, fmt.Errorf("decompose: plan: %w", err)
	}
	if len(questions) == 0 {
		return d.whole(ctx, env, plan, ver)
	}
	env.Tracer.Record(core.OpInfo, []core.NodeID{plan}, map[string]any{"sub_questions": len(questions)})

	// 2. The sub-questions, in order: each sees the answers before it.
	var answers []tasks.SubAnswer
	prev := plan
	var stop error
	for i, q := range questions {
		limits, err := d.subLimits(env, len(questions)-i)
		if err != nil {
			stop = err
			break
		}
		id, res, err := d.solveSub(ctx, env, prev, core.Node{Kind: core.KindSubProblem, Content: q,
			Meta: map[string]any{"sub_question": i + 1, "sub_strategy": d.sub}},
			core.Task{Problem: tasks.SubProblem(env.Task.Problem, answers, q), Strategy: d.sub, Params: d.subParams, Limits: limits})
		if id != 0 {
			prev = id
		}
		if err != nil {
			stop = err
			break
		}
		answers = append(answers, tasks.SubAnswer{Question: q, Answer: res.Answer})
		if err := parentStop(ctx, env, res); err != nil {
			stop = err
			break
		}
		if res.Stopped == core.StopError && res.Answer == "" {
			stop = fmt.Errorf("decompose: sub-question %d: %s", i+1, res.Error)
			break
		}
	}
	if len(answers) < len(questions) {
		// Stopped before the last sub-question: no answer to the problem
		// yet (an earlier sub-answer answers something else).
		return core.Outcome{Best: prev}, stop
	}

	// 3. The answer to the problem (also when the run stopped during the
	// last sub-question: its answer is the best so far).
	final, err := d.answer(ctx, env, prev, answers)
	if err == nil || (stop != nil && !isStop(err)) {
		err = stop
	}
	if final == 0 {
		return core.Outcome{Best: prev}, err
	}
	if ver != nil {
		if _, serr := core.Evaluate(ctx, env, ver, final); serr != nil && !errors.Is(serr, core.ErrUnscored) && err == nil {
			err = serr
		}
	}
	n := env.Structure.MustNode(final)
	if n.Answer == "" {
		return core.Outcome{Best: final}, err
	}
	if err != nil && !isStop(err) {
		err = nil // the compose call failed: the last sub-answer stands
	}
	return outcome(n), err
}

// solveSub adds node below parent and solves task as its nested search;
// the node records the search's answer (Meta "sub_answer").
func (d *decompose) solveSub(ctx context.Context, env *core.Env, parent core.NodeID, node core.Node, task core.Task) (core.NodeID, core.Result, error) {
	id, err := env.AddNode([]core.NodeID{parent}, node)
	if err != nil {
		return 0, core.Result{}, fmt.Errorf("decompose: sub-problem: %w", err)
	}
	res, err := env.SolveSub(ctx, id, task)
	if err != nil {
		setMeta(env, id, "sub_error", err.Error())
		return id, res, fmt.Errorf("decompose: sub-problem %d: %w", id, err)
	}
	_ = env.Structure.Update(id, func(n *core.Node) {
		if n.Meta == nil {
			n.Meta = map[string]any{}
		}
		n.Meta["sub_answer"] = res.Answer
		if res.Score != nil {
			n.Meta["sub_score"] = *res.Score
		}
		if res.Error != "" {
			n.Meta["sub_error"] = res.Error
		}
	})
	return id, res, nil
}

// parentStop reports whether the run itself must stop after a nested
// search: its context ended or its own budget is spent. A nested search
// that only used up its share goes on with its best answer.
func parentStop(ctx context.Context, env *core.Env, res core.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if res.Stopped == core.StopBudget && env.Budget.Remaining() == 0 {
		return fmt.Errorf("%w: %s", core.ErrBudgetExhausted, res.Error)
	}
	return nil
}

// subLimits carves the budget of the next sub-question's search, with
// left sub-questions still to solve.
func (d *decompose) subLimits(env *core.Env, left int) (core.Limits, error) {
	l := core.Limits{LLMCalls: d.subBudget}
	rem := env.Budget.Remaining()
	switch {
	case rem < 0:
		return l, nil
	case rem == 0:
		return l, fmt.Errorf("decompose: %w: no calls left for %d sub-questions", core.ErrBudgetExhausted, left)
	case d.subBudget == 0:
		reserve := int64(0)
		if d.final == FinalCompose {
			reserve = 1
		}
		l.LLMCalls = max(1, (rem-reserve)/int64(left))
	}
	return l, nil
}

// answer adds the final node below prev: the compose call's answer, or the
// last sub-answer (final=last, or a compose call that failed, was stopped
// or gave no answer). It returns 0 when neither is there.
func (d *decompose) answer(ctx context.Context, env *core.Env, prev core.NodeID, answers []tasks.SubAnswer) (core.NodeID, error) {
	var err error
	if d.final == FinalCompose {
		c, cerr := env.Complete(ctx, core.CompletionRequest{Messages: tasks.ComposePrompt(env.Task.Problem, answers), N: 1,
			Temperature: tempPtr(d.temp), Seed: ptrTo(env.Seed(1)), Purpose: "compose"})
		switch {
		case cerr != nil:
			err = fmt.Errorf("decompose: compose: %w", cerr)
		case len(c.Choices) == 0:
			err = fmt.Errorf("decompose: compose: %w: no choices", core.ErrLLMBadResponse)
		default:
			n := core.Node{Kind: core.KindStep, Content: c.Choices[0].Text, Meta: map[string]any{"role": "compose"}, LLMCall: c.TraceSeq,
				Usage: core.Usage{LLMCalls: 1, PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens}}
			if a, ok := env.Pack.ExtractAnswer(n.Content); ok {
				n.Kind, n.Answer, n.Terminal = core.KindAnswer, a, true
			}
			id, aerr := env.AddNode([]core.NodeID{prev}, n)
			if aerr != nil {
				return 0, fmt.Errorf("decompose: compose: %w", aerr)
			}
			if n.Answer != "" {
				return id, nil
			}
			prev = id
			err = fmt.Errorf("decompose: compose: %w: the reply has no final answer", core.ErrLLMBadResponse)
		}
	}
	last := answers[len(answers)-1]
	a, ok := env.Pack.ExtractAnswer(`\boxed{` + last.Answer + `}`)
	if last.Answer == "" || !ok {
		if err == nil {
			err = fmt.Errorf("decompose: the last sub-question has no answer")
		}
		return 0, err
	}
	id, aerr := env.AddNode([]core.NodeID{prev}, core.Node{Kind: core.KindAnswer, Answer: a, Terminal: true,
		Content: "The last sub-question asks what the problem asks. The answer is \\boxed{" + last.Answer + "}.",
		Meta:    map[string]any{"role": "last_sub_answer"}})
	if aerr != nil {
		return 0, errors.Join(err, fmt.Errorf("decompose: answer: %w", aerr))
	}
	return id, err
}

// whole solves the problem as one sub-problem with the sub-strategy: the
// plan reply listed no sub-questions.
func (d *decompose) whole(ctx context.Context, env *core.Env, plan core.NodeID, ver core.Evaluator) (core.Outcome, error) {
	env.Tracer.Record(core.OpInfo, []core.NodeID{plan}, map[string]any{"fallback": "the plan lists no sub-questions: the whole problem is solved by " + d.sub})
	setMeta(env, plan, "fallback", true)
	limits, err := d.subLimits(env, 1)
	if err != nil {
		return core.Outcome{Best: plan}, err
	}
	if d.subBudget == 0 && limits.LLMCalls > 0 && d.final == FinalCompose {
		limits.LLMCalls++ // no compose call follows
	}
	id, res, err := d.solveSub(ctx, env, plan, core.Node{Kind: core.KindSubProblem, Content: env.Task.Problem,
		Meta: map[string]any{"sub_strategy": d.sub, "whole_problem": true}},
		core.Task{Problem: env.Task.Problem, Truth: env.Task.Truth, Strategy: d.sub, Params: d.subParams, Limits: limits})
	if err != nil {
		if id == 0 {
			id = plan
		}
		return core.Outcome{Best: id}, err
	}
	stop := parentStop(ctx, env, res)
	if stop == nil && res.Stopped == core.StopError && res.Answer == "" {
		stop = fmt.Errorf("decompose: whole problem: %s", res.Error)
	}
	if res.Answer == "" {
		return core.Outcome{Best: id}, stop
	}
	_ = env.Structure.Update(id, func(n *core.Node) { n.Answer, n.Terminal = res.Answer, true })
	if ver != nil {
		if _, serr := core.Evaluate(ctx, env, ver, id); serr != nil && !errors.Is(serr, core.ErrUnscored) && stop == nil {
			stop = serr
		}
	}
	out := outcome(env.Structure.MustNode(id))
	if out.Score == nil {
		out.Score = res.Score
	}
	return out, stop
}

func ptrTo[T any](v T) *T { return &v }
