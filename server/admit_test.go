package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/llm/sim"
)

// Beyond server.max_searches a request is told the server is busy and when
// to come back, over MCP and the OpenAI API alike (an OpenAI request with
// n > 1 is admitted whole or not at all); searches beyond the LLM slots
// queued without end before. A place is given back when its search ends.
func TestBusyServerSaysWhenToComeBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 100 * time.Millisecond}, cfg: func(c *config.Server) { c.MaxSearches = 2 }})
	c := e.rpc(t)
	// One slow search holds a place.
	msgs := c.streamCall(ctxTimeout(t, 30*time.Second), 51, "solve", slowSolve, "slow")
	if m := <-msgs; m["method"] != "notifications/progress" {
		t.Fatalf("want progress first, got %v", m)
	}

	// Two more searches do not fit in the one place left.
	resp, err := http.Post(e.ts.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"cot","n":2,"messages":[{"role":"user","content":"What is 2+2?"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" {
		t.Fatalf("n=2 with one place left: %d, Retry-After %q; want 503 with Retry-After 5", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if body := postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot","stream":true,"n":2,"messages":[{"role":"user","content":"What is 2+2?"}]}`, 503); !strings.Contains(body, `"code":"server_busy"`) ||
		!strings.Contains(body, "server.max_searches") {
		t.Fatalf("a stream is refused before it starts: %s", body)
	}
	// One fits.
	postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot","messages":[{"role":"user","content":"What is 2+2?"}]}`, 200)

	// With both places taken, an MCP solve is told so.
	second := c.streamCall(ctxTimeout(t, 30*time.Second), 52, "solve", slowSolve, "slow2")
	if m := <-second; m["method"] != "notifications/progress" {
		t.Fatalf("want progress first, got %v", m)
	}
	c.post(map[string]any{"jsonrpc": "2.0", "id": 53, "method": "logging/setLevel", "params": map[string]any{"level": "info"}})
	third := c.call("solve", map[string]any{"problem": "What is 2+2?"}, nil)
	r := result(t, third)
	if r["isError"] != true || !strings.Contains(toolText(r), "the server is busy") {
		t.Fatalf("a third search: %v", r)
	}
	for _, m := range third {
		// It never started: no "solve started" to a client following
		// the logs, with no "solve finished" after it.
		if m["method"] == "notifications/message" {
			t.Fatalf("a refused solve logged %v", m)
		}
	}
	for range msgs {
	}
	for range second {
	}
	// The places are given back.
	if r := result(t, c.call("solve", map[string]any{"problem": "What is 2+2?"}, nil)); r["isError"] == true {
		t.Fatalf("after the searches ended: %v", r)
	}
}

// A request for more choices than server.max_searches could ever run is
// the client's mistake, a 400 naming n: a 503 server_busy on an idle
// server sent OpenAI's SDKs back to retry what can never fit. The busy
// error counts its searches in English ("1 search").
func TestMoreChoicesThanTheServerRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.MaxSearches = 1 }})
	for _, stream := range []string{"false", "true"} {
		body := postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot","stream":`+stream+`,"n":2,"messages":[{"role":"user","content":"What is 2+2?"}]}`, 400)
		if !strings.Contains(body, `"param":"n"`) || !strings.Contains(body, "server.max_searches") || strings.Contains(body, "server_busy") {
			t.Fatalf("stream %s, n=2 with max_searches 1: %s", stream, body)
		}
	}
	postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot","messages":[{"role":"user","content":"What is 2+2?"}]}`, 200)
	release, err := e.srv.admit(1)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := e.srv.admit(1); err == nil || !strings.Contains(err.Error(), "running the 1 search server.max_searches") {
		t.Fatalf("busy with one place: %v", err)
	}
}
