package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/tasks/taskstest"
	openai "github.com/sashabaranov/go-openai"
)

func client(url string) *openai.Client {
	cfg := openai.DefaultConfig("test")
	cfg.BaseURL = url
	return openai.NewClientWithConfig(cfg)
}

func toOpenAI(msgs []core.Message) []openai.ChatCompletionMessage {
	out := make([]openai.ChatCompletionMessage, len(msgs))
	for i, m := range msgs {
		out[i] = openai.ChatCompletionMessage{Role: m.Role, Content: m.Content}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// ask returns the n replies to msgs with the given request seed.
func ask(t testing.TB, c *openai.Client, msgs []core.Message, n, seed int) []string {
	t.Helper()
	resp, err := c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model: sim.DefaultModel, Messages: toOpenAI(msgs), N: n, Seed: ptr(seed), Temperature: 1,
	})
	if err != nil {
		t.Fatalf("chat completion: %v", err)
	}
	if len(resp.Choices) != n {
		t.Fatalf("got %d choices, want %d", len(resp.Choices), n)
	}
	out := make([]string, n)
	for i, ch := range resp.Choices {
		if ch.Index != i {
			t.Fatalf("choice %d has index %d", i, ch.Index)
		}
		out[i] = ch.Message.Content
	}
	return out
}

func loadItems(t testing.TB, name string, n int) []tasks.Item {
	t.Helper()
	return taskstest.Load(t, name, n)
}

func gsm8kFirst(t testing.TB) tasks.Item { return loadItems(t, "gsm8k", 1)[0] }

func TestDeterminism(t *testing.T) {
	t.Parallel()
	item := gsm8kFirst(t)
	msgs := tasks.GSM8K{}.SolvePrompt(item.Problem)
	a := client(simtest.Start(t, sim.Options{Seed: 1}))
	b := client(simtest.Start(t, sim.Options{Seed: 1}))
	c := client(simtest.Start(t, sim.Options{Seed: 2}))

	ra, rb := ask(t, a, msgs, 8, 7), ask(t, b, msgs, 8, 7)
	if d := cmp.Diff(ra, rb); d != "" {
		t.Errorf("same seeds, different replies (-a +b):\n%s", d)
	}
	if d := cmp.Diff(ra, ask(t, a, msgs, 8, 7)); d != "" {
		t.Errorf("same request twice, different replies:\n%s", d)
	}
	if cmp.Equal(ra, ask(t, c, msgs, 8, 7)) {
		t.Error("different Options.Seed, same replies")
	}
	if cmp.Equal(ra, ask(t, a, msgs, 8, 8)) {
		t.Error("different request seeds, same replies")
	}
	distinct := map[string]bool{}
	for _, r := range ra {
		distinct[r] = true
	}
	if len(distinct) < 2 {
		t.Errorf("8 samples at temperature 1 are all the same: %q", ra[0])
	}

	// Without a seed, repeated requests differ, in the same order on every
	// fresh server.
	unseeded := func(c *openai.Client) []string {
		var out []string
		for range 4 {
			resp, err := c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Messages: toOpenAI(msgs), Temperature: 1})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, resp.Choices[0].Message.Content)
		}
		return out
	}
	u1 := unseeded(client(simtest.Start(t, sim.Options{Seed: 1})))
	u2 := unseeded(client(simtest.Start(t, sim.Options{Seed: 1})))
	if d := cmp.Diff(u1, u2); d != "" {
		t.Errorf("unseeded sequences differ between fresh servers:\n%s", d)
	}
	if u1[0] == u1[1] && u1[1] == u1[2] && u1[2] == u1[3] {
		t.Error("unseeded repeated requests all got the same reply")
	}
}

// rawChat posts a JSON body and decodes the response.
func rawChat(t testing.TB, url string, body map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url+"/chat/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, out)
	}
	return out
}

func contents(resp map[string]any) []string {
	var out []string
	for _, c := range resp["choices"].([]any) {
		out = append(out, c.(map[string]any)["message"].(map[string]any)["content"].(string))
	}
	return out
}

// go-openai drops temperature 0 (omitempty), so greedy decoding is tested
// with raw requests.
func TestTemperatureZero(t *testing.T) {
	t.Parallel()
	url := simtest.Start(t, sim.Options{Seed: 3})
	msgs := []map[string]string{{"role": "system", "content": tasks.Game24System}, {"role": "user", "content": tasks.Game24{}.SolvePrompt("4 9 10 13")[1].Content}}
	r1 := contents(rawChat(t, url, map[string]any{"messages": msgs, "n": 4, "temperature": 0, "seed": 5}))
	r2 := contents(rawChat(t, url, map[string]any{"messages": msgs, "n": 2, "temperature": 0}))
	for _, r := range append(r1, r2...) {
		if r != r1[0] {
			t.Fatalf("temperature 0 replies differ: %q vs %q", r, r1[0])
		}
	}
	seed0 := contents(rawChat(t, url, map[string]any{"messages": msgs, "n": 1, "temperature": 0.7, "seed": 0}))
	if seed0[0] != r1[0] {
		t.Errorf("temperature 0 reply %q is not choice 0 of seed 0 %q", r1[0], seed0[0])
	}
}

func TestStreaming(t *testing.T) {
	t.Parallel()
	item := gsm8kFirst(t)
	c := client(simtest.Start(t, sim.Options{Seed: 1}))
	msgs := tasks.GSM8K{}.SolvePrompt(item.Problem)
	req := openai.ChatCompletionRequest{Messages: toOpenAI(msgs), N: 3, Seed: ptr(11), Temperature: 1}
	want, err := c.CreateChatCompletion(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	req.Stream = true
	req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	st, err := c.CreateChatCompletionStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := make([]string, 3)
	finished := make([]string, 3)
	var use *openai.Usage
	chunks := 0
	for {
		ch, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		chunks++
		if ch.Object != "chat.completion.chunk" {
			t.Errorf("chunk object %q", ch.Object)
		}
		if ch.Usage != nil {
			use = ch.Usage
		}
		for _, c := range ch.Choices {
			got[c.Index] += c.Delta.Content
			if c.FinishReason != "" {
				finished[c.Index] = string(c.FinishReason)
			}
		}
	}
	for i, ch := range want.Choices {
		if got[i] != ch.Message.Content {
			t.Errorf("choice %d streamed %q, want %q", i, got[i], ch.Message.Content)
		}
		if finished[i] != "stop" {
			t.Errorf("choice %d finish reason %q", i, finished[i])
		}
	}
	if chunks < 10 {
		t.Errorf("only %d chunks", chunks)
	}
	if use == nil || use.PromptTokens != want.Usage.PromptTokens || use.CompletionTokens != want.Usage.CompletionTokens {
		t.Errorf("stream usage %+v, want %+v", use, want.Usage)
	}
}

func TestUsageAndMaxTokens(t *testing.T) {
	t.Parallel()
	c := client(simtest.Start(t, sim.Options{Seed: 1}))
	msgs := tasks.Game24{}.SolvePrompt("4 9 10 13")
	resp, err := c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Messages: toOpenAI(msgs), N: 2, Seed: ptr(1), Temperature: 1})
	if err != nil {
		t.Fatal(err)
	}
	wantPrompt := 3
	for _, m := range msgs {
		wantPrompt += 3 + sim.CountTokens(m.Content)
	}
	wantCompletion := 0
	for _, ch := range resp.Choices {
		wantCompletion += sim.CountTokens(ch.Message.Content)
		if ch.FinishReason != openai.FinishReasonStop {
			t.Errorf("finish reason %q", ch.FinishReason)
		}
	}
	if u := resp.Usage; u.PromptTokens != wantPrompt || u.CompletionTokens != wantCompletion || u.TotalTokens != wantPrompt+wantCompletion {
		t.Errorf("usage %+v, want prompt %d completion %d", u, wantPrompt, wantCompletion)
	}

	resp, err = c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Messages: toOpenAI(msgs), N: 2, Seed: ptr(1), Temperature: 1, MaxTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range resp.Choices {
		if ch.FinishReason != openai.FinishReasonLength || sim.CountTokens(ch.Message.Content) != 5 {
			t.Errorf("max_tokens 5: finish %q, %d tokens in %q", ch.FinishReason, sim.CountTokens(ch.Message.Content), ch.Message.Content)
		}
	}
	if resp.Usage.CompletionTokens != 10 {
		t.Errorf("completion tokens %d, want 10", resp.Usage.CompletionTokens)
	}

	resp, err = c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Messages: toOpenAI(msgs), Seed: ptr(1), Temperature: 1, Stop: []string{"\n"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(resp.Choices[0].Message.Content, "\n") {
		t.Errorf("stop \\n: reply %q", resp.Choices[0].Message.Content)
	}
}

func TestCountTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want int
	}{
		{"", 0},
		{"Natalia sold clips", 5},
		{"a b c", 3},
		{"  lead and trail  ", 4},
		{"supercalifragilistic", 5},
	}
	for _, tt := range tests {
		if got := sim.CountTokens(tt.text); got != tt.want {
			t.Errorf("CountTokens(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
}

func TestLogprobs(t *testing.T) {
	t.Parallel()
	c := client(simtest.Start(t, sim.Options{Seed: 1}))
	msgs := tasks.Game24{}.SolvePrompt("4 9 10 13")
	resp, err := c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Messages: toOpenAI(msgs), N: 2, Seed: ptr(1), Temperature: 1, LogProbs: true, TopLogProbs: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range resp.Choices {
		if ch.LogProbs == nil {
			t.Fatal("no logprobs")
		}
		var text strings.Builder
		sum := 0.0
		for _, lp := range ch.LogProbs.Content {
			text.WriteString(lp.Token)
			if lp.LogProb > 0 || len(lp.TopLogProbs) != 2 {
				t.Errorf("token %q: logprob %v, %d top logprobs", lp.Token, lp.LogProb, len(lp.TopLogProbs))
			}
			sum += lp.LogProb
		}
		if text.String() != ch.Message.Content {
			t.Errorf("tokens %q do not make the content %q", text.String(), ch.Message.Content)
		}
		if n := len(ch.LogProbs.Content); sum >= 0 || sum < -float64(n)*5 {
			t.Errorf("logprob sum %v over %d tokens", sum, n)
		}
	}
}

func cosine(a, b []float32) float64 {
	var d float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
	}
	return d
}

func TestEmbeddings(t *testing.T) {
	t.Parallel()
	url := simtest.Start(t, sim.Options{Seed: 1})
	c := client(url)
	in := []string{
		"The cat sat on the mat.",
		"A cat was sitting on the mat.",
		"Quarterly revenue grew by twelve percent.",
	}
	resp, err := c.CreateEmbeddings(context.Background(), openai.EmbeddingRequest{Input: in, Model: sim.DefaultEmbeddingModel})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 3 {
		t.Fatalf("%d embeddings", len(resp.Data))
	}
	for i, e := range resp.Data {
		if e.Index != i || len(e.Embedding) != sim.DefaultEmbeddingDim {
			t.Errorf("embedding %d: index %d, dim %d", i, e.Index, len(e.Embedding))
		}
		if n := cosine(e.Embedding, e.Embedding); math.Abs(n-1) > 1e-5 {
			t.Errorf("embedding %d has norm² %v", i, n)
		}
	}
	near, far := cosine(resp.Data[0].Embedding, resp.Data[1].Embedding), cosine(resp.Data[0].Embedding, resp.Data[2].Embedding)
	if near < 0.5 || far > 0.2 {
		t.Errorf("similar texts %.3f, different texts %.3f", near, far)
	}
	if got := sim.Embed(in[0], sim.DefaultEmbeddingDim); !cmp.Equal(got, resp.Data[0].Embedding) {
		t.Error("Embed differs from the endpoint")
	}

	resp, err = c.CreateEmbeddings(context.Background(), openai.EmbeddingRequest{Input: in[0], Dimensions: 64, EncodingFormat: openai.EmbeddingEncodingFormatBase64})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data[0].Embedding) != 64 || !cmp.Equal(resp.Data[0].Embedding, sim.Embed(in[0], 64)) {
		t.Errorf("base64, 64 dimensions: got %d dims", len(resp.Data[0].Embedding))
	}
	if resp.Usage.PromptTokens != sim.CountTokens(in[0]) {
		t.Errorf("usage %+v", resp.Usage)
	}
}

// OpenAI writes a token's bytes as a list of integers (the Python and
// Node SDKs type them so); encoding/json would write []byte as base64.
func TestLogprobBytesAreIntegers(t *testing.T) {
	t.Parallel()
	url := simtest.Start(t, sim.Options{Seed: 1})
	resp := rawChat(t, url, map[string]any{"messages": []map[string]string{{"role": "user", "content": "Größe 7 + 5?"}},
		"logprobs": true, "top_logprobs": 2, "seed": 1})
	content := resp["choices"].([]any)[0].(map[string]any)["logprobs"].(map[string]any)["content"].([]any)
	if len(content) == 0 {
		t.Fatal("no logprobs")
	}
	check := func(lp map[string]any) {
		var got []byte
		list, ok := lp["bytes"].([]any)
		for _, v := range list {
			got = append(got, byte(v.(float64)))
		}
		if tok := lp["token"].(string); !ok || string(got) != tok {
			t.Errorf("token %q: bytes %#v, want its UTF-8 bytes as integers", tok, lp["bytes"])
		}
	}
	for _, c := range content {
		lp := c.(map[string]any)
		check(lp)
		for _, top := range lp["top_logprobs"].([]any) {
			check(top.(map[string]any))
		}
	}
}

// A prompt full of numbers costs about one allocation per number: each used
// to be parsed, summed, formatted and normalised (40 allocations each; a
// 30 MB prompt of numbers took 80 s and 3.6 GB).
func TestManyNumbersAreCheap(t *testing.T) { // not parallel: AllocsPerRun counts every goroutine's
	srv, err := sim.New(sim.Options{Seed: 1, DataDir: sim.NoData})
	if err != nil {
		t.Fatal(err)
	}
	const numbers = 20000
	for _, text := range []string{strings.Repeat("12 ", numbers), strings.Repeat("12 13 ", numbers/2), "x " + strings.Repeat("1.5 ", numbers)} {
		body := `{"messages": [{"role": "user", "content": "` + text + `"}], "seed": 1}`
		code := 0
		allocs := testing.AllocsPerRun(1, func() {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body)))
			code = w.Code
		})
		if code != 200 || allocs > 5*numbers {
			t.Errorf("%.10s…: status %d, %.0f allocations for %d numbers", text, code, allocs, numbers)
		}
	}
}

func TestModelsAndHealth(t *testing.T) {
	t.Parallel()
	url := simtest.Start(t, sim.Options{Models: []string{"a", "b"}})
	models, err := client(url).ListModels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range models.Models {
		ids = append(ids, m.ID)
	}
	if d := cmp.Diff([]string{"a", "b"}, ids); d != "" {
		t.Errorf("models (-want +got):\n%s", d)
	}
	if m, err := client(url).GetModel(context.Background(), "b"); err != nil || m.ID != "b" || m.Object != "model" {
		t.Errorf("GET /v1/models/b: %+v, %v", m, err)
	}
	var apiErr *openai.APIError
	if _, err := client(url).GetModel(context.Background(), "c"); !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Errorf("GET /v1/models/c: %v, want a 404 model_not_found", err)
	}
	resp, err := http.Get(strings.TrimSuffix(url, "/v1") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	resp, err = http.Get(url + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

// TestBadRequests: what OpenAI refuses, the simulator refuses with OpenAI's
// error shape, naming the field at fault and, for JSON of the wrong type,
// the JSON types (not Go's); and it refuses what it cannot honour (a tool
// call it must make, a JSON response) rather than answer in text.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	url := simtest.Start(t, sim.Options{})
	const hi = `"messages": [{"role": "user", "content": "hi"}]`
	const tool = `"tools": [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]`
	tests := []struct {
		body   string
		status int
		param  any    // nil: none
		want   string // in the message
	}{
		{`{`, 400, nil, "invalid JSON body"},
		{`[1]`, 400, nil, "must be a JSON object, got an array"},
		{`{` + hi + `}{}`, 400, nil, "trailing data"},
		{`{` + hi + `} x`, 400, nil, "invalid JSON body"},
		{`{"messages": []}`, 400, "messages", "empty"},
		{`{` + hi + `, "n": 0}`, 400, "n", "1..128"},
		{`{` + hi + `, "n": "3"}`, 400, "n", `"n" must be an integer, got a string`},
		{`{` + hi + `, "n": 2.5}`, 400, "n", `"n" must be an integer, got 2.5`},
		{`{` + hi + `, "stream": 1}`, 400, "stream", `"stream" must be a boolean, got a number`},
		{`{"messages": [{"role": ["user"], "content": "hi"}]}`, 400, "messages.role", "must be a string, got an array"},
		{`{` + hi + `, "temperature": 3}`, 400, "temperature", "[0, 2]"},
		{`{` + hi + `, "logprobs": true, "top_logprobs": 21}`, 400, "top_logprobs", "0..20"}, // made up per token: 10^6 was gigabytes
		{`{` + hi + `, "logprobs": true, "top_logprobs": -1}`, 400, "top_logprobs", "0..20"},
		{`{` + hi + `, "top_logprobs": 2}`, 400, "top_logprobs", "logprobs"},
		{`{` + hi + `, "max_tokens": -5}`, 400, "max_tokens", "Expected a value >= 1, but got -5"},
		{`{` + hi + `, "max_tokens": 0}`, 400, "max_tokens", ">= 1"},
		{`{` + hi + `, "max_completion_tokens": -1}`, 400, "max_completion_tokens", ">= 1"},
		{`{"messages": [{"content": "hi"}]}`, 400, "messages[0].role", "Missing required parameter"},
		{`{"messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]}`, 400, "messages[1].role", "Invalid value: 'robot'"},
		{`{` + hi + `, "tools": [{"type": "function"}]}`, 400, "tools[0]", "function"},
		{`{` + hi + `, ` + tool + `, "tool_choice": "required"}`, 400, "tool_choice", "cannot honour"},
		{`{` + hi + `, ` + tool + `, "tool_choice": {"type": "function", "function": {"name": "calc"}}}`, 400, "tool_choice", "cannot honour"},
		{`{` + hi + `, ` + tool + `, "tool_choice": "sometimes"}`, 400, "tool_choice", "Invalid value"},
		{`{` + hi + `, "tool_choice": "auto"}`, 400, "tool_choice", "only allowed when 'tools'"},
		{`{` + hi + `, "functions": [{"name": "calc"}], "function_call": {"name": "calc"}}`, 400, "function_call", "cannot honour"},
		{`{` + hi + `, "response_format": {"type": "json_object"}}`, 400, "response_format", "plain text"},
		{`{` + hi + `, "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}`, 400, "response_format", "plain text"},
		{`{` + hi + `, "response_format": {"type": "yaml"}}`, 400, "response_format.type", "Invalid value"},
		{`{` + hi + `, "pad": "` + strings.Repeat("x", 33<<20) + `"}`, 413, nil, "over 32 MiB"},
		// What it can honour is answered: tools it may leave alone, text.
		{`{` + hi + `, ` + tool + `}`, 200, nil, ""},
		{`{` + hi + `, ` + tool + `, "tool_choice": "auto"}`, 200, nil, ""},
		{`{` + hi + `, ` + tool + `, "tool_choice": "none"}`, 200, nil, ""},
		{`{` + hi + `, "response_format": {"type": "text"}, "max_tokens": 1}`, 200, nil, ""},
		{`{"messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]} ` + "\n", 200, nil, ""},
	}
	for _, tc := range tests {
		name := tc.body[:min(len(tc.body), 90)]
		resp, err := http.Post(url+"/chat/completions", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
				Param   any    `json:"param"`
			} `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if tc.status == 200 {
			if resp.StatusCode != 200 || err != nil {
				t.Errorf("%s: status %d, error %+v (%v), want an answer", name, resp.StatusCode, e.Error, err)
			}
			continue
		}
		if resp.StatusCode != tc.status || err != nil || e.Error.Type != "invalid_request_error" || e.Error.Param != tc.param ||
			!strings.Contains(e.Error.Message, tc.want) {
			t.Errorf("%s: status %d, error %+v (%v), want %d naming param %v, saying %q", name, resp.StatusCode, e.Error, err,
				tc.status, tc.param, tc.want)
		}
		if strings.Contains(e.Error.Message, "Go ") || strings.Contains(e.Error.Message, "chatRequest") {
			t.Errorf("%s: %q names Go's types", name, e.Error.Message)
		}
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	msgs := toOpenAI(tasks.Game24{}.SolvePrompt("4 9 10 13"))
	tests := []struct {
		name  string
		opts  sim.Options
		check func(t *testing.T, err error)
	}{
		{"429", sim.Options{Rate429: 1}, func(t *testing.T, err error) {
			var ae *openai.APIError
			if !errors.As(err, &ae) || ae.HTTPStatusCode != 429 {
				t.Errorf("err = %v, want a 429 APIError", err)
			}
		}},
		{"500", sim.Options{Rate500: 1}, func(t *testing.T, err error) {
			var ae *openai.APIError
			if !errors.As(err, &ae) || ae.HTTPStatusCode != 500 {
				t.Errorf("err = %v, want a 500 APIError", err)
			}
		}},
		{"timeout", sim.Options{RateTimeout: 1}, func(t *testing.T, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want deadline exceeded", err)
			}
		}},
		{"malformed", sim.Options{RateMalformed: 1}, func(t *testing.T, err error) {
			var ae *openai.APIError
			if err == nil || errors.As(err, &ae) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want a decoding error", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, url := simtest.StartServer(t, tt.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := client(url).CreateChatCompletion(ctx, openai.ChatCompletionRequest{Messages: msgs})
			tt.check(t, err)
			ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err = client(url).CreateEmbeddings(ctx, openai.EmbeddingRequest{Input: "x"})
			tt.check(t, err)
			if got := srv.Stats().Faults[tt.name]; got != 2 {
				t.Errorf("Stats().Faults[%s] = %d, want 2", tt.name, got)
			}
		})
	}

	t.Run("retry-after", func(t *testing.T) {
		t.Parallel()
		url := simtest.Start(t, sim.Options{Rate429: 1})
		seen := map[string]bool{}
		for range 20 {
			resp, err := http.Post(url+"/chat/completions", "application/json", strings.NewReader(`{"messages": [{"role": "user", "content": "hi"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			seen[resp.Header.Get("Retry-After")] = true
		}
		if d := cmp.Diff(map[string]bool{"0": true, "1": true}, seen); d != "" {
			t.Errorf("Retry-After values (-want +got):\n%s", d)
		}
	})

	t.Run("mixed rates", func(t *testing.T) {
		t.Parallel()
		srv, url := simtest.StartServer(t, sim.Options{Seed: 9, Rate429: 0.2, Rate500: 0.2, RateMalformed: 0.2})
		c := client(url)
		ok := 0
		const n = 200
		for range n {
			if _, err := c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Messages: msgs}); err == nil {
				ok++
			}
		}
		st := srv.Stats()
		if st.Requests != n || int64(ok)+st.Faults["429"]+st.Faults["500"]+st.Faults["malformed"] != n {
			t.Errorf("ok %d, stats %+v", ok, st)
		}
		for _, f := range []string{"429", "500", "malformed"} {
			if c := st.Faults[f]; c < 20 || c > 65 {
				t.Errorf("%s: %d of %d requests, want about 40", f, c, n)
			}
		}
	})
}

func TestLatency(t *testing.T) {
	t.Parallel()
	c := client(simtest.Start(t, sim.Options{Latency: 50 * time.Millisecond, Jitter: 20 * time.Millisecond}))
	start := time.Now()
	if _, err := c.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "2 plus 3?"}}}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered in %v, want at least 50ms", d)
	}
}

// TestServe checks that Serve returns when its context ends, even with a
// request hanging on an injected timeout.
func TestServe(t *testing.T) {
	t.Parallel()
	srv, err := sim.New(sim.Options{RateTimeout: 1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	reqDone := make(chan error, 1)
	go func() {
		_, err := client("http://"+ln.Addr().String()+"/v1").CreateChatCompletion(context.Background(),
			openai.ChatCompletionRequest{Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "hi"}}})
		reqDone <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if err := <-reqDone; err == nil {
		t.Error("hanging request succeeded")
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	for _, o := range []sim.Options{{Rate429: 1.5}, {Rate429: 0.6, Rate500: 0.6}, {Latency: -1}, {EmbeddingDim: -3},
		{RateTimeout: math.NaN()}, {Accuracy: math.NaN()}, {Spread: math.NaN()}} {
		if _, err := sim.New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	srv, err := sim.New(sim.Options{Accuracy: -1, DataDir: sim.NoData})
	if err != nil {
		t.Fatal(err)
	}
	if o := srv.Options(); o.Accuracy != 0 || o.StepAccuracy != sim.DefaultStepAccuracy || o.EmbeddingDim != 384 {
		t.Errorf("options %+v", o)
	}
}
