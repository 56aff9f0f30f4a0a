// Package sim is a deterministic OpenAI-compatible LLM simulator: it stands
// in for a real model in tests, demos and offline benchmarks, with a noise
// model tuned per prompt kind.
//
// It recognises the prompts of Ponder's task packs (tasks.Identify): for
// GSM8K and MATH-500 problems it knows the truth and the reference solution
// (from the benchmark files), so a whole solution is right with probability
// Accuracy and otherwise ends in one of a few plausible wrong answers; step
// prompts continue a path that is still on track correctly with
// probability StepAccuracy; judge, value and PRM prompts rate the path the
// right way with probability JudgeAccuracy; Game of 24 prompts get legal
// moves, sure/likely/impossible verdicts and checked expressions; HumanEval
// prompts (eval's humaneval pack) get the whole function in a ```python
// block, the canonical solution with probability Accuracy. Every
// sample is a pure function of Options.Seed, the messages, the request's
// seed and the choice index. docs/simulator.md describes the noise model.
//
//	srv, err := sim.New(sim.Options{Seed: 1, Accuracy: 0.35})
//	...
//	ln, _ := net.Listen("tcp", "127.0.0.1:8090")
//	err = srv.Serve(ctx, ln) // until ctx ends
//
// Tests start one with simtest.Start(t, opts), which returns the base URL
// (ending in /v1) for any OpenAI client.
//
// Endpoints: POST /v1/chat/completions (n, stream, seed, temperature,
// max_tokens, stop, logprobs, usage), POST /v1/embeddings (hashed bag of
// words, L2-normalised), GET /v1/models, GET /healthz. Requests are read
// as strictly as OpenAI reads them, and what the simulator cannot honour
// (a tool call it must make, a JSON response format) is refused with 400.
package sim
