package strategy_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/tasks"
)

// numbersLeft reads the "Numbers left: ..." line of a Game of 24 prompt.
func numbersLeft(msgs []core.Message) string {
	for _, m := range msgs {
		if i := strings.Index(m.Content, "Numbers left: "); i >= 0 {
			return strings.SplitN(m.Content[i+len("Numbers left: "):], "\n", 2)[0]
		}
	}
	return ""
}

// g24Stub is a Game of 24 policy for tests: root proposals come from root
// (by the how-manyth root proposal it is), other positions get every legal
// move, and the value prompt is answered exactly (a perfect value model:
// fine in a test of the search's bookkeeping).
func g24Stub(root func(call int) []string) (core.Policy, *atomic.Int64) {
	var rootCalls, calls atomic.Int64
	return core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		id, _ := tasks.Identify(req.Messages)
		st, err := tasks.Game24Play(id.Problem, id.Steps)
		var c core.Completion
		for i := 0; i < max(req.N, 1); i++ {
			calls.Add(1)
			var text string
			switch {
			case err != nil:
				text = "impossible"
			case id.Kind == tasks.KindValue && st.Solvable():
				text = "sure"
			case id.Kind == tasks.KindValue:
				text = "impossible"
			case len(id.Steps) == 0:
				text = strings.Join(root(int(rootCalls.Add(1))), "\n")
			default:
				var lines []string
				for _, m := range st.Moves() {
					lines = append(lines, m.String())
				}
				text = strings.Join(lines, "\n")
			}
			c.Choices = append(c.Choices, core.Choice{Text: text})
		}
		return c, nil
	}), &calls
}

func TestToTBFSPassesGoOnAfterAFailedPass(t *testing.T) {
	t.Parallel()
	// The first root proposal leads nowhere (10 13 13 cannot make 24); the
	// second one can be solved.
	root := func(call int) []string {
		if call == 1 {
			return []string{"4 + 9 = 13 (left: 10 13 13)"}
		}
		return []string{"4 + 9 = 13 (left: 10 13 13)", "13 - 9 = 4 (left: 4 4 10)"}
	}
	for _, passes := range []int{1, 10} {
		pol, calls := g24Stub(root)
		res, err := newEngine(pol).Solve(t.Context(), core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "tot-bfs",
			Params: core.Params{"breadth": 3, "max_depth": 4, "passes": passes}, Limits: core.Limits{LLMCalls: 60}})
		if err != nil {
			t.Fatal(err)
		}
		if passes == 1 {
			if res.Answer != "" && tasks.Check24("4 9 10 13", res.Answer) == nil || calls.Load() >= 60 {
				t.Fatalf("one pass: answer %q after %d calls; want no solution, budget left", res.Answer, calls.Load())
			}
			continue
		}
		if err := tasks.Check24("4 9 10 13", res.Answer); err != nil || res.Stopped != core.StopDone {
			t.Fatalf("passes=%d: stopped %s with %q (%v); want a later pass to solve it", passes, res.Stopped, res.Answer, err)
		}
		last := 0
		for _, e := range res.Trace.Events {
			if p, ok := e.Get("pass").(int); e.Op == core.OpSelect && ok {
				last = max(last, p)
			}
		}
		if last < 2 {
			t.Errorf("solved in pass %d; the first pass cannot solve it", last)
		}
	}
}

// countingPolicy records, for every sample, its purpose and the numbers
// left in its prompt.
type countingPolicy struct {
	core.Policy
	mu   sync.Mutex
	seen []string // "purpose|numbers left"
}

func (p *countingPolicy) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	c, err := p.Policy.Complete(ctx, req)
	p.mu.Lock()
	for range c.Choices {
		p.seen = append(p.seen, req.Purpose+"|"+numbersLeft(req.Messages))
	}
	p.mu.Unlock()
	return c, err
}

func TestSearchesSpendNoCallsOnFinishedOrRepeatedStates(t *testing.T) {
	t.Parallel()
	pol := simPolicy(t, sim.Options{Seed: 1, Game24Model: sim.Game24Calibrated})
	const problem = "1 4 8 8" // not solved at once, so the searches grow
	for _, tc := range []struct {
		strategy string
		params   core.Params
	}{
		{"tot-bfs", core.Params{"breadth": 5, "max_depth": 4}},
		{"mcts", core.Params{"expand": "propose", "parallel": 4, "iterations": 1000}},
	} {
		for _, check := range []bool{true, false} {
			p := core.Params{"check_steps": check}
			for k, v := range tc.params {
				p[k] = v
			}
			cp := &countingPolicy{Policy: pol}
			res, err := newEngine(cp).Solve(t.Context(), core.Task{Problem: problem, Pack: "game24", Strategy: tc.strategy,
				Params: p, Limits: core.Limits{LLMCalls: 60}, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			finished, values := 0, map[string]int{}
			for _, s := range cp.seen {
				purpose, left, _ := strings.Cut(s, "|")
				if len(strings.Fields(left)) == 1 {
					finished++
				}
				if purpose == "value" {
					values[left]++
				}
			}
			repeats := 0
			for _, n := range values {
				repeats += n - 1
			}
			if !check {
				// Without the checks the searches do spend such calls: the
				// numbers above are not zero by accident.
				if finished+repeats == 0 {
					t.Errorf("%s without check_steps: no call on a finished state, no repeated value; want some", tc.strategy)
				}
				continue
			}
			if finished > 0 || repeats > 0 {
				t.Errorf("%s: %d calls on finished states, %d values of a state valued before; want none", tc.strategy, finished, repeats)
			}
			if res.Answer != "" && tasks.Check24(problem, res.Answer) == nil {
				n := res.BestPath[len(res.BestPath)-1]
				if n.Kind != core.KindAnswer {
					t.Errorf("%s: the right answer is in a %s node", tc.strategy, n.Kind)
				}
			}
		}
	}
}

func TestProposalsAreScreenedBeforeTheyCount(t *testing.T) {
	t.Parallel()
	// The root proposals: wrong arithmetic, a number that is not left, the
	// same numbers left twice, and more good moves. With children = 2 the
	// two kept must be the first two legal, distinct ones.
	root := func(int) []string {
		return []string{"13 - 9 = 5 (left: 4 5 10)", "13 - 8 = 5 (left: 4 5 9 10)", "4 + 9 = 13 (left: 10 13 13)",
			"9 + 4 = 13", "13 - 9 = 4 (left: 4 4 10)", "9 - 4 = 5 (left: 5 10 13)"}
	}
	pol, _ := g24Stub(root)
	res, err := newEngine(pol).Solve(t.Context(), core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "mcts",
		Params: core.Params{"expand": "propose", "children": 2, "parallel": 1}, Limits: core.Limits{LLMCalls: 40}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tasks.Check24("4 9 10 13", res.Answer); err != nil {
		t.Fatalf("answer %q: %v", res.Answer, err)
	}
	var first []string
	for _, n := range res.Trace.Structure.Nodes() {
		if n.Depth == 1 {
			first = append(first, n.Content)
		}
	}
	want := []string{"4 + 9 = 13 (left: 10 13 13)", "13 - 9 = 4 (left: 4 4 10)"}
	if strings.Join(first, "|") != strings.Join(want, "|") {
		t.Errorf("root children %q, want %q", first, want)
	}
	for _, e := range res.Trace.Events {
		if e.Op == core.OpGenerate && len(e.Nodes) > 0 && e.Nodes[0] == 0 {
			if e.Get("illegal") != 2 || e.Get("repeats") != 1 {
				t.Errorf("root generate event %v; want 2 illegal proposals and 1 repeat", e.Data)
			}
			break
		}
	}
}
