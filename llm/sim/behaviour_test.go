package sim_test

import (
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/tasks"
)

// majorityAnswer is self-consistency's vote: the most frequent normalised
// answer, ties to the first.
func majorityAnswer(pack core.Pack, replies []string) string {
	count := map[string]int{}
	best, bestN := "", 0
	for _, r := range replies {
		a, ok := pack.ExtractAnswer(r)
		if !ok {
			continue
		}
		k := pack.Normalize(a)
		count[k]++
		if count[k] > bestN {
			best, bestN = a, count[k]
		}
	}
	return best
}

func TestGSM8KAccuracyAndMajority(t *testing.T) {
	t.Parallel()
	items := loadItems(t, "gsm8k", 50)
	c := client(simtest.Start(t, sim.Options{Seed: 1, Accuracy: 0.35}))
	pack := tasks.GSM8K{}
	right, total, majRight, answers := 0, 0, 0, 0
	wrongValues, topWrong := 0, 0
	for i, it := range items {
		replies := ask(t, c, pack.SolvePrompt(it.Problem), 16, i)
		distinct := map[string]int{}
		for _, r := range replies {
			a, ok := pack.ExtractAnswer(r)
			if !ok {
				t.Fatalf("%s: reply without an answer: %q", it.ID, r)
			}
			answers++
			total++
			if ok, _ := pack.Verify(it.Problem, a, it.Truth); ok {
				right++
			} else {
				distinct[pack.Normalize(a)]++
			}
		}
		wrongValues += len(distinct)
		top := 0
		for _, n := range distinct {
			top = max(top, n)
		}
		topWrong += top
		if ok, _ := pack.Verify(it.Problem, majorityAnswer(pack, replies), it.Truth); ok {
			majRight++
		}
	}
	acc := float64(right) / float64(total)
	maj := float64(majRight) / float64(len(items))
	t.Logf("single-sample accuracy %.3f, majority of 16 %.3f, %.1f distinct wrong answers per problem", acc, maj, float64(wrongValues)/float64(len(items)))
	if math.Abs(acc-0.35) > 0.06 {
		t.Errorf("single-sample accuracy %.3f, want about 0.35", acc)
	}
	if maj < acc+0.25 {
		t.Errorf("majority of 16 is right %.2f of the time, single samples %.2f: want clearly more", maj, acc)
	}
	if w := float64(wrongValues) / float64(len(items)); w < 4 {
		t.Errorf("%.1f distinct wrong answers per problem, want wrong answers spread out", w)
	}
	if share := float64(topWrong) / float64(total); share > 0.25 {
		t.Errorf("the commonest wrong answer takes %.2f of the samples, want well below the truth's 0.35", share)
	}
}

func TestMATHSolutions(t *testing.T) {
	t.Parallel()
	items := loadItems(t, "math500", 30)
	c := client(simtest.Start(t, sim.Options{Seed: 1, Accuracy: 0.5}))
	pack := tasks.MATH{}
	right, total := 0, 0
	for i, it := range items {
		for _, r := range ask(t, c, pack.SolvePrompt(it.Problem), 16, i) {
			a, ok := pack.ExtractAnswer(r)
			if !ok {
				t.Fatalf("%s: reply without an answer: %q", it.ID, r)
			}
			total++
			if ok, _ := pack.Verify(it.Problem, a, it.Truth); ok {
				right++
			}
		}
	}
	if acc := float64(right) / float64(total); math.Abs(acc-0.5) > 0.08 {
		t.Errorf("MATH accuracy %.3f, want about 0.5", acc)
	}
}

// prmOracle returns a check of paths by a perfect PRM (JudgeAccuracy 1).
func prmOracle(t testing.TB) func(problem string, path []string) bool {
	c := client(simtest.Start(t, sim.Options{Seed: 5, JudgeAccuracy: 1}))
	return func(problem string, path []string) bool {
		r := ask(t, c, tasks.PRMPrompt(problem, path), 1, 0)[0]
		s, ok := tasks.ParseScore(r)
		if !ok {
			t.Fatalf("PRM reply without a score: %q", r)
		}
		return s > 0
	}
}

// TestGSM8KSteps walks step prompts: a next step of a path on track is
// right with probability StepAccuracy, a path that went wrong ends in a
// wrong answer, and the path of right steps ends in the truth.
func TestGSM8KSteps(t *testing.T) {
	t.Parallel()
	items := loadItems(t, "gsm8k", 20)
	c := client(simtest.Start(t, sim.Options{Seed: 2, StepAccuracy: 0.7}))
	onTrack := prmOracle(t)
	pack := tasks.GSM8K{}
	good, asked := 0, 0
	for i, it := range items {
		var path []string
		for depth := 0; ; depth++ {
			if depth == 20 {
				t.Fatalf("%s: no answer after 20 steps: %q", it.ID, path)
			}
			replies := ask(t, c, pack.StepPrompt(it.Problem, path), 8, 100*i+depth)
			next := replies[0]
			for k := len(replies) - 1; k >= 0; k-- {
				asked++
				if onTrack(it.Problem, append(path, replies[k])) {
					good++
					next = replies[k]
				}
			}
			path = append(path, next)
			if a, ok := pack.ExtractAnswer(next); ok {
				right, _ := pack.Verify(it.Problem, a, it.Truth)
				if right != onTrack(it.Problem, path) {
					t.Errorf("%s: answer %s (right: %v) disagrees with the PRM", it.ID, a, right)
				}
				break
			}
		}
	}
	if frac := float64(good) / float64(asked); math.Abs(frac-0.7) > 0.07 {
		t.Errorf("%.3f of next steps on track, want about 0.7 (StepAccuracy)", frac)
	}

	// A wrong path stays wrong.
	it := items[0]
	for seed := range 5 {
		path := []string{"Janet sells 16 - 3 - 4 = 10 duck eggs a day."}
		for depth := 0; depth < 10; depth++ {
			r := ask(t, c, pack.StepPrompt(it.Problem, path), 1, 10*seed+depth)[0]
			path = append(path, r)
			if a, ok := pack.ExtractAnswer(r); ok {
				if right, _ := pack.Verify(it.Problem, a, it.Truth); right {
					t.Errorf("a path that went wrong ended right: %q", path)
				}
				break
			}
		}
	}
}

// TestJudging checks that judge, value and PRM scores and critiques track
// correctness at the configured JudgeAccuracy.
func TestJudging(t *testing.T) {
	t.Parallel()
	items := loadItems(t, "gsm8k", 30)
	c := client(simtest.Start(t, sim.Options{Seed: 3, JudgeAccuracy: 0.8, Accuracy: 0.5}))
	pack := tasks.GSM8K{}
	type tally struct{ faithful, n int }
	byKind := map[string]*tally{"judge": {}, "value": {}, "prm": {}, "critique": {}}
	for i, it := range items {
		for _, sol := range ask(t, c, pack.SolvePrompt(it.Problem), 4, i) {
			a, _ := pack.ExtractAnswer(sol)
			right, _ := pack.Verify(it.Problem, a, it.Truth)
			steps := []string{sol}
			for kind, msgs := range map[string][]core.Message{
				"judge": tasks.JudgePrompt(it.Problem, steps),
				"value": tasks.ValuePrompt(pack, it.Problem, steps),
				"prm":   tasks.PRMPrompt(it.Problem, steps),
			} {
				for _, r := range ask(t, c, msgs, 4, i) {
					s, ok := tasks.ParseScore(r)
					if !ok {
						t.Fatalf("%s reply without a score: %q", kind, r)
					}
					byKind[kind].n++
					if (s > 0) == right {
						byKind[kind].faithful++
					}
				}
			}
			for _, r := range ask(t, c, tasks.CritiquePrompt(it.Problem, steps), 4, i) {
				issues, ok := tasks.ParseCritique(r)
				if !ok {
					t.Fatalf("empty critique")
				}
				byKind["critique"].n++
				if (len(issues) == 0) == right {
					byKind["critique"].faithful++
				}
			}
		}
	}
	for kind, tl := range byKind {
		if f := float64(tl.faithful) / float64(tl.n); math.Abs(f-0.8) > 0.07 {
			t.Errorf("%s rates %.3f of solutions the right way, want about 0.8", kind, f)
		}
	}
}

func TestReviseAndAggregate(t *testing.T) {
	t.Parallel()
	it := gsm8kFirst(t)
	c := client(simtest.Start(t, sim.Options{Seed: 4, ReviseAccuracy: 0.5}))
	pack := tasks.GSM8K{}
	wrong := "Janet sells 16 - 3 - 4 = 10 duck eggs a day.\nShe makes 10 * 2 = $20 every day. The answer is \\boxed{20}."
	right := "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day at the farmer’s market. The answer is \\boxed{18}."
	answers := func(replies []string) (nRight int) {
		for _, r := range replies {
			a, ok := pack.ExtractAnswer(r)
			if !ok {
				t.Fatalf("reply without an answer: %q", r)
			}
			if ok, _ := pack.Verify(it.Problem, a, it.Truth); ok {
				nRight++
			}
		}
		return nRight
	}
	critique := "- Step 1: 16 - 3 - 4 is 9, not 10."
	if n := answers(ask(t, c, tasks.RevisePrompt(it.Problem, []string{wrong}, critique), 100, 1)); n < 35 || n > 65 {
		t.Errorf("revisions fixed %d of 100 wrong solutions, want about 50", n)
	}
	if n := answers(ask(t, c, tasks.RevisePrompt(it.Problem, []string{wrong}, tasks.NoIssues), 20, 1)); n != 0 {
		t.Errorf("revisions without issues fixed %d of 20", n)
	}
	if n := answers(ask(t, c, tasks.RevisePrompt(it.Problem, []string{right}, critique), 20, 1)); n != 20 {
		t.Errorf("revisions kept %d of 20 right solutions", n)
	}
	if n := answers(ask(t, c, tasks.AggregatePrompt(it.Problem, []string{wrong, right, right}), 5, 1)); n != 5 {
		t.Errorf("aggregates of 2 right and 1 wrong: %d of 5 right", n)
	}
	for _, r := range ask(t, c, tasks.AggregatePrompt(it.Problem, []string{wrong, wrong, right}), 5, 1) {
		if a, _ := pack.ExtractAnswer(r); a != "20" {
			t.Errorf("aggregate of 2 × 20 and 1 × 18 answered %s", a)
		}
	}
}

// TestGenericProblems checks prompts outside the data: answers are built
// from the problem's numbers and still follow Accuracy.
func TestGenericProblems(t *testing.T) {
	t.Parallel()
	c := client(simtest.Start(t, sim.Options{Seed: 1, Accuracy: 0.5, DataDir: sim.NoData}))
	pack := core.GenericPack{}
	right := 0
	msgs := pack.SolvePrompt("Tom has 3 apples and buys 4 more. How many now?")
	for _, r := range append(ask(t, c, msgs, 100, 1), ask(t, c, msgs, 100, 2)...) {
		a, ok := pack.ExtractAnswer(r)
		if !ok {
			t.Fatalf("no answer in %q", r)
		}
		if pack.Normalize(a) == "7" {
			right++
		}
	}
	if right < 80 || right > 120 {
		t.Errorf("%d of 200 right, want about 100", right)
	}
	// A chat that is no pack's prompt still gets an answer.
	r := ask(t, c, []core.Message{{Role: "user", Content: "What is 2 plus 2?"}}, 1, 1)[0]
	if _, ok := core.ExtractAnswer(r); !ok {
		t.Errorf("chat reply %q has no answer", r)
	}
}

func game24Puzzles(t testing.TB, n int) []string {
	items := loadItems(t, "game24", 0)
	var out []string
	for i := 0; i < len(items) && len(out) < n; i += len(items) / n {
		out = append(out, items[i].Problem)
	}
	// Unsolvable puzzles too.
	return append(out, "1 1 1 1", "1 1 2 2", "13 13 13 13")
}

func TestGame24Proposals(t *testing.T) {
	t.Parallel()
	c := client(simtest.Start(t, sim.Options{Seed: 6, ProposeSolvable: 0.6}))
	g := tasks.Game24{}
	good, total := 0, 0
	for i, problem := range game24Puzzles(t, 40) {
		var path []string
		for depth := 0; depth < 3; depth++ {
			reply := ask(t, c, g.ProposePrompt(problem, path), 1, i)[0]
			props := g.ParseProposals(reply)
			if n := len(props); n < 1 || n > 8 || n != len(strings.Split(reply, "\n")) {
				t.Fatalf("%s after %q: %d proposals in %q", problem, path, n, reply)
			}
			st, _ := tasks.Game24Play(problem, path)
			anyGood := false
			for _, p := range props {
				next, err := tasks.Game24Play(problem, append(path, p))
				if err != nil {
					t.Fatalf("%s after %q: illegal proposal %q: %v", problem, path, p, err)
				}
				if next.Solvable() {
					anyGood = true
					good++
				}
				total++
			}
			_ = st
			path = append(path, props[0])
			if anyGood {
				// Follow a good move when there is one.
				for _, p := range props {
					if next, _ := tasks.Game24Play(problem, append(path[:len(path)-1], p)); next.Solvable() {
						path[len(path)-1] = p
						break
					}
				}
			}
		}
		// One number left: the propose prompt writes the expression.
		reply := ask(t, c, g.ProposePrompt(problem, path), 1, i)[0]
		a, ok := g.ExtractAnswer(reply)
		if !ok {
			t.Fatalf("%s after %q: final proposal %q has no expression", problem, path, reply)
		}
		st, _ := tasks.Game24Play(problem, path)
		if right, _ := g.Verify(problem, a, ""); right != st.Solved() {
			t.Errorf("%s after %q: expression %q right=%v", problem, path, a, right)
		}
	}
	t.Logf("%.2f of %d proposals keep the numbers solvable", float64(good)/float64(total), total)
}

func TestGame24Values(t *testing.T) {
	t.Parallel()
	c := client(simtest.Start(t, sim.Options{Seed: 7, JudgeAccuracy: 0.8}))
	g := tasks.Game24{}
	var sumSolvable, sumUnsolvable float64
	var nSolvable, nUnsolvable, faithful, n int
	for i, problem := range game24Puzzles(t, 30) {
		st, _ := tasks.NewGame24State(problem)
		for j, m := range st.Moves() {
			if j%4 != 0 {
				continue
			}
			path := []string{m.String()}
			next, _ := tasks.Game24Play(problem, path)
			for _, r := range ask(t, c, tasks.ValuePrompt(g, problem, path), 4, i) {
				v, ok := tasks.ParseValue(g, r)
				if !ok {
					t.Fatalf("value reply without a verdict: %q", r)
				}
				n++
				if next.Solvable() {
					sumSolvable += v
					nSolvable++
					if v == tasks.Game24Sure {
						faithful++
					}
				} else {
					sumUnsolvable += v
					nUnsolvable++
					if v == tasks.Game24Impossible {
						faithful++
					}
				}
			}
		}
	}
	ms, mu := sumSolvable/float64(nSolvable), sumUnsolvable/float64(nUnsolvable)
	t.Logf("mean value: solvable %.2f (%d), unsolvable %.2f (%d)", ms, nSolvable, mu, nUnsolvable)
	if ms < mu+1 {
		t.Errorf("mean value of solvable positions %.2f, unsolvable %.2f: want a clear gap", ms, mu)
	}
	if f := float64(faithful) / float64(n); math.Abs(f-0.8) > 0.06 {
		t.Errorf("%.3f of verdicts faithful, want about 0.8", f)
	}
}

func TestGame24SolveAndSteps(t *testing.T) {
	t.Parallel()
	c := client(simtest.Start(t, sim.Options{Seed: 8, Accuracy: 0.4, StepAccuracy: 0.9}))
	g := tasks.Game24{}
	right, total := 0, 0
	for i, problem := range game24Puzzles(t, 30) {
		solvable := tasks.Solvable24(mustNumbers(t, problem))
		for _, r := range ask(t, c, g.SolvePrompt(problem), 8, i) {
			a, ok := g.ExtractAnswer(r)
			if !ok {
				t.Fatalf("%s: no expression in %q", problem, r)
			}
			ok, _ = g.Verify(problem, a, "")
			if ok && !solvable {
				t.Fatalf("%s is unsolvable but %q checks", problem, a)
			}
			if solvable {
				total++
				if ok {
					right++
				}
			}
			// The moves before the expression are legal.
			lines := strings.Split(r, "\n")
			if _, err := tasks.Game24Play(problem, lines[:len(lines)-1]); err != nil {
				t.Errorf("%s: %v in %q", problem, err, r)
			}
		}
		// Step by step: three legal moves, then the expression.
		var path []string
		for depth := 0; depth < 4; depth++ {
			r := ask(t, c, g.StepPrompt(problem, path), 1, i)[0]
			path = append(path, r)
			if depth < 3 {
				if _, err := tasks.Game24Play(problem, path); err != nil {
					t.Fatalf("%s: step %d %q: %v", problem, depth+1, r, err)
				}
			} else if _, ok := g.ExtractAnswer(r); !ok {
				t.Fatalf("%s: fourth step %q has no expression", problem, r)
			}
		}
	}
	if acc := float64(right) / float64(total); math.Abs(acc-0.4) > 0.08 {
		t.Errorf("Game of 24 accuracy %.3f on solvable puzzles, want about 0.4", acc)
	}
}

func mustNumbers(t testing.TB, problem string) []*big.Rat {
	n, ok := tasks.Game24Numbers(problem)
	if !ok {
		t.Fatalf("bad puzzle %q", problem)
	}
	return n
}
