package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/traces"
)

// errBusy is returned for requests that would take the server past
// server.max_searches; busyRetryAfter is when they are told to try again.
var errBusy = errors.New("the server is busy")

const busyRetryAfter = 5 * time.Second

// admit reserves n of the server's server.max_searches places for the
// searches of one request, before any starts (an OpenAI request with n > 1
// is admitted whole or not at all, and a stream is refused before its
// headers go out). Searches beyond llm.concurrency wait for an LLM slot;
// without a bound, a crowd of clients made that queue, and the memory it
// holds, grow without end, and nobody was told to come back later.
func (s *Server) admit(n int) (release func(), err error) {
	limit := s.cfg.MaxSearches
	if limit <= 0 {
		return func() {}, nil
	}
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.admitted+n > limit {
		return nil, fmt.Errorf("%w: it is running the %s server.max_searches allows; try again in a few seconds", errBusy, searches(limit))
	}
	s.admitted += n
	var once sync.Once
	return func() {
		once.Do(func() {
			s.runMu.Lock()
			s.admitted -= n
			s.runMu.Unlock()
		})
	}, nil
}

// searches is "1 search", "2 searches".
func searches(n int) string {
	if n == 1 {
		return "1 search"
	}
	return fmt.Sprintf("%d searches", n)
}

// errShuttingDown is returned for requests that arrive while the server
// stops.
var errShuttingDown = errors.New("the server is shutting down")

// progress is a snapshot of a running search, built from its trace events.
type progress struct {
	Seq       int64 // last event seen
	Nodes     int   // nodes the search added, nested searches' included, roots not (usage.nodes)
	BestScore *float64
	LLMCalls  int64  // samples generated so far
	CallLimit int64  // the run's LLM call budget (0: none)
	Tokens    int64  // prompt + completion
	Ended     bool   // the strategy chose its answer
	Answer    string // the chosen answer, once Ended
}

// message is the one-line human summary of p.
func (p progress) message() string {
	var b strings.Builder
	switch {
	case p.Ended && p.Answer != "":
		b.WriteString("answer chosen: ")
	case p.Ended:
		b.WriteString("search ended without an answer: ")
	default:
		b.WriteString("searching: ")
	}
	b.WriteString(text.Count(p.Nodes, "node"))
	if p.BestScore != nil {
		fmt.Fprintf(&b, ", best score %.2f", *p.BestScore)
	}
	if p.CallLimit > 0 {
		fmt.Fprintf(&b, ", %d of %d LLM calls", p.LLMCalls, p.CallLimit)
	} else {
		b.WriteString(", " + text.Count(int(p.LLMCalls), "LLM call"))
	}
	if p.Tokens > 0 {
		b.WriteString(", " + text.Count(int(p.Tokens), "token"))
	}
	return b.String()
}

// watcher folds a tracer's events into a progress snapshot.
type watcher struct {
	tr   *core.Tracer
	snap progress
	// scores holds what evaluate events scored, by scope and node: they
	// carry a node's new score, and a node's best score depends on the
	// kinds it has (Node.Score).
	scores map[string]*core.Node
}

func newWatcher(tr *core.Tracer, callLimit int64) *watcher {
	return &watcher{tr: tr, snap: progress{CallLimit: callLimit}}
}

// advance reads the events after the last one seen and returns them.
func (w *watcher) advance() []core.Event {
	evs := w.tr.Since(w.snap.Seq)
	for _, e := range evs {
		w.snap.Seq = e.Seq
		switch e.Op {
		case core.OpNode, core.OpUpdate:
			// Each structure's root (id 0: the problem, or a nested
			// search's) is no node the search added: usage.nodes, which
			// the result reports, counts none.
			if e.Op == core.OpNode && e.Node != nil && e.Node.ID != 0 {
				w.snap.Nodes++
			}
			w.score(e.Node)
			if e.Node != nil {
				n := w.scored(e.Scope, e.Node.ID)
				n.Scores, n.Pruned = e.Node.Scores, e.Node.Pruned
			}
		case core.OpPrune:
			for _, id := range e.Nodes {
				w.scored(e.Scope, id).Pruned = true
			}
		case core.OpEvaluate:
			kind, _ := e.Get("kind").(string)
			score, ok := e.Get("score").(float64)
			if kind != "" && ok && len(e.Nodes) > 0 {
				n := w.scored(e.Scope, e.Nodes[0])
				n.Scores = maps.Clone(n.Scores)
				if n.Scores == nil {
					n.Scores = map[string]float64{}
				}
				n.Scores[kind] = score
				w.score(n)
			}
		case core.OpLLMCall:
			if e.Get("error") == nil {
				w.snap.LLMCalls += toInt64(e.Get("n"))
			}
			w.snap.Tokens += toInt64(e.Get("prompt_tokens")) + toInt64(e.Get("completion_tokens"))
		case core.OpEnd:
			if len(e.Scope) == 0 {
				w.snap.Ended = true
				w.snap.Answer, _ = e.Get("answer").(string)
			}
		}
	}
	return evs
}

// scored returns the scores the watcher knows of a node.
func (w *watcher) scored(scope []core.NodeID, id core.NodeID) *core.Node {
	key := fmt.Sprint(scope, id)
	if w.scores == nil {
		w.scores = map[string]*core.Node{}
	}
	n, ok := w.scores[key]
	if !ok {
		n = &core.Node{ID: id}
		w.scores[key] = n
	}
	return n
}

func (w *watcher) score(n *core.Node) {
	if n == nil || n.Pruned {
		return
	}
	if v, ok := n.Score(); ok && (w.snap.BestScore == nil || v > *w.snap.BestScore) {
		w.snap.BestScore = &v
	}
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int64:
		return x
	case float64:
		return int64(x)
	case int32:
		return int64(x)
	}
	return 0
}

// runOptions let a caller follow its own search.
type runOptions struct {
	// onUpdate is called from a watcher goroutine as the search grows, at
	// most once per interval, with the snapshot and the new events. It is
	// never called after run returns.
	onUpdate func(p progress, events []core.Event)
	// onFinal is called once, after the search returned and before run
	// does, with the final snapshot and the events onUpdate has not seen.
	onFinal  func(p progress, events []core.Event)
	interval time.Duration
	via      string // "mcp" or "openai", for metrics
}

// enter counts a running search; it fails once the server is closing.
func (s *Server) enter() bool {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.closing {
		return false
	}
	s.runN++
	return true
}

func (s *Server) leave() {
	s.runMu.Lock()
	s.runN--
	if s.runN == 0 && s.closing && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.runMu.Unlock()
}

// waitIdle marks the server closing and waits for running searches.
func (s *Server) waitIdle() {
	s.runMu.Lock()
	s.closing = true
	if s.runN == 0 {
		s.runMu.Unlock()
		return
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	ch := s.idle
	s.runMu.Unlock()
	<-ch
}

// run solves task on eng, following it as ro asks. The search ends with
// ctx or with the server.
func (s *Server) run(ctx context.Context, eng *core.Engine, task core.Task, ro runOptions) (core.Result, error) {
	if !s.enter() {
		return core.Result{}, errShuttingDown
	}
	defer s.leave()
	if task.Session != "" {
		// Its earlier turns stay while it runs, however long.
		defer s.sess.hold(task.Session)()
	}
	ctx, cancel := s.detach(ctx)
	defer cancel()
	if ro.interval <= 0 {
		ro.interval = 100 * time.Millisecond
	}
	var (
		mu     sync.Mutex
		w      *watcher
		done   = make(chan struct{})
		exited = make(chan struct{})
	)
	follow := ro.onUpdate != nil || ro.onFinal != nil
	if follow {
		eng = eng.WithOnStart(func(_ string, t core.Task, tr *core.Tracer) {
			mu.Lock()
			w = newWatcher(tr, t.Limits.LLMCalls)
			mu.Unlock()
			if ro.onUpdate == nil {
				close(exited)
				return
			}
			go func() {
				defer close(exited)
				for {
					select {
					case <-done:
						return
					case <-tr.Changed():
					}
					evs := w.advance()
					if len(evs) > 0 {
						ro.onUpdate(w.snap, evs)
					}
					select {
					case <-done:
						return
					case <-time.After(ro.interval):
					}
				}
			}()
		})
	}
	s.metrics.active.Inc()
	start := time.Now()
	res, err := eng.Solve(ctx, task)
	s.metrics.active.Dec()
	close(done)
	mu.Lock()
	started := w
	mu.Unlock()
	if started != nil {
		<-exited
		evs := started.advance()
		if ro.onFinal != nil {
			snap := started.snap
			if err == nil {
				// The counts the result reports: the trace does not show
				// every call the budget counted (an MCTS run's trace said 42
				// of the 45 calls its usage did).
				snap.LLMCalls = res.Usage.LLMCalls
				snap.Tokens = res.Usage.PromptTokens + res.Usage.CompletionTokens
				snap.Nodes = int(res.Usage.Nodes)
			}
			ro.onFinal(snap, evs)
		}
	}
	if err == nil {
		s.metrics.observeSolve(ro.via, res, time.Since(start))
		res.Warnings = s.unsavedWarning(ro.via, res)
	}
	return res, err
}

// unsavedWarning is res's warnings with one saying that its trace was not
// saved (a full or read-only data directory), when it was not, which the
// log says too: the result hands out a trace_id that get_trace, the trace
// resource and the viewer will not find, and nothing said so.
func (s *Server) unsavedWarning(via string, res core.Result) []string {
	why := s.unsaved(res.TraceID)
	if why == "" {
		return res.Warnings
	}
	s.log.Warn().Str("via", via).Str("trace", res.TraceID).Str("why", why).
		Msg("answered, but the trace was not saved: get_trace and the viewer will not find it")
	return append(slices.Clip(res.Warnings), "trace "+res.TraceID+" was not saved ("+why+"): get_trace, ponder://traces and the viewer will not find it")
}

// unsaved says briefly why the trace of the finished run id was not saved
// (traces.UnsavedReason), "" when it was or the server keeps no traces.
func (s *Server) unsaved(id string) string {
	if s.opts.Traces == nil || id == "" {
		return ""
	}
	if err := s.opts.Traces.SaveError(id); err != nil {
		return traces.UnsavedReason(err)
	}
	return ""
}

// problemTask builds the core task for a request: the pack is detected when
// not given, and a session's earlier turns are put before the problem.
func (s *Server) problemTask(req solveArgs) (core.Task, error) {
	problem := strings.TrimSpace(req.Problem)
	if problem == "" {
		return core.Task{}, fmt.Errorf("%w: the problem is empty: pass the question or task to solve", core.ErrInvalidTask)
	}
	pack := req.Pack
	if pack == "" || pack == "auto" {
		pack = tasks.Detect(problem)
		if pack == "generic" {
			pack = s.opts.DefaultPack
		}
	}
	limits, err := req.Budget.limits()
	if err != nil {
		return core.Task{}, fmt.Errorf("%w: %v", core.ErrInvalidTask, err)
	}
	full := problem
	if req.Session != "" {
		if err := validSessionID(req.Session); err != nil {
			return core.Task{}, fmt.Errorf("%w: %v", core.ErrInvalidTask, err)
		}
		if !packIsData(pack) {
			if ctxText := s.sess.Context(req.Session); ctxText != "" {
				full = ctxText + "\n\nProblem: " + problem
			}
		}
	}
	params := core.Params{}
	for k, v := range req.Params {
		params[k] = v
	}
	return core.Task{
		Problem: full, Pack: pack, Strategy: req.Strategy, Params: params, Limits: limits,
		Tools: req.Tools, Collection: req.Collection, Session: req.Session, Model: req.Model, Seed: req.Seed,
	}, nil
}

// packIsData reports whether the pack named name reads its problem as
// data (tasks.DataProblem).
func packIsData(name string) bool {
	p, err := tasks.Get(name)
	if err != nil {
		return false
	}
	_, ok := p.(tasks.DataProblem)
	return ok
}

// collectionFinder is a retriever that can tell a collection that does not
// exist (retrieval.Retriever).
type collectionFinder interface {
	MissingCollection(ctx context.Context, name string) bool
}

// validate is the engine's check of a task, and that the collection it
// names exists: a mistyped collection is the caller's mistake, refused
// before the search starts, not a failed search.
func (s *Server) validate(ctx context.Context, t core.Task) error {
	if err := s.engine.Validate(t); err != nil {
		return err
	}
	if t.Collection != "" {
		if f, ok := s.opts.Retriever.(collectionFinder); ok && f.MissingCollection(ctx, t.Collection) {
			return fmt.Errorf("%w: collection %q does not exist: ingest documents into it first (ingest_documents, or `ponder ingest --collection %s PATH`)",
				core.ErrInvalidTask, t.Collection, t.Collection)
		}
	}
	return nil
}
