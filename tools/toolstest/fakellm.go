// Package toolstest has test helpers for tool-using strategies: an
// OpenAI-compatible fake LLM whose replies a test scripts from the
// conversation it receives, including native tool calls.
//
//	url := toolstest.StartLLM(t, func(r toolstest.Request) toolstest.Reply {
//		if r.LastToolResult() == "" {
//			return toolstest.Call("calc", `{"expression":"2^10"}`)
//		}
//		return toolstest.Text(`\boxed{` + r.LastToolResult() + `}`)
//	})
package toolstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Message is one message of a request.
type Message struct {
	Role       string `json:"role"`
	Content    string `json:"content"`
	ToolCallID string `json:"tool_call_id,omitempty"`
	ToolCalls  []struct {
		ID       string `json:"id"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls,omitempty"`
}

// Request is a chat completion request as the fake received it.
type Request struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`
	N        int       `json:"n"`
	Stop     []string  `json:"stop"`
	Tools    []struct {
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	// Index is the choice being written (0 .. N-1).
	Index int `json:"-"`
}

// ToolNames lists the tools the request offers natively.
func (r Request) ToolNames() []string {
	var out []string
	for _, t := range r.Tools {
		out = append(out, t.Function.Name)
	}
	return out
}

// System is the system message.
func (r Request) System() string {
	for _, m := range r.Messages {
		if m.Role == "system" {
			return m.Content
		}
	}
	return ""
}

// Last is the last message.
func (r Request) Last() Message {
	if len(r.Messages) == 0 {
		return Message{}
	}
	return r.Messages[len(r.Messages)-1]
}

// LastToolResult is the content of the last tool message, or of the last
// "Observation: " user message (text protocol), after the last assistant
// message; empty when there is none.
func (r Request) LastToolResult() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		m := r.Messages[i]
		switch {
		case m.Role == "assistant":
			return ""
		case m.Role == "tool":
			return m.Content
		case m.Role == "user" && strings.HasPrefix(m.Content, "Observation: "):
			return strings.TrimPrefix(m.Content, "Observation: ")
		}
	}
	return ""
}

// Turns counts the assistant messages so far.
func (r Request) Turns() int {
	n := 0
	for _, m := range r.Messages {
		if m.Role == "assistant" {
			n++
		}
	}
	return n
}

// Reply is what the fake answers: text, tool calls, or an HTTP error.
type Reply struct {
	Text   string
	Calls  []ToolCall
	Status int // non-zero: answer with this HTTP status and an error body
}

// ToolCall is a native tool call of a reply.
type ToolCall struct{ Name, Arguments string }

// Text replies with text.
func Text(s string) Reply { return Reply{Text: s} }

// Call replies with one native tool call.
func Call(name, args string) Reply { return Reply{Calls: []ToolCall{{Name: name, Arguments: args}}} }

// LLM is a running fake.
type LLM struct {
	URL string
	mu  sync.Mutex
	got []Request
}

// Requests returns the requests received so far.
func (l *LLM) Requests() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Request(nil), l.got...)
}

// StartLLM runs the fake until the test ends and returns its base URL
// (ending in /v1).
func StartLLM(t testing.TB, script func(Request) Reply) string { return Start(t, script).URL }

// Start is StartLLM returning the fake, for its Requests.
func Start(t testing.TB, script func(Request) Reply) *LLM {
	t.Helper()
	l := &LLM{}
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
			http.NotFound(w, r)
			return
		}
		var req Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		l.mu.Lock()
		l.got = append(l.got, req)
		l.mu.Unlock()
		n := max(req.N, 1)
		var choices []map[string]any
		for i := 0; i < n; i++ {
			req.Index = i
			rep := script(req)
			if rep.Status != 0 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(rep.Status)
				fmt.Fprintf(w, `{"error":{"message":%q,"type":"invalid_request_error"}}`, "scripted error "+rep.Text)
				return
			}
			msg := map[string]any{"role": "assistant", "content": rep.Text}
			finish := "stop"
			if len(rep.Calls) > 0 {
				var tcs []any
				for _, c := range rep.Calls {
					l.mu.Lock()
					calls++
					id := fmt.Sprintf("call_%d", calls)
					l.mu.Unlock()
					tcs = append(tcs, map[string]any{"id": id, "type": "function",
						"function": map[string]any{"name": c.Name, "arguments": c.Arguments}})
				}
				msg["tool_calls"] = tcs
				finish = "tool_calls"
			}
			choices = append(choices, map[string]any{"index": i, "message": msg, "finish_reason": finish})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": req.Model, "choices": choices,
			"usage": map[string]any{"prompt_tokens": 20, "completion_tokens": 5 * n, "total_tokens": 20 + 5*n},
		})
	}))
	t.Cleanup(srv.Close)
	l.URL = srv.URL + "/v1"
	return l
}
