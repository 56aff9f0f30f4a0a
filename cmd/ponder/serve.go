package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/retrieval"
	"github.com/ponder-rlm/ponder/retrieval/ingest"
	"github.com/ponder-rlm/ponder/server"
	"github.com/ponder-rlm/ponder/server/ui"
)

// newServeCmd runs Ponder's server: MCP over streamable HTTP, the
// OpenAI-compatible API, /healthz, /metrics and the trace viewer on one
// listener, or MCP over stdio for assistants that spawn Ponder.
func newServeCmd() *cobra.Command {
	var (
		addr  string
		stdio bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the reasoning server (MCP, OpenAI-compatible API, web trace viewer)",
		Long: "serve runs Ponder's server. Over HTTP (default 127.0.0.1:7800) one listener serves MCP (streamable HTTP) at /mcp,\n" +
			"the OpenAI-compatible API at /v1/chat/completions and /v1/models, /healthz, Prometheus /metrics and the trace\n" +
			"viewer at /ui/. With --stdio it speaks MCP on stdin and stdout for assistants that spawn it (logs go to stderr);\n" +
			"add --addr to serve HTTP (the trace viewer) too. SIGINT or SIGTERM cancels running searches (each still answers\n" +
			"with its best answer so far) and stops. See docs/server.md.",
		Example: "  ponder serve\n" +
			"  PONDER_LLM_BASE_URL=http://127.0.0.1:11434/v1 PONDER_LLM_MODEL=qwen2.5:7b ponder serve --addr 127.0.0.1:7800\n" +
			"  PONDER_TOKEN=$(openssl rand -hex 16) ponder serve --addr 0.0.0.0:7800\n" +
			"  ponder serve --stdio",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("addr") {
				cfg.Server.Addr = addr
			}
			log := newLogger(cfg.Log, cmd.ErrOrStderr())
			if err := ensureDataDir(cfg.DataDir); err != nil {
				if err := unusableDataDir(cfg.DataDir, err); err != nil {
					return err
				}
				// Serving needs no disk: runs answer, and each says it
				// could not be kept.
				log.Warn().Err(err).Msg("runs, documents and plugins cannot be kept: serving without them")
			}
			ctx := cmd.Context()
			a, err := newApp(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer a.Close()
			srv, err := server.New(serverOptions(ctx, a, log))
			if err != nil {
				return err
			}
			defer srv.Close()
			if a.policy == nil {
				log.Warn().Msg("no LLM endpoint is configured: MCP clients that support sampling lend their model; " +
					"everything else is refused until PONDER_LLM_BASE_URL is set")
			} else {
				// Errors sent to clients say "the LLM endpoint", never
				// where it is; the log says which one that is.
				log.Info().Str("endpoint", redactedURL(cfg.LLM.BaseURL)).Str("model", cfg.LLM.Model).Msg("llm endpoint")
			}
			if u := embedEndpoint(cfg); u != "" {
				// Likewise "the embedding endpoint" (ingest_documents,
				// search_documents).
				log.Info().Str("endpoint", u).Msg("embedding endpoint")
			}
			if cfg.Retrieval.Backend == "qdrant" {
				// Likewise "the Qdrant server" (its API key is apart).
				log.Info().Str("endpoint", redactedURL(cfg.Retrieval.QdrantURL)).Msg("qdrant server")
			}
			if stdio {
				return serveStdio(ctx, cmd, srv, cfg, log)
			}
			return serveHTTP(ctx, srv, cfg, log)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "HTTP listen address (default 127.0.0.1:7800, env PONDER_ADDR); a non-loopback address needs PONDER_TOKEN")
	cmd.Flags().BoolVar(&stdio, "stdio", false, "speak MCP on stdin/stdout (for assistants that spawn Ponder); with --addr, serve HTTP too")
	return cmd
}

// unusableDataDir is the error to stop with when the data dir, which
// could not be made (mkErr), is there but cannot be used: a file where
// the directory should be, or a path through a file or a directory Ponder
// may not look into. Only a dir that is not there yet (a read-only disk
// that may become writable) is served without: the trace store would
// refuse the rest a moment later, after the log had said serving goes on
// without them.
func unusableDataDir(dir string, mkErr error) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err == nil && !fi.IsDir():
		return fmt.Errorf("data dir %s is a file, not a directory: move it away or set data_dir (--data-dir, PONDER_DATA_DIR) to a directory", dir)
	}
	return fmt.Errorf("%w: set data_dir (--data-dir, PONDER_DATA_DIR) to a directory Ponder can use", mkErr)
}

// serverOptions wires the app's parts into the server.
func serverOptions(ctx context.Context, a *app, log zerolog.Logger) server.Options {
	o := server.Options{
		Engine:          a.engine,
		Traces:          a.traces,
		Retriever:       a.retriever,
		Config:          a.cfg.Server,
		DefaultPack:     a.cfg.Search.Pack,
		DefaultStrategy: a.cfg.Search.Strategy,
		UpstreamModel:   a.cfg.LLM.Model,
		Version:         version,
		Logger:          log,
	}
	if lister, ok := a.policy.(interface {
		Models(ctx context.Context) ([]string, error)
	}); ok {
		o.Models = lister.Models
	}
	if r, ok := a.retriever.(*retrieval.Retriever); ok {
		o.Ingester = &docIngester{store: r.Store(), cfg: a.cfg, log: log}
	}
	if a.traces != nil {
		o.UI = ui.Handler(a.traces, &ui.Options{Logger: log, Prefix: "/ui", Done: ctx.Done()})
	}
	return o
}

func serveHTTP(ctx context.Context, srv *server.Server, cfg config.Config, log zerolog.Logger) error {
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return listenError(cfg.Server.Addr, err)
	}
	base := server.ListenURL(cfg.Server.Addr, ln.Addr())
	// Where traces, documents and plugins go: a first `make run` says
	// nowhere else.
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dataDir = cfg.DataDir
	}
	log.Info().Str("addr", base).Str("mcp", base+"/mcp").Str("openai", base+"/v1").Str("ui", base+"/ui/").
		Bool("token", cfg.Server.Token != "" || len(cfg.Server.Tokens) > 0).Str("data_dir", dataDir).Msg("ponder serving")
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	log.Info().Msg("ponder stopped")
	return nil
}

// listenError says why addr could not be listened on, with the likely
// fix: another server holds the port, the address is not this machine's,
// or a port below 1024 needs privileges. Every error said "is another
// ponder running?", which sent an operator after a process that was not
// there.
func listenError(addr string, err error) error {
	hint := ""
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = " (is another ponder running? set --addr)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = " (no network interface of this machine has that address: bind 127.0.0.1, or 0.0.0.0 with a token)"
	case errors.Is(err, syscall.EACCES):
		hint = " (ports below 1024 need privileges: pick a higher port)"
	}
	return fmt.Errorf("listen on %s: %w%s", addr, err, hint)
}

func serveStdio(ctx context.Context, cmd *cobra.Command, srv *server.Server, cfg config.Config, log zerolog.Logger) error {
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	if cmd.Flags().Changed("addr") {
		ln, err := net.Listen("tcp", cfg.Server.Addr)
		if err != nil {
			return listenError(cfg.Server.Addr, err)
		}
		log.Info().Str("addr", server.ListenURL(cfg.Server.Addr, ln.Addr())).Msg("ponder serving HTTP beside stdio")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx, ln); err != nil {
				log.Error().Err(err).Msg("http server")
			}
		}()
	}
	log.Info().Msg("ponder serving MCP on stdio")
	err := srv.ServeStdio(ctx, cmd.InOrStdin(), cmd.OutOrStdout())
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// inlineTextName names an unnamed inline text by its content: another text
// never replaces it (a name by position, text-1.txt, was replaced by the
// next call's first text), and sending the same text again leaves it
// unchanged, as an idempotent tool should.
func inlineTextName(text string) string {
	sum := sha256.Sum256([]byte(text))
	return "text-" + hex.EncodeToString(sum[:6]) + ".txt"
}

// docIngester adapts retrieval/ingest to the server's ingest_documents.
type docIngester struct {
	store retrieval.Store
	cfg   config.Config
	log   zerolog.Logger
}

func (d *docIngester) Ingest(ctx context.Context, req server.IngestRequest) (server.IngestResult, error) {
	coll := req.Collection
	if coll == "" {
		coll = d.cfg.Retrieval.Collection
	}
	if err := retrieval.ValidateCollection(coll); err != nil {
		return server.IngestResult{}, fmt.Errorf("collection: %w", err)
	}
	emb, err := newEmbedder(d.cfg, d.log)
	if err != nil {
		return server.IngestResult{}, err
	}
	opts := ingest.Options{Collection: coll, Embedder: emb, MaxFileBytes: d.cfg.Retrieval.MaxFileBytes,
		Chunk:  ingest.ChunkOptions{Size: d.cfg.Retrieval.ChunkChars, Overlap: d.cfg.Retrieval.ChunkOverlap},
		Logger: d.log}
	out := server.IngestResult{Collection: coll, Documents: []server.IngestedDoc{}}
	add := func(sum ingest.Summary, rename string) {
		out.Added += sum.Added
		out.Updated += sum.Updated
		out.Unchanged += sum.Unchanged
		out.Skipped += sum.Skipped + sum.Failed
		out.Removed += sum.Removed
		out.Chunks += sum.Chunks
		for _, f := range sum.Files {
			src := f.Path
			if rename != "" {
				src = rename
			}
			out.Documents = append(out.Documents, server.IngestedDoc{Source: src, Status: string(f.Status), Reason: f.Reason,
				Note: f.Note, Chunks: f.Chunks})
		}
	}
	if len(req.Paths) > 0 {
		sum, err := ingest.New(d.store, &opts).Run(ctx, req.Paths, nil)
		if err != nil {
			return out, err
		}
		add(sum, "")
	}
	for _, t := range req.Texts {
		name := strings.TrimSpace(t.Name)
		if name == "" {
			name = inlineTextName(t.Text)
		}
		o := opts
		o.StdinName = name
		sum, err := ingest.New(d.store, &o).Run(ctx, []string{"-"}, strings.NewReader(t.Text))
		if err != nil {
			return out, err
		}
		add(sum, name)
	}
	return out, nil
}
