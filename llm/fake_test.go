package llm_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// fakeLLM is an OpenAI-compatible server (POST /v1/chat/completions, GET
// /v1/models) with scripted replies. Requests take the next reply of the
// script; when it is empty they get the default reply, shaped by the
// fake's flags.
type fakeLLM struct {
	srv *httptest.Server

	// Flags for default replies, set before the first request.
	key      string // when set, requests must carry it as a bearer token
	ignoreN  bool   // answer one choice whatever n says
	rejectN  bool   // answer 400 to n > 1
	logprobs bool   // send logprobs when asked
	models   []string

	// ignoreNModel and rejectNModel do as ignoreN and rejectN for
	// requests naming that model only.
	ignoreNModel, rejectNModel string

	mu     sync.Mutex
	script []reply
	reqs   []fakeRequest
}

// reply is one scripted answer.
type reply struct {
	status     int    // HTTP status; 0 means a normal completion
	retryAfter string // Retry-After header
	body       string // raw body sent as is (with status, or 200)
	hang       bool   // answer only after the client gave up (or 10s)
	cut        bool   // promise more body than is sent, then close
	mediaType  string // Content-Type of body; "" means application/json
	toolCall   *openai.ToolCall
}

// fakeRequest is a chat request the fake received.
type fakeRequest struct {
	auth string
	raw  map[string]any
	req  openai.ChatCompletionRequest
}

func startFake(t *testing.T, f *fakeLLM) *fakeLLM {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", f.chat)
	mux.HandleFunc("GET /v1/models", f.listModels)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the base URL to give the client (with /v1).
func (f *fakeLLM) URL() string { return f.srv.URL + "/v1" }

// push appends replies to the script.
func (f *fakeLLM) push(r ...reply) *fakeLLM {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = append(f.script, r...)
	return f
}

// requests returns the chat requests received so far.
func (f *fakeLLM) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.reqs...)
}

func (f *fakeLLM) authorized(w http.ResponseWriter, r *http.Request) bool {
	if f.key == "" || r.Header.Get("Authorization") == "Bearer "+f.key {
		return true
	}
	writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
		"message": "Incorrect API key provided: " + r.Header.Get("Authorization"), "type": "invalid_request_error"}})
	return false
}

func (f *fakeLLM) chat(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	fr := fakeRequest{auth: r.Header.Get("Authorization")}
	_ = json.Unmarshal(b, &fr.raw)
	if err := json.Unmarshal(b, &fr.req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"message": err.Error()}})
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, fr)
	var rep reply
	if len(f.script) > 0 {
		rep, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()

	if !f.authorized(w, r) {
		return
	}
	if rep.hang {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	}
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	if rep.body != "" || rep.status != 0 {
		w.Header().Set("Content-Type", cmp.Or(rep.mediaType, "application/json"))
		if rep.cut {
			w.Header().Set("Content-Length", fmt.Sprint(len(rep.body)+100))
		}
		w.WriteHeader(max(rep.status, http.StatusOK))
		io.WriteString(w, rep.body)
		return
	}
	req := fr.req
	n := max(req.N, 1)
	if (f.rejectN || (f.rejectNModel != "" && req.Model == f.rejectNModel)) && n > 1 {
		writeJSON(w, http.StatusBadRequest, map[string]any{"object": "error",
			"message": "n > 1 is not supported", "param": "n", "code": 400})
		return
	}
	if f.ignoreN || (f.ignoreNModel != "" && req.Model == f.ignoreNModel) {
		n = 1
	}
	seed := "none"
	if req.Seed != nil {
		seed = fmt.Sprint(*req.Seed)
	}
	choices := make([]map[string]any, n)
	for i := range choices {
		msg := map[string]any{"role": "assistant", "content": fmt.Sprintf("seed %s sample %d", seed, i)}
		finish := "stop"
		if rep.toolCall != nil {
			msg = map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{rep.toolCall}}
			finish = "tool_calls"
		}
		ch := map[string]any{"index": i, "message": msg, "finish_reason": finish}
		if req.LogProbs && f.logprobs {
			ch["logprobs"] = map[string]any{"content": []any{
				map[string]any{"token": "seed", "logprob": -0.5, "top_logprobs": []any{}},
				map[string]any{"token": " 1", "logprob": -0.25, "top_logprobs": []any{}},
			}}
		}
		choices[i] = ch
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": req.Model,
		"choices": choices,
		"usage":   map[string]any{"prompt_tokens": 10, "completion_tokens": 3 * n, "total_tokens": 10 + 3*n},
	})
}

func (f *fakeLLM) listModels(w http.ResponseWriter, r *http.Request) {
	if !f.authorized(w, r) {
		return
	}
	data := []any{}
	for _, m := range f.models {
		data = append(data, map[string]any{"id": m, "object": "model", "owned_by": "fake"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func openaiToolCall(id, name, args string) openai.ToolCall {
	return openai.ToolCall{ID: id, Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: name, Arguments: args}}
}
