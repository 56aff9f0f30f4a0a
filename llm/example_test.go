package llm_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
)

func Example() {
	// A stand-in for vLLM, llama.cpp, Ollama or any OpenAI-compatible server.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"model":"qwen","choices":[{"index":0,"message":{"role":"assistant","content":"4"},"finish_reason":"stop"}],
			"usage":{"prompt_tokens":12,"completion_tokens":1}}`)
	}))
	defer srv.Close()

	c, err := llm.New(config.LLM{
		BaseURL:    srv.URL + "/v1",
		Model:      "qwen",
		Timeout:    time.Minute,
		MaxRetries: 2,
		N:          "auto",
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := c.Complete(context.Background(), core.CompletionRequest{
		Messages: []core.Message{{Role: "user", Content: "2+2? Answer with a number."}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.Choices[0].Text, out.PromptTokens, out.CompletionTokens)

	_, err = llm.New(config.LLM{}, nil)
	fmt.Println(err)
	// Output:
	// 4 12 1
	// llm base url is empty: set PONDER_LLM_BASE_URL or --llm-url (e.g. http://127.0.0.1:8000/v1)
}
