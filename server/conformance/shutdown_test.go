package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
)

// TestSIGTERMCancelsRunningSearches stops a server with a solve (MCP) and
// a streamed chat completion (OpenAI API) running: both searches are
// cancelled at once, both clients still get the best answer found so far,
// and the process exits cleanly.
func TestSIGTERMCancelsRunningSearches(t *testing.T) {
	// Each search needs 1000 calls at 300 ms, 8 at a time (over 30 s), so
	// both are still running when the signal comes, however slow the machine.
	simURL := simtest.Start(t, sim.Options{DataDir: sim.NoData, Latency: 300 * time.Millisecond})
	p := startServe(t, map[string]string{"PONDER_LLM_BASE_URL": simURL, "PONDER_LLM_MODEL": "ponder-sim", "PONDER_LLM_CONCURRENCY": "8"})
	s := newHTTPSession(t, p.url("/mcp"))

	slow := map[string]any{"strategy": "self-consistency", "params": map[string]any{"k": 1000}, "budget": map[string]any{"llm_calls": 1000}}
	args := map[string]any{"problem": "What is 17 * 23?"}
	for k, v := range slow {
		args[k] = v
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": "solve", "arguments": args, "_meta": map[string]any{"progressToken": "t"}}})
	mcpDone := make(chan string, 1)
	mcpStarted := make(chan struct{})
	go func() {
		resp := s.post(t, body)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 16<<20)
		var last string
		once := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), "notifications/progress") && !once {
				once = true
				close(mcpStarted)
			}
			if strings.HasPrefix(sc.Text(), "data: ") {
				last = sc.Text()
			}
		}
		mcpDone <- last
	}()

	chatDone := make(chan string, 1)
	chatStarted := make(chan struct{})
	go func() {
		resp, err := http.Post(p.url("/v1/chat/completions"), "application/json", strings.NewReader(
			`{"model":"self-consistency","stream":true,"messages":[{"role":"user","content":"What is 19 * 21?"}],"ponder":{"params":{"k":1000},"budget":{"llm_calls":1000}}}`))
		if err != nil {
			chatDone <- err.Error()
			return
		}
		defer resp.Body.Close()
		var all bytes.Buffer
		sc := bufio.NewScanner(resp.Body)
		once := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), "reasoning_content") && !once {
				once = true
				close(chatStarted)
			}
			all.WriteString(sc.Text() + "\n")
		}
		chatDone <- all.String()
	}()

	for i, ch := range []chan struct{}{mcpStarted, chatStarted} {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("search %d (0: MCP, 1: chat) did not start; server log:\n%s", i, tail(p.stderr.String(), 2000))
		}
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, tail(p.stderr.String(), 3000))
		}
		p.done <- nil // stop() in the cleanup sees it exited
	case <-time.After(15 * time.Second):
		t.Fatal("ponder serve did not exit after SIGTERM")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	last := <-mcpDone
	if !strings.Contains(last, `"id":1`) || !strings.Contains(last, `"stopped_reason":"cancelled"`) || !strings.Contains(last, `"answer":`) {
		t.Errorf("the MCP client did not get the best answer so far: %.500s", last)
	}
	chat := <-chatDone
	if !strings.Contains(chat, `"stopped_reason":"cancelled"`) || !strings.Contains(chat, "data: [DONE]") {
		t.Errorf("the streamed completion did not end properly: %.1000s", tail(chat, 1000))
	}
	if !strings.Contains(p.stderr.String(), `"stopped":"cancelled"`) || !strings.Contains(p.stderr.String(), "ponder stopped") {
		t.Errorf("server log:\n%s", tail(p.stderr.String(), 3000))
	}
}
