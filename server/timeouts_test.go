package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/standard"
)

// floodEnv is a server whose "flood" strategy adds long nodes until its
// search is cancelled: an OpenAI stream of it never ends by itself, and
// it writes faster than a client that does not read takes.
func floodEnv(t *testing.T, cfg func(*config.Server)) *env {
	t.Helper()
	policy, err := llm.New(config.LLM{BaseURL: simtest.Start(t, sim.Options{DataDir: sim.NoData}), Model: "ponder-sim", Timeout: 30 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return newEnv(t, envOptions{cfg: cfg, policy: policy, opts: func(o *Options) {
		reg := standard.Registry()
		reg.RegisterStrategy(core.StrategySpec{Name: "flood", New: func(core.Params) (core.Strategy, error) {
			return core.StrategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
				step := strings.Repeat("a step that says a lot ", 13)
				for i := 0; ctx.Err() == nil; i++ {
					if _, err := env.AddNode([]core.NodeID{0}, core.Node{Content: fmt.Sprint(i, step)}); err != nil {
						return core.Outcome{}, err
					}
					time.Sleep(100 * time.Microsecond)
				}
				return core.Outcome{}, nil
			}), nil
		}})
		o.Engine = core.NewEngine(policy, reg, &core.EngineOptions{
			Packs: standard.Packs, OnStart: o.Traces.Start, OnEnd: o.Traces.Finish,
			DefaultLimits: core.Limits{WallTime: time.Minute}})
	}})
}

// smallBuffers accepts connections with a small send buffer, so that a
// client that does not read soon blocks the server's writes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// serve runs e's server on a listener of its own until the returned
// function is called; that function returns Serve's error.
func serve(t *testing.T, e *env) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, smallBuffers{ln}) }()
	return ln.Addr().String(), func() error {
		cancel()
		select {
		case err := <-served:
			return err
		case <-time.After(5 * time.Second):
			return errors.New("Serve did not return 5s after its context ended")
		}
	}
}

// streamNeverRead opens an OpenAI stream of the flood strategy on a
// connection whose client never reads (a small receive buffer too); the
// connection closes when the test ends.
func streamNeverRead(t *testing.T, addr, token string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).SetReadBuffer(1024)
	t.Cleanup(func() { c.Close() })
	body := `{"model":"flood","stream":true,"messages":[{"role":"user","content":"go on"}]}`
	fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		addr, token, len(body), body)
	return c
}

func (s *Server) running() int {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	return s.runN
}

// A client that stops reading its stream loses it: a write it does not
// take within the write timeout fails, which cancels its search. The
// search ran (and the handler held its connection) for ever.
func TestClientThatStopsReadingLosesItsStream(t *testing.T) {
	t.Parallel()
	e := floodEnv(t, nil)
	e.srv.writeTimeout = 300 * time.Millisecond
	addr, _ := serve(t, e)
	streamNeverRead(t, addr, "")
	waitFor(t, 5*time.Second, "the search to start", func() bool { return e.srv.running() == 1 })
	waitFor(t, 5*time.Second, "the unread stream's search to end", func() bool { return e.srv.running() == 0 })
}

// Shutdown ends within server.shutdown_timeout when a handler is blocked
// writing to a client that stopped reading: its connection is closed. It
// waited for the write, for ever.
func TestShutdownEndsWithAClientThatStopsReading(t *testing.T) {
	t.Parallel()
	e := floodEnv(t, func(c *config.Server) { c.ShutdownTimeout = 300 * time.Millisecond })
	e.srv.writeTimeout = time.Hour
	addr, stop := serve(t, e)
	streamNeverRead(t, addr, "")
	waitFor(t, 5*time.Second, "the search to start", func() bool { return e.srv.running() == 1 })
	time.Sleep(500 * time.Millisecond) // the server's writes block
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v with a shutdown timeout of 300ms", d)
	}
}

// postWithoutBody sends a POST that announces a body and never sends it,
// and returns the answer's status and body.
func postWithoutBody(t *testing.T, addr, path, auth string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{", path, addr, auth)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: no answer to a request whose body never came: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A request whose body does not arrive in time is answered and its
// connection closed: one that sent a Content-Length and no body held a
// connection and a goroutine for ever.
func TestBodyMustArriveInTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.Token = "tok" }})
	e.srv.bodyTimeout = 300 * time.Millisecond
	for _, path := range []string{"/v1/chat/completions", "/mcp"} {
		code, body := postWithoutBody(t, e.ts.Listener.Addr().String(), path, "Authorization: Bearer tok\r\n")
		if code != http.StatusBadRequest || !strings.Contains(body, "did not all arrive within 300ms") {
			t.Errorf("%s: %d %s, want 400 saying the body did not arrive in time", path, code, body)
		}
	}
}

// A refused request is answered within a second, whatever is left of its
// body (net/http reads the rest of a small body first, as slowly as the
// client sends it: without a token, a client held a connection for ever).
func TestRefusalDoesNotWaitForTheBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.Token = "tok" }})
	e.srv.bodyTimeout = time.Hour
	for _, path := range []string{"/v1/chat/completions", "/mcp", "/nowhere"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			if code, _ := postWithoutBody(t, e.ts.Listener.Addr().String(), path, ""); code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", code)
			}
		})
	}
}
