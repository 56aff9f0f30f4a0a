package server

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ponder-rlm/ponder/tools"
)

// Tool arguments are validated here against each tool's input schema
// before its handler runs. (mcp-go's own validation prints the validator's
// error kinds with %+v, so a model read "/budget/llm_calls: &{Got:-1/1
// Want:1/1}" or "<root>: &{Properties:[strategi]}".) The message is
// tools.ValidateArgs's, the same a model gets from a tool it calls during
// a search.

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
	return tools.ValidateArgs(sch, raw)
}
