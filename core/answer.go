package core

import (
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/ponder-rlm/ponder/internal/text"
)

// ExtractBoxed returns the content of the last \boxed{...} in text, with
// nested braces balanced.
func ExtractBoxed(text string) (string, bool) {
	i := strings.LastIndex(text, `\boxed`)
	if i < 0 {
		return "", false
	}
	rest := text[i+len(`\boxed`):]
	rest = strings.TrimLeft(rest, " ")
	if !strings.HasPrefix(rest, "{") {
		return "", false
	}
	depth := 0
	for j, r := range rest {
		switch r {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return strings.TrimSpace(rest[1:j]), true
			}
		}
	}
	return "", false
}

var (
	// answerMarker is "answer:", "answer =" or "answer is", with the space
	// after it (line breaks included: "The answer is\n14").
	answerMarker = regexp.MustCompile(`(?i)\banswer\s*(?:is\s*:?|[:=])\s*`)
	// sentenceBreak ends an answer written inside prose: "14. I hope it is
	// correct" (Minerva's format), "x = 3. Then ...". The period must follow
	// a digit, a closing bracket or dollar, or a lower-case word, so that
	// initials and titles ("J. K. Rowling", "Dr. Who") stay whole.
	sentenceBreak = regexp.MustCompile(`(?:[0-9$)}\]]|[a-z]{2})(\.)\s+[A-Z]`)
	numberRe      = regexp.MustCompile(`-?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?`)
)

// ExtractAnswer finds a final answer in text: the last \boxed{...}, else
// the last "#### x", else the last "answer: x" / "answer is x". The last
// one wins within each form, even on one line, because a model that
// corrects itself ("Answer: 12 ... wait ... Answer: 14") ends with the
// answer it settled on, as lm-eval-harness and the MATH grader read it. The
// forms keep their order of precedence: every prompt asks for \boxed, so a
// box is the final answer and the prose after it ("the answer is correct",
// a Markdown "#### Check" heading) is commentary, not a correction.
// Likewise an answer line that only judges an earlier answer ("the
// answer is correct") yields to it.
// An "answer" line's answer ends at the end of its line or sentence. It
// does not fall back to the last number in the text: a step that states no
// answer has none.
func ExtractAnswer(text string) (string, bool) {
	if b, ok := ExtractBoxed(text); ok {
		return b, true
	}
	// The regular expression is costly next to a search's other work per
	// step: most steps hold neither marker, which a plain scan rules out
	// (the expression's case folding also takes ſ for s).
	if !strings.Contains(text, "####") && !containsFoldASCII(text, "answer") && !strings.Contains(text, "ſ") {
		return "", false
	}
	for rest := text; ; {
		i := strings.LastIndex(rest, "####")
		if i < 0 {
			break
		}
		if a := answerAt(rest[i+len("####"):]); a != "" {
			return a, true
		}
		rest = rest[:i]
	}
	m := answerMarker.FindAllStringIndex(text, -1)
	verdict := ""
	for k := len(m) - 1; k >= 0; k-- {
		a := answerAt(text[m[k][1]:])
		switch {
		case a == "":
		case isVerdict(a):
			// "Answer: 14. Checking: the answer is correct." The verdict
			// is about an answer before it, which wins; alone, it is the
			// answer (a true-or-false question's "the answer is true").
			if verdict == "" {
				verdict = a
			}
		default:
			return a, true
		}
	}
	return verdict, verdict != ""
}

// isVerdict reports whether an answer is only a judgement of an answer
// ("correct", "right", "wrong", ...), as a model's check of its own
// answer ends.
func isVerdict(a string) bool {
	switch strings.ToLower(strings.TrimRight(a, ".!")) {
	case "correct", "right", "wrong", "incorrect", "valid", "invalid", "reasonable", "confirmed", "verified":
		return true
	}
	return false
}

// answerAt reads the answer that starts s (after a marker): up to the end
// of its line and of its sentence, without surrounding space or a final
// period.
func answerAt(s string) string {
	s = strings.TrimLeft(s, " \t\r\n")
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if loc := sentenceBreak.FindStringSubmatchIndex(s); loc != nil {
		s = s[:loc[2]]
	}
	return strings.TrimRight(strings.TrimSpace(s), ".")
}

// containsFoldASCII reports whether s contains the lower-case ASCII word
// sub in any case, without allocating.
func containsFoldASCII(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for ; j < len(sub); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

// ExtractNumber returns the first number in s in canonical form: commas,
// dollar signs and trailing zeros after a decimal point removed.
func ExtractNumber(s string) (string, bool) {
	m := numberRe.FindString(s)
	if m == "" {
		return "", false
	}
	m = strings.NewReplacer(",", "", "$", "").Replace(m)
	if strings.Contains(m, ".") && !strings.Contains(m, "/") {
		m = strings.TrimRight(strings.TrimRight(m, "0"), ".")
	}
	if m == "-0" {
		m = "0"
	}
	return m, true
}

// GenericPack poses any problem: solve step by step and box the answer.
// Answers are compared as numbers when they are numbers, else as trimmed
// lower-case text.
type GenericPack struct{}

var _ Pack = GenericPack{}

// Name implements Pack.
func (GenericPack) Name() string { return "generic" }

const genericSystem = "You are a careful problem solver. Reason step by step. " +
	"When you reach the final answer, write it as \\boxed{ANSWER}."

// Instructions of the generic pack's prompts.
const (
	SolveInstruction = "Solve the problem step by step, one step per line, then give the final answer as \\boxed{ANSWER}."
	StepInstruction  = "Write only the next step. If it completes the solution, end it with the final answer as \\boxed{ANSWER}."
)

// LayoutPrompt lays out a prompt the way every built-in pack does, so that
// one parser (tasks.ParsePrompt) reads them all:
//
//	Problem:
//	<problem>
//
//	Steps so far:
//	Step 1: <step>
//	...
//
//	<instruction>
func LayoutPrompt(system, problem string, steps []string, instruction string) []Message {
	size := len("Problem:\n\n\nSteps so far:\n\n") + len(problem) + len(instruction)
	for _, s := range steps {
		size += len("Step 1000: \n") + len(s)
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString("Problem:\n")
	b.WriteString(problem)
	b.WriteString("\n\n")
	if len(steps) > 0 {
		b.WriteString("Steps so far:\n")
		var num [20]byte
		for i, s := range steps {
			b.WriteString("Step ")
			b.Write(strconv.AppendInt(num[:0], int64(i+1), 10))
			b.WriteString(": ")
			b.WriteString(s)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	b.WriteString(instruction)
	return []Message{{Role: "system", Content: system}, {Role: "user", Content: b.String()}}
}

// SolvePrompt implements Pack.
func (GenericPack) SolvePrompt(problem string) []Message {
	return LayoutPrompt(genericSystem, problem, nil, SolveInstruction)
}

// StepPrompt implements Pack.
func (GenericPack) StepPrompt(problem string, steps []string) []Message {
	return LayoutPrompt(genericSystem, problem, steps, StepInstruction)
}

// ExtractAnswer implements Pack.
func (GenericPack) ExtractAnswer(text string) (string, bool) { return ExtractAnswer(text) }

// Normalize implements Pack: votes are counted by this key, so forms that
// write the same answer share it and different answers never do. Minus
// signs (−, –, －) are "-", white space is collapsed, a final period and
// case are dropped; an answer that is one number, written plainly ("-5",
// "$1,000", "+5", "0.50", ".5", "1/2", "$-5$"), is keyed by its exact value,
// so "-5" and "−5", "0.5" and "1/2" vote together, while "5x", "5!", "5%"
// or "5 apples" are text and never vote with "5".
func (GenericPack) Normalize(a string) string {
	s := strings.TrimSpace(text.OneLine(minusSigns.Replace(a)))
	s = strings.TrimSpace(strings.TrimRight(s, "."))
	if k, ok := numberKey(s); ok {
		return k
	}
	return strings.ToLower(s)
}

var (
	minusSigns = strings.NewReplacer("\u2212", "-", "\u2013", "-", "\u2014", "-", "\ufe63", "-", "\uff0d", "-")
	// plainNumber is a number and nothing else: a sign, digits with or
	// without thousands separators, decimals, a fraction bar.
	plainNumber = regexp.MustCompile(`^[-+]?\s?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:/\d+)?$`)
)

// maxKeyDigits bounds the numbers numberKey reads exactly: a megabyte of
// digits would cost seconds as a big.Rat.
const maxKeyDigits = 256

// numberKey is the exact value of s when s is one plainly written number
// (dollar signs, as currency or math delimiters, aside), as a reduced
// fraction or integer.
func numberKey(s string) (string, bool) {
	s = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(s, `\$`, ""), "$", ""))
	if len(s) > maxKeyDigits || !plainNumber.MatchString(s) {
		return "", false
	}
	s = strings.NewReplacer(",", "", " ", "").Replace(s)
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return "", false // a division by zero
	}
	return r.RatString(), true
}
