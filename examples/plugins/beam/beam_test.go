package main

import (
	"context"
	"testing"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/llm/sim"
	"github.com/ponder-rlm/ponder/llm/sim/simtest"
	"github.com/ponder-rlm/ponder/sdk"
	"github.com/ponder-rlm/ponder/sdk/sdktest"
	"github.com/ponder-rlm/ponder/standard"
)

func plugin() sdk.Plugin {
	return sdk.Plugin{Name: "beam-lite", Version: "1.0.0", Strategy: Beam{}, Params: []sdk.ParamSpec{
		{Name: "width", Type: "int", Default: int64(2)}, {Name: "expand", Type: "int", Default: int64(2)},
		{Name: "depth", Type: "int", Default: int64(6)}, {Name: "evaluator", Type: "string", Default: ""},
		{Name: "temperature", Type: "float", Default: 0.7}}}
}

// TestScripted runs the strategy in-process with a scripted policy: two
// steps, then answers; every call goes through the host's budget.
func TestScripted(t *testing.T) {
	policy := sdktest.Replies("Step: 6 times 7 is 42.", "6 * 7 = 42. The answer is 42.")
	res := sdktest.Solve(t, plugin(), core.Task{Problem: "What is 6 times 7?", Limits: core.Limits{LLMCalls: 20}},
		&sdktest.SolveOptions{Policy: policy})
	if res.Answer != "42" || res.Stopped != core.StopDone {
		t.Fatalf("answer %q, stopped %s (%s)", res.Answer, res.Stopped, res.Error)
	}
	if res.Usage.LLMCalls == 0 || res.Usage.LLMCalls > 20 || len(res.BestPath) < 2 {
		t.Fatalf("usage %+v, best path %d nodes", res.Usage, len(res.BestPath))
	}
}

// TestBudget: a policy that never answers runs the strategy into the
// budget; the host stops it and reports "budget".
func TestBudget(t *testing.T) {
	res := sdktest.Solve(t, plugin(), core.Task{Problem: "What is 6 times 7?", Params: core.Params{"depth": "30"}, Limits: core.Limits{LLMCalls: 6}},
		&sdktest.SolveOptions{Policy: sdktest.Replies("Let me think about it some more.")})
	if res.Stopped != core.StopBudget || res.Usage.LLMCalls > 6 {
		t.Fatalf("stopped %s, %d calls", res.Stopped, res.Usage.LLMCalls)
	}
}

// TestSubprocessOnSimulator installs the built plugin and solves a GSM8K
// problem on the LLM simulator through the engine: the plugin's policy and
// judge calls are the host's.
func TestSubprocessOnSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	mgr, _ := sdktest.Install(t, sdktest.Build(t, "."), nil)
	reg := standard.Registry()
	if errs := mgr.Register(reg); len(errs) > 0 {
		t.Fatal(errs)
	}
	spec, err := reg.Strategy("beam-lite")
	if err != nil || spec.Source != "beam-lite" {
		t.Fatalf("spec %+v, %v", spec, err)
	}
	url := simtest.Start(t, sim.Options{Seed: 3, DataDir: "../../../../shared/data"})
	cfg := config.Default().LLM
	cfg.BaseURL = url
	client, err := llm.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	eng := core.NewEngine(client, reg, &core.EngineOptions{Packs: standard.Packs})
	res, err := eng.Solve(context.Background(), core.Task{
		Problem:  "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
		Pack:     "gsm8k",
		Strategy: "beam-lite",
		Limits:   core.Limits{LLMCalls: 40},
		Seed:     1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped == core.StopError || res.Answer == "" || res.Usage.LLMCalls == 0 {
		t.Fatalf("stopped %s (%s), answer %q, %d calls", res.Stopped, res.Error, res.Answer, res.Usage.LLMCalls)
	}
	var llmCalls int
	for _, e := range res.Trace.Events {
		if e.Op == core.OpLLMCall {
			llmCalls++
		}
	}
	if llmCalls == 0 {
		t.Fatal("no llm_call events in the host's trace")
	}
	t.Logf("answer %s, %d calls, %s", res.Answer, res.Usage.LLMCalls, res.Stopped)
}
