package server

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/internal/testutil"
	"github.com/ponder-rlm/ponder/server/ui"
)

// A run whose trace could not be saved (a full or read-only data dir;
// here a file where the traces directory was) still answers, and says
// that its trace was not saved and why, in the result (MCP's warnings,
// without a trace_uri that leads nowhere; ponder.choices[i].warnings) and
// in the log; get_trace, the trace resource and the viewer say "not
// saved" and why for its id. The trace_id was handed out without a word,
// and the viewer said "not found (it may have been evicted)".
func TestUnsavedTraceIsSaid(t *testing.T) {
	t.Parallel()
	var log testutil.LockedBuffer
	e := newEnv(t, envOptions{opts: func(o *Options) {
		o.UI = ui.Handler(o.Traces, nil)
		o.Logger = zerolog.New(&log)
	}})
	if err := os.RemoveAll(e.tracesDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.tracesDir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	const why = "was not saved (not a directory)"

	c := e.rpc(t)
	r := result(t, c.call("solve", map[string]any{"problem": gsm8kProblem, "strategy": "cot"}, nil))
	sc, _ := r["structuredContent"].(map[string]any)
	id, _ := sc["trace_id"].(string)
	if id == "" || sc["answer"] == "" || r["isError"] == true {
		t.Fatalf("the solve did not answer: %v", r)
	}
	if ws := mustJSONString(sc["warnings"]); !strings.Contains(ws, "trace "+id+" "+why) || sc["trace_uri"] != nil {
		t.Errorf("solve: warnings %s, trace_uri %v", ws, sc["trace_uri"])
	}
	if text := toolText(r); !strings.Contains(text, "Warning: trace "+id+" "+why) {
		t.Errorf("solve's text does not say the trace was not saved: %s", text)
	}
	if strings.Contains(mustJSONString(r), e.tracesDir) {
		t.Errorf("solve shows the client the data dir: %v", r)
	}

	r = result(t, c.call("get_trace", map[string]any{"trace_id": id}, nil))
	if text := toolText(r); r["isError"] != true || !strings.Contains(text, "trace \""+id+"\" "+why) {
		t.Errorf("get_trace: %v", r)
	}
	msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 9, "method": "resources/read", "params": map[string]any{"uri": "ponder://traces/" + id}})
	if got := mustJSONString(msgs); !strings.Contains(got, "the trace "+why) {
		t.Errorf("resources/read: %s", got)
	}
	for _, path := range []string{"/ui/api/runs/" + id, "/ui/api/runs/" + id + "/events"} {
		resp, err := http.Get(e.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), "was not saved: not a directory") || strings.Contains(string(b), "evicted") {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
	}

	for _, stream := range []string{"false", "true"} {
		body := postJSON(t, e.ts.URL+"/v1/chat/completions", `{"model":"cot","stream":`+stream+`,"messages":[{"role":"user","content":"What is 17 * 23?"}]}`, http.StatusOK)
		if !strings.Contains(body, `"warnings":["trace `) || !strings.Contains(body, why) {
			t.Errorf("chat completion (stream %s): ponder.choices[0].warnings do not say the trace was not saved: %s", stream, body)
		}
	}
	if n := strings.Count(log.String(), `"message":"answered, but the trace was not saved`); n != 3 {
		t.Errorf("the log says %d times that a trace was not saved, want 3:\n%s", n, log.String())
	}
}
