package strategy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/tasks"
)

// instant answers at once: steps without answers, value and PRM replies
// with a score that varies with the step, so the search is exercised and
// only Ponder's own cost is measured.
var instant = core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	c := core.Completion{PromptTokens: 20, CompletionTokens: int64(4 * req.N), Choices: make([]core.Choice, req.N)}
	seed := int64(0)
	if req.Seed != nil {
		seed = *req.Seed
	}
	for i := range c.Choices {
		switch req.Purpose {
		case "value", "prm", "orm", "judge":
			c.Choices[i].Text = scoreReplies[(seed+int64(i))%9&7]
		default:
			c.Choices[i].Text = "add the numbers " + strconv.FormatInt(seed%100000, 10) + "." + strconv.Itoa(i)
		}
	}
	return c, nil
})

// scoreReplies are the instant policy's ratings, made once.
var scoreReplies = func() (r [8]string) {
	for i := range r {
		r[i] = "Score: " + string(rune('1'+i))
	}
	return r
}()

func benchSearch(b *testing.B, strategy string, params core.Params) {
	eng := newEngine(instant)
	b.ReportAllocs()
	b.ResetTimer()
	nodes, expansions := 0, 0
	for i := 0; i < b.N; i++ {
		res, err := eng.Solve(context.Background(), core.Task{Problem: "What is 2 + 2?", Strategy: strategy, Params: params, Seed: int64(i)})
		if err != nil || (res.Stopped != core.StopDone) {
			b.Fatalf("%v %s %s", err, res.Stopped, res.Error)
		}
		nodes += int(res.Usage.Nodes)
		for _, e := range res.Trace.Events {
			if e.Op == core.OpGenerate {
				expansions++
			}
		}
	}
	b.ReportMetric(float64(nodes)/b.Elapsed().Seconds(), "nodes/s")
	b.ReportMetric(float64(expansions)/b.Elapsed().Seconds(), "expansions/s")
}

func BenchmarkMCTSExpansions(b *testing.B) {
	benchSearch(b, "mcts", core.Params{"iterations": 1000, "children": 3, "parallel": 1, "max_depth": 8})
}

// BenchmarkTraceJSON encodes the trace of BenchmarkMCTSExpansions's search
// (about 14,000 events), as the trace store does after every run.
//
//	go test -run '^$' -bench TraceJSON ./core/strategy/
func BenchmarkTraceJSON(b *testing.B) {
	res, err := newEngine(instant).Solve(context.Background(), core.Task{Problem: "What is 2 + 2?", Strategy: "mcts",
		Params: core.Params{"iterations": 1000, "children": 3, "parallel": 1, "max_depth": 8}})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := json.Marshal(res.Trace)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(out)))
	}
	b.ReportMetric(float64(len(res.Trace.Events)), "events")
}

func BenchmarkBeamExpansions(b *testing.B) {
	benchSearch(b, "beam", core.Params{"beam_width": 16, "expansions": 4, "max_depth": 8})
}

// BenchmarkUtilisation measures how busy the LLM slots are: busy-slot time
// / (8 × wall) while one search runs against the simulator answering every
// request after 100 ms, with 8 concurrent requests allowed.
//
//	go test -run '^$' -bench Utilisation -benchtime 1x ./core/strategy/
func BenchmarkUtilisation(b *testing.B) {
	pol := slowSim(b)
	gsm := "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"
	for _, c := range []struct {
		name string
		task core.Task
	}{
		{"best-of-n", core.Task{Problem: gsm, Pack: "gsm8k", Strategy: "best-of-n", Params: core.Params{"n": 64}}},
		// Searches that do not stop at the first right answer, so that they
		// run long enough to measure.
		{"beam", core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "beam",
			Params: core.Params{"beam_width": 16, "expansions": 8, "evaluator": "value", "stop_on_correct": false, "expand": "propose"}}},
		// MCTS expands with proposals, as in the Game of 24 table.
		{"mcts", core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "mcts",
			Params: core.Params{"parallel": 8, "iterations": 300, "stop_on": "none", "expand": "propose"}}},
	} {
		// One search alone, then four at once (different seeds) sharing the
		// 8 slots, as on a server: one search from a single root cannot fill
		// 8 slots in its first round trips, four can.
		for _, runs := range []int{1, 4} {
			name := c.name
			if runs > 1 {
				name = fmt.Sprintf("%s-%druns", c.name, runs)
			}
			b.Run(name, func(b *testing.B) {
				m := measureSlots(b, pol, runs, c.task)
				u := m.utilisation()
				b.ReportMetric(u, "utilisation")
				b.ReportMetric(float64(m.requests)/float64(b.N), "requests/op")
				fmt.Printf("%-16s utilisation %.3f (busy %.1fs of 8 × %.1fs wall, %d requests)\n", name, u, m.busy.Seconds(), m.wall.Seconds(), m.requests)
			})
		}
	}
}

// slowSim is a policy on the simulator answering every request after
// 100 ms, allowing more concurrent requests than the 8 slots measured.
func slowSim(b *testing.B) core.Policy {
	url := simtest.Start(b, sim.Options{Seed: 1, Latency: 100 * time.Millisecond})
	pol, err := llm.New(config.LLM{BaseURL: url, Model: "sim", Concurrency: 64, Timeout: time.Minute, N: "auto"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return pol
}

// slotUse is what measureSlots measured, over all b.N rounds.
type slotUse struct {
	busy, wall time.Duration // busy-slot time, and wall time
	requests   int64
	answers    map[string]int // how many searches gave each answer
}

// utilisation is busy-slot time / (8 × wall).
func (m slotUse) utilisation() float64 { return m.busy.Seconds() / (8 * m.wall.Seconds()) }

// measureSlots runs task b.N times, each time as runs searches at once
// (seeds 0 to runs-1) sharing 8 LLM slots.
func measureSlots(b *testing.B, pol core.Policy, runs int, task core.Task) slotUse {
	lim := core.NewLimiter(8)
	eng := core.NewEngine(pol, standardRegistry(), &core.EngineOptions{Packs: tasks.Get, Limiter: lim})
	m := slotUse{answers: map[string]int{}}
	var mu sync.Mutex
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		before := lim.BusyTime()
		start := time.Now()
		var wg sync.WaitGroup
		for r := 0; r < runs; r++ {
			task := task
			task.Seed = int64(r)
			wg.Go(func() {
				res, err := eng.Solve(context.Background(), task)
				if err != nil || res.Stopped == core.StopError {
					b.Errorf("%v %s", err, res.Error)
					return
				}
				mu.Lock()
				m.requests += res.Usage.Requests
				m.answers[res.Answer]++
				mu.Unlock()
			})
		}
		wg.Wait()
		m.wall += time.Since(start)
		m.busy += lim.BusyTime() - before
	}
	return m
}
