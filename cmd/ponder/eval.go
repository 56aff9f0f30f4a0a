package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/eval"
	"github.com/ponder-rlm/ponder/eval/export"
	"github.com/ponder-rlm/ponder/eval/report"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/standard"
	"github.com/ponder-rlm/ponder/tasks"
)

func init() {
	extraCommands = append(extraCommands, newEvalCmd, newExportCmd)
}

type evalFlags struct {
	dataset      string
	strategies   []string
	limit        int
	offset       int
	seed         int64
	budgets      []string
	budgetTokens int64
	timeout      time.Duration
	concurrency  int
	out          string
	params       []string
	fields       []string
	pack         string
	grader       string
	quiet        bool
	retryErrors  bool
	noTraces     bool
	oracle       bool
	tools        []string
}

func newEvalCmd() *cobra.Command {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate strategies on a benchmark at matched compute (budgets of LLM calls)",
		Long: "Solve every problem of a dataset with every strategy at every budget, grade the answers and append\n" +
			"one record per (problem, strategy, budget) to OUT/results.jsonl as they finish. Re-running the same\n" +
			"command continues where it stopped; an --out of another configuration is refused.\n\n" +
			"Budgets map onto strategies as: cot one call; self-consistency k = budget; best-of-n n = budget/2\n" +
			"(each sample is judged by one call); other strategies keep their defaults under the call cap.\n" +
			"See docs/eval.md.",
		Example: `  ponder eval --dataset game24 --strategies cot,self-consistency,best-of-n,tot-bfs,mcts --budget-calls 10,20,40 --out runs/g24
  ponder eval --dataset gsm8k --limit 100 --strategies cot,self-consistency --budget-calls 8 --out runs/gsm8k
  ponder eval --dataset mine.jsonl --field problem=question --field truth=answer --pack math --strategies cot --out runs/mine
  ponder eval report runs/g24`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runEval(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataset, "dataset", "", "gsm8k, math500, game24, humaneval (from the benchmark data folder) or a JSONL file")
	fl.StringSliceVar(&f.strategies, "strategies", nil, "strategies to compare, comma-separated (see: ponder strategies)")
	fl.IntVar(&f.limit, "limit", 0, "evaluate at most this many problems (default: all)")
	fl.IntVar(&f.offset, "offset", 0, "skip this many problems first")
	fl.Int64Var(&f.seed, "seed", 0, "sampling seed (same seed, same requests)")
	fl.StringSliceVar(&f.budgets, "budget-calls", nil, "LLM-call budgets, comma-separated: a sweep such as 10,20,40 (default: the configured budget)")
	fl.Int64Var(&f.budgetTokens, "budget-tokens", 0, "also cap each search at this many tokens (default: no cap)")
	fl.DurationVar(&f.timeout, "timeout", 0, "also cap each search's wall time, e.g. 2m (default: no cap)")
	fl.IntVar(&f.concurrency, "concurrency", 4, "problems solved at once (LLM requests are bounded by --llm-concurrency)")
	fl.StringVar(&f.out, "out", "", "run directory for manifest.json, results.jsonl and traces/ (required)")
	fl.StringArrayVarP(&f.params, "param", "p", nil, "strategy parameter as strategy.name=value, e.g. mcts.children=3 (repeatable; wins over the budget mapping)")
	fl.StringArrayVar(&f.fields, "field", nil, "for a JSONL file: item field=JSON key, e.g. problem=question, truth=answer, id=uid (repeatable)")
	fl.StringVar(&f.pack, "pack", "", "task pack for a JSONL file's problems: generic, gsm8k, math, game24, humaneval (default generic)")
	fl.StringVar(&f.grader, "grader", "", "grader: gsm8k, math, game24, humaneval, exact (default: the pack's)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress bar and no summary on stderr")
	fl.BoolVar(&f.retryErrors, "retry-errors", false, "run again the problems whose record is an error")
	fl.BoolVar(&f.noTraces, "no-traces", false, "do not keep traces/ID.json (ponder export needs them)")
	fl.StringSliceVar(&f.tools, "tools", nil, "tools every search may call, comma-separated (react and pal need them; see ponder tools list)")
	fl.BoolVar(&f.oracle, "oracle", false, "give the search the ground truth (verifiers use it): for training data, not for accuracy")
	cmd.AddCommand(newEvalReportCmd())
	return cmd
}

// parseBudgets reads "10,20,40".
func parseBudgets(ss []string) ([]int64, error) {
	var out []int64
	for _, s := range ss {
		for _, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if err := checkDecimal(part); err != nil {
				// As every integer flag (decimalFlags).
				return nil, usageError("--budget-calls: %v", err)
			}
			v, err := strconv.ParseInt(part, 10, 64)
			if err != nil || v < 1 {
				return nil, usageError("--budget-calls %q: want positive whole numbers such as 10,20,40", s)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// parseStrategyParams reads strategy.name=value flags.
func parseStrategyParams(kvs []string) (map[string]core.Params, error) {
	out := map[string]core.Params{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		strategy, name, dot := strings.Cut(strings.TrimSpace(k), ".")
		if !ok || !dot || strategy == "" || name == "" {
			return nil, usageError("--param %q: want strategy.name=value, e.g. self-consistency.temperature=0.5", kv)
		}
		if strings.HasPrefix(v, "@") {
			b, err := os.ReadFile(v[1:])
			if err != nil {
				return nil, usageError("--param %s: %v", k, err)
			}
			v = string(b)
		}
		if out[strategy] == nil {
			out[strategy] = core.Params{}
		}
		out[strategy][name] = v
	}
	return out, nil
}

func parseFields(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
			return nil, usageError("--field %q: want field=key, e.g. problem=question", kv)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

func runEval(cmd *cobra.Command, f evalFlags) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	switch {
	case f.dataset == "":
		return usageError("--dataset is required: gsm8k, math500, game24, humaneval or a JSONL file")
	case len(f.strategies) == 0:
		return usageError("--strategies is required, e.g. --strategies cot,self-consistency,best-of-n")
	case f.out == "":
		return usageError("--out is required: the run directory, e.g. --out runs/%s", strings.TrimSuffix(filepath.Base(f.dataset), filepath.Ext(f.dataset)))
	case f.limit < 0 || f.offset < 0:
		return usageError("--limit and --offset must not be negative")
	case f.concurrency < 1:
		return usageError("--concurrency must be at least 1, got %d", f.concurrency)
	case f.budgetTokens < 0:
		return usageError("--budget-tokens must be positive, got %d", f.budgetTokens)
	case f.timeout < 0:
		return usageError("--timeout must be positive, got %s", f.timeout)
	}
	budgets, err := parseBudgets(f.budgets)
	if err != nil {
		return err
	}
	if len(budgets) == 0 {
		budgets = []int64{cfg.Search.BudgetCalls}
	}
	params, err := parseStrategyParams(f.params)
	if err != nil {
		return err
	}
	fields, err := parseFields(f.fields)
	if err != nil {
		return err
	}
	// "cot," or "cot, mcts" name two strategies at most, as budgets do.
	var strategies []string
	for _, s := range f.strategies {
		if s = strings.TrimSpace(s); s != "" {
			strategies = append(strategies, s)
		}
	}
	if f.strategies = strategies; len(strategies) == 0 {
		return usageError("--strategies is required, e.g. --strategies cot,self-consistency,best-of-n")
	}
	// The packs are tasks' and eval's own (humaneval): the engine's error
	// named only the first.
	if f.pack != "" {
		if _, err := eval.Packs(standard.Packs)(f.pack); err != nil {
			known := append(tasks.Names(), eval.HumanEval{}.Name())
			slices.Sort(known)
			return usageError("--pack %q: unknown task pack (known: %s)", f.pack, strings.Join(slices.Compact(known), ", "))
		}
	}
	d, err := eval.LoadDataset(f.dataset, &eval.DatasetOptions{Fields: fields, Pack: f.pack, Grader: f.grader})
	if err != nil {
		return usageError("%v", err)
	}
	ew := cmd.ErrOrStderr()
	if !f.quiet {
		reportSkipped(ew, d)
	}
	if len(d.Items) == 0 {
		return usageError("dataset %s has no usable problems", d.Name)
	}
	log := newLogger(cfg.Log, ew)
	// Searches only read documents (the retrieve tool, grounding): the
	// store is shared, so `ponder search` and solves run beside an eval
	// of hours.
	a, err := newAppWith(cmd.Context(), cfg, log, appOptions{readOnlyStore: true})
	if err != nil {
		return err
	}
	defer a.Close()
	// Eval keeps its traces in its run directory, not in the data dir's
	// trace store (whose newest-N would be flooded).
	opts := a.engOpts
	opts.OnStart, opts.OnEnd = nil, nil
	opts.Packs = eval.Packs(opts.Packs)
	opts.Limiter = a.engine.Limiter()
	if log.GetLevel() < zerolog.WarnLevel && log.GetLevel() > zerolog.DebugLevel {
		// One "solve finished" line per search would bury the progress
		// bar; --log-level debug brings them back.
		opts.Logger = log.Level(zerolog.WarnLevel)
	}
	eng := core.NewEngine(a.policy, a.reg, &opts)

	o := eval.Options{
		Out: f.out, Dataset: d, Strategies: f.strategies, Budgets: budgets, Params: params, Seed: f.seed,
		Offset: f.offset, Limit: f.limit, Concurrency: f.concurrency, Model: cfg.LLM.Model, Oracle: f.oracle, Tools: f.tools,
		BudgetTokens: f.budgetTokens, Timeout: f.timeout, RetryErrors: f.retryErrors, NoTraces: f.noTraces,
		Logger: log, Version: version,
	}
	if d.Grader == "humaneval" {
		if ut, ok := unitTests(a); ok {
			o.GraderOptions.UnitTests = ut
		}
	}
	for s := range params {
		if !slices.Contains(f.strategies, s) {
			return usageError("--param %s.…: strategy %s is not in --strategies", s, s)
		}
	}
	// A bad strategy or parameter is the first thing to fix; then the LLM.
	for _, s := range f.strategies {
		if _, err := a.reg.Strategy(s); err != nil {
			return exitError{code: 2, err: err}
		}
	}
	if err := a.requireLLM(); err != nil {
		return err
	}
	prog := newEvalProgress(ew, f.quiet)
	o.OnStart = prog.start
	o.OnRecord = prog.record
	sum, err := eval.Run(cmd.Context(), eng, o)
	prog.finish()
	if err != nil {
		if errors.Is(err, core.ErrInvalidTask) || errors.Is(err, eval.ErrConfigMismatch) || errors.Is(err, eval.ErrNoSandbox) ||
			errors.Is(err, eval.ErrBadOptions) {
			return exitError{code: 2, err: err}
		}
		return err
	}
	recs, _, rerr := eval.ReadRecords(filepath.Join(f.out, eval.ResultsFile))
	if rerr == nil {
		printSummary(cmd.OutOrStdout(), recs, f.strategies, budgets)
	}
	if !f.quiet {
		if sum.RemovedTraces > 0 {
			fmt.Fprintf(ew, "removed %d files of %s that no record names (a run was stopped between saving a trace and its record; "+
				"its search ran again)\n", sum.RemovedTraces, text.Terminal(filepath.Join(f.out, eval.TracesDir)))
		}
		fmt.Fprintf(ew, "%d of %d runs done (%d this time, %d errors); results in %s\n",
			sum.Done+sum.Ran, sum.Jobs, sum.Ran, sum.Errors, filepath.Join(f.out, eval.ResultsFile))
		// Errors count as done: without this a rerun after fixing the
		// endpoint says "0 this time" and leaves them be.
		if n := sum.Errors + countErrors(sum.Previous); n > 0 {
			fmt.Fprintf(ew, "%d of these runs are errors (the LLM or the grader failed: see each record's error, or `ponder eval report %s`); "+
				"they are left out of accuracy. Once the cause is fixed, run the same command with --retry-errors to run them again\n",
				n, text.Terminal(f.out))
		}
	}
	if sum.Interrupted {
		return exitError{code: 130, err: fmt.Errorf("interrupted: %d of %d runs are done and kept; run the same command again to continue",
			sum.Done+sum.Ran, sum.Jobs)}
	}
	return nil
}

func countErrors(recs []eval.Record) int {
	n := 0
	for _, r := range recs {
		if r.Status == eval.StatusError {
			n++
		}
	}
	return n
}

// unitTests returns the unit-test verifier with the app's sandbox, when
// the sandbox is available.
func unitTests(a *app) (func(string) (core.Evaluator, error), bool) {
	ev, err := a.reg.Evaluator("unittest", nil)
	if err != nil {
		return nil, false
	}
	if u, ok := ev.(evaluator.UnitTest); ok && u.Runner == nil {
		return nil, false
	}
	return func(entry string) (core.Evaluator, error) {
		return a.reg.Evaluator("unittest", core.Params{"entry_point": entry})
	}, true
}

func reportSkipped(w io.Writer, d *eval.Dataset) {
	for i, s := range d.Skipped {
		if i == 20 {
			fmt.Fprintf(w, "dataset %s: %d more lines skipped\n", d.Name, len(d.Skipped)-20)
			break
		}
		// The error quotes the line, which is the dataset's text.
		fmt.Fprintf(w, "dataset %s: line %d skipped: %s\n", text.Terminal(d.Name), s.Line, text.Terminal(s.Err.Error()))
	}
}

// evalProgress draws a progress bar with ETA, accuracy so far and LLM
// calls used, on a terminal only.
type evalProgress struct {
	w       io.Writer
	tty     bool
	bar     *progressbar.ProgressBar
	correct int
	graded  int
	errors  int
	calls   int64
}

func newEvalProgress(w io.Writer, quiet bool) *evalProgress {
	p := &evalProgress{w: w}
	if quiet {
		return p
	}
	if f, ok := w.(*os.File); !ok || !isatty.IsTerminal(f.Fd()) {
		return p
	}
	p.tty = true
	return p
}

func (p *evalProgress) start(plan eval.Plan) {
	for _, r := range plan.Previous {
		p.count(r)
	}
	if !p.tty || plan.ToRun == 0 {
		return
	}
	p.bar = progressbar.NewOptions(plan.ToRun,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(p.describe()),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)
}

func (p *evalProgress) count(r eval.Record) {
	switch r.Status {
	case eval.StatusCorrect:
		p.correct++
		p.graded++
	case eval.StatusWrong:
		p.graded++
	default:
		p.errors++
	}
}

func (p *evalProgress) record(r eval.Record) {
	p.count(r)
	p.calls += r.Usage.LLMCalls
	if p.bar == nil {
		return
	}
	p.bar.Describe(p.describe())
	_ = p.bar.Add(1)
}

func (p *evalProgress) describe() string {
	acc := "–"
	if p.graded > 0 {
		acc = fmt.Sprintf("%.1f%%", 100*float64(p.correct)/float64(p.graded))
	}
	return fmt.Sprintf("acc %s · %d errors · %d calls", acc, p.errors, p.calls)
}

func (p *evalProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

func printSummary(w io.Writer, recs []eval.Record, strategies []string, budgets []int64) {
	rows := report.Summarize(recs, strategies, nil)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STRATEGY\tBUDGET\tGRADED\tACCURACY\t95% CI\tERRORS\tMEAN CALLS\tMEAN TOKENS")
	for _, r := range rows {
		if !slices.Contains(strategies, r.Strategy) || !slices.Contains(budgets, r.Budget) {
			continue
		}
		acc, ci := "–", "–"
		if r.Graded > 0 {
			acc = fmt.Sprintf("%.1f%%", 100*r.Accuracy)
			ci = fmt.Sprintf("%.1f–%.1f%%", 100*r.Low, 100*r.High)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%.1f\t%.0f\n", text.Terminal(r.Strategy), r.Budget, r.Graded, acc, ci, r.Errors,
			r.MeanCalls, r.MeanTokens)
	}
	tw.Flush()
}

func newEvalReportCmd() *cobra.Command {
	var outDir string
	var ks []int
	cmd := &cobra.Command{
		Use:   "report DIR",
		Short: "Write the Markdown report and plots of a run directory",
		Long: "Write DIR/report.md (accuracy with 95% Wilson intervals, errors apart, mean LLM calls and tokens per\n" +
			"strategy and budget, pass@k) and plots of accuracy against LLM calls and against tokens\n" +
			"(accuracy_vs_calls.png/.svg, accuracy_vs_tokens.png/.svg), one line per strategy.",
		Example: "  ponder eval report runs/g24\n  ponder eval report runs/g24 --out site/g24 --pass-k 1,10",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, k := range ks {
				if k < 1 {
					return usageError("--pass-k %d: k must be at least 1", k)
				}
			}
			r, err := report.Load(args[0], ks...)
			if err != nil {
				return usageError("%v", err)
			}
			if len(r.Records) == 0 && len(r.Bad) > 0 {
				return usageError("%s has no records: no line of its %s is one (%d bad, first line %d: %v)", args[0],
					eval.ResultsFile, len(r.Bad), r.Bad[0].Line, r.Bad[0].Err)
			}
			if len(r.Records) == 0 {
				return usageError("%s has no records yet: run `ponder eval --out %s` first", args[0], args[0])
			}
			dir := outDir
			if dir == "" {
				dir = args[0]
			}
			files, err := r.Write(dir)
			if err != nil {
				return err
			}
			// report.md keeps the text as it is; the terminal gets it
			// inert (error messages in it quote models and tools).
			fmt.Fprint(cmd.OutOrStdout(), text.Terminal(r.Markdown()))
			for _, f := range files {
				fmt.Fprintln(cmd.ErrOrStderr(), "wrote "+text.Terminal(f))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&outDir, "out", "", "directory for report.md and the plots (default: DIR)")
	cmd.Flags().IntSliceVar(&ks, "pass-k", report.DefaultKs, "k of the pass@k columns")
	return cmd
}

func newExportCmd() *cobra.Command {
	var from []string
	var format, out string
	var pairs int
	var closers []func()
	cmd := &cobra.Command{
		Use:   "export --from DIR|TRACE... --format sft|prm|value|dpo",
		Short: "Turn search traces into training data (JSONL): SFT pairs, PRM step labels, value targets, preference pairs",
		Long: "Read the traces of eval run directories (or trace files from `ponder solve --trace`) and write JSONL:\n" +
			"  sft    prompt + verified-correct solution path\n" +
			"  prm    solution paths with a label per step (from the outcomes below each step, and MCTS values)\n" +
			"  value  value targets per node in [-1, 1] (x1 style: outcome ±1, MCTS Q, or 2p − 1)\n" +
			"  dpo    preference pairs from sibling nodes with different outcomes\n" +
			"Answers are graded with the run's grader and ground truth. See docs/eval.md for every field.",
		Example: "  ponder export --from runs/g24 --format sft --out g24-sft.jsonl\n  ponder export --from trace.json --format value",
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			from = append(from, args...)
			if !slices.Contains(export.Formats(), format) {
				return usageError("--format %q: want one of %s", format, strings.Join(export.Formats(), ", "))
			}
			if len(from) == 0 {
				return usageError("--from is required: a run directory (the --out of `ponder eval`) or trace files")
			}
			if pairs < 1 {
				return usageError("--pairs-per-node must be at least 1, got %d", pairs)
			}
			srcs, warnings, err := export.Collect(from)
			if err != nil {
				return usageError("%v", err)
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+text.Terminal(w))
			}
			o := export.Options{Format: format, PairsPerNode: pairs}
			// HumanEval answers are graded by running their tests: the
			// sandbox is set up when the first one needs it.
			var (
				once sync.Once
				ut   func(string) (core.Evaluator, error)
			)
			o.GraderOptions.UnitTests = func(entry string) (core.Evaluator, error) {
				once.Do(func() {
					cfg, err := loadConfig(cmd)
					if err != nil {
						return
					}
					a, err := newApp(cmd.Context(), cfg, newLogger(cfg.Log, cmd.ErrOrStderr()))
					if err != nil {
						return
					}
					closers = append(closers, a.Close)
					if f, ok := unitTests(a); ok {
						ut = f
					} else {
						fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+eval.ErrNoSandbox.Error()+"; HumanEval answers stay unlabeled")
					}
				})
				if ut == nil {
					return nil, eval.ErrNoSandbox
				}
				return ut(entry)
			}
			defer func() {
				for _, c := range closers {
					c()
				}
			}()
			return writeExport(cmd.Context(), cmd, srcs, o, out)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&from, "from", nil, "run directory or trace file (repeatable; also as arguments)")
	fl.StringVar(&format, "format", "", "sft, prm, value or dpo (required)")
	fl.StringVarP(&out, "out", "o", "", "output file (default: stdout)")
	fl.IntVar(&pairs, "pairs-per-node", 4, "dpo: most preference pairs taken from one node's children")
	return cmd
}

// outDirError says why no file could be made in dir, the directory of
// --out: the error of os.CreateTemp names the temporary file the user never
// asked for (open nodir/.export-3097025403: no such file or directory).
func outDirError(dir string, err error) error {
	st, serr := os.Stat(dir)
	switch {
	case errors.Is(serr, os.ErrNotExist):
		return fmt.Errorf("directory %s does not exist", dir)
	case serr != nil:
		return serr
	case !st.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot create a file in %s: %w", dir, pe.Err)
	}
	return err
}

// errWriter keeps the first error of the writer it wraps.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// outMode is the mode --out gets: the file's it replaces, else the one
// the umask gives a new file (as `> out` would), not os.CreateTemp's 0600,
// which a trainer running as another user could not read.
func outMode(out string) os.FileMode {
	if st, err := os.Stat(out); err == nil {
		return st.Mode().Perm()
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return 0o600
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0o600
	}
	return st.Mode().Perm()
}

func writeExport(ctx context.Context, cmd *cobra.Command, srcs []export.Source, o export.Options, out string) error {
	w := cmd.OutOrStdout()
	var tmp *os.File
	if out != "" {
		dir := filepath.Dir(out)
		// Checked before any trace is read: the rename at the end would
		// fail on a directory, naming the temporary file.
		if st, err := os.Stat(out); err == nil && st.IsDir() {
			return usageError("--out %s is a directory: name a file, such as %s", out, filepath.Join(out, "export.jsonl"))
		}
		f, err := os.CreateTemp(dir, ".export-*")
		if err != nil {
			return usageError("--out %s: %v", out, outDirError(dir, err))
		}
		defer os.Remove(f.Name())
		tmp, w = f, f
	}
	ew := &errWriter{w: w}
	st, err := export.Write(ctx, ew, srcs, o)
	if err != nil {
		if tmp != nil {
			tmp.Close()
		}
		if ew.err != nil {
			// A full disk or a closed pipe, not the trace being read
			// then, nor the temporary file the user never named.
			werr := ew.err
			var pe *os.PathError
			if errors.As(werr, &pe) {
				werr = pe.Err
			}
			if tmp != nil {
				if _, serr := os.Stat(out); serr == nil {
					return fmt.Errorf("write %s: %w; the file is left as it was", out, werr)
				}
				return fmt.Errorf("write %s: %w; nothing was written", out, werr)
			}
			return fmt.Errorf("write the %s lines to stdout: %w", o.Format, werr)
		}
		return err
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("write %s: %w", out, err)
		}
		if err := tmp.Chmod(outMode(out)); err != nil {
			tmp.Close()
			return fmt.Errorf("write %s: %w", out, err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
		if err := os.Rename(tmp.Name(), out); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
	}
	for _, w := range st.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: skipped "+text.Terminal(w))
	}
	if st.Skipped > len(st.Warnings) {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: skipped %d more unreadable traces\n", st.Skipped-len(st.Warnings))
	}
	dest := out
	if dest == "" {
		dest = "stdout"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%d %s lines from %d traces to %s (%d answers labeled, %d unlabeled, %d duplicates left out)\n",
		st.Lines, o.Format, st.Traces, dest, st.Labeled, st.Unlabeled, st.Duplicates)
	return nil
}
