package conformance

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
)

type sdkSolve struct {
	IsError    bool           `json:"isError"`
	Structured map[string]any `json:"structured"`
	Text       string         `json:"text"`
	Progress   []struct {
		Progress float64 `json:"progress"`
		Total    float64 `json:"total"`
		Message  string  `json:"message"`
	} `json:"progress"`
}

type sdkReport struct {
	Errors []string `json:"errors"`
	Tools  []string `json:"tools"`
	Solve  sdkSolve `json:"solve"`
	Cancel struct {
		Rejected bool   `json:"rejected"`
		Message  string `json:"message"`
		AfterMs  int    `json:"afterMs"`
	} `json:"cancel"`
	Traces []struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		LLMCalls int    `json:"llm_calls"`
		Problem  string `json:"problem"`
	} `json:"traces"`
	Ingest struct {
		IsError    bool           `json:"isError"`
		Structured map[string]any `json:"structured"`
		Text       string         `json:"text"`
	} `json:"ingest"`
	Search struct {
		IsError    bool           `json:"isError"`
		Structured map[string]any `json:"structured"`
		Text       string         `json:"text"`
	} `json:"search"`
	UnknownTool      string `json:"unknownTool"`
	PromptMissingArg string `json:"promptMissingArg"`
	UnknownTrace     string `json:"unknownTrace"`
	BadArgs          struct {
		IsError bool   `json:"isError"`
		Text    string `json:"text"`
	} `json:"badArgs"`
	Sampling *struct {
		Requests    int `json:"requests"`
		MaxInFlight int `json:"maxInFlight"`
	} `json:"sampling"`
	Budgeted         sdkSolve `json:"budgeted"`
	BudgetedRequests int      `json:"budgetedRequests"`
	SamplingCancel   *struct {
		Asked   int    `json:"asked"`
		Aborted int    `json:"aborted"`
		Outcome string `json:"outcome"`
	} `json:"samplingCancel"`
}

// runSDKClient runs testdata/sdkclient.mjs and decodes its report.
func runSDKClient(t *testing.T, env map[string]string) sdkReport {
	t.Helper()
	script, _ := filepath.Abs("testdata/sdkclient.mjs")
	vars := []string{"SDK_DIR=" + filepath.Join(npmDir(), "@modelcontextprotocol", "sdk"), "PONDER_BIN=" + ponderBin}
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	out, err := runNode(t, 2*time.Minute, vars, script)
	if err != nil {
		t.Fatalf("sdk client: %v\n%s", err, out)
	}
	var r sdkReport
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("sdk client report: %v\n%s", err, out)
	}
	return r
}

// TestTypeScriptSDKClient is the acceptance test of the MCP server: the
// official TypeScript SDK client connects over stdio and over HTTP, lists
// the tools, solves with progress (every notification before the result:
// the SDK reports a late one as an error), cancels a solve (the SDK reports
// a response to a cancelled request as an error), adds and searches a
// document, and gets errors for bad calls.
func TestTypeScriptSDKClient(t *testing.T) {
	node(t)
	simURL := simtest.Start(t, sim.Options{DataDir: sim.NoData, Latency: 50 * time.Millisecond})
	llmEnv := map[string]string{"PONDER_LLM_BASE_URL": simURL, "PONDER_LLM_MODEL": "ponder-sim"}
	for _, mode := range []string{"stdio", "http"} {
		t.Run(mode, func(t *testing.T) {
			env := map[string]string{"MODE": mode, "SCENARIO": "main"}
			for k, v := range llmEnv {
				env[k] = v
			}
			var p *proc
			if mode == "http" {
				p = startServe(t, llmEnv)
				env["PONDER_URL"] = p.url("/mcp")
			} else {
				env["PONDER_DATA_DIR"] = t.TempDir()
				env["PONDER_LOG_FORMAT"] = "json"
			}
			r := runSDKClient(t, env)
			if len(r.Errors) > 0 {
				t.Errorf("the SDK reported protocol errors (late progress, or a response to a cancelled request?): %q", r.Errors)
			}
			want := []string{"clear_session", "get_trace", "ingest_documents", "list_strategies", "search_documents", "solve"}
			if diff := cmp.Diff(want, r.Tools); diff != "" {
				t.Errorf("tools (-want +got):\n%s", diff)
			}

			s := r.Solve
			if s.IsError || s.Structured["stopped_reason"] != "done" || s.Structured["answer"] == "" || !strings.Contains(s.Text, "Answer:") {
				t.Fatalf("solve: %+v", s)
			}
			if len(s.Progress) == 0 {
				t.Fatal("no progress notifications")
			}
			last := s.Progress[len(s.Progress)-1]
			if last.Progress != 4 || last.Total != 4 || !strings.Contains(last.Message, "4 of 4 LLM calls") {
				t.Errorf("the last progress before the result should report the finished search: %+v", last)
			}

			if !r.Cancel.Rejected || !strings.Contains(r.Cancel.Message, "the user pressed stop") {
				t.Fatalf("cancel: %+v", r.Cancel)
			}
			var cancelled bool
			for _, tr := range r.Traces {
				if strings.Contains(tr.Problem, "19 * 21") {
					cancelled = tr.Status == "cancelled" && tr.LLMCalls < 100
					if !cancelled {
						t.Errorf("the cancelled solve's trace: %+v", tr)
					}
				}
			}
			if !cancelled {
				t.Errorf("no cancelled trace among %+v", r.Traces)
			}

			if r.Ingest.IsError || r.Ingest.Structured["added"] != float64(1) {
				t.Errorf("ingest: %+v", r.Ingest)
			}
			if r.Search.IsError || !strings.Contains(r.Search.Text, "14 days") || !strings.Contains(r.Search.Text, "refunds.md") {
				t.Errorf("search: %+v", r.Search)
			}
			if r.UnknownTool != "-32602" {
				t.Errorf("unknown tool: %q", r.UnknownTool)
			}
			// The whole text, as the assistant reads it (tools.ValidateArgs).
			if want := `solve: invalid arguments: argument "problem": got number, want string`; !r.BadArgs.IsError || r.BadArgs.Text != want {
				t.Errorf("wrong argument type: %+v, want the tool error %q", r.BadArgs, want)
			}
			if r.PromptMissingArg != "-32602" {
				t.Errorf("prompts/get without its required argument: %q, want -32602 (invalid params)", r.PromptMissingArg)
			}
			if r.UnknownTrace != "-32002" {
				t.Errorf("resources/read of a trace that does not exist: %q, want -32002 (resource not found)", r.UnknownTrace)
			}
			if p != nil {
				for _, secret := range []string{"17 * 23", "19 * 21", "Refunds are issued"} {
					if strings.Contains(p.stderr.String(), secret) {
						t.Errorf("the info log carries user content %q", secret)
					}
				}
			}
			if t.Failed() && p != nil {
				t.Logf("server log:\n%s", tail(p.stderr.String(), 4000))
			}
		})
	}
}

// TestTypeScriptSDKSampling runs Ponder without an LLM endpoint: a client
// that supports sampling lends its model, at most
// PONDER_SAMPLING_CONCURRENCY requests at a time, within the budget, and a
// cancelled solve cancels its sampling requests; a client that does not
// support sampling is told how to configure an endpoint (over stdio) or to
// contact the operator (over HTTP).
func TestTypeScriptSDKSampling(t *testing.T) {
	node(t)
	for _, mode := range []string{"stdio", "http"} {
		t.Run(mode, func(t *testing.T) {
			extra := map[string]string{"PONDER_SAMPLING_CONCURRENCY": "2"}
			env := map[string]string{"MODE": mode, "SCENARIO": "sampling"}
			if mode == "http" {
				p := startServe(t, extra)
				env["PONDER_URL"] = p.url("/mcp")
			} else {
				for k, v := range extra {
					env[k] = v
				}
				env["PONDER_DATA_DIR"] = t.TempDir()
			}
			r := runSDKClient(t, env)
			if len(r.Errors) > 0 {
				t.Errorf("protocol errors: %q", r.Errors)
			}
			if r.Solve.IsError || r.Solve.Structured["answer"] != "391" || r.Solve.Structured["policy"] != "sampling" {
				t.Fatalf("solve through sampling: %+v", r.Solve)
			}
			if r.Sampling == nil || r.Sampling.MaxInFlight > 2 || r.BudgetedRequests != 3 {
				t.Fatalf("sampling: %+v, %d requests under a budget of 3", r.Sampling, r.BudgetedRequests)
			}
			// A solve cancelled while the client's model answers cancels
			// its sampling requests (they went on before).
			if c := r.SamplingCancel; c == nil || c.Asked == 0 || c.Aborted != c.Asked ||
				!strings.Contains(c.Outcome, "the user pressed stop") {
				t.Fatalf("cancelling a solve during sampling: %+v (every sampling request should be cancelled)", c)
			}

			// Without sampling, a stdio client, which started the server,
			// is told how to configure an endpoint; a client over HTTP
			// cannot, and is sent to the operator.
			env["SCENARIO"] = "nosampling"
			r = runSDKClient(t, env)
			says, not := "PONDER_LLM_BASE_URL", "operator"
			if mode == "http" {
				says, not = "contact the server's operator", "PONDER_"
			}
			if !r.Solve.IsError || !strings.Contains(r.Solve.Text, says) || strings.Contains(r.Solve.Text, not) {
				t.Fatalf("without sampling or an endpoint: want %q and not %q: %+v", says, not, r.Solve)
			}
		})
	}
}
