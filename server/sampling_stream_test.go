package server

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Over HTTP, sampling requests go out on the session's GET stream alone. A
// client that never opens it (an mcp-go client without continuous
// listening) had its solve wait out the deadline (10 minutes by default)
// and read "stopped: timeout, 1 LLM call, 0 tokens" with no word of why; it
// is told at once to open the stream. One that opens it late, within the
// wait, is served.
func TestSamplingWithoutTheGETStreamSaysToOpenIt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		listen bool
	}{{"no GET stream", false}, {"GET stream", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{noLLM: true})
			e.srv.samplingStreamWait = 300 * time.Millisecond
			var asked atomic.Int32
			handler := samplingFunc(func(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
				asked.Add(1)
				return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant,
					Content: mcp.NewTextContent("17 * 23 = 391. The answer is \\boxed{391}.")}, Model: "client-model", StopReason: "endTurn"}, nil
			})
			ctx := ctxTimeout(t, 60*time.Second)
			var opts []transport.StreamableHTTPCOption
			if tc.listen {
				opts = append(opts, transport.WithContinuousListening())
			}
			tr, err := transport.NewStreamableHTTP(e.ts.URL+"/mcp", opts...)
			if err != nil {
				t.Fatal(err)
			}
			c := client.NewClient(tr, client.WithSamplingHandler(handler))
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			init := mcp.InitializeRequest{}
			init.Params.ProtocolVersion = "2025-06-18"
			init.Params.ClientInfo = mcp.Implementation{Name: "sampler", Version: "1"}
			init.Params.Capabilities.Sampling = &mcp.SamplingCapability{}
			if _, err := c.Initialize(ctx, init); err != nil {
				t.Fatal(err)
			}
			req := mcp.CallToolRequest{}
			req.Params.Name = "solve"
			// The deadline the solve waited out: the test fails on it
			// rather than waiting 10 minutes.
			req.Params.Arguments = map[string]any{"problem": "What is 17 * 23?", "strategy": "cot",
				"budget": map[string]any{"timeout_seconds": 5}}
			res, err := c.CallTool(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			var msg strings.Builder
			for _, ct := range res.Content {
				if tc, ok := ct.(mcp.TextContent); ok {
					msg.WriteString(tc.Text)
				}
			}
			sc, _ := res.StructuredContent.(map[string]any)
			if tc.listen {
				if res.IsError || sc["answer"] != "391" || asked.Load() == 0 {
					t.Fatalf("solve with the GET stream open: isError %v, %q", res.IsError, msg.String())
				}
				return
			}
			if !res.IsError || sc["stopped_reason"] != "error" || !strings.Contains(msg.String(), "no event stream open") ||
				!strings.Contains(msg.String(), "GET /mcp stream") {
				t.Fatalf("solve without the GET stream: isError %v, %v, %q", res.IsError, sc["stopped_reason"], msg.String())
			}
			if asked.Load() != 0 {
				t.Errorf("the client was asked %d times", asked.Load())
			}
		})
	}
}
