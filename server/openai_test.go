package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	openai "github.com/sashabaranov/go-openai"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/embedded"
)

func (e *env) openai() *openai.Client {
	cfg := openai.DefaultConfig("unused")
	cfg.BaseURL = e.ts.URL + "/v1"
	return openai.NewClientWithConfig(cfg)
}

// searchStrategy is MCTS when it is registered, else best-of-n: both
// search and score.
func searchStrategy(e *env) string {
	if _, err := e.srv.engine.Registry().Strategy("mcts"); err == nil {
		return "mcts"
	}
	return "best-of-n"
}

func traceUsage(t *testing.T, e *env, ids ...string) core.Usage {
	t.Helper()
	var u core.Usage
	for _, id := range ids {
		tr, err := e.traces.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		u = u.Add(tr.Usage)
	}
	return u
}

func TestChatCompletionWithOpenAIClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	resp, err := e.openai().CreateChatCompletion(ctxTimeout(t, 30*time.Second), openai.ChatCompletionRequest{
		Model:    "self-consistency:ponder-sim",
		Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "What is 17 * 23?"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "self-consistency:ponder-sim" || len(resp.Choices) != 1 || resp.Choices[0].Message.Content == "" ||
		resp.Choices[0].FinishReason != "stop" || resp.Choices[0].Message.ReasoningContent == "" {
		t.Fatalf("response: %+v", resp)
	}
	// usage sums every internal call of the search.
	l := e.traces.List()
	if len(l) != 1 {
		t.Fatalf("want one trace, got %v", l)
	}
	u := traceUsage(t, e, l[0].ID)
	if int64(resp.Usage.PromptTokens) != u.PromptTokens || int64(resp.Usage.CompletionTokens) != u.CompletionTokens ||
		resp.Usage.TotalTokens != resp.Usage.PromptTokens+resp.Usage.CompletionTokens || u.LLMCalls < 2 {
		t.Fatalf("usage %+v, trace says %+v", resp.Usage, u)
	}
	var raw struct {
		Ponder struct {
			Choices []choiceTrace `json:"choices"`
		} `json:"ponder"`
	}
	body := postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"self-consistency:ponder-sim","messages":[{"role":"user","content":"What is 17 * 23?"}],"ponder":{"params":{"k":4}}}`, 200)
	if err := json.Unmarshal([]byte(body), &raw); err != nil || len(raw.Ponder.Choices) != 1 {
		t.Fatalf("%v %s", err, body)
	}
	if c := raw.Ponder.Choices[0]; c.Strategy != "self-consistency" || c.LLMCalls != 4 {
		t.Fatalf("the model name and ponder.params did not reach the search: %+v", c)
	}
}

func postJSON(t *testing.T, url, body string, want int) string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, b)
	}
	return string(b)
}

func TestChatStreamWithOpenAIClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 5 * time.Millisecond}})
	strategy := searchStrategy(e)
	stream, err := e.openai().CreateChatCompletionStream(ctxTimeout(t, 60*time.Second), openai.ChatCompletionRequest{
		Model:         strategy + ":ponder-sim",
		Messages:      []openai.ChatCompletionMessage{{Role: "user", Content: gsm8kProblem}},
		Stream:        true,
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var reasoning, content strings.Builder
	var order []string
	var finish openai.FinishReason
	var usage *openai.Usage
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if chunk.Usage != nil {
			usage = chunk.Usage
		}
		for _, ch := range chunk.Choices {
			if ch.Delta.ReasoningContent != "" {
				reasoning.WriteString(ch.Delta.ReasoningContent)
				order = append(order, "reasoning")
			}
			if ch.Delta.Content != "" {
				content.WriteString(ch.Delta.Content)
				order = append(order, "content")
			}
			if ch.FinishReason != "" {
				finish = ch.FinishReason
				order = append(order, "finish")
			}
		}
	}
	t.Logf("strategy %s: %d chunks; answer %q", strategy, len(order), content.String())
	if len(order) < 3 || order[0] != "reasoning" || order[len(order)-1] != "finish" || content.Len() == 0 {
		t.Fatalf("want search progress, then the answer, then finish; got %v", order)
	}
	if !strings.Contains(reasoning.String(), "nodes") || !strings.Contains(reasoning.String(), "LLM calls") {
		t.Fatalf("progress lacks the search status: %q", reasoning.String())
	}
	if finish != "stop" || usage == nil || usage.TotalTokens == 0 {
		t.Fatalf("finish %q usage %+v", finish, usage)
	}
	l := e.traces.List()
	if len(l) != 1 || l[0].Answer != content.String() {
		t.Fatalf("streamed answer %q, trace %+v", content.String(), l)
	}
	if u := traceUsage(t, e, l[0].ID); int64(usage.PromptTokens) != u.PromptTokens || int64(usage.CompletionTokens) != u.CompletionTokens {
		t.Fatalf("streamed usage %+v, trace %+v", usage, u)
	}
}

func TestChatNChoicesSumUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	body := postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"self-consistency:ponder-sim","n":3,
		"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 17 * 23?"}],
		"ponder":{"params":{"k":2},"budget":{"llm_calls":5}}}`, 200)
	var resp struct {
		Choices []struct {
			Index   int `json:"index"`
			Message struct{ Content string }
		}
		Usage  usageJSON
		Ponder struct{ Choices []choiceTrace }
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 3 || len(resp.Ponder.Choices) != 3 {
		t.Fatalf("want 3 choices: %s", body)
	}
	var ids []string
	seen := map[string]bool{}
	for i, c := range resp.Ponder.Choices {
		if c.Index != i || seen[c.TraceID] || c.LLMCalls != 2 {
			t.Fatalf("choice %d: %+v", i, c)
		}
		seen[c.TraceID] = true
		ids = append(ids, c.TraceID)
	}
	u := traceUsage(t, e, ids...)
	if resp.Usage.PromptTokens != u.PromptTokens || resp.Usage.CompletionTokens != u.CompletionTokens || u.LLMCalls != 6 {
		t.Fatalf("usage %+v is not the sum over the 3 searches %+v", resp.Usage, u)
	}
	tr, _ := e.traces.Get(ids[0])
	if !strings.HasPrefix(tr.Problem, "Instructions: Be brief.") || !strings.HasSuffix(tr.Problem, "Problem: What is 17 * 23?") {
		t.Fatalf("conversation problem: %q", tr.Problem)
	}
}

func TestChatBudgetStopsTheSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	body := postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"self-consistency","messages":[{"role":"user","content":"What is 17 * 23?"}],
		"ponder":{"params":{"k":6},"budget":{"llm_calls":2}}}`, 200)
	if !strings.Contains(body, `"finish_reason":"length"`) || !strings.Contains(body, `"stopped_reason":"budget"`) {
		t.Fatalf("a search stopped by its budget: %s", body)
	}
}

func TestChatBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	user := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"malformed JSON", `{"model":`, 400, "not a valid chat completion request"},
		{"wrong type", `{"model":5,` + user + `}`, 400, "model must be a string"},
		{"no model", `{` + user + `}`, 400, "model is required"},
		{"no messages", `{"model":"cot","messages":[]}`, 400, "messages is empty"},
		{"last not user", `{"model":"cot","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}`, 400, "last message must be from the user"},
		{"bad role", `{"model":"cot","messages":[{"role":"wizard","content":"a"},{"role":"user","content":"b"}]}`, 400, "role"},
		{"image", `{"model":"cot","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "only text parts"},
		{"text parts", `{"model":"cot","messages":[{"role":"user","content":[{"type":"text","text":"What is 2+2?"}]}]}`, 200, "chat.completion"},
		{"n too big", `{"model":"cot","n":17,` + user + `}`, 400, "n must be between 1 and 16"},
		{"tools", `{"model":"cot","tools":[{"type":"function","function":{"name":"f"}}],` + user + `}`, 400, "function calling"},
		// What would change the answer's shape is refused, not ignored: a
		// client relying on it would misread the answer.
		{"legacy functions", `{"model":"cot","functions":[{"name":"f"}],` + user + `}`, 400, "function calling"},
		{"tool_choice required", `{"model":"cot","tool_choice":"required",` + user + `}`, 400, "tool_choice"},
		{"tool_choice none", `{"model":"cot","tool_choice":"none","tools":[],` + user + `}`, 200, "chat.completion"},
		{"json mode", `{"model":"cot","response_format":{"type":"json_object"},` + user + `}`, 400, "response_format"},
		{"json schema", `{"model":"cot","response_format":{"type":"json_schema","json_schema":{"name":"a"}},` + user + `}`, 400, "response_format"},
		{"text format", `{"model":"cot","response_format":{"type":"text"},` + user + `}`, 200, "chat.completion"},
		{"logprobs", `{"model":"cot","logprobs":true,` + user + `}`, 400, "logprobs"},
		{"no logprobs", `{"model":"cot","logprobs":false,"temperature":0.2,"max_tokens":5,"stop":["x"],` + user + `}`, 200, "chat.completion"},
		{"unknown ponder field", `{"model":"cot",` + user + `,"ponder":{"parms":{}}}`, 400, "parms"},
		{"bad strategy param", `{"model":"self-consistency",` + user + `,"ponder":{"params":{"k":"many"}}}`, 400, "want an integer"},
		{"misspelt strategy", `{"model":"mtcs:ponder-sim",` + user + `}`, 404, "not a strategy"},
		{"bad session", `{"model":"cot",` + user + `,"ponder":{"session":"a b"}}`, 400, "session id"},
		// The same caps as solve's schema.
		{"budget over the cap", `{"model":"cot",` + user + `,"ponder":{"budget":{"llm_calls":100000000}}}`, 400, "budget.llm_calls must be 1 to 100000"},
		{"depth over the cap", `{"model":"cot",` + user + `,"ponder":{"budget":{"depth":5000}}}`, 400, "budget.depth must be 1 to 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := postJSON(t, e.ts.URL+"/v1/chat/completions", tt.body, tt.status)
			if !strings.Contains(body, tt.want) {
				t.Fatalf("want %q in %s", tt.want, body)
			}
			if tt.status != 200 && !strings.Contains(body, `"type":"invalid_request_error"`) {
				t.Fatalf("not an OpenAI error: %s", body)
			}
		})
	}
	_, err := e.openai().CreateChatCompletion(ctxTimeout(t, 30*time.Second), openai.ChatCompletionRequest{
		Model: "cot", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
		ResponseFormat: &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONObject}})
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.HTTPStatusCode != 400 || ae.Param == nil || *ae.Param != "response_format" {
		t.Fatalf("go-openai with JSON mode: %v", err)
	}
	resp, text := do(t, newReq(t, "GET", e.ts.URL+"/v1/chat/completions", "", nil))
	if resp.StatusCode != 405 || !strings.Contains(text, "POST") {
		t.Fatalf("GET: %d %s", resp.StatusCode, text)
	}
	resp, _ = do(t, newReq(t, "GET", e.ts.URL+"/v1/embeddings", "", nil))
	if resp.StatusCode != 404 {
		t.Fatalf("unknown endpoint: %d", resp.StatusCode)
	}
}

// A bad request's error names the parameter at fault in param, as
// OpenAI's do, so that a client can point at it: a value of the wrong type
// too (code invalid_type), at any depth, and stream_options sent without
// stream, which OpenAI refuses.
func TestChatErrorsNameTheParameter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	user := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body string
		status     int
		param      any // nil: param is null
		code       any
	}{
		{"n as a string", `{"model":"cot","n":"2",` + user + `}`, 400, "n", "invalid_type"},
		{"model as a number", `{"model":5,` + user + `}`, 400, "model", "invalid_type"},
		{"stream as a string", `{"model":"cot","stream":"yes",` + user + `}`, 400, "stream", "invalid_type"},
		{"include_usage as a string", `{"model":"cot","stream":true,"stream_options":{"include_usage":"yes"},` + user + `}`, 400, "stream_options.include_usage", "invalid_type"},
		{"a message's role as a number", `{"model":"cot","messages":[{"role":"system","content":"a"},{"role":5,"content":"b"}]}`, 400, "messages[1].role", "invalid_type"},
		{"a message as a string", `{"model":"cot","messages":[{"role":"user","content":"a"},"b"]}`, 400, "messages[1]", "invalid_type"},
		{"messages as a string", `{"model":"cot","messages":"hi"}`, 400, "messages", "invalid_type"},
		{"a ponder field's type", `{"model":"cot",` + user + `,"ponder":{"budget":{"llm_calls":"8"}}}`, 400, "ponder.budget.llm_calls", "invalid_type"},
		{"malformed JSON", `{"model":`, 400, nil, nil},
		{"not an object", `[1]`, 400, nil, nil},
		{"stream_options without stream", `{"model":"cot","stream_options":{"include_usage":true},` + user + `}`, 400, "stream_options", nil},
		{"stream_options with stream false", `{"model":"cot","stream":false,"stream_options":{"include_usage":false},` + user + `}`, 400, "stream_options", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got struct{ Error map[string]any }
			if err := json.Unmarshal([]byte(postJSON(t, e.ts.URL+"/v1/chat/completions", tt.body, tt.status)), &got); err != nil {
				t.Fatal(err)
			}
			if got.Error["type"] != "invalid_request_error" || got.Error["param"] != tt.param || got.Error["code"] != tt.code {
				t.Fatalf("want param %v code %v: %v", tt.param, tt.code, got.Error)
			}
		})
	}
	// stream_options null is no option: accepted without stream.
	postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot","stream_options":null,`+user+`}`, 200)

	_, err := e.openai().CreateChatCompletion(ctxTimeout(t, 30*time.Second), openai.ChatCompletionRequest{
		Model: "cot", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}},
		StreamOptions: &openai.StreamOptions{IncludeUsage: true}})
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.HTTPStatusCode != 400 || ae.Param == nil || *ae.Param != "stream_options" {
		t.Fatalf("go-openai with stream_options and no stream: %v", err)
	}
}

// A missing or wrong token is OpenAI's 401: type invalid_request_error,
// code invalid_api_key, which go-openai parses into APIError.Code.
func TestChatUnauthorizedIsOpenAIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.Token = "s3cret-token" }})
	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer nope"}} {
		resp, text := do(t, newReq(t, "POST", e.ts.URL+"/v1/chat/completions", `{"model":"cot","messages":[{"role":"user","content":"hi"}]}`, hdr))
		var got struct{ Error map[string]any }
		if err := json.Unmarshal([]byte(text), &got); err != nil || resp.StatusCode != 401 {
			t.Fatalf("%d %v: %s", resp.StatusCode, err, text)
		}
		want := map[string]any{"type": "invalid_request_error", "code": "invalid_api_key", "param": nil,
			"message": `unauthorized: send the server token as "Authorization: Bearer <token>" (server.token, PONDER_TOKEN)`}
		if d := cmp.Diff(want, got.Error); d != "" {
			t.Errorf("header %v (-want +got):\n%s", hdr, d)
		}
	}
	cfg := openai.DefaultConfig("nope")
	cfg.BaseURL = e.ts.URL + "/v1"
	_, err := openai.NewClientWithConfig(cfg).ListModels(ctxTimeout(t, 10*time.Second))
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.HTTPStatusCode != 401 || ae.Code != "invalid_api_key" || ae.Type != "invalid_request_error" {
		t.Fatalf("go-openai with a wrong key: %#v", err)
	}
}

// Without an LLM endpoint, a client is told so and sent to the operator:
// PONDER_LLM_BASE_URL is a setting only the operator can change, and the
// server's log has said it since the start.
func TestChatWithoutLLM(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noLLM: true})
	body := postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot","messages":[{"role":"user","content":"hi"}]}`, 503)
	if strings.Contains(body, "PONDER_") || !strings.Contains(body, "has no LLM endpoint configured") || !strings.Contains(body, "contact the server's operator") {
		t.Fatal(body)
	}
}

func TestModels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	list, err := e.openai().ListModels(ctxTimeout(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range list.Models {
		ids[m.ID] = true
	}
	for _, want := range []string{"ponder-sim", "cot:ponder-sim", "self-consistency:ponder-sim", "best-of-n:ponder-sim", "cot"} {
		if !ids[want] {
			t.Errorf("models lack %s: %v", want, ids)
		}
	}
	if ids["cot:ponder-sim-embed"] {
		t.Error("an embedding model was offered with strategies")
	}
	m, err := e.openai().GetModel(ctxTimeout(t, 10*time.Second), "best-of-n:ponder-sim")
	if err != nil || m.ID != "best-of-n:ponder-sim" {
		t.Fatalf("get model: %v %+v", err, m)
	}
	if _, err := e.openai().GetModel(ctxTimeout(t, 10*time.Second), "nope:nope"); err == nil {
		t.Fatal("unknown model found")
	}
}

func TestParseModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	tests := []struct {
		name, strategy, upstream string
		status                   int
	}{
		{"self-consistency:qwen2.5-7b-instruct", "self-consistency", "qwen2.5-7b-instruct", 0},
		{"best-of-n:gpt-4o-mini", "best-of-n", "gpt-4o-mini", 0},
		{"cot", "cot", "", 0},
		{"ponder-sim", "", "ponder-sim", 0},
		{"gpt-4o-mini", "", "gpt-4o-mini", 0},
		{"cot:qwen2.5:7b", "cot", "qwen2.5:7b", 0},
		{"qwen2.5:7b", "", "", 404}, // not a strategy, not listed by the endpoint
		{"cot:", "", "", 400},
	}
	for _, tt := range tests {
		st, up, err := e.srv.parseModel(context.Background(), tt.name)
		status := 0
		if err != nil {
			status = asAPIError(err).status
		}
		if diff := cmp.Diff([]any{tt.strategy, tt.upstream, tt.status}, []any{st, up, status}); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestChatStreamDisconnectCancelsSearch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 100 * time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.ts.URL+"/v1/chat/completions", strings.NewReader(
		`{"model":"self-consistency","stream":true,"messages":[{"role":"user","content":"What is 17 * 23?"}],"ponder":{"params":{"k":40},"budget":{"llm_calls":40}}}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "reasoning_content") {
			break
		}
	}
	cancel()
	resp.Body.Close()
	waitFor(t, 5*time.Second, "the search to be cancelled", func() bool {
		l := e.traces.List()
		return len(l) == 1 && l[0].Status == core.StopCancelled
	})
	if l := e.traces.List(); l[0].Usage.LLMCalls >= 40 {
		t.Fatalf("the search ran on: %+v", l[0].Usage)
	}
}

func TestChatSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot","messages":[{"role":"user","content":"What is 17 * 23?"}],"ponder":{"session":"web-1"}}`, 200)
	body := postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot","stream":true,"messages":[{"role":"user","content":"Now add 9."}],"ponder":{"session":"web-1"}}`, 200)
	if !strings.Contains(body, "[DONE]") {
		t.Fatal(body)
	}
	info, ok := e.srv.sess.Get("web-1")
	if !ok || len(info.Turns) != 2 || info.Turns[0].Problem != "What is 17 * 23?" || info.Turns[1].Problem != "Now add 9." {
		t.Fatalf("session: %+v", info)
	}
	l := e.traces.List()
	tr, _ := e.traces.Get(l[0].ID)
	if !strings.Contains(tr.Problem, "Q1: What is 17 * 23?") || !strings.HasSuffix(tr.Problem, "Problem: Now add 9.") {
		t.Fatalf("the follow-up was posed without the session: %q", tr.Problem)
	}
}

// A client that disconnects while the endpoint's models are fetched must
// not leave the fallback list cached for everyone else: /v1/models then
// listed only the configured model for a minute, and names such as
// "cot:other-model" were refused.
func TestModelCacheIgnoresAFetchItsCallerAbandoned(t *testing.T) {
	t.Parallel()
	c := &modelCache{fallback: "main", ttl: time.Minute, fetch: func(ctx context.Context) ([]string, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
			return []string{"main", "other"}, nil
		}
	}}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if got := c.get(gone); !slices.Equal(got, []string{"main"}) {
		t.Fatalf("abandoned fetch: %v, want the fallback", got)
	}
	if got := c.get(context.Background()); !slices.Equal(got, []string{"main", "other"}) {
		t.Fatalf("next caller got %v, want the endpoint's list", got)
	}
}

// A solve naming a collection that does not exist is refused before it
// starts, as the caller's mistake (it was a failed search: 502), on both
// endpoints; an existing one is searched.
func TestSolveOnAMissingCollectionIsRefused(t *testing.T) {
	t.Parallel()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "store.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.EnsureCollection(t.Context(), retrieval.CollectionSpec{Name: "notes"}); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{retriever: retrieval.NewRetriever(st, nil)})
	user := `"messages":[{"role":"user","content":"What is 2+2?"}]`
	body := postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot",`+user+`,"ponder":{"collection":"nope"}}`, 400)
	if !strings.Contains(body, `collection \"nope\" does not exist`) {
		t.Errorf("missing collection: %s", body)
	}
	postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot",`+user+`,"ponder":{"collection":"notes"}}`, 200)
	r := result(t, e.rpc(t).call("solve", map[string]any{"problem": "What is 2+2?", "collection": "nope"}, nil))
	if r["isError"] != true || !strings.Contains(toolText(r), `collection "nope" does not exist`) {
		t.Errorf("MCP solve on a missing collection: %v", r)
	}
}

// When every search of a request fails (the LLM is down), the request
// fails: 502 without streaming, and with streaming, whose 200 is sent
// already, an error event before [DONE]; the last status line says the
// search ended without an answer, once.
func TestChatWhenEverySearchFails(t *testing.T) {
	t.Parallel()
	down := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{}, errors.New("connection refused")
	})
	e := newEnv(t, envOptions{policy: down})
	req := `{"model":"cot","messages":[{"role":"user","content":"What is 2+2?"}]`
	if body := postJSON(t, e.ts.URL+"/v1/chat/completions", req+`}`, 502); !strings.Contains(body, "connection refused") {
		t.Errorf("without streaming: %s", body)
	}
	body := postJSON(t, e.ts.URL+"/v1/chat/completions", req+`,"stream":true}`, 200)
	if !strings.Contains(body, `"type":"upstream_error"`) || !strings.Contains(body, "connection refused") || !strings.HasSuffix(strings.TrimSpace(body), "data: [DONE]") {
		t.Errorf("streaming: no error event before [DONE]:\n%s", body)
	}
	if strings.Contains(body, "answer chosen") || strings.Count(body, "search ended without an answer") != 1 {
		t.Errorf("streaming: the status lines say an answer was chosen, or repeat:\n%s", body)
	}
}

// A body over server.max_body_bytes gets the same 413 whether its size was
// announced (Content-Length) or found while reading (chunked).
func TestChatBodyTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.MaxBodyBytes = 1024 }})
	big := `{"model":"cot","messages":[{"role":"user","content":"` + strings.Repeat("x", 4096) + `"}]}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(strings.NewReader(big)) // no length known: sent chunked
		}
		resp, err := http.Post(e.ts.URL+"/v1/chat/completions", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || !strings.Contains(string(b), `"type":"request_too_large"`) || !strings.Contains(string(b), "server.max_body_bytes") {
			t.Errorf("chunked %v: %d %s", chunked, resp.StatusCode, b)
		}
	}
}

// checkRateLimitError checks an OpenAI error object of a 429: OpenAI's
// code, rate_limit_exceeded, which clients that tell a rate limit apart
// read, and Ponder's type, which clients read before the code was set.
func checkRateLimitError(t *testing.T, where, text string) {
	t.Helper()
	var got struct{ Error map[string]any }
	if err := json.Unmarshal([]byte(text), &got); err != nil || got.Error == nil {
		t.Fatalf("%s: not an OpenAI error (%v): %s", where, err, text)
	}
	msg, _ := got.Error["message"].(string)
	want := map[string]any{"type": "rate_limit_exceeded", "code": "rate_limit_exceeded", "param": nil, "message": msg}
	if d := cmp.Diff(want, got.Error); d != "" || msg == "" {
		t.Errorf("%s (-want +got):\n%s", where, d)
	}
}

// Ponder's own rate limit (server.rate_limit) answers an OpenAI client as
// OpenAI does: 429 with Retry-After and code rate_limit_exceeded, which
// go-openai parses into APIError.Code.
func TestChatRateLimitedIsOpenAIs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.RateLimit = 1; c.RateBurst = 1 }})
	now := time.Now() // a frozen clock: the bucket does not refill during the test
	e.srv.limiter.now = func() time.Time { return now }
	if resp, _ := do(t, newReq(t, "GET", e.ts.URL+"/v1/models", "", nil)); resp.StatusCode != 200 {
		t.Fatalf("the first request was refused: %d", resp.StatusCode)
	}
	resp, text := do(t, newReq(t, "POST", e.ts.URL+"/v1/chat/completions", `{"model":"cot","messages":[{"role":"user","content":"hi"}]}`, nil))
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("want 429 with Retry-After, got %d %v: %s", resp.StatusCode, resp.Header, text)
	}
	checkRateLimitError(t, "raw", text)
	if !strings.Contains(text, "server.rate_limit") {
		t.Errorf("does not name the setting: %s", text)
	}
	_, err := e.openai().CreateChatCompletion(ctxTimeout(t, 10*time.Second), openai.ChatCompletionRequest{
		Model: "cot", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.HTTPStatusCode != 429 || ae.Code != "rate_limit_exceeded" || ae.Type != "rate_limit_exceeded" {
		t.Fatalf("go-openai when rate limited: %#v", err)
	}
}

// failingEverySearch is a server whose LLM endpoint fails every call with
// err, and a chat request for it without its closing brace.
func failingEverySearch(t *testing.T, err error) (*env, string) {
	t.Helper()
	fails := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{}, err
	})
	return newEnv(t, envOptions{policy: fails}), `{"model":"cot","messages":[{"role":"user","content":"What is 2+2?"}]`
}

// An LLM endpoint that rate limits every search makes the request a 429,
// so that clients back off, not a 502, with OpenAI's code as for Ponder's
// own rate limit; streaming, the error event says the same.
func TestChatWhenTheLLMRateLimits(t *testing.T) {
	t.Parallel()
	e, req := failingEverySearch(t, fmt.Errorf("%w: the endpoint answered 429", core.ErrLLMRateLimited))
	checkRateLimitError(t, "without streaming", postJSON(t, e.ts.URL+"/v1/chat/completions", req+`}`, 429))
	var event string
	for _, line := range strings.Split(postJSON(t, e.ts.URL+"/v1/chat/completions", req+`,"stream":true}`, 200), "\n") {
		if strings.HasPrefix(line, `data: {"error"`) {
			event = strings.TrimPrefix(line, "data: ")
		}
	}
	checkRateLimitError(t, "the stream's error event", event)

	msgs := []openai.ChatCompletionMessage{{Role: "user", Content: "What is 2+2?"}}
	_, err := e.openai().CreateChatCompletion(ctxTimeout(t, 10*time.Second), openai.ChatCompletionRequest{Model: "cot", Messages: msgs})
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.HTTPStatusCode != 429 || ae.Code != "rate_limit_exceeded" || ae.Type != "rate_limit_exceeded" {
		t.Fatalf("go-openai: %#v", err)
	}
	stream, err := e.openai().CreateChatCompletionStream(ctxTimeout(t, 10*time.Second), openai.ChatCompletionRequest{Model: "cot", Messages: msgs, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	for err == nil {
		_, err = stream.Recv()
	}
	ae = nil
	if !errors.As(err, &ae) || ae.Code != "rate_limit_exceeded" || ae.Type != "rate_limit_exceeded" {
		t.Fatalf("go-openai streaming: %#v", err)
	}
}

// An LLM endpoint that refuses the searches' requests as invalid (a prompt
// over the model's context) makes the request a 400, as OpenAI answers it,
// not a 502 that client SDKs retry.
func TestChatWhenTheLLMRejectsTheRequest(t *testing.T) {
	t.Parallel()
	e, req := failingEverySearch(t, fmt.Errorf("%w: the endpoint answered 400: context_length_exceeded", core.ErrLLMRejected))
	if body := postJSON(t, e.ts.URL+"/v1/chat/completions", req+`}`, 400); !strings.Contains(body, `"type":"invalid_request_error"`) || !strings.Contains(body, "context_length_exceeded") {
		t.Errorf("without streaming: %s", body)
	}
	if body := postJSON(t, e.ts.URL+"/v1/chat/completions", req+`,"stream":true}`, 200); !strings.Contains(body, `"type":"invalid_request_error"`) {
		t.Errorf("streaming: %s", body)
	}
}

// A stream that stayed silent long enough for heartbeats and then failed
// still reaches go-openai as the error it is: its reader keeps every line
// that is not data (an SSE comment included) and parses them together with
// the error event, so a comment heartbeat turned the error into a JSON
// syntax error.
func TestChatStreamErrorAfterHeartbeats(t *testing.T) {
	old := streamHeartbeatIdle
	streamHeartbeatIdle = 40 * time.Millisecond
	t.Cleanup(func() { streamHeartbeatIdle = old })
	slowDown := core.PolicyFunc(func(ctx context.Context, _ core.CompletionRequest) (core.Completion, error) {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
		}
		return core.Completion{}, fmt.Errorf("%w: cannot connect to the LLM endpoint (connection refused)", core.ErrLLMUnavailable)
	})
	e := newEnv(t, envOptions{policy: slowDown})
	stream, err := e.openai().CreateChatCompletionStream(ctxTimeout(t, 30*time.Second), openai.ChatCompletionRequest{
		Model: "cot", Stream: true, Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "What is 2+2?"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	heartbeats := 0
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			t.Fatal("the stream ended without the error")
		}
		if err != nil {
			if !strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("go-openai read the error as %q", err)
			}
			break
		}
		for _, c := range chunk.Choices {
			if c.Delta.Role == "" && c.Delta.Content == "" && c.Delta.ReasoningContent == "" && c.FinishReason == "" {
				heartbeats++
			}
		}
	}
	if heartbeats == 0 {
		t.Fatal("no heartbeat reached the client: the test tests nothing")
	}
}

// simFailing is a policy on the simulator that fails the calls fail picks
// (numbered from 1, by the counter it returns) with the error it returns.
func simFailing(t *testing.T, fail func(call int64) error) (core.Policy, *atomic.Int64) {
	t.Helper()
	url := simtest.Start(t, sim.Options{DataDir: sim.NoData})
	c, err := llm.New(config.LLM{BaseURL: url, Model: "ponder-sim", Timeout: 30 * time.Second, N: "auto"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := new(atomic.Int64)
	return core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		if err := fail(calls.Add(1)); err != nil {
			return core.Completion{}, err
		}
		return c.Complete(ctx, req)
	}), calls
}

// A search the LLM endpoint failed partway, before the strategy chose an
// answer, is a failed request (as MCP's solve reports it), not a 200 whose
// "answer" is the last intermediate step with finish_reason stop.
func TestChatSearchFailedPartway(t *testing.T) {
	t.Parallel()
	refused := fmt.Errorf("%w: cannot connect to the LLM endpoint (connection refused)", core.ErrLLMUnavailable)
	diesAfterFour, calls := simFailing(t, func(call int64) error {
		if call > 4 {
			return refused
		}
		return nil
	})
	// MCTS runs 8 simulations at once, so which 4 calls come back
	// depends on timing: a reply that would give the search an answer
	// fails too, so that none is found whatever the order (under load,
	// an answer among the first 4 made the search succeed).
	noAnswers := core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
		c, err := diesAfterFour.Complete(ctx, req)
		for _, ch := range c.Choices {
			if strings.Contains(strings.ToLower(ch.Text), "answer") {
				return core.Completion{}, refused
			}
		}
		return c, err
	})
	e := newEnv(t, envOptions{policy: noAnswers})
	req := `{"model":"mcts","messages":[{"role":"user","content":"What is 17 * 23?"}]`
	body := postJSON(t, e.ts.URL+"/v1/chat/completions", req+`}`, 502)
	if !strings.Contains(body, "connection refused") {
		t.Errorf("without streaming: %s", body)
	}
	l := e.traces.List()
	if len(l) != 1 || l[0].Status != core.StopError || calls.Load() < 3 {
		t.Fatalf("the search did not fail partway: %d calls, %+v", calls.Load(), l)
	}
	calls.Store(0)
	_, err := e.openai().CreateChatCompletion(ctxTimeout(t, 30*time.Second), openai.ChatCompletionRequest{
		Model: "mcts", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "What is 17 * 23?"}}})
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.HTTPStatusCode != 502 || ae.Type != "upstream_error" {
		t.Errorf("go-openai: %v", err)
	}
	calls.Store(0)
	body = postJSON(t, e.ts.URL+"/v1/chat/completions", req+`,"stream":true}`, 200)
	if regexp.MustCompile(`"content":"[^"]`).MatchString(body) || !strings.Contains(body, `"type":"upstream_error"`) {
		t.Errorf("streaming: an intermediate step was sent as the answer, or no error event:\n%s", body)
	}
}

// With n > 1, a choice whose search failed while the others answered is
// told apart from an empty answer: content null (non-streaming),
// reasoning_content ending with why, and ponder.choices[i] with stopped
// reason error and the error; finish_reason stays in OpenAI's enum, which
// strict clients check. The request is not failed: the other searches'
// answers are kept.
func TestChatOneOfNChoicesFails(t *testing.T) {
	t.Parallel()
	firstFails, calls := simFailing(t, func(call int64) error {
		if call == 1 {
			return fmt.Errorf("%w: cannot connect to the LLM endpoint (connection refused, 1 attempt): start the server or fix PONDER_LLM_BASE_URL or --llm-url", core.ErrLLMUnavailable)
		}
		return nil
	})
	e := newEnv(t, envOptions{policy: firstFails})
	const says = "(search failed: this Ponder server cannot reach its LLM endpoint; contact the server's operator"
	req := `{"model":"cot","n":2,"messages":[{"role":"user","content":"What is 17 * 23?"}]`

	t.Run("raw", func(t *testing.T) {
		calls.Store(0)
		var resp struct {
			Choices []struct {
				Message struct {
					Content   *string `json:"content"`
					Reasoning string  `json:"reasoning_content"`
				}
				FinishReason string `json:"finish_reason"`
			}
			Ponder struct{ Choices []choiceTrace }
		}
		body := postJSON(t, e.ts.URL+"/v1/chat/completions", req+`}`, 200)
		if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Choices) != 2 || len(resp.Ponder.Choices) != 2 {
			t.Fatalf("%v: %s", err, body)
		}
		failed := 0
		for i, ch := range resp.Choices {
			p := resp.Ponder.Choices[i]
			if ch.FinishReason != "stop" {
				t.Errorf("choice %d: finish_reason %q", i, ch.FinishReason)
			}
			if p.StoppedReason != core.StopError {
				if ch.Message.Content == nil || *ch.Message.Content == "" {
					t.Errorf("choice %d answered, without content: %s", i, body)
				}
				continue
			}
			failed++
			if ch.Message.Content != nil || !strings.Contains(ch.Message.Reasoning, says) ||
				!strings.HasSuffix(ch.Message.Reasoning, "cannot connect to the LLM endpoint (connection refused, 1 attempt))\n") ||
				!strings.HasPrefix(p.Error, strings.TrimPrefix(says, "(search failed: ")) || strings.Contains(body, "PONDER_") {
				t.Errorf("choice %d failed, and does not say so: %s", i, body)
			}
		}
		if failed != 1 {
			t.Fatalf("%d choices failed, want 1: %s", failed, body)
		}
	})

	t.Run("go-openai", func(t *testing.T) {
		calls.Store(0)
		resp, err := e.openai().CreateChatCompletion(ctxTimeout(t, 30*time.Second), openai.ChatCompletionRequest{
			Model: "cot", N: 2, Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "What is 17 * 23?"}}})
		if err != nil || len(resp.Choices) != 2 {
			t.Fatalf("%v %+v", err, resp)
		}
		var failed, answered int
		for _, ch := range resp.Choices {
			switch {
			case ch.Message.Content == "" && strings.Contains(ch.Message.ReasoningContent, says):
				failed++
			case ch.Message.Content != "" && !strings.Contains(ch.Message.ReasoningContent, "search failed"):
				answered++
			}
		}
		if failed != 1 || answered != 1 {
			t.Fatalf("want one failed choice that says so and one answer: %+v", resp.Choices)
		}
	})

	t.Run("stream", func(t *testing.T) {
		calls.Store(0)
		stream, err := e.openai().CreateChatCompletionStream(ctxTimeout(t, 30*time.Second), openai.ChatCompletionRequest{
			Model: "cot", N: 2, Stream: true, Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "What is 17 * 23?"}}})
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		content, reasoning := map[int]string{}, map[int]string{}
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range chunk.Choices {
				content[ch.Index] += ch.Delta.Content
				reasoning[ch.Index] += ch.Delta.ReasoningContent
			}
		}
		var failed, answered int
		for i := range 2 {
			switch {
			case content[i] == "" && strings.Contains(reasoning[i], says):
				failed++
			case content[i] != "" && !strings.Contains(reasoning[i], "search failed"):
				answered++
			}
		}
		if failed != 1 || answered != 1 {
			t.Fatalf("want one failed choice that says so and one answer: content %v reasoning %v", content, reasoning)
		}
	})
}

// rateLimitedFor is an LLM rate limit error that says how long to wait, as
// the llm client's is when the endpoint sent Retry-After.
type rateLimitedFor time.Duration

func (r rateLimitedFor) Error() string             { return "the endpoint answered 429" }
func (r rateLimitedFor) Unwrap() error             { return core.ErrLLMRateLimited }
func (r rateLimitedFor) RetryAfter() time.Duration { return time.Duration(r) }

// The endpoint's Retry-After reaches the client's 429, so that it waits as
// long as the endpoint asked; without one, none is made up.
func TestChatPassesOnRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{rateLimitedFor(6500 * time.Millisecond), "7"},
		{fmt.Errorf("%w: the endpoint answered 429", core.ErrLLMRateLimited), ""},
	} {
		e, req := failingEverySearch(t, tc.err)
		resp, err := http.Post(e.ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(req+`}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != tc.want {
			t.Errorf("%v: %d, Retry-After %q, want 429 and %q", tc.err, resp.StatusCode, resp.Header.Get("Retry-After"), tc.want)
		}
	}
}

// A Game of 24 puzzle in a conversation (a client's system prompt, earlier
// messages) is posed alone, as in a reasoning session: the pack reads the
// four numbers from the problem, and the text before them made every
// puzzle unsolvable ("You are a helpful assistant." was enough).
func TestChatGame24PuzzlePosedAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	body := postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot","messages":[`+
		`{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is 12 + 3?"},`+
		`{"role":"assistant","content":"15"},{"role":"user","content":"4 9 10 13"}]}`, 200)
	var resp struct {
		Ponder struct{ Choices []choiceTrace }
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Ponder.Choices) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	tr, _ := e.traces.Get(resp.Ponder.Choices[0].TraceID)
	if tr.Problem != "4 9 10 13" || tr.Pack != "game24" {
		t.Fatalf("a Game of 24 puzzle in a conversation was posed as %q (pack %s)", tr.Problem, tr.Pack)
	}
}
