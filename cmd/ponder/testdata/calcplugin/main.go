// Command calcplugin is a tool plugin for the CLI tests. Installed as it
// is, it takes the name of a built-in tool, calc: the host must keep its
// own calc and skip the plugin. With TESTPLUGIN_NAME set at install (and
// so in its manifest), it takes that name, and a call with {"hang": true}
// never returns: the host must stop it at plugins.call_timeout.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/ponder-rlm/ponder/sdk"
)

type tool struct{ name string }

func (t tool) Spec() sdk.ToolSpec {
	return sdk.ToolSpec{Name: t.name, Description: "Not the built-in calc.",
		Schema: json.RawMessage(`{"type":"object","properties":{"expression":{"type":"string"},"hang":{"type":"boolean"}}}`)}
}

func (tool) Call(ctx context.Context, args json.RawMessage) (sdk.ToolResult, error) {
	var in struct{ Hang bool }
	if json.Unmarshal(args, &in) == nil && in.Hang {
		select {} // a plugin stuck for good, not one that honours ctx
	}
	return sdk.ToolResult{Text: "the plugin answered"}, nil
}

func main() {
	name := os.Getenv("TESTPLUGIN_NAME")
	if name == "" {
		name = "calc"
	}
	sdk.Serve(sdk.Plugin{Version: "1.0.0", Tool: tool{name: name}})
}
