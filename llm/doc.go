// Package llm adapts any OpenAI-compatible chat completions endpoint (vLLM,
// llama.cpp, Ollama, SGLang, LiteLLM, OpenAI itself, Ponder's simulator) to
// core.Policy.
//
// A Client maps a core.CompletionRequest to one chat completion request, or
// to several when the endpoint does not honour n (config.LLM.N "no", or
// "auto" after the endpoint rejected or ignored n once for the model:
// detection is per model). It retries 429, 5xx,
// network errors (an answer cut off mid-body included) and per-attempt
// timeouts with exponential backoff and full jitter, honouring Retry-After,
// refuses answers larger than Options.MaxResponseBytes (64 MiB), and
// classifies what it cannot recover from with core's sentinels:
// core.ErrLLMAuth, core.ErrLLMUnavailable, core.ErrLLMRateLimited,
// core.ErrLLMBadResponse and core.ErrLLMRejected. Cancelling the context
// stops a call at once, backoff included. Error messages say what failed
// and why, naming the endpoint "the LLM endpoint", never by its URL or
// address (they reach server clients and traces; the endpoint may be
// internal), nor the API key; the debug log has the URL.
//
// Usage:
//
//	c, err := llm.New(config.LLM{
//		BaseURL:    "http://127.0.0.1:8000/v1", // includes the /v1 prefix
//		Model:      "qwen2.5-7b-instruct",
//		Timeout:    2 * time.Minute, // per attempt
//		MaxRetries: 4,
//		N:          "auto",
//	}, &llm.Options{Logger: log})
//	if err != nil {
//		return err
//	}
//	out, err := c.Complete(ctx, core.CompletionRequest{
//		Messages: []core.Message{{Role: "user", Content: "2+2?"}},
//		N:        4,
//	})
//	if errors.Is(err, core.ErrLLMAuth) {
//		// tell the user to fix PONDER_LLM_API_KEY
//	}
//
// An answer without token counts (a proxy that drops usage) is charged
// an estimate, so that token budgets still hold (fillUsage has the rule).
// A reasoning model's thinking is read from reasoning_content (DeepSeek,
// older vLLM) or reasoning (newer vLLM, Ollama, OpenRouter). A sample cut
// off at max_tokens while the model was still thinking (reasoning, no
// content) is left out, and a call left with none fails saying which
// limit to raise.
//
// The client logs at debug level, but for one warning per model whose
// samples were left out so (the search got fewer than it asked for), and
// never logs the API key or prompts.
package llm
