package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/internal/testutil"
)

// The start says whether requests need a bearer token: server.token and
// server.tokens (per-client tokens) each make them (it said token=false
// with only server.tokens set).
func TestServeSaysWhetherATokenIsNeeded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		want bool
	}{
		{"none", nil, false},
		{"server.token", []string{"PONDER_TOKEN=s3cret-one"}, true},
		{"server.tokens only", []string{"PONDER_TOKENS=alice-s3cret,bob-s3cret"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			serving, log, _, _ := startServe(t, t.TempDir(), tc.env...)
			var m struct{ Token bool }
			_ = json.Unmarshal(serving, &m)
			if m.Token != tc.want {
				t.Errorf("ponder serving says token=%v, want %v:\n%s", m.Token, tc.want, log.String())
			}
		})
	}
}

// startServe starts `ponder serve` on a free loopback port with data as
// its data dir, JSON logs, an LLM that is not there and env, and waits
// for its "ponder serving" log line, which it returns with its stderr so
// far and from then on, the process, and its exit once all of stderr was
// read.
func startServe(t *testing.T, data string, env ...string) ([]byte, *testutil.LockedBuffer, *exec.Cmd, <-chan error) {
	t.Helper()
	cmd := exec.Command(ponderBin, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(append(cleanEnv(), "PONDER_DATA_DIR="+data, "PONDER_LOG_FORMAT=json",
		"PONDER_LLM_BASE_URL="+closedPort(t)), env...)
	cmd.Dir = t.TempDir()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	log := new(testutil.LockedBuffer)
	serving := make(chan []byte, 1)
	waited, done := make(chan error, 1), make(chan struct{})
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.Write(append(sc.Bytes(), '\n'))
			var m struct{ Message string }
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Message == "ponder serving" {
				serving <- append([]byte(nil), sc.Bytes()...)
			}
		}
		// Wait closes stderr: only once all of it has been read.
		waited <- cmd.Wait()
	}()
	select {
	case line := <-serving:
		return line, log, cmd, waited
	case <-time.After(10 * time.Second):
		t.Fatalf("ponder serve did not start: %s", log.String())
		return nil, nil, nil, nil
	}
}

// A listen that fails says what to fix for its cause: "is another ponder
// running?" only when the port is taken (it was said of an address this
// machine does not have, too).
func TestListenErrorSaysWhatToFix(t *testing.T) {
	t.Parallel()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, tc := range []struct{ addr, want, not string }{
		{held.Addr().String(), "(is another ponder running? set --addr)", "interface"},
		// TEST-NET-1 (RFC 5737): no machine has it.
		{"192.0.2.1:0", "(no network interface of this machine has that address", "another ponder"},
	} {
		ln, err := net.Listen("tcp", tc.addr)
		if err == nil {
			ln.Close()
			t.Skipf("listening on %s worked here", tc.addr)
		}
		msg := listenError(tc.addr, err).Error()
		if !strings.Contains(msg, tc.want) || strings.Contains(msg, tc.not) {
			t.Errorf("%s: %q, want it to say %q and not %q", tc.addr, msg, tc.want, tc.not)
		}
	}
}

// A data dir that is a file (or lies below one) stops serve at the start
// with one error saying what to fix: it logged "serving without them" and
// then exited over the trace store's "not a directory". A data dir that
// is only not there yet (a disk not mounted or writable yet) is served
// without.
func TestServeRefusesADataDirThatIsAFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, []byte("not a directory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir string
		args      []string
		want      string
	}{
		{"a file", file, []string{"--addr", "127.0.0.1:0"}, "data dir " + file + " is a file, not a directory: move it away or set data_dir"},
		{"below a file", filepath.Join(file, "ponder"), []string{"--stdio"}, "not a directory: set data_dir (--data-dir, PONDER_DATA_DIR) to a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(ponderBin, append([]string{"serve"}, tc.args...)...)
			cmd.Env = append(cleanEnv(), "PONDER_DATA_DIR="+tc.dir, "PONDER_LLM_BASE_URL="+closedPort(t))
			cmd.Dir = t.TempDir()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1; stderr:\n%s", err, stderr.String())
			}
			if got := stderr.String(); !strings.Contains(got, tc.want) || strings.Contains(got, "serving without") ||
				strings.Count(strings.TrimSpace(got), "\n") != 0 {
				t.Errorf("stderr is not the one error %q:\n%s", tc.want, got)
			}
		})
	}
	if err := unusableDataDir(filepath.Join(t.TempDir(), "not", "yet"), errors.New("mkdir: read-only file system")); err != nil {
		t.Errorf("a data dir not there yet is refused: %v", err)
	}
}
