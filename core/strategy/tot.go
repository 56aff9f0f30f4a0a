package strategy

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

func init() {
	builtins = append(builtins, totBFSSpec, totDFSSpec)
}

// Tree of Thoughts (Yao et al., 2023). A state is a partial solution;
// candidates for its next step come from the pack's propose prompt (one
// call lists several moves: Game of 24) or from sampling the step prompt;
// a value prompt rates each candidate. BFS keeps the `breadth` best states
// per level; DFS follows the best candidate first, prunes those valued
// below the threshold and backtracks from dead ends.

// Candidate generation modes.
const (
	GenAuto    = "auto"    // propose when the pack has a propose prompt, else sample
	GenPropose = "propose" // the pack's propose prompt (tasks.Proposer)
	GenSample  = "sample"  // k samples of the step prompt
)

type tot struct {
	dfs           bool
	breadth, k    int
	maxDepth      int
	maxStates     int
	threshold     float64
	gen           string
	temp          float64
	stopOnCorrect bool
	ev, verifier  evalRef
}

func totParams(dfs bool) []core.ParamSpec {
	thr, desc := -1.0, "candidates valued below it are pruned (-1: none)"
	if dfs {
		thr, desc = 0.0, "candidates valued below it are pruned and not explored"
	}
	ps := []core.ParamSpec{
		{Name: "samples", Type: core.ParamInt, Default: int64(0), Description: "propose calls (propose) or sampled steps (sample) per state; 0: 1 propose call, or 3 samples", Min: core.Bound(0), Max: core.Bound(64)},
		{Name: "max_depth", Type: core.ParamInt, Default: int64(10), Description: "most steps per solution (Game of 24: 4)", Min: core.Bound(1), Max: core.Bound(100)},
		{Name: "threshold", Type: core.ParamFloat, Default: thr, Description: desc, Min: core.Bound(-1), Max: core.Bound(1)},
		{Name: "generate", Type: core.ParamString, Default: GenAuto, Description: "candidates from the pack's propose prompt (propose), sampled steps (sample), or propose when the pack has one (auto)",
			Enum: []string{GenAuto, GenPropose, GenSample}},
		evaluatorParamSpec("evaluator", "value", "rates each candidate state (ToT's value prompt)"),
		verifierParam,
		{Name: "stop_on_correct", Type: core.ParamBool, Default: true, Description: "stop as soon as a verifier accepts an answer"},
		{Name: "temperature", Type: core.ParamFloat, Default: 0.7, Description: "sampling temperature of the candidates", Min: core.Bound(0), Max: core.Bound(2)},
	}
	if dfs {
		return append(ps, core.ParamSpec{Name: "max_states", Type: core.ParamInt, Default: int64(100), Description: "most states expanded", Min: core.Bound(1), Max: core.Bound(1e6)})
	}
	return append([]core.ParamSpec{{Name: "breadth", Type: core.ParamInt, Default: int64(5), Description: "states kept per level (ToT's b)", Min: core.Bound(1), Max: core.Bound(256)}}, ps...)
}

func newTot(dfs bool) func(core.Params) (core.Strategy, error) {
	return func(p core.Params) (core.Strategy, error) {
		t := tot{dfs: dfs, breadth: p.Int("breadth"), k: p.Int("samples"), maxDepth: p.Int("max_depth"), maxStates: p.Int("max_states"),
			threshold: p.Float("threshold"), gen: p.String("generate"), temp: p.Float("temperature"), stopOnCorrect: p.Bool("stop_on_correct")}
		if t.gen != GenPropose && t.k != 1 && t.temp == 0 {
			return nil, fmt.Errorf("%w \"temperature\": %d samples at temperature 0 are the same step: set temperature (e.g. 0.7) or samples=1", core.ErrInvalidParam, t.k)
		}
		var err error
		if t.ev, err = parseEvalRef("evaluator", p.String("evaluator")); err != nil {
			return nil, err
		}
		if t.verifier, err = parseEvalRef("verifier", p.String("verifier")); err != nil {
			return nil, err
		}
		return t, nil
	}
}

func totBFSSpec() core.StrategySpec {
	return core.StrategySpec{
		Name: "tot-bfs",
		Summary: "tree of thoughts, breadth-first: per level, propose next steps for every kept state, rate each with the " +
			"value prompt and keep the `breadth` best (Game of 24's propose/value prompts)",
		Params: totParams(false),
		New:    newTot(false),
	}
}

func totDFSSpec() core.StrategySpec {
	return core.StrategySpec{
		Name: "tot-dfs",
		Summary: "tree of thoughts, depth-first: follow the best-rated candidate, prune candidates valued below the threshold, " +
			"backtrack from dead ends; stops at the first accepted answer",
		Params: totParams(true),
		New:    newTot(true),
	}
}

// totCand is a rated candidate state.
type totCand struct {
	id       core.NodeID
	score    float64 // -inf when unscored
	terminal bool
	right    *bool
	order    [2]int
}

type totRun struct {
	tot
	env      *core.Env
	sc       scorers
	proposer tasks.Proposer

	mu       sync.Mutex
	finished []core.NodeID
	solved   bool
	states   int
}

func (t tot) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	sc, err := buildScorers(env, t.ev, t.verifier)
	if err != nil {
		return core.Outcome{}, err
	}
	r := &totRun{tot: t, env: env, sc: sc}
	if pr, ok := env.Pack.(tasks.Proposer); ok && t.gen != GenSample {
		r.proposer = pr
	} else if t.gen == GenPropose {
		return core.Outcome{}, fmt.Errorf("%w \"generate\": the %s pack has no propose prompt; use generate=sample", core.ErrInvalidParam, env.Pack.Name())
	}
	var best core.NodeID
	if t.dfs {
		err = r.dfs(ctx, 0, 0)
	} else {
		best, err = r.bfs(ctx)
	}
	var answers []core.Node
	for _, id := range r.finished {
		answers = append(answers, env.Structure.MustNode(id))
	}
	if a, ok := bestAnswer(answers); ok {
		return outcome(a), err
	}
	return core.Outcome{Best: best}, err
}

// candidates proposes (or samples) the next steps of state id and rates
// them; rank orders ties. Duplicates of an earlier candidate of the same
// state are pruned and not rated.
func (r *totRun) candidates(ctx context.Context, id core.NodeID, rank int) ([]totCand, error) {
	env := r.env
	path := env.Structure.Path(id)
	steps := append(append([]string(nil), env.Task.Steps...), core.Steps(path)...)
	seed := env.Seed(stepsHash(steps), -11) // the state's, whatever its node id
	r.mu.Lock()
	r.states++
	r.mu.Unlock()
	if r.proposer == nil {
		k := r.k
		if k == 0 {
			k = 3
		}
		ids, err := core.Generate(ctx, env, id, k, core.GenerateOptions{Temperature: tempPtr(r.temp), Seed: &seed, Purpose: "propose"})
		if len(ids) == 0 {
			return nil, err
		}
		return r.rate(ctx, dedupe(env, ids), rank, err)
	}
	ids, err := proposeSteps(ctx, env, r.proposer, id, steps, max(r.k, 1), 0, seed, r.temp)
	if len(ids) == 0 {
		return nil, err
	}
	return r.rate(ctx, ids, rank, err)
}

// rate scores the candidates concurrently; terminal ones join the
// finished answers.
func (r *totRun) rate(ctx context.Context, ids []core.NodeID, rank int, genErr error) ([]totCand, error) {
	terminal := make([]bool, len(ids))
	for i, id := range ids {
		terminal[i] = r.env.Structure.MustNode(id).Terminal
	}
	evs, oks, err := r.sc.scoreAll(ctx, r.env, ids, terminal)
	if genErr != nil && (err == nil || !isStop(err)) {
		err = genErr
	}
	out := make([]totCand, len(ids))
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, id := range ids {
		c := totCand{id: id, score: math.Inf(-1), terminal: terminal[i], order: [2]int{rank, i}}
		if oks[i] {
			c.score, c.right = evs[i].Score, evs[i].Correct
		}
		if c.terminal {
			r.finished = append(r.finished, id)
			if c.right != nil && *c.right && r.stopOnCorrect {
				r.solved = true
			}
		}
		out[i] = c
	}
	return out, err
}

// below reports a candidate rated under the threshold; an unscored one is
// not (it ranks last but is kept).
func (c totCand) below(threshold float64) bool {
	return !math.IsInf(c.score, -1) && c.score < threshold
}

func sortCands(cs []totCand) {
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].score != cs[j].score {
			return cs[i].score > cs[j].score
		}
		return cs[i].order[0] < cs[j].order[0] || (cs[i].order[0] == cs[j].order[0] && cs[i].order[1] < cs[j].order[1])
	})
}

// bfs expands every kept state of a level concurrently. It returns the best
// state of the last level, for an answerless outcome.
func (r *totRun) bfs(ctx context.Context) (core.NodeID, error) {
	frontier := []core.NodeID{0}
	for depth := 1; depth <= r.maxDepth && len(frontier) > 0; depth++ {
		level := make([][]totCand, len(frontier))
		errs := make([]error, len(frontier))
		var wg sync.WaitGroup
		for i, id := range frontier {
			wg.Add(1)
			go func() {
				defer wg.Done()
				level[i], errs[i] = r.candidates(ctx, id, i)
			}()
		}
		wg.Wait()
		var next []totCand
		var pruned []core.NodeID
		for _, cs := range level {
			for _, c := range cs {
				switch {
				case c.terminal:
				case c.below(r.threshold):
					pruned = append(pruned, c.id)
				default:
					next = append(next, c)
				}
			}
		}
		sortCands(next)
		if len(next) > r.breadth {
			for _, c := range next[r.breadth:] {
				pruned = append(pruned, c.id)
			}
			next = next[:r.breadth]
		}
		if len(pruned) > 0 {
			core.Prune(r.env, pruned...)
		}
		prev := frontier
		frontier = frontier[:0:0]
		for _, c := range next {
			frontier = append(frontier, c.id)
		}
		r.env.Tracer.Record(core.OpSelect, frontier, map[string]any{"depth": depth, "finished": len(r.finished)})
		err := firstErr(errs)
		if err != nil && (isStop(err) || len(next) == 0) {
			return bestOf(prev, frontier), err
		}
		if r.solved {
			return bestOf(prev, frontier), nil
		}
	}
	return bestOf(nil, frontier), nil
}

func bestOf(prev, cur []core.NodeID) core.NodeID {
	if len(cur) > 0 {
		return cur[0]
	}
	if len(prev) > 0 {
		return prev[0]
	}
	return 0
}

// dfs explores state id (at depth) depth-first.
func (r *totRun) dfs(ctx context.Context, id core.NodeID, depth int) error {
	if r.states >= r.maxStates {
		return nil
	}
	cs, err := r.candidates(ctx, id, 0)
	if err != nil && (isStop(err) || len(cs) == 0) {
		return err
	}
	sortCands(cs)
	var pruned []core.NodeID
	for _, c := range cs {
		if !c.terminal && (c.below(r.threshold) || depth+1 >= r.maxDepth) {
			pruned = append(pruned, c.id)
		}
	}
	if len(pruned) > 0 {
		core.Prune(r.env, pruned...)
	}
	for _, c := range cs {
		if r.solved {
			return nil
		}
		if c.terminal {
			// Without a verifier's verdict, the first answer rated at or above
			// the threshold is accepted (ToT's DFS stops at a solution).
			if c.right == nil && c.score >= r.threshold && r.stopOnCorrect {
				r.solved = true
			}
			continue
		}
		if c.below(r.threshold) || depth+1 >= r.maxDepth {
			continue
		}
		if err := r.dfs(ctx, c.id, depth+1); err != nil {
			return err
		}
		if r.solved || r.states >= r.maxStates {
			return nil
		}
	}
	if id != 0 {
		core.Backtrack(r.env, id)
	}
	return nil
}
