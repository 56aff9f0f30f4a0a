package server

import (
	"strings"
	"testing"
)

// A prompt's text argument is capped as the tool it leads to caps it:
// solve_step_by_step made a prompt of a 3.9 MB problem that solve itself
// refuses (over 200,000 characters), and answer_from_documents one of a
// question search_documents refuses (over 10,000). Characters, not bytes,
// as the schemas' maxLength counts them.
func TestPromptArgumentsAreCappedAsTheirTools(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	for i, tc := range []struct {
		name, prompt, arg, value string
		says                     string // "": the prompt is made
	}{
		{"problem at the cap, in 2-byte characters", "solve_step_by_step", "problem", strings.Repeat("é", 200000), ""},
		{"problem over the cap", "solve_step_by_step", "problem", strings.Repeat("x", 3900000),
			"argument problem is 3900000 characters, more than the 200000 the solve tool takes"},
		{"problem one over", "solve_step_by_step", "problem", strings.Repeat("é", 200001),
			"argument problem is 200001 characters, more than the 200000 the solve tool takes"},
		{"question at the cap", "answer_from_documents", "question", strings.Repeat("q", 10000), ""},
		{"question over the cap", "answer_from_documents", "question", strings.Repeat("q", 10001),
			"argument question is 10001 characters, more than the 10000 the search_documents tool takes"},
	} {
		msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 950 + i, "method": "prompts/get", "params": map[string]any{
			"name": tc.prompt, "arguments": map[string]any{tc.arg: tc.value}}})
		if len(msgs) != 1 {
			t.Fatalf("%s: %d messages", tc.name, len(msgs))
		}
		errObj, _ := msgs[0]["error"].(map[string]any)
		if tc.says == "" {
			if errObj != nil {
				t.Errorf("%s: %v", tc.name, errObj)
			}
			continue
		}
		if errObj == nil || errObj["code"] != float64(-32602) || !strings.Contains(errObj["message"].(string), tc.says) {
			t.Errorf("%s: want -32602 saying %q, got %.300v", tc.name, tc.says, msgs[0])
		}
	}
}
