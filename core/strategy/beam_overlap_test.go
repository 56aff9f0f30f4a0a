package strategy

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
)

// passShape is what a beam search did, by node content, leaving out what a
// pass started early and then abandoned did: how often each path was
// expanded, which paths were pruned, the beam each pass chose at each
// depth, and the answer.
type passShape struct {
	beamShape
	selects   map[string][]string // "pass/depth" → the paths chosen, sorted
	abandoned int                 // the pass abandoned; 0: none
	passes    int                 // the passes that ran (and were not abandoned)
	// overlapped: a pass chose a depth's beam before the pass before it
	// chose its last.
	overlapped bool
	// held: the pass started early that found an answer the verifier
	// accepted while the pass before it ran (stop_on_correct); promoted:
	// the pass before ended without one, and the held answer ended the
	// search. lateSelects counts the beams chosen by the held pass after
	// it found its answer, or by any pass once the held answer ended the
	// search.
	held        int
	promoted    bool
	lateSelects int
	// best: the path of the answer; nodes: every node's path, and, for
	// pruned ones, the Meta "beam" the search gave it; accepted: the
	// answers the verifier accepted, by path.
	best     string
	nodes    map[string]string
	accepted map[string]string
}

func passShapeOf(t *testing.T, res core.Result) passShape {
	t.Helper()
	st := res.Trace.Structure
	pathKey := func(id core.NodeID) string { return strings.Join(core.Steps(st.Path(id)), " / ") }
	dropped := func(id core.NodeID) bool {
		v, _ := st.MustNode(id).Meta["beam"].(string)
		return strings.Contains(v, "abandoned") && strings.HasPrefix(v, "brought by")
	}
	sh := passShape{beamShape: beamShape{expanded: map[string]int{}, answer: res.Answer}, selects: map[string][]string{},
		best: strings.Join(core.Steps(res.BestPath), " / "), nodes: map[string]string{}, accepted: map[string]string{}}
	// The expansions by the abandoned pass: the info events name them.
	wasted := map[string]int{}
	var events []core.Event // the search's own, not those of nested searches
	for _, e := range res.Trace.Events {
		if len(e.Scope) == 0 {
			events = append(events, e)
		}
	}
	for _, e := range events {
		if e.Op == core.OpInfo && e.Get("beam") != nil && strings.Contains(fmt.Sprint(e.Get("beam")), "abandoned") {
			sh.abandoned = e.Get("pass").(int)
			for _, id := range e.Nodes {
				wasted[pathKey(id)]++
			}
		}
	}
	last := 0 // the highest pass that chose a beam so far
	for _, e := range events {
		switch e.Op {
		case core.OpGenerate:
			sh.expanded[pathKey(e.Nodes[0])]++
		case core.OpInfo:
			v := fmt.Sprint(e.Get("beam"))
			if strings.HasPrefix(v, "answer held") {
				sh.held = e.Get("pass").(int)
			}
			if strings.Contains(v, "ends the search") && !strings.HasPrefix(v, "answer held") {
				sh.promoted = true
			}
		case core.OpSelect:
			pass := e.Get("pass").(int)
			if sh.promoted || sh.held != 0 && pass == sh.held {
				sh.lateSelects++
			}
			if pass < last {
				sh.overlapped = true
			}
			last = max(last, pass)
			if pass == sh.abandoned {
				continue
			}
			sh.passes = max(sh.passes, pass)
			var paths []string
			for _, id := range e.Nodes {
				paths = append(paths, pathKey(id))
			}
			slices.Sort(paths)
			sh.selects[fmt.Sprintf("%d/%d", pass, e.Get("depth"))] = paths
		}
	}
	for k, n := range wasted {
		// Nested steps (step_strategy) leave no generate event of the
		// search's own.
		if sh.expanded[k] -= n; sh.expanded[k] <= 0 {
			delete(sh.expanded, k)
		}
	}
	for _, n := range st.Nodes() {
		if n.Pruned && !dropped(n.ID) {
			sh.pruned = append(sh.pruned, pathKey(n.ID))
		}
		meta := ""
		if n.Pruned {
			meta, _ = n.Meta["beam"].(string)
			meta = "pruned: " + meta
		}
		sh.nodes[pathKey(n.ID)] = meta
		if ok, known := correctOf(n); n.Terminal && known && ok {
			sh.accepted[pathKey(n.ID)] = n.Answer
		}
	}
	slices.Sort(sh.pruned)
	return sh
}

// compareShapes reports how got differs from want.
func compareShapes(t *testing.T, what string, got, want passShape) {
	t.Helper()
	if !maps.Equal(got.expanded, want.expanded) {
		t.Errorf("%s: expanded\n%v\none pass after the other:\n%v", what, got.expanded, want.expanded)
	}
	if !slices.Equal(got.pruned, want.pruned) {
		t.Errorf("%s: pruned %d paths, one pass after the other %d", what, len(got.pruned), len(want.pruned))
	}
	if !maps.EqualFunc(got.selects, want.selects, slices.Equal) {
		for k, v := range want.selects {
			if !slices.Equal(got.selects[k], v) {
				t.Errorf("%s: pass/depth %s chose %d paths %v, one pass after the other %d %v", what, k, len(got.selects[k]), got.selects[k], len(v), v)
			}
		}
		for k := range got.selects {
			if _, ok := want.selects[k]; !ok {
				t.Errorf("%s: pass/depth %s chose paths; one pass after the other it did not run", what, k)
			}
		}
	}
	if got.answer != want.answer {
		t.Errorf("%s: answer %q, one pass after the other %q", what, got.answer, want.answer)
	}
}

func TestBeamOverlappedPassesChooseWhatPassesOneAfterTheOtherChoose(t *testing.T) {
	t.Parallel()
	pol := stepPolicy{
		answerEvery: 7,
		score:       func(step string, _ int) int { return 1 + int(hashOf(step)%10) },
		delay:       randomDelay(3, 4),
	}
	// Expanding a path again repeats half of its steps, which are pruned
	// as repeats of the children already there: which expansion of a path
	// came first decides which children it keeps.
	repeating := pol
	repeating.repeatEven = true
	for _, tc := range []struct {
		pol    stepPolicy
		params core.Params
		truth  string
		// abandons: the pass started early is abandoned (an answer of the
		// pass before it was accepted).
		abandons bool
	}{
		// The policy's answers are 0-4: every pass's are rejected, and all
		// passes run (unless two in a row find nothing new).
		{pol, core.Params{"beam_width": 2, "expansions": 3, "max_depth": 4, "passes": 4, "verifier": "exact"}, "7", false},
		{pol, core.Params{"beam_width": 3, "expansions": 2, "max_depth": 4, "passes": 3, "verifier": "exact", "aggregate": AggMean}, "7", false},
		{pol, core.Params{"beam_width": 4, "expansions": 3, "max_depth": 3, "passes": 3, "verifier": "exact", "aggregate": AggMin}, "7", false},
		{repeating, core.Params{"beam_width": 2, "expansions": 4, "max_depth": 4, "passes": 5, "verifier": "exact"}, "7", false},
		// Answers of 3 are accepted: the pass that finds one is the last.
		{pol, core.Params{"beam_width": 2, "expansions": 2, "max_depth": 4, "passes": 6, "verifier": "exact"}, "3", true},
		// Each step a nested beam search of its own.
		{repeating, core.Params{"beam_width": 2, "expansions": 2, "max_depth": 3, "passes": 3, "verifier": "exact",
			"step_strategy": "beam", "step_params": `{"beam_width": 1, "expansions": 2, "max_depth": 1, "passes": 10}`}, "1", true},
	} {
		eng := beamEngine(tc.pol, 6)
		t.Run(fmt.Sprint(tc.params, " repeats:", tc.pol.repeatEven), func(t *testing.T) {
			solve := func(params core.Params, seed int64) passShape {
				res, err := eng.Solve(t.Context(), core.Task{Problem: "q", Truth: tc.truth, Strategy: "beam", Params: params, Seed: seed})
				if err != nil || res.Stopped != core.StopDone {
					t.Fatalf("%v: %v %s %s", params, err, res.Stopped, res.Error)
				}
				return passShapeOf(t, res)
			}
			abandoned, overlapped := 0, 0
			for seed := int64(1); seed <= 3; seed++ {
				seq := maps.Clone(tc.params)
				seq["stop_on_correct"] = false
				want := solve(seq, seed)
				if want.passes < 2 {
					t.Fatalf("seed %d: %d passes; the test needs more", seed, want.passes)
				}
				if len(want.selects) < 4 {
					t.Fatalf("seed %d: only %d depths chosen; the test needs a deeper search", seed, len(want.selects))
				}
				for _, overlap := range []int{1, 64} {
					params := maps.Clone(seq)
					params["overlap_passes"] = overlap
					got := solve(params, seed)
					compareShapes(t, fmt.Sprintf("seed %d overlap %d", seed, overlap), got, want)
					if got.abandoned != 0 {
						abandoned++
					}
					if got.overlapped {
						overlapped++
					}
				}
			}
			if overlapped == 0 {
				t.Error("no two passes overlapped")
			}
			if tc.abandons && abandoned == 0 {
				t.Error("no pass started early was abandoned: the test does not exercise abandoning")
			}
			if !tc.abandons && abandoned > 0 {
				t.Errorf("%d passes started early were abandoned, though every pass runs", abandoned)
			}
		})
	}
}

// compareStopped reports how got, a search with stop_on_correct, differs
// from the passes one after the other. Stopping at the first accepted
// answer cuts the pass that finds it short, at a point that the order of
// the replies decides, so got is compared with two searches that do not
// stop: full, the search with stop_on_correct=false, which runs to the end
// of that pass (a pass with an accepted answer is the last), and before,
// the same with one pass fewer (nil when full ran one pass). got must
// choose every beam that before chose and only beams that full chose,
// expand at least what before expanded and at most what full expanded
// (leaving out what a pass that it abandoned did: those nodes, the only
// ones full does not have, must be pruned with the reason), and answer
// with a path that full's last pass found and its verifier accepted.
func compareStopped(t *testing.T, what string, got, full passShape, before *passShape) {
	t.Helper()
	for k, v := range got.selects {
		if w, ok := full.selects[k]; !ok {
			t.Errorf("%s: pass/depth %s chose paths; one pass after the other it did not run", what, k)
		} else if !slices.Equal(v, w) {
			t.Errorf("%s: pass/depth %s chose %v, one pass after the other %v", what, k, v, w)
		}
	}
	for k, n := range got.expanded {
		if n > full.expanded[k] {
			t.Errorf("%s: expanded %q %d times, one pass after the other %d", what, k, n, full.expanded[k])
		}
	}
	if before != nil {
		for k, v := range before.selects {
			if !slices.Equal(got.selects[k], v) {
				t.Errorf("%s: pass/depth %s chose %v; the passes before the last, one after the other, %v", what, k, got.selects[k], v)
			}
		}
		for k, n := range before.expanded {
			if got.expanded[k] < n {
				t.Errorf("%s: expanded %q %d times; the passes before the last, one after the other, %d", what, k, got.expanded[k], n)
			}
		}
	}
	for k, meta := range got.nodes {
		if _, ok := full.nodes[k]; !ok && !(strings.HasPrefix(meta, "pruned: brought by pass") && strings.Contains(meta, "abandoned")) {
			t.Errorf("%s: node %q, which the passes one after the other do not bring, is not pruned as brought by an abandoned pass (%q)", what, k, meta)
		}
	}
	if a, ok := full.accepted[got.best]; !ok || a != got.answer {
		t.Errorf("%s: answer %q by %q: not an answer that the last pass one after the other found and the verifier accepted (%v)",
			what, got.answer, got.best, slices.Collect(maps.Keys(full.accepted)))
	}
	if got.lateSelects > 0 {
		t.Errorf("%s: %d beams chosen by the pass that held an answer, after it found it, or after the held answer ended the search", what, got.lateSelects)
	}
}

// stopCounts counts the kinds of run the stop_on_correct tests saw.
type stopCounts struct {
	firstPass, laterPass int // runs whose first accepted answer, one pass after the other, came in the first pass or a later one
	overlapped           int // overlapped runs in which two passes overlapped
	promoted, dropped    int // overlapped runs whose next pass held an answer that then ended the search, or was dropped
}

// checkStopped solves a task with stop_on_correct, with the passes one after
// the other and overlapped, and compares each with the searches that do not
// stop (compareStopped).
func checkStopped(t *testing.T, what string, solve func(core.Params) passShape, params core.Params, overlaps []int, c *stopCounts) {
	t.Helper()
	full := maps.Clone(params)
	full["stop_on_correct"] = false
	want := solve(full)
	if len(want.accepted) == 0 {
		t.Fatalf("%s: no accepted answer; the test needs one", what)
	}
	var before *passShape
	if want.passes > 1 {
		full["passes"] = want.passes - 1
		b := solve(full)
		before = &b
		c.laterPass++
	} else {
		c.firstPass++
	}
	stop := maps.Clone(params)
	stop["stop_on_correct"] = true
	compareStopped(t, what+" one pass after the other", solve(stop), want, before)
	for _, overlap := range overlaps {
		stop["overlap_passes"] = overlap
		got := solve(stop)
		compareStopped(t, fmt.Sprintf("%s overlap %d", what, overlap), got, want, before)
		if got.overlapped {
			c.overlapped++
		}
		if got.held != 0 && got.promoted {
			c.promoted++
		} else if got.held != 0 {
			c.dropped++
		}
	}
}

func TestBeamOverlappedPassesStopOnCorrectAsPassesOneAfterTheOther(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(5, 6))
	pol := stepPolicy{
		answerEvery: 7,
		score:       func(step string, _ int) int { return 1 + int(hashOf(step)%10) },
		// Deeper steps take longer: the next pass, a depth behind, often
		// finds an answer while this pass is still at its last depth, where
		// it may find one of its own.
		delay: func(_ core.CompletionRequest, depth int) time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return time.Duration(depth*depth*150+rng.IntN(150)) * time.Microsecond
		},
	}
	eng := beamEngine(pol, 6)
	var c stopCounts
	// The policy's answers are 0-4, the truth one of them: the first pass
	// that finds it is, for these seeds, the first or a later one.
	for _, tc := range []struct {
		params core.Params
		truth  string
		seeds  []int64
	}{
		{core.Params{"beam_width": 2, "expansions": 2, "max_depth": 4, "passes": 8, "verifier": "exact"}, "4", []int64{2, 3, 4, 6}},
		{core.Params{"beam_width": 2, "expansions": 3, "max_depth": 4, "passes": 8, "verifier": "exact", "aggregate": AggMean}, "2", []int64{1, 2, 3}},
		{core.Params{"beam_width": 2, "expansions": 3, "max_depth": 4, "passes": 8, "verifier": "exact", "aggregate": AggMean}, "3", []int64{1, 2}},
		{core.Params{"beam_width": 3, "expansions": 2, "max_depth": 4, "passes": 8, "verifier": "exact"}, "1", []int64{4, 6}},
		{core.Params{"beam_width": 3, "expansions": 2, "max_depth": 4, "passes": 8, "verifier": "exact"}, "2", []int64{1, 6}},
		{core.Params{"beam_width": 3, "expansions": 2, "max_depth": 4, "passes": 8, "verifier": "exact"}, "3", []int64{2, 4}},
	} {
		for _, seed := range tc.seeds {
			solve := func(params core.Params) passShape {
				res, err := eng.Solve(t.Context(), core.Task{Problem: "q", Truth: tc.truth, Strategy: "beam", Params: params, Seed: seed})
				if err != nil || res.Stopped != core.StopDone {
					t.Fatalf("%v: %v %s %s", params, err, res.Stopped, res.Error)
				}
				return passShapeOf(t, res)
			}
			checkStopped(t, fmt.Sprint(tc.params, " truth ", tc.truth, " seed ", seed), solve, tc.params, []int{1, 64}, &c)
		}
	}
	t.Logf("%+v", c)
	if c.firstPass == 0 || c.laterPass == 0 {
		t.Errorf("first accepted answer in the first pass %d times, in a later one %d: the test needs both", c.firstPass, c.laterPass)
	}
	if c.overlapped == 0 {
		t.Error("no two passes overlapped")
	}
	if c.promoted == 0 {
		t.Error("no pass started early held an answer that then ended the search: the test does not exercise holding")
	}
	if c.dropped == 0 {
		t.Error("no pass started early held an answer and was then dropped for one of the pass before: the test does not exercise it")
	}
}

func TestBeamOverlappedPassesSolveGame24AsPassesOneAfterTheOther(t *testing.T) {
	t.Parallel()
	// Replies end in a different order every run (jitterSim). Proposals that
	// reach a state already among a path's children are dropped, so the
	// order of a path's expansions matters.
	eng := beamEngine(jitterSim(t), 8)
	params := core.Params{"beam_width": 3, "expansions": 8, "evaluator": "value", "expand": "propose", "stop_on_correct": false, "passes": 4}
	overlappedRuns, abandoned := 0, 0
	for _, problem := range []string{"4 9 10 13", "1 1 1 1", "2 3 5 12"} {
		solve := func(params core.Params) passShape {
			res, err := eng.Solve(t.Context(), core.Task{Problem: problem, Pack: "game24", Strategy: "beam", Params: params, Seed: 5})
			if err != nil || res.Stopped != core.StopDone {
				t.Fatalf("%v on %s: %v %s %s", params, problem, err, res.Stopped, res.Error)
			}
			return passShapeOf(t, res)
		}
		want := solve(params)
		overlapped := maps.Clone(params)
		overlapped["overlap_passes"] = 8
		for range 2 {
			got := solve(overlapped)
			compareShapes(t, problem, got, want)
			if got.overlapped && want.passes >= 2 {
				overlappedRuns++
			}
			if got.abandoned != 0 {
				abandoned++
			}
		}
	}
	if overlappedRuns == 0 {
		t.Error("no search of two passes or more overlapped them: the test does not exercise overlapping")
	}
	if abandoned == 0 {
		t.Error("no pass started early was abandoned: the test does not exercise abandoning")
	}
}

func TestBeamOverlappedPassesStopOnCorrectSolveGame24AsPassesOneAfterTheOther(t *testing.T) {
	t.Parallel()
	// Replies end in a different order every run (jitterSim).
	eng := beamEngine(jitterSim(t), 8)
	var c stopCounts
	for _, tc := range []struct {
		problem string
		seed    int64
		width   int
	}{
		// The first pass finds an answer the verifier accepts, or only
		// the second or the third does. In the last two the second pass
		// now and then finds one while the first still runs (it is held).
		{"4 4 10 10", 1, 2},
		{"6 6 8 12", 3, 2},
		{"1 4 8 8", 4, 1},
		{"6 6 8 12", 4, 1},
	} {
		solve := func(params core.Params) passShape {
			res, err := eng.Solve(t.Context(), core.Task{Problem: tc.problem, Pack: "game24", Strategy: "beam", Params: params, Seed: tc.seed})
			if err != nil || res.Stopped != core.StopDone {
				t.Fatalf("%v on %s: %v %s %s", params, tc.problem, err, res.Stopped, res.Error)
			}
			return passShapeOf(t, res)
		}
		params := core.Params{"beam_width": tc.width, "expansions": 3, "evaluator": "value", "expand": "propose", "passes": 4}
		checkStopped(t, fmt.Sprint(tc), solve, params, []int{8, 8}, &c)
	}
	t.Logf("%+v", c)
	if c.firstPass == 0 || c.laterPass == 0 {
		t.Errorf("first accepted answer in the first pass %d times, in a later one %d: the test needs both", c.firstPass, c.laterPass)
	}
	if c.overlapped == 0 {
		t.Error("no two passes overlapped")
	}
}

func TestBeamOverlappedPassesStopAtTheBudgetAndTheWallTime(t *testing.T) {
	t.Parallel()
	pol := stepPolicy{answerEvery: 7, score: func(step string, _ int) int { return 1 + int(hashOf(step)%10) },
		delay: func(core.CompletionRequest, int) time.Duration { return 2 * time.Millisecond }}
	eng := beamEngine(pol, 4)
	// The policy's answers are 0-4: no pass ends the search but the limits.
	params := core.Params{"beam_width": 2, "expansions": 3, "max_depth": 4, "passes": 50, "verifier": "exact",
		"stop_on_correct": false, "overlap_passes": 4}
	for _, tc := range []struct {
		limits core.Limits
		want   core.StopReason
	}{
		{core.Limits{LLMCalls: 40}, core.StopBudget},
		{core.Limits{WallTime: 60 * time.Millisecond}, core.StopTimeout},
	} {
		start := time.Now()
		res, err := eng.Solve(t.Context(), core.Task{Problem: "q", Truth: "7", Strategy: "beam", Params: params, Limits: tc.limits, Seed: 2})
		if err != nil || res.Stopped != tc.want {
			t.Fatalf("%+v: %v %s %s, want %s", tc.limits, err, res.Stopped, res.Error, tc.want)
		}
		if tc.limits.LLMCalls > 0 && res.Usage.LLMCalls > tc.limits.LLMCalls {
			t.Errorf("%d LLM calls, budget %d", res.Usage.LLMCalls, tc.limits.LLMCalls)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%+v: the search took %v to stop", tc.limits, d)
		}
		if res.Answer == "" {
			t.Errorf("%+v: no answer so far", tc.limits)
		}
		passes := 0
		for _, e := range res.Trace.Events {
			if e.Op == core.OpSelect {
				passes = max(passes, e.Get("pass").(int))
			}
		}
		if passes < 2 {
			t.Errorf("%+v: %d passes before the limit; the test needs more", tc.limits, passes)
		}
	}
}

// passState builds, on a real Structure, what beam search holds when it
// ends: the nodes each pass brought and chose, the answers found, the
// depths' bookkeeping. It is what result reads.
type passState struct {
	t    *testing.T
	s    *beamSearch
	born map[core.NodeID]int // the pass that brought each node
}

// newPassState is a search whose oldest pass is pass; abandoned, when not
// 0, is the pass started early (overlap_passes) and then abandoned.
func newPassState(t *testing.T, pass, abandoned int) *passState {
	tr := core.NewTracer(false)
	env := &core.Env{Structure: core.NewStructure(core.Tree, "q", tr), Tracer: tr}
	s := &beamSearch{beam: beam{width: 1, k: 2, maxDepth: 3, passes: 3, overlap: 4, stopOnCorrect: true, aggregate: AggLast},
		env: env, pass: pass, abandoned: abandoned, ended: true}
	s.root = &beamNode{id: 0, known: true}
	s.levels = []*beamLevel{{pass: pass}}
	return &passState{t: t, s: s, born: map[core.NodeID]int{}}
}

// add puts under parent the child with sample index idx, brought by pass
// born and chosen by pass chosen (0: none); answer makes it an answer.
// With kind not "", it is scored score under kind, and a verifier's score
// of 1 means accepted.
func (p *passState) add(parent *beamNode, idx, born, chosen int, answer, kind string, score float64) *beamNode {
	p.t.Helper()
	key := append(slices.Clone(parent.key), idx)
	node := core.Node{Content: fmt.Sprintf("step %v", key), Answer: answer, Terminal: answer != ""}
	if kind != "" {
		node.Scores = map[string]float64{kind: score}
	}
	id, err := p.s.env.Structure.Add([]core.NodeID{parent.id}, node)
	if err != nil {
		p.t.Fatal(err)
	}
	p.born[id] = born
	n := &beamNode{id: id, depth: parent.depth + 1, parent: parent, key: key, born: born, pass: chosen, terminal: node.Terminal}
	if kind != "" {
		n.scored, n.stepOK, n.step, n.known = true, true, score, true
		n.agg = parent.agg.add(score, true)
		n.sc = n.agg.score(p.s.aggregate)
		n.right = kind == core.ScoreVerifier && score > 0
	}
	if n.terminal {
		p.s.finished = append(p.s.finished, n)
		return n
	}
	lv := p.s.level(n.depth, p.s.pass)
	if chosen != 0 && (lv.firstDec == 0 || chosen < lv.firstDec) {
		lv.firstDec = chosen
	}
	lv.nodes = append(lv.nodes, n)
	if n.known {
		lv.known = append(lv.known, n)
		slices.SortStableFunc(lv.known, func(x, y *beamNode) int {
			switch {
			case rankLess(x.sc, x.key, y.sc, y.key):
				return -1
			case rankLess(y.sc, y.key, x.sc, x.key):
				return 1
			}
			return 0
		})
	}
	return n
}

// TestBeamResultIgnoresAnAbandonedPass: when a pass started early
// (overlap_passes) is abandoned, because the pass before it ended with an
// answer or ended the search, the answers and paths it brought count for
// nothing, even where they would beat the pass's: a higher score, or, the
// verifier accepting both, an earlier sample. (End to end, an abandoned
// pass's answer rarely beats the pass's own: accepted answers tie, and the
// earlier sample is nearly always the pass's.) Each case is checked with
// the later pass abandoned and, for contrast, with it run (as when its held
// answer ends the search): then its node is the result.
func TestBeamResultIgnoresAnAbandonedPass(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// build returns the result when pass 2 is abandoned (pass 1's) and
		// when it ran (pass 2's).
		build func(p *passState) (pass1, pass2 *beamNode)
		stop  error // the search's stop error, which result returns
	}{
		{name: "answer with a higher score", build: func(p *passState) (*beamNode, *beamNode) {
			r := p.s.root
			a := p.add(r, 0, 1, 1, "", core.ScorePRM, 0.5)
			p.add(r, 1, 1, 0, "", core.ScorePRM, 0.1)
			mine := p.add(a, 0, 1, 0, "4", core.ScorePRM, 0.2)
			// Pass 2 expanded the root again and went on from its own child.
			b := p.add(r, 2, 2, 2, "", core.ScorePRM, 0.4)
			later := p.add(b, 0, 2, 0, "5", core.ScorePRM, 0.9)
			return mine, later
		}},
		{name: "accepted answer of an earlier sample", build: func(p *passState) (*beamNode, *beamNode) {
			r := p.s.root
			// Pass 1 chose [1]; pass 2, [0], which pass 1 left out.
			a0 := p.add(r, 0, 1, 2, "", core.ScorePRM, 0.3)
			a1 := p.add(r, 1, 1, 1, "", core.ScorePRM, 0.6)
			// Pass 2's answer came back first, and was held.
			later := p.add(a0, 0, 2, 0, "24", core.ScoreVerifier, 1)
			mine := p.add(a1, 1, 1, 0, "24", core.ScoreVerifier, 1)
			p.add(r, 2, 2, 0, "", core.ScorePRM, 0.2)
			return mine, later
		}},
		{name: "no answer: the deepest depth's best path", stop: core.ErrBudgetExhausted, build: func(p *passState) (*beamNode, *beamNode) {
			r := p.s.root
			a0 := p.add(r, 0, 1, 2, "", core.ScorePRM, 0.3)
			a1 := p.add(r, 1, 1, 1, "", core.ScorePRM, 0.6)
			later := p.add(a0, 0, 2, 0, "", core.ScorePRM, 0.9)
			mine := p.add(a1, 0, 1, 0, "", core.ScorePRM, 0.1)
			return mine, later
		}},
		{name: "no answer: only pass 2 reached the deepest depth", stop: core.ErrBudgetExhausted, build: func(p *passState) (*beamNode, *beamNode) {
			r := p.s.root
			a0 := p.add(r, 0, 1, 2, "", core.ScorePRM, 0.3)
			a1 := p.add(r, 1, 1, 1, "", core.ScorePRM, 0.6)
			p.add(r, 2, 2, 0, "", core.ScorePRM, 0.9) // pass 2's own child, the best of depth 1
			later := p.add(a0, 0, 2, 0, "", core.ScorePRM, 0.2)
			p.add(a0, 1, 2, 0, "", "", 0)
			return a1, later
		}},
		{name: "no answer: the deepest depth unscored", stop: core.ErrBudgetExhausted, build: func(p *passState) (*beamNode, *beamNode) {
			r := p.s.root
			a0 := p.add(r, 0, 1, 2, "", core.ScorePRM, 0.3)
			a1 := p.add(r, 1, 1, 1, "", core.ScorePRM, 0.6)
			// Pass 2's expansion of [0] came back before pass 1's of [1].
			later := p.add(a0, 0, 2, 0, "", "", 0)
			mine := p.add(a1, 0, 1, 0, "", "", 0)
			return mine, later
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, run := range []struct {
				what            string
				pass, abandoned int
			}{{"pass 2 abandoned", 1, 2}, {"pass 2 ran", 2, 0}} {
				p := newPassState(t, run.pass, run.abandoned)
				pass1, pass2 := tc.build(p)
				p.s.stopErr = tc.stop
				want := pass1
				if run.pass == 2 {
					want = pass2
				}
				out, err := p.s.result()
				if err != tc.stop {
					t.Errorf("%s: error %v, want %v", run.what, err, tc.stop)
				}
				st := p.s.env.Structure
				if out.Best != want.id {
					t.Errorf("%s: result %q (brought by pass %d), want %q (pass %d)", run.what,
						st.MustNode(out.Best).Content, p.born[out.Best], st.MustNode(want.id).Content, want.born)
				}
				if wantAnswer := st.MustNode(want.id).Answer; out.Answer != wantAnswer {
					t.Errorf("%s: answer %q, want %q", run.what, out.Answer, wantAnswer)
				}
			}
		})
	}
}
