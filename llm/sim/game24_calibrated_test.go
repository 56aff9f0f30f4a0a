package sim_test

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/tasks"
)

// The calibrated Game of 24 model on ranks 901-1000 reproduces the
// chain-of-thought figures it was calibrated to (GPT-4 in Yao et al.,
// 2023): few right chains, most failing at the first move, and failures
// that repeat across samples, so that many puzzles are never solved.
func TestGame24CalibratedModel(t *testing.T) {
	t.Parallel()
	var puzzles []string
	for _, it := range loadItems(t, "game24", 0) {
		if r, _ := strconv.Atoi(it.Extra["rank"]); r >= 901 && r <= 1000 {
			puzzles = append(puzzles, it.Problem)
		}
	}
	if len(puzzles) != 100 {
		t.Fatalf("%d puzzles of rank 901-1000", len(puzzles))
	}
	c := client(simtest.Start(t, sim.Options{Seed: 1, Game24Model: sim.Game24Calibrated}))
	g := tasks.Game24{}
	const n = 20
	right, firstGood, total, everSolved := 0, 0, 0, 0
	for i, problem := range puzzles {
		solved := false
		for _, r := range ask(t, c, g.SolvePrompt(problem), n, i) {
			lines := strings.Split(r, "\n")
			if len(lines) != 4 {
				t.Fatalf("%s: want three moves and an expression, got %q", problem, r)
			}
			st, err := tasks.Game24Play(problem, lines[:3])
			if err != nil {
				t.Fatalf("%s: %v", problem, err)
			}
			a, _ := g.ExtractAnswer(lines[3])
			if ok := tasks.Check24(problem, a) == nil; ok != st.Solved() {
				t.Fatalf("%s: the expression %q disagrees with the moves", problem, a)
			} else if ok {
				right++
				solved = true
			}
			if first, _ := tasks.Game24Play(problem, lines[:1]); first.Solvable() {
				firstGood++
			}
			total++
		}
		if solved {
			everSolved++
		}
		// Steps and proposals are legal moves of the same model.
		if i%10 == 0 {
			props := g.ParseProposals(ask(t, c, g.ProposePrompt(problem, nil), 1, i)[0])
			seen := map[string]bool{}
			for _, p := range props {
				if _, err := tasks.Game24Play(problem, []string{p}); err != nil || seen[p] {
					t.Fatalf("%s: proposal %q illegal or repeated (%v)", problem, p, err)
				}
				seen[p] = true
			}
			if len(props) < 1 || len(props) > 8 {
				t.Fatalf("%s: %d proposals", problem, len(props))
			}
		}
	}
	acc, first, ever := float64(right)/float64(total), float64(firstGood)/float64(total), float64(everSolved)/float64(len(puzzles))
	t.Logf("chain-of-thought accuracy %.3f, good first moves %.3f, puzzles solved in %d samples %.2f", acc, first, n, ever)
	if math.Abs(acc-0.06) > 0.03 {
		t.Errorf("chain-of-thought accuracy %.3f, want about 0.06 (GPT-4: 0.04)", acc)
	}
	if math.Abs(first-0.35) > 0.07 {
		t.Errorf("good first moves %.3f, want about 0.35 (GPT-4: about 0.4)", first)
	}
	if ever > 0.5 {
		t.Errorf("%.2f of the puzzles solved within %d samples: failures should repeat", ever, n)
	}
	if _, err := sim.New(sim.Options{Game24Model: "smart"}); err == nil {
		t.Error("an unknown Game24Model was accepted")
	}
}
