package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
)

// The OpenAI-compatible API: POST /v1/chat/completions and GET /v1/models.
// The model name picks the strategy and the upstream model:
// "mcts:qwen2.5-7b-instruct" runs MCTS with qwen2.5-7b-instruct as the
// policy, "mcts" runs MCTS with the configured model, and a plain upstream
// model name runs the default strategy. Strategy parameters, budget,
// session and collection go in an extra body field:
//
//	{"model": "self-consistency:gpt-4o-mini", "messages": [...],
//	 "ponder": {"params": {"k": 8}, "budget": {"llm_calls": 16}}}

const maxChoices = 16

// chatRequest is the part of a chat completion request Ponder reads; other
// fields (top_p, max_tokens, ...) are accepted and ignored: the strategy
// samples as it needs. Temperature becomes the strategy's own parameter
// (chatTasks).
type chatRequest struct {
	Model         string          `json:"model"`
	Temperature   *float64        `json:"temperature"`
	Messages      []chatMessage   `json:"messages"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	N             *int            `json:"n"`
	Seed          *int64          `json:"seed"`
	Tools         json.RawMessage `json:"tools"`
	Functions     json.RawMessage `json:"functions"`
	ToolChoice    json.RawMessage `json:"tool_choice"`
	FunctionCall  json.RawMessage `json:"function_call"`
	Logprobs      bool            `json:"logprobs"`
	// ResponseFormat is json.RawMessage so that a wrong shape is named.
	ResponseFormat json.RawMessage `json:"response_format"`
	Ponder         json.RawMessage `json:"ponder"`
}

// given reports whether a raw field was sent with a value.
func given(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// ponderOptions is the "ponder" body field.
type ponderOptions struct {
	Params     map[string]any `json:"params"`
	Budget     budgetArgs     `json:"budget"`
	Pack       string         `json:"pack"`
	Session    string         `json:"session"`
	Collection string         `json:"collection"`
	Tools      []string       `json:"tools"`
	Seed       *int64         `json:"seed"`
}

// apiError is an error in the OpenAI format.
type apiError struct {
	status int
	typ    string
	param  string
	// code is OpenAI's machine-readable code (invalid_api_key,
	// invalid_type), null when empty.
	code string
	msg  string
	// retryAfter, when set, goes out as the Retry-After header (a 429).
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.msg }

func badRequest(param, format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", param: param, msg: fmt.Sprintf(format, a...)}
}

func writeOpenAIError(w http.ResponseWriter, status int, typ, msg string) {
	writeAPIError(w, &apiError{status: status, typ: typ, msg: msg})
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.retryAfter.Seconds()))))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e.body()})
}

// body is the error object OpenAI sends, in a response body or a stream's
// error event: message, type, param and code, the last two null when
// empty.
func (e *apiError) body() map[string]any {
	body := map[string]any{"message": e.msg, "type": e.typ, "code": nil, "param": nil}
	if e.param != "" {
		body["param"] = e.param
	}
	if e.code != "" {
		body["code"] = e.code
	}
	return body
}

// rateLimited is a 429 as OpenAI's clients read it: OpenAI's code,
// rate_limit_exceeded, which is what clients that tell a rate limit apart
// from the status read (OpenAI's type for it varies: requests, tokens).
// The type stays Ponder's own, rate_limit_exceeded too, for the clients
// that read it before the code was set. The SDKs raise their rate-limit
// error on the status alone.
func rateLimited(msg string) *apiError {
	return &apiError{status: http.StatusTooManyRequests, typ: "rate_limit_exceeded", code: "rate_limit_exceeded", msg: msg}
}

// denial is the OpenAI error of a /v1 request the guard refused (see
// deny), kind its type. A 401 is typed as OpenAI types it,
// invalid_request_error with code invalid_api_key: clients that tell a bad
// key apart read the code (the SDKs raise their authentication error on
// the status alone). A 429 carries OpenAI's code too (rateLimited).
func denial(status int, kind, msg string) *apiError {
	switch status {
	case http.StatusUnauthorized:
		return &apiError{status: status, typ: "invalid_request_error", code: "invalid_api_key", msg: msg}
	case http.StatusTooManyRequests:
		return rateLimited(msg)
	}
	return &apiError{status: status, typ: kind, msg: msg}
}

// bodyError is a request body that does not decode into a chat completion
// request. A value of the wrong type names its parameter in param, as
// OpenAI's does (n, messages[1].role), with code invalid_type. JSON nested
// deeper than encoding/json reads is said to be that, as MCP says it
// (tooDeep): it was "malformed JSON", which a client whose JSON is valid
// could not act on.
func bodyError(body []byte, err error) *apiError {
	if tooDeep(err) {
		return badRequest("", "the request body is nested too deeply: its JSON goes more than 10000 levels deep, deeper than "+
			"this server reads (a chat completion request needs a few dozen at most)")
	}
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return badRequest("", "the request body is not a valid chat completion request: %s", jsonErrText(err))
	}
	named := *te
	named.Field = typeErrorParam(body, te.Field)
	e := badRequest(named.Field, "the request body is not a valid chat completion request: %s", jsonErrText(&named))
	e.code = "invalid_type"
	return e
}

// typeErrorParam turns encoding/json's path of a wrong value (n,
// messages.role: no index) into OpenAI's (n, messages[1].role), finding
// the message that does not decode.
func typeErrorParam(body []byte, field string) string {
	rest, inMessages := strings.CutPrefix(field, "messages")
	if !inMessages || (rest != "" && rest[0] != '.') {
		return field
	}
	var r struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if json.Unmarshal(body, &r) != nil {
		return "messages" // not an array
	}
	for i, m := range r.Messages {
		if json.Unmarshal(m, new(chatMessage)) != nil {
			return fmt.Sprintf("messages[%d]%s", i, rest)
		}
	}
	return "messages"
}

// decodeChatRequest reads and checks a request body.
func decodeChatRequest(body []byte) (chatRequest, *ponderOptions, error) {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return req, nil, bodyError(body, err)
	}
	if strings.TrimSpace(req.Model) == "" {
		return req, nil, badRequest("model", "model is required: use <strategy>:<upstream model> (e.g. mcts:qwen2.5-7b-instruct), a strategy, or an upstream model; GET /v1/models lists them")
	}
	if len(req.Messages) == 0 {
		return req, nil, badRequest("messages", "messages is empty: send at least one user message")
	}
	if req.StreamOptions != nil && !req.Stream {
		// As OpenAI refuses it: options of a stream that will not be sent
		// are a client's mistake (include_usage would be silently lost).
		return req, nil, badRequest("stream_options", "stream_options is only allowed with \"stream\": true; leave it out or set stream")
	}
	if req.N != nil && (*req.N < 1 || *req.N > maxChoices) {
		return req, nil, badRequest("n", "n must be between 1 and %d, got %d", maxChoices, *req.N)
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"tools", req.Tools}, {"functions", req.Functions}} {
		if given(f.raw) && !bytes.Equal(bytes.TrimSpace(f.raw), []byte("[]")) {
			return req, nil, badRequest(f.name, "function calling is not supported by Ponder's reasoning models; leave %s out (Ponder's own tools go in ponder.tools)", f.name)
		}
	}
	// The answer is text: what would change its shape is refused, not
	// ignored, so that a client never misreads it.
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"tool_choice", req.ToolChoice}, {"function_call", req.FunctionCall}} {
		var choice string
		if given(f.raw) && (json.Unmarshal(f.raw, &choice) != nil || (choice != "none" && choice != "auto")) {
			return req, nil, badRequest(f.name, "%s %s asks for a function call, and Ponder's reasoning models answer in text; leave it out or send \"none\"", f.name, bytes.TrimSpace(f.raw))
		}
	}
	if given(req.ResponseFormat) {
		var rf struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(req.ResponseFormat, &rf); err != nil || rf.Type != "text" {
			return req, nil, badRequest("response_format", "response_format: only {\"type\": \"text\"} is supported: Ponder's answer is the text the search chose, not JSON; leave response_format out")
		}
	}
	if req.Logprobs {
		return req, nil, badRequest("logprobs", "logprobs are not available: Ponder's answer is chosen by a search over many completions, not sampled token by token; leave logprobs out")
	}
	var po ponderOptions
	if given(req.Ponder) {
		dec := json.NewDecoder(bytes.NewReader(req.Ponder))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		if err := dec.Decode(&po); err != nil {
			e := badRequest("ponder", "ponder: %s (fields: params, budget, pack, session, collection, tools, seed)", jsonErrText(err))
			if te := (*json.UnmarshalTypeError)(nil); errors.As(err, &te) && te.Field != "" {
				e.param, e.code = "ponder."+te.Field, "invalid_type"
			}
			return req, nil, e
		}
	}
	return req, &po, nil
}

// messageText returns a message's text: a string, or an array of text
// parts.
func messageText(i int, m chatMessage) (string, error) {
	c := bytes.TrimSpace(m.Content)
	if len(c) == 0 || bytes.Equal(c, []byte("null")) {
		return "", nil
	}
	if c[0] == '"' {
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return "", badRequest(fmt.Sprintf("messages[%d].content", i), "messages[%d].content: %s", i, jsonErrText(err))
		}
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(c, &parts); err != nil {
		return "", badRequest(fmt.Sprintf("messages[%d].content", i), "messages[%d].content must be a string or an array of text parts", i)
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" {
			return "", badRequest(fmt.Sprintf("messages[%d].content", i), "messages[%d].content[%d]: only text parts are supported, got %q", i, j, p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// conversationProblem turns the chat into one problem: the last user
// message, preceded by the earlier turns and instructions when there are
// any. question is the last user message alone (for pack detection),
// instructions the system and developer messages' part of problem, and
// history says whether the chat has earlier turns.
func conversationProblem(msgs []chatMessage) (problem, question, instructions string, history bool, err error) {
	fail := func(err error) (string, string, string, bool, error) { return "", "", "", false, err }
	last := len(msgs) - 1
	if msgs[last].Role != "user" {
		return fail(badRequest("messages", "the last message must be from the user (role user), got role %q", msgs[last].Role))
	}
	question, err = messageText(last, msgs[last])
	if err != nil {
		return fail(err)
	}
	if strings.TrimSpace(question) == "" {
		return fail(badRequest("messages", "the last user message is empty"))
	}
	var sys, hist []string
	for i, m := range msgs[:last] {
		text, err := messageText(i, m)
		if err != nil {
			return fail(err)
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		switch m.Role {
		case "system", "developer":
			sys = append(sys, text)
		case "user":
			hist = append(hist, "User: "+text)
		case "assistant":
			hist = append(hist, "Assistant: "+text)
		case "tool":
			hist = append(hist, "Tool: "+text)
		default:
			return fail(badRequest(fmt.Sprintf("messages[%d].role", i), "messages[%d].role %q is not one of system, developer, user, assistant, tool", i, m.Role))
		}
	}
	if len(sys) == 0 && len(hist) == 0 {
		return question, question, "", false, nil
	}
	if len(sys) > 0 {
		instructions = "Instructions: " + strings.Join(sys, "\n") + "\n\n"
	}
	problem = instructions
	if len(hist) > 0 {
		problem += "Earlier in this conversation:\n" + strings.Join(hist, "\n") + "\n\n"
	}
	return problem + "Problem: " + question, question, instructions, len(hist) > 0, nil
}

// parseModel splits a model name into strategy and upstream model.
func (s *Server) parseModel(ctx context.Context, name string) (strategy, upstream string, err error) {
	reg := s.engine.Registry()
	if i := strings.Index(name, ":"); i > 0 {
		if _, err := reg.Strategy(name[:i]); err == nil {
			if name[i+1:] == "" {
				return "", "", badRequest("model", "model %q names no upstream model after the colon", name)
			}
			return name[:i], name[i+1:], nil
		}
	}
	if _, err := reg.Strategy(name); err == nil {
		return name, "", nil
	}
	// A plain upstream model: the default strategy. Refuse names that are
	// neither a strategy nor a model the endpoint lists, when it lists any.
	if models := s.models.get(ctx); len(models) > 0 && !slices.Contains(models, name) && strings.Contains(name, ":") {
		return "", "", &apiError{status: http.StatusNotFound, typ: "invalid_request_error", param: "model", code: "model_not_found",
			msg: fmt.Sprintf("model %q not found: %q is not a strategy (%s) and the endpoint serves %s; GET /v1/models lists every name",
				name, name[:strings.Index(name, ":")], strings.Join(s.strategyNames(), ", "), strings.Join(models, ", "))}
	}
	return "", name, nil
}

func newCompletionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

type usageJSON struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	TotalTokens      int64 `json:"total_tokens"`
}

type choiceTrace struct {
	Index         int             `json:"index"`
	TraceID       string          `json:"trace_id"`
	Strategy      string          `json:"strategy"`
	StoppedReason core.StopReason `json:"stopped_reason"`
	LLMCalls      int64           `json:"llm_calls"`
	ToolCalls     int64           `json:"tool_calls,omitempty"`
	Score         *float64        `json:"score,omitempty"`
	Verified      *bool           `json:"verified,omitempty"` // the pack's check of the answer
	Error         string          `json:"error,omitempty"`
	// Warnings say what failed without stopping the search.
	Warnings []string `json:"warnings,omitempty"`
}

// choiceTraceOf is ponder.choices[i] for res, a search of a request that
// named model (the upstream model asked for, "" for the configured one):
// its error as the client reads it (clientErrorFor), and its error and
// warnings with the sources rewritten by mask (a remote client's, else
// nil), as the rest of the choice is.
func (s *Server) choiceTraceOf(ctx context.Context, i int, res core.Result, model string, mask *sourceMask) choiceTrace {
	var msg string
	if res.Error != "" {
		msg = mask.Text(s.clientErrorFor(ctx, res, model))
	}
	ws := clientWarnings(res.Warnings)
	for j := range ws {
		ws[j] = mask.Text(ws[j])
	}
	return choiceTrace{Index: i, TraceID: res.TraceID, Strategy: res.Strategy, StoppedReason: res.Stopped,
		LLMCalls: res.Usage.LLMCalls, ToolCalls: res.Usage.ToolCalls, Score: res.Score, Verified: res.Verified, Error: msg, Warnings: ws}
}

// usageOf sums the token usage of every choice's search.
func usageOf(results []core.Result) usageJSON {
	var u usageJSON
	for _, res := range results {
		u.PromptTokens += res.Usage.PromptTokens
		u.CompletionTokens += res.Usage.CompletionTokens
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

func finishOf(r core.StopReason) string {
	switch r {
	case core.StopBudget, core.StopTimeout:
		return "length"
	}
	return "stop"
}

// allFailed is the last search's result when every search of a request
// failed with nothing to show (and none of them failed to start, which is
// reported on its own); nil otherwise.
func allFailed(results []core.Result, errs []error) *core.Result {
	var last *core.Result
	for i := range results {
		if errs[i] != nil || results[i].Stopped != core.StopError || answerContent(results[i]) != "" {
			return nil
		}
		last = &results[i]
	}
	return last
}

// failure is failure(res) for a request that named model, the upstream
// model the client asked for ("" for the configured one): when the
// endpoint answered 404 for a model it does not list, the request is a 404
// with OpenAI's code model_not_found, the client's mistake (a misspelt
// name), not a 502 that sends the client to the operator and that SDKs
// retry.
//
// Its message has the sources rewritten by mask, as the choices would.
func (s *Server) failure(ctx context.Context, res *core.Result, model string, mask *sourceMask) *apiError {
	var e *apiError
	if s.notServed(ctx, *res, model) {
		e = &apiError{status: http.StatusNotFound, typ: "invalid_request_error", param: "model", code: "model_not_found",
			msg: modelNotFound(model, *res) + " (trace " + res.TraceID + ")"}
	} else {
		e = failure(res)
	}
	e.msg = mask.Text(e.msg)
	return e
}

// notServed reports whether res, a search of a request that named model,
// failed on the LLM endpoint answering 404 for a model it does not list:
// the client's mistake (a misspelt name), not the endpoint's failure.
func (s *Server) notServed(ctx context.Context, res core.Result, model string) bool {
	return model != "" && endpointStatus(res.Err) == http.StatusNotFound && !slices.Contains(s.models.get(ctx), model)
}

// modelNotFound says that the LLM endpoint does not serve model, with
// what it answered, and where the names are.
func modelNotFound(model string, res core.Result) string {
	why := operatorAdvice.ReplaceAllString(res.Error, "")
	if i := strings.Index(why, "answered 404"); i >= 0 {
		why = why[i:]
	}
	return fmt.Sprintf("model %q not found: the LLM endpoint %s; GET /v1/models lists every name", model, why)
}

// clientErrorFor is clientError for a search of a request that named model
// (notServed): a model the endpoint does not serve is said to be not
// found, not that the server cannot reach its endpoint.
func (s *Server) clientErrorFor(ctx context.Context, res core.Result, model string) string {
	if s.notServed(ctx, res, model) {
		return modelNotFound(model, res)
	}
	return clientError(res)
}

// endpointStatus is the HTTP status of the LLM endpoint's answer behind
// err, 0 when there is none. The llm package's errors say it (HTTPStatus):
// the server needs no LLM client library's error types.
func endpointStatus(err error) int {
	var st interface{ HTTPStatus() int }
	if errors.As(err, &st) {
		return st.HTTPStatus()
	}
	return 0
}

// failure is the OpenAI error of a request whose every search failed, res
// the last: 429 when the LLM endpoint rate limited it, so that clients
// back off as they would from OpenAI (with OpenAI's code, as Ponder's own
// rate limit); 400 when it refused the request as invalid (a prompt over
// the model's context), which clients do not retry and OpenAI answers so
// too; else 502, the endpoint failed.
func failure(res *core.Result) *apiError {
	msg := "the search failed: " + clientError(*res) + " (trace " + res.TraceID + ")"
	switch {
	case errors.Is(res.Err, core.ErrLLMRateLimited):
		e := rateLimited(msg)
		// The endpoint's own Retry-After, when it sent one, so that
		// clients wait as long as it asked.
		var ra interface{ RetryAfter() time.Duration }
		if errors.As(res.Err, &ra) {
			e.retryAfter = ra.RetryAfter()
		}
		return e
	case errors.Is(res.Err, core.ErrLLMRejected):
		return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", msg: msg}
	}
	return &apiError{status: http.StatusBadGateway, typ: "upstream_error", msg: msg}
}

// operatorAdvice is the advice the LLM client ends its errors with (start
// the server or fix PONDER_LLM_BASE_URL, raise PONDER_LLM_TIMEOUT, check the
// server's logs): the operator's to follow, with settings and logs only
// they can reach.
var operatorAdvice = regexp.MustCompile(`: (?:start|fix|check|raise|lower|set) [^:]*$`)

// clientError is a failed search's error as a client of the server reads
// it: what failed and why, without the operator's advice, which the server
// logs instead (logFailures). A failure of the server's own LLM endpoint
// says so and sends the client to the operator: a client reading "start
// the server or fix PONDER_LLM_BASE_URL" would look for a fault on its own
// side. A rate limit (429) and a request the endpoint refused as invalid
// (400) are left as they are: the client can act on them (back off, send
// less).
func clientError(res core.Result) string {
	why := operatorAdvice.ReplaceAllString(res.Error, "")
	var what string
	switch {
	case errors.Is(res.Err, core.ErrLLMUnavailable):
		what = "this Ponder server cannot reach its LLM endpoint"
	case errors.Is(res.Err, core.ErrLLMAuth):
		what = "this Ponder server's LLM endpoint refused its credentials"
	case errors.Is(res.Err, core.ErrLLMBadResponse):
		what = "this Ponder server's LLM endpoint sent an answer it cannot read"
	default:
		return why
	}
	return what + "; contact the server's operator (its log says how to fix it): " + why
}

// clientWarnings are a result's warnings without the operator's advice
// that a failed LLM request's error carries (see clientError).
func clientWarnings(ws []string) []string {
	if len(ws) == 0 {
		return nil
	}
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = operatorAdvice.ReplaceAllString(w, "")
	}
	return out
}

// failedNote is the reasoning_content line that says why a choice's
// search failed (why: its ponder.choices[i].error, choiceTraceOf), in a
// response and in a stream alike.
func failedNote(why string) string {
	return "(search failed: " + why + ")\n"
}

// logFailures logs each failed search's error whole, the operator's
// advice included, which clients are not sent (clientError).
func (s *Server) logFailures(via string, results []core.Result) {
	for _, res := range results {
		if res.Stopped == core.StopError && res.Error != "" {
			s.log.Warn().Str("via", via).Str("trace", res.TraceID).Str("strategy", res.Strategy).
				Str("error", res.Error).Msg("search failed")
		}
	}
}

// answerContent is a choice's message content: the answer, or the last
// step of the best path when no answer was extracted (a budget or time
// limit stopped the search: finish_reason length). A search that failed
// before it chose an answer has none: its last step is not one, and the
// request fails as MCP's solve does. Nor has one cancelled before an
// answer (the server shutting down): its last step, a half-way move, went
// out as the answer with finish_reason stop; its steps are in
// reasoning_content.
func answerContent(res core.Result) string {
	if res.Answer != "" {
		return res.Answer
	}
	if res.Stopped == core.StopError || res.Stopped == core.StopCancelled {
		return ""
	}
	for i := len(res.BestPath) - 1; i >= 0; i-- {
		if n := res.BestPath[i]; n.Kind != core.KindProblem {
			return strings.TrimSpace(n.Content)
		}
	}
	return ""
}

func reasoningText(res core.Result) string {
	var b strings.Builder
	i := 0
	for _, n := range res.BestPath {
		if n.Kind == core.KindProblem {
			continue
		}
		i++
		fmt.Fprintf(&b, "%d. %s\n", i, strings.TrimSpace(n.Content))
	}
	return b.String()
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOpenAIError(w, http.StatusMethodNotAllowed, "invalid_request_error", "use POST for /v1/chat/completions")
		return
	}
	body, err := readBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeOpenAIError(w, http.StatusRequestEntityTooLarge, "request_too_large",
				fmt.Sprintf("request body is larger than the limit of %d bytes (server.max_body_bytes)", s.cfg.MaxBodyBytes))
			return
		}
		writeOpenAIError(w, http.StatusBadRequest, "invalid_request_error", "could not read the request body: "+err.Error())
		return
	}
	tasks, req, question, aerr := s.chatTasks(r.Context(), body)
	if aerr != nil {
		writeAPIError(w, aerr)
		return
	}
	if !s.engine.HasPolicy() {
		// The operator's fix (PONDER_LLM_BASE_URL) is in the log from the
		// server's start.
		writeAPIError(w, &apiError{status: http.StatusServiceUnavailable, typ: "server_error",
			msg: "this Ponder server has no LLM endpoint configured, so it cannot reason; contact the server's operator (its log says how to set one)"})
		return
	}
	if limit := s.cfg.MaxSearches; limit > 0 && len(tasks) > limit {
		// It would never fit: a 503 would send the client back for ever.
		writeAPIError(w, badRequest("n", "n is %d, more than the %s this server runs at once (server.max_searches): ask for at most %d",
			len(tasks), searches(limit), limit))
		return
	}
	release, err := s.admit(len(tasks))
	if err != nil {
		// As OpenAI answers an overloaded engine; the SDKs retry a 503
		// after Retry-After.
		writeAPIError(w, &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "server_busy",
			msg: "this Ponder server is busy: " + strings.TrimPrefix(err.Error(), errBusy.Error()+": "), retryAfter: busyRetryAfter})
		return
	}
	defer release()
	id := newCompletionID()
	if req.Stream {
		results := s.streamChat(w, r, id, req, tasks)
		if r.Context().Err() == nil { // the client read the answer
			s.rememberTurn(tasks[0].Session, question, results)
		}
		return
	}
	results := make([]core.Result, len(tasks))
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.run(r.Context(), s.engine, t, runOptions{via: "openai"})
		}()
	}
	wg.Wait()
	if r.Context().Err() != nil {
		return // the client went away; its searches were cancelled
	}
	s.logFailures("openai", results)
	s.rememberTurn(tasks[0].Session, question, results)
	var choices []map[string]any
	var meta []choiceTrace
	for _, err := range errs {
		if err != nil {
			writeOpenAIError(w, http.StatusServiceUnavailable, "server_error", err.Error())
			return
		}
	}
	local := s.loopbackBound()
	if res := allFailed(results, errs); res != nil {
		writeAPIError(w, s.failure(r.Context(), res, tasks[0].Model, traceMask(local, res.Trace)))
		return
	}
	for i, res := range results {
		// A remote client reads the sources retrieved by their names.
		mask := traceMask(local, res.Trace)
		content := mask.Text(answerContent(res))
		msg := map[string]any{"role": "assistant", "content": content}
		rt := mask.Text(reasoningText(res))
		ct := s.choiceTraceOf(r.Context(), i, res, tasks[i].Model, mask)
		if content == "" && res.Stopped == core.StopError {
			// One of n searches failed (all failing is an error above):
			// its choice has no answer, content null as OpenAI's schema
			// has it for a message without text (an empty string would
			// read as an empty answer), and says why where clients read
			// it: in reasoning_content, as the stream sends it, and in
			// ponder.choices. finish_reason stays in OpenAI's enum (see
			// docs/server.md).
			msg["content"] = nil
			rt += failedNote(ct.Error)
		}
		if rt != "" {
			msg["reasoning_content"] = rt
		}
		choices = append(choices, map[string]any{"index": i, "message": msg, "finish_reason": finishOf(res.Stopped), "logprobs": nil})
		meta = append(meta, ct)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": id, "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
		"system_fingerprint": "ponder-" + s.opts.Version, "choices": choices, "usage": usageOf(results),
		"ponder": map[string]any{"choices": meta},
	})
}

// chatTasks turns a request body into one task per choice; question is
// the last user message.
func (s *Server) chatTasks(ctx context.Context, body []byte) (tasks []core.Task, req chatRequest, question string, aerr *apiError) {
	req, po, err := decodeChatRequest(body)
	if err != nil {
		return nil, req, "", asAPIError(err)
	}
	strategy, upstream, err := s.parseModel(ctx, req.Model)
	if err != nil {
		return nil, req, "", asAPIError(err)
	}
	problem, question, instructions, history, err := conversationProblem(req.Messages)
	if err != nil {
		return nil, req, "", asAPIError(err)
	}
	seed := int64(0)
	if req.Seed != nil {
		seed = *req.Seed
	}
	if po.Seed != nil {
		seed = *po.Seed
	}
	args := solveArgs{Problem: question, Strategy: strategy, Params: po.Params, Budget: po.Budget, Tools: po.Tools,
		Collection: po.Collection, Session: po.Session, Pack: po.Pack, Model: upstream, Seed: seed}
	base, err := s.problemTask(args)
	if err != nil {
		return nil, req, "", badRequest("ponder", "%v", err)
	}
	switch {
	case packIsData(base.Pack):
		// A Game of 24 puzzle is posed alone, as in a session: the pack
		// reads its four numbers from the problem, and a system prompt or
		// earlier messages before them made it unsolvable.
	case history:
		// The conversation comes first; a session's turns are not added to
		// a conversation that carries its own history.
		base.Problem = problem
	case instructions == "":
		// The question alone, after the session's turns if any.
	case base.Problem != strings.TrimSpace(question):
		// Instructions alone are no history: the session's turns stay,
		// after them (a chat client's system prompt dropped them).
		base.Problem = instructions + base.Problem
	default:
		base.Problem = problem
	}
	if err := s.requestTemperature(&base, req.Temperature); err != nil {
		return nil, req, "", err
	}
	if err := s.validate(ctx, base); err != nil {
		return nil, req, "", badRequest(paramOf(err), "%v", err)
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	out := make([]core.Task, n)
	for i := range out {
		t := base
		t.Seed = seed + int64(i)
		out[i] = t
	}
	return out, req, question, nil
}

// requestTemperature sets the strategy's temperature parameter from the
// request's temperature, as an OpenAI client means it: n choices of cot
// at its default temperature 0 were n copies of one answer. A temperature
// in ponder.params wins; a strategy without the parameter (best-of-n's
// samples have their own) ignores it.
func (s *Server) requestTemperature(t *core.Task, temp *float64) *apiError {
	if temp == nil {
		return nil
	}
	if _, set := t.Params["temperature"]; set {
		return nil
	}
	name := t.Strategy
	if name == "" {
		name = s.engine.DefaultStrategy()
	}
	spec, err := s.engine.Registry().Strategy(name)
	if err != nil {
		return nil // named in the validation that follows
	}
	for _, p := range spec.Params {
		if p.Name != "temperature" {
			continue
		}
		if p.Min != nil && *temp < *p.Min {
			return badRequest("temperature", "temperature must be at least %v for the %s strategy, got %v", *p.Min, name, *temp)
		}
		if p.Max != nil && *temp > *p.Max {
			return badRequest("temperature", "temperature must be at most %v for the %s strategy, got %v", *p.Max, name, *temp)
		}
		if t.Params == nil {
			t.Params = core.Params{}
		}
		t.Params["temperature"] = *temp
	}
	return nil
}

// paramNamed finds the parameter a core.ErrInvalidParam error names.
var paramNamed = regexp.MustCompile(`(?:invalid|unknown) parameter "([A-Za-z0-9_.-]+)"`)

// paramOf is the request field an invalid task's error is about, as
// OpenAI's errors name it: ponder.params.<name> for a strategy parameter
// (SDKs show param, and "ponder" alone left the client to read the
// message), else ponder.
func paramOf(err error) string {
	if errors.Is(err, core.ErrInvalidParam) {
		if m := paramNamed.FindStringSubmatch(err.Error()); m != nil {
			return "ponder.params." + m[1]
		}
	}
	return "ponder"
}

func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return badRequest("", "%v", err)
}

// streamHeartbeatIdle is how long a stream may be silent before it is sent
// a heartbeat.
var streamHeartbeatIdle = 10 * time.Second

// sseWriter writes server-sent events, one goroutine at a time.
type sseWriter struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	f    http.Flusher
	last time.Time
	// done[i] is set once choice i has sent its finish chunk.
	done []bool
}

func (s *sseWriter) data(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(v)
}

func (s *sseWriter) write(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	_, _ = fmt.Fprintf(s.w, "data: %s\n\n", b)
	if s.f != nil {
		s.f.Flush()
	}
	s.last = time.Now()
}

// finish sends choice i's finish chunk.
func (s *sseWriter) finish(i int, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(v)
	s.done[i] = true
}

// heartbeat sends, when the stream has been silent for idle, an empty
// delta of a choice still searching (chunk(i) builds it). A chunk, not an
// SSE comment: go-openai's reader keeps every line that is not data and
// parses them with a later error event, which a comment would garble.
func (s *sseWriter) heartbeat(idle time.Duration, chunk func(i int) any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Since(s.last) <= idle {
		return
	}
	if i := slices.Index(s.done, false); i >= 0 {
		s.write(chunk(i))
	}
}

func (s *sseWriter) raw(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = fmt.Fprint(s.w, line)
	if s.f != nil {
		s.f.Flush()
	}
	s.last = time.Now()
}

// streamChat answers with server-sent events: the search's progress as
// reasoning_content deltas while it runs (each new step, and a status line
// at most once a second), the answer as a content delta as soon as the
// strategy has chosen it, then usage and [DONE].
func (s *Server) streamChat(w http.ResponseWriter, r *http.Request, id string, req chatRequest, tasks []core.Task) []core.Result {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	sw := &sseWriter{w: w, f: f, done: make([]bool, len(tasks))}
	created := time.Now().Unix()
	chunk := func(choices []map[string]any, extra map[string]any) map[string]any {
		c := map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"system_fingerprint": "ponder-" + s.opts.Version, "choices": choices}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	delta := func(i int, d map[string]any, finish any) map[string]any {
		return map[string]any{"index": i, "delta": d, "finish_reason": finish, "logprobs": nil}
	}
	for i := range tasks {
		sw.data(chunk([]map[string]any{delta(i, map[string]any{"role": "assistant", "content": ""}, nil)}, nil))
	}
	ctx := r.Context()
	// Keep the connection alive through long silent stretches.
	hbDone := make(chan struct{})
	hbExited := make(chan struct{})
	hbIdle := streamHeartbeatIdle
	go func() {
		defer close(hbExited)
		t := time.NewTicker(hbIdle / 2)
		defer t.Stop()
		for {
			select {
			case <-hbDone:
				return
			case <-t.C:
				sw.heartbeat(hbIdle, func(i int) any {
					return chunk([]map[string]any{delta(i, map[string]any{}, nil)}, nil)
				})
			}
		}
	}()
	results := make([]core.Result, len(tasks))
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var answered bool
			var lastStatus time.Time
			var lastMessage string
			// A remote client reads the sources retrieved by their names:
			// the mask learns them from the events as they come (grounding
			// records them before the first step).
			var mask *sourceMask
			if !s.loopbackBound() {
				mask = newSourceMask()
			}
			emit := func(p progress, evs []core.Event, final bool) {
				var b strings.Builder
				for _, e := range evs {
					if mask != nil {
						mask.addEvent(e)
					}
					if e.Op == core.OpNode && e.Node != nil && e.Node.Kind != core.KindProblem {
						fmt.Fprintf(&b, "• %s\n", text.Clip(text.OneLine(mask.Text(e.Node.Content)), 300))
					}
				}
				if msg := p.message(); msg != lastMessage && (time.Since(lastStatus) >= time.Second || (final && !answered)) {
					fmt.Fprintf(&b, "(%s)\n", msg)
					lastStatus, lastMessage = time.Now(), msg
				}
				if b.Len() > 0 {
					sw.data(chunk([]map[string]any{delta(i, map[string]any{"reasoning_content": b.String()}, nil)}, nil))
				}
				if p.Ended && !answered && p.Answer != "" {
					answered = true
					sw.data(chunk([]map[string]any{delta(i, map[string]any{"content": mask.Text(p.Answer)}, nil)}, nil))
				}
			}
			results[i], errs[i] = s.run(ctx, s.engine, t, runOptions{via: "openai", interval: 150 * time.Millisecond,
				onUpdate: func(p progress, evs []core.Event) { emit(p, evs, false) },
				onFinal:  func(p progress, evs []core.Event) { emit(p, evs, true) }})
			res := results[i]
			if errs[i] != nil {
				sw.finish(i, map[string]any{"error": map[string]any{"message": errs[i].Error(), "type": "server_error"}})
				return
			}
			if mask != nil {
				mask.addTrace(res.Trace)
			}
			ct := s.choiceTraceOf(ctx, i, res, t.Model, mask)
			if !answered {
				if c := mask.Text(answerContent(res)); c != "" {
					sw.data(chunk([]map[string]any{delta(i, map[string]any{"content": c}, nil)}, nil))
				} else if res.Stopped == core.StopError {
					sw.data(chunk([]map[string]any{delta(i, map[string]any{"reasoning_content": failedNote(ct.Error)}, nil)}, nil))
				}
			}
			sw.finish(i, chunk([]map[string]any{delta(i, map[string]any{}, finishOf(res.Stopped))},
				map[string]any{"ponder": ct}))
		}()
	}
	wg.Wait()
	close(hbDone)
	<-hbExited
	if ctx.Err() != nil {
		return nil
	}
	s.logFailures("openai", results)
	// Every search failed: the request failed, as it does without
	// streaming (502 there); the 200 is sent already, so an error event
	// says it, which OpenAI's clients raise.
	if res := allFailed(results, errs); res != nil {
		sw.data(map[string]any{"error": s.failure(ctx, res, tasks[0].Model, traceMask(s.loopbackBound(), res.Trace)).body()})
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		sw.data(chunk([]map[string]any{}, map[string]any{"usage": usageOf(results)}))
	}
	sw.raw("data: [DONE]\n\n")
	return results
}

// rememberTurn records a chat completion's question and first answer in
// its reasoning session, if it named one.
func (s *Server) rememberTurn(session, question string, results []core.Result) {
	if session == "" || len(results) == 0 || results[0].Answer == "" || results[0].Stopped == core.StopCancelled {
		return
	}
	s.sess.Add(session, turn{Problem: question, Answer: results[0].Answer, TraceID: results[0].TraceID, At: time.Now()})
}

// modelCache lists the upstream endpoint's models, for a minute at a time.
type modelCache struct {
	fetch    func(ctx context.Context) ([]string, error)
	fallback string
	ttl      time.Duration

	mu   sync.Mutex
	list []string
	at   time.Time
}

func (c *modelCache) get(ctx context.Context) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.list != nil && time.Since(c.at) < c.ttl {
		return c.list
	}
	var list []string
	keep := true
	if c.fetch != nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		l, err := c.fetch(fctx)
		cancel()
		if err == nil {
			list = l
		}
		// A caller that went away says nothing about the endpoint: its
		// failed fetch is not kept for the next minute's requests.
		keep = err == nil || ctx.Err() == nil
	}
	if c.fallback != "" && !slices.Contains(list, c.fallback) {
		list = append([]string{c.fallback}, list...)
	}
	if keep {
		c.list, c.at = list, time.Now()
	}
	return list
}

type modelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

var startTime = time.Now().Unix()

// modelIDs lists strategy × upstream model, each plain upstream model
// (default strategy) and each strategy alone (configured model).
func (s *Server) modelIDs(ctx context.Context) []string {
	strategies := s.strategyNames()
	var out []string
	for _, m := range s.models.get(ctx) {
		out = append(out, m)
		if strings.Contains(strings.ToLower(m), "embed") {
			continue // an embedding model cannot reason
		}
		for _, st := range strategies {
			out = append(out, st+":"+m)
		}
	}
	out = append(out, strategies...)
	return out
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	var data []modelEntry
	for _, id := range s.modelIDs(r.Context()) {
		data = append(data, modelEntry{ID: id, Object: "model", Created: startTime, OwnedBy: "ponder"})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data})
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !slices.Contains(s.modelIDs(r.Context()), id) {
		writeAPIError(w, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", param: "model", code: "model_not_found",
			msg: fmt.Sprintf("model %q not found; GET /v1/models lists every name", id)})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(modelEntry{ID: id, Object: "model", Created: startTime, OwnedBy: "ponder"})
}
