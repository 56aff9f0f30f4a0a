package server

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/ponder-rlm/ponder/core"
)

// MCP sampling as the policy: when Ponder has no LLM endpoint and the
// client declared the sampling capability, every LLM call of a search
// becomes a sampling/createMessage request to the client, which answers
// with its own model (after asking its user, if it wants). The engine
// meters these calls like any other, so budgets hold; a per-client slot
// pool bounds how many are outstanding at once.

// maxSamplingConcurrency caps server.sampling_concurrency: mcp-go's HTTP
// session queues at most 10 server-to-client requests.
const maxSamplingConcurrency = 8

// samplingPolicy is a core.Policy that asks an MCP client.
type samplingPolicy struct {
	srv   *mcpserver.MCPServer
	slots chan struct{}
}

var _ core.Policy = (*samplingPolicy)(nil)

// samplingPolicy returns the policy for the client of ctx, or nil when the
// client does not support sampling.
func (s *Server) samplingPolicy(ctx context.Context) core.Policy {
	cs := mcpserver.ClientSessionFromContext(ctx)
	if cs == nil {
		return nil
	}
	info, ok := cs.(mcpserver.SessionWithClientInfo)
	if !ok || info.GetClientCapabilities().Sampling == nil {
		return nil
	}
	if _, ok := cs.(mcpserver.SessionWithSampling); !ok {
		return nil
	}
	// mcp-go queues at most 10 sampling requests per HTTP session.
	n := min(s.cfg.SamplingConcurrency, maxSamplingConcurrency)
	slots, _ := s.samplers.LoadOrStore(cs.SessionID(), make(chan struct{}, n))
	return &samplingPolicy{srv: s.mcp, slots: slots.(chan struct{})}
}

// Complete implements core.Policy: one sampling request per sample, at
// most len(slots) at a time for this client.
func (p *samplingPolicy) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	n := req.N
	if n < 1 {
		n = 1
	}
	cm := samplingRequest(req)
	prompt := estimateTokens(cm.SystemPrompt)
	for _, m := range req.Messages {
		prompt += estimateTokens(m.Content)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		out      core.Completion
		firstErr error
	)
	for i := 0; i < n; i++ {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return core.Completion{}, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-p.slots }()
			res, err := p.srv.RequestSampling(ctx, cm)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			text := samplingText(res.Content)
			out.Choices = append(out.Choices, core.Choice{Text: text, FinishReason: finishReason(res.StopReason)})
			out.PromptTokens += prompt
			out.CompletionTokens += estimateTokens(text)
			if out.Model == "" {
				out.Model = res.Model
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return core.Completion{}, err
	}
	if len(out.Choices) == 0 {
		return core.Completion{}, fmt.Errorf("%w: the MCP client's sampling failed: %v", core.ErrLLMUnavailable, firstErr)
	}
	return out, nil
}

// samplingRequest maps a completion request to sampling/createMessage:
// system messages become the system prompt, tool results user text.
func samplingRequest(req core.CompletionRequest) mcp.CreateMessageRequest {
	var sys []string
	var msgs []mcp.SamplingMessage
	for _, m := range req.Messages {
		switch m.Role {
		case "system":
			sys = append(sys, m.Content)
		case "assistant":
			msgs = append(msgs, mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent(m.Content)})
		case "tool":
			msgs = append(msgs, mcp.SamplingMessage{Role: mcp.RoleUser, Content: mcp.NewTextContent("Tool result:\n" + m.Content)})
		default:
			msgs = append(msgs, mcp.SamplingMessage{Role: mcp.RoleUser, Content: mcp.NewTextContent(m.Content)})
		}
	}
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = 1024
	}
	cm := mcp.CreateMessageRequest{CreateMessageParams: mcp.CreateMessageParams{
		Messages:       msgs,
		SystemPrompt:   strings.Join(sys, "\n\n"),
		IncludeContext: "none",
		MaxTokens:      maxTokens,
		StopSequences:  req.Stop,
		Metadata:       map[string]any{"ponder_purpose": req.Purpose},
	}}
	if req.Temperature != nil {
		cm.Temperature = *req.Temperature
	}
	if req.Model != "" && req.Model != "default" {
		cm.ModelPreferences = &mcp.ModelPreferences{Hints: []mcp.ModelHint{{Name: req.Model}}}
	}
	return cm
}

func samplingText(content any) string {
	switch c := content.(type) {
	case mcp.TextContent:
		return c.Text
	case *mcp.TextContent:
		return c.Text
	case []mcp.Content:
		var b strings.Builder
		for _, x := range c {
			b.WriteString(samplingText(x))
		}
		return b.String()
	case map[string]any:
		s, _ := c["text"].(string)
		return s
	}
	return ""
}

func finishReason(stop string) string {
	switch stop {
	case "maxTokens":
		return "length"
	case "stopSequence", "endTurn", "":
		return "stop"
	}
	return stop
}

// estimateTokens approximates a token count (about four characters per
// token): sampling results carry no usage.
func estimateTokens(s string) int64 {
	return int64((len(s) + 3) / 4)
}
