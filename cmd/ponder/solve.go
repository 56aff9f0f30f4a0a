package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/retrieval/embed"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/traces"
)

type solveFlags struct {
	strategy     string
	params       []string
	pack         string
	budgetCalls  int64
	budgetTokens int64
	budgetTools  int64
	timeout      time.Duration
	jsonOut      bool
	traceFile    string
	tools        []string
	collection   string
	seed         int64
	truth        string
}

// solveOutput is what `ponder solve --json` prints.
type solveOutput struct {
	Answer   string      `json:"answer"`
	Strategy string      `json:"strategy"`
	Pack     string      `json:"pack"`
	BestPath []solveStep `json:"best_path"`
	Score    *float64    `json:"score,omitempty"`
	// Verified is the pack's check of the answer (core.Result.Verified).
	Verified      *bool           `json:"verified,omitempty"`
	Usage         core.Usage      `json:"usage"`
	StoppedReason core.StopReason `json:"stopped_reason"`
	Error         string          `json:"error,omitempty"`
	// Warnings say what failed without stopping the search.
	Warnings  []string `json:"warnings,omitempty"`
	TraceID   string   `json:"trace_id"`
	TraceFile string   `json:"trace_file,omitempty"`
	// TraceError says why the trace was not kept in the data directory or
	// not written to --trace FILE (a full or read-only disk).
	TraceError string `json:"trace_error,omitempty"`
}

type solveStep struct {
	Node    core.NodeID   `json:"node"`
	Kind    core.NodeKind `json:"kind"`
	Content string        `json:"content"`
	Answer  string        `json:"answer,omitempty"`
	Score   *float64      `json:"score,omitempty"`
	Visits  int           `json:"visits,omitempty"`
}

func newSolveCmd() *cobra.Command {
	var f solveFlags
	cmd := &cobra.Command{
		Use:   `solve [flags] "problem"`,
		Short: "Solve one problem with a reasoning strategy (the problem may also come on stdin)",
		Example: `  ponder solve --strategy self-consistency --param k=16 --json "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"
  ponder solve --strategy mcts --json "4 9 10 13"
  echo "What is 17 * 23?" | ponder solve`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runSolve(cmd, args, f) },
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.strategy, "strategy", "s", "", "strategy (see ponder strategies; default cot or the configured one)")
	fl.StringArrayVarP(&f.params, "param", "p", nil, "strategy parameter as name=value (repeatable; value @FILE reads a file)")
	fl.StringVar(&f.pack, "pack", "auto", "task pack: auto, generic, gsm8k, math, game24, ...")
	fl.Int64Var(&f.budgetCalls, "budget-calls", 0, "most LLM calls (samples) the search may make (default from config: 64)")
	fl.Int64Var(&f.budgetTokens, "budget-tokens", 0, "most prompt+completion tokens the search may use (default: no limit)")
	fl.Int64Var(&f.budgetTools, "budget-tool-calls", 0, "most tool calls the search may make (default: no limit)")
	fl.DurationVar(&f.timeout, "timeout", 0, "wall-time limit, e.g. 30s (default from config: 10m)")
	fl.BoolVar(&f.jsonOut, "json", false, "print one JSON object with answer, best path, usage and stopped_reason")
	fl.StringVar(&f.traceFile, "trace", "", "write the full trace (JSON, docs/trace.schema.json) to this file")
	fl.StringSliceVar(&f.tools, "tools", nil, "tools the search may call (see ponder tools list)")
	fl.StringVar(&f.collection, "collection", "", "document collection to ground the search on")
	fl.Int64Var(&f.seed, "seed", 0, "seed for sampling (same seed, same requests)")
	fl.StringVar(&f.truth, "truth", "", "known correct answer, for verifiers (evaluation)")
	return cmd
}

// usageError marks errors in what the user typed (exit status 2).
func usageError(format string, a ...any) error {
	return exitError{code: 2, err: fmt.Errorf(format, a...)}
}

func parseParams(kvs []string) (core.Params, error) {
	p := core.Params{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usageError("--param %q: want name=value", kv)
		}
		if strings.HasPrefix(v, "@") {
			b, err := os.ReadFile(v[1:])
			if err != nil {
				return nil, usageError("--param %s: %v", k, err)
			}
			v = string(b)
		}
		k = strings.TrimSpace(k)
		if _, twice := p[k]; twice {
			// The last would win without a word, as eval refuses too.
			return nil, usageError("--param %s is given twice: keep one", k)
		}
		p[k] = v
	}
	return p, nil
}

// maxProblemBytes bounds a problem read from stdin.
const maxProblemBytes = 1 << 20

// checkTraceFile tells before a search whether --trace FILE can be written,
// so a typo does not cost a search's calls.
func checkTraceFile(path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return usageError("--trace %s is a directory: name a file", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".trace-*")
	if err != nil {
		return usageError("--trace %s cannot be written: %v", path, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

func readProblem(cmd *cobra.Command, args []string) (string, error) {
	if len(args) > 0 {
		return strings.Join(args, " "), nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return "", usageError("no problem given: pass it as an argument or on stdin")
		}
	}
	// Reading stdin does not heed Ctrl-C, and a pipe whose writer never
	// closes it would keep Ponder waiting: the read runs aside, and an
	// interrupt ends the wait. (A blocked read of stdin cannot be undone;
	// the process exits right after.)
	type read struct {
		b   []byte
		err error
	}
	got := make(chan read, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(in, maxProblemBytes+1))
		got <- read{b, err}
	}()
	var b []byte
	select {
	case r := <-got:
		if r.err != nil {
			return "", fmt.Errorf("read problem from stdin: %w", r.err)
		}
		b = r.b
	case <-cmd.Context().Done():
		return "", exitError{code: 130, err: errors.New("interrupted while reading the problem from stdin (end it with Ctrl-D, or pass the problem as an argument)")}
	}
	if len(b) > maxProblemBytes {
		return "", usageError("the problem on stdin is longer than %d bytes", maxProblemBytes)
	}
	return string(b), nil
}

func runSolve(cmd *cobra.Command, args []string, f solveFlags) error {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	problem, err := readProblem(cmd, args)
	if err != nil {
		return err
	}
	if strings.TrimSpace(problem) == "" {
		return usageError("the problem is empty: pass it as an argument or on stdin")
	}
	params, err := parseParams(f.params)
	if err != nil {
		return err
	}
	fl := cmd.Flags()
	if fl.Changed("budget-calls") && f.budgetCalls <= 0 {
		return usageError("--budget-calls must be at least 1, got %d", f.budgetCalls)
	}
	if fl.Changed("budget-tokens") && f.budgetTokens <= 0 {
		return usageError("--budget-tokens must be at least 1, got %d", f.budgetTokens)
	}
	if fl.Changed("budget-tool-calls") && f.budgetTools <= 0 {
		return usageError("--budget-tool-calls must be at least 1, got %d", f.budgetTools)
	}
	if fl.Changed("timeout") && f.timeout <= 0 {
		return usageError("--timeout must be positive, got %s", f.timeout)
	}
	if f.traceFile != "" {
		if err := checkTraceFile(f.traceFile); err != nil {
			return err
		}
	}
	log := newLogger(cfg.Log, cmd.ErrOrStderr())
	cfg.Server.RecordPrompt = cfg.Server.RecordPrompt || f.traceFile != ""
	// A solve only reads documents: searches (and other solves) of the
	// store run beside it, however long it takes.
	a, err := newAppWith(cmd.Context(), cfg, log, appOptions{readOnlyStore: true})
	if err != nil {
		return err
	}
	defer a.Close()
	pack := f.pack
	if pack == "auto" || pack == "" {
		pack = tasks.Detect(problem)
		if cfg.Search.Pack != "generic" && pack == "generic" {
			pack = cfg.Search.Pack
		}
	}
	task := core.Task{
		Problem: problem, Pack: pack, Strategy: f.strategy, Params: params, Truth: f.truth,
		Limits: core.Limits{LLMCalls: f.budgetCalls, Tokens: f.budgetTokens, ToolCalls: f.budgetTools, WallTime: f.timeout},
		Tools:  f.tools, Collection: f.collection, Seed: f.seed,
	}
	// Reject a bad task before asking whether an LLM is there: a typo in a
	// parameter is the first thing to fix.
	if err := a.engine.Validate(task); err != nil {
		return exitError{code: 2, err: err}
	}
	// A collection that is not there is said before the run, as MCP's
	// solve says it: the run started, printed "(no answer)" and kept a
	// trace first.
	if f, ok := a.retriever.(interface {
		MissingCollection(context.Context, string) bool
	}); ok && task.Collection != "" && f.MissingCollection(cmd.Context(), task.Collection) {
		return fmt.Errorf("no such collection %q: ingest documents into it first (`ponder ingest --collection %s PATH`; `ponder collections list` shows those there are)",
			task.Collection, task.Collection)
	}
	if err := a.requireLLM(); err != nil {
		return err
	}
	// Ctrl-C cancels the search but we still print the best answer so far:
	// Solve returns once the strategy has noticed.
	res, err := a.engine.Solve(cmd.Context(), task)
	if err != nil {
		return exitError{code: 2, err: err}
	}
	out := solveOutput{
		Answer: res.Answer, Strategy: res.Strategy, Pack: pack, Score: res.Score, Verified: res.Verified, Usage: res.Usage,
		StoppedReason: res.Stopped, Error: res.Error, Warnings: res.Warnings, TraceID: res.TraceID, TraceFile: f.traceFile,
		BestPath: []solveStep{},
	}
	// A trace that cannot be kept does not cost the answer: it is printed,
	// saying what was not kept.
	var traceErrs []string
	if a.traces != nil {
		if err := a.traces.SaveError(res.TraceID); err != nil {
			traceErrs = append(traceErrs, "not kept in the data directory: "+err.Error())
		}
	}
	var fileErr error
	if f.traceFile != "" {
		if fileErr = traces.WriteFile(f.traceFile, res.Trace); fileErr != nil {
			out.TraceFile = ""
			traceErrs = append(traceErrs, "not written to "+f.traceFile+": "+fileErr.Error())
		}
	}
	if len(traceErrs) > 0 {
		out.TraceError = "trace " + strings.Join(traceErrs, "; ")
	}
	for _, n := range res.BestPath {
		if n.Kind == core.KindProblem {
			continue
		}
		st := solveStep{Node: n.ID, Kind: n.Kind, Content: n.Content, Answer: n.Answer, Visits: n.Visits}
		if s, ok := n.Score(); ok {
			st.Score = &s
		}
		out.BestPath = append(out.BestPath, st)
	}
	w := cmd.OutOrStdout()
	if f.jsonOut {
		if err := printJSON(w, out); err != nil {
			return err
		}
	} else {
		printHuman(w, cmd.ErrOrStderr(), out)
	}
	if fileErr != nil {
		return fmt.Errorf("--trace %s: %w (the answer was printed)", f.traceFile, fileErr)
	}
	return solveExit(res, cfg.LLM.BaseURL, embedEndpoint(cfg))
}

// printHuman writes the answer to w and the steps and summary to ew. What
// the model, its tools and documents wrote goes through text.Terminal: an
// escape sequence in a step must not retitle or clear the terminal
// (--json keeps it, escaped by JSON).
func printHuman(w, ew io.Writer, out solveOutput) {
	for i, st := range out.BestPath {
		fmt.Fprintf(ew, "step %d: %s\n", i+1, strings.TrimSpace(text.Terminal(st.Content)))
	}
	if out.Answer != "" {
		fmt.Fprintln(w, text.Terminal(out.Answer))
	} else {
		fmt.Fprintln(w, "(no answer)")
	}
	verified := ""
	if out.Verified != nil && *out.Verified {
		verified = ", answer checked by the pack" // a rejected one has a warning
	}
	fmt.Fprintf(ew, "strategy %s, stopped: %s%s, %s, %d+%d tokens, %.0f ms, trace %s\n",
		text.Terminal(out.Strategy), out.StoppedReason, verified, text.Count(int(out.Usage.LLMCalls), "LLM call"), out.Usage.PromptTokens, out.Usage.CompletionTokens,
		out.Usage.WallMS, out.TraceID)
	// A search that failed without an answer says why once, as the
	// command's error (solveExit), not also as a note.
	if out.Error != "" && out.StoppedReason != core.StopDone && (out.StoppedReason != core.StopError || out.Answer != "") {
		fmt.Fprintln(ew, "note: "+text.Terminal(out.Error))
	}
	for _, w := range out.Warnings {
		fmt.Fprintln(ew, "warning: "+text.Terminal(w))
	}
	if out.TraceError != "" {
		fmt.Fprintln(ew, "note: "+text.Terminal(out.TraceError))
	}
}

// solveExit maps how a search ended to the exit status: 0 when it finished
// or used up its budget or time, 130 when cancelled, 1 on an error.
// llmURL and embedURL are the configured endpoints, named when they fail.
func solveExit(res core.Result, llmURL, embedURL string) error {
	switch res.Stopped {
	case core.StopCancelled:
		if res.Answer == "" {
			return exitError{code: 130, err: errors.New("cancelled before an answer was found")}
		}
		return exitError{code: 130, err: errors.New("cancelled; printed the best answer so far")}
	case core.StopError:
		if res.Answer == "" {
			msg := "search failed: " + res.Error
			// The LLM client's messages say "the LLM endpoint", not where
			// it is (they also reach server clients and traces): the user
			// at the command line is told which one they configured.
			if llmURL != "" && isLLMError(res.Err) {
				msg += " (the LLM endpoint: " + redactedURL(llmURL) + ")"
			}
			// The same for the embedder of a grounded search.
			if embedURL != "" && errors.Is(res.Err, embed.ErrEmbedder) {
				msg += " (the embedding endpoint: " + embedURL + ")"
			}
			return exitError{code: 1, err: errors.New(msg)}
		}
	}
	return nil
}

// isLLMError reports whether err is the LLM endpoint failing.
func isLLMError(err error) bool {
	for _, e := range []error{core.ErrLLMUnavailable, core.ErrLLMAuth, core.ErrLLMRateLimited, core.ErrLLMBadResponse} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// redactedURL is raw without its password, as logs and messages may show
// it.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}
