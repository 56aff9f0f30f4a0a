package main

import (
	"context"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/plugins"
	"github.com/ponder-rlm/ponder/sdk/sdktest"
	"github.com/ponder-rlm/ponder/standard"
)

// BenchmarkBeam solves one GSM8K problem on the simulator with the same
// beam code twice: in-process (Beam called directly against the run's
// Env) and as the plugin subprocess (every host call over gRPC). The
// difference is the plugin overhead of a whole search.
func BenchmarkBeam(b *testing.B) {
	for _, lat := range []time.Duration{0, 5 * time.Millisecond} {
		b.Run("latency="+lat.String(), func(b *testing.B) { benchBeam(b, lat) })
	}
}

func benchBeam(b *testing.B, latency time.Duration) {
	url := simtest.Start(b, sim.Options{Seed: 3, DataDir: "../../../../shared/data", Latency: latency})
	cfg := config.Default().LLM
	cfg.BaseURL = url
	client, err := llm.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	task := core.Task{
		Problem:  "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
		Pack:     "gsm8k",
		Strategy: "beam-lite",
		Limits:   core.Limits{LLMCalls: 40},
		Seed:     1,
	}
	run := func(b *testing.B, reg *core.Registry) {
		eng := core.NewEngine(client, reg, &core.EngineOptions{Packs: standard.Packs})
		var calls int64
		for b.Loop() {
			res, err := eng.Solve(context.Background(), task)
			if err != nil || res.Stopped == core.StopError {
				b.Fatalf("%v %s", err, res.Error)
			}
			calls += res.Usage.LLMCalls
		}
		b.ReportMetric(float64(calls)/float64(b.N), "llm-calls/op")
	}
	b.Run("in-process", func(b *testing.B) {
		reg := standard.Registry()
		p := plugin()
		p.Params[3].Default = "judge"
		reg.RegisterStrategy(core.StrategySpec{Name: "beam-lite", Params: p.Params,
			New: func(params core.Params) (core.Strategy, error) {
				return plugins.HostStrategy("beam-lite", Beam{}, params, 0), nil
			}})
		run(b, reg)
	})
	b.Run("plugin", func(b *testing.B) {
		mgr, _ := sdktest.Install(b, sdktest.Build(b, "."), nil)
		reg := standard.Registry()
		mgr.Register(reg)
		run(b, reg)
	})
}
