package tasks

import (
	"math/big"
	"regexp"
	"strings"
	"unicode"

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
// reduced to its number by ParseNumber: an answer that is not one number
// ("2^{10}", "\frac{3}{4}", "7, or maybe 8") has none.
func (GSM8K) ExtractAnswer(text string) (string, bool) {
	a, ok := core.ExtractAnswer(text)
	if !ok {
		return "", false
	}
	return ParseNumber(a)
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
	n, ok := ParseNumber(a)
	if !ok {
		return strings.TrimSpace(a)
	}
	r, ok := new(big.Rat).SetString(n)
	if !ok {
		return n
	}
	return r.RatString()
}

var (
	// numberLayout is LaTeX that may sit inside a written number: thin
	// spaces as thousands separators (1\,000), {,} and escaped signs.
	numberLayout = strings.NewReplacer(`{,}`, ",", `\,`, "", `\!`, "", `\;`, "", `\ `, " ", `\$`, "$", `\%`, "%",
		"\u2212", "-", "\u2013", "-", "\u2014", "-", "\uff0d", "-", "\u00a0", " ", "\u202f", "")
	// unitPower is the power of a unit ("cm^2", "ft^{3}"), which is not a
	// number of the answer.
	unitPower = regexp.MustCompile(`([A-Za-z}])\s*\^\s*\{?\s*[23]\s*\}?`)
	// answerNumber is a number as answers write it: a sign (before or
	// after a dollar sign), digits with or without thousands separators,
	// decimals, and a fraction bar.
	answerNumber = regexp.MustCompile(`(?:-\$?|\$-?)?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:/\d+)?`)
)

// maxNumberDigits bounds the numbers ParseNumber reads: converting a
// megabyte of digits to a big.Rat costs seconds.
const maxNumberDigits = 256

// ParseNumber reads an answer that is one number, in canonical form
// (commas and dollar signs dropped, "-0" as "0", no trailing zeros after
// a decimal point): "$1,000.00" is 1000, "x = 18" and "48 + 24 = 72" are
// 18 and 72, "-$5", "−5" and "\$-5" are -5, "3/4" stays 3/4 and ".5" is
// 0.5. Words and units around it are allowed ("18 dollars", "12 cm^2").
// An answer with no number, or with more than one ("2 hours and 30
// minutes", "2^{10}", "\frac{3}{4}", "1,5", "1e5", "7 or 8"), or with
// digits of another script, has none: ParseNumber reports false rather
// than pick one.
func ParseNumber(a string) (string, bool) {
	s := numberLayout.Replace(a)
	for _, r := range s {
		if r > unicode.MaxASCII && unicode.IsDigit(r) {
			return "", false
		}
	}
	// One equation: its right-hand side is the answer.
	if strings.Count(s, "=") == 1 {
		s = s[strings.IndexByte(s, '=')+1:]
	}
	s = unitPower.ReplaceAllString(s, "$1")
	found := ""
	for _, m := range answerNumber.FindAllStringIndex(s, -1) {
		start, end := m[0], m[1]
		if found != "" {
			return "", false
		}
		tok := s[start:end]
		// A sign after a letter, digit or bracket is a minus: "x-5".
		if tok[0] == '-' || strings.HasPrefix(tok, "$-") {
			if p := strings.TrimRight(s[:start], " "); p != "" && isOperandEnd(p[len(p)-1]) {
				return "", false
			}
		}
		// A number right after a letter is part of a name ("x2", "H2O").
		if start > 0 && isASCIILetter(s[start-1]) {
			return "", false
		}
		// The number must end here: not 1.2.3, 1e5, 12,5, 3! or 2^{10}.
		if end < len(s) {
			c := s[end]
			if c == '!' || c == '^' || strings.IndexByte(".,eE", c) >= 0 && end+1 < len(s) && s[end+1] >= '0' && s[end+1] <= '9' {
				return "", false
			}
		}
		found = tok
	}
	if found == "" {
		return "", false
	}
	n := strings.NewReplacer(",", "", "$", "").Replace(found)
	if strings.HasPrefix(n, "-.") || strings.HasPrefix(n, ".") {
		n = strings.Replace(n, ".", "0.", 1)
	}
	if len(n) > maxNumberDigits {
		return "", false
	}
	if strings.Contains(n, ".") && !strings.Contains(n, "/") {
		n = strings.TrimRight(strings.TrimRight(n, "0"), ".")
	}
	if strings.HasSuffix(n, "/0") || strings.Contains(n, "/") && strings.Trim(n[strings.IndexByte(n, '/')+1:], "0") == "" {
		return "", false // no number: a division by zero
	}
	if n == "-0" {
		n = "0"
	}
	return n, true
}

func isOperandEnd(c byte) bool {
	return isASCIILetter(c) || '0' <= c && c <= '9' || c == ')' || c == ']' || c == '}'
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

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

// ExtractAnswer implements core.Pack; an empty \boxed{} is no answer.
func (MATH) ExtractAnswer(text string) (string, bool) {
	a, ok := core.ExtractAnswer(text)
	return a, ok && a != ""
}

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
	s = strings.NewReplacer("\u2212", "-", "\u2013", "-", `\$`, "$").Replace(s)
	if n, ok := ParseNumber(s); ok && strings.Trim(s, "-$0123456789.,/") == "" {
		return numericKey(n)
	}
	return s
}
