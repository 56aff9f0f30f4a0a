package strategy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// Nested sub-problems: a step of an outer search solved by a search of its
// own. NestedStep is the operator; beam and mcts take it as an option
// (step_strategy), so that each of their expansions is, for example, a
// step-level best-of-N scored by a PRM.

// NestedOptions configure NestedStep.
type NestedOptions struct {
	// Strategy solves the step (a step-level strategy: beam, mcts, tot-bfs,
	// tot-dfs, or a plugin's).
	Strategy string
	Params   core.Params
	// Limits bound the nested search further; it always draws on the
	// outer run's budget (core.Budget.Carve).
	Limits core.Limits
	// Seed of the nested search (0: derived from the node).
	Seed int64
}

// NestedStep adds a sub-problem node below parent and solves "the next step
// after the path to parent" as a nested search (core.Env.SolveSub): the
// nested search starts from the outer path's steps (core.Task.Steps), its
// structure hangs off the node (Node.Sub) and its events are in the run's
// trace under the node's scope. The first step of the nested search's best
// path becomes the node's content; a step with a final answer makes the
// node terminal. The node's usage is what the nested search spent.
//
// It returns the node's id; with an error (the budget, the context, a
// nested search that found no step) the node is pruned.
func NestedStep(ctx context.Context, env *core.Env, parent core.NodeID, o NestedOptions) (core.NodeID, error) {
	path := env.Structure.Path(parent)
	if path == nil {
		return 0, fmt.Errorf("nested step: node %d does not exist", parent)
	}
	steps := append(append([]string(nil), env.Task.Steps...), core.Steps(path)...)
	id, err := env.AddNode([]core.NodeID{parent}, core.Node{Kind: core.KindSubProblem,
		Content: "(next step, solved by " + o.Strategy + ")", Meta: map[string]any{"sub_strategy": o.Strategy}})
	if err != nil {
		return 0, fmt.Errorf("nested step from node %d: %w", parent, err)
	}
	res, err := env.SolveSub(ctx, id, core.Task{Problem: env.Task.Problem, Truth: env.Task.Truth, Steps: steps,
		Strategy: o.Strategy, Params: o.Params, Limits: o.Limits, Seed: o.Seed})
	fail := func(err error) (core.NodeID, error) {
		_ = env.Structure.Update(id, func(n *core.Node) {
			n.Pruned = true
			if n.Meta == nil {
				n.Meta = map[string]any{}
			}
			n.Meta["sub_error"] = err.Error()
		})
		return id, fmt.Errorf("nested step from node %d: %w", parent, err)
	}
	if err != nil {
		return fail(err)
	}
	var step *core.Node
	for i := range res.BestPath {
		if res.BestPath[i].Kind != core.KindProblem {
			step = &res.BestPath[i]
			break
		}
	}
	if step == nil {
		switch {
		case res.Stopped == core.StopBudget && ownLimit(env, o.Limits, res.Usage):
			// Its own share (step_budget) ran out, not the run's: one
			// dead child, and the run goes on with the others.
			return fail(fmt.Errorf("nested %s spent its %d calls (step_budget) without finding a step: %s", o.Strategy, o.Limits.LLMCalls, res.Error))
		case res.Stopped == core.StopBudget && res.Usage.LLMCalls == 0 && o.Limits.LLMCalls > 0 &&
			(env.Budget.Remaining() < 0 || env.Budget.Remaining() > o.Limits.LLMCalls):
			return fail(fmt.Errorf("%w: step_budget %d is too small for the first request of the nested %s (raise it, or 0 for the run's budget): %s",
				core.ErrBudgetExhausted, o.Limits.LLMCalls, o.Strategy, res.Error))
		case res.Stopped == core.StopBudget:
			return fail(fmt.Errorf("%w: nested %s: %s", core.ErrBudgetExhausted, o.Strategy, res.Error))
		case res.Stopped == core.StopCancelled:
			return fail(context.Canceled)
		case res.Stopped == core.StopTimeout:
			return fail(context.DeadlineExceeded)
		}
		why := res.Error
		if why == "" {
			why = "it found no step"
		}
		return fail(fmt.Errorf("nested %s: %s", o.Strategy, why))
	}
	content := step.Content
	answer, terminal := step.Answer, step.Terminal
	if answer == "" {
		answer, terminal = "", false
		if a, ok := env.Pack.ExtractAnswer(content); ok {
			answer, terminal = a, true
		}
	}
	_ = env.Structure.Update(id, func(n *core.Node) {
		n.Content, n.Answer, n.Terminal = content, answer, terminal
		if n.Meta == nil {
			n.Meta = map[string]any{}
		}
		n.Meta["sub_best"] = int(step.ID)
		if res.Score != nil {
			n.Meta["sub_score"] = *res.Score
		}
	})
	return id, nil
}

// ownLimit reports whether a nested search that stopped on its budget
// after spending used was stopped by its own call limit rather than by the
// outer run's: it made calls, and the run has more calls left than the
// nested search had. (A nested search that could make no call at all, its
// limit too small for one request or the run's tokens spent, stops the
// run: its siblings would fare no better.)
func ownLimit(env *core.Env, l core.Limits, used core.Usage) bool {
	if l.LLMCalls <= 0 || used.LLMCalls <= 0 {
		return false
	}
	rem := env.Budget.Remaining()
	return rem < 0 || rem > l.LLMCalls-used.LLMCalls
}

// nestedOpts is how beam and mcts expand a node: the expand option
// (sampled steps or the pack's proposals) and the step_strategy option
// (nested searches).
type nestedOpts struct {
	mode     string // GenAuto, GenSample or GenPropose
	strategy string
	params   core.Params
	budget   int64
	// check screens new steps with the pack's step checker (screen) before
	// repeats are pruned: the check_steps option of the strategies that
	// offer it.
	check bool
}

// expandParam documents the expand option.
var expandParam = core.ParamSpec{Name: "expand", Type: core.ParamString, Default: GenSample,
	Description: "new children from sampled steps (sample: one request for n steps; repeated steps are pruned), from the pack's " +
		"propose prompt (propose: one call lists distinct next steps, as Tree of Thoughts does for Game of 24), or propose when " +
		"the pack has that prompt (auto)",
	Enum: []string{GenAuto, GenSample, GenPropose}}

// nestedParams document the option.
var nestedParams = []core.ParamSpec{
	{Name: "step_strategy", Type: core.ParamString, Default: "",
		Description: "solve each new step as a nested search with this step-level strategy (e.g. beam with " +
			`step_params {"beam_width":1,"expansions":4,"max_depth":1}: a best-of-4 step by the PRM); empty: sample steps directly`},
	{Name: "step_params", Type: core.ParamJSON, Default: "", Description: "parameters of the nested strategy (JSON object; " +
		"beam and tot-bfs make one pass unless it sets passes)"},
	{Name: "step_budget", Type: core.ParamInt, Default: int64(0),
		Description: "most LLM calls of one nested search (0: bounded by the run's budget only)", Min: core.Bound(0)},
}

// wholeSolution strategies sample complete solutions from the problem and
// would ignore the outer path: they cannot solve one step. decompose
// solves the problem afresh from a plan, whose reply would become the step.
var wholeSolution = map[string]bool{"cot": true, "self-consistency": true, "best-of-n": true, "refine": true, "got": true, "pal": true,
	"react": true, "decompose": true}

func parseNested(p core.Params) (nestedOpts, error) {
	o := nestedOpts{mode: p.String("expand"), strategy: strings.TrimSpace(p.String("step_strategy")), budget: int64(p.Int("step_budget"))}
	if o.mode == "" {
		o.mode = GenSample
	}
	raw := strings.TrimSpace(p.String("step_params"))
	if o.strategy == "" {
		if raw != "" {
			return o, fmt.Errorf("%w \"step_params\": set step_strategy too", core.ErrInvalidParam)
		}
		return o, nil
	}
	if wholeSolution[o.strategy] {
		return o, fmt.Errorf("%w \"step_strategy\": %s samples whole solutions and cannot solve one step; use beam, mcts, tot-bfs or tot-dfs "+
			"(a best-of-N step: step_strategy=beam with step_params {\"beam_width\":1,\"expansions\":N,\"max_depth\":1})",
			core.ErrInvalidParam, o.strategy)
	}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &o.params); err != nil || o.params == nil {
			return o, fmt.Errorf("%w \"step_params\": want a JSON object, got %s", core.ErrInvalidParam, raw)
		}
	}
	if multiPass[o.strategy] {
		if _, set := o.params["passes"]; !set {
			// A step search ends at its max_depth without an answer: that
			// is its step, not a failed pass to retry. With its 10 passes a
			// "best-of-4 step" (beam 1 × 4, depth 1) sampled up to 40 steps
			// and spent 80 calls on each child.
			if o.params == nil {
				o.params = core.Params{}
			}
			o.params["passes"] = 1
		}
	}
	return o, nil
}

// multiPass strategies start another pass when one ends without an
// answer; as step searches they make one pass unless step_params says
// otherwise.
var multiPass = map[string]bool{"beam": true, "tot-bfs": true}

// sameAtZero refuses n sampled steps at temperature 0, which are one step
// n times, where steps are sampled: expand or generate "sample", or "auto"
// on a pack without a propose prompt. One propose call lists distinct
// steps at any temperature, so it is no reason to refuse.
func sameAtZero(p core.Preflight, modeParam, mode string, n int, temp float64, what, one string) error {
	if n <= 1 || temp != 0 || mode == GenPropose {
		return nil
	}
	if _, ok := p.Pack.(tasks.Proposer); ok && mode == GenAuto {
		return nil
	}
	return fmt.Errorf("%w \"temperature\": %d %s at temperature 0 are the same step: set temperature (e.g. 0.7), %s, or %s=propose on a pack with a propose prompt",
		core.ErrInvalidParam, n, what, one, modeParam)
}

// validate checks the pack and the nested strategy and its parameters when
// the engine validates the task (the strategy's Check).
func (o nestedOpts) validate(p core.Preflight) error {
	if _, ok := p.Pack.(tasks.Proposer); !ok && o.mode == GenPropose {
		return fmt.Errorf("%w \"expand\": the %s pack has no propose prompt; use expand=sample", core.ErrInvalidParam, p.Pack.Name())
	}
	if o.strategy == "" {
		return nil
	}
	if err := p.ValidateSub(core.Task{Problem: p.Task.Problem, Strategy: o.strategy, Params: o.params}); err != nil {
		return fmt.Errorf("%w \"step_strategy\": %v", core.ErrInvalidParam, err)
	}
	return nil
}

// keep screens new children (with check) and prunes repeats.
func (o nestedOpts) keep(env *core.Env, ids []core.NodeID) []core.NodeID {
	if o.check {
		ids = screen(env, ids)
	}
	return dedupe(env, ids)
}

// expand adds k children below parent: k sampled steps in one request, or k
// nested searches run concurrently. ids are in sample order; with an error,
// ids holds the children made before it.
func (o nestedOpts) expand(ctx context.Context, env *core.Env, parent core.NodeID, k int, seed int64, temp float64) ([]core.NodeID, error) {
	if o.strategy == "" {
		if pr, ok := env.Pack.(tasks.Proposer); ok && o.mode != GenSample {
			path := env.Structure.Path(parent)
			steps := append(append([]string(nil), env.Task.Steps...), core.Steps(path)...)
			ids, err := proposeSteps(ctx, env, pr, parent, steps, 1, k, seed, temp, o.check)
			return dedupe(env, ids), err
		}
		knobs := &struct { // one allocation for the two pointers
			temp float64
			seed int64
		}{temp, seed}
		ids, err := core.Generate(ctx, env, parent, k, core.GenerateOptions{Temperature: &knobs.temp, Seed: &knobs.seed, Purpose: "expand"})
		return o.keep(env, ids), err
	}
	ids := make([]core.NodeID, k)
	errs := make([]error, k)
	done := make(chan struct{}, k)
	for i := 0; i < k; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			ids[i], errs[i] = NestedStep(ctx, env, parent, NestedOptions{Strategy: o.strategy, Params: o.params,
				Limits: core.Limits{LLMCalls: o.budget}, Seed: env.Seed(seed, int64(i))})
		}()
	}
	for i := 0; i < k; i++ {
		<-done
	}
	var out []core.NodeID
	for i := range ids {
		if errs[i] == nil && ids[i] != 0 {
			out = append(out, ids[i])
		}
	}
	err := firstErr(errs)
	if len(out) > 0 && err != nil && !isStop(err) {
		err = nil // some steps were found: go on with them
	}
	return out, err
}
