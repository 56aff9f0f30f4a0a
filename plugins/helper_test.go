package plugins

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/sdk"
)

// helperPid waits for the test plugin's helper to be started and returns
// its pid (see startHelper); the test kills it in the end whatever
// happens.
func helperPid(t *testing.T, pidfile string) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(pidfile)
		if err != nil || len(b) == 0 {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil {
			t.Fatalf("helper pid %q: %v", b, err)
		}
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
		_ = os.Remove(pidfile)
		return pid
	}
	t.Fatalf("the plugin's helper did not start (%s)", pidfile)
	return 0
}

// within runs f, failing the test when it takes longer than d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still waiting after %s", what, d)
	}
}

// TestHelperHoldingOutputDoesNotWedgeThePlugin: a plugin whose helper
// process writes to the plugin's stdout and stderr (started before
// sdk.Serve, or by a wrapper script) keeps go-plugin's output pipes open
// after the plugin itself is killed. Stopping the plugin (a crash, Close)
// kills the helper with it rather than waiting for those pipes to close,
// which they never do while the helper runs: the plugin's lock was held
// meanwhile, so every later call, Status and Close hung.
func TestHelperHoldingOutputDoesNotWedgeThePlugin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidfile := filepath.Join(t.TempDir(), "helper.pid")
	installMode(t, dir, "echo", sdk.KindTool, "tool-helper")
	m := newTestManager(t, Options{Dirs: []string{dir}, Env: []string{"ECHO_HELPER_PIDFILE=" + pidfile},
		CallTimeout: 5 * time.Second, HealthInterval: -1})
	p, _ := m.Plugin("echo")
	if res, err := callEcho(t, m, "echo", `{"text":"hi"}`); err != nil || res.Text != "hi" {
		t.Fatalf("first call: %+v, %v", res, err)
	}
	helper := helperPid(t, pidfile)

	within(t, 5*time.Second, "a call that crashes the plugin", func() {
		if _, err := callEcho(t, m, "echo", `{"crash":true}`); err == nil {
			t.Error("crash: no error")
		}
	})
	within(t, 2*time.Second, "Status after the crash", func() { p.Status() })
	waitGone(t, helper)
	within(t, 10*time.Second, "the call after the crash", func() {
		if res, err := callEcho(t, m, "echo", `{"text":"again"}`); err != nil || res.Text != "again" {
			t.Errorf("after the crash: %+v, %v", res, err)
		}
	})
	helper = helperPid(t, pidfile)
	within(t, 10*time.Second, "Close", func() { m.Close() })
	waitGone(t, helper)
}

// TestFailedStartStopsThePluginsChildren: a plugin that started a helper
// and then failed its start (no handshake within StartTimeout) is stopped
// with its helper: the helper was left running, and one that writes to
// the plugin's output kept the start from ever ending (every caller then
// waited for a start that never came).
func TestFailedStartStopsThePluginsChildren(t *testing.T) {
	t.Parallel()
	for _, inherit := range []bool{false, true} {
		t.Run("inherit="+strconv.FormatBool(inherit), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			pidfile := filepath.Join(t.TempDir(), "helper.pid")
			env := []string{"ECHO_HELPER_PIDFILE=" + pidfile}
			if inherit {
				env = append(env, "ECHO_HELPER_INHERIT=1")
			}
			installMode(t, dir, "echo", sdk.KindTool, "tool-helper-stuck-start")
			m := newTestManager(t, Options{Dirs: []string{dir}, Env: env, StartTimeout: 500 * time.Millisecond})
			p, _ := m.Plugin("echo")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := p.Remote(ctx)
			helper := helperPid(t, pidfile)
			if !errors.Is(err, ErrNotPlugin) || !strings.Contains(err.Error(), "did not answer the plugin handshake") {
				t.Fatalf("start: %v", err)
			}
			waitGone(t, helper)
			within(t, 5*time.Second, "Close", func() { m.Close() })
		})
	}
}

// TestInspectStopsAPluginWithAHelper: `ponder plugins install` inspects a
// plugin by starting it; one whose helper holds its output made go-plugin's
// Kill wait for pipes that never close, and the install hung.
func TestInspectStopsAPluginWithAHelper(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidfile := filepath.Join(t.TempDir(), "helper.pid")
	script := filepath.Join(dir, "plugin.sh")
	writeScript(t, script, "tool-helper", true, 0o755)
	var m Manifest
	var err error
	within(t, 8*time.Second, "Inspect of a plugin whose helper holds its output", func() {
		m, _, err = Inspect(context.Background(), script, &Options{Env: []string{"ECHO_HELPER_PIDFILE=" + pidfile}})
	})
	if err != nil || m.Name != "echo" {
		t.Fatalf("Inspect: %+v, %v", m, err)
	}
	waitGone(t, helperPid(t, pidfile))
}
