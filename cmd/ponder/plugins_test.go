package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/plugins"
	"github.com/ponder-rlm/ponder/sdk"
)

var (
	examplesOnce sync.Once
	examplesDir  string
	examplesErr  error
)

// exampleBins builds the three example plugins once, as `make examples`
// does, and returns the directory holding them.
func exampleBins(t *testing.T) string {
	t.Helper()
	examplesOnce.Do(func() {
		// Beside the ponder binary: TestMain removes that directory.
		examplesDir = filepath.Join(filepath.Dir(ponderBin), "plugins")
		if examplesErr = os.MkdirAll(examplesDir, 0o755); examplesErr != nil {
			return
		}
		for name, pkg := range map[string]string{"wordcount": "wordcount", "game24-verifier": "game24", "beam-lite": "beam"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(examplesDir, name), "../../examples/plugins/"+pkg).CombinedOutput()
			if err != nil {
				examplesErr = err
				t.Logf("%s", out)
				return
			}
		}
	})
	if examplesErr != nil {
		t.Fatal(examplesErr)
	}
	return examplesDir
}

// TestPluginsInstallListCheckSolve is the plugin author's path: install the
// three examples, list them, check one, and solve with the strategy plugin
// on the simulator (its policy calls go through the host).
func TestPluginsInstallListCheckSolve(t *testing.T) {
	bins := exampleBins(t)
	data := t.TempDir()
	env := []string{"PONDER_DATA_DIR=" + data}
	for _, name := range []string{"wordcount", "game24-verifier", "beam-lite"} {
		r := runPonder(t, "", env, "plugins", "install", filepath.Join(bins, name))
		if r.code != 0 || !strings.Contains(r.stdout, "installed "+name+" 1.0.0") {
			t.Fatalf("install %s: %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
	}
	r := runPonder(t, "", env, "plugins", "list")
	for _, want := range []string{"wordcount        tool       1.0.0    ready", "game24-verifier  evaluator  1.0.0    ready", "beam-lite        strategy   1.0.0    ready"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, r.stdout)
		}
	}
	r = runPonder(t, "", env, "plugins", "check", "beam-lite")
	if r.code != 0 || !strings.Contains(r.stdout, "checksum   matches the manifest") || !strings.HasSuffix(r.stdout, "ok\n") {
		t.Fatalf("check: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The binary of an installed plugin, named by its path, is checked
	// against its manifest too.
	r = runPonder(t, "", env, "plugins", "check", filepath.Join(data, "plugins", "beam-lite", "beam-lite"))
	if r.code != 0 || !strings.Contains(r.stdout, "checksum   matches the manifest") {
		t.Fatalf("check by the installed binary's path: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// wordcount requires "text": its test call is not made with {}, which
	// the host would never pass it.
	r = runPonder(t, "", env, "plugins", "check", "wordcount")
	if r.code != 0 || !strings.Contains(r.stdout, "test call  skipped: {} does not meet the tool's schema") || !strings.Contains(r.stdout, `"text": missing`) {
		t.Fatalf("check wordcount: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runPonder(t, "", env, "strategies")
	if !strings.Contains(r.stdout, "beam-lite (beam-lite)") {
		t.Errorf("strategies lacks the plugin:\n%s", r.stdout)
	}

	url := simtest.Start(t, sim.Options{Seed: 2, DataDir: "../../../shared/data"})
	r = runPonder(t, "", append(env, "PONDER_LLM_BASE_URL="+url), "solve", "--strategy", "beam-lite", "--param", "evaluator=game24-verifier",
		"--param", "width=3", "--json", "4 9 10 13")
	var out solveOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("solve: %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if out.Strategy != "beam-lite" || out.Answer == "" || out.Usage.LLMCalls == 0 || out.StoppedReason != "done" {
		t.Fatalf("solve output %+v", out)
	}
}

// TestPluginsBadInput: what is not a plugin, or was changed after install,
// is refused with a message that says what to do.
func TestPluginsBadInput(t *testing.T) {
	bins := exampleBins(t)
	data := t.TempDir()
	env := []string{"PONDER_DATA_DIR=" + data}

	script := filepath.Join(t.TempDir(), "notaplugin")
	os.WriteFile(script, []byte("#!/bin/sh\necho hello\n"), 0o755)
	r := runPonder(t, "", env, "plugins", "install", script)
	if r.code != 1 || !strings.Contains(r.stderr, "not a Ponder plugin") {
		t.Errorf("install of a script: %d %s", r.code, r.stderr)
	}
	// Not found is exit 1 (as for a missing trace or document); a command
	// line that cannot be right is exit 2.
	r = runPonder(t, "", env, "plugins", "check", "nosuch")
	if r.code != 1 || !strings.Contains(r.stderr, "no installed plugin of that name") {
		t.Errorf("check of an unknown name: %d %s", r.code, r.stderr)
	}
	r = runPonder(t, "", env, "plugins", "remove", "nosuch")
	if r.code != 1 || !strings.Contains(r.stderr, "plugin nosuch is not installed in") {
		t.Errorf("remove of an unknown name: %d %s", r.code, r.stderr)
	}
	r = runPonder(t, "", env, "plugins", "remove", "BadName")
	if r.code != 2 || !strings.Contains(r.stderr, "use lower-case letters") {
		t.Errorf("remove of an impossible name: %d %s", r.code, r.stderr)
	}
	// A plugin installed with --dir is removed with --dir; without it the
	// error says where it is.
	other := t.TempDir()
	if r = runPonder(t, "", env, "plugins", "install", "--dir", other, filepath.Join(bins, "wordcount")); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r = runPonder(t, "", env, "--plugin-dir", other, "plugins", "remove", "wordcount")
	if r.code != 1 || !strings.Contains(r.stderr, "remove it with --dir "+other) {
		t.Errorf("remove of a plugin in another directory: %d %s", r.code, r.stderr)
	}
	// A manifest this Ponder cannot read (here: of another protocol) does
	// not keep the plugin from being removed.
	mf := filepath.Join(other, "wordcount", plugins.ManifestFile)
	b, _ := os.ReadFile(mf)
	os.WriteFile(mf, bytes.Replace(b, []byte(`"protocol_version": 1`), []byte(`"protocol_version": 2`), 1), 0o644)
	r = runPonder(t, "", env, "plugins", "remove", "--dir", other, "wordcount")
	if _, err := os.Stat(filepath.Dir(mf)); r.code != 0 || !os.IsNotExist(err) {
		t.Errorf("remove --dir of a plugin of another protocol: %d %s %v", r.code, r.stderr, err)
	}

	r = runPonder(t, "", env, "plugins", "install", filepath.Join(bins, "beam-lite"))
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	bin := filepath.Join(data, "plugins", "beam-lite", "beam-lite")
	f, _ := os.OpenFile(bin, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("tampered"))
	f.Close()
	r = runPonder(t, "", env, "plugins", "list")
	if !strings.Contains(r.stdout, "checksum mismatch") {
		t.Errorf("list after tampering:\n%s", r.stdout)
	}
	// check says so once, by the plugin's name, directory or binary.
	for _, target := range []string{"beam-lite", filepath.Dir(bin), bin} {
		r = runPonder(t, "", env, "plugins", "check", target)
		if r.code != 1 || strings.Count(r.stderr, "checksum mismatch") != 1 || !strings.Contains(r.stderr, "the manifest says") {
			t.Errorf("check %s after tampering: %d\n%s%s", target, r.code, r.stdout, r.stderr)
		}
	}
	url := simtest.Start(t, sim.Options{Seed: 2, DataDir: "../../../shared/data"})
	r = runPonder(t, "", append(env, "PONDER_LLM_BASE_URL="+url), "solve", "--strategy", "beam-lite", "What is 6 times 7?")
	if r.code != 1 || !strings.Contains(r.stderr, "checksum mismatch") || !strings.Contains(r.stderr, "refusing to start") {
		t.Errorf("solve with a tampered plugin: %d\n%s", r.code, r.stderr)
	}

	// --plugin-dir adds a directory; a built binary there without a
	// manifest is not a plugin yet.
	r = runPonder(t, "", nil, "plugins", "list", "--plugin-dir", bins, "--json")
	var list struct {
		Plugins []pluginRow `json:"plugins"`
		Dirs    []string    `json:"dirs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Plugins) != 0 || list.Dirs[0] != bins {
		t.Errorf("list --plugin-dir: %v %s", err, r.stdout)
	}
}

func TestParamDefault(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{"", `default ""`},
		{" x", `default " x"`},
		{"judge", "default judge"},
		{float64(2), "default 2"},
		{false, "default false"},
		{nil, "no default"},
	} {
		if got := paramDefault(c.v); got != c.want {
			t.Errorf("paramDefault(%#v) = %s, want %s", c.v, got, c.want)
		}
	}
}

// childPIDs lists the children of pid (from /proc).
func childPIDs(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// TestServeStopsPluginsOnSIGTERM: `ponder serve` with eager plugins leaves
// no plugin process behind when it is stopped with SIGTERM.
func TestServeStopsPluginsOnSIGTERM(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("needs /proc")
	}
	bins := exampleBins(t)
	data := t.TempDir()
	env := []string{"PONDER_DATA_DIR=" + data}
	if r := runPonder(t, "", env, "plugins", "install", filepath.Join(bins, "wordcount")); r.code != 0 {
		t.Fatal(r.stderr)
	}
	cmd := exec.Command(ponderBin, "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(cleanEnv(), "PONDER_DATA_DIR="+data, "PONDER_PLUGIN_START=eager", "PONDER_LOG_LEVEL=warn")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var kids []int
	deadline := time.Now().Add(10 * time.Second)
	for len(kids) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no plugin child started\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
		kids = kids[:0]
		for _, pid := range childPIDs(cmd.Process.Pid) {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(b), "wordcount") {
				kids = append(kids, pid)
			}
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, stderr.String())
	}
	for _, pid := range kids {
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil || strings.Fields(string(b))[2] == "Z" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("plugin %d outlived ponder serve", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// testPlugin builds testdata/calcplugin once, beside the ponder binary
// (install copies it, so the tests can share it).
func testPlugin(t *testing.T) string {
	t.Helper()
	bin, err := buildCalcPlugin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var buildCalcPlugin = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(filepath.Dir(ponderBin), "calcplugin")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/calcplugin").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build calcplugin: %v\n%s", err, out)
	}
	return bin, nil
})

// A plugin named like a built-in is refused at install, naming the clash:
// serve and solve would skip it (built-ins are never replaced), and list
// said "ready". One installed while the built-in's name was free
// (tools.disabled) is listed as "name taken" and fails its check once the
// built-in is back, and is skipped with a warning: the built-in stays, and
// every command still works.
func TestPluginNamedLikeABuiltinTool(t *testing.T) {
	bin := testPlugin(t)
	data := t.TempDir()
	env := []string{"PONDER_DATA_DIR=" + data}
	r := runPonder(t, "", env, "plugins", "install", bin)
	if r.code != 1 || !strings.Contains(r.stderr, "plugin calc: its name is taken by the built-in tool calc: Ponder would skip this plugin") ||
		!strings.Contains(r.stderr, "rename it") {
		t.Errorf("install of a plugin named calc: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "plugins", "calc")); !os.IsNotExist(err) {
		t.Errorf("the refused plugin was installed: %v", err)
	}

	off := append(env, "PONDER_TOOLS_DISABLED=calc")
	if r := runPonder(t, "", off, "plugins", "install", bin); r.code != 0 {
		t.Fatalf("install with the built-in calc off: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runPonder(t, "", off, "tools", "call", "calc", "--args", `{"expression": "1"}`); r.code != 0 || !strings.Contains(r.stdout, "the plugin answered") {
		t.Errorf("the plugin standing in for calc: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runPonder(t, "", off, "plugins", "list"); !strings.Contains(r.stdout, "ready") {
		t.Errorf("list with calc off:\n%s%s", r.stdout, r.stderr)
	}

	r = runPonder(t, "", env, "plugins", "list")
	if !strings.Contains(r.stdout, "name taken") || !strings.Contains(r.stderr, "calc: the built-in tool calc has its name: serve and solve skip this plugin") {
		t.Errorf("list with calc on:\n%s%s", r.stdout, r.stderr)
	}
	r = runPonder(t, "", env, "plugins", "check", "calc")
	if r.code != 1 || strings.HasSuffix(r.stdout, "ok\n") || !strings.Contains(r.stderr, "plugin calc: its name is taken by the built-in tool calc: serve and solve skip it") {
		t.Errorf("check with calc on: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runPonder(t, "", env, "tools", "call", "calc", "--args", `{"expression": "1/3 + 1/6"}`)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "1/2") || !strings.Contains(r.stderr, "already registered") {
		t.Errorf("tools call calc: exit %d\nstdout: %s\nstderr: %s\nwant the built-in's 1/2 and a warning that the plugin's calc was not added", r.code, r.stdout, r.stderr)
	}
	if r := runPonder(t, "", env, "tools", "list"); r.code != 0 || strings.Contains(r.stdout, "Not the built-in") {
		t.Errorf("tools list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestBuiltinNamed(t *testing.T) {
	t.Parallel()
	var on, off config.Config
	off.Tools.Disabled = []string{"python", " calc"}
	for _, c := range []struct {
		cfg  config.Config
		kind sdk.Kind
		name string
		want string
	}{
		{on, sdk.KindStrategy, "cot", "the built-in strategy cot"},
		{on, sdk.KindStrategy, "mcts", "the built-in strategy mcts"},
		{on, sdk.KindStrategy, "beam-lite", ""},
		{on, sdk.KindEvaluator, "value", "the built-in evaluator value"},
		{on, sdk.KindEvaluator, "cot", ""},
		{on, sdk.KindTool, "calc", "the built-in tool calc"},
		{on, sdk.KindTool, "python", "the built-in tool python"},
		{on, sdk.KindTool, "retrieve", "the built-in tool retrieve"},
		{on, sdk.KindTool, "cot", ""},
		{off, sdk.KindTool, "calc", ""},
		{off, sdk.KindTool, "python", ""},
		{off, sdk.KindTool, "retrieve", "the built-in tool retrieve"},
	} {
		if got := builtinNamed(c.cfg, c.kind, c.name); got != c.want {
			t.Errorf("%s %s (disabled %v): %q, want %q", c.kind, c.name, c.cfg.Tools.Disabled, got, c.want)
		}
	}
}

// A tool plugin that never answers is stopped at plugins.call_timeout with
// the plugin's own message (the one docs/plugins.md lists, naming
// plugins.abandon_grace's value), not a generic tool timeout.
func TestHungToolPluginIsStoppedWithItsOwnMessage(t *testing.T) {
	bin := testPlugin(t)
	env := []string{"PONDER_DATA_DIR=" + t.TempDir(), "TESTPLUGIN_NAME=stuck", "PONDER_PLUGIN_CALL_TIMEOUT=1s", "PONDER_PLUGIN_ABANDON_GRACE=3s"}
	if r := runPonder(t, "", env, "plugins", "install", bin); r.code != 0 {
		t.Fatalf("install: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := runPonder(t, "", env, "tools", "call", "stuck", "--args", `{"hang": true}`)
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "did not answer within 1s (a plugin that keeps running it past 3s is restarted)") {
		t.Errorf("tools call stuck: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	// The tool reported nothing: the host gave up on it.
	if !strings.HasSuffix(r.stderr, "ponder: tool stuck: the call failed\n") || strings.Contains(r.stderr, "reported") {
		t.Errorf("tools call stuck ends with %q", r.stderr)
	}
}

// check describes a plugin without a summary without a dangling colon.
func TestDescribe(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		m    plugins.Manifest
		want string
	}{
		{plugins.Manifest{Name: "greedy", Kind: sdk.KindStrategy, Version: "0.1.0"}, `strategy "greedy" version 0.1.0`},
		{plugins.Manifest{Name: "upper", Kind: sdk.KindTool, Version: "0.1.0", Summary: "Upper-case a text."}, `tool "upper" version 0.1.0: Upper-case a text.`},
	} {
		if got := describe(c.m); got != c.want {
			t.Errorf("describe(%+v) = %q, want %q", c.m, got, c.want)
		}
	}
}

// The same plugin in two --plugin-dir directories: the second is valid
// but unused. It was listed as a nameless "? invalid" row without a
// directory; it is listed as itself, "shadowed", saying by which.
func TestPluginsListShadowed(t *testing.T) {
	bins := exampleBins(t)
	pd1, pd2 := t.TempDir(), t.TempDir()
	for _, d := range []string{pd1, pd2} {
		if r := runPonder(t, "", nil, "plugins", "install", "--dir", d, filepath.Join(bins, "wordcount")); r.code != 0 {
			t.Fatalf("install --dir %s: %d\n%s", d, r.code, r.stderr)
		}
	}
	r := runPonder(t, "", nil, "--plugin-dir", pd1, "--plugin-dir", pd2, "plugins", "list")
	used, shadowed := filepath.Join(pd1, "wordcount"), filepath.Join(pd2, "wordcount")
	for _, want := range []string{"wordcount  tool  1.0.0    ready     " + used, "wordcount  tool  1.0.0    shadowed  " + shadowed} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("list lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "invalid") || !strings.Contains(r.stderr, "wordcount: not used: shadowed by the wordcount in "+used+", which is found first") {
		t.Errorf("list:\n%s%s", r.stdout, r.stderr)
	}
	r = runPonder(t, "", nil, "--plugin-dir", pd1, "--plugin-dir", pd2, "plugins", "list", "--json")
	var list struct {
		Plugins []pluginRow `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Plugins) != 2 {
		t.Fatalf("list --json: %v\n%s", err, r.stdout)
	}
	if p := list.Plugins[1]; p.Name != "wordcount" || p.State != "shadowed" || p.Dir != shadowed || p.ShadowedBy != used || p.Kind != sdk.KindTool {
		t.Errorf("list --json: the shadowed plugin is %+v", p)
	}
}

// A plugin binary that lost its execute permission was listed "ready",
// and every start failed with "fork/exec …: permission denied". list and
// check say it is not executable and how to fix it.
func TestPluginsNotExecutable(t *testing.T) {
	bins := exampleBins(t)
	env := []string{"PONDER_DATA_DIR=" + t.TempDir()}
	r := runPonder(t, "", env, "plugins", "install", filepath.Join(bins, "wordcount"))
	if r.code != 0 {
		t.Fatalf("install: %d\n%s", r.code, r.stderr)
	}
	r = runPonder(t, "", env, "plugins", "list", "--json")
	var list struct {
		Plugins []pluginRow `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Plugins) != 1 {
		t.Fatalf("list --json: %v\n%s", err, r.stdout)
	}
	bin := filepath.Join(list.Plugins[0].Dir, "wordcount")
	if err := os.Chmod(bin, 0o644); err != nil {
		t.Fatal(err)
	}
	fix := "has mode -rw-r--r--, without execute permission, so it cannot be started: run `chmod +x " + bin + "`, or install it again"
	r = runPonder(t, "", env, "plugins", "list")
	if !strings.Contains(r.stdout, "wordcount  tool  1.0.0    not executable") || !strings.Contains(r.stderr, fix) {
		t.Errorf("list:\n%s%s", r.stdout, r.stderr)
	}
	r = runPonder(t, "", env, "plugins", "check", "wordcount")
	if r.code != 1 || !strings.Contains(r.stderr, "check failed: plugin wordcount: not executable: "+bin+" "+fix) {
		t.Errorf("check: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runPonder(t, "", env, "tools", "call", "wordcount", "--args", `{"text": "a b"}`)
	if r.code == 0 || !strings.Contains(r.stderr, "run `chmod +x "+bin+"`") {
		t.Errorf("tools call: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// The tutorial's folder holds the binary ./upper, and upper is installed:
// `plugins check upper` checked the local file and said "not installed".
// A bare name is the installed plugin (check says so when a file of that
// name is here too), an argument with a slash is a file; a bare name no
// plugin has is the file here. install takes a file, remove a name.
func TestPluginsNameOrPath(t *testing.T) {
	bins := exampleBins(t)
	data := t.TempDir()
	env := []string{"PONDER_DATA_DIR=" + data}
	work, empty := t.TempDir(), t.TempDir()
	b, err := os.ReadFile(filepath.Join(bins, "wordcount"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "wordcount"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	installed := filepath.Join(data, "plugins", "wordcount")
	for _, tt := range []struct {
		dir    string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		// Before install: the bare name is the file here.
		{work, []string{"check", "wordcount"}, 0, []string{"checksum   not installed (install with `ponder plugins install ./wordcount`)"}, nil},
		{empty, []string{"check", "wordcount"}, 1, nil, []string{`plugin "wordcount": no installed plugin of that name and no such file here`}},
		{work, []string{"install", "wordcount"}, 0, []string{"installed wordcount 1.0.0 (tool) in " + installed}, nil},
		// Installed: the bare name is the plugin, even with the file here.
		{work, []string{"check", "wordcount"}, 0, []string{"checksum   matches the manifest", "binary     " + installed},
			[]string{"note: checking the installed plugin wordcount (" + installed + "), not the file wordcount in this folder; to check that file, run `ponder plugins check ./wordcount`"}},
		{empty, []string{"check", "wordcount"}, 0, []string{"checksum   matches the manifest"}, nil},
		{work, []string{"check", "./wordcount"}, 0, []string{"checksum   not installed (install with `ponder plugins install ./wordcount`)", "binary     " + filepath.Join(work, "wordcount")}, nil},
		{empty, []string{"check", "./wordcount"}, 1, nil, []string{"plugin ./wordcount: no such file or directory"}},
		{empty, []string{"install", "wordcount"}, 1, nil, []string{"install failed: no file wordcount in this folder; wordcount is the name of the plugin installed in " + installed + ": install takes the path of a plugin binary"}},
		{work, []string{"remove", "./wordcount"}, 2, nil, []string{"plugin ./wordcount: remove takes an installed plugin's name, not a path (see `ponder plugins list`)"}},
		{work, []string{"remove", installed}, 2, nil, []string{"remove takes an installed plugin's name, not a path: run `ponder plugins remove wordcount`"}},
		{work, []string{"remove", "wordcount"}, 0, []string{"removed wordcount"}, nil},
	} {
		r := runPonderAt(t, tt.dir, "", env, append([]string{"plugins"}, tt.args...)...)
		ok := r.code == tt.code
		for _, w := range tt.stdout {
			ok = ok && strings.Contains(r.stdout, w)
		}
		for _, w := range tt.stderr {
			ok = ok && strings.Contains(r.stderr, w)
		}
		if !ok {
			t.Errorf("in %s: plugins %v: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q and %q", filepath.Base(tt.dir), tt.args, r.code, tt.code, r.stdout, r.stderr, tt.stdout, tt.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "wordcount")); err != nil {
		t.Errorf("the file in the folder: %v", err)
	}
}
