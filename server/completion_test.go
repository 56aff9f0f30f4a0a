package server

import (
	"strings"
	"testing"
)

// completion/complete for a prompt, prompt argument or resource template
// the server does not have is -32602 naming what it has, as the spec says;
// it answered values: [], which reads as "nothing matches". An argument it
// has with nothing to suggest still gets values: [].
func TestCompletionOfWhatIsNotThereIsInvalidParams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	prompt := func(name, arg string) map[string]any {
		return map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": name}, "argument": map[string]any{"name": arg, "value": ""}}
	}
	resource := func(uri, arg string) map[string]any {
		return map[string]any{"ref": map[string]any{"type": "ref/resource", "uri": uri}, "argument": map[string]any{"name": arg, "value": ""}}
	}
	for i, tc := range []struct {
		name   string
		params map[string]any
		says   string // "": values, no error
	}{
		{"unknown prompt", prompt("test_prompt_with_arguments", "arg1"), `no prompt "test_prompt_with_arguments" (prompts/list names them: answer_from_documents, solve_step_by_step)`},
		{"unknown prompt argument", prompt("solve_step_by_step", "strategi"), `prompt solve_step_by_step takes no argument "strategi" (it takes problem, strategy)`},
		{"unknown resource template", resource("test://template/{id}/data", "id"), `no resource template "test://template/{id}/data"`},
		{"unknown template argument", resource("ponder://traces/{id}", "name"), `takes no argument "name" (it takes id)`},
		{"an argument with nothing to suggest", prompt("answer_from_documents", "question"), ""},
		{"strategy", prompt("solve_step_by_step", "strategy"), ""},
		{"trace id", resource("ponder://traces/{id}", "id"), ""},
	} {
		msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 900 + i, "method": "completion/complete", "params": tc.params})
		if len(msgs) != 1 {
			t.Fatalf("%s: %v", tc.name, msgs)
		}
		errObj, _ := msgs[0]["error"].(map[string]any)
		if tc.says == "" {
			if errObj != nil || msgs[0]["result"] == nil {
				t.Errorf("%s: want values, got %v", tc.name, msgs[0])
			}
			continue
		}
		if errObj == nil || errObj["code"] != float64(-32602) || !strings.Contains(errObj["message"].(string), tc.says) {
			t.Errorf("%s: want -32602 saying %q, got %v", tc.name, tc.says, msgs[0])
		}
	}
}
