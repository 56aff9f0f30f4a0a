package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/tools"
	"github.com/ponder-rlm/ponder/traces"
)

const instructions = `Ponder is a reasoning server: it turns an LLM into a reasoning model by searching over reasoning steps (chains, trees, graphs) with strategies such as self-consistency, best-of-n and MCTS.
Use solve for problems that reward careful multi-step reasoning (math, logic, planning, puzzles); pass the whole problem. Pick a strategy with list_strategies when the default is not enough, and bound the cost with budget.
Use search_documents to find passages in the user's ingested documents, and ingest_documents to add documents. get_trace shows how a solve reached its answer.`

// errNoPolicy says how to give Ponder a model, to a stdio client: it
// started this server, with the environment its configuration gives it.
var errNoPolicy = errors.New("no LLM is available to reason with: this Ponder server has no LLM endpoint configured " +
	"and this client does not offer MCP sampling. Set PONDER_LLM_BASE_URL (for example http://127.0.0.1:11434/v1 for Ollama " +
	"or http://127.0.0.1:8000/v1 for vLLM, with PONDER_LLM_MODEL and, if needed, PONDER_LLM_API_KEY) in the environment " +
	"Ponder is started with (the env block of the MCP client's server configuration) and restart it, or use an MCP client " +
	"that supports sampling")

// errNoPolicyRemote is errNoPolicy to a client over HTTP, who did not
// start this server and cannot set its environment: it is sent to the
// operator, whose log has said how to set an endpoint since the start (as
// the OpenAI API's 503 does), and told what it can do itself: lend its
// own model through sampling.
var errNoPolicyRemote = errors.New("no LLM is available to reason with: this Ponder server has no LLM endpoint configured " +
	"and this client does not offer MCP sampling; use an MCP client that supports sampling, or contact the server's " +
	"operator (its log says how to set an endpoint)")

// clientIsOperator reports whether the client of a request started this
// server (stdio): the operator's advice (PONDER_LLM_BASE_URL, restart) is
// for it. A client over HTTP is told to contact the operator instead.
func clientIsOperator(ctx context.Context) bool {
	return transportOf(ctx) == transportStdio
}

func boolp(b bool) *bool { return &b }

func annotations(title string, readOnly, destructive, idempotent, openWorld bool) mcp.ToolAnnotation {
	return mcp.ToolAnnotation{Title: title, ReadOnlyHint: boolp(readOnly), DestructiveHint: boolp(destructive),
		IdempotentHint: boolp(idempotent), OpenWorldHint: boolp(openWorld)}
}

func (s *Server) newMCPServer() *mcpserver.MCPServer {
	hooks := &mcpserver.Hooks{}
	hooks.AddOnUnregisterSession(func(_ context.Context, cs mcpserver.ClientSession) {
		s.samplers.Delete(cs.SessionID())
	})
	// A second initialize, and a cursor this server never issued, are
	// refused before mcp-go accepts them (rpcerrors.go).
	s.addRefusals(hooks)
	hooks.AddOnError(func(ctx context.Context, id any, method mcp.MCPMethod, msg any, err error) {
		s.log.Debug().Str("method", string(method)).Err(err).Msg("mcp request failed")
		// The response goes out as -32603 unless its transport is told
		// the code the request is due (rpcerrors.go).
		if code, ok := protocolCode(ctx, msg, err); ok {
			if c := rpcCodesFrom(ctx); c != nil {
				c.set(id, code)
			}
		}
	})
	m := mcpserver.NewMCPServer("ponder", s.opts.Version,
		mcpserver.WithTitle("Ponder"),
		mcpserver.WithDescription("Reasoning server: search over reasoning steps with any OpenAI-compatible LLM"),
		mcpserver.WithInstructions(instructions),
		mcpserver.WithToolCapabilities(false),
		mcpserver.WithResourceCapabilities(false, false),
		mcpserver.WithPromptCapabilities(false),
		mcpserver.WithLogging(),
		mcpserver.WithCompletions(),
		mcpserver.WithPromptCompletionProvider(completer{s}),
		mcpserver.WithResourceCompletionProvider(completer{s}),
		mcpserver.WithRecovery(),
		mcpserver.WithHooks(hooks),
	)
	// Arguments are checked against each tool's schema before its handler
	// runs (validate.go), with messages a model can act on.
	addTool := func(t mcp.Tool, h mcpserver.ToolHandlerFunc) {
		m.AddTool(t, s.instrument(t.Name, validatedTool(t, h)))
	}
	addTool(mcp.Tool{
		Name:  "solve",
		Title: "Solve with reasoning search",
		Description: "Solve a problem by searching over reasoning steps with an LLM, and return the final answer with the best reasoning path. " +
			"Use it for problems that reward careful multi-step reasoning: math word problems, competition math, logic puzzles, planning, " +
			"checking a derivation. Pass the complete problem. It can take seconds to minutes and spends LLM calls: bound it with budget. " +
			"Strategies:" + s.strategyLines(),
		RawInputSchema:  s.solveInputSchema(),
		RawOutputSchema: solveOutputSchema(),
		Annotations:     annotations("Solve with reasoning search", false, false, false, true),
	}, s.handleSolve)
	addTool(mcp.Tool{
		Name:            "list_strategies",
		Title:           "List reasoning strategies",
		Description:     "List the reasoning strategies solve can use, with what each does and its parameters (name, type, default, range). Call it before passing strategy or params to solve.",
		RawInputSchema:  listStrategiesInputSchema(),
		RawOutputSchema: listStrategiesOutputSchema(),
		Annotations:     annotations("List reasoning strategies", true, false, true, false),
	}, s.handleListStrategies)
	addTool(mcp.Tool{
		Name:  "search_documents",
		Title: "Search documents",
		Description: "Search the user's ingested documents for the passages most relevant to a query (hybrid keyword and semantic search). " +
			"Returns numbered passages with their sources; quote or cite them as [n]. Use it to answer from the user's own documents.",
		RawInputSchema:  searchInputSchema(),
		RawOutputSchema: searchOutputSchema(),
		Annotations:     annotations("Search documents", true, false, true, false),
	}, s.handleSearch)
	addTool(mcp.Tool{
		Name:  "ingest_documents",
		Title: "Add documents",
		Description: "Add documents to a collection so search_documents and solve (with collection) can use them: files, folders or globs on the Ponder " +
			"server's machine (.md, .txt, .html, .pdf, source files), or texts given inline. Re-adding an unchanged document does nothing; a changed one replaces its old version.",
		RawInputSchema:  ingestInputSchema(),
		RawOutputSchema: ingestOutputSchema(),
		Annotations:     annotations("Add documents", false, true, true, false),
	}, s.handleIngest)
	addTool(mcp.Tool{
		Name:  "get_trace",
		Title: "Show a reasoning trace",
		Description: "Show how a solve reached its answer: its status, answer, usage and best reasoning path, or the whole trace " +
			"(every node and event). Pass the trace_id a solve result gave. Works while the search is still running.",
		RawInputSchema:  getTraceInputSchema(),
		RawOutputSchema: getTraceOutputSchema(),
		Annotations:     annotations("Show a reasoning trace", true, false, true, false),
	}, s.handleGetTrace)
	addTool(mcp.Tool{
		Name:            "clear_session",
		Title:           "Forget a session",
		Description:     "Forget a reasoning session: later solves with this session id start without the earlier problems and answers.",
		RawInputSchema:  clearSessionInputSchema(),
		RawOutputSchema: clearSessionOutputSchema(),
		Annotations:     annotations("Forget a session", false, true, true, false),
	}, s.handleClearSession)

	m.AddResource(mcp.NewResource("ponder://strategies", "strategies",
		mcp.WithResourceDescription("The reasoning strategies solve can use, with their parameters (JSON)."),
		mcp.WithMIMEType("application/json")), s.readStrategies)
	m.AddResource(mcp.NewResource("ponder://traces", "traces",
		mcp.WithResourceDescription("The most recent reasoning runs, newest first: id, strategy, status, answer, usage (JSON)."),
		mcp.WithMIMEType("application/json")), s.readTraceList)
	m.AddResourceTemplate(mcp.NewResourceTemplate(traceTemplate, "trace",
		mcp.WithTemplateDescription("One reasoning run's full trace (docs/trace.schema.json): problem, structure, best path, events, usage."),
		mcp.WithTemplateMIMEType("application/json")), s.readTrace)

	m.AddPrompt(mcp.NewPrompt("solve_step_by_step",
		mcp.WithPromptDescription("Solve a problem with Ponder's reasoning search and explain the answer step by step."),
		mcp.WithArgument("problem", mcp.RequiredArgument(), mcp.ArgumentDescription("The problem to solve, stated completely.")),
		mcp.WithArgument("strategy", mcp.ArgumentDescription("Reasoning strategy: "+strings.Join(s.strategyNames(), ", ")+" (default: the server's).")),
	), s.promptSolve)
	m.AddPrompt(mcp.NewPrompt("answer_from_documents",
		mcp.WithPromptDescription("Answer a question from my ingested documents, citing the passages used."),
		mcp.WithArgument("question", mcp.RequiredArgument(), mcp.ArgumentDescription("The question to answer.")),
		mcp.WithArgument("collection", mcp.ArgumentDescription("Document collection to search (default: the server's).")),
	), s.promptDocuments)
	return m
}

// instrument counts tool calls by outcome.
func (s *Server) instrument(name string, h mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		start := time.Now()
		res, err := h(ctx, req)
		outcome := "ok"
		switch {
		case err != nil:
			outcome = "error"
		case ctx.Err() != nil:
			outcome = "cancelled"
		case res != nil && res.IsError:
			outcome = "tool_error"
		}
		s.metrics.toolCalls.WithLabelValues(name, outcome).Inc()
		s.metrics.toolSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		return res, err
	}
}

// rawArgs is a tool call's arguments as JSON; none (or null) is {}.
func rawArgs(req mcp.CallToolRequest) ([]byte, error) {
	raw := req.Params.RawArguments
	if len(raw) == 0 {
		b, err := json.Marshal(req.Params.Arguments)
		if err != nil {
			return nil, fmt.Errorf("bad arguments: %w", err)
		}
		raw = b
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		raw = []byte("{}")
	}
	return raw, nil
}

// decodeArgs decodes a tool call's arguments strictly: unknown fields and
// wrong types are errors naming the field.
func decodeArgs(req mcp.CallToolRequest, v any) error {
	raw, err := rawArgs(req)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		if msg := outOfRange(err); msg != "" {
			return fmt.Errorf("%w: %s", tools.ErrInvalidArguments, msg)
		}
		return fmt.Errorf("bad arguments: %s", jsonErrText(err))
	}
	return nil
}

// outOfRange says, as the schema check does (tools.ValidateArgs), that an
// argument is a whole number too large for its Go integer (a seed of
// 1e30, which the schema's "integer" lets through), with the number as
// written: `argument "seed": got 1e30, want at most 9223372036854775807`.
// "" for any other error.
func outOfRange(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" || te.Type == nil {
		return ""
	}
	lit, ok := strings.CutPrefix(te.Value, "number ")
	if !ok {
		return ""
	}
	var lo, hi *big.Int
	switch te.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := uint(te.Type.Bits())
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), bits-1), big.NewInt(1))
		lo = new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), bits-1))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(te.Type.Bits())), big.NewInt(1))
		lo = big.NewInt(0)
	default:
		return ""
	}
	r, ok := new(big.Rat).SetString(lit)
	if !ok {
		return ""
	}
	want := "integer"
	switch {
	case !r.IsInt():
	case r.Cmp(new(big.Rat).SetInt(hi)) > 0:
		want = "at most " + hi.String()
	case r.Cmp(new(big.Rat).SetInt(lo)) < 0:
		want = "at least " + lo.String()
	}
	return fmt.Sprintf("argument %q: got %s, want %s", te.Field, text.Clip(lit, 40), want)
}

// jsonErrText makes encoding/json errors name the field in the caller's
// terms.
func jsonErrText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "the value"
		}
		return fmt.Sprintf("%s must be %s, got %s", field, jsonTypeName(te.Type.Kind().String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "int32":
		return "an integer"
	case "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return kind
}

func toolError(format string, a ...any) *mcp.CallToolResult {
	return mcp.NewToolResultError(fmt.Sprintf(format, a...))
}

// solveArgs are solve's arguments (also the OpenAI "ponder" field's).
type solveArgs struct {
	Problem    string         `json:"problem"`
	Strategy   string         `json:"strategy,omitempty"`
	Params     map[string]any `json:"params,omitempty"`
	Budget     budgetArgs     `json:"budget,omitempty"`
	Tools      []string       `json:"tools,omitempty"`
	Collection string         `json:"collection,omitempty"`
	Session    string         `json:"session,omitempty"`
	Pack       string         `json:"pack,omitempty"`
	Seed       int64          `json:"seed,omitempty"`
	Model      string         `json:"-"`
}

type budgetArgs struct {
	LLMCalls       int64   `json:"llm_calls,omitempty"`
	Tokens         int64   `json:"tokens,omitempty"`
	ToolCalls      int64   `json:"tool_calls,omitempty"`
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty"`
	Nodes          int64   `json:"nodes,omitempty"`
	Depth          int     `json:"depth,omitempty"`
}

func (b budgetArgs) limits() (core.Limits, error) {
	switch {
	case b.LLMCalls < 0 || b.LLMCalls > maxBudgetLLMCalls:
		return core.Limits{}, fmt.Errorf("budget.llm_calls must be 1 to %d, got %d", maxBudgetLLMCalls, b.LLMCalls)
	case b.Tokens < 0:
		return core.Limits{}, fmt.Errorf("budget.tokens must be at least 1, got %d", b.Tokens)
	case b.ToolCalls < 0:
		return core.Limits{}, fmt.Errorf("budget.tool_calls must be at least 1, got %d", b.ToolCalls)
	case b.TimeoutSeconds < 0 || b.TimeoutSeconds > 86400:
		return core.Limits{}, fmt.Errorf("budget.timeout_seconds must be in (0, 86400], got %v", b.TimeoutSeconds)
	case b.Nodes < 0:
		return core.Limits{}, fmt.Errorf("budget.nodes must be at least 1, got %d", b.Nodes)
	case b.Depth < 0 || b.Depth > maxBudgetDepth:
		return core.Limits{}, fmt.Errorf("budget.depth must be 1 to %d, got %d", maxBudgetDepth, b.Depth)
	}
	return core.Limits{LLMCalls: b.LLMCalls, Tokens: b.Tokens, ToolCalls: b.ToolCalls,
		WallTime: time.Duration(b.TimeoutSeconds * float64(time.Second)), Nodes: b.Nodes, Depth: b.Depth}, nil
}

// solveStep is one step of a best path in results.
type solveStep struct {
	Node    core.NodeID   `json:"node"`
	Kind    core.NodeKind `json:"kind"`
	Content string        `json:"content"`
	Answer  string        `json:"answer,omitempty"`
	Score   *float64      `json:"score,omitempty"`
	Visits  int           `json:"visits,omitempty"`
}

// solveResult is solve's structured content.
type solveResult struct {
	Answer        string          `json:"answer"`
	Strategy      string          `json:"strategy"`
	Pack          string          `json:"pack,omitempty"`
	StoppedReason core.StopReason `json:"stopped_reason"`
	Score         *float64        `json:"score,omitempty"`
	Verified      *bool           `json:"verified,omitempty"` // the pack's check of the answer
	BestPath      []solveStep     `json:"best_path"`
	Usage         core.Usage      `json:"usage"`
	TraceID       string          `json:"trace_id"`
	TraceURI      string          `json:"trace_uri,omitempty"`
	Session       string          `json:"session,omitempty"`
	Policy        string          `json:"policy,omitempty"`
	Error         string          `json:"error,omitempty"`
	Warnings      []string        `json:"warnings,omitempty"`
}

func resultOf(res core.Result, pack, session, policy string) solveResult {
	out := solveResult{Answer: res.Answer, Strategy: res.Strategy, Pack: pack, StoppedReason: res.Stopped,
		Score: res.Score, Verified: res.Verified, Usage: res.Usage, TraceID: res.TraceID, Session: session, Policy: policy,
		BestPath: []solveStep{}, Error: res.Error, Warnings: res.Warnings}
	if res.TraceID != "" {
		out.TraceURI = "ponder://traces/" + res.TraceID
	}
	if res.Trace != nil && res.Trace.Pack != "" {
		out.Pack = res.Trace.Pack
	}
	for _, n := range res.BestPath {
		if n.Kind == core.KindProblem {
			continue
		}
		out.BestPath = append(out.BestPath, stepOf(n))
	}
	return out
}

// text renders a solve result for a model to read.
func (r solveResult) text() string {
	var b strings.Builder
	if r.Answer != "" {
		fmt.Fprintf(&b, "Answer: %s\n", r.Answer)
		if r.Verified != nil && *r.Verified {
			b.WriteString("The task pack's check accepts this answer.\n") // a rejected one has a warning
		}
	} else {
		b.WriteString("No answer was found.\n")
	}
	if len(r.BestPath) > 0 {
		fmt.Fprintf(&b, "\nBest reasoning path (%s):\n", text.Count(len(r.BestPath), "step"))
		budget := 24000
		for i, st := range r.BestPath {
			line := strings.TrimSpace(st.Content)
			line = clipBytes(line, 2000)
			if budget -= len(line); budget < 0 {
				fmt.Fprintf(&b, "… %d more steps (see get_trace)\n", len(r.BestPath)-i)
				break
			}
			fmt.Fprintf(&b, "%d. %s\n", i+1, line)
		}
	}
	fmt.Fprintf(&b, "\nStrategy %s, stopped: %s", r.Strategy, r.StoppedReason)
	switch {
	case r.Answer == "" && r.StoppedReason == core.StopBudget:
		b.WriteString(" (budget used up before an answer was found)")
	case r.Answer == "" && r.StoppedReason == core.StopTimeout:
		b.WriteString(" (time limit reached before an answer was found)")
	case r.Answer == "" && r.StoppedReason == core.StopCancelled:
		b.WriteString(" (cancelled before an answer was found)")
	case r.StoppedReason == core.StopBudget:
		b.WriteString(" (budget used up; this is the best answer found so far)")
	case r.StoppedReason == core.StopTimeout:
		b.WriteString(" (time limit reached; best answer so far)")
	case r.StoppedReason == core.StopCancelled:
		b.WriteString(" (cancelled; best answer so far)")
	}
	if r.Score != nil {
		fmt.Fprintf(&b, ", score %.2f", *r.Score)
	}
	fmt.Fprintf(&b, ", %s, %s, %.1f s. Trace %s", text.Count(int(r.Usage.LLMCalls), "LLM call"),
		text.Count(int(r.Usage.PromptTokens+r.Usage.CompletionTokens), "token"), r.Usage.WallMS/1000, r.TraceID)
	if r.Error != "" && r.StoppedReason != core.StopDone && r.StoppedReason != core.StopCancelled {
		fmt.Fprintf(&b, "\nNote: %s", r.Error)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "\nWarning: %s", w)
	}
	return b.String()
}

// policyFor picks the engine for an MCP request: the configured endpoint,
// else the client's own model through sampling.
func (s *Server) policyFor(ctx context.Context) (*core.Engine, string, error) {
	if s.engine.HasPolicy() {
		return s.engine, "endpoint", nil
	}
	if p := s.samplingPolicy(ctx); p != nil {
		return s.engine.WithPolicy(p), "sampling", nil
	}
	if !clientIsOperator(ctx) {
		return nil, "", errNoPolicyRemote
	}
	return nil, "", errNoPolicy
}

func (s *Server) handleSolve(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args solveArgs
	if err := decodeArgs(req, &args); err != nil {
		return toolError("solve: %v", err), nil
	}
	task, err := s.problemTask(args)
	if err != nil {
		return toolError("solve: %v", err), nil
	}
	if err := s.validate(ctx, task); err != nil {
		return toolError("solve: %v", err), nil
	}
	eng, policy, err := s.policyFor(ctx)
	if err != nil {
		return toolError("solve: %v", err), nil
	}
	// Admitted before "solve started" is logged: a solve refused as busy
	// never started.
	release, err := s.admit(1)
	if err != nil {
		return toolError("solve: %v", err), nil
	}
	defer release()
	log := s.log.With().Str("via", "mcp").Str("transport", string(transportOf(ctx))).Logger()
	p := newProgressSender(s, ctx, req)
	strategy := task.Strategy
	if strategy == "" {
		strategy = eng.DefaultStrategy() // the one the search runs, not ""
	}
	s.logToClient(ctx, mcp.LoggingLevelInfo, map[string]any{"event": "solve started", "strategy": strategy,
		"pack": task.Pack, "policy": policy})
	res, err := s.run(ctx, eng, task, runOptions{via: "mcp", onUpdate: p.update, onFinal: p.final})
	if err != nil {
		if errors.Is(err, errShuttingDown) {
			return toolError("solve: %v; try again when it is back", err), nil
		}
		return toolError("solve: %v", err), nil
	}
	if args.Session != "" && res.Answer != "" && res.Stopped != core.StopCancelled && ctx.Err() == nil {
		// Only an answer the client gets: a cancelled request's response
		// is not sent.
		s.sess.Add(args.Session, turn{Problem: args.Problem, Answer: res.Answer, TraceID: res.TraceID, At: time.Now()})
	}
	if res.Stopped == core.StopError && !clientIsOperator(ctx) {
		// Over HTTP, the client is not the operator, as over the OpenAI
		// API: it is sent what failed, without the operator's advice
		// (PONDER_LLM_BASE_URL), which the log keeps. A stdio client
		// started this server with its own environment: the advice is
		// for it, and it has no other log to read.
		s.logFailures("mcp", []core.Result{res})
		if policy == "sampling" {
			// The model that failed is the client's own (its user
			// refused the request, it answered an image, ...): there is
			// no endpoint of the operator's to blame.
			res.Error = operatorAdvice.ReplaceAllString(res.Error, "")
		} else {
			res.Error = clientError(res)
		}
	}
	if !clientIsOperator(ctx) {
		res.Warnings = clientWarnings(res.Warnings)
	}
	// The document store's errors, without its paths for a remote client
	// (the mask below would rewrite them too, but not log them).
	res.Error = s.storeErrorFor(ctx, "mcp", res.Error)
	if len(res.Warnings) > 0 {
		res.Warnings = slices.Clone(res.Warnings)
		for i, w := range res.Warnings {
			res.Warnings[i] = s.storeErrorFor(ctx, "mcp", w)
		}
	}
	out := resultOf(res, task.Pack, args.Session, policy)
	if s.unsaved(res.TraceID) != "" {
		out.TraceURI = "" // nothing there to read (the warnings say why)
	}
	// A remote client reads the sources retrieved by their names.
	mask := traceMask(s.localClient(ctx), res.Trace)
	level := mcp.LoggingLevelInfo
	if res.Stopped == core.StopError {
		level = mcp.LoggingLevelWarning
	}
	s.logToClient(ctx, level, map[string]any{"event": "solve finished", "trace_id": res.TraceID,
		"stopped": string(res.Stopped), "llm_calls": res.Usage.LLMCalls})
	log.Debug().Str("trace", res.TraceID).Str("stopped", string(res.Stopped)).Msg("solve answered")
	if res.Stopped == core.StopError && res.Answer == "" {
		r := mcp.NewToolResultStructured(mask.structured(out), mask.Text("solve failed: "+res.Error+" (trace "+res.TraceID+")"))
		r.IsError = true
		return r, nil
	}
	return mcp.NewToolResultStructured(mask.structured(out), mask.Text(out.text())), nil
}

// logToClient sends an MCP log notification (logging/setLevel decides
// which reach the client). Never prompts or answers: ids and counts only.
//
// It is written now on the request's own stream (stdout, or its POST's
// event stream), so it precedes the response: mcp-go sends notifications
// from another goroutine, and over HTTP hands them to whichever of the
// session's streams takes them first, so that a solve's last log ("solve
// finished", a warning when it failed) came after the response on stdio,
// and over HTTP on another stream or not at all.
func (s *Server) logToClient(ctx context.Context, level mcp.LoggingLevel, data map[string]any) {
	cs := mcpserver.ClientSessionFromContext(ctx)
	if cs == nil {
		return
	}
	if stdioFrom(ctx) == nil && postStream(ctx) == nil {
		_ = s.mcp.SendLogMessageToClient(ctx, mcp.NewLoggingMessageNotification(level, "ponder", data))
		return
	}
	if !cs.Initialized() || !logWanted(ctx, cs, level) {
		return
	}
	params := map[string]any{"level": level, "logger": "ponder", "data": data}
	if _, err := notifyOwnStream(ctx, "notifications/message", params); err != nil {
		s.log.Debug().Err(err).Msg("log notification not sent")
	}
}

// notifyOwnStream writes a notification of the request ctx handles on
// that request's own stream, now, so that it precedes the response there:
// on stdio, or on its POST stream over HTTP (mcp-go would hand it to
// whichever of the session's streams takes it first, another request's
// among them, which MCP 2025-06-18 says a POST stream should not carry).
// It reports false when the request has neither.
func notifyOwnStream(ctx context.Context, method string, params map[string]any) (bool, error) {
	if t := stdioFrom(ctx); t != nil {
		return true, t.notify(method, params)
	}
	if w := postStream(ctx); w != nil {
		return true, w.notify(mcpserver.ClientSessionFromContext(ctx), method, params)
	}
	return false, nil
}

// logWanted reports whether the client asked for log notifications of
// level, as mcp-go's SendLogMessageToClient decides: by the request's own
// level in the stateless protocol (none: no logs), else by the session's
// (logging/setLevel).
func logWanted(ctx context.Context, cs mcpserver.ClientSession, level mcp.LoggingLevel) bool {
	if info := mcpserver.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		return info.LogLevel != "" && level.ShouldSendTo(info.LogLevel)
	}
	sl, ok := cs.(mcpserver.SessionWithLogging)
	return ok && level.ShouldSendTo(sl.GetLogLevel())
}

// How long the final progress notification is given to reach the client
// before the response on stdio: stdioReadWait bounds the wait for the
// client to read it off a pipe; stdioProgressGap is the pause when stdout
// is not a pipe.
const (
	stdioProgressGap = 15 * time.Millisecond
	stdioReadWait    = 2 * time.Second
)

// progressSender turns search snapshots into notifications/progress for a
// request that asked for them. progress is the LLM calls used so far and
// total the call budget; the message says nodes, best score and calls.
type progressSender struct {
	s     *Server
	ctx   context.Context
	token mcp.ProgressToken
	mu    sync.Mutex
	sent  float64 // last progress value sent (-1: none)
}

func newProgressSender(s *Server, ctx context.Context, req mcp.CallToolRequest) *progressSender {
	p := &progressSender{s: s, ctx: ctx, sent: -1}
	if req.Params.Meta != nil {
		p.token = req.Params.Meta.ProgressToken
	}
	return p
}

func (p *progressSender) update(snap progress, _ []core.Event) {
	if p.token == nil || p.ctx.Err() != nil {
		return // nobody asked, or the request was cancelled
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if v := float64(snap.LLMCalls); v > p.sent {
		p.send(v, snap, false)
	}
}

// final sends the last notification, and makes sure it is on the wire
// before the result is.
func (p *progressSender) final(snap progress, _ []core.Event) {
	if p.token == nil || p.ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	v := float64(snap.LLMCalls)
	if snap.CallLimit > 0 && float64(snap.CallLimit) > v {
		v = float64(snap.CallLimit) // the search is over: report it complete
	}
	if v <= p.sent {
		return
	}
	p.send(v, snap, true)
}

func (p *progressSender) send(v float64, snap progress, final bool) {
	params := map[string]any{"progressToken": p.token, "progress": v, "message": snap.message()}
	if snap.CallLimit > 0 {
		params["total"] = float64(snap.CallLimit)
	}
	p.sent = v
	// On the request's own stream, as its log notifications are.
	own, err := notifyOwnStream(p.ctx, "notifications/progress", params)
	if !own {
		err = p.s.mcp.SendNotificationToClient(p.ctx, "notifications/progress", params)
	}
	if err != nil {
		p.s.log.Debug().Err(err).Msg("progress not sent")
	}
	if t := stdioFrom(p.ctx); t != nil && final {
		// Clients that read the final notification and the response in
		// one chunk may still act on the response first: the official
		// TypeScript SDK handles notifications a microtask later than
		// responses, and drops progress that arrives for a finished
		// request. The response must come in a later read: on a pipe,
		// wait until the client has read the notification; elsewhere,
		// a short gap.
		t.awaitRead(p.ctx, stdioProgressGap, stdioReadWait)
	}
}

type strategyInfo struct {
	Name    string           `json:"name"`
	Summary string           `json:"summary"`
	Source  string           `json:"source,omitempty"`
	Params  []core.ParamSpec `json:"params"`
}

type strategiesResult struct {
	DefaultStrategy string         `json:"default_strategy,omitempty"`
	Strategies      []strategyInfo `json:"strategies"`
}

func (s *Server) strategies() strategiesResult {
	out := strategiesResult{DefaultStrategy: s.defaultStrategy(), Strategies: []strategyInfo{}}
	for _, sp := range s.engine.Registry().Strategies() {
		ps := sp.Params
		if ps == nil {
			ps = []core.ParamSpec{}
		}
		out.Strategies = append(out.Strategies, strategyInfo{Name: sp.Name, Summary: sp.Summary, Source: sp.Source, Params: ps})
	}
	return out
}

func (s *Server) defaultStrategy() string {
	if s.opts.DefaultStrategy != "" {
		return s.opts.DefaultStrategy
	}
	return config.Default().Search.Strategy
}

func (s *Server) handleListStrategies(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var none struct{}
	if err := decodeArgs(req, &none); err != nil {
		return toolError("list_strategies: %v", err), nil
	}
	out := s.strategies()
	var b strings.Builder
	fmt.Fprintf(&b, "%d strategies (default %s):\n", len(out.Strategies), out.DefaultStrategy)
	for _, st := range out.Strategies {
		fmt.Fprintf(&b, "\n%s: %s\n", st.Name, st.Summary)
		for _, p := range st.Params {
			fmt.Fprintf(&b, "  - %s (%s", p.Name, p.Type)
			if d, ok := p.Default.(string); ok && d == "" {
				b.WriteString(`, default ""`)
			} else if p.Default != nil {
				fmt.Fprintf(&b, ", default %v", p.Default)
			}
			if p.Min != nil || p.Max != nil {
				b.WriteString(", range ")
				if p.Min != nil {
					fmt.Fprintf(&b, "%v", *p.Min)
				}
				b.WriteString("..")
				if p.Max != nil {
					fmt.Fprintf(&b, "%v", *p.Max)
				}
			}
			if len(p.Enum) > 0 {
				fmt.Fprintf(&b, ", one of %s", strings.Join(p.Enum, "|"))
			}
			fmt.Fprintf(&b, "): %s\n", p.Description)
		}
	}
	return mcp.NewToolResultStructured(out, b.String()), nil
}

type passage struct {
	N      int     `json:"n"`
	ID     string  `json:"id,omitempty"`
	Text   string  `json:"text"`
	Source string  `json:"source"`
	Title  string  `json:"title,omitempty"`
	Score  float64 `json:"score"`
}

type searchResult struct {
	Collection string    `json:"collection,omitempty"`
	Passages   []passage `json:"passages"`
}

// errNoDocuments says how to get a document store.
const errNoDocuments = "no document store is configured on this Ponder server (retrieval is not available in this build or failed to start; see the server's log)"

func (s *Server) handleSearch(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args struct {
		Query      string `json:"query"`
		Collection string `json:"collection"`
		K          int    `json:"k"`
	}
	if err := decodeArgs(req, &args); err != nil {
		return toolError("search_documents: %v", err), nil
	}
	if strings.TrimSpace(args.Query) == "" {
		return toolError("search_documents: the query is empty: say what to look for"), nil
	}
	if s.opts.Retriever == nil {
		return toolError("search_documents: %s", errNoDocuments), nil
	}
	if args.K <= 0 {
		args.K = 5
	}
	chunks, err := s.opts.Retriever.Retrieve(ctx, core.RetrieveRequest{Query: args.Query, Collection: args.Collection, K: args.K})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return toolError("search_documents: %s", s.storeErrorFor(ctx, "search_documents", err.Error())), nil
	}
	// A remote client is shown each source's name (docs/guide.md), not the
	// absolute path it is stored under, which tells how the server's disk
	// is laid out; a local one gets the path, to open the file.
	if !s.localClient(ctx) {
		chunks = retrieval.PublicChunks(chunks)
	}
	out := searchResult{Collection: args.Collection, Passages: []passage{}}
	for i, c := range chunks {
		out.Passages = append(out.Passages, passage{N: i + 1, ID: c.ID, Text: c.Text, Source: c.Source, Title: c.Title, Score: c.Score})
	}
	if len(chunks) == 0 {
		return mcp.NewToolResultStructured(out, "No passages matched the query. Try other words, or add documents with ingest_documents."), nil
	}
	return mcp.NewToolResultStructured(out, core.FormatPassages(chunks)), nil
}

func (s *Server) handleIngest(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args IngestRequest
	if err := decodeArgs(req, &args); err != nil {
		return toolError("ingest_documents: %v", err), nil
	}
	if len(args.Paths) == 0 && len(args.Texts) == 0 {
		return toolError("ingest_documents: nothing to add: give paths (files, folders, globs) or texts"), nil
	}
	for i, t := range args.Texts {
		if strings.TrimSpace(t.Text) == "" {
			return toolError("ingest_documents: texts[%d].text is empty", i), nil
		}
	}
	if len(args.Paths) > 0 && !s.localClient(ctx) {
		return toolError("ingest_documents: reading files on the server is only allowed for local clients (stdio, or a server bound to loopback); send the documents' content as texts instead"), nil
	}
	if s.opts.Ingester == nil {
		return toolError("ingest_documents: %s", errNoDocuments), nil
	}
	res, err := s.opts.Ingester.Ingest(ctx, args)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return toolError("ingest_documents: %s", s.storeErrorFor(ctx, "ingest_documents", err.Error())), nil
	}
	if res.Documents == nil {
		res.Documents = []IngestedDoc{}
	}
	for i, d := range res.Documents {
		res.Documents[i].Reason = s.storeErrorFor(ctx, "ingest_documents", d.Reason)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Collection %s: %d added, %d updated, %d unchanged, %d skipped, %d removed; %d chunks.", res.Collection,
		res.Added, res.Updated, res.Unchanged, res.Skipped, res.Removed, res.Chunks)
	for _, d := range res.Documents {
		switch {
		case d.Status == "skipped" || d.Status == "failed" || d.Status == "removed":
			fmt.Fprintf(&b, "\n%s %s: %s", d.Status, d.Source, d.Reason)
		case d.Note != "":
			fmt.Fprintf(&b, "\n%s %s (%s)", d.Status, d.Source, d.Note)
		}
	}
	return mcp.NewToolResultStructured(res, b.String()), nil
}

// localClient reports whether the caller is on this machine: stdio, or
// HTTP on a server bound to loopback.
func (s *Server) localClient(ctx context.Context) bool {
	switch transportOf(ctx) {
	case transportStdio, "inprocess":
		return true
	}
	return s.loopbackBound()
}

type traceResult struct {
	TraceID   string          `json:"trace_id"`
	Status    core.StopReason `json:"status"`
	Strategy  string          `json:"strategy"`
	Pack      string          `json:"pack,omitempty"`
	Problem   string          `json:"problem,omitempty"`
	Answer    string          `json:"answer"`
	Error     string          `json:"error,omitempty"`
	Usage     core.Usage      `json:"usage"`
	Nodes     int             `json:"nodes"`
	BestPath  []solveStep     `json:"best_path,omitempty"`
	Trace     *core.Trace     `json:"trace,omitempty"`
	Truncated bool            `json:"truncated,omitempty"`
}

// maxTraceBytes caps a full trace returned by get_trace; larger ones are
// served by the trace resource and the web viewer.
const maxTraceBytes = 2 << 20

func (s *Server) handleGetTrace(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args struct {
		TraceID string `json:"trace_id"`
		Detail  string `json:"detail"`
	}
	if err := decodeArgs(req, &args); err != nil {
		return toolError("get_trace: %v", err), nil
	}
	if s.opts.Traces == nil {
		return toolError("get_trace: this server keeps no traces (no data directory)"), nil
	}
	if args.Detail == "" {
		args.Detail = "path"
	}
	t, err := s.opts.Traces.Get(args.TraceID)
	if err != nil {
		if why := s.unsaved(args.TraceID); why != "" {
			return toolError("get_trace: trace %q was not saved (%s): the server could not write it to its data directory", args.TraceID, why), nil
		}
		if errors.Is(err, traces.ErrNotFound) {
			return toolError("get_trace: no trace %q: pass the trace_id of a solve result (older traces are removed beyond the server's limit)", args.TraceID), nil
		}
		return toolError("get_trace: %v", err), nil
	}
	out := traceResult{TraceID: t.ID, Status: t.Status, Strategy: t.Strategy, Pack: t.Pack, Problem: t.Problem,
		Answer: t.Answer, Error: t.Error, Usage: t.Usage}
	// A remote client reads the sources retrieved by their names; what is
	// stored keeps their paths.
	mask := traceMask(s.localClient(ctx), t)
	// The nodes the search added, nested searches' included, as usage
	// counts them: the top structure's length counted its root and none of
	// a nested search's nodes.
	out.Nodes = int(t.Usage.Nodes)
	var b strings.Builder
	fmt.Fprintf(&b, "Trace %s: strategy %s, status %s, %s, %s.\nProblem: %s\nAnswer: %s\n",
		t.ID, t.Strategy, t.Status, text.Count(out.Nodes, "node"), text.Count(int(t.Usage.LLMCalls), "LLM call"), clipBytes(t.Problem, 2000), t.Answer)
	if args.Detail != "summary" && t.Structure != nil && len(t.BestPath) > 0 {
		for _, id := range t.BestPath {
			if n, ok := t.Structure.Node(id); ok && n.Kind != core.KindProblem {
				out.BestPath = append(out.BestPath, stepOf(n))
			}
		}
		b.WriteString("\nBest path:\n")
		for i, st := range out.BestPath {
			fmt.Fprintf(&b, "%d. %s\n", i+1, clipBytes(strings.TrimSpace(st.Content), 2000))
		}
	}
	if args.Detail == "full" {
		raw, err := json.Marshal(t)
		if err == nil && len(raw) <= maxTraceBytes {
			out.Trace = t
			b.WriteString("\nFull trace:\n")
			b.Write(mask.JSON(raw))
		} else {
			out.Truncated = true
			fmt.Fprintf(&b, "\nThe full trace is %d bytes, too large to return here: read the resource ponder://traces/%s (up to %s), GET /ui/api/runs/%s, or run `ponder trace get %s` on the server's machine.", len(raw), t.ID, sizeText(maxTraceResourceBytes), t.ID, t.ID)
		}
	}
	return mcp.NewToolResultStructured(mask.structured(out), mask.Text(b.String())), nil
}

func (s *Server) handleClearSession(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	var args struct {
		Session string `json:"session"`
	}
	if err := decodeArgs(req, &args); err != nil {
		return toolError("clear_session: %v", err), nil
	}
	if err := validSessionID(args.Session); err != nil {
		return toolError("clear_session: %v", err), nil
	}
	turns, cleared := s.sess.Clear(args.Session)
	out := map[string]any{"session": args.Session, "cleared": cleared, "turns": turns}
	text := fmt.Sprintf("Session %s cleared (%s forgotten).", args.Session, text.Count(turns, "turn"))
	if !cleared {
		text = fmt.Sprintf("Session %s holds nothing (unknown or expired).", args.Session)
	}
	return mcp.NewToolResultStructured(out, text), nil
}

func jsonResource(uri string, v any) ([]mcp.ResourceContents, error) {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", uri, err)
	}
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: "application/json", Text: string(b)}}, nil
}

func (s *Server) readStrategies(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	return jsonResource(req.Params.URI, s.strategies())
}

func (s *Server) readTraceList(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	list := []traces.Summary{}
	if s.opts.Traces != nil {
		list = s.opts.Traces.List()
		if len(list) > 100 {
			list = list[:100]
		}
	}
	return jsonResource(req.Params.URI, map[string]any{"traces": list})
}

// promptArgs refuses arguments a prompt does not take: a misspelt one
// ("strategi") was ignored, and the prompt made without it.
func promptArgs(req mcp.GetPromptRequest, takes ...string) error {
	for name := range req.Params.Arguments {
		if !slices.Contains(takes, name) {
			return fmt.Errorf("%w: prompt %s takes no argument %q (it takes %s)", mcp.ErrInvalidParams, req.Params.Name, name, strings.Join(takes, ", "))
		}
	}
	return nil
}

// promptArgCap refuses a prompt argument longer than the tool the prompt
// leads to takes (in characters, as its schema's maxLength counts): the
// prompt would only set the model up for a call that is refused.
func promptArgCap(name, v string, max int, tool string) error {
	if n := utf8.RuneCountInString(v); n > max {
		return fmt.Errorf("%w: argument %s is %d characters, more than the %d the %s tool takes", mcp.ErrInvalidParams, name, n, max, tool)
	}
	return nil
}

func (s *Server) promptSolve(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	if err := promptArgs(req, "problem", "strategy"); err != nil {
		return nil, err
	}
	problem := strings.TrimSpace(req.Params.Arguments["problem"])
	if problem == "" {
		return nil, fmt.Errorf("%w: argument problem is required", mcp.ErrInvalidParams)
	}
	if err := promptArgCap("problem", req.Params.Arguments["problem"], maxProblemChars, "solve"); err != nil {
		return nil, err
	}
	how := "the server's default strategy"
	if st := strings.TrimSpace(req.Params.Arguments["strategy"]); st != "" {
		if _, err := s.engine.Registry().Strategy(st); err != nil {
			return nil, fmt.Errorf("%w: %v", mcp.ErrInvalidParams, err)
		}
		how = fmt.Sprintf("strategy %q", st)
	}
	text := fmt.Sprintf("Solve the problem below with Ponder's solve tool, using %s. Then explain the answer step by step, "+
		"following the best reasoning path the tool returns, check each step, and end with the final answer on its own line.\n\nProblem:\n%s", how, problem)
	return mcp.NewGetPromptResult("Solve step by step with Ponder",
		[]mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text))}), nil
}

func (s *Server) promptDocuments(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	if err := promptArgs(req, "question", "collection"); err != nil {
		return nil, err
	}
	q := strings.TrimSpace(req.Params.Arguments["question"])
	if q == "" {
		return nil, fmt.Errorf("%w: argument question is required", mcp.ErrInvalidParams)
	}
	if err := promptArgCap("question", req.Params.Arguments["question"], maxQueryChars, "search_documents"); err != nil {
		return nil, err
	}
	where := ""
	if c := strings.TrimSpace(req.Params.Arguments["collection"]); c != "" {
		where = fmt.Sprintf(" in collection %q", c)
	}
	text := fmt.Sprintf("Answer the question below from my documents only. First call search_documents with the question%s. "+
		"Read the passages, answer from them, and cite the passages you used as [n] with their sources. If they do not "+
		"contain the answer, say so instead of guessing.\n\nQuestion: %s", where, q)
	return mcp.NewGetPromptResult("Answer from my documents",
		[]mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text))}), nil
}

// completer suggests argument values: strategy names for the prompts'
// strategy argument, recent trace ids for ponder://traces/{id}. A prompt,
// argument or resource template this server does not have is -32602, as
// the spec says (mcp-go's default answers it with no values, which a
// client cannot tell from "nothing matches"); an argument it has with
// nothing to suggest (a problem's text) gets no values.
type completer struct{ s *Server }

// traceTemplate is the URI template of one trace's resource.
const traceTemplate = "ponder://traces/{id}"

func (c completer) CompletePromptArgument(_ context.Context, prompt string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	sp, ok := c.s.mcp.ListPrompts()[prompt]
	if !ok {
		return nil, fmt.Errorf("completion/complete: %w: no prompt %q (prompts/list names them: %s)", mcp.ErrInvalidParams,
			text.Clip(prompt, 100), strings.Join(slices.Sorted(maps.Keys(c.s.mcp.ListPrompts())), ", "))
	}
	var takes []string
	for _, a := range sp.Prompt.Arguments {
		takes = append(takes, a.Name)
	}
	if !slices.Contains(takes, arg.Name) {
		return nil, fmt.Errorf("completion/complete: %w: prompt %s takes no argument %q (it takes %s)", mcp.ErrInvalidParams,
			prompt, text.Clip(arg.Name, 100), strings.Join(takes, ", "))
	}
	if prompt == "solve_step_by_step" && arg.Name == "strategy" {
		return completion(c.s.strategyNames(), arg.Value), nil
	}
	return &mcp.Completion{Values: []string{}}, nil
}

func (c completer) CompleteResourceArgument(_ context.Context, uri string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if uri != traceTemplate {
		return nil, fmt.Errorf("completion/complete: %w: no resource template %q (resources/templates/list names them: %s)",
			mcp.ErrInvalidParams, text.Clip(uri, 200), traceTemplate)
	}
	if arg.Name != "id" {
		return nil, fmt.Errorf("completion/complete: %w: template %s takes no argument %q (it takes id)",
			mcp.ErrInvalidParams, traceTemplate, text.Clip(arg.Name, 100))
	}
	var ids []string
	if c.s.opts.Traces != nil {
		for _, t := range c.s.opts.Traces.List() {
			ids = append(ids, t.ID)
		}
	}
	return completion(ids, arg.Value), nil
}

// completion returns the values starting with prefix, at most 100 (the
// protocol's cap).
func completion(all []string, prefix string) *mcp.Completion {
	out := &mcp.Completion{Values: []string{}}
	n := 0
	for _, v := range all {
		if strings.HasPrefix(v, prefix) {
			n++
			if len(out.Values) < 100 {
				out.Values = append(out.Values, v)
			}
		}
	}
	out.Total = n
	out.HasMore = n > len(out.Values)
	return out
}
