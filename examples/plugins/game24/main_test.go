package main

import (
	"context"
	"errors"
	"testing"

	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/sdk"
	"github.com/ponder-rlm/ponder/sdk/sdktest"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	cases := []struct {
		nums []int64
		expr string
		ok   bool
	}{
		{[]int64{4, 9, 10, 13}, "(13 - 9) * (10 - 4)", true},
		{[]int64{3, 3, 8, 8}, "8 / (3 - 8 / 3)", true}, // needs exact rationals
		{[]int64{1, 2, 3, 4}, "1 * 2 * 3 * 4", true},
		{[]int64{1, 2, 3, 4}, "(1 + 2 + 3) * 4 = 24", true},
		{[]int64{4, 9, 10, 13}, "13 + 9 + 10 - 4", false},         // 28
		{[]int64{4, 9, 10, 13}, "(13 - 9) * 6", false},            // wrong numbers
		{[]int64{4, 9, 10, 13}, "(13 - 9) * (10 - 4) * 1", false}, // extra number
		{[]int64{1, 2, 3, 4}, "4 / (1 - 1)", false},               // division by zero
		{[]int64{1, 2, 3, 4}, "((((1+2", false},
		{[]int64{1, 2, 3, 4}, "rm -rf /", false},
		{[]int64{3, 3, 8, 8}, "8 × (3 − 8 ÷ 3)", false}, // unicode operators, 8/3 != 24
	}
	for _, c := range cases {
		if ok, detail := Check(c.nums, c.expr, 24); ok != c.ok {
			t.Errorf("Check(%v, %q) = %v (%s), want %v", c.nums, c.expr, ok, detail, c.ok)
		}
	}
}

func TestNumbers(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"4 9 10 13", "Use 4, 9, 10 and 13 to make 24.", "Numbers: 4 9 10 13"} {
		got, err := Numbers(p)
		if err != nil || len(got) != 4 || got[0] != 4 || got[3] != 13 {
			t.Errorf("Numbers(%q) = %v, %v", p, got, err)
		}
	}
	if _, err := Numbers("1 2 3"); err == nil {
		t.Error("three numbers accepted")
	}
}

func path(problem, answer string) []core.Node {
	return []core.Node{{ID: 0, Kind: core.KindProblem, Content: problem},
		{ID: 1, Kind: core.KindAnswer, Content: `\boxed{` + answer + `}`, Answer: answer, Terminal: true, Depth: 1}}
}

func TestEvaluateInProcess(t *testing.T) {
	ev := sdktest.Evaluator(t, plugin())
	ctx := context.Background()
	e, err := ev.Evaluate(ctx, sdk.EvalRequest{Task: core.Task{Problem: "3 3 8 8"}, Path: path("3 3 8 8", "8 / (3 - 8 / 3)"),
		Params: core.Params{"target": int64(24)}})
	if err != nil || e.Score != 1 || e.Correct == nil || !*e.Correct {
		t.Fatalf("correct answer: %+v, %v", e, err)
	}
	e, err = ev.Evaluate(ctx, sdk.EvalRequest{Task: core.Task{Problem: "3 3 8 8"}, Path: path("3 3 8 8", "3 + 3 + 8 + 8"),
		Params: core.Params{"target": int64(24)}})
	if err != nil || e.Score != -1 || *e.Correct {
		t.Fatalf("wrong answer: %+v, %v", e, err)
	}
	step := []core.Node{{ID: 0, Kind: core.KindProblem, Content: "3 3 8 8"}, {ID: 1, Kind: core.KindStep, Content: "8 / 3 = 8/3 (left: 3 8 8/3)"}}
	if _, err := ev.Evaluate(ctx, sdk.EvalRequest{Task: core.Task{Problem: "3 3 8 8"}, Path: step}); !errors.Is(err, core.ErrNotApplicable) {
		t.Fatalf("step without answer: %v, want ErrNotApplicable", err)
	}
}

func plugin() sdk.Plugin {
	return sdk.Plugin{Name: "game24-verifier", Version: "1.0.0", Evaluator: Verifier{},
		Params: []sdk.ParamSpec{{Name: "target", Type: "int", Default: int64(24)}}}
}

// TestSubprocess installs the built plugin and scores through the host's
// registry, as a strategy's Evaluate would.
func TestSubprocess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	mgr, m := sdktest.Install(t, sdktest.Build(t, "."), nil)
	if m.Kind != sdk.KindEvaluator || len(m.Params) != 1 || m.Params[0].Default != int64(24) {
		t.Fatalf("manifest %+v", m)
	}
	reg := core.NewRegistry()
	if errs := mgr.Register(reg); len(errs) > 0 {
		t.Fatal(errs)
	}
	ev, err := reg.Evaluator("game24-verifier", core.Params{"target": "24"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := ev.Evaluate(context.Background(), core.EvalRequest{Task: core.Task{Problem: "4 9 10 13"}, Path: path("4 9 10 13", "(13 - 9) * (10 - 4)")})
	if err != nil || e.Score != 1 {
		t.Fatalf("got %+v, %v", e, err)
	}
	if _, err := reg.Evaluator("game24-verifier", core.Params{"target": "many"}); err == nil {
		t.Fatal("bad parameter accepted")
	}
}
