package tasks

import (
	"math/big"
	"regexp"
	"strings"

	"github.com/ponder-rlm/ponder/core"
)

// GSM8K poses grade-school word problems whose answers are integers.
type GSM8K struct{}

var (
	_ core.Pack     = GSM8K{}
	_ core.Verifier = GSM8K{}
)

const gsm8kSystem = "You are a careful solver of grade-school math word problems. " +
	"Reason step by step with exact arithmetic. Write the final answer as a number in \\boxed{ANSWER}."

// Name implements core.Pack.
func (GSM8K) Name() string { return "gsm8k" }

// SolvePrompt implements core.Pack.
func (GSM8K) SolvePrompt(problem string) []core.Message {
	return core.LayoutPrompt(gsm8kSystem, problem, nil, core.SolveInstruction)
}

// StepPrompt implements core.Pack.
func (GSM8K) StepPrompt(problem string, steps []string) []core.Message {
	return core.LayoutPrompt(gsm8kSystem, problem, steps, core.StepInstruction)
}

// ExtractAnswer implements core.Pack: the boxed, "####" or "answer:" answer,
// reduced to its number.
func (GSM8K) ExtractAnswer(text string) (string, bool) {
	a, ok := core.ExtractAnswer(text)
	if !ok {
		return "", false
	}
	if n, ok := core.ExtractNumber(a); ok {
		return n, true
	}
	return "", false
}

// Normalize implements core.Pack.
func (GSM8K) Normalize(a string) string { return numericKey(a) }

// Verify implements core.Verifier: numeric equality with the truth.
func (g GSM8K) Verify(problem, answer, truth string) (bool, bool) {
	if truth == "" {
		return false, false
	}
	return numericKey(answer) == numericKey(truth), true
}

// numericKey canonicalises a number exactly (1,000 = 1000 = 1000.0 =
// 2000/2), or returns the trimmed text when it is not one.
func numericKey(a string) string {
	n, ok := core.ExtractNumber(a)
	if !ok {
		return strings.TrimSpace(a)
	}
	r, ok := new(big.Rat).SetString(n)
	if !ok {
		return n
	}
	return r.RatString()
}

// MATH poses competition problems (MATH, MATH-500) whose answers are LaTeX.
type MATH struct{}

var (
	_ core.Pack     = MATH{}
	_ core.Verifier = MATH{}
)

const mathSystem = "You are an expert competition mathematician. Reason step by step. " +
	"Write the final answer in simplest form, in LaTeX, inside \\boxed{ANSWER}."

// Name implements core.Pack.
func (MATH) Name() string { return "math" }

// SolvePrompt implements core.Pack.
func (MATH) SolvePrompt(problem string) []core.Message {
	return core.LayoutPrompt(mathSystem, problem, nil, core.SolveInstruction)
}

// StepPrompt implements core.Pack.
func (MATH) StepPrompt(problem string, steps []string) []core.Message {
	return core.LayoutPrompt(mathSystem, problem, steps, core.StepInstruction)
}

// ExtractAnswer implements core.Pack.
func (MATH) ExtractAnswer(text string) (string, bool) { return core.ExtractAnswer(text) }

// Normalize implements core.Pack with a light LaTeX normalisation; eval's
// grader goes further.
func (MATH) Normalize(a string) string { return NormalizeLatex(a) }

// Verify implements core.Verifier by comparing normalised forms.
func (m MATH) Verify(problem, answer, truth string) (bool, bool) {
	if truth == "" {
		return false, false
	}
	return NormalizeLatex(answer) == NormalizeLatex(truth), true
}

var (
	latexSpace = regexp.MustCompile(`\\[,;:! ]|\\quad|\\qquad`)
	textWrap   = regexp.MustCompile(`\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}`)
)

// NormalizeLatex removes layout-only LaTeX: spacing commands, \left and
// \right, \dfrac and \tfrac, a trailing period, surrounding $ and spaces.
func NormalizeLatex(a string) string {
	s := strings.TrimSpace(a)
	if b, ok := core.ExtractBoxed(s); ok {
		s = b
	}
	s = strings.Trim(s, "$ ")
	s = latexSpace.ReplaceAllString(s, "")
	s = textWrap.ReplaceAllString(s, "$1")
	s = strings.NewReplacer(`\left`, "", `\right`, "", `\dfrac`, `\frac`, `\tfrac`, `\frac`, " ", "", `^\circ`, "", `^{\circ}`, "").Replace(s)
	s = strings.TrimSuffix(s, ".")
	if n, ok := core.ExtractNumber(s); ok && n == strings.ReplaceAll(s, ",", "") {
		return numericKey(n)
	}
	return s
}
