package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/server"
	"github.com/ponder-rlm/ponder/standard"
)

// A server over any core.Policy answers the OpenAI-compatible API; here the
// "LLM" is a function, and the model name picks self-consistency.
func Example() {
	policy := core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
		var out core.Completion
		for i := 0; i < req.N; i++ {
			out.Choices = append(out.Choices, core.Choice{Text: "2 + 2 = 4. The answer is \\boxed{4}."})
		}
		out.PromptTokens, out.CompletionTokens = 20, int64(10*req.N)
		return out, nil
	})
	engine := core.NewEngine(policy, standard.Registry(), &core.EngineOptions{Packs: standard.Packs})
	srv, err := server.New(server.Options{Engine: engine})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(
		`{"model": "self-consistency", "messages": [{"role": "user", "content": "What is 2 + 2?"}],
		  "ponder": {"params": {"k": 3}}}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct {
			Message struct{ Content string }
		}
		Usage struct {
			TotalTokens int `json:"total_tokens"`
		}
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	fmt.Println(out.Choices[0].Message.Content, out.Usage.TotalTokens)
	// Output: 4 90
}
