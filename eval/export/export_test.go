package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ponder-rlm/ponder/eval"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/traces"
)

const (
	c1 = "13 - 9 = 4 (left: 4 4 10)"
	c2 = "10 - 4 = 6 (left: 4 6)"
	c3 = "4 * 6 = 24 (left: 24)\n\\boxed{(13 - 9) * (10 - 4)}"
	c4 = "4 + 6 = 10 (left: 10)\n\\boxed{(13 - 9) + (10 - 4)}"
	c5 = "10 * 13 = 130 (left: 4 9 130)"
	c7 = "\\boxed{(10 * 13) - 9 - 4}"

	good  = "1/2 = 2/4.\n2/4 + 1/4 = 3/4.\nSo \\boxed{\\frac{3}{4}}"
	good2 = "Half plus a quarter is 0.75.\n\\boxed{0.75}"
	bad   = "1/2 + 1/4 = 2/6.\n\\boxed{\\frac{1}{3}}"
)

// export runs Write on the fixture traces and decodes the lines.
func export[T any](t *testing.T, format string, files ...string) ([]T, Stats) {
	t.Helper()
	var srcs []Source
	for _, f := range files {
		tr, err := traces.ReadFile(filepath.Join("testdata/traces", f))
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, Source{Path: f, Trace: tr})
	}
	return write[T](t, srcs, format)
}

// write runs Write on srcs and decodes the lines.
func write[T any](t *testing.T, srcs []Source, format string) ([]T, Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := Write(context.Background(), &buf, srcs, Options{Format: format})
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, v)
	}
	if st.Lines != len(out) {
		t.Errorf("stats say %d lines, wrote %d", st.Lines, len(out))
	}
	return out, st
}

func ip(v int) *int              { return &v }
func fp(v float64) *float64      { return &v }
func steps(s ...string) []string { return append([]string{}, s...) }

func TestSFT(t *testing.T) {
	t.Parallel()
	lines, st := export[SFTLine](t, SFT, "mcts-game24.json", "sc-math.json", "no-truth.json")
	var got []string
	for _, l := range lines {
		got = append(got, fmt.Sprintf("%s|%d|%s|%s", l.Item, l.Node, l.Answer, l.Completion))
		n := len(l.Messages)
		if n != 3 || l.Messages[0].Role != "system" || l.Messages[1].Role != "user" || l.Messages[2].Role != "assistant" ||
			l.Messages[2].Content != l.Completion || !strings.Contains(l.Messages[1].Content, l.Problem) {
			t.Errorf("messages of %s/%d: %+v", l.Item, l.Node, l.Messages)
		}
	}
	want := []string{
		"game24/99|3|(13 - 9) * (10 - 4)|" + c1 + "\n" + c2 + "\n" + c3,
		"m/1|1|\\frac{3}{4}|" + good,
		"m/1|2|0.75|" + good2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sft lines (-want +got):\n%s", diff)
	}
	// Node 4 repeats node 1; the trace without a truth labels nothing.
	if st.Duplicates != 1 || st.Unlabeled != 1 || st.Labeled != 7 || st.Traces != 3 {
		t.Errorf("stats %+v; want 1 duplicate, 1 unlabeled, 7 labeled, 3 traces", st)
	}
}

// A tree search can find an answer without the model writing it (Game of
// 24's check_steps works out the expression of a finished position): the
// SFT solution still ends with the \boxed{} answer the solve prompt asks
// for, or a model trained on it would never write one.
func TestSFTStatesTheAnswer(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/traces/mcts-game24.json")
	if err != nil {
		t.Fatal(err)
	}
	const move = "4 * 6 = 24 (left: 24)"
	js, _ := json.Marshal(c3)
	moveJS, _ := json.Marshal(move)
	raw = bytes.Replace(raw, js[1:len(js)-1], moveJS[1:len(moveJS)-1], 1)
	path := filepath.Join(t.TempDir(), "t.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := traces.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := Write(context.Background(), &buf, []Source{{Path: path, Trace: tr}}, Options{Format: SFT}); err != nil {
		t.Fatal(err)
	}
	var l SFTLine
	if err := json.Unmarshal(buf.Bytes(), &l); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	want := c1 + "\n" + c2 + "\n" + move + "\n\\boxed{(13 - 9) * (10 - 4)}"
	if l.Completion != want || l.Messages[len(l.Messages)-1].Content != want {
		t.Errorf("completion %q, assistant %q; want %q", l.Completion, l.Messages[len(l.Messages)-1].Content, want)
	}
}

func TestPRM(t *testing.T) {
	t.Parallel()
	lines, _ := export[PRMLine](t, PRM, "mcts-game24.json", "sc-math.json")
	type row struct {
		Node    int
		Steps   []string
		Labels  []*int
		Soft    []*float64
		Q       []*float64
		Outcome bool
		Source  string
	}
	var got []row
	for _, l := range lines {
		got = append(got, row{l.Node, l.Steps, l.Labels, l.SoftLabels, l.QValues, l.Outcome, l.LabelSource})
	}
	goodSteps := tasks.SolutionSteps(good)
	want := []row{
		// Tree paths: a step is good when some answer below it is correct.
		{3, steps(c1, c2, c3), []*int{ip(1), ip(1), ip(1)}, []*float64{fp(0.5), fp(0.5), fp(1)}, []*float64{fp(0.5), fp(0.8), fp(1)}, true, "tree"},
		{4, steps(c1, c2, c4), []*int{ip(1), ip(1), ip(0)}, []*float64{fp(0.5), fp(0.5), fp(0)}, []*float64{fp(0.5), fp(0.8), fp(-1)}, false, "tree"},
		{7, steps(c5, c7), []*int{ip(0), ip(0)}, []*float64{fp(0), fp(0)}, []*float64{fp(-0.5), fp(-1)}, false, "tree"},
		// Whole solutions: all steps of a correct one are good; of a wrong
		// one only the last is known bad.
		{1, goodSteps, []*int{ip(1), ip(1), ip(1)}, []*float64{fp(1), fp(1), fp(1)}, []*float64{nil, nil, nil}, true, "outcome"},
		{2, tasks.SolutionSteps(good2), []*int{ip(1), ip(1)}, []*float64{fp(1), fp(1)}, []*float64{nil, nil}, true, "outcome"},
		{3, tasks.SolutionSteps(bad), []*int{nil, ip(0)}, []*float64{nil, fp(0)}, []*float64{nil, nil}, false, "outcome"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("prm lines (-want +got):\n%s", diff)
	}
}

func TestValue(t *testing.T) {
	t.Parallel()
	lines, _ := export[ValueLine](t, Value, "mcts-game24.json", "sc-math.json")
	var got []string
	for _, l := range lines {
		got = append(got, fmt.Sprintf("%s/%d %s %g visits=%d terminal=%v steps=%d", l.Item, l.Node, l.Source, l.Target, l.Visits, l.Terminal, len(l.Steps)))
		if l.Target < -1 || l.Target > 1 {
			t.Errorf("target %v out of [-1, 1]", l.Target)
		}
	}
	want := []string{
		"game24/99/1 mcts 0.5 visits=3 terminal=false steps=1",
		"game24/99/2 mcts 0.8 visits=2 terminal=false steps=2",
		"game24/99/3 outcome 1 visits=1 terminal=true steps=3",
		"game24/99/4 outcome -1 visits=1 terminal=true steps=3",
		"game24/99/5 mcts -0.5 visits=1 terminal=false steps=1",
		// node 6: no visits and nothing graded below it: no target.
		"game24/99/7 outcome -1 visits=1 terminal=true steps=2",
		"m/1/1 outcome 1 visits=0 terminal=true steps=1",
		"m/1/2 outcome 1 visits=0 terminal=true steps=1",
		"m/1/3 outcome -1 visits=0 terminal=true steps=1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("value lines (-want +got):\n%s", diff)
	}
}

func TestDPO(t *testing.T) {
	t.Parallel()
	lines, st := export[DPOLine](t, DPO, "mcts-game24.json", "sc-math.json")
	type row struct {
		Parent           int
		Steps            []string
		Chosen, Rejected string
		CS, RS           float64
		Prompt           string
	}
	var got []row
	for _, l := range lines {
		got = append(got, row{l.Node, l.Steps, l.Chosen, l.Rejected, l.ChosenScore, l.RejectedScore, l.Prompt[len(l.Prompt)-1].Content})
	}
	stepPrompt := func(s ...string) string {
		m := tasks.Game24{}.StepPrompt("4 9 10 13", s)
		return m[len(m)-1].Content
	}
	solve := tasks.MATH{}.SolvePrompt("What is 1/2 + 1/4?")
	want := []row{
		{0, steps(), c1, c5, 0.5, 0, stepPrompt()},
		{2, steps(c1, c2), c3, c4, 1, 0, stepPrompt(c1, c2)},
		// Whole solutions are continuations of the solve prompt.
		{0, steps(), good, bad, 1, 0, solve[1].Content},
		{0, steps(), good2, bad, 1, 0, solve[1].Content},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dpo lines (-want +got):\n%s", diff)
	}
	if st.Duplicates != 1 {
		t.Errorf("%d duplicates, want 1 (node 4 repeats node 1)", st.Duplicates)
	}
}

func TestPairsPerNodeCap(t *testing.T) {
	t.Parallel()
	tr, err := traces.ReadFile("testdata/traces/sc-math.json")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	st, err := Write(context.Background(), &buf, []Source{{Trace: tr}}, Options{Format: DPO, PairsPerNode: 1})
	if err != nil || st.Lines != 1 {
		t.Fatalf("%d lines, %v; want 1 with one pair per node", st.Lines, err)
	}
}

func TestCollect(t *testing.T) {
	t.Parallel()
	srcs, warnings, err := Collect([]string{"testdata/traces"})
	if err != nil || len(srcs) != 3 || len(warnings) != 0 {
		t.Fatalf("Collect(dir) = %d sources, %v, %v", len(srcs), warnings, err)
	}
	st, err := Write(context.Background(), &bytes.Buffer{}, srcs, Options{Format: SFT})
	if err != nil || st.Traces != 3 || st.Lines != 3 {
		t.Fatalf("Write of a directory's traces: %+v, %v", st, err)
	}
	srcs, _, err = Collect([]string{"testdata/traces/sc-math.json", "testdata/traces/no-truth.json"})
	if err != nil || len(srcs) != 2 || srcs[0].Trace.ID != "00000000000000b2" {
		t.Fatalf("Collect(files) = %v, %v", srcs, err)
	}
	dir := t.TempDir()
	notTrace := filepath.Join(dir, "x.json")
	if err := os.WriteFile(notTrace, []byte(`{"hello": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{nil, "nothing to export"},
		{[]string{"testdata/nope"}, "no such file"},
		{[]string{notTrace}, "schema"},
		{[]string{t.TempDir()}, "no results.jsonl"},
	} {
		if _, _, err := Collect(tc.paths); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Collect(%v) = %v, want %q", tc.paths, err, tc.want)
		}
	}
	// A directory with an unreadable trace: Write skips it and says so.
	srcs, _, err = Collect([]string{dir, "testdata/traces/sc-math.json"})
	if err != nil {
		t.Fatal(err)
	}
	st, err = Write(context.Background(), &bytes.Buffer{}, srcs, Options{Format: SFT})
	if err != nil || st.Skipped != 1 || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "x.json") || st.Traces != 1 {
		t.Errorf("dir with a non-trace: %+v, %v", st, err)
	}
	// A results file whose trace id is a path reads nothing outside traces/.
	run := t.TempDir()
	if err := os.MkdirAll(filepath.Join(run, eval.TracesDir), 0o700); err != nil {
		t.Fatal(err)
	}
	tr, err := os.ReadFile("testdata/traces/sc-math.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "elsewhere.json"), tr, 0o600); err != nil {
		t.Fatal(err)
	}
	rec := `{"key":"a|cot|1","item":"a","strategy":"cot","budget":1,"status":"correct","trace_id":"../elsewhere"}` + "\n"
	if err := os.WriteFile(filepath.Join(run, eval.ResultsFile), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	srcs, warnings, err = Collect([]string{run})
	if err != nil || len(srcs) != 0 || len(warnings) != 1 || !strings.Contains(warnings[0], "outside traces") {
		t.Errorf("a trace id with a path: %d sources %v, warnings %q, %v", len(srcs), srcs, warnings, err)
	}
	// Records without a trace (--no-traces) and records whose trace file
	// is gone are named as such, not as failures to open a file.
	recs := `{"key":"b|cot|1","item":"b","strategy":"cot","budget":1,"status":"correct"}` + "\n" +
		`{"key":"c|cot|1","item":"c","strategy":"cot","budget":1,"status":"correct","trace_id":"00000000000000c9"}` + "\n"
	if err := os.WriteFile(filepath.Join(run, eval.ResultsFile), []byte(recs), 0o600); err != nil {
		t.Fatal(err)
	}
	srcs, warnings, err = Collect([]string{run})
	if err != nil || len(srcs) != 1 || len(warnings) != 1 || !strings.Contains(warnings[0], "1 of 2 records have no trace (run with --no-traces") {
		t.Errorf("a record without a trace: %d sources, warnings %q, %v", len(srcs), warnings, err)
	}
	st, err = Write(context.Background(), &bytes.Buffer{}, srcs, Options{Format: SFT})
	if err != nil || st.Skipped != 1 || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "the trace of c|cot|1") ||
		!strings.Contains(st.Warnings[0], "missing") {
		t.Errorf("a record whose trace is gone: %+v, %v", st, err)
	}
	if _, err := Write(context.Background(), &bytes.Buffer{}, nil, Options{Format: "csv"}); err == nil || !strings.Contains(err.Error(), "sft, prm, value, dpo") {
		t.Errorf("unknown format: %v", err)
	}
}

func ExampleWrite() {
	tr, _ := traces.ReadFile("testdata/traces/mcts-game24.json")
	st, _ := Write(context.Background(), os.Stdout, []Source{{Trace: tr}}, Options{Format: Value})
	fmt.Println(st.Lines, "value targets")
	// Output:
	// {"problem":"4 9 10 13","pack":"game24","item":"game24/99","strategy":"mcts","trace_id":"00000000000000a1","node":1,"steps":["13 - 9 = 4 (left: 4 4 10)"],"target":0.5,"source":"mcts","visits":3,"terminal":false}
	// {"problem":"4 9 10 13","pack":"game24","item":"game24/99","strategy":"mcts","trace_id":"00000000000000a1","node":2,"steps":["13 - 9 = 4 (left: 4 4 10)","10 - 4 = 6 (left: 4 6)"],"target":0.8,"source":"mcts","visits":2,"terminal":false}
	// {"problem":"4 9 10 13","pack":"game24","item":"game24/99","strategy":"mcts","trace_id":"00000000000000a1","node":3,"steps":["13 - 9 = 4 (left: 4 4 10)","10 - 4 = 6 (left: 4 6)","4 * 6 = 24 (left: 24)\n\\boxed{(13 - 9) * (10 - 4)}"],"target":1,"source":"outcome","visits":1,"terminal":true}
	// {"problem":"4 9 10 13","pack":"game24","item":"game24/99","strategy":"mcts","trace_id":"00000000000000a1","node":4,"steps":["13 - 9 = 4 (left: 4 4 10)","10 - 4 = 6 (left: 4 6)","4 + 6 = 10 (left: 10)\n\\boxed{(13 - 9) + (10 - 4)}"],"target":-1,"source":"outcome","visits":1,"terminal":true}
	// {"problem":"4 9 10 13","pack":"game24","item":"game24/99","strategy":"mcts","trace_id":"00000000000000a1","node":5,"steps":["10 * 13 = 130 (left: 4 9 130)"],"target":-0.5,"source":"mcts","visits":1,"terminal":false}
	// {"problem":"4 9 10 13","pack":"game24","item":"game24/99","strategy":"mcts","trace_id":"00000000000000a1","node":7,"steps":["10 * 13 = 130 (left: 4 9 130)","\\boxed{(10 * 13) - 9 - 4}"],"target":-1,"source":"outcome","visits":1,"terminal":true}
	// 6 value targets
}
