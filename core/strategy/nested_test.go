package strategy_test

import (
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// decompose plans and solves the whole problem afresh, ignoring the outer
// path: as a step_strategy its plan reply became the step ("1. How much
// profit did he make?"). It is rejected before any call, like the other
// whole-solution strategies.
func TestStepStrategyRejectsDecompose(t *testing.T) {
	t.Parallel()
	checkRejections(t, []rejection{
		{"beam", core.Params{"step_strategy": "decompose"}, []string{`"step_strategy"`, "whole solutions"}},
		{"mcts", core.Params{"step_strategy": "decompose", "step_params": `{"sub_strategy": "cot"}`}, []string{`"step_strategy"`, "whole solutions"}},
	})
}
