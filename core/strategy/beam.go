package strategy

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/ponder-rlm/ponder/core"
)

func init() {
	builtins = append(builtins, beamSpec)
}

// Path-score aggregates of beam search.
const (
	AggLast    = "last"    // the last step's score
	AggMin     = "min"     // the weakest step's
	AggMean    = "mean"    // the mean over the steps
	AggProduct = "product" // the product of the steps' scores mapped onto [0, 1]
)

// beam is step-level beam search: every node of the beam is expanded into
// k sampled next steps, every new step is scored (a PRM by default) as
// soon as it is generated, and the best beam_width unfinished paths by
// their aggregated score go on. Paths that reach an answer leave the beam;
// the best of them by the verifier, then by score, is the answer.
type beam struct {
	width, k, maxDepth int
	temp               float64
	aggregate          string
	stopOnCorrect      bool
	ev, verifier       evalRef
	nested             nestedOpts
}

func beamSpec() core.StrategySpec {
	return core.StrategySpec{
		Name: "beam",
		Summary: "step-level beam search: expand each of the beam_width best partial solutions into `expansions` next steps, " +
			"score each step (a PRM by default) and keep the best paths; all expansions and scorings run concurrently",
		Params: append([]core.ParamSpec{
			{Name: "beam_width", Type: core.ParamInt, Default: int64(4), Description: "partial solutions kept at each depth", Min: core.Bound(1), Max: core.Bound(256)},
			{Name: "expansions", Type: core.ParamInt, Default: int64(2), Description: "next steps sampled per beam node", Min: core.Bound(1), Max: core.Bound(128)},
			{Name: "max_depth", Type: core.ParamInt, Default: int64(10), Description: "most steps per solution", Min: core.Bound(1), Max: core.Bound(1000)},
			evaluatorParamSpec("evaluator", "prm", "scores each new step"),
			{Name: "aggregate", Type: core.ParamString, Default: AggLast, Description: "path score from the step scores: last, min, mean or product",
				Enum: []string{AggLast, AggMin, AggMean, AggProduct}},
			verifierParam,
			{Name: "stop_on_correct", Type: core.ParamBool, Default: true, Description: "stop as soon as a verifier accepts an answer"},
			{Name: "temperature", Type: core.ParamFloat, Default: 0.7, Description: "sampling temperature of the steps", Min: core.Bound(0), Max: core.Bound(2)},
		}, append([]core.ParamSpec{expandParam}, nestedParams...)...),
		New: func(p core.Params) (core.Strategy, error) {
			b := beam{width: p.Int("beam_width"), k: p.Int("expansions"), maxDepth: p.Int("max_depth"), temp: p.Float("temperature"),
				aggregate: p.String("aggregate"), stopOnCorrect: p.Bool("stop_on_correct")}
			if b.k > 1 && b.temp == 0 && p.String("step_strategy") == "" {
				return nil, fmt.Errorf("%w \"temperature\": %d expansions at temperature 0 are the same step: set temperature (e.g. 0.7) or expansions=1", core.ErrInvalidParam, b.k)
			}
			var err error
			if b.ev, err = parseEvalRef("evaluator", p.String("evaluator")); err != nil {
				return nil, err
			}
			if b.verifier, err = parseEvalRef("verifier", p.String("verifier")); err != nil {
				return nil, err
			}
			if b.nested, err = parseNested(p); err != nil {
				return nil, err
			}
			return b, nil
		},
	}
}

// pathAgg accumulates step scores along a path.
type pathAgg struct {
	n               int
	last, min, sum  float64
	prod            float64
	unscored        bool
	terminal, right bool
}

func (a pathAgg) add(s float64, ok bool) pathAgg {
	if !ok {
		a.unscored = true
		return a
	}
	if a.n == 0 {
		a.min, a.prod = s, 1
	}
	a.n++
	a.last, a.sum = s, a.sum+s
	a.min = math.Min(a.min, s)
	a.prod *= (s + 1) / 2
	return a
}

// score is the aggregate; unscored paths rank last.
func (a pathAgg) score(how string) float64 {
	if a.unscored || a.n == 0 {
		return math.Inf(-1)
	}
	switch how {
	case AggMin:
		return a.min
	case AggMean:
		return a.sum / float64(a.n)
	case AggProduct:
		return 2*a.prod - 1
	}
	return a.last
}

type beamNode struct {
	id   core.NodeID
	seed int64
	agg  pathAgg
	// order breaks ties deterministically: parent's rank, then sample.
	order [2]int
}

func (b beam) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	sc, err := buildScorers(env, b.ev, b.verifier)
	if err != nil {
		return core.Outcome{}, err
	}
	if err := b.nested.validate(env); err != nil {
		return core.Outcome{}, err
	}
	front := []beamNode{{id: 0, seed: env.Seed(0)}}
	var finished []core.NodeID
	var stopErr, llmErr error
	solved := false
	for depth := 1; depth <= b.maxDepth && len(front) > 0 && stopErr == nil && !solved; depth++ {
		level := make([][]beamNode, len(front))
		errs := make([]error, len(front))
		var wg sync.WaitGroup
		for i, parent := range front {
			wg.Add(1)
			go func() {
				defer wg.Done()
				level[i], errs[i] = b.expand(ctx, env, sc, parent, i)
			}()
		}
		wg.Wait()
		var next []beamNode
		got := 0
		for _, kids := range level {
			for _, c := range kids {
				got++
				if c.agg.terminal {
					finished = append(finished, c.id)
					solved = solved || (c.agg.right && b.stopOnCorrect)
					continue
				}
				next = append(next, c)
			}
		}
		if err := firstErr(errs); err != nil {
			if isStop(err) {
				stopErr = err
			} else if got == 0 {
				llmErr = err
			}
		}
		sort.SliceStable(next, func(i, j int) bool {
			si, sj := next[i].agg.score(b.aggregate), next[j].agg.score(b.aggregate)
			if si != sj {
				return si > sj
			}
			return next[i].order[0] < next[j].order[0] || (next[i].order[0] == next[j].order[0] && next[i].order[1] < next[j].order[1])
		})
		if len(next) > b.width {
			var drop []core.NodeID
			for _, c := range next[b.width:] {
				drop = append(drop, c.id)
			}
			core.Prune(env, drop...)
			next = next[:b.width]
		}
		kept := make([]core.NodeID, len(next))
		for i := range next {
			kept[i] = next[i].id
		}
		env.Tracer.Record(core.OpSelect, kept, map[string]any{"depth": depth, "finished": len(finished)})
		if got == 0 && llmErr != nil {
			break // the LLM failed for the whole level
		}
		front = next
	}
	var answers []core.Node
	for _, id := range finished {
		answers = append(answers, env.Structure.MustNode(id))
	}
	if best, ok := bestAnswer(answers); ok {
		return outcome(best), stopErr
	}
	err = stopErr
	if err == nil {
		err = llmErr
	}
	if len(front) > 0 {
		return core.Outcome{Best: front[0].id}, err
	}
	return core.Outcome{}, err
}

// expand samples the next steps of one beam node and scores them.
func (b beam) expand(ctx context.Context, env *core.Env, sc scorers, parent beamNode, rank int) ([]beamNode, error) {
	ids, err := b.nested.expand(ctx, env, parent.id, b.k, parent.seed, b.temp)
	if len(ids) == 0 {
		return nil, err
	}
	terminal := make([]bool, len(ids))
	for i, id := range ids {
		terminal[i] = env.Structure.MustNode(id).Terminal
	}
	evs, oks, evErr := sc.scoreAll(ctx, env, ids, terminal)
	if err == nil || (evErr != nil && isStop(evErr)) {
		err = evErr
	}
	out := make([]beamNode, len(ids))
	for i, id := range ids {
		a := parent.agg.add(evs[i].Score, oks[i])
		a.terminal = terminal[i]
		a.right = oks[i] && evs[i].Correct != nil && *evs[i].Correct
		out[i] = beamNode{id: id, seed: env.Seed(parent.seed, int64(i)), agg: a, order: [2]int{rank, i}}
		if s := a.score(b.aggregate); !math.IsInf(s, -1) {
			_ = env.Structure.Update(id, func(n *core.Node) { n.Value = s })
		}
	}
	return out, err
}
