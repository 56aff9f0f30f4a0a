package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/config"
)

// protocolErrorCases are requests whose fault is the client's: each must
// get the JSON-RPC code the spec gives it, not -32603 (internal error),
// which mcp-go sends for every error a prompt or resource handler returns.
var protocolErrorCases = []struct {
	name     string
	method   string
	params   any
	code     float64
	contains string
	uri      string // data.uri, for resource not found
}{
	{"prompt without its required argument", "prompts/get",
		map[string]any{"name": "solve_step_by_step", "arguments": map[string]any{}}, -32602, "problem", ""},
	{"prompt with an unknown strategy", "prompts/get",
		map[string]any{"name": "solve_step_by_step", "arguments": map[string]any{"problem": "2+2?", "strategy": "nope"}}, -32602, "nope", ""},
	{"documents prompt without a question", "prompts/get",
		map[string]any{"name": "answer_from_documents", "arguments": map[string]any{"collection": "docs"}}, -32602, "question", ""},
	{"unknown prompt", "prompts/get", map[string]any{"name": "no_such_prompt"}, -32602, "no_such_prompt", ""},
	// A misspelt argument was ignored, and the prompt made without it.
	{"prompt with an argument it does not take", "prompts/get",
		map[string]any{"name": "solve_step_by_step", "arguments": map[string]any{"problem": "2+2?", "strategi": "cot"}}, -32602, `no argument "strategi"`, ""},
	{"trace that does not exist", "resources/read",
		map[string]any{"uri": "ponder://traces/no-such-trace"}, -32002, "ponder://traces/no-such-trace", "ponder://traces/no-such-trace"},
	{"trace id that is no id", "resources/read",
		map[string]any{"uri": "ponder://traces/../../etc"}, -32002, "ponder://traces/../../etc", "ponder://traces/../../etc"},
	{"unknown resource", "resources/read", map[string]any{"uri": "ponder://nope"}, -32002, "ponder://nope", "ponder://nope"},
	// mcp-go answers params it cannot decode with -32600 (invalid
	// request) and Go type names.
	{"prompt argument that is not a string", "prompts/get",
		map[string]any{"name": "solve_step_by_step", "arguments": map[string]any{"problem": 42, "strategy": "cot"}}, -32602, `argument "problem" must be a string, got a number`, ""},
	{"prompt arguments that are no object", "prompts/get",
		map[string]any{"name": "solve_step_by_step", "arguments": []any{"2+2?"}}, -32602, "params.arguments must be an object", ""},
	{"prompt name that is not a string", "prompts/get", map[string]any{"name": 7}, -32602, "params.name must be a string", ""},
	{"prompt without a name", "prompts/get", map[string]any{}, -32602, "params.name is required", ""},
	{"params that are no object", "prompts/get", 5, -32602, "params must be an object", ""},
	{"log level that is not a string", "logging/setLevel", map[string]any{"level": 3}, -32602, "params.level must be a string", ""},
	// mcp-go looked the missing URI up and answered resource not found.
	{"resources/read without a uri", "resources/read", map[string]any{}, -32602, "params.uri is required", ""},
	{"resources/read without params", "resources/read", nil, -32602, "params.uri is required", ""},
	{"resources/read with a number for uri", "resources/read", map[string]any{"uri": 3}, -32602, "params.uri must be a string", ""},
	// Ponder's lists come whole: it never issues a cursor. One that is
	// not base64 got "illegal base64 data at input byte 0"; one that is
	// got the items listed after its text, here none.
	{"cursor that is not base64", "tools/list", map[string]any{"cursor": "not a cursor!"}, -32602, "invalid cursor \"not a cursor!\"", ""},
	{"cursor this server never issued", "tools/list", map[string]any{"cursor": "c29sdmU="}, -32602, "list again without a cursor", ""},
	{"prompts cursor", "prompts/list", map[string]any{"cursor": "eA=="}, -32602, "prompts/list: invalid cursor", ""},
	{"resources cursor", "resources/list", map[string]any{"cursor": "eA=="}, -32602, "resources/list: invalid cursor", ""},
	{"templates cursor", "resources/templates/list", map[string]any{"cursor": "eA=="}, -32602, "resources/templates/list: invalid cursor", ""},
	{"cursor that is not a string", "tools/list", map[string]any{"cursor": 5}, -32602, "params.cursor must be a string", ""},
}

func checkProtocolError(t *testing.T, msgs []map[string]any, code float64, contains, uri string) {
	t.Helper()
	if len(msgs) == 0 {
		t.Fatal("no response")
	}
	errObj, _ := msgs[len(msgs)-1]["error"].(map[string]any)
	if errObj == nil || errObj["code"] != code {
		t.Fatalf("want JSON-RPC error %v, got %v", code, msgs)
	}
	if msg, _ := errObj["message"].(string); !strings.Contains(msg, contains) {
		t.Errorf("the message should name %q: %q", contains, msg)
	}
	if uri != "" {
		data, _ := errObj["data"].(map[string]any)
		if data["uri"] != uri {
			t.Errorf("data.uri: %v, want %q", errObj["data"], uri)
		}
	}
}

func TestProtocolErrorCodesHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	for i, tc := range protocolErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			msgs, resp := c.post(map[string]any{"jsonrpc": "2.0", "id": 500 + i, "method": tc.method, "params": tc.params})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			checkProtocolError(t, msgs, tc.code, tc.contains, tc.uri)
			if msgs[0]["id"] != float64(500+i) {
				t.Errorf("the error answers id %v, want %d", msgs[0]["id"], 500+i)
			}
		})
	}
	// A string id, and a request that succeeds after the failures.
	msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": "p-1", "method": "prompts/get",
		"params": map[string]any{"name": "solve_step_by_step", "arguments": map[string]any{}}})
	checkProtocolError(t, msgs, -32602, "problem", "")
	if msgs[0]["id"] != "p-1" {
		t.Errorf("string id came back as %v", msgs[0]["id"])
	}
	msgs, _ = c.post(map[string]any{"jsonrpc": "2.0", "id": 600, "method": "prompts/get",
		"params": map[string]any{"name": "solve_step_by_step", "arguments": map[string]any{"problem": "2+2?"}}})
	if r := result(t, msgs); r["messages"] == nil {
		t.Fatalf("a good prompts/get after the errors: %v", msgs)
	}
}

func TestProtocolErrorCodesStdio(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := startStdio(t, e)
	for i, tc := range protocolErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			id := float64(500 + i)
			c.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": tc.method, "params": tc.params})
			checkProtocolError(t, c.until(id), tc.code, tc.contains, tc.uri)
		})
	}
	c.send(map[string]any{"jsonrpc": "2.0", "id": 600, "method": "ping"})
	c.until(600)
}

// Protocol 2026-07-28 has no sessions and gives resource not found
// -32602, like every other bad parameter.
func TestProtocolErrorCodesStateless(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := &rpc{t: t, url: e.ts.URL + "/mcp", header: http.Header{}}
	c.header.Set("Mcp-Protocol-Version", "2026-07-28")
	meta := map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "t", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": map[string]any{}}
	for _, tc := range []struct {
		method, name string
		params       map[string]any
		contains     string
	}{
		{"resources/read", "ponder://traces/no-such-trace", map[string]any{"uri": "ponder://traces/no-such-trace"}, "no-such-trace"},
		{"prompts/get", "solve_step_by_step", map[string]any{"name": "solve_step_by_step"}, "problem"},
	} {
		tc.params["_meta"] = meta
		c.header.Set("Mcp-Method", tc.method)
		c.header.Set("Mcp-Name", tc.name)
		msgs, resp := c.post(map[string]any{"jsonrpc": "2.0", "id": 1, "method": tc.method, "params": tc.params})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d %v", tc.method, resp.StatusCode, msgs)
		}
		checkProtocolError(t, msgs, -32602, tc.contains, "")
	}
}

// The streamable HTTP transport: a request without Mcp-Session-Id (other
// than initialize) is a bad request, 400; an unknown or ended session is
// 404, the sign to initialize again. mcp-go answered 404 to both, so a
// client that lost its header re-initialized in a loop; and 200 to a
// DELETE naming no session or an unknown one.
func TestMCPSessionHeaderStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	live := e.rpc(t)
	ended := e.rpc(t)
	del := func(session string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodDelete, e.ts.URL+"/mcp", nil)
		if err != nil {
			t.Fatal(err)
		}
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := del(ended.session); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE of a live session: %d", resp.StatusCode)
	}
	post := func(session string, msg map[string]any) ([]map[string]any, *http.Response) {
		c := &rpc{t: t, url: e.ts.URL + "/mcp", session: session, header: http.Header{}}
		return c.post(msg)
	}
	ping := map[string]any{"jsonrpc": "2.0", "id": 1, "method": "ping"}
	for _, tc := range []struct {
		name    string
		session string
		msg     map[string]any
		status  int
		says    string
	}{
		{"request without a session", "", ping, http.StatusBadRequest, "Mcp-Session-Id"},
		{"notification without a session", "", map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}, http.StatusBadRequest, "Mcp-Session-Id"},
		{"tools/call without a session", "", map[string]any{"jsonrpc": "2.0", "id": 2, "method": "tools/call",
			"params": map[string]any{"name": "list_strategies", "arguments": map[string]any{}}}, http.StatusBadRequest, "Mcp-Session-Id"},
		{"unknown session", "mcp-session-made-up", ping, http.StatusNotFound, "initialize"},
		{"ended session", ended.session, ping, http.StatusNotFound, "initialize"},
		{"live session", live.session, ping, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, resp := post(tc.session, tc.msg)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, msgs)
			}
			if tc.says == "" {
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("want one JSON-RPC error, got %v", msgs)
			}
			errObj, _ := msgs[0]["error"].(map[string]any)
			if msg, _ := errObj["message"].(string); errObj == nil || !strings.Contains(msg, tc.says) {
				t.Fatalf("want a JSON-RPC error saying %q, got %v", tc.says, msgs)
			}
		})
	}
	if resp := del(""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("DELETE without a session: %d, want 400", resp.StatusCode)
	}
	if resp := del("mcp-session-made-up"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE of an unknown session: %d, want 404", resp.StatusCode)
	}
	// None of it cost the live client its session, nor made one up.
	if _, resp := post(live.session, ping); resp.StatusCode != http.StatusOK {
		t.Fatalf("the live session after the bad requests: %d", resp.StatusCode)
	}
	if n := e.srv.mcpSess.Len(); n != 1 {
		t.Errorf("%d MCP sessions, want the 1 live one", n)
	}
}

// Every cursor is refused because Ponder never issues one: its lists come
// whole. Were pagination turned on, nextCursor would appear here and the
// refusal (refuseRequest) would have to accept the cursors it issues.
func TestListsComeWholeWithoutCursors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	for i, method := range []string{"tools/list", "prompts/list", "resources/list", "resources/templates/list"} {
		for _, params := range []map[string]any{{}, {"cursor": ""}} {
			msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 700 + i, "method": method, "params": params})
			r := result(t, msgs)
			if nc, ok := r["nextCursor"]; ok {
				t.Errorf("%s %v: nextCursor %v", method, params, nc)
			}
		}
	}
}

const initializeParams = `{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"again","version":"2"}}`

// A second initialize on a session is refused (-32600, as the TypeScript
// SDK's server answers it). mcp-go accepted it: on stdio it replaced the
// client's capabilities midway; over HTTP it started another session,
// whatever Mcp-Session-Id the client sent.
func TestSecondInitializeRefusedHTTP(t *testing.T) {
	t.Parallel()
	// One session at most: a session made for the refused initialize
	// would end this one to make room.
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.MaxSessions = 1 }})
	c := e.rpc(t)
	msgs, resp := c.postRaw([]byte(`{"jsonrpc":"2.0","id":9,"method":"initialize","params":` + initializeParams + `}`))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
	if got := resp.Header.Get("Mcp-Session-Id"); got != "" {
		t.Errorf("the refusal names a session, %s, that the client might take up", got)
	}
	checkProtocolError(t, msgs, -32600, "already initialized", "")
	if msgs[0]["id"] != float64(9) {
		t.Errorf("the error answers id %v, want 9", msgs[0]["id"])
	}
	// No session was made for the refused initialize, and the client's
	// goes on as it was.
	e.srv.mcpSess.mu.Lock()
	n := len(e.srv.mcpSess.lastUse)
	e.srv.mcpSess.mu.Unlock()
	if n != 1 {
		t.Errorf("%d MCP sessions after the refusal, want 1 (the client's)", n)
	}
	msgs, resp = c.post(map[string]any{"jsonrpc": "2.0", "id": 10, "method": "ping"})
	if resp.StatusCode != http.StatusOK || result(t, msgs) == nil {
		t.Fatalf("ping after the refusal: %d %v", resp.StatusCode, msgs)
	}
	// A client starting over after its session ended (404) may still send
	// the old id: it gets a new session.
	stale := &rpc{t: t, url: e.ts.URL + "/mcp", session: "mcp-session-ended-long-ago", header: http.Header{}}
	msgs, resp = stale.postRaw([]byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":` + initializeParams + `}`))
	if resp.StatusCode != http.StatusOK || result(t, msgs)["protocolVersion"] == nil {
		t.Fatalf("initialize naming an ended session: %d %v", resp.StatusCode, msgs)
	}
	if id := resp.Header.Get("Mcp-Session-Id"); id == "" || id == stale.session {
		t.Errorf("initialize naming an ended session got session %q, want a new one", id)
	}
}

func TestSecondInitializeRefusedStdio(t *testing.T) {
	e := newEnv(t, envOptions{noLLM: true})
	// Twice: each connection is initialized once (mcp-go's one stdio
	// session for the process stays initialized after a connection ends).
	for _, conn := range []string{"first connection", "next connection"} {
		t.Run(conn, func(t *testing.T) {
			c := startStdio(t, e) // initialized without sampling (or fails)
			c.sendRaw(`{"jsonrpc":"2.0","id":9,"method":"initialize","params":{"protocolVersion":"2025-06-18",` +
				`"capabilities":{"sampling":{}},"clientInfo":{"name":"again","version":"2"}}}`)
			checkProtocolError(t, c.until(9), -32600, "already initialized", "")
			// The first initialize's capabilities hold: with no LLM
			// endpoint and no sampling, solve says how to configure one,
			// and asks the client for no sampling (were it asked, the
			// solve would wait out its timeout for an answer).
			c.send(map[string]any{"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": map[string]any{"name": "solve",
				"arguments": map[string]any{"problem": "What is 2+2?", "budget": map[string]any{"timeout_seconds": 2}}}})
			msgs := c.until(10)
			for _, m := range msgs {
				if m["method"] == "sampling/createMessage" {
					t.Fatalf("the refused initialize's sampling capability was taken up: %v", m)
				}
			}
			if r := result(t, msgs); r["isError"] != true || !strings.Contains(toolText(r), "no LLM is available") {
				t.Fatalf("solve without an LLM or sampling: %v", r)
			}
		})
	}
}
