//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"sync"
	"time"

	"github.com/ponder-rlm/ponder/tools/reap"
)

// RunSession runs code in the named session: one Python process, in its own
// sandbox, whose globals persist from call to call. The session starts on
// first use; one that was stopped (timeout, output limit, os._exit) starts
// afresh on the next call, and that call's Result says SessionRestarted.
// Calls to one session run one at a time. Limits are those of Run, except
// that the CPU limit applies per call (up to 20 times it over the session's
// life) and the processes of a session share its /tmp.
func (s *Sandbox) RunSession(ctx context.Context, name, code string, ro *RunOptions) (Result, error) {
	if name == "" {
		return s.Run(ctx, code, ro)
	}
	sess := s.sessions.get(name)
	return sess.run(ctx, code, ro)
}

// CloseSession stops the named session, if it is running.
func (s *Sandbox) CloseSession(name string) { s.sessions.close(name) }

// Sessions lists the live sessions' names.
func (s *Sandbox) Sessions() []string { return s.sessions.names() }

type sessions struct {
	sb *Sandbox
	mu sync.Mutex
	m  map[string]*session
	// lost names the sessions that were ended without being closed
	// (evicted, idle), so that the next call of one says its state is
	// gone rather than failing on a missing variable. It is bounded.
	lost map[string]bool
}

func newSessions(sb *Sandbox) *sessions {
	return &sessions{sb: sb, m: map[string]*session{}, lost: map[string]bool{}}
}

// markLost records that name's state was lost; the caller holds ss.mu.
func (ss *sessions) markLost(name string) {
	if len(ss.lost) >= 4*ss.sb.opts.MaxSessions {
		for k := range ss.lost {
			delete(ss.lost, k)
			break
		}
	}
	ss.lost[name] = true
}

func (ss *sessions) get(name string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.m[name]; ok {
		return s
	}
	if len(ss.m) >= ss.sb.opts.MaxSessions {
		// Evict the least recently used session.
		var oldest *session
		for _, s := range ss.m {
			if oldest == nil || s.used().Before(oldest.used()) {
				oldest = s
			}
		}
		delete(ss.m, oldest.name)
		ss.markLost(oldest.name)
		go oldest.stop() // it may be busy; stopping kills its process
	}
	s := &session{sb: ss.sb, name: name, owner: ss, lastUsed: time.Now(), lost: ss.lost[name]}
	delete(ss.lost, name)
	ss.m[name] = s
	return s
}

func (ss *sessions) close(name string) {
	ss.mu.Lock()
	s, ok := ss.m[name]
	delete(ss.m, name)
	delete(ss.lost, name)
	ss.mu.Unlock()
	if ok {
		s.stop()
	}
}

func (ss *sessions) names() []string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]string, 0, len(ss.m))
	for k := range ss.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (ss *sessions) closeAll() {
	ss.mu.Lock()
	all := ss.m
	ss.m = map[string]*session{}
	ss.mu.Unlock()
	for _, s := range all {
		s.stop()
	}
}

// session is one named session; proc is its live process (nil when none).
type session struct {
	sb    *Sandbox
	name  string
	owner *sessions

	run1     sync.Mutex // one call at a time
	mu       sync.Mutex // guards the fields below
	proc     *sessionProc
	cells    int // cells run by the current process
	lastUsed time.Time
	idle     *time.Timer
	closed   bool
	lost     bool // an earlier session of this name was evicted or idled out
}

func (s *session) used() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastUsed
}

// stop kills the session's process and forgets it.
func (s *session) stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.closed = true
	if s.idle != nil {
		s.idle.Stop()
	}
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

func (s *session) touch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastUsed = time.Now()
	if s.idle != nil {
		s.idle.Stop()
	}
	s.idle = time.AfterFunc(s.sb.opts.SessionIdle, func() {
		s.owner.mu.Lock()
		if s.owner.m[s.name] == s {
			delete(s.owner.m, s.name)
			s.owner.markLost(s.name)
		}
		s.owner.mu.Unlock()
		s.stop()
	})
}

func (s *session) run(ctx context.Context, code string, ro *RunOptions) (Result, error) {
	var o RunOptions
	if ro != nil {
		o = *ro
	}
	timeout := s.sb.opts.Timeout
	if o.Timeout > 0 && o.Timeout < timeout {
		timeout = o.Timeout
	}
	s.run1.Lock()
	defer s.run1.Unlock()
	if err := s.sb.acquire(ctx); err != nil {
		return Result{Stop: StopCancelled, Detail: "cancelled while waiting for a free sandbox"}, err
	}
	defer s.sb.release()
	defer s.touch()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Result{}, fmt.Errorf("sandbox session %q was closed", s.name)
	}
	p := s.proc
	restarted := s.lost
	if p != nil && p.exited() {
		p.kill()
		p, s.proc = nil, nil
		restarted = s.cells > 0
	}
	if p == nil {
		restarted = restarted || s.cells > 0
		np, err := s.sb.startSession(ctx)
		if err != nil {
			s.mu.Unlock()
			return Result{}, err
		}
		p, s.proc, s.cells = np, np, 0
	}
	s.lost = false
	s.cells++
	s.mu.Unlock()

	res, keep, err := p.cell(ctx, code, o.Stdin, timeout)
	res.Session = s.name
	res.SessionRestarted = restarted
	if !keep {
		p.kill()
		s.mu.Lock()
		if s.proc == p {
			s.proc = nil
		}
		s.mu.Unlock()
	}
	return res, err
}

// sessionProc is a session's running Python.
type sessionProc struct {
	sb       *Sandbox
	cmd      *exec.Cmd
	ctl      *os.File
	token    []byte
	out, err *stream
	waitc    chan struct{}
	waitErr  error
	statc    chan bwrapStatus
	st       bwrapStatus
	stOnce   sync.Once
}

// startSession starts a session's process and waits until its driver runs,
// so that a cell's timeout does not count the start-up.
func (s *Sandbox) startSession(ctx context.Context) (*sessionProc, error) {
	var tb [12]byte
	if _, err := rand.Read(tb[:]); err != nil {
		return nil, fmt.Errorf("sandbox session: token: %w", err)
	}
	token := hex.EncodeToString(tb[:])
	cmd := s.command("session", token)
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (*os.File, *os.File, error) {
		r, w, err := os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	ctlR, ctlW, err1 := pipe()
	statR, statW, err2 := pipe()
	outR, outW, err3 := pipe()
	errR, errW, err4 := pipe()
	readyR, readyW, err5 := pipe()
	for _, err := range []error{err1, err2, err3, err4, err5} {
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("sandbox session: pipe: %w", err)
		}
	}
	cmd.ExtraFiles = []*os.File{ctlR, statW, readyW}
	cmd.Stdout, cmd.Stderr = outW, errW
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("%w: start %s: %v", ErrUnavailable, s.bwrap, err)
	}
	ctlR.Close()
	statW.Close()
	outW.Close()
	errW.Close()
	readyW.Close()
	limit := 2*s.opts.MaxOutput + 4096
	p := &sessionProc{
		sb: s, cmd: cmd, ctl: ctlW, token: append([]byte{0}, append([]byte(token), 0)...),
		out: newStream(outR, limit), err: newStream(errR, limit),
		waitc: make(chan struct{}), statc: make(chan bwrapStatus, 1),
	}
	readyc := make(chan bool, 1)
	go func() {
		ok := readReady(readyR)
		readyR.Close()
		readyc <- ok
		st := readStatus(statR)
		statR.Close()
		st.started = ok
		p.statc <- st
	}()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.waitc)
		reap.Pid(p.status().childPid) // orphaned: bwrap exits first
	}()
	select {
	case ok := <-readyc:
		if ok {
			return p, nil
		}
		p.kill()
		msg := firstLine(string(bytes.TrimSpace(p.err.all())))
		if msg == "" && p.waitErr != nil {
			msg = p.waitErr.Error()
		}
		return nil, fmt.Errorf("%w: bubblewrap could not set up the sandbox: %s", ErrUnavailable, msg)
	case <-time.After(s.opts.Timeout + 10*time.Second):
		p.kill()
		return nil, fmt.Errorf("%w: the session's sandbox did not start within %s", ErrUnavailable, s.opts.Timeout+10*time.Second)
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

func (p *sessionProc) exited() bool {
	select {
	case <-p.waitc:
		return true
	default:
		return false
	}
}

func (p *sessionProc) kill() {
	killGroup(p.cmd)
	p.ctl.Close()
	<-p.waitc
	p.out.wait()
	p.err.wait()
}

func (p *sessionProc) status() bwrapStatus {
	p.stOnce.Do(func() { p.st = <-p.statc })
	return p.st
}

// cell runs one cell. keep says whether the process may serve the next one.
func (p *sessionProc) cell(ctx context.Context, code, stdin string, timeout time.Duration) (res Result, keep bool, err error) {
	start := time.Now()
	p.out.reset()
	p.err.reset()
	req, _ := json.Marshal(map[string]string{"code": code, "stdin": stdin})
	werr := make(chan error, 1)
	go func() {
		_, err := p.ctl.Write(append(req, '\n'))
		werr <- err
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	max := p.sb.opts.MaxOutput
	finish := func(stop Stop, detail string) (Result, bool, error) {
		o, oTrunc := p.out.take(max, p.token)
		e, eTrunc := p.err.take(max, p.token)
		r := Result{Stdout: o, Stderr: e, StdoutTruncated: oTrunc, StderrTruncated: eTrunc, Stop: stop, Detail: detail,
			ExitCode: -1, DurationMS: float64(time.Since(start).Microseconds()) / 1000}
		return r, false, nil
	}
	for {
		outBuf, outCh, outEOF, outOver := p.out.snapshot()
		_, errCh, errEOF, errOver := p.err.snapshot()
		if i := bytes.Index(outBuf, p.token); i >= 0 && p.err.has(p.token) {
			rest := outBuf[i+len(p.token):]
			if j := bytes.IndexByte(rest, '\n'); j >= 0 {
				var st struct {
					Exit int `json:"exit"`
				}
				_ = json.Unmarshal(rest[:j], &st)
				o, oTrunc := p.out.take(max, p.token)
				e, eTrunc := p.err.take(max, p.token)
				r := Result{Stdout: o, Stderr: e, StdoutTruncated: oTrunc, StderrTruncated: eTrunc, ExitCode: st.Exit,
					DurationMS: float64(time.Since(start).Microseconds()) / 1000}
				p.sb.classify(&r)
				return r, true, nil
			}
		}
		if outOver || errOver || p.out.pending(p.token) > max || p.err.pending(p.token) > max {
			return finish(StopOutput, fmt.Sprintf("wrote more than %d bytes of output; the session's processes were killed and its state is lost", max))
		}
		if (outEOF && errEOF) || p.exited() {
			<-p.waitc
			if !p.status().started {
				_, _, _ = finish("", "")
				msg := firstLine(string(bytes.TrimSpace(p.err.all())))
				if msg == "" && p.waitErr != nil {
					msg = p.waitErr.Error()
				}
				return Result{}, false, fmt.Errorf("%w: bubblewrap could not set up the sandbox: %s", ErrUnavailable, msg)
			}
			r, _, _ := finish(StopSessionEnded, "")
			r.ExitCode = exitCode(p.cmd, p.waitErr)
			if st := p.status(); st.exited {
				r.ExitCode = st.exitCode
			}
			r.Detail = fmt.Sprintf("the session's Python process exited with status %d; its state is lost", r.ExitCode)
			c := Result{ExitCode: r.ExitCode, Stderr: r.Stderr}
			p.sb.classify(&c)
			if c.Stop != StopExit {
				r.Stop, r.Detail, r.Signal = c.Stop, c.Detail+"; the session's state is lost", c.Signal
			}
			return r, false, nil
		}
		select {
		case <-outCh:
		case <-errCh:
		case <-p.waitc:
		case <-werr:
			// Written, or the process is gone (the wait channel says so).
			werr = nil
		case <-timer.C:
			return finish(StopTimeout, fmt.Sprintf("wall-clock limit of %s reached; the session's processes were killed and its state is lost", timeout))
		case <-ctx.Done():
			r, keep, _ := finish(StopCancelled, "the caller cancelled; the session's processes were killed and its state is lost")
			return r, keep, ctx.Err()
		}
	}
}

// stream collects a pipe's bytes; a reader goroutine appends, and waiters
// learn of changes through a channel that is closed on each one.
type stream struct {
	mu      sync.Mutex
	buf     []byte
	limit   int
	over    bool
	eof     bool
	changed chan struct{}
	done    chan struct{}
}

func newStream(r io.ReadCloser, limit int) *stream {
	st := &stream{limit: limit, changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(st.done)
		defer r.Close()
		b := make([]byte, 32<<10)
		for {
			n, err := r.Read(b)
			st.mu.Lock()
			if n > 0 {
				if len(st.buf)+n > st.limit {
					st.over = true
					n = max(0, st.limit-len(st.buf))
				}
				st.buf = append(st.buf, b[:n]...)
			}
			if err != nil {
				st.eof = true
			}
			close(st.changed)
			st.changed = make(chan struct{})
			st.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return st
}

func (st *stream) wait() { <-st.done }

func (st *stream) snapshot() (buf []byte, changed chan struct{}, eof, over bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]byte(nil), st.buf...), st.changed, st.eof, st.over
}

func (st *stream) has(tok []byte) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return bytes.Contains(st.buf, tok)
}

// pending is the number of bytes before the token (all when none).
func (st *stream) pending(tok []byte) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	if i := bytes.Index(st.buf, tok); i >= 0 {
		return i
	}
	return len(st.buf)
}

func (st *stream) all() []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]byte(nil), st.buf...)
}

// take returns the cell's output (up to the token, capped at max) and
// drops it, with the token and the status line after it, from the buffer.
func (st *stream) take(max int, tok []byte) (string, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := st.buf
	rest := []byte(nil)
	if i := bytes.Index(st.buf, tok); i >= 0 {
		out = st.buf[:i]
		rest = st.buf[i+len(tok):]
		if bytes.HasPrefix(rest, []byte("{")) {
			// stdout: the cell's status line follows the token.
			if j := bytes.IndexByte(rest, '\n'); j >= 0 {
				rest = rest[j+1:]
			} else {
				rest = nil
			}
		}
	}
	trunc := st.over
	if len(out) > max {
		out, trunc = out[:max], true
	}
	s := bytes.ToValidUTF8(out, []byte("\uFFFD"))
	st.buf = append([]byte(nil), rest...)
	st.over = false
	return string(s), trunc
}

func (st *stream) reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.buf = st.buf[:0]
	st.over = false
}
