package eval

import (
	"math"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// HumanEval poses HumanEval problems: the problem is a Python function's
// signature and docstring, the answer the completed function (a program).
// tasks registers no such pack; Packs adds it.
type HumanEval struct{}

var _ core.Pack = HumanEval{}

// Prompts of the HumanEval pack.
const (
	HumanEvalSystem = "You are an expert Python programmer. Complete the function so that it passes its hidden " +
		"unit tests. Only the standard library is available."
	HumanEvalSolveInstruction = "Complete the Python function above. Think step by step if it helps, then reply with " +
		"the whole function (signature and body, with any imports it needs) in one ```python code block."
	HumanEvalStepInstruction = "Write only the next step of the solution. When the function is complete, give the " +
		"whole function in one ```python code block."
)

// Name implements core.Pack.
func (HumanEval) Name() string { return "humaneval" }

// SolvePrompt implements core.Pack.
func (HumanEval) SolvePrompt(problem string) []core.Message {
	return core.LayoutPrompt(HumanEvalSystem, problem, nil, HumanEvalSolveInstruction)
}

// StepPrompt implements core.Pack.
func (HumanEval) StepPrompt(problem string, steps []string) []core.Message {
	return core.LayoutPrompt(HumanEvalSystem, problem, steps, HumanEvalStepInstruction)
}

// ExtractAnswer implements core.Pack: the program in the last ```python
// block.
func (HumanEval) ExtractAnswer(text string) (string, bool) {
	if !strings.Contains(text, "```") {
		return "", false
	}
	return tasks.ExtractProgram(text)
}

// Normalize implements core.Pack: programs that differ only in blank lines
// and trailing spaces vote together.
func (HumanEval) Normalize(a string) string {
	var lines []string
	for _, l := range strings.Split(a, "\n") {
		if l = strings.TrimRight(l, " \t\r"); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// Packs wraps a pack resolver (core.EngineOptions.Packs) so that it also
// knows the packs eval brings (humaneval) when next does not.
func Packs(next func(name string) (core.Pack, error)) func(name string) (core.Pack, error) {
	return func(name string) (core.Pack, error) {
		if next != nil {
			p, err := next(name)
			if err == nil {
				return p, nil
			}
			if name != "humaneval" {
				return nil, err
			}
		}
		if name == "humaneval" {
			return HumanEval{}, nil
		}
		if name == "generic" {
			return core.GenericPack{}, nil
		}
		return tasks.Get(name)
	}
}

// PassAtK is the unbiased estimator of pass@k (Chen et al., 2021) from n
// samples of which c are correct: 1 − C(n−c, k)/C(n, k). It is NaN when
// n < k.
func PassAtK(n, c, k int) float64 {
	if k <= 0 || n < k || c < 0 || c > n {
		return math.NaN()
	}
	if n-c < k {
		return 1
	}
	// Π_{i=n−c+1}^{n} (1 − k/i), computed stably.
	p := 1.0
	for i := n - c + 1; i <= n; i++ {
		p *= 1 - float64(k)/float64(i)
	}
	return 1 - p
}
