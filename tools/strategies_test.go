package tools_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/core/strategy"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/standard"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/tools"
	"github.com/ponder-rlm/ponder/tools/calc"
	"github.com/ponder-rlm/ponder/tools/sandbox"
	"github.com/ponder-rlm/ponder/tools/toolstest"
	"github.com/ponder-rlm/ponder/traces/tracetest"
)

// toolbox is calc and python in a registry, as cmd/ponder builds it.
func toolbox(t *testing.T) (*tools.Registry, *sandbox.Sandbox) {
	t.Helper()
	reg := tools.NewRegistry(nil)
	sb := newSandbox(t)
	if err := reg.Register(calc.New(nil), nil); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(sb.Tool(), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg, sb
}

func newEngine(t *testing.T, url string, box core.Toolbox, reg *core.Registry) *core.Engine {
	t.Helper()
	pol, err := llm.New(config.LLM{BaseURL: url, Model: "test", Timeout: 30 * time.Second, Concurrency: 4, N: "auto"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if reg == nil {
		reg = standard.Registry()
	}
	return core.NewEngine(pol, reg, &core.EngineOptions{Packs: standard.Packs, Tools: box})
}

func kinds(path []core.Node) []string {
	var out []string
	for _, n := range path {
		out = append(out, string(n.Kind))
	}
	return out
}

// TestPALOnGSM8K solves GSM8K problems with programs the simulator writes,
// run in the real sandbox.
func TestPALOnGSM8K(t *testing.T) {
	t.Parallel()
	dir, err := tasks.FindDataDir()
	if err != nil {
		t.Fatal(err)
	}
	items, _, err := tasks.LoadDataset(dir, "gsm8k")
	if err != nil {
		t.Fatal(err)
	}
	box, _ := toolbox(t)
	url := simtest.Start(t, sim.Options{Seed: 3, Accuracy: 1, DataDir: dir})
	eng := newEngine(t, url, box, nil)
	for _, it := range items[:6] {
		res, err := eng.Solve(context.Background(), core.Task{Problem: it.Problem, Strategy: "pal"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stopped != core.StopDone {
			t.Fatalf("%s: %+v", it.ID, res)
		}
		if (tasks.GSM8K{}).Normalize(res.Answer) != (tasks.GSM8K{}).Normalize(it.Truth) {
			t.Errorf("%s: answer %q, truth %q", it.ID, res.Answer, it.Truth)
		}
		if got := strings.Join(kinds(res.BestPath), ","); got != "problem,tool-call,tool-result" {
			t.Errorf("%s: best path %s", it.ID, got)
		}
		if res.Usage.ToolCalls != 1 || res.Usage.LLMCalls != 1 {
			t.Errorf("%s: usage %+v", it.ID, res.Usage)
		}
		var traced bool
		for _, ev := range res.Trace.Events {
			traced = traced || ev.Op == core.OpToolCall
		}
		if !traced {
			t.Errorf("%s: no tool_call event in the trace", it.ID)
		}
	}
}

// TestPALVotesAndRepairs has the simulator sometimes wrong: k programs
// vote, and crashed programs are repaired.
func TestPALVotesAndRepairs(t *testing.T) {
	t.Parallel()
	box, _ := toolbox(t)
	url := simtest.Start(t, sim.Options{Seed: 11, Accuracy: 0.6})
	eng := newEngine(t, url, box, nil)
	res, err := eng.Solve(context.Background(), core.Task{Problem: "Tom has 12 apples and buys 30 more. How many apples does he have?",
		Strategy: "pal", Params: core.Params{"k": "9", "temperature": "0.7"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "42" || res.Score == nil || *res.Score <= 0.3 {
		t.Errorf("majority answer %q (share %v), want 42", res.Answer, res.Score)
	}
	if res.Usage.ToolCalls < 9 {
		t.Errorf("tool calls %d, want at least 9", res.Usage.ToolCalls)
	}
}

func TestPALRepair(t *testing.T) {
	t.Parallel()
	box, _ := toolbox(t)
	url := toolstest.StartLLM(t, func(r toolstest.Request) toolstest.Reply {
		if _, ok := tasks.ParsePALPrompt(convert(r)); !ok {
			return toolstest.Text("not a PAL prompt")
		}
		if strings.Contains(r.Last().Content, "NameError") {
			return toolstest.Text("Fixed:\n```python\nprice = 6\nprint(price * 7)\n```")
		}
		return toolstest.Text("```python\nprint(prise * 7)\n```")
	})
	eng := newEngine(t, url, box, nil)
	res, err := eng.Solve(context.Background(), core.Task{Problem: "Six dollars a day for a week: how much?", Strategy: "pal"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "42" || strings.Join(kinds(res.BestPath), ",") != "problem,tool-call,tool-result,tool-call,tool-result" {
		t.Errorf("answer %q, path %v", res.Answer, kinds(res.BestPath))
	}
	if res.Usage.LLMCalls != 2 || res.Usage.ToolCalls != 2 {
		t.Errorf("usage %+v", res.Usage)
	}
	if !strings.Contains(res.BestPath[2].Content, "NameError") {
		t.Errorf("the failed run's output is not in the trace: %q", res.BestPath[2].Content)
	}
}

func convert(r toolstest.Request) []core.Message {
	var out []core.Message
	for _, m := range r.Messages {
		out = append(out, core.Message{Role: m.Role, Content: m.Content})
	}
	return out
}

func TestPALWithoutSandbox(t *testing.T) {
	t.Parallel()
	reg := tools.NewRegistry(nil)
	if err := reg.Register(calc.New(nil), nil); err != nil {
		t.Fatal(err)
	}
	url := toolstest.StartLLM(t, func(toolstest.Request) toolstest.Reply { return toolstest.Text("```python\nprint(1)\n```") })
	eng := newEngine(t, url, reg, nil)
	// A tool the engine does not have makes the task invalid, before the run.
	_, err := eng.Solve(context.Background(), core.Task{Problem: "1?", Strategy: "pal"})
	if !errors.Is(err, core.ErrInvalidTask) || !strings.Contains(err.Error(), "python tool is not available") {
		t.Errorf("without python: %v", err)
	}
	err = eng.Validate(core.Task{Problem: "1?", Strategy: "pal", Params: core.Params{"k": "3"}})
	if err == nil || !strings.Contains(err.Error(), "set temperature") {
		t.Errorf("k=3 at temperature 0: %v", err)
	}
}

// TestReActNative: the policy calls calc through OpenAI tool calling and
// answers from the observation.
func TestReActNative(t *testing.T) {
	t.Parallel()
	box, _ := toolbox(t)
	fake := toolstest.Start(t, func(r toolstest.Request) toolstest.Reply {
		if obs := r.LastToolResult(); obs != "" {
			return toolstest.Text("The calculator says " + obs + `. \boxed{` + obs + `}`)
		}
		return toolstest.Reply{Text: "I will compute it exactly.", Calls: []toolstest.ToolCall{{Name: "calc", Arguments: `{"expression":"2^100 + 1"}`}}}
	})
	eng := newEngine(t, fake.URL, box, nil)
	res, err := eng.Solve(context.Background(), core.Task{Problem: "What is 2^100 + 1?", Strategy: "react", Tools: []string{"calc", "python"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "1267650600228229401496703205377" || res.Stopped != core.StopDone {
		t.Fatalf("%+v", res)
	}
	if got := strings.Join(kinds(res.BestPath), ","); got != "problem,tool-call,tool-result,answer" {
		t.Errorf("path %s", got)
	}
	if res.Usage.ToolCalls != 1 || res.Usage.LLMCalls != 2 {
		t.Errorf("usage %+v", res.Usage)
	}
	reqs := fake.Requests()
	if got := fmt.Sprint(reqs[0].ToolNames()); got != "[calc python]" {
		t.Errorf("offered tools %s", got)
	}
	// The second request replays the call natively.
	var sawTool bool
	for _, m := range reqs[1].Messages {
		sawTool = sawTool || (m.Role == "tool" && m.ToolCallID != "" && strings.HasPrefix(m.Content, "1267650600228229401496703205377"))
	}
	if !sawTool {
		t.Errorf("the observation was not sent back as a tool message: %+v", reqs[1].Messages)
	}
}

// textPolicy follows the text protocol: python twice in one session, then
// the answer.
func textPolicy(r toolstest.Request) toolstest.Reply {
	switch r.Turns() {
	case 0:
		return toolstest.Text("Thought: store a value first.\nAction: python\nAction Input: {\"code\": \"x = 40\"}")
	case 1:
		return toolstest.Text("Thought: now use it.\nAction: python\nAction Input:\n```json\n{\"code\": \"print(x + 2)\"}\n```\nObservation: 42 (made up)")
	}
	obs := strings.TrimSpace(r.LastToolResult())
	return toolstest.Text("Thought: the program printed it.\nFinal Answer: \\boxed{" + obs + "}")
}

func TestReActText(t *testing.T) {
	t.Parallel()
	box, _ := toolbox(t)
	fake := toolstest.Start(t, textPolicy)
	eng := newEngine(t, fake.URL, box, nil)
	res, err := eng.Solve(context.Background(), core.Task{Problem: "What is 40 + 2?", Strategy: "react",
		Params: core.Params{"mode": "text"}, Tools: []string{"python"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "42" {
		t.Fatalf("answer %q (the session did not keep x?) %+v", res.Answer, res)
	}
	reqs := fake.Requests()
	if len(reqs[0].Tools) != 0 || !strings.Contains(reqs[0].System(), "Action Input:") || fmt.Sprint(reqs[0].Stop) != "[\nObservation:]" {
		t.Errorf("text mode request: tools %v, stop %q, system %q", reqs[0].ToolNames(), reqs[0].Stop, reqs[0].System())
	}
	if !strings.HasPrefix(reqs[2].Last().Content, "Observation: 42") {
		t.Errorf("last message %q", reqs[2].Last().Content)
	}
}

// TestReActFallsBackToText: an endpoint that rejects tools gets the text
// protocol.
func TestReActFallsBackToText(t *testing.T) {
	t.Parallel()
	box, _ := toolbox(t)
	fake := toolstest.Start(t, func(r toolstest.Request) toolstest.Reply {
		if len(r.Tools) > 0 {
			return toolstest.Reply{Status: 400, Text: "tools are not supported"}
		}
		return textPolicy(r)
	})
	eng := newEngine(t, fake.URL, box, nil)
	res, err := eng.Solve(context.Background(), core.Task{Problem: "What is 40 + 2?", Strategy: "react", Tools: []string{"python", "calc"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "42" || res.Stopped != core.StopDone {
		t.Errorf("%+v", res)
	}
}

// TestReActObservesErrors: a tool the task does not allow, bad arguments
// and a failing program are observations the policy can react to.
func TestReActObservesErrors(t *testing.T) {
	t.Parallel()
	box, _ := toolbox(t)
	var seen []string
	fake := toolstest.Start(t, func(r toolstest.Request) toolstest.Reply {
		if obs := r.LastToolResult(); obs != "" {
			seen = append(seen, obs)
		}
		switch r.Turns() {
		case 0:
			return toolstest.Call("shell", `{"cmd":"rm -rf /"}`)
		case 1:
			return toolstest.Call("calc", `{"expr":"1+1"}`)
		case 2:
			return toolstest.Call("python", `{"code":"1/0"}`)
		}
		return toolstest.Text(`\boxed{2}`)
	})
	eng := newEngine(t, fake.URL, box, nil)
	res, err := eng.Solve(context.Background(), core.Task{Problem: "1+1?", Strategy: "react", Tools: []string{"calc", "python"}})
	if err != nil || res.Answer != "2" {
		t.Fatalf("%+v %v", res, err)
	}
	want := []string{`tool "shell" is not allowed`, `argument "expression": missing`, "ZeroDivisionError"}
	if len(seen) != 3 {
		t.Fatalf("observations %q", seen)
	}
	for i, w := range want {
		if !strings.Contains(seen[i], w) {
			t.Errorf("observation %d = %q, want it to say %q", i, seen[i], w)
		}
	}
}

// TestReActStepBudget: the steps run out, the answer is demanded without
// tools; a tool-call budget stops a policy that keeps calling.
func TestReActStepBudget(t *testing.T) {
	t.Parallel()
	box, _ := toolbox(t)
	fake := toolstest.Start(t, func(r toolstest.Request) toolstest.Reply {
		if len(r.Tools) == 0 && strings.Contains(r.Last().Content, strategy.ReActFinal) {
			return toolstest.Text(`\boxed{7}`)
		}
		return toolstest.Call("calc", `{"expression":"3+4"}`)
	})
	eng := newEngine(t, fake.URL, box, nil)
	res, err := eng.Solve(context.Background(), core.Task{Problem: "3+4?", Strategy: "react", Tools: []string{"calc"},
		Params: core.Params{"max_steps": "2", "mode": "native"}})
	if err != nil || res.Answer != "7" || res.Usage.ToolCalls != 2 || res.Usage.LLMCalls != 3 {
		t.Errorf("max_steps: %+v %v", res, err)
	}
	res, err = eng.Solve(context.Background(), core.Task{Problem: "3+4?", Strategy: "react", Tools: []string{"calc"},
		Limits: core.Limits{ToolCalls: 1}})
	if err != nil || res.Stopped != core.StopBudget || res.Usage.ToolCalls != 1 {
		t.Errorf("tool-call budget: %+v %v", res, err)
	}
	_, err = eng.Solve(context.Background(), core.Task{Problem: "3+4?", Strategy: "react"})
	if !errors.Is(err, core.ErrInvalidTask) || !strings.Contains(err.Error(), "--tools") {
		t.Errorf("no tools: %v", err)
	}
}

// TestReActStepAsExpansion uses ReActStep inside another search: two
// samples from the root become two tool-call branches.
func TestReActStepAsExpansion(t *testing.T) {
	t.Parallel()
	box, _ := toolbox(t)
	url := toolstest.StartLLM(t, func(r toolstest.Request) toolstest.Reply {
		return toolstest.Call("calc", fmt.Sprintf(`{"expression":"%d * 10"}`, r.Index+1))
	})
	reg := standard.Registry()
	reg.RegisterStrategy(core.StrategySpec{Name: "expand-test", New: func(core.Params) (core.Strategy, error) {
		return strategyFunc(func(ctx context.Context, env *core.Env) (core.Outcome, error) {
			temp := 0.8
			leaves, err := strategy.ReActStep(ctx, env, 0, 2, strategy.ReActOptions{Temperature: &temp, Mode: strategy.ModeNative})
			if err != nil {
				return core.Outcome{}, err
			}
			var outs []string
			for _, id := range leaves {
				outs = append(outs, env.Structure.MustNode(id).Content)
			}
			return core.Outcome{Answer: strings.Join(outs, "|"), Best: leaves[0]}, nil
		}), nil
	}})
	eng := newEngine(t, url, box, reg)
	res, err := eng.Solve(context.Background(), core.Task{Problem: "branch", Strategy: "expand-test", Tools: []string{"calc"}})
	if err != nil || res.Answer != "10|20" {
		t.Fatalf("%+v %v", res, err)
	}
	root := res.Trace.Structure.Children(0)
	if len(root) != 2 || root[0].Kind != core.KindToolCall || root[1].Kind != core.KindToolCall {
		t.Errorf("root children %+v", root)
	}
}

type strategyFunc func(ctx context.Context, env *core.Env) (core.Outcome, error)

func (f strategyFunc) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	return f(ctx, env)
}

// TestUnitTestVerifier checks HumanEval's canonical solutions pass their
// tests in the sandbox and broken ones fail, with the reason.
func TestUnitTestVerifier(t *testing.T) {
	t.Parallel()
	_, sb := toolbox(t)
	dir, err := tasks.FindDataDir()
	if err != nil {
		t.Fatal(err)
	}
	items, _, err := tasks.LoadDataset(dir, "humaneval")
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items[:4] {
		ev := evaluator.UnitTest{Runner: sandbox.UnitTestRunner{Sandbox: sb}, EntryPoint: it.Extra["entry_point"], Timeout: 10 * time.Second}
		task := core.Task{Problem: it.Problem, Truth: it.Extra["test"]}
		good := []core.Node{{Kind: core.KindProblem}, {Kind: core.KindStep, Content: "```python\n" + it.Problem + it.Extra["canonical_solution"] + "\n```"}}
		got, err := ev.Evaluate(context.Background(), core.EvalRequest{Task: task, Path: good})
		if err != nil || got.Score != 1 || got.Correct == nil || !*got.Correct {
			t.Errorf("%s canonical: %+v %v", it.ID, got, err)
		}
		// A completion (the body only) is completed from the prompt.
		body := []core.Node{{Kind: core.KindStep, Content: "```python\n" + it.Extra["canonical_solution"] + "\n```"}}
		if got, err := ev.Evaluate(context.Background(), core.EvalRequest{Task: task, Path: body}); err != nil || got.Score != 1 {
			t.Errorf("%s body only: %+v %v", it.ID, got, err)
		}
		bad := []core.Node{{Kind: core.KindStep, Content: "```python\ndef " + it.Extra["entry_point"] + "(*a, **k):\n    return None\n```"}}
		got, err = ev.Evaluate(context.Background(), core.EvalRequest{Task: task, Path: bad})
		if err != nil || got.Score != -1 || !strings.Contains(got.Detail, "AssertionError") {
			t.Errorf("%s broken: %+v %v", it.ID, got, err)
		}
	}
	ev := evaluator.UnitTest{Runner: sandbox.UnitTestRunner{Sandbox: sb}, Timeout: 300 * time.Millisecond}
	task := core.Task{Problem: "loop", Truth: "assert f() == 1"}
	got, err := ev.Evaluate(context.Background(), core.EvalRequest{Task: task,
		Path: []core.Node{{Content: "```python\ndef f():\n    while True: pass\n```"}}})
	if err != nil || got.Score != -1 || got.Detail != "stopped: timeout" {
		t.Errorf("a hanging candidate: %+v %v", got, err)
	}
	if _, err := ev.Evaluate(context.Background(), core.EvalRequest{Task: core.Task{Problem: "x"}, Path: []core.Node{{Content: "print(1)"}}}); !errors.Is(err, core.ErrNotApplicable) {
		t.Errorf("without tests: %v", err)
	}
	if _, err := (evaluator.UnitTest{}).Evaluate(context.Background(), core.EvalRequest{Task: task, Path: []core.Node{{Content: "print(1)"}}}); !errors.Is(err, evaluator.ErrNoSandbox) {
		t.Errorf("without a sandbox: %v", err)
	}
}

// TestTracesMatchSchema checks PAL and ReAct traces against
// docs/trace.schema.json.
func TestTracesMatchSchema(t *testing.T) {
	t.Parallel()
	box, _ := toolbox(t)
	url := toolstest.StartLLM(t, func(r toolstest.Request) toolstest.Reply {
		if _, ok := tasks.ParsePALPrompt(convert(r)); ok {
			return toolstest.Text("```python\nprint(6 * 7)\n```")
		}
		if r.LastToolResult() != "" {
			return toolstest.Text(`\boxed{42}`)
		}
		return toolstest.Call("calc", `{"expression":"6*7"}`)
	})
	eng := newEngine(t, url, box, nil)
	for _, task := range []core.Task{{Problem: "6*7?", Strategy: "pal"}, {Problem: "6*7?", Strategy: "react", Tools: []string{"calc"}}} {
		res, err := eng.Solve(context.Background(), task)
		if err != nil || res.Answer != "42" {
			t.Fatalf("%s: %+v %v", task.Strategy, res, err)
		}
		raw, err := json.Marshal(res.Trace)
		if err != nil {
			t.Fatal(err)
		}
		if err := tracetest.Validate(t, raw); err != nil {
			t.Errorf("%s trace: %v", task.Strategy, err)
		}
	}
}

// TestToolCallsAreTraced checks a tool call through the engine is in the
// trace with its arguments and result.
func TestToolCallsAreTraced(t *testing.T) {
	t.Parallel()
	box, _ := toolbox(t)
	url := toolstest.StartLLM(t, func(r toolstest.Request) toolstest.Reply {
		if r.LastToolResult() != "" {
			return toolstest.Text(`\boxed{done}`)
		}
		return toolstest.Call("python", `{"code":"print('traced')"}`)
	})
	eng := newEngine(t, url, box, nil)
	res, err := eng.Solve(context.Background(), core.Task{Problem: "trace me", Strategy: "react", Tools: []string{"python"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range res.Trace.Events {
		if ev.Op != core.OpToolCall {
			continue
		}
		args, _ := json.Marshal(ev.Get("args"))
		if ev.Get("tool") != "python" || !strings.Contains(string(args), "print('traced')") || ev.Get("result") != "traced\n" {
			t.Errorf("tool_call event %+v", ev.Data)
		}
		if !strings.Contains(string(args), `"session":"react-`) {
			t.Errorf("the react session was not added: %s", args)
		}
		return
	}
	t.Error("no tool_call event")
}
