package strategy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
)

func init() {
	builtins = append(builtins, reactSpec)
	core.SetShape("react", core.Chain)
}

// ReAct prompts (Yao et al., 2023). The conversation is rebuilt from the
// path at every step: the system prompt, the problem, then for each node
// an assistant message (thoughts, tool calls, answers) or the tool's
// observation.
const (
	ReActSystem = "You solve problems step by step and use tools when they help. At each turn, think about what " +
		"to do next, then either call one tool or give the final answer. Tool results come back as observations."
	ReActInstruction = "Solve the problem. Call tools for calculations, code and facts you are unsure of. When you " +
		"know the answer, give it as \\boxed{ANSWER}."
	// ReActFinal is sent instead of the tools when the steps run out.
	ReActFinal = "You have used all your steps. Give the final answer now, as \\boxed{ANSWER}."
)

// TextToolProtocol describes tools to models without native tool calling.
// Ponder reads Action / Action Input from the reply (everything from
// "Observation:" on is ignored) and answers with a user message
// "Observation: <result>".
func TextToolProtocol(specs []core.ToolSpec) string {
	var b strings.Builder
	b.WriteString("You can call these tools:\n")
	for _, s := range specs {
		fmt.Fprintf(&b, "- %s: %s\n  arguments (JSON Schema): %s\n", s.Name, text.OneLine(s.Description), compactJSON(s.Schema))
	}
	b.WriteString("\nTo call a tool, reply with exactly these lines and then stop:\n" +
		"Thought: <what you will do and why>\n" +
		"Action: <tool name>\n" +
		"Action Input: <the arguments as one JSON object>\n" +
		"The result comes back as \"Observation: <result>\". When you know the answer, reply:\n" +
		"Thought: <why this is the answer>\n" +
		"Final Answer: \\boxed{ANSWER}")
	return b.String()
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if len(raw) == 0 || json.Compact(&b, raw) != nil {
		return "{}"
	}
	return b.String()
}

// Tool-calling modes of ReActStep.
const (
	ModeAuto   = "auto"   // offer tools natively and describe the text protocol; accept either
	ModeNative = "native" // OpenAI tool calling only
	ModeText   = "text"   // the text protocol only (models without tool calling)
)

// ReActOptions tune ReActStep. The zero value is valid (auto mode).
type ReActOptions struct {
	Mode        string
	Temperature *float64
	MaxTokens   int
	// Session, when set, is the "session" argument of every call of a
	// tool that takes one (python), replacing any the model names, so
	// their state persists along the path and is the run's alone; the
	// caller closes it (Env.CloseToolSession) when its run ends. Left
	// empty, such tools are offered without the argument and every call
	// stands alone: a session the model named would be shared with any
	// other run that named it. Leave it empty when branches of a tree
	// share a prefix: a session cannot fork.
	Session string
	// Tools limits the tools offered (default: all the task allows).
	Tools []string
	// Final withholds the tools and asks for the final answer.
	Final bool
}

// ReActStep extends the path ending at leaf with k think→act→observe
// steps, one per sample: a reply that calls a tool adds a tool-call node
// (the thought and the call) and a tool-result node (the observation); a
// reply with a final answer adds an answer node; any other reply adds a
// step. Tool calls go through env.CallTool, so they are allowed, budgeted
// and traced like every call. It returns the new leaves (tool results,
// answers or steps), in sample order. Searches use it as their expansion:
// a tool call is then one branch of a beam or an MCTS child.
//
// A tool that fails, or that the task does not allow, becomes an
// observation saying so; only budget, cancellation and LLM errors are
// returned.
func ReActStep(ctx context.Context, env *core.Env, leaf core.NodeID, k int, o ReActOptions) ([]core.NodeID, error) {
	if k < 1 {
		k = 1
	}
	mode := o.Mode
	if mode == "" {
		mode = ModeAuto
	}
	specs := offered(env, o.Tools)
	if o.Final {
		specs = nil
	}
	if o.Session == "" {
		specs = withoutSessionArg(specs)
	}
	path := env.Structure.Path(leaf)
	if path == nil {
		return nil, fmt.Errorf("react: node %d does not exist", leaf)
	}
	names := newWireNames(specs)
	req := core.CompletionRequest{N: k, Temperature: o.Temperature, MaxTokens: o.MaxTokens, Purpose: "react"}
	seed := env.NextSeed()
	req.Seed = &seed
	native := mode != ModeText && len(specs) > 0
	build := func(native bool) {
		req.Messages = reactMessages(env, path, specs, mode, native, names, o.Final)
		req.Tools, req.Stop = nil, nil
		if native {
			req.Tools = names.wireSpecs(specs)
		}
		if mode != ModeNative && len(specs) > 0 {
			req.Stop = []string{"\nObservation:"}
		}
	}
	build(native)
	c, err := env.Complete(ctx, req)
	if err != nil && native && mode == ModeAuto && !stopErr(err) {
		// The endpoint may not do tool calling: ask again with the text
		// protocol only.
		env.Logger.Debug().Err(err).Msg("react: request with tools failed; retrying with the text protocol")
		build(false)
		native = false
		c, err = env.Complete(ctx, req)
	}
	if err != nil {
		return nil, fmt.Errorf("react step from node %d: %w", leaf, err)
	}
	per := core.Usage{LLMCalls: 1, PromptTokens: c.PromptTokens / int64(max(1, len(c.Choices))),
		CompletionTokens: c.CompletionTokens / int64(max(1, len(c.Choices)))}
	var out []core.NodeID
	for _, ch := range c.Choices {
		id, err := reactChoice(ctx, env, leaf, ch, mode, names, o, per)
		if id != 0 {
			out = append(out, id)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// stopErr reports errors that end a search (budget, cancellation).
func stopErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, core.ErrBudgetExhausted)
}

func offered(env *core.Env, only []string) []core.ToolSpec {
	all := env.Tools()
	if len(only) == 0 {
		return all
	}
	var out []core.ToolSpec
	for _, s := range all {
		for _, n := range only {
			if s.Name == n {
				out = append(out, s)
			}
		}
	}
	return out
}

// reactChoice turns one reply into nodes below leaf.
func reactChoice(ctx context.Context, env *core.Env, leaf core.NodeID, ch core.Choice, mode string, names wireNames,
	o ReActOptions, usage core.Usage) (core.NodeID, error) {
	text := strings.TrimSpace(ch.Text)
	if len(ch.ToolCalls) > 0 && mode != ModeText && !o.Final {
		parent := leaf
		for i, tc := range ch.ToolCalls {
			thought := ""
			if i == 0 {
				thought = text
			}
			id, err := act(ctx, env, parent, names.real(tc.Name), tc.Arguments, tc.ID, ModeNative, thought, o, usage)
			if err != nil {
				return id, err
			}
			parent, usage = id, core.Usage{}
		}
		return parent, nil
	}
	if mode != ModeNative && !o.Final {
		if a, ok := parseTextAction(text); ok {
			name := names.real(a.name)
			if a.args == nil {
				a.args = bareArgs(env, name, a.bare)
			}
			return act(ctx, env, leaf, name, a.args, "", ModeText, a.thought, o, usage)
		}
	}
	n := core.Node{Kind: core.KindStep, Content: text, Usage: usage}
	if ans, ok := env.Pack.ExtractAnswer(text); ok {
		n.Kind, n.Answer, n.Terminal = core.KindAnswer, ans, true
	}
	return env.AddNode([]core.NodeID{leaf}, n)
}

// act adds a tool-call node, runs the call and adds the observation.
func act(ctx context.Context, env *core.Env, parent core.NodeID, name string, args json.RawMessage, callID, mode, thought string,
	o ReActOptions, usage core.Usage) (core.NodeID, error) {
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("{}")
	}
	meta := map[string]any{"tool": name, "arguments": args, "mode": mode, "thought": thought}
	call := core.Node{Kind: core.KindToolCall, Content: renderAction(thought, name, args), Usage: usage, Meta: meta}
	cid, err := env.AddNode([]core.NodeID{parent}, call)
	if err != nil {
		return 0, err
	}
	if callID == "" {
		callID = fmt.Sprintf("call_%d", cid)
	}
	_ = env.Structure.Update(cid, func(n *core.Node) { n.Meta["call_id"] = callID })
	if obj, problem, ok := stringArgs(args); ok {
		if problem != "" {
			// Say what is wrong, rather than let the tool complain about
			// a field the model never wrote.
			obs := core.Node{Kind: core.KindToolResult, Content: "error: " + problem + "; send them as one JSON object",
				Meta: map[string]any{"tool": name, "call_id": callID, "mode": mode, "is_error": true}}
			return env.AddNode([]core.NodeID{cid}, obs)
		}
		args = obj
	} else if !isObject(args) {
		// An array, a number, null: no tool takes one, so spend no call
		// on it (as on arguments that do not parse).
		obs := core.Node{Kind: core.KindToolResult, Content: "error: the arguments are not a JSON object; send them as one JSON object",
			Meta: map[string]any{"tool": name, "call_id": callID, "mode": mode, "is_error": true}}
		return env.AddNode([]core.NodeID{cid}, obs)
	}
	sent := withSession(env, name, args, o.Session)
	res, err := env.CallTool(ctx, core.ToolCall{ID: callID, Name: name, Arguments: sent})
	if err != nil {
		if errors.Is(err, core.ErrBudgetExhausted) && ctx.Err() == nil {
			// The tool calls are spent (LLM calls may not be): say so on
			// the path, so that a final request sees why the call got no
			// result.
			obs := core.Node{Kind: core.KindToolResult, Content: "error: " + err.Error() + ": no more tool calls; give the final answer",
				Meta: map[string]any{"tool": name, "call_id": callID, "mode": mode, "is_error": true}}
			if id, aerr := env.AddNode([]core.NodeID{cid}, obs); aerr == nil {
				return id, toolsSpentError{err}
			}
			return cid, toolsSpentError{err}
		}
		if stopErr(err) {
			return cid, err
		}
		note := ""
		if len(offered(env, []string{name})) == 0 || (len(o.Tools) > 0 && !slices.Contains(o.Tools, name)) {
			// A name the model made up: say which it may call. Not for
			// a tool that is there and failed (an MCP server gone).
			note = availableNote(env, o)
		}
		res = core.ToolResult{Text: "error: " + err.Error() + note, IsError: true}
	}
	obs := core.Node{Kind: core.KindToolResult, Content: res.Text,
		Meta: map[string]any{"tool": name, "call_id": callID, "mode": mode, "is_error": res.IsError}}
	return env.AddNode([]core.NodeID{cid}, obs)
}

// stringArgs reads arguments that came as a JSON string: the LLM client
// and the text protocol pass on arguments that do not parse as one, and
// some models encode the object twice. It returns the object inside, or
// why there is none; ok is false for arguments that are not a string.
func stringArgs(args json.RawMessage) (obj json.RawMessage, problem string, ok bool) {
	var text string
	if t := bytes.TrimSpace(args); len(t) == 0 || t[0] != '"' || json.Unmarshal(t, &text) != nil {
		return nil, "", false // null unmarshals into a string too
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return nil, "the arguments are not a JSON object (" + err.Error() + ")", true
	}
	if _, isObj := v.(map[string]any); !isObj {
		return nil, "the arguments are not a JSON object", true
	}
	return json.RawMessage(strings.TrimSpace(text)), "", true
}

// isObject reports whether args is one JSON object.
func isObject(args json.RawMessage) bool {
	t := bytes.TrimSpace(args)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// toolsSpentError is the tool-call budget running out in a step: the
// search may still ask for the final answer.
type toolsSpentError struct{ err error }

func (e toolsSpentError) Error() string { return e.err.Error() }
func (e toolsSpentError) Unwrap() error { return e.err }

func availableNote(env *core.Env, o ReActOptions) string {
	var names []string
	for _, s := range offered(env, o.Tools) {
		names = append(names, s.Name)
	}
	if len(names) == 0 {
		return ""
	}
	return " (available tools: " + strings.Join(names, ", ") + ")"
}

// withSession sets "session" in the arguments of a tool that takes one,
// or, when session is empty, removes one the model named.
func withSession(env *core.Env, name string, args json.RawMessage, session string) json.RawMessage {
	takes := false
	for _, s := range env.Tools() {
		if s.Name != name {
			continue
		}
		var sch struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		_ = json.Unmarshal(s.Schema, &sch)
		_, takes = sch.Properties["session"]
	}
	if !takes {
		return args
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(args, &m) != nil || m == nil {
		return args
	}
	// The run's session replaces one the model names, and without one the
	// model's is dropped: a name a model makes up ("main") would be shared
	// with every other run that makes up the same one, on a server other
	// users' runs, and would outlive the run.
	if session == "" {
		if _, named := m["session"]; !named {
			return args
		}
		delete(m, "session")
	} else {
		m["session"], _ = json.Marshal(session)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return args
	}
	return b
}

// withoutSessionArg returns specs with the "session" argument taken out of
// the schemas that have one, for steps without a run's session: the model
// is not offered state that would not persist.
func withoutSessionArg(specs []core.ToolSpec) []core.ToolSpec {
	out := make([]core.ToolSpec, len(specs))
	for i, s := range specs {
		out[i] = s
		var sch map[string]json.RawMessage
		if json.Unmarshal(s.Schema, &sch) != nil {
			continue
		}
		var props map[string]json.RawMessage
		if json.Unmarshal(sch["properties"], &props) != nil {
			continue
		}
		if _, ok := props["session"]; !ok {
			continue
		}
		delete(props, "session")
		sch["properties"], _ = json.Marshal(props)
		var req []string
		if json.Unmarshal(sch["required"], &req) == nil && len(req) > 0 {
			kept := req[:0]
			for _, r := range req {
				if r != "session" {
					kept = append(kept, r)
				}
			}
			sch["required"], _ = json.Marshal(kept)
		}
		if b, err := json.Marshal(sch); err == nil {
			out[i].Schema = b
		}
	}
	return out
}

func renderAction(thought, name string, args json.RawMessage) string {
	var b strings.Builder
	if thought != "" {
		if !strings.HasPrefix(thought, "Thought:") {
			b.WriteString("Thought: ")
		}
		b.WriteString(thought + "\n")
	}
	input := compactJSON(args)
	if _, problem, _ := stringArgs(args); problem != "" {
		_ = json.Unmarshal(args, &input) // what the model wrote
	}
	b.WriteString("Action: " + name + "\nAction Input: " + input)
	return b.String()
}

// reactMessages rebuilds the conversation for the path. Tool calls made
// natively are sent natively only when this request offers tools
// natively; otherwise every call is written in the text protocol.
func reactMessages(env *core.Env, path []core.Node, specs []core.ToolSpec, mode string, native bool, names wireNames, final bool) []core.Message {
	system := ReActSystem
	if mode != ModeNative && len(specs) > 0 {
		system += "\n\n" + TextToolProtocol(specs)
	}
	instruction := ReActInstruction
	msgs := []core.Message{{Role: "system", Content: system},
		{Role: "user", Content: "Problem:\n" + env.Task.Problem + "\n\n" + instruction}}
	for _, n := range path {
		switch n.Kind {
		case core.KindProblem:
		case core.KindToolCall:
			if n.Meta["mode"] == ModeNative && native {
				args, _ := n.Meta["arguments"].(json.RawMessage)
				thought, _ := n.Meta["thought"].(string)
				id, _ := n.Meta["call_id"].(string)
				tool, _ := n.Meta["tool"].(string)
				msgs = append(msgs, core.Message{Role: "assistant", Content: thought,
					ToolCalls: []core.ToolCall{{ID: id, Name: names.wire(tool), Arguments: args}}})
			} else {
				msgs = append(msgs, core.Message{Role: "assistant", Content: n.Content})
			}
		case core.KindToolResult:
			id, _ := n.Meta["call_id"].(string)
			if n.Meta["mode"] == ModeNative && native {
				msgs = append(msgs, core.Message{Role: "tool", ToolCallID: id, Content: n.Content})
			} else {
				msgs = append(msgs, core.Message{Role: "user", Content: "Observation: " + n.Content})
			}
		case core.KindRetrieval:
			msgs = append(msgs, core.Message{Role: "user", Content: n.Content})
		default:
			msgs = append(msgs, core.Message{Role: "assistant", Content: n.Content})
		}
	}
	if final {
		msgs = append(msgs, core.Message{Role: "user", Content: ReActFinal})
	}
	return msgs
}

var (
	actionLine  = regexp.MustCompile(`(?mi)^[ \t*]*Action[ \t*]*:[ \t*]*(.+?)[ \t*]*$`)
	actionInput = regexp.MustCompile(`(?si)Action[ \t*]*Input[ \t*]*:[ \t*]*(.*)`)
	observation = regexp.MustCompile(`(?mi)^[ \t]*Observation[ \t]*:`)
	fenced      = regexp.MustCompile("(?s)^```[A-Za-z0-9]*[ \t]*\r?\n(.*?)\r?\n?```")
)

type textAction struct {
	name, thought string
	args          json.RawMessage
	// bare is input that is not JSON (a program, an expression), when
	// args is nil: bareArgs makes it the tool's argument.
	bare string
}

// parseTextAction reads "Action: NAME" and "Action Input: {...}" from a
// reply in the text protocol. The input may be fenced; input that is not
// JSON (a Python program, an expression) is left in bare, for bareArgs;
// input that starts like a JSON object but does not parse is kept as a
// JSON string.
func parseTextAction(reply string) (textAction, bool) {
	if loc := observation.FindStringIndex(reply); loc != nil {
		reply = reply[:loc[0]]
	}
	m := actionLine.FindStringSubmatchIndex(reply)
	if m == nil {
		return textAction{}, false
	}
	name := strings.Trim(reply[m[2]:m[3]], "`\"' ")
	if strings.HasPrefix(strings.ToLower(name), "input") || name == "" {
		return textAction{}, false
	}
	a := textAction{name: name, thought: strings.TrimSpace(reply[:m[0]])}
	rest := reply[m[1]:]
	in := actionInput.FindStringSubmatch(rest)
	raw := ""
	if in != nil {
		raw = strings.TrimSpace(in[1])
	}
	if f := fenced.FindStringSubmatch(raw); f != nil {
		raw = strings.TrimSpace(f[1])
	}
	switch {
	case raw == "":
		a.args = json.RawMessage("{}")
	case strings.HasPrefix(raw, "{"):
		dec := json.NewDecoder(strings.NewReader(raw))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			a.args, _ = json.Marshal(raw) // not JSON: act says so
		} else {
			a.args = v
		}
	default:
		a.bare = raw
	}
	return a, true
}

// bareArgs makes text-protocol input that is not JSON the argument of the
// tool it calls: its one required string argument (python's code, calc's
// expression, retrieve's query), else a "code" argument, else its only
// string argument. For a tool with none of these, or one the task does
// not offer, the input goes as {"code": ...} and the tool (or the
// engine's refusal) says what is wrong.
func bareArgs(env *core.Env, name, raw string) json.RawMessage {
	key := "code"
	for _, s := range env.Tools() {
		if s.Name != name {
			continue
		}
		var sch struct {
			Properties map[string]struct {
				Type any `json:"type"`
			} `json:"properties"`
			Required []string `json:"required"`
		}
		_ = json.Unmarshal(s.Schema, &sch)
		isString := func(k string) bool { p, ok := sch.Properties[k]; return ok && p.Type == "string" }
		var strs []string
		for k := range sch.Properties {
			if isString(k) {
				strs = append(strs, k)
			}
		}
		switch {
		case len(sch.Required) == 1 && isString(sch.Required[0]):
			key = sch.Required[0]
		case isString("code"):
		case len(strs) == 1:
			key = strs[0]
		}
	}
	b, _ := json.Marshal(map[string]string{key: raw})
	return b
}

// wireNames maps tool names to names the OpenAI API accepts
// (^[a-zA-Z0-9_-]{1,64}$): "server.tool" becomes "server__tool".
type wireNames struct{ toWire, toReal map[string]string }

var badWire = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

func newWireNames(specs []core.ToolSpec) wireNames {
	w := wireNames{toWire: map[string]string{}, toReal: map[string]string{}}
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		base := strings.ReplaceAll(n, ".", "__")
		base = badWire.ReplaceAllString(base, "_")
		if len(base) > 60 {
			base = base[:60]
		}
		cand := base
		for i := 2; ; i++ {
			if _, taken := w.toReal[cand]; !taken {
				break
			}
			cand = fmt.Sprintf("%s_%d", base, i)
		}
		w.toWire[n], w.toReal[cand] = cand, n
	}
	return w
}

func (w wireNames) wire(real string) string {
	if n, ok := w.toWire[real]; ok {
		return n
	}
	return real
}

func (w wireNames) real(wire string) string {
	if n, ok := w.toReal[wire]; ok {
		return n
	}
	return wire
}

func (w wireNames) wireSpecs(specs []core.ToolSpec) []core.ToolSpec {
	out := make([]core.ToolSpec, len(specs))
	for i, s := range specs {
		s.Name = w.wire(s.Name)
		out[i] = s
	}
	return out
}

// --- the react strategy ---

type react struct {
	maxSteps int
	temp     float64
	mode     string
	session  bool
	tools    []string
}

func reactSpec() core.StrategySpec {
	return core.StrategySpec{
		Name: "react",
		Summary: "ReAct: think, call a tool, observe, repeat until a final answer (Yao et al., 2023); tools are offered " +
			"through OpenAI tool calling with a text protocol as fallback (needs --tools)",
		Params: []core.ParamSpec{
			{Name: "max_steps", Type: core.ParamInt, Default: int64(8), Description: "most think-act-observe steps before the answer is demanded", Min: core.Bound(1), Max: core.Bound(64)},
			{Name: "temperature", Type: core.ParamFloat, Default: 0.0, Description: "sampling temperature of the policy", Min: core.Bound(0), Max: core.Bound(2)},
			{Name: "mode", Type: core.ParamString, Default: ModeAuto, Enum: []string{ModeAuto, ModeNative, ModeText},
				Description: "tool calling: auto (native, falling back to the text protocol), native, or text"},
			{Name: "session", Type: core.ParamBool, Default: true, Description: "keep one python session for the run, so variables persist between calls; it ends with the run (false: every call stands alone)"},
			{Name: "tools", Type: core.ParamJSON, Default: "", Description: "tools to offer, of those the task allows: comma-separated names or a JSON list (default: all the task allows)"},
		},
		New: func(p core.Params) (core.Strategy, error) {
			r := react{maxSteps: p.Int("max_steps"), temp: p.Float("temperature"), mode: p.String("mode"), session: p.Bool("session")}
			list := p.String("tools")
			if strings.HasPrefix(strings.TrimSpace(list), "[") {
				// A JSON list, as an MCP or API client writes one.
				var names []string
				if err := json.Unmarshal([]byte(list), &names); err != nil {
					return nil, fmt.Errorf("%w \"tools\": want comma-separated names or a JSON list of names, got %s", core.ErrInvalidParam, list)
				}
				list = strings.Join(names, ",")
			}
			for _, t := range strings.Split(list, ",") {
				if t = strings.TrimSpace(t); t != "" {
					r.tools = append(r.tools, t)
				}
			}
			return r, nil
		},
	}
}

// noToolsAdvice says how to give a task tools wherever it came from: the
// command line, MCP's solve or the OpenAI endpoint (a client there cannot
// pass a flag).
const noToolsAdvice = `react needs tools: pass --tools python,calc (ponder solve, ponder eval), or "tools": ["python", "calc"] ` +
	"in MCP's solve or the OpenAI endpoint's ponder object (`ponder tools list` and MCP's tools/list show what there is)"

// Check refuses, before the run, a task that allows no tools and a tools
// parameter naming one the task does not allow: both failed the run (exit
// 1, a trace) after the task was accepted.
func (r react) Check(p core.Preflight) error {
	if len(p.Task.Tools) == 0 {
		return errors.New(noToolsAdvice)
	}
	var missing []string
	for _, n := range r.tools {
		if !slices.Contains(p.Task.Tools, n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w \"tools\": names %s, which the task does not allow (it allows %s): add them to the task's tools (--tools) or leave them out of the parameter",
			core.ErrInvalidParam, strings.Join(missing, ", "), strings.Join(p.Task.Tools, ", "))
	}
	return nil
}

func (r react) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	all := offered(env, nil)
	if len(all) == 0 {
		return core.Outcome{}, errors.New(noToolsAdvice)
	}
	// The tools parameter picks among the task's tools: a name that is not
	// one of them (a typo, a tool left out of --tools) would be dropped
	// without a word, or leave none and blame --tools.
	var missing []string
	for _, n := range r.tools {
		if len(offered(env, []string{n})) == 0 {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		var names []string
		for _, s := range all {
			names = append(names, s.Name)
		}
		return core.Outcome{}, fmt.Errorf("react: parameter tools names %s, which the task does not allow (it allows %s): add them to the task's tools (--tools) or leave them out of the parameter",
			strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	temp := r.temp
	o := ReActOptions{Mode: r.mode, Temperature: &temp, Tools: r.tools}
	if r.session {
		var b [8]byte
		_, _ = rand.Read(b[:])
		o.Session = "react-" + hex.EncodeToString(b[:])
		// The run started the session (its first python call did), so
		// the run stops it, however it ends: otherwise its process would
		// idle on after the run, taking one of the sandbox's few session
		// places from runs still going.
		defer env.CloseToolSession(o.Session)
	}
	leaf := core.NodeID(0)
	for step := 0; step <= r.maxSteps; step++ {
		o.Final = step == r.maxSteps
		ids, err := ReActStep(ctx, env, leaf, 1, o)
		if len(ids) > 0 {
			leaf = ids[len(ids)-1]
		}
		var spent toolsSpentError
		if errors.As(err, &spent) && !o.Final {
			// No tool calls left: ask for the answer without tools, as
			// when the steps run out. The budget still stopped the search.
			o.Final = true
			ids, ferr := ReActStep(ctx, env, leaf, 1, o)
			if len(ids) > 0 {
				leaf = ids[len(ids)-1]
			}
			if n, ok := env.Structure.Node(leaf); ferr == nil && ok && n.Terminal {
				return core.Outcome{Answer: n.Answer, Best: leaf}, err
			}
			if ferr != nil {
				err = ferr
			}
		}
		if err != nil {
			return core.Outcome{Best: leaf}, err
		}
		env.Tracer.Record(core.OpInfo, []core.NodeID{leaf}, map[string]any{"react_step": step + 1})
		if n, ok := env.Structure.Node(leaf); ok && n.Terminal {
			return core.Outcome{Answer: n.Answer, Best: leaf}, nil
		}
	}
	return core.Outcome{Best: leaf}, fmt.Errorf("react: no final answer after %d steps", r.maxSteps)
}
