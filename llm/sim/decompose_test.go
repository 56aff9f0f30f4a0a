package sim

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/tasks/taskstest"
)

// gsm8kItems returns the first n GSM8K test problems (all when n is 0).
func gsm8kItems(t *testing.T, n int) []tasks.Item {
	t.Helper()
	return taskstest.Load(t, "gsm8k", n)
}

// reply draws one sample of the prompt msgs.
func reply(t *testing.T, s *Server, msgs []core.Message, kind string, seed uint64) string {
	t.Helper()
	gen, k := s.plan(msgs)
	if k != kind {
		t.Fatalf("prompt answered as %q, want %q", k, kind)
	}
	return gen(rand.New(rand.NewPCG(seed, 1))).text
}

func TestDecomposePlansFollowTheReferenceSteps(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	items := gsm8kItems(t, 3)
	four := items[2] // four reference steps
	qs := tasks.ParseSubQuestions(reply(t, s, tasks.DecomposePrompt(four.Problem, 4), "decompose", 1))
	if len(qs) != 3 || qs[2] != questionOf(four.Problem) {
		t.Fatalf("plan %q: want 3 sub-questions ending in the problem's question %q", qs, questionOf(four.Problem))
	}
	if again := tasks.ParseSubQuestions(reply(t, s, tasks.DecomposePrompt(four.Problem, 4), "decompose", 99)); len(again) != 3 || again[0] != qs[0] {
		t.Fatalf("the plan changed between samples: %q, %q", qs, again)
	}
	if two := tasks.ParseSubQuestions(reply(t, s, tasks.DecomposePrompt(four.Problem, 2), "decompose", 1)); len(two) != 2 {
		t.Fatalf("max 2: plan %q", two)
	}
	if one := tasks.ParseSubQuestions(reply(t, s, tasks.DecomposePrompt("What is 17 * 23?", 4), "decompose", 1)); len(one) != 1 || one[0] != "What is 17 * 23?" {
		t.Fatalf("a problem outside the data: plan %q, want its own question", one)
	}
	if none := tasks.ParseSubQuestions(reply(t, s, tasks.DecomposePrompt("4 9 10 13", 4), "decompose", 1)); len(none) != 0 {
		t.Fatalf("Game of 24: plan %q, want no list", none)
	}

	// On every GSM8K problem, each sub-question the plan lists reads back
	// as the sub-problem of its group, the last one's truth is the
	// problem's, and the sub-questions' accuracies multiply to the
	// problem's: answering all of them right is as likely as one right
	// whole solution.
	for _, it := range gsm8kItems(t, 0) {
		base := s.problemFor(it.Problem)
		pl := splitPlan(base, 4)
		qs := tasks.ParseSubQuestions(s.planReply(it.Problem, 4))
		if len(qs) != len(pl.questions) {
			t.Fatalf("%s: plan %q, want %d sub-questions", it.ID, qs, len(pl.questions))
		}
		prod := 1.0
		var prior []tasks.SubAnswer
		for i, q := range qs {
			sub := s.problemFor(tasks.SubProblem(it.Problem, prior, q))
			if sub.truth != pl.truths[i] || sub == base {
				t.Fatalf("%s: sub-question %d %q: truth %s, want %s", it.ID, i+1, q, sub.truth, pl.truths[i])
			}
			prod *= sub.accuracy
			prior = append(prior, tasks.SubAnswer{Question: q, Answer: sub.truth})
		}
		if pl.truths[len(pl.truths)-1] != it.Truth || math.Abs(prod-base.accuracy) > 1e-12 {
			t.Fatalf("%s: last truth %s (want %s); accuracies multiply to %v, want %v", it.ID, pl.truths[len(pl.truths)-1], it.Truth, prod, base.accuracy)
		}
	}
}

func TestDecomposeSubAnswersAndErrorsPropagate(t *testing.T) {
	t.Parallel()
	s, err := New(Options{Seed: 1, Accuracy: 1})
	if err != nil {
		t.Fatal(err)
	}
	it := gsm8kItems(t, 1)[0] // Janet's ducks: 16 - 3 - 4 = 9 eggs, 9 * 2 = $18
	gsm := tasks.GSM8K{}
	qs := tasks.ParseSubQuestions(reply(t, s, tasks.DecomposePrompt(it.Problem, 4), "decompose", 1))
	if len(qs) != 2 {
		t.Fatalf("plan %q", qs)
	}
	answer := func(prior []tasks.SubAnswer, q string, seed uint64) string {
		a, _ := gsm.ExtractAnswer(reply(t, s, gsm.SolvePrompt(tasks.SubProblem(it.Problem, prior, q)), "solve", seed))
		return a
	}
	if a := answer(nil, qs[0], 1); a != "9" {
		t.Fatalf("sub-question 1 answered %s, want 9", a)
	}
	if a := answer([]tasks.SubAnswer{{Question: qs[0], Answer: "9"}}, qs[1], 1); a != it.Truth {
		t.Fatalf("sub-question 2 after a right answer: %s, want %s", a, it.Truth)
	}
	wrong := []tasks.SubAnswer{{Question: qs[0], Answer: "7"}}
	a1, a2 := answer(wrong, qs[1], 1), answer(wrong, qs[1], 2)
	if a1 == it.Truth || a1 != a2 {
		t.Fatalf("after a wrong answer: %s and %s; want the same wrong answer", a1, a2)
	}

	// Compose restates the answer to the problem's own question.
	compose := func(subs []tasks.SubAnswer) string {
		a, _ := gsm.ExtractAnswer(reply(t, s, tasks.ComposePrompt(it.Problem, subs), "compose", 1))
		return a
	}
	if a := compose([]tasks.SubAnswer{{Question: qs[0], Answer: "9"}, {Question: qs[1], Answer: it.Truth}}); a != it.Truth {
		t.Fatalf("compose after right answers: %s", a)
	}
	if a := compose([]tasks.SubAnswer{{Question: qs[0], Answer: "9"}, {Question: qs[1], Answer: "20"}}); a != "20" {
		t.Fatalf("compose after a wrong last answer: %s, want 20", a)
	}
	// Sub-questions it did not pose: it solves the problem as a whole
	// (always right at accuracy 1).
	if a := compose([]tasks.SubAnswer{{Question: "How many eggs?", Answer: "5"}}); a != it.Truth {
		t.Fatalf("compose after foreign sub-questions: %s, want a fresh solution", a)
	}
}
