package tasks

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
)

// Least-to-most decomposition (Zhou et al., 2023): DecomposePrompt asks for
// an ordered list of simpler sub-questions, SubProblem poses one of them
// with the answers of the ones before it, and ComposePrompt asks for the
// answer to the original problem from the sub-answers. The prompts are laid
// out by core.LayoutPrompt and read back by ParseDecomposePrompt,
// ParseSubProblem and ParseComposePrompt, so the simulator (llm/sim) can
// answer them.

// Decomposition prompts' system prompts and instructions.
const (
	DecomposeSystem = "You break problems into simpler sub-questions that can be answered one after another, " +
		"each using the answers to the ones before it."
	decomposeInstructionHead = "Break the problem above into at most "
	decomposeInstructionTail = " simpler sub-questions, ordered so that each can be answered from the problem and the " +
		"answers to the sub-questions before it; the last sub-question asks what the problem asks. Reply with a " +
		"numbered list, one sub-question per line (\"1. ...\"), and nothing else. If the problem is simple enough to " +
		"answer directly, reply with one sub-question: the problem's own question."

	ComposeSystem      = "You are a careful problem solver. You answer a problem from the answers to its sub-questions."
	ComposeInstruction = "Each step above is a sub-question of the problem with its answer. Using them, answer the " +
		"problem: a short justification, ending with the final answer as \\boxed{ANSWER}."
)

// Markers of a sub-problem's text (SubProblem).
const (
	subAnsweredMarker = "\n\nAnswered sub-questions:"
	subNone           = " none"
	subQuestionMarker = "\n\nNow answer this sub-question of the problem above: "
	subAnswerLabel    = "Answer: "
	composeSep        = " Answer: "
	composePrefix     = "Sub-question: "
)

// SubAnswer is a sub-question with the answer found for it (empty when
// none was found).
type SubAnswer struct {
	Question string `json:"question"`
	Answer   string `json:"answer"`
}

// DecomposePrompt asks for at most max sub-questions of problem; read the
// reply with ParseSubQuestions.
func DecomposePrompt(problem string, max int) []core.Message {
	return core.LayoutPrompt(DecomposeSystem, problem, nil, decomposeInstructionHead+strconv.Itoa(max)+decomposeInstructionTail)
}

// ParseDecomposePrompt reads a prompt built by DecomposePrompt: the
// problem and the most sub-questions it asks for.
func ParseDecomposePrompt(msgs []core.Message) (problem string, max int, ok bool) {
	p, ok := ParsePrompt(msgs)
	if !ok || p.System != DecomposeSystem || len(p.Steps) > 0 {
		return "", 0, false
	}
	rest, ok := strings.CutPrefix(p.Instruction, decomposeInstructionHead)
	if !ok {
		return "", 0, false
	}
	num, ok := strings.CutSuffix(rest, decomposeInstructionTail)
	if !ok {
		return "", 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		return "", 0, false
	}
	return p.Problem, n, true
}

var (
	// numbered: "1. q", "1) q", "(1) q", "Q1: q", "Sub-question 1: q",
	// "Step 1: q", each perhaps in bold.
	numberedItem = regexp.MustCompile(`(?i)^\s*(?:\*\*)?(?:\(?\d+[.):]|(?:sub-?\s?questions?|questions?|q|steps?)\s*#?\d+\s*[.):-])(?:\*\*)?\s+(.*\S)`)
	bulletItem   = regexp.MustCompile(`^\s*[-*•]\s+(.*\S)`)
)

// ParseSubQuestions reads the sub-questions of a reply to DecomposePrompt,
// in order: its numbered lines ("1. ...", "1) ...", "Q1: ...",
// "Sub-question 1: ..."), or its bullet lines when it numbers none. An
// indented line continues the item above it; markdown emphasis is dropped;
// repeated questions are kept once. A reply without such lines (prose, an
// empty reply) has no sub-questions.
func ParseSubQuestions(reply string) []string {
	parse := func(item *regexp.Regexp) []string {
		var out []string
		seen := map[string]bool{}
		last := -1
		for _, line := range strings.Split(strings.ReplaceAll(reply, "\r\n", "\n"), "\n") {
			if m := item.FindStringSubmatch(line); m != nil {
				q := text.OneLine(strings.Trim(m[1], "*_ "))
				key := strings.ToLower(q)
				if q == "" || seen[key] {
					last = -1
					continue
				}
				seen[key] = true
				out = append(out, q)
				last = len(out) - 1
				continue
			}
			if last >= 0 && strings.TrimSpace(line) != "" && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
				out[last] = text.OneLine(out[last] + " " + strings.Trim(line, "*_ \t"))
				continue
			}
			last = -1
		}
		return out
	}
	if qs := parse(numberedItem); len(qs) > 0 {
		return qs
	}
	return parse(bulletItem)
}

// SubProblem poses question, a sub-question of problem, with the answers
// to the sub-questions before it, as the problem text of a nested search:
//
//	<problem>
//
//	Answered sub-questions:
//	1. <question>
//	Answer: <answer>
//
//	Now answer this sub-question of the problem above: <question>
//
// (" none" after the colon when there are none). Questions and answers are
// put on one line each. problem may itself be a sub-problem (a
// decomposition nested in another); ParseSubProblem reads the outermost
// level.
func SubProblem(problem string, prior []SubAnswer, question string) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(problem))
	b.WriteString(subAnsweredMarker)
	if len(prior) == 0 {
		b.WriteString(subNone)
	}
	for i, p := range prior {
		b.WriteString("\n")
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString(". ")
		b.WriteString(text.OneLine(p.Question))
		b.WriteString("\n")
		b.WriteString(subAnswerLabel)
		a := text.OneLine(p.Answer)
		if a == "" {
			a = "unknown"
		}
		b.WriteString(a)
	}
	b.WriteString(subQuestionMarker)
	b.WriteString(text.OneLine(question))
	return b.String()
}

// ParseSubProblem reads a text built by SubProblem. An answer written as
// "unknown" reads back as empty.
func ParseSubProblem(text string) (problem string, prior []SubAnswer, question string, ok bool) {
	text = strings.TrimSpace(text)
	i := strings.LastIndex(text, subQuestionMarker)
	if i < 0 {
		return "", nil, "", false
	}
	question = text[i+len(subQuestionMarker):]
	body := text[:i]
	j := strings.LastIndex(body, subAnsweredMarker)
	if j < 0 || question == "" || strings.Contains(question, "\n") {
		return "", nil, "", false
	}
	problem, list := body[:j], body[j+len(subAnsweredMarker):]
	if list == subNone {
		return problem, nil, question, problem != ""
	}
	lines := strings.Split(strings.TrimPrefix(list, "\n"), "\n")
	if len(lines)%2 != 0 {
		return "", nil, "", false
	}
	for k := 0; k < len(lines); k += 2 {
		q, ok := strings.CutPrefix(lines[k], strconv.Itoa(k/2+1)+". ")
		if !ok {
			return "", nil, "", false
		}
		a, ok := strings.CutPrefix(lines[k+1], subAnswerLabel)
		if !ok {
			return "", nil, "", false
		}
		if a == "unknown" {
			a = ""
		}
		prior = append(prior, SubAnswer{Question: q, Answer: a})
	}
	return problem, prior, question, problem != ""
}

// ComposePrompt asks for the answer to problem from its answered
// sub-questions, one per step of the layout.
func ComposePrompt(problem string, subs []SubAnswer) []core.Message {
	steps := make([]string, len(subs))
	for i, s := range subs {
		a := text.OneLine(s.Answer)
		if a == "" {
			a = "unknown"
		}
		steps[i] = composePrefix + text.OneLine(s.Question) + composeSep + a
	}
	return core.LayoutPrompt(ComposeSystem, problem, steps, ComposeInstruction)
}

// ParseComposePrompt reads a prompt built by ComposePrompt.
func ParseComposePrompt(msgs []core.Message) (problem string, subs []SubAnswer, ok bool) {
	p, ok := ParsePrompt(msgs)
	if !ok || p.System != ComposeSystem || p.Instruction != ComposeInstruction || len(p.Steps) == 0 {
		return "", nil, false
	}
	for _, st := range p.Steps {
		st, ok := strings.CutPrefix(st, composePrefix)
		i := strings.LastIndex(st, composeSep)
		if !ok || i < 0 {
			return "", nil, false
		}
		a := st[i+len(composeSep):]
		if a == "unknown" {
			a = ""
		}
		subs = append(subs, SubAnswer{Question: st[:i], Answer: a})
	}
	return p.Problem, subs, true
}
