package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/tasks"
)

func init() {
	builtins = append(builtins, palSpec)
}

// pal is program-aided solving (Gao et al., 2023): the policy writes a
// Python program, the sandbox runs it, and what it prints is the answer.
// With k > 1 it samples k programs and returns the majority answer.
type pal struct {
	k, per, repair int
	temp           float64
	tool           string
	timeout        float64 // seconds; 0: the tool's own
}

func palSpec() core.StrategySpec {
	return core.StrategySpec{
		Name: "pal",
		Summary: "program-aided: the policy writes a Python program, the sandbox runs it and its printed output is the answer; " +
			"k programs vote (needs the python tool)",
		Params: []core.ParamSpec{
			{Name: "k", Type: core.ParamInt, Default: int64(1), Description: "programs to sample; the majority answer wins", Min: core.Bound(1), Max: core.Bound(64)},
			{Name: "temperature", Type: core.ParamFloat, Default: 0.0, Description: "sampling temperature (raise it with k > 1)", Min: core.Bound(0), Max: core.Bound(2)},
			{Name: "repair", Type: core.ParamInt, Default: int64(1), Description: "times a failed program is shown to the policy with its error to fix it", Min: core.Bound(0), Max: core.Bound(5)},
			{Name: "tool", Type: core.ParamString, Default: "python", Description: "the code-execution tool that runs the programs"},
			{Name: "timeout", Type: core.ParamDuration, Default: "0s", Description: "wall-clock limit of one program (0: the sandbox's own)"},
			perRequestParam,
		},
		New: func(p core.Params) (core.Strategy, error) {
			s := pal{k: p.Int("k"), per: p.Int("per_request"), repair: p.Int("repair"), temp: p.Float("temperature"),
				tool: p.String("tool"), timeout: p.Duration("timeout").Seconds()}
			if s.k > 1 && s.temp == 0 {
				return nil, fmt.Errorf("k=%d programs at temperature 0 are the same program: set temperature (e.g. 0.7) or k=1", s.k)
			}
			return s, nil
		},
	}
}

// allowTool lets the run call a tool its strategy needs (pal's python):
// choosing the strategy is choosing the tool. The engine's toolbox must
// have it.
func allowTool(env *core.Env, name string) error {
	allowed := env.Task.Tools
	if !slices.Contains(allowed, name) {
		env.Task.Tools = append(append([]string(nil), allowed...), name)
	}
	for _, s := range env.Tools() {
		if s.Name != name {
			continue
		}
		// A tool that could not be set up (the sandbox without bubblewrap
		// or python) is listed with the reason: say it now, before k
		// programs are sampled for nothing.
		if reason, ok := strings.CutPrefix(s.Description, unavailablePrefix); ok {
			env.Task.Tools = allowed
			return fmt.Errorf("the %s tool is unavailable: %s", name, reason)
		}
		return nil // Check refused a tool without a "code" argument
	}
	env.Task.Tools = allowed
	return fmt.Errorf("the %s tool is not available (%s)", name, toolsHint)
}

// toolsHint says where a missing tool may have gone.
const toolsHint = "see `ponder tools list`; the python tool needs bubblewrap and python3, and a tool named in tools.disabled is not offered"

// unavailablePrefix starts the description of a tool that is listed but
// could not be set up (cmd/ponder, tools/mcpclient): its calls fail with
// the reason that follows.
const unavailablePrefix = "UNAVAILABLE: "

// Check refuses a tool that no program can run on (an unknown name, one
// without a "code" argument) before the run, as a bad parameter: it failed
// the run instead (exit 1, a trace), after the task was accepted. A tool
// that exists but could not be set up is the machine's matter: Run says so.
func (s pal) Check(p core.Preflight) error {
	spec, ok := p.Tool(s.tool)
	if !ok {
		return fmt.Errorf("%w \"tool\": the %s tool is not available (%s)", core.ErrInvalidParam, s.tool, toolsHint)
	}
	if !takesCode(spec) {
		return fmt.Errorf("%w \"tool\": the %s tool takes no \"code\" argument, so it cannot run programs: set tool to a code-execution tool such as python", core.ErrInvalidParam, s.tool)
	}
	return nil
}

// takesCode reports whether a tool's schema has the "code" argument pal
// sends its programs in (a schema that lists no properties may).
func takesCode(s core.ToolSpec) bool {
	var sch struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if json.Unmarshal(s.Schema, &sch) != nil || sch.Properties == nil {
		return true
	}
	_, ok := sch.Properties["code"]
	return ok
}

func (s pal) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	if err := allowTool(env, s.tool); err != nil {
		return core.Outcome{}, fmt.Errorf("pal: %w", err)
	}
	// Sample the programs, per_request at a time.
	type batch struct{ first, n int }
	var batches []batch
	for i := 0; i < s.k; i += s.per {
		batches = append(batches, batch{i, min(s.per, s.k-i)})
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	// Under a tool-call budget that cannot run every program, the programs
	// are sampled and run one after another in sample order: which of them
	// got the calls depended on timing, and so did the answer.
	left := env.Budget.RemainingToolCalls()
	ordered := left >= 0 && left < int64(s.k)
	async := func(wg *sync.WaitGroup, fn func()) {
		wg.Add(1)
		if ordered {
			defer wg.Done()
			fn()
			return
		}
		go func() {
			defer wg.Done()
			fn()
		}()
	}
	for _, b := range batches {
		async(&wg, func() {
			temp, seed := s.temp, env.Seed(int64(b.first))
			c, err := env.Complete(ctx, core.CompletionRequest{Messages: tasks.PALPrompt(env.Task.Problem), N: b.n,
				Temperature: &temp, Seed: &seed, Purpose: "program"})
			if err != nil {
				fail(err)
				return
			}
			var inner sync.WaitGroup
			for j, ch := range c.Choices {
				async(&inner, func() {
					usage := core.Usage{LLMCalls: 1, PromptTokens: c.PromptTokens / int64(len(c.Choices)),
						CompletionTokens: c.CompletionTokens / int64(len(c.Choices))}
					if err := s.sample(ctx, env, b.first+j, ch.Text, usage); err != nil {
						fail(err)
					}
				})
			}
			inner.Wait()
		})
	}
	wg.Wait()

	var answers []core.Node
	for _, n := range env.Structure.Nodes() {
		if n.Kind == core.KindToolResult && n.Answer != "" {
			answers = append(answers, n)
		}
	}
	err := firstErr(errs)
	err = tolerate(err, len(answers))
	votes := tally(env.Pack, answers)
	env.Tracer.Record(core.OpInfo, nil, map[string]any{"votes": voteData(votes)})
	if len(votes) == 0 {
		if err == nil {
			err = errors.New("pal: no program printed an answer")
		}
		// Point at the last thing that happened, so the path shows why.
		var last core.NodeID
		for _, n := range env.Structure.Nodes() {
			if n.Kind == core.KindToolResult || n.Kind == core.KindStep {
				last = n.ID
			}
		}
		return core.Outcome{Best: last}, err
	}
	w := votes[0]
	share := float64(w.count) / float64(s.k)
	return core.Outcome{Answer: w.answer, Best: w.node, Score: &share}, err
}

// sample runs one program (and its repairs) below the root: a tool-call
// node holding the program, a tool-result node holding the output, whose
// Answer is the last line the program printed when it ran cleanly.
func (s pal) sample(ctx context.Context, env *core.Env, idx int, reply string, usage core.Usage) error {
	parent := core.NodeID(0)
	for attempt := 0; ; attempt++ {
		program, ok := tasks.ExtractProgram(reply)
		meta := map[string]any{"sample": idx, "tool": s.tool, "attempt": attempt}
		if !ok {
			_, err := env.AddNode([]core.NodeID{parent}, core.Node{Kind: core.KindStep, Content: reply, Usage: usage,
				Meta: map[string]any{"sample": idx, "attempt": attempt, "error": "no python code block"}})
			return err
		}
		args := map[string]any{"code": program}
		if s.timeout > 0 {
			args["timeout"] = s.timeout
		}
		raw, _ := json.Marshal(args)
		call, err := env.AddNode([]core.NodeID{parent}, core.Node{Kind: core.KindToolCall, Content: program, Usage: usage,
			Meta: merge(meta, map[string]any{"arguments": json.RawMessage(raw)})})
		if err != nil {
			return err
		}
		res, err := env.CallTool(ctx, core.ToolCall{Name: s.tool, Arguments: raw})
		if err != nil {
			return err
		}
		node := core.Node{Kind: core.KindToolResult, Content: res.Text, Meta: merge(meta, map[string]any{"is_error": res.IsError})}
		if !res.IsError {
			if a, ok := tasks.PALAnswer(stdoutOf(res)); ok {
				if norm, ok := env.Pack.ExtractAnswer(`\boxed{` + a + `}`); ok {
					a = norm
				}
				node.Answer, node.Terminal = a, true
			}
		}
		result, err := env.AddNode([]core.NodeID{call}, node)
		if err != nil {
			return err
		}
		env.Tracer.Record(core.OpInfo, []core.NodeID{call, result}, map[string]any{"program_answer": node.Answer, "is_error": res.IsError})
		if node.Answer != "" || attempt >= s.repair {
			return nil
		}
		// Show the policy its program and the error, and run the fix.
		temp, seed := s.temp, env.Seed(int64(idx), int64(attempt+1))
		// The end of the output: a traceback ends it, and the whole of a
		// program's output (up to the tool's 64 KiB) could pass a small
		// model's context.
		out := text.Tail(res.Text, repairOutputBytes)
		c, err := env.Complete(ctx, core.CompletionRequest{Messages: tasks.PALRepairPrompt(env.Task.Problem, program, out),
			N: 1, Temperature: &temp, Seed: &seed, Purpose: "repair"})
		if err != nil {
			return err
		}
		if len(c.Choices) == 0 {
			return fmt.Errorf("pal repair: %w: no choices", core.ErrLLMBadResponse)
		}
		reply, parent = c.Choices[0].Text, result
		usage = core.Usage{LLMCalls: 1, PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens}
	}
}

// repairOutputBytes bounds the output of a failed program shown in a
// repair prompt (about 1,000 tokens).
const repairOutputBytes = 4096

// stdoutOf is a code tool's standard output: the "stdout" field of its
// structured result (the python tool's, also after a JSON round trip
// through a plugin), else its text.
func stdoutOf(res core.ToolResult) string {
	if res.Structured != nil {
		if b, err := json.Marshal(res.Structured); err == nil {
			var v struct {
				Stdout *string `json:"stdout"`
			}
			if json.Unmarshal(b, &v) == nil && v.Stdout != nil {
				return *v.Stdout
			}
		}
	}
	return res.Text
}

func merge(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
