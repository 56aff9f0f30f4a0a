package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/eval"
)

func near(a, b float64) bool { return math.Abs(a-b) < 5e-4 }

func TestWilson(t *testing.T) {
	t.Parallel()
	// Known values of the Wilson score interval (Newcombe 1998, e.g. 0/10:
	// 0–0.2775).
	tests := []struct {
		c, n      int
		low, high float64
	}{
		{1, 3, 0.0615, 0.7923},
		{4, 5, 0.3755, 0.9638},
		{2, 2, 0.3424, 1},
		{0, 10, 0, 0.2775},
		{50, 100, 0.4038, 0.5962},
		{0, 0, 0, 1},
	}
	for _, tc := range tests {
		lo, hi := Wilson(tc.c, tc.n, Z95)
		if !near(lo, tc.low) || !near(hi, tc.high) {
			t.Errorf("Wilson(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", tc.c, tc.n, lo, hi, tc.low, tc.high)
		}
	}
}

// TestReportFromFixture checks every number of the report against values
// computed by hand from testdata/run/results.jsonl.
func TestReportFromFixture(t *testing.T) {
	t.Parallel()
	r, err := Load("testdata/run")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Bad) != 1 || r.Bad[0].Line != 13 {
		t.Errorf("bad lines %v, want line 13 (cut short)", r.Bad)
	}
	want := []Row{
		// Manifest order: self-consistency first. g/1's error at budget
		// 10 was replaced by a later correct record.
		{Strategy: "self-consistency", Budget: 10, Graded: 5, Correct: 4, Wrong: 1, Accuracy: 0.8, Low: 0.3755, High: 0.9638,
			MeanCalls: 10, MeanPromptTokens: 1000, MeanCompletionTokens: 500, MeanTokens: 1500,
			PassAtK: map[int]float64{1: 0.54, 5: (1 + 1 + (1 - 21.0/252) + 0.5 + 1) / 5, 10: 1}},
		{Strategy: "self-consistency", Budget: 20, Graded: 2, Correct: 2, Accuracy: 1, Low: 0.3424, High: 1,
			MeanCalls: 20, MeanPromptTokens: 2000, MeanCompletionTokens: 1000, MeanTokens: 3000,
			PassAtK: map[int]float64{1: 0.8, 5: (1 - 56.0/15504 + 1) / 2, 10: 1}},
		// The error is counted apart: accuracy 1/3 over the graded three,
		// means over them too.
		{Strategy: "cot", Budget: 10, Graded: 3, Correct: 1, Wrong: 2, Errors: 1, Accuracy: 1.0 / 3, Low: 0.0615, High: 0.7923,
			MeanCalls: 1, MeanPromptTokens: 120, MeanCompletionTokens: 60, MeanTokens: 180,
			PassAtK: map[int]float64{1: 1.0 / 3}},
	}
	if len(r.Rows) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(r.Rows), len(want), r.Rows)
	}
	for i, w := range want {
		g := r.Rows[i]
		if g.Strategy != w.Strategy || g.Budget != w.Budget || g.Graded != w.Graded || g.Correct != w.Correct || g.Wrong != w.Wrong ||
			g.Errors != w.Errors || !near(g.Accuracy, w.Accuracy) || !near(g.Low, w.Low) || !near(g.High, w.High) ||
			!near(g.MeanCalls, w.MeanCalls) || !near(g.MeanTokens, w.MeanTokens) || !near(g.MeanPromptTokens, w.MeanPromptTokens) ||
			!near(g.MeanCompletionTokens, w.MeanCompletionTokens) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, g, w)
		}
		if len(g.PassAtK) != len(w.PassAtK) {
			t.Errorf("row %d: pass@k %v, want %v", i, g.PassAtK, w.PassAtK)
		}
		for k, v := range w.PassAtK {
			if !near(g.PassAtK[k], v) {
				t.Errorf("row %d: pass@%d = %.4f, want %.4f", i, k, g.PassAtK[k], v)
			}
		}
	}
	md := r.Markdown()
	for _, s := range []string{
		"| self-consistency | 10 | 5 | 4 | 80.0% | 37.6%–96.4% | 0 | 10.0 | 1500 |",
		"| cot | 10 | 3 | 1 | 33.3% | 6.1%–79.2% | 1 | 1.0 | 180 |",
		"| self-consistency | 10 | 54.0% (5) | 88.3% (5) | 100.0% (5) |",
		"- 1 × `llm call (sample): 500 Internal Server Error`",
		"- self-consistency: k = budget",
		"model ponder-sim, seed 3",
		"1 lines of results.jsonl were not records",
		"![accuracy against LLM calls](accuracy_vs_calls.svg)",
	} {
		if !strings.Contains(md, s) {
			t.Errorf("report lacks %q:\n%s", s, md)
		}
	}
}

func TestMarkdownHelpers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		f              func(string) string
	}{
		{"cut keeps a short message", "boom", "boom", func(s string) string { return cut(s, 5) }},
		{"cut at exactly n", "abcde", "abcde", func(s string) string { return cut(s, 5) }},
		{"cut counts characters, not bytes", "数数数数数数", "数数数数…", func(s string) string { return cut(s, 5) }},
		{"cut of two-byte runes", "éééééé", "éééé…", func(s string) string { return cut(s, 5) }},
		{"oneLine collapses line breaks", "a\n  b\r\n\tc\u2028d ", "a b c d", oneLine},
		{"codeSpan of plain text", "a | <b>", "`a | <b>`", codeSpan},
		{"codeSpan fences past backticks", "x ``y`` `z", "```x ``y`` `z```", codeSpan},
		{"codeSpan pads a message that ends in a backtick", "x `y`", "`` x `y` ``", codeSpan},
		{"codeSpan pads an edge backtick", "`a", "`` `a ``", codeSpan},
		{"codeSpan of several lines", "a\nb", "`a b`", codeSpan},
		{"mdText escapes what breaks out", "a|b <i>*c*</i> `d` [e](f)", "a\\|b \\<i>*c*\\</i> \\`d\\` [e](f)", mdText},
		{"mdText escapes a backslash", `a\|`, `a\\\|`, mdText},
	}
	for _, tc := range tests {
		if got := tc.f(tc.in); got != tc.want {
			t.Errorf("%s: %q → %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestReportKeepsRecordTextInItsPlace checks that what records say (error
// messages from models, programs and tools; strategy names) stays inside
// its list item or table cell: report.md is read by Markdown renderers.
// loadRecords writes recs as a run directory's results and loads its report.
func loadRecords(t *testing.T, recs []eval.Record) *Report {
	t.Helper()
	var lines []string
	for _, rec := range recs {
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, eval.ResultsFile), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReportKeepsRecordTextInItsPlace(t *testing.T) {
	t.Parallel()
	errs := []string{
		strings.Repeat("é", 200), // a cut at byte 157 splits a rune
		strings.Repeat("数", 100),
		"grade: Traceback (most recent call last):\n  File \"<string>\", line 3\n    assert f(1) | 2\nAssertionError: `got` 3",
		"<script>alert(1)</script> ends in `",
		"| a | table | row |",
	}
	var recs []eval.Record
	for i, e := range errs {
		recs = append(recs, eval.Record{Item: fmt.Sprint(i), Index: i, Strategy: "cot", Budget: 4, Status: eval.StatusError, Error: e})
	}
	recs = append(recs, eval.Record{Item: "x", Strategy: "odd|name", Budget: 4, Status: eval.StatusCorrect})
	r := loadRecords(t, recs)
	md := r.Markdown()
	if !utf8.ValidString(md) {
		t.Errorf("report.md is not valid UTF-8:\n%q", md)
	}
	_, section, ok := strings.Cut(md, "Errors by message:\n\n")
	if !ok {
		t.Fatalf("no errors section:\n%s", md)
	}
	section, _, _ = strings.Cut(section, "\n\n")
	items := strings.Split(section, "\n")
	if len(items) != len(errs) {
		t.Fatalf("%d lines of errors, want one per message (%d):\n%s", len(items), len(errs), section)
	}
	for _, it := range items {
		// Each item is "- 1 × " and one code span: a fence of n backticks,
		// text with no run of n, the same fence.
		span, ok := strings.CutPrefix(it, "- 1 × ")
		fence := span[:len(span)-len(strings.TrimLeft(span, "`"))]
		inner, ok2 := strings.CutSuffix(strings.TrimPrefix(span, fence), fence)
		if !ok || fence == "" || !ok2 || strings.Contains(inner, fence) || strings.HasSuffix(inner, "`") {
			t.Errorf("error item %q is not one code span", it)
			continue
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(inner)); n > maxErrorChars {
			t.Errorf("error item %q shows %d characters, want at most %d", it, n, maxErrorChars)
		}
	}
	for _, want := range []string{"`" + strings.Repeat("é", maxErrorChars-1) + "…`", "`" + strings.Repeat("数", 100) + "`"} {
		if !strings.Contains(section, want) {
			t.Errorf("errors lack %q:\n%s", want, section)
		}
	}
	// The row of a strategy named odd|name has the table's nine cells.
	cells := func(row string) int { return strings.Count(row, "|") - strings.Count(row, `\|`) }
	header := "| Strategy | Budget (calls) | Graded | Correct | Accuracy | 95% CI | Errors | Mean calls | Mean tokens |"
	found := false
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| odd") {
			found = true
			if cells(l) != cells(header) && cells(l) != 6 {
				t.Errorf("row %q has %d cell breaks, want %d (or 6 in the pass@k table)", l, cells(l), cells(header))
			}
		}
	}
	if !found {
		t.Errorf("no row of strategy odd|name:\n%s", md)
	}
}

// Graded records whose search went on past failures are counted, so a
// reader of the report knows some answers were handicapped.
func TestReportCountsRecordsWithWarnings(t *testing.T) {
	t.Parallel()
	recs := []eval.Record{
		{Item: "a", Strategy: "best-of-n", Budget: 4, Status: eval.StatusWrong, Warnings: []string{"2 evaluations failed"}},
		{Item: "b", Strategy: "best-of-n", Budget: 4, Status: eval.StatusCorrect},
		{Item: "c", Strategy: "best-of-n", Budget: 4, Status: eval.StatusError, Error: "x", Warnings: []string{"1 evaluation failed"}},
		// A wrong answer the pack's check rejected, as records kept it
		// before eval left that warning out: nothing failed.
		{Item: "d", Strategy: "best-of-n", Budget: 4, Status: eval.StatusWrong, Warnings: []string{"the answer is wrong: the game24 pack's check rejects it"}},
	}
	for i := range recs {
		recs[i].Index = i
	}
	r := loadRecords(t, recs)
	if md := r.Markdown(); !strings.Contains(md, "Graded runs with warnings: 1 ") {
		t.Errorf("report does not count the one graded record with warnings:\n%s", md)
	}
}

func TestWriteMakesReportAndPlots(t *testing.T) {
	t.Parallel()
	r, err := Load("testdata/run")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	files, err := r.Write(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Fatalf("wrote %v, want report.md and four plots", files)
	}
	for _, name := range []string{"accuracy_vs_calls", "accuracy_vs_tokens"} {
		png, err := os.ReadFile(filepath.Join(out, name+".png"))
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s.png is not a PNG (%v)", name, err)
		}
		svg, err := os.ReadFile(filepath.Join(out, name+".svg"))
		if err != nil || !bytes.Contains(svg, []byte("<svg")) {
			t.Errorf("%s.svg is not an SVG (%v)", name, err)
		}
		// One legend entry per strategy.
		for _, s := range []string{"self-consistency", "cot"} {
			if !bytes.Contains(svg, []byte(s)) {
				t.Errorf("%s.svg has no line for %s", name, s)
			}
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if string(md) != r.Markdown() {
		t.Error("report.md differs from Markdown()")
	}
}

// Plots are well-formed SVG whatever the dataset's file name and the
// strategies' names hold: XML cannot carry control characters even
// escaped, and a file name with an escape character made an SVG that no
// viewer opened.
func TestPlotsAreWellFormedSVGWhateverTheNames(t *testing.T) {
	t.Parallel()
	recs := []eval.Record{
		{Item: "a", Strategy: "cot\x07<&>", Budget: 4, Status: eval.StatusCorrect, Usage: core.Usage{LLMCalls: 1}},
		{Item: "a", Strategy: "self-consistency", Budget: 4, Status: eval.StatusWrong, Usage: core.Usage{LLMCalls: 4}},
	}
	r := loadRecords(t, recs)
	r.Manifest = &eval.Manifest{Config: eval.RunConfig{Dataset: "c\x1bd\x00&<.jsonl"}}
	out := t.TempDir()
	if _, err := r.Write(out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"accuracy_vs_calls.svg", "accuracy_vs_tokens.svg"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(bytes.NewReader(b))
		for {
			if _, err := dec.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s is not well-formed XML: %v", name, err)
			}
		}
		if !bytes.Contains(b, []byte("cd&amp;&lt;.jsonl")) || !bytes.Contains(b, []byte("cot&lt;&amp;&gt;")) {
			t.Errorf("%s lost the names' other characters", name)
		}
	}
}

// A report the disk cuts short leaves the files of the report before it
// as they were: a plot was left truncated (half a PNG), report.md empty.
func TestWriteCutShortKeepsTheEarlierReport(t *testing.T) {
	out := os.Getenv("PONDER_TEST_REPORT_FSIZE")
	if out == "" {
		t.Parallel()
		out = t.TempDir()
		r, err := Load("testdata/run")
		if err != nil {
			t.Fatal(err)
		}
		files, err := r.Write(out)
		if err != nil {
			t.Fatal(err)
		}
		before := map[string][]byte{}
		for _, f := range files {
			before[f], _ = os.ReadFile(f)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriteCutShortKeepsTheEarlierReport$")
		cmd.Env = append(os.Environ(), "PONDER_TEST_REPORT_FSIZE="+out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, b)
		}
		for f, b := range before {
			if now, err := os.ReadFile(f); err != nil || !bytes.Equal(now, b) {
				t.Errorf("%s: %d bytes before the failed write, %d after (%v)", f, len(b), len(now), err)
			}
		}
		if entries, _ := os.ReadDir(out); len(entries) != len(before) {
			t.Errorf("%d files in %s, want the %d of the report (no temporary file left)", len(entries), out, len(before))
		}
		return
	}
	// The child: no file may grow past 2000 bytes (EFBIG, as a full disk).
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = 2000
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Skip(err)
	}
	r, err := Load("testdata/run")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write(out); err == nil {
		t.Error("Write under a 2000-byte file size limit succeeded")
	}
}

func TestLoadBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ dir, want string }{
		{"testdata/nope", "no such file"},
		{"testdata/run/results.jsonl", "not a run directory"},
		{"testdata", "has no results.jsonl"},
	} {
		if _, err := Load(tc.dir); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%s) = %v, want %q", tc.dir, err, tc.want)
		}
	}
}

func ExampleWilson() {
	lo, hi := Wilson(4, 5, Z95)
	fmt.Printf("4/5 correct: 95%% CI %.3f–%.3f\n", lo, hi)
	// Output: 4/5 correct: 95% CI 0.376–0.964
}

func ExampleSummarize() {
	recs := []eval.Record{
		{Item: "a", Strategy: "cot", Budget: 8, Status: eval.StatusCorrect},
		{Item: "b", Strategy: "cot", Budget: 8, Status: eval.StatusWrong},
		{Item: "c", Strategy: "cot", Budget: 8, Status: eval.StatusError},
	}
	for _, r := range Summarize(recs, nil, nil) {
		fmt.Printf("%s@%d: %d/%d correct, %d errors\n", r.Strategy, r.Budget, r.Correct, r.Graded, r.Errors)
	}
	// Output: cot@8: 1/2 correct, 1 errors
}
