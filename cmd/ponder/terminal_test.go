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
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/eval"
	"github.com/ponder-rlm/ponder/retrieval"
)

// hostile holds what a terminal acts on: a title change, a screen clear,
// a colour, a carriage return that hides what came before, a bidi
// override, a C1 CSI.
const hostile = "\x1b]0;pwned\x07\x1b[2J\x1b[31mRED\x1b[0m\rhidden\u202eevil\u009b2J"

// terminalControl returns the first rune of s that a terminal would act
// on (controls but newline and tab, ESC, C1, bidi overrides), if any.
func terminalControl(s string) (rune, bool) {
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) ||
			(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return r, true
		}
	}
	return 0, false
}

func assertInert(t *testing.T, what string, r runResult) {
	t.Helper()
	for name, s := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
		if c, ok := terminalControl(s); ok {
			t.Errorf("%s: %s holds %U: %q", what, name, c, s)
		}
	}
}

// hostileLLM answers every chat completion with a reply full of escape
// sequences, as a model (or a program whose output it quotes) may write.
func hostileLLM(t *testing.T) string {
	t.Helper()
	content := hostile + " 6 times 7 is 42, so \\boxed{42}"
	body, err := json.Marshal(map[string]any{
		"id": "x", "object": "chat.completion", "model": "m",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": content}}},
		"usage": map[string]any{"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// What models, programs, documents and traces wrote reaches the terminal
// inert from every command that prints it for a person; --json keeps it
// exactly (JSON escapes it), and so do the files Ponder writes.
func TestPlainOutputIsInertForTheTerminal(t *testing.T) {
	t.Parallel()
	url := hostileLLM(t)

	t.Run("solve and trace list", func(t *testing.T) {
		t.Parallel()
		env := []string{"PONDER_LLM_BASE_URL=" + url, "PONDER_DATA_DIR=" + t.TempDir()}
		problem := "What is 6 times 7?" + hostile
		r := runPonder(t, "", env, "solve", problem)
		if r.code != 0 || !strings.Contains(r.stdout, "42") || !strings.Contains(r.stderr, "RED") {
			t.Fatalf("solve: exit %d\n%q\n%q", r.code, r.stdout, r.stderr)
		}
		assertInert(t, "solve", r)

		r = runPonder(t, "", env, "solve", "--json", problem)
		var out solveOutput
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.BestPath) == 0 {
			t.Fatalf("solve --json: %v\n%s", err, r.stdout)
		}
		if !strings.Contains(out.BestPath[0].Content, hostile) {
			t.Errorf("solve --json changed the model's text: %q", out.BestPath[0].Content)
		}

		r = runPonder(t, "", env, "trace", "list")
		if r.code != 0 || !strings.Contains(r.stdout, "What is 6 times 7?") {
			t.Fatalf("trace list: exit %d\n%q\n%q", r.code, r.stdout, r.stderr)
		}
		assertInert(t, "trace list", r)
		r = runPonder(t, "", env, "trace", "list", "--json")
		if !strings.Contains(r.stdout, `\u001b]0;pwned\u0007`) {
			t.Errorf("trace list --json lost the problem's text: %s", r.stdout)
		}
	})

	t.Run("LLM error", func(t *testing.T) {
		t.Parallel()
		msg, _ := json.Marshal(map[string]any{"error": map[string]any{"message": "bad request " + hostile}})
		bad := fakeLLM(t, 400, string(msg))
		r := runPonder(t, "", []string{"PONDER_LLM_BASE_URL=" + bad, "PONDER_LLM_MAX_RETRIES=0"}, "solve", "What is 6 times 7?")
		if r.code != 1 || !strings.Contains(r.stderr, "ponder: ") {
			t.Fatalf("exit %d\n%q", r.code, r.stderr)
		}
		assertInert(t, "solve's error", r)
	})

	t.Run("tools call python", func(t *testing.T) {
		t.Parallel()
		if _, err := exec.LookPath("bwrap"); err != nil {
			t.Skip("no bubblewrap: the python tool is unavailable")
		}
		code, _ := json.Marshal(map[string]string{"code": "import sys\nsys.stdout.write(" + fmt.Sprintf("%q", "before"+hostile+"after") + ")"})
		r := runPonder(t, "", nil, "tools", "call", "python", "--args", string(code))
		if r.code != 0 || !strings.Contains(r.stdout, "before") || !strings.Contains(r.stdout, "RED\nhidden") || !strings.Contains(r.stdout, "after") {
			t.Fatalf("tools call: exit %d\n%q\n%q", r.code, r.stdout, r.stderr)
		}
		assertInert(t, "tools call", r)
		r = runPonder(t, "", nil, "tools", "call", "python", "--json", "--args", string(code))
		var res core.ToolResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || !strings.Contains(res.Text, "before"+hostile+"after") {
			t.Errorf("tools call --json changed the program's output (%v): %q", err, res.Text)
		}
	})

	t.Run("search", func(t *testing.T) {
		t.Parallel()
		env := []string{"PONDER_DATA_DIR=" + t.TempDir()}
		doc := filepath.Join(t.TempDir(), "orion\x1b]0;pwned\x07.md")
		if err := os.WriteFile(doc, []byte("# Orion "+hostile+"\n\nThe emergency radio frequency is 146.520 MHz "+hostile+".\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := runPonder(t, "", env, "ingest", doc); r.code != 0 {
			t.Fatalf("ingest: %d %s", r.code, r.stderr)
		}
		r := runPonder(t, "", env, "search", "emergency radio frequency")
		if r.code != 0 || !strings.Contains(r.stdout, "146.520 MHz") {
			t.Fatalf("search: exit %d\n%q\n%q", r.code, r.stdout, r.stderr)
		}
		assertInert(t, "search", r)
		r = runPonder(t, "", env, "search", "--json", "emergency radio frequency")
		var out searchOutput
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Chunks) == 0 ||
			!strings.Contains(out.Chunks[0].Text, hostile) || out.Chunks[0].Source != doc {
			t.Errorf("search --json changed the document (%v): %+v", err, out.Chunks)
		}
	})

	t.Run("eval and eval report", func(t *testing.T) {
		t.Parallel()
		// The dataset's name is a file name, and lands in the summary
		// and in report.md.
		dataset := filepath.Join(t.TempDir(), "mine\x1b]0;pwned\x07.jsonl")
		if err := os.WriteFile(dataset, []byte("{\"question\":\"What is 6 times 7?\",\"answer\":\"42\"}\nnot json "+hostile+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "run")
		env := []string{"PONDER_LLM_BASE_URL=" + url}
		r := runPonder(t, "", env, "eval", "--dataset", dataset, "--strategies", "cot", "--budget-calls", "1", "--out", out)
		if r.code != 0 || !strings.Contains(r.stderr, "line 2 skipped") {
			t.Fatalf("eval: exit %d\n%q\n%q", r.code, r.stdout, r.stderr)
		}
		assertInert(t, "eval", r)
		r = runPonder(t, "", nil, "eval", "report", out)
		if r.code != 0 || !strings.Contains(r.stdout, "| cot | 1 |") {
			t.Fatalf("eval report: exit %d\n%q\n%q", r.code, r.stdout, r.stderr)
		}
		assertInert(t, "eval report", r)
		md, err := os.ReadFile(filepath.Join(out, "report.md"))
		if err != nil || !bytes.Contains(md, []byte("mine\x1b]0;pwned\x07.jsonl")) {
			t.Errorf("report.md does not name the dataset as it is (%v):\n%s", err, md)
		}
	})
}

// The printers of the other commands, whose content comes from plugins
// and MCP servers, are inert too.
func TestPrintersAreInert(t *testing.T) {
	tests := []struct {
		name  string
		print func(w *bytes.Buffer)
		want  string // visible text that stays
	}{
		{"strategy spec", func(w *bytes.Buffer) {
			printSpec(w, "evil"+hostile, "plugin "+hostile, "Summary "+hostile, []core.ParamSpec{
				{Name: "k" + hostile, Type: "int", Default: hostile, Enum: []string{"a" + hostile}, Description: "about " + hostile},
			})
		}, "Summary"},
		{"search hits", func(w *bytes.Buffer) {
			printHits(w, []retrieval.Hit{{Chunk: retrieval.Chunk{Source: "/d/" + hostile, Title: hostile,
				Headings: []string{"H" + hostile}, Text: "text " + hostile, Meta: map[string]string{"page": hostile}}}})
		}, "text"},
		{"solve", func(w *bytes.Buffer) {
			printHuman(w, w, solveOutput{Answer: "42" + hostile, Strategy: "cot" + hostile, Error: hostile, TraceError: hostile,
				StoppedReason: core.StopError, BestPath: []solveStep{{Content: "step " + hostile}}})
		}, "step"},
		{"solve warnings", func(w *bytes.Buffer) {
			printHuman(w, w, solveOutput{Answer: "42", StoppedReason: core.StopDone, Warnings: []string{"1 evaluation failed " + hostile}})
		}, "warning: 1 evaluation failed"},
		{"solve of one call", func(w *bytes.Buffer) {
			printHuman(w, w, solveOutput{Answer: "42", StoppedReason: core.StopDone, Usage: core.Usage{LLMCalls: 1}})
		}, "stopped: done, 1 LLM call, "},
		{"eval summary", func(w *bytes.Buffer) {
			s := "cot" + hostile
			printSummary(w, []eval.Record{{Key: "1|" + s + "|1", Item: "1", Strategy: s, Budget: 1, Status: eval.StatusCorrect}}, []string{s}, []int64{1})
		}, "100.0%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.print(&b)
			if !strings.Contains(b.String(), tc.want) {
				t.Errorf("output lacks %q: %q", tc.want, b.String())
			}
			if c, ok := terminalControl(b.String()); ok {
				t.Errorf("output holds %U: %q", c, b.String())
			}
		})
	}
}
