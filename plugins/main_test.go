package plugins

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/sdk"
)

// The fault suite runs real plugin subprocesses: this test binary re-execs
// itself with --ponder-test-plugin=MODE and serves the plugin MODE names
// (see servePlugin), so no separate build is needed.

const modeFlag = "--ponder-test-plugin="

// slowStart is how long the tool-slow-start plugin takes before it serves.
const slowStart = 1500 * time.Millisecond

func TestMain(m *testing.M) {
	for _, a := range os.Args[1:] {
		if mode, ok := strings.CutPrefix(a, modeFlag); ok {
			servePlugin(mode)
			return
		}
	}
	os.Exit(m.Run())
}

// echoTool answers {"text": X} with X; {"crash": true} exits the process
// mid-call, {"hang": true} never answers, {"spawn": K} starts a helper
// process that outlives the call and answers its pid (see spawnHelper), {"bytes": N} answers N bytes,
// {"gopanic": true} panics in a goroutine, {"wait": true} answers when the
// call is cancelled, {"sleep_ms": N} answers after N ms (or when
// cancelled), {"log": M} logs M (sdk.Logger), prints it to stderr and
// to stdout, and {"spam": N, "spam_bytes": B} prints N lines of B bytes
// to stderr.
type echoTool struct{}

func (echoTool) Spec() sdk.ToolSpec {
	return sdk.ToolSpec{Name: "echo", Description: "echoes text", Schema: json.RawMessage(`{"type":"object"}`)}
}

func (echoTool) Call(ctx context.Context, args json.RawMessage) (sdk.ToolResult, error) {
	var in struct {
		Text  string `json:"text"`
		Crash bool   `json:"crash"`
		Hang  bool   `json:"hang"`
		Spawn string `json:"spawn"`
		Bytes int    `json:"bytes"`
		Log   string `json:"log"`
		Panic bool   `json:"gopanic"`
		Wait  bool   `json:"wait"`
		Sleep int    `json:"sleep_ms"`
		Spam  int    `json:"spam"`
		SpamB int    `json:"spam_bytes"`
	}
	if err := json.Unmarshal(args, &in); err != nil {
		return sdk.ToolResult{Text: err.Error(), IsError: true}, nil
	}
	if in.Log != "" {
		// After Serve, go-plugin has swapped os.Stdout and os.Stderr for
		// pipes it streams to the host.
		l := sdk.Logger()
		l.Warn().Str("k", "v").Msg(in.Log)
		fmt.Fprintln(os.Stderr, "plain "+in.Log)
		fmt.Println("stdout " + in.Log)
	}
	if in.Spam > 0 {
		line := []byte(strings.Repeat("s", max(in.SpamB-1, 0)) + "\n")
		for range in.Spam {
			os.Stderr.Write(line)
		}
	}
	switch {
	case in.Spawn != "":
		pid, err := spawnHelper(in.Spawn)
		if err != nil {
			return sdk.ToolResult{Text: err.Error(), IsError: true}, nil
		}
		return sdk.ToolResult{Text: strconv.Itoa(pid)}, nil
	case in.Crash:
		os.Exit(3)
	case in.Panic: // a goroutine of the plugin's own panics: the process dies
		go func() { panic("boom in a goroutine") }()
		select {}
	case in.Hang:
		select {} // ignores ctx on purpose
	case in.Wait: // until the call is cancelled, as a plugin should
		<-ctx.Done()
		return sdk.ToolResult{}, ctx.Err()
	case in.Bytes > 0:
		return sdk.ToolResult{Text: strings.Repeat("x", in.Bytes)}, nil
	case in.Sleep > 0:
		select {
		case <-time.After(time.Duration(in.Sleep) * time.Millisecond):
		case <-ctx.Done():
			return sdk.ToolResult{}, ctx.Err()
		}
	}
	return sdk.ToolResult{Text: in.Text}, nil
}

func servePlugin(mode string) {
	switch mode {
	case "tool":
		sdk.Serve(sdk.Plugin{Name: "echo", Version: "0.1.0", Tool: echoTool{}})
	case "tool-slow-start":
		// A plugin that takes a while to load before it serves (a model,
		// an index): longer than the callers in the start tests wait.
		time.Sleep(slowStart)
		sdk.Serve(sdk.Plugin{Name: "echo", Version: "0.1.0", Tool: echoTool{}})
	case "tool-stuck-start":
		time.Sleep(5 * time.Minute) // never gets to serve
		sdk.Serve(sdk.Plugin{Name: "echo", Version: "0.1.0", Tool: echoTool{}})
	case "tool-helper":
		// A plugin that starts a helper process before it serves (a model
		// server, a wrapper script's background job) and lets it write to
		// its own stdout and stderr: the helper holds the pipes go-plugin
		// reads the plugin's output from.
		startHelper(true)
		sdk.Serve(sdk.Plugin{Name: "echo", Version: "0.1.0", Tool: echoTool{}})
	case "tool-helper-stuck-start":
		// Starts a helper (writing to the plugin's output when
		// $ECHO_HELPER_INHERIT is set, else to /dev/null), then never
		// gets to its handshake.
		startHelper(os.Getenv("ECHO_HELPER_INHERIT") != "")
		time.Sleep(5 * time.Minute)
	case "tool-noisy":
		// Lines go-plugin's own parser would panic on, then a normal log.
		fmt.Fprintln(os.Stderr, `{"@message": 1, "@level": 5, "@timestamp": 7}`)
		fmt.Fprintln(os.Stderr, `{"@timestamp": "yesterday"}`)
		fmt.Fprintln(os.Stderr, "plain text line")
		l := sdk.Logger()
		l.Warn().Str("k", "v").Msg("hello from the plugin")
		sdk.Serve(sdk.Plugin{Name: "echo", Version: "0.1.0", Tool: echoTool{}})
	case "evaluator":
		sdk.Serve(sdk.Plugin{Name: "half", Version: "0.1.0", Evaluator: sdk.EvaluatorFunc(
			func(ctx context.Context, req sdk.EvalRequest) (sdk.Evaluation, error) {
				return sdk.Evaluation{Score: 0.5, Kind: core.ScoreValue}, nil
			})})
	case "strategy":
		sdk.Serve(sdk.Plugin{Name: "one-shot", Version: "0.1.0", Strategy: sdk.StrategyFunc(oneShot)})
	case "strategy-note":
		sdk.Serve(sdk.Plugin{Name: "noted", Version: "0.1.0", Strategy: sdk.StrategyFunc(
			func(context.Context, sdk.Host, sdk.RunRequest) (sdk.Outcome, error) {
				return sdk.Outcome{Note: "no answer: every candidate was pruned"}, nil
			})})
	case "strategy-greedy":
		sdk.Serve(sdk.Plugin{Name: "greedy", Version: "0.1.0", Strategy: sdk.StrategyFunc(greedy)})
	case "tool-unreported":
		// A plugin of an SDK without the Calls service.
		cfg := sdk.ServeConfig(sdk.Plugin{Name: "echo", Version: "0.1.0", Tool: echoTool{}})
		cfg.GRPCServer = func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, grpc.UnaryInterceptor(
				func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
					if strings.HasPrefix(info.FullMethod, "/ponder.plugin.v1.Calls/") {
						return nil, status.Error(codes.Unimplemented, "unknown service")
					}
					return h(ctx, req)
				}))...)
		}
		plugin.Serve(cfg)
	case "strategy-hang":
		sdk.Serve(sdk.Plugin{Name: "stuck", Version: "0.1.0", Strategy: sdk.StrategyFunc(
			func(ctx context.Context, host sdk.Host, req sdk.RunRequest) (sdk.Outcome, error) {
				host.Generate(ctx, 0, 1, sdk.GenerateOptions{Whole: true}) // tells the test it runs
				select {}                                                  // ignores ctx on purpose
			})})
	case "strategy-polite":
		sdk.Serve(sdk.Plugin{Name: "polite", Version: "0.1.0", Strategy: sdk.StrategyFunc(polite)})
	case "strategy-hoard":
		sdk.Serve(sdk.Plugin{Name: "hoard", Version: "0.1.0", Strategy: sdk.StrategyFunc(hoard)})
	case "wrong-protocol":
		cfg := sdk.ServeConfig(sdk.Plugin{Name: "echo", Tool: echoTool{}})
		cfg.HandshakeConfig.ProtocolVersion = sdk.ProtocolVersion + 1
		plugin.Serve(cfg)
	case "refused":
		// sdk.Serve refuses a tool whose schema is not JSON, on stderr.
		sdk.Serve(sdk.Plugin{Name: "echo", Version: "0.1.0", Tool: badSchema{}})
	case "panic-at-start":
		go func() { panic("boom at start") }()
		select {}
	case "not-plugin":
		fmt.Println("hello, I am not a plugin")
	case "silent-exit":
		os.Exit(0)
	case "host":
		runHost()
	case "daemon":
		// Not a plugin: starts a daemon (see spawnHelper), prints its pid
		// and waits to be killed.
		pid, err := spawnHelper("orphan")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(pid)
		select {}
	default:
		fmt.Fprintln(os.Stderr, "unknown test plugin mode", mode)
		os.Exit(2)
	}
}

// startHelper starts `sleep 300` and writes its pid to $ECHO_HELPER_PIDFILE;
// inherit: the helper writes to the plugin's own stdout and stderr.
func startHelper(inherit bool) {
	c := exec.Command("sleep", "300")
	if inherit {
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
	}
	if err := c.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	pid, err := hostPID(c.Process.Pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper pid:", err)
		os.Exit(2)
	}
	if err := os.WriteFile(os.Getenv("ECHO_HELPER_PIDFILE"), []byte(strconv.Itoa(pid)), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "helper pid:", err)
		os.Exit(2)
	}
}

// spawnHelper starts a `sleep 300` that outlives the call and returns its
// pid as the test sees it (hostPID). kind: "child", a child in the
// plugin's process group; "setsid", a child in a session of its own;
// "orphan", a grandchild in a session of its own whose parent exited (a
// daemon), so that the plugin is not its parent either.
func spawnHelper(kind string) (int, error) {
	var c *exec.Cmd
	switch kind {
	case "child", "setsid":
		c = exec.Command("sleep", "300")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: kind == "setsid"}
	case "orphan":
		// sh runs setsid in the background without job control, so the
		// job is no group leader and setsid(1) execs sleep without a fork:
		// $! is sleep's pid.
		out, err := exec.Command("sh", "-c", "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!").Output()
		if err != nil {
			return 0, fmt.Errorf("orphan: %w", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			return 0, fmt.Errorf("orphan pid %q: %w", out, err)
		}
		return hostPID(pid)
	default:
		return 0, fmt.Errorf("spawn %q: child, setsid or orphan", kind)
	}
	if err := c.Start(); err != nil {
		return 0, err
	}
	go c.Wait()
	return hostPID(c.Process.Pid)
}

// hostPID turns the pid of a process the plugin started, as the plugin
// sees it, into the pid the test sees: they differ when the plugin runs in
// a PID namespace of its own. /proc is the host's, so each process's
// NSpid line lists its pid in every namespace, the host's first and the
// plugin's last.
func hostPID(pid int) (int, error) {
	self, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return pid, nil // no /proc: no namespaces either
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	want := strconv.Itoa(pid)
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if ns, _ := os.Readlink("/proc/" + e.Name() + "/ns/pid"); ns != self {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/status")
		for line := range strings.Lines(string(b)) {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "NSpid:" && f[len(f)-1] == want {
				return strconv.Atoi(f[1])
			}
		}
	}
	return 0, fmt.Errorf("no process %d in the plugin's PID namespace", pid)
}

// badSchema is a tool whose schema is not JSON: sdk.Serve refuses it.
type badSchema struct{ echoTool }

func (badSchema) Spec() sdk.ToolSpec {
	return sdk.ToolSpec{Name: "echo", Description: "echoes text", Schema: json.RawMessage(`{"type":`)}
}

// oneShot generates one whole solution and answers with it.
func oneShot(ctx context.Context, host sdk.Host, req sdk.RunRequest) (sdk.Outcome, error) {
	nodes, err := host.Generate(ctx, 0, 1, sdk.GenerateOptions{Whole: true})
	if err != nil {
		return sdk.Outcome{}, err
	}
	if len(nodes) == 0 || nodes[0].Answer == "" {
		return sdk.Outcome{}, fmt.Errorf("no answer")
	}
	if _, err := host.UpdateNode(ctx, nodes[0].ID, sdk.NodeUpdate{Scores: map[string]float64{core.ScoreValue: 0.25}}); err != nil {
		return sdk.Outcome{}, err
	}
	if err := host.Trace(ctx, core.OpInfo, []sdk.NodeID{nodes[0].ID}, map[string]any{"note": "one shot"}); err != nil {
		return sdk.Outcome{}, err
	}
	return sdk.Outcome{Answer: nodes[0].Answer, Best: nodes[0].ID}, nil
}

// greedy adds answer nodes and keeps asking the policy, ignoring every
// error, the budget's included: the host must stop it.
func greedy(ctx context.Context, host sdk.Host, req sdk.RunRequest) (sdk.Outcome, error) {
	for {
		nodes, _ := host.Generate(context.Background(), 0, 1, sdk.GenerateOptions{Whole: true})
		_ = nodes
		time.Sleep(time.Millisecond)
	}
}

// polite generates until the host refuses, then returns the host's error
// wrapped, as a well-behaved strategy does.
func polite(ctx context.Context, host sdk.Host, req sdk.RunRequest) (sdk.Outcome, error) {
	for {
		if _, err := host.Generate(ctx, 0, 1, sdk.GenerateOptions{Whole: true}); err != nil {
			return sdk.Outcome{}, fmt.Errorf("search: %w", err)
		}
	}
}

// hoard puts what its problem says into the run ("WHAT BYTES COUNT": COUNT
// times a payload of BYTES) and answers "N all", or "N refused: ERROR" at
// the first call the host refused. WHAT is content, answer or meta (of a
// new node), update (meta of one node), stats (Value and Visits of a node
// of BYTES) or trace (event data). With a fourth number, "WHAT BYTES COUNT
// ANSWER", it answers with about ANSWER bytes of two-byte runes instead.
func hoard(ctx context.Context, host sdk.Host, req sdk.RunRequest) (sdk.Outcome, error) {
	var (
		what        string
		size, count int
		answer      = -1 // bytes of the answer, when the problem gives a fourth number
	)
	if n, err := fmt.Sscan(req.Task.Problem, &what, &size, &count, &answer); n < 3 {
		return sdk.Outcome{}, fmt.Errorf("problem %q: %w", req.Task.Problem, err)
	}
	payload := strings.Repeat("x", size)
	var id sdk.NodeID
	if what == "update" || what == "stats" {
		var err error
		if id, err = host.AddNode(ctx, []sdk.NodeID{0}, sdk.Node{Kind: core.KindStep, Content: payload[:min(size, 1<<19)]}); err != nil {
			return sdk.Outcome{}, err
		}
	}
	for i := range count {
		var err error
		switch what {
		case "content":
			_, err = host.AddNode(ctx, []sdk.NodeID{0}, sdk.Node{Kind: core.KindStep, Content: payload})
		case "answer":
			_, err = host.AddNode(ctx, []sdk.NodeID{0}, sdk.Node{Kind: core.KindAnswer, Answer: payload, Terminal: true})
		case "meta":
			_, err = host.AddNode(ctx, []sdk.NodeID{0}, sdk.Node{Kind: core.KindStep, Content: "m", Meta: map[string]any{"blob": payload}})
		case "update":
			_, err = host.UpdateNode(ctx, id, sdk.NodeUpdate{Meta: map[string]any{"blob": payload}})
		case "stats":
			v, n := float64(i)/float64(count), i
			_, err = host.UpdateNode(ctx, id, sdk.NodeUpdate{Value: &v, Visits: &n})
		case "trace":
			err = host.Trace(ctx, core.OpInfo, nil, map[string]any{"blob": payload})
		case "trace-prune":
			err = host.Trace(ctx, core.OpPrune, []sdk.NodeID{0}, nil)
		case "trace-evaluate":
			err = host.Trace(ctx, core.OpEvaluate, []sdk.NodeID{0}, map[string]any{"kind": "value", "score": 1.0})
		}
		if err != nil {
			return sdk.Outcome{Answer: fmt.Sprintf("%d refused: %v", i, err)}, nil
		}
	}
	if answer >= 0 {
		// "é" is two bytes: a cut at an odd byte falls inside one.
		return sdk.Outcome{Answer: "1" + strings.Repeat("é", answer/2)}, nil
	}
	return sdk.Outcome{Answer: fmt.Sprintf("%d all", count)}, nil
}

// runHost is a Ponder stand-in for the shutdown tests: it starts the tool
// plugin, prints its pid and waits for SIGTERM, then closes the manager.
func runHost() {
	dir := os.Getenv("PLUGIN_TEST_DIR")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	m := New(&Options{Dirs: []string{dir}})
	m.Load()
	p, _ := m.Plugin("echo")
	if _, err := p.Remote(context.Background()); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	// A daemon of the plugin's (see spawnHelper), which only a PID
	// namespace takes down with it.
	daemon := "0"
	for _, tl := range m.Tools() {
		if res, err := tl.Call(context.Background(), json.RawMessage(`{"spawn":"orphan"}`)); err == nil && !res.IsError {
			daemon = res.Text
		}
	}
	fmt.Println(p.Status().PID, daemon)
	<-sigs
	m.Close()
}

// installMode lays out a plugin directory whose binary is this test
// binary (a symlink) serving mode, with a manifest as install writes.
func installMode(t testing.TB, root, name string, kind sdk.Kind, mode string) Manifest {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(dir, "plugin")); err != nil {
		t.Fatal(err)
	}
	return writeTestManifest(t, dir, name, kind, "plugin", []string{modeFlag + mode})
}

// writeTestManifest writes the manifest install would of the plugin name
// in dir, whose binary is there, run with args.
func writeTestManifest(t testing.TB, dir, name string, kind sdk.Kind, binary string, args []string) Manifest {
	t.Helper()
	sum, err := FileSHA256(filepath.Join(dir, binary))
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{Name: name, Kind: kind, Version: "0.1.0", ProtocolVersion: sdk.ProtocolVersion, Binary: binary, SHA256: sum,
		Args: args, Dir: dir}
	if kind == sdk.KindTool {
		m.Tool = &core.ToolSpec{Name: name, Description: "echoes text", Schema: json.RawMessage(`{"type":"object"}`)}
	}
	if err := WriteManifest(m); err != nil {
		t.Fatal(err)
	}
	return m
}

// writeScript writes at path, with perm, a shell script that runs this
// test binary as the plugin mode names: as the script itself (exec), or as
// its child (the plugin outlives a script killed alone).
func writeScript(t testing.TB, path, mode string, exec bool, perm os.FileMode) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := ""
	if exec {
		run = "exec "
	}
	body := "#!/bin/sh\n" + run + "'" + strings.ReplaceAll(self, "'", `'\''`) + "' " + modeFlag + mode + "\n"
	if err := os.WriteFile(path, []byte(body), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
}

// loggedManager is newTestManager logging into a buffer the test reads,
// shown with the test's output when it fails.
func loggedManager(t *testing.T, o Options) (*Manager, *testutil.LockedBuffer) {
	t.Helper()
	logs := new(testutil.LockedBuffer)
	o.Logger = zerolog.New(logs)
	m := newTestManager(t, o)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	return m, logs
}

func newTestManager(t testing.TB, o Options) *Manager {
	t.Helper()
	if o.StartTimeout == 0 {
		o.StartTimeout = 5 * time.Second
	}
	m := New(&o)
	t.Cleanup(func() { m.Close() })
	if errs := m.Load(); len(errs) > 0 {
		t.Fatal(errs)
	}
	return m
}

func callEcho(t testing.TB, m *Manager, name, args string) (core.ToolResult, error) {
	t.Helper()
	for _, tl := range m.Tools() {
		if tl.Spec().Name == name {
			return tl.Call(context.Background(), json.RawMessage(args))
		}
	}
	t.Fatalf("no tool %s", name)
	return core.ToolResult{}, nil
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	// A zombie still answers signal 0; read its state.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func waitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d is still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
