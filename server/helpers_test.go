package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/standard"
	"github.com/ponder-rlm/ponder/traces"
)

// env is a server under test: a real Server over a real HTTP listener,
// asking the LLM simulator.
type env struct {
	srv    *Server
	ts     *httptest.Server
	traces *traces.Store
	// tracesDir is where traces holds finished traces.
	tracesDir string
	simURL    string
}

type envOptions struct {
	sim    sim.Options
	noLLM  bool
	cfg    func(*config.Server)
	opts   func(*Options)
	calls  int64 // default budget of LLM calls
	policy core.Policy
	// retriever grounds solves (the engine's) and serves search_documents.
	retriever core.Retriever
}

func newEnv(t testing.TB, eo envOptions) *env {
	t.Helper()
	if eo.sim.DataDir == "" {
		eo.sim.DataDir = sim.NoData
	}
	e := &env{}
	var policy core.Policy
	var models func(context.Context) ([]string, error)
	if !eo.noLLM {
		if eo.policy != nil {
			policy = eo.policy
		} else {
			e.simURL = simtest.Start(t, eo.sim)
			c, err := llm.New(config.LLM{BaseURL: e.simURL, Model: "ponder-sim", Timeout: 30 * time.Second, N: "auto"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			policy = c
			models = c.Models
		}
	}
	e.tracesDir = t.TempDir()
	st, err := traces.Open(e.tracesDir, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.traces = st
	calls := eo.calls
	if calls == 0 {
		calls = 64
	}
	eng := core.NewEngine(policy, standard.Registry(), &core.EngineOptions{
		Packs: standard.Packs, OnStart: st.Start, OnEnd: st.Finish,
		DefaultLimits: core.Limits{LLMCalls: calls, WallTime: time.Minute}, Logger: zerolog.Nop(),
		Retriever: eo.retriever,
	})
	cfg := config.Default().Server
	cfg.RateLimit = 0
	if eo.cfg != nil {
		eo.cfg(&cfg)
	}
	o := Options{Engine: eng, Traces: st, Config: cfg, UpstreamModel: "ponder-sim", Models: models, Version: "test", Retriever: eo.retriever}
	if eo.opts != nil {
		eo.opts(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		e.ts.Close()
	})
	return e
}

// rpc is a raw MCP client over streamable HTTP: it shows exactly what
// goes over the wire.
type rpc struct {
	t       testing.TB
	url     string
	session string
	header  http.Header
}

func (e *env) rpc(t testing.TB) *rpc {
	t.Helper()
	return e.rpcWith(t, http.Header{})
}

// rpcWith is rpc sending header (a token) from the first request on.
func (e *env) rpcWith(t testing.TB, header http.Header) *rpc {
	t.Helper()
	c := &rpc{t: t, url: e.ts.URL + "/mcp", header: header}
	msgs, resp := c.post(map[string]any{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": map[string]any{
		"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "test", "version": "1"}}})
	if resp.StatusCode != 200 || len(msgs) != 1 || msgs[0]["result"] == nil {
		t.Fatalf("initialize: %d %v", resp.StatusCode, msgs)
	}
	c.session = resp.Header.Get("Mcp-Session-Id")
	c.post(map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	return c
}

func (c *rpc) request(body []byte) *http.Request {
	req, err := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	return req
}

// post sends one message and returns every message of the answer, in
// order (SSE events or the JSON body).
func (c *rpc) post(msg any) ([]map[string]any, *http.Response) {
	c.t.Helper()
	b, err := json.Marshal(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.postRaw(b)
}

func (c *rpc) postRaw(b []byte) ([]map[string]any, *http.Response) {
	c.t.Helper()
	resp, err := http.DefaultClient.Do(c.request(b))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	return readMessages(c.t, resp), resp
}

func readMessages(t testing.TB, resp *http.Response) []map[string]any {
	t.Helper()
	var out []map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var m map[string]any
				if err := json.Unmarshal([]byte(d), &m); err != nil {
					t.Fatalf("bad SSE data %q: %v", d, err)
				}
				out = append(out, m)
			}
		}
		return out
	}
	b, _ := io.ReadAll(resp.Body)
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return []map[string]any{{"_raw": string(b)}}
	}
	return append(out, m)
}

var nextID atomic.Int64

// call calls a tool and returns the messages of the answer.
func (c *rpc) call(name string, args any, meta map[string]any) []map[string]any {
	c.t.Helper()
	params := map[string]any{"name": name, "arguments": args}
	if meta != nil {
		params["_meta"] = meta
	}
	msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 100 + nextID.Add(1), "method": "tools/call", "params": params})
	return msgs
}

// result returns the last message's result, failing on a JSON-RPC error.
func result(t testing.TB, msgs []map[string]any) map[string]any {
	t.Helper()
	if len(msgs) == 0 {
		t.Fatal("no messages")
	}
	last := msgs[len(msgs)-1]
	r, ok := last["result"].(map[string]any)
	if !ok {
		t.Fatalf("no result: %v", last)
	}
	return r
}

func toolText(r map[string]any) string {
	content, _ := r["content"].([]any)
	var b strings.Builder
	for _, c := range content {
		if m, ok := c.(map[string]any); ok {
			s, _ := m["text"].(string)
			b.WriteString(s)
		}
	}
	return b.String()
}

func mustJSONString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
