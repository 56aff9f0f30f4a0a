package plugins

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/sdk"
)

func TestCrashMidCallRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	if res, err := callEcho(t, m, "echo", `{"text":"hi"}`); err != nil || res.Text != "hi" {
		t.Fatalf("first call: %+v, %v", res, err)
	}
	p, _ := m.Plugin("echo")
	pid := p.Status().PID
	_, err := callEcho(t, m, "echo", `{"crash":true}`)
	if err == nil || !strings.Contains(err.Error(), "plugin echo crashed") {
		t.Fatalf("crash: error %v, want one naming the plugin", err)
	}
	if st := p.Status(); st.State != StateCrashed {
		t.Fatalf("state after crash %s", st.State)
	}
	waitGone(t, pid)
	res, err := callEcho(t, m, "echo", `{"text":"again"}`)
	if err != nil || res.Text != "again" {
		t.Fatalf("call after crash: %+v, %v", res, err)
	}
	if st := p.Status(); st.Starts != 2 || st.Restarts != 1 || st.PID == pid {
		t.Fatalf("status after restart %+v (old pid %d)", st, pid)
	}
}

func TestHangTimesOutKillsRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m := newTestManager(t, Options{Dirs: []string{dir}, CallTimeout: time.Second, AbandonGrace: 100 * time.Millisecond})
	if _, err := callEcho(t, m, "echo", `{"text":"hi"}`); err != nil {
		t.Fatal(err)
	}
	p, _ := m.Plugin("echo")
	pid := p.Status().PID
	start := time.Now()
	_, err := callEcho(t, m, "echo", `{"hang":true}`)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "plugin echo") || !strings.Contains(err.Error(), "did not answer within") {
		t.Fatalf("hang: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("hang took %s to fail", d)
	}
	waitGone(t, pid)
	if res, err := callEcho(t, m, "echo", `{"text":"back"}`); err != nil || res.Text != "back" {
		t.Fatalf("after hang: %+v, %v", res, err)
	}
	if st := p.Status(); st.Starts != 2 {
		t.Fatalf("starts %d, want 2", st.Starts)
	}
}

func TestCallerCancellationPropagates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	tool := m.Tools()[0]
	if _, err := tool.Call(context.Background(), []byte(`{"text":"warm"}`)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	start := time.Now()
	_, err := tool.Call(ctx, []byte(`{"hang":true}`))
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("cancelled call: %v after %s", err, time.Since(start))
	}
	// The caller cancelled: the plugin is not blamed, and still serves.
	p, _ := m.Plugin("echo")
	if st := p.Status(); st.State != StateRunning || st.Starts != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestChecksumMismatchRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	man := installMode(t, dir, "echo", sdk.KindTool, "tool")
	// Install a real copy, then change it after the manifest was written.
	bin := man.Path()
	self, _ := os.Executable()
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(bin)
	if err := os.WriteFile(bin, append(b, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, Options{Dirs: []string{dir}})
	_, err = callEcho(t, m, "echo", `{"text":"hi"}`)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("tampered binary: %v", err)
	}
	p, _ := m.Plugin("echo")
	if st := p.Status(); st.State != StateDisabled || st.Starts != 0 {
		t.Fatalf("status %+v", st)
	}
}

// `ponder plugins install` of a new version while Ponder runs replaces the
// binary, then the manifest. The running host refuses the binary while
// the manifest is the old one, starts the new one from the new manifest,
// and refuses one whose parameters or tool spec changed.
func TestReinstallWhileLoadedIsPickedUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	man := installMode(t, dir, "echo", sdk.KindTool, "tool")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	if res, err := callEcho(t, m, "echo", `{"text":"v1"}`); err != nil || res.Text != "v1" {
		t.Fatalf("first call: %+v, %v", res, err)
	}
	p, _ := m.Plugin("echo")
	pid := p.Status().PID
	self, _ := os.Executable()
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	// The new binary lands first (install renames it over the old one).
	newBin := append(b, 1)
	os.Remove(man.Path())
	if err := os.WriteFile(man.Path(), newBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := callEcho(t, m, "echo", `{"crash":true}`); err == nil {
		t.Fatal("crash call succeeded")
	}
	waitGone(t, pid)
	if _, err := callEcho(t, m, "echo", `{"text":"between"}`); !errors.Is(err, ErrChecksum) {
		t.Fatalf("new binary, old manifest: %v", err)
	}
	// Then its manifest.
	sum, err := FileSHA256(man.Path())
	if err != nil {
		t.Fatal(err)
	}
	v2 := man
	v2.SHA256, v2.Version = sum, "0.2.0"
	if err := WriteManifest(v2); err != nil {
		t.Fatal(err)
	}
	if res, err := callEcho(t, m, "echo", `{"text":"v2"}`); err != nil || res.Text != "v2" {
		t.Fatalf("after reinstall: %+v, %v", res, err)
	}
	if st := p.Status(); st.State != StateRunning || st.Version != "0.2.0" {
		t.Fatalf("status after reinstall %+v", st)
	}
	// A reinstall that changes the tool's spec needs a restart of Ponder.
	pid = p.Status().PID
	os.Remove(man.Path())
	if err := os.WriteFile(man.Path(), append(newBin, 2), 0o755); err != nil {
		t.Fatal(err)
	}
	v3 := v2
	v3.SHA256, _ = FileSHA256(man.Path())
	v3.Version = "0.3.0"
	v3.Tool = &core.ToolSpec{Name: "echo", Description: "echoes text, louder", Schema: v2.Tool.Schema}
	if err := WriteManifest(v3); err != nil {
		t.Fatal(err)
	}
	callEcho(t, m, "echo", `{"crash":true}`)
	waitGone(t, pid)
	if _, err := callEcho(t, m, "echo", `{"text":"v3"}`); err == nil || !strings.Contains(err.Error(), "restart Ponder") {
		t.Fatalf("reinstall with another tool spec: %v", err)
	}
}

func TestRefusedBinariesHostKeepsRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	installMode(t, dir, "old", sdk.KindTool, "wrong-protocol")
	installMode(t, dir, "chatty", sdk.KindTool, "not-plugin")
	installMode(t, dir, "silent", sdk.KindTool, "silent-exit")
	installMode(t, dir, "liar", sdk.KindTool, "tool") // describes itself as echo
	// A system binary that is no plugin at all.
	echoBin, err := exec.LookPath("echo")
	if err != nil {
		t.Skip("no echo binary")
	}
	sys := installMode(t, dir, "sysecho", sdk.KindTool, "x")
	os.Remove(sys.Path())
	if err := os.Symlink(echoBin, sys.Path()); err != nil {
		t.Fatal(err)
	}
	sys.SHA256, _ = FileSHA256(echoBin)
	if err := WriteManifest(sys); err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, Options{Dirs: []string{dir}, StartTimeout: 2 * time.Second})
	cases := []struct {
		name string
		want error
		text string
	}{
		{"old", ErrProtocol, "speaks plugin protocol 2, this Ponder speaks 1"},
		{"chatty", ErrNotPlugin, "did not answer the plugin handshake (Unrecognized remote plugin message: hello, I am not a plugin)"},
		{"silent", ErrNotPlugin, "did not answer the plugin handshake: it wrote nothing on stdout or stderr before it exited"},
		{"sysecho", ErrNotPlugin, "did not answer the plugin handshake"},
		{"liar", nil, `the binary says it is tool "echo", its manifest says tool "liar"`},
	}
	for _, c := range cases {
		_, err := callEcho(t, m, c.name, `{"text":"hi"}`)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.want, c.text)
		}
		if !strings.Contains(err.Error(), "plugin "+c.name) {
			t.Errorf("%s: error does not name the plugin: %v", c.name, err)
		}
	}
	if res, err := callEcho(t, m, "echo", `{"text":"still here"}`); err != nil || res.Text != "still here" {
		t.Fatalf("good plugin after bad ones: %+v, %v", res, err)
	}
}

// A plugin that exits before its handshake says why on stderr (sdk.Serve
// refusing a tool schema, a panic while starting): the start error, which
// every call reports (and install and check, which start it the same way,
// through launch), carries it.
func TestStartErrorCarriesThePluginsReason(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "refused", sdk.KindTool, "refused")
	installMode(t, dir, "panicky", sdk.KindTool, "panic-at-start")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	for _, c := range []struct{ name, want string }{
		{"refused", "Schema is not valid JSON"},
		{"panicky", "panic: boom at start"},
	} {
		_, err := callEcho(t, m, c.name, `{"text":"hi"}`)
		if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exited before the plugin handshake, saying: ") ||
			!strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "plugin "+c.name) {
			t.Errorf("%s: %v, want the plugin's own reason (%q)", c.name, err, c.want)
		}
	}
}

// A goroutine's panic is a first line and a stack: one error entry in the
// host's log, not a line at error level followed by the stack at info.
func TestGoroutinePanicIsOneErrorEntry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m, logs := loggedManager(t, Options{Dirs: []string{dir}})
	if _, err := callEcho(t, m, "echo", `{"gopanic":true}`); err == nil {
		t.Fatal("the call of a plugin that died succeeded")
	}
	var entry map[string]any
	for deadline := time.Now().Add(3 * time.Second); entry == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var e map[string]any
			if json.Unmarshal([]byte(line), &e) == nil && e["message"] == "panic: boom in a goroutine" {
				entry = e
			}
		}
	}
	if entry == nil || entry["level"] != "error" || !strings.Contains(fmt.Sprint(entry["stack"]), "goroutine ") ||
		!strings.Contains(fmt.Sprint(entry["stack"]), "main_test.go") {
		t.Fatalf("panic entry %v\n%s", entry, logs.String())
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"info"`) && strings.Contains(line, "goroutine") {
			t.Errorf("part of the stack logged on its own at info: %s", line)
		}
	}
}

func TestMalformedStderrIsRelayedNotFatal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool-noisy")
	m, logs := loggedManager(t, Options{Dirs: []string{dir}})
	if res, err := callEcho(t, m, "echo", `{"text":"hi"}`); err != nil || res.Text != "hi" {
		t.Fatalf("%+v, %v", res, err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(logs.String(), "hello from the plugin") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := logs.String()
	for _, want := range []string{`"plugin":"echo"`, `"message":"hello from the plugin"`, `"level":"warn"`, `"k":"v"`, "plain text line"} {
		if !strings.Contains(out, want) {
			t.Errorf("relayed log lacks %s:\n%s", want, out)
		}
	}
}

// What a plugin logs while it serves (sdk.Logger, os.Stderr, stray stdout)
// travels over go-plugin's stdio stream, not the process's stderr: it must
// reach the host's log too.
func TestLogsDuringCallsAreRelayed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m, logs := loggedManager(t, Options{Dirs: []string{dir}})
	if res, err := callEcho(t, m, "echo", `{"text":"hi","log":"mid-call note"}`); err != nil || res.Text != "hi" {
		t.Fatalf("%+v, %v", res, err)
	}
	want := []string{`"message":"mid-call note"`, `"level":"warn"`, `"k":"v"`, `"message":"plain mid-call note"`,
		`"message":"stdout mid-call note"`, `"stream":"stdout"`}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		out, all := logs.String(), true
		for _, w := range want {
			all = all && strings.Contains(out, w)
		}
		if all {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := logs.String()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("relayed log lacks %s:\n%s", w, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "mid-call note") && !strings.Contains(line, `"plugin":"echo"`) {
			t.Errorf("relayed line without the plugin's name: %s", line)
		}
		if strings.Count(line, `"plugin":`) > 1 {
			t.Errorf("log line with two plugin keys: %s", line)
		}
	}
}

func TestStrategyOverBudgetStoppedByHost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "greedy", sdk.KindStrategy, "strategy-greedy")
	m := newTestManager(t, Options{Dirs: []string{dir}, BudgetGrace: 300 * time.Millisecond})
	reg := core.NewRegistry()
	if errs := m.Register(reg); len(errs) > 0 {
		t.Fatal(errs)
	}
	var calls int64
	policy := core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
		calls++
		return core.Completion{Choices: []core.Choice{{Text: "The answer is 7."}}}, nil
	})
	eng := core.NewEngine(policy, reg, &core.EngineOptions{Concurrency: 1})
	start := time.Now()
	res, err := eng.Solve(context.Background(), core.Task{Problem: "What is 3 + 4?", Strategy: "greedy", Limits: core.Limits{LLMCalls: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopBudget || !strings.Contains(res.Error, "stopped by the host") {
		t.Fatalf("stopped %s: %s", res.Stopped, res.Error)
	}
	if res.Usage.LLMCalls > 3 || calls > 3 {
		t.Fatalf("%d calls charged, %d made; budget 3", res.Usage.LLMCalls, calls)
	}
	if res.Answer != "7" {
		t.Fatalf("best so far %q, want 7", res.Answer)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stopping took %s", d)
	}
}

// A budget error crosses the process boundary twice (host → plugin →
// host): it stays errors.Is(ErrBudgetExhausted) and says so once.
func TestStrategyBudgetErrorSaysItOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "polite", sdk.KindStrategy, "strategy-polite")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	reg := core.NewRegistry()
	if errs := m.Register(reg); len(errs) > 0 {
		t.Fatal(errs)
	}
	policy := core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
		return core.Completion{Choices: []core.Choice{{Text: "The answer is 7."}}}, nil
	})
	res, err := core.NewEngine(policy, reg, nil).Solve(context.Background(),
		core.Task{Problem: "What is 3 + 4?", Strategy: "polite", Limits: core.Limits{LLMCalls: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopBudget || strings.Count(res.Error, "budget exhausted") != 1 || !strings.Contains(res.Error, "2 of 2 llm calls used") {
		t.Fatalf("stopped %s: %s", res.Stopped, res.Error)
	}
}

func TestStrategyRunsThroughHost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "one-shot", sdk.KindStrategy, "strategy")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	reg := core.NewRegistry()
	m.Register(reg)
	spec, err := reg.Strategy("one-shot")
	if err != nil || spec.Source != "one-shot" {
		t.Fatalf("%+v, %v", spec, err)
	}
	policy := core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
		return core.Completion{Choices: []core.Choice{{Text: "3 + 4 = 7. The answer is 7."}}, PromptTokens: 5, CompletionTokens: 7}, nil
	})
	eng := core.NewEngine(policy, reg, nil)
	res, err := eng.Solve(context.Background(), core.Task{Problem: "What is 3 + 4?", Strategy: "one-shot"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "7" || res.Stopped != core.StopDone || res.Usage.LLMCalls != 1 || res.Usage.CompletionTokens != 7 {
		t.Fatalf("%+v", res)
	}
	if len(res.BestPath) != 2 || res.BestPath[1].Scores[core.ScoreValue] != 0.25 {
		t.Fatalf("best path %+v", res.BestPath)
	}
	var info bool
	for _, e := range res.Trace.Events {
		info = info || (e.Op == core.OpInfo && e.Get("note") == "one shot" && e.Get("source") == "plugin")
	}
	if !info {
		t.Fatal("the plugin's trace event is missing")
	}
}

// A strategy plugin's note on why it found no answer reaches the result's
// warnings, as a built-in strategy's does.
func TestStrategyPluginNoteReachesTheResult(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "noted", sdk.KindStrategy, "strategy-note")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	reg := core.NewRegistry()
	m.Register(reg)
	res, err := core.NewEngine(nil, reg, nil).Solve(context.Background(), core.Task{Problem: "What is 3 + 4?", Strategy: "noted"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != core.StopDone || len(res.Warnings) != 1 || res.Warnings[0] != "no answer: every candidate was pruned" {
		t.Fatalf("stopped %s, warnings %q", res.Stopped, res.Warnings)
	}
}

// TestNoOrphans: a host that gets SIGTERM stops its plugins; a host that
// is SIGKILLed takes them down too (parent-death signal), and with them
// (PID namespace) a daemon a plugin started.
func TestNoOrphans(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			installMode(t, dir, "echo", sdk.KindTool, "tool")
			self, _ := os.Executable()
			host := exec.Command(self, modeFlag+"host")
			host.Env = append(os.Environ(), "PLUGIN_TEST_DIR="+dir)
			out, err := host.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			host.Stderr = &stderr
			if err := host.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				host.Process.Kill()
				t.Fatalf("host: %v\n%s", err, stderr.String())
			}
			var pid, daemon int
			if _, err := fmt.Sscan(line, &pid, &daemon); err != nil || !alive(pid) {
				host.Process.Kill()
				t.Fatalf("plugin pid and its daemon's %q: %v", line, err)
			}
			if daemon > 0 {
				t.Cleanup(func() { syscall.Kill(daemon, syscall.SIGKILL) })
			}
			host.Process.Signal(sig)
			host.Wait()
			waitGone(t, pid)
			if iso, _ := pluginIsolation(); iso != isolateGroup {
				if daemon <= 0 {
					t.Fatalf("the plugin started no daemon: %q", line)
				}
				waitGone(t, daemon)
			}
		})
	}
}

// TestHealthCheckKillsWedgedPlugin: a plugin that stops answering between
// calls (here: SIGSTOP) fails its health check, is killed, and the next
// call restarts it.
func TestHealthCheckKillsWedgedPlugin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m := newTestManager(t, Options{Dirs: []string{dir}, HealthInterval: 100 * time.Millisecond, CallTimeout: 300 * time.Millisecond})
	if _, err := callEcho(t, m, "echo", `{"text":"hi"}`); err != nil {
		t.Fatal(err)
	}
	p, _ := m.Plugin("echo")
	pid := p.Status().PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Status().State != StateCrashed {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("wedged plugin still %s", p.Status().State)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitGone(t, pid)
	if res, err := callEcho(t, m, "echo", `{"text":"back"}`); err != nil || res.Text != "back" {
		t.Fatalf("after the health check: %+v, %v", res, err)
	}
}

// TestEagerStartAndRestart: eager plugins run before any call, and one
// killed from outside is restarted in the background.
func TestEagerStartAndRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m := newTestManager(t, Options{Dirs: []string{dir}, Eager: true, HealthInterval: 100 * time.Millisecond})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	p, _ := m.Plugin("echo")
	st := p.Status()
	if st.State != StateRunning || st.Starts != 1 {
		t.Fatalf("after Start: %+v", st)
	}
	syscall.Kill(st.PID, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for {
		now := p.Status()
		if now.State == StateRunning && now.Starts == 2 && now.PID != st.PID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restarted: %+v", now)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRestartBackoff: the first restart is immediate; after a second crash
// in a row calls fail at once (naming the wait) until the backoff passed.
func TestRestartBackoff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	for i := range 2 {
		if _, err := callEcho(t, m, "echo", `{"crash":true}`); err == nil {
			t.Fatalf("crash %d: no error", i)
		}
	}
	start := time.Now()
	_, err := callEcho(t, m, "echo", `{"text":"too soon"}`)
	if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "next start in") || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("within the backoff: %v after %s", err, time.Since(start))
	}
	time.Sleep(backoff(2))
	if res, err := callEcho(t, m, "echo", `{"text":"later"}`); err != nil || res.Text != "later" {
		t.Fatalf("after the backoff: %+v, %v", res, err)
	}
}

// TestPluginChildrenStopWithIt: processes a plugin started are killed with
// it, whether it hung, crashed or was closed, instead of being left
// behind as orphans: its children, and (in a PID namespace of its own)
// those that left its process group with setsid, its daemons' included.
func TestPluginChildrenStopWithIt(t *testing.T) {
	t.Parallel()
	kinds := []string{"child"}
	if iso, err := pluginIsolation(); iso != isolateGroup {
		kinds = append(kinds, "setsid", "orphan")
	} else {
		t.Logf("no PID namespace here (%v): only the process group is tested", err)
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			installMode(t, dir, "echo", sdk.KindTool, "tool")
			m := newTestManager(t, Options{Dirs: []string{dir}, CallTimeout: time.Second, AbandonGrace: 100 * time.Millisecond})
			spawn := func() int {
				t.Helper()
				args := `{"spawn":"` + kind + `"}`
				res, err := callEcho(t, m, "echo", args)
				for deadline := time.Now().Add(3 * time.Second); errors.Is(err, sdk.ErrUnavailable) && time.Now().Before(deadline); {
					time.Sleep(50 * time.Millisecond) // the restart back-off after two crashes
					res, err = callEcho(t, m, "echo", args)
				}
				if err != nil || res.IsError {
					t.Fatalf("spawn: %+v, %v", res, err)
				}
				pid, err := strconv.Atoi(res.Text)
				if err != nil || !alive(pid) {
					t.Fatalf("child %q: %v", res.Text, err)
				}
				t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
				return pid
			}
			child := spawn()
			if _, err := callEcho(t, m, "echo", `{"hang":true}`); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("hang: %v", err)
			}
			waitGone(t, child)
			child = spawn()
			if _, err := callEcho(t, m, "echo", `{"crash":true}`); err == nil {
				t.Fatal("crash: no error")
			}
			waitGone(t, child)
			child = spawn()
			m.Close()
			waitGone(t, child)
		})
	}
}

// TestToolSchemaThatDoesNotCompileRefused: a tool plugin whose argument
// schema is not a JSON Schema is refused when its manifest is checked (at
// install), instead of installing fine and being left out at every start.
func TestToolSchemaThatDoesNotCompileRefused(t *testing.T) {
	t.Parallel()
	m := installMode(t, t.TempDir(), "echo", sdk.KindTool, "tool")
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	m.Tool.Schema = json.RawMessage(`{"type":"nonsense","properties":5}`)
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "manifest of echo: the tool's argument schema") {
		t.Fatalf("bad schema: %v", err)
	}
	// Arguments are a JSON object: a schema of another type could never
	// be met.
	for _, schema := range []string{`{"type":"array"}`, `{"type":["string","object"]}`, `true`} {
		m.Tool.Schema = json.RawMessage(schema)
		if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "must") {
			t.Errorf("schema %s: %v", schema, err)
		}
	}
}

// TestCrashedPluginLeavesNoSocket: the Unix socket of a plugin that died
// mid-call (no clean exit to remove it) is removed by the host.
func TestCrashedPluginLeavesNoSocket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	if _, err := callEcho(t, m, "echo", `{"text":"hi"}`); err != nil {
		t.Fatal(err)
	}
	p, _ := m.Plugin("echo")
	p.mu.Lock()
	sock := p.sock
	p.mu.Unlock()
	if _, err := os.Lstat(sock); sock == "" || err != nil {
		t.Fatalf("socket %q: %v", sock, err)
	}
	if _, err := callEcho(t, m, "echo", `{"crash":true}`); err == nil {
		t.Fatal("crash: no error")
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket %s after the crash: %v", sock, err)
	}
}

// A reply larger than MaxReply is refused as it arrives, with an error
// that says so; the plugin keeps serving.
func TestOversizedReplyIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	installMode(t, dir, "echo", sdk.KindTool, "tool")
	m := newTestManager(t, Options{Dirs: []string{dir}})
	if res, err := callEcho(t, m, "echo", `{"bytes": 1048576}`); err != nil || len(res.Text) != 1<<20 {
		t.Fatalf("a 1 MiB reply: %d bytes, %v", len(res.Text), err)
	}
	_, err := callEcho(t, m, "echo", `{"bytes": `+strconv.Itoa(MaxReply+1)+`}`)
	want := "plugin echo: tool call: message too large: the reply of " + strconv.Itoa(MaxReply+6) + " bytes is over the 16 MiB the host reads from a plugin"
	if err == nil || err.Error() != want || !errors.Is(err, sdk.ErrTooLarge) {
		t.Fatalf("an oversized reply: %v\nwant %s", err, want)
	}
	if res, err := callEcho(t, m, "echo", `{"text":"still here"}`); err != nil || res.Text != "still here" {
		t.Fatalf("after it: %+v, %v", res, err)
	}
}
