package sim

import (
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/ponder-rlm/ponder/tasks"
)

// Game of 24 behaviour: moves are always legal arithmetic; what varies is
// whether they keep the numbers solvable.

func (s *Server) game24(id tasks.Identified) generator {
	if s.opts.Game24Model == Game24Calibrated { // game24_calibrated.go
		if g, ok := s.g24Calibrated(id); ok {
			return g
		}
	}
	problem, steps := id.Problem, id.Steps
	switch id.Kind {
	case tasks.KindSolve:
		return s.g24Solve(problem)
	case tasks.KindStep:
		return s.g24Step(problem, steps)
	case tasks.KindPropose:
		return s.g24Propose(problem, steps)
	case tasks.KindValue:
		return s.g24Value(problem, steps)
	case tasks.KindJudge, tasks.KindPRM:
		on, first := g24Status(problem, steps)
		return s.rate(id.Kind, on, first)
	case tasks.KindCritique:
		on, first := g24Status(problem, steps)
		return s.critique(steps, on, first)
	case tasks.KindRevise:
		return s.g24Revise(problem, steps, id.Critique)
	case tasks.KindAggregate:
		return s.g24Aggregate(problem, steps)
	}
	return s.g24Solve(problem)
}

// g24Status: a path is on track while its moves are legal and leave
// solvable numbers, and right when its expression checks.
func g24Status(problem string, steps []string) (onTrack bool, firstWrong int) {
	st, err := tasks.NewGame24State(problem)
	if err != nil {
		return false, 0
	}
	firstWrong = -1
	if !st.Solvable() {
		firstWrong = 0
	}
	for i, step := range steps {
		if a, ok := (tasks.Game24{}).ExtractAnswer(step); ok {
			if tasks.Check24(problem, a) == nil {
				return true, -1
			}
			if firstWrong < 0 {
				firstWrong = i
			}
			return false, firstWrong
		}
		mv, ok := tasks.ParseMove(step)
		if ok {
			st, err = st.Apply(mv)
		}
		if !ok || err != nil {
			if firstWrong < 0 {
				firstWrong = i
			}
			return false, firstWrong
		}
		if firstWrong < 0 && !st.Solvable() {
			firstWrong = i
		}
	}
	return firstWrong < 0, firstWrong
}

func boxed(expr string) string { return "\\boxed{" + expr + "}" }

// pickMove picks a random legal move from st that keeps it solvable when
// wantSolvable (and one does), else one that does not (when one does not).
func pickMove(st tasks.Game24State, wantSolvable bool, rng *rand.Rand) (tasks.Move, tasks.Game24State, bool) {
	moves := st.Moves()
	rng.Shuffle(len(moves), func(i, j int) { moves[i], moves[j] = moves[j], moves[i] })
	var fallback *tasks.Move
	for i, m := range moves {
		next, err := st.Apply(m)
		if err != nil {
			continue
		}
		if next.Solvable() == wantSolvable {
			return m, next, next.Solvable()
		}
		if fallback == nil {
			fallback = &moves[i]
		}
	}
	if fallback == nil {
		return tasks.Move{}, st, false
	}
	next, _ := st.Apply(*fallback)
	return *fallback, next, next.Solvable()
}

// g24Walk plays moves to the end: keeping the numbers solvable for the
// first good moves, then losing them. It returns the moves and the final
// expression.
func g24Walk(st tasks.Game24State, good int, rng *rand.Rand) ([]string, string) {
	var lines []string
	for i := 0; len(st.Nums) > 1; i++ {
		m, next, _ := pickMove(st, i < good, rng)
		if next.Nums == nil {
			break
		}
		lines = append(lines, m.String())
		st = next
	}
	return lines, st.Exprs[0]
}

// g24Solve solves a puzzle with probability Accuracy (when it is
// solvable); else it plays to a wrong expression.
func (s *Server) g24Solve(problem string) generator {
	start, _ := tasks.NewGame24State(problem)
	solvable := start.Solvable()
	acc := s.problemAccuracy(problem)
	return func(rng *rand.Rand) sample {
		if solvable && rng.Float64() < acc {
			lines, expr := g24Walk(start, 3, rng)
			return sample{strings.Join(append(lines, boxed(expr)), "\n"), true}
		}
		lines, expr := g24Walk(start, rng.IntN(3), rng)
		if tasks.Check24(problem, expr) == nil {
			// Every move happened to reach 24: misuse a number instead.
			expr = wrongExpr(problem)
		}
		return sample{strings.Join(append(lines, boxed(expr)), "\n"), false}
	}
}

// wrongExpr adds the numbers: never 24 for a puzzle whose sum is not 24,
// and then the product of the first two plus the rest, minus 1.
func wrongExpr(problem string) string {
	f := strings.Fields(problem)
	e := strings.Join(f, " + ")
	if tasks.Check24(problem, e) == nil {
		e = f[0] + " * " + f[1] + " + " + f[2] + " - " + f[3]
	}
	if tasks.Check24(problem, e) == nil {
		e = f[0] + " + " + f[1] + " + " + f[2] + " + " + f[3] + " + 1"
	}
	return e
}

// g24Step writes one move: one that keeps a solvable position solvable
// with probability StepAccuracy; after three moves, the expression.
func (s *Server) g24Step(problem string, steps []string) generator {
	st, err := tasks.Game24Play(problem, steps)
	return func(rng *rand.Rand) sample {
		switch {
		case err != nil:
			return sample{boxed(wrongExpr(problem)), false}
		case len(st.Nums) == 1:
			return sample{boxed(st.Exprs[0]), st.Solved()}
		}
		want := st.Solvable() && rng.Float64() < s.opts.StepAccuracy
		m, next, ok := pickMove(st, want, rng)
		if next.Nums == nil {
			return sample{boxed(wrongExpr(problem)), false}
		}
		return sample{m.String(), ok}
	}
}

// g24Propose lists 1 to 8 distinct legal moves; each keeps the numbers
// solvable with probability ProposeSolvable while such moves are left.
// After an illegal move it proposes from the numbers that move claims.
func (s *Server) g24Propose(problem string, steps []string) generator {
	st, err := tasks.Game24Play(problem, steps)
	if err != nil {
		st = claimedState(steps)
	}
	var good, bad []tasks.Move
	for _, m := range st.Moves() {
		if next, err := st.Apply(m); err == nil && next.Solvable() {
			good = append(good, m)
		} else {
			bad = append(bad, m)
		}
	}
	return func(rng *rand.Rand) sample {
		if len(st.Nums) == 1 {
			return sample{boxed(st.Exprs[0]), st.Solved()}
		}
		if len(st.Nums) == 0 {
			return sample{boxed(wrongExpr(problem)), false}
		}
		g := append([]tasks.Move(nil), good...)
		b := append([]tasks.Move(nil), bad...)
		rng.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
		rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
		k := 1 + rng.IntN(8)
		var lines []string
		anyGood := false
		for len(lines) < k && len(g)+len(b) > 0 {
			if len(g) > 0 && (len(b) == 0 || rng.Float64() < s.opts.ProposeSolvable) {
				lines, g, anyGood = append(lines, g[0].String()), g[1:], true
			} else {
				lines, b = append(lines, b[0].String()), b[1:]
			}
		}
		return sample{strings.Join(lines, "\n"), anyGood}
	}
}

// claimedState is the position the last parsable move says is left.
func claimedState(steps []string) tasks.Game24State {
	var st tasks.Game24State
	for _, s := range steps {
		if m, ok := tasks.ParseMove(s); ok && m.Left != nil {
			st = tasks.Game24State{Nums: m.Left, Exprs: strings.Fields(tasks.FormatNumbers(m.Left))}
		}
	}
	return st
}

// g24Value answers sure (solvable) or impossible (not) with probability
// JudgeAccuracy; otherwise likely or the opposite verdict, half and half.
func (s *Server) g24Value(problem string, steps []string) generator {
	on, _ := g24Status(problem, steps)
	st, err := tasks.Game24Play(problem, steps)
	left := tasks.FormatNumbers(st.Nums)
	if err != nil {
		left = tasks.FormatNumbers(claimedState(steps).Nums)
	}
	expr := ""
	if on && err == nil && len(st.Nums) > 1 {
		// Show the solution over the numbers left, as Tree of Thoughts does.
		local := tasks.Game24State{Nums: st.Nums, Exprs: strings.Fields(left)}
		expr, _ = local.Solve(nil)
	}
	return func(rng *rand.Rand) sample {
		verdict := "impossible"
		if on {
			verdict = "sure"
		}
		faithful := rng.Float64() < s.opts.JudgeAccuracy
		if !faithful {
			if rng.IntN(2) == 0 {
				verdict = "likely"
			} else if on {
				verdict = "impossible"
			} else {
				verdict = "sure"
			}
		}
		var why string
		switch {
		case verdict == "sure" && expr != "":
			why = left + ": " + expr + " = 24"
		case verdict == "sure":
			why = left + ": these can be combined into 24"
		case verdict == "likely":
			why = left + ": not obvious, but 24 may be within reach"
		default:
			why = left + ": every combination I try misses 24"
		}
		return sample{why + "\n" + verdict, faithful}
	}
}

// g24Revise keeps a right solution, solves the puzzle with probability
// ReviseAccuracy when the critique names a problem, else plays a wrong one.
func (s *Server) g24Revise(problem string, steps []string, critique string) generator {
	on, _ := g24Status(problem, steps)
	issues, _ := tasks.ParseCritique(critique)
	start, _ := tasks.NewGame24State(problem)
	return func(rng *rand.Rand) sample {
		switch {
		case on:
			st, err := tasks.Game24Play(problem, steps)
			out := append([]string(nil), steps...)
			if err == nil && len(st.Nums) > 1 {
				lines, expr := g24Walk(st, 3, rng)
				out = append(append(out, lines...), boxed(expr))
			} else if err == nil && !hasAnswer(steps) {
				out = append(out, boxed(st.Exprs[0]))
			}
			return sample{strings.Join(out, "\n"), true}
		case len(issues) > 0 && start.Solvable() && rng.Float64() < s.opts.ReviseAccuracy:
			lines, expr := g24Walk(start, 3, rng)
			return sample{strings.Join(append(lines, boxed(expr)), "\n"), true}
		default:
			lines, expr := g24Walk(start, rng.IntN(3), rng)
			if tasks.Check24(problem, expr) == nil {
				expr = wrongExpr(problem)
			}
			return sample{strings.Join(append(lines, boxed(expr)), "\n"), false}
		}
	}
}

func hasAnswer(steps []string) bool {
	for _, s := range steps {
		if _, ok := (tasks.Game24{}).ExtractAnswer(s); ok {
			return true
		}
	}
	return false
}

// g24Aggregate answers with the majority expression of the candidates.
func (s *Server) g24Aggregate(problem string, candidates []string) generator {
	expr, ok := majority(tasks.Game24{}, candidates)
	if !ok {
		return s.g24Solve(problem)
	}
	n := 0
	for _, c := range candidates {
		if a, ok := (tasks.Game24{}).ExtractAnswer(c); ok && (tasks.Game24{}).Normalize(a) == (tasks.Game24{}).Normalize(expr) {
			n++
		}
	}
	text := strconv.Itoa(n) + " of the " + strconv.Itoa(len(candidates)) + " candidates give " + expr + ".\n" + boxed(expr)
	good := tasks.Check24(problem, expr) == nil
	return func(*rand.Rand) sample { return sample{text, good} }
}
