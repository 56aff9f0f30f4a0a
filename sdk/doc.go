// Package sdk is all a Ponder plugin author imports. A plugin is a separate
// program that adds a tool, an evaluator (value model, reward model,
// verifier) or a whole search strategy to Ponder without forking it; Ponder
// starts it as a child process and talks to it over gRPC
// (hashicorp/go-plugin), so a crashing or slow plugin never takes the
// server down.
//
// A tool plugin is a ~30-line main:
//
//	type upper struct{}
//
//	func (upper) Spec() sdk.ToolSpec {
//		return sdk.ToolSpec{Name: "upper", Description: "upper-cases text",
//			Schema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`)}
//	}
//
//	func (upper) Call(ctx context.Context, args json.RawMessage) (sdk.ToolResult, error) {
//		var in struct{ Text string `json:"text"` }
//		if err := json.Unmarshal(args, &in); err != nil {
//			return sdk.ToolResult{Text: "bad arguments: " + err.Error(), IsError: true}, nil
//		}
//		return sdk.ToolResult{Text: strings.ToUpper(in.Text)}, nil
//	}
//
//	func main() { sdk.Serve(sdk.Plugin{Version: "1.0.0", Tool: upper{}}) }
//
// Evaluators implement Evaluator; strategies implement Strategy and search
// through the Host they are given, which is the host's own metered
// environment: its policy, evaluators, tools, retriever and nested solve,
// under the run's budget, recorded in the run's trace.
//
// Package sdk/sdktest runs a plugin in-process against a real engine with
// a scripted policy, for unit tests. docs/plugins.md walks through writing,
// building, installing and using a plugin; docs/plugin-protocol.md
// describes the wire protocol for plugins written in other languages.
package sdk
