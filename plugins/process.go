package plugins

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"github.com/rs/zerolog"
	"google.golang.org/grpc"

	"github.com/ponder-rlm/ponder/sdk"
)

// State is where a plugin process stands.
type State string

// Plugin states.
const (
	StateStopped  State = "stopped"  // installed, not started (lazy start)
	StateRunning  State = "running"  // started and answering
	StateCrashed  State = "crashed"  // exited or was killed; restarted on next use
	StateFailed   State = "failed"   // the last start failed (see Status.Error)
	StateDisabled State = "disabled" // refused for good (bad checksum, protocol)
	StateClosed   State = "closed"   // the manager shut down
)

// Process is one plugin binary, started on demand, watched, restarted
// with backoff after a crash and stopped with the manager.
type Process struct {
	m    Manifest
	opts *Options
	log  zerolog.Logger
	// logs meters what the plugin prints, over all its processes.
	logs *logLimiter
	// installed is set for a plugin loaded from a plugin directory: its
	// manifest is read again before each start, so that a reinstall
	// (`ponder plugins install` while Ponder runs) is picked up.
	installed bool

	mu        sync.Mutex
	exe       exe // what the next start runs
	client    *plugin.Client
	remote    *sdk.Remote
	state     State
	pid       int
	sock      string // the plugin's Unix socket, removed when it stops
	starts    int
	crashes   int // consecutive
	lastCrash time.Time
	startedAt time.Time
	lastErr   error
	stopWatch chan struct{}
	watchDone chan struct{}
	// starting is the start in progress, nil when none: every call that
	// needs the process waits for it, each until its own context ends.
	starting *startAttempt
	// busy counts the calls in flight on the running process;
	// unreported counts the abandoned calls of a plugin that does not say
	// whether they still run.
	busy       int
	unreported int
	// draining are earlier processes of the plugin that get no new calls
	// (a restart fell due while calls were in flight on them): each is
	// stopped when its last call ends.
	draining []*drainingProc
	// checks are the goroutines that look into abandoned calls; watches
	// the health watches, a retired process's included.
	checks  sync.WaitGroup
	watches sync.WaitGroup
	// startRuns are the goroutines that run starts.
	startRuns sync.WaitGroup
}

// startAttempt is a start of the plugin process. It runs on its own,
// bounded by StartTimeout, not by the context of the call that began it:
// were it aborted when that caller gave up, a plugin that takes longer to
// start than its callers wait would be killed and started from scratch
// by every call, and never become ready.
type startAttempt struct {
	done  chan struct{} // closed when the start ended
	abort context.CancelFunc
	// remote and err are set before done is closed: the process started,
	// or why it did not.
	remote *sdk.Remote
	err    error
}

// drainingProc is a process of the plugin retired with calls in flight.
type drainingProc struct {
	client *plugin.Client
	remote *sdk.Remote
	pid    int
	sock   string
	busy   int
	// watched: a check goroutine keeps asking it about its abandoned
	// calls until it is stopped.
	watched bool
}

// MaxAbandoned is how many calls abandoned past AbandonGrace a process may
// hold while it finishes other calls; past it, it is stopped at once.
const MaxAbandoned = 3

// MaxDraining bounds the retired processes of one plugin still finishing
// their calls; retiring one more stops the oldest at once.
const MaxDraining = 2

// Status is a snapshot of a Process for listings.
type Status struct {
	Name     string   `json:"name"`
	Kind     sdk.Kind `json:"kind"`
	Version  string   `json:"version"`
	State    State    `json:"state"`
	PID      int      `json:"pid,omitempty"`
	Starts   int      `json:"starts"`
	Restarts int      `json:"restarts"`
	Dir      string   `json:"dir"`
	Error    string   `json:"error,omitempty"`
}

// exe is the binary a process starts: its manifest's when loaded, a
// reinstalled one's after refreshLocked.
type exe struct {
	binary, sha, version string
	args                 []string
}

func newProcess(m Manifest, opts *Options) *Process {
	return &Process{m: m, opts: opts, log: opts.Logger.With().Str("plugin", m.Name).Logger(), state: StateStopped,
		logs: newLogLimiter(opts.Logger, m.Name),
		exe:  exe{binary: m.Binary, sha: m.SHA256, version: m.Version, args: m.Args}}
}

// refreshLocked reads the manifest of an installed plugin again and adopts
// a reinstalled binary (another sha256) for the next start; p.mu is held.
// A reinstall that changed what the host registered at load (kind,
// parameters, tool spec, shape) cannot be adopted: Ponder must be
// restarted to load it.
func (p *Process) refreshLocked() (changed bool, err error) {
	if !p.installed {
		return false, nil
	}
	m, err := ReadManifest(p.m.Dir)
	if err != nil || (m.SHA256 == p.exe.sha && m.Binary == p.exe.binary) {
		// Removed, unreadable or unchanged: the start says what is wrong.
		return false, nil
	}
	if m.Name != p.m.Name || m.Kind != p.m.Kind || m.Shape != p.m.Shape ||
		!reflect.DeepEqual(m.Params, p.m.Params) || !reflect.DeepEqual(m.Tool, p.m.Tool) {
		return false, fmt.Errorf("plugin %s: reinstalled (version %s) with other parameters or another tool spec than when Ponder loaded it: restart Ponder to use it",
			p.m.Name, m.Version)
	}
	p.exe = exe{binary: m.Binary, sha: m.SHA256, version: m.Version, args: m.Args}
	p.log.Info().Str("version", m.Version).Msg("plugin reinstalled: starting the new binary")
	return true, nil
}

// Manifest returns the plugin's manifest.
func (p *Process) Manifest() Manifest { return p.m }

// Status reports the process's state.
func (p *Process) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{Name: p.m.Name, Kind: p.m.Kind, Version: p.exe.version, State: p.state, Starts: p.starts,
		Restarts: max(0, p.starts-1), Dir: p.m.Dir}
	if p.state == StateRunning {
		s.PID = p.pid
	}
	if p.lastErr != nil && p.state != StateRunning {
		s.Error = p.lastErr.Error()
	}
	return s
}

// backoff is how long to wait after the n-th consecutive crash before the
// next start: the first restart is immediate, then 200 ms doubling up to
// 30 s.
func backoff(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := 200 * time.Millisecond << min(n-2, 8)
	return min(d, 30*time.Second)
}

// Remote returns a connection to the running plugin, starting it (again)
// when needed. Within the backoff after a crash or a failed start it
// fails at once, saying when the next start will be tried, rather than
// holding the caller. A caller that waits for a start returns when its
// ctx ends; the start goes on (see startAttempt).
func (p *Process) Remote(ctx context.Context) (*sdk.Remote, error) {
	return p.get(ctx, false)
}

// acquire is Remote counting a call in flight on the process returned, in
// one step: a process retired in between would get a call it is not
// waited for.
func (p *Process) acquire(ctx context.Context) (*sdk.Remote, error) {
	return p.get(ctx, true)
}

func (p *Process) get(ctx context.Context, count bool) (*sdk.Remote, error) {
	p.mu.Lock()
	for {
		r, st, err := p.remoteLocked()
		if err != nil || r != nil {
			if r != nil && count {
				p.busy++
			}
			p.mu.Unlock()
			return r, err
		}
		// p.mu is not held while waiting: other callers can give up, and
		// Close can stop the start.
		p.mu.Unlock()
		select {
		case <-st.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("plugin %s: gave up waiting for the plugin to start (the start goes on; later calls use it): %w",
				p.m.Name, ctx.Err())
		}
		if st.err != nil {
			return nil, st.err
		}
		p.mu.Lock()
		// Started; unless it crashed, was restarted or closed meanwhile,
		// remoteLocked returns it.
	}
}

// remoteLocked returns the running process, or else the start to wait
// for: the one in progress, or one begun now. p.mu is held.
func (p *Process) remoteLocked() (*sdk.Remote, *startAttempt, error) {
	if p.state == StateClosed {
		return nil, nil, fmt.Errorf("plugin %s: ponder is shutting down", p.m.Name)
	}
	if p.starting != nil {
		return nil, p.starting, nil
	}
	switch p.state {
	case StateDisabled:
		// Refused for good, unless it was reinstalled since.
		if changed, err := p.refreshLocked(); !changed {
			if err != nil {
				p.lastErr = err
			}
			return nil, nil, p.lastErr
		}
		p.crashes = 0
	case StateRunning:
		if !p.client.Exited() {
			return p.remote, nil, nil
		}
		p.noteCrashLocked(p.remote, errors.New("the plugin process exited"))
	}
	if p.crashes > 0 {
		if wait := backoff(p.crashes) - time.Since(p.lastCrash); wait > 0 {
			return nil, nil, fmt.Errorf("plugin %s: %w: %d failures in a row (last: %v); next start in %s",
				p.m.Name, sdk.ErrUnavailable, p.crashes, p.lastErr, wait.Round(time.Millisecond))
		}
	}
	return nil, p.startLocked(), nil
}

// startLocked begins a start of the plugin process and returns it (see
// startAttempt); p.mu is held, and no start is in progress.
func (p *Process) startLocked() *startAttempt {
	st := &startAttempt{done: make(chan struct{})}
	if _, err := p.refreshLocked(); err != nil {
		p.startFailedLocked(st, err, true)
		return st
	}
	// closing ends only when Close stops the start: the handshake is
	// bounded by go-plugin's own StartTimeout, Describe below by
	// StartTimeout.
	closing, abort := context.WithCancel(context.Background())
	st.abort = abort
	p.starting = st
	p.startRuns.Add(1)
	go func(e exe) {
		defer p.startRuns.Done()
		defer abort()
		client, remote, rpc, desc, disable, err := p.launchDescribe(closing, e)
		p.mu.Lock()
		p.starting = nil
		if p.state == StateClosed {
			p.mu.Unlock()
			if client != nil {
				stopStarted(client)
			}
			st.err = fmt.Errorf("plugin %s: ponder is shutting down", p.m.Name)
			close(st.done)
			return
		}
		defer p.mu.Unlock()
		if err != nil {
			p.startFailedLocked(st, err, disable)
			return
		}
		p.startedLocked(client, remote, rpc, desc)
		st.remote = remote
		close(st.done)
	}(p.exe)
	return st
}

// startFailedLocked ends st with err: a failed start counts as a crash
// (backoff) unless disable refuses the plugin for good. p.mu is held.
func (p *Process) startFailedLocked(st *startAttempt, err error, disable bool) {
	p.lastErr = err
	if disable {
		p.state = StateDisabled
	} else {
		p.state = StateFailed
		p.crashes++
		p.lastCrash = time.Now()
	}
	p.log.Warn().Err(err).Msg("plugin did not start")
	st.err = err
	close(st.done)
}

// launchDescribe starts binary e, completes the handshake and checks that
// the plugin is the one its manifest names; p.mu is not held. closing
// ends when Close stops the start. disable: the plugin is refused for
// good (bad checksum, protocol, identity).
func (p *Process) launchDescribe(closing context.Context, e exe) (client *plugin.Client, remote *sdk.Remote, rpc plugin.ClientProtocol,
	desc sdk.Description, disable bool, err error) {
	// go-plugin's SecureConfig hashes the binary right before exec and
	// refuses it on a mismatch (startError names it ErrChecksum).
	client, rpc, err = launch(closing, p.opts, p.m.Name, filepath.Join(p.m.Dir, e.binary), p.m.Dir, e.args, e.sha, p.logs)
	if err != nil {
		return nil, nil, nil, desc, errors.Is(err, ErrChecksum) || errors.Is(err, ErrProtocol), err
	}
	remote, err = sdk.Dispense(rpc, p.m.Kind)
	if err != nil {
		stopStarted(client)
		return nil, nil, nil, desc, false, fmt.Errorf("plugin %s: %w", p.m.Name, err)
	}
	dctx, cancel := context.WithTimeout(closing, p.opts.StartTimeout)
	desc, err = remote.Describe(dctx)
	cancel()
	if err != nil {
		stopStarted(client)
		return nil, nil, nil, desc, false, fmt.Errorf("plugin %s: %w", p.m.Name, err)
	}
	if desc.Name != p.m.Name || desc.Kind != p.m.Kind {
		stopStarted(client)
		return nil, nil, nil, desc, true, fmt.Errorf("plugin %s: the binary says it is %s %q, its manifest says %s %q: reinstall it",
			p.m.Name, desc.Kind, desc.Name, p.m.Kind, p.m.Name)
	}
	return client, remote, rpc, desc, false, nil
}

// stopStarted stops a process that is not (or no longer) in service: its
// start failed or was stopped by Close.
func stopStarted(client *plugin.Client) {
	pid, sock := processOf(client)
	killClient(client, pid)
	removeSocket(sock)
}

// processOf returns the pid of a started plugin and the Unix socket it
// listens on ("" for none); 0 and "" before it started.
func processOf(client *plugin.Client) (pid int, sock string) {
	rc := client.ReattachConfig()
	if rc == nil {
		return 0, ""
	}
	if rc.Addr != nil && rc.Addr.Network() == "unix" {
		sock = rc.Addr.String()
	}
	return rc.Pid, sock
}

// killClient stops a plugin process at once, with the processes it
// started: the whole process group first, then go-plugin's client. Kill
// returns only once the plugin's stdout and stderr are closed, and a
// helper the plugin started that writes to them (one started before
// sdk.Serve, a wrapper script's background job) holds them open for as
// long as it runs: killed after Kill, it kept Kill, and whoever called it
// with p.mu held, waiting for good.
func killClient(client *plugin.Client, pid int) {
	if pid > 0 && !client.Exited() {
		killNow(pid)
	}
	killGroup(pid)
	client.Kill()
	reapGroup(pid)
}

// gracefulExit is how long go-plugin's Kill waits for a plugin asked to
// exit before it kills it.
const gracefulExit = 2 * time.Second

// stopGracefully asks the plugin to exit (go-plugin's Kill kills it if it
// has not gracefulExit later), then stops what it started. When a helper
// of the plugin holds its output open (see killClient), the group is
// killed once the plugin had its time to exit, so that Kill returns.
func stopGracefully(client *plugin.Client, pid int) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		client.Kill()
	}()
	t := time.NewTimer(gracefulExit + 500*time.Millisecond)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		killGroup(pid)
		<-done
	}
	killGroup(pid)
	reapGroup(pid)
}

// startedLocked puts a started process in service; p.mu is held.
func (p *Process) startedLocked(client *plugin.Client, remote *sdk.Remote, rpc plugin.ClientProtocol, desc sdk.Description) {
	p.client, p.remote = client, remote
	p.state, p.starts, p.startedAt, p.lastErr = StateRunning, p.starts+1, time.Now(), nil
	p.pid, p.sock = processOf(client)
	p.log.Debug().Int("pid", p.pid).Int("starts", p.starts).Str("version", desc.Version).Msg("plugin started")
	if p.opts.HealthInterval > 0 {
		p.stopWatch, p.watchDone = make(chan struct{}), make(chan struct{})
		p.watches.Add(1)
		go func(stop, done chan struct{}) {
			defer p.watches.Done()
			p.watch(client, remote, rpc, stop, done)
		}(p.stopWatch, p.watchDone)
	}
}

// noNamespace warns once per Ponder that plugins get no PID namespace.
var noNamespace sync.Once

var versionRE = regexp.MustCompile(`(?i)plugin version: (\d+)`)

// launch starts the binary at path after checking it against sha (hex)
// and completes the handshake. name labels its log lines and errors. It
// kills the binary when ctx ends before the handshake completed (go-plugin
// waits for it up to StartTimeout, and holds the client's lock meanwhile,
// so client.Kill would wait as long). Once launched, the process outlives
// ctx.
func launch(ctx context.Context, opts *Options, name, path, dir string, args []string, sha string, logs *logLimiter) (*plugin.Client, plugin.ClientProtocol, error) {
	sum, err := hex.DecodeString(sha)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin %s: bad sha256 %q", name, sha)
	}
	var launched atomic.Bool
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Cancel = func() error {
		if launched.Load() {
			// Its stop is the host's business now; ErrProcessDone keeps
			// os/exec from reporting ctx's error when it exits.
			return os.ErrProcessDone
		}
		killGroup(cmd.Process.Pid)
		return cmd.Process.Kill()
	}
	cmd.Dir = dir
	cmd.Env = childEnv(os.Environ(), opts.Env)
	attr, err := childProcAttr()
	if err != nil {
		noNamespace.Do(func() {
			opts.Logger.Warn().Err(err).Msg("plugins run without a PID namespace of their own: a process a plugin starts that leaves its process group (setsid, a daemon) outlives the plugin")
		})
	}
	cmd.SysProcAttr = attr
	stderr := newStderrRelay(opts.Logger, name, logs)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{sdk.ProtocolVersion: sdk.PluginSet()},
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     opts.StartTimeout,
		Logger:           &hcLogger{log: opts.Logger, plugin: name, limit: logs},
		Stderr:           stderr,
		// Once sdk.Serve runs, go-plugin swaps the plugin's os.Stdout and
		// os.Stderr for pipes it streams over gRPC (GRPCStdio): what the
		// plugin logs while it serves arrives here, not on Stderr.
		SyncStderr:  newStderrRelay(opts.Logger, name, logs),
		SyncStdout:  &stderrRelay{log: opts.Logger, plugin: name, stream: "stdout", limit: logs},
		SkipHostEnv: true,
		// go-plugin lets a reply be as large as 2 GiB; a plugin's replies
		// are tool results (capped at 64 KiB later anyway), scores and
		// strategy outcomes.
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxReply))},
	})
	rpc, err := client.Client()
	if err != nil {
		// go-plugin killed the plugin; its helpers go with their group
		// (they are left running otherwise, and Kill, which returns once
		// the plugin's output is read to its end, waits for any that
		// holds it).
		if cmd.Process != nil {
			killGroup(cmd.Process.Pid)
		}
		client.Kill()
		if cmd.Process != nil {
			reapGroup(cmd.Process.Pid)
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("plugin %s: start of %s stopped: %w", name, path, ctx.Err())
		}
		return nil, nil, startError(opts, name, path, err, stderr.lastWords())
	}
	launched.Store(true)
	return client, rpc, nil
}

// startError turns go-plugin's start errors into ones that say what to do.
// said is the last of what the plugin wrote to stderr: the reason of a
// plugin that refused to serve (sdk.Serve's "tool schema is not JSON"),
// or of one that panicked while starting.
func startError(opts *Options, name, path string, err error, said string) error {
	if errors.Is(err, os.ErrPermission) {
		// "fork/exec PATH: permission denied": say which permission and
		// how to give it, when it is the file's own.
		if st, serr := os.Stat(path); serr == nil {
			if e := executable(name, path, st.Mode()); e != nil {
				return e
			}
		}
	}
	msg := err.Error()
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "checksums did not match"):
		return fmt.Errorf("plugin %s: %w: %s changed since it was installed; refusing to start it (reinstall with `ponder plugins install`)", name, ErrChecksum, path)
	case strings.Contains(low, "incompatible api version"):
		got := "another"
		if m := versionRE.FindStringSubmatch(msg); m != nil {
			got = m[1]
		}
		return fmt.Errorf("plugin %s: %w: it speaks plugin protocol %s, this Ponder speaks %d: rebuild it against the current sdk",
			name, ErrProtocol, got, sdk.ProtocolVersion)
	case strings.Contains(low, "unrecognized remote plugin message"), strings.Contains(low, "plugin exited before we could connect"):
		if said != "" {
			return fmt.Errorf("plugin %s: %w: %s exited before the plugin handshake, saying: %s", name, ErrExited, path, said)
		}
		if line := firstLine(msg); strings.HasSuffix(strings.TrimSpace(line), ":") {
			// go-plugin quotes the line it read: an empty one is a
			// plugin that exited without a word (or printed a blank line).
			return fmt.Errorf("plugin %s: %w: %s did not answer the plugin handshake: it wrote nothing on stdout or stderr before it exited (is it built with sdk.Serve?)", name, ErrNotPlugin, path)
		}
		return fmt.Errorf("plugin %s: %w: %s did not answer the plugin handshake (%s)", name, ErrNotPlugin, path, firstLine(msg))
	case strings.Contains(low, "timeout while waiting for plugin to start"):
		if said != "" {
			return fmt.Errorf("plugin %s: %w: %s did not answer the plugin handshake within %s; it wrote: %s", name, ErrNotPlugin, path, opts.StartTimeout, said)
		}
		return fmt.Errorf("plugin %s: %w: %s did not answer the plugin handshake within %s", name, ErrNotPlugin, path, opts.StartTimeout)
	}
	return fmt.Errorf("plugin %s: start %s: %w", name, path, err)
}

// Errors of plugins that cannot be used.
var (
	ErrNotPlugin = errors.New("not a Ponder plugin")
	// ErrExited is a binary that exited before its handshake after
	// writing to stderr (a plugin that refused to serve says why there).
	ErrExited   = errors.New("the plugin did not start")
	ErrProtocol = errors.New("plugin protocol version mismatch")
)

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// watch pings the plugin every HealthInterval; a plugin that does not
// answer within CallTimeout is killed and counted as crashed. In eager
// mode a crashed plugin is restarted here, after its backoff.
func (p *Process) watch(client *plugin.Client, remote *sdk.Remote, rpc plugin.ClientProtocol, stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(p.opts.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if client.Exited() {
			p.crashed(remote, errors.New("the plugin process exited"))
			p.restartEager()
			return
		}
		pong := make(chan error, 1)
		go func() { pong <- rpc.Ping() }()
		select {
		case <-stop:
			return
		case err := <-pong:
			if err != nil {
				p.crashed(remote, fmt.Errorf("health check failed: %w", err))
				p.restartEager()
				return
			}
		case <-time.After(p.opts.CallTimeout):
			p.crashed(remote, fmt.Errorf("health check got no answer within %s", p.opts.CallTimeout))
			p.restartEager()
			return
		}
	}
}

func (p *Process) restartEager() {
	if !p.opts.Eager {
		return
	}
	p.mu.Lock()
	wait := backoff(p.crashes)
	p.mu.Unlock()
	select {
	case <-p.opts.done:
		return
	case <-time.After(wait):
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if (p.state == StateCrashed || p.state == StateFailed) && p.starting == nil {
		p.startLocked() // logs its own failure; the next call retries
	}
}

// crashed records that remote's process died or was killed, and kills it
// for good. Calls made on an older incarnation are ignored.
func (p *Process) crashed(remote *sdk.Remote, reason error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noteCrashLocked(remote, reason)
}

func (p *Process) noteCrashLocked(remote *sdk.Remote, reason error) {
	if p.remote != remote || p.state != StateRunning {
		return
	}
	p.forceKillLocked()
	if time.Since(p.startedAt) > time.Minute {
		p.crashes = 0
	}
	p.crashes++
	p.lastCrash = time.Now()
	p.state = StateCrashed
	p.lastErr = reason
	p.log.Warn().Err(reason).Int("crashes", p.crashes).Dur("restart_in", backoff(p.crashes)).Msg("plugin crashed; it is restarted on next use")
}

// forceKillLocked kills the process at once (a hung or crashed plugin gets
// no graceful shutdown).
func (p *Process) forceKillLocked() {
	if p.client == nil {
		return
	}
	if p.stopWatch != nil {
		close(p.stopWatch)
		p.stopWatch = nil
	}
	killClient(p.client, p.pid)
	removeSocket(p.sock)
	p.client, p.remote = nil, nil
	p.busy, p.unreported = 0, 0
}

// retireLocked takes the running process out of service for reason while
// calls are in flight on it: the next call starts a fresh process (at once
// in eager mode), and end stops the retired one when its last call ends.
// Were new calls to wait for the process to go idle instead, a steady
// stream of them would hold off the restart indefinitely. p.mu is held.
func (p *Process) retireLocked(reason string) {
	p.log.Warn().Int("in_flight", p.busy).Int("pid", p.pid).
		Msg("plugin restarted: " + reason + "; new calls go to a fresh process, the old one is stopped once its calls in flight end")
	if p.stopWatch != nil {
		close(p.stopWatch) // its calls are bounded; no more health checks
	}
	d := &drainingProc{client: p.client, remote: p.remote, pid: p.pid, sock: p.sock, busy: p.busy}
	p.client, p.remote, p.stopWatch, p.watchDone = nil, nil, nil, nil
	p.busy, p.unreported = 0, 0
	p.draining = append(p.draining, d)
	if len(p.draining) > MaxDraining {
		old := p.draining[0]
		p.log.Warn().Int("pid", old.pid).Int("in_flight", old.busy).Msg("plugin: too many old processes finishing their calls; stopping the oldest now")
		p.stopDrainingLocked(old)
	}
	p.state = StateCrashed
	p.lastErr = fmt.Errorf("restarted: %s", reason)
	p.startEagerLocked()
}

// drainingLocked is the retired process of r, or nil. p.mu is held.
func (p *Process) drainingLocked(r *sdk.Remote) *drainingProc {
	for _, d := range p.draining {
		if d.remote == r {
			return d
		}
	}
	return nil
}

// stopDrainingLocked kills a retired process at once and forgets it; its
// health watch was told to stop when it was retired (close waits for
// it). p.mu is held.
func (p *Process) stopDrainingLocked(d *drainingProc) {
	killClient(d.client, d.pid)
	removeSocket(d.sock)
	for i, x := range p.draining {
		if x == d {
			p.draining = append(p.draining[:i], p.draining[i+1:]...)
			break
		}
	}
}

// removeSocket removes the Unix socket a plugin listened on: go-plugin
// removes it when the plugin exits cleanly, but one that crashed or was
// killed leaves it in the temporary directory. Only a socket is removed,
// whatever path the plugin's handshake named.
func removeSocket(path string) {
	if path == "" {
		return
	}
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
}

// close stops the process gracefully (go-plugin asks it to exit and kills
// it after 2 s).
func (p *Process) close() {
	p.mu.Lock()
	client, stop, done, pid, sock := p.client, p.stopWatch, p.watchDone, p.pid, p.sock
	p.client, p.remote, p.stopWatch = nil, nil, nil
	p.state = StateClosed
	for len(p.draining) > 0 {
		p.stopDrainingLocked(p.draining[0])
	}
	if p.starting != nil {
		// A process still starting is stopped by its start, which sees
		// the state closed.
		p.starting.abort()
	}
	p.mu.Unlock()
	if stop != nil {
		close(stop)
	}
	if client != nil {
		stopGracefully(client, pid)
		removeSocket(sock)
	}
	if done != nil {
		<-done
	}
	p.startRuns.Wait()
	// Checks of abandoned calls end on the manager's done channel, or
	// when their query fails on the process killed above.
	p.checks.Wait()
	p.watches.Wait()
	p.logs.close()
}

// MaxReply is the largest reply the host reads from a plugin.
const MaxReply = 16 << 20

// tooLargeRE finds the size in gRPC's "received message larger than max
// (N vs. M)".
var tooLargeRE = regexp.MustCompile(`larger than max \((\d+) vs\.`)

// call runs fn on the plugin with a per-call timeout (0: none). A plugin
// that crashed during the call is killed and restarted on next use; a
// call the host gives up on (the caller's context ended, or the timeout)
// is abandoned: the plugin is told (gRPC cancels the call in it) and is
// restarted if it still runs the call AbandonGrace later (see
// abandoned). The error names the plugin either way.
func (p *Process) call(ctx context.Context, timeout time.Duration, what string, fn func(context.Context, *sdk.Remote) error) error {
	r, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	defer p.end(r)
	cctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	err = fn(cctx, r)
	if err == nil {
		return nil
	}
	switch {
	case ctx.Err() != nil:
		p.abandoned(r, what)
		return fmt.Errorf("plugin %s: %s: %w", p.m.Name, what, ctx.Err())
	case cctx.Err() != nil || (timeout > 0 && errors.Is(err, context.DeadlineExceeded)):
		// gRPC sends the deadline to the plugin, whose side can give up a
		// moment before our own timer fires: both mean the call timed out.
		p.abandoned(r, what)
		return fmt.Errorf("plugin %s: %s did not answer within %s (a plugin that keeps running it past %s is restarted): %w",
			p.m.Name, what, timeout, p.opts.AbandonGrace, context.DeadlineExceeded)
	case errors.Is(err, sdk.ErrTooLarge):
		// err repeats what ("run: message too large (grpc: …)"): say it
		// once, with the size gRPC measured.
		size := ""
		if m := tooLargeRE.FindStringSubmatch(err.Error()); m != nil {
			size = " of " + m[1] + " bytes"
		}
		return fmt.Errorf("plugin %s: %s: %w: the reply%s is over the %d MiB the host reads from a plugin", p.m.Name, what,
			sdk.ErrTooLarge, size, MaxReply>>20)
	case errors.Is(err, sdk.ErrUnavailable) || p.exited(r):
		p.crashed(r, fmt.Errorf("crashed during %s: %v", what, err))
		return fmt.Errorf("plugin %s crashed during %s (it will be restarted): %w", p.m.Name, what, err)
	}
	return fmt.Errorf("plugin %s: %w", p.m.Name, err)
}

// end counts off a call on r (acquire counted it on): a retired process
// is stopped when its last call ends.
func (p *Process) end(r *sdk.Remote) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.remote == r {
		p.busy--
		return
	}
	if d := p.drainingLocked(r); d != nil {
		if d.busy--; d.busy == 0 {
			p.log.Debug().Int("pid", d.pid).Msg("plugin: the old process finished its calls; stopped")
			p.stopDrainingLocked(d)
		}
	}
	// Else it crashed or was stopped meanwhile.
}

// abandoned looks into a call on r that the host gave up on: AbandonGrace
// later it asks the plugin whether calls it was told to stop that long ago
// still run (Go cannot stop a goroutine that ignores its context, and the
// plugin process serves every run: such calls would pile up in it, with
// whatever they hold, for as long as it lives). A plugin that still runs
// one is restarted: at once when it has no call in flight or holds more
// than MaxAbandoned, else new calls go to a fresh process and the old one
// is stopped when its calls in flight end. One that does not say (not
// built with the Go SDK) is restarted so after each abandoned call.
func (p *Process) abandoned(r *sdk.Remote, what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if (p.remote != r || p.state != StateRunning) && p.drainingLocked(r) == nil {
		return
	}
	grace := p.opts.AbandonGrace
	p.checks.Add(1)
	go func() {
		defer p.checks.Done()
		// The plugin sees the cancellation a moment after the host gave
		// up: ask a while after grace for calls cancelled grace ago.
		wait, watching := grace+grace/2, false
		for {
			if watching = p.checkAbandoned(r, what, grace, wait, watching); !watching {
				return
			}
			// r was retired with abandoned calls in it: this check keeps
			// asking, every grace, until it is stopped or done with them,
			// so calls the plugin saw cancelled late, or that pile up
			// meanwhile, still stop it past MaxAbandoned.
			wait = grace
		}
	}()
}

// checkAbandoned waits wait, then asks r how many calls cancelled grace ago
// still run and acts on it (see abandoned). It reports whether r is a
// retired process with abandoned calls that this check is to keep
// watching.
func (p *Process) checkAbandoned(r *sdk.Remote, what string, grace, wait time.Duration, watching bool) (again bool) {
	select {
	case <-p.opts.done:
		return false
	case <-time.After(wait):
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(p.opts.CallTimeout, 10*time.Second))
	n, err := r.AbandonedCalls(ctx, grace)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.drainingLocked(r); d != nil {
		// Retired already: stopped when its calls end, or now if
		// abandoned calls pile up in it meanwhile.
		switch {
		case err == nil && n > MaxAbandoned:
			p.log.Warn().Int("pid", d.pid).Int("abandoned", n).Msg("plugin: the old process holds too many abandoned calls; stopped now")
			p.stopDrainingLocked(d)
			return false
		case err != nil || n == 0:
			// Gone, wedged or done with them: a later abandoned call
			// may start a watch again.
			if watching {
				d.watched = false
			}
			return false
		case d.watched && !watching:
			return false // another check watches it
		}
		d.watched = true
		return true
	}
	if p.remote != r || p.state != StateRunning {
		return false // restarted, crashed or closed meanwhile
	}
	var reason string
	switch {
	case errors.Is(err, sdk.ErrNotReported):
		p.unreported++
		n = p.unreported
		reason = fmt.Sprintf("%d abandoned %s(s) (it does not report whether its calls still run)", n, what)
	case err != nil:
		// Gone or wedged: the next call or the health check sees to it.
		p.log.Debug().Err(err).Msg("could not ask the plugin about an abandoned call")
		return false
	case n == 0:
		return false // it stopped as told
	default:
		reason = fmt.Sprintf("%d call(s) still running %s after the host gave up on them (the plugin ignores their cancellation)", n, grace)
	}
	if p.busy == 0 || n > MaxAbandoned {
		p.restartLocked(reason)
		return false
	}
	p.retireLocked(reason)
	if d := p.drainingLocked(r); d != nil && err == nil && !d.watched {
		d.watched = true
		return true
	}
	return false
}

// restartLocked stops the running process for reason (not a crash: no
// backoff); the next call starts it again, or at once in eager mode.
// p.mu is held.
func (p *Process) restartLocked(reason string) {
	p.log.Warn().Int("in_flight", p.busy).Int("pid", p.pid).Msg("plugin restarted: " + reason)
	p.forceKillLocked()
	p.state = StateCrashed
	p.lastErr = fmt.Errorf("restarted: %s", reason)
	p.startEagerLocked()
}

// startEagerLocked starts the plugin again in the background in eager
// mode (lazily, the next call does). p.mu is held.
func (p *Process) startEagerLocked() {
	if p.opts.Eager {
		p.checks.Add(1)
		go func() {
			defer p.checks.Done()
			p.restartEager()
		}()
	}
}

func (p *Process) exited(r *sdk.Remote) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.remote == r && p.client != nil && p.client.Exited()
}

// childEnv is the plugin's environment: the host's, less anything that
// looks like a secret (Ponder's own settings, keys, tokens, passwords),
// plus extra.
func childEnv(environ, extra []string) []string {
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		u := strings.ToUpper(k)
		if strings.HasPrefix(u, "PONDER_") || strings.HasPrefix(u, "PLUGIN_") {
			continue
		}
		secret := false
		for _, s := range []string{"KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"} {
			secret = secret || strings.Contains(u, s)
		}
		if !secret {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}
