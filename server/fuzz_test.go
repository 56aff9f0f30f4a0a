package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for request decoding. Their seeds (testdata/fuzz) run with
// every `go test`; fuzz them with
//
//	go test ./server -run '^$' -fuzz FuzzMCPMessage -fuzztime 30s
//	go test ./server -run '^$' -fuzz FuzzChatRequest -fuzztime 30s

// FuzzMCPMessage posts arbitrary bytes to /mcp, in an initialized session
// and outside one, and feeds them to the stdio transport's inspection:
// nothing may panic, every answer is an HTTP status Ponder means to send,
// and a JSON answer is a JSON-RPC message.
func FuzzMCPMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"solve","arguments":{"problem":"2+2?","strategy":"cot"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f, envOptions{noLLM: true})
	c := e.rpc(f)
	handler := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, session := range []string{c.session, ""} {
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if session != "" {
				req.Header.Set("Mcp-Session-Id", session)
				req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			switch rec.Code {
			case 200, 202, 400, 404, 413:
			default:
				t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
			}
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && rec.Body.Len() > 0 {
				var m map[string]any
				if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["jsonrpc"] != "2.0" {
					t.Fatalf("not a JSON-RPC answer for %q: %s", body, rec.Body.String())
				}
			}
		}
		tr := newStdioTransport(bytes.NewReader(nil), &bytes.Buffer{}, 1<<20)
		tr.scan(append(append([]byte{}, body...), '\n'))
		_ = tr.cancelledResponse(body)
		_ = e.srv.mcp.HandleMessage(context.Background(), body)
	})
}

// FuzzChatRequest decodes arbitrary chat completion bodies: nothing may
// panic and every rejection is a 4xx OpenAI error with a message.
func FuzzChatRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"cot","messages":[{"role":"user","content":"What is 2+2?"}]}`,
		`{"model":"self-consistency:gpt-4o-mini","n":3,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"hi"}]}],"ponder":{"params":{"k":8},"budget":{"llm_calls":16,"timeout_seconds":30},"session":"s1"}}`,
		`{"model":"qwen2.5:7b","messages":[{"role":"assistant","content":null},{"role":"user","content":"x"}]}`,
		`{"model":"cot","messages":[{"role":"user","content":"x"}],"ponder":{"budget":{"llm_calls":-1}}}`,
	} {
		f.Add([]byte(s))
	}
	e := newEnv(f, envOptions{noLLM: true})
	f.Fuzz(func(t *testing.T, body []byte) {
		tasks, _, _, aerr := e.srv.chatTasks(context.Background(), body)
		if aerr != nil {
			if aerr.status < 400 || aerr.status >= 500 || aerr.msg == "" || !utf8.ValidString(aerr.typ) {
				t.Fatalf("bad rejection %+v for %q", aerr, body)
			}
			return
		}
		if len(tasks) < 1 || len(tasks) > maxChoices {
			t.Fatalf("%d tasks for %q", len(tasks), body)
		}
		for _, task := range tasks {
			if strings.TrimSpace(task.Problem) == "" {
				t.Fatalf("empty problem accepted: %q", body)
			}
		}
	})
}
