package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"runtime"
	"strings"
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
	if msgs := c.until(0); msgs[len(msgs)-1]["result"] == nil {
		t.Fatalf("initialize: %v", msgs)
	}
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

// A message over server.max_body_bytes is refused as HTTP refuses such a
// body: -32600 naming the setting, with the request's id wherever it stands
// in the line, else id null. The server answers the next line.
func TestStdioOverLongMessage(t *testing.T) {
	const limit = 64 << 10
	big := strings.Repeat("x", 3*limit)
	tests := []struct {
		name, line string
		wantID     any
	}{
		{"id before the long params", `{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"solve","arguments":{"problem":"` + big + `"}}}`, float64(41)},
		{"string id", `{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"solve","arguments":{"problem":"` + big + `"}}}`, "a-1"},
		{"id after the long params", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"solve","arguments":{"problem":"` + big + `"}},"id":42}`, float64(42)},
		{"not JSON", big, nil},
		{"long notification", `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"` + big + `"}}`, nil},
	}
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.MaxBodyBytes = limit }})
	c := startStdio(t, e)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			c.sendRaw(tt.line)
			select {
			case m := <-c.lines:
				errObj, _ := m["error"].(map[string]any)
				if errObj == nil || errObj["code"] != float64(-32600) || !strings.Contains(errObj["message"].(string), "server.max_body_bytes") {
					t.Fatalf("want a -32600 error naming server.max_body_bytes, got %v", m)
				}
				if id, ok := m["id"]; !ok || id != tt.wantID {
					t.Fatalf("id: want %v, got %v (present %v)", tt.wantID, id, ok)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no answer to the over-long line")
			}
			c.send(map[string]any{"jsonrpc": "2.0", "id": 100 + i, "method": "ping"})
			if msgs := c.until(float64(100 + i)); len(msgs) != 1 {
				t.Fatalf("more than the ping's answer: %v", msgs)
			}
		})
	}
	// A line exactly at the limit is served.
	c.t = t
	req := `{"jsonrpc":"2.0","id":7,"method":"ping","params":{"_meta":{"pad":"`
	tail := `"}}}`
	c.sendRaw(req + strings.Repeat("y", limit-len(req)-len(tail)) + tail)
	if msgs := c.until(7); msgs[0]["error"] != nil {
		t.Fatalf("a message at the limit was refused: %v", msgs)
	}
}

// A 64 MiB line is discarded as it arrives: what the server allocates
// while reading it stays near the 1 MiB cap (mcp-go's ReadString alone held
// the whole line, twice over).
func TestStdioOverLongMessageMemory(t *testing.T) {
	const limit, size = 1 << 20, 64 << 20
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.MaxBodyBytes = limit }})
	c := startStdio(t, e)
	chunk := bytes.Repeat([]byte("z"), 256<<10)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := io.WriteString(c.in, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"solve","arguments":{"problem":"`); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < size; n += len(chunk) {
		if _, err := c.in.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	c.sendRaw(`"}}}`)
	msgs := c.until(5)
	runtime.ReadMemStats(&after)
	if errObj, _ := msgs[len(msgs)-1]["error"].(map[string]any); errObj == nil || errObj["code"] != float64(-32600) {
		t.Fatalf("want -32600, got %v", msgs)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("reading a %d MiB line allocated %.1f MiB (cap %d MiB)", size>>20, float64(alloc)/(1<<20), limit>>20)
	if alloc > 16<<20 {
		t.Fatalf("reading a %d MiB line allocated %d MiB; want it bounded by the %d MiB cap", size>>20, alloc>>20, limit>>20)
	}
	c.send(map[string]any{"jsonrpc": "2.0", "id": 6, "method": "ping"})
	c.until(6)
}

// A client's answer to a sampling request over the cap cannot be answered
// itself; the sampling call fails at once with the setting's name instead
// of waiting for an answer that never comes (here the solve's deadline is a
// minute away). The id is recovered wherever it stands in the answer, as a
// number or as a string.
func TestStdioOverLongSamplingResponse(t *testing.T) {
	const limit = 64 << 10
	long := `"result":{"role":"assistant","model":"m","content":{"type":"text","text":"` + strings.Repeat("w", 2*limit) + `"}}`
	tests := []struct {
		name   string
		answer func(id string) string
	}{
		{"id first", func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,` + long + `}` }},
		{"string id first", func(id string) string { return `{"jsonrpc":"2.0","id":"` + id + `",` + long + `}` }},
		{"id after the result", func(id string) string { return `{"jsonrpc":"2.0",` + long + `,"id":` + id + `}` }},
		{"string id after the result", func(id string) string { return `{"jsonrpc":"2.0",` + long + `, "id" : "` + id + `" }` }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{noLLM: true, cfg: func(c *config.Server) { c.MaxBodyBytes = limit }})
			c := startStdioWith(t, e, map[string]any{"sampling": map[string]any{}})
			c.send(map[string]any{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": map[string]any{
				"name": "solve", "arguments": map[string]any{"problem": "What is 17 * 23?", "strategy": "cot"}}})
			var msgs []map[string]any
			timeout := time.After(20 * time.Second)
			for {
				var m map[string]any
				select {
				case m = <-c.lines:
				case <-timeout:
					t.Fatalf("no answer to the solve; got %v", msgs)
				}
				msgs = append(msgs, m)
				if m["method"] == "sampling/createMessage" {
					c.sendRaw(tt.answer(mustJSONString(m["id"])))
					continue
				}
				if m["id"] == float64(3) {
					break
				}
			}
			b, _ := json.Marshal(msgs[len(msgs)-1])
			t.Logf("the solve's answer: %.600s", b)
			if !strings.Contains(string(b), "server.max_body_bytes") {
				t.Fatalf("the solve's answer does not name server.max_body_bytes: %s", b)
			}
		})
	}
}

// memberScan finds a message's top-level id and kind wherever they stand,
// however its bytes are split, and nothing nested or inside a string.
func TestMemberScan(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := []struct {
		name, msg, id string
		response      bool
	}{
		{"request", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"x":"abc"}}`, `7`, false},
		{"string id first", `{"id":"s","jsonrpc":"2.0","method":"x","params":{}}`, `"s"`, false},
		{"negative id", `{"jsonrpc":"2.0","id":-3,"result":{"content":"abc"}}`, `-3`, true},
		{"error response", `{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"abc"}}`, `2`, true},
		{"id after a long result", `{"jsonrpc":"2.0","result":{"c":[{"text":"` + long + `"}],"id":9},"id":12}`, `12`, true},
		{"string id after a long result, spaced", "{ \"result\" : {\"text\":\"" + long + "\"} ,\n \"id\" : \"a\\\"b\" }", `"a\"b"`, true},
		{"id after the long params", `{"jsonrpc":"2.0","method":"m","params":{"p":"` + long + `"},"id":42}`, `42`, false},
		{"escaped quotes and braces in strings", `{"method":"m","params":{"p":"\"}{,\"id\":1\\"},"id":"q"}`, `"q"`, false},
		{"escaped member name", `{"result":1,"\u0069d":5}`, `5`, true},
		{"nested id only", `{"jsonrpc":"2.0","params":{"id":1},"method":"x"}`, ``, false},
		{"object id", `{"jsonrpc":"2.0","id":{"a":1},"method":"x","params":""}`, ``, false},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"x","params":""}`, ``, false},
		{"over-long id", `{"result":1,"id":"` + long + `"}`, ``, true},
		{"cut short in a name", `{"jsonrpc":"2.0","i`, ``, false},
		{"cut short in the id", `{"result":{},"id":12`, ``, true},
		{"array", `[{"jsonrpc":"2.0","id":1}]`, ``, false},
		{"not JSON", `xxxxxxxx"id":1`, ``, false},
		{"text after the object", `{"method":"m"} {"id":3}`, ``, false},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 7, len(tt.msg)} {
			var s memberScan
			for b := []byte(tt.msg); len(b) > 0; {
				n := min(chunk, len(b))
				s.feed(b[:n])
				b = b[n:]
			}
			id, resp := s.outcome()
			if string(id) != tt.id || resp != tt.response {
				t.Errorf("%s, in chunks of %d: got id %s, response %v; want %s, %v", tt.name, chunk, id, resp, tt.id, tt.response)
			}
		}
	}
}

// Sampling requests have no timeout of their own (a client may ask its
// user to approve each one): a client that never answers holds the solve
// until the solve's own deadline (budget.timeout_seconds, else
// search.timeout), which then ends it and cancels each outstanding request.
func TestStdioUnansweredSamplingEndsAtTheSolveDeadline(t *testing.T) {
	e := newEnv(t, envOptions{noLLM: true})
	c := startStdioWith(t, e, map[string]any{"sampling": map[string]any{}})
	start := time.Now()
	c.send(map[string]any{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": map[string]any{
		"name": "solve", "arguments": map[string]any{"problem": "What is 17 * 23?", "strategy": "cot",
			"budget": map[string]any{"timeout_seconds": 1}}}})
	var asked, cancelled []string
	msgs := c.until(4)
	elapsed := time.Since(start)
	for _, m := range msgs {
		switch m["method"] {
		case "sampling/createMessage":
			asked = append(asked, mustJSONString(m["id"]))
		case "notifications/cancelled":
			cancelled = append(cancelled, mustJSONString(m["params"].(map[string]any)["requestId"]))
		}
	}
	if len(asked) == 0 {
		t.Fatalf("no sampling request: %v", msgs)
	}
	if elapsed < time.Second {
		t.Fatalf("the solve ended after %s, before its deadline: %v", elapsed, msgs)
	}
	res, _ := msgs[len(msgs)-1]["result"].(map[string]any)
	sc, _ := res["structuredContent"].(map[string]any)
	if sc["stopped_reason"] != "timeout" {
		t.Fatalf("want stopped_reason timeout, got %v", msgs[len(msgs)-1])
	}
	// The cancellations may follow the result: wait for them.
	for len(cancelled) < len(asked) {
		select {
		case m := <-c.lines:
			if m["method"] == "notifications/cancelled" {
				cancelled = append(cancelled, mustJSONString(m["params"].(map[string]any)["requestId"]))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("sampling requests %v, cancelled only %v", asked, cancelled)
		}
	}
}

// With server.sampling_timeout set, a client that does not answer a
// sampling request fails that LLM call when it passes, naming the setting,
// and is told to stop (notifications/cancelled), though the solve's own
// deadline (a minute here) is far off.
func TestStdioSamplingTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	e := newEnv(t, envOptions{noLLM: true, cfg: func(c *config.Server) { c.SamplingTimeout = timeout }})
	c := startStdioWith(t, e, map[string]any{"sampling": map[string]any{}})
	c.send(map[string]any{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": map[string]any{
		"name": "solve", "arguments": map[string]any{"problem": "What is 17 * 23?", "strategy": "cot"}}})
	asked, cancelled := map[string]bool{}, map[string]string{}
	var last map[string]any
	timeoutC := time.After(20 * time.Second)
	for last == nil || len(cancelled) < len(asked) {
		select {
		case m, ok := <-c.lines:
			if !ok {
				t.Fatal("stdout closed")
			}
			switch {
			case m["method"] == "sampling/createMessage":
				asked[mustJSONString(m["id"])] = true // never answered
			case m["method"] == "notifications/cancelled":
				p := m["params"].(map[string]any)
				cancelled[mustJSONString(p["requestId"])], _ = p["reason"].(string)
			case m["id"] == float64(4):
				last = m
			}
		case <-timeoutC:
			t.Fatalf("asked %v, cancelled %v, answer %v: the solve still waits on its client", asked, cancelled, last)
		}
	}
	if len(asked) == 0 {
		t.Fatalf("no sampling request; answer %v", last)
	}
	for id := range asked {
		if !strings.Contains(cancelled[id], "server.sampling_timeout") {
			t.Errorf("sampling request %s: cancelled with reason %q, want one naming server.sampling_timeout", id, cancelled[id])
		}
	}
	b, _ := json.Marshal(last)
	if !strings.Contains(string(b), "did not answer the sampling request within 200ms (server.sampling_timeout)") {
		t.Fatalf("the solve's answer does not say the sampling request timed out: %s", b)
	}
}
