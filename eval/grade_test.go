package eval

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/tools/sandbox"
)

func TestGraders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		grader  string
		item    Item
		answer  string
		correct bool
	}{
		{"gsm8k", Item{Truth: "72"}, "72", true},
		{"gsm8k", Item{Truth: "72"}, "72.00", true},
		{"gsm8k", Item{Truth: "1001"}, "$1,001", true},
		{"gsm8k", Item{Truth: "72"}, `\boxed{72}`, true},
		{"gsm8k", Item{Truth: "72"}, "72 clips", true},
		{"gsm8k", Item{Truth: "72"}, "x = 72", true},
		{"gsm8k", Item{Truth: "72"}, "71", false},
		{"gsm8k", Item{Truth: "72"}, "72.5", false},
		{"gsm8k", Item{Truth: "72"}, "720", false},
		{"gsm8k", Item{Truth: "72"}, "", false},
		{"gsm8k", Item{Truth: "72"}, "seventy-two", false},
		{"gsm8k", Item{Truth: "1000"}, `1\,000`, true},
		{"gsm8k", Item{Truth: "1000"}, `1{,}000`, true},
		{"gsm8k", Item{Truth: "-5"}, "−5", true},
		{"gsm8k", Item{Truth: "8"}, "12 - 4 = 8", true},
		{"gsm8k", Item{Truth: "12"}, "12 - 4 = 8", false},
		{"gsm8k", Item{Truth: "3"}, `\frac{3}{4}`, false},
		{"gsm8k", Item{Truth: "2"}, "2^{10}", false},
		{"gsm8k", Item{Truth: "10"}, "10^6", false},
		{"gsm8k", Item{Truth: "3"}, `3 \frac{1}{2}`, false},
		{"gsm8k", Item{Truth: "18"}, "18 - 2", false},
		{"gsm8k", Item{Truth: "2"}, "2 hours and 30 minutes", false},
		{"gsm8k", Item{Truth: "125"}, "12,5", false},
		{"gsm8k", Item{Truth: "1"}, "1e1000000", false},
		{"math", Item{Truth: `\frac{1}{2}`}, "0.5", true},
		{"math", Item{Truth: `\frac{1}{2}`}, "1/3", false},
		{"game24", Item{Problem: "4 9 10 13"}, "(13 - 9) * (10 - 4)", true},
		{"game24", Item{Problem: "4 9 10 13"}, "(13 - 9) * (10 - 4) + 0", false},
		{"game24", Item{Problem: "4 9 10 13"}, "4 * 6", false},
		{"game24", Item{Problem: "4 9 10 13"}, "", false},
		{"exact", Item{Truth: "Paris"}, " paris ", true},
		{"exact", Item{Truth: "Paris"}, "Lyon", false},
	}
	for _, tc := range tests {
		g, err := NewGrader(tc.grader, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := g.Grade(context.Background(), tc.item, tc.answer)
		if err != nil {
			t.Errorf("%s grading %q: %v", tc.grader, tc.answer, err)
			continue
		}
		if got.Correct != tc.correct {
			t.Errorf("%s grading %q against %+v: correct = %v (%s), want %v", tc.grader, tc.answer, tc.item, got.Correct, got.Detail, tc.correct)
		}
		if !got.Correct && got.Detail == "" {
			t.Errorf("%s grading %q: wrong without a detail", tc.grader, tc.answer)
		}
	}
	if _, err := NewGrader("vibes", nil); err == nil {
		t.Error("unknown grader accepted")
	}
	g, _ := NewGrader("gsm8k", nil)
	if _, err := g.Grade(context.Background(), Item{Truth: "many"}, "3"); err == nil {
		t.Error("a non-numeric GSM8K truth graded without an error")
	}
}

// unitTestsOrSkip returns HumanEval's unit-test verifier on the sandbox.
func unitTestsOrSkip(t *testing.T) func(string) (core.Evaluator, error) {
	t.Helper()
	sb, err := sandbox.New(nil)
	if err != nil {
		t.Skipf("no sandbox here (%v): HumanEval grading is not tested", err)
	}
	t.Cleanup(func() { sb.Close() })
	reg := core.NewRegistry()
	reg.RegisterEvaluator(evaluator.UnitTestSpec(sandbox.UnitTestRunner{Sandbox: sb}))
	return func(entry string) (core.Evaluator, error) {
		return reg.Evaluator("unittest", core.Params{"entry_point": entry, "timeout": "2s"})
	}
}

func TestHumanEvalGradedInTheSandbox(t *testing.T) {
	t.Parallel()
	d := loadNamed(t, "humaneval")
	g, err := NewGrader("humaneval", &GraderOptions{UnitTests: unitTestsOrSkip(t)})
	if err != nil {
		t.Fatal(err)
	}
	it := d.Items[0]
	ctx := context.Background()
	// The canonical solution completes the prompt's function body.
	res, err := g.Grade(ctx, it, it.Extra["canonical_solution"])
	if err != nil || !res.Correct {
		t.Fatalf("canonical solution of %s: %+v, %v; want correct", it.ID, res, err)
	}
	// A whole function is graded as it is.
	res, err = g.Grade(ctx, it, it.Problem+it.Extra["canonical_solution"])
	if err != nil || !res.Correct {
		t.Fatalf("whole canonical function of %s: %+v, %v; want correct", it.ID, res, err)
	}
	res, err = g.Grade(ctx, it, "    return False\n")
	if err != nil || res.Correct || res.Detail == "" {
		t.Fatalf("wrong body of %s: %+v, %v; want wrong with a detail", it.ID, res, err)
	}
	res, err = g.Grade(ctx, it, "    while True:\n        pass\n")
	if err != nil || res.Correct {
		t.Fatalf("endless body of %s: %+v, %v; want wrong", it.ID, res, err)
	}
}

func TestHumanEvalWithoutSandbox(t *testing.T) {
	t.Parallel()
	g, _ := NewGrader("humaneval", nil)
	_, err := g.Grade(context.Background(), Item{ID: "HumanEval/0", Extra: map[string]string{"test": "def check(c): pass"}}, "x")
	if !errors.Is(err, ErrNoSandbox) {
		t.Fatalf("humaneval without a sandbox: %v, want ErrNoSandbox", err)
	}
	reg := core.NewRegistry()
	reg.RegisterEvaluator(evaluator.UnitTestSpec(nil))
	g, _ = NewGrader("humaneval", &GraderOptions{UnitTests: func(e string) (core.Evaluator, error) {
		return reg.Evaluator("unittest", core.Params{"entry_point": e})
	}})
	_, err = g.Grade(context.Background(), Item{ID: "HumanEval/0", Extra: map[string]string{"test": "def check(c): pass", "entry_point": "f"}}, "def f(): pass")
	if !errors.Is(err, ErrNoSandbox) {
		t.Fatalf("humaneval with a sandbox-less verifier: %v, want ErrNoSandbox", err)
	}
}

func TestPassAtK(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n, c, k int
		want    float64
	}{
		{10, 3, 1, 0.3},
		{10, 3, 5, 1 - 21.0/252},
		{10, 0, 5, 0},
		{10, 10, 10, 1},
		{10, 6, 5, 1}, // fewer than k wrong: some correct one is always drawn
		{1, 1, 1, 1},
		{100, 1, 10, 0.1},
	}
	for _, tc := range tests {
		if got := PassAtK(tc.n, tc.c, tc.k); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("PassAtK(%d, %d, %d) = %v, want %v", tc.n, tc.c, tc.k, got, tc.want)
		}
	}
	for _, bad := range [][3]int{{4, 1, 5}, {0, 0, 1}, {5, 6, 1}, {5, 1, 0}} {
		if got := PassAtK(bad[0], bad[1], bad[2]); !math.IsNaN(got) {
			t.Errorf("PassAtK%v = %v, want NaN", bad, got)
		}
	}
}

func TestHumanEvalPack(t *testing.T) {
	t.Parallel()
	p, err := Packs(nil)("humaneval")
	if err != nil {
		t.Fatal(err)
	}
	a, ok := p.ExtractAnswer("Here:\n```python\ndef f():\n    return 1\n```\n")
	if !ok || a != "def f():\n    return 1" {
		t.Fatalf("ExtractAnswer = %q, %v", a, ok)
	}
	if _, ok := p.ExtractAnswer("I think 42."); ok {
		t.Error("an answer without a program was taken")
	}
	if p.Normalize("def f():\n\n    return 1  \n") != p.Normalize("def f():\n    return 1") {
		t.Error("blank lines and trailing spaces change the normalised program")
	}
	if _, err := Packs(nil)("nope"); err == nil {
		t.Error("an unknown pack resolved")
	}
}
