package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm/sim"
)

// mcp-go's stdio server keeps its one session in a package variable, so
// stdio servers in one process run one at a time.
var stdioMu sync.Mutex

type stdioClient struct {
	t     testing.TB
	in    *io.PipeWriter
	lines chan map[string]any
	done  chan error
}

func startStdio(t testing.TB, e *env) *stdioClient {
	t.Helper()
	return startStdioWith(t, e, map[string]any{})
}

// startStdioWith starts a stdio server for a client declaring caps.
func startStdioWith(t testing.TB, e *env, caps map[string]any) *stdioClient {
	t.Helper()
	stdioMu.Lock()
	t.Cleanup(stdioMu.Unlock)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &stdioClient{t: t, in: inW, lines: make(chan map[string]any, 1024), done: make(chan error, 1)}
	go func() {
		c.done <- e.srv.ServeStdio(context.Background(), inR, outW)
		outW.Close()
	}()
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"_raw": sc.Text()}
			}
			c.lines <- m
		}
	}()
	t.Cleanup(func() {
		inW.Close()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Error("stdio server did not stop after stdin closed")
		}
	})
	c.send(map[string]any{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": map[string]any{
		"protocolVersion": "2025-06-18", "capabilities": caps, "clientInfo": map[string]any{"name": "t", "version": "1"}}})
	c.until(0)
	c.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	return c
}

func (c *stdioClient) send(m any) {
	c.t.Helper()
	b, _ := json.Marshal(m)
	c.sendRaw(string(b))
}

func (c *stdioClient) sendRaw(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

// until reads messages up to the response with id, returning them all.
func (c *stdioClient) until(id float64) []map[string]any {
	c.t.Helper()
	var out []map[string]any
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("stdout closed before response %v; got %v", id, out)
			}
			out = append(out, m)
			if m["id"] == id && m["method"] == nil {
				return out
			}
		case <-timeout:
			c.t.Fatalf("no response %v; got %v", id, out)
		}
	}
}

func TestStdioProgressPrecedesResult(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := startStdio(t, e)
	for i := 1; i <= 20; i++ {
		c.send(map[string]any{"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": map[string]any{
			"name": "solve", "arguments": map[string]any{"problem": "What is 17 * 23?", "strategy": "self-consistency",
				"params": map[string]any{"k": 3}, "budget": map[string]any{"llm_calls": 3}},
			"_meta": map[string]any{"progressToken": i}}})
		msgs := c.until(float64(i))
		var progress []map[string]any
		for _, m := range msgs[:len(msgs)-1] {
			if m["method"] == "notifications/progress" {
				progress = append(progress, m["params"].(map[string]any))
			}
		}
		if len(progress) == 0 {
			t.Fatalf("call %d: no progress before the result: %v", i, msgs)
		}
		last := progress[len(progress)-1]
		if last["progress"] != float64(3) || last["total"] != float64(3) || last["progressToken"] != float64(i) {
			t.Fatalf("call %d: the final progress did not precede the result: %v", i, progress)
		}
		if r := msgs[len(msgs)-1]["result"].(map[string]any); r["isError"] == true {
			t.Fatalf("solve failed: %v", r)
		}
	}
}

func TestStdioCancelledRequestGetsNoResponse(t *testing.T) {
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 100 * time.Millisecond}})
	c := startStdio(t, e)
	c.send(map[string]any{"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": map[string]any{
		"name": "solve", "arguments": slowSolve, "_meta": map[string]any{"progressToken": "p5"}}})
	var seen []map[string]any
	for m := range c.lines {
		seen = append(seen, m)
		if m["method"] == "notifications/progress" {
			break
		}
	}
	c.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": map[string]any{"requestId": 5, "reason": "stop"}})
	waitFor(t, 5*time.Second, "the search to stop", func() bool {
		_, st, _ := latestTrace(t, e)
		e.srv.runMu.Lock()
		idle := e.srv.runN == 0
		e.srv.runMu.Unlock()
		return st == core.StopCancelled && idle
	})
	time.Sleep(100 * time.Millisecond)
	c.send(map[string]any{"jsonrpc": "2.0", "id": 6, "method": "ping"})
	for _, m := range append(seen, c.until(6)...) {
		if m["id"] == float64(5) {
			t.Fatalf("the cancelled request got a response: %v", m)
		}
	}
	if _, _, calls := latestTrace(t, e); calls >= 40 {
		t.Fatalf("the search ran on after cancellation: %d calls", calls)
	}
}

func TestStdioBadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := startStdio(t, e)
	c.sendRaw(`{"jsonrpc":"2.0","id":1,"method":`)
	m := <-c.lines
	if errObj, _ := m["error"].(map[string]any); errObj == nil || errObj["code"] != float64(-32700) {
		t.Fatalf("malformed JSON: %v", m)
	}
	c.send(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "no/such"})
	msgs := c.until(2)
	if errObj, _ := msgs[len(msgs)-1]["error"].(map[string]any); errObj == nil || errObj["code"] != float64(-32601) {
		t.Fatalf("unknown method: %v", msgs)
	}
	c.send(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": map[string]any{"name": "solve", "arguments": map[string]any{"problem": []int{1}}}})
	msgs = c.until(3)
	if r, _ := msgs[len(msgs)-1]["result"].(map[string]any); r == nil || r["isError"] != true {
		t.Fatalf("wrong argument type: %v", msgs)
	}
	c.send(map[string]any{"jsonrpc": "2.0", "id": 4, "method": "ping"})
	c.until(4)
}

func TestStdioEOFCancelsSearch(t *testing.T) {
	e := newEnv(t, envOptions{sim: sim.Options{Latency: 100 * time.Millisecond}})
	c := startStdio(t, e)
	c.send(map[string]any{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": map[string]any{
		"name": "solve", "arguments": slowSolve, "_meta": map[string]any{"progressToken": 9}}})
	for m := range c.lines {
		if m["method"] == "notifications/progress" {
			break
		}
	}
	c.in.Close() // the assistant quit
	select {
	case <-c.done:
		c.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("ServeStdio did not return after EOF")
	}
	waitFor(t, 5*time.Second, "the search to be cancelled", func() bool {
		_, st, _ := latestTrace(t, e)
		return st == core.StopCancelled
	})
}

// A solve cancelled while the client's model is answering its sampling
// requests tells the client to stop each of them (notifications/cancelled
// with the request's id): mcp-go only stops waiting, so the client's model
// went on generating, and its user on being asked, for nothing.
func TestStdioCancelledSolveCancelsItsSamplingRequests(t *testing.T) {
	e := newEnv(t, envOptions{noLLM: true, cfg: func(c *config.Server) { c.SamplingConcurrency = 3 }})
	c := startStdioWith(t, e, map[string]any{"sampling": map[string]any{}})
	c.send(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": map[string]any{
		"name": "solve", "arguments": map[string]any{"problem": "What is 17 * 23?", "strategy": "self-consistency",
			"params": map[string]any{"k": 6}}}})
	asked := map[string]bool{}
	read := func(what string, until func(m map[string]any) bool) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case m, ok := <-c.lines:
				if !ok {
					t.Fatalf("stdout closed waiting for %s", what)
				}
				if until(m) {
					return
				}
			case <-timeout:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	// The client's model is slow: it does not answer.
	read("3 sampling requests", func(m map[string]any) bool {
		if m["method"] == "sampling/createMessage" {
			asked[mustJSONString(m["id"])] = true
		}
		return len(asked) == 3
	})
	c.send(map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled", "params": map[string]any{"requestId": 7, "reason": "stop"}})
	cancelled := map[string]bool{}
	read("the sampling requests to be cancelled", func(m map[string]any) bool {
		if m["method"] == "sampling/createMessage" {
			t.Fatalf("a sampling request after the solve was cancelled: %v", m)
		}
		if m["method"] == "notifications/cancelled" {
			id := mustJSONString(m["params"].(map[string]any)["requestId"])
			if !asked[id] {
				t.Fatalf("cancelled request %s, not one of the sampling requests %v", id, asked)
			}
			cancelled[id] = true
		}
		return len(cancelled) == len(asked)
	})
	e.srv.sampleWatch.mu.Lock()
	defer e.srv.sampleWatch.mu.Unlock()
	if n := len(e.srv.sampleWatch.m); n != 0 {
		t.Errorf("%d sampling requests still watched", n)
	}
}
