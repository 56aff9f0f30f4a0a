package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"sync"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/tasks"
)

// Helpers shared by the step-level searches (beam, mcts, tot-bfs, tot-dfs,
// got, refine).

// evaluatorParamSpec documents an evaluator-valued parameter.
//
// Its type is JSON: over MCP and the OpenAI API the value is a name or an
// object ({"name": ..., "params": {...}}) as the docs show, which a string
// parameter refused ("want a string, got map[string]interface {}"); a
// name stays a name.
func evaluatorParamSpec(name, def, what string) core.ParamSpec {
	return core.ParamSpec{Name: name, Type: core.ParamJSON, Default: def,
		Description: what + `: a registered evaluator (see ` + "`ponder strategies --evaluators`" +
			`), or {"name": ..., "params": {...}}`}
}

var verifierParam = core.ParamSpec{Name: "verifier", Type: core.ParamJSON, Default: "verifier",
	Description: `checks final answers before the evaluator is asked: "verifier" (the pack's: Game of 24 needs no truth, ` +
		`GSM8K and MATH need the task's truth), "exact", "game24", "unittest", any evaluator, or "none"`}

// evalRef is an evaluator named in a parameter.
type evalRef struct {
	param  string
	name   string
	params core.Params
}

// parseEvalRef reads "name" or {"name": ..., "params": {...}}; "" and
// "none" mean no evaluator. It checks the form only: names are looked up
// when the search starts, before its first LLM call.
func parseEvalRef(param, spec string) (evalRef, error) {
	spec = strings.TrimSpace(spec)
	r := evalRef{param: param}
	if spec == "" || spec == "none" {
		return r, nil
	}
	if strings.HasPrefix(spec, "{") {
		var v struct {
			Name   string      `json:"name"`
			Params core.Params `json:"params"`
		}
		dec := json.NewDecoder(strings.NewReader(spec))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil || strings.TrimSpace(v.Name) == "" {
			return r, fmt.Errorf("%w %q: want an evaluator name or {\"name\": ..., \"params\": {...}}, got %s", core.ErrInvalidParam, param, spec)
		}
		r.name, r.params = strings.TrimSpace(v.Name), v.Params
		return r, nil
	}
	if strings.ContainsAny(spec, " \t\n{}[]") {
		return r, fmt.Errorf("%w %q: %q is not an evaluator name", core.ErrInvalidParam, param, spec)
	}
	r.name = spec
	return r, nil
}

// registered is what knows the registered evaluators: the run's env, or
// the engine's preflight before the run (core.Checker).
type registered interface {
	Evaluator(name string, p core.Params) (core.Evaluator, error)
}

// build returns the evaluator (nil for none), or an error naming the
// parameter.
func (r evalRef) build(reg registered) (core.Evaluator, error) {
	if r.name == "" {
		return nil, nil
	}
	ev, err := reg.Evaluator(r.name, r.params)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", core.ErrInvalidParam, r.param, err)
	}
	return ev, nil
}

// checkRefs builds each evaluator as the run will, so that an unknown name
// or bad evaluator parameters make the task invalid before it runs.
func checkRefs(reg registered, refs ...evalRef) error {
	for _, r := range refs {
		if _, err := r.build(reg); err != nil {
			return err
		}
	}
	return nil
}

// scorers are a search's evaluators: ev scores partial paths, final scores
// paths that end in an answer (the verifier first when there is one, then
// ev).
type scorers struct {
	ev, final core.Evaluator
}

func buildScorers(env *core.Env, ev, verifier evalRef) (scorers, error) {
	e, err := ev.build(env)
	if err != nil {
		return scorers{}, err
	}
	v, err := verifier.build(env)
	if err != nil {
		return scorers{}, err
	}
	s := scorers{ev: e, final: e}
	switch {
	case v != nil && e != nil:
		s.final = evaluator.First{v, e}
	case v != nil:
		s.final = v
	}
	return s, nil
}

// score evaluates node id (final when terminal). ok is false when the node
// was left unscored (no evaluator, an evaluator error or garbage); err is
// only the budget or the context.
func (s scorers) score(ctx context.Context, env *core.Env, id core.NodeID, terminal bool) (core.Evaluation, bool, error) {
	ev := s.ev
	if terminal {
		ev = s.final
	}
	if ev == nil {
		return core.Evaluation{}, false, nil
	}
	e, err := core.Evaluate(ctx, env, ev, id)
	if err != nil {
		if errors.Is(err, core.ErrUnscored) {
			return core.Evaluation{}, false, nil
		}
		return core.Evaluation{}, false, err
	}
	return e, true, nil
}

// scoreAll evaluates ids concurrently; see score.
func (s scorers) scoreAll(ctx context.Context, env *core.Env, ids []core.NodeID, terminal []bool) ([]core.Evaluation, []bool, error) {
	evs := make([]core.Evaluation, len(ids))
	oks := make([]bool, len(ids))
	errs := make([]error, len(ids))
	env.ForEach(len(ids), 1, func(i int) {
		evs[i], oks[i], errs[i] = s.score(ctx, env, ids[i], terminal[i])
	})
	return evs, oks, firstErr(errs)
}

// isStop reports errors that end a search: the budget and the context.
func isStop(err error) bool {
	return errors.Is(err, core.ErrBudgetExhausted) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// setMeta sets one Meta key of a node.
func setMeta(env *core.Env, id core.NodeID, key string, v any) {
	_ = env.Structure.Update(id, func(n *core.Node) {
		if n.Meta == nil {
			n.Meta = map[string]any{}
		}
		n.Meta[key] = v
	})
}

// correctOf reads a verifier's verdict stored in a node.
func correctOf(n core.Node) (bool, bool) {
	if v, ok := n.Scores[core.ScoreVerifier]; ok {
		return v > 0, true
	}
	return false, false
}

// rank orders answer nodes for a final pick: verified right first, then by
// score (unscored last), then by the order given.
func bestAnswer(nodes []core.Node) (core.Node, bool) {
	best, found := core.Node{}, false
	bestKey := [2]float64{}
	for _, n := range nodes {
		if n.Answer == "" {
			continue
		}
		c := 0.0
		if ok, known := correctOf(n); known {
			c = -1
			if ok {
				c = 1
			}
		}
		s, ok := n.Score()
		if !ok {
			s = math.Inf(-1)
		}
		key := [2]float64{c, s}
		if !found || key[0] > bestKey[0] || (key[0] == bestKey[0] && key[1] > bestKey[1]) {
			best, bestKey, found = n, key, true
		}
	}
	return best, found
}

// outcome makes the Outcome of an answer node.
func outcome(n core.Node) core.Outcome {
	out := core.Outcome{Answer: n.Answer, Best: n.ID}
	if s, ok := n.Score(); ok {
		out.Score = &s
	}
	return out
}

// stepsHash identifies a state by its steps, for seeds that do not depend
// on the order in which concurrent work created nodes.
func stepsHash(steps []string) int64 {
	h := fnv.New64a()
	for _, s := range steps {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return int64(h.Sum64() >> 1)
}

// proposeSteps asks the pack's propose prompt (one request, calls samples)
// for the next steps after the path to parent and adds the distinct
// proposals as its children, at most limit of them (0: all), in the order
// proposed.
//
// With check (and a pack that checks steps, tasks.StepChecker), proposals
// are screened before the limit applies, and before any node is made: an
// illegal step is dropped, a step that reaches the state of another
// proposal or of one of the parent's children is a repeat and dropped, and
// a step whose moves leave no choice becomes an answer node holding the
// answer they determine (Meta "answer_from_steps"). Each child's Meta
// "state" holds its state's key. The generate event counts what was
// dropped.
func proposeSteps(ctx context.Context, env *core.Env, pr tasks.Proposer, parent core.NodeID, steps []string,
	calls, limit int, seed int64, temp float64, check bool) ([]core.NodeID, error) {
	c, err := env.Complete(ctx, core.CompletionRequest{Messages: pr.ProposePrompt(env.Task.Problem, steps), N: max(calls, 1),
		Temperature: tempPtr(temp), Seed: &seed, Purpose: "propose"})
	if err != nil {
		return nil, fmt.Errorf("propose from node %d: %w", parent, err)
	}
	var chk tasks.StepChecker
	seen := map[string]bool{}
	if check {
		if sc, ok := env.Pack.(tasks.StepChecker); ok {
			if _, err := sc.CheckSteps(env.Task.Problem, steps); !errors.Is(err, tasks.ErrNotCheckable) {
				chk = sc
				env.Structure.EachChild(parent, func(ch core.Node) {
					if !ch.Pruned {
						seen[dedupeKey(ch)] = true
					}
				})
			}
		}
	}
	type prop struct {
		text  string
		state *tasks.StepState
	}
	var props []prop
	illegal, repeats := 0, 0
	for _, ch := range c.Choices {
		for _, p := range pr.ParseProposals(ch.Text) {
			if limit > 0 && len(props) >= limit {
				break
			}
			key := text.OneLine(p)
			var st *tasks.StepState
			if chk != nil {
				s, err := chk.CheckSteps(env.Task.Problem, append(steps[:len(steps):len(steps)], p))
				if err != nil {
					illegal++
					continue
				}
				st, key = &s, "state "+s.Key
			}
			if seen[key] {
				repeats++
				continue
			}
			seen[key] = true
			props = append(props, prop{p, st})
		}
	}
	per := int64(max(1, len(props)))
	var ids []core.NodeID
	for _, p := range props {
		n := core.Node{Kind: core.KindStep, Content: p.text, LLMCall: c.TraceSeq,
			Usage: core.Usage{LLMCalls: 1, PromptTokens: c.PromptTokens / per, CompletionTokens: c.CompletionTokens / per}}
		if a, ok := env.Pack.ExtractAnswer(p.text); ok {
			n.Kind, n.Answer, n.Terminal = core.KindAnswer, a, true
		}
		if p.state != nil {
			n.Meta = map[string]any{"state": p.state.Key}
			if p.state.Done && !n.Terminal && p.state.Answer != "" {
				n.Kind, n.Answer, n.Terminal = core.KindAnswer, p.state.Answer, true
				n.Meta["answer_from_steps"] = true
			}
		}
		id, err := env.AddNode([]core.NodeID{parent}, n)
		if err != nil {
			return ids, fmt.Errorf("propose from node %d: %w", parent, err)
		}
		ids = append(ids, id)
	}
	data := map[string]any{"proposals": len(ids)}
	if illegal > 0 {
		data["illegal"] = illegal
	}
	if repeats > 0 {
		data["repeats"] = repeats
	}
	env.Tracer.Record(core.OpGenerate, append([]core.NodeID{parent}, ids...), data)
	return ids, nil
}

// checkStepsParam documents the check_steps option of tot and mcts.
var checkStepsParam = core.ParamSpec{Name: "check_steps", Type: core.ParamBool, Default: true,
	Description: "when the pack checks steps by program (Game of 24: exact arithmetic on the numbers left), drop illegal steps, " +
		"treat steps that reach the same state as repeats, value each state once, and finish paths whose steps determine the " +
		"answer (the verifier checks it), all without LLM calls"}

// screen replays the path of each new child with the pack's step checker
// (tasks.StepChecker): a child with an illegal step is pruned (Meta
// "illegal"); the others get their state's key (Meta "state", which dedupe
// compares), and a child whose steps leave no choice becomes an answer node
// with the answer they determine (Meta "answer_from_steps"), for the
// verifier to check. It returns the children kept; without a checker (or
// for a problem it cannot check) it returns ids unchanged.
func screen(env *core.Env, ids []core.NodeID) []core.NodeID {
	chk, ok := env.Pack.(tasks.StepChecker)
	if !ok || len(ids) == 0 {
		return ids
	}
	var out, bad []core.NodeID
	for _, id := range ids {
		path := env.Structure.Path(id)
		steps := append(append([]string(nil), env.Task.Steps...), core.Steps(path)...)
		st, err := chk.CheckSteps(env.Task.Problem, steps)
		if errors.Is(err, tasks.ErrNotCheckable) {
			return ids
		}
		if err != nil {
			setMeta(env, id, "illegal", err.Error())
			bad = append(bad, id)
			continue
		}
		_ = env.Structure.Update(id, func(n *core.Node) {
			if n.Meta == nil {
				n.Meta = map[string]any{}
			}
			n.Meta["state"] = st.Key
			if st.Done && !n.Terminal && st.Answer != "" {
				n.Kind, n.Answer, n.Terminal = core.KindAnswer, st.Answer, true
				n.Meta["answer_from_steps"] = true
			}
		})
		out = append(out, id)
	}
	if len(bad) > 0 {
		core.Prune(env, bad...)
	}
	return out
}

// dedupeKey is what dedupe compares: the state's key when screen set one,
// else the step's text.
func dedupeKey(n core.Node) string {
	if k, ok := n.Meta["state"].(string); ok && k != "" {
		return "state " + k
	}
	return text.OneLine(n.Content)
}

// stateValues is an evaluator that values each state (tasks.StepState.Key)
// once: a path that reaches a state valued before gets that evaluation
// without a call. Paths the checker cannot key, and finished ones, go to
// the inner evaluator. Concurrent requests for one state wait for the
// first; a failed evaluation is not kept.
type stateValues struct {
	inner core.Evaluator
	chk   tasks.StepChecker

	mu sync.Mutex
	m  map[string]*stateValue
}

type stateValue struct {
	done chan struct{}
	from core.NodeID
	e    core.Evaluation
	err  error
}

// cacheByState wraps ev in a stateValues when the pack checks steps; else
// it returns ev.
func cacheByState(env *core.Env, ev core.Evaluator) core.Evaluator {
	chk, ok := env.Pack.(tasks.StepChecker)
	if !ok || ev == nil {
		return ev
	}
	return &stateValues{inner: ev, chk: chk, m: map[string]*stateValue{}}
}

// PathFree implements core.PathFree: when the evaluator it caches is.
func (c *stateValues) PathFree() bool { return core.IsPathFree(c.inner) }

// Evaluate implements core.Evaluator.
func (c *stateValues) Evaluate(ctx context.Context, req core.EvalRequest) (core.Evaluation, error) {
	st, err := c.chk.CheckSteps(req.Task.Problem, evaluator.PathSteps(req))
	last, hasLast := req.LastNode()
	if err != nil || st.Key == "" || st.Done || !hasLast {
		return c.inner.Evaluate(ctx, req)
	}
	for {
		c.mu.Lock()
		v, ok := c.m[st.Key]
		if !ok {
			v = &stateValue{done: make(chan struct{}), from: last.ID}
			c.m[st.Key] = v
			c.mu.Unlock()
			v.e, v.err = c.inner.Evaluate(ctx, req)
			if v.err != nil {
				c.mu.Lock()
				delete(c.m, st.Key)
				c.mu.Unlock()
			}
			close(v.done)
			return v.e, v.err
		}
		c.mu.Unlock()
		select {
		case <-v.done:
		case <-ctx.Done():
			return core.Evaluation{}, ctx.Err()
		}
		if v.err == nil {
			e := v.e
			e.Detail = fmt.Sprintf("same state (%s) as node %d: its value, no call", st.Key, v.from)
			return e, nil
		}
		// The first evaluation failed: try again with this path.
	}
}

// dedupe prunes children whose step repeats an earlier one in ids, or one
// of the parent's other children (the same step is the same subtree; after
// screen, the same state is), and returns the others.
func dedupe(env *core.Env, ids []core.NodeID) []core.NodeID {
	seen := map[string]core.NodeID{}
	if len(ids) > 0 {
		fresh := map[core.NodeID]bool{}
		for _, id := range ids {
			fresh[id] = true
		}
		if n, ok := env.Structure.Node(ids[0]); ok && len(n.Parents) == 1 {
			env.Structure.EachChild(n.Parents[0], func(c core.Node) {
				if !fresh[c.ID] && !c.Pruned {
					seen[dedupeKey(c)] = c.ID
				}
			})
		}
	}
	out := make([]core.NodeID, 0, len(ids))
	var dups []core.NodeID
	for _, id := range ids {
		key := dedupeKey(env.Structure.MustNode(id))
		if first, dup := seen[key]; dup {
			setMeta(env, id, "duplicate_of", int(first))
			dups = append(dups, id)
			continue
		}
		seen[key] = id
		out = append(out, id)
	}
	if len(dups) > 0 {
		core.Prune(env, dups...)
	}
	return out
}

// tempPtr returns a pointer to a copy of t.
func tempPtr(t float64) *float64 { return &t }
