package strategy_test

import (
	"context"
	"fmt"
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

// BenchmarkBeamOverlapUtilisation is BenchmarkUtilisation's beam search
// (alone, and four at once with different seeds) with its passes one after
// the other and overlapped (overlap_passes): slot utilisation, the wall in
// round trips of 100 ms, the requests (an overlapped search also spends
// those of a pass it starts early and then abandons) and the useful
// utilisation: the utilisation scaled by the share of the requests that the
// searches with passes one after the other make.
//
//	go test -run '^$' -bench BeamOverlapUtilisation -benchtime 1x ./core/strategy/
func BenchmarkBeamOverlapUtilisation(b *testing.B) {
	url := simtest.Start(b, sim.Options{Seed: 1, Latency: 100 * time.Millisecond})
	pol, err := llm.New(config.LLM{BaseURL: url, Model: "sim", Concurrency: 64, Timeout: time.Minute, N: "auto"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, runs := range []int{1, 4} {
		var sequential int64 // requests with the passes one after the other
		for _, overlap := range []int{0, 8, 64} {
			name := fmt.Sprintf("overlap_passes=%d", overlap)
			if runs > 1 {
				name = fmt.Sprintf("%druns/%s", runs, name)
			}
			b.Run(name, func(b *testing.B) {
				lim := core.NewLimiter(8)
				eng := core.NewEngine(pol, standardRegistry(), &core.EngineOptions{Packs: tasks.Get, Limiter: lim})
				var busy, wall time.Duration
				var calls int64
				var mu sync.Mutex
				answers := map[string]int{}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					before := lim.BusyTime()
					start := time.Now()
					var wg sync.WaitGroup
					for r := 0; r < runs; r++ {
						task := core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "beam", Seed: int64(r),
							Params: core.Params{"beam_width": 16, "expansions": 8, "evaluator": "value", "stop_on_correct": false,
								"expand": "propose", "overlap_passes": overlap}}
						wg.Go(func() {
							res, err := eng.Solve(context.Background(), task)
							if err != nil || res.Stopped == core.StopError {
								b.Errorf("%v %s", err, res.Error)
								return
							}
							mu.Lock()
							calls += res.Usage.Requests
							answers[res.Answer]++
							mu.Unlock()
						})
					}
					wg.Wait()
					wall += time.Since(start)
					busy += lim.BusyTime() - before
				}
				if overlap == 0 {
					sequential = calls / int64(b.N)
				}
				u := busy.Seconds() / (8 * wall.Seconds())
				rt := wall.Seconds() / 0.1 / float64(b.N)
				useful := u * float64(sequential) * float64(b.N) / float64(calls)
				b.ReportMetric(u, "utilisation")
				b.ReportMetric(float64(calls)/float64(b.N), "requests/op")
				fmt.Printf("beam %d run(s) overlap_passes=%-3d utilisation %.3f, %.1f round trips, %d requests (%d with passes one after the other: useful utilisation %.3f), answers %v\n",
					runs, overlap, u, rt, calls/int64(b.N), sequential, useful, answers)
			})
		}
	}
}
