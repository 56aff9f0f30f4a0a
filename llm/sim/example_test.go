package sim_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/tasks"
	openai "github.com/sashabaranov/go-openai"
)

// A real OpenAI client asks the simulator for four Game of 24 solutions;
// with Accuracy 0.5 about half of them check.
func Example() {
	srv, err := sim.New(sim.Options{Seed: 1, Accuracy: 0.5, DataDir: sim.NoData})
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()

	cfg := openai.DefaultConfig("unused")
	cfg.BaseURL = ts.URL + "/v1"
	client := openai.NewClientWithConfig(cfg)

	pack := tasks.Game24{}
	var msgs []openai.ChatCompletionMessage
	for _, m := range pack.SolvePrompt("4 9 10 13") {
		msgs = append(msgs, openai.ChatCompletionMessage{Role: m.Role, Content: m.Content})
	}
	seed := 7
	resp, err := client.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Messages: msgs, N: 4, Seed: &seed, Temperature: 1,
	})
	if err != nil {
		panic(err)
	}
	for _, ch := range resp.Choices {
		expr, _ := pack.ExtractAnswer(ch.Message.Content)
		ok, _ := pack.Verify("4 9 10 13", expr, "")
		fmt.Printf("%-22s correct: %v\n", expr, ok)
	}
	// Output:
	// ((10 + 9) - 13) * 4    correct: true
	// (10 - 4) * (13 - 9)    correct: true
	// (13 - 10) / (4 / 9)    correct: false
	// ((10 + 9) * 13) - 4    correct: false
}

func ExampleEmbed() {
	a := sim.Embed("The cat sat on the mat.", 384)
	b := sim.Embed("A cat sat on a mat.", 384)
	c := sim.Embed("Revenue grew by twelve percent.", 384)
	dot := func(x, y []float32) (d float32) {
		for i := range x {
			d += x[i] * y[i]
		}
		return d
	}
	fmt.Printf("similar %.2f, unrelated %.2f\n", dot(a, b), dot(a, c))
	// Output:
	// similar 0.53, unrelated -0.04
}
