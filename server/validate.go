package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/ponder-rlm/ponder/tools"
)

// Tool arguments are validated here against each tool's input schema
// before its handler runs. (mcp-go's own validation prints the validator's
// error kinds with %+v, so a model read "/budget/llm_calls: &{Got:-1/1
// Want:1/1}" or "<root>: &{Properties:[strategi]}".)

// validatedTool returns h behind a check of its arguments against tool's
// input schema: a call that breaks it gets a tool error naming each
// offending argument and what it must be.
func validatedTool(tool mcp.Tool, h mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	sch := compileToolSchema(tool)
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if err := validateToolArgs(sch, req); err != nil {
			return toolError("%s: %v", tool.Name, err), nil
		}
		return h(ctx, req)
	}
}

// compileToolSchema compiles a tool's input schema; the schemas are
// Ponder's own, so a failure is a programming error.
func compileToolSchema(tool mcp.Tool) *jsonschema.Schema {
	sch, err := tools.CompileSchema(tool.RawInputSchema)
	if err != nil {
		panic(fmt.Sprintf("tool %s: input %v", tool.Name, err))
	}
	return sch
}

func validateToolArgs(sch *jsonschema.Schema, req mcp.CallToolRequest) error {
	raw, err := rawArgs(req)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("bad arguments: %v", err)
	}
	err = sch.Validate(v)
	var verr *jsonschema.ValidationError
	if err == nil || !errors.As(err, &verr) {
		return err
	}
	var msgs []string
	collectLeaves(verr, &msgs)
	return fmt.Errorf("bad arguments: %s", strings.Join(msgs, "; "))
}

// collectLeaves renders each violated constraint as "<argument>: <what is
// wrong>", e.g. "budget.llm_calls: minimum: got -1, want 1".
func collectLeaves(e *jsonschema.ValidationError, out *[]string) {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			collectLeaves(c, out)
		}
		return
	}
	// A lone leaf's Error() is "at '<pointer>': <message>".
	leaf := &jsonschema.ValidationError{InstanceLocation: e.InstanceLocation, ErrorKind: e.ErrorKind}
	msg := leaf.Error()
	if _, after, ok := strings.Cut(msg, "': "); ok && strings.HasPrefix(msg, "at '") {
		msg = after
	}
	switch k := e.ErrorKind.(type) { // these messages leave out what was sent
	case *kind.Enum:
		msg += ", got " + shortJSON(k.Got)
	case *kind.Const:
		msg += ", got " + shortJSON(k.Got)
	}
	where := "arguments"
	if len(e.InstanceLocation) > 0 {
		where = strings.Join(e.InstanceLocation, ".")
	}
	*out = append(*out, where+": "+clipBytes(msg, 1000)) // a pattern's message quotes the value
}

// shortJSON is v as JSON, clipped for a message.
func shortJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return clipBytes(string(b), 200)
}
