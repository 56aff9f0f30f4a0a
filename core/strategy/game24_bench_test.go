package strategy_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/tasks"
)

// game24Arm is one row of the matched-compute table.
type game24Arm struct {
	name, strategy string
	params         core.Params
}

// Game24Arms are the strategies compared at a budget of `budget` LLM calls
// per puzzle (each also stops by itself when it is done).
func game24Arms(budget int) []game24Arm {
	return []game24Arm{
		{"cot", "cot", nil},
		{"self-consistency", "self-consistency", core.Params{"k": budget}},
		{"best-of-n (judge)", "best-of-n", core.Params{"n": budget / 2}},
		{"best-of-n (verifier)", "best-of-n", core.Params{"n": budget, "evaluator": "verifier"}},
		// Searches expand Game of 24 positions with the pack's propose
		// prompt, as Tree of Thoughts does.
		// beam keeps every proposal of a call (as tot-bfs does).
		{"beam", "beam", core.Params{"beam_width": 3, "expansions": 8, "evaluator": "value", "expand": "propose"}},
		{"tot-bfs", "tot-bfs", core.Params{"breadth": 5, "max_depth": 4}},
		// The budget ends mcts, not x1's default of 100 iterations.
		{"mcts", "mcts", core.Params{"parallel": 1, "expand": "propose", "iterations": 1000}}, // sequential: reproducible
	}
}

// game24Puzzles reads ranks lo..hi of ../shared/data/game24.csv.
func game24Puzzles(tb testing.TB, lo, hi int) []tasks.Item {
	tb.Helper()
	dir, err := tasks.FindDataDir()
	if err != nil {
		tb.Skipf("no benchmark data: %v", err)
	}
	items, _, err := tasks.LoadDataset(dir, "game24")
	if err != nil {
		tb.Skipf("no game24 data: %v", err)
	}
	var out []tasks.Item
	for _, it := range items {
		if r, _ := strconv.Atoi(it.Extra["rank"]); r >= lo && r <= hi {
			out = append(out, it)
		}
	}
	return out
}

type game24Row struct {
	arm                 game24Arm
	solved, n           int
	calls, tokens, wall float64
	// perCalls are the calls spent on each puzzle; firstRight (oracle rows
	// only) the index of each puzzle's first right sample (-1: none).
	perCalls   []int64
	firstRight []int
}

// runGame24 solves every puzzle with every arm, puzzles in parallel, and
// checks answers with the exact checker.
func runGame24(tb testing.TB, pol core.Policy, puzzles []tasks.Item, budget int, arms []game24Arm) []game24Row {
	eng := core.NewEngine(pol, standardRegistry(), &core.EngineOptions{Packs: tasks.Get, Concurrency: 32})
	rows := make([]game24Row, len(arms))
	for a, arm := range arms {
		rows[a].arm = arm
		rows[a].perCalls = make([]int64, len(puzzles))
		rows[a].firstRight = make([]int, len(puzzles))
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i, it := range puzzles {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				res, err := eng.Solve(context.Background(), core.Task{Problem: it.Problem, Pack: "game24", Strategy: arm.strategy,
					Params: arm.params, Limits: core.Limits{LLMCalls: int64(budget)}, Seed: int64(1000 + i)})
				if err != nil {
					tb.Errorf("%s on %s: %v", arm.name, it.Problem, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				rows[a].n++
				if tasks.Check24(it.Problem, res.Answer) == nil {
					rows[a].solved++
				}
				rows[a].calls += float64(res.Usage.LLMCalls)
				rows[a].perCalls[i] = res.Usage.LLMCalls
				rows[a].firstRight[i] = firstRightSample(res)
				rows[a].tokens += float64(res.Usage.PromptTokens + res.Usage.CompletionTokens)
				rows[a].wall += res.Usage.WallMS
			}()
		}
		wg.Wait()
	}
	return rows
}

// firstRightSample is the lowest sample index of a sampled solution the
// verifier accepted (-1: none).
func firstRightSample(res core.Result) int {
	first := -1
	for _, n := range res.Trace.Structure.Nodes() {
		idx, ok := n.Meta["sample"].(int)
		if ok && n.Scores[core.ScoreVerifier] == 1 && (first < 0 || idx < first) {
			first = idx
		}
	}
	return first
}

// matchedOracle is how many puzzles best-of-n with the verifier solves
// when, on each puzzle, it may draw as many samples as r spent calls: its
// samples are drawn in a fixed order, so the first c of n are what n = c
// would draw.
func matchedOracle(oracle, r game24Row) int {
	solved := 0
	for i, f := range oracle.firstRight {
		if f >= 0 && int64(f) < r.perCalls[i] {
			solved++
		}
	}
	return solved
}

func printGame24(w *os.File, title string, rows []game24Row) {
	fmt.Fprintln(w, title)
	var oracle *game24Row
	for i := range rows {
		if rows[i].arm.name == "best-of-n (verifier)" {
			oracle = &rows[i]
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\tparams\tsolved\tsuccess\tmean LLM calls\tmean tokens\tbest-of-n (verifier) at the same calls\t")
	for _, r := range rows {
		var ps []string
		for k, v := range r.arm.params {
			ps = append(ps, fmt.Sprintf("%s=%v", k, v))
		}
		n := float64(max(r.n, 1))
		matched := "-"
		if oracle != nil {
			matched = fmt.Sprintf("%.0f%%", 100*float64(matchedOracle(*oracle, r))/n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%.0f%%\t%.1f\t%.0f\t%s\t\n", r.arm.name, strings.Join(sortStrings(ps), " "), r.solved, r.n,
			100*float64(r.solved)/n, r.calls/n, r.tokens/n, matched)
	}
	tw.Flush()
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// BenchmarkGame24 compares strategies at matched compute on Game of 24
// ranks 901-1000 against the simulator (seed 1, fixed task seeds): every
// strategy may spend at most 100 LLM calls per puzzle. PONDER_GAME24_BUDGET,
// PONDER_GAME24_RANKS (e.g. 801-900) and PONDER_GAME24_SEED (the
// simulator's) change those. It runs on both of
// the simulator's Game of 24 models — calibrated (calibrated to GPT-4's
// published chain-of-thought results on these puzzles) and basic (whole
// solutions right 35% of the time, as on GSM8K) — prints a table for each
// and reports each strategy's success rate.
//
//	go test -run '^$' -bench Game24 -benchtime 1x ./core/strategy/
func BenchmarkGame24(b *testing.B) {
	lo, hi := 901, 1000
	if r := os.Getenv("PONDER_GAME24_RANKS"); r != "" {
		a, z, ok := strings.Cut(r, "-")
		var errA, errZ error
		lo, errA = strconv.Atoi(a)
		hi, errZ = strconv.Atoi(z)
		if !ok || errA != nil || errZ != nil || lo > hi {
			b.Fatalf("PONDER_GAME24_RANKS=%q: want FIRST-LAST, e.g. 801-900", r)
		}
	}
	seed := int64(1)
	if v, err := strconv.ParseInt(os.Getenv("PONDER_GAME24_SEED"), 10, 64); err == nil {
		seed = v
	}
	puzzles := game24Puzzles(b, lo, hi)
	for _, model := range []string{sim.Game24Calibrated, sim.Game24Basic} {
		b.Run(model, func(b *testing.B) {
			url := simtest.Start(b, sim.Options{Seed: seed, Game24Model: model})
			pol, err := llm.New(config.LLM{BaseURL: url, Model: "sim", Concurrency: 64, Timeout: time.Minute, N: "auto"}, nil)
			if err != nil {
				b.Fatal(err)
			}
			budget := 100
			if v, err := strconv.Atoi(os.Getenv("PONDER_GAME24_BUDGET")); err == nil && v > 0 {
				budget = v
			}
			b.ResetTimer()
			var rows []game24Row
			for i := 0; i < b.N; i++ {
				rows = runGame24(b, pol, puzzles, budget, game24Arms(budget))
			}
			b.StopTimer()
			printGame24(os.Stdout, fmt.Sprintf("Game of 24, ranks %d-%d (%d puzzles), at most %d LLM calls per puzzle, simulator seed %d, %s model:",
				lo, hi, len(puzzles), budget, seed, model), rows)
			for _, r := range rows {
				name := strings.NewReplacer(" ", "_", "(", "", ")", "").Replace(r.arm.name)
				b.ReportMetric(100*float64(r.solved)/float64(max(r.n, 1)), name+"_success%")
			}
		})
	}
}
