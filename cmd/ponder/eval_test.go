package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ponder-rlm/ponder/eval"
	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/standard"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/tools/toolstest"
)

// evalEnv points the binary at a simulator and the benchmark data.
func evalEnv(t *testing.T, opts sim.Options) []string {
	t.Helper()
	data, err := tasks.FindDataDir()
	if err != nil {
		t.Skip(err)
	}
	return []string{"PONDER_LLM_BASE_URL=" + simtest.Start(t, opts), "PONDER_DATA_SETS=" + data, "PONDER_LLM_MAX_RETRIES=0"}
}

// registered keeps the strategies of names that are registered (search
// strategies land from another package).
func registered(names ...string) []string {
	reg := standard.Registry()
	var out []string
	for _, n := range names {
		if _, err := reg.Strategy(n); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func resultLines(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, eval.ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestEvalReportExportOnGame24 is the "done when" at a small
// size: a sweep of budgets over the strategies there are, then the
// report with its table and plots, then training data.
func TestEvalReportExportOnGame24(t *testing.T) {
	t.Parallel()
	env := evalEnv(t, sim.Options{Seed: 1})
	out := filepath.Join(t.TempDir(), "g24")
	strategies := strings.Join(registered("cot", "self-consistency", "best-of-n", "tot-bfs", "mcts"), ",")
	args := []string{"eval", "--dataset", "game24", "--strategies", strategies, "--budget-calls", "4,8",
		"--limit", "3", "--offset", "900", "--out", out}
	r := runPonder(t, "", env, args...)
	if r.code != 0 {
		t.Fatalf("eval: exit %d\n%s", r.code, r.stderr)
	}
	n := strings.Count(strategies, ",") + 1
	if lines := resultLines(t, out); len(lines) != 3*n*2 {
		t.Fatalf("%d records, want %d", len(lines), 3*n*2)
	}
	for _, s := range strings.Split(strategies, ",") {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("summary table lacks %s:\n%s", s, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "ACCURACY") || !strings.Contains(r.stderr, "runs done") {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	// Not a terminal: no progress bar drawn.
	if strings.Contains(r.stderr, "█") || strings.Contains(r.stderr, "acc ") {
		t.Errorf("progress bar drawn on a pipe:\n%s", r.stderr)
	}

	// The same command again has nothing to do.
	again := runPonder(t, "", env, args...)
	if again.code != 0 || !strings.Contains(again.stderr, "(0 this time") {
		t.Fatalf("re-run: exit %d\n%s", again.code, again.stderr)
	}
	if lines := resultLines(t, out); len(lines) != 3*n*2 {
		t.Fatalf("re-run added records: %d", len(lines))
	}

	// Another configuration is refused.
	bad := runPonder(t, "", env, append(args, "--seed", "9")...)
	if bad.code != 2 || !strings.Contains(bad.stderr, "seed 0, now 9") || strings.Count(strings.TrimSpace(bad.stderr), "\n") > 0 {
		t.Fatalf("other seed: exit %d\n%s", bad.code, bad.stderr)
	}

	rep := runPonder(t, "", nil, "eval", "report", out)
	if rep.code != 0 {
		t.Fatalf("report: exit %d\n%s", rep.code, rep.stderr)
	}
	for _, f := range []string{"report.md", "accuracy_vs_calls.png", "accuracy_vs_calls.svg", "accuracy_vs_tokens.png", "accuracy_vs_tokens.svg"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("report did not write %s: %v", f, err)
		}
	}
	if !strings.Contains(rep.stdout, "| Strategy | Budget (calls) |") || !strings.Contains(rep.stdout, "| cot | 4 | 3 |") {
		t.Errorf("report table:\n%s", rep.stdout)
	}

	for _, format := range []string{"sft", "prm", "value", "dpo"} {
		file := filepath.Join(t.TempDir(), format+".jsonl")
		ex := runPonder(t, "", nil, "export", "--from", out, "--format", format, "--out", file)
		if ex.code != 0 {
			t.Fatalf("export %s: exit %d\n%s", format, ex.code, ex.stderr)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		lines := 0
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("export %s: line %d is not JSON: %v", format, lines+1, err)
			}
			if m["trace_id"] == "" || m["problem"] == "" {
				t.Fatalf("export %s: line %v lacks trace_id or problem", format, m)
			}
			lines++
		}
		if lines == 0 && format != "dpo" {
			t.Errorf("export %s wrote nothing:\n%s", format, ex.stderr)
		}
	}
}

func TestEvalInterruptKeepsWhatFinished(t *testing.T) {
	t.Parallel()
	env := evalEnv(t, sim.Options{Seed: 2, Latency: 30 * time.Millisecond})
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"eval", "--dataset", "game24", "--strategies", "cot,self-consistency", "--budget-calls", "2,4",
		"--limit", "6", "--concurrency", "2", "--out", out}
	cmd := exec.Command(ponderBin, args...)
	cmd.Env = append(append(cleanEnv(), "PONDER_DATA_DIR="+t.TempDir(), "PONDER_LOG_LEVEL=warn"), env...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	results := filepath.Join(out, eval.ResultsFile)
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(results)
		if bytes.Count(b, []byte("\n")) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no records after 20s; stderr: %s", errb.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 || !strings.Contains(errb.String(), "run the same command again") {
		t.Fatalf("interrupt: %v\n%s", err, errb.String())
	}
	kept := resultLines(t, out)
	if len(kept) >= 24 {
		t.Fatalf("the run finished before the interrupt (%d records)", len(kept))
	}
	r := runPonder(t, "", env, args...)
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	lines := resultLines(t, out)
	if len(lines) != 24 {
		t.Fatalf("%d records after resuming, want 24", len(lines))
	}
	seen := map[string]bool{}
	for i, l := range lines {
		var rec eval.Record
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if seen[rec.Key] {
			t.Errorf("duplicate record %s", rec.Key)
		}
		seen[rec.Key] = true
		if i < len(kept) && l != kept[i] {
			t.Errorf("record %d changed on resume", i+1)
		}
	}
}

func TestEvalBadInputSaysWhatToChange(t *testing.T) {
	t.Parallel()
	env := evalEnv(t, sim.Options{Seed: 1})
	dir := t.TempDir()
	badFile := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(badFile, []byte("{not json\n{\"question\": \"q\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := func() string { return filepath.Join(t.TempDir(), "run") }
	corrupt := filepath.Join(dir, "corrupt")
	if err := os.MkdirAll(corrupt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corrupt, eval.ManifestFile), []byte("{bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk")
	if err := os.MkdirAll(junk, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(junk, eval.ResultsFile), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.jsonl")
	if err := os.WriteFile(good, []byte("{\"question\": \"What is 6 times 7?\", \"answer\": \"42\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Another eval writes to this --out: the test holds its lock.
	locked := filepath.Join(dir, "locked")
	if err := os.MkdirAll(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(locked, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() }) // after the parallel subtests
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	trace, err := filepath.Abs(filepath.Join("..", "..", "eval", "export", "testdata", "traces", "mcts-game24.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"--out in use", []string{"eval", "--dataset", good, "--strategies", "cot", "--out", locked}, 2, "another ponder eval is writing to " + locked},
		{"unknown pack", []string{"eval", "--dataset", good, "--pack", "gsm9k", "--strategies", "cot", "--out", out()}, 2,
			`--pack "gsm9k": unknown task pack (known: game24, generic, gsm8k, humaneval, math)`},
		{"no dataset", []string{"eval", "--strategies", "cot", "--out", out()}, 2, "--dataset is required"},
		{"no strategies", []string{"eval", "--dataset", "game24", "--out", out()}, 2, "--strategies is required"},
		{"no out", []string{"eval", "--dataset", "game24", "--strategies", "cot"}, 2, "--out is required"},
		{"unknown dataset", []string{"eval", "--dataset", "gsm9k", "--strategies", "cot", "--out", out()}, 2, "not a named dataset"},
		{"bad budget", []string{"eval", "--dataset", "game24", "--strategies", "cot", "--budget-calls", "ten", "--out", out()}, 2, "--budget-calls"},
		{"zero budget", []string{"eval", "--dataset", "game24", "--strategies", "cot", "--budget-calls", "0", "--out", out()}, 2, "--budget-calls"},
		{"bad param", []string{"eval", "--dataset", "game24", "--strategies", "cot", "--param", "k=3", "--out", out()}, 2, "strategy.name=value"},
		{"param of another strategy", []string{"eval", "--dataset", "game24", "--strategies", "cot", "--param", "mcts.c1=1", "--out", out()}, 2, "not in --strategies"},
		{"unknown strategy", []string{"eval", "--dataset", "game24", "--strategies", "cot,telepathy", "--out", out()}, 2, `strategy "telepathy"`},
		{"bad parameter value", []string{"eval", "--dataset", "game24", "--strategies", "self-consistency", "--param", "self-consistency.temperature=9", "--limit", "1", "--out", out()}, 2, `"temperature"`},
		{"field on a named dataset", []string{"eval", "--dataset", "game24", "--strategies", "cot", "--field", "problem=q", "--out", out()}, 2, "--field"},
		{"strategy twice", []string{"eval", "--dataset", "game24", "--strategies", "cot,cot", "--out", out()}, 2, "listed twice"},
		{"budget twice", []string{"eval", "--dataset", "game24", "--strategies", "cot", "--budget-calls", "4,4", "--limit", "1", "--out", out()}, 2,
			"budget 4 is listed twice"},
		{"empty strategy name", []string{"eval", "--dataset", "game24", "--strategies", "cot,,telepathy", "--out", out()}, 2, `strategy "telepathy"`},
		{"offset past the end", []string{"eval", "--dataset", "game24", "--strategies", "cot", "--offset", "100000", "--out", out()}, 2, "no problems selected"},
		{"unreadable manifest", []string{"eval", "--dataset", "game24", "--strategies", "cot", "--limit", "1", "--out", corrupt}, 2, "use a new --out"},
		{"no usable lines", []string{"eval", "--dataset", badFile, "--strategies", "cot", "--out", out()}, 2, "no usable problems"},
		{"report of nothing", []string{"eval", "report", dir}, 2, "has no results.jsonl"},
		{"report without a directory", []string{"eval", "report"}, 2, "accepts 1 arg(s), received 0"},
		{"eval with an argument", []string{"eval", "--dataset", "game24", "--strategies", "cot", "--out", out(), "runs/x"}, 2, "unknown command"},
		{"report of no records", []string{"eval", "report", junk}, 2, "no line of its results.jsonl is one (1 bad, first line 1: not a record: no item)"},
		{"export without format", []string{"export", "--from", dir}, 2, "--format"},
		{"export of nothing", []string{"export", "--from", dir, "--format", "sft"}, 2, "no results.jsonl"},
		{"export into a missing directory", []string{"export", "--from", trace, "--format", "sft", "--out", "nodir/x.jsonl"}, 2,
			"--out nodir/x.jsonl: directory nodir does not exist"},
		{"export into a file's directory", []string{"export", "--from", trace, "--format", "sft", "--out", good + "/x.jsonl"}, 2,
			"--out " + good + "/x.jsonl: " + good + " is not a directory"},
		{"export onto a directory", []string{"export", "--from", trace, "--format", "sft", "--out", dir}, 2,
			"--out " + dir + " is a directory: name a file, such as " + filepath.Join(dir, "export.jsonl")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runPonder(t, "", env, tc.args...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if r.code != tc.code || !strings.HasPrefix(last, "ponder: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("exit %d, last line %q; want %d and %q\n%s", r.code, last, tc.code, tc.want, r.stderr)
			}
		})
	}
	// Bad lines are reported with their numbers.
	r := runPonder(t, "", env, "eval", "--dataset", badFile, "--strategies", "cot", "--out", out())
	if !strings.Contains(r.stderr, "line 1 skipped: bad JSON") || !strings.Contains(r.stderr, "line 2 skipped: missing truth") {
		t.Errorf("skipped lines not reported:\n%s", r.stderr)
	}
}

func TestEvalHumanEval(t *testing.T) {
	t.Parallel()
	env := evalEnv(t, sim.Options{Seed: 1})
	out := filepath.Join(t.TempDir(), "he")
	r := runPonder(t, "", env, "eval", "--dataset", "humaneval", "--strategies", "cot", "--budget-calls", "1", "--limit", "2", "--out", out)
	if _, err := exec.LookPath("bwrap"); err != nil {
		if r.code != 2 || !strings.Contains(r.stderr, "sandbox") {
			t.Fatalf("humaneval without a sandbox: exit %d\n%s", r.code, r.stderr)
		}
		return
	}
	if r.code != 0 {
		t.Fatalf("humaneval: exit %d\n%s", r.code, r.stderr)
	}
	for _, l := range resultLines(t, out) {
		var rec eval.Record
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		// The simulator writes the canonical solution or a stub: graded by
		// the unit tests, right or wrong, never an error.
		if rec.Status != eval.StatusCorrect && (rec.Status != eval.StatusWrong || rec.Detail == "") {
			t.Errorf("record %s: %s (%s%s)", rec.Key, rec.Status, rec.Error, rec.Detail)
		}
	}
}

// Unit tests of one's own that end the program themselves
// (unittest.main()) grade a program that passes them correct, and one that
// fails them wrong: ponder wires the sandbox's runner that tells the
// tests' own exit from the candidate's (tools/sandbox tests it in full).
func TestEvalUnitTestsThatExitThemselves(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bwrap"); err != nil {
		t.Skip("no bubblewrap: the sandbox is tested where it is installed")
	}
	tests := "import unittest\n\nclass T(unittest.TestCase):\n    def test_inc(self):\n        self.assertEqual(inc(1), 2)\n\n" +
		"if __name__ == '__main__':\n    unittest.main()\n"
	var data strings.Builder
	for _, id := range []string{"right", "wrong"} {
		b, _ := json.Marshal(map[string]string{"id": id, "problem": id + ": def inc(x): return x plus one", "test": tests, "entry_point": "inc"})
		data.Write(append(b, '\n'))
	}
	file := filepath.Join(t.TempDir(), "mine.jsonl")
	if err := os.WriteFile(file, []byte(data.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	url := toolstest.StartLLM(t, func(r toolstest.Request) toolstest.Reply {
		body := "    return x + 1\n"
		if strings.Contains(r.Messages[len(r.Messages)-1].Content, "wrong:") {
			body = "    return x\n"
		}
		return toolstest.Text("```python\ndef inc(x):\n" + body + "```")
	})
	out := filepath.Join(t.TempDir(), "mine")
	r := runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + url}, "eval", "--dataset", file, "--pack", "humaneval",
		"--strategies", "cot", "--budget-calls", "1", "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	got := map[string]eval.Status{}
	for _, l := range resultLines(t, out) {
		var rec eval.Record
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		got[rec.Item] = rec.Status
	}
	if got["right"] != eval.StatusCorrect || got["wrong"] != eval.StatusWrong {
		t.Errorf("statuses %v; want right correct, wrong wrong", got)
	}
}

// An eval only reads the document store (here react's retrieve tool):
// while one runs, waiting on its LLM after a retrieval, `ponder search`
// of the same store works, and `ponder ingest` fails after lock_timeout
// saying the store is in use rather than waiting for the eval. The eval
// then finishes. It held the store alone before.
func TestSearchBesideARunningEval(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	asked := make(chan struct{}, 16)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply := "Thought: the station's documents say.\nAction: retrieve\nAction Input: {\"query\": \"emergency radio frequency\"}"
		if calls.Add(1) > 1 {
			// The retrieval is done and the store open: hold the eval here.
			asked <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			reply = "Thought: the passage gives it.\nFinal Answer: \\boxed{146.520}"
		}
		body, _ := json.Marshal(map[string]any{"id": "x", "object": "chat.completion", "model": "m",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": reply}}},
			"usage":   map[string]any{"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}})
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(srv.Close)
	t.Cleanup(free) // runs first: the server's Close waits for its handlers
	data := t.TempDir()
	env := []string{"PONDER_DATA_DIR=" + data, "PONDER_RETRIEVAL_LOCK_TIMEOUT=300ms"}
	if r := runPonder(t, "", env, "ingest", docsFolder(t)); r.code != 0 {
		t.Fatalf("ingest: %d %s", r.code, r.stderr)
	}
	dataset := filepath.Join(t.TempDir(), "orion.jsonl")
	if err := os.WriteFile(dataset, []byte(`{"question": "What is the emergency radio frequency of Orion station, in MHz?", "answer": "146.520"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	ev := exec.Command(ponderBin, "eval", "--dataset", dataset, "--strategies", "react", "--tools", "retrieve",
		"--budget-calls", "4", "--out", out)
	ev.Env = append(cleanEnv(), append(env, "PONDER_LLM_BASE_URL="+srv.URL+"/v1", "PONDER_LLM_MAX_RETRIES=0", "PONDER_LOG_LEVEL=warn")...)
	var stdout, stderr testutil.LockedBuffer
	ev.Stdout, ev.Stderr = &stdout, &stderr
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- ev.Wait() }()
	ended := false
	t.Cleanup(func() {
		if !ended {
			_ = ev.Process.Kill()
			<-waited
		}
	})
	select {
	case <-asked:
	case err := <-waited:
		ended = true
		t.Fatalf("eval ended before its second LLM call: %v\n%s\n%s", err, stdout.String(), stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("eval never made its second LLM call: %s", stderr.String())
	}

	r := runPonder(t, "", env, "search", "--k", "1", "emergency radio frequency")
	if r.code != 0 || !strings.Contains(r.stdout, "146.520 MHz") {
		t.Errorf("search beside a running eval: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	note := filepath.Join(t.TempDir(), "note.md")
	if err := os.WriteFile(note, []byte("A new note."), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runPonder(t, "", env, "ingest", note)
	if r.code == 0 || !strings.Contains(r.stderr, "is in use by another ponder process (a running `ponder serve`, ingest, search, solve --collection, eval or tools call?)") {
		t.Errorf("ingest beside a running eval: %d, want an error saying the store is in use\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	free()
	code := exited(waited, 20*time.Second)
	ended = code != -1
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	lines := resultLines(t, out)
	var rec eval.Record
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &rec) != nil || rec.Status != eval.StatusCorrect {
		t.Errorf("eval's record: %v", lines)
	}
}

// Error records count as done, so the summary says how many there are and
// how to run them again, also on a rerun that has nothing left to do.
func TestEvalSaysHowToRetryErrors(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"eval", "--dataset", "game24", "--strategies", "cot", "--budget-calls", "2", "--limit", "2", "--out", out}
	down := evalEnv(t, sim.Options{Seed: 1, Rate500: 1})
	for _, want := range []string{"(2 this time, 2 errors)", "(0 this time, 0 errors)"} {
		r := runPonder(t, "", down, args...)
		if r.code != 0 || !strings.Contains(r.stderr, want) ||
			!strings.Contains(r.stderr, "2 of these runs are errors") || !strings.Contains(r.stderr, "--retry-errors") {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
	}
	r := runPonder(t, "", evalEnv(t, sim.Options{Seed: 1}), append(args, "--retry-errors")...)
	if r.code != 0 || !strings.Contains(r.stderr, "(2 this time, 0 errors)") || strings.Contains(r.stderr, "are errors") {
		t.Fatalf("retry: exit %d\n%s", r.code, r.stderr)
	}
}

// ponder export --out writes a file other users may read as the umask
// allows (as `> out` does), and keeps the mode of a file it replaces: it was
// 0600 whatever the umask, os.CreateTemp's.
func TestExportOutMode(t *testing.T) {
	t.Parallel()
	trace, err := filepath.Abs(filepath.Join("..", "..", "eval", "export", "testdata", "traces", "mcts-game24.json"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// What the umask makes of a new file (the binary runs under ours).
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	pst, err := os.Stat(probe)
	if err != nil {
		t.Fatal(err)
	}
	fresh, kept := filepath.Join(dir, "fresh.jsonl"), filepath.Join(dir, "kept.jsonl")
	if err := os.WriteFile(kept, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(kept, 0o640); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]os.FileMode{fresh: pst.Mode().Perm(), kept: 0o640} {
		r := runPonder(t, "", nil, "export", "--from", trace, "--format", "sft", "--out", file)
		if r.code != 0 {
			t.Fatalf("export: exit %d\n%s", r.code, r.stderr)
		}
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want || st.Size() == 0 {
			t.Errorf("%s: mode %v, %d bytes; want %v and the lines", filepath.Base(file), st.Mode().Perm(), st.Size(), want)
		}
	}
}

// An export the disk has no room for says so in the user's words: it named
// the trace being read then and the temporary file (export
// runs/g24/traces/ID.json: write ./.export-1788255079: file too large), and
// a file --out replaces is left as it was.
func TestExportWithoutRoomSaysSo(t *testing.T) {
	t.Parallel()
	trace, err := filepath.Abs(filepath.Join("..", "..", "eval", "export", "testdata", "traces", "mcts-game24.json"))
	if err != nil {
		t.Fatal(err)
	}
	// stdout is /dev/full: every write fails with ENOSPC.
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer full.Close()
	cmd := exec.Command(ponderBin, "export", "--from", trace, "--format", "value")
	cmd.Env = append(cleanEnv(), "PONDER_DATA_DIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = full, &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "write the value lines to stdout: no space left on device") ||
		strings.Contains(stderr.String(), "mcts-game24") {
		t.Errorf("export to /dev/full: %v\n%s", err, stderr.String())
	}
	// --out under a file size limit of 1 KiB (EFBIG, as a full disk).
	out := filepath.Join(t.TempDir(), "value.jsonl")
	if err := os.WriteFile(out, []byte("earlier\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("sh", "-c", `ulimit -f 1 && exec "$0" "$@"`, ponderBin, "export", "--from", trace, "--format", "value", "--out", out)
	cmd.Env = append(cleanEnv(), "PONDER_DATA_DIR="+t.TempDir())
	stderr.Reset()
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "write "+out+": file too large; the file is left as it was") ||
		strings.Contains(stderr.String(), ".export-") {
		t.Errorf("export --out past the size limit: %v\n%s", err, stderr.String())
	}
	if b, _ := os.ReadFile(out); string(b) != "earlier\n" {
		t.Errorf("--out holds %q after the failed export, want what it held", b)
	}
}
