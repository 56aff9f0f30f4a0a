// Command beam is an example Ponder strategy plugin: a small step-level
// beam search. Each round it asks the host's policy for `expand` next steps
// below every node of the beam, scores the new steps with a host evaluator,
// keeps the best `width` and prunes the rest; answers leave the beam and
// the best-scored answer wins. Every LLM call goes through the host, so it
// is charged to the run's budget and recorded in its trace.
package main

import (
	"github.com/ponder-rlm/ponder/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Name:    "beam-lite",
		Version: "1.0.0",
		Summary: "step-level beam search run as a plugin: expand each beam node, score the steps with an evaluator, keep the best",
		Params: []sdk.ParamSpec{
			{Name: "width", Type: "int", Default: int64(2), Description: "nodes kept per round", Min: bound(1), Max: bound(16)},
			{Name: "expand", Type: "int", Default: int64(2), Description: "next steps sampled below each beam node", Min: bound(1), Max: bound(16)},
			{Name: "depth", Type: "int", Default: int64(6), Description: "most rounds (steps per path)", Min: bound(1), Max: bound(32)},
			{Name: "evaluator", Type: "string", Default: "judge", Description: "evaluator that scores each step (empty: keep the first ones)"},
			{Name: "temperature", Type: "float", Default: 0.7, Description: "sampling temperature", Min: bound(0), Max: bound(2)},
		},
		Strategy: Beam{},
	})
}

func bound(f float64) *float64 { return &f }
