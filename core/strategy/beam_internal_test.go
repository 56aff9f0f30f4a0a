package strategy

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/tasks"
)

// stepPolicy answers step prompts with distinct steps ("st-HASH.INDEX")
// that depend only on the request's seed and the choice index, and PRM prompts with a
// score that depends only on the step rated, so that a search asks and
// gets the same things whatever order its requests end in. answerEvery
// makes every answerEvery-th step (by its hash) from depth 2 on a final
// answer; score and delay pick each rating's score (1-10) and each
// request's latency.
type stepPolicy struct {
	answerEvery uint64
	// ignoreSeed: the steps depend on the prompt only, so that a path
	// expanded again gets the same steps.
	ignoreSeed bool
	// repeatEven: the even-numbered samples depend on the prompt only, so
	// that a path expanded again repeats half its steps (and they are
	// pruned as repeats of its children).
	repeatEven bool
	score      func(step string, depth int) int
	delay      func(req core.CompletionRequest, depth int) time.Duration
}

func hashOf(parts ...any) uint64 {
	h := fnv.New64a()
	fmt.Fprint(h, parts...)
	return h.Sum64()
}

// depthOf counts the steps in a prompt.
func depthOf(req core.CompletionRequest) int {
	return strings.Count(req.Messages[len(req.Messages)-1].Content, "st-")
}

func (p stepPolicy) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	depth := depthOf(req)
	if p.delay != nil {
		select {
		case <-time.After(p.delay(req, depth)):
		case <-ctx.Done():
			return core.Completion{}, ctx.Err()
		}
	}
	c := core.Completion{PromptTokens: 10, CompletionTokens: int64(req.N), Choices: make([]core.Choice, req.N)}
	for i := range c.Choices {
		if req.Purpose == "prm" {
			user := req.Messages[len(req.Messages)-1].Content
			last := user[strings.LastIndex(user, "st-"):]
			last = last[:strings.IndexByte(last, '\n')]
			c.Choices[i].Text = fmt.Sprintf("Score: %d", p.score(last, depth))
			continue
		}
		h := hashOf(*req.Seed, i, depth)
		if p.ignoreSeed || p.repeatEven && i%2 == 0 {
			h = hashOf(req.Messages[len(req.Messages)-1].Content, i)
		}
		c.Choices[i].Text = fmt.Sprintf("st-%x.%d", h, i)
		if p.answerEvery > 0 && depth >= 1 && h%p.answerEvery == 0 {
			c.Choices[i].Text += fmt.Sprintf(" so the answer is \\boxed{%d}", h%5)
		}
	}
	return c, nil
}

// beamEngine is an engine with the built-in strategies, evaluators and
// packs, plus "beam-barrier": beam search that waits at every depth for
// all of the depth's scores (level-by-level beam search).
func beamEngine(pol core.Policy, slots int) *core.Engine {
	reg := core.NewRegistry()
	Register(reg)
	evaluator.Register(reg)
	spec := beamSpec()
	spec.Name = "beam-barrier"
	newBeam := spec.New
	spec.New = func(p core.Params) (core.Strategy, error) {
		s, err := newBeam(p)
		if err != nil {
			return nil, err
		}
		b := s.(beam)
		b.barrier = true
		return b, nil
	}
	reg.RegisterStrategy(spec)
	return core.NewEngine(pol, reg, &core.EngineOptions{Packs: tasks.Get, Concurrency: slots})
}

// beamShape is what a beam search did, by node content rather than id (ids
// follow the order in which requests ended): how often each path was
// expanded, which paths were pruned, and the answer.
type beamShape struct {
	expanded map[string]int
	pruned   []string
	answer   string
}

func shapeOf(t *testing.T, res core.Result) beamShape {
	t.Helper()
	st := res.Trace.Structure
	pathKey := func(id core.NodeID) string { return strings.Join(core.Steps(st.Path(id)), " / ") }
	sh := beamShape{expanded: map[string]int{}, answer: res.Answer}
	for _, e := range res.Trace.Events {
		if e.Op == core.OpGenerate {
			sh.expanded[pathKey(e.Nodes[0])]++
		}
	}
	for _, n := range st.Nodes() {
		if n.Pruned {
			sh.pruned = append(sh.pruned, pathKey(n.ID))
		}
	}
	slices.Sort(sh.pruned)
	return sh
}

func TestBeamWithoutBarrierExpandsWhatLevelByLevelBeamSearchExpands(t *testing.T) {
	t.Parallel()
	pol := stepPolicy{
		answerEvery: 5,
		score:       func(step string, _ int) int { return 1 + int(hashOf(step)%10) },
		delay:       randomDelay(1, 2),
	}
	eng := beamEngine(pol, 6)
	for _, params := range []core.Params{
		{"beam_width": 3, "expansions": 3, "max_depth": 4, "stop_on_correct": false, "passes": 1},
		{"beam_width": 2, "expansions": 4, "max_depth": 4, "aggregate": AggMean, "stop_on_correct": false},
		{"beam_width": 5, "expansions": 2, "max_depth": 3, "aggregate": AggMin, "stop_on_correct": false},
		// The policy's answers are 0-4: every pass's are rejected.
		{"beam_width": 2, "expansions": 3, "max_depth": 3, "passes": 3, "verifier": "exact"},
	} {
		t.Run(fmt.Sprint(params), func(t *testing.T) {
			solve := func(strategy string, seed int64) beamShape {
				res, err := eng.Solve(t.Context(), core.Task{Problem: "q", Truth: "7", Strategy: strategy, Params: params, Seed: seed})
				if err != nil || res.Stopped != core.StopDone {
					t.Fatalf("%s: %v %s %s", strategy, err, res.Stopped, res.Error)
				}
				return shapeOf(t, res)
			}
			for seed := int64(1); seed <= 3; seed++ {
				want := solve("beam-barrier", seed)
				if len(want.expanded) < 3 {
					t.Fatalf("seed %d: only %d paths expanded; the test needs a deeper search", seed, len(want.expanded))
				}
				if p, ok := params["passes"].(int); ok && p > 1 && want.expanded[""] != p {
					t.Fatalf("seed %d: %d passes, want %d", seed, want.expanded[""], p)
				}
				for range 3 {
					got := solve("beam", seed)
					if !maps2Equal(got.expanded, want.expanded) {
						t.Errorf("seed %d: expanded\n%v\nlevel by level:\n%v", seed, got.expanded, want.expanded)
					}
					if !slices.Equal(got.pruned, want.pruned) {
						t.Errorf("seed %d: pruned %d paths, level by level %d", seed, len(got.pruned), len(want.pruned))
					}
					if got.answer != want.answer {
						t.Errorf("seed %d: answer %q, level by level %q", seed, got.answer, want.answer)
					}
				}
			}
		})
	}
}

func maps2Equal(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// overlapLog records, for every request, the requests in flight when it
// started.
type overlapLog struct {
	mu       sync.Mutex
	inflight map[int]map[string]int // depth → purpose → count
	// expandWhileScoring: an expansion of a depth-d path started while a
	// depth-d path was still being scored; expandBeforeOwnScore: while
	// that very path was.
	expandWhileScoring   int
	expandBeforeOwnScore int
	scoring              map[string]int
}

func (l *overlapLog) wrap(p core.Policy) core.Policy {
	l.inflight, l.scoring = map[int]map[string]int{}, map[string]int{}
	return core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		d := depthOf(req)
		user := req.Messages[len(req.Messages)-1].Content
		path := user[:strings.LastIndex(user, "\n\n")]
		l.mu.Lock()
		if l.inflight[d] == nil {
			l.inflight[d] = map[string]int{}
		}
		if req.Purpose == "expand" && l.inflight[d]["prm"] > 0 {
			l.expandWhileScoring++
			if l.scoring[path] > 0 {
				l.expandBeforeOwnScore++
			}
		}
		l.inflight[d][req.Purpose]++
		if req.Purpose == "prm" {
			l.scoring[path]++
		}
		l.mu.Unlock()
		c, err := p.Complete(ctx, req)
		l.mu.Lock()
		l.inflight[d][req.Purpose]--
		if req.Purpose == "prm" {
			l.scoring[path]--
		}
		l.mu.Unlock()
		return c, err
	})
}

func TestBeamExpandsCertainPathsWhileTheirDepthIsStillBeingScored(t *testing.T) {
	t.Parallel()
	// Even-numbered samples get 10 at once, odd ones 3 after 30 ms: the
	// first sample of a depth is certain to be in a beam of 2 as soon as
	// its rating is in, and is expanded while the 3s are still rated.
	odd := func(step string) bool {
		return strings.HasSuffix(step, "1") || strings.HasSuffix(step, "3") || strings.HasSuffix(step, "5")
	}
	pol := stepPolicy{
		score: func(step string, _ int) int {
			if odd(step) {
				return 3
			}
			return 10
		},
		delay: func(req core.CompletionRequest, _ int) time.Duration {
			if req.Purpose == "prm" {
				user := req.Messages[len(req.Messages)-1].Content
				last := user[strings.LastIndex(user, "st-"):]
				if odd(last[:strings.IndexByte(last, '\n')]) {
					return 30 * time.Millisecond
				}
			}
			return time.Millisecond
		},
	}
	for _, tc := range []struct {
		strategy string
		params   core.Params
		overlap  bool
	}{
		{"beam", core.Params{"beam_width": 2, "expansions": 6, "max_depth": 3, "stop_on_correct": false}, true},
		{"beam-barrier", core.Params{"beam_width": 2, "expansions": 6, "max_depth": 3, "stop_on_correct": false}, false},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			t.Parallel()
			var log overlapLog
			res, err := beamEngine(log.wrap(pol), 16).Solve(t.Context(), core.Task{Problem: "q", Strategy: tc.strategy, Params: tc.params, Seed: 7})
			if err != nil || res.Stopped != core.StopDone {
				t.Fatalf("%v %s %s", err, res.Stopped, res.Error)
			}
			if tc.overlap && log.expandWhileScoring == 0 {
				t.Error("no expansion started while its depth was still being scored")
			}
			if !tc.overlap && log.expandWhileScoring > 0 {
				t.Errorf("level by level, %d expansions started while their depth was still being scored", log.expandWhileScoring)
			}
		})
	}
	// A depth that cannot hold more than beam_width paths is all in the
	// beam: its paths are expanded while their own ratings are in flight.
	var log overlapLog
	res, err := beamEngine(log.wrap(pol), 16).Solve(t.Context(), core.Task{Problem: "q", Strategy: "beam",
		Params: core.Params{"beam_width": 4, "expansions": 2, "max_depth": 2, "stop_on_correct": false}, Seed: 7})
	if err != nil || res.Stopped != core.StopDone {
		t.Fatalf("%v %s %s", err, res.Stopped, res.Error)
	}
	if log.expandBeforeOwnScore == 0 {
		t.Error("no path was expanded before its own rating was in")
	}
}

func TestBeamPassesGoOnUntilAnAnswerIsAccepted(t *testing.T) {
	t.Parallel()
	pol := stepPolicy{answerEvery: 3, score: func(step string, _ int) int { return 1 + int(hashOf(step)%10) }}
	eng := beamEngine(pol, 8)
	for _, tc := range []struct {
		truth, verifier string
		passes          int // passes expected
		wantAnswer      bool
	}{
		{"7", "exact", 3, false}, // the policy's answers are 0-4: every pass runs
		{"2", "exact", 1, true},  // an answer of the first pass is right: it stops there
		{"7", "none", 1, false},  // no verifier rejects the first pass's answers
	} {
		params := core.Params{"beam_width": 2, "expansions": 3, "max_depth": 3, "passes": 3, "verifier": tc.verifier}
		res, err := eng.Solve(t.Context(), core.Task{Problem: "q", Truth: tc.truth, Strategy: "beam", Params: params, Seed: 3})
		if err != nil || res.Stopped != core.StopDone {
			t.Fatalf("truth %s: %v %s %s", tc.truth, err, res.Stopped, res.Error)
		}
		if (res.Answer == tc.truth) != tc.wantAnswer {
			t.Errorf("truth %s: answer %q", tc.truth, res.Answer)
		}
		sh := shapeOf(t, res)
		if sh.expanded[""] != tc.passes {
			t.Errorf("truth %s: the root was expanded %d times, want once per pass (%d)", tc.truth, sh.expanded[""], tc.passes)
		}
		// Every pass expands at most beam_width paths per depth.
		perPass := map[[2]int]int{}
		for _, e := range res.Trace.Events {
			if e.Op == core.OpSelect {
				perPass[[2]int{e.Get("pass").(int), e.Get("depth").(int)}] += len(e.Nodes)
			}
		}
		for k, n := range perPass {
			if n > 2 {
				t.Errorf("truth %s: pass %d kept %d paths at depth %d, beam width 2", tc.truth, k[0], n, k[1])
			}
			if k[0] > tc.passes {
				t.Errorf("truth %s: a pass %d ran", tc.truth, k[0])
			}
		}
		expansions := 0
		for _, n := range sh.expanded {
			expansions += n
		}
		if most := tc.passes * (1 + 2*2); expansions > most {
			t.Errorf("truth %s: %d expansions, more than %d passes of 1 + 2·2", tc.truth, expansions, tc.passes)
		}
	}
}

func TestBeamWithoutBarrierSolvesGame24AsLevelByLevel(t *testing.T) {
	t.Parallel()
	eng := beamEngine(jitterSim(t), 8)
	params := core.Params{"beam_width": 3, "expansions": 8, "evaluator": "value", "expand": "propose", "stop_on_correct": false, "passes": 2}
	for _, problem := range []string{"4 9 10 13", "1 1 1 1"} {
		solve := func(strategy string) beamShape {
			res, err := eng.Solve(t.Context(), core.Task{Problem: problem, Pack: "game24", Strategy: strategy, Params: params, Seed: 5})
			if err != nil || res.Stopped != core.StopDone {
				t.Fatalf("%s on %s: %v %s %s", strategy, problem, err, res.Stopped, res.Error)
			}
			return shapeOf(t, res)
		}
		want := solve("beam-barrier")
		for range 2 {
			got := solve("beam")
			if !maps2Equal(got.expanded, want.expanded) || !slices.Equal(got.pruned, want.pruned) || got.answer != want.answer {
				t.Errorf("%s: expanded %d paths, pruned %d, answer %q; level by level %d, %d, %q", problem,
					len(got.expanded), len(got.pruned), got.answer, len(want.expanded), len(want.pruned), want.answer)
			}
		}
	}
}

func TestBeamScoresEachNestedStepAsSoonAsItIsFound(t *testing.T) {
	t.Parallel()
	// The first inner expansion to arrive takes 60 ms, every other request
	// 1 ms. The outer scoring of a step (its prompt's second rating: the
	// nested search rated it first) should not wait for the slow sibling.
	var mu sync.Mutex
	slowSeen := false
	var slowEnd time.Time
	firstOuter := time.Time{}
	ratings := map[string]int{}
	base := stepPolicy{score: func(step string, _ int) int { return 1 + int(hashOf(step)%10) }}
	pol := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		mu.Lock()
		delay := time.Millisecond
		slow := false
		switch req.Purpose {
		case "expand":
			if !slowSeen {
				slowSeen, slow, delay = true, true, 60*time.Millisecond
			}
		case "prm":
			p := req.Messages[len(req.Messages)-1].Content
			if ratings[p]++; ratings[p] == 2 && firstOuter.IsZero() {
				firstOuter = time.Now()
			}
		}
		mu.Unlock()
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return core.Completion{}, ctx.Err()
		}
		if slow {
			mu.Lock()
			slowEnd = time.Now()
			mu.Unlock()
		}
		return base.Complete(ctx, req)
	})
	res, err := beamEngine(pol, 16).Solve(t.Context(), core.Task{Problem: "q", Strategy: "beam", Seed: 2,
		Params: core.Params{"beam_width": 2, "expansions": 3, "max_depth": 1, "passes": 1, "step_strategy": "beam",
			"step_params": `{"beam_width": 1, "expansions": 2, "max_depth": 1}`}})
	if err != nil || res.Stopped != core.StopDone {
		t.Fatalf("%v %s %s", err, res.Stopped, res.Error)
	}
	subs := 0
	for _, n := range res.Trace.Structure.Nodes() {
		if n.Kind == core.KindSubProblem {
			subs++
			if n.Sub == nil {
				t.Errorf("sub-problem node %d has no nested structure", n.ID)
			}
			if _, ok := n.Scores[core.ScorePRM]; !ok && n.Meta["beam"] == nil {
				t.Errorf("nested step %d was not scored, and not for want of a place in the beam", n.ID)
			}
		}
	}
	if subs != 3 {
		t.Fatalf("%d nested steps, want 3", subs)
	}
	if firstOuter.IsZero() || !firstOuter.Before(slowEnd) {
		t.Errorf("the first nested step was scored at %v, after the slowest sibling ended (%v)", firstOuter, slowEnd)
	}
}

func TestBeamPassesEndWhenTheyFindNothingNew(t *testing.T) {
	t.Parallel()
	// Every expansion of a path brings the same steps and no answer: the
	// second pass finds nothing new, nor does the third, which ends it.
	pol := stepPolicy{ignoreSeed: true, score: func(step string, _ int) int { return 1 + int(hashOf(step)%10) }}
	res, err := beamEngine(pol, 8).Solve(t.Context(), core.Task{Problem: "q", Strategy: "beam", Seed: 1,
		Params: core.Params{"beam_width": 2, "expansions": 2, "max_depth": 2}})
	if err != nil || res.Stopped != core.StopDone {
		t.Fatalf("%v %s %s", err, res.Stopped, res.Error)
	}
	if n := shapeOf(t, res).expanded[""]; n != 3 {
		t.Errorf("the root was expanded %d times, want 3 (two passes in a row found nothing new)", n)
	}
}

func TestBeamWaitsForCandidatesWhosePathScoreIsNotKnownYet(t *testing.T) {
	t.Parallel()
	// Depth 1 holds three paths, all in a beam of 3: they are expanded at
	// once. The rating of the second (".1") is slow, so its children's path
	// scores wait for it, and they are the best of depth 2: no child of the
	// other two may be chosen before they are in.
	base := stepPolicy{}
	pol := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		if req.Purpose != "prm" {
			return base.Complete(ctx, req)
		}
		user := req.Messages[len(req.Messages)-1].Content
		steps := strings.Count(user, "st-")
		first := user[strings.Index(user, "st-"):]
		first = first[:strings.IndexByte(first, '\n')]
		score, delay := 5, time.Millisecond
		switch {
		case steps == 1 && strings.HasSuffix(first, ".1"):
			delay = 40 * time.Millisecond
		case steps == 2 && strings.HasSuffix(first, ".1"):
			score = 10
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return core.Completion{}, ctx.Err()
		}
		return core.Completion{Choices: []core.Choice{{Text: fmt.Sprintf("Score: %d", score)}}}, nil
	})
	eng := beamEngine(pol, 16)
	params := core.Params{"beam_width": 3, "expansions": 3, "max_depth": 3, "passes": 1}
	solve := func(strategy string) beamShape {
		res, err := eng.Solve(t.Context(), core.Task{Problem: "q", Strategy: strategy, Params: params, Seed: 4})
		if err != nil || res.Stopped != core.StopDone {
			t.Fatalf("%s: %v %s %s", strategy, err, res.Stopped, res.Error)
		}
		return shapeOf(t, res)
	}
	want, got := solve("beam-barrier"), solve("beam")
	if !maps2Equal(got.expanded, want.expanded) {
		t.Errorf("expanded\n%v\nlevel by level:\n%v", got.expanded, want.expanded)
	}
}

// jitterSim is the simulator answering after a random delay, so requests
// end in a different order every run; its answers depend only on the
// requests.
func jitterSim(t *testing.T) core.Policy {
	t.Helper()
	url := simtest.Start(t, sim.Options{Seed: 3, Latency: time.Millisecond, Jitter: 4 * time.Millisecond})
	pol, err := llm.New(config.LLM{BaseURL: url, Model: "sim", Concurrency: 32, Timeout: time.Minute, N: "auto"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// randomDelay delays each reply up to 2 ms, drawn from its own seeded
// source, so that replies come back in a shuffled order.
func randomDelay(seed1, seed2 uint64) func(core.CompletionRequest, int) time.Duration {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed1, seed2))
	return func(core.CompletionRequest, int) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return time.Duration(rng.IntN(2000)) * time.Microsecond
	}
}
