package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ponder-rlm/ponder/sdk"
	"github.com/ponder-rlm/ponder/sdk/sdktest"
)

var cases = []struct {
	name    string
	args    string
	want    string
	isError bool
}{
	{"words", `{"text":"the quick brown fox"}`, "4 words, 1 lines, 19 characters", false},
	{"lines", `{"text":"a b\nc\n"}`, "3 words, 3 lines, 6 characters", false},
	{"unicode", `{"text":"héllo wörld"}`, "2 words, 1 lines, 11 characters", false},
	{"empty", `{"text":""}`, "0 words, 0 lines, 0 characters", false},
	{"missing text", `{}`, `wordcount needs {"text": "..."}`, true},
	{"wrong type", `{"text":5}`, `wordcount needs {"text": "..."}`, true},
}

// TestInProcess runs the tool over real gRPC in this process.
func TestInProcess(t *testing.T) {
	tool := sdktest.Tool(t, sdk.Plugin{Version: "1.0.0", Tool: WordCount{}})
	if tool.Spec().Name != "wordcount" || !json.Valid(tool.Spec().Schema) {
		t.Fatalf("spec %+v", tool.Spec())
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := tool.Call(context.Background(), json.RawMessage(c.args))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, res.Text); diff != "" || res.IsError != c.isError {
				t.Errorf("is_error %v (want %v), text (-want +got):\n%s", res.IsError, c.isError, diff)
			}
		})
	}
}

// TestSubprocess builds the plugin, installs it and calls it as Ponder
// does: a real child process behind the host's manager.
func TestSubprocess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	mgr, m := sdktest.Install(t, sdktest.Build(t, "."), nil)
	if m.Name != "wordcount" || m.Kind != sdk.KindTool || m.Version != "1.0.0" {
		t.Fatalf("manifest %+v", m)
	}
	tools := mgr.Tools()
	if len(tools) != 1 {
		t.Fatalf("%d tools", len(tools))
	}
	res, err := tools[0].Call(context.Background(), json.RawMessage(`{"text":"one two three"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "3 words, 1 lines, 13 characters" {
		t.Errorf("got %q", res.Text)
	}
	var counts Counts
	b, _ := json.Marshal(res.Structured)
	if err := json.Unmarshal(b, &counts); err != nil || counts.Words != 3 {
		t.Errorf("structured %s: %v", b, err)
	}
}
