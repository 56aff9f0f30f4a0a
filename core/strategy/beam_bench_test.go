package strategy_test

import (
	"fmt"
	"testing"

	"github.com/ponder-rlm/ponder/core"
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
//
// The last two search alone with stop_on_correct (the default): this
// puzzle's first pass finds no answer, so a second pass runs.
func BenchmarkBeamOverlapUtilisation(b *testing.B) {
	pol := slowSim(b)
	for _, c := range []struct {
		runs     int
		stop     bool
		overlaps []int
	}{{1, false, []int{0, 8, 64}}, {4, false, []int{0, 8, 64}}, {1, true, []int{0, 8}}} {
		runs := c.runs
		var sequential int64 // requests with the passes one after the other
		for _, overlap := range c.overlaps {
			name := fmt.Sprintf("overlap_passes=%d", overlap)
			if runs > 1 {
				name = fmt.Sprintf("%druns/%s", runs, name)
			}
			if c.stop {
				name = "stop_on_correct/" + name
			}
			b.Run(name, func(b *testing.B) {
				task := core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: "beam",
					Params: core.Params{"beam_width": 16, "expansions": 8, "evaluator": "value", "stop_on_correct": c.stop,
						"expand": "propose", "overlap_passes": overlap}}
				m := measureSlots(b, pol, runs, task)
				calls := m.requests
				if overlap == 0 {
					sequential = calls / int64(b.N)
				}
				u := m.utilisation()
				rt := m.wall.Seconds() / 0.1 / float64(b.N)
				useful := u * float64(sequential) * float64(b.N) / float64(calls)
				b.ReportMetric(u, "utilisation")
				b.ReportMetric(float64(calls)/float64(b.N), "requests/op")
				fmt.Printf("beam %d run(s) stop_on_correct=%-5v overlap_passes=%-3d utilisation %.3f, %.1f round trips, %d requests (%d with passes one after the other: useful utilisation %.3f), answers %v\n",
					runs, c.stop, overlap, u, rt, calls/int64(b.N), sequential, useful, m.answers)
			})
		}
	}
}
