package sdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ponder-rlm/ponder/sdk"
)

type upper struct{}

func (upper) Spec() sdk.ToolSpec {
	return sdk.ToolSpec{Name: "upper", Description: "upper-cases text",
		Schema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}`)}
}

func (upper) Call(_ context.Context, args json.RawMessage) (sdk.ToolResult, error) {
	var in struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(args, &in); err != nil {
		return sdk.ToolResult{Text: "bad arguments: " + err.Error(), IsError: true}, nil
	}
	sdk.Logger().Debug().Int("bytes", len(in.Text)).Msg("upper-casing") // stderr, relayed by the host
	return sdk.ToolResult{Text: strings.ToUpper(in.Text)}, nil
}

// A tool plugin's main is one Serve call; Validate is what Serve checks
// first.
func ExamplePlugin() {
	p := sdk.Plugin{Version: "1.0.0", Tool: upper{}}
	fmt.Println(p.Kind(), p.Validate())
	// In main: sdk.Serve(p)

	bad := sdk.Plugin{Name: "Upper Case", Tool: upper{}}
	fmt.Println(bad.Validate())
	// Output:
	// tool <nil>
	// sdk: Plugin.Name: name "Upper Case": use lower-case letters, digits, '-', '_' and '.', starting with a letter
}

// A strategy searches through the host: its policy, evaluators and
// structure, under the run's budget.
func ExampleStrategyFunc() {
	greedy := sdk.StrategyFunc(func(ctx context.Context, host sdk.Host, req sdk.RunRequest) (sdk.Outcome, error) {
		parent := sdk.NodeID(0)
		for range req.Params.Int("depth") {
			kids, err := host.Generate(ctx, parent, 1, sdk.GenerateOptions{})
			if err != nil || len(kids) == 0 {
				return sdk.Outcome{}, err
			}
			if kids[0].Terminal {
				return sdk.Outcome{Answer: kids[0].Answer, Best: kids[0].ID}, nil
			}
			parent = kids[0].ID
		}
		return sdk.Outcome{}, fmt.Errorf("no answer within the depth")
	})
	p := sdk.Plugin{Name: "greedy", Version: "0.1.0", Strategy: greedy,
		Params: []sdk.ParamSpec{{Name: "depth", Type: "int", Default: int64(8), Description: "most steps"}}}
	fmt.Println(p.Kind(), p.Validate())
	// Output: strategy <nil>
}
