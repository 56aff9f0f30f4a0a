package strategy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

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
	id    core.NodeID
	seed  int64
	agg   pathAgg
	depth int
	// key breaks ties deterministically: the sample indices on the path.
	key []int
}

// less orders candidates of a level: higher aggregated score, then key.
func (b beam) less(x, y beamNode) bool {
	sx, sy := x.agg.score(b.aggregate), y.agg.score(b.aggregate)
	if sx != sy {
		return sx > sy
	}
	for i := 0; i < len(x.key) && i < len(y.key); i++ {
		if x.key[i] != y.key[i] {
			return x.key[i] < y.key[i]
		}
	}
	return len(x.key) < len(y.key)
}

// beamLevel is the bookkeeping of one depth.
type beamLevel struct {
	cands   []beamNode // scored, unfinished candidates at this depth
	started map[core.NodeID]bool
	// parents: nodes of the level above that are (or may still be) kept;
	// known once that level is decided. done: those whose expansion ended.
	parents, done int
	decided       bool
	kept          []beamNode
}

// Run is beam search without a barrier between depths: a candidate starts
// its own expansion as soon as its place among the beam_width best of its
// depth is certain (fewer than beam_width candidates can still beat it,
// counting every child the unfinished expansions may bring). The paths kept
// are exactly those of level-by-level beam search; the next depth's calls
// just start while the last scorings of this one are in flight.
func (b beam) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	sc, err := buildScorers(env, b.ev, b.verifier)
	if err != nil {
		return core.Outcome{}, err
	}
	if err := b.nested.validate(env); err != nil {
		return core.Outcome{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		parent beamNode
		kids   []beamNode
		err    error
	}
	results := make(chan result)
	inflight := 0
	levels := map[int]*beamLevel{}
	level := func(d int) *beamLevel {
		if levels[d] == nil {
			levels[d] = &beamLevel{started: map[core.NodeID]bool{}, parents: b.width}
		}
		return levels[d]
	}
	var finished []core.NodeID
	var stopErr, llmErr error
	solved := false
	start := func(n beamNode) {
		inflight++
		go func() {
			kids, err := b.expand(ctx, env, sc, n)
			results <- result{n, kids, err}
		}()
	}
	// settle starts what is certain and decides levels that are complete,
	// from the shallowest up.
	var settle func()
	settle = func() {
		for d := 1; d <= b.maxDepth; d++ {
			lv, ok := levels[d]
			if !ok {
				return
			}
			if stopErr != nil || solved {
				return
			}
			sort.SliceStable(lv.cands, func(i, j int) bool { return b.less(lv.cands[i], lv.cands[j]) })
			if !lv.decided && lv.done >= lv.parents && (d == 1 || levels[d-1] != nil && levels[d-1].decided) {
				lv.decided = true
				keep := lv.cands
				if len(keep) > b.width {
					var drop []core.NodeID
					for _, c := range keep[b.width:] {
						drop = append(drop, c.id)
					}
					core.Prune(env, drop...)
					keep = keep[:b.width]
				}
				lv.kept = keep
				ids := make([]core.NodeID, len(keep))
				for i, c := range keep {
					ids[i] = c.id
				}
				env.Tracer.Record(core.OpSelect, ids, map[string]any{"depth": d, "finished": len(finished)})
				if d < b.maxDepth {
					level(d + 1).parents = len(keep)
				}
			}
			if d >= b.maxDepth {
				continue
			}
			// Candidates that can no longer be pushed out of the beam.
			maybe := b.k * (lv.parents - lv.done)
			for i, c := range lv.cands {
				if i >= b.width || (!lv.decided && i+maybe >= b.width) {
					break
				}
				if !lv.started[c.id] {
					lv.started[c.id] = true
					start(c)
				}
			}
		}
	}
	level(1).parents = 1
	start(beamNode{id: 0, seed: env.Seed(0)})
	for inflight > 0 {
		r := <-results
		inflight--
		lv := level(r.parent.depth + 1)
		lv.done++
		for _, c := range r.kids {
			if c.agg.terminal {
				finished = append(finished, c.id)
				solved = solved || (c.agg.right && b.stopOnCorrect)
				continue
			}
			lv.cands = append(lv.cands, c)
		}
		if r.err != nil {
			if isStop(r.err) && ctx.Err() == nil || errors.Is(r.err, core.ErrBudgetExhausted) {
				if stopErr == nil {
					stopErr = r.err
				}
			} else if !isStop(r.err) && len(r.kids) == 0 {
				llmErr = r.err
			}
		}
		if (stopErr != nil && !errors.Is(stopErr, core.ErrBudgetExhausted)) || solved {
			cancel() // nothing in flight matters any more
		}
		settle()
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
	// No answer: the best path of the deepest level reached.
	for d := b.maxDepth; d >= 1; d-- {
		if lv, ok := levels[d]; ok && len(lv.cands) > 0 {
			return core.Outcome{Best: lv.cands[0].id}, err
		}
	}
	return core.Outcome{}, err
}

// expand samples the next steps of one beam node and scores them.
func (b beam) expand(ctx context.Context, env *core.Env, sc scorers, parent beamNode) ([]beamNode, error) {
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
		out[i] = beamNode{id: id, seed: env.Seed(parent.seed, int64(i)), agg: a, depth: parent.depth + 1,
			key: append(append([]int(nil), parent.key...), i)}
		if s := a.score(b.aggregate); !math.IsInf(s, -1) {
			_ = env.Structure.SetStats(id, s, 0)
		}
	}
	return out, err
}
