package evaluator_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/core/evaluator"
	"github.com/ponder-rlm/ponder/tasks"
)

// replyPolicy answers every sample with reply(kind, steps, i) and counts
// samples; kind is what tasks.Identify reads from the prompt.
type replyPolicy struct {
	calls atomic.Int64
	reply func(kind tasks.Kind, steps []string, i int) string
	err   error
	last  atomic.Pointer[core.CompletionRequest]
}

func (p *replyPolicy) Complete(ctx context.Context, req core.CompletionRequest) (core.Completion, error) {
	p.last.Store(&req)
	if p.err != nil {
		return core.Completion{}, p.err
	}
	p.calls.Add(int64(req.N))
	id, _ := tasks.Identify(req.Messages)
	var c core.Completion
	for i := 0; i < req.N; i++ {
		c.Choices = append(c.Choices, core.Choice{Text: p.reply(id.Kind, id.Steps, i)})
	}
	return c, nil
}

func path(steps ...string) []core.Node {
	out := []core.Node{{ID: 0, Kind: core.KindProblem, Content: "q"}}
	for i, s := range steps {
		n := core.Node{ID: core.NodeID(i + 1), Kind: core.KindStep, Content: s}
		if a, ok := core.ExtractAnswer(s); ok {
			n.Kind, n.Answer, n.Terminal = core.KindAnswer, a, true
		}
		out = append(out, n)
	}
	return out
}

func registry() *core.Registry {
	reg := core.NewRegistry()
	evaluator.Register(reg)
	return reg
}

func TestPromptedModels(t *testing.T) {
	t.Parallel()
	score := func(n int) func(tasks.Kind, []string, int) string {
		return func(tasks.Kind, []string, int) string { return fmt.Sprintf("Fine.\nScore: %d", n) }
	}
	tests := []struct {
		name     string
		ev       string
		params   core.Params
		pack     string
		steps    []string
		reply    func(tasks.Kind, []string, int) string
		want     float64
		kind     string
		wantKind tasks.Kind
		err      error
		calls    int64
	}{
		{"value 10 is 1", "value", nil, "gsm8k", []string{"a"}, score(10), 1, core.ScoreValue, tasks.KindValue, nil, 1},
		{"value 1 is -1", "value", nil, "gsm8k", []string{"a"}, score(1), -1, core.ScoreValue, tasks.KindValue, nil, 1},
		{"game24 value: likely", "value", nil, "game24", []string{"13 - 9 = 4 (left: 4 4 10)"},
			func(tasks.Kind, []string, int) string { return "4 4 10: maybe\nlikely" }, tasks.Game24Likely, core.ScoreValue, tasks.KindValue, nil, 1},
		{"value samples are averaged", "value", core.Params{"samples": 2, "temperature": 0.7}, "gsm8k", []string{"a"},
			func(_ tasks.Kind, _ []string, i int) string { return fmt.Sprintf("Score: %d", []int{10, 1}[i]) }, 0, core.ScoreValue, tasks.KindValue, nil, 2},
		{"garbage samples are skipped", "value", core.Params{"samples": 2, "temperature": 0.7}, "gsm8k", []string{"a"},
			func(_ tasks.Kind, _ []string, i int) string { return []string{"no idea", "Score: 10"}[i] }, 1, core.ScoreValue, tasks.KindValue, nil, 2},
		{"garbage is an error", "value", nil, "gsm8k", []string{"a"},
			func(tasks.Kind, []string, int) string { return "I cannot say" }, 0, "", tasks.KindValue, evaluator.ErrGarbage, 1},
		{"prm rates the last step", "prm", nil, "gsm8k", []string{"a", "b"}, score(7), (7 - 5.5) / 4.5, core.ScorePRM, tasks.KindPRM, nil, 1},
		{"prm needs a step", "prm", nil, "gsm8k", nil, score(7), 0, "", "", core.ErrNotApplicable, 0},
		{"orm grades an answer", "orm", nil, "gsm8k", []string{"so \\boxed{4}"}, score(4), (4 - 5.5) / 4.5, core.ScoreORM, tasks.KindJudge, nil, 1},
		{"orm needs an answer", "orm", nil, "gsm8k", []string{"a"}, score(4), 0, "", "", core.ErrNotApplicable, 0},
		{"judge out of range is garbage", "judge", nil, "gsm8k", []string{"a"}, score(11), 0, "", tasks.KindJudge, nil, 1},
	}
	reg := registry()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := reg.Evaluator(tt.ev, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			pol := &replyPolicy{reply: tt.reply}
			e, err := ev.Evaluate(t.Context(), core.EvalRequest{Task: core.Task{Problem: "4 9 10 13", Pack: tt.pack}, Path: path(tt.steps...), Policy: pol})
			if pol.calls.Load() != tt.calls {
				t.Errorf("%d samples asked, want %d", pol.calls.Load(), tt.calls)
			}
			if tt.name == "judge out of range is garbage" {
				if err == nil {
					t.Fatal("a score of 11 was accepted")
				}
				return
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != tt.kind || e.Score < tt.want-1e-9 || e.Score > tt.want+1e-9 {
				t.Fatalf("got %s %v, want %s %v", e.Kind, e.Score, tt.kind, tt.want)
			}
			if req := pol.last.Load(); req == nil || req.Seed == nil || req.Temperature == nil {
				t.Fatal("request without a seed or temperature")
			}
		})
	}
}

func TestPromptsSeeTheTaskPrefix(t *testing.T) {
	t.Parallel()
	var seen []string
	pol := &replyPolicy{reply: func(_ tasks.Kind, steps []string, _ int) string { seen = steps; return "Score: 9" }}
	_, err := evaluator.PRM{}.Evaluate(t.Context(), core.EvalRequest{Task: core.Task{Problem: "q", Steps: []string{"earlier"}},
		Path: path("now"), Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, "|") != "earlier|now" {
		t.Fatalf("the PRM saw %q, want the task's steps then the path's", seen)
	}
}

func TestSamplesAtTemperatureZeroAreRejected(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"value", "prm", "orm"} {
		_, err := registry().Evaluator(name, core.Params{"samples": 3})
		if !errors.Is(err, core.ErrInvalidParam) || !strings.Contains(err.Error(), `"samples"`) {
			t.Errorf("%s: err = %v, want an invalid \"samples\"", name, err)
		}
	}
}

func TestVerifiers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ev, pack, problem, truth, answer string
		want                                   int // 1 right, -1 wrong, 0 not applicable
	}{
		{"same integer", "exact", "gsm8k", "q", "1000", "1,000", 1},
		{"decimal and fraction", "exact", "math", "q", "0.5", `\frac{1}{2}`, 1},
		{"fraction forms", "exact", "generic", "q", "2/4", "\\dfrac{1}{2}", 1},
		{"dollars", "exact", "gsm8k", "q", "18", "$18.00", 1},
		{"wrong number", "exact", "gsm8k", "q", "18", "17.9", -1},
		{"latex by normal form", "exact", "math", "q", `\left( 3, \frac{\pi}{2} \right)`, `(3,\frac{\pi}{2})`, 1},
		{"no truth", "exact", "gsm8k", "q", "", "18", 0},
		{"no answer", "exact", "gsm8k", "q", "18", "", 0},
		{"game24 right", "game24", "game24", "4 9 10 13", "", "(10 - 4) * (13 - 9)", 1},
		{"game24 with = 24", "game24", "game24", "4 9 10 13", "", "(13-9)*(10-4) = 24", 1},
		{"game24 wrong value", "game24", "game24", "4 9 10 13", "", "4 + 9 + 10 + 13", -1},
		{"game24 wrong numbers", "game24", "game24", "4 9 10 13", "", "4 * 6", -1},
		{"game24 not a puzzle", "game24", "game24", "what is 2+2", "", "4", 0},
		{"pack verifier: game24", "verifier", "game24", "4 9 10 13", "", "(13 - 9) * (10 - 4)", 1},
		{"pack verifier: gsm8k", "verifier", "gsm8k", "q", "18", "18", 1},
		{"pack verifier without truth", "verifier", "gsm8k", "q", "", "18", 0},
	}
	reg := registry()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := reg.Evaluator(tt.ev, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := path("work")
			p[1].Answer = tt.answer
			e, err := ev.Evaluate(t.Context(), core.EvalRequest{Task: core.Task{Problem: tt.problem, Pack: tt.pack, Truth: tt.truth}, Path: p})
			if tt.want == 0 {
				if !errors.Is(err, core.ErrNotApplicable) {
					t.Fatalf("err = %v, want not applicable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != core.ScoreVerifier || e.Correct == nil || e.Score != float64(tt.want) || *e.Correct != (tt.want == 1) {
				t.Fatalf("got %+v, want score %d", e, tt.want)
			}
		})
	}
}

func TestExactNumber(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"1,234": "1234/1", "-3/4": "-3/4", `\frac{6}{8}`: "3/4", "-\\frac{1}{3}": "-1/3",
		"$12.50": "25/2", "0.10": "1/10", `\boxed{7}`: "7/1"} {
		r, ok := evaluator.ExactNumber(in)
		if !ok || r.String() != want {
			t.Errorf("ExactNumber(%q) = %v, %v; want %s", in, r, ok, want)
		}
	}
	for _, in := range []string{"x + 1", "50%", "1/0", "12 apples", "1,23", ""} {
		if r, ok := evaluator.ExactNumber(in); ok {
			t.Errorf("ExactNumber(%q) = %v, want not a number", in, r)
		}
	}
}

// fixed is an evaluator with a fixed verdict or error.
type fixed struct {
	e     core.Evaluation
	err   error
	calls *atomic.Int64
}

func (f fixed) Evaluate(context.Context, core.EvalRequest) (core.Evaluation, error) {
	if f.calls != nil {
		f.calls.Add(1)
	}
	return f.e, f.err
}

func TestFirstSkipsWhatDoesNotApply(t *testing.T) {
	t.Parallel()
	var later atomic.Int64
	yes := true
	f := evaluator.First{
		fixed{err: core.ErrNotApplicable},
		fixed{e: core.Evaluation{Score: 1, Kind: core.ScoreVerifier, Correct: &yes}},
		fixed{e: core.Evaluation{Score: -1}, calls: &later},
	}
	e, err := f.Evaluate(t.Context(), core.EvalRequest{})
	if err != nil || e.Kind != core.ScoreVerifier || later.Load() != 0 {
		t.Fatalf("got %+v, %v (later asked %d times); want the verifier's verdict only", e, err, later.Load())
	}
	boom := errors.New("boom")
	if _, err := (evaluator.First{fixed{err: boom}, fixed{}}).Evaluate(t.Context(), core.EvalRequest{}); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the first applicable evaluator's error", err)
	}
	if _, err := (evaluator.First{fixed{err: core.ErrNotApplicable}}).Evaluate(t.Context(), core.EvalRequest{}); !errors.Is(err, core.ErrNotApplicable) {
		t.Fatalf("err = %v, want not applicable", err)
	}
}

func TestWeighted(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name  string
		parts []evaluator.Part
		want  float64
		err   error
	}{
		{"mean by weight", []evaluator.Part{{"a", fixed{e: core.Evaluation{Score: 1}}, 3}, {"b", fixed{e: core.Evaluation{Score: -1}}, 1}}, 0.5, nil},
		{"not applicable left out", []evaluator.Part{{"a", fixed{err: core.ErrNotApplicable}, 5}, {"b", fixed{e: core.Evaluation{Score: 0.2}}, 1}}, 0.2, nil},
		{"failure left out", []evaluator.Part{{"a", fixed{err: boom}, 5}, {"b", fixed{e: core.Evaluation{Score: 0.2}}, 1}}, 0.2, nil},
		{"out of range left out", []evaluator.Part{{"a", fixed{e: core.Evaluation{Score: 7}}, 5}, {"b", fixed{e: core.Evaluation{Score: 0.2}}, 1}}, 0.2, nil},
		{"all failed", []evaluator.Part{{"a", fixed{err: boom}, 1}}, 0, boom},
		{"budget ends it", []evaluator.Part{{"a", fixed{err: core.ErrBudgetExhausted}, 1}, {"b", fixed{e: core.Evaluation{Score: 1}}, 1}}, 0, core.ErrBudgetExhausted},
		{"none applies", []evaluator.Part{{"a", fixed{err: core.ErrNotApplicable}, 1}}, 0, core.ErrNotApplicable},
	}
	for _, tt := range tests {
		e, err := evaluator.Weighted{Parts: tt.parts}.Evaluate(t.Context(), core.EvalRequest{})
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || e.Score < tt.want-1e-9 || e.Score > tt.want+1e-9 || e.Kind != core.ScoreValue {
			t.Errorf("%s: got %+v, %v; want value %v", tt.name, e, err, tt.want)
		}
	}
}

func TestCombinatorsFromTheRegistry(t *testing.T) {
	t.Parallel()
	reg := registry()
	w, err := reg.Evaluator("weighted", core.Params{"evaluators": "game24:3,exact", "kind": "orm"})
	if err != nil {
		t.Fatal(err)
	}
	p := path("work")
	p[1].Answer = "(10 - 4) * (13 - 9)"
	e, err := w.Evaluate(t.Context(), core.EvalRequest{Task: core.Task{Problem: "4 9 10 13", Pack: "game24"}, Path: p})
	if err != nil || e.Score != 1 || e.Kind != core.ScoreORM || e.Correct == nil || !*e.Correct {
		t.Fatalf("weighted game24:3,exact = %+v, %v; want orm 1 (exact does not apply without a truth)", e, err)
	}
	f, err := reg.Evaluator("first", core.Params{"evaluators": `["exact", {"name": "value", "params": {"temperature": 0.5}}]`})
	if err != nil {
		t.Fatal(err)
	}
	pol := &replyPolicy{reply: func(tasks.Kind, []string, int) string { return "Score: 10" }}
	e, err = f.Evaluate(t.Context(), core.EvalRequest{Task: core.Task{Problem: "q", Pack: "gsm8k"}, Path: path("a"), Policy: pol})
	if err != nil || e.Kind != core.ScoreValue || e.Score != 1 || *pol.last.Load().Temperature != 0.5 {
		t.Fatalf("first exact,value = %+v, %v; want the value model's 1 at temperature 0.5", e, err)
	}
	bad := []struct {
		name   string
		params core.Params
		want   string
	}{
		{"weighted", nil, "list the evaluators"},
		{"weighted", core.Params{"evaluators": "value:-2"}, "must be positive"},
		{"weighted", core.Params{"evaluators": "value:x"}, "want a number"},
		{"first", core.Params{"evaluators": "nosuch"}, "unknown name"},
		{"first", core.Params{"evaluators": `[{"name": "value", "wieght": 2}]`}, "item 1"},
		{"first", core.Params{"evaluators": `[{"name": "value", "params": {"samples": 0}}]`}, `"samples"`},
		{"weighted", core.Params{"evaluators": "value", "kind": "score"}, "want one of"},
	}
	for _, b := range bad {
		_, err := reg.Evaluator(b.name, b.params)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s %v: err = %v, want it to say %q", b.name, b.params, err, b.want)
		}
	}
}

func ExampleFirst() {
	// A verifier when it can tell, else the value model: how searches score
	// answers.
	reg := core.NewRegistry()
	evaluator.Register(reg)
	ev, _ := reg.Evaluator("first", core.Params{"evaluators": "game24,value"})
	path := []core.Node{{Kind: core.KindProblem, Content: "4 9 10 13"}, {Kind: core.KindAnswer, Answer: "(10 - 4) * (13 - 9)"}}
	e, _ := ev.Evaluate(context.Background(), core.EvalRequest{Task: core.Task{Problem: "4 9 10 13", Pack: "game24"}, Path: path})
	fmt.Println(e.Kind, e.Score, *e.Correct)
	// Output: verifier 1 true
}

// Every built-in evaluator is path-free, and scores a request that carries
// the steps and the last node exactly as one that carries the whole path.
func TestBuiltinsScoreTheSameWithoutThePath(t *testing.T) {
	t.Parallel()
	reg := registry()
	requests := []struct {
		pack, problem, truth string
		steps                []string
	}{
		{"gsm8k", "Tom has 3 apples and buys 5. How many now?", "8", []string{"3 + 5 = 8", `So \boxed{8}`}},
		{"gsm8k", "Tom has 3 apples and buys 5. How many now?", "8", []string{"3 + 5 = 9"}},
		{"game24", "4 9 10 13", "", []string{"10 - 4 = 6 (left: 6 9 13)", "13 - 9 = 4 (left: 4 6)", `\boxed{(10 - 4) * (13 - 9)}`}},
		{"math", "What is 1/2 + 1/4?", `\frac{3}{4}`, []string{`\boxed{0.75}`}},
	}
	for _, spec := range reg.Evaluators() {
		params := core.Params{}
		if spec.Name == "first" || spec.Name == "weighted" {
			params["evaluators"] = "verifier,value"
		}
		ev, err := reg.Evaluator(spec.Name, params)
		if err != nil {
			t.Fatalf("%s: %v", spec.Name, err)
		}
		if !core.IsPathFree(ev) {
			t.Errorf("%s is not path-free: core.Evaluate copies the whole path for it", spec.Name)
		}
		for _, r := range requests {
			p := path(r.steps...)
			last := p[len(p)-1]
			task := core.Task{Problem: r.problem, Pack: r.pack, Truth: r.truth}
			var prompts [2]string
			var evs [2]core.Evaluation
			var errs [2]error
			for i, req := range []core.EvalRequest{
				{Task: task, Path: p},
				{Task: task, Steps: core.Steps(p), Last: &last},
			} {
				pol := &replyPolicy{reply: func(tasks.Kind, []string, int) string { return "sure\nScore: 7" }}
				req.Policy = pol
				evs[i], errs[i] = ev.Evaluate(t.Context(), req)
				if c := pol.last.Load(); c != nil {
					prompts[i] = fmt.Sprint(c.Messages)
				}
			}
			if evs[0].Score != evs[1].Score || evs[0].Kind != evs[1].Kind || fmt.Sprint(errs[0]) != fmt.Sprint(errs[1]) || prompts[0] != prompts[1] {
				t.Errorf("%s on %q: with the path %+v (%v), without %+v (%v); prompts equal: %v",
					spec.Name, r.steps, evs[0], errs[0], evs[1], errs[1], prompts[0] == prompts[1])
			}
		}
	}
}
