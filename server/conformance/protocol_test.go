package conformance

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type sdkOutcome struct {
	Code    any    `json:"code"` // a JSON-RPC code; over HTTP an HTTP status when the POST failed
	Message string `json:"message"`
}

type sdkProtocolReport struct {
	Errors          []string   `json:"errors"`
	PromptNonString sdkOutcome `json:"promptNonString"`
	ReadNoURI       sdkOutcome `json:"readNoURI"`
	BadCursor       sdkOutcome `json:"badCursor"`
	ForeignCursor   sdkOutcome `json:"foreignCursor"`
	// completion/complete of a prompt, prompt argument and resource
	// template the server lacks, and the values for one it has.
	CompleteUnknownPrompt   sdkOutcome `json:"completeUnknownPrompt"`
	CompleteUnknownArgument sdkOutcome `json:"completeUnknownArgument"`
	CompleteUnknownTemplate sdkOutcome `json:"completeUnknownTemplate"`
	CompleteStrategy        []string   `json:"completeStrategy"`
	Reinitialize            sdkOutcome `json:"reinitialize"`
	SessionBefore           string     `json:"sessionBefore"`
	SessionAfter            string     `json:"sessionAfter"`
	Tools                   int        `json:"tools"`
	Pinged                  bool       `json:"pinged"`
}

// TestTypeScriptSDKProtocolErrors: the official TypeScript SDK client gets
// -32602 (invalid params) naming what to change for a prompt argument that
// is not a string, a resources/read without a uri, a cursor this server
// never issued (mcp-go answered -32600, -32002, and a base64 decoder's
// message or a silently empty list) and a completion of a prompt, prompt
// argument or resource template it does not have (it answered values: []);
// and a second initialize on its session is refused (-32600; over HTTP
// with 400, as the SDK's own server does), leaving the session as it was.
func TestTypeScriptSDKProtocolErrors(t *testing.T) {
	node(t)
	script, _ := filepath.Abs("testdata/sdkprotocol.mjs")
	for _, mode := range []string{"stdio", "http"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			env := []string{"SDK_DIR=" + filepath.Join(npmDir(), "@modelcontextprotocol", "sdk"), "PONDER_BIN=" + ponderBin,
				"MODE=" + mode}
			if mode == "http" {
				p := startServe(t, nil)
				env = append(env, "PONDER_URL="+p.url("/mcp"))
			} else {
				env = append(env, "PONDER_DATA_DIR="+t.TempDir(), "PONDER_LOG_FORMAT=json")
			}
			out, err := runNode(t, time.Minute, env, script)
			if err != nil {
				t.Fatalf("sdk client: %v\n%s", err, out)
			}
			var r sdkProtocolReport
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
				t.Fatalf("sdk client report: %v\n%s", err, out)
			}
			for _, tc := range []struct {
				name string
				got  sdkOutcome
				says string
			}{
				{"prompt argument that is not a string", r.PromptNonString, `argument "problem" must be a string`},
				{"resources/read without a uri", r.ReadNoURI, "params.uri is required"},
				{"cursor that is not base64", r.BadCursor, "list again without a cursor"},
				{"cursor this server never issued", r.ForeignCursor, "list again without a cursor"},
				{"completion of a prompt it lacks", r.CompleteUnknownPrompt, `no prompt "test_prompt_with_arguments"`},
				{"completion of an argument its prompt lacks", r.CompleteUnknownArgument, `takes no argument "strategi"`},
				{"completion of a template it lacks", r.CompleteUnknownTemplate, `no resource template "test://template/{id}/data"`},
			} {
				if tc.got.Code != float64(-32602) || !strings.Contains(tc.got.Message, tc.says) {
					t.Errorf("%s: %+v, want -32602 saying %q", tc.name, tc.got, tc.says)
				}
			}
			if len(r.CompleteStrategy) != 1 || r.CompleteStrategy[0] != "self-consistency" {
				t.Errorf("completion of the strategy argument: %v, want [self-consistency]", r.CompleteStrategy)
			}
			re := r.Reinitialize
			if !strings.Contains(re.Message, "already initialized") {
				t.Errorf("second initialize: %+v, want it refused as already initialized", re)
			}
			switch mode {
			case "stdio":
				if re.Code != float64(-32600) {
					t.Errorf("second initialize: code %v, want -32600", re.Code)
				}
			case "http":
				// The SDK's HTTP transport reports the status, with the
				// body (the JSON-RPC error) in its message.
				if re.Code != float64(400) || !strings.Contains(re.Message, "-32600") {
					t.Errorf("second initialize: %+v, want 400 carrying -32600", re)
				}
				if r.SessionBefore == "" || r.SessionAfter != r.SessionBefore {
					t.Errorf("the refusal moved the client to another session: %q -> %q", r.SessionBefore, r.SessionAfter)
				}
			}
			if r.Tools != 6 || !r.Pinged {
				t.Errorf("the session after the refusals: %d tools, pinged %v", r.Tools, r.Pinged)
			}
			for _, e := range r.Errors {
				// Its HTTP transport also reports a failed POST (the
				// refused initialize) through onerror.
				if mode != "http" || !strings.Contains(e, "already initialized") {
					t.Errorf("the SDK reported an error: %q", e)
				}
			}
		})
	}
}
