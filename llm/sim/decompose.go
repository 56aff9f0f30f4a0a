package sim

import (
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

// Least-to-most decomposition (tasks.DecomposePrompt, tasks.SubProblem,
// tasks.ComposePrompt), answered without new constants:
//
//   - Plan. A GSM8K problem's reference steps are cut into at most three
//     (and at most the prompt's limit) consecutive groups; each group but
//     the last becomes the sub-question "Fill in the blank: <its last step
//     with the result blanked out>", and the last group the problem's own
//     question (its last sentence that ends in "?"). The reply is the same
//     numbered list every time. Other numeric problems (MATH, generic) get
//     one sub-question, their own question, because their references have
//     no intermediate results; Game of 24 gets a prose reply with no list
//     (it is searched as a whole).
//   - Sub-questions. A sub-question the simulator posed is a problem of its
//     own: its reference steps are its group's, its truth the group's
//     result, and a whole solution of it is right with probability
//     a^(group steps / all steps), a the problem's accuracy, so answering
//     every sub-question right is exactly as likely as one right whole
//     solution: decomposing gains nothing by itself, only the search spent
//     on each sub-question can. Earlier answers that are wrong propagate:
//     the sub-question's truth becomes a wrong value (the first of its
//     distractors), so later answers are consistently wrong. A sub-question
//     the simulator did not pose (another model's plan) is answered as the
//     whole problem.
//   - Compose. When the last sub-question is the problem's own question and
//     has an answer, the reply restates that answer with the reference
//     solution (or a wrong one ending in it); otherwise it solves the problem
//     afresh, right with the problem's accuracy.

// simMaxSubQuestions bounds the simulator's plans.
const simMaxSubQuestions = 3

// decompose returns the generator for a plan or compose prompt, if msgs is
// one.
func (s *Server) decompose(msgs []core.Message) (generator, string, bool) {
	if problem, limit, ok := tasks.ParseDecomposePrompt(msgs); ok {
		text := s.planReply(problem, limit)
		return func(*rand.Rand) sample { return sample{text, true} }, "decompose", true
	}
	if problem, subs, ok := tasks.ParseComposePrompt(msgs); ok {
		return s.compose(problem, subs), "compose", true
	}
	return nil, "", false
}

// subPlan is the simulator's decomposition of a problem: group g is
// steps[ends[g-1]:ends[g]], asked as questions[g], with result truths[g].
type subPlan struct {
	questions, truths []string
	ends              []int
}

func (s *Server) planReply(problem string, limit int) string {
	if _, ok := tasks.Game24Numbers(problem); ok {
		return "These four numbers are best searched as a whole; there are no simpler sub-questions to ask first."
	}
	pl := splitPlan(s.problemFor(problem), limit)
	lines := make([]string, len(pl.questions))
	for i, q := range pl.questions {
		lines[i] = strconv.Itoa(i+1) + ". " + q
	}
	return strings.Join(lines, "\n")
}

// splitPlan cuts p's reference steps into at most min(limit, 3) groups
// that each end in a step with a result.
func splitPlan(p *problem, limit int) subPlan {
	n := len(p.steps)
	k := min(limit, simMaxSubQuestions, n)
	if p.pack.Name() != "gsm8k" {
		k = 1
	}
	var pl subPlan
	prev := 0
	for g := 1; g < k; g++ {
		end := g * n / k
		if end <= prev {
			continue
		}
		r, ok := stepResult(p.steps[end-1])
		if !ok {
			continue
		}
		pl.questions = append(pl.questions, "Fill in the blank: "+r.blanked)
		pl.truths = append(pl.truths, r.value)
		pl.ends = append(pl.ends, end)
		prev = end
	}
	pl.questions = append(pl.questions, questionOf(p.text))
	pl.truths = append(pl.truths, p.truth)
	pl.ends = append(pl.ends, n)
	return pl
}

type result struct {
	value   string // the number the step computes
	at      [2]int // where it is in the step
	blanked string // the step with [blank] in its place
}

// stepResult finds what a reference step computes: the first number after
// its last "=", else its last number.
func stepResult(step string) (result, bool) {
	from := 0
	if i := strings.LastIndex(step, "="); i >= 0 {
		from = i + 1
	}
	locs := numberRe.FindAllStringIndex(step[from:], -1)
	if len(locs) == 0 {
		return result{}, false
	}
	l := locs[0]
	if from == 0 {
		l = locs[len(locs)-1]
	}
	at := [2]int{from + l[0], from + l[1]}
	v := strings.TrimRight(strings.ReplaceAll(step[at[0]:at[1]], ",", ""), ".")
	return result{value: v, at: at, blanked: step[:at[0]] + "[blank]" + step[at[1]:]}, true
}

var questionEnd = regexp.MustCompile(`\?\s*$`)

// questionOf is what a problem asks: a sub-problem's sub-question, else the
// last sentence of the problem that ends in "?", else the whole problem.
func questionOf(text string) string {
	if _, _, q, ok := tasks.ParseSubProblem(text); ok {
		return q
	}
	ss := sentences(text)
	for i := len(ss) - 1; i >= 0; i-- {
		if questionEnd.MatchString(ss[i]) {
			return ss[i]
		}
	}
	return norm(text)
}

// subProblem is the simulator's view of a sub-question posed by
// tasks.SubProblem (see the comment at the top of this file).
func (s *Server) subProblem(text string) (*problem, bool) {
	parent, prior, q, ok := tasks.ParseSubProblem(text)
	if !ok {
		return nil, false
	}
	base := s.problemFor(parent)
	i := len(prior)
	for limit := 1; limit <= simMaxSubQuestions; limit++ {
		pl := splitPlan(base, limit)
		if !samePlan(pl, prior, q) {
			continue
		}
		start := 0
		if i > 0 {
			start = pl.ends[i-1]
		}
		sub := &problem{pack: base.pack, text: text, truth: pl.truths[i],
			steps:    append([]string(nil), base.steps[start:pl.ends[i]]...),
			accuracy: math.Pow(base.accuracy, float64(pl.ends[i]-start)/float64(len(base.steps)))}
		sub.distractors = distractors(sub.pack, sub.truth, text)
		if !priorRight(base.pack, prior, pl) {
			// A wrong premise: the sub-question's result is wrong too.
			wrong := sub.distractors[0]
			last := len(sub.steps) - 1
			if r, ok := stepResult(sub.steps[last]); ok {
				sub.steps[last] = sub.steps[last][:r.at[0]] + wrong + sub.steps[last][r.at[1]:]
			}
			sub.truth = wrong
			sub.distractors = distractors(sub.pack, wrong, text)
		}
		return sub, true
	}
	return base, true
}

// samePlan says whether prior and q are the plan's first sub-questions.
func samePlan(pl subPlan, prior []tasks.SubAnswer, q string) bool {
	if len(prior) >= len(pl.questions) || norm(pl.questions[len(prior)]) != norm(q) {
		return false
	}
	for j, pa := range prior {
		if norm(pa.Question) != norm(pl.questions[j]) {
			return false
		}
	}
	return true
}

// priorRight says whether prior answers the plan's first sub-questions
// rightly.
func priorRight(pack core.Pack, prior []tasks.SubAnswer, pl subPlan) bool {
	for j, pa := range prior {
		if pa.Answer == "" || pack.Normalize(pa.Answer) != pack.Normalize(pl.truths[j]) {
			return false
		}
	}
	return true
}

// compose answers a tasks.ComposePrompt (see the comment at the top of
// this file).
func (s *Server) compose(problem string, subs []tasks.SubAnswer) generator {
	p := s.problemFor(problem)
	last := subs[len(subs)-1]
	if last.Answer == "" || norm(last.Question) != norm(questionOf(p.text)) {
		return p.solveWith(s)
	}
	a := last.Answer
	if v, ok := p.pack.ExtractAnswer(answerSuffix(a)); ok {
		a = v
	}
	return func(rng *rand.Rand) sample {
		if p.correct(a) {
			return sample{p.solution(), true}
		}
		return sample{p.wrongSolution(a, rng), false}
	}
}
