package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/llm"
	"github.com/ponder-rlm/ponder/standard"
	"github.com/ponder-rlm/ponder/traces"
)

// app is Ponder wired together from a configuration: the one place where
// concrete parts (LLM client, tools, document store, plugins) meet core.
type app struct {
	cfg    config.Config
	log    zerolog.Logger
	reg    *core.Registry
	policy core.Policy // nil when no LLM endpoint is configured
	engine *core.Engine

	tools     core.Toolbox
	retriever core.Retriever
	traces    *traces.Store
	engOpts   core.EngineOptions

	// readOnlyStore: the command only reads documents (appOptions).
	readOnlyStore bool

	closers []func() error
}

// appHooks let capabilities (tools, retrieval, plugins, server) add their
// parts to the app from their own files. Each runs in order before the
// engine is built and may set a.tools, a.retriever, register strategies in
// a.reg, adjust a.engOpts, and append to a.closers. lastAppHooks run after
// them: plugins, so that every built-in is registered first and a plugin
// that takes a built-in's name is the one skipped.
var appHooks, lastAppHooks []func(ctx context.Context, a *app) error

// appOptions say what a command needs of the app.
type appOptions struct {
	// readOnlyStore: the command only reads documents (solve, eval, tools), so an
	// existing embedded store is opened read-only with a shared lock:
	// searches and other solves run beside it for as long as it runs. A
	// command that may write them (serve: ingest_documents) leaves it
	// false and holds the store alone.
	readOnlyStore bool
}

// newApp wires Ponder from cfg. The LLM is optional here: commands that need
// one say so when it is missing (requireLLM).
func newApp(ctx context.Context, cfg config.Config, log zerolog.Logger) (*app, error) {
	return newAppWith(ctx, cfg, log, appOptions{})
}

// newAppWith is newApp for a command with needs of its own (appOptions).
func newAppWith(ctx context.Context, cfg config.Config, log zerolog.Logger, o appOptions) (*app, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, reg: standard.Registry(), readOnlyStore: o.readOnlyStore}
	if cfg.LLM.BaseURL != "" {
		c, err := llm.New(cfg.LLM, &llm.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		a.policy = c
	}
	a.engOpts = core.EngineOptions{
		Concurrency:     cfg.LLM.Concurrency,
		DefaultStrategy: cfg.Search.Strategy,
		DefaultLimits:   core.Limits{LLMCalls: cfg.Search.BudgetCalls, Tokens: cfg.Search.BudgetTokens, WallTime: cfg.Search.Timeout},
		Packs:           standard.Packs,
		RecordPrompts:   cfg.Server.RecordPrompt,
		Logger:          log,
	}
	if cfg.DataDir != "" {
		st, err := traces.Open(filepath.Join(cfg.DataDir, "traces"), cfg.Server.TracesKept, &traces.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		a.traces = st
		a.engOpts.OnStart = st.Start
		a.engOpts.OnEnd = st.Finish
	}
	for _, hook := range slices.Concat(appHooks, lastAppHooks) {
		if err := hook(ctx, a); err != nil {
			a.Close()
			return nil, err
		}
	}
	a.engOpts.Tools = a.tools
	a.engOpts.Retriever = a.retriever
	a.engine = core.NewEngine(a.policy, a.reg, &a.engOpts)
	return a, nil
}

// errNoLLM says how to configure an LLM.
var errNoLLM = errors.New("no LLM endpoint is configured: set PONDER_LLM_BASE_URL or --llm-url " +
	"(e.g. http://127.0.0.1:8000/v1 for vLLM, http://127.0.0.1:11434/v1 for Ollama, " +
	"or start the simulator with `ponder sim-llm` and use http://127.0.0.1:8090/v1)")

func (a *app) requireLLM() error {
	if a.policy == nil {
		return errNoLLM
	}
	return nil
}

// Close releases what the app started, in reverse order.
func (a *app) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.log.Warn().Err(err).Msg("shutdown")
		}
	}
	a.closers = nil
}

// embedEndpoint is the URL of the configured embedding endpoint without its
// password, for the log and the command line (its error messages do not
// say where it is), or "" when documents are searched without one. It
// resolves as newEmbedder does: retrieval.embed_url, else the LLM's.
func embedEndpoint(cfg config.Config) string {
	if cfg.Retrieval.EmbedModel == "" && cfg.LLM.EmbeddingModel == "" {
		return ""
	}
	u := cfg.Retrieval.EmbedURL
	if u == "" {
		u = cfg.LLM.BaseURL
	}
	if u == "" {
		return ""
	}
	return redactedURL(u)
}

// ensureDataDir creates the data directory with private permissions.
func ensureDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	return nil
}
