package strategy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
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
// the best of them by the verifier, then by score, is the answer. A pass
// that ends with no answer, or only with answers the verifier rejected, is
// followed by another (up to passes): it expands the root again and, at
// every depth, the next beam_width best paths not expanded yet.
type beam struct {
	width, k, maxDepth, passes int
	temp                       float64
	aggregate                  string
	stopOnCorrect              bool
	ev, verifier               evalRef
	nested                     nestedOpts
	// overlap: with n > 0 the next pass starts before this one ends,
	// its calls issued while fewer than n of the search's are in flight.
	overlap int
	// barrier holds every candidate back until all of its depth is
	// scored: level-by-level beam search, which the tests compare the
	// barrier-free search with.
	barrier bool
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
			evaluatorParamSpec("evaluator", "prm", `scores each new step ("none": steps are not scored and paths rank in the order they were sampled; answers are checked by the verifier alone)`),
			{Name: "aggregate", Type: core.ParamString, Default: AggLast, Description: "path score from the step scores: last, min, mean or product",
				Enum: []string{AggLast, AggMin, AggMean, AggProduct}},
			verifierParam,
			{Name: "stop_on_correct", Type: core.ParamBool, Default: true, Description: "stop as soon as a verifier accepts an answer"},
			{Name: "passes", Type: core.ParamInt, Default: int64(10), Min: core.Bound(1), Max: core.Bound(1000),
				Description: "most passes: when a pass ends with no answer, or only with answers the verifier rejected, the next one expands " +
					"the root again and, at every depth, the next beam_width best paths not expanded yet (or, where fewer are left, the best " +
					"ones again with fresh samples), reusing everything already generated and scored; the budget still bounds it (1: one pass)"},
			{Name: "overlap_passes", Type: core.ParamInt, Default: int64(0), Min: core.Bound(0), Max: core.Bound(4096),
				Description: "0: each pass starts when the one before ends; n > 0: the next pass starts with this " +
					"one and runs behind it, choosing at each depth once this one has chosen there, so it chooses what it would have chosen " +
					"after this one; its calls go out only while fewer than n of the search's calls are in flight (set n to the LLM " +
					"concurrency), filling slots this pass leaves idle. Speculative: when this pass ends with an answer the verifier does " +
					"not reject, the next is abandoned and the calls it made are wasted (they count against the budget). With " +
					"stop_on_correct, an answer the verifier accepts in the next pass is held (and the next pass makes no more calls) " +
					"until this pass ends: it ends the search then if this pass found none, and is dropped with its pass if this one did"},
			{Name: "temperature", Type: core.ParamFloat, Default: 0.7, Description: "sampling temperature of the steps", Min: core.Bound(0), Max: core.Bound(2)},
		}, append([]core.ParamSpec{expandParam, checkStepsParam}, nestedParams...)...),
		New: func(p core.Params) (core.Strategy, error) {
			b := beam{width: p.Int("beam_width"), k: p.Int("expansions"), maxDepth: p.Int("max_depth"), passes: p.Int("passes"),
				temp: p.Float("temperature"), aggregate: p.String("aggregate"), stopOnCorrect: p.Bool("stop_on_correct"),
				overlap: p.Int("overlap_passes")}
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
			b.nested.check = p.Bool("check_steps")
			return b, nil
		},
	}
}

// pathAgg accumulates step scores along a path.
type pathAgg struct {
	n              int
	last, min, sum float64
	prod           float64
	unscored       bool
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

// beamNode is a node of the search: the root, a candidate (an unfinished
// path) or an answer.
type beamNode struct {
	id       core.NodeID
	seed     int64
	depth    int
	parent   *beamNode
	terminal bool
	// key breaks ties deterministically: the sample indices on the path.
	key []int

	scored  bool    // its evaluation returned
	step    float64 // the evaluation's score, when stepOK
	stepOK  bool
	right   bool    // a verifier accepted it
	wrong   bool    // a verifier rejected it
	known   bool    // agg is final: the node and all its ancestors are scored
	kidsUB  float64 // once known: the best path score a child can get (bestScore)
	agg     pathAgg // the path's step scores
	sc      float64 // agg's score: what candidates are ranked by
	waiting []*beamNode
	// deferred: not scored, since beam_width known candidates of its depth
	// beat ub, the best score it could get.
	deferred bool
	ub       float64

	pass   int // the pass that chose it for the beam; 0: none
	again  int // the last later pass that expanded it again
	born   int // the pass whose expansion brought it
	rounds int // expansions started
	// rem: children its expansions may still bring, by the parity of the
	// pass that started them (at most two passes run at once).
	rem [2]int
	// later holds the calls of an expansion by a pass that runs ahead,
	// which wait for the pass before it to finish expanding the node: an
	// expansion drops steps that repeat the node's children, so the
	// expansions of a node go in pass order.
	later  []func()
	kids   int   // children it got
	kidKey []int // key + [-1]: before the key of every child
	err    error
}

// rankLess orders candidates of a depth: higher score first, then the
// smaller key.
func rankLess(sx float64, xkey []int, sy float64, ykey []int) bool {
	if sx != sy {
		return sx > sy
	}
	for i := 0; i < len(xkey) && i < len(ykey); i++ {
		if xkey[i] != ykey[i] {
			return xkey[i] < ykey[i]
		}
	}
	return len(xkey) < len(ykey)
}

// beamLevel is the bookkeeping of one depth for one pass at a time: the
// passes reach a depth in order, a later one once the one before has
// settled it.
type beamLevel struct {
	pass  int         // the pass that this bookkeeping is for
	nodes []*beamNode // unfinished candidates at this depth, in arrival order
	known []*beamNode // those whose path score is final, best first
	// Of the nodes no earlier pass chose (and that no later pass brought):
	// total counts them; open holds
	// those not known (nor deferred) yet, and a few known ones until the
	// next settle drops them; deferred, the deferred ones.
	total          int
	open, deferred []*beamNode
	prior          int         // nodes earlier passes chose (and expanded)
	expanding      []*beamNode // nodes whose expansions may bring more children (and a few that will not)
	// rem: children that the expansions of the nodes above may still
	// bring, by the parity of the pass that started them; rem[pass&1]
	// counts this pass's.
	rem      [2]int
	chosen   int  // nodes chosen (or expanded again) in this pass
	decided  bool // this pass's beam at this depth is final
	settled  bool // ... and chosen
	firstDec int  // the first pass that decided this depth; 0: none
	// dirty: something settle reads changed since it last looked at this
	// depth; inExtra and outExtra are the extra it got and passed on then.
	dirty             bool
	inExtra, outExtra int
}

// beamEvent is what a goroutine of the search reports: an expansion's
// children (expanded) or a node's evaluation.
type beamEvent struct {
	pass     int       // the pass that started the call
	node     *beamNode // the expanded node or the scored one
	expanded bool
	ids      []core.NodeID
	idx      []int       // sample index of each child
	used     int         // how many of the node's possible children this accounts for
	failed   core.NodeID // a nested step that failed (and was pruned)
	ev       core.Evaluation
	ok       bool
	err      error
}

// beamSearch is one run of beam search. Only Run's goroutine touches it;
// expansions and evaluations run in goroutines of their own and report on
// events.
type beamSearch struct {
	beam
	env    *core.Env
	sc     scorers
	ctx    context.Context
	cancel context.CancelFunc
	events chan beamEvent
	help   *helpers // run the expansions and scorings
	// inflight counts the calls running; byPass, by the parity of their
	// pass, those running or queued.
	inflight int
	byPass   [2]int

	root   *beamNode
	levels []*beamLevel // by depth; levels[0] only tracks the root's expansions
	pass   int          // the oldest pass running: its outcome decides whether the next one is run
	// next is the pass started before pass ended (overlap_passes), 0 when
	// none; nextCtx ends its calls, queue holds those not issued yet.
	// abandoned is the one dropped when pass turned out to be the last.
	next, abandoned int
	// held is the next pass (while it runs ahead) once it found an answer
	// the verifier accepts, with stop_on_correct: it makes no more calls,
	// and its answer ends the search once the pass before ends without
	// one. 0: none.
	held         int
	nextCtx      context.Context
	nextCancel   context.CancelFunc
	nextSpec     *core.Speculation // confirmed when the next pass is needed
	queue        []func()
	nextExpanded []core.NodeID // the nodes next expanded so far
	ended        bool          // no pass runs after pass
	// fresh counts the new steps each pass (by parity) took in; stale, the
	// passes in a row that took in none.
	fresh    [2]int
	stale    int
	finished []*beamNode
	solved   bool // a verifier accepted an answer
	stopErr  error
	llmErr   error

	// scratch of settle
	cands, again []*beamNode
	threats      []beamThreat
}

// Check rejects unknown evaluators and nested strategies before the run.
func (b beam) Check(p core.Preflight) error {
	if b.nested.strategy == "" {
		if err := sameAtZero(p, "expand", b.nested.mode, b.k, b.temp, "expansions", "expansions=1"); err != nil {
			return err
		}
	}
	if err := checkRefs(p, b.ev, b.verifier); err != nil {
		return err
	}
	return b.nested.validate(p)
}

// Run is beam search without a barrier between depths: a candidate starts
// its own expansion as soon as its place among the beam_width best of its
// depth is certain (fewer than beam_width candidates can still beat it,
// counting every child the unfinished expansions may still bring and every
// candidate not scored yet), even before its own score is in when its
// depth cannot hold more than beam_width candidates. The paths kept are
// exactly those of level-by-level beam search; the next depth's calls
// just start while the last scorings of this one are in flight.
// Candidates that cannot reach the beam whatever their score are not
// scored at all. With overlap_passes, the next pass runs behind this one
// (see speculate).
func (b beam) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	sc, err := buildScorers(env, b.ev, b.verifier)
	if err != nil {
		return core.Outcome{}, err
	}
	s := &beamSearch{beam: b, env: env, sc: sc, events: make(chan beamEvent), pass: 1,
		help: startHelpers(min(b.width*(b.k+1), 64))}
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer s.cancel()
	defer s.help.stop() // after the loop below has taken every job's event
	s.root = &beamNode{id: 0, seed: env.Seed(0), known: true}
	s.root.kidsUB = s.root.agg.add(1, true).score(s.aggregate)
	s.level(0, 1)
	s.choose(s.root, 1)
	s.speculate()
	for {
		if !s.ended && s.byPass[s.pass&1] == 0 {
			// Nothing of this pass is left in flight: its outcome is known.
			s.nextPass()
			s.settle()
			s.speculate()
			continue
		}
		if s.inflight == 0 {
			if !s.ended {
				// Cannot happen: a pass's calls wait only for calls in flight.
				return core.Outcome{}, fmt.Errorf("beam: pass %d waits for %d calls, none in flight", s.pass, s.byPass[s.pass&1])
			}
			break // every call is back
		}
		e := <-s.events
		s.inflight--
		s.byPass[e.pass&1]--
		if e.expanded {
			s.expanded(e)
		} else {
			s.scored(e)
		}
		if (s.stopErr != nil && !errors.Is(s.stopErr, core.ErrBudgetExhausted)) || (s.solved && s.stopOnCorrect) {
			s.cancel() // nothing in flight matters any more
		}
		if s.next != 0 && s.doomed(false) {
			s.abandon()
		}
		s.settle()
		s.speculate()
		s.release()
	}
	return s.result()
}

// stopped reports whether the search starts no more expansions.
func (s *beamSearch) stopped() bool {
	return s.stopErr != nil || (s.solved && s.stopOnCorrect) || s.ctx.Err() != nil
}

// level returns the bookkeeping of depth d, new ones for pass.
func (s *beamSearch) level(d, pass int) *beamLevel {
	for len(s.levels) <= d {
		s.levels = append(s.levels, &beamLevel{pass: pass})
	}
	return s.levels[d]
}

// frozen reports whether pass runs ahead and holds an answer: it makes no
// more calls, and those it made are cancelled.
func (s *beamSearch) frozen(pass int) bool { return s.held != 0 && pass == s.next }

// started reports whether pass has started (and was not abandoned).
func (s *beamSearch) started(pass int) bool { return pass <= s.pass || pass == s.next }

// ctxOf is the context of pass's calls. (An abandoned pass makes none:
// launch drops them.)
func (s *beamSearch) ctxOf(pass int) context.Context {
	if pass == s.next {
		return s.nextCtx
	}
	return s.ctx
}

// call counts a call of pass, about to be made, and returns its context.
func (s *beamSearch) call(pass int) context.Context {
	s.byPass[pass&1]++
	return s.ctxOf(pass)
}

// launch starts f, a call of pass, at once, or queues it while the pass
// runs ahead of its time and overlap_passes calls are in flight.
func (s *beamSearch) launch(pass int, f func()) {
	if pass == s.abandoned || s.frozen(pass) {
		s.byPass[pass&1]--
		return
	}
	if pass > s.pass && s.inflight >= s.overlap {
		s.queue = append(s.queue, f)
		return
	}
	s.inflight++
	s.help.do(f)
}

// release issues the queued calls of the next pass that now may run: all
// of them once it is confirmed (next is 0 then).
func (s *beamSearch) release() {
	i := 0
	for ; i < len(s.queue) && (s.next == 0 || s.inflight < s.overlap); i++ {
		s.inflight++
		s.help.do(s.queue[i])
	}
	if i > 0 {
		n := copy(s.queue, s.queue[i:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
	}
}

// choose puts n into pass's beam and expands it.
func (s *beamSearch) choose(n *beamNode, pass int) {
	n.pass = pass
	if n.depth > 0 {
		s.levels[n.depth].chosen++
	}
	if n.depth < s.maxDepth {
		s.expand(n, pass)
	}
}

// expand starts an expansion of n for pass: its first with n's seed, a
// later one (a later pass's) with a seed of its own, so that it samples
// new steps.
func (s *beamSearch) expand(n *beamNode, pass int) {
	par := pass & 1
	if n.rem[0]+n.rem[1] == 0 {
		lv := s.levels[n.depth]
		lv.expanding = append(lv.expanding, n)
	}
	n.rem[par] += s.k
	below := s.level(n.depth+1, pass)
	below.rem[par] += s.k
	below.dirty = true
	seed, off := n.seed, n.rounds*s.k
	if n.rounds > 0 {
		seed = s.env.Seed(n.seed, int64(-1-n.rounds))
	}
	n.rounds++
	// An expansion of n by the pass before is in flight: this one waits.
	wait := n.rem[(pass+1)&1] > 0
	run := func(f func()) {
		if wait {
			n.later = append(n.later, f)
		} else {
			s.launch(pass, f)
		}
	}
	if s.nested.strategy != "" {
		// Each nested step reports on its own, so that its child is scored
		// while its siblings are still searching.
		for i := 0; i < s.k; i++ {
			ctx := s.call(pass)
			run(func() {
				id, err := NestedStep(ctx, s.env, n.id, NestedOptions{Strategy: s.nested.strategy, Params: s.nested.params,
					Limits: core.Limits{LLMCalls: s.nested.budget}, Seed: s.env.Seed(seed, int64(i))})
				e := beamEvent{pass: pass, node: n, expanded: true, used: 1, err: err}
				if err == nil && id != 0 {
					e.ids, e.idx = []core.NodeID{id}, []int{off + i}
				} else {
					e.failed = id
				}
				s.events <- e
			})
		}
		return
	}
	ctx := s.call(pass)
	run(func() {
		ids, err := s.nested.expand(ctx, s.env, n.id, s.k, seed, s.temp)
		idx := make([]int, len(ids))
		for i := range idx {
			idx[i] = off + i
		}
		s.events <- beamEvent{pass: pass, node: n, expanded: true, ids: ids, idx: idx, used: s.k, err: err}
	})
}

// score starts the evaluation of n for pass.
func (s *beamSearch) score(n *beamNode, pass int) {
	ctx := s.call(pass)
	s.launch(pass, func() {
		ev, ok, err := s.sc.score(ctx, s.env, n.id, n.terminal)
		s.events <- beamEvent{pass: pass, node: n, ev: ev, ok: ok, err: err}
	})
}

// noteErr keeps the error that ends the search (the budget, a deadline
// of the search's own) or, for a failed LLM call, the one to return when
// no answer is found.
func (s *beamSearch) noteErr(err error, failed bool) {
	if err == nil {
		return
	}
	if isStop(err) && s.ctx.Err() == nil || errors.Is(err, core.ErrBudgetExhausted) {
		if s.stopErr == nil {
			s.stopErr = err
		}
	} else if !isStop(err) && failed {
		s.llmErr = err
	}
}

// expanded takes in the children of an expansion and starts their
// evaluations at once.
func (s *beamSearch) expanded(e beamEvent) {
	p := e.node
	par := e.pass & 1
	if s.frozen(e.pass) && errors.Is(e.err, context.Canceled) {
		e.err = nil // its pass was stopped, not the search
	}
	p.rem[par] -= e.used
	lv := s.levels[p.depth+1]
	lv.rem[par] -= e.used
	lv.dirty = true
	if p.rem[par] == 0 && len(p.later) > 0 {
		// The next pass's expansion of p may go now.
		for _, f := range p.later {
			s.launch(e.pass+1, f)
		}
		clear(p.later)
		p.later = p.later[:0]
	}
	if e.pass == s.abandoned {
		if e.err == nil {
			s.env.Tracer.Record(core.OpInfo, []core.NodeID{p.id}, map[string]any{"beam": "expansion by an abandoned pass", "pass": e.pass})
		}
		s.drop(e.ids...)
		if e.failed != 0 {
			s.drop(e.failed)
		}
		return
	}
	if e.pass == s.next && e.err == nil {
		s.nextExpanded = append(s.nextExpanded, p.id)
	}
	ctx := s.ctxOf(e.pass)
	for j, id := range e.ids {
		c := &beamNode{id: id, seed: s.env.Seed(p.seed, int64(e.idx[j])), depth: p.depth + 1, parent: p, born: e.pass,
			key: append(append(make([]int, 0, len(p.key)+1), p.key...), e.idx[j]), terminal: s.env.Structure.MustNode(id).Terminal}
		p.kids++
		s.fresh[par]++
		if c.terminal {
			s.finished = append(s.finished, c)
		} else {
			lv.nodes = append(lv.nodes, c)
		}
		// A child of a pass that runs ahead competes only once its pass
		// reaches this depth (advance), but it is scored now.
		if !c.terminal && c.born <= lv.pass {
			lv.total++
			if ctx.Err() == nil && s.cannotReach(c) {
				c.deferred = true
				lv.deferred = append(lv.deferred, c)
				setMeta(s.env, c.id, "beam", fmt.Sprintf("not scored: %d paths of its depth already beat the best score it could get", s.width))
				continue
			}
			lv.open = append(lv.open, c)
		}
		if ctx.Err() == nil {
			s.score(c, e.pass)
		}
	}
	if e.err != nil {
		p.err = e.err
	}
	if p.rem[0]+p.rem[1] == 0 {
		s.noteErr(p.err, p.kids == 0)
	} else if e.err != nil && isStop(e.err) {
		s.noteErr(e.err, false)
	}
}

// scored takes in an evaluation.
func (s *beamSearch) scored(e beamEvent) {
	n := e.node
	if s.frozen(e.pass) && errors.Is(e.err, context.Canceled) {
		// Its pass holds an answer and was stopped, not the search.
		if n.born != e.pass {
			setMeta(s.env, n.id, "beam", fmt.Sprintf("not scored: its scoring was for pass %d, started early and stopped when it found an answer", e.pass))
		}
		return
	}
	switch {
	case e.pass != s.abandoned:
		s.noteErr(e.err, false)
	case n.born == s.abandoned:
		return // dropped with its pass
	case e.err != nil:
		// An earlier pass's node, rescored for the abandoned pass: the
		// cancelled scoring leaves it unscored. One that came back
		// before the cancellation is as good as any.
		setMeta(s.env, n.id, "beam", fmt.Sprintf("not scored: its scoring was for pass %d, started early and abandoned", s.abandoned))
		return
	}
	n.scored = true
	n.step, n.stepOK = e.ev.Score, e.ok
	if e.ok && e.ev.Correct != nil {
		n.right, n.wrong = *e.ev.Correct, !*e.ev.Correct
	}
	if n.terminal && n.right {
		if n.born <= s.pass {
			s.solved = true
		} else if s.stopOnCorrect && s.held == 0 && n.born == s.next {
			s.hold(n)
		}
	}
	s.resolve(n)
}

// resolve computes n's path score once n and its parent are final, and
// then its children's that were waiting for it.
func (s *beamSearch) resolve(n *beamNode) {
	if !n.scored || n.known {
		return
	}
	if !n.parent.known {
		n.parent.waiting = append(n.parent.waiting, n)
		return
	}
	n.agg, n.known = n.parent.agg.add(n.step, n.stepOK), true
	n.sc = n.agg.score(s.aggregate)
	n.kidsUB = n.agg.add(1, true).score(s.aggregate)
	if !math.IsInf(n.sc, -1) {
		_ = s.env.Structure.SetStats(n.id, n.sc, 0)
	}
	if !n.terminal {
		lv := s.levels[n.depth]
		lv.dirty = true
		if n.depth+1 < len(s.levels) {
			s.levels[n.depth+1].dirty = true // n's children's best scores are known now
		}
		i := sort.Search(len(lv.known), func(i int) bool { return rankLess(n.sc, n.key, lv.known[i].sc, lv.known[i].key) })
		lv.known = slices.Insert(lv.known, i, n)
	}
	kids := n.waiting
	n.waiting = nil
	for _, c := range kids {
		s.resolve(c)
	}
}

// bestScore is the highest path score a child of p can get: a step scored
// 1 (scores are in [-1, 1]). Settling asks it of the same parents again
// and again: it is computed once p is known.
func (s *beamSearch) bestScore(p *beamNode) float64 {
	if p.known {
		return p.kidsUB
	}
	return p.agg.add(1, true).score(s.aggregate)
}

// inPass reports whether n competes for pass's beam: no earlier pass
// chose it, and no later pass brought it.
func inPass(n *beamNode, pass int) bool { return (n.pass == 0 || n.pass == pass) && n.born <= pass }

// cannotReach reports whether beam_width known candidates of c's depth
// beat the best score c could get, so that scoring c cannot change the
// beam of the pass its depth is at.
func (s *beamSearch) cannotReach(c *beamNode) bool {
	if c.terminal || !c.parent.known {
		return false
	}
	c.ub = s.bestScore(c.parent)
	beat := 0
	lv := s.levels[c.depth]
	for _, n := range lv.known {
		if !rankLess(n.sc, n.key, c.ub, c.key) {
			break
		}
		if inPass(n, lv.pass) {
			if beat++; beat >= s.width {
				return true
			}
		}
	}
	return false
}

// settle decides the depths whose candidates are all in and chooses every
// candidate whose place in its pass's beam is certain, from the
// shallowest depth down. A depth that its pass has settled goes on to the
// next pass once that has started and reached the depth above.
func (s *beamSearch) settle() {
	if s.stopped() || s.ended {
		return
	}
	extra := 0 // nodes of the depth above that may still join the beam
	for d := 1; d < len(s.levels); d++ {
		lv := s.levels[d]
		if lv.pass == s.abandoned || s.frozen(lv.pass) {
			extra = 0
			continue
		}
		if lv.settled && s.started(lv.pass+1) && !s.frozen(lv.pass+1) && (d == 1 || s.levels[d-1].pass > lv.pass) {
			s.advance(d, lv, lv.pass+1)
		}
		if d > 1 && s.levels[d-1].pass != lv.pass {
			extra = 0 // the depth above is settled for this pass
		}
		if lv.settled {
			extra = 0
			continue
		}
		if !lv.dirty && extra == lv.inExtra {
			extra = lv.outExtra
			continue
		}
		lv.dirty, lv.inExtra = false, extra
		// pending: children that may still come to this depth.
		pending := lv.rem[lv.pass&1] + s.k*extra
		open := lv.open[:0]
		for _, n := range lv.open {
			if !n.known {
				open = append(open, n)
			}
		}
		clear(lv.open[len(open):])
		lv.open = open
		unknown := len(open)
		// The best beam_width known candidates of this pass, and the best
		// paths of earlier passes that it may expand again.
		room := s.width - (lv.total + pending)
		known, again := s.cands[:0], s.again[:0]
		for _, n := range lv.known {
			if inPass(n, lv.pass) {
				if len(known) < s.width {
					known = append(known, n)
				}
			} else if n.born <= lv.pass && d < s.maxDepth && len(again) < room {
				again = append(again, n)
			}
			if len(known) >= s.width && len(again) >= room {
				break
			}
		}
		s.cands, s.again = known, again
		if !lv.decided && pending == 0 && unknown == 0 {
			// Deferred candidates are beaten by beam_width known ones:
			// the beam is the best known.
			lv.decided = true
			if lv.firstDec == 0 {
				lv.firstDec = lv.pass
			}
			ids := make([]core.NodeID, len(known))
			for i, c := range known {
				ids[i] = c.id
			}
			s.env.Tracer.Record(core.OpSelect, ids, map[string]any{"depth": d, "pass": lv.pass, "finished": s.finishedBy(lv.pass)})
		}
		if lv.decided || !s.barrier {
			s.chooseCertain(lv, d, known, again, unknown, pending, extra)
		}
		extra = 0
		if lv.decided {
			lv.settled = true
		} else {
			extra = max(0, min(s.width, lv.total+pending+lv.prior)-lv.chosen)
		}
		lv.outExtra = extra
	}
}

// finishedBy counts the answers that passes up to pass found.
func (s *beamSearch) finishedBy(pass int) int {
	n := 0
	for _, f := range s.finished {
		if f.born <= pass {
			n++
		}
	}
	return n
}

// chooseCertain chooses the candidates of depth d whose place in this
// pass's beam is certain (known: the best beam_width known ones), and
// expands again the paths of earlier passes (again: the best of them, as
// many as there are places no new candidate can take) that this pass will
// expand again for want of new candidates.
func (s *beamSearch) chooseCertain(lv *beamLevel, d int, known, again []*beamNode, unknown, pending, extra int) {
	if len(known) > 0 {
		var threats []beamThreat
		top := 0
		// Unless even the last known candidate has fewer than beam_width
		// ahead of it counting every threat, each is checked.
		check := !lv.decided && len(known)-1+s.threatCount(lv, d, extra) >= s.width
		if check {
			threats, top = s.threatsOf(d, extra)
		}
		for i, c := range known {
			if check {
				// What may still rank above c: the known ones before it,
				// and every candidate not scored yet or still to come
				// whose best possible score could beat c's.
				ahead := i + top
				for _, th := range threats {
					if ahead >= s.width {
						break
					}
					if rankLess(th.ub, th.key, c.sc, c.key) {
						ahead += th.n
					}
				}
				if ahead >= s.width {
					break
				}
			}
			if c.pass == 0 {
				s.choose(c, lv.pass)
			}
		}
	}
	if !lv.decided && lv.total-1+pending < s.width {
		// The depth cannot hold more than beam_width candidates: every
		// one is in the beam, scored or not.
		for _, c := range lv.open {
			if c.pass == 0 {
				s.choose(c, lv.pass)
			}
		}
	}
	for _, n := range again {
		if n.again != lv.pass {
			n.again = lv.pass
			lv.chosen++
			s.expand(n, lv.pass)
		}
	}
}

// beamThreat is what may still rank above a known candidate: n
// candidates whose score is at most ub, with keys after key.
type beamThreat struct {
	ub  float64
	key []int
	n   int
}

// threatCount is how many candidates threatsOf would count.
func (s *beamSearch) threatCount(lv *beamLevel, d, extra int) int {
	n := len(lv.open) + len(lv.deferred) + s.k*extra
	par := lv.pass & 1
	for _, p := range s.levels[d-1].expanding {
		n += p.rem[par]
	}
	return n
}

// threatsOf lists the candidates of depth d that are not known yet
// (scored or not, deferred, or still to come from the expansions of depth
// d-1 by the depth's pass and from extra nodes of depth d-1 that may
// still join the beam), each with the best score it could get; top counts
// those that may beat any candidate.
func (s *beamSearch) threatsOf(d int, extra int) (threats []beamThreat, top int) {
	out := s.threats[:0]
	lv := s.levels[d]
	par := lv.pass & 1
	for _, n := range lv.open {
		if n.parent.known {
			out = append(out, beamThreat{ub: s.bestScore(n.parent), key: n.key, n: 1})
		} else {
			top++
		}
	}
	for _, n := range lv.deferred {
		out = append(out, beamThreat{ub: n.ub, key: n.key, n: 1})
	}
	top += s.k * extra
	above := s.levels[d-1]
	busy := above.expanding[:0]
	for _, p := range above.expanding {
		if p.rem[0]+p.rem[1] == 0 {
			continue
		}
		busy = append(busy, p)
		if p.rem[par] == 0 {
			continue
		}
		if p.known {
			if p.kidKey == nil {
				// Its children's keys come after p.key + [-1].
				p.kidKey = append(append(make([]int, 0, len(p.key)+1), p.key...), -1)
			}
			out = append(out, beamThreat{ub: s.bestScore(p), key: p.kidKey, n: p.rem[par]})
		} else {
			top += p.rem[par]
		}
	}
	clear(above.expanding[len(busy):])
	above.expanding = busy
	s.threats = out
	return out, top
}

// nextPass ends the oldest pass, whose calls are all back, and goes on to
// the next when this one was not stopped and every answer found so far
// (if any) was rejected by the verifier: an answer that no verifier could
// check ends the search, and so do two passes in a row that found no new
// step. The next pass may have started already (speculate): it goes on,
// or is abandoned.
func (s *beamSearch) nextPass() {
	q := s.pass
	if s.fresh[q&1] == 0 {
		s.stale++
	} else {
		s.stale = 0
	}
	if q >= s.passes || s.stopped() || s.stale >= 2 || s.doomed(true) {
		if s.next != 0 {
			s.abandon()
		}
		s.ended = true
		return
	}
	s.pass++
	if s.next == s.pass {
		// It runs already: its calls are needed, and its queued ones go now.
		s.next = 0
		s.nextSpec.Confirm()
		if s.held == s.pass {
			// It holds an answer the verifier accepted: run one after the
			// other, the search would stop once it got it, and so it does now.
			s.solved = true
			s.cancel()
			s.env.Tracer.Record(core.OpInfo, nil, map[string]any{"beam": fmt.Sprintf("pass %d ended without an accepted answer: "+
				"the answer held by pass %d ends the search", q, s.pass), "pass": s.pass})
			return
		}
		s.release()
		return
	}
	s.fresh[s.pass&1] = 0
	// The root is the one path of depth 0: every pass expands it again.
	s.root.again = s.pass
	s.expand(s.root, s.pass)
	for d, lv := range s.levels {
		s.advance(d, lv, s.pass)
	}
}

// doomed reports whether an answer of the passes up to the oldest one
// running was not rejected: no later pass will run. Until that pass ends
// (final), answers not scored yet do not count.
func (s *beamSearch) doomed(final bool) bool {
	for _, n := range s.finished {
		if n.born <= s.pass && (n.scored || final) && !n.wrong {
			return true
		}
	}
	return false
}

// advance moves depth d's bookkeeping on to pass: the nodes no earlier
// pass chose compete, and deferred ones that may now reach the beam are
// scored.
func (s *beamSearch) advance(d int, lv *beamLevel, pass int) {
	lv.pass = pass
	lv.decided, lv.settled, lv.chosen, lv.dirty = false, false, 0, true
	lv.total, lv.prior = 0, 0
	lv.open, lv.deferred = lv.open[:0], lv.deferred[:0]
	for _, n := range lv.nodes {
		if n.born > pass {
			continue // a later pass's (none runs that far ahead)
		}
		if n.pass != 0 {
			if d < s.maxDepth {
				lv.prior++
			}
			continue
		}
		lv.total++
		// Candidates left unscored may compete now.
		if n.deferred && !s.cannotReach(n) {
			n.deferred = false
			_ = s.env.Structure.Update(n.id, func(n *core.Node) { delete(n.Meta, "beam") })
			s.score(n, pass)
		}
		switch {
		case n.deferred:
			lv.deferred = append(lv.deferred, n)
		case !n.known:
			lv.open = append(lv.open, n)
		}
	}
}

// speculate starts the next pass as soon as the oldest one runs, when
// overlap_passes allows it. The next pass runs behind the oldest: each
// depth's bookkeeping goes on to it once the oldest pass has settled that
// depth, and the steps it brings wait for that, so that it makes the
// choices it would make had it started when the oldest pass ended.
// Whether it should run at all is known only then (an answer of the
// oldest pass may be accepted): until then its calls go out only while
// fewer than overlap_passes are in flight, filling the slots the oldest
// pass leaves idle, and if it should not run, it is abandoned.
func (s *beamSearch) speculate() {
	if s.overlap == 0 || s.ended || s.next != 0 || s.abandoned != 0 || s.pass >= s.passes || s.stopped() || s.doomed(false) {
		return
	}
	s.next = s.pass + 1
	s.nextExpanded = s.nextExpanded[:0]
	// Its calls are speculative until it is known to be needed: they take
	// only LLM slots no other request waits for (this search's or another's).
	s.nextSpec = core.NewSpeculation()
	s.nextCtx, s.nextCancel = context.WithCancel(s.nextSpec.Context(s.ctx))
	s.fresh[s.next&1] = 0
	s.root.again = s.next
	s.expand(s.root, s.next)
	s.settle()
}

// hold stops the pass started ahead of its time once it found n, an answer
// the verifier accepts (stop_on_correct): run after the pass before, it
// would stop the search with n (or an answer found as early), but that
// pass may still find an answer of its own, which comes first. Its calls
// in flight are cancelled and it makes no more: whether the pass before
// finds an answer or not, they are not needed.
func (s *beamSearch) hold(n *beamNode) {
	s.held = s.next
	s.nextCancel()
	s.byPass[s.held&1] -= len(s.queue)
	clear(s.queue)
	s.queue = s.queue[:0]
	s.env.Tracer.Record(core.OpInfo, []core.NodeID{n.id}, map[string]any{"beam": fmt.Sprintf("answer held: pass %d, started early, "+
		"found it while pass %d runs; it ends the search if pass %d ends without one", s.held, s.pass, s.pass), "pass": s.held})
}

// abandon drops the pass started ahead of its time: its calls in flight
// are cancelled, those queued never go out, and the nodes it brought are
// pruned.
func (s *beamSearch) abandon() {
	p := s.next
	s.abandoned, s.next = p, 0
	s.nextCancel()
	s.byPass[p&1] -= len(s.queue)
	clear(s.queue)
	s.queue = s.queue[:0]
	var ids []core.NodeID
	for _, lv := range s.levels {
		for _, n := range lv.nodes {
			if n.born == p {
				ids = append(ids, n.id)
			}
		}
	}
	for _, n := range s.finished {
		if n.born == p {
			ids = append(ids, n.id)
		}
	}
	// The nodes it expanded so far (and, in events of their own, those
	// whose expansions come back later) are those of its calls that were
	// wasted, with the scorings of the steps they brought.
	s.env.Tracer.Record(core.OpInfo, s.nextExpanded, map[string]any{"beam": "pass abandoned: the pass before it ended with an answer " +
		"that was not rejected, or ended the search", "pass": p})
	s.nextExpanded = nil
	s.drop(ids...)
}

// drop prunes the nodes of an abandoned pass.
func (s *beamSearch) drop(ids ...core.NodeID) {
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		setMeta(s.env, id, "beam", fmt.Sprintf("brought by pass %d, started early and abandoned", s.abandoned))
	}
	core.Prune(s.env, ids...)
}

// result picks the answer: the best finished path by the verifier, then by
// score; without one, the best path of the deepest depth reached. Paths
// that a decided depth left out of the beam are marked pruned. An
// abandoned pass counts for nothing.
func (s *beamSearch) result() (core.Outcome, error) {
	ran := func(n *beamNode) bool { return n.born <= s.pass }
	var drop []core.NodeID
	for _, lv := range s.levels {
		if lv.firstDec != 0 && lv.firstDec <= s.pass {
			for _, n := range lv.nodes {
				if ran(n) && (n.pass == 0 || n.pass > s.pass) {
					drop = append(drop, n.id)
				}
			}
		}
	}
	if len(drop) > 0 {
		core.Prune(s.env, drop...)
	}
	finished := s.finished[:0]
	for _, n := range s.finished {
		if ran(n) {
			finished = append(finished, n)
		}
	}
	s.finished = finished
	// Answers in key order, so that ties go the same way whatever order
	// the expansions ended in.
	sort.Slice(s.finished, func(i, j int) bool { return rankLess(0, s.finished[i].key, 0, s.finished[j].key) })
	var answers []core.Node
	for _, n := range s.finished {
		answers = append(answers, s.env.Structure.MustNode(n.id))
	}
	if best, ok := bestAnswer(answers); ok {
		return outcome(best), s.stopErr
	}
	err := s.stopErr
	if err == nil {
		err = s.llmErr
	}
	out := core.Outcome{}
	if err == nil {
		// A bare "done" without an answer leaves the caller guessing.
		passes := fmt.Sprintf("%d passes", s.pass)
		if s.pass == 1 {
			passes = "1 pass"
		}
		out.Note = fmt.Sprintf("no answer: %s ended without one (max_depth %d); a higher max_depth, or more passes, searches further",
			passes, s.maxDepth)
	}
	for d := len(s.levels) - 1; d >= 1; d-- {
		lv := s.levels[d]
		for _, n := range lv.known {
			if ran(n) {
				out.Best = n.id
				return out, err
			}
		}
		for _, n := range lv.nodes {
			if ran(n) {
				out.Best = n.id
				return out, err
			}
		}
	}
	return out, err
}
