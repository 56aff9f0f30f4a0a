package plugins

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/sdk"
)

// envHost serves a strategy plugin the run's core.Env: every call goes
// through the same metered, limited and traced paths a built-in strategy
// uses. The first call refused for the budget closes exhausted, which
// starts the grace period after which the host stops the plugin.
type envHost struct {
	env *core.Env

	once      sync.Once
	exhausted chan struct{}
}

var _ sdk.Host = (*envHost)(nil)

func newEnvHost(env *core.Env) *envHost {
	return &envHost{env: env, exhausted: make(chan struct{})}
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
	if _, err := h.node(id); err != nil {
		return core.Node{}, err
	}
	err := h.env.Structure.Update(id, func(n *core.Node) {
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
var traceOps = map[string]bool{
	core.OpInfo: true, core.OpSelect: true, core.OpBacktrack: true, core.OpGenerate: true, core.OpRefine: true,
	core.OpAggregate: true, core.OpPrune: true, core.OpRestructure: true, core.OpEvaluate: true,
}

func (h *envHost) Trace(_ context.Context, op string, nodes []core.NodeID, data map[string]any) error {
	if !traceOps[op] {
		return fmt.Errorf("trace: a plugin may record info, select, backtrack, generate, refine, aggregate, prune, restructure or evaluate, not %q", op)
	}
	for _, id := range nodes {
		if _, err := h.node(id); err != nil {
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
