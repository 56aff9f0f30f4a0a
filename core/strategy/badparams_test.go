package strategy_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/core/strategy"
	"github.com/ponder-rlm/ponder/tasks"
)

// Cases of issue 4's "bad input" that TestInvalidParametersAreRejectedBeforeAnyLLMCall
// (search_test.go) and TestDecomposeRejectsBadParametersBeforeAnyLLMCall do
// not cover: depths, counts and ranges of every strategy, wrong types,
// unknown names, and more malformed GoT graphs.

func TestEveryStrategyRejectsBadParametersBeforeAnyLLMCall(t *testing.T) {
	t.Parallel()
	tests := []rejection{
		// beam
		{"beam", core.Params{"max_depth": 0}, []string{`"max_depth"`, "at least 1"}},
		{"beam", core.Params{"passes": 0}, []string{`"passes"`}},
		{"beam", core.Params{"overlap_passes": -1}, []string{`"overlap_passes"`}},
		{"beam", core.Params{"step_budget": -1}, []string{`"step_budget"`}},
		{"beam", core.Params{"expand": "magic"}, []string{`"expand"`, "want one of"}},
		{"beam", core.Params{"beam_width": "four"}, []string{`"beam_width"`, "integer"}},
		{"beam", core.Params{"beam_width": 2.5}, []string{`"beam_width"`, "integer"}},
		{"beam", core.Params{"check_steps": "maybe"}, []string{`"check_steps"`}},
		{"beam", core.Params{"beam_widht": 3}, []string{`unknown parameter "beam_widht"`, "beam_width"}},
		{"beam", core.Params{"verifier": "two words"}, []string{`"verifier"`}},
		// mcts
		{"mcts", core.Params{"iterations": 0}, []string{`"iterations"`}},
		{"mcts", core.Params{"children": -2}, []string{`"children"`}},
		{"mcts", core.Params{"max_depth": 0}, []string{`"max_depth"`}},
		{"mcts", core.Params{"rollouts": -1}, []string{`"rollouts"`}},
		{"mcts", core.Params{"alpha": 1.5, "rollouts": 1}, []string{`"alpha"`, "at most 1"}},
		{"mcts", core.Params{"alpha": -0.1}, []string{`"alpha"`, "at least 0"}},
		{"mcts", core.Params{"gamma": -0.1}, []string{`"gamma"`}},
		{"mcts", core.Params{"lr_td": -0.5}, []string{`"lr_td"`}},
		{"mcts", core.Params{"lr_td": 1.5}, []string{`"lr_td"`, "at most 1"}},
		{"mcts", core.Params{"c1": math.NaN()}, []string{`"c1"`, "finite"}},
		{"mcts", core.Params{"c1": "big"}, []string{`"c1"`}},
		{"mcts", core.Params{"value_min": 0, "value_max": 0}, []string{`"value_max"`}},
		{"mcts", core.Params{"c3": 1}, []string{`unknown parameter "c3"`}},
		// tot-bfs, tot-dfs
		{"tot-bfs", core.Params{"samples": -1}, []string{`"samples"`}},
		{"tot-bfs", core.Params{"max_depth": -3}, []string{`"max_depth"`}},
		{"tot-bfs", core.Params{"threshold": 1.5}, []string{`"threshold"`}},
		{"tot-bfs", core.Params{"generate": "magic"}, []string{`"generate"`}},
		{"tot-bfs", core.Params{"passes": 0}, []string{`"passes"`}},
		{"tot-bfs", core.Params{"retry_penalty": -1}, []string{`"retry_penalty"`}},
		{"tot-bfs", core.Params{"evaluator": "{nope"}, []string{`"evaluator"`}},
		{"tot-dfs", core.Params{"max_states": 0}, []string{`"max_states"`}},
		{"tot-dfs", core.Params{"max_depth": 0}, []string{`"max_depth"`}},
		{"tot-dfs", core.Params{"breadth": 3}, []string{`unknown parameter "breadth"`}},
		// got
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate", "from": ["a"]}]`}, []string{`"graph"`, "cycle"}},
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate"}, {"id": "a", "op": "score", "from": ["a"]}]`}, []string{`"graph"`, `"a" is used twice`}},
		{"got", core.Params{"graph": `[]`}, []string{`"graph"`, "no operations"}},
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate", "k": -1}]`}, []string{`"graph"`, "k must be"}},
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate", "k": 1000}]`}, []string{`"graph"`, "k must be"}},
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate"}, {"id": "b", "op": "keep_best", "from": ["a"], "keep": -1}]`}, []string{`"graph"`, "keep must be"}},
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate"}, {"id": "b", "op": "refine", "from": ["a"], "rounds": 99}]`}, []string{`"graph"`, "rounds must be"}},
		{"got", core.Params{"graph": `[{"id": "a", "op": "generate", "k": "four"}]`}, []string{`"graph"`}},
		{"got", core.Params{"graph": `42`}, []string{`"graph"`}},
		{"got", core.Params{"graph": "operations: {id: a}"}, []string{`"graph"`}},
		{"got", core.Params{"graph": `[{"op": ""}]`}, []string{`"graph"`, "unknown operation"}},
		{"got", core.Params{"graphs": "[]"}, []string{`unknown parameter "graphs"`}},
		{"got", core.Params{"evaluator": "{nope"}, []string{`"evaluator"`}},
		// refine
		{"refine", core.Params{"rounds": -1}, []string{`"rounds"`}},
		{"refine", core.Params{"threshold": 2}, []string{`"threshold"`}},
		{"refine", core.Params{"evaluator": "{nope"}, []string{`"evaluator"`}},
		// cot, self-consistency, best-of-n
		{"cot", core.Params{"temperature": 3}, []string{`"temperature"`, "at most 2"}},
		{"cot", core.Params{"k": 3}, []string{`unknown parameter "k"`}},
		{"self-consistency", core.Params{"per_request": 0}, []string{`"per_request"`}},
		{"self-consistency", core.Params{"k": "many"}, []string{`"k"`}},
		{"best-of-n", core.Params{"n": -1}, []string{`"n"`}},
		{"best-of-n", core.Params{"evaluator": "none"}, []string{`"evaluator"`}},
		{"best-of-n", core.Params{"evaluator": `{"name": "judge"`}, []string{`"evaluator"`}},
		// pal, react (rejected on their parameters before their tools are looked for)
		{"pal", core.Params{"k": 0}, []string{`"k"`}},
		{"pal", core.Params{"repair": -1}, []string{`"repair"`}},
		{"react", core.Params{"max_steps": 0}, []string{`"max_steps"`}},
		{"react", core.Params{"mode": "magic"}, []string{`"mode"`}},
	}
	checkRejections(t, tests)
}

// Evaluators and nested strategies named in parameters are built when the
// engine validates the task (core.Checker): an unknown name or bad
// parameters of what it names make the task invalid, naming the parameter,
// before the run starts.
func TestEveryStrategyRejectsUnknownEvaluatorsAndNestedStrategiesBeforeTheRun(t *testing.T) {
	t.Parallel()
	for _, p := range []struct {
		strategy string
		params   core.Params
		want     string
	}{
		{"beam", core.Params{"evaluator": "oracle"}, `"evaluator"`},
		{"beam", core.Params{"evaluator": `{"name": "value", "params": {"bogus": 1}}`}, `"bogus"`},
		{"mcts", core.Params{"verifier": "nosuch"}, `"verifier"`},
		{"mcts", core.Params{"evaluator": `{"name": "prm", "params": {"temperature": 9}}`}, `"temperature"`},
		{"tot-bfs", core.Params{"evaluator": "oracle"}, `"evaluator"`},
		{"tot-dfs", core.Params{"evaluator": "oracle"}, `"evaluator"`},
		{"tot-dfs", core.Params{"verifier": `{"name": "exact", "params": {"x": 1}}`}, `"verifier"`},
		{"got", core.Params{"evaluator": "oracle"}, `"evaluator"`},
		{"refine", core.Params{"evaluator": "oracle"}, `"evaluator"`},
		{"best-of-n", core.Params{"evaluator": "oracle"}, `"evaluator"`},
		{"best-of-n", core.Params{"evaluator": `{"name": "judge", "params": {"temperature": "hot"}}`}, `"temperature"`},
		{"beam", core.Params{"verifier": "nosuch"}, `"verifier"`},
		{"tot-bfs", core.Params{"evaluator": `{"name": "value", "params": {"samples": 4}}`}, `"samples"`},
		{"mcts", core.Params{"step_strategy": "nosuch"}, `"step_strategy"`},
		{"beam", core.Params{"step_strategy": "beam", "step_params": `{"beam_width": -3}`}, `"beam_width"`},
		{"mcts", core.Params{"step_strategy": "beam", "step_params": `{"evaluator": "oracle"}`}, `"step_strategy"`},
		{"got", core.Params{"graph": `[{"op": "generate"}, {"op": "score", "from": ["#1"], "evaluator": "nosuch"}]`}, "nosuch"},
	} {
		pol := &meter{Policy: stepper("Score: 5")}
		task := core.Task{Problem: "4 9 10 13", Pack: "game24", Strategy: p.strategy, Params: p.params}
		eng := newEngine(pol)
		if err := eng.Validate(task); !errors.Is(err, core.ErrInvalidTask) || !errors.Is(err, core.ErrInvalidParam) || !strings.Contains(err.Error(), p.want) {
			t.Errorf("%s %v: Validate says %v; want an invalid task naming %s", p.strategy, p.params, err, p.want)
		}
		res, err := eng.Solve(t.Context(), task)
		if !errors.Is(err, core.ErrInvalidTask) || !errors.Is(err, core.ErrInvalidParam) || !strings.Contains(err.Error(), p.want) || pol.calls.Load() != 0 {
			t.Errorf("%s %v: err %v (stopped %q) after %d calls; want an invalid task naming %s and no call", p.strategy, p.params, err, res.Stopped, pol.calls.Load(), p.want)
		}
	}
}

// fixedEval is an evaluator that always fails the same way.
type fixedEval struct {
	score float64
	err   error
}

func (f fixedEval) Evaluate(context.Context, core.EvalRequest) (core.Evaluation, error) {
	return core.Evaluation{Score: f.score}, f.err
}

// TestSearchesGoOnWhenTheEvaluatorFails complements
// TestSearchesGoOnWhenTheEvaluatorReturnsGarbage (a judge reply with no
// score): here the evaluator's LLM call fails, or the evaluator itself
// errs or returns a score outside [-1, 1]. Each scored node is left
// unscored and the search still returns an answer.
func TestSearchesGoOnWhenTheEvaluatorFails(t *testing.T) {
	t.Parallel()
	rate := func(id tasks.Identified) bool {
		return id.Kind == tasks.KindValue || id.Kind == tasks.KindPRM || id.Kind == tasks.KindJudge
	}
	// Steps as stepper writes them; whole solutions and revisions (refine's)
	// box 42; ratings get "Score: 5" or, with down, an error.
	policy := func(down bool) core.Policy {
		return core.PolicyFunc(func(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
			id, _ := tasks.Identify(req.Messages)
			switch {
			case down && rate(id):
				return core.Completion{}, errors.New("judge endpoint: 500 internal server error")
			case id.Kind == tasks.KindSolve || id.Kind == tasks.KindRevise:
				return core.Completion{Choices: []core.Choice{{Text: "6 times 7 is 42, so \\boxed{42}"}}}, nil
			}
			return stepper("Score: 5").Complete(ctx, req)
		})
	}
	faults := []struct {
		name      string
		pol       core.Policy
		evaluator string // "": the strategy's default
	}{
		{"llm error", policy(true), ""},
		{"evaluator error", policy(false), "broken"},
		{"score out of range", policy(false), "wild"},
		{"NaN score", policy(false), "nan"},
	}
	for _, s := range []string{"mcts", "beam", "tot-bfs", "tot-dfs", "got", "refine"} {
		for _, f := range faults {
			t.Run(s+" "+f.name, func(t *testing.T) {
				t.Parallel()
				params := core.Params{}
				switch s {
				case "tot-dfs":
					params["threshold"] = -1.0 // unscored candidates rank last but are still explored
				case "mcts":
					params["parallel"] = 1 // what 60 calls reach does not depend on timing
				case "refine":
					if f.evaluator == "" {
						params["evaluator"] = "judge" // refine rates nothing by default
					}
				}
				if f.evaluator != "" {
					params["evaluator"] = f.evaluator
				}
				reg := core.NewRegistry()
				strategy.Register(reg)
				evaluator.Register(reg)
				for name, ev := range map[string]fixedEval{
					"broken": {err: errors.New("grader crashed")},
					"wild":   {score: 7},
					"nan":    {score: math.NaN()},
				} {
					reg.RegisterEvaluator(core.EvaluatorSpec{Name: name, Summary: "fails",
						New: func(core.Params) (core.Evaluator, error) { return ev, nil }})
				}
				eng := core.NewEngine(f.pol, reg, &core.EngineOptions{Packs: tasks.Get})
				res, err := eng.Solve(t.Context(), core.Task{Problem: "q", Pack: "generic", Strategy: s, Params: params, Limits: core.Limits{LLMCalls: 60}})
				if err != nil {
					t.Fatal(err)
				}
				checkAnsweredDespiteUnscored(t, res)
			})
		}
	}
}

// n sampled steps at temperature 0 are one step n times and are refused;
// one propose call lists distinct steps at any temperature, so expanding
// or generating by the pack's propose prompt (propose, or auto on a pack
// that has one: Game of 24) is not (beam, mcts and tree of thoughts
// refused it, the last saying "0 samples" for its default of 3).
func TestTemperatureZeroRefusedOnlyWhereStepsAreSampled(t *testing.T) {
	t.Parallel()
	eng := newEngine(nil)
	for _, c := range []struct {
		strategy, pack string
		params         core.Params
		refused        string // "" accepted
	}{
		{"beam", "game24", core.Params{"temperature": 0, "expand": "propose"}, ""},
		{"beam", "game24", core.Params{"temperature": 0, "expand": "auto"}, ""},
		{"beam", "game24", core.Params{"temperature": 0, "expand": "sample"}, "2 expansions at temperature 0"},
		{"beam", "gsm8k", core.Params{"temperature": 0, "expand": "auto"}, "2 expansions at temperature 0"},
		{"beam", "gsm8k", core.Params{"temperature": 0, "expansions": 1}, ""},
		{"mcts", "game24", core.Params{"temperature": 0, "expand": "propose"}, ""},
		{"mcts", "gsm8k", core.Params{"temperature": 0}, "2 children at temperature 0"},
		{"tot-bfs", "game24", core.Params{"temperature": 0}, ""},
		{"tot-bfs", "gsm8k", core.Params{"temperature": 0}, "3 samples at temperature 0"},
		{"tot-dfs", "game24", core.Params{"temperature": 0, "generate": "sample", "samples": 2}, "2 samples at temperature 0"},
	} {
		err := eng.Validate(core.Task{Problem: "4 9 10 13", Pack: c.pack, Strategy: c.strategy, Params: c.params})
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%s on %s %v: %v; want it accepted", c.strategy, c.pack, c.params, err)
		case c.refused != "" && (!errors.Is(err, core.ErrInvalidParam) || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%s on %s %v: %v; want %q", c.strategy, c.pack, c.params, err, c.refused)
		}
	}
}
