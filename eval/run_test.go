package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/endpoint/endpointtest"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/traces"
	"github.com/ponder-rlm/ponder/traces/tracetest"
)

// game24Options runs a small sweep of the game24 dataset into out.
func game24Options(t *testing.T, out string) Options {
	return Options{Out: out, Dataset: loadNamed(t, "game24"), Offset: 900, Limit: 4,
		Strategies: []string{"cot", "self-consistency", "best-of-n"}, Budgets: []int64{4, 8}, Seed: 7}
}

func readAll(t *testing.T, out string) []Record {
	t.Helper()
	recs, bad, err := ReadRecords(filepath.Join(out, ResultsFile))
	if err != nil || len(bad) > 0 {
		t.Fatalf("read results: %v %v", err, bad)
	}
	return recs
}

// rawKeys returns the key of every line of results.jsonl, duplicates
// included.
func rawKeys(t *testing.T, out string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		i := strings.Index(l, `"key":"`)
		j := strings.Index(l[i+7:], `"`)
		keys = append(keys, l[i+7:i+7+j])
	}
	return keys
}

func TestRunRecordsEveryProblemStrategyAndBudget(t *testing.T) {
	t.Parallel()
	eng := simEngine(t, sim.Options{Seed: 1})
	out := t.TempDir()
	o := game24Options(t, out)
	var got []Record
	o.OnRecord = func(r Record) { got = append(got, r) }
	sum, err := Run(context.Background(), eng, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Jobs != 24 || sum.Ran != 24 || sum.Done != 0 || sum.Errors != 0 || sum.Interrupted || len(got) != 24 {
		t.Fatalf("summary %+v, %d records seen; want 24 jobs, all run", sum, len(got))
	}
	recs := readAll(t, out)
	if len(recs) != 24 {
		t.Fatalf("%d records, want 24", len(recs))
	}
	wrongAnswers := 0
	for _, r := range recs {
		if r.Key != RecordKey(r.Item, r.Strategy, r.Budget) || r.TraceID == "" || r.Status == StatusError || r.Usage.LLMCalls < 1 || r.Usage.LLMCalls > r.Budget {
			t.Errorf("record %+v: want a key, a trace, a grade and 1..budget calls", r)
		}
		if (r.Status == StatusCorrect) != (r.Answer != "" && gradeGame24OK(t, r)) {
			t.Errorf("record %s: status %s for answer %q", r.Key, r.Status, r.Answer)
		}
		// The pack's check agrees with the grade, and its rejection of a
		// wrong answer is no warning about the search (the report counts
		// records with warnings as searches that went on past failures).
		if r.Answer != "" && (r.Verified == nil || *r.Verified != (r.Status == StatusCorrect)) {
			t.Errorf("record %s: %s, verified %v", r.Key, r.Status, r.Verified)
		}
		if r.Status == StatusWrong && r.Answer != "" {
			wrongAnswers++
		}
		if len(r.Warnings) > 0 {
			t.Errorf("record %s: warnings %q; the simulator failed nothing", r.Key, r.Warnings)
		}
		// The budget mapping: self-consistency k = budget, best-of-n n = budget/2.
		switch r.Strategy {
		case "self-consistency":
			if r.Params["k"] != fmt.Sprint(r.Budget) || r.Usage.LLMCalls != r.Budget {
				t.Errorf("self-consistency at %d: params %v, %d calls", r.Budget, r.Params, r.Usage.LLMCalls)
			}
		case "best-of-n":
			if r.Params["n"] != fmt.Sprint(r.Budget/2) || r.Usage.LLMCalls != r.Budget {
				t.Errorf("best-of-n at %d: params %v, %d calls", r.Budget, r.Params, r.Usage.LLMCalls)
			}
		case "cot":
			if r.Usage.LLMCalls != 1 || r.Samples != 1 {
				t.Errorf("cot: %d calls, %d samples", r.Usage.LLMCalls, r.Samples)
			}
		}
		path := filepath.Join(out, TracesDir, r.TraceID+".json")
		tr, err := traces.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := tracetest.Validate(t, raw); err != nil {
			t.Errorf("trace %s does not match docs/trace.schema.json: %v", path, err)
		}
		if tr.Meta["eval_item"] != r.Item || tr.Meta["eval_status"] != string(r.Status) || tr.Answer != r.Answer {
			t.Errorf("trace of %s: meta %v answer %q", r.Key, tr.Meta, tr.Answer)
		}
	}
	if wrongAnswers == 0 {
		t.Error("no wrong answer to check verified and warnings on")
	}
	m, err := ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.ConfigHash != o.config().Hash() || m.Config.Seed != 7 || m.Config.Dataset != "game24" || len(m.Budgets) != 2 || m.Rules["self-consistency"] != "k = budget" {
		t.Errorf("manifest %+v", m)
	}
}

func gradeGame24OK(t *testing.T, r Record) bool {
	g, _ := gradeGame24(context.Background(), Item{Problem: problemOf(t, r.Item)}, r.Answer)
	return g.Correct
}

func problemOf(t *testing.T, id string) string {
	for _, it := range loadNamed(t, "game24").Items {
		if it.ID == id {
			return it.Problem
		}
	}
	t.Fatalf("no item %s", id)
	return ""
}

func TestRunResumesAfterCancelWithoutDuplicatesOrLosses(t *testing.T) {
	t.Parallel()
	// Latency keeps searches in flight when the run is cancelled.
	eng := simEngine(t, sim.Options{Seed: 1, Latency: 20 * time.Millisecond})
	out := t.TempDir()
	o := game24Options(t, out)
	o.Concurrency = 3
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	first := map[string]Record{}
	o.OnRecord = func(r Record) {
		mu.Lock()
		defer mu.Unlock()
		first[r.Key] = r
		if len(first) == 7 {
			cancel() // Ctrl-C
		}
	}
	sum, err := Run(ctx, eng, o)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Interrupted || sum.Ran < 7 || sum.Ran >= 24 {
		t.Fatalf("summary %+v; want an interrupted run with 7..23 records", sum)
	}
	keys := rawKeys(t, out)
	if len(keys) != sum.Ran || len(keys) != len(first) {
		t.Fatalf("%d lines on disk, %d reported, %d seen: every finished record is on disk once", len(keys), sum.Ran, len(first))
	}

	// Re-running the same command does the rest and only the rest.
	o2 := game24Options(t, out)
	o2.Concurrency = 3
	sum2, err := Run(context.Background(), eng, o2)
	if err != nil {
		t.Fatal(err)
	}
	if sum2.Done != sum.Ran || sum2.Ran != 24-sum.Ran || sum2.Interrupted || len(sum2.Previous) != sum.Ran {
		t.Fatalf("second run %+v; want %d done and %d run", sum2, sum.Ran, 24-sum.Ran)
	}
	keys = rawKeys(t, out)
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Errorf("key %s appears twice in results.jsonl", k)
		}
		seen[k] = true
	}
	if len(keys) != 24 {
		t.Fatalf("%d lines after resuming, want 24", len(keys))
	}
	for _, r := range readAll(t, out) {
		if f, ok := first[r.Key]; ok && (f.TraceID != r.TraceID || f.Answer != r.Answer) {
			t.Errorf("record %s changed on resume: %+v → %+v", r.Key, f, r)
		}
	}
	// A third run has nothing to do.
	sum3, err := Run(context.Background(), eng, game24Options(t, out))
	if err != nil || sum3.Ran != 0 || sum3.Done != 24 {
		t.Fatalf("third run %+v, %v; want nothing to do", sum3, err)
	}
}

func TestRunExtendsWithMoreStrategiesBudgetsAndProblems(t *testing.T) {
	t.Parallel()
	eng := simEngine(t, sim.Options{Seed: 1})
	out := t.TempDir()
	o := game24Options(t, out)
	o.Strategies, o.Budgets, o.Limit = []string{"cot"}, []int64{4}, 2
	if _, err := Run(context.Background(), eng, o); err != nil {
		t.Fatal(err)
	}
	o = game24Options(t, out)
	o.Strategies, o.Budgets, o.Limit = []string{"cot", "self-consistency"}, []int64{4, 8}, 3
	sum, err := Run(context.Background(), eng, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Done != 2 || sum.Ran != 10 {
		t.Fatalf("extended run %+v; want 2 done, 10 run", sum)
	}
	m, _ := ReadManifest(out)
	if strings.Join(m.Strategies, ",") != "cot,self-consistency" || fmt.Sprint(m.Budgets) != "[4 8]" {
		t.Errorf("manifest strategies %v budgets %v", m.Strategies, m.Budgets)
	}
}

// --param values belong to their strategy: a directory run with
// self-consistency's takes a run of cot alone (the error said "use the
// flags of that run", whose --param was refused without its strategy),
// and a new strategy with its own; self-consistency without its values
// is still refused.
func TestRunParamsBelongToTheirStrategy(t *testing.T) {
	t.Parallel()
	eng := simEngine(t, sim.Options{Seed: 1})
	out := t.TempDir()
	run := func(limit int, strategies []string, params map[string]core.Params) error {
		o := game24Options(t, out)
		o.Limit, o.Strategies, o.Budgets, o.Params = limit, strategies, []int64{4}, params
		_, err := Run(context.Background(), eng, o)
		return err
	}
	sc := map[string]core.Params{"self-consistency": {"temperature": "0.5"}}
	if err := run(1, []string{"cot", "self-consistency"}, sc); err != nil {
		t.Fatal(err)
	}
	if err := run(2, []string{"cot"}, nil); err != nil {
		t.Fatalf("cot alone: %v", err)
	}
	if err := run(1, []string{"best-of-n"}, map[string]core.Params{"best-of-n": {"evaluator": "verifier"}}); err != nil {
		t.Fatalf("a new strategy with its own --param: %v", err)
	}
	m, err := ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Config.Params) != 2 || m.ConfigHash != m.Config.Hash() || !strings.Contains(m.Rules["best-of-n"], "programmatic") {
		t.Errorf("manifest params %v, hash %s (config's %s), rules %v; want both strategies' params", m.Config.Params, m.ConfigHash,
			m.Config.Hash(), m.Rules)
	}
	if err := run(1, []string{"self-consistency"}, nil); !errors.Is(err, ErrConfigMismatch) || !strings.Contains(err.Error(), "self-consistency with params") {
		t.Errorf("self-consistency without its --param: %v; want ErrConfigMismatch naming it", err)
	}
	if err := run(1, []string{"cot"}, map[string]core.Params{"cot": {"temperature": "0.1"}}); !errors.Is(err, ErrConfigMismatch) {
		t.Errorf("cot with a --param it was run without: %v; want ErrConfigMismatch", err)
	}
}

func TestRunRefusesAnotherConfiguration(t *testing.T) {
	t.Parallel()
	eng := simEngine(t, sim.Options{Seed: 1})
	out := t.TempDir()
	o := game24Options(t, out)
	o.Limit, o.Strategies, o.Budgets = 1, []string{"cot"}, []int64{4}
	if _, err := Run(context.Background(), eng, o); err != nil {
		t.Fatal(err)
	}
	before := rawKeys(t, out)
	tests := []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Seed = 8 }, "seed 7, now 8"},
		{func(o *Options) { o.Model = "gpt-x" }, "model"},
		{func(o *Options) { o.Params = map[string]core.Params{"cot": {"temperature": "0.5"}} }, "params"},
		{func(o *Options) { o.Oracle = true }, "oracle"},
		{func(o *Options) { o.Tools = []string{"calc"} }, "tools"},
		{func(o *Options) { o.Dataset = loadNamed(t, "gsm8k") }, "dataset"},
		{func(o *Options) { o.Timeout = time.Minute }, "timeout"},
	}
	for _, tc := range tests {
		o := game24Options(t, out)
		o.Limit, o.Strategies, o.Budgets = 1, []string{"cot"}, []int64{4}
		tc.change(&o)
		_, err := Run(context.Background(), eng, o)
		if !errors.Is(err, ErrConfigMismatch) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "new --out") {
			t.Errorf("changed %s: %v; want ErrConfigMismatch naming %q", tc.want, err, tc.want)
		}
	}
	if after := rawKeys(t, out); len(after) != len(before) {
		t.Errorf("refused runs wrote records: %d lines, had %d", len(after), len(before))
	}
	// A results file without a manifest is not ours to append to.
	stray := t.TempDir()
	if err := os.WriteFile(filepath.Join(stray, ResultsFile), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.Out = stray
	if _, err := Run(context.Background(), eng, o); !errors.Is(err, ErrConfigMismatch) {
		t.Errorf("results without a manifest: %v, want ErrConfigMismatch", err)
	}
}

// A run directory written before the grading rules had a version
// (testdata/run-before-grading-v2: a Ponder that graded a search that lost
// most of its LLM calls) is not resumed with today's rules: its records
// would be mixed with records graded otherwise in one report. The error
// says why and what to do, and the directory is left as it was.
func TestRunRefusesRecordsGradedByOtherRules(t *testing.T) {
	t.Parallel()
	eng := simEngine(t, sim.Options{Seed: 1})
	out := t.TempDir()
	for _, f := range []string{ManifestFile, ResultsFile} {
		b, err := os.ReadFile(filepath.Join("testdata", "run-before-grading-v2", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before, err := os.ReadFile(filepath.Join(out, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	// The flags of that run, which nothing else tells apart from today's.
	o := game24Options(t, out)
	o.Limit, o.Strategies, o.Budgets = 2, []string{"cot"}, []int64{4}
	_, err = Run(context.Background(), eng, o)
	if !errors.Is(err, ErrConfigMismatch) || !strings.Contains(err.Error(), `(grading unset, now "v2")`) ||
		!strings.Contains(err.Error(), "v0.15.0") || !strings.Contains(err.Error(), "use a new --out") {
		t.Fatalf("resuming a run graded before %s: %v; want ErrConfigMismatch naming the grading rules alone", GradingVersion, err)
	}
	after, err := os.ReadFile(filepath.Join(out, ResultsFile))
	if err != nil || string(after) != string(before) {
		t.Errorf("the refused run changed results.jsonl (%v)", err)
	}
	m, err := ReadManifest(out)
	if err != nil || m.Config.Grading != "" || m.Config.BudgetMapping != BudgetMappingVersion {
		t.Errorf("the refused run changed the manifest: %+v, %v", m, err)
	}
	// The same run into a new directory records the version, and resumes.
	o.Out = t.TempDir()
	if _, err := Run(context.Background(), eng, o); err != nil {
		t.Fatal(err)
	}
	if m, err := ReadManifest(o.Out); err != nil || m.Config.Grading != GradingVersion {
		t.Fatalf("manifest of a new run: %+v, %v; want grading %s", m, err, GradingVersion)
	}
	if sum, err := Run(context.Background(), eng, o); err != nil || sum.Done != 2 || sum.Ran != 0 {
		t.Errorf("resuming a run of today's rules: %+v, %v; want its 2 records reused", sum, err)
	}
}

func TestFailingLLMIsAnErrorNotAWrongAnswer(t *testing.T) {
	t.Parallel()
	eng := newEngine(t, simtest.Start(t, sim.Options{Seed: 1, Rate500: 1}))
	out := t.TempDir()
	o := game24Options(t, out)
	o.Limit, o.Budgets = 2, []int64{4}
	sum, err := Run(context.Background(), eng, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 6 || sum.Ran != 6 {
		t.Fatalf("summary %+v; want 6 errors", sum)
	}
	for _, r := range readAll(t, out) {
		if r.Status != StatusError || r.Error == "" || r.Stopped != core.StopError {
			t.Errorf("record %s: status %s, error %q, stopped %s; want an error", r.Key, r.Status, r.Error, r.Stopped)
		}
	}
	// --retry-errors runs them again (against a working LLM now); the
	// new records replace the errors.
	eng = simEngine(t, sim.Options{Seed: 1})
	o = game24Options(t, out)
	o.Limit, o.Budgets, o.RetryErrors = 2, []int64{4}, true
	sum, err = Run(context.Background(), eng, o)
	if err != nil || sum.Ran != 6 || sum.Errors != 0 {
		t.Fatalf("retry: %+v, %v", sum, err)
	}
	for _, r := range readAll(t, out) {
		if r.Status == StatusError {
			t.Errorf("record %s still an error after the retry", r.Key)
		}
	}
	if n := len(rawKeys(t, out)); n != 12 {
		t.Errorf("%d lines, want 12 (6 errors, 6 replacements)", n)
	}
}

func TestRunRejectsBadInputBeforeAnyCall(t *testing.T) {
	t.Parallel()
	srv, url := simtest.StartServer(t, sim.Options{Seed: 1})
	eng := newEngine(t, url)
	tests := []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Strategies = []string{"telepathy"} }, `strategy "telepathy"`},
		{func(o *Options) { o.Params = map[string]core.Params{"self-consistency": {"k": "0"}} }, `"k"`},
		{func(o *Options) { o.Params = map[string]core.Params{"mcts": {"c1": "1"}} }, "not in --strategies"},
		{func(o *Options) { o.Budgets = []int64{0} }, "at least 1"},
		{func(o *Options) { o.Budgets = nil }, "--budget-calls"},
		{func(o *Options) { o.Strategies = []string{"cot", "cot"} }, "twice"},
		{func(o *Options) { o.Offset = 5000 }, "no problems selected"},
		{func(o *Options) { o.Out = "" }, "--out"},
	}
	for _, tc := range tests {
		out := filepath.Join(t.TempDir(), "run")
		o := game24Options(t, out)
		tc.change(&o)
		if _, err := Run(context.Background(), eng, o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.want, err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: the run directory was created", tc.want)
		}
	}
	if n := srv.Stats().Requests; n != 0 {
		t.Errorf("%d LLM requests for rejected runs, want 0", n)
	}
	// HumanEval without a sandbox is refused up front.
	o := Options{Out: t.TempDir(), Dataset: loadNamed(t, "humaneval"), Strategies: []string{"cot"}, Budgets: []int64{1}, Limit: 1}
	if _, err := Run(context.Background(), eng, o); !errors.Is(err, ErrNoSandbox) {
		t.Errorf("humaneval without a sandbox: %v, want ErrNoSandbox", err)
	}
}

func TestResultsCutOffAPartialLastLine(t *testing.T) {
	t.Parallel()
	eng := simEngine(t, sim.Options{Seed: 1})
	out := t.TempDir()
	o := game24Options(t, out)
	o.Limit, o.Strategies, o.Budgets = 2, []string{"cot"}, []int64{4}
	if _, err := Run(context.Background(), eng, o); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of a write leaves half a line.
	path := filepath.Join(out, ResultsFile)
	b, _ := os.ReadFile(path)
	lines := strings.SplitAfter(strings.TrimSpace(string(b)), "\n")
	half := lines[0] + lines[1][:len(lines[1])/2]
	if err := os.WriteFile(path, []byte(half), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), eng, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Done != 1 || sum.Ran != 1 {
		t.Fatalf("summary %+v; want the cut record run again", sum)
	}
	if _, bad, err := ReadRecords(path); err != nil || len(bad) != 0 || len(readAll(t, out)) != 2 {
		t.Fatalf("after the repair: %v, bad lines %v", err, bad)
	}
}

func TestRunLocksItsDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDir(dir); err == nil || !strings.Contains(err.Error(), "another ponder eval") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock2, err := lockDir(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestOracleOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	it := Item{Problem: "p", Pack: "math", Truth: `\frac12`}
	o := Options{}
	if tk := o.task(it, "cot", 4); tk.Truth != "" || tk.Limits.LLMCalls != 4 {
		t.Errorf("task %+v: the search must not see the truth", tk)
	}
	o.Oracle = true
	if tk := o.task(it, "cot", 4); tk.Truth != it.Truth {
		t.Errorf("oracle task %+v: want the truth", tk)
	}
	he := Item{Problem: "def f():", Pack: "humaneval", Extra: map[string]string{"test": "def check(c): pass"}}
	if tk := o.task(he, "cot", 4); tk.Truth != "def check(c): pass" {
		t.Errorf("oracle humaneval task %+v: want the tests as truth", tk)
	}
}

func TestBudgetParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		strategy string
		budget   int64
		user     core.Params
		want     core.Params
	}{
		{"cot", 10, nil, core.Params{}},
		{"self-consistency", 10, nil, core.Params{"k": "10"}},
		{"best-of-n", 10, nil, core.Params{"n": "5"}},
		{"best-of-n", 1, nil, core.Params{"n": "1"}},
		{"best-of-n", 10, core.Params{"evaluator": "verifier"}, core.Params{"n": "10", "evaluator": "verifier"}},
		{"self-consistency", 10, core.Params{"k": "3"}, core.Params{"k": "3"}},
		{"mcts", 40, nil, core.Params{}},
		{"tot-bfs", 40, core.Params{"breadth": "3"}, core.Params{"breadth": "3"}},
	}
	for _, tc := range tests {
		got, rule := BudgetParams(tc.strategy, tc.budget, tc.user)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || rule == "" {
			t.Errorf("BudgetParams(%s, %d, %v) = %v (%q), want %v", tc.strategy, tc.budget, tc.user, got, rule, tc.want)
		}
	}
}

func ExampleBudgetParams() {
	for _, s := range []string{"cot", "self-consistency", "best-of-n", "mcts"} {
		p, rule := BudgetParams(s, 20, nil)
		fmt.Printf("%s: %v (%s)\n", s, p, rule)
	}
	// Output:
	// cot: map[] (one call)
	// self-consistency: map[k:20] (k = budget)
	// best-of-n: map[n:10] (n = budget/2 (one judge call per sample))
	// mcts: map[] (defaults, capped at the budget)
}

func TestRunGradesEachDistinctAnswerOnce(t *testing.T) {
	t.Parallel()
	eng := simEngine(t, sim.Options{Seed: 3})
	o := game24Options(t, t.TempDir())
	o.Concurrency = 1 // a record's grading ends before the next job starts
	graded := map[string]int{}
	o.Grader = GraderFunc(func(ctx context.Context, it Item, answer string) (Grade, error) {
		graded[answer]++
		return gradeGame24(ctx, it, answer)
	})
	o.OnRecord = func(r Record) {
		for a, n := range graded {
			if n > 1 {
				t.Errorf("record %s: answer %q graded %d times", r.Key, a, n)
			}
		}
		if r.Samples > 0 && len(graded) == 0 {
			t.Errorf("record %s: %d samples but nothing graded", r.Key, r.Samples)
		}
		clear(graded)
	}
	if _, err := Run(context.Background(), eng, o); err != nil {
		t.Fatal(err)
	}
}

// A search whose LLM calls all failed is an error, not a wrong answer:
// searches whose parallel calls hold budget while they wait (MCTS, beam,
// self-consistency with k above the budget) can meet a budget that the
// failures then give back, and used to end "budget" with no answer and no
// call spent, graded wrong. The engine reports the LLM's failure for them.
func TestLLMDownIsAnErrorForEveryStrategy(t *testing.T) {
	t.Parallel()
	eng := newEngine(t, simtest.Start(t, sim.Options{Seed: 1, Rate500: 1}))
	out := t.TempDir()
	o := game24Options(t, out)
	o.Limit, o.Budgets = 2, []int64{5}
	o.Strategies = []string{"mcts", "beam", "tot-bfs", "tot-dfs", "got", "refine", "decompose", "self-consistency"}
	o.Params = map[string]core.Params{"self-consistency": {"k": "8"}}
	sum, err := Run(context.Background(), eng, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range readAll(t, out) {
		if r.Status != StatusError || !strings.Contains(r.Error, "500") {
			t.Errorf("record %s: status %s, stopped %s, error %q, %d calls; want an error naming the LLM failure",
				r.Key, r.Status, r.Stopped, r.Error, r.Usage.LLMCalls)
		}
	}
	if sum.Errors != sum.Ran || sum.Ran != 16 {
		t.Errorf("summary %+v; want 16 errors", sum)
	}
}

// A line that is JSON but no record ({}, a hand-edited status) is reported
// as a bad line, not counted as an error of strategy "" at budget 0.
func TestReadRecordsRefusesObjectsThatAreNotRecords(t *testing.T) {
	t.Parallel()
	good := `{"key":"a|cot|4","item":"a","strategy":"cot","budget":4,"status":"wrong"}`
	in := strings.Join([]string{`{}`, good, `{"item":"b","strategy":"cot","budget":4,"status":"Correct"}`,
		`{"item":"c","strategy":"cot","status":"correct"}`, `{"item":"d","budget":4,"status":"error"}`, `[1]`}, "\n")
	recs, bad, err := readRecords(strings.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Item != "a" {
		t.Errorf("records %+v, want only item a", recs)
	}
	var lines []int
	for _, b := range bad {
		lines = append(lines, b.Line)
	}
	if fmt.Sprint(lines) != "[1 3 4 5 6]" {
		t.Errorf("bad lines %v, want [1 3 4 5 6]: %v", lines, bad)
	}
}

// A manifest that cannot be written (here: manifest.json is a directory,
// as a full disk fails the write) leaves no manifest.json.tmp behind.
func TestWriteManifestFailureLeavesNoTemporaryFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ManifestFile, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeManifest(dir, &Manifest{Schema: ManifestSchema}); err == nil || !strings.Contains(err.Error(), "write manifest") {
		t.Errorf("err %v, want write manifest: ...", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ManifestFile+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("manifest.json.tmp left behind: %v", err)
	}
}

// Strategies that call tools run in an eval given --tools: react on GSM8K
// with calc answers (graded); without tools the eval is refused before any
// search, saying to pass --tools (every record was an error, "the task
// allows no tools").
func TestToolStrategiesRunWithTools(t *testing.T) {
	t.Parallel()
	eng := simEngine(t, sim.Options{Seed: 1})
	o := Options{Out: t.TempDir(), Dataset: loadNamed(t, "gsm8k"), Limit: 3, Strategies: []string{"react"}, Budgets: []int64{8}, Seed: 1}
	if _, err := Run(context.Background(), eng, o); err == nil || !strings.Contains(err.Error(), "react needs tools: pass --tools") {
		t.Fatalf("react without tools: %v", err)
	}
	o.Out, o.Tools = t.TempDir(), []string{"calc"}
	if _, err := Run(context.Background(), eng, o); err != nil {
		t.Fatal(err)
	}
	errs := 0
	for _, r := range readAll(t, o.Out) {
		if r.Status == StatusError {
			errs++
		}
	}
	if errs != 0 {
		t.Errorf("with tools: %d of 3 records are errors", errs)
	}
}

// A self-consistency run that lost most of its samples to LLM errors
// still returns a majority answer; eval records it as an error (which
// --retry-errors runs again), not as a graded answer. A run that lost a
// few is graded, and its record says how many calls failed.
func TestMostSamplesLostIsAnError(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rate      float64
		wantError bool
	}{{0.8, true}, {0.25, false}} {
		t.Run(fmt.Sprint(tt.rate), func(t *testing.T) {
			t.Parallel()
			eng := newEngine(t, simtest.Start(t, sim.Options{Seed: 3, Rate500: tt.rate}))
			out := t.TempDir()
			o := game24Options(t, out)
			// One problem at a time: each search gets the simulator's
			// next 16 requests, so which ones fail is fixed.
			o.Limit, o.Budgets, o.Concurrency = 3, []int64{16}, 1
			o.Strategies = []string{"self-consistency"}
			if _, err := Run(context.Background(), eng, o); err != nil {
				t.Fatal(err)
			}
			lost, errs := 0, 0
			for _, r := range readAll(t, out) {
				if r.Status == StatusError {
					errs++
				}
				if r.LLMErrors == 0 || r.LLMErrors == 16 {
					continue // nothing lost, or nothing came back (the LLM-down tests)
				}
				lost++
				mostLost := r.LLMErrors > 16-r.LLMErrors
				if mostLost != tt.wantError {
					t.Fatalf("record %s: %d of 16 calls failed; the simulator's draws changed, pick another seed", r.Key, r.LLMErrors)
				}
				switch {
				case mostLost && (r.Status != StatusError || !strings.Contains(r.Error, "failed most of the search's calls") || !strings.Contains(r.Error, "500")):
					t.Errorf("record %s: %d of 16 calls failed, status %s, error %q; want an error saying so", r.Key, r.LLMErrors, r.Status, r.Error)
				case !mostLost && (r.Status == StatusError || r.Answer == ""):
					t.Errorf("record %s: %d of 16 calls failed, status %s, error %q; want a graded answer", r.Key, r.LLMErrors, r.Status, r.Error)
				}
				// The search's warning says so, in the record that keeps it.
				if !mostLost && (len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "LLM request")) {
					t.Errorf("record %s: %d of 16 calls failed, warnings %q; want the search's warning about them", r.Key, r.LLMErrors, r.Warnings)
				}
			}
			if lost == 0 {
				t.Fatal("no record lost some of its calls; the test tests nothing")
			}
			if !tt.wantError {
				return
			}
			// Against a working LLM, --retry-errors grades them.
			o.RetryErrors = true
			if sum, err := Run(context.Background(), simEngine(t, sim.Options{Seed: 1}), o); err != nil || sum.Errors != 0 || sum.Ran != errs {
				t.Fatalf("retry: %+v, %v; want %d runs, no errors", sum, err, errs)
			}
			for _, r := range readAll(t, out) {
				if r.Status == StatusError || r.LLMErrors != 0 {
					t.Errorf("record %s after the retry: status %s, %d LLM errors", r.Key, r.Status, r.LLMErrors)
				}
			}
		})
	}
}

// An LLM endpoint that cannot be reached (stopped, a wrong port) fails
// every search, each after the client's retries: the run stops after
// DownAfter of them in a row instead of writing an error record for every
// problem left, and says how to go on; --retry-errors then finishes it.
func TestRunStopsWhenTheLLMCannotBeReached(t *testing.T) {
	t.Parallel()
	url := "http://" + endpointtest.ClosedPort(t) + "/v1" // connection refused
	out := t.TempDir()
	o := game24Options(t, out)
	o.Limit, o.Budgets, o.Strategies, o.Concurrency = 12, []int64{2}, []string{"cot", "self-consistency"}, 2
	sum, err := Run(context.Background(), newEngine(t, url), o)
	if !errors.Is(err, ErrLLMDown) || !strings.Contains(err.Error(), "--retry-errors") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err %v; want ErrLLMDown saying what to do", err)
	}
	if sum.Ran < o.DownAfter() || sum.Ran >= 24 {
		t.Fatalf("summary %+v; want the run stopped after %d errors", sum, o.DownAfter())
	}
	if n := len(rawKeys(t, out)); n != sum.Ran {
		t.Fatalf("%d lines, %d reported", n, sum.Ran)
	}
	o = game24Options(t, out)
	o.Limit, o.Budgets, o.Strategies, o.Concurrency, o.RetryErrors = 12, []int64{2}, []string{"cot", "self-consistency"}, 2, true
	sum, err = Run(context.Background(), simEngine(t, sim.Options{Seed: 1}), o)
	if err != nil || sum.Errors != 0 || sum.Done+sum.Ran != 24 {
		t.Fatalf("retry: %+v, %v", sum, err)
	}
	for _, r := range readAll(t, out) {
		if r.Status == StatusError {
			t.Errorf("record %s still an error", r.Key)
		}
	}
}

// A write that the disk cut short (ENOSPC, here the file size limit)
// leaves no partial line: the next record, once there is room, starts a
// line of its own instead of being lost inside the cut one.
func TestResultsWriteCutShortLeavesNoPartialLine(t *testing.T) {
	path := os.Getenv("PONDER_TEST_RESULTS_FSIZE")
	if path == "" {
		t.Parallel()
		path = filepath.Join(t.TempDir(), ResultsFile)
		cmd := exec.Command(os.Args[0], "-test.run=^TestResultsWriteCutShortLeavesNoPartialLine$")
		cmd.Env = append(os.Environ(), "PONDER_TEST_RESULTS_FSIZE="+path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		recs, bad, err := ReadRecords(path)
		if err != nil || len(bad) > 0 || len(recs) < 2 || recs[len(recs)-1].Item != "after" {
			t.Fatalf("%d records, bad lines %v, %v; want every appended record and no bad line", len(recs), bad, err)
		}
		return
	}
	// The child: writes past 2000 bytes fail part way.
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	old := lim.Cur
	lim.Cur = 2000
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Skip(err)
	}
	l, _, _, err := openResults(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rec := Record{Item: "x", Strategy: "cot", Budget: 1, Status: StatusWrong, Answer: strings.Repeat("a", 150)}
	for i := 0; ; i++ {
		rec.Key = RecordKey(fmt.Sprint(i), "cot", 1)
		rec.Item = fmt.Sprint(i)
		err := l.Append(rec)
		if err == nil {
			continue
		}
		if !strings.Contains(err.Error(), "run the same command again") {
			t.Errorf("error %v does not say what to do", err)
		}
		break
	}
	lim.Cur = old
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	rec.Key, rec.Item = RecordKey("after", "cot", 1), "after"
	if err := l.Append(rec); err != nil {
		t.Fatal(err)
	}
}

// A trace the disk has no room for stops the run, and its search is not
// recorded: a record without its trace counted as done, so the rerun
// after making room never ran it again and export never saw it.
func TestTraceWithoutRoomStopsTheRunUnrecorded(t *testing.T) {
	out := os.Getenv("PONDER_TEST_TRACE_FSIZE")
	if out == "" {
		t.Parallel()
		out = t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestTraceWithoutRoomStopsTheRunUnrecorded$")
		cmd.Env = append(os.Environ(), "PONDER_TEST_TRACE_FSIZE="+out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		for _, r := range readAll(t, out) {
			if _, err := os.Stat(filepath.Join(out, TracesDir, r.TraceID+".json")); r.TraceID == "" || err != nil {
				t.Errorf("record %s names trace %q (%v): a search was recorded without its trace", r.Key, r.TraceID, err)
			}
		}
		// With room again, the same command does the rest, traces and all.
		sum, err := Run(context.Background(), simEngine(t, sim.Options{Seed: 1}), game24Options(t, out))
		if err != nil || sum.Done+sum.Ran != 24 {
			t.Fatalf("rerun: %+v, %v", sum, err)
		}
		for _, r := range readAll(t, out) {
			if r.TraceID == "" {
				t.Errorf("record %s has no trace after the rerun", r.Key)
			}
		}
		return
	}
	// The child: files cannot grow past 3000 bytes (EFBIG, as ENOSPC on a
	// full disk), which the results file's first lines fit and traces do not.
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = 3000
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Skip(err)
	}
	_, err := Run(context.Background(), simEngine(t, sim.Options{Seed: 1}), game24Options(t, out))
	if err == nil || !strings.Contains(err.Error(), "save the trace") || !strings.Contains(err.Error(), "run the same command again") {
		t.Errorf("Run = %v; want the trace's write error saying how to go on", err)
	}
}

// With NoTraces no record names a trace file, for there is none: export
// says the run kept no traces instead of failing to open each one.
func TestNoTracesNamesNoTraceFile(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	o := game24Options(t, out)
	o.Limit, o.Budgets, o.Strategies, o.NoTraces = 2, []int64{2}, []string{"cot"}, true
	if _, err := Run(context.Background(), simEngine(t, sim.Options{Seed: 1}), o); err != nil {
		t.Fatal(err)
	}
	for _, r := range readAll(t, out) {
		if r.TraceID != "" {
			t.Errorf("record %s names trace %s, which --no-traces did not keep", r.Key, r.TraceID)
		}
	}
	if files, _ := os.ReadDir(filepath.Join(out, TracesDir)); len(files) != 0 {
		t.Errorf("%d trace files with --no-traces", len(files))
	}
}

// TestResumeRemovesTracesNoRecordNames builds on disk what a run killed
// between saving a trace and appending its record leaves (the trace, no
// line naming it; a temporary file of a trace write cut short) and checks
// that the rerun removes them, so each search has one trace, and keeps the
// trace of a record --retry-errors replaced.
func TestResumeRemovesTracesNoRecordNames(t *testing.T) {
	t.Parallel()
	eng := simEngine(t, sim.Options{Seed: 1})
	out := t.TempDir()
	o := game24Options(t, out)
	o.Limit, o.Budgets, o.Strategies = 3, []int64{2}, []string{"cot"}
	if _, err := Run(context.Background(), eng, o); err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(out, ResultsFile)
	b, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d records, want 3", len(lines))
	}
	var lost, first Record
	if err := json.Unmarshal([]byte(lines[2]), &lost); err != nil || lost.TraceID == "" {
		t.Fatalf("last record %v has no trace: %s", err, lines[2])
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	// The killed run: the last record never reached the file, its trace
	// did. An earlier error record of the first key names a trace of its
	// own (--retry-errors replaced it).
	replaced := first
	replaced.Status, replaced.Error, replaced.Answer, replaced.TraceID = StatusError, "llm call: 500", "", "replaced-trace"
	rb, err := json.Marshal(replaced)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(results, []byte(string(rb)+"\n"+lines[0]+"\n"+lines[1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tdir := filepath.Join(out, TracesDir)
	for _, name := range []string{"replaced-trace.json", ".trace-4242"} {
		if err := os.WriteFile(filepath.Join(tdir, name), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	sum, err := Run(context.Background(), eng, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Ran != 1 || sum.RemovedTraces != 2 {
		t.Errorf("rerun ran %d searches and removed %d files, want 1 and 2 (the lost record's trace, .trace-4242)", sum.Ran, sum.RemovedTraces)
	}
	recs := readAll(t, out)
	named := map[string]bool{"replaced-trace": true}
	for _, r := range recs {
		named[r.TraceID] = true
	}
	if named[lost.TraceID] {
		t.Fatalf("the rerun's trace has the lost one's id %s: the test cannot tell them apart", lost.TraceID)
	}
	entries, err := os.ReadDir(tdir)
	if err != nil {
		t.Fatal(err)
	}
	perItem := map[string]int{}
	for _, e := range entries {
		id, _ := strings.CutSuffix(e.Name(), ".json")
		if !named[id] {
			t.Errorf("traces/%s: no record names it", e.Name())
			continue
		}
		if id == "replaced-trace" {
			continue
		}
		tr, err := traces.ReadFile(filepath.Join(tdir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		perItem[fmt.Sprint(tr.Meta["eval_item"])]++
	}
	if len(entries) != 4 || perItem[lost.Item] != 1 {
		t.Errorf("%d trace files (want 3 searches and the replaced one), %d of problem %s (want 1)", len(entries), perItem[lost.Item], lost.Item)
	}
}
