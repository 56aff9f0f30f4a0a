package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// A chat client's system prompt is no history: a follow-up in a reasoning
// session sent with one (as chat clients send every request) is posed
// with the instructions, then the session's earlier turns, then the
// question. The session's turns were dropped whenever a system message
// came first. A conversation with its own earlier turns is posed as it
// is, without the session's.
func TestChatSessionWithSystemPrompt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	url := e.ts.URL + "/v1/chat/completions"
	posedIn := func(session, messages string) string {
		t.Helper()
		body := postJSON(t, url, fmt.Sprintf(`{"model":"cot","messages":%s,"ponder":{"session":%q}}`, messages, session), 200)
		var resp struct {
			Ponder struct {
				Choices []struct {
					TraceID string `json:"trace_id"`
				} `json:"choices"`
			} `json:"ponder"`
		}
		if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.Ponder.Choices) != 1 {
			t.Fatalf("%v: %s", err, body)
		}
		tr, err := e.traces.Get(resp.Ponder.Choices[0].TraceID)
		if err != nil {
			t.Fatal(err)
		}
		return tr.Problem
	}
	posed := func(messages string) string { t.Helper(); return posedIn("chat-sys", messages) }
	const sys = `{"role":"system","content":"You are a careful assistant."}`
	posed(`[` + sys + `,{"role":"user","content":"What is 17 * 23?"}]`)
	got := posed(`[` + sys + `,{"role":"user","content":"  Now add 9.  "}]`)
	if !strings.HasPrefix(got, "Instructions: You are a careful assistant.\n\n") || !strings.Contains(got, "Q1: What is 17 * 23?") ||
		!strings.HasSuffix(got, "Problem: Now add 9.") {
		t.Errorf("a follow-up after a system prompt was posed without the session's turns: %q", got)
	}

	// Its own history: as it is, without the session's turns.
	got = posed(`[` + sys + `,{"role":"user","content":"What is 5 + 5?"},{"role":"assistant","content":"10"},{"role":"user","content":"Double it."}]`)
	if want := "Instructions: You are a careful assistant.\n\nEarlier in this conversation:\nUser: What is 5 + 5?\nAssistant: 10\n\nProblem: Double it."; got != want {
		t.Errorf("a conversation with history was posed as %q, want %q", got, want)
	}

	// Without a session, a system prompt before the question as before.
	if got, want := posedIn("", `[`+sys+`,{"role":"user","content":"What is 2 + 2?"}]`), "Instructions: You are a careful assistant.\n\nProblem: What is 2 + 2?"; got != want {
		t.Errorf("without a session: %q, want %q", got, want)
	}
}
