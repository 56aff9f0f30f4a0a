// Package core is Ponder's reasoning engine: nested reasoning structures,
// the operators of the RLM blueprint, budgets, traces, and the small
// interfaces (Policy, Evaluator, Tool, Retriever, Strategy) that the outer
// packages implement.
//
// core imports no transport, plugin, storage or LLM-client package; a test in
// this package fails if it does. Only cmd/ponder wires concrete parts in.
//
// A search runs like this:
//
//	reg := core.NewRegistry()
//	strategies.Register(reg)            // built-in strategies
//	eng := core.NewEngine(policy, reg, &core.EngineOptions{Concurrency: 8})
//	res, err := eng.Solve(ctx, core.Task{
//		Problem:  "Natalia sold clips to 48 of her friends ...",
//		Pack:     "gsm8k",
//		Strategy: "self-consistency",
//		Params:   core.Params{"k": 16},
//		Limits:   core.Limits{LLMCalls: 32},
//	})
//
// Every LLM call goes through Env.Complete, which charges the Budget, waits
// for a slot of the Limiter and records an event on the Tracer, so usage is
// exact across nested sub-searches and every run can be replayed from its
// trace.
package core
