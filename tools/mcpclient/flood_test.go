package mcpclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
)

// floodHTTP is a hostile streamable HTTP MCP server: its answer to a call
// of "flood" is one JSON body of mb mebibytes.
func floodHTTP(t *testing.T, mb int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				ProtocolVersion string `json:"protocolVersion"`
				Name            string `json:"name"`
			} `json:"params"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil || msg.ID == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case msg.Method == "initialize":
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":%q,"capabilities":{"tools":{}},"serverInfo":{"name":"flood","version":"1"}}}`,
				msg.ID, msg.Params.ProtocolVersion)
		case msg.Method == "tools/list":
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"flood","inputSchema":{"type":"object"}}]}}`, msg.ID)
		case msg.Method == "tools/call" && msg.Params.Name == "flood":
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"`, msg.ID)
			chunk := []byte(strings.Repeat("x", 1<<20))
			for i := 0; i < mb; i++ {
				if _, err := w.Write(chunk); err != nil {
					return // the client stopped reading
				}
			}
			fmt.Fprint(w, `"}]}}`)
		default:
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{}}`, msg.ID)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

func python3(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed for the hostile server: %v", err)
	}
	return p
}

// TestHugeMessage: hostile servers answer with one message far over the
// limit (a line on stdio, a body over HTTP). The call, or the connection
// when it is the tool listing, fails naming the limit; Ponder does not
// take the message in (its allocations stay far below the message); the
// server's process is stopped at once; the next call connects afresh.
// Not parallel: it counts the process's allocations.
func TestHugeMessage(t *testing.T) {
	const limit = 1 << 20
	const floodMB = 256
	script, err := filepath.Abs("testdata/flood_server.py")
	if err != nil {
		t.Fatal(err)
	}
	py := python3(t)
	token := fmt.Sprintf("ponder-flood-%d", time.Now().UnixNano())
	stdio := func(mode string) config.MCPServer {
		return config.MCPServer{Name: "flood", Command: py, Args: []string{script, mode, token + "-" + mode},
			Env: map[string]string{"FLOOD_MB": fmt.Sprint(floodMB)}, Timeout: 20 * time.Second}
	}
	tests := []struct {
		name   string
		server config.MCPServer
		list   bool // the listing floods: connecting fails
		marker string
	}{
		{name: "stdio call", server: stdio("call"), marker: token + "-call"},
		{name: "stdio list", server: stdio("list"), list: true, marker: token + "-list"},
		{name: "http call", server: config.MCPServer{Name: "flood", URL: floodHTTP(t, floodMB), Timeout: 20 * time.Second}},
	}
	want := fmt.Sprintf("more than %d bytes, the limit on one MCP message", limit)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New([]config.MCPServer{tt.server}, &Options{MaxMessageBytes: limit})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err = b.Connect(context.Background())
			if tt.list {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("connecting to a server whose listing floods: %v; want it to say %q", err, want)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				_, err = toolNamed(t, b, "flood.flood").Call(context.Background(), json.RawMessage(`{}`))
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("a call answered with %d MiB: %v; want it to say %q", floodMB, err, want)
				}
			}
			runtime.ReadMemStats(&after)
			got := after.TotalAlloc - before.TotalAlloc
			t.Logf("%v; allocated %.1f MiB", err, float64(got)/(1<<20))
			if got > 48<<20 {
				t.Errorf("Ponder allocated %d MiB for a %d MiB message it should refuse after %d MiB", got>>20, floodMB, limit>>20)
			}
			if tt.marker != "" {
				if out, _ := exec.Command("pgrep", "-f", tt.marker).Output(); len(strings.TrimSpace(string(out))) > 0 {
					t.Errorf("the hostile server is still running: pids %s", out)
				}
			}
			if tt.name == "stdio call" {
				b.servers[0].mu.Lock()
				b.servers[0].lastErr = nil // no back-off wait in the test
				b.servers[0].mu.Unlock()
				if res := call(t, toolNamed(t, b, "flood.echo"), `{"message":"after"}`); res.Text != "Echo: after" {
					t.Errorf("the call after the flood: %q", res.Text)
				}
			}
		})
	}
}

// TestLineLimit checks the limiter on lines split across reads: many
// short lines pass whatever their total, one long line does not.
func TestLineLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		over  bool
	}{
		{name: "short lines", input: strings.Repeat("0123456789\n", 100)},
		{name: "line at the limit", input: strings.Repeat("x", 16) + "\n" + strings.Repeat("y", 16) + "\n"},
		{name: "line over the limit", input: "ok\n" + strings.Repeat("x", 17) + "\n", over: true},
		{name: "unterminated", input: strings.Repeat("x", 40), over: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &limiter{max: 16}
			r := &lineLimit{r: &chunked{s: tt.input, n: 5}, l: l}
			var got strings.Builder
			buf := make([]byte, 5)
			for {
				n, err := r.Read(buf)
				got.Write(buf[:n])
				if err != nil {
					break
				}
			}
			if l.exceeded() != tt.over {
				t.Errorf("exceeded = %v, want %v", l.exceeded(), tt.over)
			}
			if !tt.over && got.String() != tt.input {
				t.Errorf("passed %q, want %q", got.String(), tt.input)
			}
		})
	}
}

// chunked reads s n bytes at a time.
type chunked struct {
	s string
	n int
}

func (c *chunked) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, syscall.EIO // stands for the end; TestLineLimit stops on any error
	}
	k := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[k:]
	return k, nil
}

// A stdio server that answers nothing to requests it does not know, as some
// old servers do, is connected to within its timeout: mcp-go's
// server/discover probe took all of a short timeout, and the server failed
// with "initialize: no answer".
func TestServerSilentOnUnknownMethods(t *testing.T) {
	t.Parallel()
	script, err := filepath.Abs("testdata/flood_server.py")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New([]config.MCPServer{{Name: "old", Command: python3(t), Args: []string{script, "silent"}, Timeout: 2 * time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := toolNamed(t, b, "old.echo").Call(context.Background(), json.RawMessage(`{"message":"hi"}`))
	if err != nil || !strings.Contains(fmt.Sprint(res), "Echo: hi") {
		t.Fatalf("%v %v", res, err)
	}
}
