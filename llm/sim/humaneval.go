package sim

import (
	"math/rand/v2"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// The prompts of eval's humaneval pack (eval.HumanEvalSystem and its
// instructions). eval's tests import the simulator, so the simulator
// cannot import eval: it keeps a copy, and eval's end-to-end HumanEval
// test fails when the two drift apart (no answer would be graded right).
const (
	humanEvalSystem = "You are an expert Python programmer. Complete the function so that it passes its hidden " +
		"unit tests. Only the standard library is available."
	humanEvalSolveInstruction = "Complete the Python function above. Think step by step if it helps, then reply with " +
		"the whole function (signature and body, with any imports it needs) in one ```python code block."
	humanEvalStepInstruction = "Write only the next step of the solution. When the function is complete, give the " +
		"whole function in one ```python code block."
)

// humanEval answers the solve and step prompts of the humaneval pack with
// the whole function in a ```python block, as the pack extracts it: for a
// problem of the HumanEval data, its canonical solution with the
// problem's accuracy (Accuracy, spread by Spread), else a body that
// returns None, which fails its tests. A step prompt gets the whole
// function too: it is one step that ends the path. Other prompts about
// HumanEval problems (judge, value, critique) are answered as for any
// problem the simulator does not know.
func (s *Server) humanEval(msgs []core.Message) (generator, string, bool) {
	p, ok := tasks.ParsePrompt(msgs)
	if !ok || p.System != humanEvalSystem {
		return nil, "", false
	}
	kind := tasks.KindSolve
	switch p.Instruction {
	case humanEvalSolveInstruction:
	case humanEvalStepInstruction:
		kind = tasks.KindStep
	default:
		return nil, "", false
	}
	prompt, right := p.Problem, ""
	if it, ok := s.kb.item(p.Problem); ok && it.Pack == "humaneval" && it.Extra["canonical_solution"] != "" {
		prompt, right = it.Problem, it.Problem+it.Extra["canonical_solution"]
	}
	wrong := strings.TrimRight(prompt, " \t\r\n") + "\n    return None\n"
	accuracy := s.problemAccuracy(p.Problem)
	return func(rng *rand.Rand) sample {
		if right != "" && rng.Float64() < accuracy {
			return sample{codeReply(right), true}
		}
		return sample{codeReply(wrong), false}
	}, string(kind), true
}

// codeReply writes a function as a model does: a sentence, then the code
// in a ```python block.
func codeReply(code string) string {
	return "Here is the completed function.\n\n```python\n" + strings.TrimRight(code, " \t\r\n") + "\n```\n"
}
