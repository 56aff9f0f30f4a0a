package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// A chat completion request whose JSON is valid but nested deeper than
// encoding/json reads was answered "malformed JSON … exceeded max depth",
// which tells a client with valid JSON nothing it can act on; it is told
// the body is nested too deeply, in OpenAI's error shape, as MCP tells it.
func TestChatTooDeeplyNested(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	url := e.ts.URL + "/v1/chat/completions"
	const levels = 100000
	// Valid JSON (json.Valid cannot say so: it stops at the same depth).
	deep := strings.Repeat("[", levels) + strings.Repeat("]", levels)
	for name, body := range map[string]string{
		"in a field":     `{"model":"cot","messages":[{"role":"user","content":"hi"}],"metadata":` + deep + `}`,
		"in messages":    `{"model":"cot","messages":` + deep + `}`,
		"not an object":  deep,
		"in ponder":      `{"model":"cot","messages":[{"role":"user","content":"hi"}],"ponder":{"params":{"k":` + deep + `}}}`,
		"object nesting": `{"model":"cot","messages":[{"role":"user","content":"hi"}],"x":` + strings.Repeat(`{"a":`, levels) + `1` + strings.Repeat("}", levels) + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			var got struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(postJSON(t, url, body, 400)), &got); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got.Error.Message, "nested too deeply") || strings.Contains(got.Error.Message, "malformed") {
				t.Errorf("message %q, want it to say the body is nested too deeply, not malformed", got.Error.Message)
			}
			if got.Error.Type != "invalid_request_error" || got.Error.Param != nil {
				t.Errorf("type %q, param %v: want invalid_request_error and no param", got.Error.Type, got.Error.Param)
			}
		})
	}
}
