// Package server serves Ponder's reasoning to assistants and apps: an MCP
// server (mark3labs/mcp-go) over stdio and streamable HTTP, an
// OpenAI-compatible chat completions API, /healthz and Prometheus /metrics,
// and a mount point for the web trace viewer, all behind one listener.
//
// MCP clients get the tools solve, list_strategies, search_documents,
// ingest_documents, get_trace and clear_session, the resources
// ponder://strategies, ponder://traces and ponder://traces/{id}, and two
// prompts. A solve with a progress token streams notifications/progress as
// the search grows, the last one before the result; notifications/cancelled
// stops the search and its LLM calls at once and no response is sent for
// the cancelled request. Without an LLM endpoint, a client that supports
// sampling lends its own model (sampling/createMessage) as the policy.
//
// The OpenAI-compatible API picks the strategy from the model name
// ("mcts:qwen2.5-7b-instruct"; a plain upstream model gets the default
// strategy), streams search progress as reasoning_content deltas and the
// answer as soon as it is chosen, and sums usage over every internal call.
//
// HTTP is secure by default: Host and Origin are checked against an
// allow-list (DNS rebinding), a bearer token (or, for the viewer under /ui
// only, the login cookie set by visiting /ui/?token=...) is required when one is configured, bodies are
// capped, and each client is rate limited.
//
// Usage:
//
//	srv, err := server.New(server.Options{
//		Engine: engine,           // core.Engine; nil policy is fine (sampling)
//		Traces: store,            // traces.Store, for get_trace and resources
//		Config: cfg.Server,       // config.Server
//		UI:     ui.Handler(store, nil),
//		Logger: log,
//	})
//	if err != nil {
//		return err
//	}
//	defer srv.Close()
//	ln, _ := net.Listen("tcp", cfg.Server.Addr)
//	err = srv.Serve(ctx, ln) // until ctx ends; running searches are cancelled
//
// or, for an assistant that spawns Ponder:
//
//	err = srv.ServeStdio(ctx, os.Stdin, os.Stdout)
package server
