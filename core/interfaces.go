package core

import (
	"context"
	"encoding/json"
	"errors"
)

// Message is one chat message sent to the policy.
type Message struct {
	Role    string `json:"role"` // system, user, assistant, tool
	Content string `json:"content"`
	// ToolCallID answers a tool call (Role "tool"); ToolCalls are the calls an
	// assistant message made. Both only matter to policies with tool calling.
	ToolCallID string     `json:"tool_call_id,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
}

// CompletionRequest asks the policy for N samples continuing Messages.
type CompletionRequest struct {
	Messages []Message `json:"messages"`
	// Model overrides the policy's default model (empty: the default).
	Model       string     `json:"model,omitempty"`
	N           int        `json:"n"`
	Temperature *float64   `json:"temperature,omitempty"`
	MaxTokens   int        `json:"max_tokens,omitempty"`
	Stop        []string   `json:"stop,omitempty"`
	Seed        *int64     `json:"seed,omitempty"`
	Logprobs    bool       `json:"logprobs,omitempty"`
	Tools       []ToolSpec `json:"tools,omitempty"`
	// Purpose labels the call in traces and metrics: "generate", "value",
	// "judge", "refine", ...
	Purpose string `json:"purpose,omitempty"`
}

// Choice is one sample.
type Choice struct {
	Text         string     `json:"text"`
	FinishReason string     `json:"finish_reason,omitempty"`
	Logprob      *float64   `json:"logprob,omitempty"` // sum of token logprobs when asked and available
	ToolCalls    []ToolCall `json:"tool_calls,omitempty"`
}

// Completion is the policy's answer to a CompletionRequest.
type Completion struct {
	Choices          []Choice `json:"choices"`
	PromptTokens     int64    `json:"prompt_tokens"`
	CompletionTokens int64    `json:"completion_tokens"`
	Model            string   `json:"model,omitempty"`
	// TraceSeq is the seq of the llm_call event Env.Complete recorded for
	// this call (0 when untraced): nodes point at the call that made them
	// with Node.LLMCall, evaluate events with data "llm_calls".
	TraceSeq int64 `json:"-"`
	// TokensEstimated says the token counts are the policy's estimates:
	// the endpoint sent none (some proxies), and budgets still need them.
	TokensEstimated bool `json:"-"`
	// Note says what the policy left out of a call that succeeded (samples
	// cut off while a reasoning model thought): the search goes on with
	// fewer samples than it asked for, and Result.Warnings says so.
	Note string `json:"-"`
}

// Policy proposes reasoning steps: an LLM behind any API, a plugin, or an
// MCP client's own model through sampling. A call that fails after the
// model spent tokens (a reply cut off while it reasoned) may return an
// error with a method BilledTokens() (prompt, completion int64): they are
// charged to the run's token budget, as a served call's are.
type Policy interface {
	Complete(ctx context.Context, req CompletionRequest) (Completion, error)
}

// PolicyFunc adapts a function to Policy.
type PolicyFunc func(ctx context.Context, req CompletionRequest) (Completion, error)

// Complete calls f.
func (f PolicyFunc) Complete(ctx context.Context, req CompletionRequest) (Completion, error) {
	return f(ctx, req)
}

// ErrLLM classifies policy failures so results can say what happened.
// Policies wrap their errors with one of these.
var (
	ErrLLMUnavailable = errors.New("llm unavailable")
	ErrLLMAuth        = errors.New("llm rejected the credentials")
	ErrLLMRateLimited = errors.New("llm rate limited")
	ErrLLMBadResponse = errors.New("llm returned a malformed response")
	// ErrLLMRejected: the endpoint refused the request as invalid (400,
	// 422: a prompt over the model's context, a setting it does not
	// take); sending it again does not help.
	ErrLLMRejected = errors.New("llm rejected the request")
)

// EvalRequest asks an evaluator to score the last node of Path (root first).
type EvalRequest struct {
	Task Task   `json:"task"`
	Path []Node `json:"path"`
	// Policy is the run's metered policy, for evaluators that ask an LLM
	// (a judge, a prompted PRM); their calls count against the run's budget.
	Policy Policy `json:"-"`
	// Steps and Last stand in for Path when it is nil: the contents of the
	// path's steps (root excluded; Task.Steps not included) and the node to
	// score. Evaluate fills them instead of Path for evaluators that are
	// PathFree. Read them through PathSteps and LastNode, which take Path
	// when it is set.
	Steps []string `json:"-"`
	Last  *Node    `json:"-"`
}

// PathSteps returns the contents of the path's steps, root excluded.
func (r EvalRequest) PathSteps() []string {
	if r.Path != nil {
		return Steps(r.Path)
	}
	return r.Steps
}

// LastNode returns the node to score.
func (r EvalRequest) LastNode() (Node, bool) {
	if len(r.Path) > 0 {
		return r.Path[len(r.Path)-1], true
	}
	if r.Last != nil {
		return *r.Last, true
	}
	return Node{}, false
}

// PathFree is implemented by evaluators that read a request's path only
// through PathSteps and LastNode: Evaluate then spares copying every node
// of the path, which for an instant policy is a search's biggest cost per
// node. An evaluator that wraps others is path-free when they all are.
type PathFree interface {
	PathFree() bool
}

// IsPathFree reports whether ev reads its request only through PathSteps
// and LastNode.
func IsPathFree(ev Evaluator) bool {
	pf, ok := ev.(PathFree)
	return ok && pf.PathFree()
}

// Evaluation is an evaluator's verdict. Score is in [-1, 1].
type Evaluation struct {
	Score float64 `json:"score"`
	// Kind is the score's name in Node.Scores (ScoreValue, ScorePRM, ...).
	Kind string `json:"kind"`
	// Correct is set by verifiers that know the answer is right or wrong.
	Correct *bool  `json:"correct,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Evaluator scores a partial or complete solution: a value model, a PRM, an
// ORM, or a programmatic verifier.
type Evaluator interface {
	Evaluate(ctx context.Context, req EvalRequest) (Evaluation, error)
}

// ErrNotApplicable is returned by evaluators that cannot judge a path (a
// verifier without a ground truth); combinators move on to the next one.
var ErrNotApplicable = errors.New("evaluator not applicable")

// ToolSpec describes a tool to the policy.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"` // JSON Schema of the arguments object
}

// ToolCall is a call of a tool by name with JSON arguments.
type ToolCall struct {
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// ToolResult is what a tool returned. A tool that ran and failed returns a
// result with IsError, not a Go error; Go errors mean the call never ran.
type ToolResult struct {
	Text       string `json:"text"`
	Structured any    `json:"structured,omitempty"`
	IsError    bool   `json:"is_error,omitempty"`
}

// Tool is something a reasoning step may call: code execution, a calculator,
// a tool of an external MCP server, a plugin.
type Tool interface {
	Spec() ToolSpec
	Call(ctx context.Context, args json.RawMessage) (ToolResult, error)
}

// SessionTool is a Tool that keeps state between calls under a session
// name (a Python process, say). CloseSession ends the named session and
// stops what it holds; a session that is not live is no error.
type SessionTool interface {
	Tool
	CloseSession(name string)
}

// Toolbox finds tools by name.
type Toolbox interface {
	Tool(name string) (Tool, bool)
	Specs() []ToolSpec
}

// Chunk is a piece of a document returned by a Retriever.
type Chunk struct {
	ID     string            `json:"id"`
	Text   string            `json:"text"`
	Source string            `json:"source"`
	Title  string            `json:"title,omitempty"`
	Score  float64           `json:"score"`
	Meta   map[string]string `json:"meta,omitempty"`
}

// RetrieveRequest asks for the K chunks of Collection most relevant to Query.
type RetrieveRequest struct {
	Query      string            `json:"query"`
	Collection string            `json:"collection,omitempty"`
	K          int               `json:"k,omitempty"`
	Filter     map[string]string `json:"filter,omitempty"`
}

// Retriever grounds reasoning on documents.
type Retriever interface {
	Retrieve(ctx context.Context, req RetrieveRequest) ([]Chunk, error)
}

// Pack knows how to pose one kind of task to a policy and how to read its
// answers: prompts, answer extraction and answer equivalence. Packs live in
// package tasks; the simulator parses the same prompts.
type Pack interface {
	Name() string
	// SolvePrompt asks for a complete step-by-step solution ending in a
	// final answer.
	SolvePrompt(problem string) []Message
	// StepPrompt asks for the next single step after the given steps.
	StepPrompt(problem string, steps []string) []Message
	// ExtractAnswer finds the final answer in a solution or step, if any.
	ExtractAnswer(text string) (string, bool)
	// Normalize maps an answer to a canonical form, so that equivalent
	// answers vote together.
	Normalize(answer string) string
}

// ProblemChecker is optionally implemented by a Pack that reads its
// problems in a fixed form (Game of 24: four numbers): a problem it cannot
// read is refused before the search, which would otherwise run on it and
// return an answer nothing could check.
type ProblemChecker interface {
	CheckProblem(problem string) error
}

// Verifier is optionally implemented by a Pack that can check an answer
// without a ground truth (Game of 24) or against one (GSM8K).
type Verifier interface {
	Verify(problem, answer, truth string) (correct bool, applicable bool)
}
