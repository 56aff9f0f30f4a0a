package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/retrieval"
)

// A ponder://traces/{id} read of a trace over the cap returns the trace's
// summary, marked truncated, with where to get the whole of it (it was
// read whole into memory and sent, however large); a trace under the cap
// is returned whole.
func TestTraceResourceIsCapped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.rpc(t)
	r := result(t, c.call("solve", map[string]any{"problem": gsm8kProblem}, nil))
	id := r["structuredContent"].(map[string]any)["trace_id"].(string)
	small, err := e.traces.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	// The same run with a problem of 9 MiB: its stored trace is over the
	// 8 MiB cap.
	big := *small
	big.ID = "feedfacefeedface"
	big.Problem = strings.Repeat("x", 9<<20)
	e.traces.Finish(&big)

	read := func(id string) (string, map[string]any) {
		t.Helper()
		msgs, _ := c.post(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": map[string]any{"uri": "ponder://traces/" + id}})
		contents := result(t, msgs)["contents"].([]any)[0].(map[string]any)
		return contents["text"].(string), contents
	}
	text, _ := read(id)
	var whole core.Trace
	if err := json.Unmarshal([]byte(text), &whole); err != nil || whole.ID != id || whole.Structure == nil || len(whole.Events) == 0 {
		t.Fatalf("a trace under the cap was not returned whole: %v %.200s", err, text)
	}

	text, contents := read(big.ID)
	var sum traceTooLarge
	if err := json.Unmarshal([]byte(text), &sum); err != nil {
		t.Fatalf("the capped read is not JSON: %v %.200s", err, text)
	}
	if len(text) > 64<<10 || !sum.Truncated || sum.TraceBytes <= 9<<20 || sum.LimitBytes != maxTraceResourceBytes || contents["mimeType"] != "application/json" {
		t.Fatalf("a trace over the cap: %d bytes sent, summary %+v", len(text), sum)
	}
	if sum.ID != big.ID || sum.Answer != small.Answer || sum.Status != small.Status || sum.Usage == nil || sum.Usage.LLMCalls != small.Usage.LLMCalls {
		t.Errorf("the summary does not describe the run: %+v", sum)
	}
	for _, want := range []string{"GET /ui/api/runs/" + big.ID, "/ui/#run=" + big.ID, "ponder trace get " + big.ID, "8.0 MiB"} {
		if !strings.Contains(sum.Note, want) {
			t.Errorf("the note does not say %q: %s", want, sum.Note)
		}
	}
	// get_trace sends here for a trace too large for it, and says where
	// else to look.
	r = result(t, c.call("get_trace", map[string]any{"trace_id": big.ID, "detail": "full"}, nil))
	if got := toolText(r); !strings.Contains(got, "GET /ui/api/runs/"+big.ID) || !strings.Contains(got, "up to 8.0 MiB") {
		t.Errorf("get_trace of a trace over both caps: %.300s", got[max(0, len(got)-400):])
	}
}

// learnStream learns a stored trace's sources one event and one node at a
// time: the names its chunk records give, from the events and the nodes
// alike; a document without structure or events is no error, a damaged
// one is (the summary then leaves the problem and answer out).
func TestLearnStream(t *testing.T) {
	t.Parallel()
	const rec = `{"source":"/srv/docs/handbook/a.md","` + retrieval.MetaName + `":"handbook/a.md"}`
	for _, tc := range []struct {
		name, doc string
		err       bool
		want      string
	}{
		{"in an event", `{"id":"x","problem":"p","structure":{"kind":"tree","nodes":[{"id":0}]},"events":[{"seq":1,"data":{"chunks":[` + rec + `]}}],"answer":"a"}`, false, "handbook/a.md"},
		{"in a node", `{"structure":{"kind":"tree","nodes":[{"id":0,"meta":{"sources":[` + rec + `]}}]},"events":[]}`, false, "handbook/a.md"},
		{"nulls", `{"structure":null,"events":null}`, false, "/srv/docs/handbook/a.md"},
		{"damaged", `{"structure":{"kind":"tree","nodes":[{"id":0},`, true, ""},
		{"not an object", `[1,2]`, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newSourceMask()
			err := learnStream(m, strings.NewReader(tc.doc))
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want an error: %v", err, tc.err)
			}
			if got := m.Text("/srv/docs/handbook/a.md"); !tc.err && got != tc.want {
				t.Errorf("the source reads %q, want %q", got, tc.want)
			}
		})
	}
}
