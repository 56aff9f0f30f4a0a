package strategy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/tasks"
)

func init() {
	builtins = append(builtins, gotSpec)
	core.SetShape("got", core.Graph)
}

// Graph of Thoughts (Besta et al., 2024): the search is a graph of
// operations given as data. Each operation takes the thoughts (nodes) that
// the operations it names in "from" output, and outputs thoughts of its
// own; operations whose inputs are ready run concurrently.
//
//	operations:
//	  - {id: solve, op: generate, k: 4}            # 4 whole solutions
//	  - {id: rate, op: score, from: [solve]}       # evaluator (verifier first for answers)
//	  - {id: best, op: keep_best, keep: 3, from: [rate]}
//	  - {id: merge, op: aggregate, from: [best]}   # one solution merged from the 3
//	  - {id: improve, op: refine, from: [merge]}   # critique → revise
//	  - {id: final, op: score, from: [improve, best]}
//	  - {id: answer, op: keep_best, keep: 1, from: [final]}
//
// The answer is the best thought (verified, then by score) among the
// outputs of the operations no other operation takes from.

// Operations of a GoT graph.
const (
	OpGenerate  = "generate"   // k whole solutions (no inputs), or k next steps of each input thought
	OpAggregate = "aggregate"  // merge all inputs into one thought (k attempts)
	OpRefine    = "refine"     // critique → revise each input (rounds times); alias improve
	OpScore     = "score"      // rate each input; outputs them
	OpKeepBest  = "keep_best"  // the `keep` best-rated inputs; alias keep_best_n
	OpKeepValid = "keep_valid" // inputs with an answer the verifier accepts (or any answer, when it cannot tell)
)

var gotOps = map[string]string{
	OpGenerate: OpGenerate, OpAggregate: OpAggregate, OpRefine: OpRefine, "improve": OpRefine, OpScore: OpScore,
	OpKeepBest: OpKeepBest, "keep_best_n": OpKeepBest, "keepbestn": OpKeepBest, OpKeepValid: OpKeepValid, "keepvalid": OpKeepValid,
}

// GraphOp is one operation of a GoT graph.
type GraphOp struct {
	ID   string   `json:"id"`
	Op   string   `json:"op"`
	From []string `json:"from,omitempty"`
	// K: generate's samples per input (or whole solutions), aggregate's
	// attempts. Keep: keep_best's count (not "n", which YAML reads as
	// false). Rounds: refine's. Evaluator: score's (default: the
	// strategy's evaluator).
	K         int      `json:"k,omitempty"`
	Keep      int      `json:"keep,omitempty"`
	Rounds    int      `json:"rounds,omitempty"`
	Evaluator EvalSpec `json:"evaluator,omitempty"`
}

// EvalSpec names an evaluator as the evaluator parameters do: a name, or
// {"name": ..., "params": {...}} written as an object or as its JSON text.
type EvalSpec string

// UnmarshalJSON takes a string as it is and anything else as its JSON.
func (e *EvalSpec) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*e = EvalSpec(s)
		return nil
	}
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		return err
	}
	*e = EvalSpec(c.String())
	return nil
}

// Graph is a validated GoT graph in an order that runs every operation
// after those it takes from.
type Graph struct {
	Ops []GraphOp `json:"operations"`
}

// DefaultGraph is got's graph when none is given.
const DefaultGraph = `operations:
  - {id: solve, op: generate, k: 4}
  - {id: rate, op: score, from: [solve]}
  - {id: best, op: keep_best, keep: 3, from: [rate]}
  - {id: merge, op: aggregate, from: [best]}
  - {id: improve, op: refine, from: [merge]}
  - {id: final, op: score, from: [improve, best]}
  - {id: answer, op: keep_best, keep: 1, from: [final]}
`

// graphDecodeError says what encoding/json found wrong in a graph in the
// graph's words: it names Go types ("Go struct field GraphOp.operations.k
// of type int").
func graphDecodeError(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if msg == `unknown field "false"` || msg == `unknown field "true"` {
			msg += ` (YAML reads the keys n, no, off, y, yes and on as false or true: quote them; keep_best's count is "keep")`
		}
		return msg
	}
	want := "a value of another type"
	switch te.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "an integer"
	case reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.String:
		want = "a string"
	case reflect.Bool:
		want = "true or false"
	case reflect.Slice, reflect.Array:
		want = "a list"
	case reflect.Struct, reflect.Map:
		want = "an object"
	}
	got := te.Value
	switch {
	case got == "bool":
		got = "true or false"
	case got == "array":
		got = "a list"
	case got == "number":
		got = "a number"
	case strings.HasPrefix(got, "number "):
		got = strings.TrimPrefix(got, "number ")
	case got == "object":
		got = "an object"
	case got == "string":
		got = "a string"
	}
	field := te.Field
	if field == "" {
		field = "the graph"
	}
	return fmt.Sprintf("%s: want %s, got %s", field, want, got)
}

// ParseGraph reads a GoT graph from JSON or YAML (an object with
// "operations", or the list alone) and validates it: known operations,
// unique ids, known inputs, no cycles, parameters in range. Errors name
// the operation.
func ParseGraph(text string) (Graph, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return Graph{}, fmt.Errorf("the graph is empty")
	}
	js, err := yaml.YAMLToJSON([]byte(text))
	if err != nil {
		return Graph{}, fmt.Errorf("not JSON or YAML: %v", err)
	}
	var g Graph
	if bytes.HasPrefix(bytes.TrimSpace(js), []byte("[")) {
		js = append(append([]byte(`{"operations":`), js...), '}')
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return Graph{}, fmt.Errorf("want {operations: [{id, op, from, k, keep, rounds, evaluator}, ...]}: %s", graphDecodeError(err))
	}
	if len(g.Ops) == 0 {
		return Graph{}, fmt.Errorf("the graph has no operations")
	}
	if len(g.Ops) > 1000 {
		return Graph{}, fmt.Errorf("the graph has %d operations; at most 1000", len(g.Ops))
	}
	index := map[string]int{}
	for i := range g.Ops {
		op := &g.Ops[i]
		name := func() string {
			if op.ID != "" {
				return fmt.Sprintf("operation %d (%s)", i+1, op.ID)
			}
			return fmt.Sprintf("operation %d", i+1)
		}
		canon, ok := gotOps[strings.ToLower(strings.TrimSpace(op.Op))]
		if !ok {
			return Graph{}, fmt.Errorf("%s: unknown operation %q (known: generate, aggregate, refine, score, keep_best, keep_valid)", name(), op.Op)
		}
		op.Op = canon
		if op.ID == "" {
			op.ID = fmt.Sprintf("#%d", i+1)
		}
		if _, dup := index[op.ID]; dup {
			return Graph{}, fmt.Errorf("%s: id %q is used twice", name(), op.ID)
		}
		index[op.ID] = i
		if op.Op != OpGenerate && len(op.From) == 0 {
			return Graph{}, fmt.Errorf("%s: %s needs inputs: name the operations it takes from in \"from\"", name(), op.Op)
		}
		switch {
		case op.K < 0 || op.K > 64:
			return Graph{}, fmt.Errorf("%s: k must be in 1..64 (0 or left out: 1), got %d", name(), op.K)
		case op.Keep < 0 || op.Keep > 1024:
			return Graph{}, fmt.Errorf("%s: keep must be in 1..1024 (0 or left out: 1), got %d", name(), op.Keep)
		case op.Rounds < 0 || op.Rounds > 20:
			return Graph{}, fmt.Errorf("%s: rounds must be in 1..20 (0 or left out: 1), got %d", name(), op.Rounds)
		case op.Evaluator != "" && op.Op != OpScore:
			return Graph{}, fmt.Errorf("%s: only score takes an evaluator", name())
		}
		if _, err := parseEvalRef("evaluator", string(op.Evaluator)); err != nil {
			return Graph{}, fmt.Errorf("%s: %v", name(), err)
		}
		op.K, op.Keep, op.Rounds = max(op.K, 1), max(op.Keep, 1), max(op.Rounds, 1)
	}
	for i, op := range g.Ops {
		seen := map[string]bool{}
		for _, f := range op.From {
			if _, ok := index[f]; !ok {
				return Graph{}, fmt.Errorf("operation %d (%s): takes from %q, which is no operation's id", i+1, op.ID, f)
			}
			if seen[f] {
				return Graph{}, fmt.Errorf("operation %d (%s): takes from %q twice", i+1, op.ID, f)
			}
			seen[f] = true
		}
	}
	// Kahn's algorithm: order the operations, or find a cycle.
	indeg := make([]int, len(g.Ops))
	users := make([][]int, len(g.Ops))
	for i, op := range g.Ops {
		for _, f := range op.From {
			indeg[i]++
			users[index[f]] = append(users[index[f]], i)
		}
	}
	var queue, order []int
	for i, d := range indeg {
		if d == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		order = append(order, i)
		for _, u := range users[i] {
			if indeg[u]--; indeg[u] == 0 {
				queue = append(queue, u)
			}
		}
	}
	if len(order) < len(g.Ops) {
		var cyc []string
		for i, d := range indeg {
			if d > 0 {
				cyc = append(cyc, g.Ops[i].ID)
			}
		}
		return Graph{}, fmt.Errorf("the operations %s form a cycle", strings.Join(cyc, ", "))
	}
	sorted := make([]GraphOp, len(order))
	for i, j := range order {
		sorted[i] = g.Ops[j]
	}
	return Graph{Ops: sorted}, nil
}

type got struct {
	graph        Graph
	temp         float64
	ev, verifier evalRef
}

func gotSpec() core.StrategySpec {
	return core.StrategySpec{
		Name: "got",
		Summary: "graph of thoughts: a graph of operations given as JSON or YAML data (generate, aggregate, refine, score, " +
			"keep_best, keep_valid); independent operations run concurrently",
		Params: []core.ParamSpec{
			{Name: "graph", Type: core.ParamJSON, Default: "", Description: "the graph of operations, JSON or YAML (@FILE on the command line); " +
				"empty: generate 4 → score → keep the best 3 → aggregate → refine → score → keep the best"},
			evaluatorParamSpec("evaluator", "judge", "rates thoughts in score operations"),
			verifierParam,
			{Name: "temperature", Type: core.ParamFloat, Default: 0.7, Description: "sampling temperature of generate", Min: core.Bound(0), Max: core.Bound(2)},
		},
		New: func(p core.Params) (core.Strategy, error) {
			text := p.String("graph")
			if strings.TrimSpace(text) == "" {
				text = DefaultGraph
			}
			g, err := ParseGraph(text)
			if err != nil {
				return nil, fmt.Errorf("%w \"graph\": %v", core.ErrInvalidParam, err)
			}
			s := got{graph: g, temp: p.Float("temperature")}
			if s.ev, err = parseEvalRef("evaluator", p.String("evaluator")); err != nil {
				return nil, err
			}
			if s.verifier, err = parseEvalRef("verifier", p.String("verifier")); err != nil {
				return nil, err
			}
			return s, nil
		},
	}
}

// gotRun executes a graph.
type gotRun struct {
	got
	env     *core.Env
	sc      scorers
	scoreBy map[string]scorers // per score operation with its own evaluator
}

// Check rejects unknown evaluators, the graph's own included, before the
// run.
func (g got) Check(p core.Preflight) error {
	if err := checkRefs(p, g.ev, g.verifier); err != nil {
		return err
	}
	for _, op := range g.graph.Ops {
		ref, _ := parseEvalRef("evaluator", string(op.Evaluator))
		if err := checkRefs(p, ref); err != nil {
			return fmt.Errorf("graph operation %s: %w", op.ID, err)
		}
	}
	return nil
}

func (g got) Run(ctx context.Context, env *core.Env) (core.Outcome, error) {
	sc, err := buildScorers(env, g.ev, g.verifier)
	if err != nil {
		return core.Outcome{}, err
	}
	r := &gotRun{got: g, env: env, sc: sc, scoreBy: map[string]scorers{}}
	for _, op := range g.graph.Ops {
		if op.Evaluator == "" {
			continue
		}
		ref, _ := parseEvalRef("evaluator", string(op.Evaluator))
		s, err := buildScorers(env, ref, g.verifier)
		if err != nil {
			return core.Outcome{}, fmt.Errorf("graph operation %s: %w", op.ID, err)
		}
		r.scoreBy[op.ID] = s
	}
	ops := g.graph.Ops
	outputs := make(map[string][]core.NodeID, len(ops))
	done := make(map[string]chan struct{}, len(ops))
	for _, op := range ops {
		done[op.ID] = make(chan struct{})
	}
	var (
		mu     sync.Mutex
		errs   []error
		wg     sync.WaitGroup
		failed = make(chan struct{})
		once   sync.Once
	)
	for _, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[op.ID])
			var in []core.NodeID
			for _, f := range op.From {
				select {
				case <-done[f]:
				case <-failed:
					return
				}
				mu.Lock()
				in = append(in, outputs[f]...)
				mu.Unlock()
			}
			select {
			case <-failed:
				return
			default:
			}
			out, err := r.run(ctx, op, dedupeIDs(in))
			env.Tracer.Record(core.OpInfo, out, map[string]any{"graph_op": op.ID, "op": op.Op, "in": len(in), "out": len(out)})
			mu.Lock()
			outputs[op.ID] = out
			if err != nil {
				errs = append(errs, fmt.Errorf("graph operation %s: %w", op.ID, err))
			}
			mu.Unlock()
			if err != nil && isStop(err) {
				once.Do(func() { close(failed) })
			}
		}()
	}
	wg.Wait()
	err = firstErr(errs)
	// The answer comes from the sinks' outputs, else from every thought.
	used := map[string]bool{}
	for _, op := range ops {
		for _, f := range op.From {
			used[f] = true
		}
	}
	var sinks []core.Node
	for _, op := range ops {
		if !used[op.ID] {
			for _, id := range outputs[op.ID] {
				sinks = append(sinks, env.Structure.MustNode(id))
			}
		}
	}
	if best, ok := bestAnswer(sinks); ok {
		return outcome(best), tolerate(err, 1)
	}
	if best, ok := bestAnswer(env.Structure.Nodes()); ok {
		return outcome(best), tolerate(err, 1)
	}
	return core.Outcome{}, err
}

func dedupeIDs(ids []core.NodeID) []core.NodeID {
	seen := map[core.NodeID]bool{}
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// run executes one operation on its inputs.
func (r *gotRun) run(ctx context.Context, op GraphOp, in []core.NodeID) ([]core.NodeID, error) {
	env := r.env
	switch op.Op {
	case OpGenerate:
		// A request is paid for whole: k samples that the calls left
		// cannot pay for would get none, so it asks for those that fit.
		generate := func(parent core.NodeID, seed int64, whole bool) ([]core.NodeID, error) {
			k, capped := fitSamples(env, op.K)
			if k == 0 {
				return nil, capped
			}
			ids, err := core.Generate(ctx, env, parent, k, core.GenerateOptions{Whole: whole, Temperature: tempPtr(r.temp), Seed: &seed, Purpose: "generate"})
			return ids, firstErr([]error{err, capped})
		}
		if len(op.From) == 0 {
			return generate(0, env.Seed(stepsHash([]string{op.ID})), true)
		}
		return r.each(in, int64(op.K), func(id core.NodeID) ([]core.NodeID, error) {
			n := env.Structure.MustNode(id)
			if n.Terminal {
				return []core.NodeID{id}, nil // a finished thought passes through
			}
			return generate(id, env.Seed(stepsHash([]string{op.ID, fmt.Sprint(id)})), false)
		})
	case OpAggregate:
		if len(in) == 0 {
			return nil, nil
		}
		if len(in) == 1 {
			return in, nil // nothing to merge
		}
		var cands []string
		for _, id := range in {
			cands = append(cands, thoughtText(env, id))
		}
		out := make([]core.NodeID, op.K)
		errs := make([]error, op.K)
		env.ForEach(op.K, 1, func(i int) {
			out[i], errs[i] = core.Aggregate(ctx, env, in, tasks.AggregatePrompt(env.Task.Problem, cands))
		})
		var ids []core.NodeID
		for i := range out {
			if errs[i] == nil {
				ids = append(ids, out[i])
			}
		}
		return ids, tolerate(firstErr(errs), len(ids))
	case OpRefine:
		return r.each(in, int64(2*op.Rounds), func(id core.NodeID) ([]core.NodeID, error) {
			cur := id
			for round := 0; round < op.Rounds; round++ {
				steps := tasks.SolutionSteps(thoughtText(env, cur))
				c, err := env.Complete(ctx, core.CompletionRequest{Messages: tasks.CritiquePrompt(env.Task.Problem, steps), N: 1,
					Temperature: tempPtr(0), Purpose: "critique"})
				if err != nil {
					return []core.NodeID{cur}, err
				}
				text := ""
				if len(c.Choices) > 0 {
					text = c.Choices[0].Text
				}
				setMeta(env, cur, "critique", text)
				if issues, ok := tasks.ParseCritique(text); !ok || len(issues) == 0 {
					break
				}
				next, err := core.Refine(ctx, env, cur, tasks.RevisePrompt(env.Task.Problem, steps, text))
				if err != nil {
					return []core.NodeID{cur}, err
				}
				cur = next
			}
			return []core.NodeID{cur}, nil
		})
	case OpScore:
		sc, ok := r.scoreBy[op.ID]
		if !ok {
			sc = r.sc
		}
		terminal := make([]bool, len(in))
		for i, id := range in {
			terminal[i] = env.Structure.MustNode(id).Answer != ""
		}
		_, _, err := sc.scoreAll(ctx, env, in, terminal)
		return in, err
	case OpKeepBest:
		nodes := make([]core.Node, len(in))
		for i, id := range in {
			nodes[i] = env.Structure.MustNode(id)
		}
		sort.SliceStable(nodes, func(i, j int) bool { return thoughtRank(nodes[i]) > thoughtRank(nodes[j]) })
		var out []core.NodeID
		for i := 0; i < len(nodes) && i < op.Keep; i++ {
			out = append(out, nodes[i].ID)
		}
		env.Tracer.Record(core.OpSelect, out, map[string]any{"of": len(in), "graph_op": op.ID})
		return out, nil
	case OpKeepValid:
		terminal := make([]bool, len(in))
		var answered []core.NodeID
		for _, id := range in {
			if env.Structure.MustNode(id).Answer != "" {
				answered = append(answered, id)
			}
		}
		v, _ := r.verifier.build(env)
		if v != nil && len(answered) > 0 {
			terminal = terminal[:len(answered)]
			for i := range terminal {
				terminal[i] = true
			}
			if _, _, err := (scorers{final: v}).scoreAll(ctx, env, answered, terminal); err != nil {
				return nil, err
			}
		}
		var out []core.NodeID
		for _, id := range answered {
			if ok, known := correctOf(env.Structure.MustNode(id)); ok || !known {
				out = append(out, id)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown operation %q", op.Op)
}

// each runs f on every input and gathers the outputs in input order:
// concurrently while the calls left can pay need calls for each input,
// else one after the other in input order (core.Env.ForEach), so which
// inputs the budget cuts off does not depend on timing (keep_best's
// order: the best inputs first).
func (r *gotRun) each(in []core.NodeID, need int64, f func(core.NodeID) ([]core.NodeID, error)) ([]core.NodeID, error) {
	outs := make([][]core.NodeID, len(in))
	errs := make([]error, len(in))
	r.env.ForEach(len(in), need, func(i int) {
		outs[i], errs[i] = f(in[i])
	})
	var out []core.NodeID
	for _, o := range outs {
		out = append(out, o...)
	}
	return out, tolerate(firstErr(errs), len(out))
}

// thoughtText is a thought as one text: from the nearest whole thought on
// its path (a whole solution below the root, a merge, a revision) to the
// thought itself, so a step-level thought carries the steps it continues.
func thoughtText(env *core.Env, id core.NodeID) string {
	path := env.Structure.Path(id)
	start := len(path) - 1
	for ; start > 1; start-- {
		n := path[start]
		if _, revised := n.Meta["refines"]; revised || n.Kind == core.KindAggregate {
			break
		}
	}
	var parts []string
	for _, n := range path[max(start, 1):] {
		parts = append(parts, strings.TrimSpace(n.Content))
	}
	return strings.Join(parts, "\n")
}

// thoughtRank orders thoughts for keep_best: verified right, then by score,
// unscored last.
func thoughtRank(n core.Node) float64 {
	if ok, known := correctOf(n); known {
		if ok {
			return 10
		}
		return -10
	}
	if s, ok := n.Score(); ok {
		return s
	}
	return math.Inf(-1)
}
