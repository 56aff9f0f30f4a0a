package strategy

import (
	"context"
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
}

func passShapeOf(t *testing.T, res core.Result) passShape {
	t.Helper()
	st := res.Trace.Structure
	pathKey := func(id core.NodeID) string { return strings.Join(core.Steps(st.Path(id)), " / ") }
	dropped := func(id core.NodeID) bool {
		v, _ := st.MustNode(id).Meta["beam"].(string)
		return strings.Contains(v, "abandoned") && strings.HasPrefix(v, "brought by")
	}
	sh := passShape{beamShape: beamShape{expanded: map[string]int{}, answer: res.Answer}, selects: map[string][]string{}}
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
		case core.OpSelect:
			pass := e.Get("pass").(int)
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
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(3, 4))
	pol := stepPolicy{
		answerEvery: 7,
		score:       func(step string, _ int) int { return 1 + int(hashOf(step)%10) },
		delay: func(core.CompletionRequest, int) time.Duration {
			mu.Lock()
			defer mu.Unlock()
			return time.Duration(rng.IntN(2000)) * time.Microsecond
		},
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
			"step_strategy": "beam", "step_params": `{"beam_width": 1, "expansions": 2, "max_depth": 1}`}, "1", true},
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

func TestBeamOverlapPassesIsRejectedWithStopOnCorrect(t *testing.T) {
	t.Parallel()
	calls := 0
	pol := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		calls++
		return stepPolicy{}.Complete(ctx, req)
	})
	res, err := beamEngine(pol, 1).Solve(t.Context(), core.Task{Problem: "q", Strategy: "beam", Seed: 1,
		Params: core.Params{"passes": 3, "overlap_passes": 4}})
	if err == nil && res.Stopped != core.StopError || !strings.Contains(fmt.Sprint(err, res.Error), "overlap_passes") {
		t.Errorf("overlap_passes with stop_on_correct: %v %s %q, want an error naming the parameter", err, res.Stopped, res.Error)
	}
	if calls > 0 {
		t.Errorf("%d LLM calls before the parameter was rejected", calls)
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
