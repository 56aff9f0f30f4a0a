package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/llm/sim"
)

// sigCause is a context cause naming a signal, as `ponder serve`'s does.
type sigCause struct{ sig os.Signal }

func (c sigCause) Error() string     { return "terminated" }
func (c sigCause) Signal() os.Signal { return c.sig }

// The start of a shutdown is logged once, at info, saying why (the signal
// by its name, or the cause) and how many searches it cancels: the log of a
// server stopped by SIGTERM said only "solve finished … cancelled", then
// "ponder stopped".
func TestShutdownIsLogged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cause error
		stdio bool
		runs  int
		want  map[string]any
	}{
		{name: "SIGTERM, a search running", cause: sigCause{syscall.SIGTERM}, runs: 1, want: map[string]any{"signal": "SIGTERM"}},
		{name: "SIGINT, idle", cause: sigCause{os.Interrupt}, want: map[string]any{"signal": "SIGINT"}},
		{name: "another cause", cause: context.DeadlineExceeded, want: map[string]any{"reason": "context deadline exceeded"}},
		{name: "stdio, SIGTERM", cause: sigCause{syscall.SIGTERM}, stdio: true, want: map[string]any{"signal": "SIGTERM"}},
		{name: "stdio, stdin closed", stdio: true, want: map[string]any{"reason": "the client closed stdin"}},
		// The searches are counted before they are cancelled: mcp-go
		// cancels them, and waits for them, before ServeStdio returns, and
		// the log said runs_cancelled 0 of a solve it had just cancelled.
		{name: "stdio, SIGTERM, a solve running", cause: sigCause{syscall.SIGTERM}, stdio: true, runs: 1, want: map[string]any{"signal": "SIGTERM"}},
		{name: "stdio, stdin closed, a solve running", stdio: true, runs: 1, want: map[string]any{"reason": "the client closed stdin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var log testutil.LockedBuffer
			e := newEnv(t, envOptions{sim: sim.Options{Latency: 100 * time.Millisecond},
				opts: func(o *Options) { o.Logger = zerolog.New(&log).Level(zerolog.InfoLevel) }})
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			served := make(chan error, 1)
			inR, inW := io.Pipe()
			defer inW.Close()
			if tc.stdio {
				// mcp-go's stdio session is one for the process.
				stdioMu.Lock()
				defer stdioMu.Unlock()
				go func() { served <- e.srv.ServeStdio(ctx, inR, io.Discard) }()
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				go func() { served <- e.srv.Serve(ctx, ln) }()
			}
			answered := make(chan struct{})
			if tc.runs > 0 && tc.stdio {
				close(answered)
				go func() {
					// The solve over stdio itself, by its client.
					for _, line := range []string{
						`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
						`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
						`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"solve","arguments":{"problem":"What is 17 * 23?","strategy":"self-consistency","params":{"k":40},"budget":{"llm_calls":40}}}}`,
					} {
						if _, err := io.WriteString(inW, line+"\n"); err != nil {
							return
						}
					}
				}()
			}
			if tc.runs > 0 {
				if !tc.stdio {
					go func() {
						defer close(answered)
						resp, err := http.Post(e.ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(
							`{"model":"self-consistency","messages":[{"role":"user","content":"What is 17 * 23?"}],"ponder":{"params":{"k":40},"budget":{"llm_calls":40}}}`))
						if err == nil {
							resp.Body.Close()
						}
					}()
				}
				waitFor(t, 5*time.Second, "the search to run", func() bool {
					e.srv.runMu.Lock()
					defer e.srv.runMu.Unlock()
					return e.srv.runN == tc.runs
				})
			} else {
				close(answered)
			}
			if tc.cause != nil {
				cancel(tc.cause)
			} else {
				inW.Close()
			}
			select {
			case err := <-served:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the server did not stop")
			}
			<-answered
			var lines []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && m["message"] == "shutting down" {
					lines = append(lines, m)
				}
			}
			if len(lines) != 1 {
				t.Fatalf("%d \"shutting down\" lines, want 1:\n%s", len(lines), log.String())
			}
			got := lines[0]
			if got["level"] != "info" || got["runs_cancelled"] != float64(tc.runs) {
				t.Errorf("level %v, runs_cancelled %v, want info, %d: %v", got["level"], got["runs_cancelled"], tc.runs, got)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s is %v, want %v: %v", k, got[k], v, got)
				}
			}
		})
	}
}
