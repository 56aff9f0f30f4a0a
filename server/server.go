package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/traces"
)

// Ingester adds documents to the document store (ingest_documents).
type Ingester interface {
	Ingest(ctx context.Context, req IngestRequest) (IngestResult, error)
}

// IngestRequest names documents to add to a collection: files, folders or
// globs on the server's file system, and texts given inline.
type IngestRequest struct {
	Collection string       `json:"collection,omitempty"`
	Paths      []string     `json:"paths,omitempty"`
	Texts      []IngestText `json:"texts,omitempty"`
}

// IngestText is one document given inline.
type IngestText struct {
	// Name names the document (its source); its extension picks the reader
	// (.md, .txt, .html). Default "text-<12 hex digits of the text's
	// SHA-256>.txt".
	Name string `json:"name,omitempty"`
	Text string `json:"text"`
}

// IngestResult says what happened to each document.
type IngestResult struct {
	Collection string `json:"collection"`
	Added      int    `json:"added"`
	Updated    int    `json:"updated"`
	Unchanged  int    `json:"unchanged"`
	Skipped    int    `json:"skipped"`
	// Removed counts documents whose files are gone from a folder or glob ingested
	// again: they were taken out of the collection.
	Removed   int           `json:"removed"`
	Chunks    int           `json:"chunks"`
	Documents []IngestedDoc `json:"documents"`
}

// IngestedDoc is the outcome for one document.
type IngestedDoc struct {
	Source string `json:"source"`
	Status string `json:"status"` // added, updated, unchanged, skipped, failed, removed (gone from a folder or glob ingested again)
	Reason string `json:"reason,omitempty"`
	// Note says what was assumed in reading the file, e.g. "read as
	// Windows-1252: the file is not valid UTF-8": the client may want to
	// check the text it will be grounded on.
	Note   string `json:"note,omitempty"`
	Chunks int    `json:"chunks,omitempty"`
}

// Options configure a Server. Engine is required; every other field may be
// left zero.
type Options struct {
	// Engine runs searches. Its policy may be nil: MCP clients that support
	// sampling then lend their own model, and everything else is told how
	// to configure an LLM endpoint.
	Engine *core.Engine
	// Traces serves get_trace and the trace resources (nil: not available).
	Traces *traces.Store
	// Retriever serves search_documents; Ingester serves ingest_documents.
	// Nil: the tools answer that no document store is configured.
	Retriever core.Retriever
	Ingester  Ingester
	// Config is the server section of Ponder's configuration (zero value:
	// config.Default().Server).
	Config config.Server
	// DefaultPack is the task pack used when a problem's kind is not
	// detected (default "generic"); DefaultStrategy is the engine's default
	// strategy, reported to clients (default "cot").
	DefaultPack     string
	DefaultStrategy string
	// UpstreamModel is the configured upstream model name; Models, when
	// set, lists the endpoint's models for /v1/models (cached a minute).
	UpstreamModel string
	Models        func(ctx context.Context) ([]string, error)
	// UI is the web trace viewer, mounted at /ui/ (nil: /ui/ says it is
	// not available).
	UI http.Handler
	// Version is reported in MCP's serverInfo and /healthz.
	Version string
	Logger  zerolog.Logger
}

// Server is Ponder's MCP and OpenAI-compatible server. It is safe for
// concurrent use; Close (or the end of Serve's context) cancels every
// running search.
type Server struct {
	opts    Options
	cfg     config.Server
	log     zerolog.Logger
	engine  *core.Engine
	mcp     *mcpserver.MCPServer
	stream  *mcpserver.StreamableHTTPServer
	handler http.Handler
	metrics *metrics
	sess    *sessions
	mcpSess *mcpSessions
	limiter *rateLimiter
	tokens  [][]byte // server.token and server.tokens (bearerTokens)
	// conns caps the connections Serve accepts (nil: no cap, or not
	// serving).
	conns  atomic.Pointer[connLimiter]
	models *modelCache

	// bodyTimeout and writeTimeout: see the constants.
	bodyTimeout, writeTimeout time.Duration

	// base is the parent of every search: cancelled by Close.
	base       context.Context
	cancelBase context.CancelFunc
	runMu      sync.Mutex
	runN       int
	admitted   int // places of server.max_searches taken (admit)
	closing    bool
	idle       chan struct{}

	// exchanges tracks in-flight MCP tool calls over HTTP, so that a
	// cancelled one gets no response.
	exchanges *exchanges
	samplers  sync.Map // MCP session id -> chan struct{} (sampling slots)
	// getStreams counts each MCP session's open GET streams, on which
	// alone mcp-go sends sampling requests; a sampling request waits
	// samplingStreamWait for one (sampling.go).
	getStreams         *getStreams
	samplingStreamWait time.Duration
	// sampleWatch learns the ids of the sampling requests sent, to
	// cancel those a search no longer needs.
	sampleWatch *sampleWatch

	closeOnce sync.Once
	// shutdownOnce logs the start of the shutdown once (logShutdown).
	shutdownOnce sync.Once
}

// New builds a Server.
func New(opts Options) (*Server, error) {
	if opts.Engine == nil {
		return nil, errors.New("server: Options.Engine is required")
	}
	cfg := opts.Config
	def := config.Default().Server
	if cfg.Addr == "" {
		cfg.Addr = def.Addr
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = def.MaxBodyBytes
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = def.SessionTTL
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = def.MaxSessions
	}
	if cfg.SessionMaxTurns <= 0 {
		cfg.SessionMaxTurns = def.SessionMaxTurns
	}
	if cfg.SessionMaxBytes <= 0 {
		cfg.SessionMaxBytes = def.SessionMaxBytes
	}
	if cfg.SamplingConcurrency <= 0 {
		cfg.SamplingConcurrency = def.SamplingConcurrency
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = def.ShutdownTimeout
	}
	if opts.DefaultPack == "" {
		opts.DefaultPack = "generic"
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	hosts, err := newHostPolicy(cfg)
	if err != nil {
		return nil, err
	}
	base, cancel := context.WithCancel(context.Background())
	sess := newSessions(cfg.MaxSessions, cfg.SessionMaxTurns, cfg.SessionMaxBytes, cfg.SessionTTL)
	s := &Server{
		opts:        opts,
		cfg:         cfg,
		log:         opts.Logger,
		engine:      opts.Engine,
		metrics:     newMetrics(sess.Len),
		sess:        sess,
		limiter:     newRateLimiter(cfg.RateLimit, cfg.RateBurst),
		tokens:      bearerTokens(cfg),
		base:        base,
		cancelBase:  cancel,
		exchanges:   newExchanges(),
		sampleWatch: newSampleWatch(),
		getStreams:  newGetStreams(),
	}
	s.samplingStreamWait = samplingStreamWait
	s.bodyTimeout, s.writeTimeout = bodyTimeout, writeTimeout
	s.models = &modelCache{fetch: opts.Models, fallback: opts.UpstreamModel, ttl: time.Minute}
	s.mcp = s.newMCPServer()
	s.mcpSess = newMCPSessions(cfg.MaxSessions, cfg.SessionTTL)
	s.mcpSess.end = s.endSession
	s.stream = mcpserver.NewStreamableHTTPServer(s.mcp,
		mcpserver.WithEndpointPath("/mcp"),
		mcpserver.WithSessionIdManager(s.mcpSess),
		// Idle sessions are ended by s.mcpSess.sweep, not by mcp-go's
		// sweeper, which ends sessions in the middle of a long request.
		// Host and Origin are checked by our own middleware, for every
		// route and every bind address, before mcp-go sees the request.
		mcpserver.WithDisableLocalhostProtection(true),
		mcpserver.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			return context.WithValue(ctx, transportKey{}, transportHTTP)
		}),
		mcpserver.WithStreamableHTTPLogger(slogFor(s.log)),
	)
	s.handler = s.routes(hosts)
	if cfg.MaxConnections > 0 {
		s.metrics.watchConnections(func() int {
			if l := s.conns.Load(); l != nil {
				return l.open()
			}
			return 0
		})
	}
	go s.mcpSess.sweepEvery(s.base.Done())
	return s, nil
}

// Handler returns the HTTP handler: /mcp, /v1/chat/completions,
// /v1/models, /healthz, /metrics and /ui/, behind the Host, Origin, token,
// body size and rate checks.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves HTTP on ln until ctx ends, then shuts down: running searches
// are cancelled (each request still gets the best answer found so far) and
// Serve waits for their responses, up to the configured shutdown timeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          stdLogFor(s.log),
	}
	if max := s.maxConnections(); max > 0 {
		lim := newConnLimiter(ln, max, s.handler,
			func() { s.metrics.rejected.WithLabelValues("connections").Inc() }, s.metrics.idleClosed.Inc)
		hs.ConnState = lim.connState
		ln = lim
		s.conns.Store(lim)
		defer lim.wait()
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	s.logShutdown(context.Cause(ctx))
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// Cancel the searches first: handlers answer with the best answer so
	// far, then the HTTP server drains.
	s.cancelBase()
	s.stream.CloseSessions(sctx)
	err := hs.Shutdown(sctx)
	if err != nil {
		// Requests still running past the timeout lose their
		// connections: a handler blocked writing to a client that stopped
		// reading would hold its search, and Close, for ever.
		_ = hs.Close()
	}
	<-errc
	s.Close()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}

// fdReserve is the file descriptors kept for what is not a connection:
// trace files, plugin and sandbox pipes, LLM and MCP server connections.
const fdReserve = 256

// maxConnections is server.max_connections (0: no cap), lowered to fit
// the process's limit on open files with fdReserve to spare: a cap above
// it would protect nothing.
func (s *Server) maxConnections() int {
	n := s.cfg.MaxConnections
	if lim := fdLimit(); n > 0 && lim > 0 && uint64(n)+fdReserve > lim {
		fit := max(int(lim)-fdReserve, int(lim)/2)
		s.log.Warn().Int("max_connections", n).Uint64("open_files_limit", lim).Int("using", fit).
			Msg("server.max_connections is above what the open files limit (ulimit -n) leaves: lowered; raise the limit to allow more")
		n = fit
	}
	return n
}

// ServeStdio serves MCP over in and out (newline-delimited JSON-RPC) until
// in ends or ctx is cancelled; running searches are then cancelled. Nothing
// else may write to out.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	t := newStdioTransport(in, out, s.cfg.MaxBodyBytes)
	t.samples = s.sampleWatch
	t.log = s.log
	ss := mcpserver.NewStdioServer(s.mcp)
	ss.SetErrorLogger(stdLogFor(s.log))
	mcpserver.WithWorkerPoolSize(32)(ss)
	ss.SetContextFunc(func(ctx context.Context) context.Context {
		ctx = context.WithValue(ctx, transportKey{}, transportStdio)
		return context.WithValue(ctx, stdioKey{}, t)
	})
	// The searches a shutdown cancels are counted before they are: mcp-go
	// cancels the requests in flight, and waits for them, before Listen
	// returns, so a count taken then was always 0. The caller's
	// cancellation reaches the requests through logShutdown, and the end
	// of stdin is logged as the reader meets it (onEOF).
	outer := ctx
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stopOuter := context.AfterFunc(outer, func() {
		s.logShutdown(context.Cause(outer))
		cancel()
	})
	defer stopOuter()
	stop := context.AfterFunc(s.base, cancel)
	defer stop()
	t.onEOF = func() { s.logShutdown(errStdinClosed) }
	err := ss.Listen(ctx, t.reader(), t.writer())
	switch {
	case outer.Err() != nil:
		s.logShutdown(context.Cause(outer))
	case err == nil:
		s.logShutdown(errStdinClosed)
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// errStdinClosed is why a stdio server stops when its client closes
// stdin.
var errStdinClosed = errors.New("the client closed stdin")

// logShutdown logs, once, that the server begins to shut down, why, and
// how many searches that cancels: the signal, when why names one (an error
// with a Signal method, as `ponder serve`'s context cause has), else why
// itself. Without it the log of a stopped server said only that searches
// finished cancelled, then that it stopped.
func (s *Server) logShutdown(why error) {
	s.shutdownOnce.Do(func() {
		s.runMu.Lock()
		n := s.runN
		s.runMu.Unlock()
		ev := s.log.Info()
		var sig interface{ Signal() os.Signal }
		switch {
		case errors.As(why, &sig):
			ev = ev.Str("signal", signalName(sig.Signal()))
		case why != nil:
			ev = ev.Str("reason", why.Error())
		}
		ev.Int("runs_cancelled", n).Msg("shutting down")
	})
}

// signalName is a signal's conventional name (SIGTERM), which operators
// grep for, rather than Go's description ("terminated").
func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// Close cancels every running search and waits for them to return.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancelBase()
		s.waitIdle()
		s.sess.Close()
	})
	return nil
}

// Done is closed when the server begins shutting down (for the trace
// viewer's event streams).
func (s *Server) Done() <-chan struct{} { return s.base.Done() }

// detach returns a context that carries ctx's values and ends with ctx or
// with the server.
func (s *Server) detach(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.base, cancel)
	return ctx, func() { stop(); cancel() }
}

type transportKind string

const (
	transportHTTP  transportKind = "http"
	transportStdio transportKind = "stdio"
)

type transportKey struct{}

func transportOf(ctx context.Context) transportKind {
	if t, ok := ctx.Value(transportKey{}).(transportKind); ok {
		return t
	}
	return "inprocess"
}
