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
			evaluatorParamSpec("evaluator", "prm", "scores each new step"),
			{Name: "aggregate", Type: core.ParamString, Default: AggLast, Description: "path score from the step scores: last, min, mean or product",
				Enum: []string{AggLast, AggMin, AggMean, AggProduct}},
			verifierParam,
			{Name: "stop_on_correct", Type: core.ParamBool, Default: true, Description: "stop as soon as a verifier accepts an answer"},
			{Name: "passes", Type: core.ParamInt, Default: int64(10), Min: core.Bound(1), Max: core.Bound(1000),
				Description: "most passes: when a pass ends with no answer, or only with answers the verifier rejected, the next one expands " +
					"the root again and, at every depth, the next beam_width best paths not expanded yet (or, where fewer are left, the best " +
					"ones again with fresh samples), reusing everything already generated and scored; the budget still bounds it (1: one pass)"},
			{Name: "temperature", Type: core.ParamFloat, Default: 0.7, Description: "sampling temperature of the steps", Min: core.Bound(0), Max: core.Bound(2)},
		}, append([]core.ParamSpec{expandParam, checkStepsParam}, nestedParams...)...),
		New: func(p core.Params) (core.Strategy, error) {
			b := beam{width: p.Int("beam_width"), k: p.Int("expansions"), maxDepth: p.Int("max_depth"), passes: p.Int("passes"),
				temp: p.Float("temperature"), aggregate: p.String("aggregate"), stopOnCorrect: p.Bool("stop_on_correct")}
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
	agg     pathAgg // the path's step scores
	sc      float64 // agg's score: what candidates are ranked by
	waiting []*beamNode
	// deferred: not scored, since beam_width known candidates of its depth
	// beat ub, the best score it could get.
	deferred bool
	ub       float64

	pass      int   // the pass that chose it for the beam; 0: none
	again     int   // the last later pass that expanded it again
	rounds    int   // expansions started
	remaining int   // children its expansions may still bring
	kids      int   // children it got
	kidKey    []int // key + [-1]: before the key of every child
	err       error
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

// beamLevel is the bookkeeping of one depth.
type beamLevel struct {
	nodes []*beamNode // unfinished candidates at this depth, in arrival order
	known []*beamNode // those whose path score is final, best first
	// Of the nodes no earlier pass chose: total counts them; open holds
	// those not known (nor deferred) yet, and a few known ones until the
	// next settle drops them; deferred, the deferred ones.
	total          int
	open, deferred []*beamNode
	prior          int         // nodes earlier passes chose (and expanded)
	expanding      []*beamNode // nodes whose expansions may bring more children (and a few that will not)
	// remaining: children that the expansions of the nodes above, chosen
	// in this pass, may still bring.
	remaining   int
	chosen      int  // nodes chosen (or expanded again) in this pass
	decided     bool // this pass's beam at this depth is final
	settled     bool // ... and chosen
	everDecided bool
	// dirty: something settle reads changed since it last looked at this
	// depth; inExtra and outExtra are the extra it got and passed on then.
	dirty             bool
	inExtra, outExtra int
}

// beamEvent is what a goroutine of the search reports: an expansion's
// children (expanded) or a node's evaluation.
type beamEvent struct {
	node     *beamNode // the expanded node or the scored one
	expanded bool
	ids      []core.NodeID
	idx      []int // sample index of each child
	used     int   // how many of the node's possible children this accounts for
	ev       core.Evaluation
	ok       bool
	err      error
}

// beamSearch is one run of beam search. Only Run's goroutine touches it;
// expansions and evaluations run in goroutines of their own and report on
// events.
type beamSearch struct {
	beam
	env      *core.Env
	sc       scorers
	ctx      context.Context
	cancel   context.CancelFunc
	events   chan beamEvent
	help     *helpers // run the expansions and scorings
	inflight int

	root   *beamNode
	levels []*beamLevel // by depth; levels[0] only tracks the root's expansions
	pass   int
	// fresh counts the new steps this pass took in; stale, the passes in a
	// row that took in none.
	fresh, stale int
	finished     []*beamNode
	solved       bool // a verifier accepted an answer
	stopErr      error
	llmErr       error

	// scratch of settle
	cands, again []*beamNode
	threats      []beamThreat
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
// scored at all.
func (b beam) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	sc, err := buildScorers(env, b.ev, b.verifier)
	if err != nil {
		return core.Outcome{}, err
	}
	if err := b.nested.validate(env); err != nil {
		return core.Outcome{}, err
	}
	s := &beamSearch{beam: b, env: env, sc: sc, events: make(chan beamEvent), pass: 1,
		help: startHelpers(min(b.width*(b.k+1), 64))}
	s.ctx, s.cancel = context.WithCancel(ctx)
	defer s.cancel()
	defer s.help.stop() // after the loop below has taken every job's event
	s.root = &beamNode{id: 0, seed: env.Seed(0), known: true}
	s.choose(s.root)
	for {
		for s.inflight > 0 {
			e := <-s.events
			s.inflight--
			if e.expanded {
				s.expanded(e)
			} else {
				s.scored(e)
			}
			if (s.stopErr != nil && !errors.Is(s.stopErr, core.ErrBudgetExhausted)) || (s.solved && s.stopOnCorrect) {
				s.cancel() // nothing in flight matters any more
			}
			s.settle()
		}
		if !s.nextPass() {
			break
		}
		s.settle()
	}
	return s.result()
}

// stopped reports whether the search starts no more expansions.
func (s *beamSearch) stopped() bool {
	return s.stopErr != nil || (s.solved && s.stopOnCorrect) || s.ctx.Err() != nil
}

func (s *beamSearch) level(d int) *beamLevel {
	for len(s.levels) <= d {
		s.levels = append(s.levels, &beamLevel{})
	}
	return s.levels[d]
}

// choose puts n into this pass's beam and expands it.
func (s *beamSearch) choose(n *beamNode) {
	n.pass = s.pass
	if n.depth > 0 {
		s.level(n.depth).chosen++
	}
	if n.depth < s.maxDepth {
		s.expand(n)
	}
}

// expand starts an expansion of n: its first with n's seed, a later one
// (a later pass's) with a seed of its own, so that it samples new steps.
func (s *beamSearch) expand(n *beamNode) {
	if n.remaining == 0 {
		lv := s.level(n.depth)
		lv.expanding = append(lv.expanding, n)
	}
	n.remaining += s.k
	below := s.level(n.depth + 1)
	below.remaining += s.k
	below.dirty = true
	seed, off := n.seed, n.rounds*s.k
	if n.rounds > 0 {
		seed = s.env.Seed(n.seed, int64(-1-n.rounds))
	}
	n.rounds++
	if s.nested.strategy != "" {
		// Each nested step reports on its own, so that its child is scored
		// while its siblings are still searching.
		for i := 0; i < s.k; i++ {
			s.inflight++
			s.help.do(func() {
				id, err := NestedStep(s.ctx, s.env, n.id, NestedOptions{Strategy: s.nested.strategy, Params: s.nested.params,
					Limits: core.Limits{LLMCalls: s.nested.budget}, Seed: s.env.Seed(seed, int64(i))})
				e := beamEvent{node: n, expanded: true, used: 1, err: err}
				if err == nil && id != 0 {
					e.ids, e.idx = []core.NodeID{id}, []int{off + i}
				}
				s.events <- e
			})
		}
		return
	}
	s.inflight++
	s.help.do(func() {
		ids, err := s.nested.expand(s.ctx, s.env, n.id, s.k, seed, s.temp)
		idx := make([]int, len(ids))
		for i := range idx {
			idx[i] = off + i
		}
		s.events <- beamEvent{node: n, expanded: true, ids: ids, idx: idx, used: s.k, err: err}
	})
}

// score starts the evaluation of n.
func (s *beamSearch) score(n *beamNode) {
	s.inflight++
	s.help.do(func() {
		ev, ok, err := s.sc.score(s.ctx, s.env, n.id, n.terminal)
		s.events <- beamEvent{node: n, ev: ev, ok: ok, err: err}
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
	p.remaining -= e.used
	lv := s.level(p.depth + 1)
	lv.remaining -= e.used
	lv.dirty = true
	for j, id := range e.ids {
		c := &beamNode{id: id, seed: s.env.Seed(p.seed, int64(e.idx[j])), depth: p.depth + 1, parent: p,
			key: append(append(make([]int, 0, len(p.key)+1), p.key...), e.idx[j]), terminal: s.env.Structure.MustNode(id).Terminal}
		p.kids++
		s.fresh++
		if c.terminal {
			s.finished = append(s.finished, c)
		} else {
			lv.nodes = append(lv.nodes, c)
			lv.total++
		}
		if !c.terminal && s.ctx.Err() == nil && s.cannotReach(c) {
			c.deferred = true
			lv.deferred = append(lv.deferred, c)
			setMeta(s.env, c.id, "beam", fmt.Sprintf("not scored: %d paths of its depth already beat the best score it could get", s.width))
			continue
		}
		if !c.terminal {
			lv.open = append(lv.open, c)
		}
		if s.ctx.Err() == nil {
			s.score(c)
		}
	}
	if e.err != nil {
		p.err = e.err
	}
	if p.remaining == 0 {
		s.noteErr(p.err, p.kids == 0)
	} else if e.err != nil && isStop(e.err) {
		s.noteErr(e.err, false)
	}
}

// scored takes in an evaluation.
func (s *beamSearch) scored(e beamEvent) {
	n := e.node
	n.scored = true
	s.noteErr(e.err, false)
	n.step, n.stepOK = e.ev.Score, e.ok
	if e.ok && e.ev.Correct != nil {
		n.right, n.wrong = *e.ev.Correct, !*e.ev.Correct
	}
	if n.terminal && n.right {
		s.solved = true
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
// 1 (scores are in [-1, 1]).
func (s *beamSearch) bestScore(p *beamNode) float64 {
	return p.agg.add(1, true).score(s.aggregate)
}

// inPass reports whether n competes for this pass's beam: it was not
// chosen by an earlier pass.
func (s *beamSearch) inPass(n *beamNode) bool { return n.pass == 0 || n.pass == s.pass }

// cannotReach reports whether beam_width known candidates of c's depth
// beat the best score c could get, so that scoring c cannot change this
// pass's beam.
func (s *beamSearch) cannotReach(c *beamNode) bool {
	if c.terminal || !c.parent.known {
		return false
	}
	c.ub = s.bestScore(c.parent)
	beat := 0
	for _, n := range s.levels[c.depth].known {
		if !rankLess(n.sc, n.key, c.ub, c.key) {
			break
		}
		if s.inPass(n) {
			if beat++; beat >= s.width {
				return true
			}
		}
	}
	return false
}

// settle decides the depths whose candidates are all in and chooses every
// candidate whose place in this pass's beam is certain, from the
// shallowest depth down.
func (s *beamSearch) settle() {
	if s.stopped() {
		return
	}
	extra := 0 // nodes of the depth above that may still join the beam
	for d := 1; d < len(s.levels); d++ {
		lv := s.levels[d]
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
		pending := lv.remaining + s.k*extra
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
			if s.inPass(n) {
				if len(known) < s.width {
					known = append(known, n)
				}
			} else if d < s.maxDepth && len(again) < room {
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
			lv.decided, lv.everDecided = true, true
			ids := make([]core.NodeID, len(known))
			for i, c := range known {
				ids[i] = c.id
			}
			s.env.Tracer.Record(core.OpSelect, ids, map[string]any{"depth": d, "pass": s.pass, "finished": len(s.finished)})
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
				s.choose(c)
			}
		}
	}
	if !lv.decided && lv.total-1+pending < s.width {
		// The depth cannot hold more than beam_width candidates: every
		// one is in the beam, scored or not.
		for _, c := range lv.open {
			if c.pass == 0 {
				s.choose(c)
			}
		}
	}
	for _, n := range again {
		if n.again != s.pass {
			n.again = s.pass
			lv.chosen++
			s.expand(n)
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
	for _, p := range s.levels[d-1].expanding {
		n += p.remaining
	}
	return n
}

// threatsOf lists the candidates of depth d that are not known yet
// (scored or not, deferred, or still to come from the expansions of depth
// d-1 and from extra nodes of depth d-1 that may still join the beam),
// each with the best score it could get; top counts those that may beat
// any candidate.
func (s *beamSearch) threatsOf(d int, extra int) (threats []beamThreat, top int) {
	out := s.threats[:0]
	lv := s.levels[d]
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
		if p.remaining == 0 {
			continue
		}
		busy = append(busy, p)
		if p.known {
			if p.kidKey == nil {
				// Its children's keys come after p.key + [-1].
				p.kidKey = append(append(make([]int, 0, len(p.key)+1), p.key...), -1)
			}
			out = append(out, beamThreat{ub: s.bestScore(p), key: p.kidKey, n: p.remaining})
		} else {
			top += p.remaining
		}
	}
	clear(above.expanding[len(busy):])
	above.expanding = busy
	s.threats = out
	return out, top
}

// nextPass starts another pass when this one was not stopped and every
// answer found so far (if any) was rejected by the verifier: an answer
// that no verifier could check ends the search, and so do two passes in a
// row that found no new step.
func (s *beamSearch) nextPass() bool {
	if s.fresh == 0 {
		s.stale++
	} else {
		s.stale = 0
	}
	s.fresh = 0
	if s.pass >= s.passes || s.stopped() || s.stale >= 2 {
		return false
	}
	for _, n := range s.finished {
		if !n.wrong {
			return false
		}
	}
	s.pass++
	for _, lv := range s.levels {
		lv.decided, lv.settled, lv.chosen, lv.dirty = false, false, 0, true
	}
	// The root is the one path of depth 0: every pass expands it again.
	s.root.again = s.pass
	s.expand(s.root)
	for d, lv := range s.levels {
		lv.total, lv.prior = 0, 0
		lv.open, lv.deferred = lv.open[:0], lv.deferred[:0]
		for _, n := range lv.nodes {
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
				s.score(n)
			}
			switch {
			case n.deferred:
				lv.deferred = append(lv.deferred, n)
			case !n.known:
				lv.open = append(lv.open, n)
			}
		}
	}
	return true
}

// result picks the answer: the best finished path by the verifier, then by
// score; without one, the best path of the deepest depth reached. Paths
// that a decided depth left out of the beam are marked pruned.
func (s *beamSearch) result() (core.Outcome, error) {
	var drop []core.NodeID
	for _, lv := range s.levels {
		if lv.everDecided {
			for _, n := range lv.nodes {
				if n.pass == 0 {
					drop = append(drop, n.id)
				}
			}
		}
	}
	if len(drop) > 0 {
		core.Prune(s.env, drop...)
	}
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
	for d := len(s.levels) - 1; d >= 1; d-- {
		lv := s.levels[d]
		if len(lv.known) > 0 {
			return core.Outcome{Best: lv.known[0].id}, err
		}
		if len(lv.nodes) > 0 {
			return core.Outcome{Best: lv.nodes[0].id}, err
		}
	}
	return core.Outcome{}, err
}
