package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tools/calc"
	"github.com/ponder-rlm/ponder/tools/sandbox"
)

// unavailableTool is how cmd/ponder lists a built-in tool that could not be
// set up: named, with the reason, and failing every call with it.
type unavailableTool struct{ err error }

func (u unavailableTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "python", Description: unavailablePrefix + u.err.Error(), Schema: json.RawMessage(sandbox.ToolSchema)}
}

func (u unavailableTool) Call(context.Context, json.RawMessage) (core.ToolResult, error) {
	return core.ToolResult{}, u.err
}

// TestPALUnavailableSandboxCostsNoCalls: without a working sandbox, pal
// fails with the reason before it samples programs that cannot run.
func TestPALUnavailableSandboxCostsNoCalls(t *testing.T) {
	t.Parallel()
	_, err := sandbox.New(&sandbox.Options{Python: "/nonexistent/python3"})
	if err == nil {
		t.Fatal("a sandbox without python was set up")
	}
	m := &toolModel{final: "```python\nprint(3)\n```"}
	eng := toolEngine(t, m, unavailableTool{err})
	for _, tools := range [][]string{nil, {"python"}} {
		res, err := eng.Solve(context.Background(), core.Task{Problem: "1+2?", Strategy: "pal", Tools: tools,
			Params: core.Params{"k": int64(8), "temperature": 0.7}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stopped != core.StopError || !strings.Contains(res.Error, "python tool is unavailable") ||
			!strings.Contains(res.Error, "/nonexistent/python3") || res.Usage.LLMCalls != 0 {
			t.Errorf("tools %v: stopped %s (%q) after %d LLM calls; want an error naming the reason, before any call",
				tools, res.Stopped, res.Error, res.Usage.LLMCalls)
		}
	}
}

// TestPALToolWithoutCode: pal with tool=calc (no "code" argument), or a
// tool that does not exist, makes the task invalid, naming the parameter,
// instead of sampling programs calc refuses and ending on "no program
// printed an answer" (or failing the run, exit 1, after the task was
// accepted).
func TestPALToolWithoutCode(t *testing.T) {
	t.Parallel()
	m := &toolModel{final: "```python\nprint(3)\n```"}
	eng := toolEngine(t, m, calc.New(nil))
	for tool, want := range map[string]string{"calc": `calc tool takes no "code" argument`, "pyhton": "pyhton tool is not available"} {
		_, err := eng.Solve(context.Background(), core.Task{Problem: "1+2?", Strategy: "pal", Params: core.Params{"tool": tool}})
		if !errors.Is(err, core.ErrInvalidTask) || !strings.Contains(fmt.Sprint(err), `invalid parameter "tool": the `+want) {
			t.Errorf("tool=%s: %v; want an invalid task saying %q", tool, err, want)
		}
	}
}

// codeTool is a python stand-in: it "prints" what the program prints,
// after a random pause so that concurrent programs finish in any order,
// and notes which programs it ran.
type codeTool struct {
	mu  sync.Mutex
	ran []string
}

func (c *codeTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "python", Description: "runs python", Schema: json.RawMessage(sandbox.ToolSchema)}
}

func (c *codeTool) Call(_ context.Context, args json.RawMessage) (core.ToolResult, error) {
	var a struct{ Code string }
	_ = json.Unmarshal(args, &a)
	time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
	c.mu.Lock()
	c.ran = append(c.ran, a.Code)
	c.mu.Unlock()
	out := strings.TrimSuffix(strings.TrimPrefix(a.Code, "print("), ")")
	return core.ToolResult{Text: out + "\n", Structured: map[string]any{"stdout": out + "\n", "exit_code": 0}}, nil
}

// Under a tool-call budget that cannot run every program, which programs
// run (and so the answer) does not depend on timing: the first ones, in
// sample order. Before, two identical runs answered differently.
func TestPALToolBudgetRunsTheFirstPrograms(t *testing.T) {
	t.Parallel()
	// Each sample's program prints its seed (one per sample index), and
	// replies come back in any order.
	programs := core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		return core.Completion{Choices: []core.Choice{{Text: fmt.Sprintf("```python\nprint(%d)\n```", *req.Seed)}}}, nil
	})
	var first string
	for run := 0; run < 10; run++ {
		tool := &codeTool{}
		eng := toolEngine(t, programs, tool)
		res, err := eng.Solve(context.Background(), core.Task{Problem: "1?", Strategy: "pal",
			Params: core.Params{"k": 5, "temperature": 0.7, "per_request": 1}, Limits: core.Limits{ToolCalls: 2}})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(tool.ran)
		ran := strings.Join(tool.ran, ",")
		if len(tool.ran) != 2 || (run > 0 && ran != first) {
			t.Fatalf("run %d: programs run %q (answer %q); run 0 ran %q", run, tool.ran, res.Answer, first)
		}
		first = ran
	}
}

// floodTool fails every program after printing 60,000 bytes (under the
// tool registry's 64 KiB cap).
type floodTool struct{ codeTool }

func (f *floodTool) Call(context.Context, json.RawMessage) (core.ToolResult, error) {
	out := strings.Repeat("x", 60000) + "\nTraceback (most recent call last):\nZeroDivisionError: division by zero\n"
	return core.ToolResult{Text: out, IsError: true}, nil
}

// A repair prompt shows the end of a failed program's output, where its
// traceback is, not all of it: 64 KiB of output passed a small model's
// context.
func TestPALRepairShowsTheEndOfTheOutput(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var repair string
	pol := core.PolicyFunc(func(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
		if req.Purpose == "repair" {
			mu.Lock()
			for _, m := range req.Messages {
				repair += m.Content
			}
			mu.Unlock()
		}
		return core.Completion{Choices: []core.Choice{{Text: "```python\nprint(1/0)\n```"}}}, nil
	})
	eng := toolEngine(t, pol, &floodTool{})
	if _, err := eng.Solve(context.Background(), core.Task{Problem: "1?", Strategy: "pal", Params: core.Params{"repair": 1}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(repair, "ZeroDivisionError: division by zero") || !strings.Contains(repair, "bytes left out]") || len(repair) > 8000 {
		t.Errorf("repair prompt of %d bytes; want the traceback and a note of what was left out, under 8000 bytes", len(repair))
	}
}
