package tasks

import (
	"regexp"
	"strings"

	"github.com/ponder-rlm/ponder/core"
)

// Program-aided solving (PAL, Gao et al. 2023): the policy writes a Python
// program whose output is the answer, and the sandbox runs it. PALPrompt
// asks for the program, PALRepairPrompt for a fixed one after a failed run;
// both are laid out by core.LayoutPrompt and read back by ParsePALPrompt,
// so the simulator (llm/sim) can answer them.

// PAL prompts' system prompt and instructions.
const (
	PALSystem = "You solve problems by writing Python programs. The program's printed output is taken as the answer, " +
		"so it must print only the final answer."
	PALInstruction = "Write a Python 3 program that computes the answer to the problem above and prints only the final " +
		"answer (a number or a short expression) on its last line. Use exact arithmetic where you can (integers, " +
		"fractions.Fraction). Only the standard library is available. Reply with one ```python code block."
	// PALRepairInstruction follows two steps: the program that failed and
	// what it printed.
	PALRepairInstruction = "Step 1 is a program written for the problem above and step 2 is what running it printed; " +
		"it failed or printed no answer. Write a corrected Python 3 program that prints only the final answer on " +
		"its last line. Reply with one ```python code block."
)

// PALPrompt asks for a program that prints the answer to problem.
func PALPrompt(problem string) []core.Message {
	return core.LayoutPrompt(PALSystem, problem, nil, PALInstruction)
}

// PALRepairPrompt asks for a corrected program, given the program that
// failed and its output (stderr included).
func PALRepairPrompt(problem, program, output string) []core.Message {
	return core.LayoutPrompt(PALSystem, problem, []string{fence(program), "Output:\n" + squeezeBlank(output)}, PALRepairInstruction)
}

func fence(program string) string {
	return "```python\n" + strings.TrimSpace(program) + "\n```"
}

// PALRequest is a PAL prompt read back.
type PALRequest struct {
	Problem string
	// Repair is set for PALRepairPrompt, with the failed program and its
	// output.
	Repair  bool
	Program string
	Output  string
}

// ParsePALPrompt reads a prompt built by PALPrompt or PALRepairPrompt.
func ParsePALPrompt(msgs []core.Message) (PALRequest, bool) {
	p, ok := ParsePrompt(msgs)
	if !ok || p.System != PALSystem {
		return PALRequest{}, false
	}
	switch p.Instruction {
	case PALInstruction:
		return PALRequest{Problem: p.Problem}, len(p.Steps) == 0
	case PALRepairInstruction:
		if len(p.Steps) != 2 {
			return PALRequest{}, false
		}
		prog, _ := ExtractProgram(p.Steps[0])
		return PALRequest{Problem: p.Problem, Repair: true, Program: prog,
			Output: strings.TrimPrefix(p.Steps[1], "Output:\n")}, true
	}
	return PALRequest{}, false
}

var codeFence = regexp.MustCompile("(?s)```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)```")

// ExtractProgram finds the program in a reply: the last ```python (or
// ```py, or unlabelled) fenced block; without fences, a reply that looks
// like Python as a whole. It reports false when there is none.
func ExtractProgram(reply string) (string, bool) {
	var best string
	found := false
	for _, m := range codeFence.FindAllStringSubmatch(reply, -1) {
		lang := strings.ToLower(m[1])
		if lang == "" || lang == "python" || lang == "py" || lang == "python3" {
			best, found = m[2], true
		}
	}
	if found {
		best = trimBlankLines(best)
		return best, best != ""
	}
	t := strings.TrimSpace(reply)
	if strings.Contains(t, "print(") && !strings.Contains(t, "```") {
		return t, true
	}
	return "", false
}

// trimBlankLines drops leading blank lines and trailing space, keeping the
// first line's indentation (a function body completing a prompt).
func trimBlankLines(s string) string {
	s = strings.TrimRight(s, " \t\r\n")
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 || strings.TrimSpace(s[:i]) != "" {
			break
		}
		s = s[i+1:]
	}
	if strings.TrimSpace(s) == "" {
		return ""
	}
	return s
}

// PALAnswer reads a program's answer from its stdout: the last non-empty
// line, trimmed.
func PALAnswer(stdout string) (string, bool) {
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l, true
		}
	}
	return "", false
}
