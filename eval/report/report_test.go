package report

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		"1 × llm call (sample): 500 Internal Server Error",
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
