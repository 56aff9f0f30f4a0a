package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/internal/endpoint/endpointtest"
	"github.com/ponder-rlm/ponder/traces"
)

// ponderBin is the real binary, built once for the CLI tests.
var ponderBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ponder-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ponderBin = filepath.Join(dir, "ponder")
	if out, err := exec.Command("go", "build", "-o", ponderBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build ponder: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type runResult struct {
	stdout, stderr string
	code           int
}

// runPonder runs the binary with a clean PONDER_* environment and a private
// data dir.
func runPonder(t *testing.T, stdin string, env []string, args ...string) runResult {
	t.Helper()
	return runPonderAt(t, t.TempDir(), stdin, env, args...)
}

// runPonderAt is runPonder with dir as the working directory.
func runPonderAt(t *testing.T, dir, stdin string, env []string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(ponderBin, args...)
	cmd.Env = append(append(cleanEnv(), "PONDER_DATA_DIR="+t.TempDir(), "PONDER_LOG_LEVEL=warn"), env...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return runResult{out.String(), errb.String(), code}
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		// XDG_DATA_HOME would take the default data dir out of a test's
		// HOME (config's defaultDataDir).
		if !strings.HasPrefix(kv, "PONDER_") && !strings.HasPrefix(kv, "XDG_DATA_HOME=") {
			out = append(out, kv)
		}
	}
	return out
}

// fakeLLM answers chat completions with a fixed status and body.
func fakeLLM(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// closedPort returns a loopback URL nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	return "http://" + endpointtest.ClosedPort(t) + "/v1"
}

const okCompletion = `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"6 times 7 is 42, so \\boxed{42}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`

func TestSolveBadInputSaysWhatToChange(t *testing.T) {
	t.Parallel()
	good := fakeLLM(t, 200, okCompletion)
	unauthorized := fakeLLM(t, 401, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}`)
	tests := []struct {
		name  string
		stdin string
		env   []string
		args  []string
		code  int
		want  string
	}{
		{"unknown strategy", "", []string{"PONDER_LLM_BASE_URL=" + good}, []string{"solve", "--strategy", "telepathy", "2+2?"}, 2, `strategy "telepathy"`},
		{"unknown parameter", "", []string{"PONDER_LLM_BASE_URL=" + good}, []string{"solve", "--strategy", "self-consistency", "--param", "kk=3", "2+2?"}, 2, `unknown parameter "kk"`},
		{"bad parameter value", "", []string{"PONDER_LLM_BASE_URL=" + good}, []string{"solve", "--strategy", "self-consistency", "--param", "k=0", "2+2?"}, 2, `"k"`},
		{"malformed parameter", "", []string{"PONDER_LLM_BASE_URL=" + good}, []string{"solve", "--param", "k", "2+2?"}, 2, "want name=value"},
		{"budget of zero", "", []string{"PONDER_LLM_BASE_URL=" + good}, []string{"solve", "--budget-calls", "0", "2+2?"}, 2, "--budget-calls must be at least 1"},
		{"tool budget of zero", "", []string{"PONDER_LLM_BASE_URL=" + good}, []string{"solve", "--budget-tool-calls", "0", "2+2?"}, 2, "--budget-tool-calls must be at least 1"},
		{"empty problem", "   \n", []string{"PONDER_LLM_BASE_URL=" + good}, []string{"solve"}, 2, "problem is empty"},
		{"no LLM configured", "", nil, []string{"solve", "2+2?"}, 1, "PONDER_LLM_BASE_URL"},
		{"bad LLM URL", "", []string{"PONDER_LLM_BASE_URL=localhost:8000"}, []string{"solve", "2+2?"}, 1, "llm.base_url"},
		{"unreachable LLM", "", []string{"PONDER_LLM_BASE_URL=" + closedPort(t), "PONDER_LLM_MAX_RETRIES=0"}, []string{"solve", "2+2?"}, 1, "cannot connect"},
		{"401 from the LLM", "", []string{"PONDER_LLM_BASE_URL=" + unauthorized}, []string{"solve", "2+2?"}, 1, "PONDER_LLM_API_KEY"},
		{"bad config value", "", []string{"PONDER_LLM_CONCURRENCY=lots"}, []string{"solve", "2+2?"}, 1, "PONDER_LLM_CONCURRENCY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runPonder(t, tt.stdin, tt.env, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, tt.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "ponder: ") || !strings.Contains(last, tt.want) {
				t.Fatalf("stderr's last line %q does not say %q\nstderr: %s", last, tt.want, r.stderr)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
				t.Fatalf("stack trace on stderr:\n%s", r.stderr)
			}
			// A search that failed says why once (it was a note and the
			// command's error).
			if strings.Contains(r.stderr, "note: ") {
				t.Fatalf("stderr says the error twice:\n%s", r.stderr)
			}
		})
	}
}

// --budget-tool-calls bounds the tool calls of a search from the command
// line, as budget.tool_calls does over MCP (there was no flag for it).
func TestSolveToolCallBudget(t *testing.T) {
	t.Parallel()
	program := strings.Replace(okCompletion, `6 times 7 is 42, so \\boxed{42}`, "```python\\nprint(6 * 7)\\n```", 1)
	url := fakeLLM(t, 200, program)
	r := runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + url}, "solve", "--strategy", "pal", "--tools", "python",
		"--param", "k=3", "--param", "temperature=0.7", "--budget-tool-calls", "1", "--json", "What is 6 times 7?")
	var out struct {
		Answer  string `json:"answer"`
		Stopped string `json:"stopped_reason"`
		Usage   struct {
			ToolCalls int `json:"tool_calls"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("exit %d, %v: %s %s", r.code, err, r.stdout, r.stderr)
	}
	if out.Usage.ToolCalls != 1 || out.Stopped != "budget" || out.Answer != "42" {
		t.Fatalf("answer %q, stopped %s, %d tool calls; want 42 from the one tool call allowed, then budget", out.Answer, out.Stopped, out.Usage.ToolCalls)
	}
}

func TestSolveJSONOutput(t *testing.T) {
	t.Parallel()
	url := fakeLLM(t, 200, okCompletion)
	traceFile := filepath.Join(t.TempDir(), "trace.json")
	r := runPonder(t, "What is 6 times 7?", []string{"PONDER_LLM_BASE_URL=" + url}, "solve", "--json", "--trace", traceFile)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var out struct {
		Answer   string `json:"answer"`
		Strategy string `json:"strategy"`
		BestPath []struct {
			Content string `json:"content"`
		} `json:"best_path"`
		Usage struct {
			LLMCalls         int     `json:"llm_calls"`
			PromptTokens     int     `json:"prompt_tokens"`
			CompletionTokens int     `json:"completion_tokens"`
			WallMS           float64 `json:"wall_ms"`
		} `json:"usage"`
		Stopped string `json:"stopped_reason"`
		TraceID string `json:"trace_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, r.stdout)
	}
	if out.Answer != "42" || out.Strategy != "cot" || out.Stopped != "done" || len(out.TraceID) != 16 {
		t.Fatalf("unexpected result: %+v", out)
	}
	if out.Usage.LLMCalls != 1 || out.Usage.PromptTokens != 12 || out.Usage.CompletionTokens != 9 || out.Usage.WallMS <= 0 {
		t.Fatalf("usage: %+v", out.Usage)
	}
	if len(out.BestPath) != 1 || !strings.Contains(out.BestPath[0].Content, "boxed") {
		t.Fatalf("best path: %+v", out.BestPath)
	}
	tr, err := traces.ReadFile(traceFile)
	if err != nil {
		t.Fatal(err)
	}
	if tr.ID != out.TraceID || tr.Answer != "42" || tr.Structure.Len() != 2 {
		t.Fatalf("trace file: id %s answer %q nodes %d", tr.ID, tr.Answer, tr.Structure.Len())
	}
}

func TestSolveCtrlCPrintsBestSoFar(t *testing.T) {
	t.Parallel()
	// SIGTERM (a service manager's stop) exits 143, as a second one does:
	// it exited 130, Ctrl-C's status.
	for _, tc := range []struct {
		sig    os.Signal
		status int
	}{{os.Interrupt, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			t.Parallel()
			solveStopsOnSignal(t, tc.sig, tc.status)
		})
	}
}

func solveStopsOnSignal(t *testing.T, sig os.Signal, status int) {
	// The LLM answers the first sample at once and hangs on the rest, so an
	// interrupt arrives mid-search with one answer in hand.
	calls := make(chan struct{}, 100)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- struct{}{}
		if len(calls) > 1 {
			select {
			case <-r.Context().Done():
			case <-done:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, okCompletion)
	}))
	defer srv.Close()
	defer close(done)
	cmd := exec.Command(ponderBin, "solve", "--json", "--strategy", "self-consistency", "--param", "k=4", "What is 6 times 7?")
	cmd.Env = append(cleanEnv(), "PONDER_DATA_DIR="+t.TempDir(), "PONDER_LLM_BASE_URL="+srv.URL+"/v1", "PONDER_LLM_CONCURRENCY=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for len(calls) < 2 {
		select {
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("the search never reached its second call; stderr: %s", errb.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	_ = cmd.Process.Signal(sig)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-waited
		t.Fatalf("ponder did not exit within 30s of SIGINT; stderr: %s", errb.String())
	}
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != status {
		t.Fatalf("exit: %v, want status %d; stderr: %s", err, status, errb.String())
	}
	var res struct {
		Answer  string `json:"answer"`
		Stopped string `json:"stopped_reason"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("no JSON result after Ctrl-C: %v\n%s", err, out.String())
	}
	if res.Answer != "42" || res.Stopped != "cancelled" {
		t.Fatalf("after Ctrl-C: %+v, want the answer so far and stopped_reason cancelled", res)
	}
}
