package sim

import (
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/tasks"
)

// sample is one generated reply; good says whether it is correct or rates
// correctly, which makes its tokens more confident.
type sample struct {
	text string
	good bool
}

// generator writes one sample from its own randomness.
type generator func(rng *rand.Rand) sample

// plan reads a request's messages once and returns the generator of its
// samples and the prompt kind, for stats.
func (s *Server) plan(msgs []core.Message) (generator, string) {
	if g, kind, ok := s.pal(msgs); ok { // pal.go: program-aided (PAL) prompts
		return g, kind
	}
	if g, kind, ok := s.grounded(msgs); ok { // retrieval.go: prompts with retrieved passages
		return g, kind
	}
	if g, kind, ok := s.decompose(msgs); ok { // decompose.go: least-to-most plan and compose prompts
		return g, kind
	}
	if g, kind, ok := s.humanEval(msgs); ok { // humaneval.go: eval's humaneval pack
		return g, kind
	}
	id, ok := tasks.Identify(msgs)
	if !ok {
		// Any other chat: answer the last user message as a problem.
		p := s.problemFor(lastUser(msgs))
		return p.solveWith(s), "chat"
	}
	if isGame24(id) {
		if _, ok := tasks.Game24Numbers(id.Problem); ok {
			return s.game24(id), string(id.Kind)
		}
	}
	p := s.problemFor(id.Problem)
	switch id.Kind {
	case tasks.KindSolve:
		return p.solveWith(s), string(id.Kind)
	case tasks.KindJudge, tasks.KindValue, tasks.KindPRM:
		on, first := p.status(id.Steps)
		return s.rate(id.Kind, on, first), string(id.Kind)
	case tasks.KindCritique:
		on, first := p.status(id.Steps)
		return s.critique(id.Steps, on, first), string(id.Kind)
	case tasks.KindRevise:
		return s.revise(p, id.Steps, id.Critique), string(id.Kind)
	case tasks.KindAggregate:
		return s.aggregate(p, id.Steps), string(id.Kind)
	default: // step, and propose prompts of packs the simulator does not know
		return s.nextStep(p, id.Steps), string(id.Kind)
	}
}

func isGame24(id tasks.Identified) bool {
	return id.Pack == "game24" || id.Pack == ""
}

func lastUser(msgs []core.Message) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "user" {
			return msgs[i].Content
		}
	}
	if len(msgs) > 0 {
		return msgs[len(msgs)-1].Content
	}
	return ""
}

// --- numeric problems: GSM8K, MATH, generic ---

func answerSuffix(answer string) string { return " The answer is \\boxed{" + answer + "}." }

// render writes reference step i; the last one states answer.
func (p *problem) render(i int, answer string) string {
	if i == len(p.steps)-1 {
		return p.steps[i] + answerSuffix(answer)
	}
	return p.steps[i]
}

func (p *problem) correct(answer string) bool {
	return p.pack.Normalize(answer) == p.pack.Normalize(p.truth)
}

// solution writes the reference solution.
func (p *problem) solution() string {
	lines := make([]string, len(p.steps))
	for i := range p.steps {
		lines[i] = p.render(i, p.truth)
	}
	return strings.Join(lines, "\n")
}

// wrongSolution follows the reference for a random number of steps, then
// goes wrong (a changed number) and ends with answer.
func (p *problem) wrongSolution(answer string, rng *rand.Rand) string {
	k := rng.IntN(len(p.steps))
	lines := make([]string, len(p.steps))
	for i := range p.steps {
		switch {
		case i < k:
			lines[i] = p.steps[i]
		default:
			lines[i] = alter(p.steps[i], rng)
		}
	}
	lines[len(lines)-1] += answerSuffix(answer)
	return strings.Join(lines, "\n")
}

func (p *problem) solveWith(s *Server) generator {
	return func(rng *rand.Rand) sample {
		if rng.Float64() < p.accuracy {
			return sample{p.solution(), true}
		}
		return sample{p.wrongSolution(p.wrongAnswer(rng), rng), false}
	}
}

// norm collapses runs of white space to one space and trims the ends.
func norm(s string) string { return text.OneLine(s) }

// status says whether steps are still right (the answer, once given, is
// correct; before that every step is the reference step) and the index of
// the first step that went wrong (-1 when none).
func (p *problem) status(steps []string) (onTrack bool, firstWrong int) {
	firstWrong = -1
	for i, st := range steps {
		if a, ok := p.pack.ExtractAnswer(st); ok {
			if p.correct(a) {
				return true, -1
			}
			if firstWrong < 0 {
				firstWrong = i
			}
			return false, firstWrong
		}
		if firstWrong < 0 && (i >= len(p.steps) || norm(st) != norm(p.render(i, p.truth))) {
			firstWrong = i
		}
	}
	return firstWrong < 0, firstWrong
}

// nextStep writes the step after steps: the reference step with
// probability StepAccuracy while the path is on track, else a wrong one;
// a path that went wrong stays wrong and ends in a distractor.
func (s *Server) nextStep(p *problem, steps []string) generator {
	on, _ := p.status(steps)
	i, last := len(steps), len(p.steps)-1
	return func(rng *rand.Rand) sample {
		switch {
		case on && i > last:
			return sample{"So the final result stands." + answerSuffix(p.truth), true}
		case on && rng.Float64() < s.opts.StepAccuracy:
			return sample{p.render(i, p.truth), true}
		case i >= last:
			return sample{alter(p.steps[min(i, last)], rng) + answerSuffix(p.wrongAnswer(rng)), false}
		default:
			return sample{alter(p.steps[i], rng), false}
		}
	}
}

// rate answers judge, value and PRM prompts: a high score (7-10) for a
// path on track and a low one (1-4) otherwise, with probability
// JudgeAccuracy; the opposite else.
func (s *Server) rate(kind tasks.Kind, on bool, first int) generator {
	return func(rng *rand.Rand) sample {
		faithful := rng.Float64() < s.opts.JudgeAccuracy
		high := on == faithful
		var why string
		var n int
		if high {
			n = 7 + rng.IntN(4)
			why = map[tasks.Kind]string{
				tasks.KindJudge: "Each step follows from the previous ones and the arithmetic checks out.",
				tasks.KindValue: "The approach is sound and heads towards the answer.",
				tasks.KindPRM:   "The last step is correct and makes progress.",
			}[kind]
		} else {
			n = 1 + rng.IntN(4)
			step := first + 1
			if step <= 0 {
				step = 1 + rng.IntN(3)
			}
			why = map[tasks.Kind]string{
				tasks.KindJudge: "Step " + strconv.Itoa(step) + " does not follow: the numbers do not add up.",
				tasks.KindValue: "The path has gone wrong; it is unlikely to reach the right answer.",
				tasks.KindPRM:   "The last step contains an error.",
			}[kind]
		}
		return sample{why + "\nScore: " + strconv.Itoa(n), faithful}
	}
}

// critique lists the first wrong step of a wrong path with probability
// JudgeAccuracy (else says NO ISSUES), and says NO ISSUES about a right
// path with probability JudgeAccuracy (else raises a false alarm).
func (s *Server) critique(steps []string, on bool, first int) generator {
	return func(rng *rand.Rand) sample {
		faithful := rng.Float64() < s.opts.JudgeAccuracy
		switch {
		case on == faithful: // a right path seen as right, or a wrong one missed
			return sample{tasks.NoIssues, faithful}
		case !on:
			k := max(first, 0)
			return sample{"- Step " + strconv.Itoa(k+1) + ": the computation is wrong; recheck the numbers.\n- The final answer does not follow.", true}
		default:
			k := 1
			if len(steps) > 0 {
				k = 1 + rng.IntN(len(steps))
			}
			return sample{"- Step " + strconv.Itoa(k) + ": this step is not justified.", false}
		}
	}
}

// revise keeps a right solution, fixes a wrong one whose critique names a
// problem with probability ReviseAccuracy, and otherwise writes a wrong
// solution (the same one when the critique found no issues).
func (s *Server) revise(p *problem, steps []string, critique string) generator {
	on, _ := p.status(steps)
	issues, _ := tasks.ParseCritique(critique)
	return func(rng *rand.Rand) sample {
		answered := false
		for _, st := range steps {
			if _, ok := p.pack.ExtractAnswer(st); ok {
				answered = true
			}
		}
		switch {
		case on:
			out := append([]string(nil), steps...)
			for i := len(steps); !answered && i < len(p.steps); i++ {
				out = append(out, p.render(i, p.truth))
				answered = i == len(p.steps)-1
			}
			if !answered {
				out = append(out, strings.TrimSpace(answerSuffix(p.truth)))
			}
			return sample{strings.Join(out, "\n"), true}
		case len(issues) > 0 && rng.Float64() < s.opts.ReviseAccuracy:
			return sample{p.solution(), true}
		case len(issues) == 0 && answered:
			return sample{strings.Join(steps, "\n"), false}
		default:
			return sample{p.wrongSolution(p.wrongAnswer(rng), rng), false}
		}
	}
}

// aggregate writes a solution for the majority answer of the candidates
// (ties: the first), or solves afresh when none has an answer.
func (s *Server) aggregate(p *problem, candidates []string) generator {
	answer, ok := majority(p.pack, candidates)
	if !ok {
		return p.solveWith(s)
	}
	return func(rng *rand.Rand) sample {
		if p.correct(answer) {
			return sample{p.solution(), true}
		}
		return sample{p.wrongSolution(answer, rng), false}
	}
}

func majority(pack core.Pack, candidates []string) (string, bool) {
	count := map[string]int{}
	first := map[string]string{}
	var order []string
	for _, c := range candidates {
		a, ok := pack.ExtractAnswer(c)
		if !ok {
			continue
		}
		k := pack.Normalize(a)
		if _, seen := first[k]; !seen {
			first[k] = a
			order = append(order, k)
		}
		count[k]++
	}
	best := ""
	for _, k := range order {
		if best == "" || count[k] > count[best] {
			best = k
		}
	}
	return first[best], best != ""
}

// alter changes one number of a step (the last, usually: the result), so
// the step no longer matches the reference and its arithmetic is wrong.
func alter(step string, rng *rand.Rand) string {
	locs := numberRe.FindAllStringIndex(step, -1)
	if len(locs) == 0 {
		return step + " That makes " + strconv.Itoa(2+rng.IntN(30)) + " in total."
	}
	l := locs[len(locs)-1]
	if len(locs) > 1 && rng.Float64() < 0.3 {
		l = locs[rng.IntN(len(locs))]
	}
	orig := strings.ReplaceAll(step[l[0]:l[1]], ",", "")
	n, ok := new(big.Rat).SetString(orig)
	if !ok {
		return step + " That makes " + strconv.Itoa(2+rng.IntN(30)) + " in total."
	}
	var m *big.Rat
	switch rng.IntN(5) {
	case 0:
		m = new(big.Rat).Add(n, big.NewRat(2, 1))
	case 1:
		m = new(big.Rat).Mul(n, big.NewRat(2, 1))
	case 2:
		m = new(big.Rat).Add(n, big.NewRat(10, 1))
	case 3:
		if n.Cmp(big.NewRat(1, 1)) > 0 {
			m = new(big.Rat).Sub(n, big.NewRat(1, 1))
			break
		}
		fallthrough
	default:
		m = new(big.Rat).Add(n, big.NewRat(1, 1))
	}
	s := tasks.FormatRat(m)
	if i := strings.IndexByte(orig, '.'); i >= 0 {
		s = m.FloatString(len(orig) - i - 1)
	}
	return step[:l[0]] + s + step[l[1]:]
}
