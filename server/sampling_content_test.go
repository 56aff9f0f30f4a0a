package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// A client whose model answers a sampling request with an image gets an
// error that says so, not "no answer" after its calls were spent.
func TestSamplingAnswerWithoutTextIsAnError(t *testing.T) {
	t.Parallel()
	res, msg := solveBySampling(t, func(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant,
			Content: mcp.NewImageContent("iVBORw0KGgo=", "image/png")}, Model: "client-model", StopReason: "endTurn"}, nil
	})
	if !res.IsError || !strings.Contains(msg, "answered with image content, not text") {
		t.Fatalf("solve whose sampling answers were images: isError %v, %q", res.IsError, msg)
	}
}

// A client whose model refuses a sampling request (its user said no) is
// told that its sampling failed, over HTTP too: not that the server cannot
// reach its LLM endpoint and to contact its operator (the server has no
// endpoint; the model that failed is the client's).
func TestRefusedSamplingIsNotBlamedOnTheOperator(t *testing.T) {
	t.Parallel()
	res, msg := solveBySampling(t, func(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		return nil, errors.New("the user denied the request")
	})
	sc, _ := res.StructuredContent.(map[string]any)
	for _, text := range []string{msg, fmt.Sprint(sc["error"])} {
		if !res.IsError || !strings.Contains(text, "the MCP client's sampling failed") ||
			strings.Contains(text, "operator") || strings.Contains(text, "LLM endpoint") {
			t.Fatalf("solve whose sampling request the client refused: isError %v, %q", res.IsError, text)
		}
	}
}

// solveBySampling solves a problem with cot on a server without an LLM,
// whose sampling requests the MCP client answers with handler, and returns
// the result and its text.
func solveBySampling(t *testing.T, handler samplingFunc) (*mcp.CallToolResult, string) {
	t.Helper()
	e := newEnv(t, envOptions{noLLM: true})
	ctx := ctxTimeout(t, 30*time.Second)
	c := samplingClient(ctx, t, e, handler)
	req := mcp.CallToolRequest{}
	req.Params.Name = "solve"
	req.Params.Arguments = map[string]any{"problem": "What is 17 * 23?", "strategy": "cot"}
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
	return res, msg.String()
}
