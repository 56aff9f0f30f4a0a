package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
)

// Process-level benchmarks of `ponder serve` (make bench):
//
//	go test ./server/conformance -run '^$' -bench . -benchtime 2000x
//
// Latency percentiles and memory are reported as extra metrics (p50-ms,
// p99-ms, idle-rss-MB, peak-rss-MB).

func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) float64 {
		return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.9), "p90-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// procStatus reads a field of /proc/pid/status in MB (VmRSS, VmHWM).
func procStatus(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// stdioServer runs `ponder serve --stdio` and talks newline-delimited
// JSON-RPC to it.
type stdioServer struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startStdioServer(b *testing.B, extra map[string]string) *stdioServer {
	b.Helper()
	cmd := exec.Command(ponderBin, "serve", "--stdio")
	cmd.Dir = b.TempDir()
	cmd.Env = ponderEnv(b, extra)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &stdioServer{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}
	b.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	return s
}

func (s *stdioServer) roundTrip(b *testing.B, line []byte) []byte {
	if _, err := s.in.Write(line); err != nil {
		b.Fatal(err)
	}
	for {
		resp, err := s.out.ReadBytes('\n')
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Contains(resp, []byte(`"method"`)) {
			return resp
		}
	}
}

const initLine = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}` + "\n"

func BenchmarkToolsCallStdio(b *testing.B) {
	s := startStdioServer(b, nil)
	s.roundTrip(b, []byte(initLine))
	s.in.Write([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n"))
	call := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"clear_session","arguments":{"session":"bench"}}}` + "\n")
	for i := 0; i < 200; i++ { // warm up
		s.roundTrip(b, call)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		resp := s.roundTrip(b, call)
		lat = append(lat, time.Since(start))
		if !bytes.Contains(resp, []byte(`"cleared":false`)) {
			b.Fatalf("unexpected response %s", resp)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// httpSession is an initialized MCP session over streamable HTTP.
type httpSession struct {
	url, id string
	client  *http.Client
}

func newHTTPSession(b testing.TB, url string) *httpSession {
	b.Helper()
	s := &httpSession{url: url, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	resp := s.post(b, []byte(initLine))
	s.id = resp.Header.Get("Mcp-Session-Id")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	resp = s.post(b, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return s
}

func (s *httpSession) post(b testing.TB, body []byte) *http.Response {
	req, _ := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if s.id != "" {
		req.Header.Set("Mcp-Session-Id", s.id)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	return resp
}

func (s *httpSession) call(b testing.TB, body []byte) []byte {
	resp := s.post(b, body)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		b.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	return out
}

func BenchmarkToolsCallHTTP(b *testing.B) {
	p := startServe(b, map[string]string{"PONDER_RATE_LIMIT": "0"})
	s := newHTTPSession(b, p.url("/mcp"))
	call := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"clear_session","arguments":{"session":"bench"}}}`)
	for i := 0; i < 200; i++ {
		s.call(b, call)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		out := s.call(b, call)
		lat = append(lat, time.Since(start))
		if !bytes.Contains(out, []byte(`"cleared":false`)) {
			b.Fatalf("unexpected response %s", out)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkColdStart measures from exec to ready: /healthz answering
// (HTTP), and the initialize response (stdio).
func BenchmarkColdStart(b *testing.B) {
	b.Run("http", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			start := time.Now()
			p := startServe(b, nil)
			for {
				resp, err := http.Get(p.url("/healthz"))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
				}
				time.Sleep(time.Millisecond)
			}
			lat = append(lat, time.Since(start))
			b.StopTimer()
			p.stop(b)
			b.StartTimer()
		}
		reportPercentiles(b, lat)
	})
	b.Run("stdio", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; i < b.N; i++ {
			start := time.Now()
			s := startStdioServer(b, nil)
			s.roundTrip(b, []byte(initLine))
			lat = append(lat, time.Since(start))
			b.StopTimer()
			s.in.Close()
			s.cmd.Wait()
			b.StartTimer()
		}
		reportPercentiles(b, lat)
	})
}

// BenchmarkIdleRSS reports the resident memory of a server that has
// started, answered an MCP session's listing calls and sits idle.
func BenchmarkIdleRSS(b *testing.B) {
	p := startServe(b, map[string]string{"PONDER_RATE_LIMIT": "0"})
	s := newHTTPSession(b, p.url("/mcp"))
	s.call(b, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	s.call(b, []byte(`{"jsonrpc":"2.0","id":2,"method":"resources/list"}`))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Get(p.url("/healthz"))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	b.StopTimer()
	time.Sleep(500 * time.Millisecond)
	b.ReportMetric(procStatus(p.cmd.Process.Pid, "VmRSS"), "idle-rss-MB")
}

// BenchmarkConcurrentSolves runs 50 solve calls at once over HTTP (50 MCP
// sessions) against the simulator (20 ms per LLM response), per
// iteration: latency percentiles of the calls, and the server's peak RSS.
func BenchmarkConcurrentSolves(b *testing.B) {
	const clients = 50
	simURL := simtest.Start(b, sim.Options{DataDir: sim.NoData, Latency: 20 * time.Millisecond})
	p := startServe(b, map[string]string{"PONDER_RATE_LIMIT": "0", "PONDER_LLM_BASE_URL": simURL,
		"PONDER_LLM_MODEL": "ponder-sim", "PONDER_LLM_CONCURRENCY": "32"})
	sessions := make([]*httpSession, clients)
	for i := range sessions {
		sessions[i] = newHTTPSession(b, p.url("/mcp"))
	}
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": i*clients + c, "method": "tools/call", "params": map[string]any{
					"name": "solve", "arguments": map[string]any{"problem": fmt.Sprintf("What is %d * %d?", 10+c, 20+i),
						"strategy": "self-consistency", "params": map[string]any{"k": 4}},
					"_meta": map[string]any{"progressToken": c}}})
				start := time.Now()
				out := sessions[c].call(b, body)
				d := time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				lat = append(lat, d)
				if !bytes.Contains(out, []byte(`"stopped_reason":"done"`)) {
					errs++
				}
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	if errs > 0 {
		b.Fatalf("%d of %d solves failed", errs, len(lat))
	}
	reportPercentiles(b, lat)
	b.ReportMetric(procStatus(p.cmd.Process.Pid, "VmHWM"), "peak-rss-MB")
}
