package strategy

import (
	"context"
	"fmt"
	"math"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/tasks"
)

func init() {
	builtins = append(builtins, refineSpec)
	core.SetShape("refine", core.Chain)
}

// refine is self-refine (Madaan et al., 2023) / reflection: a first
// solution, then rounds of critique → revision, each revision a new node of
// a chain. It stops when the critic finds no issues, when a revision
// changes nothing, when the evaluator (if one is set) rates a version at or
// above the threshold, or after `rounds` revisions.
type refine struct {
	rounds    int
	threshold float64
	temp      float64
	ev        evalRef
}

func refineSpec() core.StrategySpec {
	return core.StrategySpec{
		Name: "refine",
		Summary: "self-refine: one solution, then critique → revise rounds until the critic finds no issues, a revision " +
			"changes nothing, or the evaluator's score reaches the threshold",
		Params: []core.ParamSpec{
			{Name: "rounds", Type: core.ParamInt, Default: int64(3), Description: "most critique → revise rounds", Min: core.Bound(1), Max: core.Bound(50)},
			evaluatorParamSpec("evaluator", "none", `rates each version ("none": only the critic decides); the best-rated version is the answer`),
			{Name: "threshold", Type: core.ParamFloat, Default: 0.8, Description: "stop once the evaluator rates a version at least this", Min: core.Bound(-1), Max: core.Bound(1)},
			{Name: "temperature", Type: core.ParamFloat, Default: 0.0, Description: "sampling temperature of the first solution", Min: core.Bound(0), Max: core.Bound(2)},
		},
		New: func(p core.Params) (core.Strategy, error) {
			r := refine{rounds: p.Int("rounds"), threshold: p.Float("threshold"), temp: p.Float("temperature")}
			var err error
			if r.ev, err = parseEvalRef("evaluator", p.String("evaluator")); err != nil {
				return nil, err
			}
			return r, nil
		},
	}
}

// Why refine stopped, in its info event.
const (
	refineNoIssues  = "no_issues"
	refineNoChange  = "no_change"
	refineThreshold = "threshold"
	refineRounds    = "rounds"
)

// Check rejects an unknown evaluator before the run.
func (r refine) Check(p core.Preflight) error { return checkRefs(p, r.ev) }

func (r refine) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	ev, err := r.ev.build(env)
	if err != nil {
		return core.Outcome{}, err
	}
	seed := env.Seed(0)
	ids, err := core.Generate(ctx, env, 0, 1, core.GenerateOptions{Whole: true, Temperature: tempPtr(r.temp), Seed: &seed, Purpose: "sample"})
	if len(ids) == 0 {
		return core.Outcome{}, err
	}
	versions := []core.NodeID{ids[0]}
	cur := ids[0]
	why := refineRounds
	rated := func(id core.NodeID) (bool, error) {
		if ev == nil {
			return false, nil
		}
		e, err := core.Evaluate(ctx, env, ev, id)
		if err != nil {
			if isStop(err) {
				return false, err
			}
			return false, nil
		}
		return e.Score >= r.threshold, nil
	}
	done, err := rated(cur)
	if done {
		why = refineThreshold
	}
	for round := 1; round <= r.rounds && err == nil && !done; round++ {
		n := env.Structure.MustNode(cur)
		steps := tasks.SolutionSteps(n.Content)
		c, cerr := env.Complete(ctx, core.CompletionRequest{Messages: tasks.CritiquePrompt(env.Task.Problem, steps), N: 1,
			Temperature: tempPtr(0), Purpose: "critique"})
		if cerr != nil {
			err = fmt.Errorf("critique node %d: %w", cur, cerr)
			break
		}
		text := ""
		if len(c.Choices) > 0 {
			text = c.Choices[0].Text
		}
		issues, ok := tasks.ParseCritique(text)
		if !ok {
			err = fmt.Errorf("critique node %d: %w: empty critique", cur, core.ErrLLMBadResponse)
			break
		}
		// Each version carries the critic's review of it.
		setMeta(env, cur, "critique", text)
		if len(issues) == 0 {
			why = refineNoIssues
			break
		}
		next, rerr := core.Refine(ctx, env, cur, tasks.RevisePrompt(env.Task.Problem, steps, text))
		if rerr != nil {
			err = rerr
			break
		}
		versions = append(versions, next)
		prev := n.Content
		cur = next
		if sameText(prev, env.Structure.MustNode(next).Content) {
			why = refineNoChange
			break
		}
		if done, err = rated(cur); done {
			why = refineThreshold
		}
	}
	env.Tracer.Record(core.OpInfo, []core.NodeID{cur}, map[string]any{"stopped_because": why, "versions": len(versions)})
	// The answer: the best-rated version (the latest on ties), else the
	// latest version that has one.
	var pick core.Node
	found := false
	best := math.Inf(-1)
	for _, id := range versions {
		n := env.Structure.MustNode(id)
		if n.Answer == "" {
			continue
		}
		s, ok := n.Score()
		if !ok {
			s = math.Inf(-1)
		}
		if !found || s >= best {
			pick, best, found = n, s, true
		}
	}
	if !found {
		return core.Outcome{Best: cur}, err
	}
	if err != nil && !isStop(err) {
		err = nil // an LLM failure mid-way: the versions so far stand
	}
	return outcome(pick), err
}

func sameText(a, b string) bool {
	return text.OneLine(a) == text.OneLine(b)
}
