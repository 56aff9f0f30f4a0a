// Package report summarises an eval run directory: accuracy with 95%
// Wilson intervals, errors apart, mean LLM calls and tokens per strategy
// and budget, pass@k from the searches' samples, as a Markdown report and
// as plots (PNG and SVG, gonum.org/v1/plot) of accuracy against LLM calls
// and against tokens, one line per strategy.
//
//	r, err := report.Load("runs/g24")
//	files, err := r.Write("runs/g24") // report.md, accuracy_vs_calls.{png,svg}, accuracy_vs_tokens.{png,svg}
//	for _, row := range r.Rows { fmt.Println(row.Strategy, row.Budget, row.Accuracy) }
package report

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ponder-rlm/ponder/eval"
)

// Z95 is the normal quantile of a two-sided 95% interval.
const Z95 = 1.959963984540054

// Wilson returns the Wilson score interval for c successes in n trials at
// normal quantile z (Z95 for 95%). It is [0, 1] when n is 0.
func Wilson(c, n int, z float64) (low, high float64) {
	if n <= 0 {
		return 0, 1
	}
	p := float64(c) / float64(n)
	nn := float64(n)
	z2 := z * z
	den := 1 + z2/nn
	centre := (p + z2/(2*nn)) / den
	half := z / den * math.Sqrt(p*(1-p)/nn+z2/(4*nn*nn))
	return math.Max(0, centre-half), math.Min(1, centre+half)
}

// Row is one strategy at one budget.
type Row struct {
	Strategy string `json:"strategy"`
	Budget   int64  `json:"budget"`
	// Graded is Correct + Wrong: the problems accuracy is computed on.
	Graded  int `json:"graded"`
	Correct int `json:"correct"`
	Wrong   int `json:"wrong"`
	// Errors are records whose LLM or grader failed; they are not in
	// Accuracy.
	Errors   int     `json:"errors"`
	Accuracy float64 `json:"accuracy"`
	Low      float64 `json:"ci_low"`
	High     float64 `json:"ci_high"`
	// Mean usage per graded problem.
	MeanCalls            float64 `json:"mean_calls"`
	MeanPromptTokens     float64 `json:"mean_prompt_tokens"`
	MeanCompletionTokens float64 `json:"mean_completion_tokens"`
	MeanTokens           float64 `json:"mean_tokens"`
	// PassAtK is the mean unbiased pass@k estimate over problems whose
	// search produced at least k complete answers (k → value), and
	// PassAtKProblems how many problems that was.
	PassAtK         map[int]float64 `json:"pass_at_k,omitempty"`
	PassAtKProblems map[int]int     `json:"pass_at_k_problems,omitempty"`
}

// Summarize groups records by strategy and budget. order gives the
// strategies' order (others follow by name); budgets ascend.
func Summarize(recs []eval.Record, order []string, ks []int) []Row {
	type key struct {
		s string
		b int64
	}
	groups := map[key][]eval.Record{}
	for _, r := range recs {
		k := key{r.Strategy, r.Budget}
		groups[k] = append(groups[k], r)
	}
	rank := map[string]int{}
	for i, s := range order {
		if _, ok := rank[s]; !ok {
			rank[s] = i
		}
	}
	keys := make([]key, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, oki := rank[keys[i].s]
		rj, okj := rank[keys[j].s]
		switch {
		case oki && okj && ri != rj:
			return ri < rj
		case oki != okj:
			return oki
		case keys[i].s != keys[j].s:
			return keys[i].s < keys[j].s
		}
		return keys[i].b < keys[j].b
	})
	rows := make([]Row, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, summarize(k.s, k.b, groups[k], ks))
	}
	return rows
}

func summarize(strategy string, budget int64, recs []eval.Record, ks []int) Row {
	row := Row{Strategy: strategy, Budget: budget}
	var calls, pt, ct float64
	passSum := map[int]float64{}
	passN := map[int]int{}
	for _, r := range recs {
		switch r.Status {
		case eval.StatusCorrect:
			row.Correct++
		case eval.StatusWrong:
			row.Wrong++
		default:
			row.Errors++
			continue
		}
		calls += float64(r.Usage.LLMCalls)
		pt += float64(r.Usage.PromptTokens)
		ct += float64(r.Usage.CompletionTokens)
		for _, k := range ks {
			if v := eval.PassAtK(r.Samples, r.SamplesCorrect, k); !math.IsNaN(v) {
				passSum[k] += v
				passN[k]++
			}
		}
	}
	row.Graded = row.Correct + row.Wrong
	row.Low, row.High = Wilson(row.Correct, row.Graded, Z95)
	if row.Graded > 0 {
		n := float64(row.Graded)
		row.Accuracy = float64(row.Correct) / n
		row.MeanCalls, row.MeanPromptTokens, row.MeanCompletionTokens = calls/n, pt/n, ct/n
		row.MeanTokens = (pt + ct) / n
	}
	for k, n := range passN {
		if row.PassAtK == nil {
			row.PassAtK, row.PassAtKProblems = map[int]float64{}, map[int]int{}
		}
		row.PassAtK[k] = passSum[k] / float64(n)
		row.PassAtKProblems[k] = n
	}
	return row
}

// Report is a summarised run directory.
type Report struct {
	Dir      string
	Manifest *eval.Manifest // nil when the directory has none
	Records  []eval.Record
	// Bad lists lines of results.jsonl that were not records.
	Bad  []eval.LineError
	Rows []Row
	// Ks are the k of the pass@k columns.
	Ks []int
}

// DefaultKs are the pass@k reported by default.
var DefaultKs = []int{1, 5, 10}

// Load reads and summarises a run directory (ks: the pass@k to report;
// nil means DefaultKs).
func Load(dir string, ks ...int) (*Report, error) {
	if len(ks) == 0 {
		ks = DefaultKs
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("run directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a run directory (want the --out of `ponder eval`)", dir)
	}
	recs, bad, err := eval.ReadRecords(filepath.Join(dir, eval.ResultsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no %s: is it the --out of `ponder eval`?", dir, eval.ResultsFile)
	}
	if err != nil {
		return nil, err
	}
	r := &Report{Dir: dir, Records: recs, Bad: bad, Ks: ks}
	if m, err := eval.ReadManifest(dir); err == nil {
		r.Manifest = m
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var order []string
	if r.Manifest != nil {
		order = r.Manifest.Strategies
	}
	r.Rows = Summarize(recs, order, ks)
	return r, nil
}

// Strategies lists the strategies of the rows in order.
func (r *Report) Strategies() []string {
	var out []string
	seen := map[string]bool{}
	for _, row := range r.Rows {
		if !seen[row.Strategy] {
			seen[row.Strategy] = true
			out = append(out, row.Strategy)
		}
	}
	return out
}

// Write writes report.md and the plots into outDir (created if missing)
// and returns the files written.
func (r *Report) Write(outDir string) ([]string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var files []string
	for _, p := range []struct {
		name   string
		xLabel string
		x      func(Row) float64
	}{
		{"accuracy_vs_calls", "LLM calls per problem (mean)", func(r Row) float64 { return r.MeanCalls }},
		{"accuracy_vs_tokens", "tokens per problem (mean, prompt + completion)", func(r Row) float64 { return r.MeanTokens }},
	} {
		for _, ext := range []string{".png", ".svg"} {
			path := filepath.Join(outDir, p.name+ext)
			if err := r.plot(path, p.xLabel, p.x); err != nil {
				return files, err
			}
			files = append(files, path)
		}
	}
	md := filepath.Join(outDir, "report.md")
	if err := writeFile(md, func(w io.Writer) error { _, err := io.WriteString(w, r.Markdown()); return err }); err != nil {
		return files, fmt.Errorf("report: %w", err)
	}
	return append([]string{md}, files...), nil
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	title := filepath.Base(r.Dir)
	if r.Manifest != nil {
		title = r.Manifest.Config.Dataset
	}
	fmt.Fprintf(&b, "# Eval report: %s\n\n", mdText(title))
	if m := r.Manifest; m != nil {
		c := m.Config
		model := c.Model
		if model == "" {
			model = "(endpoint default)"
		}
		fmt.Fprintf(&b, "Run directory %s: dataset %s (%d problems, %d evaluated), pack %s, grader %s, model %s, seed %d",
			codeSpan(r.Dir), mdText(c.Dataset), m.Items, r.problems(), mdText(c.Pack), mdText(c.Grader), mdText(model), c.Seed)
		if c.Oracle {
			b.WriteString(", **oracle** (the search saw the ground truth: not an accuracy measurement)")
		}
		fmt.Fprintf(&b, "; updated %s.\n\n", m.Updated.Format("2006-01-02 15:04 MST"))
		if len(m.Rules) > 0 {
			b.WriteString("How each budget (LLM calls) maps onto a strategy — every run is also capped at its budget:\n\n")
			for _, s := range r.Strategies() {
				if rule, ok := m.Rules[s]; ok {
					fmt.Fprintf(&b, "- %s: %s", mdText(s), mdText(rule))
					if p := c.Params[s]; len(p) > 0 {
						fmt.Fprintf(&b, " (user parameters: %s)", mdText(paramString(p)))
					}
					b.WriteString("\n")
				}
			}
			b.WriteString("\n")
		}
	} else {
		fmt.Fprintf(&b, "Run directory %s (no manifest): %d problems.\n\n", codeSpan(r.Dir), r.problems())
	}
	b.WriteString("Accuracy is over graded problems (correct + wrong); errors (the LLM or the grader failed) are counted apart. " +
		"95% CI: Wilson score interval. Means are per graded problem.\n\n")
	b.WriteString("| Strategy | Budget (calls) | Graded | Correct | Accuracy | 95% CI | Errors | Mean calls | Mean tokens |\n")
	b.WriteString("|---|---:|---:|---:|---:|---|---:|---:|---:|\n")
	for _, row := range r.Rows {
		ci := "–"
		if row.Graded > 0 {
			ci = pct(row.Low, 1) + "–" + pct(row.High, 1)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s | %d | %.1f | %.0f |\n", mdText(row.Strategy), row.Budget, row.Graded,
			row.Correct, pct(row.Accuracy, row.Graded), ci, row.Errors, row.MeanCalls, row.MeanTokens)
	}
	b.WriteString("\n")
	if r.hasPassAtK() {
		b.WriteString("pass@k, estimated without bias (Chen et al., 2021) from every complete answer each search produced " +
			"(n per problem, c correct): 1 − C(n−c, k)/C(n, k), averaged over the problems with n ≥ k (their number in brackets).\n\n")
		b.WriteString("| Strategy | Budget (calls) |")
		for _, k := range r.Ks {
			fmt.Fprintf(&b, " pass@%d |", k)
		}
		b.WriteString("\n|---|---:|" + strings.Repeat("---:|", len(r.Ks)) + "\n")
		for _, row := range r.Rows {
			fmt.Fprintf(&b, "| %s | %d |", mdText(row.Strategy), row.Budget)
			for _, k := range r.Ks {
				if n, ok := row.PassAtKProblems[k]; ok {
					fmt.Fprintf(&b, " %s (%d) |", pct(row.PassAtK[k], 1), n)
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	if errs := r.errorCounts(); len(errs) > 0 {
		b.WriteString("Errors by message:\n\n")
		for _, e := range errs {
			fmt.Fprintf(&b, "- %d × %s\n", e.n, codeSpan(e.msg))
		}
		b.WriteString("\n")
	}
	if n := r.warned(); n > 0 {
		fmt.Fprintf(&b, "Graded runs with warnings: %d (evaluations or LLM requests that failed without stopping the search, "+
			"which the answer may be the worse for, or why a search found no answer: each record's `warnings` in %s).\n\n",
			n, eval.ResultsFile)
	}
	b.WriteString("![accuracy against LLM calls](accuracy_vs_calls.svg)\n\n![accuracy against tokens](accuracy_vs_tokens.svg)\n")
	if len(r.Bad) > 0 {
		fmt.Fprintf(&b, "\n%d lines of %s were not records and were skipped (first: line %d).\n", len(r.Bad), eval.ResultsFile, r.Bad[0].Line)
	}
	return b.String()
}

func (r *Report) problems() int {
	seen := map[string]bool{}
	for _, rec := range r.Records {
		seen[rec.Item] = true
	}
	return len(seen)
}

// warned counts the graded records that carry the search's warnings.
func (r *Report) warned() int {
	n := 0
	for _, rec := range r.Records {
		// Records written before eval left it out carry the pack's
		// rejection of a wrong answer: no warning about the search.
		if rec.Status != eval.StatusError && len(eval.SearchWarnings(rec.Warnings)) > 0 {
			n++
		}
	}
	return n
}

func (r *Report) hasPassAtK() bool {
	for _, row := range r.Rows {
		if len(row.PassAtK) > 0 {
			return true
		}
	}
	return false
}

// maxErrorChars is the most characters of an error message the report
// shows; results.jsonl keeps the whole message.
const maxErrorChars = 160

// oneLine collapses every run of white space, line breaks included, into
// one space: a line break in a list item or table cell would end it and
// spill the rest into the report as Markdown of its own.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// cut shortens s to at most n characters, the last one "…" when it cut:
// it counts runes, so a cut never splits a UTF-8 sequence.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, k := 0, 0
	for i = range s {
		if k == n-1 {
			break
		}
		k++
	}
	return s[:i] + "…"
}

// codeSpan shows s on one line as inline code, fenced by more backticks
// than any run of them in s: nothing in it (|, <, *, `) is read as
// Markdown or HTML. Error messages quote programs, models and tools.
func codeSpan(s string) string {
	s = oneLine(s)
	longest, run := 0, 0
	for _, c := range s {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " " // CommonMark strips one space each side
	}
	return fence + s + fence
}

// mdText shows s on one line as plain text in prose and table cells:
// what would break them out of their place is escaped with a backslash
// (| ends a table cell, a backtick opens code, < opens HTML, and \ would
// undo an escape). The rest is kept as it is, as files keep text.
func mdText(s string) string {
	return mdEscaper.Replace(oneLine(s))
}

var mdEscaper = strings.NewReplacer(`\`, `\\`, "`", "\\`", "|", `\|`, "<", `\<`)

type errCount struct {
	msg string
	n   int
}

func (r *Report) errorCounts() []errCount {
	m := map[string]int{}
	for _, rec := range r.Records {
		if rec.Status == eval.StatusError {
			msg := cut(oneLine(rec.Error), maxErrorChars)
			if msg == "" {
				msg = "(no message)"
			}
			m[msg]++
		}
	}
	out := make([]errCount, 0, len(m))
	for k, v := range m {
		out = append(out, errCount{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].msg < out[j].msg
	})
	if len(out) > 10 {
		out = out[:10]
	}
	return out
}

func pct(v float64, n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

func paramString(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, p[k])
	}
	return strings.Join(parts, ", ")
}
