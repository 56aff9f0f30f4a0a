package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
)

// Beyond server.max_connections, connections that send nothing, or sit
// idle between requests, are closed to make room, so a flood of them
// keeps no client out (/healthz included); when every place has a request
// in progress, a new request is answered 503 with Retry-After, /healthz
// still 200, and the connections are counted in /metrics. There was no
// cap: a flood of idle connections could use up the file descriptors.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	const max = 4
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.MaxConnections = max }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	dial := func(send string) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if send != "" {
			if _, err := c.Write([]byte(send)); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	lim := func() *connLimiter {
		l := e.srv.conns.Load()
		if l == nil {
			t.Fatal("Serve set no connection limiter")
		}
		return l
	}
	busy := func() (n int) {
		l := lim()
		l.mu.Lock()
		defer l.mu.Unlock()
		for c := range l.conns {
			if !c.waiting {
				n++
			}
		}
		return n
	}

	// A flood of silent connections fills every place...
	for range max {
		dial("")
	}
	waitFor(t, 5*time.Second, "the silent connections to be counted", func() bool { return e.srv.conns.Load() != nil && lim().open() == max })
	// ...and a client still gets in.
	if resp, body := get("/healthz"); resp.StatusCode != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz behind a flood of silent connections: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get("/v1/models"); resp.StatusCode != 200 {
		t.Fatalf("/v1/models behind a flood of silent connections: %d", resp.StatusCode)
	}

	// Requests in progress (bodies that never finish) take every place.
	var held []net.Conn
	for i := range max {
		held = append(held, dial("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"))
		waitFor(t, 5*time.Second, "a request to be in progress", func() bool { return busy() == i+1 })
	}
	resp, body := get("/v1/models")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
		!strings.Contains(body, "server.max_connections") || !strings.Contains(body, `"code":"server_busy"`) {
		t.Fatalf("a request beyond the cap, every place busy: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	resp, body = get("/mcp")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"jsonrpc":"2.0"`) {
		t.Fatalf("an MCP request beyond the cap: %d %s", resp.StatusCode, body)
	}
	if resp, body := get("/healthz"); resp.StatusCode != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz when every place is busy: %d %s", resp.StatusCode, body)
	}
	// Monitoring sees the saturation: /metrics is served too (it was
	// refused, so the graphs went blank exactly then).
	if resp, body := get("/metrics"); resp.StatusCode != 200 || !strings.Contains(body, fmt.Sprintf("ponder_http_connections %d", max)) {
		t.Fatalf("/metrics when every place is busy: %d %.300s", resp.StatusCode, body)
	}

	// A place freed is taken again.
	held[0].Close()
	waitFor(t, 5*time.Second, "a place to free", func() bool { return busy() < max })
	resp, text := get("/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics once a place is free: %d", resp.StatusCode)
	}
	for _, want := range []string{`ponder_http_rejected_total{reason="connections"} 2`, "ponder_http_idle_connections_closed_total ", "ponder_http_connections "} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A request on a connection beyond the cap is answered as the whole
// handler answers it for /healthz and /metrics (the token still checked
// for /metrics), and refused 503 for anything else.
func TestRefusedConnectionServesProbes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{cfg: func(c *config.Server) { c.Token = "s3cret" }})
	var refused int
	lim := newConnLimiter(nil, 1, e.srv.handler, func() { refused++ }, func() {})
	for _, tc := range []struct {
		path, token string
		status      int
		body        string
		refused     bool
	}{
		{"/healthz", "", 200, `"ok"`, false},
		{"/metrics", "s3cret", 200, "ponder_http_connections", false},
		{"/metrics", "", 401, "unauthorized", false},
		{"/v1/models", "s3cret", 503, "server.max_connections", true},
		{"/mcp", "s3cret", 503, "server.max_connections", true},
	} {
		t.Run(tc.path+" token "+tc.token, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			before := refused
			lim.refuse(server)
			_ = client.SetDeadline(time.Now().Add(5 * time.Second))
			req := "GET " + tc.path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
			if tc.token != "" {
				req += "Authorization: Bearer " + tc.token + "\r\n"
			}
			if _, err := io.WriteString(client, req+"\r\n"); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(client), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			lim.wait()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
				t.Errorf("%d %.300s, want %d with %q", resp.StatusCode, b, tc.status, tc.body)
			}
			if got := refused > before; got != tc.refused {
				t.Errorf("counted as refused: %v, want %v", got, tc.refused)
			}
		})
	}
}
