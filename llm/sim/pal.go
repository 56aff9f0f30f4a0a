package sim

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"regexp"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// PAL prompts (tasks.PALPrompt, tasks.PALRepairPrompt): the simulator
// writes a Python program. With probability Accuracy (the problem's
// accuracy, as for whole solutions) the program computes the truth; a GSM8K
// program is made of the reference solution's <<a*b=c>> calculator
// annotations, one assignment per step. Otherwise it prints a distractor,
// and one wrong program in five crashes instead (a NameError), which gives
// PAL's repair something to do.

// pal returns the generator for a PAL prompt, if msgs is one.
func (s *Server) pal(msgs []core.Message) (generator, string, bool) {
	req, ok := tasks.ParsePALPrompt(msgs)
	if !ok {
		return nil, "", false
	}
	p := s.problemFor(req.Problem)
	var calc []annotation
	if it, ok := s.kb.item(req.Problem); ok && it.Pack == "gsm8k" {
		calc = annotations(it.Solution)
	}
	kind := "pal"
	if req.Repair {
		kind = "pal-repair"
	}
	return func(rng *rand.Rand) sample {
		if rng.Float64() < p.accuracy {
			return sample{palReply(palProgram(p, calc, "")), true}
		}
		if rng.Float64() < 0.2 {
			return sample{palReply(palCrash(p, calc)), false}
		}
		return sample{palReply(palProgram(p, calc, p.wrongAnswer(rng))), false}
	}, kind, true
}

func palReply(program string) string {
	return "I'll compute it with a short program.\n```python\n" + program + "\n```"
}

// annotation is one GSM8K calculator annotation <<expr=result>> with the
// text of its line.
type annotation struct {
	expr, result, line string
}

var annotationRe = regexp.MustCompile(`<<([^>=]*)=([^>]*)>>`)

func annotations(solution string) []annotation {
	var out []annotation
	for _, line := range strings.Split(solution, "\n") {
		text := strings.TrimSpace(annotationRe.ReplaceAllString(line, ""))
		for _, m := range annotationRe.FindAllStringSubmatch(line, -1) {
			out = append(out, annotation{expr: strings.TrimSpace(m[1]), result: strings.TrimSpace(m[2]), line: text})
		}
	}
	return out
}

// palProgram writes the program: the reference calculations when known,
// then answer = the step whose result is the truth, or the distractor
// wrong when it is not empty.
func palProgram(p *problem, calc []annotation, wrong string) string {
	var b strings.Builder
	b.WriteString("from fractions import Fraction\n")
	answerVar := ""
	lastLine := ""
	for i, a := range calc {
		if a.line != lastLine {
			fmt.Fprintf(&b, "# %s\n", a.line)
			lastLine = a.line
		}
		v := fmt.Sprintf("step%d", i+1)
		fmt.Fprintf(&b, "%s = %s\n", v, a.expr)
		if sameNumber(a.result, p.truth) {
			answerVar = v
		}
	}
	if len(calc) == 0 {
		if nums := problemNumbers(p.text, 6); len(nums) > 0 && p.pack.Name() == "generic" {
			terms := make([]string, len(nums))
			for i, n := range nums {
				terms[i] = fmt.Sprintf("Fraction(%q)", tasks.FormatRat(n))
			}
			if len(terms) > 6 {
				terms = terms[:6]
			}
			fmt.Fprintf(&b, "quantities = [%s]\n", strings.Join(terms, ", "))
			answerVar = "sum(quantities)"
		}
	}
	switch {
	case wrong != "":
		fmt.Fprintf(&b, "answer = %s\n", pyLiteral(wrong))
	case answerVar != "":
		fmt.Fprintf(&b, "answer = %s\n", answerVar)
	default:
		fmt.Fprintf(&b, "answer = %s\n", pyLiteral(p.truth))
	}
	b.WriteString("if isinstance(answer, float) and answer.is_integer():\n    answer = int(answer)\n")
	b.WriteString("if hasattr(answer, 'denominator') and answer.denominator == 1:\n    answer = int(answer)\n")
	b.WriteString("print(answer)")
	return b.String()
}

// palCrash writes a program that fails: it uses a name it never set.
func palCrash(p *problem, calc []annotation) string {
	prog := palProgram(p, calc, "")
	return strings.Replace(prog, "answer = ", "answer = total_amount + 0 * ", 1)
}

func sameNumber(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(strings.ReplaceAll(strings.TrimSpace(a), ",", ""))
	y, ok2 := new(big.Rat).SetString(strings.ReplaceAll(strings.TrimSpace(b), ",", ""))
	return ok1 && ok2 && x.Cmp(y) == 0
}

// pyLiteral writes an answer as Python: a number as itself, anything else
// as a raw string.
func pyLiteral(s string) string {
	t := strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if r, ok := new(big.Rat).SetString(t); ok {
		if r.IsInt() {
			return r.Num().String()
		}
		if !strings.Contains(t, "/") {
			return t
		}
		return fmt.Sprintf("Fraction(%d, %s)", r.Num(), r.Denom())
	}
	return fmt.Sprintf("%q", s) // Go's escapes are Python's too
}
