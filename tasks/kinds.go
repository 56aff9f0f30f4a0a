package tasks

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/ponder-rlm/ponder/core"
)

// Prompts of the models around the policy: value model, process reward
// model (PRM), critic, reviser and aggregator. Each kind has its own fixed
// system prompt and instruction, is laid out by core.LayoutPrompt and is
// read back by Identify, so the simulator (llm/sim) answers each in kind.

// DataProblem is implemented by packs that read their problem as data
// (Game of 24's four numbers): text before it, such as a reasoning session's
// earlier turns, would be read as part of it, so such a problem is posed
// alone.
type DataProblem interface {
	ProblemIsData()
}

// Valuer is implemented by packs with their own value prompt (Game of 24's
// sure/likely/impossible). Other packs use the generic "Score: N" prompt.
type Valuer interface {
	ValuePrompt(problem string, steps []string) []core.Message
	// ParseValue reads the reply's value on core's [-1, 1] scale.
	ParseValue(reply string) (float64, bool)
}

// Proposer is implemented by packs that can ask for several next steps in
// one call (Tree of Thoughts' propose prompt). Strategies fall back to
// sampling StepPrompt k times for other packs.
type Proposer interface {
	ProposePrompt(problem string, steps []string) []core.Message
	// ParseProposals returns the proposed steps in reply, in order.
	ParseProposals(reply string) []string
}

// System prompts and instructions of the pack-independent kinds.
const (
	ValueSystem      = "You estimate how promising a partial solution is: how likely it is to lead to a correct final answer."
	ValueInstruction = "Estimate how likely the steps above are to lead to a correct final answer. Reply with a short " +
		"justification and then a line \"Score: N\" where N is an integer from 1 (certainly leads nowhere) " +
		"to 10 (certainly leads to the correct answer)."

	PRMSystem      = "You are a process reward model. You check the last step of a partial solution."
	PRMInstruction = "Rate only the LAST step above: is it correct, and does it make progress given the steps " +
		"before it? Reply with a short justification and then a line \"Score: N\" where N is an integer from " +
		"1 (certainly wrong) to 10 (certainly correct)."

	CritiqueSystem      = "You are a meticulous reviewer. You find the mistakes in proposed solutions."
	CritiqueInstruction = "Review the steps above for mistakes: wrong arithmetic, misread facts, unjustified " +
		"claims, a wrong final answer. List each problem on its own line starting with \"- \" and naming its " +
		"step. If you find none, reply exactly NO ISSUES."

	ReviseSystem      = "You are a careful problem solver. You revise a solution using a reviewer's critique."
	ReviseInstruction = "Write a corrected solution that fixes the problems the critique names, one step per " +
		"line, ending with the final answer as \\boxed{ANSWER}. If the critique found no issues, restate the solution."

	AggregateSystem      = "You are a careful problem solver. You merge several candidate solutions into one best solution."
	AggregateInstruction = "Each step above is one candidate solution to the problem. Compare them, keep what " +
		"is right, and write one solution, one step per line, ending with the final answer as \\boxed{ANSWER}."
)

// NoIssues is the critique that found nothing to fix.
const NoIssues = "NO ISSUES"

// ValuePrompt asks a value model how promising the partial solution steps
// is: the pack's own prompt when it is a Valuer, else the generic one
// answered with "Score: N".
func ValuePrompt(pack core.Pack, problem string, steps []string) []core.Message {
	if v, ok := pack.(Valuer); ok {
		return v.ValuePrompt(problem, steps)
	}
	return core.LayoutPrompt(ValueSystem, problem, steps, ValueInstruction)
}

// ParseValue reads a reply to ValuePrompt(pack, ...) as a value in [-1, 1].
func ParseValue(pack core.Pack, reply string) (float64, bool) {
	if v, ok := pack.(Valuer); ok {
		return v.ParseValue(reply)
	}
	return ParseScore(reply)
}

// PRMPrompt asks a process reward model to rate the last of steps; read
// the reply with ParseScore.
func PRMPrompt(problem string, steps []string) []core.Message {
	return core.LayoutPrompt(PRMSystem, problem, steps, PRMInstruction)
}

// ParseScore reads "Score: N" (1..10) and maps it linearly onto [-1, 1]:
// 1 → -1, 10 → 1. Judge, generic value and PRM replies use it.
func ParseScore(reply string) (float64, bool) { return ParseJudgeScore(reply) }

// ScoreLine writes the line ParseScore reads for a score in [-1, 1],
// rounded to the nearest integer of the 1..10 scale.
func ScoreLine(score float64) string {
	n := int(score*4.5 + 5.5 + 0.5)
	return "Score: " + strconv.Itoa(min(10, max(1, n)))
}

// CritiquePrompt asks for the problems of a solution (for self-refine); read
// the reply with ParseCritique.
func CritiquePrompt(problem string, steps []string) []core.Message {
	return core.LayoutPrompt(CritiqueSystem, problem, steps, CritiqueInstruction)
}

var listItem = regexp.MustCompile(`^\s*(?:[-*•]|\d+[.)])\s+(.*\S)`)

// ParseCritique reads a critique: the problems it lists (lines starting
// with "- ", "* " or "1."), or the whole reply as one problem when it lists
// none. A reply that says NO ISSUES and lists nothing has no problems. ok is
// false for an empty reply.
func ParseCritique(reply string) (issues []string, ok bool) {
	reply = strings.TrimSpace(reply)
	if reply == "" {
		return nil, false
	}
	for _, line := range strings.Split(reply, "\n") {
		if m := listItem.FindStringSubmatch(line); m != nil {
			issues = append(issues, m[1])
		}
	}
	if len(issues) == 0 && !strings.Contains(strings.ToUpper(reply), NoIssues) {
		issues = []string{reply}
	}
	return issues, true
}

// RevisePrompt asks for a revision of the solution steps given a critique.
// The critique travels in the instruction, with blank lines dropped so the
// layout stays readable by ParsePrompt.
func RevisePrompt(problem string, steps []string, critique string) []core.Message {
	return core.LayoutPrompt(ReviseSystem, problem, steps, "Critique:\n"+squeezeBlank(critique)+"\n"+ReviseInstruction)
}

// AggregatePrompt asks to merge candidate solutions into one. Each
// candidate is one "step" of the layout, its continuation lines indented by
// two spaces.
func AggregatePrompt(problem string, candidates []string) []core.Message {
	steps := make([]string, len(candidates))
	for i, c := range candidates {
		steps[i] = strings.ReplaceAll(strings.TrimSpace(c), "\n", "\n  ")
	}
	return core.LayoutPrompt(AggregateSystem, problem, steps, AggregateInstruction)
}

// SolutionSteps splits a solution into its non-empty lines: a revised or
// merged solution read back as steps.
func SolutionSteps(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

var blankLines = regexp.MustCompile(`\n\s*\n`)

func squeezeBlank(s string) string {
	return blankLines.ReplaceAllString(strings.TrimSpace(s), "\n")
}

// Kind names what a prompt asks for.
type Kind string

// Prompt kinds Identify knows.
const (
	KindSolve     Kind = "solve"     // a pack's SolvePrompt
	KindStep      Kind = "step"      // a pack's StepPrompt
	KindPropose   Kind = "propose"   // a Proposer's ProposePrompt
	KindValue     Kind = "value"     // ValuePrompt (generic or the pack's)
	KindJudge     Kind = "judge"     // JudgePrompt
	KindPRM       Kind = "prm"       // PRMPrompt
	KindCritique  Kind = "critique"  // CritiquePrompt
	KindRevise    Kind = "revise"    // RevisePrompt
	KindAggregate Kind = "aggregate" // AggregatePrompt
)

// Identified is a prompt of a known kind, read back.
type Identified struct {
	Kind Kind
	// Pack is the pack whose prompt it is; empty for the pack-independent
	// kinds (judge, generic value, PRM, critique, revise, aggregate).
	Pack    string
	Problem string
	// Steps are the steps so far; for KindAggregate, the candidates.
	Steps []string
	// Critique is the critique of a KindRevise prompt.
	Critique string
}

// Identify tells which prompt built msgs: the system message picks the pack
// or the kind and the instruction the rest. It reports false for any other
// prompt.
func Identify(msgs []core.Message) (Identified, bool) {
	p, ok := ParsePrompt(msgs)
	if !ok {
		return Identified{}, false
	}
	id := Identified{Problem: p.Problem, Steps: p.Steps}
	switch p.System {
	case JudgeSystem:
		id.Kind = KindJudge
		return id, p.Instruction == JudgeInstruction
	case ValueSystem:
		id.Kind = KindValue
		return id, p.Instruction == ValueInstruction
	case PRMSystem:
		id.Kind = KindPRM
		return id, p.Instruction == PRMInstruction
	case CritiqueSystem:
		id.Kind = KindCritique
		return id, p.Instruction == CritiqueInstruction
	case ReviseSystem:
		id.Kind = KindRevise
		c, ok := strings.CutPrefix(p.Instruction, "Critique:\n")
		if !ok {
			return id, false
		}
		id.Critique, ok = strings.CutSuffix(c, "\n"+ReviseInstruction)
		return id, ok
	case AggregateSystem:
		id.Kind = KindAggregate
		for i, s := range id.Steps {
			id.Steps[i] = strings.ReplaceAll(s, "\n  ", "\n")
		}
		return id, p.Instruction == AggregateInstruction
	}
	for _, name := range Names() {
		pack, err := Get(name)
		if err != nil {
			continue
		}
		if k, ok := packKind(pack, p); ok {
			id.Kind, id.Pack = k, name
			return id, true
		}
	}
	return Identified{}, false
}

// packKind matches p against the prompts pack builds for the same problem
// and steps.
func packKind(pack core.Pack, p Prompt) (Kind, bool) {
	same := func(msgs []core.Message) bool {
		q, ok := ParsePrompt(msgs)
		return ok && q.System == p.System && q.Instruction == p.Instruction
	}
	if len(p.Steps) == 0 && same(pack.SolvePrompt(p.Problem)) {
		return KindSolve, true
	}
	if same(pack.StepPrompt(p.Problem, p.Steps)) {
		return KindStep, true
	}
	if pr, ok := pack.(Proposer); ok && same(pr.ProposePrompt(p.Problem, p.Steps)) {
		return KindPropose, true
	}
	if v, ok := pack.(Valuer); ok && same(v.ValuePrompt(p.Problem, p.Steps)) {
		return KindValue, true
	}
	return "", false
}
