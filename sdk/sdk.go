package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/go-plugin"

	"github.com/ponder-rlm/ponder/core"
)

// ProtocolVersion is the version of the plugin wire protocol this SDK
// speaks (proto/ponder/plugin/v1). A host refuses a plugin of another
// version with an error that names both.
const ProtocolVersion = 1

// Handshake is shared by the host and every plugin. The magic cookie only
// tells a plugin binary that it was started by Ponder (run by hand, it says
// so and exits); it is not a security measure: the host verifies the
// binary's sha256 before it starts it.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "PONDER_PLUGIN",
	MagicCookieValue: "ponder-reasoning-plugin-v1",
}

// Kind is what a plugin provides.
type Kind string

// Plugin kinds. A plugin binary serves exactly one.
const (
	KindTool      Kind = "tool"
	KindEvaluator Kind = "evaluator"
	KindStrategy  Kind = "strategy"
)

// Kinds lists the plugin kinds.
var Kinds = []Kind{KindTool, KindEvaluator, KindStrategy}

// Types shared with Ponder's engine. They are aliases, so values move
// between a plugin and core without conversion in Go code.
type (
	Message           = core.Message
	CompletionRequest = core.CompletionRequest
	Completion        = core.Completion
	Choice            = core.Choice
	ToolSpec          = core.ToolSpec
	ToolCall          = core.ToolCall
	ToolResult        = core.ToolResult
	Chunk             = core.Chunk
	RetrieveRequest   = core.RetrieveRequest
	Evaluation        = core.Evaluation
	Usage             = core.Usage
	Limits            = core.Limits
	Params            = core.Params
	ParamSpec         = core.ParamSpec
	Task              = core.Task
	Node              = core.Node
	NodeID            = core.NodeID
	NodeKind          = core.NodeKind
	Outcome           = core.Outcome
	Policy            = core.Policy
)

// Errors that cross the process boundary keep their identity: a host call
// refused for the budget wraps ErrBudgetExhausted on the plugin's side, and
// a strategy that returns it makes the host report "budget".
var (
	ErrBudgetExhausted = core.ErrBudgetExhausted
	// ErrNotApplicable is returned by an evaluator that cannot judge a path.
	ErrNotApplicable = core.ErrNotApplicable
	// ErrSessionOver is returned by host calls made after the run or
	// evaluation they belong to has ended.
	ErrSessionOver = errors.New("the run this call belongs to is over")
	// ErrNotAllowed is returned by host calls the host does not offer in
	// this context (an evaluator may only call Complete).
	ErrNotAllowed = errors.New("not allowed by the host")
)

// Tool is a tool plugin: something a reasoning step may call.
type Tool interface {
	// Spec names the tool and describes its arguments (a JSON Schema
	// object); the name is the plugin's name.
	Spec() ToolSpec
	// Call runs the tool. A tool that ran and failed returns a result with
	// IsError; an error means the call could not run.
	Call(ctx context.Context, args json.RawMessage) (ToolResult, error)
}

// EvalRequest asks an evaluator to score the last node of Path.
type EvalRequest struct {
	Task Task
	// Path runs from the root (the problem) to the node to score.
	Path []Node
	// Params are the evaluator's parameters, resolved against
	// Plugin.Params (defaults filled in, types checked).
	Params Params
	// Policy is the run's metered policy (nil when the host offers none):
	// a prompted PRM or judge asks it, and its calls count against the
	// run's budget.
	Policy Policy
}

// Evaluator is an evaluator plugin: a value model, a process or outcome
// reward model, or a programmatic verifier. Scores are in [-1, 1]; return
// ErrNotApplicable when the path cannot be judged.
type Evaluator interface {
	Evaluate(ctx context.Context, req EvalRequest) (Evaluation, error)
}

// RunRequest starts a strategy run.
type RunRequest struct {
	Task Task
	// Params are the strategy's parameters resolved against Plugin.Params.
	Params Params
	// Limits are the run's budget; the host enforces it.
	Limits Limits
}

// Strategy is a strategy plugin: it grows the host's reasoning structure
// through host and returns the best answer found. On a budget, timeout or
// cancellation it returns the best answer so far together with the error.
type Strategy interface {
	Run(ctx context.Context, host Host, req RunRequest) (Outcome, error)
}

// StrategyFunc adapts a function to Strategy.
type StrategyFunc func(ctx context.Context, host Host, req RunRequest) (Outcome, error)

// Run calls f.
func (f StrategyFunc) Run(ctx context.Context, host Host, req RunRequest) (Outcome, error) {
	return f(ctx, host, req)
}

// EvaluatorFunc adapts a function to Evaluator.
type EvaluatorFunc func(ctx context.Context, req EvalRequest) (Evaluation, error)

// Evaluate calls f.
func (f EvaluatorFunc) Evaluate(ctx context.Context, req EvalRequest) (Evaluation, error) {
	return f(ctx, req)
}

// GenerateOptions tune Host.Generate.
type GenerateOptions struct {
	// Whole asks for complete solutions instead of single steps.
	Whole       bool
	Temperature *float64
	MaxTokens   int
	Stop        []string
	// Purpose labels the calls in traces ("generate" by default).
	Purpose string
	// Seed fixes the request's seed (default: derived by the host).
	Seed *int64
	// Prompt replaces the task pack's prompt.
	Prompt []Message
}

// NodeUpdate changes a node: set fields are applied, Scores and Meta are
// merged into the node's.
type NodeUpdate struct {
	Scores map[string]float64
	Value  *float64
	Visits *int
	Pruned *bool
	Meta   map[string]any
}

// SubResult is what a nested search found.
type SubResult struct {
	Answer   string
	Strategy string
	Score    *float64
	Usage    Usage
	Stopped  string
	Error    string
	BestPath []Node
}

// BudgetState is how much of its budget a run has spent.
type BudgetState struct {
	Used   Usage
	Limits Limits
	// RemainingCalls is how many more LLM calls are allowed (-1: no limit).
	RemainingCalls int64
}

// Answer is what the task pack reads as a final answer in a text.
type Answer struct {
	Found bool
	// Text is the answer as written; Normalized its canonical form (equal
	// answers vote together).
	Text       string
	Normalized string
}

// Host is the host's side of a strategy run: the reasoning structure, the
// metered policy, evaluators, tools, retriever, nested searches and the
// trace. Every call is charged to the run's budget and recorded in its
// trace exactly as for a built-in strategy; once the budget is spent calls
// fail with an error wrapping ErrBudgetExhausted.
type Host interface {
	// Complete asks the policy (the host's LLM).
	Complete(ctx context.Context, req CompletionRequest) (Completion, error)
	// Generate asks the policy for k continuations of parent with the task
	// pack's prompt and adds them as children (answers become terminal).
	Generate(ctx context.Context, parent NodeID, k int, o GenerateOptions) ([]Node, error)
	// AddNode adds n below parents and returns its id.
	AddNode(ctx context.Context, parents []NodeID, n Node) (NodeID, error)
	// UpdateNode changes a node and returns its new state.
	UpdateNode(ctx context.Context, id NodeID, u NodeUpdate) (Node, error)
	Node(ctx context.Context, id NodeID) (Node, error)
	// Path returns the nodes from the root to id.
	Path(ctx context.Context, id NodeID) ([]Node, error)
	Children(ctx context.Context, id NodeID) ([]Node, error)
	// Prune marks nodes as dropped from the search.
	Prune(ctx context.Context, ids ...NodeID) error
	// Evaluate scores node id with the named evaluator (built-in or
	// plugin) and records the score on the node.
	Evaluate(ctx context.Context, evaluator string, params Params, id NodeID) (Evaluation, error)
	// Tools lists the tools the task allows; CallTool runs one.
	Tools(ctx context.Context) ([]ToolSpec, error)
	CallTool(ctx context.Context, call ToolCall) (ToolResult, error)
	// Retrieve asks the document store.
	Retrieve(ctx context.Context, req RetrieveRequest) ([]Chunk, error)
	// SolveSub solves task as a nested search owned by node, on a budget
	// carved from this run's.
	SolveSub(ctx context.Context, node NodeID, task Task) (SubResult, error)
	// Trace records an event in the run's trace (op "info" for notes).
	Trace(ctx context.Context, op string, nodes []NodeID, data map[string]any) error
	// Budget reports what the run has spent.
	Budget(ctx context.Context) (BudgetState, error)
	// ExtractAnswer reads a final answer in text with the task's pack.
	ExtractAnswer(ctx context.Context, text string) (Answer, error)
}

// Plugin is what a plugin binary serves. Set exactly one of Tool,
// Evaluator and Strategy.
type Plugin struct {
	// Name is how users and the host call the plugin: the tool's name, or
	// the evaluator's or strategy's name in `--strategy`. Tools may leave
	// it empty to use Spec().Name.
	Name string
	// Version is the plugin's own version (shown by `ponder plugins list`).
	Version string
	// Summary is a one-line description.
	Summary string
	// Params documents and validates an evaluator's or strategy's
	// parameters; the host checks values against them before any LLM call.
	Params []ParamSpec
	// Shape is the structure a strategy grows: "tree" (default), "chain"
	// or "graph".
	Shape string

	Tool      Tool
	Evaluator Evaluator
	Strategy  Strategy
}

// Kind reports which kind p serves.
func (p Plugin) Kind() Kind {
	switch {
	case p.Tool != nil:
		return KindTool
	case p.Evaluator != nil:
		return KindEvaluator
	case p.Strategy != nil:
		return KindStrategy
	}
	return ""
}

// Validate checks p before serving: one implementation, a name, valid
// parameter specs.
func (p Plugin) Validate() error {
	n := 0
	for _, set := range []bool{p.Tool != nil, p.Evaluator != nil, p.Strategy != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("sdk: set exactly one of Plugin.Tool, Plugin.Evaluator and Plugin.Strategy (got %d)", n)
	}
	name := p.Name
	if p.Tool != nil && name == "" {
		name = p.Tool.Spec().Name
	}
	if err := ValidName(name); err != nil {
		return fmt.Errorf("sdk: Plugin.Name: %w", err)
	}
	if p.Tool != nil && p.Tool.Spec().Name != name {
		return fmt.Errorf("sdk: Plugin.Name %q differs from the tool's Spec().Name %q", name, p.Tool.Spec().Name)
	}
	if p.Tool != nil {
		if s := p.Tool.Spec().Schema; len(s) > 0 && !json.Valid(s) {
			return fmt.Errorf("sdk: tool %s: Spec().Schema is not valid JSON", name)
		}
	}
	switch p.Shape {
	case "", "tree", "chain", "graph":
	default:
		return fmt.Errorf("sdk: Plugin.Shape: want tree, chain or graph, got %q", p.Shape)
	}
	seen := map[string]bool{}
	for _, ps := range p.Params {
		if err := ValidName(ps.Name); err != nil || seen[ps.Name] {
			return fmt.Errorf("sdk: Plugin.Params: parameter %q: want a unique lower-case name", ps.Name)
		}
		seen[ps.Name] = true
		if ps.Default == nil {
			continue
		}
		if _, err := core.Resolve([]ParamSpec{ps}, Params{ps.Name: ps.Default}); err != nil {
			return fmt.Errorf("sdk: Plugin.Params: default of %s: %w", ps.Name, err)
		}
	}
	return nil
}

// ValidName checks a plugin name: 1 to 64 characters of a-z, 0-9, '-',
// '_' and '.', starting with a letter. Names become directory names and
// command-line values, so nothing else is accepted.
func ValidName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("name %q: want 1 to 64 characters", name)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' && i > 0 || (r == '-' || r == '_' || r == '.') && i > 0
		if !ok {
			return fmt.Errorf("name %q: use lower-case letters, digits, '-', '_' and '.', starting with a letter", name)
		}
	}
	return nil
}
