package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/sdk"
)

// envHost serves a strategy plugin the run's core.Env: every call goes
// through the same metered, limited and traced paths a built-in strategy
// uses. The first call refused for the budget closes exhausted, which
// starts the grace period after which the host stops the plugin.
type envHost struct {
	env    *core.Env
	plugin string

	once      sync.Once
	exhausted chan struct{}
	// added counts the bytes the plugin put into the run itself (nodes,
	// updates' scores and meta, trace data), against MaxRunBytes.
	added atomic.Int64
}

var _ sdk.Host = (*envHost)(nil)

func newEnvHost(env *core.Env, plugin string) *envHost {
	return &envHost{env: env, plugin: plugin, exhausted: make(chan struct{})}
}

// What a strategy plugin may put into a run itself, through AddNode,
// UpdateNode and Trace (what Generate and Complete add is the policy's,
// bounded by the budget). A node holds its content, answer, kind, scores
// and meta; MaxNodeBytes is that of a long LLM reply (128k tokens are
// about 512 KiB), far above a step's few KiB. Every node is kept in memory
// for the run and written to its trace, several times over: 101 nodes of
// 3 MiB took the server to 4 GB and a 635 MB trace. Past MaxRunBytes the
// plugin's additions are refused as the budget's are (its host calls fail
// with sdk.ErrBudgetExhausted, and it is stopped if it keeps going).
const (
	MaxNodeBytes = 1 << 20
	MaxRunBytes  = 64 << 20
)

// statsBytes is what a change of a node's Value and Visits costs: one
// stats event in the trace.
const statsBytes = 32

// charge checks what the plugin sent in one call (sent bytes; what says
// what they are, with a %s for their size) against MaxNodeBytes, and
// counts what the call adds to the run (added bytes: the node, event or
// snapshot it stores) against MaxRunBytes. The errors do not name the
// call: the plugin's side of a host call does.
func (h *envHost) charge(what string, sent, added int) error {
	if sent > MaxNodeBytes {
		return fmt.Errorf("plugin %s sent "+what+", over the %d MiB a plugin may add to a run at once", h.plugin,
			byteSize(sent), MaxNodeBytes>>20)
	}
	if h.added.Add(int64(added)) > MaxRunBytes {
		h.added.Add(-int64(added))
		return h.check(fmt.Errorf("%w: plugin %s added %d MiB to this run's nodes and trace, the most a plugin may",
			core.ErrBudgetExhausted, h.plugin, MaxRunBytes>>20))
	}
	return nil
}

// minAnswerBytes is what is kept of a strategy's answer even when its
// additions took the run to MaxRunBytes: a plugin told the budget is spent
// returns its best answer, which is not to be lost for want of room.
const minAnswerBytes = 4 << 10

// capAnswer bounds the answer a strategy plugin returned as a node's
// content is bounded: the result, the trace's end event and the trace
// itself hold it (a 10 MiB answer made a 20 MB trace). It counts toward
// MaxRunBytes; past MaxNodeBytes, or past what the run has left (at least
// minAnswerBytes are kept), it is cut on a UTF-8 boundary, and the
// outcome's note, which joins the result's warnings, says so.
func (h *envHost) capAnswer(out *core.Outcome) {
	size := len(out.Answer)
	if size == 0 {
		return
	}
	limit := min(MaxNodeBytes, max(MaxRunBytes-int(h.added.Load()), minAnswerBytes))
	if size <= limit {
		h.added.Add(int64(size))
		return
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(out.Answer[cut]) {
		cut--
	}
	out.Answer = out.Answer[:cut]
	h.added.Add(int64(cut))
	why := fmt.Sprintf("the %d MiB a plugin may add to a run at once", MaxNodeBytes>>20)
	if limit < MaxNodeBytes {
		why = fmt.Sprintf("what is left of the %d MiB a plugin may add to a run", MaxRunBytes>>20)
	}
	note := fmt.Sprintf("plugin %s answered with %s, over %s: the answer was cut to its first %d bytes", h.plugin, byteSize(size), why, cut)
	h.env.Logger.Warn().Str("plugin", h.plugin).Int("answer_bytes", size).Int("kept_bytes", cut).Msg("strategy plugin's answer cut")
	if out.Note != "" {
		note = out.Note + "; " + note
	}
	out.Note = note
}

// byteSize says n bytes in KiB or MiB, one decimal.
func byteSize(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
}

// nodeBytes is what a node the plugin sent holds: its texts, scores and
// meta (as JSON).
func nodeBytes(n core.Node) (int, error) {
	size := len(n.Kind) + len(n.Content) + len(n.Answer) + 8*len(n.Parents)
	m, err := extraBytes(n.Scores, n.Meta)
	return size + m, err
}

// extraBytes is the size of scores and meta.
func extraBytes(scores map[string]float64, meta map[string]any) (int, error) {
	size := 0
	for k := range scores {
		size += len(k) + 8
	}
	if len(meta) > 0 {
		b, err := json.Marshal(meta)
		if err != nil {
			return 0, fmt.Errorf("meta: %w", err)
		}
		size += len(b)
	}
	return size, nil
}

// check notes budget exhaustion in err and returns err.
func (h *envHost) check(err error) error {
	if errors.Is(err, core.ErrBudgetExhausted) {
		h.once.Do(func() { close(h.exhausted) })
	}
	return err
}

func (h *envHost) node(id core.NodeID) (core.Node, error) {
	n, ok := h.env.Structure.Node(id)
	if !ok {
		return core.Node{}, fmt.Errorf("%w: node %d does not exist", core.ErrUnknown, id)
	}
	n.Sub = nil
	return n, nil
}

func (h *envHost) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	c, err := h.env.Complete(ctx, req)
	return c, h.check(err)
}

func (h *envHost) Generate(ctx context.Context, parent core.NodeID, k int, o sdk.GenerateOptions) ([]core.Node, error) {
	if _, err := h.node(parent); err != nil {
		return nil, err
	}
	opts := core.GenerateOptions{Whole: o.Whole, Temperature: o.Temperature, MaxTokens: o.MaxTokens, Stop: o.Stop,
		Purpose: o.Purpose, Seed: o.Seed}
	if len(o.Prompt) > 0 {
		prompt := o.Prompt
		opts.Prompt = func([]core.Node) []core.Message { return prompt }
	}
	ids, err := core.Generate(ctx, h.env, parent, k, opts)
	out := make([]core.Node, 0, len(ids))
	for _, id := range ids {
		if n, nerr := h.node(id); nerr == nil {
			out = append(out, n)
		}
	}
	return out, h.check(err)
}

func (h *envHost) AddNode(ctx context.Context, parents []core.NodeID, n core.Node) (core.NodeID, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(n.Kind) > 32 {
		return 0, fmt.Errorf("add node: kind %q is too long", n.Kind[:32])
	}
	for k, v := range n.Scores {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("add node: score %q is not finite", k)
		}
	}
	size, err := nodeBytes(n)
	if err != nil {
		return 0, fmt.Errorf("add node: %w", err)
	}
	if err := h.charge("a node of %s", size, size); err != nil {
		return 0, err
	}
	n.Sub = nil
	id, err := h.env.AddNode(parents, n)
	return id, h.check(err)
}

func (h *envHost) UpdateNode(ctx context.Context, id core.NodeID, u sdk.NodeUpdate) (core.Node, error) {
	if err := ctx.Err(); err != nil {
		return core.Node{}, err
	}
	for k, v := range u.Scores {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return core.Node{}, fmt.Errorf("update node %d: score %q is not finite", id, k)
		}
	}
	if u.Value != nil && (math.IsNaN(*u.Value) || math.IsInf(*u.Value, 0)) {
		return core.Node{}, fmt.Errorf("update node %d: value is not finite", id)
	}
	old, err := h.node(id)
	if err != nil {
		return core.Node{}, err
	}
	what := fmt.Sprintf("update node %d", id)
	sent := fmt.Sprintf("%%s of scores and meta for node %d", id)
	if len(u.Scores) == 0 && len(u.Meta) == 0 && u.Pruned == nil {
		if u.Value == nil && u.Visits == nil {
			return old, nil
		}
		// Search statistics only (MCTS's Q and N): recorded as the
		// built-in searches record them, in a stats event, not a copy of
		// the whole node in an update event for every backup.
		if err := h.charge(sent, 0, statsBytes); err != nil {
			return core.Node{}, err
		}
		value, visits := old.Value, old.Visits
		if u.Value != nil {
			value = *u.Value
		}
		if u.Visits != nil {
			visits = *u.Visits
		}
		if err := h.env.Structure.SetStats(id, value, visits); err != nil {
			return core.Node{}, err
		}
		return h.node(id)
	}
	extra, err := extraBytes(u.Scores, u.Meta)
	if err != nil {
		return core.Node{}, fmt.Errorf("%s: %w", what, err)
	}
	// The trace records the node as it is after the update, whole.
	size, err := nodeBytes(old)
	if err != nil {
		return core.Node{}, fmt.Errorf("%s: %w", what, err)
	}
	if err := h.charge(sent, extra, size+extra); err != nil {
		return core.Node{}, err
	}
	err = h.env.Structure.Update(id, func(n *core.Node) {
		for k, v := range u.Scores {
			if n.Scores == nil {
				n.Scores = map[string]float64{}
			}
			n.Scores[k] = v
		}
		if u.Value != nil {
			n.Value = *u.Value
		}
		if u.Visits != nil {
			n.Visits = *u.Visits
		}
		if u.Pruned != nil {
			n.Pruned = *u.Pruned
		}
		for k, v := range u.Meta {
			if n.Meta == nil {
				n.Meta = map[string]any{}
			}
			n.Meta[k] = v
		}
	})
	if err != nil {
		return core.Node{}, err
	}
	return h.node(id)
}

func (h *envHost) Node(_ context.Context, id core.NodeID) (core.Node, error) { return h.node(id) }

func (h *envHost) Path(_ context.Context, id core.NodeID) ([]core.Node, error) {
	path := h.env.Structure.Path(id)
	if path == nil {
		return nil, fmt.Errorf("%w: node %d does not exist", core.ErrUnknown, id)
	}
	for i := range path {
		path[i].Sub = nil
	}
	return path, nil
}

func (h *envHost) Children(_ context.Context, id core.NodeID) ([]core.Node, error) {
	if _, err := h.node(id); err != nil {
		return nil, err
	}
	kids := h.env.Structure.Children(id)
	for i := range kids {
		kids[i].Sub = nil
	}
	return kids, nil
}

func (h *envHost) Prune(_ context.Context, ids ...core.NodeID) error {
	for _, id := range ids {
		if _, err := h.node(id); err != nil {
			return err
		}
	}
	core.Prune(h.env, ids...)
	return nil
}

func (h *envHost) Evaluate(ctx context.Context, name string, params core.Params, id core.NodeID) (core.Evaluation, error) {
	ev, err := h.env.Evaluator(name, params)
	if err != nil {
		return core.Evaluation{}, err
	}
	e, err := core.Evaluate(ctx, h.env, ev, id)
	return e, h.check(err)
}

func (h *envHost) Tools(context.Context) ([]core.ToolSpec, error) { return h.env.Tools(), nil }

func (h *envHost) CallTool(ctx context.Context, call core.ToolCall) (core.ToolResult, error) {
	r, err := h.env.CallTool(ctx, call)
	return r, h.check(err)
}

func (h *envHost) Retrieve(ctx context.Context, req core.RetrieveRequest) ([]core.Chunk, error) {
	return h.env.Retrieve(ctx, req)
}

func (h *envHost) SolveSub(ctx context.Context, node core.NodeID, task core.Task) (sdk.SubResult, error) {
	if _, err := h.node(node); err != nil {
		return sdk.SubResult{}, err
	}
	res, err := h.env.SolveSub(ctx, node, task)
	if err != nil {
		return sdk.SubResult{}, h.check(err)
	}
	out := sdk.SubResult{Answer: res.Answer, Strategy: res.Strategy, Score: res.Score, Usage: res.Usage,
		Stopped: string(res.Stopped), Error: res.Error}
	for _, n := range res.BestPath {
		n.Sub = nil
		out.BestPath = append(out.BestPath, n)
	}
	if res.Stopped == core.StopBudget {
		h.check(core.ErrBudgetExhausted)
	}
	return out, nil
}

// traceOps are the operations a plugin may record itself; nodes, updates,
// LLM and tool calls are recorded by the host as they happen.
// traceOps are the events a plugin may record as notes. prune and evaluate
// are not among them: Replay and the viewer apply those events to the
// structure, so a note would mark a node pruned, or scored, that is not
// (Host.Prune and Host.Evaluate make the change and record it).
var traceOps = map[string]bool{
	core.OpInfo: true, core.OpSelect: true, core.OpBacktrack: true, core.OpGenerate: true, core.OpRefine: true,
	core.OpAggregate: true, core.OpRestructure: true,
}

func (h *envHost) Trace(_ context.Context, op string, nodes []core.NodeID, data map[string]any) error {
	if op == core.OpPrune || op == core.OpEvaluate {
		return fmt.Errorf("a plugin records %s by doing it: call Host.%s, which changes the structure and records the event",
			op, map[string]string{core.OpPrune: "Prune", core.OpEvaluate: "Evaluate"}[op])
	}
	if !traceOps[op] {
		return fmt.Errorf("a plugin may record info, select, backtrack, generate, refine, aggregate or restructure, not %q", op)
	}
	for _, id := range nodes {
		if _, err := h.node(id); err != nil {
			return err
		}
	}
	if len(data) > 0 {
		b, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("trace: data: %w", err)
		}
		if err := h.charge("%s of trace data", len(b), len(b)); err != nil {
			return err
		}
	}
	if data == nil {
		data = map[string]any{}
	}
	data["source"] = "plugin"
	h.env.Tracer.Record(op, nodes, data)
	return nil
}

func (h *envHost) Budget(context.Context) (sdk.BudgetState, error) {
	b := h.env.Budget
	return sdk.BudgetState{Used: b.Used(), Limits: b.Limits(), RemainingCalls: b.Remaining()}, nil
}

func (h *envHost) ExtractAnswer(_ context.Context, text string) (sdk.Answer, error) {
	a, ok := h.env.Pack.ExtractAnswer(text)
	if !ok {
		return sdk.Answer{}, nil
	}
	return sdk.Answer{Found: true, Text: a, Normalized: h.env.Pack.Normalize(a)}, nil
}

// bestSoFar is the best answer node in the structure: the highest score,
// then the earliest. The host answers with it when a plugin is stopped
// or crashes before it could say.
func bestSoFar(env *core.Env) core.Outcome {
	var (
		best  core.Node
		bestS = math.Inf(-1)
		found bool
	)
	for _, n := range env.Structure.Nodes() {
		if n.Answer == "" || n.Pruned {
			continue
		}
		s, ok := n.Score()
		if !ok {
			s = -2
		}
		if !found || s > bestS {
			best, bestS, found = n, s, true
		}
	}
	if !found {
		return core.Outcome{}
	}
	out := core.Outcome{Answer: best.Answer, Best: best.ID}
	if bestS > -2 {
		out.Score = &bestS
	}
	return out
}
