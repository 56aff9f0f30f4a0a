package strategy

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
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
// per level, and makes further passes from the root while it has found no
// answer but rejected ones (see bfs); DFS follows the best candidate first,
// prunes those valued below the threshold and backtracks from dead ends.
// With check_steps, the pack's step checker drops illegal steps, merges
// paths that reach one state and finishes paths whose steps determine the
// answer, without LLM calls.

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
	check         bool
	passes        int
	penalty       float64
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
		evaluatorParamSpec("evaluator", "value", `rates each candidate state (ToT's value prompt; "none": states are not rated and rank in the order they were proposed)`),
		verifierParam,
		{Name: "stop_on_correct", Type: core.ParamBool, Default: true, Description: "stop as soon as a verifier accepts an answer"},
		{Name: "temperature", Type: core.ParamFloat, Default: 0.7, Description: "sampling temperature of the candidates", Min: core.Bound(0), Max: core.Bound(2)},
	}
	ps = append(ps, checkStepsParam)
	if dfs {
		return append(ps, core.ParamSpec{Name: "max_states", Type: core.ParamInt, Default: int64(100), Description: "most states expanded", Min: core.Bound(1), Max: core.Bound(1e6)})
	}
	ps = append(ps,
		core.ParamSpec{Name: "passes", Type: core.ParamInt, Default: int64(10), Description: "most breadth-first passes: when a pass ends " +
			"with no answer, or only answers a verifier rejected, the next starts again from the root with what the earlier ones " +
			"learnt (1: Tree of Thoughts' single pass); the search also ends with the budget, or after two passes that found no new state", Min: core.Bound(1), Max: core.Bound(1000)},
		core.ParamSpec{Name: "retry_penalty", Type: core.ParamFloat, Default: 0.5, Description: "in later passes, a state's value is " +
			"lowered by this for every earlier pass that kept it, so that the next best states get their turn", Min: core.Bound(0), Max: core.Bound(2)})
	return append([]core.ParamSpec{{Name: "breadth", Type: core.ParamInt, Default: int64(5), Description: "states kept per level (ToT's b)", Min: core.Bound(1), Max: core.Bound(256)}}, ps...)
}

func newTot(dfs bool) func(core.Params) (core.Strategy, error) {
	return func(p core.Params) (core.Strategy, error) {
		t := tot{dfs: dfs, breadth: p.Int("breadth"), k: p.Int("samples"), maxDepth: p.Int("max_depth"), maxStates: p.Int("max_states"),
			threshold: p.Float("threshold"), gen: p.String("generate"), temp: p.Float("temperature"), stopOnCorrect: p.Bool("stop_on_correct"),
			check: p.Bool("check_steps"), passes: max(p.Int("passes"), 1), penalty: p.Float("retry_penalty")}
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

	// BFS: the states met so far, by key (a state reached by two paths is
	// one state), in the order met.
	byKey map[string]*tstate
	all   []*tstate
}

// tstate is a state of the breadth-first search.
type tstate struct {
	id       core.NodeID
	key      string
	score    float64 // -inf when unscored
	rated    bool    // the evaluator was asked (a terminal state: the verifier)
	terminal bool
	order    int
	kept     int // passes that kept it
	proposed int // its expansions (propose calls or sample requests)
	children []*tstate
}

// Check rejects unknown evaluators before the run.
func (t tot) Check(p core.Preflight) error {
	n := t.k
	if n == 0 {
		n = 3 // the default of sampling
	}
	if err := sameAtZero(p, "generate", t.gen, n, t.temp, "samples", "samples=1"); err != nil {
		return err
	}
	return checkRefs(p, t.ev, t.verifier)
}

func (t tot) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	sc, err := buildScorers(env, t.ev, t.verifier)
	if err != nil {
		return core.Outcome{}, err
	}
	if t.check {
		sc.ev = cacheByState(env, sc.ev)
	}
	r := &totRun{tot: t, env: env, sc: sc, byKey: map[string]*tstate{}}
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
	out := core.Outcome{Best: best}
	if err == nil {
		// Faithful to ToT, but a bare "done" without an answer leaves the
		// caller guessing.
		r.mu.Lock()
		outOfStates := t.dfs && r.states >= t.maxStates
		r.mu.Unlock()
		if outOfStates {
			out.Note = fmt.Sprintf("no answer: the search expanded max_states (%d) states without one", t.maxStates)
		} else if t.threshold > -1 {
			out.Note = fmt.Sprintf("no answer: every path was pruned (valued below threshold %g) or reached max_depth %d "+
				"without one; a lower threshold or a higher max_depth searches further", t.threshold, t.maxDepth)
		} else {
			out.Note = fmt.Sprintf("no answer: every path reached max_depth %d without one; a higher max_depth searches further", t.maxDepth)
		}
	}
	return out, err
}

// generate proposes (or samples) the next steps of state id, its
// expansion-th time, and returns the new children: repeats of its other
// children are pruned, and with check_steps illegal steps are dropped and
// finished paths become answers.
func (r *totRun) generate(ctx context.Context, id core.NodeID, expansion int) ([]core.NodeID, error) {
	env := r.env
	path := env.Structure.Path(id)
	steps := append(append([]string(nil), env.Task.Steps...), core.Steps(path)...)
	seed := env.Seed(stepsHash(steps), -11) // the state's, whatever its node id
	if expansion > 0 {
		seed = env.Seed(seed, int64(expansion))
	}
	r.mu.Lock()
	r.states++
	r.mu.Unlock()
	if r.proposer == nil {
		k := r.k
		if k == 0 {
			k = 3
		}
		ids, err := core.Generate(ctx, env, id, k, core.GenerateOptions{Temperature: tempPtr(r.temp), Seed: &seed, Purpose: "propose"})
		if r.check {
			ids = screen(env, ids)
		}
		return dedupe(env, ids), err
	}
	return proposeSteps(ctx, env, r.proposer, id, steps, max(r.k, 1), 0, seed, r.temp, r.check)
}

// candidates proposes (or samples) the next steps of state id and rates
// them; rank orders ties. Duplicates of an earlier candidate of the same
// state are pruned and not rated.
func (r *totRun) candidates(ctx context.Context, id core.NodeID, rank int) ([]totCand, error) {
	ids, err := r.generate(ctx, id, 0)
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

// bfs runs breadth-first passes from the root. A pass expands every kept
// state of a level (concurrently), rates the new candidates, and keeps the
// `breadth` best children of the level's states for the next level. When a
// pass ends without an accepted answer, the next one starts again from the
// root: each kept state is expanded once more (fresh proposals), states
// known from earlier passes compete again with what they were rated, each
// lowered by retry_penalty for every pass that kept it, and no state is
// rated twice. Passes go on only while every answer found was rejected by
// a verifier (or none was found). It returns the best state of the last level, for an
// answerless outcome.
func (r *totRun) bfs(ctx context.Context) (core.NodeID, error) {
	root := &tstate{id: 0, key: "root", order: -1}
	var best core.NodeID
	idle := 0
	for pass := 0; pass < r.passes; pass++ {
		before := len(r.all)
		b, err := r.pass(ctx, root, pass)
		if b != 0 || best == 0 {
			best = b
		}
		if err != nil || r.solved {
			r.pruneUnkept()
			return best, err
		}
		if r.answered() {
			break // an answer no verifier could check: as good as more passes would know
		}
		if len(r.all) == before {
			if idle++; idle >= 2 {
				break
			}
		} else {
			idle = 0
		}
	}
	r.pruneUnkept()
	return best, nil
}

// answered reports an answer that is right or that no verifier checked:
// further passes are only for searches that know they have failed.
func (r *totRun) answered() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range r.finished {
		if ok, known := correctOf(r.env.Structure.MustNode(id)); ok || !known {
			return true
		}
	}
	return false
}

// pass is one breadth-first pass.
func (r *totRun) pass(ctx context.Context, root *tstate, pass int) (core.NodeID, error) {
	frontier := []*tstate{root}
	var best core.NodeID
	for depth := 1; depth <= r.maxDepth && len(frontier) > 0; depth++ {
		errs := make([]error, len(frontier))
		kids := make([][]core.NodeID, len(frontier))
		// One request of k samples (or proposals) per state.
		r.env.ForEach(len(frontier), int64(max(r.k, 1)), func(i int) {
			kids[i], errs[i] = r.generate(ctx, frontier[i].id, frontier[i].proposed)
		})
		// New states are registered in frontier order, whatever order the
		// calls came back in, so that runs are reproducible.
		var answers []*tstate
		for i, s := range frontier {
			s.proposed++
			answers = append(answers, r.register(s, kids[i])...)
		}
		if err := r.rateStates(ctx, answers); err != nil && isStop(err) {
			errs = append(errs, err)
		}
		// The level's candidates: the children of the kept states, from
		// this pass and earlier ones, each state once.
		var next []*tstate
		in := map[*tstate]bool{}
		for _, s := range frontier {
			for _, c := range s.children {
				if !in[c] && !c.terminal && !(!math.IsInf(c.score, -1) && c.score < r.threshold) {
					in[c] = true
					next = append(next, c)
				}
			}
		}
		// Ratings only order the candidates: when all of them are kept
		// (and none can fall below the threshold), they are rated later,
		// when a later level or pass has to choose among them.
		if len(next) > r.breadth || r.threshold > -1 {
			if err := r.rateStates(ctx, next); err != nil {
				return best, err
			}
			if r.threshold > -1 {
				next = slices.DeleteFunc(next, func(c *tstate) bool { return !math.IsInf(c.score, -1) && c.score < r.threshold })
			}
		}
		sort.SliceStable(next, func(i, j int) bool {
			a, b := r.rank(next[i]), r.rank(next[j])
			if a != b {
				return a > b
			}
			return next[i].order < next[j].order
		})
		if len(next) > r.breadth {
			next = next[:r.breadth]
		}
		ids := make([]core.NodeID, len(next))
		for i, c := range next {
			c.kept++
			ids[i] = c.id
		}
		if len(next) > 0 {
			best = next[0].id
		}
		r.env.Tracer.Record(core.OpSelect, ids, map[string]any{"depth": depth, "pass": pass + 1, "finished": len(r.finished)})
		frontier = next
		err := firstErr(errs)
		if err != nil && (isStop(err) || len(next) == 0) {
			return best, err
		}
		if r.solved {
			return best, nil
		}
	}
	return best, nil
}

// rank is a state's value for selection: its rating, lowered by the
// retry penalty for every pass that kept it (unscored: last).
func (r *totRun) rank(s *tstate) float64 {
	if math.IsInf(s.score, -1) {
		return s.score
	}
	return s.score - r.penalty*float64(s.kept)
}

// register adds the new children ids of s as states; a state already met
// through another path is linked, not added again. It returns the new
// terminal states, to be checked.
func (r *totRun) register(s *tstate, ids []core.NodeID) []*tstate {
	var dups []core.NodeID
	var answers []*tstate
	for _, id := range ids {
		n := r.env.Structure.MustNode(id)
		key, ok := n.Meta["state"].(string)
		if !ok || key == "" {
			key = "node " + strconv.Itoa(int(id))
		}
		if old, seen := r.byKey[key]; seen {
			setMeta(r.env, id, "duplicate_of", int(old.id))
			dups = append(dups, id)
			if !slices.Contains(s.children, old) {
				s.children = append(s.children, old)
			}
			continue
		}
		c := &tstate{id: id, key: key, score: math.Inf(-1), terminal: n.Terminal, order: len(r.all)}
		r.byKey[key] = c
		r.all = append(r.all, c)
		s.children = append(s.children, c)
		if c.terminal {
			answers = append(answers, c)
		}
	}
	if len(dups) > 0 {
		core.Prune(r.env, dups...)
	}
	return answers
}

// rateStates rates the states not rated yet, concurrently; terminal ones
// join the finished answers.
func (r *totRun) rateStates(ctx context.Context, states []*tstate) error {
	var todo []*tstate
	var ids []core.NodeID
	r.mu.Lock()
	for _, c := range states {
		if !c.rated {
			c.rated = true
			todo = append(todo, c)
			ids = append(ids, c.id)
		}
	}
	r.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	cs, err := r.rate(ctx, ids, 0, nil)
	r.mu.Lock()
	for i, c := range cs {
		todo[i].score = c.score
	}
	r.mu.Unlock()
	return err
}

// pruneUnkept marks the states no pass kept (and no answer) as pruned, so
// the structure shows what the search followed.
func (r *totRun) pruneUnkept() {
	var ids []core.NodeID
	for _, s := range r.all {
		if s.kept == 0 && !s.terminal {
			ids = append(ids, s.id)
		}
	}
	if len(ids) > 0 {
		core.Prune(r.env, ids...)
	}
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
