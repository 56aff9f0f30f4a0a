package eval

import (
	"context"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/llm/sim"
)

// TestHumanEvalEndToEndOnTheSimulator runs an eval of a few HumanEval
// problems against the simulator, graded by their unit tests in the real
// python sandbox: the simulator answers the pack's prompts with whole
// functions in ```python blocks, right ones (the canonical solutions) and
// wrong ones, and each is graded as what it is. It fails when the
// simulator's copy of the pack's prompts drifts from eval's (no answer is
// then extracted, or none is right).
func TestHumanEvalEndToEndOnTheSimulator(t *testing.T) {
	t.Parallel()
	d := loadNamed(t, "humaneval")
	unit := unitTestsOrSkip(t)
	eng := simEngine(t, sim.Options{Seed: 1, Accuracy: 0.5})
	out := t.TempDir()
	sum, err := Run(context.Background(), eng, Options{Out: out, Dataset: d, Limit: 6, Strategies: []string{"cot"},
		Budgets: []int64{1}, Seed: 1, GraderOptions: GraderOptions{UnitTests: unit}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Ran != 6 || sum.Errors != 0 {
		t.Fatalf("summary %+v: want 6 problems graded, no error", sum)
	}
	items := map[string]Item{}
	for _, it := range d.Items {
		items[it.ID] = it
	}
	var right, wrong int
	for _, r := range readAll(t, out) {
		it := items[r.Item]
		canonical := HumanEval{}.Normalize(it.Problem + it.Extra["canonical_solution"])
		isCanonical := HumanEval{}.Normalize(r.Answer) == canonical
		switch {
		case r.Answer == "" || !strings.Contains(r.Answer, "def "+it.Extra["entry_point"]):
			t.Errorf("%s: answer %q is not the extracted function", r.Item, r.Answer)
		case isCanonical && r.Status == StatusCorrect:
			right++
		case !isCanonical && r.Status == StatusWrong && r.Detail != "":
			wrong++
		default:
			t.Errorf("%s: %s (%s) for the answer\n%s", r.Item, r.Status, r.Detail, r.Answer)
		}
	}
	t.Logf("%d right, %d wrong", right, wrong)
	if right == 0 || wrong == 0 {
		t.Errorf("%d right and %d wrong answers: want some of each (seed 1, accuracy 0.5)", right, wrong)
	}
}
