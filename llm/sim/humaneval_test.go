package sim

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// TestHumanEvalAnswers: HumanEval solve and step prompts get a whole
// function in a ```python block: the canonical solution or a body that
// returns None, drawn from the sample's randomness (the same draw, the
// same answer); a problem outside the data gets the wrong body only.
func TestHumanEvalAnswers(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Seed: 1, Accuracy: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	items, _, err := tasks.LoadDataset(s.opts.DataDir, "humaneval")
	if err != nil {
		t.Skipf("no HumanEval data: %v", err)
	}
	it := items[0]
	right := strings.TrimRight(it.Problem+it.Extra["canonical_solution"], " \t\r\n")
	unknown := "def mystery(x):\n    \"\"\"Returns something.\"\"\"\n"
	tests := []struct {
		name, problem, instruction string
		wantRight                  bool
	}{
		{"solve", it.Problem, humanEvalSolveInstruction, true},
		{"step", it.Problem, humanEvalStepInstruction, true},
		{"unknown", unknown, humanEvalSolveInstruction, false},
	}
	for _, tc := range tests {
		msgs := core.LayoutPrompt(humanEvalSystem, tc.problem, nil, tc.instruction)
		g, _, ok := s.humanEval(msgs)
		if !ok {
			t.Fatalf("%s: not taken for a HumanEval prompt", tc.name)
		}
		seen := map[bool]int{}
		for seed := range uint64(40) {
			smp := g(rand.New(rand.NewPCG(seed, 1)))
			if again := g(rand.New(rand.NewPCG(seed, 1))); again != smp {
				t.Fatalf("%s: seed %d answered %q, then %q", tc.name, seed, smp.text, again.text)
			}
			code, ok := tasks.ExtractProgram(smp.text)
			wrong := strings.TrimRight(tc.problem, " \t\r\n") + "\n    return None"
			switch {
			case !ok:
				t.Fatalf("%s: no program in %q", tc.name, smp.text)
			case smp.good && code != right, !smp.good && code != wrong:
				t.Fatalf("%s: good=%v for\n%s", tc.name, smp.good, code)
			}
			seen[smp.good]++
		}
		if (seen[true] > 0) != tc.wantRight || seen[false] == 0 {
			t.Errorf("%s: %d right, %d wrong of 40", tc.name, seen[true], seen[false])
		}
	}
	// Other packs' prompts are not HumanEval's.
	if _, _, ok := s.humanEval(tasks.GSM8K{}.SolvePrompt("What is 2 + 2?")); ok {
		t.Error("a GSM8K prompt taken for HumanEval")
	}
}
