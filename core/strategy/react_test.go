package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
	"github.com/ponder-rlm/ponder/tools"
	"github.com/ponder-rlm/ponder/tools/calc"
	"github.com/ponder-rlm/ponder/tools/sandbox"
)

func TestParseTextAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, reply       string
		ok                bool
		tool, args, thght string
	}{
		{"plain", "Thought: add them\nAction: calc\nAction Input: {\"expression\": \"1+2\"}", true, "calc", `{"expression": "1+2"}`, "Thought: add them"},
		{"fenced json", "Action: python\nAction Input:\n```json\n{\"code\": \"print(1)\"}\n```", true, "python", `{"code": "print(1)"}`, ""},
		{"bare code", "Action: python\nAction Input:\n```python\nprint(1)\n```", true, "python", `bare:print(1)`, ""},
		{"bare expression", "Action: calc\nAction Input: 2^10", true, "calc", `bare:2^10`, ""},
		{"hallucinated observation", "Action: calc\nAction Input: {\"expression\": \"2\"}\nObservation: 2\nAction: calc\nAction Input: {}", true, "calc", `{"expression": "2"}`, ""},
		{"trailing text", "Action: `calc`\nAction Input: {\"expression\": \"2\"} and then I will see", true, "calc", `{"expression": "2"}`, ""},
		{"bold markdown", "**Action:** calc\n**Action Input:** {\"expression\": \"3\"}", true, "calc", `{"expression": "3"}`, ""},
		{"no input", "Action: now\n", true, "now", `{}`, ""},
		{"final answer", "Thought: done\nFinal Answer: \\boxed{3}", false, "", "", ""},
		{"only input", "Action Input: {}", false, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := parseTextAction(tt.reply)
			if ok != tt.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if a.args == nil {
				a.args = json.RawMessage("bare:" + a.bare)
			}
			if a.name != tt.tool || string(a.args) != tt.args || a.thought != tt.thght {
				t.Errorf("got %q %s %q; want %q %s %q", a.name, a.args, a.thought, tt.tool, tt.args, tt.thght)
			}
		})
	}
}

func TestWireNames(t *testing.T) {
	t.Parallel()
	specs := []core.ToolSpec{{Name: "python"}, {Name: "everything.echo"}, {Name: "everything__echo"}, {Name: "a b/c"}}
	w := newWireNames(specs)
	for _, s := range specs {
		wire := w.wire(s.Name)
		if !validWire(wire) {
			t.Errorf("%q → %q is not a valid function name", s.Name, wire)
		}
		if back := w.real(wire); back != s.Name {
			t.Errorf("%q → %q → %q", s.Name, wire, back)
		}
	}
	if w.wire("everything.echo") == w.wire("everything__echo") {
		t.Error("two tools share a wire name")
	}
	if w.real("unknown") != "unknown" {
		t.Error("an unknown wire name is not passed through")
	}
}

func validWire(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func TestTextToolProtocol(t *testing.T) {
	t.Parallel()
	p := TextToolProtocol([]core.ToolSpec{{Name: "calc", Description: "Exact\ncalculator", Schema: json.RawMessage(`{ "type": "object" }`)}})
	for _, want := range []string{"- calc: Exact calculator\n", `arguments (JSON Schema): {"type":"object"}`, "Action Input:", "Final Answer: \\boxed{ANSWER}"} {
		if !strings.Contains(p, want) {
			t.Errorf("protocol lacks %q:\n%s", want, p)
		}
	}
}

// toolModel stands in for the LLM: while tools are offered it calls
// call(i) natively (i counts its calls), and when they are withheld it
// answers final.
type toolModel struct {
	mu    sync.Mutex
	calls int
	call  func(i int) core.ToolCall
	final string
}

func (m *toolModel) Complete(_ context.Context, req core.CompletionRequest) (core.Completion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if len(req.Tools) == 0 {
		return core.Completion{Choices: []core.Choice{{Text: m.final}}}, nil
	}
	tc := m.call(m.calls)
	return core.Completion{Choices: []core.Choice{{Text: "let me use a tool", ToolCalls: []core.ToolCall{tc}}}}, nil
}

func toolEngine(t *testing.T, p core.Policy, ts ...core.Tool) *core.Engine {
	t.Helper()
	box := tools.NewRegistry(nil)
	for _, tool := range ts {
		if err := box.Register(tool, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { box.Close() })
	reg := core.NewRegistry()
	Register(reg)
	return core.NewEngine(p, reg, &core.EngineOptions{Packs: tasks.Get, Tools: box})
}

// TestReActAnswersWhenToolCallsRunOut: a model that keeps calling tools
// until the tool-call budget is spent is asked for its answer, instead of
// the search ending on a tool call (whose text became the answer).
func TestReActAnswersWhenToolCallsRunOut(t *testing.T) {
	t.Parallel()
	m := &toolModel{final: "So the answer is \\boxed{3}.", call: func(int) core.ToolCall {
		return core.ToolCall{ID: "c", Name: "calc", Arguments: json.RawMessage(`{"expression":"1+2"}`)}
	}}
	eng := toolEngine(t, m, calc.New(nil))
	res, err := eng.Solve(context.Background(), core.Task{Problem: "1+2?", Strategy: "react", Tools: []string{"calc"},
		Limits: core.Limits{ToolCalls: 2, LLMCalls: 20}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Answer != "3" || res.Stopped != core.StopBudget || res.Usage.ToolCalls != 2 || res.Usage.LLMCalls != 4 {
		t.Fatalf("answer %q, stopped %s (%s), usage %+v; want 3 after 2 tool calls and 4 LLM calls", res.Answer, res.Stopped, res.Error, res.Usage)
	}
	var spent bool
	for _, n := range res.BestPath {
		spent = spent || n.Kind == core.KindToolResult && strings.Contains(n.Content, "no more tool calls")
	}
	if !spent || res.BestPath[len(res.BestPath)-1].Kind != core.KindAnswer {
		t.Errorf("path does not say the tool calls ran out before the answer: %+v", res.BestPath)
	}
}

// TestReActSessionIsTheRunsOwn: a session name the model makes up is
// replaced by the run's, so two runs (two users of a server) that make up
// the same name do not share python variables.
func TestReActSessionIsTheRunsOwn(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.New(&sandbox.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("sandbox unavailable (run scripts/deps.sh): %v", err)
	}
	t.Cleanup(func() { sb.Close() })
	run := func(code string) string {
		m := &toolModel{final: "\\boxed{done}", call: func(i int) core.ToolCall {
			args, _ := json.Marshal(map[string]string{"code": code, "session": "main"})
			return core.ToolCall{ID: "c", Name: "python", Arguments: args}
		}}
		eng := toolEngine(t, m, sb.Tool())
		res, err := eng.Solve(context.Background(), core.Task{Problem: "p", Strategy: "react", Tools: []string{"python"},
			Params: core.Params{"max_steps": int64(1)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range res.BestPath {
			if n.Kind == core.KindToolResult {
				return n.Content
			}
		}
		t.Fatalf("no tool result: %+v", res.BestPath)
		return ""
	}
	run("secret = 'from the first run'\nprint('set')")
	if got := run("print(globals().get('secret', 'unset'))"); strings.Contains(got, "from the first run") || !strings.Contains(got, "unset") {
		t.Errorf("the second run read the first run's variable: %q", got)
	}
}

// TestReActArgumentsThatDoNotParse: arguments that are not JSON (as the
// LLM client passes them on, as a JSON string) are answered with what is
// wrong, and no tool call is spent on them; arguments encoded twice are
// unwrapped.
func TestReActArgumentsThatDoNotParse(t *testing.T) {
	t.Parallel()
	args := []string{`"{\"expression\": 1+"`, `"{\"expression\": \"1+2\"}"`}
	m := &toolModel{final: "\\boxed{3}", call: func(i int) core.ToolCall {
		return core.ToolCall{ID: "c", Name: "calc", Arguments: json.RawMessage(args[(i-1)%len(args)])}
	}}
	eng := toolEngine(t, m, calc.New(nil))
	res, err := eng.Solve(context.Background(), core.Task{Problem: "1+2?", Strategy: "react", Tools: []string{"calc"},
		Params: core.Params{"max_steps": int64(2)}})
	if err != nil {
		t.Fatal(err)
	}
	obs := observations(res)
	if len(obs) != 2 || !strings.HasPrefix(obs[0], "error: the arguments are not a JSON object (invalid character '+'") || obs[1] != "3" {
		t.Errorf("observations %q; want the parse error, then 3", obs)
	}
	if res.Answer != "3" || res.Usage.ToolCalls != 1 {
		t.Errorf("answer %q after %d tool calls; want 3 after 1", res.Answer, res.Usage.ToolCalls)
	}
}

// TestReActTextInputThatDoesNotParse: in the text protocol, input that
// starts like JSON but does not parse is answered with the parse error,
// and the model's own action is kept as it wrote it.
func TestReActTextInputThatDoesNotParse(t *testing.T) {
	t.Parallel()
	m := &textModel{replies: []string{"Thought: add\nAction: calc\nAction Input: {expression: 1+2}", "\\boxed{3}"}}
	eng := toolEngine(t, m, calc.New(nil))
	res, err := eng.Solve(context.Background(), core.Task{Problem: "1+2?", Strategy: "react", Tools: []string{"calc"},
		Params: core.Params{"mode": ModeText}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.BestPath) != 4 || res.Answer != "3" {
		t.Fatalf("path %+v, answer %q", res.BestPath, res.Answer)
	}
	call, obs := res.BestPath[1].Content, res.BestPath[2].Content
	if !strings.HasSuffix(call, "Action Input: {expression: 1+2}") || !strings.HasPrefix(obs, "error: the arguments are not a JSON object") {
		t.Errorf("call %q, observation %q", call, obs)
	}
	if res.Usage.ToolCalls != 0 {
		t.Errorf("%d tool calls spent on input that did not parse", res.Usage.ToolCalls)
	}
}

// TestReActTextBareInput: text-protocol input that is not JSON is the
// argument of the tool it calls (calc's expression, a query), not always
// "code", which calc refused as an argument the model never wrote.
func TestReActTextBareInput(t *testing.T) {
	t.Parallel()
	search := tools.Func{ToolSpec: core.ToolSpec{Name: "search", Description: "search",
		Schema: json.RawMessage(`{"type":"object","properties":{"query":{"type":"string"},"k":{"type":"integer"}},"required":["query"]}`)},
		Fn: func(_ context.Context, args json.RawMessage) (core.ToolResult, error) {
			var a struct{ Query string }
			_ = json.Unmarshal(args, &a)
			return core.ToolResult{Text: "found " + a.Query}, nil
		}}
	m := &textModel{replies: []string{"Action: calc\nAction Input: 2^10", "Action: search\nAction Input: ducks", "\\boxed{1024}"}}
	eng := toolEngine(t, m, calc.New(nil), search)
	res, err := eng.Solve(context.Background(), core.Task{Problem: "2^10?", Strategy: "react", Tools: []string{"calc", "search"},
		Params: core.Params{"mode": ModeText}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.BestPath) != 6 || res.Answer != "1024" {
		t.Fatalf("path %+v, answer %q", res.BestPath, res.Answer)
	}
	if call, obs := res.BestPath[1].Content, res.BestPath[2].Content; !strings.HasSuffix(call, `Action Input: {"expression":"2^10"}`) || obs != "1024" {
		t.Errorf("calc: call %q, observation %q", call, obs)
	}
	if obs := res.BestPath[4].Content; obs != "found ducks" {
		t.Errorf("search: observation %q", obs)
	}
}

// TestReActArgumentsNotAnObject: native arguments that parse but are not
// an object (an array, null, a number) are answered with what is wrong
// and cost no tool call, like arguments that do not parse.
func TestReActArgumentsNotAnObject(t *testing.T) {
	t.Parallel()
	args := []string{`[1, 2]`, `null`, `42`, `{"expression":"1+2"}`}
	m := &toolModel{final: "\\boxed{3}", call: func(i int) core.ToolCall {
		return core.ToolCall{ID: "c", Name: "calc", Arguments: json.RawMessage(args[(i-1)%len(args)])}
	}}
	eng := toolEngine(t, m, calc.New(nil))
	res, err := eng.Solve(context.Background(), core.Task{Problem: "1+2?", Strategy: "react", Tools: []string{"calc"},
		Params: core.Params{"max_steps": int64(len(args))}})
	if err != nil {
		t.Fatal(err)
	}
	obs := observations(res)
	want := "error: the arguments are not a JSON object; send them as one JSON object"
	if len(obs) != 4 || obs[0] != want || obs[1] != want || obs[2] != want || obs[3] != "3" {
		t.Errorf("observations %q; want the error three times, then 3", obs)
	}
	if res.Usage.ToolCalls != 1 {
		t.Errorf("%d tool calls; want 1 (only the object)", res.Usage.ToolCalls)
	}
}

// textModel replies in order, the last reply repeating.
type textModel struct {
	mu      sync.Mutex
	replies []string
	n       int
}

func (m *textModel) Complete(context.Context, core.CompletionRequest) (core.Completion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.replies[min(m.n, len(m.replies)-1)]
	m.n++
	return core.Completion{Choices: []core.Choice{{Text: r}}}, nil
}

// TestWithoutSessionArg: steps without a run's session offer tools
// without the "session" argument, wherever the schema names it.
func TestWithoutSessionArg(t *testing.T) {
	t.Parallel()
	tests := []struct{ schema, want string }{
		{sandbox.ToolSchema, `"required":["code"]`},
		{`{"type":"object","properties":{"session":{"type":"string"},"q":{}},"required":["session","q"]}`,
			`{"properties":{"q":{}},"required":["q"],"type":"object"}`},
		{`{"type":"object","properties":{"expression":{"type":"string"}}}`, `"expression"`},
		{`not json`, `not json`},
	}
	for _, tt := range tests {
		got := string(withoutSessionArg([]core.ToolSpec{{Name: "t", Schema: json.RawMessage(tt.schema)}})[0].Schema)
		if strings.Contains(got, "session") || !strings.Contains(got, tt.want) {
			t.Errorf("withoutSessionArg(%s) = %s, want no session and %s", tt.schema, got, tt.want)
		}
	}
}

// TestReActToolsParamOutsideTask: the tools parameter names a tool the
// task does not allow: the error says which and what the task allows,
// rather than dropping it (or, with none left, asking for --tools).
func TestReActToolsParamOutsideTask(t *testing.T) {
	t.Parallel()
	m := &textModel{replies: []string{"\\boxed{1}"}}
	eng := toolEngine(t, m, calc.New(nil))
	// A bad tools parameter makes the task invalid (it failed the run,
	// exit 1, after the task was accepted); a JSON list, as MCP and API
	// clients write one, reads as the names it holds.
	for param, want := range map[any]string{"python": "names python,", "calc,pyton": "names pyton,", `["calc", "pyton"]`: "names pyton,",
		// A list itself, as an MCP or API client's params object holds it.
		"list calc, pyton": "names pyton,"} {
		if param == "list calc, pyton" {
			param = []any{"calc", "pyton"}
		}
		_, err := eng.Solve(context.Background(), core.Task{Problem: "1?", Strategy: "react", Tools: []string{"calc"},
			Params: core.Params{"tools": param}})
		if msg := fmt.Sprint(err); !errors.Is(err, core.ErrInvalidTask) || !strings.Contains(msg, `invalid parameter "tools": `+want) || !strings.Contains(msg, "it allows calc") {
			t.Errorf("tools=%s: %v; want an invalid task saying %q", param, err, want)
		}
	}
	if _, err := eng.Solve(context.Background(), core.Task{Problem: "1?", Strategy: "react", Tools: []string{"calc"},
		Params: core.Params{"tools": []any{1}}}); !errors.Is(err, core.ErrInvalidTask) || !strings.Contains(fmt.Sprint(err), "a JSON list of names") {
		t.Errorf("tools=[1]: %v; want an invalid task asking for a list of names", err)
	}
	// Without tools the task is refused, saying how to give it tools from
	// the command line and from MCP or API clients, which pass no flags.
	_, err := eng.Solve(context.Background(), core.Task{Problem: "1?", Strategy: "react", Params: core.Params{}})
	if msg := fmt.Sprint(err); !errors.Is(err, core.ErrInvalidTask) || !strings.Contains(msg, "react needs tools: pass --tools") ||
		!strings.Contains(msg, `"tools": ["python", "calc"] in MCP's solve`) {
		t.Errorf("no tools: %v", err)
	}
	for _, param := range []any{"calc", `["calc"]`, []any{"calc"}} {
		res, err := eng.Solve(context.Background(), core.Task{Problem: "1?", Strategy: "react", Tools: []string{"calc"}, Params: core.Params{"tools": param}})
		if err != nil || res.Answer != "1" {
			t.Errorf("tools=%s: %q %v %s", param, res.Answer, err, res.Error)
		}
	}
}

// goneTool is a tool whose server went away.
type goneTool struct{}

func (goneTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: "remote.add", Description: "adds", Schema: json.RawMessage(`{"type":"object"}`)}
}

func (goneTool) Call(context.Context, json.RawMessage) (core.ToolResult, error) {
	return core.ToolResult{}, errors.New("mcp server unavailable: connection lost")
}

// A failed call of a tool that is there says what failed, not also which
// tools are available, as if its name were wrong; a name the model made
// up still gets the list. And a tool named twice is offered once.
func TestReActToolErrorsNameAvailableToolsOnlyForUnknownNames(t *testing.T) {
	t.Parallel()
	names := []string{"remote.add", "nosuch"}
	m := &toolModel{final: "\\boxed{3}", call: func(i int) core.ToolCall {
		return core.ToolCall{ID: "c", Name: names[(i-1)%len(names)], Arguments: json.RawMessage(`{}`)}
	}}
	eng := toolEngine(t, m, goneTool{}, calc.New(nil))
	res, err := eng.Solve(context.Background(), core.Task{Problem: "1+2?", Strategy: "react", Tools: []string{"remote.add", "calc", "calc"},
		Params: core.Params{"max_steps": int64(2), "mode": "native"}})
	if err != nil {
		t.Fatal(err)
	}
	obs := observations(res)
	if len(obs) != 2 || strings.Contains(obs[0], "available tools") || !strings.Contains(obs[0], "connection lost") ||
		!strings.Contains(obs[1], "(available tools: remote.add, calc)") {
		t.Errorf("observations %q; want the lost connection alone, then the unknown name with the tools offered once each", obs)
	}
}

// A task naming a tool the engine does not have is refused with the names
// it has, and where a configured one may have gone (tools.disabled).
func TestUnknownToolNamesTheKnownOnes(t *testing.T) {
	t.Parallel()
	eng := toolEngine(t, &textModel{replies: []string{"\\boxed{1}"}}, calc.New(nil))
	_, err := eng.Solve(context.Background(), core.Task{Problem: "1?", Strategy: "react", Tools: []string{"python"}})
	if msg := fmt.Sprint(err); !errors.Is(err, core.ErrInvalidTask) || !strings.Contains(msg, `unknown tool "python" (known: calc;`) ||
		!strings.Contains(msg, "tools.disabled") {
		t.Errorf("%v; want the known tools named", err)
	}
}

// A nested search is checked with the tools it will run with, its
// parent's: decompose with react for its sub-questions was refused
// ("react needs tools") though the task gave them.
func TestSubStrategyIsCheckedWithTheTasksTools(t *testing.T) {
	t.Parallel()
	eng := toolEngine(t, &textModel{replies: []string{"\\boxed{1}"}}, calc.New(nil))
	task := core.Task{Problem: "1?", Strategy: "decompose", Params: core.Params{"sub_strategy": "react", "verifier": "none"}}
	if err := eng.Validate(task); err == nil || !strings.Contains(err.Error(), "react needs tools") {
		t.Errorf("without tools: %v; want react's refusal", err)
	}
	task.Tools = []string{"calc"}
	if err := eng.Validate(task); err != nil {
		t.Errorf("with tools: %v", err)
	}
}

// observations are the tool results on a search's best path.
func observations(res core.Result) []string {
	var obs []string
	for _, n := range res.BestPath {
		if n.Kind == core.KindToolResult {
			obs = append(obs, n.Content)
		}
	}
	return obs
}
