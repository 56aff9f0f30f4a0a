package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/endpoint/endpointtest"
	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/llm"
)

const testKey = "sk-test-secret-123"

// sleeper records the waits between attempts instead of waiting.
type sleeper struct {
	mu sync.Mutex
	ds []time.Duration
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeper) waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.ds...)
}

func testConfig(url string) config.LLM {
	return config.LLM{BaseURL: url, APIKey: testKey, Model: "test-model", Temperature: 0.7,
		Timeout: 10 * time.Second, MaxRetries: 3, N: "auto"}
}

func newClient(t *testing.T, cfg config.LLM, opts *llm.Options) *llm.Client {
	t.Helper()
	c, err := llm.New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func texts(c core.Completion) []string {
	var out []string
	for _, ch := range c.Choices {
		out = append(out, ch.Text)
	}
	return out
}

// sent lists a field of each request the fake received (nil when absent).
func sent(reqs []fakeRequest, field string) []any {
	var out []any
	for _, r := range reqs {
		out = append(out, r.raw[field])
	}
	return out
}

func user(text string) []core.Message { return []core.Message{{Role: "user", Content: text}} }

func TestComplete(t *testing.T) {
	t.Parallel()
	msgs := user("what is 2+2?")
	tests := []struct {
		name  string
		fake  *fakeLLM
		mode  string // config.LLM.N; "" means auto
		retry int    // config.LLM.MaxRetries; 0 means 3
		reqs  []core.CompletionRequest
		// want is the last call's completion; wantErr its error.
		want      core.Completion
		wantErr   error
		wantN     []any // n sent in each request, in order
		wantSeeds []any // seed sent in each request, in order
		wantWaits []time.Duration
		waits     int // number of waits, when their lengths are random
	}{
		{
			name: "normal",
			fake: &fakeLLM{},
			reqs: []core.CompletionRequest{{Messages: msgs, N: 1, Seed: ptr[int64](7)}},
			want: core.Completion{Choices: []core.Choice{{Text: "seed 7 sample 0", FinishReason: "stop"}},
				PromptTokens: 10, CompletionTokens: 3, Model: "test-model"},
			wantN:     []any{nil},
			wantSeeds: []any{7.0},
		},
		{
			name:  "n honoured",
			fake:  &fakeLLM{},
			reqs:  []core.CompletionRequest{{Messages: msgs, N: 3, Seed: ptr[int64](7)}},
			want:  completion(10, 9, "seed 7 sample 0", "seed 7 sample 1", "seed 7 sample 2"),
			wantN: []any{3.0},
		},
		{
			name: "n ignored falls back and remembers",
			fake: &fakeLLM{ignoreN: true},
			reqs: []core.CompletionRequest{
				{Messages: msgs, N: 3, Seed: ptr[int64](7)},
				{Messages: msgs, N: 2, Seed: ptr[int64](20)},
			},
			want:      completion(20, 6, "seed 20 sample 0", "seed 21 sample 0"),
			wantN:     []any{3.0, nil, nil, nil, nil},
			wantSeeds: []any{7.0, 8.0, 9.0, 20.0, 21.0},
		},
		{
			name: "n rejected falls back and remembers",
			fake: &fakeLLM{rejectN: true},
			reqs: []core.CompletionRequest{
				{Messages: msgs, N: 2, Seed: ptr[int64](7)},
				{Messages: msgs, N: 2},
			},
			want:      completion(20, 6, "seed none sample 0", "seed none sample 0"),
			wantN:     []any{2.0, nil, nil, nil, nil},
			wantSeeds: []any{7.0, 7.0, 8.0, nil, nil},
		},
		{
			name:      "n no sends sequential requests",
			fake:      &fakeLLM{},
			mode:      "no",
			reqs:      []core.CompletionRequest{{Messages: msgs, N: 2, Seed: ptr[int64](7)}},
			want:      completion(20, 6, "seed 7 sample 0", "seed 8 sample 0"),
			wantN:     []any{nil, nil},
			wantSeeds: []any{7.0, 8.0},
		},
		{
			name:  "n yes trusts the server",
			fake:  &fakeLLM{ignoreN: true},
			mode:  "yes",
			reqs:  []core.CompletionRequest{{Messages: msgs, N: 3}},
			want:  completion(10, 3, "seed none sample 0"),
			wantN: []any{3.0},
		},
		{
			name:    "n rejected with n yes is an error",
			fake:    &fakeLLM{rejectN: true},
			mode:    "yes",
			reqs:    []core.CompletionRequest{{Messages: msgs, N: 3}},
			wantErr: core.ErrLLMRejected,
			wantN:   []any{3.0},
		},
		{
			name: "429 with retry-after then success",
			fake: (&fakeLLM{}).push(reply{status: 429, retryAfter: "2",
				body: `{"error":{"message":"slow down","type":"rate_limit"}}`}),
			reqs:      []core.CompletionRequest{{Messages: msgs}},
			want:      completion(10, 3, "seed none sample 0"),
			wantN:     []any{nil, nil},
			wantWaits: []time.Duration{2 * time.Second},
		},
		{
			name:      "429 with an http date in retry-after",
			fake:      (&fakeLLM{}).push(reply{status: 429, retryAfter: "Mon, 02 Jan 2006 15:04:05 GMT"}),
			reqs:      []core.CompletionRequest{{Messages: msgs}},
			want:      completion(10, 3, "seed none sample 0"),
			wantN:     []any{nil, nil},
			wantWaits: []time.Duration{0},
		},
		{
			name: "429 until retries run out",
			fake: (&fakeLLM{}).push(reply{status: 429}, reply{status: 429}, reply{status: 429},
				reply{status: 429}),
			reqs:    []core.CompletionRequest{{Messages: msgs}},
			wantErr: core.ErrLLMRateLimited,
			wantN:   []any{nil, nil, nil, nil},
			waits:   3,
		},
		{
			name:  "500 twice then success",
			fake:  (&fakeLLM{}).push(reply{status: 500, body: "boom"}, reply{status: 502}),
			reqs:  []core.CompletionRequest{{Messages: msgs}},
			want:  completion(10, 3, "seed none sample 0"),
			wantN: []any{nil, nil, nil},
			waits: 2,
		},
		{
			name:    "500 until retries run out",
			fake:    (&fakeLLM{}).push(reply{status: 500}, reply{status: 503}),
			retry:   1,
			reqs:    []core.CompletionRequest{{Messages: msgs}},
			wantErr: core.ErrLLMUnavailable,
			wantN:   []any{nil, nil},
			waits:   1,
		},
		{
			name:    "401 is not retried",
			fake:    &fakeLLM{key: "sk-other"},
			reqs:    []core.CompletionRequest{{Messages: msgs}},
			wantErr: core.ErrLLMAuth,
			wantN:   []any{nil},
		},
		{
			name:    "403 is not retried",
			fake:    (&fakeLLM{}).push(reply{status: 403, body: `{"error":{"message":"forbidden"}}`}),
			reqs:    []core.CompletionRequest{{Messages: msgs}},
			wantErr: core.ErrLLMAuth,
			wantN:   []any{nil},
		},
		{
			name:    "malformed json",
			fake:    (&fakeLLM{}).push(reply{body: `{"choices": [{"message": `}),
			reqs:    []core.CompletionRequest{{Messages: msgs}},
			wantErr: core.ErrLLMBadResponse,
			wantN:   []any{nil},
		},
		{
			name:  "answer cut off is retried",
			fake:  (&fakeLLM{}).push(reply{body: `{"id":"x","choices":[{"message":{"content":"par`, cut: true}),
			reqs:  []core.CompletionRequest{{Messages: msgs}},
			want:  completion(10, 3, "seed none sample 0"),
			wantN: []any{nil, nil},
			waits: 1,
		},
		{
			// Not "the request is invalid": the 503 is retried.
			name:  "error answer cut off is retried",
			fake:  (&fakeLLM{}).push(reply{status: 503, body: `{"error":`, cut: true}),
			reqs:  []core.CompletionRequest{{Messages: msgs}},
			want:  completion(10, 3, "seed none sample 0"),
			wantN: []any{nil, nil},
			waits: 1,
		},
		{
			name: "answer cut off until retries run out",
			fake: (&fakeLLM{}).push(reply{body: `{"choices":[`, cut: true}, reply{body: `{"choices":[`, cut: true},
				reply{body: `{"choices":[`, cut: true}, reply{body: `{"choices":[`, cut: true}),
			reqs:    []core.CompletionRequest{{Messages: msgs}},
			wantErr: core.ErrLLMUnavailable,
			wantN:   []any{nil, nil, nil, nil},
			waits:   3,
		},
		{
			name:    "empty choices",
			fake:    (&fakeLLM{}).push(reply{body: `{"id":"x","choices":[],"usage":{}}`}),
			reqs:    []core.CompletionRequest{{Messages: msgs}},
			wantErr: core.ErrLLMBadResponse,
			wantN:   []any{nil},
		},
		{
			name:    "404 names the base url prefix",
			fake:    (&fakeLLM{}).push(reply{status: 404, body: `{"detail":"Not Found"}`}),
			reqs:    []core.CompletionRequest{{Messages: msgs}},
			wantErr: core.ErrLLMUnavailable,
			wantN:   []any{nil},
		},
		{
			name: "logprobs present",
			fake: &fakeLLM{logprobs: true},
			reqs: []core.CompletionRequest{{Messages: msgs, N: 2, Logprobs: true}},
			want: core.Completion{Choices: []core.Choice{
				{Text: "seed none sample 0", FinishReason: "stop", Logprob: ptr(-0.75)},
				{Text: "seed none sample 1", FinishReason: "stop", Logprob: ptr(-0.75)},
			}, PromptTokens: 10, CompletionTokens: 6, Model: "test-model"},
			wantN: []any{2.0},
		},
		{
			name:  "logprobs absent",
			fake:  &fakeLLM{},
			reqs:  []core.CompletionRequest{{Messages: msgs, Logprobs: true}},
			want:  completion(10, 3, "seed none sample 0"),
			wantN: []any{nil},
		},
		{
			name: "sequential failure keeps the samples so far",
			fake: (&fakeLLM{ignoreN: true}).push(reply{}, reply{}, reply{status: 400, body: "no"}),
			reqs: []core.CompletionRequest{{Messages: msgs, N: 3}},
			want: completion(20, 6, "seed none sample 0", "seed none sample 0"),
			// n=3 answered with one choice, one sequential sample, one failure.
			wantN: []any{3.0, nil, nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, tt.fake)
			cfg := testConfig(f.URL())
			if tt.mode != "" {
				cfg.N = tt.mode
			}
			if tt.retry != 0 {
				cfg.MaxRetries = tt.retry
			}
			s := &sleeper{}
			c := newClient(t, cfg, &llm.Options{Sleep: s.Sleep})
			var got core.Completion
			var err error
			for _, req := range tt.reqs {
				got, err = c.Complete(context.Background(), req)
			}
			checkErr(t, err, tt.wantErr)
			if tt.wantErr == nil {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("completion (-want +got):\n%s", diff)
				}
			}
			reqs := f.requests()
			if diff := cmp.Diff(tt.wantN, sent(reqs, "n")); diff != "" {
				t.Errorf("n sent (-want +got):\n%s", diff)
			}
			if tt.wantSeeds != nil {
				if diff := cmp.Diff(tt.wantSeeds, sent(reqs, "seed")); diff != "" {
					t.Errorf("seeds sent (-want +got):\n%s", diff)
				}
			}
			waits := s.waits()
			if tt.wantWaits != nil {
				if diff := cmp.Diff(tt.wantWaits, waits); diff != "" {
					t.Errorf("waits (-want +got):\n%s", diff)
				}
			} else if len(waits) != tt.waits {
				t.Errorf("waited %d times (%v), want %d", len(waits), waits, tt.waits)
			}
			for _, w := range waits {
				if w < 0 || w > 30*time.Second {
					t.Errorf("wait %s out of [0, 30s]", w)
				}
			}
		})
	}
}

func completion(prompt, completionTokens int64, texts ...string) core.Completion {
	c := core.Completion{PromptTokens: prompt, CompletionTokens: completionTokens, Model: "test-model"}
	for _, s := range texts {
		c.Choices = append(c.Choices, core.Choice{Text: s, FinishReason: "stop"})
	}
	return c
}

// errString matches an error by a part of its message.
type errString string

func (e errString) Error() string { return string(e) }

// checkErr checks err against want: nil, a sentinel (errors.Is), or an
// errString. Every error must be one lowercase line without the API key.
func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch w := want.(type) {
	case nil:
		if err != nil {
			t.Fatalf("error %v, want none", err)
		}
		return
	case errString:
		if err == nil || !strings.Contains(err.Error(), string(w)) {
			t.Fatalf("error %v, want one containing %q", err, w)
		}
	default:
		if !errors.Is(err, want) {
			t.Fatalf("error %v, want %v", err, want)
		}
	}
	msg := err.Error()
	if strings.Contains(msg, testKey) || strings.Contains(msg, "\n") || msg != strings.ToLower(msg[:1])+msg[1:] {
		t.Errorf("error %q: want one lowercase line without the api key", msg)
	}
}

func TestErrorMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rep  reply
		want []string
	}{
		{"auth", reply{status: 401, body: `{"error":{"message":"Incorrect API key provided: ` + testKey + `"}}`},
			[]string{"PONDER_LLM_API_KEY", "401", "[redacted]"}},
		{"rate limited", reply{status: 429}, []string{"429 after 1 attempt", "PONDER_LLM_CONCURRENCY"}},
		{"not found", reply{status: 404, body: `{"detail":"Not Found"}`}, []string{"/v1", "Not Found"}},
		{"bad json", reply{body: `{"choices": oops}`}, []string{"not valid json", "PONDER_LLM_BASE_URL"}},
		{"html page", reply{body: "<html>"}, []string{"an HTML page, not json", "PONDER_LLM_BASE_URL"}},
		{"json of another shape", reply{body: `{"id":"x","choices":[],"usage":{"prompt_tokens":"3"}}`},
			[]string{"sent json that is not a chat completion (json: cannot unmarshal string", "PONDER_LLM_BASE_URL"}},
		{"server error", reply{status: 500, body: "line one\nline two"}, []string{"500", "line one line two"}},
		{"error in a 200", reply{body: `{"error":{"message":"upstream provider overloaded","code":502}}`},
			[]string{"without choices (upstream provider overloaded)", "PONDER_LLM_BASE_URL"}},
		{"no choices", reply{body: `{"id":"x","choices":[]}`}, []string{"without choices: check"}},
		{"cut off", reply{status: 200, body: `{"choices":[`, cut: true}, []string{"answered 200", "cut off", "unexpected EOF"}},
		{"body naming the endpoint", reply{status: 502, body: `{"error":{"message":"no upstream for ENDPOINT/chat/completions (HOST)"}}`},
			[]string{"502", "no upstream for the LLM endpoint/chat/completions (the LLM endpoint)"}},
		{"timeout", reply{hang: true}, []string{"the LLM endpoint did not answer within 200ms", "PONDER_LLM_TIMEOUT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, &fakeLLM{})
			host := strings.TrimPrefix(f.srv.URL, "http://")
			tt.rep.body = strings.NewReplacer("ENDPOINT", f.URL(), "HOST", host).Replace(tt.rep.body)
			f.push(tt.rep)
			cfg := testConfig(f.URL())
			cfg.MaxRetries = 0
			cfg.Timeout = 200 * time.Millisecond
			_, err := newClient(t, cfg, nil).Complete(context.Background(), core.CompletionRequest{Messages: user("hi")})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line without the api key", err)
			}
			checkNoAddress(t, err, f.URL())
		})
	}
}

// checkNoAddress fails when err shows where the endpoint is, or the API
// key: these messages reach the clients of `ponder serve` and traces, and
// the endpoint may be internal infrastructure.
func checkNoAddress(t *testing.T, err error, baseURL string) {
	t.Helper()
	endpointtest.CheckHidden(t, err.Error(), baseURL, testKey)
	if !strings.Contains(err.Error(), "the LLM endpoint") {
		t.Errorf("error %q does not say what failed (the LLM endpoint)", err)
	}
}

func TestRequestMapping(t *testing.T) {
	t.Parallel()
	f := startFake(t, (&fakeLLM{}).push(reply{toolCall: ptr(openaiToolCall("call_2", "calc", `{"expr":"2+2"}`))}))
	cfg := testConfig(f.URL())
	cfg.MaxTokens = 100
	c := newClient(t, cfg, nil)
	req := core.CompletionRequest{
		Messages: []core.Message{
			{Role: "system", Content: "be brief"},
			{Role: "user", Content: "2+2?"},
			{Role: "assistant", ToolCalls: []core.ToolCall{{ID: "call_1", Name: "calc", Arguments: json.RawMessage(`{"expr":"1+1"}`)}}},
			{Role: "tool", ToolCallID: "call_1", Content: "2"},
		},
		Model:       "override",
		Temperature: ptr(0.0),
		MaxTokens:   50,
		Stop:        []string{"\n\n"},
		Seed:        ptr[int64](3),
		Tools: []core.ToolSpec{
			{Name: "calc", Description: "evaluates", Schema: json.RawMessage(`{"type":"object","properties":{"expr":{"type":"string"}}}`)},
			{Name: "now", Description: "time"},
		},
	}
	got, err := c.Complete(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := core.Completion{Choices: []core.Choice{{FinishReason: "tool_calls",
		ToolCalls: []core.ToolCall{{ID: "call_2", Name: "calc", Arguments: json.RawMessage(`{"expr":"2+2"}`)}}}},
		PromptTokens: 10, CompletionTokens: 3, Model: "override"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("completion (-want +got):\n%s", diff)
	}

	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.auth != "Bearer "+testKey {
		t.Errorf("authorization %q", r.auth)
	}
	raw := r.raw
	delete(raw, "messages")
	delete(raw, "tools")
	wantRaw := map[string]any{"model": "override", "temperature": 0.0, "max_tokens": 50.0,
		"stop": []any{"\n\n"}, "seed": 3.0, "stream": false}
	if diff := cmp.Diff(wantRaw, raw); diff != "" {
		t.Errorf("request fields (-want +got):\n%s", diff)
	}
	body, _ := json.Marshal(r.req.Messages)
	wantMsgs := `[{"role":"system","content":"be brief"},{"role":"user","content":"2+2?"},` +
		`{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"calc","arguments":"{\"expr\":\"1+1\"}"}}]},` +
		`{"role":"tool","content":"2","tool_call_id":"call_1"}]`
	if string(body) != wantMsgs {
		t.Errorf("messages\n got %s\nwant %s", body, wantMsgs)
	}
	tools, _ := json.Marshal(reqs[0].req.Tools)
	wantTools := `[{"function":{"name":"calc","description":"evaluates","parameters":{"properties":{"expr":{"type":"string"}},"type":"object"}},"type":"function"},` +
		`{"function":{"name":"now","description":"time","parameters":{"properties":{},"type":"object"}},"type":"function"}]`
	if string(tools) != wantTools {
		t.Errorf("tools\n got %s\nwant %s", tools, wantTools)
	}
}

// TestReasoningModel checks that OpenAI reasoning models, for which
// go-openai refuses n > 1, logprobs, max_tokens and a temperature other than
// 1 before sending, still get their samples: sequential requests without
// those fields.
func TestReasoningModel(t *testing.T) {
	t.Parallel()
	for _, model := range []string{"o4-mini", "gpt-5-mini"} {
		for _, temp := range []*float64{nil, ptr(0.0), ptr(1.0)} {
			name := model + " temperature default"
			if temp != nil {
				name = fmt.Sprintf("%s temperature %g", model, *temp)
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f := startFake(t, &fakeLLM{logprobs: true})
				cfg := testConfig(f.URL()) // temperature 0.7
				cfg.Model = model
				cfg.MaxTokens = 100
				for _, mode := range []string{"auto", "yes"} {
					cfg.N = mode
					got, err := newClient(t, cfg, nil).Complete(context.Background(),
						core.CompletionRequest{Messages: user("hi"), N: 2, Temperature: temp, Logprobs: true, Seed: ptr[int64](1)})
					if err != nil {
						t.Fatalf("n %s: %v", mode, err)
					}
					if len(got.Choices) != 2 {
						t.Errorf("n %s: %d choices, want 2", mode, len(got.Choices))
					}
				}
				for i, r := range f.requests() {
					for _, k := range []string{"n", "temperature", "logprobs", "max_tokens"} {
						if v, ok := r.raw[k]; ok {
							t.Errorf("request %d sent %s %v", i, k, v)
						}
					}
					if v := r.raw["max_completion_tokens"]; v != 100.0 {
						t.Errorf("request %d: max_completion_tokens %v, want 100", i, v)
					}
				}
				if n := len(f.requests()); n != 4 {
					t.Errorf("%d requests, want 4", n)
				}
			})
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	f := startFake(t, &fakeLLM{})
	cfg := testConfig(f.URL())
	cfg.MaxTokens = 64
	c := newClient(t, cfg, nil)
	if _, err := c.Complete(context.Background(), core.CompletionRequest{Messages: user("hi")}); err != nil {
		t.Fatal(err)
	}
	r := f.requests()[0].raw
	for k, want := range map[string]any{"model": "test-model", "temperature": 0.7, "max_tokens": 64.0} {
		got, _ := r[k].(float64)
		if s, ok := r[k].(string); ok {
			if s != want {
				t.Errorf("%s = %q, want %q", k, s, want)
			}
			continue
		}
		if w := want.(float64); got < w-1e-6 || got > w+1e-6 {
			t.Errorf("%s = %v, want %v", k, r[k], want)
		}
	}
}

func TestToolArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, args string
		want       string
	}{
		{"json", `{"a":1}`, `{"a":1}`},
		{"empty", ``, `{}`},
		{"not json", `a=1`, `"a=1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, (&fakeLLM{}).push(reply{toolCall: ptr(openaiToolCall("c", "f", tt.args))}))
			got, err := newClient(t, testConfig(f.URL()), nil).Complete(context.Background(),
				core.CompletionRequest{Messages: user("hi")})
			if err != nil {
				t.Fatal(err)
			}
			if s := string(got.Choices[0].ToolCalls[0].Arguments); s != tt.want {
				t.Errorf("arguments %s, want %s", s, tt.want)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rep  reply
		cfg  func(*config.LLM)
	}{
		// The server hangs; cancelling must not wait for it.
		{name: "slow reply", rep: reply{hang: true}},
		// The server asks for a long wait; cancelling must cut it short.
		{name: "during backoff", rep: reply{status: 429, retryAfter: "60"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, (&fakeLLM{}).push(tt.rep))
			c := newClient(t, testConfig(f.URL()), nil) // real sleep
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			_, err := c.Complete(ctx, core.CompletionRequest{Messages: user("hi")})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error %v, want context.Canceled", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("returned after %s, want promptly", d)
			}
		})
	}
}

func TestDeadlineBeforeRetryAfter(t *testing.T) {
	t.Parallel()
	f := startFake(t, (&fakeLLM{}).push(reply{status: 429, retryAfter: "60"}))
	c := newClient(t, testConfig(f.URL()), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Complete(ctx, core.CompletionRequest{Messages: user("hi")})
	if !errors.Is(err, core.ErrLLMRateLimited) {
		t.Errorf("error %v, want ErrLLMRateLimited", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("returned after %s, want at once", d)
	}
	// Retries were left: the error says why none was made, not to allow
	// more.
	if msg := err.Error(); !strings.Contains(msg, "after 1 attempt") || !strings.Contains(msg, "asked to wait 1m0s, past the deadline") ||
		strings.Contains(msg, "PONDER_LLM_MAX_RETRIES") {
		t.Errorf("error %q: want it to say that the endpoint asked to wait 1m0s, past the deadline, and not to raise the retries", msg)
	}
}

func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		script  []reply
		wantErr error
	}{
		{"retried", []reply{{hang: true}}, nil},
		{"gives up", []reply{{hang: true}, {hang: true}}, core.ErrLLMUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, (&fakeLLM{}).push(tt.script...))
			cfg := testConfig(f.URL())
			cfg.Timeout = 200 * time.Millisecond
			cfg.MaxRetries = 1
			s := &sleeper{}
			got, err := newClient(t, cfg, &llm.Options{Sleep: s.Sleep}).Complete(context.Background(),
				core.CompletionRequest{Messages: user("hi")})
			checkErr(t, err, tt.wantErr)
			if err == nil && len(got.Choices) != 1 {
				t.Errorf("%d choices, want 1", len(got.Choices))
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v says the caller's deadline passed", err)
			}
			if n := len(f.requests()); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	url := "http://" + endpointtest.ClosedPort(t) + "/v1"
	cfg := testConfig(url)
	s := &sleeper{}
	_, err := newClient(t, cfg, &llm.Options{Sleep: s.Sleep}).Complete(context.Background(),
		core.CompletionRequest{Messages: user("hi")})
	checkErr(t, err, core.ErrLLMUnavailable)
	if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "PONDER_LLM_BASE_URL") {
		t.Errorf("error %q: want the cause and the setting to fix", err)
	}
	checkNoAddress(t, err, url)
	if n := len(s.waits()); n != cfg.MaxRetries {
		t.Errorf("waited %d times, want %d", n, cfg.MaxRetries)
	}
}

// Network failures other than a refused connection: the text of Go's
// errors names the addresses at both ends and the resolver.
func TestNetworkErrorsHideTheAddress(t *testing.T) {
	t.Parallel()
	reset := endpointtest.ResetServer(t)
	for _, tt := range []struct {
		name, url, want string
	}{
		{"reset", "http://" + reset + "/v1", "request to the LLM endpoint failed"},
		{"no such host", "http://llm-upstream.corp.invalid:8000/v1", "cannot resolve the host of the LLM endpoint"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(tt.url)
			cfg.MaxRetries = 0
			_, err := newClient(t, cfg, nil).Complete(context.Background(), core.CompletionRequest{Messages: user("hi")})
			checkErr(t, err, core.ErrLLMUnavailable)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			checkNoAddress(t, err, tt.url)
		})
	}
}

func TestModels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fake    *fakeLLM
		want    []string
		wantErr error
	}{
		{"list", &fakeLLM{key: testKey, models: []string{"a", "b"}}, []string{"a", "b"}, nil},
		{"empty", &fakeLLM{}, []string{}, nil},
		{"auth", &fakeLLM{key: "sk-other"}, nil, core.ErrLLMAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, tt.fake)
			got, err := newClient(t, testConfig(f.URL()), nil).Models(context.Background())
			checkErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("models (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  config.LLM
		want string // part of the error; "" for none
	}{
		{"ok", config.LLM{BaseURL: "http://127.0.0.1:8000/v1"}, ""},
		{"no url", config.LLM{}, "PONDER_LLM_BASE_URL"},
		{"bad scheme", config.LLM{BaseURL: "ftp://x/v1"}, "--llm-url"},
		{"no host", config.LLM{BaseURL: "http:///v1"}, "PONDER_LLM_BASE_URL"},
		{"query", config.LLM{BaseURL: "http://x/v1?api-key=sk-1"}, "query or fragment"},
		{"empty query", config.LLM{BaseURL: "http://x/v1?"}, "query or fragment"},
		{"fragment", config.LLM{BaseURL: "http://x/v1#a"}, "query or fragment"},
		{"bad n", config.LLM{BaseURL: "http://x/v1", N: "maybe"}, "PONDER_LLM_N"},
		{"bad retries", config.LLM{BaseURL: "http://x/v1", MaxRetries: -1}, "PONDER_LLM_MAX_RETRIES"},
		{"bad timeout", config.LLM{BaseURL: "http://x/v1", Timeout: -time.Second}, "PONDER_LLM_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := llm.New(tt.cfg, nil)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one naming %s", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "sk-1"):
				t.Errorf("error %v shows the url's secret", err)
			}
		})
	}
}

// TestResponseTooLarge checks that a body past Options.MaxResponseBytes is
// refused, not read into memory without end, and not asked for again.
func TestResponseTooLarge(t *testing.T) {
	t.Parallel()
	ok := `{"id":"x","model":"test-model","choices":[{"message":{"content":"` + strings.Repeat("a", 500) +
		`"},"finish_reason":"stop"}]}`
	tests := []struct {
		name    string
		rep     reply
		limit   int
		wantErr error
	}{
		{"at the limit", reply{body: ok}, len(ok), nil},
		{"past the limit", reply{body: ok}, len(ok) - 1, core.ErrLLMBadResponse},
		{"error past the limit", reply{status: 500, body: strings.Repeat("x", 2000)}, 1000, core.ErrLLMBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startFake(t, (&fakeLLM{}).push(tt.rep, tt.rep))
			s := &sleeper{}
			c := newClient(t, testConfig(f.URL()), &llm.Options{Sleep: s.Sleep, MaxResponseBytes: int64(tt.limit)})
			got, err := c.Complete(context.Background(), core.CompletionRequest{Messages: user("hi")})
			checkErr(t, err, tt.wantErr)
			if err != nil {
				want := fmt.Sprintf("larger than %d bytes (status %d)", tt.limit, max(tt.rep.status, 200))
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q: want it to say %q", err, want)
				}
			} else if len(got.Choices) != 1 || len(got.Choices[0].Text) != 500 {
				t.Errorf("completion %+v, want one choice of 500 bytes", got)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

// TestLogs checks that debug logs say what happened without the key or the
// prompt.
func TestLogs(t *testing.T) {
	t.Parallel()
	f := startFake(t, (&fakeLLM{}).push(reply{status: 500}))
	var buf testutil.LockedBuffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel)
	s := &sleeper{}
	c := newClient(t, testConfig(f.URL()), &llm.Options{Logger: log, Sleep: s.Sleep})
	if _, err := c.Complete(context.Background(), core.CompletionRequest{Messages: user("secret prompt")}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, bad := range []string{testKey, "secret prompt"} {
		if strings.Contains(out, bad) {
			t.Errorf("log holds %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{`"attempt":1`, `"prompt_tokens":10`, `"latency"`, `"model":"test-model"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}

// TestConcurrent runs calls in parallel while the client learns that the
// server ignores n (run with -race).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	f := startFake(t, &fakeLLM{ignoreN: true})
	c := newClient(t, testConfig(f.URL()), nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := c.Complete(context.Background(), core.CompletionRequest{Messages: user("hi"), N: 3})
			if err != nil || len(got.Choices) != 3 {
				t.Errorf("got %d choices, error %v; want 3, none", len(got.Choices), err)
			}
		})
	}
	wg.Wait()
}

// TestHTTPClientKept checks that a caller's transport still sends requests.
func TestHTTPClientKept(t *testing.T) {
	t.Parallel()
	f := startFake(t, &fakeLLM{})
	var calls int
	var mu sync.Mutex
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := newClient(t, testConfig(f.URL()), &llm.Options{HTTPClient: hc})
	if _, err := c.Complete(context.Background(), core.CompletionRequest{Messages: user("hi"), Temperature: ptr(0.0)}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 1 {
		t.Errorf("transport called %d times, want 1", calls)
	}
	if hc.Transport == nil {
		t.Error("caller's client was modified")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A 429 that outlasts the retries carries the endpoint's Retry-After, so
// that a server can pass it on to its own clients; one without the header
// carries none.
func TestRateLimitKeepsRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{{"7", 7 * time.Second}, {"", 0}} {
		f := startFake(t, (&fakeLLM{}).push(reply{status: 429, retryAfter: tc.header, body: `{"error":{"message":"slow down"}}`}))
		cfg := testConfig(f.URL())
		cfg.MaxRetries = 0
		_, err := newClient(t, cfg, nil).Complete(t.Context(), core.CompletionRequest{Messages: []core.Message{{Role: "user", Content: "hi"}}})
		var ra interface{ RetryAfter() time.Duration }
		if !errors.Is(err, core.ErrLLMRateLimited) || !errors.As(err, &ra) || ra.RetryAfter() != tc.want {
			t.Errorf("Retry-After %q: %v, want a rate limit error asking to wait %s", tc.header, err, tc.want)
		}
	}
}
