// Package mcpclient bridges the tools of external MCP servers into Ponder:
// each server in config.Tools.MCPServers is reached over stdio (a command
// Ponder starts) or streamable HTTP (a URL, with headers or a bearer token),
// its tools are listed, and each becomes a core.Tool named "server.tool".
//
//	b, err := mcpclient.New(ctx, cfg.Tools.MCPServers, &mcpclient.Options{Logger: log})
//	// err lists the servers that could not be reached; b serves the others
//	defer b.Close()
//	for _, t := range b.Tools() { reg.Register(t, nil) }
//
// Every request has the server's timeout (default 30s), so a server that
// hangs gives an error, not a hang. A connection that breaks (the process
// died, the HTTP session ended) or that stopped answering is replaced on
// the next call; a call that failed on a broken connection is retried once
// on the new one when the tool says it is read-only or idempotent. A stdio
// server gets a minimal environment (PATH, HOME, LANG and its configured
// env), not Ponder's, and its whole process group is killed on close.
package mcpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"

	"github.com/ponder-rlm/ponder/config"
	"github.com/ponder-rlm/ponder/core"
	"github.com/ponder-rlm/ponder/internal/text"
	"github.com/ponder-rlm/ponder/tools/reap"
)

// DefaultTimeout bounds a request to a server whose config sets none.
const DefaultTimeout = 30 * time.Second

// DefaultMaxMessage bounds one message from a server whose bridge sets no
// MaxMessageBytes.
const DefaultMaxMessage = 16 << 20

// Options configure a Bridge. The zero value is valid.
type Options struct {
	Logger zerolog.Logger
	// ClientVersion is sent to servers in clientInfo (default "dev").
	ClientVersion string
	// MaxMessageBytes bounds one message from a server (a line on
	// stdio, a response body over HTTP; default 16 MiB; the setting
	// tools.mcp_max_message_bytes). mcp-go holds a
	// message whole before Ponder sees it, so a bigger one closes the
	// connection (the call fails saying so) rather than growing Ponder's
	// memory with whatever a server sends.
	MaxMessageBytes int
}

// ErrUnavailable is wrapped when a server cannot be reached.
var ErrUnavailable = errors.New("mcp server unavailable")

// Validate checks server configurations, naming the setting to change.
func Validate(servers []config.MCPServer) error {
	var errs []error
	seen := map[string]bool{}
	for i, s := range servers {
		at := fmt.Sprintf("tools.mcp_servers[%d]", i)
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("%s.name is empty: name the server (its tools are called NAME.tool)", at))
		case strings.ContainsAny(s.Name, ". \t/"):
			errs = append(errs, fmt.Errorf("%s.name %q: use letters, digits, - and _ only (a dot separates server and tool)", at, s.Name))
		case seen[s.Name]:
			errs = append(errs, fmt.Errorf("%s.name %q is used twice", at, s.Name))
		}
		seen[s.Name] = true
		switch {
		case s.Command == "" && s.URL == "":
			errs = append(errs, fmt.Errorf("%s (%s): set command (stdio) or url (streamable HTTP)", at, s.Name))
		case s.Command != "" && s.URL != "":
			errs = append(errs, fmt.Errorf("%s (%s): set command or url, not both", at, s.Name))
		case s.URL != "":
			u, err := url.Parse(s.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("%s.url %q: want an http(s) URL such as http://127.0.0.1:3001/mcp", at, s.URL))
			}
		}
		if s.Command == "" && (len(s.Args) > 0 || len(s.Env) > 0) {
			errs = append(errs, fmt.Errorf("%s (%s): args and env only apply to a command", at, s.Name))
		}
		if s.URL == "" && (len(s.Headers) > 0 || s.Bearer != "") {
			errs = append(errs, fmt.Errorf("%s (%s): headers and bearer only apply to a url", at, s.Name))
		}
		if s.Timeout < 0 {
			errs = append(errs, fmt.Errorf("%s.timeout: want a positive duration, got %s", at, s.Timeout))
		}
	}
	return errors.Join(errs...)
}

// Bridge holds the connections to the configured servers.
type Bridge struct {
	servers []*server
	log     zerolog.Logger
}

// SingleAttempt makes each server's first connection attempt its last
// while it fails: a server that could not be reached keeps that error
// instead of being tried again after its backoff. One-shot commands
// (`ponder tools list`) use it so that a failing server is started, and
// warned about, once per command: listing connects every server, then
// asks for their tools, and a server that failed fast was started again
// when a slower one's timeout outlasted its 1s backoff. Long-running
// processes (serve) keep retrying, so a server that comes back is used.
func (b *Bridge) SingleAttempt() {
	for _, s := range b.servers {
		s.mu.Lock()
		s.single = true
		s.mu.Unlock()
	}
}

// New validates the configurations and returns a bridge that connects to
// a server when one of its tools is first looked up (Tool, Specs) or when
// Connect is called. It fails only on an invalid configuration.
func New(servers []config.MCPServer, opts *Options) (*Bridge, error) {
	if err := Validate(servers); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ClientVersion == "" {
		o.ClientVersion = "dev"
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessage
	}
	b := &Bridge{log: o.Logger}
	for _, cfg := range servers {
		t := cfg.Timeout
		if t <= 0 {
			t = DefaultTimeout
		}
		b.servers = append(b.servers, &server{cfg: cfg, timeout: t, log: o.Logger.With().Str("mcp_server", cfg.Name).Logger(),
			version: o.ClientVersion, maxMessage: o.MaxMessageBytes})
	}
	return b, nil
}

// Connect connects to every server that is not connected, concurrently.
// The error joins one error per server that could not be reached; the
// others serve their tools.
func (b *Bridge) Connect(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(b.servers))
	for i, s := range b.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.conn(ctx); err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Servers names the configured servers.
func (b *Bridge) Servers() []string {
	out := make([]string, len(b.servers))
	for i, s := range b.servers {
		out[i] = s.cfg.Name
	}
	return out
}

// Tools returns a tool for each tool of each connected server, named
// "server.tool", sorted by name.
func (b *Bridge) Tools() []core.Tool {
	var out []core.Tool
	for _, s := range b.servers {
		for _, t := range s.list() {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec().Name < out[j].Spec().Name })
	return out
}

var _ core.Toolbox = (*Bridge)(nil)

// Tool implements core.Toolbox: "server.tool", connecting to the server
// first when it is not connected yet. When the server cannot be reached,
// any of its names gives a tool whose Call returns the connection error.
func (b *Bridge) Tool(name string) (core.Tool, bool) {
	srv, tool, ok := strings.Cut(name, ".")
	if !ok {
		return nil, false
	}
	for _, s := range b.servers {
		if s.cfg.Name != srv {
			continue
		}
		if len(s.list()) == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
			_, err := s.conn(ctx)
			cancel()
			if err != nil {
				// Whether the server has this tool is unknown: a stand-in
				// says why it cannot be called, not "unknown tool".
				return &unavailableTool{name: name, err: err}, true
			}
		}
		for _, t := range s.list() {
			if t.tool.Name == tool {
				return t, true
			}
		}
	}
	return nil, false
}

// Specs implements core.Toolbox: the tools of every server, connecting to
// those not connected yet (a server that cannot be reached offers none).
func (b *Bridge) Specs() []core.ToolSpec {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	_ = b.Connect(ctx)
	var out []core.ToolSpec
	for _, t := range b.Tools() {
		out = append(out, t.Spec())
	}
	return out
}

// Close disconnects from every server and stops the processes it started.
func (b *Bridge) Close() error {
	var wg sync.WaitGroup
	for _, s := range b.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.close()
		}()
	}
	wg.Wait()
	return nil
}

func spec(server string, t mcp.Tool) core.ToolSpec {
	schema, err := json.Marshal(t.InputSchema)
	if err != nil || t.InputSchema.Type == "" {
		schema = json.RawMessage(`{"type":"object"}`)
	}
	desc := t.Description
	if desc == "" {
		desc = t.Title
	}
	return core.ToolSpec{Name: server + "." + t.Name, Description: desc, Schema: schema}
}

// server is one configured server and its current connection.
type server struct {
	cfg        config.MCPServer
	timeout    time.Duration
	log        zerolog.Logger
	version    string
	maxMessage int

	dial    sync.Mutex // one connection attempt at a time
	mu      sync.Mutex // guards the fields below
	cur     *conn
	tools   []*Tool // of the last listing
	closed  bool
	lastErr error     // of the last connection attempt, when it failed
	fails   int       // connection attempts failed in a row
	retryAt time.Time // no new attempt before, while lastErr is set
	single  bool      // no new attempt at all once one failed (SingleAttempt)
}

// conn is one live connection.
type conn struct {
	client *client.Client
	cmd    *exec.Cmd     // stdio only: the server's process, which the conn started
	waitc  chan struct{} // closed when cmd has been waited for
	stdout *os.File      // our end of the server's stdout, closed by kill
	stdinW *os.File      // our end of its stdin, closed by the transport
	limit  *limiter
	stderr *tail
	// suspect is set when a request timed out: the next call pings first.
	mu      sync.Mutex
	suspect bool
	broken  bool
}

func (c *conn) markSuspect() { c.mu.Lock(); c.suspect = true; c.mu.Unlock() }
func (c *conn) markBroken()  { c.mu.Lock(); c.broken = true; c.mu.Unlock() }

func (c *conn) state() (suspect, broken bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.suspect, c.broken
}

// exited reports whether a stdio server's process has ended.
func (c *conn) exited() bool {
	if c.waitc == nil {
		return false
	}
	select {
	case <-c.waitc:
		return true
	default:
		return false
	}
}

// kill closes the client and stops a stdio server: closing its stdin asks
// it to exit (graceful), and its process group is killed when it has not
// within 2s, or at once otherwise. It returns once the process has been
// waited for.
func (c *conn) kill(graceful bool) {
	if c.cmd != nil && !graceful {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	}
	done := make(chan struct{})
	go func() {
		_ = c.client.Close() // stdio: closes the server's stdin
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		if c.cmd != nil {
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		}
		<-done
	}
	if c.cmd == nil {
		return
	}
	select {
	case <-c.waitc:
	case <-time.After(2 * time.Second):
	}
	// Children the server left behind share its process group. Those
	// whose parent died before them are orphans, Ponder's to wait for
	// when it is PID 1 or a subreaper (reap.Group).
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.waitc
	reap.Group(c.cmd.Process.Pid)
	// The transport's reader may still wait on a pipe a grandchild held.
	_ = c.stdout.Close()
}

// startProcess starts a stdio server in its own process group, with pipes
// for stdin and stdout that the conn owns (exec's own pipes would be
// closed by Wait, losing what the server wrote last), and waits for it in
// the background.
func (c *conn) startProcess(cfg config.MCPServer) error {
	var env []string
	for k, v := range cfg.Env {
		env = append(env, k+"="+v)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start %s: pipe: %w", cfg.Command, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return fmt.Errorf("start %s: pipe: %w", cfg.Command, err)
	}
	cmd := exec.Command(cfg.Command, cfg.Args...)
	cmd.Env = childEnv(env)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, c.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return fmt.Errorf("start %s: %w", cfg.Command, err)
	}
	c.cmd, c.stdinW, c.stdout, c.waitc = cmd, inW, outR, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(c.waitc)
	}()
	return nil
}

// limiter is a connection's bound on one message from its server. It also
// keeps the start of the last line a stdio server wrote that cannot be a
// JSON-RPC message (a banner, a log line, npx asking "Ok to proceed?"),
// which mcp-go skips without a word: a server that wrote only such lines
// would otherwise read as one that said nothing.
type limiter struct {
	max  int
	over atomic.Bool

	mu     sync.Mutex
	stray  string
	nStray int // how many such lines so far
}

// strays is how many lines the server wrote that are not JSON-RPC.
func (l *limiter) strays() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nStray
}

// strayNote says what the server wrote that is not JSON-RPC, for an error
// about a missing answer; "" when it wrote no such line after the first
// since lines.
func (l *limiter) strayNote(since int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nStray <= since {
		return ""
	}
	return fmt.Sprintf(" (the server wrote on stdout what is not JSON-RPC, which is skipped: %q; a stdio server must write only MCP messages there, and its logs on stderr)", l.stray)
}

// strayHead is how much of a stray line an error quotes.
const strayHead = 120

func (l *limiter) exceeded() bool { return l.over.Load() }

func (l *limiter) err() error {
	return fmt.Errorf("the server sent a message of more than %d bytes, the limit on one MCP message (tools.mcp_max_message_bytes); the connection was closed", l.max)
}

// lineLimit passes a stdio server's output on, ending it (io.EOF, which
// mcp-go takes for the server closing it) once a line passes the limit:
// mcp-go's reader would otherwise hold the line whole, however long.
type lineLimit struct {
	r    io.Reader
	l    *limiter
	n    int    // bytes since the last newline
	head []byte // the start of the current line, up to strayHead bytes
}

func (r *lineLimit) Read(p []byte) (int, error) {
	if r.l.exceeded() {
		return 0, io.EOF
	}
	n, err := r.r.Read(p)
	for rest := p[:n]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		seg := rest
		if i >= 0 {
			seg = rest[:i]
		}
		if room := strayHead - len(r.head); room > 0 {
			r.head = append(r.head, seg[:min(room, len(seg))]...)
		}
		if i < 0 {
			r.n += len(seg)
			break
		}
		r.endLine(r.n+len(seg) <= strayHead)
		r.n, rest = 0, rest[i+1:]
	}
	if r.n > r.l.max {
		r.l.over.Store(true)
		return 0, io.EOF
	}
	return n, err
}

// endLine notes a line that cannot be a JSON-RPC message: not blank, and
// not an object (or a batch), or not JSON at all when head holds it whole.
func (r *lineLimit) endLine(whole bool) {
	h := bytes.TrimLeft(r.head, " \t\r")
	if len(h) > 0 && (h[0] != '{' && h[0] != '[' || whole && !json.Valid(h)) {
		r.l.mu.Lock()
		r.l.stray = strings.ToValidUTF8(strings.TrimRight(string(h), "\r"), "?")
		r.l.nStray++
		r.l.mu.Unlock()
	}
	r.head = r.head[:0]
}

// limitedBodies bounds each HTTP response body from a server (a JSON
// answer, or the SSE stream of one request's answer), which mcp-go reads
// whole.
type limitedBodies struct {
	base http.RoundTripper
	l    *limiter
}

func (t limitedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil {
		resp.Body = &limitedBody{ReadCloser: resp.Body, l: t.l}
	}
	return resp, err
}

type limitedBody struct {
	io.ReadCloser
	l *limiter
	n int
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += n
	if b.n > b.l.max {
		b.l.over.Store(true)
		return 0, b.l.err()
	}
	return n, err
}

// setTools keeps the tools of a new listing, reusing the Tool values of
// tools that did not change. Callers hold s.mu.
func (s *server) setTools(listed []mcp.Tool) {
	old := map[string]*Tool{}
	for _, t := range s.tools {
		old[t.tool.Name] = t
	}
	s.tools = s.tools[:0:0]
	seen := map[string]bool{}
	for _, lt := range listed {
		if why := badToolName(lt.Name, seen); why != "" {
			s.log.Warn().Str("tool", strconv.Quote(lt.Name)).Msg("mcp server tool skipped: " + why)
			continue
		}
		seen[lt.Name] = true
		sp := spec(s.cfg.Name, lt)
		if t, ok := old[lt.Name]; ok && string(t.spec.Schema) == string(sp.Schema) && t.spec.Description == sp.Description {
			t.tool = lt
			s.tools = append(s.tools, t)
			continue
		}
		s.tools = append(s.tools, &Tool{srv: s, tool: lt, spec: sp})
	}
}

// badToolName says why a listed tool cannot be offered: no name, a name
// with control characters (they would reach terminals and prompts), one
// that is shown as another name (a bidi override such as U+202E, which
// `tools list` removes, or bytes that are not UTF-8: the name shown could
// not be called, and could read as another tool's), or one listed before
// (calls could not tell the two apart).
func badToolName(name string, seen map[string]bool) string {
	switch {
	case name == "":
		return "it has no name"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "its name has control characters"
	case text.Terminal(name) != name:
		return "its name has bidi controls or bytes that are not UTF-8, so it would be shown as another name"
	case seen[name]:
		return "the server lists its name twice; the first is kept"
	}
	return ""
}

func (s *server) list() []*Tool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Tool(nil), s.tools...)
}

func (s *server) close() {
	s.mu.Lock()
	c := s.cur
	s.cur, s.closed = nil, true
	s.mu.Unlock()
	if c != nil {
		c.kill(true)
	}
}

// conn returns a live connection, replacing a broken or unresponsive one.
func (s *server) conn(ctx context.Context) (*conn, error) {
	s.mu.Lock()
	c, closed := s.cur, s.closed
	s.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: %s: the bridge is closed", ErrUnavailable, s.cfg.Name)
	}
	if c != nil {
		suspect, broken := c.state()
		if !broken && c.exited() {
			broken = true
		}
		if !broken && suspect {
			pctx, cancel := context.WithTimeout(ctx, min(s.timeout, 5*time.Second))
			err := c.client.Ping(pctx)
			cancel()
			if err == nil {
				c.mu.Lock()
				c.suspect = false
				c.mu.Unlock()
			} else {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				s.log.Warn().Err(s.scrub(err)).Msg("mcp server stopped answering; reconnecting")
				broken = true
			}
		}
		if !broken {
			return c, nil
		}
		s.drop(c)
	}
	return s.connect(ctx)
}

// drop forgets c and stops it in the background of the caller's call.
func (s *server) drop(c *conn) {
	s.mu.Lock()
	if s.cur == c {
		s.cur = nil
	}
	s.mu.Unlock()
	c.kill(false)
}

func (s *server) connect(ctx context.Context) (*conn, error) {
	s.dial.Lock()
	defer s.dial.Unlock()
	s.mu.Lock()
	if s.cur != nil {
		c := s.cur
		s.mu.Unlock()
		return c, nil
	}
	// Back off after a failure, so a dead server is not restarted on every
	// call of a busy search, and one that hangs does not cost a timeout on
	// every step of a search that offers its tools.
	if s.lastErr != nil && (s.single || time.Now().Before(s.retryAt)) {
		err := s.lastErr
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Unlock()
	start := time.Now()
	c, tools, err := s.open(ctx)
	err = s.scrub(err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.fails++
		s.retryAt = time.Now().Add(backoff(time.Since(start), s.fails))
		s.lastErr = fmt.Errorf("%w: %s: %v", ErrUnavailable, s.cfg.Name, err)
		s.log.Warn().Err(err).Msg("mcp server connect")
		return nil, s.lastErr
	}
	if s.closed {
		go c.kill(true)
		return nil, fmt.Errorf("%w: %s: the bridge is closed", ErrUnavailable, s.cfg.Name)
	}
	s.lastErr, s.fails = nil, 0
	s.cur = c
	s.setTools(tools)
	s.log.Debug().Int("tools", len(s.tools)).Msg("mcp server connected")
	return c, nil
}

// maxBackoff bounds the wait between connection attempts to a server
// that keeps failing.
const maxBackoff = 5 * time.Minute

// backoff is the wait after the fails-th failed connection attempt in a
// row, which took took: at least as long as the attempt (a server that
// hangs until the timeout is not waited on most of the time), at least
// 1s, doubling with each failure, at most maxBackoff.
func backoff(took time.Duration, fails int) time.Duration {
	d := max(took, time.Second) << min(fails-1, 10)
	return min(d, maxBackoff)
}

// open starts a connection: transport, initialize, tools/list.
func (s *server) open(ctx context.Context) (*conn, []mcp.Tool, error) {
	c := &conn{stderr: &tail{max: 4096}, limit: &limiter{max: s.maxMessage}}
	quiet := slog.New(slog.DiscardHandler)
	if s.cfg.Command != "" {
		if err := c.startProcess(s.cfg); err != nil {
			return nil, nil, err
		}
		// mcp-go reads a whole line before it parses it, with no limit:
		// the server's stdout reaches it through the limiter.
		tr := transport.NewIO(&lineLimit{r: c.stdout, l: c.limit}, c.stdinW, nil)
		transport.WithCommandLogger(quiet)(tr)
		if err := tr.Start(context.WithoutCancel(ctx)); err != nil {
			c.kill(false)
			return nil, nil, fmt.Errorf("start %s: %w", s.cfg.Command, err)
		}
		c.client = client.NewClient(tr, client.WithDiscoverTimeout(discoverProbe(s.timeout)))
	} else {
		headers := map[string]string{}
		for k, v := range s.cfg.Headers {
			headers[k] = v
		}
		if s.cfg.Bearer != "" {
			headers["Authorization"] = "Bearer " + s.cfg.Bearer
		}
		hc := &http.Client{CheckRedirect: sameOrigin, Transport: limitedBodies{base: http.DefaultTransport, l: c.limit}}
		tr, err := transport.NewStreamableHTTP(s.cfg.URL, transport.WithHTTPHeaders(headers), transport.WithHTTPLogger(quiet),
			transport.WithHTTPBasicClient(hc))
		if err != nil {
			return nil, nil, fmt.Errorf("url: %w", err)
		}
		c.client = client.NewClient(tr, client.WithDiscoverTimeout(discoverProbe(s.timeout)))
		c.client.OnConnectionLost(func(error) { c.markBroken() })
	}
	fail := func(what string, err error) (*conn, []mcp.Tool, error) {
		c.kill(false)
		if c.limit.exceeded() {
			err = c.limit.err()
		}
		if st := c.cmd; st != nil && st.ProcessState != nil {
			// Killed by us (SIGKILL) it did not end on its own.
			if ws, ok := st.ProcessState.Sys().(syscall.WaitStatus); ok && !(ws.Signaled() && ws.Signal() == syscall.SIGKILL) {
				err = fmt.Errorf("%w (the server exited: %s)", err, st.ProcessState)
			}
		}
		if t := strings.TrimSpace(c.stderr.String()); t != "" {
			err = fmt.Errorf("%w (stderr: %s)", err, lastLine(t))
		}
		if note := c.limit.strayNote(0); note != "" {
			err = fmt.Errorf("%w%s", err, note)
		}
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := c.client.Start(cctx); err != nil {
		return fail("start", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "ponder", Version: s.version}
	if _, err := c.client.Initialize(cctx, init); err != nil {
		switch {
		case errors.Is(err, transport.ErrAuthorizationRequired), errors.Is(err, transport.ErrOAuthAuthorizationRequired):
			err = fmt.Errorf("the server answers 401 Unauthorized: set its bearer token or headers (%w)", err)
		case errors.Is(err, transport.ErrLegacySSEServer):
			err = fmt.Errorf("the server answers initialize with an HTTP 4xx (404, 405): check the url's path; only the streamable HTTP transport is supported, not the old HTTP+SSE one (%w)", err)
		}
		return fail("initialize", explain(err, cctx, s.timeout))
	}
	res, err := c.client.ListTools(cctx, mcp.ListToolsRequest{})
	if err != nil {
		return fail("list tools", explain(err, cctx, s.timeout))
	}
	var tools []mcp.Tool
	for _, t := range res.Tools {
		if len(s.cfg.Tools) == 0 || slices.Contains(s.cfg.Tools, t.Name) {
			tools = append(tools, t)
		}
	}
	return c, tools, nil
}

// sameOrigin follows redirects within the configured URL's origin only:
// net/http drops Authorization on a redirect to another host but would
// send the configured headers (an API key) there, and over plain http
// after https.
func sameOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if from := via[0].URL; req.URL.Scheme != from.Scheme || req.URL.Host != from.Host {
		return fmt.Errorf("the server redirects to %s, another origin, which is not followed (the headers are for %s://%s): set the url to where it should go",
			req.URL.Redacted(), from.Scheme, from.Host)
	}
	return nil
}

// scrub takes the configured URL of an HTTP server out of err's text,
// leaving its scheme and host: Go's and mcp-go's errors quote the whole URL
// (hiding only a password), and a key in its query or path
// (https://mcp.example.com/mcp?api_key=..., a per-user path) would go into
// the logs, the tool's error that a policy reads (and so to the LLM
// endpoint) and the trace. The server's name in the message says which.
func (s *server) scrub(err error) error {
	if err == nil || s.cfg.URL == "" {
		return err
	}
	u, perr := url.Parse(s.cfg.URL)
	if perr != nil || u.Host == "" {
		return err
	}
	safe := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		safe += "/…"
	}
	msg := err.Error()
	for _, form := range []string{s.cfg.URL, u.String(), u.Redacted()} {
		if form != safe {
			msg = strings.ReplaceAll(msg, form, safe)
		}
	}
	if msg == err.Error() {
		return err
	}
	return scrubbed{msg: msg, err: err}
}

// scrubbed is an error with another text, for errors.Is and errors.As.
type scrubbed struct {
	msg string
	err error
}

func (e scrubbed) Error() string { return e.msg }
func (e scrubbed) Unwrap() error { return e.err }

// discoverProbe bounds the server/discover request that mcp-go sends
// before initialize to learn whether a server speaks protocol 2026-07-28: a
// server that answers nothing to a method it does not know (JSON-RPC wants
// -32601) is then spoken to the old way. Half the server's timeout at most,
// so that initialize keeps the other half (with all of it, such a server
// failed with "initialize: no answer").
func discoverProbe(timeout time.Duration) time.Duration { return min(timeout/2, 5*time.Second) }

func explain(err error, ctx context.Context, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("no answer within %s: %w", timeout, err)
	}
	return err
}

// childEnv is the environment of a stdio server: the basics from Ponder's
// environment, never its secrets, plus the configured variables.
func childEnv(extra []string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// Tool is one tool of an MCP server.
type Tool struct {
	srv  *server
	tool mcp.Tool
	spec core.ToolSpec
}

var _ core.Tool = (*Tool)(nil)

// Spec implements core.Tool.
func (t *Tool) Spec() core.ToolSpec { return t.spec }

// retryable reports whether a call may run twice: the server says the tool
// reads only or is idempotent.
func (t *Tool) retryable() bool {
	a := t.tool.Annotations
	return (a.ReadOnlyHint != nil && *a.ReadOnlyHint) || (a.IdempotentHint != nil && *a.IdempotentHint)
}

// unavailableTool stands in for a tool of a server that could not be
// reached: calling it gives the reason.
type unavailableTool struct {
	name string
	err  error
}

func (u *unavailableTool) Spec() core.ToolSpec {
	return core.ToolSpec{Name: u.name, Description: "UNAVAILABLE: " + u.err.Error(), Schema: json.RawMessage(`{"type":"object"}`)}
}

func (u *unavailableTool) Call(context.Context, json.RawMessage) (core.ToolResult, error) {
	return core.ToolResult{}, u.err
}

// Call implements core.Tool. The server's error result (isError) and its
// JSON-RPC errors (bad arguments) are results with IsError; a server that
// is unreachable, breaks or does not answer in time is an error.
func (t *Tool) Call(ctx context.Context, args json.RawMessage) (core.ToolResult, error) {
	var argv any = map[string]any{}
	if len(args) > 0 {
		if err := json.Unmarshal(args, &argv); err != nil {
			return core.ToolResult{Text: t.spec.Name + ": arguments are not JSON: " + err.Error(), IsError: true}, nil
		}
	}
	for attempt := 0; ; attempt++ {
		c, err := t.srv.conn(ctx)
		if err != nil {
			return core.ToolResult{}, err
		}
		req := mcp.CallToolRequest{}
		req.Params.Name = t.tool.Name
		req.Params.Arguments = argv
		cctx, cancel := context.WithTimeout(ctx, t.srv.timeout)
		strays := c.limit.strays()
		res, err := c.client.CallTool(cctx, req)
		timedOut := cctx.Err() == context.DeadlineExceeded
		cancel()
		if err == nil {
			return convert(res), nil
		}
		if ctx.Err() != nil {
			return core.ToolResult{}, ctx.Err()
		}
		if c.limit.exceeded() {
			// Not retried: the server would send it again. Its process is
			// stopped now, not at the next call: it may be writing on.
			c.markBroken()
			t.srv.drop(c)
			return core.ToolResult{}, fmt.Errorf("%w: %s: the answer to %s: %v", ErrUnavailable, t.srv.cfg.Name, t.tool.Name, c.limit.err())
		}
		if timedOut {
			c.markSuspect()
			return core.ToolResult{}, fmt.Errorf("%w: %s: no answer within %s%s", ErrUnavailable, t.srv.cfg.Name, t.srv.timeout, c.limit.strayNote(strays))
		}
		if t.srv.cfg.URL != "" && sessionLost(err) && attempt == 0 {
			// The server no longer knows the session (it restarted): it
			// rejected the call without running it, so start a new session
			// and send it again.
			t.srv.log.Info().Err(t.srv.scrub(err)).Msg("mcp session lost; reconnecting")
			c.markBroken()
			continue
		}
		var te *transport.Error
		if !errors.As(err, &te) && !c.exited() {
			// The server answered with a JSON-RPC error: the call ran.
			return core.ToolResult{Text: t.spec.Name + ": " + err.Error(), IsError: true}, nil
		}
		c.markBroken()
		cause := t.srv.scrub(err)
		if st := strings.TrimSpace(c.stderr.String()); st != "" {
			cause = fmt.Errorf("%w (stderr: %s)", err, lastLine(st))
		}
		t.srv.log.Warn().Err(cause).Str("tool", t.tool.Name).Msg("mcp connection broke")
		if attempt > 0 || !t.retryable() {
			return core.ToolResult{}, fmt.Errorf("%w: %s: connection lost during %s (it reconnects on the next call): %v",
				ErrUnavailable, t.srv.cfg.Name, t.tool.Name, cause)
		}
	}
}

// sessionLost recognises a streamable HTTP server's answer to a request
// in a session it does not know: 404 (the spec), or 400 with a JSON-RPC
// error about the session id (the TypeScript SDK's servers).
func sessionLost(err error) bool {
	if errors.Is(err, transport.ErrSessionTerminated) {
		return true
	}
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "session") &&
		(strings.Contains(m, "no valid") || strings.Contains(m, "invalid") || strings.Contains(m, "not found") ||
			strings.Contains(m, "unknown") || strings.Contains(m, "expired"))
}

// convert renders an MCP result as text: text blocks as they are, other
// content as a bracketed note. Structured content is kept.
func convert(res *mcp.CallToolResult) core.ToolResult {
	var parts []string
	for _, c := range res.Content {
		switch v := c.(type) {
		case mcp.TextContent:
			parts = append(parts, v.Text)
		case *mcp.TextContent:
			parts = append(parts, v.Text)
		case mcp.ImageContent:
			parts = append(parts, fmt.Sprintf("[image %s, %d bytes base64]", v.MIMEType, len(v.Data)))
		case *mcp.ImageContent:
			parts = append(parts, fmt.Sprintf("[image %s, %d bytes base64]", v.MIMEType, len(v.Data)))
		case mcp.AudioContent:
			parts = append(parts, fmt.Sprintf("[audio %s, %d bytes base64]", v.MIMEType, len(v.Data)))
		case mcp.ResourceLink:
			parts = append(parts, fmt.Sprintf("[resource %s: %s]", v.Name, v.URI))
		case *mcp.ResourceLink:
			parts = append(parts, fmt.Sprintf("[resource %s: %s]", v.Name, v.URI))
		case mcp.EmbeddedResource:
			parts = append(parts, embedded(v.Resource))
		case *mcp.EmbeddedResource:
			parts = append(parts, embedded(v.Resource))
		default:
			b, _ := json.Marshal(c)
			parts = append(parts, string(b))
		}
	}
	out := core.ToolResult{Text: strings.Join(parts, "\n"), IsError: res.IsError}
	if res.StructuredContent != nil {
		out.Structured = res.StructuredContent
		if out.Text == "" {
			b, _ := json.Marshal(res.StructuredContent)
			out.Text = string(b)
		}
	}
	return out
}

func embedded(r mcp.ResourceContents) string {
	switch v := r.(type) {
	case mcp.TextResourceContents:
		return fmt.Sprintf("[resource %s]\n%s", v.URI, v.Text)
	case *mcp.TextResourceContents:
		return fmt.Sprintf("[resource %s]\n%s", v.URI, v.Text)
	case mcp.BlobResourceContents:
		return fmt.Sprintf("[resource %s, %s, %d bytes base64]", v.URI, v.MIMEType, len(v.Blob))
	case *mcp.BlobResourceContents:
		return fmt.Sprintf("[resource %s, %s, %d bytes base64]", v.URI, v.MIMEType, len(v.Blob))
	}
	return "[resource]"
}

// tail keeps the last max bytes written (a server's stderr).
type tail struct {
	mu  sync.Mutex
	b   []byte
	max int
}

var _ io.Writer = (*tail)(nil)

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
