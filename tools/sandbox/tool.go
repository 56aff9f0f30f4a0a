//go:build linux

package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ponder-rlm/ponder/core"
)

// ToolSchema is the JSON Schema of the python tool's arguments.
const ToolSchema = `{"type":"object","properties":{` +
	`"code":{"type":"string","minLength":1,"description":"Python 3 program; print what you want to see"},` +
	`"stdin":{"type":"string","description":"standard input of the program"},` +
	`"timeout":{"type":"number","exclusiveMinimum":0,"description":"wall-clock limit in seconds (at most the configured one)"},` +
	`"session":{"type":"string","maxLength":128,"description":"name of a persistent session: variables survive between calls with the same name"}},` +
	`"required":["code"],"additionalProperties":false}`

// Tool is the "python" tool: it runs code in the sandbox.
type Tool struct{ sb *Sandbox }

var _ core.SessionTool = Tool{}

// Tool returns the python tool backed by s.
func (s *Sandbox) Tool() Tool { return Tool{sb: s} }

// Spec implements core.Tool.
func (t Tool) Spec() core.ToolSpec {
	o := t.sb.opts
	return core.ToolSpec{
		Name: "python",
		Description: fmt.Sprintf("Run a Python 3 program in an isolated sandbox (no network, no host files, a private /tmp; "+
			"%s wall clock, %d CPU seconds, %d MiB memory) and return its stdout, stderr and exit status. "+
			"Only the standard library is available. Print the values you need.",
			o.Timeout, o.CPUSeconds, o.MemoryBytes>>20),
		Schema: json.RawMessage(ToolSchema),
	}
}

// Args are the python tool's arguments.
type Args struct {
	Code    string  `json:"code"`
	Stdin   string  `json:"stdin,omitempty"`
	Timeout float64 `json:"timeout,omitempty"`
	Session string  `json:"session,omitempty"`
}

// Call implements core.Tool. A program that fails is a result with IsError;
// the error is for a sandbox that could not start or a cancelled context.
func (t Tool) Call(ctx context.Context, raw json.RawMessage) (core.ToolResult, error) {
	var a Args
	if err := json.Unmarshal(raw, &a); err != nil {
		return core.ToolResult{Text: "python: arguments: " + err.Error(), IsError: true}, nil
	}
	ro := &RunOptions{Stdin: a.Stdin}
	if a.Timeout > 0 {
		// A timeout under a nanosecond would round to 0, which means "the
		// configured one": 1e-300 asked for the least and got 10s. One
		// past what a Duration holds is the configured one too, as any
		// timeout above it is.
		switch ns := a.Timeout * float64(time.Second); {
		case ns < 1:
			return core.ToolResult{Text: fmt.Sprintf(`python: argument "timeout": %g seconds is less than a nanosecond; give a longer one, or leave it out for the configured %s`, a.Timeout, t.sb.opts.Timeout), IsError: true}, nil
		case ns < float64(math.MaxInt64):
			ro.Timeout = time.Duration(ns)
		}
	}
	var res Result
	var err error
	if a.Session != "" {
		res, err = t.sb.RunSession(ctx, a.Session, a.Code, ro)
	} else {
		res, err = t.sb.Run(ctx, a.Code, ro)
	}
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return core.ToolResult{}, fmt.Errorf("python: %w", err)
		}
		return core.ToolResult{}, err
	}
	return core.ToolResult{Text: res.Text(), Structured: res, IsError: !res.OK()}, nil
}

// CloseSession implements core.SessionTool: it stops the named session's
// processes (a react run closes its session when it ends).
func (t Tool) CloseSession(name string) { t.sb.CloseSession(name) }

// Close ends the sandbox's sessions.
func (t Tool) Close() error { return t.sb.Close() }
