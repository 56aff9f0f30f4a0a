package server

import (
	"strings"
	"testing"
)

// A bad strategy parameter is named in the error's param as the request
// field it is, ponder.params.<name>, as OpenAI names fields: it was
// "ponder" for every such error.
func TestChatBadParameterIsNamed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	url := e.ts.URL + "/v1/chat/completions"
	const q = `"messages":[{"role":"user","content":"What is 17 * 23?"}]`
	for body, want := range map[string]string{
		`{"model":"self-consistency",` + q + `,"ponder":{"params":{"k":"many"}}}`: `"param":"ponder.params.k"`,
		`{"model":"beam",` + q + `,"ponder":{"params":{"beam_widht":3}}}`:         `"param":"ponder.params.beam_widht"`,
		`{"model":"cot",` + q + `,"ponder":{"pack":"nosuch"}}`:                    `"param":"ponder"`,
	} {
		if got := postJSON(t, url, body, 400); !strings.Contains(got, want) {
			t.Errorf("%s: %s, want %s", body, got, want)
		}
	}
}
