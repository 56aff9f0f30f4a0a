package eval

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/traces"
)

// Options configure Run.
type Options struct {
	// Out is the run directory: manifest.json, results.jsonl, traces/.
	Out     string
	Dataset *Dataset
	// Strategies are registered strategy names; Budgets are LLM-call
	// budgets, each mapped onto every strategy by BudgetParams.
	Strategies []string
	Budgets    []int64
	// Params are the user's parameters by strategy; they win over the
	// budget mapping.
	Params map[string]core.Params
	Seed   int64
	// Offset and Limit select Dataset.Items[Offset:Offset+Limit] (Limit
	// <= 0: all).
	Offset, Limit int
	// Concurrency is how many problems are solved at once (default 4);
	// the engine's limiter bounds concurrent LLM requests across them.
	Concurrency int
	// Model is the model name recorded in the manifest (it is part of the
	// configuration).
	Model string
	// Oracle passes the ground truth to the search (Task.Truth), so
	// verifiers can use it: for generating training data as x1 does, never
	// for accuracy numbers.
	Oracle bool
	// Tools are the tools every search may call (Task.Tools): react and
	// pal need them.
	Tools []string
	// BudgetTokens and Timeout bound each run further (0: no bound).
	BudgetTokens int64
	Timeout      time.Duration
	// RetryErrors runs again what ended in error; by default every
	// recorded (problem, strategy, budget) is done.
	RetryErrors bool
	// NoTraces skips writing traces/ID.json (export needs them).
	NoTraces bool
	// Grader overrides the dataset's grader; GraderOptions build it
	// otherwise.
	Grader        Grader
	GraderOptions GraderOptions
	// OnStart is told the plan before the first problem; OnRecord gets
	// every record once it is on disk. Calls are serialised.
	OnStart  func(Plan)
	OnRecord func(Record)
	Logger   zerolog.Logger
	// Version is Ponder's version, kept in the manifest.
	Version string
}

// Plan is what a run will do.
type Plan struct {
	Items int // problems selected
	Jobs  int // items × strategies × budgets
	Done  int // already in results.jsonl
	ToRun int
	// Previous are the records already there that count toward this
	// run's jobs (for progress bars that start from them).
	Previous []Record
}

// Summary is what a run did.
type Summary struct {
	Plan
	Ran    int // records written by this run
	Errors int // of them, errors
	// Interrupted is set when the context ended the run early: what
	// finished is on disk, and running the same command continues.
	Interrupted bool
	// RemovedTraces counts the trace files no record named that the run
	// removed before it started (see removeOrphanTraces).
	RemovedTraces int
}

// ErrBadOptions is matched (errors.Is) by the errors of options the user
// has to change: no strategies, a budget under 1, a strategy listed twice,
// an --offset past the dataset, an --out whose manifest is unreadable.
var ErrBadOptions = errors.New("bad eval options")

type optionsError struct{ msg string }

func (e *optionsError) Error() string        { return e.msg }
func (e *optionsError) Is(target error) bool { return target == ErrBadOptions }

func badOptions(format string, a ...any) error {
	return &optionsError{fmt.Sprintf(format, a...)}
}

// ErrLLMDown is matched (errors.Is) by the error of a run that stopped
// because the LLM endpoint could not be reached (connection refused, an
// unknown host) or refused the credentials for DownAfter runs in a row:
// every further search would fail the same way, slowly, after the client's
// retries. What finished is kept; the failed runs are error records that
// --retry-errors runs again.
var ErrLLMDown = errors.New("eval stopped: the LLM endpoint is unreachable or refuses the credentials")

// DownAfter is how many runs in a row must fail to reach the LLM before
// Run stops (ErrLLMDown): twice the concurrency, at least 8.
func (o *Options) DownAfter() int { return max(8, 2*o.Concurrency) }

// unreachable reports whether a search's error says that the LLM endpoint
// cannot be reached or will not take the credentials, rather than failing
// this one request.
func unreachable(err error) bool {
	var dns *net.DNSError
	return err != nil && (errors.Is(err, core.ErrLLMAuth) || errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dns))
}

// job is one (problem, strategy, budget).
type job struct {
	index    int
	item     Item
	strategy string
	budget   int64
}

// Run evaluates strategies on a dataset at matched compute: every
// selected problem is solved by every strategy at every budget, graded,
// and appended to Out/results.jsonl (synced) with its trace in
// Out/traces. Records already there are skipped, so an interrupted run
// continues where it stopped; a directory of another configuration is
// refused (ErrConfigMismatch). eng must resolve the dataset's pack (see
// Packs). An LLM failure makes an error record, not a wrong one.
func Run(ctx context.Context, eng *core.Engine, o Options) (Summary, error) {
	var sum Summary
	if err := o.check(); err != nil {
		return sum, err
	}
	d := o.Dataset
	items := Select(d.Items, o.Offset, o.Limit)
	if len(items) == 0 {
		return sum, badOptions("no problems selected: the dataset has %d, --offset is %d", len(d.Items), o.Offset)
	}
	grader := o.Grader
	if grader == nil {
		g, err := NewGrader(d.Grader, &o.GraderOptions)
		if err != nil {
			return sum, err
		}
		grader = g
		if d.Grader == "humaneval" && o.GraderOptions.UnitTests == nil {
			return sum, ErrNoSandbox
		}
	}
	// Reject a bad strategy or parameter before any LLM call.
	for _, s := range o.Strategies {
		for _, b := range o.Budgets {
			t := o.task(items[0], s, b)
			if err := eng.Validate(t); err != nil {
				return sum, fmt.Errorf("strategy %s at budget %d: %w", s, b, err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(o.Out, TracesDir), 0o700); err != nil {
		return sum, fmt.Errorf("create run directory: %w", err)
	}
	unlock, err := lockDir(o.Out)
	if err != nil {
		return sum, err
	}
	defer unlock()
	cfg := o.config()
	now := time.Now().UTC()
	man := &Manifest{Schema: ManifestSchema, ConfigHash: cfg.Hash(), Config: cfg, Created: now}
	if old, err := ReadManifest(o.Out); err == nil {
		// A strategy's --param values give its records their meaning, not
		// other strategies': a run of some of the directory's strategies
		// needs only theirs, and a new strategy may bring its own.
		params, err := mergeParams(o.Out, old, o.Params, o.Strategies)
		if err != nil {
			return sum, err
		}
		cmp := cfg
		cmp.Params = old.Config.Params
		if err := checkConfig(o.Out, old, cmp); err != nil {
			return sum, err
		}
		cfg.Params = params
		man.Config, man.ConfigHash = cfg, cfg.Hash()
		man.Created = old.Created
		man.Strategies, man.Budgets = old.Strategies, old.Budgets
	} else if !errors.Is(err, os.ErrNotExist) {
		return sum, badOptions("%v; use a new --out", err)
	} else if _, err := os.Stat(filepath.Join(o.Out, ResultsFile)); err == nil {
		return sum, fmt.Errorf("%w: --out %s has %s but no %s; use a new --out", ErrConfigMismatch, o.Out, ResultsFile, ManifestFile)
	}
	log, prev, named, err := openResults(filepath.Join(o.Out, ResultsFile))
	if err != nil {
		return sum, err
	}
	defer log.Close()
	sum.RemovedTraces = removeOrphanTraces(o.Out, named, o.Logger)
	man.Strategies = mergeStrings(man.Strategies, o.Strategies)
	man.Budgets = mergeInts(man.Budgets, o.Budgets)
	man.Rules = BudgetRules(man.Strategies, cfg.Params)
	man.Items = len(d.Items)
	man.Updated = now
	man.Version = o.Version
	if err := writeManifest(o.Out, man); err != nil {
		return sum, err
	}

	done := make(map[string]Record, len(prev))
	for _, r := range prev {
		done[r.Key] = r
	}
	var jobs []job
	for i, it := range items {
		for _, s := range o.Strategies {
			for _, b := range o.Budgets {
				sum.Jobs++
				if r, ok := done[RecordKey(it.ID, s, b)]; ok && !(o.RetryErrors && r.Status == StatusError) {
					sum.Done++
					sum.Previous = append(sum.Previous, r)
					continue
				}
				jobs = append(jobs, job{index: o.Offset + i, item: it, strategy: s, budget: b})
			}
		}
	}
	sum.Items, sum.ToRun = len(items), len(jobs)
	r := &runner{eng: eng, o: o, grader: grader, log: log, logger: o.Logger}
	o.Logger.Debug().Str("out", o.Out).Int("items", sum.Items).Int("jobs", sum.Jobs).Int("done", sum.Done).
		Int("to_run", sum.ToRun).Msg("eval starts")
	if o.OnStart != nil {
		o.OnStart(sum.Plan)
	}
	if err := r.runAll(ctx, jobs, &sum); err != nil {
		return sum, err
	}
	sum.Interrupted = ctx.Err() != nil && sum.Ran < sum.ToRun
	return sum, nil
}

func (o *Options) check() error {
	switch {
	case o.Out == "":
		return badOptions("no --out directory given: results need a place to live")
	case o.Dataset == nil:
		return badOptions("no dataset given")
	case len(o.Strategies) == 0:
		return badOptions("no strategies given: pass --strategies cot,self-consistency,...")
	case len(o.Budgets) == 0:
		return badOptions("no budgets given: pass --budget-calls 10,20,40")
	case o.Offset < 0 || o.Limit < 0:
		return badOptions("--offset and --limit must not be negative")
	}
	seen := map[string]bool{}
	for _, s := range o.Strategies {
		if seen[s] {
			return badOptions("strategy %s is listed twice", s)
		}
		seen[s] = true
	}
	budgets := map[int64]bool{}
	for _, b := range o.Budgets {
		if b < 1 {
			return badOptions("budget %d: budgets must be at least 1 LLM call", b)
		}
		if budgets[b] {
			// Each of its runs would be run, and recorded, twice.
			return badOptions("budget %d is listed twice", b)
		}
		budgets[b] = true
	}
	for s := range o.Params {
		if !seen[s] {
			return badOptions("--param %s.…: strategy %s is not in --strategies (%s)", s, s, strings.Join(o.Strategies, ","))
		}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	return nil
}

func (o *Options) config() RunConfig {
	c := RunConfig{
		Dataset: o.Dataset.Name, DatasetSHA256: o.Dataset.SHA256, Fields: o.Dataset.Fields, Pack: o.Dataset.Pack,
		Grader: o.Dataset.Grader, Seed: o.Seed, Model: o.Model, Oracle: o.Oracle, Tools: o.Tools, BudgetTokens: o.BudgetTokens,
		BudgetMapping: BudgetMappingVersion, Grading: GradingVersion,
	}
	if o.Timeout > 0 {
		c.Timeout = o.Timeout.String()
	}
	if len(o.Params) > 0 {
		c.Params = o.Params
	}
	return c
}

func (o *Options) task(it Item, strategy string, budget int64) core.Task {
	params, _ := BudgetParams(strategy, budget, o.Params[strategy])
	t := core.Task{
		Problem: it.Problem, Pack: it.Pack, Strategy: strategy, Params: params, Seed: o.Seed, Tools: o.Tools,
		Limits: core.Limits{LLMCalls: budget, Tokens: o.BudgetTokens, WallTime: o.Timeout},
	}
	if o.Oracle {
		t.Truth = it.Truth
		if tests := it.Extra["test"]; tests != "" && it.Truth == "" {
			t.Truth = tests
		}
	}
	return t
}

type runner struct {
	eng    *core.Engine
	o      Options
	grader Grader
	log    *resultsLog
	logger zerolog.Logger

	mu   sync.Mutex // serialises OnRecord and the summary; guards down
	down int        // records in a row whose search could not reach the LLM
}

func (r *runner) runAll(ctx context.Context, jobs []job, sum *Summary) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan job)
	var (
		wg       sync.WaitGroup
		fatalMu  sync.Mutex
		fatalErr error
	)
	for w := 0; w < r.o.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				rec, down, ok, err := r.do(ctx, j)
				if err == nil && ok {
					err = r.log.Append(rec)
				}
				if err != nil {
					fatalMu.Lock()
					if fatalErr == nil {
						fatalErr = err
					}
					fatalMu.Unlock()
					cancel()
					continue
				}
				if !ok {
					continue
				}
				r.mu.Lock()
				sum.Ran++
				if rec.Status == StatusError {
					sum.Errors++
				}
				if r.o.OnRecord != nil {
					r.o.OnRecord(rec)
				}
				switch {
				case down:
					r.down++
				case rec.Status != StatusError:
					r.down = 0
				}
				if r.down == r.o.DownAfter() {
					fatalMu.Lock()
					if fatalErr == nil {
						fatalErr = fmt.Errorf("%w: %d runs in a row failed on it (the last: %s); %d of %d runs are done and kept: "+
							"once the endpoint answers, run the same command with --retry-errors to run the failed ones again",
							ErrLLMDown, r.down, rec.Error, sum.Done+sum.Ran, sum.Jobs)
					}
					fatalMu.Unlock()
					cancel()
				}
				r.mu.Unlock()
			}
		}()
	}
feed:
	for _, j := range jobs {
		select {
		case ch <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
	return fatalErr
}

// do solves, grades and traces one job. It reports down when the search
// failed because the LLM endpoint could not be reached, and !ok when the
// job was cut short by the context: nothing is recorded and a re-run does
// it. An error (the disk is full) stops the run: nothing is recorded.
func (r *runner) do(ctx context.Context, j job) (rec Record, down, ok bool, err error) {
	if ctx.Err() != nil {
		return Record{}, false, false, nil
	}
	o := r.o
	task := o.task(j.item, j.strategy, j.budget)
	rec = Record{
		Key: RecordKey(j.item.ID, j.strategy, j.budget), Item: j.item.ID, Index: j.index, Strategy: j.strategy,
		Budget: j.budget, Params: task.Params, Truth: j.item.Truth,
	}
	res, err := r.eng.Solve(ctx, task)
	if ctx.Err() != nil && (err != nil || res.Stopped == core.StopCancelled || res.Stopped == core.StopError) {
		return Record{}, false, false, nil // cut short: a re-run does it
	}
	// A search that finished is graded and recorded even if Ctrl-C came
	// meanwhile: nothing finished is lost.
	gctx := context.WithoutCancel(ctx)
	if err != nil {
		rec.Status, rec.Error, rec.Stopped = StatusError, err.Error(), core.StopError
		rec.Time = time.Now().UTC()
		return rec, unreachable(err), true, nil
	}
	rec.Answer, rec.Stopped, rec.Usage, rec.TraceID = res.Answer, res.Stopped, res.Usage, res.TraceID
	rec.Warnings, rec.Verified = SearchWarnings(res.Warnings), res.Verified
	loss := countLLMLoss(res.Trace)
	rec.LLMErrors = loss.failed
	switch {
	case res.Stopped == core.StopError || res.Stopped == core.StopCancelled:
		rec.Status, rec.Error = StatusError, res.Error
		if rec.Error == "" {
			rec.Error = string(res.Stopped)
		}
		down = unreachable(res.Err)
	case loss.mostLost():
		rec.Status, rec.Error = StatusError, loss.err()
	default:
		g, err := r.grader.Grade(gctx, j.item, res.Answer)
		if err != nil {
			rec.Status, rec.Error = StatusError, "grade: "+err.Error()
			break
		}
		rec.Status, rec.Detail = StatusWrong, g.Detail
		if g.Correct {
			rec.Status = StatusCorrect
		}
		rec.Samples, rec.SamplesCorrect = r.gradeSamples(gctx, j.item, res.Trace, res.Answer, g.Correct)
	}
	if o.NoTraces {
		rec.TraceID = "" // no traces/ID.json to name
	}
	if res.Trace != nil && !o.NoTraces {
		tr := res.Trace
		if tr.Meta == nil {
			tr.Meta = map[string]any{}
		}
		tr.Meta["eval_item"] = j.item.ID
		tr.Meta["eval_dataset"] = o.Dataset.Name
		tr.Meta["eval_grader"] = o.Dataset.Grader
		tr.Meta["eval_status"] = string(rec.Status)
		tr.Meta["eval_budget"] = j.budget
		if j.item.Truth != "" {
			tr.Meta["truth"] = j.item.Truth
		}
		for k, v := range j.item.Extra {
			if k == "test" || k == "entry_point" {
				tr.Meta[k] = v
			}
		}
		if err := traces.WriteFile(filepath.Join(o.Out, TracesDir, res.TraceID+".json"), tr); err != nil {
			if diskFull(err) {
				// Recorded without its trace, the search would count as
				// done: the rerun after making room would not run it
				// again, and export would never see it.
				return Record{}, false, false, fmt.Errorf("save the trace of %s: %w; nothing of that search is recorded, "+
					"the records before it are kept: make room and run the same command again to continue", rec.Key, err)
			}
			r.logger.Warn().Err(err).Str("item", j.item.ID).Msg("trace not saved")
			rec.TraceID = ""
		}
	}
	rec.Time = time.Now().UTC()
	r.logger.Debug().Str("item", j.item.ID).Str("strategy", j.strategy).Int64("budget", j.budget).
		Str("status", string(rec.Status)).Int64("llm_calls", rec.Usage.LLMCalls).Msg("eval record")
	return rec, down, true, nil
}

// diskFull reports whether a write failed for want of room (a full disk,
// a quota, the file size limit) or a read-only file system: every write
// after it would fail too, until the user acts.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EROFS)
}

// gradeSamples grades every complete answer of the search (terminal
// nodes of the top structure), each distinct answer once; the final
// answer, already graded as correct or not, is not graded again.
func (r *runner) gradeSamples(ctx context.Context, it Item, tr *core.Trace, final string, correct bool) (n, c int) {
	if tr == nil || tr.Structure == nil {
		return 0, 0
	}
	cache := map[string]bool{final: correct}
	for _, nd := range tr.Structure.Nodes() {
		if nd.Answer == "" || nd.Kind == core.KindProblem {
			continue
		}
		ok, seen := cache[nd.Answer]
		if !seen {
			g, err := r.grader.Grade(ctx, it, nd.Answer)
			if err != nil {
				return 0, 0
			}
			ok = g.Correct
			cache[nd.Answer] = ok
		}
		n++
		if ok {
			c++
		}
	}
	return n, c
}
