package standard_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/standard"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/tasks/taskstest"
)

func engineOnSim(t testing.TB, opts sim.Options, concurrency int) *core.Engine {
	t.Helper()
	url := simtest.Start(t, opts)
	client, err := llm.New(config.LLM{BaseURL: url, Model: "ponder-sim", Concurrency: concurrency, Timeout: time.Minute, N: "auto", MaxRetries: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return core.NewEngine(client, standard.Registry(), &core.EngineOptions{Packs: standard.Packs, Concurrency: concurrency})
}

func firstGSM8K(t testing.TB, n int) []tasks.Item {
	t.Helper()
	return taskstest.Load(t, "gsm8k", n)
}

// TestSelfConsistencyBeatsChainOfThought is the foundation's claim, end to
// end through the real LLM client and the simulator: with 35% per-sample
// accuracy, a majority of 16 samples is right far more often than one
// sample, on the first 50 GSM8K questions, with fixed seeds.
func TestSelfConsistencyBeatsChainOfThought(t *testing.T) {
	t.Parallel()
	eng := engineOnSim(t, sim.Options{Seed: 7, Accuracy: 0.35}, 8)
	items := firstGSM8K(t, 50)
	correct := map[string]int{}
	for _, strat := range []struct {
		name   string
		params core.Params
	}{{"cot", core.Params{"temperature": 0.7}}, {"self-consistency", core.Params{"k": 16}}} {
		for i, it := range items {
			res, err := eng.Solve(t.Context(), core.Task{Problem: it.Problem, Pack: "gsm8k", Truth: it.Truth,
				Strategy: strat.name, Params: strat.params, Seed: int64(i + 1)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Stopped != core.StopDone {
				t.Fatalf("%s on item %d stopped: %s %s", strat.name, i, res.Stopped, res.Error)
			}
			if ok, _ := (tasks.GSM8K{}).Verify(it.Problem, res.Answer, it.Truth); ok {
				correct[strat.name]++
			}
		}
	}
	cot, sc := correct["cot"], correct["self-consistency"]
	t.Logf("first 50 GSM8K, simulator at 35%%: cot %d/50, self-consistency(k=16) %d/50", cot, sc)
	// One sample is right about 35% of the time: a count near 17 of 50.
	if cot < 8 || cot > 27 {
		t.Errorf("cot got %d/50: not a 35%% solver", cot)
	}
	if sc < cot+15 {
		t.Errorf("self-consistency %d/50 does not clearly beat cot %d/50", sc, cot)
	}
}

// BenchmarkSelfConsistencyWallTime measures self-consistency's wall time
// against the simulator at 100 ms latency with 8 concurrent LLM calls,
// relative to the ideal ceil(k/8) × 100 ms.
func BenchmarkSelfConsistencyWallTime(b *testing.B) {
	const k, slots = 16, 8
	latency := 100 * time.Millisecond
	eng := engineOnSim(b, sim.Options{Seed: 1, Latency: latency}, slots)
	items := firstGSM8K(b, 1)
	ideal := time.Duration(math.Ceil(float64(k)/slots)) * latency
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		res, err := eng.Solve(context.Background(), core.Task{Problem: items[0].Problem, Pack: "gsm8k",
			Strategy: "self-consistency", Params: core.Params{"k": k}, Seed: int64(i)})
		if err != nil || res.Stopped != core.StopDone {
			b.Fatalf("%v %s", err, res.Error)
		}
		total += time.Since(start)
	}
	mean := total / time.Duration(b.N)
	b.ReportMetric(float64(mean)/float64(ideal), "wall/ideal")
	b.ReportMetric(float64(mean.Milliseconds()), "ms/solve")
}
