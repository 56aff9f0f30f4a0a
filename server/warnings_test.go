package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// A search that went on past a failed LLM request says so in its result,
// over MCP and the OpenAI API alike, without the operator's advice the
// error carries (the log has it): before, "stopped: done" was all a client
// saw.
func TestResultsWarnOfFailuresTheSearchWentOnPast(t *testing.T) {
	t.Parallel()
	advice := ": start the server or fix PONDER_LLM_BASE_URL or --llm-url"
	secondFails, calls := simFailing(t, func(call int64) error {
		if call == 2 {
			return fmt.Errorf("%w: cannot connect to the LLM endpoint (connection refused)%s", core.ErrLLMUnavailable, advice)
		}
		return nil
	})
	e := newEnv(t, envOptions{policy: secondFails})
	const want = "1 LLM request failed; the first: llm call (sample): llm unavailable: cannot connect to the LLM endpoint (connection refused)"
	// Self-consistency with samples one per request (temperature varies
	// them), so that the search goes on past the failed one.
	params := map[string]any{"k": 3}

	t.Run("mcp", func(t *testing.T) {
		calls.Store(0)
		r := result(t, e.rpc(t).call("solve", map[string]any{"problem": "What is 17 * 23?", "strategy": "self-consistency", "params": params}, nil))
		sc, _ := r["structuredContent"].(map[string]any)
		ws, _ := sc["warnings"].([]any)
		if r["isError"] == true || sc["stopped_reason"] != "done" || len(ws) != 1 || ws[0] != want ||
			!strings.Contains(toolText(r), "\nWarning: "+want) {
			t.Fatalf("want one warning %q in the structured result and its text, got %v", want, r)
		}
	})
	t.Run("openai", func(t *testing.T) {
		calls.Store(0)
		body := postJSON(t, e.ts.URL+"/v1/chat/completions",
			`{"model":"self-consistency","messages":[{"role":"user","content":"What is 17 * 23?"}],"ponder":{"params":{"k":3}}}`, 200)
		var resp struct {
			Ponder struct{ Choices []choiceTrace }
		}
		if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Ponder.Choices) != 1 {
			t.Fatalf("%v: %s", err, body)
		}
		if ws := resp.Ponder.Choices[0].Warnings; len(ws) != 1 || ws[0] != want || strings.Contains(body, "PONDER_") {
			t.Fatalf("want one warning %q without the operator's advice, got %s", want, body)
		}
	})
}

// The text a model reads says when a search stopped before it found any
// answer: "this is the best answer found so far" followed "No answer was
// found." before.
func TestSolveTextSaysWhenNothingWasFound(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		answer  string
		stopped core.StopReason
		want    string
	}{
		{"", core.StopBudget, "(budget used up before an answer was found)"},
		{"", core.StopTimeout, "(time limit reached before an answer was found)"},
		{"", core.StopCancelled, "(cancelled before an answer was found)"},
		{"42", core.StopBudget, "(budget used up; this is the best answer found so far)"},
		{"42", core.StopTimeout, "(time limit reached; best answer so far)"},
	} {
		text := solveResult{Answer: c.answer, Strategy: "react", StoppedReason: c.stopped}.text()
		if !strings.Contains(text, c.want) || (c.answer == "" && strings.Contains(text, "so far")) {
			t.Errorf("answer %q, stopped %s: %q does not say %q", c.answer, c.stopped, text, c.want)
		}
	}
}

// ponder.choices[i] on the OpenAI endpoint counts a search's tool calls,
// as MCP's usage does (only the trace said before).
func TestChoiceTraceCountsToolCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{noLLM: true})
	b, err := json.Marshal(e.srv.choiceTraceOf(t.Context(), 0, core.Result{Usage: core.Usage{LLMCalls: 4, ToolCalls: 3}}, "", nil))
	if err != nil || !strings.Contains(string(b), `"tool_calls":3`) {
		t.Fatalf("%s %v", b, err)
	}
}

// A result says whether the task pack's check accepts its answer, over MCP
// (structured, and in the text a model reads) and the OpenAI API alike: a
// Game of 24 answer that does not make 24 was handed out without a word.
func TestResultsSayWhetherThePackAcceptsTheAnswer(t *testing.T) {
	t.Parallel()
	reply := `\boxed{(10 - 4) * (13 - 10)}` // 18
	pol := core.PolicyFunc(func(context.Context, core.CompletionRequest) (core.Completion, error) {
		return core.Completion{Choices: []core.Choice{{Text: reply}}}, nil
	})
	e := newEnv(t, envOptions{policy: pol})
	const wrong = "the answer is wrong: the game24 pack's check rejects it"

	r := result(t, e.rpc(t).call("solve", map[string]any{"problem": "4 9 10 13", "pack": "game24", "strategy": "cot"}, nil))
	sc, _ := r["structuredContent"].(map[string]any)
	if sc["verified"] != false || !strings.Contains(toolText(r), "\nWarning: "+wrong) {
		t.Fatalf("mcp: want verified false and a warning, got %v", r)
	}
	body := postJSON(t, e.ts.URL+"/v1/chat/completions",
		`{"model":"cot","messages":[{"role":"user","content":"4 9 10 13"}],"ponder":{"pack":"game24"}}`, 200)
	var resp struct {
		Ponder struct{ Choices []choiceTrace }
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Ponder.Choices) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	if c := resp.Ponder.Choices[0]; c.Verified == nil || *c.Verified || len(c.Warnings) != 1 || c.Warnings[0] != wrong {
		t.Fatalf("openai: want verified false and the warning, got %s", body)
	}

	reply = `\boxed{(10 - 4) * (13 - 9)}`
	r = result(t, e.rpc(t).call("solve", map[string]any{"problem": "4 9 10 13", "pack": "game24", "strategy": "cot"}, nil))
	sc, _ = r["structuredContent"].(map[string]any)
	if sc["verified"] != true || !strings.Contains(toolText(r), "The task pack's check accepts this answer.") {
		t.Fatalf("mcp: want verified true, said in the text, got %v", r)
	}
}
