package strategy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
)

func init() {
	builtins = append(builtins, mctsSpec)
}

// MCTS as x1 (github.com/spcl/x1, x1/strategy/mcts.py) does it:
//
//   - selection descends from the root to a leaf, taking at each node the
//     child maximising norm(Q_i) + sqrt(N − 1)/(1 + N_i) · (c1 + ln((N − 1 +
//     c2 + 1)/c2)), norm(x) = (x − min)/(max − min) over the value range,
//     first child on ties;
//   - expansion adds k children, each with N = 1 and Q the verifier's
//     reward when it is terminal and a verifier applies, else the value
//     model's estimate, mixed with rollouts as (1 − α)·Q + α·mean(rewards);
//   - backpropagation sets, from the expanded node up to the root,
//     Q(s) ← (1 − lr_td)·Q(s) + lr_td·Σ N_i·γ·Q_i / Σ N_i, then N(s) += 1;
//   - the search stops when selection reaches a terminal node (stop_on
//     terminal), after the iterations, or at the end of the budget.
//
// Ponder runs parallel simulations: several selections are in flight at
// once, each adding a virtual loss to the nodes it passed (counted as visits
// valued at the bottom of the range), so that the others spread out and
// every LLM slot stays busy. With parallel = 1 the search is x1's, step for
// step.

// Final-answer rules.
const (
	FinalX1        = "x1"         // follow the selection score from the root (x1's select_best_path_selection)
	FinalMaxVisits = "max-visits" // follow the most visited child
	FinalMaxQ      = "max-q"      // follow the child with the highest Q
)

// Stop rules.
const (
	// StopOnTerminal stops when selection reaches a terminal node, as x1
	// does, except that answers a verifier rejected are never selected.
	StopOnTerminal = "terminal"
	// StopOnAnyTerminal is x1's rule to the letter: rejected answers may be
	// selected, and end the search.
	StopOnAnyTerminal = "any-terminal"
	// StopOnCorrect stops as soon as a verifier accepts an answer; no answer
	// is ever selected.
	StopOnCorrect = "correct"
	// StopOnNone runs the iterations or the budget; no answer is ever
	// selected.
	StopOnNone = "none"
)

type mcts struct {
	iterations, k, rollouts, workers, maxDepth int
	c1, c2, gamma, lrTD, alpha, vmin, vmax, vl float64
	temp                                       float64
	final, stopOn                              string
	widen                                      bool
	ev, verifier                               evalRef
	nested                                     nestedOpts
}

func mctsSpec() core.StrategySpec {
	return core.StrategySpec{
		Name: "mcts",
		Summary: "Monte Carlo tree search as in x1: PUCT-style selection over normalised Q, k children per expansion " +
			"valued by a verifier or a value model (optionally mixed with rollouts), γ-discounted visit-weighted backups; " +
			"parallel simulations with virtual loss",
		Params: append([]core.ParamSpec{
			{Name: "iterations", Type: core.ParamInt, Default: int64(100), Description: "most expansions (x1's max_search_iterations)", Min: core.Bound(1), Max: core.Bound(1e6)},
			{Name: "children", Type: core.ParamInt, Default: int64(2), Description: "new children per expansion (x1's num_new_children)", Min: core.Bound(1), Max: core.Bound(128)},
			{Name: "c1", Type: core.ParamFloat, Default: 1.25, Description: "exploration constant c1", Min: core.Bound(0)},
			{Name: "c2", Type: core.ParamFloat, Default: 19652.0, Description: "exploration constant c2 (> 0)"},
			{Name: "gamma", Type: core.ParamFloat, Default: 0.96, Description: "discount γ of children's values in backups", Min: core.Bound(0), Max: core.Bound(1)},
			{Name: "lr_td", Type: core.ParamFloat, Default: 1.0, Description: "learning rate of the backup Q(s) ← (1 − lr)·Q(s) + lr·Σ N_i·γ·Q_i / Σ N_i (0: backups never change Q, which keeps each node's first value)", Min: core.Bound(0), Max: core.Bound(1)},
			{Name: "rollouts", Type: core.ParamInt, Default: int64(0), Description: "rollouts to the end per new non-terminal child (x1's num_simulations_per_node)", Min: core.Bound(0), Max: core.Bound(64)},
			{Name: "alpha", Type: core.ParamFloat, Default: 0.5, Description: "weight α of the mean rollout reward in Q (used with rollouts > 0)", Min: core.Bound(0), Max: core.Bound(1)},
			{Name: "value_min", Type: core.ParamFloat, Default: -1.0, Description: "bottom of the value range (x1's reward_range) for normalisation"},
			{Name: "value_max", Type: core.ParamFloat, Default: 1.0, Description: "top of the value range"},
			{Name: "final", Type: core.ParamString, Default: FinalX1, Description: "final-answer rule: x1 (follow the selection score), max-visits or max-q; " +
				"an answer a verifier accepted always wins", Enum: []string{FinalX1, FinalMaxVisits, FinalMaxQ}},
			{Name: "stop_on", Type: core.ParamString, Default: StopOnTerminal, Description: "terminal: stop when selection reaches a terminal node (x1), " +
				"never selecting answers a verifier rejected; any-terminal: x1 to the letter; correct: stop when a verifier accepts an answer; " +
				"none: use all iterations", Enum: []string{StopOnTerminal, StopOnAnyTerminal, StopOnCorrect, StopOnNone}},
			{Name: "parallel", Type: core.ParamInt, Default: int64(8), Description: "simulations in flight at once (1: x1's sequential search, reproducible)", Min: core.Bound(1), Max: core.Bound(256)},
			{Name: "virtual_loss", Type: core.ParamFloat, Default: 1.0, Description: "visits valued at value_min that each in-flight simulation adds to the nodes it passed", Min: core.Bound(0), Max: core.Bound(100)},
			{Name: "widen", Type: core.ParamBool, Default: true, Description: "expand a node again (k more children) when every path below it " +
				"ended in a rejected answer or a dead end, instead of stopping with budget left"},
			{Name: "max_depth", Type: core.ParamInt, Default: int64(16), Description: "nodes this deep are not expanded", Min: core.Bound(1), Max: core.Bound(1000)},
			evaluatorParamSpec("evaluator", "value", `value model for non-terminal children (and terminal ones no verifier applies to; "none": their Q starts at 0, before any rollout reward is mixed in)`),
			verifierParam,
			{Name: "temperature", Type: core.ParamFloat, Default: 0.7, Description: "sampling temperature of expansions and rollouts", Min: core.Bound(0), Max: core.Bound(2)},
		}, append([]core.ParamSpec{expandParam, checkStepsParam}, nestedParams...)...),
		New: newMCTS,
	}
}

func newMCTS(p core.Params) (core.Strategy, error) {
	m := mcts{
		iterations: p.Int("iterations"), k: p.Int("children"), rollouts: p.Int("rollouts"), workers: p.Int("parallel"),
		maxDepth: p.Int("max_depth"), c1: p.Float("c1"), c2: p.Float("c2"), gamma: p.Float("gamma"), lrTD: p.Float("lr_td"),
		alpha: p.Float("alpha"), vmin: p.Float("value_min"), vmax: p.Float("value_max"), vl: p.Float("virtual_loss"),
		temp: p.Float("temperature"), final: p.String("final"), stopOn: p.String("stop_on"), widen: p.Bool("widen"),
	}
	if m.c2 <= 0 {
		return nil, fmt.Errorf("%w \"c2\": must be greater than 0, got %v", core.ErrInvalidParam, m.c2)
	}
	if m.vmax <= m.vmin {
		return nil, fmt.Errorf("%w \"value_max\": must be greater than value_min (%v), got %v", core.ErrInvalidParam, m.vmin, m.vmax)
	}
	if m.rollouts > 0 && m.temp == 0 && m.rollouts > 1 {
		return nil, fmt.Errorf("%w \"rollouts\": %d rollouts at temperature 0 are the same rollout", core.ErrInvalidParam, m.rollouts)
	}
	var err error
	if m.ev, err = parseEvalRef("evaluator", p.String("evaluator")); err != nil {
		return nil, err
	}
	if m.verifier, err = parseEvalRef("verifier", p.String("verifier")); err != nil {
		return nil, err
	}
	if m.nested, err = parseNested(p); err != nil {
		return nil, err
	}
	m.nested.check = p.Bool("check_steps")
	return m, nil
}

// mnode is a node of the search tree: the statistics of x1's Node, kept
// beside the structure (whose Node.Value and Node.Visits mirror q and n).
type mnode struct {
	id       core.NodeID
	parent   *mnode
	children []*mnode
	depth    int
	seed     int64

	n        int     // N(s)
	q        float64 // Q(s)
	qModel   float64 // the evaluator's estimate, before rollouts
	terminal bool
	answer   string
	correct  *bool // a verifier's verdict
	scored   bool

	pending int // expansions in flight
	vl      int // in-flight simulations that passed through this node
	// avail counts the leaves below (or at) this node that selection may
	// pick: not pending, not exhausted. open counts those not exhausted,
	// pending or not: a subtree with none open is used up, and its root is
	// widened (expanded again) when widen is on.
	avail, open int
	dead        bool // cannot be expanded (no children came, or too deep)
	expansions  int  // times this node was expanded
	fruitless   int  // expansions in a row that brought no new child
	extra       int  // expansions started while another was in flight
}

// maxPending bounds the expansions of one node in flight at once.
const maxPending = 4

// mctsTree is the shared state of one search.
type mctsTree struct {
	m    mcts
	env  *core.Env
	root *mnode

	mu        sync.Mutex
	cond      *sync.Cond
	started   int // expansions begun
	inflight  int
	stopped   bool   // no new selections
	cancelled bool   // the expansions in flight were cancelled
	reached   *mnode // terminal node selection reached (stop_on terminal)
	err       error  // what stopped the search (budget, context)
	llmErr    error  // last failed expansion
	failures  int    // failed expansions in a row
	cancel    context.CancelFunc
}

// normalize maps x onto [0, 1] over the value range (x1's MinMaxStats).
func (m mcts) normalize(x float64) float64 {
	if m.vmax > m.vmin {
		return (x - m.vmin) / (m.vmax - m.vmin)
	}
	return x
}

// selectionScore is x1's score of a child with visits n and value q under a
// parent with visits np.
func (m mcts) selectionScore(np int, n int, q float64) float64 {
	return m.selectionScoreF(float64(np), float64(n), q)
}

func (m mcts) selectionScoreF(np, n, q float64) float64 {
	explore := math.Sqrt(math.Max(0, np-1)) / (1 + n) * (m.c1 + math.Log((np-1+m.c2+1)/m.c2))
	return m.normalize(q) + explore
}

// effective returns a node's visits and value with its virtual losses
// counted as visits valued at the bottom of the range.
func (m mcts) effective(c *mnode) (float64, float64) {
	if c.vl == 0 || m.vl == 0 {
		return float64(c.n), c.q
	}
	v := float64(c.vl) * m.vl
	n := float64(c.n) + v
	return n, (c.q*float64(c.n) + v*m.vmin) / n
}

// pick returns the child of s with the highest selection score among
// those accept allows; ties go to the first. nil when none is allowed.
func (m mcts) pick(s *mnode, accept func(*mnode) bool) *mnode {
	np, _ := m.effective(s)
	var best *mnode
	bestScore := math.Inf(-1)
	for _, c := range s.children {
		if !accept(c) {
			continue
		}
		n, q := m.effective(c)
		if sc := m.selectionScoreF(np, n, q); best == nil || sc > bestScore {
			best, bestScore = c, sc
		}
	}
	return best
}

// backup is x1's backpropagation from s to the root. It returns the nodes
// whose statistics changed.
func (m mcts) backup(s *mnode, touched []*mnode) []*mnode {
	for ; s != nil; s = s.parent {
		sum, visits := 0.0, 0
		for _, c := range s.children {
			sum += float64(c.n) * m.gamma * c.q
			visits += c.n
		}
		if visits > 0 {
			s.q = (1-m.lrTD)*s.q + m.lrTD*sum/float64(visits)
		}
		s.n++
		touched = append(touched, s)
	}
	return touched
}

// selectable reports whether selection may stop at leaf c.
func (m mcts) selectable(c *mnode) bool {
	switch {
	case c.pending > 0 || c.dead:
		return false
	case c.terminal:
		rejected := c.correct != nil && !*c.correct
		return m.stopOn == StopOnAnyTerminal || (m.stopOn == StopOnTerminal && !rejected)
	}
	return true
}

// Check rejects unknown evaluators and nested strategies before the run.
func (m mcts) Check(p core.Preflight) error {
	if m.nested.strategy == "" {
		if err := sameAtZero(p, "expand", m.nested.mode, m.k, m.temp, "children", "children=1"); err != nil {
			return err
		}
	}
	if err := checkRefs(p, m.ev, m.verifier); err != nil {
		return err
	}
	return m.nested.validate(p)
}

func (m mcts) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	sc, err := buildScorers(env, m.ev, m.verifier)
	if err != nil {
		return core.Outcome{}, err
	}
	if m.nested.check {
		sc.ev = cacheByState(env, sc.ev)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &mctsTree{m: m, env: env, cancel: cancel,
		root: &mnode{id: 0, seed: env.Seed(0), avail: 1, open: 1}}
	t.cond = sync.NewCond(&t.mu)
	// Each simulation values up to k − 1 children beside its own.
	help := startHelpers(min(m.workers*(m.k-1), 64))
	defer help.stop()
	var wg sync.WaitGroup
	for w := 0; w < m.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				leaf, seed, ok := t.acquire()
				if !ok {
					return
				}
				kids, err := m.expand(ctx, env, sc, help, leaf, seed)
				t.complete(leaf, kids, err)
			}
		}()
	}
	wg.Wait()
	return t.finish()
}

// acquire selects a leaf to expand, marks it pending and adds virtual
// losses along its path. It returns the leaf and the seed of its expansion,
// and false when the search is over.
func (t *mctsTree) acquire() (*mnode, int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.m
	for {
		if t.stopped {
			return nil, 0, false
		}
		if t.started >= m.iterations {
			t.endLocked() // the last expansions finish
			return nil, 0, false
		}
		if t.root.avail == 0 {
			if t.widenLocked() {
				continue
			}
			if t.inflight > 0 {
				// Every leaf is being expanded. Rather than leave this
				// simulation's LLM slot idle, expand one of them again
				// (new samples, as widening would once it is back).
				if s := t.alsoExpandLocked(); s != nil {
					seed := t.launchLocked(s)
					return s, seed, true
				}
				t.cond.Wait() // nothing can take more: wait for an expansion
				continue
			}
			t.endLocked() // the tree is exhausted
			return nil, 0, false
		}
		s := t.descend(true)
		if s.terminal && t.inflight > 0 {
			// Virtual losses may have steered this selection: x1 stops only
			// when the selection by the true statistics reaches a terminal
			// node. Otherwise expand the leaf that selection picks.
			s = t.descend(false)
		}
		if s.terminal {
			t.reached = s
			t.env.Tracer.Record(core.OpSelect, []core.NodeID{s.id}, map[string]any{"terminal": true, "iteration": t.started})
			t.stopLocked()
			return nil, 0, false
		}
		return s, t.launchLocked(s), true
	}
}

// launchLocked starts an expansion of s, which selection picked or
// alsoExpandLocked chose: it counts the iteration, marks s pending, adds
// the virtual losses and takes s's selectable slot. It returns the
// expansion's seed: s's own for its first expansion, a new one for each
// widening (x1's sequential search asks exactly these), and another for
// an expansion started while one is in flight.
func (t *mctsTree) launchLocked(s *mnode) int64 {
	seed := s.seed
	switch {
	case s.pending > 0:
		s.extra++
		seed = t.env.Seed(s.seed, -7, int64(s.extra))
	case s.expansions > 0: // widening: new children
		seed = t.env.Seed(s.seed, -int64(s.expansions))
	}
	t.started++
	t.inflight++
	s.pending++
	for p := s; p != nil; p = p.parent {
		p.vl++
		p.avail--
	}
	d := core.SelectData{Iteration: t.started, Depth: s.depth}
	if s.pending > 1 {
		d.InFlight = s.pending
	}
	t.env.Tracer.RecordSelect(s.id, d)
	return seed
}

// alsoExpandLocked is called when every selectable leaf is being expanded
// and nothing can be widened: it picks the most promising node being
// expanded that may take another expansion (the highest value estimate,
// then the shallowest) and gives it one more slot, which launchLocked then
// takes. It returns nil when none can, when widening is off, or when
// expansions are nested searches.
func (t *mctsTree) alsoExpandLocked() *mnode {
	if !t.m.widen || t.m.nested.strategy != "" {
		// An expansion by a nested search makes many calls, several at
		// once: a second one of the same node would not fill an idle slot
		// but spend a share of the budget on one node (four in flight at
		// the root spent all 64 calls of a search there).
		return nil
	}
	var best *mnode
	var walk func(*mnode)
	walk = func(s *mnode) {
		if s.pending > 0 && s.pending < maxPending && !s.terminal && !s.dead && s.depth < t.m.maxDepth {
			if best == nil || s.qModel > best.qModel || (s.qModel == best.qModel && s.depth < best.depth) {
				best = s
			}
		}
		for _, c := range s.children {
			walk(c)
		}
	}
	walk(t.root)
	if best != nil {
		t.adjust(best, 1, 1)
	}
	return best
}

// descend selects from the root down to a leaf selection may pick, with or
// without the virtual losses of the simulations in flight.
func (t *mctsTree) descend(virtual bool) *mnode {
	m := t.m
	if !virtual {
		m.vl = 0
	}
	s := t.root
	for len(s.children) > 0 {
		c := m.pick(s, func(c *mnode) bool { return c.avail > 0 })
		if c == nil {
			break
		}
		s = c
	}
	return s
}

// stopLocked ends the search now: no new selections, and the expansions in
// flight are cancelled (an answer is found, or the budget is spent).
func (t *mctsTree) stopLocked() {
	if !t.stopped || !t.cancelled {
		t.stopped, t.cancelled = true, true
		if t.inflight > 0 {
			t.cancel()
		}
	}
	t.cond.Broadcast()
}

// endLocked lets the expansions in flight finish but starts no more (the
// iterations are used up).
func (t *mctsTree) endLocked() {
	t.stopped = true
	t.cond.Broadcast()
}

// child is a new node and its valuation, made outside the lock.
type child struct {
	id       core.NodeID
	terminal bool
	answer   string
	q        float64
	qModel   float64
	scored   bool
	correct  *bool
}

// expand generates the leaf's children and values them concurrently.
func (m mcts) expand(ctx context.Context, env *core.Env, sc scorers, help *helpers, leaf *mnode, seed int64) ([]child, error) {
	ids, err := m.nested.expand(ctx, env, leaf.id, m.k, seed, m.temp)
	if len(ids) == 0 {
		return nil, err // nil, nil: a dead end
	}
	kids := make([]child, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		n := env.Structure.MustNode(id)
		kids[i] = child{id: id, terminal: n.Terminal, answer: n.Answer}
		if i == len(ids)-1 {
			// The expanding goroutine values the last child itself: one
			// goroutine fewer per expansion.
			errs[i] = m.value(ctx, env, sc, &kids[i], seed, i)
			break
		}
		wg.Add(1)
		help.do(func() {
			defer wg.Done()
			errs[i] = m.value(ctx, env, sc, &kids[i], seed, i)
		})
	}
	wg.Wait()
	if e := firstErr(errs); err == nil || (e != nil && isStop(e)) {
		err = e
	}
	return kids, err
}

// value sets a new child's Q: the verifier's reward for a terminal node
// when one applies, else the evaluator's estimate, mixed with rollouts.
func (m mcts) value(ctx context.Context, env *core.Env, sc scorers, c *child, seed int64, idx int) error {
	if c.terminal || m.alpha < 1 || m.rollouts == 0 {
		e, ok, err := sc.score(ctx, env, c.id, c.terminal)
		if err != nil {
			return err
		}
		c.scored, c.qModel, c.correct = ok, e.Score, e.Correct
	}
	c.q = c.qModel
	if c.terminal || m.rollouts == 0 || m.alpha == 0 {
		return nil
	}
	rewards, err := m.rolloutAll(ctx, env, sc, c.id, env.Seed(seed, int64(idx), -3))
	if len(rewards) > 0 {
		mean := 0.0
		for _, r := range rewards {
			mean += r
		}
		mean /= float64(len(rewards))
		c.q = (1-m.alpha)*c.qModel + m.alpha*mean
		c.scored = true
		setMeta(env, c.id, "rollout_rewards", rewards)
	}
	return err
}

// rolloutAll plays m.rollouts rollouts from node id concurrently and
// returns the rewards of those that got one.
func (m mcts) rolloutAll(ctx context.Context, env *core.Env, sc scorers, id core.NodeID, seed int64) ([]float64, error) {
	rewards := make([]float64, m.rollouts)
	oks := make([]bool, m.rollouts)
	errs := make([]error, m.rollouts)
	var wg sync.WaitGroup
	for i := 0; i < m.rollouts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rewards[i], oks[i], errs[i] = m.rollout(ctx, env, sc, id, env.Seed(seed, int64(i)))
		}()
	}
	wg.Wait()
	var out []float64
	for i, ok := range oks {
		if ok {
			out = append(out, rewards[i])
		}
	}
	return out, firstErr(errs)
}

// rollout continues the path to node id one sampled step at a time until a
// final answer (or max_depth) and scores the finished path with the
// verifier (or the evaluator). Rollout steps are not added to the tree:
// their calls are in the trace (purpose "rollout") and their rewards in the
// node's Meta "rollout_rewards".
func (m mcts) rollout(ctx context.Context, env *core.Env, sc scorers, id core.NodeID, seed int64) (float64, bool, error) {
	path := env.Structure.Path(id)
	steps := append(append([]string(nil), env.Task.Steps...), core.Steps(path)...)
	last := path[len(path)-1]
	for d := last.Depth; d < m.maxDepth; d++ {
		s := env.Seed(seed, int64(d))
		c, err := env.Complete(ctx, core.CompletionRequest{Messages: env.Pack.StepPrompt(env.Task.Problem, steps), N: 1,
			Temperature: tempPtr(m.temp), Seed: &s, Purpose: "rollout"})
		if err != nil {
			return 0, false, err
		}
		if len(c.Choices) == 0 {
			return 0, false, nil
		}
		text := c.Choices[0].Text
		steps = append(steps, text)
		n := core.Node{Kind: core.KindStep, Content: text, Depth: d + 1}
		if a, ok := env.Pack.ExtractAnswer(text); ok {
			n.Kind, n.Answer, n.Terminal = core.KindAnswer, a, true
		}
		path = append(path, n)
		if n.Terminal {
			break
		}
	}
	if sc.final == nil {
		return 0, false, nil
	}
	e, err := sc.final.Evaluate(ctx, core.EvalRequest{Task: env.Task, Path: path, Policy: env.Policy()})
	if err != nil {
		if isStop(err) {
			return 0, false, err
		}
		return 0, false, nil // this rollout goes unscored
	}
	if math.IsNaN(e.Score) || e.Score < -1 || e.Score > 1 {
		return 0, false, nil
	}
	return e.Score, true, nil
}

// complete attaches an expansion's children, backs their values up and
// releases the virtual losses.
func (t *mctsTree) complete(leaf *mnode, kids []child, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.m
	t.inflight--
	leaf.pending--
	for p := leaf; p != nil; p = p.parent {
		p.vl--
	}
	defer t.cond.Broadcast()
	kids = t.newSteps(leaf, kids)
	if len(kids) == 0 {
		switch {
		case t.cancelled:
			// cancelled by the stop: nothing to record
		case isStop(err):
			t.fail(err)
		case err != nil:
			// The LLM failed: the leaf may be tried again, up to 3 failures in a row.
			t.llmErr = err
			t.failures++
			t.adjust(leaf, 1, 0)
			if t.failures >= 3 {
				t.fail(err)
			}
		default:
			// No new child (or only repeats of its children): after three
			// such tries in a row the node is a dead end.
			leaf.fruitless++
			leaf.expansions++
			if leaf.fruitless < 3 && t.m.widen {
				t.adjust(leaf, 1, 0)
				return
			}
			leaf.dead = true
			t.adjust(leaf, 0, -1)
		}
		return
	}
	leaf.fruitless = 0
	t.failures = 0
	leaf.expansions++
	avail, open, first := 0, 0, len(leaf.children)
	solved := false
	// The new children's and the backed-up path's Q and N go to the
	// structure in one stats event.
	stats := make([]core.NodeStats, 0, len(kids)+leaf.depth+1)
	// The new children take one allocation, and the leaf's list room for
	// them at once.
	block := make([]mnode, len(kids))
	leaf.children = slices.Grow(leaf.children, len(kids))
	var dropped []core.NodeID
	for i, k := range kids {
		if t.cancelled && !k.scored && !k.terminal {
			// Its valuation was cancelled by the stop: a step without a
			// value is of no use to a search that is over, and the trace
			// shows it pruned rather than as a node of the tree. An
			// answer is kept, unscored: the search found it, and a stop
			// (Ctrl-C, a timeout) returns the best answer so far.
			dropped = append(dropped, k.id)
			continue
		}
		c := &block[i]
		*c = mnode{id: k.id, parent: leaf, depth: leaf.depth + 1, seed: t.env.Seed(leaf.seed, int64(first+i)),
			n: 1, q: k.q, qModel: k.qModel, terminal: k.terminal, answer: k.answer, correct: k.correct, scored: k.scored}
		c.dead = !c.terminal && c.depth >= m.maxDepth
		if m.selectable(c) {
			c.avail, c.open = 1, 1
			avail++
			open++
		}
		if c.correct != nil && *c.correct {
			solved = true
		}
		leaf.children = append(leaf.children, c)
		if k.scored {
			stats = append(stats, core.NodeStats{ID: c.id, Value: c.q, Visits: c.n})
		} else {
			t.writeUnscored(c)
		}
	}
	if len(dropped) > 0 {
		core.Prune(t.env, dropped...)
	}
	t.adjust(leaf, avail, open-1) // the leaf was one open leaf, pending
	var path [16]*mnode
	for _, s := range m.backup(leaf, path[:0]) {
		stats = append(stats, core.NodeStats{ID: s.id, Value: s.q, Visits: s.n})
	}
	_ = t.env.Structure.SetStatsBatch(stats)
	if err != nil && isStop(err) && !t.cancelled {
		t.fail(err)
	}
	if solved && m.stopOn == StopOnCorrect {
		t.stopLocked()
	}
}

// newSteps drops the kids that repeat a child leaf already has: an
// expansion's own repeats are dropped as it generates them, but two
// expansions of one leaf in flight at once cannot see each other's.
func (t *mctsTree) newSteps(leaf *mnode, kids []child) []child {
	if len(leaf.children) == 0 || len(kids) == 0 {
		return kids
	}
	seen := make(map[string]core.NodeID, len(leaf.children))
	for _, c := range leaf.children {
		seen[dedupeKey(t.env.Structure.MustNode(c.id))] = c.id
	}
	out := kids[:0]
	var dups []core.NodeID
	for _, k := range kids {
		if first, dup := seen[dedupeKey(t.env.Structure.MustNode(k.id))]; dup {
			setMeta(t.env, k.id, "duplicate_of", int(first))
			dups = append(dups, k.id)
			continue
		}
		out = append(out, k)
	}
	if len(dups) > 0 {
		core.Prune(t.env, dups...)
	}
	return out
}

// adjust adds da selectable and do open leaves to s and its ancestors.
func (t *mctsTree) adjust(s *mnode, da, do int) {
	for p := s; p != nil; p = p.parent {
		p.avail += da
		p.open += do
	}
}

// widenLocked is called when selection finds no leaf to expand: every
// path ended in a rejected answer or a dead end, or is being expanded. Rather
// than stop (or wait), it opens the most promising expanded node again (the
// highest value estimate, then the shallowest), so that its next expansion
// adds k more children. It reports false when widen is off or no node can
// grow.
func (t *mctsTree) widenLocked() bool {
	if !t.m.widen {
		return false
	}
	var best *mnode
	var walk func(*mnode)
	walk = func(s *mnode) {
		if s.pending == 0 && len(s.children) > 0 && !s.terminal && !s.dead && s.depth < t.m.maxDepth {
			if best == nil || s.qModel > best.qModel || (s.qModel == best.qModel && s.depth < best.depth) {
				best = s
			}
		}
		for _, c := range s.children {
			walk(c)
		}
	}
	walk(t.root)
	if best == nil {
		return false
	}
	t.adjust(best, 1, 1)
	t.env.Tracer.Record(core.OpInfo, []core.NodeID{best.id}, map[string]any{"widen": best.expansions + 1})
	t.cond.Broadcast() // the other waiting simulations may widen more
	return true
}

// fail stops the search with err (the first one is kept).
//
// A spent budget ends the search without cancelling the expansions in
// flight: their calls were charged when they were sent, so cancelling them
// would throw away what the budget paid for (and leave it unspent).
func (t *mctsTree) fail(err error) {
	if t.err == nil {
		t.err = err
	}
	if errors.Is(err, core.ErrBudgetExhausted) {
		t.endLocked()
		return
	}
	t.stopLocked()
}

// writeUnscored mirrors the Q and N of a child that got no value into the
// structure and marks it unscored, so traces and viewers show it.
func (t *mctsTree) writeUnscored(s *mnode) {
	q, n := s.q, s.n
	_ = t.env.Structure.Update(s.id, func(nd *core.Node) {
		nd.Value, nd.Visits = q, n
		if nd.Meta == nil {
			nd.Meta = map[string]any{}
		}
		nd.Meta["unscored"] = true
	})
}

// finish picks the answer by the final-answer rule and reports why the
// search stopped.
func (t *mctsTree) finish() (core.Outcome, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.m
	leaf := m.finalPath(t.root)
	var all []*mnode
	var walk func(*mnode)
	walk = func(s *mnode) {
		all = append(all, s)
		for _, c := range s.children {
			walk(c)
		}
	}
	walk(t.root)
	var ans *mnode
	better := func(a, b *mnode) bool { // a beats b
		if a.q != b.q {
			return a.q > b.q
		}
		return a.n > b.n
	}
	// An answer a verifier accepted wins whatever the rule.
	for _, s := range all {
		if s.answer != "" && s.correct != nil && *s.correct && (ans == nil || better(s, ans)) {
			ans = s
		}
	}
	if ans == nil && leaf.terminal && leaf.answer != "" && (leaf.correct == nil || *leaf.correct) {
		ans = leaf
	}
	if ans == nil {
		for _, s := range all {
			if s.answer != "" && (s.correct == nil || *s.correct) && (ans == nil || better(s, ans)) {
				ans = s
			}
		}
	}
	if ans == nil {
		for _, s := range all {
			if s.answer != "" && (ans == nil || better(s, ans)) {
				ans = s
			}
		}
	}
	info := map[string]any{"iterations": t.started, "nodes": len(all), "final": m.final}
	if t.reached != nil {
		info["reached_terminal"] = int(t.reached.id)
	}
	t.env.Tracer.Record(core.OpInfo, nil, info)
	err := t.err
	var out core.Outcome
	if ans != nil {
		q := ans.q
		out = core.Outcome{Answer: ans.answer, Best: ans.id, Score: &q}
	} else {
		out = core.Outcome{Best: leaf.id}
		if err == nil && t.llmErr != nil {
			err = t.llmErr
		}
		if err == nil {
			// A bare "done" without an answer leaves the caller guessing.
			out.Note = fmt.Sprintf("no answer: %s (max_depth %d) found none; more iterations or a higher max_depth search further",
				text.Count(t.started, "iteration"), m.maxDepth)
		}
	}
	return out, err
}

// finalPath follows the final-answer rule from s down to a leaf.
func (m mcts) finalPath(s *mnode) *mnode {
	for len(s.children) > 0 {
		var next *mnode
		switch m.final {
		case FinalMaxVisits:
			for _, c := range s.children {
				if next == nil || c.n > next.n || (c.n == next.n && c.q > next.q) {
					next = c
				}
			}
		case FinalMaxQ:
			for _, c := range s.children {
				if next == nil || c.q > next.q {
					next = c
				}
			}
		default:
			bestScore := math.Inf(-1)
			for _, c := range s.children {
				if sc := m.selectionScore(s.n, c.n, c.q); next == nil || sc > bestScore {
					next, bestScore = c, sc
				}
			}
		}
		s = next
	}
	return s
}
