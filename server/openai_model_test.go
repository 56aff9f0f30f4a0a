package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/llm"
)

// servesOneModel is an LLM endpoint as vLLM is: it lists the model it
// serves and answers 404 for any other, counting chat requests in calls.
func servesOneModel(t *testing.T, served string, calls *atomic.Int64) string {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			fmt.Fprintf(w, `{"object":"list","data":[{"id":%q,"object":"model"}]}`, served)
			return
		}
		calls.Add(1)
		var req struct {
			Model string `json:"model"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &req)
		if req.Model != served {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"object":"error","message":"The model %s does not exist.","type":"NotFoundError","param":null,"code":404}`, req.Model)
			return
		}
		fmt.Fprint(w, `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"finish_reason":"stop",`+
			`"message":{"role":"assistant","content":"2 + 2 = 4. The answer is 4."}}],"usage":{"prompt_tokens":5,"completion_tokens":5,"total_tokens":10}}`)
	}))
	t.Cleanup(up.Close)
	return up.URL + "/v1"
}

// A model name the LLM endpoint does not serve (a misspelt upstream model,
// alone or after a strategy) is the client's mistake: a 404 with OpenAI's
// model_not_found, which SDKs do not retry, not a 502 that sends the
// client to the operator (and that SDKs retried twice, each retry a whole
// search). The configured model failing with a 404 is still the
// operator's to fix.
func TestChatUnknownUpstreamModelIsNotFound(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	c, err := llm.New(config.LLM{BaseURL: servesOneModel(t, "served-model", &calls), Model: "served-model", Timeout: 5 * time.Second, N: "auto"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{policy: c, opts: func(o *Options) { o.UpstreamModel = "served-model"; o.Models = c.Models }})
	url := e.ts.URL + "/v1/chat/completions"
	for _, model := range []string{"servd-model", "cot:servd-model"} {
		for _, stream := range []bool{false, true} {
			req := fmt.Sprintf(`{"model":%q,"stream":%v,"messages":[{"role":"user","content":"What is 2+2?"}]}`, model, stream)
			want := http.StatusNotFound
			if stream {
				want = http.StatusOK
			}
			body := postJSON(t, url, req, want)
			if stream {
				// The choice's own failure, in its reasoning_content and
				// ponder.choices[0].error, says so too (they sent the
				// client to the operator, as for an endpoint down).
				for _, s := range []string{`"reasoning_content":"(search failed: model \"servd-model\" not found: the LLM endpoint answered 404`,
					`"error":"model \"servd-model\" not found: the LLM endpoint answered 404`} {
					if !strings.Contains(body, s) {
						t.Errorf("%s (stream): the choice does not say %s: %s", model, s, body)
					}
				}
				if strings.Contains(body, "cannot reach") || strings.Contains(body, "operator") {
					t.Errorf("%s (stream) says the endpoint cannot be reached: %s", model, body)
				}
				// The error event, which SDKs raise.
				_, body, _ = strings.Cut(body, `data: {"error"`)
				body, _, _ = strings.Cut(body, "\n")
			}
			for _, s := range []string{`"code":"model_not_found"`, `"param":"model"`, `"type":"invalid_request_error"`,
				`model \"servd-model\" not found`, "does not exist", "GET /v1/models"} {
				if !strings.Contains(body, s) {
					t.Errorf("%s (stream %v): no %s in %s", model, stream, s, body)
				}
			}
			if strings.Contains(body, "operator") || strings.Contains(body, "PONDER_LLM") {
				t.Errorf("%s (stream %v) sends the client to the operator: %s", model, stream, body)
			}
		}
	}

	calls.Store(0)
	cfg := openai.DefaultConfig("unused")
	cfg.BaseURL = e.ts.URL + "/v1"
	_, err = openai.NewClientWithConfig(cfg).CreateChatCompletion(ctxTimeout(t, 10*time.Second), openai.ChatCompletionRequest{
		Model: "servd-model", Messages: []openai.ChatCompletionMessage{{Role: "user", Content: "What is 2+2?"}}})
	var ae *openai.APIError
	if !errors.As(err, &ae) || ae.HTTPStatusCode != 404 || ae.Code != "model_not_found" {
		t.Fatalf("go-openai: %#v", err)
	}

	// The served model answers; a strategy with it too.
	for _, model := range []string{"served-model", "cot:served-model", "cot"} {
		body := postJSON(t, url, fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"What is 2+2?"}]}`, model), http.StatusOK)
		if !strings.Contains(body, `"content":"4"`) {
			t.Errorf("%s: %s", model, body)
		}
	}
}

// A name that is no model of this server is OpenAI's 404 model_not_found
// (code and param), for a chat completion and GET /v1/models/{id} alike.
func TestUnknownModelIsOpenAIsModelNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for where, body := range map[string]string{
		"chat completion": postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"mtcs:ponder-sim","messages":[{"role":"user","content":"hi"}]}`, http.StatusNotFound),
		"GET /v1/models/{id}": func() string {
			resp, err := http.Get(e.ts.URL + "/v1/models/mtcs:ponder-sim")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("GET /v1/models/{id}: %d %s", resp.StatusCode, b)
			}
			return string(b)
		}(),
	} {
		if !strings.Contains(body, `"code":"model_not_found"`) || !strings.Contains(body, `"param":"model"`) {
			t.Errorf("%s: %s", where, body)
		}
	}
}
